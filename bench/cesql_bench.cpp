// CESQL: parse time, and evaluation rate of representative trigger filters on the compiled form.
// `allocs/eval` counts global operator new calls per evaluation (the hot path should make none).
//
//   ./build-cesql/cesql_bench

#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>

#include "core/cloud_event.hpp"
#include "trigger/cesql/cesql.hpp"

namespace {
std::atomic<std::uint64_t> g_allocations{0};
}  // namespace

// Counting allocator for this benchmark program only. Kept out of line: once inlined, GCC pairs the
// malloc/free inside with new/delete expressions and warns (-Wmismatched-new-delete).
[[gnu::noinline]] void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* p) noexcept {
  std::free(p);
}
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}

namespace {

using sluice::CloudEvent;
using sluice::cesql::Expression;

constexpr const char* kExactType = "type = 'com.example.order.created'";
constexpr const char* kLikePrefix = "type LIKE 'com.example.%'";
constexpr const char* kLikeGeneral = "type LIKE 'com.%.order._reated'";
constexpr const char* kCompound =
    "(type = 'com.example.order.created' OR type LIKE 'com.example.invoice.%') AND "
    "region IN ('us-east', 'eu-north', 'eu-west') AND source LIKE 'https://%' AND "
    "(priority > 3 OR EXISTS urgent)";

CloudEvent order_event() {
  CloudEvent e;
  e.id = "0b7c4a1e-9a53-4a43-a0f6-1c8e1f1d0c42";
  e.source = "https://shop.example.com/orders";
  e.type = "com.example.order.created";
  e.subject = "order-42";
  e.time = "2026-11-22T10:00:00.123Z";
  e.datacontenttype = "application/json";
  e.extensions["region"] = sluice::AttributeValue::of_string("eu-west");
  e.extensions["priority"] = sluice::AttributeValue::of_int(7);
  e.extensions["tenant"] = sluice::AttributeValue::of_string("acme");
  e.extensions["traceparent"] =
      sluice::AttributeValue::of_string("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  return e;
}

void BM_Parse(benchmark::State& state) {
  for (auto _ : state) {
    auto e = Expression::compile(kCompound);
    benchmark::DoNotOptimize(e);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Parse);

void run_matches(benchmark::State& state, const char* text, bool expected) {
  const auto compiled = Expression::compile(text);
  if (!compiled) {
    state.SkipWithError(compiled.error().message.c_str());
    return;
  }
  const Expression& expression = compiled.value();
  const CloudEvent event = order_event();
  if (expression.matches(event) != expected) {
    state.SkipWithError("unexpected filter decision");
    return;
  }
  const std::uint64_t allocations_before = g_allocations.load();
  for (auto _ : state) {
    bool matched = expression.matches(event);
    benchmark::DoNotOptimize(matched);
  }
  const double allocations = static_cast<double>(g_allocations.load() - allocations_before);
  state.counters["allocs/eval"] = allocations / static_cast<double>(state.iterations());
  state.SetItemsProcessed(state.iterations());
}

void BM_EvalExactType(benchmark::State& state) {
  run_matches(state, kExactType, true);
}
BENCHMARK(BM_EvalExactType);

void BM_EvalLikePrefixType(benchmark::State& state) {
  run_matches(state, kLikePrefix, true);
}
BENCHMARK(BM_EvalLikePrefixType);

void BM_EvalLikeGeneralType(benchmark::State& state) {
  run_matches(state, kLikeGeneral, true);
}
BENCHMARK(BM_EvalLikeGeneralType);

void BM_EvalCompound(benchmark::State& state) {
  run_matches(state, kCompound, true);
}
BENCHMARK(BM_EvalCompound);

// The same compound filter on an event it rejects early (the first AND operand is false).
void BM_EvalCompoundReject(benchmark::State& state) {
  run_matches(state, "type = 'com.example.refund' AND region IN ('us-east', 'eu-north', 'eu-west')", false);
}
BENCHMARK(BM_EvalCompoundReject);

// evaluate() with an error list, as `sluice cesql eval` calls it: returns a Value (copies strings).
void BM_EvaluateWithErrors(benchmark::State& state) {
  const auto compiled = Expression::compile(kCompound);
  const CloudEvent event = order_event();
  std::vector<sluice::cesql::EvalError> errors;
  for (auto _ : state) {
    errors.clear();
    auto v = compiled.value().evaluate(event, &errors);
    benchmark::DoNotOptimize(v);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EvaluateWithErrors);

}  // namespace

BENCHMARK_MAIN();
