#pragma once
// FileLog: the embedded EventLog. One directory per broker, holding append-only segment files.
//
// Layout: DIR/<base offset, 20 digits>.log holds records [base, next segment's base); DIR/<base>.index is
// its sparse index; DIR/LOCK is flock()ed by the process that has the log open.
// Record framing (little-endian):
//   [length u32][crc32c u32][offset u64][append_time_ms i64][payload: length & 0x7FFFFFFF bytes]
// The CRC32C covers everything after the crc field (offset, time, payload). The top bit of `length` is set
// on every record of a batch but the last, so recovery can drop a batch that was only partly written.
// Index entries are 8 bytes: [offset - base u32][file position u32], one at the first record and then
// one at the first record to start at least index_interval_bytes after the previous entry. The index file
// trails the segment (entries are written 4 KiB at a time, and whole when the segment is sealed or the
// log closed); recovery rescans the newest segment and checks the others' index files.
//
// Durability: an append's callback fires only after its records were written and fdatasync()ed (when
// options.fsync), and read() serves only such records. A batch never spans two segments; a segment is
// fdatasync()ed before the next one is created, and the directory is fsync()ed after segments are created
// or deleted.
//
// Recovery (open): sealed segments keep their data; their index is checked (entries increasing, in the
// file, and the chain of records after the last entry ends exactly at the file's end with the offset just
// before the next segment's base) and rebuilt by a scan when missing or damaged. The newest segment is
// scanned whole: everything from the first record that is partial, fails its CRC, breaks the offset
// sequence, or belongs to an unfinished batch is truncated (the only records a crash can damage are the
// ones never acknowledged); when whole records follow a damaged one (disk damage, if they were
// acknowledged), the cut bytes are copied to DIR/<base>.log.cut-<position> first. The active segment may end
// in zero-filled space written ahead of its records (options.zero_fill_bytes); recovery drops it too, as does
// a clean close and every roll, so a sealed segment ends exactly at its last record. A damaged record inside
// a sealed segment (bit rot, not a crash) is kept on disk and read() answers an Error naming its offset (code
// 500) instead of serving it: the choice is to stop the reader loudly rather than skip or serve garbage; the
// operator decides (restore, or delete the segment, which moves start_offset()).
//
// Time: records are stamped with the wall clock (append_time_ms). Ages (retention_ms, segment_ms) are
// measured from the earlier of two readings of "now": the wall clock, and the wall clock read at open()
// advanced by the steady clock since. A forward step of the wall clock while the log is open (an NTP
// correction, `date -s`) therefore makes no segment older and deletes nothing early; a backward step
// only delays retention. A restart reads the wall clock afresh: across one, the wall clock is all there is.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "broker/event_log.hpp"
#include "core/clock.hpp"
#include "core/fs.hpp"
#include "core/result.hpp"

