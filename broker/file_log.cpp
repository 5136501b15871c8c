#include "broker/file_log.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <exception>
#include <optional>

#include "core/crc32c.hpp"
#include "core/log.hpp"

namespace sluice {

namespace {

constexpr std::uint32_t kMoreInBatch =
    0x80000000u;  // top bit of `length`: another record of the batch follows
constexpr std::uint32_t kLengthMask = 0x7FFFFFFFu;
constexpr std::uint64_t kMaxSegmentBytes = 1ull << 30;  // keeps every index position within u32
constexpr std::size_t kMaxPendingBytes = 1ull << 30;
constexpr std::size_t kIndexEntryBytes = 8;
// Index entries are written to the index file once this many bytes of them wait, when their segment is
// sealed, and at close: the file is a hint (recovery checks it, and rescans the active segment anyway),
// so it needs no write per group commit.
constexpr std::size_t kIndexWriteBytes = 4096;
constexpr std::size_t kFirstChunk = 64 << 10;
constexpr std::size_t kMaxChunk = 4 << 20;

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the log's on-disk format is little-endian");

template <class T>
void put(char* p, T v) {
  std::memcpy(p, &v, sizeof v);
}
template <class T>
T get(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

std::string segment_name(std::uint64_t base, const char* ext) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%020" PRIu64 "%s", base, ext);
  return buf;
}

// "00000000000000000042.log" -> 42; anything else -> nullopt.
std::optional<std::uint64_t> parse_segment_name(const std::string& name, const std::string& ext) {
  if (name.size() != 20 + ext.size() || name.compare(20, ext.size(), ext) != 0) return std::nullopt;
  std::uint64_t v = 0;
  for (int i = 0; i < 20; ++i) {
    char c = name[static_cast<std::size_t>(i)];
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return v;
}

struct IndexEntry {
  std::uint32_t relative_offset;
  std::uint32_t position;
};

// Sequential reader of the records of one segment file between two positions, with large preads.
class RecordCursor {
 public:
  enum class Step { record, end, torn, corrupt };
  struct Record {
    std::uint64_t position;
    std::uint64_t offset;
    std::int64_t append_time_ms;
    bool more_in_batch;
    std::string_view payload;  // valid until the next call to next()
  };

  // `first_chunk`: size of the first pread; each later one doubles, up to kMaxChunk.
  RecordCursor(int fd, const std::string& path, std::uint64_t position, std::uint64_t limit,
               std::size_t first_chunk = kFirstChunk)
      : fd_(fd),
        path_(path),
        pos_(position),
        limit_(limit),
        chunk_(std::max<std::size_t>(first_chunk, 512)) {}

  std::uint64_t position() const { return pos_; }
  const Record& record() const { return record_; }

  Result<Step> next() {
    if (pos_ >= limit_) return Step::end;
    if (limit_ - pos_ < FileLog::kRecordHeaderBytes) return Step::torn;
    auto have = ensure(FileLog::kRecordHeaderBytes);
    if (!have) return have.error();
    if (!have.value()) return Step::torn;
    const char* h = buf_.data() + (pos_ - buf_pos_);
    std::uint32_t length = get<std::uint32_t>(h);
    std::uint64_t payload_len = length & kLengthMask;
    std::uint64_t size = FileLog::kRecordHeaderBytes + payload_len;
    if (size > limit_ - pos_) return Step::torn;
    have = ensure(size);
    if (!have) return have.error();
    if (!have.value()) return Step::torn;
    h = buf_.data() + (pos_ - buf_pos_);
    std::uint32_t stored_crc = get<std::uint32_t>(h + 4);
    if (crc32c(h + 8, size - 8) != stored_crc) return Step::corrupt;
    record_.position = pos_;
    record_.offset = get<std::uint64_t>(h + 8);
    record_.append_time_ms = get<std::int64_t>(h + 16);
    record_.more_in_batch = (length & kMoreInBatch) != 0;
    record_.payload = std::string_view(h + FileLog::kRecordHeaderBytes, payload_len);
    pos_ += size;
    return Step::record;
  }

 private:
  // Makes [pos_, pos_ + n) resident in buf_; false when the file ends first.
  Result<bool> ensure(std::uint64_t n) {
    if (pos_ >= buf_pos_ && pos_ + n <= buf_pos_ + buf_.size()) return true;
    std::uint64_t want = std::max<std::uint64_t>(n, chunk_);
    want = std::min<std::uint64_t>(want, std::max<std::uint64_t>(n, limit_ - pos_));
    buf_.resize(want);
    auto got = pread_full(fd_, buf_.data(), want, pos_, path_);
    if (!got) return got.error();
    buf_.resize(got.value());
    buf_pos_ = pos_;
    chunk_ = std::min(chunk_ * 2, kMaxChunk);
    return got.value() >= n;
  }

  int fd_;
  const std::string& path_;
  std::uint64_t pos_;
  std::uint64_t limit_;
  std::string buf_;
  std::uint64_t buf_pos_ = 0;
  std::size_t chunk_;
  Record record_{};
};

std::string encode_index(const std::vector<IndexEntry>& entries) {
  std::string out(entries.size() * kIndexEntryBytes, '\0');
  for (std::size_t i = 0; i < entries.size(); ++i) {
    put(out.data() + i * kIndexEntryBytes, entries[i].relative_offset);
    put(out.data() + i * kIndexEntryBytes + 4, entries[i].position);
  }
  return out;
}

// Whether bytes [from, to) of the file are all zero (space zero-filled ahead of the records).
Result<bool> all_zero(int fd, const std::string& path, std::uint64_t from, std::uint64_t to) {
  std::string buf(64 << 10, '\0');
  for (std::uint64_t pos = from; pos < to;) {
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), to - pos));
    auto got = pread_full(fd, buf.data(), want, pos, path);
    if (!got) return got.error();
    if (got.value() == 0) return true;
    if (std::any_of(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(got.value()),
                    [](char c) { return c != 0; })) {
      return false;
    }
    pos += got.value();
  }
  return true;
}

Error corrupt_error(std::uint64_t offset, const std::string& path, std::uint64_t position, const char* what) {
  return make_error("offset " + std::to_string(offset),
                    std::string(what) + " in segment " + path + " at byte " + std::to_string(position) +
                        "; the record is not served (restore the segment file from a copy)",
                    500);
}

}  // namespace

