#include "tests/support/process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <httplib.h>

#include "tests/support/wait.hpp"

namespace sluice::testing {

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    throw std::runtime_error("bind failed");
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "sluice-test-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

Process::Process(std::string program, std::vector<std::string> args, std::map<std::string, std::string> env,
                 std::string log_path, bool writable_stdin)
    : log_path_(std::move(log_path)) {
  if (log_path_.empty()) {
    char tmpl[] = "/tmp/sluice-proc-XXXXXX.log";
    int fd = ::mkstemps(tmpl, 4);
    ::close(fd);
    log_path_ = tmpl;
  }
  std::vector<std::string> argv_storage;
  argv_storage.push_back(program);
  for (auto& a : args) argv_storage.push_back(a);
  // A socket rather than a pipe: send() with MSG_NOSIGNAL fails instead of raising SIGPIPE in the test
  // when the child is gone. Both ends close on exec, except the child's once it is its stdin.
  int stdin_pair[2] = {-1, -1};
  if (writable_stdin && ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, stdin_pair) != 0)
    throw std::runtime_error("socketpair failed");
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    ::setpgid(0, 0);
    int fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    int in = writable_stdin ? stdin_pair[1] : ::open("/dev/null", O_RDONLY);
    ::dup2(in, 0);
    for (auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> argv;
    for (auto& a : argv_storage) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(program.c_str(), argv.data());
    std::perror(("exec " + program).c_str());
    ::_exit(127);
  }
  if (writable_stdin) {
    ::close(stdin_pair[1]);
    stdin_fd_ = stdin_pair[0];
  }
}

Process::~Process() {
  if (!exited_ && pid_ > 0) {
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    wait(std::chrono::seconds(5));
  }
  if (stdin_fd_ >= 0) ::close(stdin_fd_);
  std::error_code ec;
  std::filesystem::remove(log_path_, ec);
}

void Process::signal(int sig) {
  if (!exited_) ::kill(pid_, sig);
}

int Process::wait(std::chrono::milliseconds timeout) {
  if (exited_) return status_;
  bool done = wait_until(
      [&] {
        int st = 0;
        pid_t r = ::waitpid(pid_, &st, WNOHANG);
        if (r == pid_) {
          exited_ = true;
          status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
          return true;
        }
        return false;
      },
      timeout, std::chrono::milliseconds(10));
  return done ? status_ : -1;
}

bool Process::running() {
  if (exited_) return false;
  return wait(std::chrono::milliseconds(0)) == -1;
}

bool Process::write_stdin(const std::string& text) {
  if (stdin_fd_ < 0) return false;
  for (std::size_t done = 0; done < text.size();) {
    const ssize_t n = ::send(stdin_fd_, text.data() + done, text.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

std::string Process::output() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string built_program(const std::string& name) {
  return std::string(SLUICE_BINARY_DIR) + "/" + name;
}

SluiceServer::SluiceServer(std::vector<std::string> extra_args, std::string data_dir,
                           std::map<std::string, std::string> env)
    : extra_args_(std::move(extra_args)),
      env_(std::move(env)),
      data_dir_(std::move(data_dir)),
      port_(free_port()) {
  if (data_dir_.empty()) {
    owned_dir_ = std::make_unique<TempDir>();
    data_dir_ = owned_dir_->path() + "/data";
  }
  url_ = "http://127.0.0.1:" + std::to_string(port_);
  start();
}

SluiceServer::~SluiceServer() {
  if (process_ && process_->running()) {
    process_->signal(SIGTERM);
    if (process_->wait(std::chrono::seconds(10)) == -1) process_->signal(SIGKILL);
  }
}

void SluiceServer::start() {
  std::vector<std::string> args{"serve", "--listen", "127.0.0.1:" + std::to_string(port_), "--data-dir",
                                data_dir_};
  for (auto& a : extra_args_) args.push_back(a);
  process_ = std::make_unique<Process>(built_program("sluice"), args, env_);
}

void SluiceServer::restart() {
  if (process_ && process_->running()) kill();
  start();
}

void SluiceServer::kill() {
  process_->signal(SIGKILL);
  process_->wait(std::chrono::seconds(10));
}

bool SluiceServer::wait_ready(std::chrono::milliseconds timeout) {
  httplib::Client client("127.0.0.1", port_);
  client.set_connection_timeout(std::chrono::milliseconds(200));
  bool ready = wait_until(
      [&] {
        if (!process_->running()) return false;
        auto res = client.Get("/readyz");
        return res && res->status == 200;
      },
      timeout, std::chrono::milliseconds(20));
  if (!ready) std::cerr << "sluice serve not ready; its log:\n" << process_->output() << std::endl;
  return ready;
}

int SluiceServer::cli(std::vector<std::string> args, std::string* out, const std::string& stdin_text) {
  std::string line = built_program("sluice");
  auto quote = [](const std::string& s) {
    std::string q = "'";
    for (char c : s) {
      if (c == '\'')
        q += "'\\''";
      else
        q += c;
    }
    return q + "'";
  };
  for (auto& a : args) line += " " + quote(a);
  line += " --server " + url_;
  return run_command(line, out, stdin_text);
}

int run_command(const std::string& command_line, std::string* out, const std::string& stdin_text) {
  TempDir dir;
  std::string in_path = dir.path() + "/stdin", out_path = dir.path() + "/out";
  {
    std::ofstream in(in_path, std::ios::binary);
    in << stdin_text;
  }
  std::string full = "(" + command_line + ") <" + in_path + " >" + out_path + " 2>&1";
  int st = std::system(full.c_str());
  if (out) {
    std::ifstream in(out_path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    *out = ss.str();
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

}  // namespace sluice::testing
