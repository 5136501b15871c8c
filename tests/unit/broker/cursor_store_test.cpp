#include "broker/cursor_store.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <thread>
#include <vector>

#include "core/fs.hpp"
#include "tests/support/process.hpp"

// Disk failures cannot be made here on demand: this test binary's own fdatasync() fails while
// `fail_fdatasync` is set (the store's calls resolve to it), and passes through to the kernel otherwise.
namespace {
std::atomic<bool> fail_fdatasync{false};
}  // namespace

extern "C" int fdatasync(int fd) {
  if (fail_fdatasync.load()) {
    errno = EIO;
    return -1;
  }
  return static_cast<int>(::syscall(SYS_fdatasync, fd));
}

namespace sluice {
namespace {

using testing::TempDir;

std::unique_ptr<CursorStore> open_store(const std::string& path, CursorStoreOptions options = {}) {
  auto store = CursorStore::open(path, options);
  EXPECT_TRUE(store) << (store ? "" : store.error().to_string());
  return store ? std::move(store.value()) : nullptr;
}

std::uint64_t size_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0);
  return static_cast<std::uint64_t>(st.st_size);
}

TEST(CursorStore, CommitLoadErase) {
  TempDir dir;
  auto store = open_store(dir.path());
  EXPECT_EQ(store->path(), dir.path() + "/cursors.journal");
  EXPECT_FALSE(store->load("t1").has_value());
  ASSERT_TRUE(store->commit("t1", 10));
  ASSERT_TRUE(store->commit("t2", 3));
  ASSERT_TRUE(store->commit("t1", 12));
  EXPECT_EQ(store->load("t1"), 12u);
  EXPECT_EQ(store->load("t2"), 3u);
  ASSERT_TRUE(store->erase("t2"));
  EXPECT_FALSE(store->load("t2").has_value());
  ASSERT_TRUE(store->erase("never-there"));
  EXPECT_EQ(store->all(), (std::map<std::string, std::uint64_t>{{"t1", 12}}));
}

TEST(CursorStore, CursorsSurviveReopen) {
  TempDir dir;
  {
    auto store = open_store(dir.path());
    ASSERT_TRUE(store->commit("default/summarize", 41));
    ASSERT_TRUE(store->commit("default/route", 7));
    ASSERT_TRUE(store->commit("default/summarize", 42));
    ASSERT_TRUE(store->commit("gone", 1));
    ASSERT_TRUE(store->erase("gone"));
    ASSERT_TRUE(store->sync());
  }
  auto store = open_store(dir.path());
  EXPECT_EQ(store->load("default/summarize"), 42u);
  EXPECT_EQ(store->load("default/route"), 7u);
  EXPECT_FALSE(store->load("gone").has_value());
}

TEST(CursorStore, CommitIsInTheKernelBeforeItReturns) {
  // A process crash right after commit() (no sync, no destructor) must not lose it: reopen the same file
  // from a second store while the first is still open.
  TempDir dir;
  auto first = open_store(dir.path());
  ASSERT_TRUE(first->commit("t", 99));
  auto second = open_store(dir.path());
  EXPECT_EQ(second->load("t"), 99u);
}

TEST(CursorStore, AcceptsAFilePathAndCreatesItsParents) {
  TempDir dir;
  const std::string path = dir.path() + "/brokers/default/cursors";
  {
    auto store = open_store(path);
    EXPECT_EQ(store->path(), path);
    ASSERT_TRUE(store->commit("t", 5));
  }
  EXPECT_EQ(open_store(path)->load("t"), 5u);
}

TEST(CursorStore, FrequentCommitsShareFsyncs) {
  TempDir dir;
  CursorStoreOptions options;
  options.sync_interval = std::chrono::milliseconds(50);
  auto store = open_store(dir.path(), options);
  for (std::uint64_t i = 1; i <= 2000; ++i) ASSERT_TRUE(store->commit("t" + std::to_string(i % 4), i));
  ASSERT_TRUE(store->sync());
  EXPECT_GE(store->sync_count(), 1u);
  EXPECT_LT(store->sync_count(), 100u);
}

TEST(CursorStore, ZeroIntervalSyncsEveryCommit) {
  TempDir dir;
  CursorStoreOptions options;
  options.sync_interval = std::chrono::milliseconds(0);
  auto store = open_store(dir.path(), options);
  ASSERT_TRUE(store->commit("t", 1));
  ASSERT_TRUE(store->commit("t", 2));
  ASSERT_TRUE(store->commit("t", 2));  // unchanged: nothing written
  EXPECT_EQ(store->sync_count(), 2u);
}

TEST(CursorStore, JournalIsCompacted) {
  TempDir dir;
  CursorStoreOptions options;
  options.compact_min_bytes = 1024;
  options.sync_interval = std::chrono::milliseconds(0);
  {
    auto store = open_store(dir.path(), options);
    for (std::uint64_t i = 1; i <= 200; ++i)
      ASSERT_TRUE(store->commit("trigger-" + std::to_string(i % 3), i));
    EXPECT_GT(store->compaction_count(), 0u);
    EXPECT_LT(size_of(store->path()), 2048u);
  }
  auto store = open_store(dir.path(), options);
  EXPECT_EQ(store->load("trigger-0"), 198u);
  EXPECT_EQ(store->load("trigger-1"), 199u);
  EXPECT_EQ(store->load("trigger-2"), 200u);
}

