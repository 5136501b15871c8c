#include "agents/replica_process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <sstream>
#include <utility>
#include <vector>

#include "core/fs.hpp"
#include "core/quantity.hpp"
#include "core/log.hpp"

extern char** environ;

namespace sluice::agents {

namespace {

using std::chrono::milliseconds;
using RealTime = std::chrono::steady_clock;

/// "250ms", "1s", "1.5s", "2m", "90s".
std::string format_millis(milliseconds d) {
  auto ms = d.count();
  if (ms < 1000) return std::to_string(ms) + "ms";
  if (ms % 60000 == 0) return std::to_string(ms / 60000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(ms) / 1000.0);
  return buf;
}

std::string describe_wait_status(int status) {
  if (status == -1) return "exited (status unknown)";
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const char* abbrev = sigabbrev_np(WTERMSIG(status));
    return std::string("killed by signal ") +
           (abbrev ? std::string("SIG") + abbrev : std::to_string(WTERMSIG(status)));
  }
  return "stopped (status " + std::to_string(status) + ")";
}

/// The start time of a process (field 22 of /proc/PID/stat, in clock ticks since boot), which tells a
/// process from a later one that reuses its pid.
std::optional<unsigned long long> process_start_time(pid_t pid) {
  auto stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return std::nullopt;
  const auto paren = stat.value().rfind(')');  // the command name may hold spaces and parentheses
  if (paren == std::string::npos) return std::nullopt;
  std::istringstream fields(stat.value().substr(paren + 1));
  std::string field;
  for (int i = 3; i <= 22; ++i)  // fields 3 (state) to 22 (starttime)
    if (!(fields >> field)) return std::nullopt;
  try {
    return std::stoull(field);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

/// A connected, non-blocking socket to host:port within `timeout`, or an error.
Result<UniqueFd> connect_with_timeout(const std::string& host, int port, milliseconds timeout) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string service = std::to_string(port);
  if (int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res); rc != 0) {
    return make_error(host, std::string("cannot resolve: ") + ::gai_strerror(rc));
  }
  std::string last_error = "no address";
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol));
    if (!fd.valid()) {
      last_error = std::strerror(errno);
      continue;
    }
    int rc = ::connect(fd.get(), ai->ai_addr, ai->ai_addrlen);
    if (rc != 0 && errno != EINPROGRESS) {
      last_error = std::strerror(errno);
      continue;
    }
    if (rc != 0) {
      pollfd p{fd.get(), POLLOUT, 0};
      int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
      if (n <= 0) {
        last_error = n == 0 ? "connect timed out after " + format_millis(timeout) : std::strerror(errno);
        continue;
      }
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        last_error = std::strerror(err);
        continue;
      }
    }
    ::freeaddrinfo(res);
    return fd;
  }
  ::freeaddrinfo(res);
  return make_error(host + ":" + service, last_error);
}

}  // namespace

std::string_view to_string(ReplicaState state) {
  switch (state) {
    case ReplicaState::Starting:
      return "Starting";
    case ReplicaState::Ready:
      return "Ready";
    case ReplicaState::Draining:
      return "Draining";
    case ReplicaState::Stopped:
      return "Stopped";
    case ReplicaState::Failed:
      return "Failed";
  }
  return "Unknown";
}

milliseconds RestartBackoff::on_failure(SteadyTime now) {
  if (ready_since_ && now - *ready_since_ >= policy_.stable_period) consecutive_ = 0;
  ready_since_.reset();
  milliseconds delay = policy_.initial_backoff;
  for (int i = 0; i < consecutive_ && delay < policy_.max_backoff; ++i) delay *= 2;
  ++consecutive_;
  return std::min(delay, policy_.max_backoff);
}

std::string replica_log_path(const std::string& data_dir, const std::string& agent,
                             const std::string& revision, const std::string& replica) {
  return data_dir + "/logs/" + agent + "/" + revision + "/" + replica + ".log";
}

