// The activator on a real io_context: breaker, FIFO buffer, bounds, timeouts, cancellation, reserve
// replicas and load reports.

#include "agents/activator.hpp"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <vector>

namespace sluice::agents {
namespace {

using namespace std::chrono_literals;

struct Harness {
  asio::io_context io;
  std::vector<std::string> demand;
  Activator activator;
  explicit Harness(std::size_t max_buffer = 10000)
      : activator(ActivatorOptions{max_buffer}, [this](const std::string& r) { demand.push_back(r); }) {}

  /// Starts an acquire; its result lands in `out` (and its lease is kept there).
  void acquire(std::optional<Result<ReplicaLease>>& out, std::chrono::milliseconds timeout = 5000ms,
               std::shared_ptr<CancelSignal> cancel = nullptr, bool retry = false) {
    asio::co_spawn(
        io,
        [this, &out, timeout, cancel, retry]() -> asio::awaitable<void> {
          out = co_await activator.acquire("rev", std::chrono::steady_clock::now() + timeout, cancel, retry);
        },
        asio::detached);
  }
  void run_for(std::chrono::milliseconds d) {
    io.restart();
    io.run_for(d);
  }
};

TEST(Activator, BreakerHandsSlotsToWaitersInArrivalOrder) {
  Harness h;
  h.activator.add_revision("rev", 1);
  h.activator.set_routable("rev", "1", "127.0.0.1:1", false, true);
  std::optional<Result<ReplicaLease>> a, b, c;
  h.acquire(a);
  h.run_for(10ms);
  ASSERT_TRUE(a && *a);
  h.acquire(b);
  h.run_for(5ms);
  h.acquire(c);
  h.run_for(10ms);
  EXPECT_FALSE(b);
  EXPECT_FALSE(c);
  EXPECT_EQ(h.demand.size(), 2u) << "each buffered request asks for capacity";
  a->value().release();
  h.run_for(10ms);
  ASSERT_TRUE(b && *b);
  EXPECT_FALSE(c) << "the second waiter still waits for the only slot";
  EXPECT_EQ(h.activator.in_flight("rev", "1"), 1u);
  b->value().release();
  h.run_for(10ms);
  ASSERT_TRUE(c && *c);
}

TEST(Activator, NewReplicaServesTheBufferAndUnlimitedSpreadsLoad) {
  Harness h;
  h.activator.add_revision("rev", 0);
  std::vector<std::optional<Result<ReplicaLease>>> buffered(5);
  for (auto& o : buffered) h.acquire(o);
  h.run_for(10ms);
  for (auto& o : buffered) EXPECT_FALSE(o);
  h.activator.set_routable("rev", "1", "127.0.0.1:1", false, true);
  h.run_for(20ms);
  for (auto& o : buffered) ASSERT_TRUE(o && *o);
  // With two replicas and no limit, power of two choices evens out what is in flight.
  h.activator.set_routable("rev", "2", "127.0.0.1:2", false, true);
  std::vector<std::optional<Result<ReplicaLease>>> out(25);
  for (auto& o : out) h.acquire(o);
  h.run_for(20ms);
  for (auto& o : out) ASSERT_TRUE(o && *o);
  const auto one = h.activator.in_flight("rev", "1"), two = h.activator.in_flight("rev", "2");
  EXPECT_EQ(one + two, 30u);
  EXPECT_LE(one > two ? one - two : two - one, 2u) << one << " vs " << two;
}

TEST(Activator, OneAtATimeRequestsReachEveryIdleReplica) {
  Harness h;
  h.activator.add_revision("rev", 0);
  for (const char* id : {"1", "2", "3"})
    h.activator.set_routable("rev", id, std::string("127.0.0.1:") + id, false, true);
  std::map<std::string, int> picked;
  for (int i = 0; i < 300; ++i) {
    std::optional<Result<ReplicaLease>> lease;
    h.acquire(lease);
    h.run_for(1ms);
    ASSERT_TRUE(lease && *lease);
    ++picked[lease->value().replica()];
  }
  // Each is drawn about 100 times; fewer than 50 has a probability far below 1e-6.
  for (const char* id : {"1", "2", "3"}) EXPECT_GE(picked[id], 50) << "replica " << id;
}

TEST(Activator, ARevisionsOwnBufferBoundOverridesTheDefault) {
  Harness h(1);
  h.activator.add_revision("rev", 1, 3);
  std::optional<Result<ReplicaLease>> waiting[3], rejected;
  for (auto& w : waiting) h.acquire(w, 200ms);
  h.run_for(5ms);
  for (auto& w : waiting) EXPECT_FALSE(w) << "three may wait where the server default is one";
  h.acquire(rejected);
  h.run_for(5ms);
  ASSERT_TRUE(rejected);
  EXPECT_EQ(rejected->error().code, kActivatorBufferFull);
  EXPECT_NE(rejected->error().message.find("3 requests waiting"), std::string::npos)
      << rejected->error().message;
  h.run_for(300ms);
  for (auto& w : waiting) ASSERT_TRUE(w && w->error().code == kActivatorTimeout);
}

TEST(Activator, FullBufferTimeoutAndCancellation) {
  Harness h(1);
  h.activator.add_revision("rev", 1);
  std::optional<Result<ReplicaLease>> waiting, rejected, timed_out;
  auto cancel = std::make_shared<CancelSignal>();
  h.acquire(waiting, 5000ms, cancel);
  h.run_for(5ms);
  h.acquire(rejected);
  h.run_for(5ms);
  ASSERT_TRUE(rejected);
  EXPECT_EQ(rejected->error().code, kActivatorBufferFull);
  cancel->cancel();
  h.run_for(10ms);
  ASSERT_TRUE(waiting);
  EXPECT_EQ(waiting->error().code, kActivatorCancelled);
  h.acquire(timed_out, 50ms);  // the cancelled request left the buffer: room again
  h.run_for(200ms);
  ASSERT_TRUE(timed_out);
  EXPECT_EQ(timed_out->error().code, kActivatorTimeout);
}

TEST(Activator, ReserveOnlyWhileNoStandardReplicaAndClosedReplicasTakeNothing) {
  Harness h;
  h.activator.add_revision("rev", 0);
  h.activator.set_routable("rev", "r1", "127.0.0.1:9", true, true);
  std::optional<Result<ReplicaLease>> a, b;
  h.acquire(a);
  h.run_for(10ms);
  ASSERT_TRUE(a && *a);
  EXPECT_TRUE(a->value().reserve());
  EXPECT_EQ(h.demand.size(), 1u) << "a request served by the reserve asks for standard capacity";
  h.activator.set_routable("rev", "1", "127.0.0.1:1", false, true);
  h.acquire(b);
  h.run_for(10ms);
  ASSERT_TRUE(b && *b);
  EXPECT_EQ(b->value().replica(), "1");
  h.activator.close_replica("rev", "1");
  h.activator.set_routable("rev", "1", "127.0.0.1:1", false, true);  // a late probe does not reopen it
  EXPECT_EQ(h.activator.routable_replicas("rev"), 0u);
}

TEST(Activator, CollectReportsArrivalsAndTimeWeightedConcurrency) {
  Harness h;
  h.activator.add_revision("rev", 0);
  h.activator.collect();
  h.activator.set_routable("rev", "1", "127.0.0.1:1", false, true);
  std::optional<Result<ReplicaLease>> a, b;
  h.acquire(a);
  h.acquire(b);
  h.run_for(10ms);
  std::this_thread::sleep_for(50ms);  // two requests in flight over the whole period
  auto loads = h.activator.collect();
  ASSERT_EQ(loads.size(), 1u);
  EXPECT_EQ(loads[0].requests, 2);
  EXPECT_GT(loads[0].concurrency, 1.5);
  EXPECT_LE(loads[0].concurrency, 2.0);
}

// Requests waiting for a replica count in the concurrency the autoscaler sees (Knative's activator
// reports them too): at zero replicas, three waiting requests are a concurrency of three.
TEST(Activator, WaitingRequestsCountInTheReportedConcurrency) {
  Harness h;
  h.activator.add_revision("rev", 0);
  h.activator.collect();
  std::optional<Result<ReplicaLease>> a, b, c;
  h.acquire(a);
  h.acquire(b);
  h.acquire(c);
  h.run_for(10ms);
  ASSERT_FALSE(a || b || c) << "no replica: the requests wait";
  std::this_thread::sleep_for(50ms);  // three requests waiting over the whole period
  auto loads = h.activator.collect();
  ASSERT_EQ(loads.size(), 1u);
  EXPECT_EQ(loads[0].waiting, 3u);
  EXPECT_GT(loads[0].concurrency, 2.5);
  EXPECT_LE(loads[0].concurrency, 3.0);
  h.activator.set_routable("rev", "1", "127.0.0.1:1", false, true);  // let them go
  h.run_for(10ms);
}

// A replica that refused a connection (its process died before the runtime noticed) is handed no
// request until the runtime reports it again; the other replica takes the traffic meanwhile.
TEST(Activator, AReplicaThatRefusedIsPassedOverUntilTheRuntimeReportsIt) {
  Harness h;
  h.activator.add_revision("rev", 1);
  h.activator.set_routable("rev", "1", "127.0.0.1:1", false, true);
  h.activator.set_routable("rev", "2", "127.0.0.1:2", false, true);
  std::optional<Result<ReplicaLease>> first;
  std::uint64_t released = 0;
  for (int i = 0; i < 50; ++i) {  // find a lease on replica 1 (the pick is random)
    first.reset();
    h.acquire(first);
    h.run_for(1ms);
    ASSERT_TRUE(first && *first);
    if (first->value().replica() == "1") break;
    first->value().release();
    ++released;
  }
  ASSERT_EQ(first->value().replica(), "1");
  first->value().release_unreachable();
  EXPECT_EQ(h.activator.in_flight("rev", "1"), 0u);
  std::optional<Result<ReplicaLease>> a, b;
  h.acquire(a);
  h.run_for(5ms);
  ASSERT_TRUE(a && *a);
  EXPECT_EQ(a->value().replica(), "2");
  h.acquire(b);
  h.run_for(20ms);
  EXPECT_FALSE(b) << "replica 1 has room but refused connections: the request waits";
  // The runtime restarted it: ready again.
  h.activator.set_routable("rev", "1", "127.0.0.1:1", false, true);
  h.run_for(10ms);
  ASSERT_TRUE(b && *b);
  EXPECT_EQ(b->value().replica(), "1");
  const auto counters = h.activator.counters("rev");
  ASSERT_TRUE(counters);
  EXPECT_EQ(counters->completed, released) << "a request that never reached its replica is not completed";
}

// The request that could not connect acquires again with `retry`: it goes before the requests that
// arrived after it, is not a new arrival, and is counted as retried.
TEST(Activator, ARetriedRequestIsServedBeforeTheWaitingOnes) {
  Harness h(1);
  h.activator.add_revision("rev", 1);
  h.activator.set_routable("rev", "1", "127.0.0.1:1", false, true);
  h.activator.collect();
  std::optional<Result<ReplicaLease>> held, waiting, retried;
  h.acquire(held);
  h.run_for(5ms);
  ASSERT_TRUE(held && *held);
  h.acquire(waiting);
  h.run_for(5ms);
  ASSERT_FALSE(waiting);
  held->value().release_unreachable();
  h.run_for(5ms);
  EXPECT_FALSE(waiting) << "the slot freed on a replica that refused is not handed out";
  h.acquire(retried, 5000ms, nullptr, true);  // a full buffer does not turn a retry away
  h.run_for(5ms);
  EXPECT_FALSE(retried);
  h.activator.set_routable("rev", "1", "127.0.0.1:1", false, false);  // the runtime saw the exit
  h.activator.set_routable("rev", "1", "127.0.0.1:1", false, true);   // and the restart is ready
  h.run_for(10ms);
  ASSERT_TRUE(retried && *retried);
  EXPECT_FALSE(waiting) << "the retried request arrived first";
  retried->value().release();
  h.run_for(10ms);
  ASSERT_TRUE(waiting && *waiting);
  const auto counters = h.activator.counters("rev");
  ASSERT_TRUE(counters);
  EXPECT_EQ(counters->retried, 1u);
  EXPECT_EQ(counters->rejected, 0u);
  auto loads = h.activator.collect();
  ASSERT_EQ(loads.size(), 1u);
  EXPECT_EQ(loads[0].requests, 2) << "a retry is not a new arrival";
}

// Without a word from the runtime (the replica is alive but was briefly not listening), the mark
// expires and waiting requests are handed the replica again.
TEST(Activator, TheUnreachableMarkExpires) {
  Harness h;
  h.activator.add_revision("rev", 1);
  h.activator.set_routable("rev", "1", "127.0.0.1:1", false, true);
  std::optional<Result<ReplicaLease>> held, waiting;
  h.acquire(held);
  h.run_for(5ms);
  ASSERT_TRUE(held && *held);
  h.acquire(waiting);  // already waiting when the replica is marked
  h.run_for(5ms);
  ASSERT_FALSE(waiting);
  held->value().release_unreachable();
  h.run_for(kReplicaUnreachableFor / 2);
  EXPECT_FALSE(waiting);
  h.run_for(kReplicaUnreachableFor);
  ASSERT_TRUE(waiting && *waiting);
  EXPECT_EQ(waiting->value().replica(), "1");
}

// A request the replica cut off (reset, closed) may mean its process is dying: the next waiting
// request is not handed that replica until the runtime has had time to see an exit.
TEST(Activator, AReplicaThatCutARequestOffIsPassedOverBriefly) {
  Harness h;
  h.activator.add_revision("rev", 1);
  h.activator.set_routable("rev", "1", "127.0.0.1:1", false, true);
  std::optional<Result<ReplicaLease>> held, waiting;
  h.acquire(held);
  h.run_for(5ms);
  ASSERT_TRUE(held && *held);
  h.acquire(waiting);
  h.run_for(5ms);
  held->value().release_cut_off();
  h.run_for(kReplicaCutOffFor / 4);
  EXPECT_FALSE(waiting);
  h.run_for(kReplicaCutOffFor);
  ASSERT_TRUE(waiting && *waiting) << "a live replica takes requests again";
  EXPECT_EQ(h.activator.counters("rev")->completed, 1u) << "the cut-off request reached the replica";
}

// Scale-down ordering: a request counts as in flight from the moment its replica is picked (before it
// connects), so a replica closed right after the pick reports it until the lease goes, and the runtime,
// which SIGTERMs a closed replica only at zero in flight, cannot stop it under the request.
TEST(Activator, AReplicaClosedAfterItWasPickedCountsTheRequestUntilItsLeaseGoes) {
  Harness h;
  h.activator.add_revision("rev", 4);
  h.activator.set_routable("rev", "1", "127.0.0.1:1", false, true);
  std::optional<Result<ReplicaLease>> picked, after;
  h.acquire(picked);
  h.run_for(5ms);
  ASSERT_TRUE(picked && *picked);
  h.activator.close_replica("rev", "1");
  EXPECT_EQ(h.activator.in_flight("rev", "1"), 1u) << "picked, not yet connected: still in flight";
  h.acquire(after, 50ms);
  h.run_for(100ms);
  ASSERT_TRUE(after);
  EXPECT_FALSE(*after) << "a closed replica takes no new request";
  picked->value().release();
  EXPECT_EQ(h.activator.in_flight("rev", "1"), 0u);
}

// A single replica that cut one request off: the runtime is asked to check it, and once it reports
// the replica ready again the waiting request goes to it at once instead of after kReplicaCutOffFor.
TEST(Activator, AReplicaThatCutARequestOffIsCheckedAndServesAgainOnceReported) {
  asio::io_context io;
  std::vector<std::pair<std::string, std::string>> checks;
  Activator activator(ActivatorOptions{}, {}, [&](const std::string& revision, const std::string& replica) {
    checks.emplace_back(revision, replica);
  });
  activator.add_revision("rev", 1);
  activator.set_routable("rev", "1", "127.0.0.1:1", false, true);
  std::optional<Result<ReplicaLease>> held, waiting;
  auto acquire = [&](std::optional<Result<ReplicaLease>>& out) {
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          out = co_await activator.acquire("rev", std::chrono::steady_clock::now() + 5s, nullptr);
        },
        asio::detached);
  };
  auto run_for = [&](std::chrono::milliseconds d) {
    io.restart();
    io.run_for(d);
  };
  acquire(held);
  run_for(5ms);
  ASSERT_TRUE(held && *held);
  acquire(waiting);
  run_for(5ms);
  EXPECT_TRUE(checks.empty());
  held->value().release_cut_off();
  ASSERT_EQ(checks.size(), 1u);
  EXPECT_EQ(checks[0], std::make_pair(std::string("rev"), std::string("1")));
  run_for(5ms);
  EXPECT_FALSE(waiting) << "passed over until the check answers";
  // The check: the process runs and its probe passes.
  activator.set_routable("rev", "1", "127.0.0.1:1", false, true);
  run_for(kReplicaCutOffFor / 8);
  ASSERT_TRUE(waiting && *waiting) << "served as soon as the replica is reported ready";
  EXPECT_EQ(waiting->value().replica(), "1");
}

}  // namespace
}  // namespace sluice::agents
