#include "core/http_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <thread>

#include <gtest/gtest.h>

#include "tests/support/wait.hpp"

namespace sluice {
namespace {

using namespace std::chrono_literals;
using testing::wait_until;

// A raw TCP server whose every connection runs a script on its own thread, for exchanges that an HTTP
// library would not produce: stalls, resets, closing at chosen moments, chunk-by-chunk pacing.
class ScriptedServer {
 public:
  using Script = std::function<void(int fd, std::size_t connection_index)>;

  explicit ScriptedServer(Script script) : script_(std::move(script)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(listen_fd_, 64), 0);
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    accept_thread_ = std::thread([this] { accept_loop(); });
  }

  ~ScriptedServer() {
    stopping_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    accept_thread_.join();
    ::close(listen_fd_);
    {
      std::lock_guard lock(mu_);
      for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);  // unblocks scripts waiting on a read
    }
    for (auto& t : threads_) t.join();
    for (int fd : fds_) ::close(fd);
  }

  std::string url(const std::string& path = "/") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  int port() const { return port_; }
  std::size_t accepted() const { return accepted_.load(); }

  // Reads one request (headers and a Content-Length body); "" at EOF.
  static std::string read_request(int fd) {
    std::string data;
    char buf[4096];
    while (true) {
      auto header_end = data.find("\r\n\r\n");
      if (header_end != std::string::npos) {
        std::size_t length = 0;
        std::string lower = data.substr(0, header_end);
        for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        auto at = lower.find("content-length:");
        if (at != std::string::npos) length = std::stoul(lower.substr(at + 15));
        if (data.size() >= header_end + 4 + length) return data.substr(0, header_end + 4 + length);
      }
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) return "";
      data.append(buf, static_cast<std::size_t>(n));
    }
  }

  static void write_all(int fd, std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
  }

  // Blocks until the peer closes (or the server stops); true when the peer closed.
  static bool wait_for_close(int fd) {
    char buf[256];
    while (true) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n == 0) return true;
      if (n < 0) return errno == ECONNRESET;
    }
  }

 private:
  void accept_loop() {
    while (!stopping_) {
      int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) return;
      std::size_t index = accepted_++;
      std::lock_guard lock(mu_);
      fds_.push_back(fd);
      threads_.emplace_back([this, fd, index] { script_(fd, index); });
    }
  }

  Script script_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<std::size_t> accepted_{0};
  std::thread accept_thread_;
  std::mutex mu_;
  std::vector<int> fds_;
  std::vector<std::thread> threads_;
};

// A loopback port with no listener: bound to port 0, then released.
int unused_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

constexpr const char* kOk = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

// Answers every request on the connection with 200 "ok" until the client closes.
void serve_ok(int fd, std::size_t) {
  while (!ScriptedServer::read_request(fd).empty()) ScriptedServer::write_all(fd, kOk);
}

// Runs one coroutine to completion on `io` (Asio 1.18's co_spawn needs a default-constructible result
// type for a completion handler, which Result is not, hence the optional).
template <class T>
T run(asio::io_context& io, asio::awaitable<T> task) {
  std::optional<T> out;
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { out.emplace(co_await std::move(task)); }, asio::detached);
  io.restart();
  io.run();
  EXPECT_TRUE(out.has_value());
  return std::move(*out);
}

HttpRequest get(std::string url) {
  HttpRequest request;
  request.method = "GET";
  request.url = std::move(url);
  return request;
}

// Records raw requests and answers each with `respond(request_text)`; keeps the connection open.
struct Recorder {
  explicit Recorder(std::function<std::string(const std::string&)> respond) : respond(std::move(respond)) {}
  void serve(int fd) {
    while (true) {
      auto request = ScriptedServer::read_request(fd);
      if (request.empty()) return;
      {
        std::lock_guard lock(mu);
        requests.push_back(request);
      }
      ScriptedServer::write_all(fd, respond(request));
    }
  }
  std::string request(std::size_t i) {
    std::lock_guard lock(mu);
    return requests.at(i);
  }
  std::function<std::string(const std::string&)> respond;
  std::mutex mu;
  std::vector<std::string> requests;
};