std::string replica_pid_path(const std::string& data_dir, const std::string& revision,
                             const std::string& replica) {
  return data_dir + "/replicas/" + revision + "." + replica + ".pid";
}

std::size_t kill_leftover_replicas(const std::string& dir) {
  auto names = list_dir(dir);
  if (!names) return 0;
  std::size_t killed = 0;
  for (const auto& name : names.value()) {
    if (!name.ends_with(".pid")) continue;
    const std::string path = dir + "/" + name;
    if (auto text = read_file(path)) {
      long long pid = 0;
      unsigned long long started = 0;
      if (std::sscanf(text.value().c_str(), "%lld %llu", &pid, &started) == 2 && pid > 1 &&
          process_start_time(static_cast<pid_t>(pid)) == started) {
        if (::kill(-static_cast<pid_t>(pid), SIGKILL) != 0) ::kill(static_cast<pid_t>(pid), SIGKILL);
        ++killed;
      }
    }
    (void)remove_file(path);
  }
  return killed;
}

Result<int> pick_free_port(const std::string& host) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return errno_error(host, "socket", errno);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    return make_error(host, "not an IPv4 address; replicas listen on 127.0.0.1 by default");
  }
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return errno_error(host, "bind", errno);
  socklen_t len = sizeof addr;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return errno_error(host, "getsockname", errno);
  }
  return static_cast<int>(ntohs(addr.sin_port));
}

Status probe_once(const ReadinessProbe& probe, const std::string& host, int port) {
  milliseconds timeout(std::max(1, probe.timeout_seconds) * 1000);
  auto deadline = RealTime::now() + timeout;
  auto conn = connect_with_timeout(host, port, timeout);
  if (!conn) return make_error("readinessProbe", conn.error().message);
  if (probe.kind == ReadinessProbe::Kind::TcpSocket) return ok();

  int fd = conn.value().get();
  std::string request =
      "GET " + probe.path + " HTTP/1.1\r\nHost: " + host + ":" + std::to_string(port) +
      "\r\nUser-Agent: sluice-probe\r\nK-Kubelet-Probe: sluice\r\nConnection: close\r\n\r\n";
  std::size_t sent = 0;
  std::string response;
  char buf[1024];
  while (true) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - RealTime::now()).count();
    if (left <= 0) return make_error("readinessProbe", "HTTP GET " + probe.path + " timed out");
    short events = sent < request.size() ? POLLOUT : POLLIN;
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, static_cast<int>(left));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return make_error("readinessProbe", "HTTP GET " + probe.path + " timed out");
    if (sent < request.size()) {
      ssize_t w = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (w < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (w < 0) return make_error("readinessProbe", std::string("HTTP GET: ") + std::strerror(errno));
      sent += static_cast<std::size_t>(w);
      continue;
    }
    ssize_t r = ::recv(fd, buf, sizeof buf, 0);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (r < 0) return make_error("readinessProbe", std::string("HTTP GET: ") + std::strerror(errno));
    if (r > 0) response.append(buf, static_cast<std::size_t>(r));
    auto eol = response.find("\r\n");
    if (eol == std::string::npos && r > 0 && response.size() < 4096) continue;
    // "HTTP/1.1 200 OK"
    std::string line = response.substr(0, eol == std::string::npos ? response.size() : eol);
    auto sp = line.find(' ');
    if (line.rfind("HTTP/", 0) != 0 || sp == std::string::npos || line.size() < sp + 4) {
      return make_error("readinessProbe", "HTTP GET " + probe.path + ": not an HTTP response");
    }
    int status = std::atoi(line.substr(sp + 1, 3).c_str());
    if (status >= 200 && status < 400) return ok();
    return make_error("readinessProbe", "HTTP GET " + probe.path + " answered " + std::to_string(status));
  }
}

