// libFuzzer target: FileLog recovery. The input becomes the segment and index files of a log directory;
// FileLog::open() recovers it, everything it serves is read, a batch of two events is appended and the log
// is opened again. Aborts when recovery fails or serves what the files do not hold, when offsets are not
// contiguous, or when the appended batch (or anything served before) is not served after the reopen.
//
// Input: [flags u8][first base u8][gap to the second base u8], then up to four parts, each [length u16]
// [bytes] (the last one present may be cut short): the first segment, its index (flags & 1), the second
// segment (flags & 2; the first one is then sealed), its index (flags & 4). With flags & 8 the CRC of every
// framed record is recomputed before the files are written, so that mutations reach the checks behind it.
// With flags & 16 the log is opened with fsync and zero-filled space ahead of its records.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "broker/file_log.hpp"
#include "core/clock.hpp"
#include "core/crc32c.hpp"
#include "core/fs.hpp"
#include "core/log.hpp"
#include "core/protobuf_format.hpp"
#include "fuzz/work_dir.hpp"

namespace {

using sluice::FileLog;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "file_log_recover_fuzz: %s\n", what.c_str());
  std::abort();
}

struct Input {
  const std::uint8_t* p;
  std::size_t n;
  std::uint8_t byte() {
    if (n == 0) return 0;
    --n;
    return *p++;
  }
  std::string part() {
    std::size_t len = byte();
    len |= std::size_t{byte()} << 8;
    len = std::min(len, n);
    std::string out(reinterpret_cast<const char*>(p), len);
    p += len;
    n -= len;
    return out;
  }
};

void fix_crcs(std::string& segment) {
  std::size_t pos = 0;
  while (segment.size() - pos >= FileLog::kRecordHeaderBytes) {
    std::uint32_t length;
    std::memcpy(&length, segment.data() + pos, 4);
    const std::size_t size = FileLog::kRecordHeaderBytes + (length & 0x7FFFFFFFu);
    if (size > segment.size() - pos) return;
    const std::uint32_t crc = sluice::crc32c(segment.data() + pos + 8, size - 8);
    std::memcpy(segment.data() + pos + 4, &crc, 4);
    pos += size;
  }
}

/// Whether `bytes` holds a record with this offset, time and payload whose CRC is intact.
bool holds_record(const std::string& bytes, const sluice::LogRecord& rec) {
  char key[16];
  std::memcpy(key, &rec.offset, 8);
  std::memcpy(key + 8, &rec.append_time_ms, 8);
  for (std::size_t at = bytes.find(std::string_view(key, 16)); at != std::string::npos;
       at = bytes.find(std::string_view(key, 16), at + 1)) {
    if (at < 8 || bytes.size() - (at + 16) < rec.payload.size()) continue;
    std::uint32_t length;
    std::uint32_t crc;
    std::memcpy(&length, bytes.data() + at - 8, 4);
    std::memcpy(&crc, bytes.data() + at - 4, 4);
    if ((length & 0x7FFFFFFFu) != rec.payload.size()) continue;
    if (bytes.compare(at + 16, rec.payload.size(), rec.payload) != 0) continue;
    if (sluice::crc32c(bytes.data() + at, 16 + rec.payload.size()) == crc) return true;
  }
  return false;
}

/// Every record the log serves, by offset. A read that fails (a damaged record of a sealed segment, or
/// offsets missing between segments) is retried one offset further.
std::map<std::uint64_t, sluice::LogRecord> read_everything(const FileLog& log) {
  std::map<std::uint64_t, sluice::LogRecord> served;
  const std::uint64_t end = log.end_offset();
  std::uint64_t from = log.start_offset();
  while (from < end) {
    auto batch = log.read(from, 16, 1 << 16);
    if (!batch) {
      ++from;
      continue;
    }
    if (batch.value().empty()) fail("read(" + std::to_string(from) + ") is empty before end_offset()");
    std::uint64_t expected = from;
    for (auto& rec : batch.value()) {
      if (rec.offset != expected) {
        fail("read(" + std::to_string(from) + ") served offset " + std::to_string(rec.offset) + " where " +
             std::to_string(expected) + " was due");
      }
      ++expected;
      served.emplace(rec.offset, std::move(rec));
    }
    from = expected;
  }
  if (from != end) fail("records served past end_offset()");
  return served;
}

