// FileLog throughput: durable appends of 1 KiB records from 1 and 32 concurrent appenders (each waits for
// its acknowledgement, as an ingress connection does), and sequential reads.
//
//   build-log/file_log_bench [--benchmark_filter=...]
// SLUICE_BENCH_DIR picks the directory for the log files (default: a fresh directory under $TMPDIR or /tmp);
// the disk under it decides the fdatasync cost.

#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <memory>
#include <string>

#include "broker/file_log.hpp"
#include "core/clock.hpp"

namespace {

using namespace sluice;

std::unique_ptr<FileLog> g_log;
std::string g_dir;

std::string make_dir() {
  const char* base = std::getenv("SLUICE_BENCH_DIR");
  std::string root = base ? base : std::filesystem::temp_directory_path().string();
  std::string tmpl = root + "/sluice-log-bench-XXXXXX";
  if (!::mkdtemp(tmpl.data())) std::abort();
  return tmpl;
}

void open_log(bool fsync) {
  g_dir = make_dir();
  FileLogOptions options;
  options.fsync = fsync;
  options.max_pending_appends = 1 << 20;
  options.max_pending_bytes = 512ull << 20;
  auto log = FileLog::open(g_dir, options, RealClock::instance());
  if (!log) std::abort();
  g_log = std::move(log.value());
}

void close_log() {
  g_log.reset();
  std::filesystem::remove_all(g_dir);
}

void setup_durable(const benchmark::State&) {
  open_log(true);
}
void setup_no_fsync(const benchmark::State&) {
  open_log(false);
}
void teardown(const benchmark::State&) {
  close_log();
}

// Each thread appends one 1 KiB record at a time and waits until it is durable.
void BM_AppendAcked(benchmark::State& state) {
  const std::string payload(1024, 'e');
  const auto before = g_log->stats();
  for (auto _ : state) {
    std::promise<void> done;
    auto future = done.get_future();
    g_log->append({payload}, [&](Result<std::uint64_t> r) {
      if (!r) std::abort();
      done.set_value();
    });
    future.wait();
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(payload.size()));
  if (state.thread_index() == 0) {
    // Group commit at work: how many acknowledged appends shared each fdatasync (all threads together).
    const auto after = g_log->stats();
    const double fsyncs = static_cast<double>(after.fsyncs - before.fsyncs);
    state.counters["appends_per_fsync"] =
        fsyncs > 0 ? static_cast<double>(after.appends - before.appends) / fsyncs : 0.0;
  }
}
BENCHMARK(BM_AppendAcked)
    ->Setup(setup_durable)
    ->Teardown(teardown)
    ->Threads(1)
    ->Threads(32)
    ->UseRealTime()
    ->MinTime(3.0);
BENCHMARK(BM_AppendAcked)
    ->Name("BM_AppendAcked_NoFsync")
    ->Setup(setup_no_fsync)
    ->Teardown(teardown)
    ->Threads(1)
    ->Threads(32)
    ->UseRealTime()
    ->MinTime(2.0);

// One producer keeps up to 256 appends in flight (a pipelining client): the writer's raw throughput.
void BM_AppendPipelined(benchmark::State& state) {
  const std::string payload(1024, 'e');
  constexpr int kWindow = 256;
  std::atomic<int> in_flight{0};
  for (auto _ : state) {
    while (in_flight.load(std::memory_order_acquire) >= kWindow) {
    }
    in_flight.fetch_add(1, std::memory_order_relaxed);
    g_log->append({payload}, [&](Result<std::uint64_t> r) {
      if (!r) std::abort();
      in_flight.fetch_sub(1, std::memory_order_release);
    });
  }
  if (!g_log->flush()) std::abort();
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(payload.size()));
}
BENCHMARK(BM_AppendPipelined)->Setup(setup_durable)->Teardown(teardown)->UseRealTime()->MinTime(3.0);

// Sequential reads of 100 records per call over 256 MiB of 1 KiB records (page cache warm).
constexpr std::uint64_t kReadRecords = 256 * 1024;

void setup_read(const benchmark::State&) {
  open_log(false);
  const std::string payload(1024, 'r');
  std::vector<std::string> batch(256, payload);
  for (std::uint64_t i = 0; i < kReadRecords; i += batch.size()) g_log->append(batch, [](auto) {});
  if (!g_log->flush()) std::abort();
}

void BM_ReadSequential(benchmark::State& state) {
  const auto max_records = static_cast<std::size_t>(state.range(0));
  std::uint64_t from = 0;
  std::int64_t records = 0;
  std::int64_t bytes = 0;
  for (auto _ : state) {
    auto batch = g_log->read(from, max_records);
    if (!batch || batch.value().empty()) std::abort();
    records += static_cast<std::int64_t>(batch.value().size());
    for (const auto& r : batch.value()) bytes += static_cast<std::int64_t>(r.payload.size());
    from = batch.value().back().offset + 1;
    if (from >= kReadRecords) from = 0;
  }
  state.SetItemsProcessed(records);
  state.SetBytesProcessed(bytes);
}
BENCHMARK(BM_ReadSequential)
    ->Setup(setup_read)
    ->Teardown(teardown)
    ->Arg(1)
    ->Arg(100)
    ->Arg(1000)
    ->UseRealTime()
    ->MinTime(2.0);

}  // namespace

BENCHMARK_MAIN();