struct FileLog::Segment {
  std::uint64_t base = 0;
  std::string log_path;
  std::string index_path;
  UniqueFd read_fd;  // readers pread here, never through the writer's descriptor

  // Published state, guarded by FileLog::segments_mu_: only durable records.
  std::uint64_t size = 0;  // bytes
  std::uint64_t end = 0;   // one past the last record's offset
  std::vector<IndexEntry> index;
  std::int64_t first_time_ms = -1;
  std::int64_t max_time_ms = -1;

  // Writer-private state.
  UniqueFd write_fd;
  UniqueFd index_fd;
  std::uint64_t w_pos = 0;
  std::uint64_t w_file_size = 0;  // w_pos plus the zero-filled space after it
  std::uint64_t w_end = 0;
  std::uint64_t w_last_index_pos = 0;
  std::int64_t w_first_time_ms = -1;
  std::int64_t w_max_time_ms = -1;
  std::vector<IndexEntry> w_new_index;  // entries of records not yet published
  std::string w_unwritten_index;        // published entries not yet written to the index file
};

FileLog::FileLog(std::string dir, FileLogOptions options, Clock& clock)
    : dir_(std::move(dir)),
      options_(std::move(options)),
      clock_(clock),
      wall_at_open_(clock.wall()),
      steady_at_open_(clock.now()) {}

FileLog::~FileLog() {
  close();
}

std::int64_t FileLog::now_ms() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_.wall().time_since_epoch()).count();
}

std::int64_t FileLog::age_now_ms() const {
  const WallTime steady_wall =
      wall_at_open_ + std::chrono::duration_cast<WallTime::duration>(clock_.now() - steady_at_open_);
  return std::min(
      now_ms(),
      std::chrono::duration_cast<std::chrono::milliseconds>(steady_wall.time_since_epoch()).count());
}

Result<std::unique_ptr<FileLog>> FileLog::open(const std::string& dir, FileLogOptions options, Clock& clock) {
  if (options.segment_bytes == 0 || options.segment_bytes > kMaxSegmentBytes) {
    return make_error("segment_bytes", "must be between 1 and " + std::to_string(kMaxSegmentBytes), 400);
  }
  if (options.max_pending_bytes == 0 || options.max_pending_bytes > kMaxPendingBytes) {
    return make_error("max_pending_bytes", "must be between 1 and " + std::to_string(kMaxPendingBytes), 400);
  }
  if (options.max_pending_appends == 0) return make_error("max_pending_appends", "must be at least 1", 400);
  if (options.name.empty()) options.name = dir;
  if (auto st = make_dirs(dir); !st) return st.error();

  std::unique_ptr<FileLog> log(new FileLog(dir, std::move(options), clock));
  log->set_retention(log->options_.retention_ms, log->options_.retention_bytes);
  auto lock = lock_dir(dir, "event log directory is already open (by another process or FileLog)");
  if (!lock) return lock.error();
  log->lock_fd_ = std::move(lock).value();
  if (auto st = log->recover(); !st) return st.error();
  if (auto deleted = log->enforce_retention(); !deleted) return deleted.error();
  log->writer_ = std::thread([raw = log.get()] { raw->writer_loop(); });
  return log;
}

void FileLog::set_retention(std::int64_t retention_ms, std::uint64_t retention_bytes) {
  // Retention deletes whole segments: keep them an eighth of each bound (but at least 1 MiB and a second)
  // so that the log stays close to its bounds, and never larger than the configured segment.
  std::uint64_t segment_bytes = options_.segment_bytes;
  if (retention_bytes > 0) {
    segment_bytes = std::min(segment_bytes, std::max<std::uint64_t>(retention_bytes / 8, 1 << 20));
  }
  std::int64_t segment_ms = options_.segment_ms;
  if (retention_ms > 0) {
    const std::int64_t bound = std::max<std::int64_t>(retention_ms / 8, 1000);
    segment_ms = segment_ms > 0 ? std::min(segment_ms, bound) : bound;
  }
  segment_bytes_ = segment_bytes;
  segment_ms_ = segment_ms;
  retention_ms_ = retention_ms;
  retention_bytes_ = retention_bytes;
}

Result<std::shared_ptr<FileLog::Segment>> FileLog::create_segment(std::uint64_t base) {
  auto created = open_segment_files(base);
  if (!created) {
    // A half-created segment left behind would become the log's tail at the next open and hide the
    // records appended to the previous segment after this failure.
    (void)remove_file(dir_ + "/" + segment_name(base, ".log"));
    (void)remove_file(dir_ + "/" + segment_name(base, ".index"));
  }
  return created;
}

