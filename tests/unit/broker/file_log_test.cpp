#include "broker/file_log.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "core/clock.hpp"
#include "core/fs.hpp"
#include "tests/support/process.hpp"
#include "tests/support/wait.hpp"

namespace sluice {
namespace {

using testing::TempDir;
using testing::wait_until;

std::string payload_for(std::uint64_t i, std::size_t size = 100) {
  std::string p = "event-" + std::to_string(i) + "-";
  while (p.size() < size) p += static_cast<char>('a' + (p.size() + i) % 26);
  p.resize(size);
  return p;
}

Result<std::uint64_t> append_sync(FileLog& log, std::vector<std::string> payloads) {
  std::promise<Result<std::uint64_t>> done;
  auto future = done.get_future();
  log.append(std::move(payloads), [&](Result<std::uint64_t> r) { done.set_value(std::move(r)); });
  return future.get();
}

std::unique_ptr<FileLog> open_log(const std::string& dir, FileLogOptions options = {},
                                  Clock& clock = RealClock::instance()) {
  auto log = FileLog::open(dir, std::move(options), clock);
  EXPECT_TRUE(log) << (log ? "" : log.error().to_string());
  return log ? std::move(log.value()) : nullptr;
}

/// A log holding records 0..count-1 (payload_for), appended one by one.
std::unique_ptr<FileLog> open_with_records(const std::string& dir, std::uint64_t count,
                                           FileLogOptions options = {},
                                           Clock& clock = RealClock::instance()) {
  auto log = open_log(dir, std::move(options), clock);
  for (std::uint64_t i = 0; log && i < count; ++i) EXPECT_TRUE(append_sync(*log, {payload_for(i)}));
  return log;
}

std::vector<LogRecord> read_all(const FileLog& log, std::uint64_t from = 0) {
  std::vector<LogRecord> all;
  for (;;) {
    auto batch = log.read(from, 1000);
    EXPECT_TRUE(batch) << (batch ? "" : batch.error().to_string());
    if (!batch || batch.value().empty()) return all;
    from = batch.value().back().offset + 1;
    for (auto& r : batch.value()) all.push_back(std::move(r));
  }
}

std::vector<std::string> files_with(const std::string& dir, const std::string& ext) {
  std::vector<std::string> out;
  auto names = list_dir(dir);
  EXPECT_TRUE(names);
  if (!names) return {};
  for (const auto& name : names.value()) {
    if (name.size() > ext.size() && name.compare(name.size() - ext.size(), ext.size(), ext) == 0) {
      out.push_back(dir + "/" + name);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::uint64_t file_size(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return static_cast<std::uint64_t>(st.st_size);
}

void flip_byte(const std::string& path, std::uint64_t position) {
  UniqueFd fd(::open(path.c_str(), O_RDWR));
  ASSERT_TRUE(fd.valid());
  char c = 0;
  ASSERT_EQ(::pread(fd.get(), &c, 1, static_cast<off_t>(position)), 1);
  c ^= 0x5A;
  ASSERT_EQ(::pwrite(fd.get(), &c, 1, static_cast<off_t>(position)), 1);
}

void truncate_to(const std::string& path, std::uint64_t size) {
  ASSERT_EQ(::truncate(path.c_str(), static_cast<off_t>(size)), 0);
}

void append_bytes(const std::string& path, const std::string& bytes) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_APPEND));
  ASSERT_TRUE(fd.valid());
  ASSERT_TRUE(write_all(fd.get(), bytes.data(), bytes.size(), path));
}

// Holds the writer thread inside the first append's callback so that a test can queue appends behind it.
class WriterGate {
 public:
  AppendCallback hold() {
    return [this](Result<std::uint64_t>) {
      std::unique_lock lock(mu_);
      entered_ = true;
      cv_.notify_all();
      cv_.wait(lock, [&] { return open_; });
    };
  }
  void wait_entered() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return entered_; });
  }
  void open() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool entered_ = false;
  bool open_ = false;
};

constexpr std::size_t kRecordBytes = FileLog::kRecordHeaderBytes + 100;  // with payload_for(i)

TEST(FileLog, EmptyLogHasNoRecords) {
  TempDir dir;
  auto log = open_log(dir.path());
  EXPECT_EQ(log->start_offset(), 0u);
  EXPECT_EQ(log->end_offset(), 0u);
  auto read = log->read(0, 10);
  ASSERT_TRUE(read);
  EXPECT_TRUE(read.value().empty());
  EXPECT_TRUE(log->read(5, 10).value().empty());
}

TEST(FileLog, AppendAndReadRoundTrip) {
  TempDir dir;
  ManualClock clock;
  auto log = open_log(dir.path(), {}, clock);
  auto first = append_sync(*log, {"a"});
  ASSERT_TRUE(first);
  EXPECT_EQ(first.value(), 0u);
  auto second = append_sync(*log, {"bb", "", std::string(100000, 'c')});
  ASSERT_TRUE(second);
  EXPECT_EQ(second.value(), 1u);
  EXPECT_EQ(log->end_offset(), 4u);

  auto records = read_all(*log);
  ASSERT_EQ(records.size(), 4u);
  const std::vector<std::string> expected = {"a", "bb", "", std::string(100000, 'c')};
  const auto now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(clock.wall().time_since_epoch()).count();
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(records[i].offset, i);
    EXPECT_EQ(records[i].payload, expected[i]);
    EXPECT_EQ(records[i].append_time_ms, now_ms);
  }
  // Reads from the middle.
  auto tail = log->read(2, 10);
  ASSERT_TRUE(tail);
  ASSERT_EQ(tail.value().size(), 2u);
  EXPECT_EQ(tail.value()[0].offset, 2u);
}

TEST(FileLog, ReadHonoursRecordAndByteLimits) {
  TempDir dir;
  auto log = open_log(dir.path());
  std::vector<std::string> batch;
  for (int i = 0; i < 50; ++i) batch.push_back(payload_for(i));
  ASSERT_TRUE(append_sync(*log, batch));
  EXPECT_EQ(log->read(0, 7).value().size(), 7u);
  EXPECT_EQ(log->read(0, 1000, 1000).value().size(), 10u);  // 10 x 100 bytes
  // A record larger than max_bytes still comes back alone.
  ASSERT_TRUE(append_sync(*log, {std::string(5000, 'x')}));
  auto big = log->read(50, 10, 100);
  ASSERT_TRUE(big);
  ASSERT_EQ(big.value().size(), 1u);
  EXPECT_EQ(big.value()[0].payload.size(), 5000u);
  EXPECT_TRUE(log->read(0, 0).value().empty());
}

