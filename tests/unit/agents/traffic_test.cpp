#include "agents/traffic.hpp"

#include <gtest/gtest.h>

#include <map>
#include <random>

namespace sluice::agents {
namespace {

using std::chrono::seconds;

std::map<std::string, int> count_picks(const TrafficTable& table, int n, std::uint64_t seed = 42) {
  std::mt19937_64 rng(seed);
  std::map<std::string, int> counts;
  for (int i = 0; i < n; ++i) {
    const std::string* rev = table.pick(rng());
    EXPECT_NE(rev, nullptr);
    if (rev) counts[*rev]++;
  }
  return counts;
}

std::vector<RevisionInfo> revisions(int n, bool ready = true) {
  std::vector<RevisionInfo> out;
  for (int i = 1; i <= n; ++i) out.push_back({revision_name("a", i), ready});
  return out;
}

TEST(TrafficTable, DefaultRoutesEverythingToLatestReady) {
  auto revs = revisions(3);
  revs[2].ready = false;  // the newest is still coming up: latestRevision stays on a-00002
  auto t = TrafficTable::build({{"", true, 100, ""}}, revs);
  ASSERT_TRUE(t) << t.error().to_string();
  for (std::uint64_t i = 0; i < 100; ++i) EXPECT_EQ(*t.value().pick(i), "a-00002");
  EXPECT_EQ(latest_ready_revision(revisions(2, false)), "a-00002");
  EXPECT_EQ(latest_ready_revision({}), "");
}

TEST(TrafficTable, SplitMeasuredWithinTolerance) {
  std::vector<TrafficTarget> traffic = {
      {"", true, 70, "current"}, {"a-00001", false, 20, "old"}, {"a-00002", false, 10, ""}};
  auto t = TrafficTable::build(traffic, revisions(3));
  ASSERT_TRUE(t) << t.error().to_string();
  const int n = 100000;
  auto counts = count_picks(t.value(), n);
  EXPECT_NEAR(counts["a-00003"] / double(n), 0.70, 0.01);
  EXPECT_NEAR(counts["a-00001"] / double(n), 0.20, 0.01);
  EXPECT_NEAR(counts["a-00002"] / double(n), 0.10, 0.01);
  // Sequential counters (not random) spread as well.
  std::map<std::string, int> seq;
  for (int i = 0; i < n; ++i) seq[*t.value().pick(static_cast<std::uint64_t>(i))]++;
  EXPECT_NEAR(seq["a-00003"] / double(n), 0.70, 0.01);
  ASSERT_EQ(t.value().split().size(), 3u);
  EXPECT_EQ(t.value().split()[0].first, "a-00003");  // newest first
}

TEST(TrafficTable, Tags) {
  std::vector<TrafficTarget> traffic = {
      {"", true, 100, "latest"}, {"a-00001", false, 0, "blue"}, {"a-00002", false, 0, "green"}};
  auto t = TrafficTable::build(traffic, revisions(3));
  ASSERT_TRUE(t) << t.error().to_string();
  ASSERT_NE(t.value().by_tag("blue"), nullptr);
  EXPECT_EQ(*t.value().by_tag("blue"), "a-00001");
  EXPECT_EQ(*t.value().by_tag("green"), "a-00002");
  EXPECT_EQ(*t.value().by_tag("latest"), "a-00003");
  EXPECT_EQ(t.value().by_tag("red"), nullptr);
  // A 0% tagged revision gets no untagged traffic but is still routed to (kept by the server).
  auto counts = count_picks(t.value(), 1000);
  EXPECT_EQ(counts.size(), 1u);
  EXPECT_TRUE(t.value().routes_to("a-00001"));
}

TEST(TrafficTable, StickyKeysKeepTheirRevision) {
  std::vector<TrafficTarget> traffic = {{"a-00001", false, 50, ""}, {"a-00002", false, 50, ""}};
  auto t = TrafficTable::build(traffic, revisions(2));
  ASSERT_TRUE(t);
  std::map<std::string, int> by_revision;
  for (int i = 0; i < 1000; ++i) {
    std::string key = "session-" + std::to_string(i);
    const std::string* first = t.value().pick(traffic_key_hash(key));
    for (int k = 0; k < 5; ++k) EXPECT_EQ(*t.value().pick(traffic_key_hash(key)), *first);
    by_revision[*first]++;
  }
  // Keys are spread over both revisions, roughly evenly.
  EXPECT_NEAR(by_revision["a-00001"], 500, 80);
  // Equal keys, equal hashes (the function is fixed, not per-process).
  EXPECT_EQ(traffic_key_hash("order-17"), traffic_key_hash(std::string("order-") + "17"));
  EXPECT_NE(traffic_key_hash("order-17"), traffic_key_hash("order-18"));
}

TEST(TrafficTable, ErrorsNameTheTarget) {
  auto missing = TrafficTable::build({{"a-00009", false, 100, ""}}, revisions(2));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().subject, "spec.traffic[0].revisionName");
  auto none = TrafficTable::build({{"", true, 100, ""}}, {});
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().subject, "spec.traffic[0].latestRevision");
  auto sum = TrafficTable::from_resolved({{"a-00001", 60, "", false}}, revisions(1));
  ASSERT_FALSE(sum);
  EXPECT_EQ(sum.error().subject, "spec.traffic");
}

int percent_of(const std::vector<ResolvedTarget>& targets, const std::string& rev) {
  int p = 0;
  for (const auto& t : targets) {
    if (t.revision == rev) p += t.percent;
  }
  return p;
}

