// Fault test: the wall clock jumps while a real `sluice serve` works. The server runs under libfaketime
// with a timestamp file that the test rewrites (FAKETIME_NO_CACHE: read at every clock read), and with
// CLOCK_MONOTONIC left alone (FAKETIME_DONT_FAKE_MONOTONIC), so only the wall clock jumps: back by hours,
// then forward by days, while events are published and a subscriber fails some attempts (retries with
// backoff are pending across each jump) and refuses another trigger's events outright (undelivered events
// sit in the log when the forward jump makes them look days old).
//
// Sluice's timers, backoff and timeouts run on the steady clock, so nothing may stall after a backward
// jump; knativearrivaltime follows the wall clock, jumps included; and the log ages its segments on the
// wall clock read when it opened plus steady time since (broker/file_log.hpp), so the forward jump must
// not make retention by age delete the undelivered events. The counts are printed for bench/RESULTS.md.
//
// libfaketime changes what the process reads from the wall clock; it cannot move the kernel's deadlines
// of waits on CLOCK_REALTIME. Sluice's own waits are on CLOCK_MONOTONIC (Asio's steady timers, condition
// variables on std::chrono::steady_clock), which a real jump does not move either. libfaketime does shift
// absolute timerfd deadlines, CLOCK_MONOTONIC ones included, which would stall Asio's timers after the
// jump back on a machine up for less than three hours: tests/preload/real_timerfd.cpp, preloaded first,
// keeps timerfds as the kernel has them.

#include <atomic>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "tests/integration/broker_support.hpp"

namespace sluice::testing {
namespace {

using SteadyClock = std::chrono::steady_clock;

/// libfaketime's multi-threaded library where Debian's `faketime` package puts it, or "" when absent.
std::string find_libfaketime() {
  for (const char* path :
       {"/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1", "/usr/lib/faketime/libfaketimeMT.so.1",
        "/usr/local/lib/faketime/libfaketimeMT.so.1"})
    if (std::filesystem::exists(path)) return path;
  return "";
}

/// The wall-clock offset libfaketime applies, written where the server reads it ("+0", "-3h", "+10d").
class FakeWallClock {
 public:
  explicit FakeWallClock(std::string path) : path_(std::move(path)) { set("+0"); }
  void set(const std::string& offset) {
    const std::string tmp = path_ + ".tmp";
    std::ofstream(tmp) << offset << "\n";
    std::filesystem::rename(tmp, path_);  // a reader never sees a half-written file
  }
  /// The environment that puts a process on this clock.
  std::map<std::string, std::string> env(const std::string& library) const {
    std::string asan = std::getenv("ASAN_OPTIONS") ? std::getenv("ASAN_OPTIONS") : "";
    // ASan wants its runtime first in the library list; libfaketime preloaded ahead of it is harmless.
    asan += (asan.empty() ? "" : ":") + std::string("verify_asan_link_order=0");
    // libreal_timerfd first, so that its timerfd functions are the ones the server calls.
    return {{"LD_PRELOAD", built_program("libreal_timerfd.so") + ":" + library},
            {"FAKETIME_TIMESTAMP_FILE", path_},
            {"FAKETIME_NO_CACHE", "1"},
            {"FAKETIME_DONT_FAKE_MONOTONIC", "1"},
            {"ASAN_OPTIONS", asan}};
  }