TEST(FileLog, OffsetsStayConsecutiveAcrossSegmentsAndRestarts) {
  TempDir dir;
  FileLogOptions options;
  options.segment_bytes = 1000;
  options.index_interval_bytes = 256;
  {
    auto log = open_log(dir.path(), options);
    for (std::uint64_t i = 0; i < 100; ++i) {
      auto r = append_sync(*log, {payload_for(i)});
      ASSERT_TRUE(r);
      EXPECT_EQ(r.value(), i);
    }
    EXPECT_GT(log->segment_count(), 5u);
    EXPECT_EQ(files_with(dir.path(), ".log").size(), log->segment_count());
  }
  {
    auto log = open_log(dir.path(), options);
    EXPECT_EQ(log->start_offset(), 0u);
    EXPECT_EQ(log->end_offset(), 100u);
    EXPECT_EQ(log->stats().truncated_bytes, 0u);
    auto r = append_sync(*log, {payload_for(100), payload_for(101)});
    ASSERT_TRUE(r);
    EXPECT_EQ(r.value(), 100u);
    auto records = read_all(*log);
    ASSERT_EQ(records.size(), 102u);
    for (std::uint64_t i = 0; i < records.size(); ++i) {
      EXPECT_EQ(records[i].offset, i);
      EXPECT_EQ(records[i].payload, payload_for(i));
    }
    // Seeks into every segment through the sparse index.
    for (std::uint64_t from : {1u, 9u, 10u, 37u, 64u, 99u, 101u}) {
      auto one = log->read(from, 1);
      ASSERT_TRUE(one);
      ASSERT_EQ(one.value().size(), 1u);
      EXPECT_EQ(one.value()[0].offset, from);
      EXPECT_EQ(one.value()[0].payload, payload_for(from));
    }
  }
}

TEST(FileLog, BatchNeverSpansSegments) {
  TempDir dir;
  FileLogOptions options;
  options.segment_bytes = 1000;
  auto log = open_log(dir.path(), options);
  ASSERT_TRUE(append_sync(*log, {payload_for(0), payload_for(1), payload_for(2), payload_for(3)}));
  // 4 + 6 records do not fit in 1000 bytes: the whole second batch goes to a new segment.
  std::vector<std::string> batch;
  for (int i = 4; i < 10; ++i) batch.push_back(payload_for(i));
  ASSERT_TRUE(append_sync(*log, batch));
  auto logs = files_with(dir.path(), ".log");
  ASSERT_EQ(logs.size(), 2u);
  EXPECT_EQ(file_size(logs[0]), 4 * kRecordBytes);
  EXPECT_NE(logs[1].find("00000000000000000004.log"), std::string::npos);
  EXPECT_EQ(read_all(*log).size(), 10u);
}

TEST(FileLog, GroupCommitSharesOneFsyncAmongManyAppends) {
  TempDir dir;
  auto log = open_log(dir.path());
  WriterGate gate;
  log->append({"first"}, gate.hold());
  gate.wait_entered();  // the writer is busy: everything below queues up for one group

  constexpr int kAppends = 500;
  std::atomic<int> done{0};
  std::vector<std::uint64_t> firsts(kAppends);
  for (int i = 0; i < kAppends; ++i) {
    log->append({payload_for(static_cast<std::uint64_t>(i)), "second of batch"},
                [&, i](Result<std::uint64_t> r) {
                  ASSERT_TRUE(r);
                  firsts[static_cast<std::size_t>(i)] = r.value();
                  ++done;
                });
  }
  gate.open();
  ASSERT_TRUE(wait_until([&] { return done.load() == kAppends; }));
  auto stats = log->stats();
  EXPECT_EQ(stats.appends, kAppends + 1u);
  EXPECT_EQ(stats.records, 2u * kAppends + 1u);
  EXPECT_EQ(stats.group_commits, 2u);
  EXPECT_EQ(stats.fsyncs, 2u);
  // Appends keep their queue order; each batch is consecutive.
  for (int i = 0; i < kAppends; ++i) EXPECT_EQ(firsts[static_cast<std::size_t>(i)], 1u + 2u * i);
  EXPECT_EQ(log->end_offset(), 2u * kAppends + 1u);
}

TEST(FileLog, ConcurrentAppendersGetDistinctConsecutiveOffsets) {
  TempDir dir;
  FileLogOptions options;
  options.segment_bytes = 64 << 10;
  auto log = open_log(dir.path(), options);
  constexpr int kThreads = 16;
  constexpr int kPerThread = 100;
  std::vector<std::thread> threads;
  std::mutex mu;
  std::set<std::uint64_t> offsets;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto r = append_sync(*log, {"t" + std::to_string(t) + "-" + std::to_string(i)});
        ASSERT_TRUE(r);
        std::lock_guard lock(mu);
        offsets.insert(r.value());
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(offsets.size(), static_cast<std::size_t>(kThreads * kPerThread));
  EXPECT_EQ(*offsets.rbegin(), kThreads * kPerThread - 1u);
  auto stats = log->stats();
  EXPECT_EQ(stats.appends, static_cast<std::uint64_t>(kThreads * kPerThread));
  EXPECT_LT(stats.fsyncs, stats.appends);  // many appends shared an fdatasync
  auto records = read_all(*log);
  ASSERT_EQ(records.size(), offsets.size());
}

TEST(FileLog, RejectsAppendsWhenTheQueueIsFull) {
  TempDir dir;
  FileLogOptions options;
  options.max_pending_appends = 10;
  options.max_pending_bytes = 10 * 1024;
  auto log = open_log(dir.path(), options);
  WriterGate gate;
  log->append({"first"}, gate.hold());
  gate.wait_entered();

  std::atomic<int> accepted{0};
  for (int i = 0; i < 10; ++i) log->append({"x"}, [&](Result<std::uint64_t> r) { accepted += r ? 1 : 0; });
  // The 11th is refused at once, on this thread.
  std::optional<Result<std::uint64_t>> refused;
  log->append({"y"}, [&](Result<std::uint64_t> r) { refused = std::move(r); });
  ASSERT_TRUE(refused.has_value());
  ASSERT_FALSE(*refused);
  EXPECT_EQ(refused->error().code, 503);
  EXPECT_NE(refused->error().message.find("busy"), std::string::npos);
  // A batch larger than the whole byte bound can never fit: 413.
  std::optional<Result<std::uint64_t>> too_big;
  log->append({std::string(20 * 1024, 'z')}, [&](Result<std::uint64_t> r) { too_big = std::move(r); });
  ASSERT_TRUE(too_big.has_value());
  EXPECT_EQ(too_big->error().code, 413);
  EXPECT_EQ(log->stats().rejected, 2u);

  gate.open();
  ASSERT_TRUE(wait_until([&] { return accepted.load() == 10; }));
  // Room again once the writer drained the queue.
  EXPECT_TRUE(append_sync(*log, {"z"}));
}

