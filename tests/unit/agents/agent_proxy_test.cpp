// Which failures of the real HttpClient let AgentProxy send a request to another replica: only those
// where the request never reached the replica (the connection could not be established), never one
// that was written and then cut off.

#include "agents/agent_proxy.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <optional>
#include <thread>

#include <gtest/gtest.h>

namespace sluice::agents {
namespace {

using namespace std::chrono_literals;

// A loopback listener whose one connection runs `script` on its own thread.
class OneConnection {
 public:
  explicit OneConnection(std::function<void(int fd)> script) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(listen_fd_, 4), 0);
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this, script = std::move(script)] {
      const int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd >= 0) script(fd);
    });
  }
  ~OneConnection() {
    thread_.join();
    ::close(listen_fd_);
  }
  int port() const { return port_; }

  // Reads until the end of the request's headers (the requests here have no body).
  static void read_request(int fd) {
    std::string seen;
    char buf[1024];
    while (seen.find("\r\n\r\n") == std::string::npos) {
      const auto n = ::read(fd, buf, sizeof buf);
      if (n <= 0) return;
      seen.append(buf, static_cast<std::size_t>(n));
    }
  }

 private:
  int listen_fd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

// A port nothing listens on: bound, then closed.
int closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

Error failure_of(int port, std::chrono::milliseconds timeout = 5000ms) {
  asio::io_context io;
  HttpClient client(io.get_executor());
  HttpRequest request;
  request.method = "POST";
  request.url = "http://127.0.0.1:" + std::to_string(port) + "/act";
  request.body = "{}";
  request.timeout = timeout;
  std::optional<Result<HttpResponse>> out;
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { out.emplace(co_await client.send(std::move(request))); },
      asio::detached);
  io.run();
  EXPECT_TRUE(out && !*out) << "the exchange was expected to fail";
  return out && !*out ? out->error() : Error{};
}

TEST(AgentProxyRetry, ARefusedConnectionNeverReachedTheReplica) {
  const auto error = failure_of(closed_port());
  EXPECT_TRUE(never_reached_replica(error)) << error.message;
  EXPECT_FALSE(cut_off_by_replica(error)) << error.message;
  EXPECT_EQ(http_status_of(error), 502);
}

TEST(AgentProxyRetry, ARequestCutOffAfterItWasSentIsNotRetried) {
  {
    OneConnection server([](int fd) {
      OneConnection::read_request(fd);
      ::close(fd);  // the replica died after reading the request
    });
    const auto error = failure_of(server.port());
    EXPECT_FALSE(never_reached_replica(error)) << error.message;
    EXPECT_TRUE(cut_off_by_replica(error)) << error.message;
    EXPECT_EQ(http_status_of(error), 502);
  }
  {
    OneConnection server([](int fd) {
      OneConnection::read_request(fd);
      linger reset{1, 0};  // close with RST: "connection reset by peer"
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
      ::close(fd);
    });
    const auto error = failure_of(server.port());
    EXPECT_FALSE(never_reached_replica(error)) << error.message;
    EXPECT_TRUE(cut_off_by_replica(error)) << error.message;
    EXPECT_EQ(http_status_of(error), 502);
  }
  {
    OneConnection server([](int fd) {
      OneConnection::read_request(fd);
      char byte;
      while (::read(fd, &byte, 1) > 0) {
      }  // answers nothing until the client gives up
      ::close(fd);
    });
    const auto error = failure_of(server.port(), 200ms);
    EXPECT_FALSE(never_reached_replica(error)) << error.message;
    EXPECT_FALSE(cut_off_by_replica(error)) << "a slow replica is not a dying one: " << error.message;
    EXPECT_EQ(http_status_of(error), 504);
  }
}

}  // namespace
}  // namespace sluice::agents
