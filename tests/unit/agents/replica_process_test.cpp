#include "agents/replica_process.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "agents/gpu.hpp"
#include "tests/support/wait.hpp"

namespace sluice::agents {
namespace {

using namespace std::chrono_literals;
using sluice::testing::wait_until;

const std::string kBin = SLUICE_BINARY_DIR;

/// A fresh directory under /tmp, removed at the end.
class ScratchDir {
 public:
  ScratchDir() {
    std::string templ = (std::filesystem::temp_directory_path() / "sluice-replica-XXXXXX").string();
    path_ = ::mkdtemp(templ.data());
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct HttpAnswer {
  int status = 0;
  std::string body;
};

/// A minimal blocking HTTP/1.1 GET to 127.0.0.1 (Connection: close), for talking to example agents.
HttpAnswer http_get(int port, const std::string& path) {
  HttpAnswer out;
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return out;
  }
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  (void)!::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string resp;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) resp.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  if (resp.rfind("HTTP/1.", 0) != 0) return out;
  out.status = std::atoi(resp.substr(9, 3).c_str());
  auto body = resp.find("\r\n\r\n");
  if (body != std::string::npos) out.body = resp.substr(body + 4);
  return out;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Records every state change the replica reports.
struct StateLog {
  std::mutex mu;
  std::vector<std::pair<ReplicaState, std::string>> events;
  std::vector<std::chrono::steady_clock::time_point> times;

