#include "broker/cursor_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/crc32c.hpp"
#include "core/log.hpp"

namespace sluice {

namespace {

constexpr char kCommit = 'C';
constexpr char kErase = 'E';
constexpr std::size_t kHeaderBytes = 8;         // length u32, crc32c u32
constexpr std::size_t kBodyFixedBytes = 1 + 8;  // op u8, offset u64
constexpr std::size_t kMaxNameBytes = 64 << 10;

void encode_record(std::string& out, char op, const std::string& trigger, std::uint64_t offset) {
  const std::uint32_t length = static_cast<std::uint32_t>(kBodyFixedBytes + trigger.size());
  const std::size_t at = out.size();
  out.resize(at + kHeaderBytes + length);
  char* p = out.data() + at;
  std::memcpy(p, &length, 4);
  p[8] = op;
  std::memcpy(p + 9, &offset, 8);
  std::memcpy(p + 17, trigger.data(), trigger.size());
  const std::uint32_t crc = crc32c(p + kHeaderBytes, std::size_t{length});
  std::memcpy(p + 4, &crc, 4);
}

/// The body length of the whole, intact record at `pos` of `content`; 0 when there is none.
std::size_t whole_record_at(const std::string& content, std::size_t pos) {
  if (content.size() - pos < kHeaderBytes) return 0;
  std::uint32_t length;
  std::uint32_t crc;
  std::memcpy(&length, content.data() + pos, 4);
  std::memcpy(&crc, content.data() + pos + 4, 4);
  if (length < kBodyFixedBytes || length > kBodyFixedBytes + kMaxNameBytes ||
      content.size() - pos - kHeaderBytes < length) {
    return 0;
  }
  const char* body = content.data() + pos + kHeaderBytes;
  if (crc32c(body, std::size_t{length}) != crc) return 0;
  if (body[0] != kCommit && body[0] != kErase) return 0;
  return length;
}

std::size_t record_bytes(const std::string& trigger) {
  return kHeaderBytes + kBodyFixedBytes + trigger.size();
}

}  // namespace

CursorStore::CursorStore(std::string path, CursorStoreOptions options)
    : path_(std::move(path)), options_(options) {}

Result<std::unique_ptr<CursorStore>> CursorStore::open(const std::string& path_or_dir,
                                                       CursorStoreOptions options) {
  std::string path = path_or_dir;
  struct stat st {};
  if (::stat(path_or_dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    path = path_or_dir + "/cursors.journal";
  } else if (auto made = make_dirs(parent_dir(path_or_dir)); !made) {
    return made.error();
  }
  std::unique_ptr<CursorStore> store(new CursorStore(path, options));
  if (auto replayed = store->replay(); !replayed) return replayed.error();
  if (options.sync_interval.count() > 0)
    store->syncer_ = std::thread([s = store.get()] { s->syncer_loop(); });
  return store;
}

Status CursorStore::replay() {
  const bool existed = ::access(path_.c_str(), F_OK) == 0;
  std::string content;
  if (existed) {
    auto read = read_file(path_);
    if (!read) return read.error();
    content = std::move(read.value());
  }
  std::size_t pos = 0;
  bool skipped = false;
  while (content.size() - pos >= kHeaderBytes) {
    const std::size_t length = whole_record_at(content, pos);
    if (length == 0) {
      // Damaged. If a whole record follows, this is not a torn tail: skip to it and keep the later
      // commits (a trigger whose only record was in the damage has lost its cursor, and starts at the
      // beginning of its log).
      std::size_t next = pos + 1;
      while (next + kHeaderBytes <= content.size() && whole_record_at(content, next) == 0) ++next;
      if (next + kHeaderBytes > content.size()) break;
      SLUICE_LOG(broker, err, "cursor journal {}: skipping {} damaged byte(s) at byte {}", path_, next - pos,
                 pos);
      skipped = true;
      pos = next;
      continue;
    }
    const char* body = content.data() + pos + kHeaderBytes;
    std::uint64_t offset;
    std::memcpy(&offset, body + 1, 8);
    std::string trigger(body + kBodyFixedBytes, length - kBodyFixedBytes);
    if (body[0] == kCommit) {
      cursors_[trigger] = offset;
    } else {
      cursors_.erase(trigger);
    }
    pos += kHeaderBytes + length;
  }
  fd_ = UniqueFd(::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!fd_.valid()) return errno_error(path_, "cannot open cursor journal", errno);
  if (skipped) return compact_locked();  // a journal without the damage
  if (pos < content.size()) {
    // A torn or damaged tail: the commits in it were never synced, the dispatcher replays from earlier.
    // It may have held a trigger's only record (its first commit, or the last one of a compacted
    // journal): such a trigger starts at the beginning of the log, not at its end.
    SLUICE_LOG(broker, warn,
               "cursor journal {}: dropping {} damaged byte(s) at byte {}; a trigger left without a cursor "
               "starts at the beginning of its log",
               path_, content.size() - pos, pos);
    if (::ftruncate(fd_.get(), static_cast<off_t>(pos)) != 0) {
      return errno_error(path_, "cannot truncate damaged tail", errno);
    }
    if (::fdatasync(fd_.get()) != 0) return errno_error(path_, "fdatasync failed", errno);
  }
  if (!existed) {
    if (auto st = fsync_dir(parent_dir(path_)); !st) return st;
  }
  journal_bytes_ = pos;
  return ok();
}

CursorStore::~CursorStore() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (syncer_.joinable()) syncer_.join();
  std::lock_guard lock(mu_);
  if (written_seq_ > synced_seq_ && fd_.valid()) (void)::fdatasync(fd_.get());
}

bool CursorStore::needs_compaction() const {
  if (journal_bytes_ < options_.compact_min_bytes) return false;
  std::uint64_t live = 0;
  for (const auto& [trigger, offset] : cursors_) live += record_bytes(trigger);
  return journal_bytes_ > options_.compact_ratio * live;
}

Status CursorStore::compact_locked() {
  std::string snapshot;
  for (const auto& [trigger, offset] : cursors_) encode_record(snapshot, kCommit, trigger, offset);
  if (auto st = write_file_atomic(path_, snapshot); !st) return st;
  UniqueFd fd(::open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
  if (!fd.valid()) return errno_error(path_, "cannot reopen cursor journal", errno);
  fd_ = std::move(fd);
  journal_bytes_ = snapshot.size();
  ++compactions_;
  return ok();
}

Status CursorStore::append_record(char op, const std::string& trigger, std::uint64_t offset) {
  if (trigger.size() > kMaxNameBytes)
    return make_error(trigger.substr(0, 64), "trigger name is too long", 400);
  if (sync_error_) {
    // After a failed fdatasync the journal's pages may be gone: rewrite it whole from memory (at most
    // once a second), and carry on once that works.
    const auto now = std::chrono::steady_clock::now();
    if (now - last_repair_ < std::chrono::seconds(1)) return *sync_error_;
    last_repair_ = now;
    if (auto st = compact_locked(); !st) return *sync_error_;
    SLUICE_LOG(broker, info, "cursor journal {}: rewritten after \"{}\"; commits are durable again", path_,
               sync_error_->to_string());
    sync_error_.reset();
    synced_seq_ = written_seq_;
    synced_cv_.notify_all();
  }
  std::string record;
  encode_record(record, op, trigger, offset);
  if (auto st = write_all(fd_.get(), record.data(), record.size(), path_); !st) {
    // Drop a partial record so that later records stay readable.
    (void)::ftruncate(fd_.get(), static_cast<off_t>(journal_bytes_));
    return st;
  }
  journal_bytes_ += record.size();
  ++written_seq_;
  if (options_.sync_interval.count() == 0) {
    if (needs_compaction()) {
      if (auto st = compact_locked(); !st) return st;
    } else if (::fdatasync(fd_.get()) != 0) {
      sync_error_ = errno_error(path_, "fdatasync failed", errno);
      return *sync_error_;
    }
    ++syncs_;
    synced_seq_ = written_seq_;
  } else {
    cv_.notify_one();
  }
  return ok();
}

std::unique_ptr<CursorStore> CursorStore::in_memory(
    std::function<void(const std::string& trigger, std::uint64_t offset)> on_commit) {
  auto store = std::unique_ptr<CursorStore>(new CursorStore("", CursorStoreOptions{}));
  store->on_commit_ = std::move(on_commit);
  return store;
}

Status CursorStore::commit(const std::string& trigger, std::uint64_t offset) {
  std::unique_lock lock(mu_);
  auto it = cursors_.find(trigger);
  if (it != cursors_.end() && it->second == offset) return ok();
  if (path_.empty()) {
    cursors_[trigger] = offset;
    lock.unlock();
    if (on_commit_) on_commit_(trigger, offset);
    return ok();
  }
  if (auto st = append_record(kCommit, trigger, offset); !st) return st;
  cursors_[trigger] = offset;
  return ok();
}

std::optional<std::uint64_t> CursorStore::load(const std::string& trigger) const {
  std::lock_guard lock(mu_);
  auto it = cursors_.find(trigger);
  if (it == cursors_.end()) return std::nullopt;
  return it->second;
}

Status CursorStore::erase(const std::string& trigger) {
  std::lock_guard lock(mu_);
  if (cursors_.count(trigger) == 0) return ok();
  if (path_.empty()) {
    cursors_.erase(trigger);
    return ok();
  }
  if (auto st = append_record(kErase, trigger, 0); !st) return st;
  cursors_.erase(trigger);
  return ok();
}

std::map<std::string, std::uint64_t> CursorStore::all() const {
  std::lock_guard lock(mu_);
  return cursors_;
}

Status CursorStore::sync() {
  std::unique_lock lock(mu_);
  const std::uint64_t target = written_seq_;
  if (synced_seq_ >= target) return sync_error_ ? Status(*sync_error_) : ok();
  sync_requested_ = true;
  cv_.notify_all();
  synced_cv_.wait(lock, [&] { return synced_seq_ >= target || sync_error_.has_value(); });
  if (sync_error_) return *sync_error_;
  return ok();
}

std::uint64_t CursorStore::sync_count() const {
  std::lock_guard lock(mu_);
  return syncs_;
}

std::uint64_t CursorStore::compaction_count() const {
  std::lock_guard lock(mu_);
  return compactions_;
}

void CursorStore::syncer_loop() {
  std::unique_lock lock(mu_);
  auto last_sync = std::chrono::steady_clock::now() - options_.sync_interval;
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || written_seq_ > synced_seq_; });
    if (written_seq_ <= synced_seq_) break;  // stopping and nothing to sync
    // Coalesce: at most one fdatasync per sync_interval unless someone waits in sync() or we stop.
    cv_.wait_until(lock, last_sync + options_.sync_interval, [&] { return stopping_ || sync_requested_; });
    sync_requested_ = false;
    const std::uint64_t target = written_seq_;
    if (needs_compaction()) {
      // The snapshot holds every commit so far and is fsynced by write_file_atomic.
      if (auto st = compact_locked(); !st) {
        SLUICE_LOG(broker, err, "cursor journal compaction failed: {}", st.error().to_string());
        sync_error_ = st.error();
      }
    } else {
      // fd_ is replaced only here (compaction) and by append_record's repair, which runs only after a
      // failure, while no commit is written and this thread waits for one.
      const int fd = fd_.get();
      lock.unlock();
      const int rc = ::fdatasync(fd);
      const int e = errno;
      lock.lock();
      if (rc != 0) {
        sync_error_ = errno_error(path_, "fdatasync failed", e);
        SLUICE_LOG(broker, err, "cursor journal: {}", sync_error_->to_string());
      }
    }
    ++syncs_;
    synced_seq_ = target;
    last_sync = std::chrono::steady_clock::now();
    synced_cv_.notify_all();
  }
  synced_cv_.notify_all();
}

}  // namespace sluice