namespace sluice {

struct FileLogOptions {
  /// A new segment starts when the active one would grow past this (a single larger batch still fits).
  std::uint64_t segment_bytes = 64ull << 20;
  /// A new segment also starts when the active one's first record is older than this; 0 = never. Lets
  /// retention_ms expire data of a quiet log (segments are deleted whole, never the active one).
  std::int64_t segment_ms = 7LL * 24 * 3600 * 1000;
  /// Segments whose newest record is older than this are deleted; 0 = keep forever.
  std::int64_t retention_ms = 0;
  /// Oldest segments are deleted while the log is larger than this; 0 = unlimited.
  std::uint64_t retention_bytes = 0;
  /// Bound of the queue of appends waiting for the writer; over it, append() fails with 503.
  std::size_t max_pending_appends = 100000;
  std::size_t max_pending_bytes = 64ull << 20;
  /// Distance in bytes between sparse index entries.
  std::uint32_t index_interval_bytes = 4096;
  /// fdatasync() each group commit. Off = faster, but a machine crash (not a process crash) can lose
  /// acknowledged records; for tests and benchmarks only.
  bool fsync = true;
  /// With fsync: the active segment is zero-filled this far past its write position, so that a group
  /// commit overwrites allocated blocks and its fdatasync changes no file size (no journal commit: 0.14
  /// instead of 0.20 ms here). 0 = grow the file with each write.
  std::uint64_t zero_fill_bytes = 1 << 20;
  /// Called from the writer thread with the duration of each fdatasync (for the metrics histogram).
  std::function<void(std::chrono::nanoseconds)> on_fsync;
  /// Name used in log lines ("[log=NAME]"), for example the broker's name. Defaults to the directory.
  std::string name;
};

/// Counters for tests, metrics and benchmarks. Monotonic since open().
struct FileLogStats {
  std::uint64_t appends = 0;        // append() calls completed successfully
  std::uint64_t records = 0;        // records made durable
  std::uint64_t bytes = 0;          // bytes written to segments (framing included)
  std::uint64_t group_commits = 0;  // writer cycles that made at least one append durable
  std::uint64_t fsyncs = 0;         // fdatasync() calls on segment files
  std::uint64_t rejected = 0;       // appends refused because the queue was full or the log closed
  std::uint64_t segments_deleted = 0;
  std::uint64_t truncated_bytes = 0;  // torn tail dropped by recovery at open()
};

class FileLog final : public EventLog {
 public:
  /// Opens (creating if needed) the log in `dir`, recovers it (see the file comment), applies retention
  /// once, and starts the writer thread. `clock.wall()` stamps records and drives retention by age.
  /// Fails if another process holds the directory.
  static Result<std::unique_ptr<FileLog>> open(const std::string& dir, FileLogOptions options, Clock& clock);

  ~FileLog() override;
  FileLog(const FileLog&) = delete;
  FileLog& operator=(const FileLog&) = delete;

  void append(std::vector<std::string> payloads, AppendCallback done) override;
  Result<std::vector<LogRecord>> read(std::uint64_t from, std::size_t max_records,
                                      std::size_t max_bytes = 4 << 20) const override;
  std::uint64_t start_offset() const override;
  std::uint64_t end_offset() const override;
  /// The base of the oldest segment holding a record appended at or after `unix_ms`.
  std::uint64_t offset_for_time(std::int64_t unix_ms) const override;
  std::uint64_t subscribe(std::function<void(std::uint64_t end_offset)> on_durable) override;
  void unsubscribe(std::uint64_t id) override;
  Status flush() override;
  void close() override;

  /// Deletes whole sealed segments that are past retention_ms (by their newest record's append time, aged
  /// as the file comment's Time says) or
  /// that make the log larger than retention_bytes, oldest first; never the active segment. Moves
  /// start_offset() forward. Returns the number of segments deleted. Called by open(), by the writer after
  /// each segment roll, and periodically by the server; thread-safe.
  Result<std::size_t> enforce_retention();
  /// Changes the retention bounds of the open log (a broker's spec.retention was updated); segments are
  /// kept to an eighth of each bound from the next roll on, so that whole-segment deletion stays close to
  /// them. open() applies options.retention_ms and retention_bytes the same way.
  void set_retention(std::int64_t retention_ms, std::uint64_t retention_bytes);

  FileLogStats stats() const;
  /// Bytes of all retained segments.
  std::uint64_t size_bytes() const;
  /// Number of segment files.
  std::size_t segment_count() const;
  const std::string& dir() const { return dir_; }

  /// Bytes of framing before each payload.
  static constexpr std::size_t kRecordHeaderBytes = 24;

  struct Segment;  // defined in file_log.cpp

 private:
  struct PendingAppend {
    std::vector<std::string> payloads;
    AppendCallback done;
    std::size_t bytes = 0;
    bool force_sync = false;  // flush() marker: fdatasync even when options.fsync is off
  };