Result<std::shared_ptr<FileLog::Segment>> FileLog::open_segment_files(std::uint64_t base) {
  auto seg = std::make_shared<Segment>();
  seg->base = base;
  seg->end = base;
  seg->w_end = base;
  seg->log_path = dir_ + "/" + segment_name(base, ".log");
  seg->index_path = dir_ + "/" + segment_name(base, ".index");
  seg->write_fd = UniqueFd(::open(seg->log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!seg->write_fd.valid()) return errno_error(seg->log_path, "cannot create segment", errno);
  seg->read_fd = UniqueFd(::open(seg->log_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!seg->read_fd.valid()) return errno_error(seg->log_path, "cannot open segment", errno);
  seg->index_fd =
      UniqueFd(::open(seg->index_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644));
  if (!seg->index_fd.valid()) return errno_error(seg->index_path, "cannot create index", errno);
  if (auto st = fsync_dir(dir_); !st) return st.error();
  return seg;
}

Status FileLog::recover() {
  auto names = list_dir(dir_);
  if (!names) return names.error();
  std::vector<std::uint64_t> bases;
  for (const auto& name : names.value()) {
    if (auto base = parse_segment_name(name, ".log")) bases.push_back(*base);
  }
  for (const auto& name : names.value()) {
    // An index without its segment is a leftover of retention or of a failed roll.
    if (auto base = parse_segment_name(name, ".index");
        base && std::find(bases.begin(), bases.end(), *base) == bases.end()) {
      (void)remove_file(dir_ + "/" + name);
    }
  }
  std::sort(bases.begin(), bases.end());
  // A newest segment without a single byte of records was created by a roll that failed or that a crash
  // interrupted: the records appended since (if any) are in the segment before it, which becomes the tail.
  while (bases.size() > 1) {
    const std::string path = dir_ + "/" + segment_name(bases.back(), ".log");
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return errno_error(path, "cannot open segment", errno);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return errno_error(path, "cannot stat segment", errno);
    auto empty = all_zero(fd.get(), path, 0, static_cast<std::uint64_t>(st.st_size));
    if (!empty) return empty.error();
    if (!empty.value()) break;
    SLUICE_LOG(broker, info, "[log={}] removing {}: it holds no records (a segment roll did not finish)",
               options_.name, path);
    if (auto st_rm = remove_file(path); !st_rm) return st_rm;
    (void)remove_file(dir_ + "/" + segment_name(bases.back(), ".index"));
    if (auto st_dir = fsync_dir(dir_); !st_dir) return st_dir;
    bases.pop_back();
  }

  if (bases.empty()) {
    auto seg = create_segment(0);
    if (!seg) return seg.error();
    active_ = seg.value();
    next_offset_ = 0;
    segments_.emplace(0, active_);
    start_offset_ = 0;
    end_offset_ = 0;
    SLUICE_LOG(broker, info, "[log={}] created empty event log in {}", options_.name, dir_);
    return ok();
  }

  for (std::size_t i = 0; i < bases.size(); ++i) {
    auto seg = std::make_shared<Segment>();
    seg->base = bases[i];
    seg->log_path = dir_ + "/" + segment_name(bases[i], ".log");
    seg->index_path = dir_ + "/" + segment_name(bases[i], ".index");
    seg->read_fd = UniqueFd(::open(seg->log_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!seg->read_fd.valid()) return errno_error(seg->log_path, "cannot open segment", errno);
    Status st = i + 1 < bases.size() ? recover_sealed(*seg, bases[i + 1]) : recover_tail(*seg);
    if (!st) return st;
    segments_.emplace(seg->base, seg);
    if (i + 1 == bases.size()) active_ = seg;
  }
  next_offset_ = active_->w_end;
  start_offset_ = segments_.begin()->first;
  end_offset_ = next_offset_;
  SLUICE_LOG(broker, info, "[log={}] recovered {} segment(s), offsets [{}, {})", options_.name,
             segments_.size(), start_offset_.load(), end_offset_.load());
  return ok();
}

Status FileLog::recover_sealed(Segment& seg, std::uint64_t next_base) {
  struct stat st {};
  if (::fstat(seg.read_fd.get(), &st) != 0) return errno_error(seg.log_path, "cannot stat segment", errno);
  const auto file_size = static_cast<std::uint64_t>(st.st_size);
  seg.size = file_size;
  seg.end = next_base;

  // Trust the stored index if it is well formed and the records after its last entry end exactly where the
  // next segment begins.
  bool index_ok = false;
  if (auto content = read_file(seg.index_path); content && content.value().size() % kIndexEntryBytes == 0 &&
                                                !content.value().empty() && file_size > 0) {
    const std::string& c = content.value();
    std::vector<IndexEntry> entries(c.size() / kIndexEntryBytes);
    index_ok = true;
    for (std::size_t i = 0; i < entries.size() && index_ok; ++i) {
      entries[i] = {get<std::uint32_t>(c.data() + i * kIndexEntryBytes),
                    get<std::uint32_t>(c.data() + i * kIndexEntryBytes + 4)};
      if (i == 0) {
        index_ok = entries[0].relative_offset == 0 && entries[0].position == 0;
      } else {
        index_ok = entries[i].relative_offset > entries[i - 1].relative_offset &&
                   entries[i].position > entries[i - 1].position;
      }
      index_ok =
          index_ok && entries[i].position < file_size && seg.base + entries[i].relative_offset < next_base;
    }
    for (std::size_t i = 1; i < entries.size() && index_ok; ++i) {
      char header[16];
      auto n = pread_full(seg.read_fd.get(), header, sizeof header, entries[i].position, seg.log_path);
      if (!n) return n.error();
      index_ok = n.value() == sizeof header &&
                 get<std::uint64_t>(header + 8) == seg.base + entries[i].relative_offset;
    }
    if (index_ok) {
      RecordCursor first(seg.read_fd.get(), seg.log_path, 0, file_size);
      auto step = first.next();
      if (!step) return step.error();
      index_ok = step.value() == RecordCursor::Step::record && first.record().offset == seg.base;
      if (index_ok) seg.first_time_ms = first.record().append_time_ms;
    }
    if (index_ok) {
      RecordCursor cursor(seg.read_fd.get(), seg.log_path, entries.back().position, file_size);
      std::uint64_t expected = seg.base + entries.back().relative_offset;
      for (;;) {
        auto step = cursor.next();
        if (!step) return step.error();
        if (step.value() == RecordCursor::Step::end) {
          index_ok = expected == next_base;
          break;
        }
        if (step.value() != RecordCursor::Step::record || cursor.record().offset != expected) {
          index_ok = false;
          break;
        }
        seg.max_time_ms = std::max(seg.max_time_ms, cursor.record().append_time_ms);
        ++expected;
      }
    }
    if (index_ok) seg.index = std::move(entries);
  }
  if (index_ok) return ok();

  // Rebuild by scanning the whole segment. Records past a damaged one stay on disk but cannot be served.
  seg.index.clear();
  seg.first_time_ms = seg.max_time_ms = -1;
  RecordCursor cursor(seg.read_fd.get(), seg.log_path, 0, file_size);
  std::uint64_t expected = seg.base;
  std::uint64_t last_index_pos = 0;
  for (;;) {
    auto step = cursor.next();
    if (!step) return step.error();
    if (step.value() == RecordCursor::Step::end) break;
    const auto& rec = cursor.record();
    if (step.value() != RecordCursor::Step::record || rec.offset != expected) {
      SLUICE_LOG(
          broker, err,
          "[log={}] sealed segment {} is damaged at byte {} (offset {}); records from there to offset {} "
          "will not be served",
          options_.name, seg.log_path, cursor.position(), expected, next_base);
      break;
    }
    if (seg.index.empty() || rec.position - last_index_pos >= options_.index_interval_bytes) {
      seg.index.push_back(
          {static_cast<std::uint32_t>(rec.offset - seg.base), static_cast<std::uint32_t>(rec.position)});
      last_index_pos = rec.position;
    }
    if (seg.first_time_ms < 0) seg.first_time_ms = rec.append_time_ms;
    seg.max_time_ms = std::max(seg.max_time_ms, rec.append_time_ms);
    ++expected;
  }
  if (cursor.position() >= file_size && expected < next_base) {
    // Whole, but short of the next segment: the segment that held the offsets in between is gone.
    seg.end = expected;
    SLUICE_LOG(broker, err,
               "[log={}] offsets {} to {} are missing: {} ends before the next segment begins (a segment "
               "file was removed?); they cannot be served",
               options_.name, expected, next_base - 1, seg.log_path);
  }
  SLUICE_LOG(broker, info, "[log={}] rebuilt index of {} ({} entries)", options_.name, seg.index_path,
             seg.index.size());
  if (auto st = write_file_atomic(seg.index_path, encode_index(seg.index)); !st) {
    SLUICE_LOG(broker, warn, "[log={}] could not store rebuilt index: {}", options_.name,
               st.error().to_string());
  }
  return ok();
}

Status FileLog::recover_tail(Segment& seg) {
  seg.write_fd = UniqueFd(::open(seg.log_path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!seg.write_fd.valid()) return errno_error(seg.log_path, "cannot open segment for writing", errno);
  struct stat st {};
  if (::fstat(seg.read_fd.get(), &st) != 0) return errno_error(seg.log_path, "cannot stat segment", errno);
  const auto file_size = static_cast<std::uint64_t>(st.st_size);

  // Keep whole batches only: everything after the last record that ends a batch is dropped.
  RecordCursor cursor(seg.read_fd.get(), seg.log_path, 0, file_size);
  std::uint64_t expected = seg.base;
  std::uint64_t good_pos = 0;
  std::uint64_t good_end = seg.base;
  std::uint64_t last_index_pos = 0;
  std::vector<IndexEntry> batch_index;
  std::int64_t batch_first_time = -1;
  std::int64_t batch_max_time = -1;
  const char* stop = "end of segment, unfinished batch";
  std::optional<std::uint64_t> damage_pos;  // the record there is cut short, damaged or out of sequence
  for (;;) {
    auto step = cursor.next();
    if (!step) return step.error();
    if (step.value() == RecordCursor::Step::end) break;
    if (step.value() == RecordCursor::Step::torn) {
      stop = "partial record";
      damage_pos = cursor.position();  // or a damaged length
      break;
    }
    if (step.value() == RecordCursor::Step::corrupt) {
      stop = "CRC mismatch";
      damage_pos = cursor.position();
      break;
    }
    const auto& rec = cursor.record();
    if (rec.offset != expected) {
      stop = "offset out of sequence";
      damage_pos = rec.position;
      break;
    }
    if ((seg.index.empty() && batch_index.empty()) ||
        rec.position - last_index_pos >= options_.index_interval_bytes) {
      batch_index.push_back(
          {static_cast<std::uint32_t>(rec.offset - seg.base), static_cast<std::uint32_t>(rec.position)});
      last_index_pos = rec.position;
    }
    if (batch_first_time < 0) batch_first_time = rec.append_time_ms;
    batch_max_time = std::max(batch_max_time, rec.append_time_ms);
    ++expected;
    if (!rec.more_in_batch) {
      good_pos = cursor.position();
      good_end = expected;
      seg.index.insert(seg.index.end(), batch_index.begin(), batch_index.end());
      batch_index.clear();
      if (seg.first_time_ms < 0) seg.first_time_ms = batch_first_time;
      seg.max_time_ms = std::max(seg.max_time_ms, batch_max_time);
      batch_first_time = batch_max_time = -1;
    }
  }
  if (good_pos < file_size) {
    auto zero_filled = all_zero(seg.read_fd.get(), seg.log_path, good_pos, file_size);
    if (!zero_filled) return zero_filled.error();
    if (zero_filled.value()) {
      SLUICE_LOG(broker, debug, "[log={}] dropping {} byte(s) of zero-filled space after byte {} of {}",
                 options_.name, file_size - good_pos, good_pos, seg.log_path);
    } else {
      SLUICE_LOG(broker, warn, "[log={}] truncating torn tail of {}: {} byte(s) from byte {} ({})",
                 options_.name, seg.log_path, file_size - good_pos, good_pos, stop);
      if (damage_pos) {
        if (auto st = keep_cut_records(seg, *damage_pos, expected, good_pos, file_size); !st) return st;
      }
    }
    if (::ftruncate(seg.write_fd.get(), static_cast<off_t>(good_pos)) != 0) {
      return errno_error(seg.log_path, "cannot truncate torn tail", errno);
    }
    if (::fdatasync(seg.write_fd.get()) != 0) return errno_error(seg.log_path, "fdatasync failed", errno);
    if (!zero_filled.value()) {
      std::lock_guard lock(stats_mu_);
      stats_.truncated_bytes += file_size - good_pos;
    }
  }
  seg.size = seg.w_pos = seg.w_file_size = good_pos;
  seg.end = seg.w_end = good_end;
  seg.w_last_index_pos = seg.index.empty() ? 0 : seg.index.back().position;
  seg.w_first_time_ms = seg.first_time_ms;
  seg.w_max_time_ms = seg.max_time_ms;
  // The index is a hint (recovery rescans the tail): a full disk must not keep the log from opening.
  if (auto st = write_file_atomic(seg.index_path, encode_index(seg.index)); !st) {
    SLUICE_LOG(broker, warn,
               "[log={}] cannot store the index of the active segment (it is rebuilt at the "
               "next open): {}",
               options_.name, st.error().to_string());
    (void)remove_file(seg.index_path);
    return ok();
  }
  seg.index_fd = UniqueFd(::open(seg.index_path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
  if (!seg.index_fd.valid()) {
    SLUICE_LOG(broker, warn, "[log={}] cannot open the index of the active segment: {}", options_.name,
               errno_error(seg.index_path, "open failed", errno).to_string());
  }
  return ok();
}

Status FileLog::keep_cut_records(Segment& seg, std::uint64_t damage_pos, std::uint64_t damage_offset,
                                 std::uint64_t cut_pos, std::uint64_t file_size) {
  // A crash leaves whole records after a damaged one only within its last, unacknowledged group; disk
  // damage leaves acknowledged ones. Count the whole records past the damaged one.
  std::string bytes(static_cast<std::size_t>(file_size - cut_pos), '\0');
  auto got = pread_full(seg.read_fd.get(), bytes.data(), bytes.size(), cut_pos, seg.log_path);
  if (!got) return got.error();
  bytes.resize(got.value());
  // The size of the whole record at `pos` of `bytes` (CRC intact, a later offset than the damaged one's).
  auto whole_at = [&](std::uint64_t pos) -> std::uint64_t {
    if (pos > bytes.size() || bytes.size() - pos < kRecordHeaderBytes) return 0;
    const char* h = bytes.data() + pos;
    const std::uint64_t size = kRecordHeaderBytes + (get<std::uint32_t>(h) & kLengthMask);
    const std::uint64_t offset = get<std::uint64_t>(h + 8);
    if (offset <= damage_offset || offset - damage_offset > bytes.size() || size > bytes.size() - pos)
      return 0;
    return crc32c(h + 8, size - 8) == get<std::uint32_t>(h + 4) ? size : 0;
  };
  // Where the damaged record's length says the next one starts, or (that length damaged too) the first
  // position holding a whole record.
  const std::uint64_t at = damage_pos - cut_pos;
  std::uint64_t pos = at;
  if (bytes.size() - at >= kRecordHeaderBytes)
    pos += kRecordHeaderBytes + (get<std::uint32_t>(bytes.data() + at) & kLengthMask);
  if (pos > bytes.size() || whole_at(pos) == 0) {
    pos = at + 1;
    while (pos < bytes.size() && whole_at(pos) == 0) ++pos;
  }
  std::uint64_t whole = 0;
  std::uint64_t first = 0;
  std::uint64_t last = 0;
  for (std::uint64_t size; pos < bytes.size() && (size = whole_at(pos)) > 0; pos += size) {
    last = get<std::uint64_t>(bytes.data() + pos + 8);
    if (whole++ == 0) first = last;
  }
  if (whole == 0) return ok();
  const std::string kept = seg.log_path + ".cut-" + std::to_string(cut_pos);
  if (auto st = write_file_atomic(kept, bytes); !st) {
    SLUICE_LOG(broker, err,
               "[log={}] {} whole record(s) (offsets {} to {}) follow the damaged record at byte {} of {} "
               "and are cut with it (disk damage, if they were acknowledged); keeping a copy failed: {}",
               options_.name, whole, first, last, damage_pos, seg.log_path, st.error().to_string());
    return ok();
  }
  SLUICE_LOG(broker, err,
             "[log={}] {} whole record(s) (offsets {} to {}) follow the damaged record at byte {} of {} and "
             "are cut with it (disk damage, if they were acknowledged); the cut bytes are kept in {}",
             options_.name, whole, first, last, damage_pos, seg.log_path, kept);
  return ok();
}

void FileLog::append(std::vector<std::string> payloads, AppendCallback done) {
  if (payloads.empty()) {
    done(end_offset());
    return;
  }
  std::size_t bytes = 0;
  for (const auto& p : payloads) bytes += p.size() + kRecordHeaderBytes;
  std::optional<Error> rejected;
  {
    std::lock_guard lock(queue_mu_);
    if (closing_) {
      rejected = make_error(options_.name, "event log is closed", 503);
    } else if (broken_) {
      rejected =
          make_error(options_.name, "event log failed on an earlier I/O error and takes no appends", 500);
    } else if (bytes > options_.max_pending_bytes) {
      rejected =
          make_error(options_.name,
                     "batch of " + std::to_string(bytes) + " bytes is larger than the log's queue bound (" +
                         std::to_string(options_.max_pending_bytes) + " bytes)",
                     413);
    } else if (queue_.size() >= options_.max_pending_appends ||
               queued_bytes_ + bytes > options_.max_pending_bytes) {
      rejected = make_error(options_.name,
                            "event log is busy: " + std::to_string(queue_.size()) + " appends (" +
                                std::to_string(queued_bytes_) + " bytes) wait for the disk; retry later",
                            503);
    } else {
      bool was_empty = queue_.empty();
      queue_.push_back(PendingAppend{std::move(payloads), std::move(done), bytes, false});
      queued_bytes_ += bytes;
      ++enqueued_seq_;
      if (was_empty) queue_cv_.notify_one();
      return;
    }
  }
  {
    std::lock_guard lock(stats_mu_);
    ++stats_.rejected;
  }
  done(std::move(*rejected));
}

void FileLog::writer_loop() {
  std::vector<PendingAppend> group;
  for (;;) {
    {
      std::unique_lock lock(queue_mu_);
      queue_cv_.wait(lock, [&] { return !queue_.empty() || closing_; });
      if (queue_.empty()) break;  // closing and drained
      group.swap(queue_);
      queued_bytes_ = 0;
    }
    commit_group(group);
    {
      std::lock_guard lock(queue_mu_);
      completed_seq_ += group.size();
    }
    flushed_cv_.notify_all();
    group.clear();
    zero_fill_ahead();
  }
  write_index(*active_);
  // A clean close leaves the segment ending at its last record (recovery would drop the zeros anyway).
  if (!broken_ && active_->w_file_size > active_->w_pos) {
    Status st = trim_zero_fill(*active_);
    if (st && options_.fsync) st = sync_segment(*active_);
    if (!st) {
      SLUICE_LOG(broker, warn, "[log={}] cannot trim the zero-filled end at close (dropped at next open): {}",
                 options_.name, st.error().to_string());
    }
  }
}

void FileLog::write_index(Segment& seg) {
  if (!seg.index_fd.valid()) seg.w_unwritten_index.clear();  // no index file: rebuilt at the next open
  if (seg.w_unwritten_index.empty()) return;
  if (auto w = write_all(seg.index_fd.get(), seg.w_unwritten_index.data(), seg.w_unwritten_index.size(),
                         seg.index_path);
      !w) {
    SLUICE_LOG(broker, warn, "[log={}] index write failed (rebuilt at next open): {}", options_.name,
               w.error().to_string());
  }
  seg.w_unwritten_index.clear();
}

void FileLog::zero_fill_ahead() {
  Segment& seg = *active_;
  if (!options_.fsync || options_.zero_fill_bytes == 0 || broken_ || !seg.write_fd.valid()) return;
  if (seg.w_file_size >= seg.w_pos + options_.zero_fill_bytes / 2) return;
  const std::uint64_t from = std::max(seg.w_file_size, seg.w_pos);
  const std::uint64_t to = std::min(seg.w_pos + options_.zero_fill_bytes, segment_bytes_.load());
  if (to <= from) return;  // the segment rolls before it needs more
  static const std::string zeros(64 << 10, '\0');
  for (std::uint64_t pos = from; pos < to; pos += zeros.size()) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(zeros.size(), to - pos));
    if (auto st = pwrite_all(seg.write_fd.get(), zeros.data(), n, pos, seg.log_path); !st) {
      // Out of space, most likely: writes go on growing the file, and fail there if they must.
      SLUICE_LOG(broker, debug, "[log={}] zero-filling ahead stopped: {}", options_.name,
                 st.error().to_string());
      if (::ftruncate(seg.write_fd.get(), static_cast<off_t>(from)) != 0) return;
      seg.w_file_size = from;
      return;
    }
  }
  seg.w_file_size = to;
}

Status FileLog::trim_zero_fill(Segment& seg) {
  if (seg.w_file_size <= seg.w_pos) return ok();
  if (::ftruncate(seg.write_fd.get(), static_cast<off_t>(seg.w_pos)) != 0) {
    return errno_error(seg.log_path, "cannot truncate the zero-filled end", errno);
  }
  seg.w_file_size = seg.w_pos;
  return ok();
}

Status FileLog::sync_segment(Segment& seg) {
  auto start = std::chrono::steady_clock::now();
  int rc = ::fdatasync(seg.write_fd.get());
  int e = errno;
  auto elapsed = std::chrono::steady_clock::now() - start;
  {
    std::lock_guard lock(stats_mu_);
    ++stats_.fsyncs;
  }
  if (options_.on_fsync) options_.on_fsync(std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed));
  if (rc != 0) return errno_error(seg.log_path, "fdatasync failed", e);
  return ok();
}

namespace {
constexpr std::size_t kKeptWriteBuffer = 1 << 20;
}  // namespace

// Writes the group to disk (rolling segments as needed) and makes it durable. Publishes nothing.
Status FileLog::write_group(std::vector<PendingAppend>& group, std::vector<std::uint64_t>& first_offsets,
                            std::vector<std::shared_ptr<Segment>>& touched, bool& sync_failed) {
  const std::int64_t now = now_ms();
  const std::int64_t age_now = age_now_ms();
  bool force_sync = options_.fsync;
  std::string& buf = write_buf_;
  buf.clear();
  std::uint64_t buf_pos = active_->w_pos;
  touched.push_back(active_);

  auto flush_buf = [&]() -> Status {
    if (buf.empty()) return ok();
    auto st = pwrite_all(active_->write_fd.get(), buf.data(), buf.size(), buf_pos, active_->log_path);
    buf_pos += buf.size();
    buf.clear();
    return st;
  };

  for (auto& a : group) {
    force_sync = force_sync || a.force_sync;
    first_offsets.push_back(next_offset_);
    if (a.payloads.empty()) continue;
    // A batch never spans two segments, so a torn tail can only cut the newest segment.
    const bool full = active_->w_pos + a.bytes > segment_bytes_.load();
    const std::int64_t segment_ms = segment_ms_.load();
    const bool old =
        segment_ms > 0 && active_->w_first_time_ms >= 0 && age_now - active_->w_first_time_ms >= segment_ms;
    if (active_->w_pos > 0 && (full || old)) {
      if (auto st = flush_buf(); !st) return st;
      if (auto st = trim_zero_fill(*active_); !st) return st;
      if (auto st = sync_segment(*active_); !st) {
        sync_failed = true;
        return st;
      }
      auto next = create_segment(next_offset_);
      if (!next) return next.error();
      active_ = next.value();
      touched.push_back(active_);
      buf_pos = 0;
    }
    Segment& seg = *active_;
    for (std::size_t i = 0; i < a.payloads.size(); ++i) {
      const std::string& payload = a.payloads[i];
      const std::size_t at = buf.size();
      buf.resize(at + kRecordHeaderBytes + payload.size());
      char* h = buf.data() + at;
      std::uint32_t length = static_cast<std::uint32_t>(payload.size());
      if (i + 1 < a.payloads.size()) length |= kMoreInBatch;
      put(h, length);
      put(h + 8, next_offset_);
      put(h + 16, now);
      std::memcpy(h + kRecordHeaderBytes, payload.data(), payload.size());
      put(h + 4, crc32c(h + 8, kRecordHeaderBytes - 8 + payload.size()));
      if ((seg.index.empty() && seg.w_new_index.empty()) ||
          seg.w_pos - seg.w_last_index_pos >= options_.index_interval_bytes) {
        seg.w_new_index.push_back(
            {static_cast<std::uint32_t>(next_offset_ - seg.base), static_cast<std::uint32_t>(seg.w_pos)});
        seg.w_last_index_pos = seg.w_pos;
      }
      if (seg.w_first_time_ms < 0) seg.w_first_time_ms = now;
      seg.w_max_time_ms = std::max(seg.w_max_time_ms, now);
      seg.w_pos += kRecordHeaderBytes + payload.size();
      seg.w_end = ++next_offset_;
    }
  }
  if (auto st = flush_buf(); !st) return st;
  if (buf.capacity() > kKeptWriteBuffer) std::string().swap(buf);  // a rare large group keeps no memory
  active_->w_file_size = std::max(active_->w_file_size, active_->w_pos);
  if (force_sync) {
    if (auto st = sync_segment(*active_); !st) {
      sync_failed = true;
      return st;
    }
  }
  return ok();
}

void FileLog::commit_group(std::vector<PendingAppend>& group) {
  // State to restore if the group fails.
  const std::shared_ptr<Segment> start_seg = active_;
  const std::uint64_t start_pos = active_->w_pos;
  const std::uint64_t start_next = next_offset_;
  const std::uint64_t start_last_index_pos = active_->w_last_index_pos;
  const std::int64_t start_first_time = active_->w_first_time_ms;
  const std::int64_t start_max_time = active_->w_max_time_ms;

  std::vector<std::uint64_t>& first_offsets = first_offsets_;
  first_offsets.clear();
  std::vector<std::shared_ptr<Segment>> touched;
  bool sync_failed = false;
  Status st = broken_ ? Status(make_error(options_.name, "event log failed on an earlier I/O error", 500))
                      : write_group(group, first_offsets, touched, sync_failed);

  if (!st) {
    // Roll back to the last durable state so that nothing unacknowledged is served or kept.
    SLUICE_LOG(broker, err, "[log={}] group commit of {} append(s) failed: {}", options_.name, group.size(),
               st.error().to_string());
    bool rolled_back = !broken_;
    for (auto& seg : touched) {
      if (seg == start_seg) continue;
      seg->write_fd.reset();
      seg->index_fd.reset();
      rolled_back = remove_file(seg->log_path) && rolled_back;
      rolled_back = remove_file(seg->index_path) && rolled_back;
    }
    if (touched.size() > 1) rolled_back = fsync_dir(dir_) && rolled_back;
    active_ = start_seg;
    active_->w_pos = start_pos;
    active_->w_end = start_next;
    active_->w_last_index_pos = start_last_index_pos;
    active_->w_first_time_ms = start_first_time;
    active_->w_max_time_ms = start_max_time;
    active_->w_new_index.clear();
    next_offset_ = start_next;
    if (::ftruncate(active_->write_fd.get(), static_cast<off_t>(start_pos)) != 0) rolled_back = false;
    active_->w_file_size = start_pos;
    // After a failed fdatasync the kernel may have dropped dirty pages: nothing written since can be trusted.
    if (sync_failed || !rolled_back) broken_ = true;
    Error error = st.error();
    error.code = broken_ ? 500 : 503;
    for (auto& a : group) {
      try {
        a.done(error);
      } catch (const std::exception& e) {
        SLUICE_LOG(broker, err, "[log={}] append callback threw: {}", options_.name, e.what());
      }
    }
    return;
  }

  // Durable: publish the new records (and their index entries) to readers; the index files are written
  // in larger pieces (see kIndexWriteBytes).
  std::uint64_t records = 0;
  std::uint64_t bytes = 0;
  std::uint64_t appends = 0;
  for (const auto& a : group) {
    if (a.payloads.empty()) continue;
    ++appends;
    records += a.payloads.size();
    bytes += a.bytes;
  }
  {
    std::unique_lock lock(segments_mu_);
    for (auto& seg : touched) {
      seg->size = seg->w_pos;
      seg->end = seg->w_end;
      seg->first_time_ms = seg->w_first_time_ms;
      seg->max_time_ms = seg->w_max_time_ms;
      if (!seg->w_new_index.empty()) {
        seg->index.insert(seg->index.end(), seg->w_new_index.begin(), seg->w_new_index.end());
        seg->w_unwritten_index += encode_index(seg->w_new_index);
        seg->w_new_index.clear();
      }
      segments_.emplace(seg->base, seg);
    }
    end_offset_ = next_offset_;
  }
  for (auto& seg : touched) {
    if (seg != active_) {  // sealed: its index is complete, and it no longer needs write descriptors
      write_index(*seg);
      seg->write_fd.reset();
      seg->index_fd.reset();
    } else if (seg->w_unwritten_index.size() >= kIndexWriteBytes) {
      write_index(*seg);
    }
  }
  if (appends > 0) {
    std::lock_guard lock(stats_mu_);
    stats_.appends += appends;
    stats_.records += records;
    stats_.bytes += bytes;
    ++stats_.group_commits;
  }
  for (std::size_t i = 0; i < group.size(); ++i) {
    try {
      group[i].done(first_offsets[i]);
    } catch (const std::exception& e) {
      SLUICE_LOG(broker, err, "[log={}] append callback threw: {}", options_.name, e.what());
    }
  }
  if (records > 0) notify_subscribers(next_offset_);
  // A roll is when the log may have outgrown its bounds: a busy broker fills many segments between the
  // server's housekeeping passes, so waiting for the next one would let the disk hold many times maxBytes.
  if (touched.size() > 1 && (retention_bytes_.load() > 0 || retention_ms_.load() > 0)) {
    if (auto deleted = enforce_retention(); !deleted) {
      SLUICE_LOG(broker, warn, "[log={}] retention after a segment roll failed: {}", options_.name,
                 deleted.error().to_string());
    }
  }
}

void FileLog::notify_subscribers(std::uint64_t end) {
  std::lock_guard lock(subs_mu_);
  if (subs_.empty()) return;
  std::vector<std::pair<std::uint64_t, std::shared_ptr<std::function<void(std::uint64_t)>>>> snapshot(
      subs_.begin(), subs_.end());
  for (auto& [id, fn] : snapshot) {
    if (subs_.count(id) == 0) continue;  // unsubscribed by an earlier callback
    try {
      (*fn)(end);
    } catch (const std::exception& e) {
      SLUICE_LOG(broker, err, "[log={}] subscriber {} threw: {}", options_.name, id, e.what());
    }
  }
}

std::uint64_t FileLog::subscribe(std::function<void(std::uint64_t end_offset)> on_durable) {
  std::lock_guard lock(subs_mu_);
  std::uint64_t id = next_sub_id_++;
  subs_.emplace(id, std::make_shared<std::function<void(std::uint64_t)>>(std::move(on_durable)));
  return id;
}

void FileLog::unsubscribe(std::uint64_t id) {
  std::lock_guard lock(subs_mu_);
  subs_.erase(id);
}

Result<std::vector<LogRecord>> FileLog::read(std::uint64_t from, std::size_t max_records,
                                             std::size_t max_bytes) const {
  std::vector<LogRecord> out;
  if (max_records == 0) return out;
  const std::uint64_t end = end_offset_.load();
  std::size_t bytes = 0;
  while (out.size() < max_records) {
    from = std::max(from, start_offset_.load());
    if (from >= end) break;
    std::shared_ptr<Segment> seg;
    std::uint64_t seg_size = 0;
    std::uint64_t seg_end = 0;
    std::uint64_t position = 0;
    std::uint64_t expected = 0;
    {
      std::shared_lock lock(segments_mu_);
      auto it = segments_.upper_bound(from);
      if (it == segments_.begin()) continue;  // retention just removed it: start_offset_ has moved on
      --it;
      seg = it->second;
      seg_size = seg->size;
      seg_end = std::min(seg->end, end);
      if (from >= seg->end) {
        auto next = std::next(it);
        if (next != segments_.end() && from < next->first) {
          if (!out.empty()) return out;
          return make_error("offset " + std::to_string(from),
                            "missing from the log: no segment holds offsets " + std::to_string(from) +
                                " to " + std::to_string(next->first - 1) + " (" + seg->log_path +
                                " ends before them: a segment file was removed, or the log was written "
                                "without fsync)",
                            500);
        }
        if (next == segments_.end()) break;
        from = next->first;
        continue;
      }
      const std::uint32_t rel = static_cast<std::uint32_t>(from - seg->base);
      auto ix = std::upper_bound(seg->index.begin(), seg->index.end(), rel,
                                 [](std::uint32_t r, const IndexEntry& e) { return r < e.relative_offset; });
      if (ix != seg->index.begin()) {
        --ix;
        position = ix->position;
        expected = seg->base + ix->relative_offset;
      } else {
        position = 0;
        expected = seg->base;
      }
    }
    // Small reads (a dispatcher catching up record by record) should not pay for a large pread: start with
    // the index gap plus a little, and let the cursor grow its chunks when the caller wants more.
    const std::size_t first_chunk =
        std::min<std::size_t>(kFirstChunk, options_.index_interval_bytes +
                                               std::min<std::size_t>(max_bytes, max_records * 1024) + 4096);
    RecordCursor cursor(seg->read_fd.get(), seg->log_path, position, seg_size, first_chunk);
    while (expected < seg_end) {
      auto step = cursor.next();
      if (!step) return step.error();
      if (step.value() != RecordCursor::Step::record || cursor.record().offset != expected) {
        if (!out.empty()) return out;
        const char* what = step.value() == RecordCursor::Step::corrupt  ? "record fails its CRC32C check"
                           : step.value() == RecordCursor::Step::record ? "record carries the wrong offset"
                                                                        : "record is cut short";
        return corrupt_error(expected, seg->log_path, cursor.position(), what);
      }
      const auto& rec = cursor.record();
      ++expected;
      if (rec.offset < from) continue;
      if (!out.empty() && bytes + rec.payload.size() > max_bytes) return out;
      bytes += rec.payload.size();
      out.push_back(LogRecord{rec.offset, rec.append_time_ms, std::string(rec.payload)});
      if (out.size() >= max_records || bytes >= max_bytes) return out;
    }
    from = expected;
  }
  return out;
}

std::uint64_t FileLog::start_offset() const {
  return start_offset_.load();
}

std::uint64_t FileLog::end_offset() const {
  return end_offset_.load();
}

std::uint64_t FileLog::offset_for_time(std::int64_t unix_ms) const {
  std::shared_lock lock(segments_mu_);
  for (const auto& [base, seg] : segments_) {
    if (seg->max_time_ms < 0 || seg->max_time_ms >= unix_ms) return std::max(base, start_offset_.load());
  }
  return end_offset_.load();
}

Status FileLog::flush() {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  Status result = ok();
  {
    std::unique_lock lock(queue_mu_);
    if (closed_) return ok();
    if (closing_) {
      // close() is draining the queue: wait for what is already in it.
      const std::uint64_t target = enqueued_seq_;
      flushed_cv_.wait(lock, [&] { return completed_seq_ >= target || closed_; });
      if (broken_) return make_error(options_.name, "event log failed on an I/O error", 500);
      return ok();
    }
    const bool was_empty = queue_.empty();
    queue_.push_back(PendingAppend{{},
                                   [&](Result<std::uint64_t> r) {
                                     std::lock_guard l(mu);
                                     if (!r) result = r.error();
                                     done = true;
                                     cv.notify_all();
                                   },
                                   0,
                                   true});
    ++enqueued_seq_;
    if (was_empty) queue_cv_.notify_one();
  }
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return done; });
  return result;
}

void FileLog::close() {
  std::lock_guard close_lock(close_mu_);
  {
    std::lock_guard lock(queue_mu_);
    if (closed_) return;
    closing_ = true;
  }
  queue_cv_.notify_all();
  if (writer_.joinable()) {
    if (writer_.get_id() == std::this_thread::get_id()) {
      SLUICE_LOG(broker, err, "[log={}] close() called from a log callback; the writer stops by itself",
                 options_.name);
      writer_.detach();
    } else {
      writer_.join();
    }
  }
  {
    std::lock_guard lock(queue_mu_);
    closed_ = true;
  }
  flushed_cv_.notify_all();
}

Result<std::size_t> FileLog::enforce_retention() {
  std::lock_guard retention_lock(retention_mu_);
  const std::int64_t now = age_now_ms();
  const std::uint64_t retention_bytes = retention_bytes_.load();
  const std::int64_t retention_ms = retention_ms_.load();
  std::vector<std::shared_ptr<Segment>> victims;
  {
    std::unique_lock lock(segments_mu_);
    std::uint64_t total = 0;
    for (const auto& [base, seg] : segments_) total += seg->size;
    // The newest segment is always kept (it is, or is about to become, the one being written).
    while (segments_.size() > 1) {
      const auto& seg = segments_.begin()->second;
      // Deleted when the data after it already fills retention_bytes (Kafka's retention.bytes rule), when
      // its newest record is older than retention_ms, or when it holds nothing.
      const bool by_size = retention_bytes > 0 && total - seg->size >= retention_bytes;
      const bool by_age = retention_ms > 0 && seg->max_time_ms >= 0 && now - seg->max_time_ms > retention_ms;
      const bool empty = seg->end == seg->base;
      if (!by_size && !by_age && !empty) break;
      total -= seg->size;
      victims.push_back(seg);
      segments_.erase(segments_.begin());
    }
    start_offset_ = segments_.begin()->first;
  }
  if (victims.empty()) return std::size_t{0};
  for (const auto& seg : victims) {
    // Readers holding the segment keep reading through their open descriptor.
    if (auto st = remove_file(seg->log_path); !st) return st.error();
    (void)remove_file(seg->index_path);
    SLUICE_LOG(broker, info, "[log={}] retention deleted segment {} (offsets [{}, {}), {} bytes)",
               options_.name, seg->log_path, seg->base, seg->end, seg->size);
  }
  if (auto st = fsync_dir(dir_); !st) return st.error();
  std::lock_guard lock(stats_mu_);
  stats_.segments_deleted += victims.size();
  return victims.size();
}

FileLogStats FileLog::stats() const {
  std::lock_guard lock(stats_mu_);
  return stats_;
}

std::uint64_t FileLog::size_bytes() const {
  std::shared_lock lock(segments_mu_);
  std::uint64_t total = 0;
  for (const auto& [base, seg] : segments_) total += seg->size;
  return total;
}

std::size_t FileLog::segment_count() const {
  std::shared_lock lock(segments_mu_);
  return segments_.size();
}

}  // namespace sluice