std::string body_of(const std::string& request) {
  return request.substr(request.find("\r\n\r\n") + 4);
}

std::string response_with(int status, const std::string& body, const std::string& extra_headers = "") {
  return "HTTP/1.1 " + std::to_string(status) + " X\r\n" + extra_headers +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

TEST(HttpClient, GetWithHeaders) {
  Recorder recorder([](const std::string&) {
    return response_with(201, "hello", "X-Reply: yes\r\nContent-Type: text/plain\r\n");
  });
  ScriptedServer server([&](int fd, std::size_t) { recorder.serve(fd); });
  asio::io_context io;
  HttpClient client(io.get_executor());
  auto request = get(server.url("/path/x?q=1&r=two"));
  request.headers = {{"X-Test", "a"}, {"Ce-Id", "42"}};
  auto response = run(io, client.send(request));
  ASSERT_TRUE(response) << response.error().to_string();
  EXPECT_EQ(response.value().status, 201);
  EXPECT_EQ(response.value().body, "hello");
  ASSERT_NE(response.value().header("x-reply"), nullptr);
  EXPECT_EQ(*response.value().header("X-REPLY"), "yes");
  EXPECT_EQ(*response.value().header("content-type"), "text/plain");
  EXPECT_EQ(response.value().header("x-absent"), nullptr);
  EXPECT_EQ(response.value().headers.front().first, "X-Reply");  // order and case as received

  auto received = recorder.request(0);
  EXPECT_TRUE(received.starts_with("GET /path/x?q=1&r=two HTTP/1.1\r\n")) << received;
  EXPECT_NE(received.find("\r\nX-Test: a\r\n"), std::string::npos) << received;
  EXPECT_NE(received.find("\r\nCe-Id: 42\r\n"), std::string::npos) << received;
  EXPECT_NE(received.find("\r\nHost: 127.0.0.1:" + std::to_string(server.port()) + "\r\n"), std::string::npos)
      << received;
  EXPECT_NE(received.find("\r\nUser-Agent: sluice\r\n"), std::string::npos) << received;
}

TEST(HttpClient, PostBody) {
  Recorder recorder([](const std::string& r) { return response_with(202, "got " + body_of(r)); });
  ScriptedServer server([&](int fd, std::size_t) { recorder.serve(fd); });
  asio::io_context io;
  HttpClient client(io.get_executor());
  HttpRequest request;
  request.url = server.url("/brokers/default");
  request.headers = {{"Content-Type", "application/json"}, {"Content-Length", "999"}};  // recomputed
  request.body = R"({"a":1})";
  auto response = run(io, client.send(request));
  ASSERT_TRUE(response) << response.error().to_string();
  EXPECT_EQ(response.value().status, 202);
  EXPECT_EQ(response.value().body, R"(got {"a":1})");
  auto received = recorder.request(0);
  EXPECT_TRUE(received.starts_with("POST /brokers/default HTTP/1.1\r\n")) << received;
  EXPECT_EQ(body_of(received), R"({"a":1})");
  EXPECT_NE(received.find("\r\nContent-Type: application/json\r\n"), std::string::npos) << received;
  EXPECT_NE(received.find("\r\nContent-Length: 7\r\n"), std::string::npos) << received;
  EXPECT_EQ(received.find("Content-Length: 999"), std::string::npos) << received;
}

TEST(HttpClient, AnyStatusIsASuccess) {
  ScriptedServer server([](int fd, std::size_t) {
    ScriptedServer::read_request(fd);
    ScriptedServer::write_all(fd, response_with(503, "busy"));
    serve_ok(fd, 0);
  });
  asio::io_context io;
  HttpClient client(io.get_executor());
  auto response = run(io, client.send(get(server.url())));
  ASSERT_TRUE(response);
  EXPECT_EQ(response.value().status, 503);
  EXPECT_EQ(response.value().body, "busy");
}

TEST(HttpClient, KeepAliveReusesOneConnection) {
  ScriptedServer server(serve_ok);
  asio::io_context io;
  HttpClient client(io.get_executor());
  for (int i = 0; i < 20; ++i) {
    auto response = run(io, client.send(get(server.url("/n/" + std::to_string(i)))));
    ASSERT_TRUE(response) << response.error().to_string();
    EXPECT_EQ(response.value().body, "ok");
  }
  EXPECT_EQ(server.accepted(), 1u);
  EXPECT_EQ(client.connections_opened(), 1u);
  EXPECT_EQ(client.idle_connections(), 1u);
  client.close_idle();
  EXPECT_EQ(client.idle_connections(), 0u);
}

TEST(HttpClient, ConcurrentRequestsUseOneConnectionEachAndThenThePool) {
  ScriptedServer server(serve_ok);
  asio::io_context io;
  HttpClient client(io.get_executor());
  auto round = [&] {
    int ok = 0;
    for (int i = 0; i < 8; ++i) {
      asio::co_spawn(
          io,
          [&]() -> asio::awaitable<void> {
            auto r = co_await client.send(get(server.url()));
            if (r && r.value().status == 200) ++ok;
          },
          asio::detached);
    }
    io.restart();
    io.run();
    return ok;
  };
  EXPECT_EQ(round(), 8);
  EXPECT_EQ(client.connections_opened(), 8u);
  EXPECT_EQ(client.idle_connections(), 8u);
  EXPECT_EQ(round(), 8);
  EXPECT_EQ(client.connections_opened(), 8u);
  EXPECT_EQ(server.accepted(), 8u);
}

TEST(HttpClient, ManyThreadsWithStrandsShareOnePool) {
  ScriptedServer server(serve_ok);
  asio::io_context io;
  HttpClient client(io.get_executor());
  constexpr int kRequests = 400;
  std::atomic<int> ok{0};
  std::atomic<int> cancelled{0};
  std::mutex cancellers_mu;
  std::vector<std::thread> cancellers;
  for (int i = 0; i < kRequests; ++i) {
    // Each request on its own strand, as HttpServer sessions are; every 10th is cancelled midway.
    asio::co_spawn(
        asio::make_strand(io),
        [&, i]() -> asio::awaitable<void> {
          auto request = get(server.url("/" + std::to_string(i)));
          if (i % 10 == 0) {
            request.cancel = std::make_shared<CancelSignal>();
            std::lock_guard lock(cancellers_mu);
            cancellers.emplace_back([signal = request.cancel] { signal->cancel(); });
          }
          auto r = co_await client.send(request);
          if (r && r.value().status == 200) {
            ++ok;
          } else if (!r && is_cancelled_error(r.error())) {
            ++cancelled;
          }
        },
        asio::detached);
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back([&] { io.run(); });
  for (auto& t : threads) t.join();
  for (auto& t : cancellers) t.join();
  EXPECT_EQ(ok + cancelled, kRequests);
  EXPECT_GE(ok, kRequests * 9 / 10);
  EXPECT_LE(client.idle_connections(), 32u);
}

TEST(HttpClient, IdlePoolIsBounded) {
  ScriptedServer server(serve_ok);
  asio::io_context io;
  HttpClientOptions options;
  options.max_idle_per_host = 2;
  HttpClient client(io.get_executor(), options);
  for (int i = 0; i < 5; ++i) {
    asio::co_spawn(
        io, [&]() -> asio::awaitable<void> { (void)co_await client.send(get(server.url())); },
        asio::detached);
  }
  io.run();
  EXPECT_EQ(client.connections_opened(), 5u);
  EXPECT_EQ(client.idle_connections(), 2u);
}

TEST(HttpClient, ConnectionRefused) {
  int port = unused_port();
  asio::io_context io;
  HttpClient client(io.get_executor());
  auto url = "http://127.0.0.1:" + std::to_string(port) + "/x";
  auto response = run(io, client.send(get(url)));
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().code, 0);
  EXPECT_EQ(response.error().subject, url);
  EXPECT_TRUE(response.error().message.starts_with("connection refused")) << response.error().message;
  EXPECT_FALSE(is_timeout_error(response.error()));
}

TEST(HttpClient, LocalhostSkipsTheResolver) {
  ScriptedServer server(serve_ok);
  asio::io_context io;
  HttpClient client(io.get_executor());
  auto response = run(io, client.send(get("http://localhost:" + std::to_string(server.port()) + "/")));
  ASSERT_TRUE(response) << response.error().to_string();
  EXPECT_EQ(response.value().body, "ok");
}

TEST(HttpClient, TimeoutWaitingForTheResponse) {
  std::atomic<bool> closed{false};
  ScriptedServer server([&](int fd, std::size_t) {
    ScriptedServer::read_request(fd);
    closed = ScriptedServer::wait_for_close(fd);  // never answers
  });
  asio::io_context io;
  HttpClient client(io.get_executor());
  auto request = get(server.url());
  request.timeout = 200ms;
  auto start = std::chrono::steady_clock::now();
  auto response = run(io, client.send(request));
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().message, "timed out after 200 ms");
  EXPECT_TRUE(is_timeout_error(response.error()));
  EXPECT_GE(elapsed, 190ms);
  EXPECT_LT(elapsed, 5s);
  EXPECT_TRUE(wait_until([&] { return closed.load(); }));
  EXPECT_EQ(client.idle_connections(), 0u);
}