std::unique_ptr<FileLog> open_log(const std::string& dir, bool zero_fill) {
  sluice::FileLogOptions options;
  options.segment_bytes = 4096;
  options.index_interval_bytes = 64;
  options.fsync = zero_fill;
  options.zero_fill_bytes = zero_fill ? 8192 : 0;
  options.name = "fuzz";
  auto log = FileLog::open(dir, options, sluice::RealClock::instance());
  if (!log) fail("open failed: " + log.error().to_string());
  return std::move(log).value();
}

const std::string& event_payload() {
  static const std::string payload = [] {
    sluice::CloudEvent e;
    e.id = "appended-after-recovery";
    e.source = "/fuzz";
    e.type = "dev.sluice.fuzz";
    return sluice::to_protobuf(e);
  }();
  return payload;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string dir = [] {
    sluice::log::set_level("off");
    return sluice::fuzz::work_dir("file-log-fuzz") + "/log";
  }();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  std::filesystem::create_directories(dir);

  Input in{data, size};
  const std::uint8_t flags = in.byte();
  const std::uint64_t base1 = in.byte();
  const std::uint64_t base2 = base1 + 1 + in.byte();
  std::string segment1 = in.part();
  std::string index1 = flags & 1 ? in.part() : std::string();
  std::string segment2 = flags & 2 ? in.part() : std::string();
  std::string index2 = flags & 4 ? in.part() : std::string();
  if (flags & 8) {
    fix_crcs(segment1);
    fix_crcs(segment2);
  }
  auto write = [&](std::uint64_t base, const char* ext, const std::string& bytes) {
    char name[40];
    std::snprintf(name, sizeof name, "/%020llu%s", static_cast<unsigned long long>(base), ext);
    if (!sluice::write_file_atomic(dir + name, bytes)) fail(std::string("cannot write ") + name);
  };
  write(base1, ".log", segment1);
  if (flags & 1) write(base1, ".index", index1);
  if (flags & 2) write(base2, ".log", segment2);
  if (flags & 4) write(base2, ".index", index2);
  const std::string on_disk = segment1 + segment2;

  std::map<std::uint64_t, sluice::LogRecord> served;
  std::uint64_t start = 0;
  std::uint64_t end = 0;
  {
    auto log = open_log(dir, flags & 16);
    start = log->start_offset();
    end = log->end_offset();
    if (start > end) fail("start_offset() is past end_offset()");
    served = read_everything(*log);
    for (const auto& [offset, rec] : served) {
      if (!holds_record(on_disk, rec))
        fail("served offset " + std::to_string(offset) + ", which no file holds");
    }
    std::promise<sluice::Result<std::uint64_t>> appended;
    log->append({event_payload(), event_payload()},
                [&](sluice::Result<std::uint64_t> r) { appended.set_value(std::move(r)); });
    auto first = appended.get_future().get();
    if (!first) fail("append after recovery failed: " + first.error().to_string());
    if (first.value() != end) fail("append after recovery got offset " + std::to_string(first.value()));
  }

  auto log = open_log(dir, flags & 16);
  if (log->start_offset() != start || log->end_offset() != end + 2) {
    fail("reopened log holds [" + std::to_string(log->start_offset()) + ", " +
         std::to_string(log->end_offset()) + "), not [" + std::to_string(start) + ", " +
         std::to_string(end + 2) + ")");
  }
  auto again = read_everything(*log);
  for (std::uint64_t offset = end; offset < end + 2; ++offset) {
    auto it = again.find(offset);
    if (it == again.end() || it->second.payload != event_payload()) fail("the appended batch is not served");
    if (!sluice::parse_protobuf(it->second.payload, sluice::Validation::stored))
      fail("appended event garbled");
    again.erase(it);
  }
  for (const auto& [offset, rec] : served) {
    auto found = again.find(offset);
    if (found == again.end() || found->second.payload != rec.payload ||
        found->second.append_time_ms != rec.append_time_ms) {
      fail("offset " + std::to_string(offset) + " is no longer served after the reopen");
    }
  }
  if (again.size() != served.size()) fail("the reopened log serves records it did not serve before");
  return 0;
}