  ReplicaProcess::StateCallback callback() {
    return [this](ReplicaState s, const std::string& reason) {
      std::lock_guard lock(mu);
      events.push_back({s, reason});
      times.push_back(std::chrono::steady_clock::now());
    };
  }
  int count(ReplicaState s) {
    std::lock_guard lock(mu);
    int n = 0;
    for (const auto& e : events) n += e.first == s ? 1 : 0;
    return n;
  }
  std::string dump() {
    std::lock_guard lock(mu);
    std::string out;
    for (const auto& [s, r] : events) out += std::string(to_string(s)) + ": " + r + "\n";
    return out;
  }
};

ReplicaConfig make_config(std::vector<std::string> command, const std::string& dir,
                          std::string replica = "1") {
  ReplicaConfig c;
  c.agent = "echo";
  c.revision = "echo-00001";
  c.replica = std::move(replica);
  c.container.command = std::move(command);
  auto port = pick_free_port();
  EXPECT_TRUE(port);
  c.port = port.value();
  c.log_path = replica_log_path(dir, c.agent, c.revision, c.replica);
  return c;
}

bool process_gone(pid_t pid) {
  return ::kill(pid, 0) != 0 && errno == ESRCH;
}

/// Nothing accepts connections on the port any more: a killed process's threads may still be exiting,
/// and its listening socket accepting, well after its main thread is a zombie.
bool port_refuses(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool refused =
      ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 && errno == ECONNREFUSED;
  ::close(fd);
  return refused;
}

TEST(RestartBackoff, DoublesUpToTheCapAndResetsAfterAStablePeriod) {
  ManualClock clock;
  RestartBackoff b(RestartPolicy{true, 1s, 8s, 30s});
  std::vector<std::chrono::milliseconds> delays;
  for (int i = 0; i < 6; ++i) delays.push_back(b.on_failure(clock.now()));
  EXPECT_EQ(delays, (std::vector<std::chrono::milliseconds>{1s, 2s, 4s, 8s, 8s, 8s}));
  // Ready, but not for long: the delays keep growing.
  b.on_ready(clock.now());
  clock.advance(29s);
  EXPECT_EQ(b.on_failure(clock.now()), 8s);
  // Ready for the stable period: the next failure starts over.
  b.on_ready(clock.now());
  clock.advance(30s);
  EXPECT_EQ(b.on_failure(clock.now()), 1s);
  EXPECT_EQ(b.on_failure(clock.now()), 2s);
}

TEST(ReplicaProcess, StartsEchoAgentWithEnvironmentAndLogs) {
  ScratchDir dir;
  std::string env_file = dir.path() + "/env.txt";
  // The shell records the environment it was given, then becomes the agent.
  auto config = make_config({"/bin/sh", "-c", "env > '" + env_file + "'; exec \"$0\"", kBin + "/echo_agent"},
                            dir.path(), "7");
  config.container.env = {{"MODEL", "small", {}}};
  config.extra_env = gpu_environment(GpuPlacement{{1, 3}, 0, "A100"});
  config.extra_env["SLUICE_GPU_MEMORY"] = "8589934592";
  config.container.readiness_probe.kind = ReadinessProbe::Kind::HttpGet;
  config.container.readiness_probe.path = "/healthz";
  StateLog log;
  ManualClock clock;
  ReplicaProcess replica(config, clock, log.callback());
  EXPECT_EQ(replica.address(), "127.0.0.1:" + std::to_string(config.port));
  replica.start();
  ASSERT_TRUE(wait_until([&] { return replica.state() == ReplicaState::Ready; }, 10s)) << log.dump();
  EXPECT_GT(replica.pid(), 0);
  EXPECT_EQ(log.count(ReplicaState::Starting), 1);

  auto answer = http_get(config.port, "/");
  EXPECT_EQ(answer.status, 200);
  EXPECT_NE(answer.body.find("\"revision\":\"echo-00001\""), std::string::npos) << answer.body;
  EXPECT_NE(answer.body.find("\"replica\":\"7\""), std::string::npos) << answer.body;

  std::string env = "\n" + read_text(env_file);
  for (const std::string& line :
       {"PORT=" + std::to_string(config.port), std::string("SLUICE_AGENT=echo"),
        std::string("SLUICE_REVISION=echo-00001"), std::string("SLUICE_REPLICA=7"),
        std::string("CUDA_VISIBLE_DEVICES=1,3"), std::string("SLUICE_GPU_MEMORY=8589934592"),
        std::string("MODEL=small"), std::string("K_SERVICE=echo")}) {
    EXPECT_NE(env.find("\n" + line + "\n"), std::string::npos) << line << " missing in\n" << env;
  }

  std::string log_path = dir.path() + "/logs/echo/echo-00001/7.log";
  EXPECT_EQ(config.log_path, log_path);
  ASSERT_TRUE(
      wait_until([&] { return read_text(log_path).find("echo_agent listening") != std::string::npos; }, 5s));
  EXPECT_NE(read_text(log_path).find("[sluice] starting (attempt 1"), std::string::npos)
      << read_text(log_path);

  pid_t pid = replica.pid();
  replica.stop(5s);
  ASSERT_TRUE(replica.wait_stopped(10s));
  EXPECT_EQ(replica.state(), ReplicaState::Stopped);
  EXPECT_EQ(replica.reason(), "exited with code 0 after SIGTERM");
  EXPECT_TRUE(process_gone(pid)) << "not reaped";
  EXPECT_NE(read_text(log_path).find("echo_agent: stopped"), std::string::npos);
}

TEST(ReplicaProcess, NotReadyUntilTheProbePasses) {
  ScratchDir dir;
  auto config = make_config({kBin + "/slow_agent"}, dir.path());
  config.container.env = {{"STARTUP_MS", "1200", {}}};
  config.container.readiness_probe.kind = ReadinessProbe::Kind::HttpGet;
  config.container.readiness_probe.path = "/healthz";
  StateLog log;
  ManualClock clock;
  ReplicaProcess replica(config, clock, log.callback());
  replica.start();
  ASSERT_TRUE(wait_until([&] { return log.count(ReplicaState::Starting) == 1; }, 5s));
  // The state turns Ready before the callback records it: wait for the record itself.
  ASSERT_TRUE(wait_until([&] { return log.count(ReplicaState::Ready) == 1; }, 10s)) << log.dump();
  std::unique_lock lock(log.mu);
  auto events = log.events;
  auto times = log.times;
  lock.unlock();
  ASSERT_EQ(events.size(), 2u) << log.dump();
  EXPECT_EQ(events[1].first, ReplicaState::Ready);
  // The agent slept 1.2 s before listening: Ready came no earlier.
  EXPECT_GE(times[1] - times[0], 1200ms);
  EXPECT_EQ(http_get(config.port, "/stats").status, 200);
}

// A replica whose readiness probe keeps failing used to read "started pid N" and nothing more.
TEST(ReplicaProcess, ReasonNamesTheFailingReadinessProbe) {
  ScratchDir dir;
  auto config = make_config({kBin + "/echo_agent"}, dir.path());
  config.container.readiness_probe.kind = ReadinessProbe::Kind::HttpGet;
  config.container.readiness_probe.path = "/nope";
  ManualClock clock;
  ReplicaProcess replica(config, clock);
  replica.start();
  ASSERT_TRUE(wait_until(
      [&] {
        return replica.reason().find("readiness probe failing: HTTP GET /nope answered 404") !=
               std::string::npos;
      },
      10s))
      << replica.reason();
  EXPECT_EQ(replica.state(), ReplicaState::Starting);
  EXPECT_EQ(replica.reason().rfind("started pid " + std::to_string(replica.pid()) + "; ", 0), 0u)
      << replica.reason();
}

TEST(ReplicaProcess, CrashesAreRestartedWithExponentialBackoff) {
  ScratchDir dir;
  auto config = make_config({"/bin/sh", "-c", "exit 3"}, dir.path());
  config.restart = RestartPolicy{true, 1s, 4s, 60s};
  StateLog log;
  ManualClock clock;
  ReplicaProcess replica(config, clock, log.callback());
  replica.start();
  std::vector<std::chrono::milliseconds> expected = {1s, 2s, 4s, 4s};
  for (int attempt = 0; attempt < 4; ++attempt) {
    ASSERT_TRUE(wait_until([&] {
      return replica.restarts() == attempt && replica.state() == ReplicaState::Failed &&
             replica.next_restart_at();
    })) << log.dump();
    EXPECT_EQ(*replica.next_restart_at() - clock.now(), expected[attempt]) << "attempt " << attempt;
    // The count a status reads as a crash loop (two failures in a row without a readiness).
    EXPECT_EQ(replica.consecutive_failures(), attempt + 1);
    EXPECT_FALSE(replica.progress_deadline_exceeded());
    std::string reason = replica.reason();
    EXPECT_NE(reason.find("exited with code 3; restarting in"), std::string::npos) << reason;
    // The clock has not moved: no restart happens yet.
    EXPECT_EQ(replica.restarts(), attempt);
    clock.advance(expected[attempt]);
  }
  ASSERT_TRUE(wait_until([&] { return replica.restarts() == 4; }));
  EXPECT_NE(read_text(config.log_path).find("[sluice] replica exited with code 3"), std::string::npos);
  replica.stop(1s);
  ASSERT_TRUE(replica.wait_stopped(5s)) << log.dump();
  EXPECT_EQ(replica.state(), ReplicaState::Stopped);
}

TEST(ReplicaProcess, ReadyReplicaThatDiesIsReportedAndRestartedOnTheSamePort) {
  ScratchDir dir;
  auto config = make_config({kBin + "/echo_agent"}, dir.path());
  StateLog log;
  ManualClock clock;
  ReplicaProcess replica(config, clock, log.callback());
  replica.start();
  ASSERT_TRUE(wait_until([&] { return replica.state() == ReplicaState::Ready; }, 10s)) << log.dump();
  pid_t first = replica.pid();
  ASSERT_GT(first, 0);
  ::kill(first, SIGKILL);
  ASSERT_TRUE(wait_until([&] { return replica.state() == ReplicaState::Failed; })) << log.dump();
  EXPECT_EQ(replica.reason(), "killed by signal SIGKILL; restarting in 1s");
  clock.advance(1s);
  ASSERT_TRUE(
      wait_until([&] { return replica.state() == ReplicaState::Ready && replica.restarts() == 1; }, 10s))
      << log.dump();
  EXPECT_NE(replica.pid(), first);
  EXPECT_TRUE(process_gone(first));
  EXPECT_EQ(http_get(config.port, "/healthz").status, 200);
}

// A request cut off by a live replica: recheck() probes at once and reports it Ready again, long before
// the next periodic probe (1 s), so that the activator routes to it again; a dead one is not.
TEST(ReplicaProcess, RecheckReportsALiveReplicaReadyAgainAtOnce) {
  ScratchDir dir;
  auto config = make_config({kBin + "/echo_agent"}, dir.path());
  StateLog log;
  ManualClock clock;
  ReplicaProcess replica(config, clock, log.callback());
  replica.start();
  ASSERT_TRUE(wait_until([&] { return replica.state() == ReplicaState::Ready; }, 10s)) << log.dump();
  ASSERT_TRUE(wait_until([&] { return log.count(ReplicaState::Ready) == 1; })) << log.dump();
  // A periodic probe of a replica that is already ready reports nothing, so a second Ready can only
  // come from the recheck.
  replica.recheck();
  ASSERT_TRUE(wait_until([&] { return log.count(ReplicaState::Ready) == 2; }, 10s)) << log.dump();
  {
    std::lock_guard lock(log.mu);
    EXPECT_EQ(log.events.back().second, log.events[log.events.size() - 2].second) << "same reason";
  }

  // A replica that cut a request off because it died: once its port refuses connections (its threads
  // may still be exiting, and its socket accepting, after kill() returns), the check reports the exit,
  // not Ready.
  const int ready_before_kill = log.count(ReplicaState::Ready);
  ::kill(replica.pid(), SIGKILL);
  ASSERT_TRUE(wait_until([&] { return port_refuses(config.port); }));
  replica.recheck();
  ASSERT_TRUE(wait_until([&] { return replica.state() == ReplicaState::Failed; })) << log.dump();
  EXPECT_EQ(log.count(ReplicaState::Ready), ready_before_kill) << log.dump();
}

TEST(ReplicaProcess, CommandNotFound) {
  ScratchDir dir;
  auto config = make_config({"sluice-no-such-agent-command"}, dir.path());
  config.restart.enabled = false;
  StateLog log;
  ManualClock clock;
  ReplicaProcess replica(config, clock, log.callback());
  replica.start();
  ASSERT_TRUE(replica.wait_stopped(5s));
  EXPECT_EQ(replica.state(), ReplicaState::Failed);
  EXPECT_EQ(replica.reason(), "command not found: sluice-no-such-agent-command");
  EXPECT_EQ(replica.pid(), -1);
  EXPECT_NE(read_text(config.log_path).find("command not found"), std::string::npos);
}

TEST(ReplicaProcess, MissingWorkingDirectory) {
  ScratchDir dir;
  auto config = make_config({"/bin/true"}, dir.path());
  config.container.working_dir = dir.path() + "/nowhere";
  config.restart.enabled = false;
  ManualClock clock;
  ReplicaProcess replica(config, clock);
  replica.start();
  ASSERT_TRUE(replica.wait_stopped(5s));
  EXPECT_EQ(replica.reason(), "working directory not found: " + dir.path() + "/nowhere");
}

TEST(ReplicaProcess, GracefulDrainLetsInFlightRequestsFinish) {
  ScratchDir dir;
  auto config = make_config({kBin + "/slow_agent"}, dir.path());
  config.container.env = {{"LATENCY_MS", "10", {}}};
  StateLog log;
  ManualClock clock;
  ReplicaProcess replica(config, clock, log.callback());
  replica.start();
  ASSERT_TRUE(wait_until([&] { return replica.state() == ReplicaState::Ready; }, 10s)) << log.dump();
  HttpAnswer slow;
  std::thread request([&] { slow = http_get(config.port, "/infer?latency_ms=1000"); });
  ASSERT_TRUE(wait_until(
      [&] { return http_get(config.port, "/stats").body.find("\"in_flight\":1") != std::string::npos; }));
  replica.begin_drain();
  ASSERT_TRUE(wait_until([&] { return replica.state() == ReplicaState::Draining; }));
  auto t0 = std::chrono::steady_clock::now();
  replica.stop(10s);
  ASSERT_TRUE(replica.wait_stopped(15s)) << log.dump();
  request.join();
  EXPECT_EQ(slow.status, 200);
  EXPECT_NE(slow.body.find("\"latency_ms\":1000"), std::string::npos) << slow.body;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
  EXPECT_EQ(replica.reason(), "exited with code 0 after SIGTERM");
  EXPECT_NE(read_text(config.log_path).find("slow_agent: drained; served 1"), std::string::npos)
      << read_text(config.log_path);
}

TEST(ReplicaProcess, SigkillAfterTheGraceWhenSigtermIsIgnored) {
  ScratchDir dir;
  auto config =
      make_config({"/bin/sh", "-c", "trap '' TERM; echo arm''ed; sleep 60; echo surv''ived"}, dir.path());
  StateLog log;
  ManualClock clock;
  ReplicaProcess replica(config, clock, log.callback());
  replica.start();
  // The log's first line quotes the command; the words only appear whole once the shell prints them.
  ASSERT_TRUE(wait_until(
      [&] { return replica.pid() > 0 && read_text(config.log_path).find("\narmed") != std::string::npos; }));
  pid_t pid = replica.pid();
  ASSERT_GT(pid, 0);
  auto t0 = std::chrono::steady_clock::now();
  replica.stop(400ms);
  ASSERT_TRUE(replica.wait_stopped(5s)) << log.dump();
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 400ms);
  EXPECT_EQ(replica.state(), ReplicaState::Stopped);
  EXPECT_EQ(replica.reason(), "killed with SIGKILL after the 400ms drain grace");
  // The whole process group is gone: the shell and its sleep.
  EXPECT_TRUE(process_gone(pid));
  EXPECT_TRUE(wait_until([&] { return ::kill(-pid, 0) != 0; }, 2s));
  EXPECT_EQ(read_text(config.log_path).find("\nsurvived"), std::string::npos);
}

TEST(ReplicaProcess, NeverReadyFailsAtTheProgressDeadline) {
  ScratchDir dir;
  auto config = make_config({"/bin/sleep", "60"}, dir.path());
  config.progress_deadline = 300ms;
  config.restart.enabled = false;
  ManualClock clock;
  ReplicaProcess replica(config, clock);
  replica.start();
  EXPECT_FALSE(replica.progress_deadline_exceeded());
  ASSERT_TRUE(replica.wait_stopped(5s));
  EXPECT_EQ(replica.state(), ReplicaState::Failed);
  EXPECT_NE(replica.reason().find("not ready within 300ms (progress deadline); last probe:"),
            std::string::npos)
      << replica.reason();
  EXPECT_TRUE(replica.progress_deadline_exceeded());
}

TEST(ReplicaProcess, DestructorKillsAndReaps) {
  ScratchDir dir;
  pid_t pid = -1;
  {
    ManualClock clock;
    ReplicaProcess replica(make_config({"/bin/sleep", "60"}, dir.path()), clock);
    replica.start();
    ASSERT_TRUE(wait_until([&] { return replica.pid() > 0; }));
    pid = replica.pid();
  }
  EXPECT_TRUE(process_gone(pid)) << "still running or a zombie";
}

TEST(ReplicaProcess, StopBeforeStart) {
  ScratchDir dir;
  ManualClock clock;
  ReplicaProcess replica(make_config({"/bin/true"}, dir.path()), clock);
  replica.stop(1s);
  ASSERT_TRUE(replica.wait_stopped(5s));
  EXPECT_EQ(replica.state(), ReplicaState::Stopped);
  replica.start();  // no effect once stopped
  EXPECT_EQ(replica.pid(), -1);
}

TEST(ReplicaProcess, ProbeOnce) {
  ReadinessProbe tcp;
  auto port = pick_free_port();
  ASSERT_TRUE(port);
  auto refused = probe_once(tcp, "127.0.0.1", port.value());
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("refused"), std::string::npos) << refused.error().message;
}

}  // namespace
}  // namespace sluice::agents