TEST(FileLog, ByteBoundAlsoLimitsTheQueue) {
  TempDir dir;
  FileLogOptions options;
  options.max_pending_bytes = 1000;
  auto log = open_log(dir.path(), options);
  WriterGate gate;
  log->append({"first"}, gate.hold());
  gate.wait_entered();
  int refused = 0;
  for (int i = 0; i < 20; ++i) {
    log->append({std::string(100, 'x')}, [&](Result<std::uint64_t> r) {
      if (!r) {
        EXPECT_EQ(r.error().code, 503);
        ++refused;
      }
    });
  }
  EXPECT_EQ(refused, 12);  // 8 x 124 bytes fit in 1000
  gate.open();
  EXPECT_TRUE(log->flush());
}

TEST(FileLog, TornTailIsTruncatedOnOpen) {
  TempDir dir;
  {
    auto log = open_log(dir.path());
    for (std::uint64_t i = 0; i < 10; ++i) ASSERT_TRUE(append_sync(*log, {payload_for(i)}));
  }
  const std::string segment = files_with(dir.path(), ".log").at(0);
  append_bytes(segment, std::string(37, '\x07'));  // garbage after the last record
  {
    auto log = open_log(dir.path());
    EXPECT_EQ(log->end_offset(), 10u);
    EXPECT_EQ(log->stats().truncated_bytes, 37u);
    EXPECT_EQ(file_size(segment), 10 * kRecordBytes);
    auto r = append_sync(*log, {payload_for(10)});
    ASSERT_TRUE(r);
    EXPECT_EQ(r.value(), 10u);
  }
  // A record cut in the middle of its payload (the crash came before fdatasync).
  truncate_to(segment, 11 * kRecordBytes - 30);
  {
    auto log = open_log(dir.path());
    EXPECT_EQ(log->end_offset(), 10u);
    auto records = read_all(*log);
    ASSERT_EQ(records.size(), 10u);
    EXPECT_EQ(records.back().payload, payload_for(9));
  }
  // Cut inside the header.
  truncate_to(segment, 9 * kRecordBytes + 5);
  {
    auto log = open_log(dir.path());
    EXPECT_EQ(log->end_offset(), 9u);
  }
}

// What a kill -9 leaves: the files as they are while the log is open, copied to another directory.
void copy_files(const std::string& from, const std::string& to) {
  for (const auto& ext : {".log", ".index"}) {
    for (const auto& path : files_with(from, ext)) {
      std::filesystem::copy_file(path, to + path.substr(path.rfind('/')));
    }
  }
}

bool zero_from(const std::string& path, std::uint64_t position) {
  auto content = read_file(path);
  EXPECT_TRUE(content);
  if (!content) return false;
  return std::all_of(content.value().begin() + static_cast<std::ptrdiff_t>(position), content.value().end(),
                     [](char c) { return c == 0; });
}

FileLogOptions zero_filling() {
  FileLogOptions options;
  options.zero_fill_bytes = 64 << 10;
  return options;
}

TEST(FileLog, TheActiveSegmentIsZeroFilledAheadAndACrashLosesNothingOfIt) {
  TempDir dir;
  TempDir crashed;
  auto log = open_with_records(dir.path(), 10, zero_filling());
  ASSERT_TRUE(log);
  const std::string segment = files_with(dir.path(), ".log").at(0);
  EXPECT_GE(file_size(segment), 10 * kRecordBytes + (32 << 10));
  EXPECT_TRUE(zero_from(segment, 10 * kRecordBytes));
  EXPECT_EQ(log->size_bytes(), 10 * kRecordBytes);

  copy_files(dir.path(), crashed.path());
  {
    auto recovered = open_log(crashed.path(), zero_filling());
    EXPECT_EQ(recovered->end_offset(), 10u);
    EXPECT_EQ(recovered->stats().truncated_bytes, 0u);  // zero-filled space is not a torn tail
    EXPECT_EQ(file_size(files_with(crashed.path(), ".log").at(0)), 10 * kRecordBytes);
    auto records = read_all(*recovered);
    ASSERT_EQ(records.size(), 10u);
    EXPECT_EQ(records.back().payload, payload_for(9));
    auto r = append_sync(*recovered, {payload_for(10)});
    ASSERT_TRUE(r);
    EXPECT_EQ(r.value(), 10u);
  }
  log->close();
  EXPECT_EQ(file_size(segment), 10 * kRecordBytes);  // a clean close trims the zeros
}

TEST(FileLog, ATornRecordInZeroFilledSpaceIsTruncated) {
  TempDir dir;
  TempDir crashed;
  auto log = open_with_records(dir.path(), 3, zero_filling());
  ASSERT_TRUE(log);
  copy_files(dir.path(), crashed.path());
  const std::string segment = files_with(crashed.path(), ".log").at(0);
  const std::uint64_t size = file_size(segment);
  // The header of a record whose payload never reached the disk.
  UniqueFd fd(::open(segment.c_str(), O_WRONLY));
  ASSERT_TRUE(fd.valid());
  ASSERT_TRUE(pwrite_all(fd.get(), "\x64\0\0\0\x01\x02\x03\x04", 8, 3 * kRecordBytes, segment));
  auto recovered = open_log(crashed.path(), zero_filling());
  EXPECT_EQ(recovered->end_offset(), 3u);
  EXPECT_EQ(recovered->stats().truncated_bytes, size - 3 * kRecordBytes);
  EXPECT_EQ(file_size(segment), 3 * kRecordBytes);
}

TEST(FileLog, SealedSegmentsEndAtTheirLastRecord) {
  TempDir dir;
  FileLogOptions options = zero_filling();
  options.segment_bytes = 5 * kRecordBytes;
  {
    auto log = open_log(dir.path(), options);
    for (std::uint64_t i = 0; i < 12; ++i) ASSERT_TRUE(append_sync(*log, {payload_for(i)}));
    auto segments = files_with(dir.path(), ".log");
    ASSERT_EQ(segments.size(), 3u);
    EXPECT_EQ(file_size(segments[0]), 5 * kRecordBytes);
    EXPECT_EQ(file_size(segments[1]), 5 * kRecordBytes);
    EXPECT_EQ(file_size(segments[2]), 5 * kRecordBytes);  // zero-filled up to the segment size, no further
  }
  auto log = open_log(dir.path(), options);
  EXPECT_EQ(log->stats().truncated_bytes, 0u);
  EXPECT_EQ(read_all(*log).size(), 12u);
}

