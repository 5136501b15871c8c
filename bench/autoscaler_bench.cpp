// Decider cost per revision per tick: the Autoscaler service ticking 10,000 revisions (target: a
// tick for all of them under 50 ms on one core), plus the pure KPA decision and a metric record.
//
//   build-kpa/autoscaler_bench --benchmark_counters_tabular=true

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "autoscaler/autoscaler.hpp"
#include "autoscaler/kpa.hpp"

namespace {

using sluice::ManualClock;
using namespace sluice::autoscaler;
using std::chrono::seconds;

// Revisions with varied steady load; ready replicas follow the decisions.
struct Fleet {
  explicit Fleet(int revisions, bool predictive) : scaler(clock) {
    std::map<std::string, std::string> annotations{{"autoscaling.knative.dev/target", "10"}};
    if (predictive) annotations["sluice.dev/predictive"] = "enable";
    for (int i = 0; i < revisions; ++i) {
      names.push_back("agent-" + std::to_string(i) + "-00001");
      (void)scaler.add_revision(names.back(), annotations);
    }
    // Warm up: a full stable window of samples and ticks.
    for (int s = 0; s < 64; ++s) advance_one_second(s % 2 == 0);
  }

  void record_second() {
    for (std::size_t i = 0; i < names.size(); ++i) {
      const double load = static_cast<double>((i * 7 + second) % 120);  // 0..119 in flight
      scaler.record(names[i], MetricSample{load, load * 5}, clock.now());
    }
  }

  void advance_one_second(bool tick) {
    clock.advance(seconds(1));
    ++second;
    record_second();
    if (tick) apply(scaler.tick());
  }

  void apply(const std::vector<Decision>& decisions) {
    for (const auto& d : decisions) scaler.set_ready_pods(d.revision, d.desired_replicas);
  }

  ManualClock clock;
  Autoscaler scaler;
  std::vector<std::string> names;
  std::size_t second = 0;
};

void tick_fleet(benchmark::State& state, bool predictive) {
  const auto revisions = static_cast<int>(state.range(0));
  Fleet fleet(revisions, predictive);
  for (auto _ : state) {
    state.PauseTiming();
    fleet.advance_one_second(false);
    fleet.advance_one_second(false);
    state.ResumeTiming();
    auto decisions = fleet.scaler.tick();
    benchmark::DoNotOptimize(decisions.data());
    state.PauseTiming();
    fleet.apply(decisions);
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * revisions);
  state.counters["revisions"] = revisions;
  state.counters["ns_per_revision"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * revisions,
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_AutoscalerTick(benchmark::State& state) {
  tick_fleet(state, false);
}
BENCHMARK(BM_AutoscalerTick)->Arg(1000)->Arg(10000)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_AutoscalerTickPredictive(benchmark::State& state) {
  tick_fleet(state, true);
}
BENCHMARK(BM_AutoscalerTickPredictive)->Arg(10000)->Unit(benchmark::kMillisecond)->UseRealTime();

// One second of samples for every revision (what the runtime's reporters cost the autoscaler).
void BM_AutoscalerRecordSecond(benchmark::State& state) {
  Fleet fleet(static_cast<int>(state.range(0)), false);
  for (auto _ : state) {
    fleet.clock.advance(seconds(1));
    ++fleet.second;
    fleet.record_second();
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_AutoscalerRecordSecond)->Arg(10000)->Unit(benchmark::kMillisecond)->UseRealTime();

// The pure KPA decision, no windows.
void BM_KpaDecide(benchmark::State& state) {
  ManualClock clock;
  DeciderSpec spec;
  spec.target_value = 10;
  spec.scale_down_delay = seconds(30);
  DeciderState decider = make_decider_state(spec, 3, clock.now());
  double load = 0;
  for (auto _ : state) {
    clock.advance(seconds(2));
    load = load > 500 ? 0 : load + 7;
    auto r = decide(spec, decider, Observation{5, load, load * 1.5}, clock.now());
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_KpaDecide);

}  // namespace

BENCHMARK_MAIN();