TEST(CursorStore, CompactionAlsoRunsInTheBackground) {
  TempDir dir;
  CursorStoreOptions options;
  options.compact_min_bytes = 4096;
  options.sync_interval = std::chrono::milliseconds(1);
  auto store = open_store(dir.path(), options);
  for (std::uint64_t i = 1; i <= 3000; ++i) {
    ASSERT_TRUE(store->commit("t", i));
    if (i % 500 == 0) {
      ASSERT_TRUE(store->sync());
    }
  }
  EXPECT_GT(store->compaction_count(), 0u);
  store.reset();
  EXPECT_EQ(open_store(dir.path(), options)->load("t"), 3000u);
}

TEST(CursorStore, TornTailIsDropped) {
  TempDir dir;
  std::string path;
  {
    auto store = open_store(dir.path());
    ASSERT_TRUE(store->commit("a", 1));
    ASSERT_TRUE(store->commit("b", 2));
    path = store->path();
  }
  const auto whole = size_of(path);
  {
    // Half of a third record, as a crash in the middle of write(2) would leave.
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_APPEND));
    ASSERT_TRUE(write_all(fd.get(), "\x12\x00\x00\x00\xAB\xCD", 6, path));
  }
  {
    auto store = open_store(dir.path());
    EXPECT_EQ(store->load("a"), 1u);
    EXPECT_EQ(store->load("b"), 2u);
    EXPECT_EQ(size_of(path), whole);
    ASSERT_TRUE(store->commit("c", 3));
  }
  auto store = open_store(dir.path());
  EXPECT_EQ(store->load("c"), 3u);
}

TEST(CursorStore, ADamagedLastRecordIsDropped) {
  // The last record may be a trigger's only one (its first commit, or the journal was just compacted):
  // that trigger is then without a cursor, which its caller treats as a lost one.
  TempDir dir;
  std::string path;
  {
    auto store = open_store(dir.path());
    ASSERT_TRUE(store->commit("a", 1));
    ASSERT_TRUE(store->commit("b", 2));
    path = store->path();
  }
  {
    UniqueFd fd(::open(path.c_str(), O_WRONLY));
    ASSERT_TRUE(pwrite_all(fd.get(), "\xFF", 1, 18 + 12, path));  // b's offset
  }
  auto store = open_store(dir.path());
  EXPECT_EQ(store->load("a"), 1u);
  EXPECT_FALSE(store->load("b"));
  EXPECT_EQ(size_of(path), 18u);
}

TEST(CursorStore, DamageFollowedByWholeRecordsIsSkippedNotTruncated) {
  TempDir dir;
  std::string path;
  {
    auto store = open_store(dir.path());
    ASSERT_TRUE(store->commit("a", 1));
    ASSERT_TRUE(store->commit("b", 2));
    ASSERT_TRUE(store->commit("c", 3));
    ASSERT_TRUE(store->commit("a", 4));
    path = store->path();
  }
  {
    // One byte of b's record (the second, 18 bytes in) goes bad.
    UniqueFd fd(::open(path.c_str(), O_WRONLY));
    ASSERT_TRUE(pwrite_all(fd.get(), "\xFF", 1, 18 + 12, path));
  }
  {
    auto store = open_store(dir.path());
    EXPECT_EQ(store->load("a"), 4u);  // the commits after the damage are kept
    EXPECT_EQ(store->load("c"), 3u);
    EXPECT_FALSE(store->load("b"));
    ASSERT_TRUE(store->commit("d", 5));
  }
  auto store = open_store(dir.path());  // the damage was written out of the journal
  EXPECT_EQ(store->all(), (std::map<std::string, std::uint64_t>{{"a", 4}, {"c", 3}, {"d", 5}}));
}

TEST(CursorStore, AFailedFdatasyncIsRepairedByTheNextCommit) {
  TempDir dir;
  CursorStoreOptions options;
  options.sync_interval = std::chrono::milliseconds(0);  // fdatasync inside every commit
  {
    auto store = open_store(dir.path(), options);
    ASSERT_TRUE(store->commit("a", 1));
    fail_fdatasync = true;
    auto failed = store->commit("a", 2);
    fail_fdatasync = false;
    ASSERT_FALSE(failed);
    EXPECT_NE(failed.error().message.find("fdatasync failed"), std::string::npos);
    // The journal is rewritten from memory and commits are durable again.
    ASSERT_TRUE(store->commit("b", 3));
    ASSERT_TRUE(store->commit("a", 4));
  }
  auto store = open_store(dir.path());
  EXPECT_EQ(store->all(), (std::map<std::string, std::uint64_t>{{"a", 4}, {"b", 3}}));
}

TEST(CursorStore, ConcurrentCommitsFromManyTriggers) {
  TempDir dir;
  {
    auto store = open_store(dir.path());
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&, t] {
        for (std::uint64_t i = 1; i <= 500; ++i)
          ASSERT_TRUE(store->commit("trigger-" + std::to_string(t), i));
      });
    }
    for (auto& th : threads) th.join();
  }
  auto store = open_store(dir.path());
  for (int t = 0; t < 8; ++t) EXPECT_EQ(store->load("trigger-" + std::to_string(t)), 500u);
}

}  // namespace
}  // namespace sluice