TEST(HttpClient, TimeoutCoversTheBody) {
  ScriptedServer server([](int fd, std::size_t) {
    ScriptedServer::read_request(fd);
    ScriptedServer::write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
    ScriptedServer::wait_for_close(fd);
  });
  asio::io_context io;
  HttpClient client(io.get_executor());
  auto request = get(server.url());
  request.timeout = 200ms;
  auto response = run(io, client.send(request));
  ASSERT_FALSE(response);
  EXPECT_TRUE(is_timeout_error(response.error())) << response.error().message;
}

TEST(HttpClient, LargeBodiesBothWays) {
  Recorder recorder([](const std::string& r) { return response_with(200, body_of(r)); });
  ScriptedServer server([&](int fd, std::size_t) { recorder.serve(fd); });
  asio::io_context io;
  HttpClient client(io.get_executor());
  HttpRequest request;
  request.url = server.url("/echo");
  request.body.resize(8 << 20);
  for (std::size_t i = 0; i < request.body.size(); ++i) request.body[i] = static_cast<char>('a' + i % 26);
  auto response = run(io, client.send(request));
  ASSERT_TRUE(response) << response.error().to_string();
  EXPECT_EQ(response.value().body.size(), request.body.size());
  EXPECT_TRUE(response.value().body == request.body);
}

