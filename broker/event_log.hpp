#pragma once
// The event log of one broker: an append-only, offset-addressed sequence of opaque records.
//
// Two implementations: FileLog (embedded default, broker/file_log.hpp) and, later, a Kafka-backed log.
// Offsets are consecutive from 0 and never reused; a record becomes visible to read() only once it is
// durable, so a reader (the dispatcher) never sees an event that a crash could still take back.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/result.hpp"

namespace sluice {

/// One durable record as read back from the log.
struct LogRecord {
  std::uint64_t offset = 0;
  std::int64_t append_time_ms = 0;  // wall-clock ms since the Unix epoch, stamped by the log at append
  std::string payload;
};

/// Called exactly once per append(): with the offset of the batch's first record once every record of the
/// batch is durable, or with an Error. Called from a log thread, except for errors that append() reports
/// immediately (queue full, log closed), which are called on the caller's thread before append() returns.
/// It must not block for long (it delays every other append of the same group commit) and must not call
/// flush() or close().
using AppendCallback = std::function<void(Result<std::uint64_t> first_offset)>;

class EventLog {
 public:
  virtual ~EventLog() = default;

  /// Appends `payloads` atomically as consecutive records: after a crash either the whole batch is in the
  /// log or none of it. Never blocks the caller on disk: `done` fires after the group commit (many appends
  /// share one fdatasync) that made the batch durable. When the queue of pending appends is over its bound,
  /// `done` gets an Error with code 503 immediately (413 for a single batch larger than the whole bound,
  /// 503 too once the log is closed, 500 after an unrecoverable I/O error). An empty batch completes
  /// immediately with end_offset(). Thread-safe.
  virtual void append(std::vector<std::string> payloads, AppendCallback done) = 0;

  /// Reads durable records starting at `from` (clamped up to start_offset(): older records are gone), at
  /// most `max_records` and about `max_bytes` (at least one record is returned when one exists, however
  /// large). Returns an empty vector at or past end_offset(). Thread-safe, may run concurrently with
  /// append. Never returns a record whose CRC fails: a damaged record yields an Error naming its offset
  /// (records before it are returned by the call that reaches it first).
  virtual Result<std::vector<LogRecord>> read(std::uint64_t from, std::size_t max_records,
                                              std::size_t max_bytes = 4 << 20) const = 0;

  /// The first retained offset (moves forward as retention deletes old data).
  virtual std::uint64_t start_offset() const = 0;
  /// One past the last durable record.
  virtual std::uint64_t end_offset() const = 0;
  /// An offset at or before the first record appended at or after `unix_ms` (wall clock): where a scan
  /// for recent records may begin. The default, start_offset(), is always correct.
  virtual std::uint64_t offset_for_time(std::int64_t unix_ms) const {
    (void)unix_ms;
    return start_offset();
  }

  /// Registers `on_durable`, called from a log thread with the new end_offset() each time it grows. Returns
  /// an id for unsubscribe(). The callback may append, subscribe and unsubscribe, but not flush() or close().
  virtual std::uint64_t subscribe(std::function<void(std::uint64_t end_offset)> on_durable) = 0;
  /// After unsubscribe() returns the callback is not running (unless it called unsubscribe itself) and will
  /// not be called again. Unknown ids are ignored.
  virtual void unsubscribe(std::uint64_t id) = 0;

  /// Blocks until everything appended before the call is durable (or failed). For shutdown.
  virtual Status flush() = 0;
  /// Completes what is queued, stops the log's threads, rejects later appends. Idempotent.
  virtual void close() = 0;
};

}  // namespace sluice
