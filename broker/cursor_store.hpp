#pragma once
// CursorStore: durable per-trigger cursors (the next offset each trigger has to deliver).
//
// Storage: one append-only journal file of records [length u32][crc32c u32][op u8][offset u64][name],
// replayed at open (a torn or damaged tail is dropped; damage with whole records after it is skipped).
// A trigger commits its starting cursor when it is created (TriggerDispatcher), so a trigger left without
// a cursor by such damage is told from a new one by its caller: it existed before this start.
// commit() costs one write(2) of ~30 bytes: the record is in the kernel when commit() returns, so it survives
// a crash of the process. A background thread fdatasync()s the journal at most every sync_interval (commits
// are coalesced), so a machine crash can lose the last interval of commits; the dispatcher then replays those
// events (at-least-once). The journal is compacted (rewritten atomically with one record per live cursor)
// once it is both larger than compact_min_bytes and compact_ratio times the live data.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "core/fs.hpp"
#include "core/result.hpp"

namespace sluice {

struct CursorStoreOptions {
  /// Longest time a committed cursor waits for its fdatasync; zero = fdatasync inside every commit().
  std::chrono::milliseconds sync_interval{100};
  std::uint64_t compact_min_bytes = 1 << 20;
  std::uint64_t compact_ratio = 4;
};

class CursorStore {
 public:
  /// `path_or_dir`: an existing directory (the journal is DIR/cursors.journal) or the journal file's path
  /// (parent directories are created).
  static Result<std::unique_ptr<CursorStore>> open(const std::string& path_or_dir,
                                                   CursorStoreOptions options = {});
  /// A store without a journal: cursors live in memory and every changed commit() is handed to
  /// `on_commit` (called on the committing thread, without the store's lock held). For cursors kept
  /// elsewhere, such as a Kafka consumer group's committed offsets.
  static std::unique_ptr<CursorStore> in_memory(
      std::function<void(const std::string& trigger, std::uint64_t offset)> on_commit);
  ~CursorStore();
  CursorStore(const CursorStore&) = delete;
  CursorStore& operator=(const CursorStore&) = delete;

  /// Records that `trigger` resumes at `offset`. Thread-safe; never waits for the disk unless
  /// sync_interval is zero.
  Status commit(const std::string& trigger, std::uint64_t offset);
  /// The last committed offset of `trigger`, if any.
  std::optional<std::uint64_t> load(const std::string& trigger) const;
  /// Forgets `trigger` (its Trigger was deleted).
  Status erase(const std::string& trigger);
  /// Every trigger's cursor.
  std::map<std::string, std::uint64_t> all() const;
  /// Blocks until every commit so far is fdatasync()ed (shutdown).
  Status sync();
  /// Number of fdatasync() calls and compactions so far (tests, metrics).
  std::uint64_t sync_count() const;
  std::uint64_t compaction_count() const;
  const std::string& path() const { return path_; }

 private:
  CursorStore(std::string path, CursorStoreOptions options);
  Status replay();
  Status append_record(char op, const std::string& trigger, std::uint64_t offset);
  Status compact_locked();
  bool needs_compaction() const;
  void syncer_loop();

  const std::string path_;
  const CursorStoreOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable synced_cv_;
  std::map<std::string, std::uint64_t> cursors_;
  UniqueFd fd_;
  std::uint64_t journal_bytes_ = 0;
  std::uint64_t written_seq_ = 0;
  std::uint64_t synced_seq_ = 0;
  std::uint64_t syncs_ = 0;
  std::uint64_t compactions_ = 0;
  std::optional<Error> sync_error_;  // cleared once the journal is rewritten (append_record)
  std::chrono::steady_clock::time_point last_repair_{};
  bool stopping_ = false;
  bool sync_requested_ = false;
  std::thread syncer_;
  std::function<void(const std::string&, std::uint64_t)> on_commit_;  // in_memory() stores only
};

}  // namespace sluice
