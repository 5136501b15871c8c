#include "core/http_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "core/io_pool.hpp"
#include "tests/support/socket.hpp"
#include "tests/support/wait.hpp"

namespace sluice {
namespace {

using namespace std::chrono_literals;
using testing::wait_until;

// One server on one I/O thread: /wait handlers watch for the client going away (on_cancel) and answer
// once released or cancelled; /now answers at once without watching.
class HttpServerCancel : public ::testing::Test {
 protected:
  void SetUp() override {
    HttpServerOptions options;
    options.port = 0;
    server_ = std::make_unique<HttpServer>(pool_, options);
    server_->route(
        "/wait", [this](HttpServerRequest& req, RequestContext& ctx) -> asio::awaitable<HttpServerResponse> {
          ctx.on_cancel([this] { ++cancelled_; });
          asio::steady_timer timer(ctx.executor());
          while (!release_ && !ctx.cancelled()) {
            timer.expires_after(2ms);
            co_await timer.async_wait(asio::use_awaitable);
          }
          co_return make_response(req, http::status::ok, "released");
        });
    server_->route("/now",
                   [](HttpServerRequest& req, RequestContext&) -> asio::awaitable<HttpServerResponse> {
                     co_return make_response(req, http::status::accepted);
                   });
    ASSERT_TRUE(server_->start());
    runner_ = std::thread([this] { pool_.run(); });
  }

  void TearDown() override {
    server_->stop();
    pool_.stop();
    runner_.join();
  }

  int connect_client() { return testing::connect_loopback(server_->port()); }

  static void send_all(int fd, const std::string& data) {
    ASSERT_EQ(::send(fd, data.data(), data.size(), MSG_NOSIGNAL), static_cast<ssize_t>(data.size()));
  }

  // Reads until `count` responses have arrived (counted by their status lines) or the peer closes.
  static std::string read_responses(int fd, int count) {
    std::string got;
    char buf[4096];
    auto responses = [&] {
      int n = 0;
      for (auto at = got.find("HTTP/1.1 "); at != std::string::npos; at = got.find("HTTP/1.1 ", at + 1)) ++n;
      return n;
    };
    while (responses() < count || got.substr(got.rfind("HTTP/1.1 ")).find("\r\n\r\n") == std::string::npos) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      got.append(buf, static_cast<std::size_t>(n));
    }
    return got;
  }

  IoPool pool_{1};
  std::unique_ptr<HttpServer> server_;
  std::thread runner_;
  std::atomic<int> cancelled_{0};
  std::atomic<bool> release_{false};
};

TEST_F(HttpServerCancel, AClientThatGoesAwayCancelsAWatchingHandler) {
  int fd = connect_client();
  send_all(fd, "GET /wait HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(wait_until([&] { return server_->in_flight() == 1; }));
  ::close(fd);
  ASSERT_TRUE(wait_until([&] { return cancelled_ == 1; }));
  EXPECT_TRUE(wait_until([&] { return server_->in_flight() == 0; }));
}

TEST_F(HttpServerCancel, APipelinedRequestIsNotADisconnect) {
  int fd = connect_client();
  // The second request arrives while the first is being handled: the watch peeks at it, and both are
  // answered in order once the first handler is released.
  send_all(fd, "GET /wait HTTP/1.1\r\nHost: x\r\n\r\nGET /now HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(wait_until([&] { return server_->in_flight() == 1; }));
  release_ = true;
  auto got = read_responses(fd, 2);
  ::close(fd);
  EXPECT_EQ(cancelled_, 0);
  ASSERT_NE(got.find("HTTP/1.1 200 OK"), std::string::npos) << got;
  EXPECT_LT(got.find("HTTP/1.1 200 OK"), got.find("HTTP/1.1 202 Accepted")) << got;
}

TEST_F(HttpServerCancel, HandlersThatDoNotWatchAnswerEveryRequestOfAConnection) {
  int fd = connect_client();
  std::string requests;
  for (int i = 0; i < 50; ++i) requests += "POST /now HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}";
  send_all(fd, requests);
  auto got = read_responses(fd, 50);
  ::close(fd);
  int accepted = 0;
  for (auto at = got.find("202 Accepted"); at != std::string::npos; at = got.find("202 Accepted", at + 1))
    ++accepted;
  EXPECT_EQ(accepted, 50);
  EXPECT_EQ(cancelled_, 0);
}

TEST_F(HttpServerCancel, StopClosesRequestsStillArrivingAndAnswersOnesBeingHandled) {
  int handled = connect_client();
  send_all(handled, "GET /wait HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(wait_until([&] { return server_->in_flight() == 1; }));
  // Its head was read (the server counts it), its body stalls after 10 of 1000 bytes.
  int stalled = testing::connect_loopback(server_->port(), 5s);
  send_all(stalled, "POST /now HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789");
  ASSERT_TRUE(wait_until([&] { return server_->in_flight() == 2; }));
  int idle = testing::connect_loopback(server_->port(), 5s);
  send_all(idle, "GET /now HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_NE(read_responses(idle, 1).find("202 Accepted"), std::string::npos);

  server_->stop();
  char byte;
  EXPECT_EQ(::recv(stalled, &byte, 1, 0), 0) << "the stalled upload is closed at once, unanswered";
  EXPECT_EQ(::recv(idle, &byte, 1, 0), 0) << "the idle connection is closed at once";
  EXPECT_TRUE(wait_until([&] { return server_->in_flight() == 1; }));
  EXPECT_EQ(cancelled_, 0);
  release_ = true;
  auto got = read_responses(handled, 1);
  EXPECT_NE(got.find("HTTP/1.1 200 OK"), std::string::npos) << got;
  EXPECT_NE(got.find("Connection: close"), std::string::npos) << got;
  for (int fd : {handled, stalled, idle}) ::close(fd);
}

}  // namespace
}  // namespace sluice