TEST(HttpClient, ResponseBodyLimit) {
  ScriptedServer server([](int fd, std::size_t) {
    ScriptedServer::read_request(fd);
    ScriptedServer::write_all(fd, response_with(200, std::string(2000, 'x')));
    ScriptedServer::wait_for_close(fd);
  });
  asio::io_context io;
  HttpClientOptions options;
  options.max_response_body_bytes = 1000;
  HttpClient client(io.get_executor(), options);
  auto response = run(io, client.send(get(server.url())));
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().message, "response body exceeds 1000 bytes");
  EXPECT_EQ(client.idle_connections(), 0u);  // the rest of the body was never read: closed
}

TEST(HttpClient, ResponseBodyLimitWithoutContentLength) {
  ScriptedServer server([](int fd, std::size_t) {
    ScriptedServer::read_request(fd);
    std::string chunk(600, 'x');
    ScriptedServer::write_all(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 3; ++i) ScriptedServer::write_all(fd, "258\r\n" + chunk + "\r\n");
    ScriptedServer::write_all(fd, "0\r\n\r\n");
    ScriptedServer::wait_for_close(fd);
  });
  asio::io_context io;
  HttpClientOptions options;
  options.max_response_body_bytes = 1000;
  HttpClient client(io.get_executor(), options);
  auto response = run(io, client.send(get(server.url())));
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().message, "response body exceeds 1000 bytes");
}