 private:
  std::string path_;
};

/// Seconds between the real wall clock and an RFC 3339 UTC timestamp (knativearrivaltime); positive
/// when the timestamp is ahead.
double seconds_ahead(const std::string& rfc3339) {
  std::tm tm{};
  if (std::sscanf(rfc3339.c_str(), "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                  &tm.tm_min, &tm.tm_sec) != 6)
    return 1e18;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return std::difftime(timegm(&tm), std::time(nullptr));
}

/// Publishes events of type t from a thread until stopped, at most 200 a second (below what the
/// subscriber takes while a fifth of the events are retried); records the acknowledged ids.
class Publisher {
 public:
  explicit Publisher(SluiceServer& server) {
    thread_ = std::thread([this, &server] {
      auto next = SteadyClock::now();
      for (int i = 0; !stop_; ++i) {
        std::this_thread::sleep_until(next);  // the pace of a load generator, not a wait for a condition
        next += std::chrono::milliseconds(5);
        const std::string id = "e" + std::to_string(i);
        const int status = publish(server, id, "t");
        std::lock_guard lock(mu_);
        if (status == 202)
          acknowledged_.insert(id);
        else
          ++refused_;
      }
    });
  }
  ~Publisher() { stop(); }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::set<std::string> acknowledged() const {
    std::lock_guard lock(mu_);
    return acknowledged_;
  }
  std::size_t refused() const {
    std::lock_guard lock(mu_);
    return refused_;
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mu_;
  std::set<std::string> acknowledged_;
  std::size_t refused_ = 0;
};

nlohmann::json broker_status(SluiceServer& server, const std::string& name) {
  httplib::Client client("127.0.0.1", server.port());
  auto res = client.Get("/apis/v1/brokers/" + name);
  if (!res || res->status != 200) return nlohmann::json::object();
  auto j = nlohmann::json::parse(res->body, nullptr, false);
  return j.is_discarded() ? nlohmann::json::object() : j.value("status", nlohmann::json::object());
}

bool healthy(SluiceServer& server) {
  httplib::Client client("127.0.0.1", server.port());
  client.set_read_timeout(std::chrono::seconds(5));
  auto ready = client.Get("/readyz");
  auto health = client.Get("/healthz");
  return server.process().running() && ready && ready->status == 200 && health && health->status == 200;
}

TEST(ClockJump, WallClockJumpsBackAndForwardLoseNothingAndStallNothing) {
  const std::string libfaketime = find_libfaketime();
  if (libfaketime.empty())
    GTEST_SKIP() << "libfaketime not found (Debian package faketime; scripts/install-deps.sh installs it)";
  TempDir dir;
  FakeWallClock wall(dir.path() + "/faketime");

  // /main: every fifth event fails its first three attempts (500), so retries with backoff are always
  // pending. /held: refused (503) until released, so those events stay undelivered in the log.
  std::atomic<bool> released{false};
  std::mutex attempts_mu;
  std::map<std::string, int> attempts;   // by ce-id, on /main
  std::map<std::string, int> successes;  // 2xx answers by ce-id
  std::map<std::string, SteadyClock::time_point> first_success;
  HttpSink sink;
  sink.respond([&](const ReceivedRequest& r, std::size_t) {
    SinkResponse answer;
    const std::string id = r.header("ce-id");
    std::lock_guard lock(attempts_mu);
    if (r.path == "/held") {
      answer.status = released ? 200 : 503;
    } else {
      const int attempt = ++attempts[id];
      if (std::hash<std::string>{}(id) % 5 == 0 && attempt <= 3) answer.status = 500;
    }
    if (answer.status == 200 && ++successes[id] == 1) first_success[id] = SteadyClock::now();
    return answer;
  });
  // Waits until every id in `ids` got a 2xx from the sink (a failed attempt is no delivery).
  auto all_delivered = [&](const std::set<std::string>& ids, std::chrono::seconds timeout) {
    return wait_until(
        [&] {
          std::lock_guard lock(attempts_mu);
          return std::all_of(ids.begin(), ids.end(), [&](const auto& id) { return successes.count(id) > 0; });
        },
        timeout);
  };
  const auto started = SteadyClock::now();
  SluiceServer server({}, "", wall.env(libfaketime));
  ASSERT_TRUE(server.wait_ready());
  apply_yaml(server,
             broker_yaml("default", "retention: {maxAge: P1D}") + "---\n" +
                 trigger_yaml("main", sink.url() + "/main",
                              "  filter: {attributes: {type: t}}\n"
                              "  delivery: {retry: 10, backoffPolicy: exponential, backoffDelay: PT0.2S}\n") +
                 "---\n" +
                 trigger_yaml("held", sink.url() + "/held",
                              "  filter: {attributes: {type: held}}\n"
                              "  delivery: {retry: 1000, backoffPolicy: linear, backoffDelay: PT0.2S}\n"));
  std::set<std::string> held;
  for (int i = 0; i < 10; ++i) {
    const std::string id = "h" + std::to_string(i);
    ASSERT_EQ(publish(server, id, "held"), 202);
    held.insert(id);
  }

  Publisher publisher(server);
  std::set<std::string> probes;  // published right after each jump
  // Everything acknowledged so far is delivered soon after each jump, and new events arrive stamped
  // with the jumped wall clock.
  auto jump = [&](const std::string& offset, double expected_seconds_ahead) {
    ASSERT_TRUE(wait_until([&] { return publisher.acknowledged().size() >= 50; }, std::chrono::seconds(20)));
    const auto before = publisher.acknowledged();
    wall.set(offset);
    const auto jumped_at = SteadyClock::now();
    EXPECT_TRUE(healthy(server)) << "after the jump to " << offset << "\n" << server.process().output();
    // Retries that were pending across the jump (backoff 0.2 s, 0.4 s, 0.8 s) go on.
    EXPECT_TRUE(all_delivered(before, std::chrono::seconds(15)))
        << "events acknowledged before the jump to " << offset << " were not delivered\n"
        << server.process().output();
    // Some of them were retried across the jump: failed before it, delivered after it.
    std::size_t retried_across = 0;
    {
      std::lock_guard lock(attempts_mu);
      for (const auto& id : before)
        retried_across +=
            attempts[id] > 1 && first_success.count(id) && first_success[id] > jumped_at ? 1 : 0;
    }
    EXPECT_GT(retried_across, 0u) << "no retry was pending across the jump to " << offset;
    std::cout << "clock-jump " << offset << ": " << before.size() << " events acknowledged before it ("
              << retried_across << " of them retried across it), all delivered "
              << std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - jumped_at).count()
              << " ms after it" << std::endl;
    // An event published after the jump carries the jumped arrival time.
    const std::string probe = "after" + offset;
    ASSERT_EQ(publish(server, probe, "t"), 202);
    probes.insert(probe);
    std::string arrival;
    ASSERT_TRUE(wait_until(
        [&] {
          for (const auto& r : sink.requests())
            if (r.header("ce-id") == probe) arrival = r.header("ce-knativearrivaltime");
          return !arrival.empty();
        },
        std::chrono::seconds(10)));
    EXPECT_NEAR(seconds_ahead(arrival), expected_seconds_ahead, 120)
        << "knativearrivaltime " << arrival << " does not show the jump to " << offset << ": is libfaketime ("
        << libfaketime << ") in effect?";
  };
  jump("-3h", -3 * 3600.0);
  jump("+10d", 10 * 86400.0);
  ASSERT_TRUE(wait_until([&] { return publisher.acknowledged().size() >= 150; }, std::chrono::seconds(20)));
  publisher.stop();
  auto acknowledged = publisher.acknowledged();
  acknowledged.insert(probes.begin(), probes.end());
  EXPECT_TRUE(all_delivered(acknowledged, std::chrono::seconds(20))) << server.process().output();

  // The server enforces retention every 30 s: let one pass run after the forward jump. The held events
  // look ten days old on the wall clock (maxAge is one day), but are not.
  ASSERT_TRUE(wait_until([&] { return SteadyClock::now() - started > std::chrono::seconds(33); },
                         std::chrono::seconds(40)));
  EXPECT_TRUE(healthy(server)) << server.process().output();
  const auto broker = broker_status(server, "default");
  const std::int64_t start_offset =
      broker.contains("log") ? broker["log"].value("startOffset", std::int64_t{-1}) : -1;
  EXPECT_EQ(start_offset, 0) << "retention deleted events: " << broker.dump();
  released = true;
  EXPECT_TRUE(all_delivered(held, std::chrono::seconds(20)))
      << "undelivered events did not survive the forward jump\n"
      << server.process().output();

  std::size_t lost = 0;
  std::size_t duplicated = 0;
  std::size_t delivered = 0;
  {
    std::lock_guard lock(attempts_mu);
    for (const auto& id : acknowledged) lost += successes.count(id) ? 0 : 1;
    for (const auto& id : held) lost += successes.count(id) ? 0 : 1;
    for (const auto& [id, n] : successes) duplicated += n > 1 ? 1 : 0;
    delivered = successes.size();
  }
  std::cout << "clock-jump: jumps=-3h,+10d acknowledged=" << acknowledged.size() + held.size()
            << " (held=" << held.size() << ") refused=" << publisher.refused() << " delivered=" << delivered
            << " deliveries=" << sink.count() << " duplicated=" << duplicated << " lost=" << lost
            << std::endl;
  EXPECT_EQ(lost, 0u);
}

}  // namespace
}  // namespace sluice::testing
