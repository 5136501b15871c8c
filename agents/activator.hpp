#pragma once
// The activator: in the path of every agent request, between choosing a revision and calling a replica.
//
// Per revision it keeps the routable replicas and a bounded FIFO of requests waiting for one:
//   - a replica takes a request while its in-flight count is below containerConcurrency (the breaker;
//     0 = unlimited); among the replicas with room, the one with fewer requests in flight of two picked
//     at random (power of two choices);
//   - reserve replicas take requests only while the revision has no standard replica routable;
//   - with no replica able to take it, the request waits in the revision's queue (bounded; over the
//     bound: 503) and `on_demand` fires so that the runtime scales the revision up at once; waiting
//     requests are handed replicas strictly in arrival order as slots free up or replicas become ready;
//     one still waiting at its deadline gets 504, one whose client went away is dropped at once;
//   - a request that could not connect to its replica (the process died before the runtime noticed)
//     gives its lease back with release_unreachable(): that replica takes no request until the runtime
//     reports its state again (or for kReplicaUnreachableFor), and the request acquires again with
//     `retry` set, ahead of the waiting ones, within its original deadline. One that the replica cut
//     off (connection reset or closed before the end of the response) gives it back with
//     release_cut_off(): `on_cut_off` asks the runtime to check the replica at once (is the process
//     alive, does its readiness probe pass?), and the replica is passed over until the runtime reports
//     it again (a live replica within milliseconds) or for kReplicaCutOffFor, so that the next waiting
//     request is not handed a connection a dying process accepted into its backlog and then reset.
//
// The runtime adds replicas when their readiness probe passes (`set_routable`) and closes them before
// draining (`close_replica`: no new request, in-flight ones finish); `in_flight()` tells it when a
// closed replica is idle. `collect()` returns, per revision, the time-weighted average of requests in
// flight plus waiting, and the number of requests that arrived, since the previous call (the
// autoscaler's per-second sample).
//
// Thread-safe: one mutex per revision (a leaf: no callback runs under it). Waiting requests are
// coroutines on any single-threaded executor; they are woken by posting to their own executor.

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "core/asio.hpp"
#include "core/http_client.hpp"
#include "core/result.hpp"

namespace sluice::agents {

struct ActivatorOptions {
  /// Requests waiting per revision unless the revision sets its own (sluice.dev/max-buffered-requests);
  /// one more gets 503.
  std::size_t max_buffer = 10000;
};

namespace detail {
struct ActivatorEndpoint;
struct ActivatorRevision;
}  // namespace detail

/// One request's slot on one replica; destroying (or release()) frees it and hands the slot to the
/// next waiting request. Movable, not copyable.
class ReplicaLease {
 public:
  ReplicaLease() = default;
  ReplicaLease(std::shared_ptr<detail::ActivatorRevision> revision,
               std::shared_ptr<detail::ActivatorEndpoint> endpoint);
  ReplicaLease(ReplicaLease&& other) noexcept;
  ReplicaLease& operator=(ReplicaLease&& other) noexcept;
  ReplicaLease(const ReplicaLease&) = delete;
  ReplicaLease& operator=(const ReplicaLease&) = delete;
  ~ReplicaLease();

  /// "host:port" of the replica.
  const std::string& address() const;
  /// The replica id within its revision.
  const std::string& replica() const;
  bool reserve() const;
  explicit operator bool() const { return endpoint_ != nullptr; }
  void release();
  /// Frees the slot of a request that could not connect to the replica: the request is not counted
  /// as completed, and the replica takes no new request until the runtime reports its state again
  /// (set_routable) or kReplicaUnreachableFor has passed.
  void release_unreachable();
  /// Frees the slot of a request that the replica cut off (reset, closed before the end of the
  /// response): counted as completed; the replica takes no new request until the runtime reports its
  /// state again or kReplicaCutOffFor has passed; runs the activator's `on_cut_off` (outside any lock).
  void release_cut_off();

 private:
  /// Frees the slot (once): `reached` counts the request as completed; `pass_over` > 0 passes the
  /// replica over for that long.
  void give_back(bool reached, std::chrono::milliseconds pass_over);