TEST(HttpClient, ChunkedResponseIsStreamedInPieces) {
  std::atomic<bool> first_delivered{false};
  std::atomic<bool> server_saw_first_delivered{false};
  ScriptedServer server([&](int fd, std::size_t) {
    ScriptedServer::read_request(fd);
    ScriptedServer::write_all(
        fd, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n");
    ScriptedServer::write_all(fd, "9\r\ndata: 1\n\n\r\n");
    // The second event goes out only once the client has handed the first one over.
    server_saw_first_delivered = wait_until([&] { return first_delivered.load(); });
    ScriptedServer::write_all(fd, "9\r\ndata: 2\n\n\r\n0\r\n\r\n");
    serve_ok(fd, 0);
  });
  asio::io_context io;
  HttpClient client(io.get_executor());
  int status_seen = 0;
  std::string content_type;
  std::vector<std::string> chunks;
  auto request = get(server.url("/events"));
  auto result = run(io, client.stream(
                            request,
                            [&](int status, const HttpHeaders& headers) {
                              status_seen = status;
                              for (auto& [k, v] : headers) {
                                if (k == "Content-Type") content_type = v;
                              }
                            },
                            [&](std::string_view chunk) {
                              chunks.emplace_back(chunk);
                              first_delivered = true;
                              return true;
                            }));
  ASSERT_TRUE(result) << result.error().to_string();
  EXPECT_EQ(result.value(), 200);
  EXPECT_EQ(status_seen, 200);
  EXPECT_EQ(content_type, "text/event-stream");
  EXPECT_TRUE(server_saw_first_delivered.load());
  ASSERT_GE(chunks.size(), 2u);
  EXPECT_EQ(chunks[0], "data: 1\n\n");
  std::string all;
  for (auto& c : chunks) all += c;
  EXPECT_EQ(all, "data: 1\n\ndata: 2\n\n");
  // The stream ended cleanly: the connection went back to the pool and serves the next request.
  EXPECT_EQ(client.idle_connections(), 1u);
  ASSERT_TRUE(run(io, client.send(get(server.url()))));
  EXPECT_EQ(server.accepted(), 1u);
}

TEST(HttpClient, StreamStopsEarlyAndClosesTheConnection) {
  std::atomic<bool> closed{false};
  ScriptedServer server([&](int fd, std::size_t) {
    ScriptedServer::read_request(fd);
    ScriptedServer::write_all(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n");
    closed = ScriptedServer::wait_for_close(fd);
  });
  asio::io_context io;
  HttpClient client(io.get_executor());
  int calls = 0;
  auto request = get(server.url());
  request.timeout = 0ms;  // no deadline, as for a long-lived SSE stream
  auto result = run(io, client.stream(request, nullptr, [&](std::string_view) {
    ++calls;
    return false;
  }));
  ASSERT_TRUE(result) << result.error().to_string();
  EXPECT_EQ(result.value(), 200);
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(wait_until([&] { return closed.load(); }));
  EXPECT_EQ(client.idle_connections(), 0u);
}

TEST(HttpClient, RelayAwaitsEachHandler) {
  ScriptedServer server([](int fd, std::size_t) {
    ScriptedServer::read_request(fd);
    ScriptedServer::write_all(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n");
    ScriptedServer::write_all(fd, "3\r\ndef\r\n0\r\n\r\n");
    serve_ok(fd, 0);
  });
  asio::io_context io;
  HttpClient client(io.get_executor());
  std::string relayed;
  int status_seen = 0;
  auto result = run(io, client.relay(
                            get(server.url()),
                            [&](int status, const HttpHeaders&) -> asio::awaitable<bool> {
                              status_seen = status;
                              co_return true;
                            },
                            [&](std::string_view chunk) -> asio::awaitable<bool> {
                              std::string copy(chunk);  // the view is valid until the first suspension
                              asio::steady_timer slow_downstream(co_await asio::this_coro::executor, 5ms);
                              co_await slow_downstream.async_wait(asio::use_awaitable);
                              relayed += copy;
                              co_return true;
                            }));
  ASSERT_TRUE(result) << result.error().to_string();
  EXPECT_EQ(status_seen, 200);
  EXPECT_EQ(relayed, "abcdef");
}

TEST(HttpClient, CancellationFreesPromptly) {
  std::atomic<bool> got_request{false};
  std::atomic<bool> closed{false};
  ScriptedServer server([&](int fd, std::size_t) {
    ScriptedServer::read_request(fd);
    got_request = true;
    closed = ScriptedServer::wait_for_close(fd);
  });
  asio::io_context io;
  HttpClient client(io.get_executor());
  auto signal = std::make_shared<CancelSignal>();
  auto request = get(server.url());
  request.timeout = 60s;
  request.cancel = signal;
  // Cancelled from another thread, as a disconnect seen by another connection's strand would be.
  std::thread canceller([&] {
    if (wait_until([&] { return got_request.load(); })) signal->cancel();
  });
  auto start = std::chrono::steady_clock::now();
  auto response = run(io, client.send(request));
  auto elapsed = std::chrono::steady_clock::now() - start;
  canceller.join();
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().message, "cancelled");
  EXPECT_TRUE(is_cancelled_error(response.error()));
  EXPECT_LT(elapsed, 5s);
  EXPECT_TRUE(wait_until([&] { return closed.load(); }));
  EXPECT_EQ(client.idle_connections(), 0u);
}

TEST(HttpClient, CancellationDuringRelayHandler) {
  std::atomic<bool> closed{false};
  ScriptedServer server([&](int fd, std::size_t) {
    ScriptedServer::read_request(fd);
    ScriptedServer::write_all(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n");
    closed = ScriptedServer::wait_for_close(fd);
  });
  asio::io_context io;
  HttpClient client(io.get_executor());
  auto signal = std::make_shared<CancelSignal>();
  auto request = get(server.url());
  request.timeout = 0ms;
  request.cancel = signal;
  auto result = run(io, client.relay(request, nullptr, [&](std::string_view) -> asio::awaitable<bool> {
    signal->cancel();  // the downstream went away while a chunk was being written
    co_return true;
  }));
  ASSERT_FALSE(result);
  EXPECT_TRUE(is_cancelled_error(result.error()));
  EXPECT_TRUE(wait_until([&] { return closed.load(); }));
}

TEST(HttpClient, CancelledBeforeStart) {
  ScriptedServer server(serve_ok);
  asio::io_context io;
  HttpClient client(io.get_executor());
  auto request = get(server.url());
  request.cancel = std::make_shared<CancelSignal>();
  request.cancel->cancel();
  auto response = run(io, client.send(request));
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().message, "cancelled");
  EXPECT_EQ(server.accepted(), 0u);
}

TEST(HttpClient, StalePooledConnectionIsRetriedOnce) {
  ScriptedServer server([](int fd, std::size_t index) {
    if (index == 0) {
      ScriptedServer::read_request(fd);
      ScriptedServer::write_all(fd, kOk);
      ScriptedServer::read_request(fd);  // the server drops the keep-alive connection as the request arrives
      ::shutdown(fd, SHUT_RDWR);
      return;
    }
    ScriptedServer::read_request(fd);
    ScriptedServer::write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh");
    serve_ok(fd, index);
  });
  asio::io_context io;
  HttpClient client(io.get_executor());
  ASSERT_TRUE(run(io, client.send(get(server.url()))));
  HttpRequest post;
  post.url = server.url();
  post.body = "payload";
  auto response = run(io, client.send(post));
  ASSERT_TRUE(response) << response.error().to_string();
  EXPECT_EQ(response.value().body, "fresh");
  EXPECT_EQ(client.stale_retries(), 1u);
  EXPECT_EQ(client.connections_opened(), 2u);
}

TEST(HttpClient, ClosedIdleConnectionIsNotReused) {
  ScriptedServer server([](int fd, std::size_t) {
    ScriptedServer::read_request(fd);
    ScriptedServer::write_all(fd, kOk);
    ::shutdown(fd, SHUT_RDWR);  // closes right after answering, without saying so
  });
  asio::io_context io;
  HttpClient client(io.get_executor());
  ASSERT_TRUE(run(io, client.send(get(server.url()))));
  // The client notices the close when taking the connection from the pool, before writing.
  ASSERT_TRUE(wait_until([&] { return server.accepted() == 1; }));
  for (int i = 0; i < 2; ++i) {
    auto response = run(io, client.send(get(server.url())));
    ASSERT_TRUE(response) << response.error().to_string();
  }
  EXPECT_EQ(client.connections_opened(), 3u);
}

TEST(HttpClient, FreshConnectionClosedWithoutResponseIsAnError) {
  ScriptedServer server([](int fd, std::size_t) {
    ScriptedServer::read_request(fd);
    ::shutdown(fd, SHUT_RDWR);
  });
  asio::io_context io;
  HttpClient client(io.get_executor());
  auto response = run(io, client.send(get(server.url())));
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().message, "connection closed before the response");
  EXPECT_EQ(server.accepted(), 1u);
  EXPECT_EQ(client.stale_retries(), 0u);
}

TEST(HttpClient, ResetDuringBody) {
  ScriptedServer server([](int fd, std::size_t) {
    ScriptedServer::read_request(fd);
    ScriptedServer::write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial");
    linger hard_close{1, 0};  // RST instead of FIN
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard_close, sizeof hard_close);
    ::close(fd);
  });
  asio::io_context io;
  HttpClient client(io.get_executor());
  auto response = run(io, client.send(get(server.url())));
  ASSERT_FALSE(response);
  EXPECT_TRUE(response.error().message == "connection reset by peer" ||
              response.error().message == "connection closed during the response body")
      << response.error().message;
}