TEST(FileLog, PartlyWrittenBatchIsDroppedWhole) {
  TempDir dir;
  {
    auto log = open_log(dir.path());
    ASSERT_TRUE(append_sync(*log, {payload_for(0)}));
    ASSERT_TRUE(append_sync(*log, {payload_for(1), payload_for(2), payload_for(3)}));
  }
  const std::string segment = files_with(dir.path(), ".log").at(0);
  // Two whole records of the three-record batch survived the crash: neither may be served.
  truncate_to(segment, 3 * kRecordBytes);
  auto log = open_log(dir.path());
  EXPECT_EQ(log->end_offset(), 1u);
  EXPECT_EQ(log->stats().truncated_bytes, 2 * kRecordBytes);
  auto r = append_sync(*log, {"again"});
  ASSERT_TRUE(r);
  EXPECT_EQ(r.value(), 1u);
}

TEST(FileLog, CrcMismatchAtTheTailIsTruncated) {
  TempDir dir;
  {
    auto log = open_log(dir.path());
    for (std::uint64_t i = 0; i < 5; ++i) ASSERT_TRUE(append_sync(*log, {payload_for(i)}));
  }
  const std::string segment = files_with(dir.path(), ".log").at(0);
  flip_byte(segment, 4 * kRecordBytes + 50);  // payload of the last record
  auto log = open_log(dir.path());
  EXPECT_EQ(log->end_offset(), 4u);
  auto records = read_all(*log);
  ASSERT_EQ(records.size(), 4u);
  for (const auto& rec : records) EXPECT_EQ(rec.payload, payload_for(rec.offset));
}

TEST(FileLog, WholeRecordsCutWithDamageInTheNewestSegmentAreKeptBesideIt) {
  // A crash leaves no whole records after the damage but those of its last, unacknowledged group; bit
  // rot does. The log is still cut there (as Kafka does), but the bytes are kept for the operator.
  TempDir dir;
  { open_with_records(dir.path(), 10); }
  const std::string segment = files_with(dir.path(), ".log").at(0);
  std::string before;
  {
    auto content = read_file(segment);
    ASSERT_TRUE(content);
    before = content.value();
  }
  flip_byte(segment, 3 * kRecordBytes + 50);  // payload of offset 3
  auto log = open_log(dir.path());
  EXPECT_EQ(log->end_offset(), 3u);
  const std::string kept = segment + ".cut-" + std::to_string(3 * kRecordBytes);
  auto content = read_file(kept);
  ASSERT_TRUE(content) << "no copy of the cut bytes";
  ASSERT_EQ(content.value().size(), 7 * kRecordBytes);
  EXPECT_EQ(content.value().substr(kRecordBytes), before.substr(4 * kRecordBytes));
  log.reset();
  // The copy is not a segment: the log opens again as it was.
  log = open_log(dir.path());
  EXPECT_EQ(log->end_offset(), 3u);
  EXPECT_EQ(read_all(*log).size(), 3u);
}

TEST(FileLog, WholeRecordsAfterADamagedLengthAreFoundAndKept) {
  TempDir dir;
  { open_with_records(dir.path(), 10); }
  const std::string segment = files_with(dir.path(), ".log").at(0);
  flip_byte(segment, 3 * kRecordBytes + 2);  // the length of offset 3: it now runs past the file's end
  auto log = open_log(dir.path());
  EXPECT_EQ(log->end_offset(), 3u);
  auto content = read_file(segment + ".cut-" + std::to_string(3 * kRecordBytes));
  ASSERT_TRUE(content) << "no copy of the cut bytes";
  EXPECT_EQ(content.value().size(), 7 * kRecordBytes);
}

TEST(FileLog, ATornTailLeavesNoCopy) {
  TempDir dir;
  { open_with_records(dir.path(), 5); }
  const std::string segment = files_with(dir.path(), ".log").at(0);
  ASSERT_EQ(::truncate(segment.c_str(), static_cast<off_t>(4 * kRecordBytes + 30)), 0);
  auto log = open_log(dir.path());
  EXPECT_EQ(log->end_offset(), 4u);
  auto names = list_dir(dir.path());
  ASSERT_TRUE(names);
  for (const auto& name : names.value()) EXPECT_EQ(name.find(".cut-"), std::string::npos) << name;
}

TEST(FileLog, CorruptRecordInASealedSegmentIsNeverServed) {
  TempDir dir;
  FileLogOptions options;
  options.segment_bytes = 10 * kRecordBytes;
  options.index_interval_bytes = 1;  // an index entry per record: the damage is found by reads, not at open
  {
    auto log = open_log(dir.path(), options);
    for (std::uint64_t i = 0; i < 30; ++i) ASSERT_TRUE(append_sync(*log, {payload_for(i)}));
    ASSERT_EQ(log->segment_count(), 3u);
  }
  const std::string first_segment = files_with(dir.path(), ".log").at(0);
  flip_byte(first_segment, 5 * kRecordBytes + 40);  // payload of offset 5
  auto log = open_log(dir.path(), options);
  EXPECT_EQ(log->end_offset(), 30u);  // a sealed segment is not truncated

  auto prefix = log->read(0, 100);
  ASSERT_TRUE(prefix);
  ASSERT_EQ(prefix.value().size(), 5u);  // offsets 0..4, then it stops before the damage
  EXPECT_EQ(prefix.value().back().offset, 4u);

  auto damaged = log->read(5, 100);
  ASSERT_FALSE(damaged);
  EXPECT_EQ(damaged.error().subject, "offset 5");
  EXPECT_EQ(damaged.error().code, 500);
  EXPECT_NE(damaged.error().message.find("CRC32C"), std::string::npos);

  // Later records are still served (the index points past the damage).
  auto after = log->read(6, 100);
  ASSERT_TRUE(after);
  ASSERT_FALSE(after.value().empty());
  EXPECT_EQ(after.value().front().offset, 6u);
  EXPECT_EQ(after.value().front().payload, payload_for(6));
}

