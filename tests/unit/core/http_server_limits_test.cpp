#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "core/http_server.hpp"
#include "core/io_pool.hpp"
#include "tests/support/socket.hpp"

namespace sluice {
namespace {

// A server with small limits: requests over them are answered (413, 431, 400) before the connection
// closes, never just dropped.
class HttpServerLimits : public ::testing::Test {
 protected:
  void SetUp() override {
    HttpServerOptions options;
    options.port = 0;
    options.body_limit = 100;
    options.header_limit = 1024;
    server_ = std::make_unique<HttpServer>(pool_, options);
    server_->route("/",
                   [this](HttpServerRequest& req, RequestContext&) -> asio::awaitable<HttpServerResponse> {
                     ++handled_;
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

  // A connected socket whose reads give up after 5 s.
  int connect_client() { return testing::connect_loopback(server_->port(), std::chrono::seconds(5)); }

  // Sends `request`, then reads everything until the server closes the connection (or 5 s pass).
  std::string exchange(const std::string& request) {
    int fd = connect_client();
    EXPECT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL), static_cast<ssize_t>(request.size()));
    std::string got;
    char buf[4096];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) got.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    return got;
  }

  IoPool pool_{1};
  std::unique_ptr<HttpServer> server_;
  std::thread runner_;
  std::atomic<int> handled_{0};
};

TEST_F(HttpServerLimits, ADeclaredBodyOverTheLimitGets413) {
  auto got = exchange("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + std::string(1000, 'x'));
  EXPECT_TRUE(got.starts_with("HTTP/1.1 413 Payload Too Large")) << got;
  EXPECT_NE(got.find("{\"error\":\"request body exceeds the limit of 100 bytes\"}"), std::string::npos)
      << got;
  EXPECT_NE(got.find("Connection: close"), std::string::npos) << got;
  EXPECT_EQ(handled_, 0);
}

TEST_F(HttpServerLimits, ExpectContinueOverTheLimitGets413InsteadOf100) {
  auto got = exchange("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_TRUE(got.starts_with("HTTP/1.1 413 Payload Too Large")) << got;
  EXPECT_EQ(got.find("100 Continue"), std::string::npos) << got;
}

TEST_F(HttpServerLimits, ExpectContinueWithinTheLimitGets100ThenTheAnswer) {
  int fd = connect_client();
  std::string head = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n";
  ASSERT_GT(::send(fd, head.data(), head.size(), MSG_NOSIGNAL), 0);
  char buf[4096];
  ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  ASSERT_GT(n, 0);
  EXPECT_TRUE(std::string(buf, static_cast<std::size_t>(n)).starts_with("HTTP/1.1 100 Continue"));
  ASSERT_GT(::send(fd, "{}", 2, MSG_NOSIGNAL), 0);
  std::string got;
  while (got.find("202 Accepted") == std::string::npos && (n = ::recv(fd, buf, sizeof buf, 0)) > 0)
    got.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  EXPECT_NE(got.find("202 Accepted"), std::string::npos) << got;
}

TEST_F(HttpServerLimits, HeadersOverTheLimitGet431) {
  auto got = exchange("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(2000, 'a') + "\r\n\r\n");
  EXPECT_TRUE(got.starts_with("HTTP/1.1 431 Request Header Fields Too Large")) << got;
  EXPECT_NE(got.find("request headers exceed the limit of 1024 bytes"), std::string::npos) << got;
  EXPECT_EQ(handled_, 0);
}

TEST_F(HttpServerLimits, AMalformedContentLengthGets400) {
  auto got = exchange("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n");
  EXPECT_TRUE(got.starts_with("HTTP/1.1 400 Bad Request")) << got;
  EXPECT_NE(got.find("malformed Content-Length header"), std::string::npos) << got;
  EXPECT_EQ(handled_, 0);
}

TEST_F(HttpServerLimits, AChunkedBodyOverTheLimitGets413) {
  std::string chunk(80, 'x');
  auto got = exchange("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n50\r\n" + chunk +
                      "\r\n50\r\n" + chunk + "\r\n0\r\n\r\n");
  EXPECT_TRUE(got.starts_with("HTTP/1.1 413 Payload Too Large")) << got;
}

// RFC 9112 §6.3: a request whose last transfer coding is not chunked has no trustworthy length. Reading
// it as bodiless would serve its body as the next request (request smuggling); it is refused instead.
TEST_F(HttpServerLimits, ATransferEncodingNotEndingInChunkedGets400AndItsBodyIsNotAnotherRequest) {
  auto got = exchange(
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi");
  EXPECT_TRUE(got.starts_with("HTTP/1.1 400 Bad Request")) << got;
  EXPECT_NE(got.find("must be chunked exactly once, as its last coding"), std::string::npos) << got;
  EXPECT_EQ(got.find("202"), std::string::npos) << got;
  EXPECT_EQ(handled_, 0);
}

TEST_F(HttpServerLimits, ACodingBeforeChunkedGets501) {
  auto got =
      exchange("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n");
  EXPECT_TRUE(got.starts_with("HTTP/1.1 501 ")) << got;
  EXPECT_NE(got.find("transfer coding \\\"gzip\\\" is not supported (only chunked)"), std::string::npos)
      << got;
  EXPECT_EQ(handled_, 0);
}

TEST_F(HttpServerLimits, ContentLengthWithTransferEncodingGets400) {
  auto got = exchange(
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: "
      "chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
  EXPECT_TRUE(got.starts_with("HTTP/1.1 400 Bad Request")) << got;
  EXPECT_NE(got.find("Transfer-Encoding header, or one sent with Content-Length"), std::string::npos) << got;
  EXPECT_EQ(handled_, 0);
}

TEST_F(HttpServerLimits, AMalformedChunkGets400) {
  auto got =
      exchange("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n");
  EXPECT_TRUE(got.starts_with("HTTP/1.1 400 Bad Request")) << got;
  EXPECT_NE(got.find("malformed chunked body"), std::string::npos) << got;
  EXPECT_EQ(handled_, 0);
}

TEST_F(HttpServerLimits, AMalformedRequestLineGets400) {
  auto got = exchange("POST / HTTP/9\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(got.starts_with("HTTP/1.1 400 Bad Request")) << got;
  EXPECT_NE(got.find("malformed request"), std::string::npos) << got;
  EXPECT_EQ(handled_, 0);
}

TEST_F(HttpServerLimits, AChunkedBodyStillWorks) {
  auto got = exchange(
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\nConnection: "
      "close\r\n\r\n2\r\nhi\r\n0\r\n\r\n");
  EXPECT_TRUE(got.starts_with("HTTP/1.1 202 Accepted")) << got;
  EXPECT_EQ(handled_, 1);
}

}  // namespace
}  // namespace sluice