TEST(HttpClient, BodyUntilCloseAndConnectionClose) {
  ScriptedServer server([](int fd, std::size_t) {
    ScriptedServer::read_request(fd);
    ScriptedServer::write_all(fd, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end");
    ::shutdown(fd, SHUT_WR);
    ScriptedServer::wait_for_close(fd);
  });
  asio::io_context io;
  HttpClient client(io.get_executor());
  auto response = run(io, client.send(get(server.url())));
  ASSERT_TRUE(response) << response.error().to_string();
  EXPECT_EQ(response.value().body, "until the end");
  EXPECT_EQ(client.idle_connections(), 0u);
}

TEST(HttpClient, RequestConnectionCloseIsNotPooled) {
  ScriptedServer server(serve_ok);
  asio::io_context io;
  HttpClient client(io.get_executor());
  auto request = get(server.url());
  request.headers = {{"Connection", "close"}};
  ASSERT_TRUE(run(io, client.send(request)));
  EXPECT_EQ(client.idle_connections(), 0u);
}

TEST(HttpClient, HeadHasNoBody) {
  ScriptedServer server([](int fd, std::size_t) {
    while (!ScriptedServer::read_request(fd).empty()) {
      ScriptedServer::write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
    }
  });
  asio::io_context io;
  HttpClient client(io.get_executor());
  auto request = get(server.url());
  request.method = "HEAD";
  request.timeout = 2s;
  for (int i = 0; i < 2; ++i) {
    auto response = run(io, client.send(request));
    ASSERT_TRUE(response) << response.error().to_string();
    EXPECT_EQ(response.value().body, "");
    EXPECT_EQ(*response.value().header("content-length"), "100");
  }
  EXPECT_EQ(server.accepted(), 1u);
}

TEST(HttpClient, InterimResponsesAreSkipped) {
  ScriptedServer server([](int fd, std::size_t) {
    ScriptedServer::read_request(fd);
    ScriptedServer::write_all(fd, std::string("HTTP/1.1 100 Continue\r\n\r\n") + kOk);
    serve_ok(fd, 0);
  });
  asio::io_context io;
  HttpClient client(io.get_executor());
  auto response = run(io, client.send(get(server.url())));
  ASSERT_TRUE(response) << response.error().to_string();
  EXPECT_EQ(response.value().status, 200);
  EXPECT_EQ(response.value().body, "ok");
}

TEST(HttpClient, InvalidResponse) {
  ScriptedServer server([](int fd, std::size_t) {
    ScriptedServer::read_request(fd);
    ScriptedServer::write_all(fd, "NOT HTTP AT ALL\r\n\r\n");
    ScriptedServer::wait_for_close(fd);
  });
  asio::io_context io;
  HttpClient client(io.get_executor());
  auto response = run(io, client.send(get(server.url())));
  ASSERT_FALSE(response);
  EXPECT_TRUE(response.error().message.starts_with("invalid response")) << response.error().message;
}

TEST(HttpClient, RejectsHeaderInjectionAndBadUrls) {
  asio::io_context io;
  HttpClient client(io.get_executor());
  auto request = get("http://127.0.0.1:1/");
  request.headers = {{"X-Evil", "a\r\nInjected: yes"}};
  auto response = run(io, client.send(request));
  ASSERT_FALSE(response);
  EXPECT_NE(response.error().message.find("line break"), std::string::npos);

  auto bad_url = run(io, client.send(get("ftp://example.com/")));
  ASSERT_FALSE(bad_url);
  EXPECT_NE(bad_url.error().message.find("unsupported scheme"), std::string::npos);
}

TEST(HttpClient, HttpsToAServerThatIsNotTlsFailsTheHandshake) {
  // A plain HTTP answer where a TLS ServerHello belongs.
  ScriptedServer server([](int fd, std::size_t) {
    char buf[512];
    (void)::read(fd, buf, sizeof buf);
    const std::string reply = "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n";
    (void)::write(fd, reply.data(), reply.size());
  });
  asio::io_context io;
  HttpClient client(io.get_executor());
  auto response = run(io, client.send(get("https://127.0.0.1:" + std::to_string(server.port()) + "/")));
  ASSERT_FALSE(response);
  EXPECT_TRUE(response.error().message.starts_with("TLS handshake failed")) << response.error().message;
}

TEST(HttpClient, ClientTlsContextErrorsNameTheFile) {
  auto missing = make_client_tls_context({"/nonexistent/ca.pem", "", ""});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().subject, "/nonexistent/ca.pem");
  EXPECT_NE(missing.error().message.find("CA certificates"), std::string::npos) << missing.error().message;
  auto half = make_client_tls_context({"", "/tmp/client.crt", ""});
  ASSERT_FALSE(half);
  EXPECT_NE(half.error().message.find("go together"), std::string::npos);
  EXPECT_TRUE(make_client_tls_context({}));
}