TEST(FileLog, CorruptionWhileOpenIsDetectedByReads) {
  TempDir dir;
  auto log = open_log(dir.path());
  for (std::uint64_t i = 0; i < 5; ++i) ASSERT_TRUE(append_sync(*log, {payload_for(i)}));
  flip_byte(files_with(dir.path(), ".log").at(0), 2 * kRecordBytes + 30);
  auto read = log->read(2, 10);
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error().subject, "offset 2");
}

/// Reads every `step`-th record below `end` on its own (each through the sparse index).
void expect_records_served(FileLog& log, std::uint64_t end, std::uint64_t step) {
  for (std::uint64_t from = 0; from < end; from += step) {
    auto one = log.read(from, 1);
    ASSERT_TRUE(one) << one.error().to_string();
    ASSERT_EQ(one.value().size(), 1u);
    EXPECT_EQ(one.value()[0].offset, from);
    EXPECT_EQ(one.value()[0].payload, payload_for(from));
  }
}

TEST(FileLog, MissingOrDamagedIndexIsRebuilt) {
  TempDir dir;
  FileLogOptions options;
  options.segment_bytes = 20 * kRecordBytes;
  options.index_interval_bytes = 3 * kRecordBytes;
  {
    auto log = open_log(dir.path(), options);
    for (std::uint64_t i = 0; i < 70; ++i) ASSERT_TRUE(append_sync(*log, {payload_for(i)}));
  }
  auto indexes = files_with(dir.path(), ".index");
  ASSERT_EQ(indexes.size(), 4u);
  const auto good_size = file_size(indexes[1]);
  EXPECT_GT(good_size, 8u);
  ASSERT_TRUE(remove_file(indexes[0]));                                 // missing
  ASSERT_TRUE(write_file_atomic(indexes[1], std::string(16, '\x7F')));  // points outside the file
  ASSERT_TRUE(
      write_file_atomic(indexes[2], std::string("\0\0\0\0\0\0\0\0\x01\0\0\0\x10\0\0\0", 16)));  // wrong
  ASSERT_TRUE(remove_file(indexes[3]));  // the active segment's index
  {
    auto log = open_log(dir.path(), options);
    EXPECT_EQ(log->end_offset(), 70u);
    expect_records_served(*log, 70, 7);
  }
  for (const auto& index : files_with(dir.path(), ".index")) EXPECT_EQ(file_size(index) % 8, 0u);
  EXPECT_EQ(file_size(indexes[1]), good_size);
  EXPECT_GT(file_size(indexes[0]), 8u);
}

TEST(FileLog, AnIndexEntryPointingAtAnotherRecordIsRebuilt) {
  TempDir dir;
  FileLogOptions options;
  options.segment_bytes = 20 * kRecordBytes;
  options.index_interval_bytes = 3 * kRecordBytes;
  {
    auto log = open_log(dir.path(), options);
    for (std::uint64_t i = 0; i < 50; ++i) ASSERT_TRUE(append_sync(*log, {payload_for(i)}));
  }
  const std::string index = files_with(dir.path(), ".index").at(0);
  auto content = read_file(index);
  ASSERT_TRUE(content);
  std::string shifted = content.value();
  ASSERT_GE(shifted.size(), 24u);
  for (std::size_t at = 8; at < shifted.size(); at += 8) ++shifted[at + 4];  // every position but the first
  ASSERT_TRUE(write_file_atomic(index, shifted));
  auto log = open_log(dir.path(), options);
  expect_records_served(*log, 50, 1);
}

TEST(FileLog, AFailedRollLeavesNoSegmentBehindAndLosesNothing) {
  TempDir dir;
  FileLogOptions options;
  options.segment_bytes = 8 * kRecordBytes;
  const std::string blocked_index = dir.path() + "/00000000000000000006.index";
  {
    auto log = open_log(dir.path(), options);
    for (std::uint64_t i = 0; i < 6; ++i) ASSERT_TRUE(append_sync(*log, {payload_for(i)}));
    // The roll to segment 6 cannot create its index (a directory is in the way).
    ASSERT_EQ(::mkdir(blocked_index.c_str(), 0755), 0);
    auto refused = append_sync(*log, {payload_for(6, 3 * 100)});
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, 503);
    EXPECT_EQ(files_with(dir.path(), ".log").size(), 1u);  // nothing of segment 6 is left
    // Smaller appends still fit in the old segment and are acknowledged.
    auto six = append_sync(*log, {payload_for(6)});
    ASSERT_TRUE(six) << six.error().to_string();
    EXPECT_EQ(six.value(), 6u);
  }
  ASSERT_EQ(::rmdir(blocked_index.c_str()), 0);
  auto log = open_log(dir.path(), options);
  EXPECT_EQ(log->end_offset(), 7u);
  auto seven = append_sync(*log, {payload_for(7)});
  ASSERT_TRUE(seven);
  EXPECT_EQ(seven.value(), 7u);  // no offset is given out twice
  auto all = read_all(*log);
  ASSERT_EQ(all.size(), 8u);
  for (std::uint64_t i = 0; i < 8; ++i) EXPECT_EQ(all[i].payload, payload_for(i));
}

TEST(FileLog, AnEmptyNewestSegmentIsDroppedAtOpen) {
  TempDir dir;
  FileLogOptions options;
  options.segment_bytes = 10 * kRecordBytes;
  { open_with_records(dir.path(), 25, options); }
  // What a roll interrupted by a crash leaves: the next segment's file, empty or zero-filled.
  ASSERT_TRUE(write_file_atomic(dir.path() + "/00000000000000000031.log", ""));
  ASSERT_TRUE(write_file_atomic(dir.path() + "/00000000000000000032.log", std::string(4096, '\0')));
  auto log = open_log(dir.path(), options);
  EXPECT_EQ(log->end_offset(), 25u);
  EXPECT_EQ(files_with(dir.path(), ".log").size(), 3u);
  auto next = append_sync(*log, {payload_for(25)});
  ASSERT_TRUE(next);
  EXPECT_EQ(next.value(), 25u);
  EXPECT_EQ(read_all(*log).size(), 26u);
}