ReplicaProcess::ReplicaProcess(ReplicaConfig config, Clock& clock, StateCallback on_state)
    : config_(std::move(config)), clock_(clock), on_state_(std::move(on_state)), backoff_(config_.restart) {
  if (config_.container.limits.any())
    limits_ = std::make_unique<ReplicaLimits>(config_.container.limits,
                                              config_.agent + "." + config_.revision + "." + config_.replica);
  worker_ = std::thread([this] { run(); });
}

ReplicaProcess::~ReplicaProcess() {
  {
    std::lock_guard lock(mu_);
    shutdown_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void ReplicaProcess::start() {
  {
    std::lock_guard lock(mu_);
    if (phase_ != Phase::Idle) return;
    phase_ = Phase::Spawn;
  }
  cv_.notify_all();
}

void ReplicaProcess::begin_drain() {
  {
    std::lock_guard lock(mu_);
    draining_ = true;
  }
  cv_.notify_all();
}

void ReplicaProcess::stop(milliseconds grace) {
  {
    std::lock_guard lock(mu_);
    draining_ = true;
    if (!stop_grace_) stop_grace_ = grace;
  }
  cv_.notify_all();
}

void ReplicaProcess::recheck() {
  {
    std::lock_guard lock(mu_);
    if (phase_ != Phase::Running || draining_) return;
    recheck_ = true;
  }
  cv_.notify_all();
}

bool ReplicaProcess::wait_stopped(milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return phase_ == Phase::Done; });
}

ReplicaState ReplicaProcess::state() const {
  std::lock_guard lock(mu_);
  return state_;
}

std::string ReplicaProcess::reason() const {
  std::lock_guard lock(mu_);
  // A process that runs but has never passed its readiness probe: say why the probe fails, which
  // "started pid N" alone hides. No count of failures: the text stays the same from one probe to the
  // next, so `apply --wait` and `get -w`, which print each change, print it once.
  if (state_ == ReplicaState::Starting && phase_ == Phase::Running && !ever_ready_ &&
      !last_probe_error_.empty())
    return reason_ + "; readiness probe failing: " + last_probe_error_;
  return reason_;
}

pid_t ReplicaProcess::pid() const {
  std::lock_guard lock(mu_);
  return pid_;
}

int ReplicaProcess::restarts() const {
  std::lock_guard lock(mu_);
  return restarts_;
}

std::optional<SteadyTime> ReplicaProcess::next_restart_at() const {
  std::lock_guard lock(mu_);
  return next_restart_;
}

int ReplicaProcess::consecutive_failures() const {
  std::lock_guard lock(mu_);
  return backoff_.consecutive_failures();
}

bool ReplicaProcess::progress_deadline_exceeded() const {
  std::lock_guard lock(mu_);
  return deadline_exceeded_;
}

void ReplicaProcess::set_state_locked(ReplicaState state, std::string reason,
                                      std::unique_lock<std::mutex>& lock) {
  state_ = state;
  reason_ = reason;
  SLUICE_LOG(agents, info, "[agent={} rev={} replica={}] {}: {}", config_.agent, config_.revision,
             config_.replica, to_string(state), reason);
  cv_.notify_all();
  if (on_state_) {
    lock.unlock();
    on_state_(state, reason);
    lock.lock();
  }
}

void ReplicaProcess::signal_group(int sig) {
  if (pid_ <= 0) return;
  // The replica leads its own process group (POSIX_SPAWN_SETPGROUP), so -pid reaches its children too.
  if (::kill(-pid_, sig) != 0) ::kill(pid_, sig);
}