TEST(HttpClient, ParseUrl) {
  auto u = parse_url("http://127.0.0.1:8080/a/b?x=1#frag");
  ASSERT_TRUE(u);
  EXPECT_EQ(u.value().host, "127.0.0.1");
  EXPECT_EQ(u.value().port, 8080);
  EXPECT_EQ(u.value().target, "/a/b?x=1");
  EXPECT_EQ(u.value().authority(), "127.0.0.1:8080");

  u = parse_url("HTTP://example.com");
  ASSERT_TRUE(u);
  EXPECT_EQ(u.value().host, "example.com");
  EXPECT_EQ(u.value().port, 80);
  EXPECT_EQ(u.value().target, "/");
  EXPECT_EQ(u.value().authority(), "example.com");

  u = parse_url("HTTPS://example.com/a");
  ASSERT_TRUE(u);
  EXPECT_TRUE(u.value().tls());
  EXPECT_EQ(u.value().port, 443);
  EXPECT_EQ(u.value().authority(), "example.com");
  u = parse_url("https://example.com:8443/");
  ASSERT_TRUE(u);
  EXPECT_EQ(u.value().authority(), "example.com:8443");

  u = parse_url("http://[::1]:9000?q");
  ASSERT_TRUE(u);
  EXPECT_EQ(u.value().host, "::1");
  EXPECT_EQ(u.value().port, 9000);
  EXPECT_EQ(u.value().target, "/?q");
  EXPECT_EQ(u.value().authority(), "[::1]:9000");

  for (const char* bad :
       {"", "127.0.0.1:80/x", "ftp://x/", "http://", "http://:80/", "http://h:0/", "http://h:65536/",
        "http://h:x/", "http://u@h/", "http://[::1/", "http://h/a b", "http://h:/"}) {
    auto r = parse_url(bad);
    EXPECT_FALSE(r) << bad;
    if (!r) {
      EXPECT_TRUE(r.error().message.starts_with("invalid URL")) << r.error().message;
    }
  }
}

TEST(CancelSignal, SubscribersRunOnceAndLateOnesAtOnce) {
  CancelSignal signal;
  int calls = 0;
  auto id = signal.subscribe([&] { ++calls; });
  auto removed = signal.subscribe([&] { calls += 100; });
  signal.unsubscribe(removed);
  EXPECT_FALSE(signal.cancelled());
  signal.cancel();
  signal.cancel();
  EXPECT_TRUE(signal.cancelled());
  EXPECT_EQ(calls, 1);
  signal.subscribe([&] { ++calls; });
  EXPECT_EQ(calls, 2);
  signal.unsubscribe(id);
}

}  // namespace
}  // namespace sluice