TEST(Rollout, LatestShareGrowsInStepsOverTheDuration) {
  ManualClock clock;
  std::vector<TrafficTarget> spec = {{"", true, 100, "current"}};
  RolloutState state;
  state = begin_rollout(state, "a-00001", seconds(10), clock.now());
  EXPECT_TRUE(state.previous.empty());  // first revision: no rollout
  EXPECT_EQ(percent_of(effective_traffic(spec, state, clock.now()), "a-00001"), 100);

  state = begin_rollout(state, "a-00002", seconds(10), clock.now());
  ASSERT_EQ(state.previous.size(), 1u);
  // 10 s → 10 steps of 10%, the first at once.
  std::vector<int> seen;
  for (int s = 0; s < 10; ++s) {
    auto eff = effective_traffic(spec, state, clock.now());
    int total = 0;
    for (const auto& t : eff) total += t.percent;
    EXPECT_EQ(total, 100);
    seen.push_back(percent_of(eff, "a-00002"));
    EXPECT_EQ(percent_of(eff, "a-00001"), 100 - seen.back());
    // The tag follows the latest revision throughout.
    EXPECT_EQ(eff[0].revision, "a-00002");
    EXPECT_EQ(eff[0].tag, "current");
    auto next = next_rollout_step(state, clock.now());
    if (s < 9) {
      ASSERT_TRUE(next);
      EXPECT_EQ(*next - clock.now(), seconds(1));
      EXPECT_FALSE(rollout_finished(state, clock.now()));
    }
    clock.advance(seconds(1));
  }
  EXPECT_EQ(seen, (std::vector<int>{10, 20, 30, 40, 50, 60, 70, 80, 90, 100}));
  EXPECT_TRUE(rollout_finished(state, clock.now()));
  EXPECT_FALSE(next_rollout_step(state, clock.now()));
  auto done = effective_traffic(spec, state, clock.now());
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0], (ResolvedTarget{"a-00002", 100, "current", true}));
}

TEST(Rollout, AppliesToTheLatestShareOnlyAndStacks) {
  ManualClock clock;
  std::vector<TrafficTarget> spec = {{"", true, 80, ""}, {"a-00001", false, 20, "pinned"}};
  RolloutState state = begin_rollout({}, "a-00002", seconds(4), clock.now());
  state = begin_rollout(state, "a-00003", seconds(4), clock.now());  // 4 s → 4 steps of 25%
  auto eff = effective_traffic(spec, state, clock.now());
  EXPECT_EQ(percent_of(eff, "a-00003"), 20);
  EXPECT_EQ(percent_of(eff, "a-00002"), 60);
  EXPECT_EQ(percent_of(eff, "a-00001"), 20);
  clock.advance(seconds(2));
  eff = effective_traffic(spec, state, clock.now());
  EXPECT_EQ(percent_of(eff, "a-00003"), 60);
  EXPECT_EQ(percent_of(eff, "a-00002"), 20);
  // a-00004 arrives mid-rollout: it starts from the current division (a-00003 60%, a-00002 20% of 80).
  state = begin_rollout(state, "a-00004", seconds(4), clock.now());
  ASSERT_EQ(state.previous.size(), 2u);
  eff = effective_traffic(spec, state, clock.now());
  EXPECT_EQ(percent_of(eff, "a-00004"), 20);
  EXPECT_EQ(percent_of(eff, "a-00003") + percent_of(eff, "a-00002"), 60);
  EXPECT_GT(percent_of(eff, "a-00003"), percent_of(eff, "a-00002"));
  clock.advance(seconds(4));
  eff = effective_traffic(spec, state, clock.now());
  EXPECT_EQ(percent_of(eff, "a-00004"), 80);
  EXPECT_EQ(percent_of(eff, "a-00001"), 20);
}

TEST(Rollout, StickyKeysOnlyMoveToTheNewRevision) {
  ManualClock clock;
  std::vector<TrafficTarget> spec = {{"", true, 100, ""}};
  RolloutState state = begin_rollout(begin_rollout({}, "a-00001", seconds(0), clock.now()), "a-00002",
                                     seconds(100), clock.now());
  auto revs = revisions(2);
  std::map<std::string, std::string> where;
  for (int step = 0; step < 100; step += 7) {
    auto t = TrafficTable::from_resolved(effective_traffic(spec, state, clock.now()), revs);
    ASSERT_TRUE(t) << t.error().to_string();
    for (int k = 0; k < 500; ++k) {
      std::string key = "k" + std::to_string(k);
      std::string rev = *t.value().pick(traffic_key_hash(key));
      if (where[key] == "a-00002") {
        EXPECT_EQ(rev, "a-00002") << "key " << key << " moved back";
      }
      where[key] = rev;
    }
    clock.advance(seconds(7));
  }
}

TEST(Rollout, ZeroDurationSwitchesAtOnce) {
  ManualClock clock;
  RolloutState state = begin_rollout(begin_rollout({}, "a-00001", seconds(0), clock.now()), "a-00002",
                                     seconds(0), clock.now());
  auto eff = effective_traffic({{"", true, 100, ""}}, state, clock.now());
  ASSERT_EQ(eff.size(), 1u);
  EXPECT_EQ(eff[0].revision, "a-00002");
  EXPECT_EQ(eff[0].percent, 100);
}

}  // namespace
}  // namespace sluice::agents