  FileLog(std::string dir, FileLogOptions options, Clock& clock);
  Status recover();
  Status recover_sealed(Segment& segment, std::uint64_t next_base);
  Status recover_tail(Segment& segment);
  /// When whole records follow a damaged one that recovery cuts off the newest segment, copies the cut
  /// bytes to SEGMENT.cut-POSITION and says so (best effort).
  Status keep_cut_records(Segment& segment, std::uint64_t damage_pos, std::uint64_t damage_offset,
                          std::uint64_t cut_pos, std::uint64_t file_size);
  /// A new empty segment; nothing of it is left on disk when it fails.
  Result<std::shared_ptr<Segment>> create_segment(std::uint64_t base);
  Result<std::shared_ptr<Segment>> open_segment_files(std::uint64_t base);
  void writer_loop();
  void commit_group(std::vector<PendingAppend>& group);
  Status write_group(std::vector<PendingAppend>& group, std::vector<std::uint64_t>& first_offsets,
                     std::vector<std::shared_ptr<Segment>>& touched, bool& sync_failed);
  Status sync_segment(Segment& segment);
  /// Zero-fills the active segment ahead of its write position when less than half of
  /// options.zero_fill_bytes is left (best effort: on failure the file just grows with each write).
  void zero_fill_ahead();
  /// Writes the segment's published index entries that are not in its index file yet (best effort).
  void write_index(Segment& segment);
  /// Cuts the zero-filled space off the end of a segment (before it is sealed or closed).
  Status trim_zero_fill(Segment& segment);
  std::int64_t now_ms() const;
  /// The "now" that ages are measured from (see Time in the file comment); never after now_ms().
  std::int64_t age_now_ms() const;
  void notify_subscribers(std::uint64_t end);

  const std::string dir_;
  const FileLogOptions options_;
  Clock& clock_;
  const WallTime wall_at_open_;
  const SteadyTime steady_at_open_;
  UniqueFd lock_fd_;

  // Published state: segments (by base offset) and offsets, read by readers under a shared lock.
  mutable std::shared_mutex segments_mu_;
  std::map<std::uint64_t, std::shared_ptr<Segment>> segments_;
  std::atomic<std::uint64_t> start_offset_{0};
  std::atomic<std::uint64_t> end_offset_{0};

  // Queue of appends waiting for the writer.
  mutable std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::condition_variable flushed_cv_;
  std::vector<PendingAppend> queue_;
  std::size_t queued_bytes_ = 0;
  std::uint64_t enqueued_seq_ = 0;   // appends accepted so far
  std::uint64_t completed_seq_ = 0;  // appends whose callback has fired
  bool closing_ = false;
  bool closed_ = false;
  std::thread writer_;
  std::mutex close_mu_;

  // Writer-private state (touched only by the writer thread, and by recover() before it starts).
  std::shared_ptr<Segment> active_;
  std::uint64_t next_offset_ = 0;
  std::atomic<bool> broken_{false};  // an fdatasync or rollback failed: refuse further appends
  // A group's records as written, and each append's first offset: kept between groups so that a group
  // commit does not allocate.
  std::string write_buf_;
  std::vector<std::uint64_t> first_offsets_;

  // Subscribers: the recursive mutex lets callbacks subscribe/unsubscribe, and is held while they run so
  // that unsubscribe() from another thread waits for a running callback.
  mutable std::recursive_mutex subs_mu_;
  std::map<std::uint64_t, std::shared_ptr<std::function<void(std::uint64_t)>>> subs_;
  std::uint64_t next_sub_id_ = 1;

  mutable std::mutex stats_mu_;
  FileLogStats stats_;
  std::mutex retention_mu_;
  // Set by set_retention(): read by the writer (segment bounds) and by enforce_retention().
  std::atomic<std::uint64_t> segment_bytes_{0};
  std::atomic<std::int64_t> segment_ms_{0};
  std::atomic<std::int64_t> retention_ms_{0};
  std::atomic<std::uint64_t> retention_bytes_{0};
};

}  // namespace sluice
