#pragma once
// LowWaterMark: which log offsets a trigger has finished, so that its cursor commits only the offset
// below which everything is done (delivered, dead-lettered, dropped or filtered out) and never skips a
// gap when deliveries complete out of order.

#include <cstdint>
#include <set>

namespace sluice {

/// Not thread-safe: the dispatcher touches it from its strand only.
class LowWaterMark {
 public:
  /// `start`: the first offset the trigger reads (its committed cursor).
  explicit LowWaterMark(std::uint64_t start = 0) : next_(start) {}

  /// Records that `offset` was read and is not done yet. Offsets are added in increasing order;
  /// anything between the previous offset and this one (records that retention removed) is done.
  void add(std::uint64_t offset) {
    pending_.insert(offset);
    if (offset >= next_) next_ = offset + 1;
  }

  /// Moves the read position to `offset` without adding records (everything before it that is not
  /// pending counts as done, e.g. records deleted by retention). Never moves backwards.
  void skip_to(std::uint64_t offset) {
    if (offset > next_) next_ = offset;
  }

  /// Marks a pending offset done. Unknown offsets are ignored.
  void complete(std::uint64_t offset) { pending_.erase(offset); }

  /// The offset below which every record is done: the cursor to commit.
  std::uint64_t low() const { return pending_.empty() ? next_ : *pending_.begin(); }

  /// One past the last offset added or skipped to: where reading continues.
  std::uint64_t next() const { return next_; }

  /// Offsets read but not done.
  std::size_t pending() const { return pending_.size(); }

 private:
  std::uint64_t next_;
  std::set<std::uint64_t> pending_;
};

}  // namespace sluice