  std::shared_ptr<detail::ActivatorRevision> revision_;
  std::shared_ptr<detail::ActivatorEndpoint> endpoint_;
  std::chrono::steady_clock::time_point acquired_at_;
};

/// Per-revision load since the previous collect().
struct RevisionLoad {
  std::string revision;
  double concurrency = 0;  // time-weighted average of requests in flight plus waiting
  double requests = 0;     // requests that arrived
  std::size_t waiting = 0;
  std::size_t in_flight = 0;
};

/// A revision's requests now and since it was added.
struct RevisionCounters {
  std::size_t in_flight = 0;
  std::size_t waiting = 0;
  std::uint64_t completed = 0;  // leases released: requests that reached a replica and finished
  std::uint64_t rejected = 0;   // 503: the buffer was full
  std::uint64_t timed_out = 0;  // 504: no replica before the request's deadline
  double service_seconds = 0;   // time replicas spent on the completed requests
  std::uint64_t retried = 0;    // acquired again after their replica refused the connection
};

/// Error codes of acquire().
inline constexpr int kActivatorBufferFull = 503;
inline constexpr int kActivatorTimeout = 504;
inline constexpr int kActivatorUnknownRevision = 404;
inline constexpr int kActivatorCancelled = 499;

/// How long a replica that refused a connection is passed over when the runtime says nothing about it
/// meanwhile (a replica whose process died is reported within tens of milliseconds; one that is alive
/// but briefly not listening gets requests again after this).
inline constexpr std::chrono::milliseconds kReplicaUnreachableFor{1000};
/// How long a replica that cut a request off is passed over when the runtime says nothing about it
/// (its check after `on_cut_off` normally answers within milliseconds): several of the runtime's 20 ms
/// checks for an exited process.
inline constexpr std::chrono::milliseconds kReplicaCutOffFor{200};

class Activator {
 public:
  /// `on_demand(revision)` runs (outside any lock, on the requesting thread) when a request starts
  /// waiting, or is served by a reserve replica: the revision needs standard capacity now.
  /// `on_cut_off(revision, replica)` runs (outside any lock, on the releasing thread) when a replica cut
  /// a request off: the runtime should check it now and report its state (set_routable) either way.
  explicit Activator(ActivatorOptions options = {}, std::function<void(const std::string&)> on_demand = {},
                     std::function<void(const std::string&, const std::string&)> on_cut_off = {});

  /// Adds a revision, or updates its breaker size (0 = unlimited) and the requests it lets wait
  /// (`max_buffer`; 0 = ActivatorOptions::max_buffer).
  void add_revision(const std::string& revision, int container_concurrency, std::size_t max_buffer = 0);
  /// Removes a revision: waiting requests fail with 503; leases in flight finish normally.
  void remove_revision(const std::string& revision);

  /// Makes a replica routable (its probe passed) or not (it stopped passing). A closed replica stays
  /// closed. `reserve`: used only while no standard replica is routable.
  void set_routable(const std::string& revision, const std::string& replica, const std::string& address,
                    bool reserve, bool routable);
  /// Stops routing to a replica for good (before draining it); requests in flight finish.
  void close_replica(const std::string& revision, const std::string& replica);
  /// Forgets a closed replica once it stopped.
  void forget_replica(const std::string& revision, const std::string& replica);
  /// Requests in flight on a replica (0 for an unknown one).
  std::size_t in_flight(const std::string& revision, const std::string& replica) const;
  /// Routable standard replicas of a revision.
  std::size_t routable_replicas(const std::string& revision) const;

  /// Waits (in the calling coroutine) for a slot on a replica of `revision`, until `deadline` (504)
  /// or `cancel` (499). Error 503 when the buffer is full or the revision goes away, 404 for an
  /// unknown revision. Never throws. `retry`: the request already arrived once and its replica could
  /// not be reached; it is not counted as an arrival, is never refused for a full buffer, and is
  /// served before the requests waiting.
  asio::awaitable<Result<ReplicaLease>> acquire(std::string revision,
                                                std::chrono::steady_clock::time_point deadline,
                                                std::shared_ptr<CancelSignal> cancel, bool retry = false);

  /// Load per revision since the previous call.
  std::vector<RevisionLoad> collect();
  /// A revision's counters (nullopt for an unknown one); unlike collect(), changes nothing.
  std::optional<RevisionCounters> counters(const std::string& revision) const;

 private:
  std::shared_ptr<detail::ActivatorRevision> find(const std::string& revision) const;

  ActivatorOptions options_;
  std::function<void(const std::string&)> on_demand_;
  std::function<void(const std::string&, const std::string&)> on_cut_off_;
  mutable std::shared_mutex mu_;
  std::map<std::string, std::shared_ptr<detail::ActivatorRevision>, std::less<>> revisions_;
};

}  // namespace sluice::agents