void ReplicaProcess::log_line(const std::string& line) {
  if (config_.log_path.empty()) return;
  UniqueFd fd(::open(config_.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!fd.valid()) return;
  std::string text = "[sluice] " + line + "\n";
  (void)write_all(fd.get(), text.data(), text.size(), config_.log_path);
}

void ReplicaProcess::run() {
  std::unique_lock lock(mu_);
  while (!shutdown_) {
    auto now = RealTime::now();
    milliseconds wait(20);
    switch (phase_) {
      case Phase::Idle:
        if (draining_) {
          phase_ = Phase::Done;
          set_state_locked(ReplicaState::Stopped, "stopped before it started", lock);
          continue;
        }
        wait = milliseconds(1000);
        break;
      case Phase::Done:
        wait = milliseconds(1000);
        break;
      case Phase::Spawn:
        if (draining_) {
          phase_ = Phase::Done;
          set_state_locked(ReplicaState::Stopped, "stopped before it started", lock);
        } else {
          spawn_locked(lock);
        }
        continue;
      case Phase::Running:
      case Phase::Terminating: {
        int status = 0;
        pid_t r = ::waitpid(pid_, &status, WNOHANG);
        if (r == pid_ || (r < 0 && errno == ECHILD)) {
          on_exit_locked(r == pid_ ? status : -1, lock);
          continue;
        }
        if (phase_ == Phase::Terminating) {
          if (!killed_ && now >= kill_at_) {
            log_line("drain grace over; sending SIGKILL");
            signal_group(SIGKILL);
            killed_ = true;
            terminated_by_deadline_ = true;
          }
          wait = milliseconds(10);
          break;
        }
        if (stop_grace_) {
          log_line("sending SIGTERM (grace " + format_millis(*stop_grace_) + ")");
          signal_group(SIGTERM);
          phase_ = Phase::Terminating;
          kill_at_ = now + *stop_grace_;
          set_state_locked(ReplicaState::Draining,
                           "SIGTERM sent; SIGKILL after " + format_millis(*stop_grace_), lock);
          continue;
        }
        if (draining_) {
          if (state_ != ReplicaState::Draining) {
            set_state_locked(ReplicaState::Draining, "draining: no new requests", lock);
          }
          break;
        }
        if (now >= next_probe_ || recheck_) {
          probe_locked(lock);
          continue;
        }
        wait = std::min(wait, std::chrono::duration_cast<milliseconds>(next_probe_ - now) + milliseconds(1));
        break;
      }
      case Phase::Backoff:
        if (draining_) {
          phase_ = Phase::Done;
          next_restart_.reset();
          set_state_locked(ReplicaState::Stopped, "stopped while waiting to restart", lock);
          continue;
        }
        if (next_restart_ && clock_.now() >= *next_restart_) {
          next_restart_.reset();
          ++restarts_;
          phase_ = Phase::Spawn;
          continue;
        }
        break;
    }
    cv_.wait_for(lock, wait);
  }
  if (pid_ > 0) {
    signal_group(SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    log_line("replica killed: sluice is shutting it down");
    pid_ = -1;
    if (!config_.pid_file.empty()) (void)remove_file(config_.pid_file);
  }
}

void ReplicaProcess::spawn_locked(std::unique_lock<std::mutex>& lock) {
  ++attempts_;
  const Container& c = config_.container;
  std::vector<std::string> argv_strings = c.command;
  argv_strings.insert(argv_strings.end(), c.args.begin(), c.args.end());

  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    auto eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    env[std::string(kv.substr(0, eq))] = std::string(kv.substr(eq + 1));
  }
  for (const auto& var : c.env) env[var.name] = var.value;
  env["PORT"] = std::to_string(config_.port);
  env["SLUICE_AGENT"] = config_.agent;
  env["SLUICE_REVISION"] = config_.revision;
  env["SLUICE_REPLICA"] = config_.replica;
  // Knative's runtime contract, so that Knative services find what they expect.
  env["K_SERVICE"] = config_.agent;
  env["K_CONFIGURATION"] = config_.agent;
  env["K_REVISION"] = config_.revision;
  for (const auto& [k, v] : config_.extra_env) env[k] = v;
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);

  std::vector<char*> argv, envp;
  for (auto& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);

  if (!c.working_dir.empty()) {
    struct stat st {};
    if (::stat(c.working_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      fail_locked("working directory not found: " + c.working_dir, lock);
      return;
    }
  }
  UniqueFd log_fd;
  if (!config_.log_path.empty()) {
    if (auto st = make_dirs(parent_dir(config_.log_path)); !st) {
      fail_locked("cannot create the log directory: " + st.error().to_string(), lock);
      return;
    }
    log_fd.reset(::open(config_.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    if (!log_fd.valid()) {
      fail_locked("cannot open the log file " + config_.log_path + ": " + std::strerror(errno), lock);
      return;
    }
  }
  std::string command_line;
  for (const auto& s : argv_strings) command_line += (command_line.empty() ? "" : " ") + s;
  log_line("starting (attempt " + std::to_string(attempts_) + ", PORT=" + std::to_string(config_.port) +
           "): " + command_line);

  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  if (log_fd.valid()) {
    posix_spawn_file_actions_adddup2(&actions, log_fd.get(), STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, log_fd.get(), STDERR_FILENO);
  } else {
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  }
  // Sockets of the server (Asio does not set O_CLOEXEC) must not leak into replicas.
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  if (!c.working_dir.empty()) posix_spawn_file_actions_addchdir_np(&actions, c.working_dir.c_str());
  sigset_t empty_mask, all_signals;
  sigemptyset(&empty_mask);
  sigfillset(&all_signals);
  posix_spawnattr_setsigmask(&attr, &empty_mask);
  posix_spawnattr_setsigdefault(&attr, &all_signals);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  pid_t pid = -1;
  lock.unlock();
  int rc = ::posix_spawnp(&pid, argv[0], &actions, &attr, argv.data(), envp.data());
  lock.lock();
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);

  if (rc != 0) {
    std::string reason;
    if (rc == ENOENT) {
      reason = "command not found: " + c.command.front();
    } else if (rc == EACCES) {
      reason = "permission denied: " + c.command.front();
    } else {
      reason = "cannot start " + c.command.front() + ": " + std::strerror(rc);
    }
    log_line(reason);
    fail_locked(reason, lock);
    return;
  }
  pid_ = pid;
  if (!config_.pid_file.empty()) {
    const auto started = process_start_time(pid);
    Status st = make_dirs(parent_dir(config_.pid_file));
    if (st && started)
      st = write_file_atomic(config_.pid_file, std::to_string(pid) + " " + std::to_string(*started) + "\n");
    if (!st) log_line("cannot record the pid: " + st.error().to_string());
  }
  phase_ = Phase::Running;
  ready_ = false;
  ever_ready_ = false;
  probe_failures_ = 0;
  last_probe_error_.clear();
  exit_reason_override_.clear();
  killed_at_deadline_ = false;
  killed_ = false;
  terminated_by_deadline_ = false;
  started_at_ = RealTime::now();
  next_probe_ = started_at_ + std::chrono::seconds(c.readiness_probe.initial_delay_seconds);
  if (limits_) {
    if (auto st = limits_->apply(pid); !st) {
      exit_reason_override_ = "cannot apply the limits: " + st.error().to_string();
      log_line(exit_reason_override_);
      signal_group(SIGKILL);
    } else {
      log_line("limits: " + limits_->describe());
    }
  }
  set_state_locked(ReplicaState::Starting, "started pid " + std::to_string(pid), lock);
}

void ReplicaProcess::on_exit_locked(int wait_status, std::unique_lock<std::mutex>& lock) {
  pid_ = -1;
  if (!config_.pid_file.empty()) (void)remove_file(config_.pid_file);
  std::string what = describe_wait_status(wait_status);
  log_line("replica " + what);
  if (phase_ == Phase::Terminating || draining_) {
    std::string reason;
    if (terminated_by_deadline_) {
      reason = "killed with SIGKILL after the " + format_millis(stop_grace_.value_or(milliseconds(0))) +
               " drain grace";
    } else if (phase_ == Phase::Terminating) {
      bool by_sigterm = wait_status != -1 && WIFSIGNALED(wait_status) && WTERMSIG(wait_status) == SIGTERM;
      reason = by_sigterm ? "terminated by SIGTERM" : what + " after SIGTERM";
    } else {
      reason = what + " while draining";
    }
    phase_ = Phase::Done;
    set_state_locked(ReplicaState::Stopped, reason, lock);
    return;
  }
  std::string reason = exit_reason_override_.empty() ? what : exit_reason_override_;
  exit_reason_override_.clear();
  // Reported with the failure it causes, so that status never shows the flag without the reason.
  deadline_exceeded_ = deadline_exceeded_ || std::exchange(killed_at_deadline_, false);
  if (limits_ && limits_->oom_killed()) {
    reason = "OOMKilled: over its memory limit of " + format_bytes(config_.container.limits.memory_bytes) +
             " (" + what + ")";
    log_line(reason);
  }
  fail_locked(reason, lock);
}

std::string ReplicaProcess::last_failure() const {
  std::lock_guard lock(mu_);
  return last_failure_;
}

void ReplicaProcess::fail_locked(std::string reason, std::unique_lock<std::mutex>& lock) {
  ready_ = false;
  last_failure_ = reason;
  if (config_.restart.enabled && !draining_) {
    auto delay = backoff_.on_failure(clock_.now());
    next_restart_ = clock_.now() + delay;
    phase_ = Phase::Backoff;
    set_state_locked(ReplicaState::Failed, reason + "; restarting in " + format_millis(delay), lock);
  } else {
    phase_ = Phase::Done;
    set_state_locked(ReplicaState::Failed, reason, lock);
  }
}

void ReplicaProcess::probe_locked(std::unique_lock<std::mutex>& lock) {
  const ReadinessProbe& probe = config_.container.readiness_probe;
  int port = probe.port > 0 ? probe.port : config_.port;
  const bool recheck = std::exchange(recheck_, false);
  lock.unlock();
  Status result = probe_once(probe, config_.host, port);
  lock.lock();
  auto now = RealTime::now();
  // Until the first success, probe aggressively when no period is given (Knative's queue-proxy does).
  auto period = probe.period_seconds > 0 ? milliseconds(probe.period_seconds * 1000)
                                         : (ever_ready_ ? milliseconds(1000) : milliseconds(10));
  next_probe_ = now + period;
  if (phase_ != Phase::Running || draining_) return;
  if (result) {
    probe_failures_ = 0;
    if (!ready_) {
      ready_ = true;
      ever_ready_ = true;
      deadline_exceeded_ = false;
      backoff_.on_ready(clock_.now());
      auto took = std::chrono::duration_cast<milliseconds>(now - started_at_);
      set_state_locked(ReplicaState::Ready, "readiness probe passed " + format_millis(took) + " after start",
                       lock);
    } else if (recheck && on_state_) {
      // Still alive and ready after cutting a request off: routing resumes now.
      const ReplicaState state = state_;
      const std::string reason = reason_;
      lock.unlock();
      on_state_(state, reason);
      lock.lock();
    }
    return;
  }
  last_probe_error_ = result.error().message;
  if (ready_) {
    if (++probe_failures_ >= probe.failure_threshold) {
      ready_ = false;
      probe_failures_ = 0;
      backoff_.on_not_ready();
      set_state_locked(ReplicaState::Starting,
                       "not ready: readiness probe failed " + std::to_string(probe.failure_threshold) +
                           " times: " + last_probe_error_,
                       lock);
    }
    return;
  }
  if (!ever_ready_ && now - started_at_ > config_.progress_deadline) {
    exit_reason_override_ = "not ready within " + format_millis(config_.progress_deadline) +
                            " (progress deadline); last probe: " + last_probe_error_;
    killed_at_deadline_ = true;
    log_line(exit_reason_override_);
    signal_group(SIGKILL);
    next_probe_ = now + std::chrono::hours(24);
  }
}

}  // namespace sluice::agents
