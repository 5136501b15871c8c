#pragma once
// Child processes for integration tests: real `sluice serve`, example agents, Kafka mock cluster.

#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace sluice::testing {

/// A port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
int free_port();

/// A fresh temporary directory, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

/// A child process with stdout+stderr captured to a log file. The destructor kills it (SIGKILL).
/// Its stdin is /dev/null, or with `writable_stdin` a socket that write_stdin() writes to.
class Process {
 public:
  Process(std::string program, std::vector<std::string> args, std::map<std::string, std::string> env = {},
          std::string log_path = "", bool writable_stdin = false);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  /// Sends a signal (SIGTERM, SIGKILL, …).
  void signal(int sig);
  /// Waits for exit up to `timeout`; returns the exit status (or 128+signal), -1 on timeout.
  int wait(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  bool running();
  /// Writes to the child's stdin (needs `writable_stdin`); false when it cannot (the child is gone).
  bool write_stdin(const std::string& text);
  /// Everything the process printed so far.
  std::string output() const;
  const std::string& log_path() const { return log_path_; }

 private:
  pid_t pid_ = -1;
  int status_ = -1;
  bool exited_ = false;
  std::string log_path_;
  int stdin_fd_ = -1;  // our end of the child's stdin, with writable_stdin
};

/// A `sluice serve` on a free port with its own data dir. Ready when /readyz answers 200. `env` is added to
/// the server's environment (LD_PRELOAD of libfaketime, for example).
class SluiceServer {
 public:
  explicit SluiceServer(std::vector<std::string> extra_args = {}, std::string data_dir = "",
                        std::map<std::string, std::string> env = {});
  ~SluiceServer();

  const std::string& url() const { return url_; }
  int port() const { return port_; }
  const std::string& data_dir() const { return data_dir_; }
  Process& process() { return *process_; }
  /// Restarts on the same port and data dir (after a kill or stop).
  void restart();
  /// SIGKILL and reap.
  void kill();
  /// Waits for /readyz; false (with the log printed) if it never comes.
  bool wait_ready(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  /// Runs the CLI against this server: `sluice VERB ARGS --server URL`. Returns exit code; output in *out.
  int cli(std::vector<std::string> args, std::string* out = nullptr, const std::string& stdin_text = "");

 private:
  void start();
  std::vector<std::string> extra_args_;
  std::map<std::string, std::string> env_;
  std::unique_ptr<TempDir> owned_dir_;
  std::string data_dir_;
  int port_;
  std::string url_;
  std::unique_ptr<Process> process_;
};

/// Path of a program built beside `sluice` (build/NAME).
std::string built_program(const std::string& name);

/// Runs a command line through /bin/sh, returning exit status; stdout+stderr into *out.
int run_command(const std::string& command_line, std::string* out = nullptr,
                const std::string& stdin_text = "");

}  // namespace sluice::testing