TEST(FileLog, AMissingMiddleSegmentIsReportedByOffsetNotBlamedOnItsNeighbour) {
  TempDir dir;
  FileLogOptions options;
  options.segment_bytes = 10 * kRecordBytes;
  { open_with_records(dir.path(), 30, options); }
  auto logs = files_with(dir.path(), ".log");
  ASSERT_EQ(logs.size(), 3u);
  ASSERT_TRUE(remove_file(logs[1]));
  ASSERT_TRUE(remove_file(files_with(dir.path(), ".index").at(1)));
  auto log = open_log(dir.path(), options);
  EXPECT_EQ(log->end_offset(), 30u);
  auto first = log->read(0, 100);
  ASSERT_TRUE(first);
  EXPECT_EQ(first.value().size(), 10u);
  auto gap = log->read(10, 100);
  ASSERT_FALSE(gap);
  EXPECT_EQ(gap.error().subject, "offset 10");
  EXPECT_NE(gap.error().message.find("no segment holds offsets 10 to 19"), std::string::npos)
      << gap.error().message;
  auto last = log->read(20, 100);
  ASSERT_TRUE(last);
  EXPECT_EQ(last.value().size(), 10u);
}

TEST(FileLog, TheLogOpensWhenTheActiveSegmentsIndexCannotBeStored) {
  TempDir dir;
  { open_with_records(dir.path(), 5); }
  const std::string index = files_with(dir.path(), ".index").at(0);
  ASSERT_TRUE(remove_file(index));
  ASSERT_EQ(::mkdir(index.c_str(), 0755), 0);  // as a full disk would, the index cannot be written
  {
    auto log = open_log(dir.path());
    ASSERT_NE(log, nullptr);
    EXPECT_EQ(log->end_offset(), 5u);
    ASSERT_TRUE(append_sync(*log, {payload_for(5)}));
  }
  ASSERT_EQ(::rmdir(index.c_str()), 0);
  auto log = open_log(dir.path());
  EXPECT_EQ(read_all(*log).size(), 6u);
}

TEST(FileLog, IndexFilesAreWholeOnceSealedAndTheActiveOneCatchesUpAtClose) {
  TempDir dir;
  TempDir crashed;
  FileLogOptions options;
  options.segment_bytes = 20 * kRecordBytes;
  options.index_interval_bytes = 1;  // an entry per record: 20 per sealed segment
  {
    auto log = open_log(dir.path(), options);
    for (std::uint64_t i = 0; i < 50; ++i) ASSERT_TRUE(append_sync(*log, {payload_for(i)}));
    auto indexes = files_with(dir.path(), ".index");
    ASSERT_EQ(indexes.size(), 3u);
    EXPECT_EQ(file_size(indexes[0]), 20u * 8);  // written whole when the segment was sealed
    EXPECT_EQ(file_size(indexes[1]), 20u * 8);
    EXPECT_LT(file_size(indexes[2]), 10u * 8);  // the active one trails (written 4 KiB at a time)
    // What a kill -9 now would leave: every acknowledged record is served after reopening.
    std::filesystem::copy(
        dir.path(), crashed.path(),
        std::filesystem::copy_options::recursive | std::filesystem::copy_options::overwrite_existing);
  }
  EXPECT_EQ(file_size(files_with(dir.path(), ".index").at(2)), 10u * 8);
  auto reopened = open_log(crashed.path(), options);
  EXPECT_EQ(reopened->end_offset(), 50u);
  expect_records_served(*reopened, 50, 3);
}

TEST(FileLog, RetentionBySizeDeletesOldestSegmentsButNeverTheActiveOne) {
  TempDir dir;
  FileLogOptions options;
  options.segment_bytes = 10 * kRecordBytes;
  options.retention_bytes = 25 * kRecordBytes;
  auto log = open_log(dir.path(), options);
  for (std::uint64_t i = 0; i < 55; ++i) ASSERT_TRUE(append_sync(*log, {payload_for(i)}));
  // Kafka's rule: a segment goes when the newer ones alone hold at least retention_bytes. The roll to
  // [50, ...) applied it already ([0,10) and [10,20) went); the active segment has grown since.
  ASSERT_EQ(log->segment_count(), 4u);
  EXPECT_EQ(log->start_offset(), 20u);
  auto deleted = log->enforce_retention();
  ASSERT_TRUE(deleted);
  EXPECT_EQ(deleted.value(), 1u);  // kept: 10 + 10 + 5
  EXPECT_EQ(log->start_offset(), 30u);
  EXPECT_EQ(log->segment_count(), 3u);
  EXPECT_EQ(log->size_bytes(), 25 * kRecordBytes);
  EXPECT_EQ(files_with(dir.path(), ".log").size(), 3u);
  EXPECT_EQ(files_with(dir.path(), ".index").size(), 3u);
  auto records = log->read(0, 5);
  ASSERT_TRUE(records);
  EXPECT_EQ(records.value().front().offset, 30u);  // reads before start_offset() start there

  // Even a tiny bound keeps the active segment.
  options.retention_bytes = 1;
  log.reset();
  log = open_log(dir.path(), options);  // open() applies retention
  EXPECT_EQ(log->segment_count(), 1u);
  EXPECT_EQ(log->start_offset(), 50u);
  EXPECT_EQ(log->end_offset(), 55u);
  EXPECT_EQ(log->stats().segments_deleted, 2u);
}

TEST(FileLog, EveryRollAppliesRetentionSoABusyLogStaysWithinItsBound) {
  TempDir dir;
  FileLogOptions options;
  options.fsync = false;
  options.segment_bytes = 10 * kRecordBytes;
  options.retention_bytes = 25 * kRecordBytes;
  auto log = open_log(dir.path(), options);
  // No enforce_retention() call: only the writer's own rolls delete, as between the server's passes.
  for (std::uint64_t i = 0; i < 500; ++i) {
    ASSERT_TRUE(append_sync(*log, {payload_for(i)}));
    // Kept: sealed segments that with the newest hold less than the bound past the oldest, plus the
    // active one: at most the bound and two segments.
    ASSERT_LE(log->size_bytes(), options.retention_bytes + 2 * options.segment_bytes) << "after record " << i;
  }
  EXPECT_LE(files_with(dir.path(), ".log").size(), 5u);
  EXPECT_GE(log->stats().segments_deleted, 45u);
  EXPECT_EQ(log->end_offset(), 500u);
  EXPECT_EQ(read_all(*log, log->start_offset()).back().offset, 499u);
}

TEST(FileLog, SegmentsAreAnEighthOfTheRetentionBoundSoTheLogStaysCloseToIt) {
  TempDir dir;
  FileLogOptions options;
  options.fsync = false;
  options.retention_bytes = 16ull << 20;  // segments of 2 MiB instead of 64 MiB
  auto log = open_log(dir.path(), options);
  const std::string payload(256 << 10, 'x');
  for (int i = 0; i < 96; ++i) ASSERT_TRUE(append_sync(*log, {payload}));  // 24 MiB
  EXPECT_GE(log->segment_count() + log->stats().segments_deleted, 12u);
  ASSERT_TRUE(log->enforce_retention());
  // What is left: at most the bound plus one segment, and at least the bound minus one.
  const std::uint64_t kept = (log->end_offset() - log->start_offset()) * (payload.size() + 24);
  EXPECT_LE(kept, (16ull + 2) << 20);
  EXPECT_GE(kept, (16ull - 2) << 20);
}

TEST(FileLog, RetentionChangesWhileTheLogIsOpen) {
  TempDir dir;
  FileLogOptions options;
  options.fsync = false;
  auto log = open_log(dir.path(), options);
  const std::string payload(256 << 10, 'x');
  for (int i = 0; i < 16; ++i) ASSERT_TRUE(append_sync(*log, {payload}));  // 4 MiB, one segment
  ASSERT_TRUE(log->enforce_retention());
  EXPECT_EQ(log->start_offset(), 0u);
  log->set_retention(0, 2ull << 20);  // segments of 1 MiB (the smallest) from now on
  for (int i = 0; i < 16; ++i) ASSERT_TRUE(append_sync(*log, {payload}));
  ASSERT_TRUE(log->enforce_retention());
  EXPECT_GE(log->start_offset(), 16u);  // the 4 MiB segment is gone, and more
  EXPECT_LE(log->end_offset() - log->start_offset(), 12u);
}

TEST(FileLog, OffsetForTimeFindsTheOldestSegmentWithNewerRecords) {
  TempDir dir;
  ManualClock clock;
  FileLogOptions options;
  options.segment_bytes = 10 * kRecordBytes;
  auto log = open_log(dir.path(), options, clock);
  const std::int64_t t0 =
      std::chrono::duration_cast<std::chrono::milliseconds>(clock.wall().time_since_epoch()).count();
  for (std::uint64_t i = 0; i < 25; ++i) {
    if (i == 10 || i == 20) clock.advance(std::chrono::seconds(60));
    ASSERT_TRUE(append_sync(*log, {payload_for(i)}));
  }
  EXPECT_EQ(log->offset_for_time(t0 - 1000), 0u);
  EXPECT_EQ(log->offset_for_time(t0), 0u);
  EXPECT_EQ(log->offset_for_time(t0 + 30'000), 10u);
  EXPECT_EQ(log->offset_for_time(t0 + 120'000), 20u);
  EXPECT_EQ(log->offset_for_time(t0 + 200'000), 25u);
}

TEST(FileLog, RetentionByAgeFollowsTheClock) {
  TempDir dir;
  ManualClock clock;
  FileLogOptions options;
  options.segment_bytes = 10 * kRecordBytes;
  options.retention_ms = 60'000;
  auto log = open_log(dir.path(), options, clock);
  for (std::uint64_t i = 0; i < 25; ++i)
    ASSERT_TRUE(append_sync(*log, {payload_for(i)}));  // 3 segments at t0
  clock.advance(std::chrono::seconds(30));
  // t0 + 30 s: [20,25) is older than an eighth of the retention (7.5 s), so the next record starts a segment.
  for (std::uint64_t i = 25; i < 40; ++i) ASSERT_TRUE(append_sync(*log, {payload_for(i)}));
  ASSERT_EQ(log->segment_count(), 5u);  // [0,10) [10,20) [20,25) of t0, [25,35) [35,40) of t0 + 30 s

  EXPECT_EQ(log->enforce_retention().value(), 0u);
  clock.advance(std::chrono::seconds(31));  // t0 + 61 s: the first three are older than 60 s
  EXPECT_EQ(log->enforce_retention().value(), 3u);
  EXPECT_EQ(log->start_offset(), 25u);
  clock.advance(std::chrono::seconds(30));  // t0 + 91 s: [25,35) holds records of t0 + 30 s
  EXPECT_EQ(log->enforce_retention().value(), 1u);
  EXPECT_EQ(log->start_offset(), 35u);
  clock.advance(std::chrono::hours(24));
  EXPECT_EQ(log->enforce_retention().value(), 0u);  // the active segment stays
  EXPECT_EQ(log->end_offset(), 40u);
  EXPECT_EQ(read_all(*log).size(), 5u);
}

TEST(FileLog, QuietLogRollsByAgeSoRetentionCanExpireIt) {
  TempDir dir;
  ManualClock clock;
  FileLogOptions options;
  options.segment_ms = 10'000;
  options.retention_ms = 20'000;
  auto log = open_log(dir.path(), options, clock);
  ASSERT_TRUE(append_sync(*log, {"old"}));
  clock.advance(std::chrono::seconds(11));
  ASSERT_TRUE(append_sync(*log, {"new"}));
  EXPECT_EQ(log->segment_count(), 2u);
  clock.advance(std::chrono::seconds(20));
  EXPECT_EQ(log->enforce_retention().value(), 1u);
  auto records = read_all(*log);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].payload, "new");
}

/// The wall-clock tests' log: segments of 10 records, a day's retention (segment_ms keeps its 7 days).
FileLogOptions day_retention() {
  FileLogOptions options;
  options.segment_bytes = 10 * kRecordBytes;
  options.retention_ms = 24 * 3600 * 1000;
  return options;
}

TEST(FileLog, AForwardStepOfTheWallClockAgesNothingWhileTheLogIsOpen) {
  TempDir dir;
  ManualClock clock;
  const FileLogOptions options = day_retention();
  auto log = open_with_records(dir.path(), 15, options, clock);
  ASSERT_TRUE(log);
  ASSERT_EQ(log->segment_count(), 2u);  // [0,10) sealed, [10,15) active

  clock.step_wall(std::chrono::hours(24 * 10));
  ASSERT_TRUE(append_sync(*log, {payload_for(15)}));
  EXPECT_EQ(log->segment_count(), 2u);  // the active segment is not ten days old: no roll
  EXPECT_EQ(log->enforce_retention().value(), 0u);
  EXPECT_EQ(log->start_offset(), 0u);
  EXPECT_GT(read_all(*log).back().append_time_ms,
            read_all(*log).front().append_time_ms + 9LL * 24 * 3600 * 1000)
      << "records are stamped with the wall clock";

  clock.advance(std::chrono::hours(25));  // now [0,10) is older than a day on both clocks
  EXPECT_EQ(log->enforce_retention().value(), 1u);
  EXPECT_EQ(log->start_offset(), 10u);
}

TEST(FileLog, AStepOfTheWallClockBeforeOpenCountsAfterARestart) {
  TempDir dir;
  ManualClock clock;
  const FileLogOptions options = day_retention();
  auto log = open_with_records(dir.path(), 15, options, clock);
  ASSERT_TRUE(log);
  clock.step_wall(std::chrono::hours(24 * 10));
  EXPECT_EQ(log->enforce_retention().value(), 0u);
  log.reset();
  // Reopened, the log has only the wall clock to go by: [0,10) is ten days old.
  log = open_log(dir.path(), options, clock);
  EXPECT_EQ(log->start_offset(), 10u);
  EXPECT_EQ(log->stats().segments_deleted, 1u);
}

TEST(FileLog, ABackwardStepOfTheWallClockOnlyDelaysRetention) {
  TempDir dir;
  ManualClock clock;
  const FileLogOptions options = day_retention();
  auto log = open_with_records(dir.path(), 15, options, clock);
  ASSERT_TRUE(log);
  clock.step_wall(-std::chrono::hours(3));
  ASSERT_TRUE(append_sync(*log, {payload_for(15)}));
  clock.advance(std::chrono::hours(25));  // 22 hours on the wall clock
  EXPECT_EQ(log->enforce_retention().value(), 0u);
  clock.advance(std::chrono::hours(3));
  EXPECT_EQ(log->enforce_retention().value(), 1u);
  EXPECT_EQ(log->end_offset(), 16u);
}

TEST(FileLog, SubscribersHearOfEveryDurableEnd) {
  TempDir dir;
  auto log = open_log(dir.path());
  std::atomic<std::uint64_t> seen{0};
  std::atomic<int> calls{0};
  auto id = log->subscribe([&](std::uint64_t end) {
    seen = end;
    ++calls;
  });
  ASSERT_TRUE(append_sync(*log, {"a", "b"}));
  ASSERT_TRUE(wait_until([&] { return seen.load() == 2u; }));
  ASSERT_TRUE(append_sync(*log, {"c"}));
  ASSERT_TRUE(wait_until([&] { return seen.load() == 3u; }));
  log->unsubscribe(id);
  const int before = calls.load();
  ASSERT_TRUE(append_sync(*log, {"d"}));
  ASSERT_TRUE(log->flush());
  EXPECT_EQ(calls.load(), before);
  EXPECT_EQ(seen.load(), 3u);
}

TEST(FileLog, SubscriberMayUnsubscribeItselfAndAppend) {
  TempDir dir;
  auto log = open_log(dir.path());
  std::atomic<int> calls{0};
  std::atomic<std::uint64_t> id{0};
  std::atomic<bool> reply_done{false};
  id = log->subscribe([&](std::uint64_t) {
    ++calls;
    log->unsubscribe(id.load());
    log->append({"reply"}, [&](Result<std::uint64_t> r) { reply_done = r.has_value(); });
  });
  ASSERT_TRUE(append_sync(*log, {"a"}));
  ASSERT_TRUE(wait_until([&] { return reply_done.load(); }));
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(log->end_offset(), 2u);
}

TEST(FileLog, FlushWaitsForEverythingAppendedBefore) {
  TempDir dir;
  FileLogOptions options;
  options.fsync = false;
  auto log = open_log(dir.path(), options);
  std::atomic<int> done{0};
  for (int i = 0; i < 200; ++i)
    log->append({payload_for(static_cast<std::uint64_t>(i))}, [&](auto) { ++done; });
  ASSERT_TRUE(log->flush());
  EXPECT_EQ(done.load(), 200);
  EXPECT_EQ(log->end_offset(), 200u);
  EXPECT_GE(log->stats().fsyncs, 1u);  // flush fdatasyncs even with fsync off
}

TEST(FileLog, CloseCompletesQueuedAppendsAndRejectsLaterOnes) {
  TempDir dir;
  auto log = open_log(dir.path());
  std::atomic<int> ok_count{0};
  for (int i = 0; i < 100; ++i) log->append({"x"}, [&](Result<std::uint64_t> r) { ok_count += r ? 1 : 0; });
  log->close();
  EXPECT_EQ(ok_count.load(), 100);
  std::optional<Result<std::uint64_t>> late;
  log->append({"late"}, [&](Result<std::uint64_t> r) { late = std::move(r); });
  ASSERT_TRUE(late.has_value());
  EXPECT_EQ(late->error().code, 503);
  log->close();  // idempotent
  EXPECT_TRUE(log->flush());
  EXPECT_EQ(log->read(0, 1000).value().size(), 100u);  // reads keep working
}

TEST(FileLog, ADirectoryIsOpenedOnlyOnce) {
  TempDir dir;
  auto log = open_log(dir.path());
  auto second = FileLog::open(dir.path(), {}, RealClock::instance());
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, 409);
  log.reset();
  EXPECT_TRUE(FileLog::open(dir.path(), {}, RealClock::instance()));
}

TEST(FileLog, ReadersRunConcurrentlyWithTheWriter) {
  TempDir dir;
  FileLogOptions options;
  options.segment_bytes = 8 << 10;
  options.retention_bytes = 64 << 10;
  auto log = open_log(dir.path(), options);
  constexpr std::uint64_t kTotal = 3000;
  std::atomic<bool> writing{true};
  std::atomic<std::uint64_t> bad{0};
  std::atomic<std::uint64_t> verified{0};
  std::thread reader([&] {
    std::uint64_t from = 0;
    while (writing.load() || from < log->end_offset()) {
      auto batch = log->read(from, 64);
      if (!batch) {
        ++bad;
        return;
      }
      for (const auto& rec : batch.value()) {
        if (rec.offset < from || rec.payload != payload_for(rec.offset)) ++bad;
        from = rec.offset + 1;
        ++verified;
      }
    }
  });
  std::thread retention([&] {
    while (writing.load()) (void)log->enforce_retention();
  });
  std::atomic<std::uint64_t> acked{0};
  for (std::uint64_t i = 0; i < kTotal; i += 3) {
    log->append({payload_for(i), payload_for(i + 1), payload_for(i + 2)}, [&](auto r) {
      if (r) acked += 3;
    });
  }
  ASSERT_TRUE(log->flush());
  writing = false;
  reader.join();
  retention.join();
  EXPECT_EQ(acked.load(), kTotal);
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_GT(verified.load(), 0u);
  ASSERT_TRUE(
      log->enforce_retention());  // the racing thread may have stopped before the log grew past the bound
  EXPECT_GT(log->start_offset(), 0u);
  EXPECT_LE(log->size_bytes(), options.retention_bytes + options.segment_bytes);
}

}  // namespace
}  // namespace sluice
