// Round trips of HttpClient::send against a minimal keep-alive server on loopback, with the pool on
// (one connection reused) and off (a connection per request). Run: build/http_client_bench
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>

#include "core/http_client.hpp"

namespace {

using namespace sluice;

// Answers every request with 200 "ok"; one thread per connection, stopped by the destructor.
class OkServer {
 public:
  OkServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(fd_, 128);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    accept_ = std::thread([this] {
      while (true) {
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        conns_.push_back(c);
        threads_.emplace_back([c] { serve(c); });
      }
    });
  }
  ~OkServer() {
    ::shutdown(fd_, SHUT_RDWR);
    accept_.join();
    ::close(fd_);
    for (int c : conns_) ::shutdown(c, SHUT_RDWR);
    for (auto& t : threads_) t.join();
    for (int c : conns_) ::close(c);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/"; }

 private:
  static void serve(int c) {
    static constexpr std::string_view kOk = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    std::string data;
    char buf[4096];
    while (true) {
      auto end = data.find("\r\n\r\n");
      if (end != std::string::npos) {
        data.erase(0, end + 4);  // requests carry no body here
        if (::send(c, kOk.data(), kOk.size(), MSG_NOSIGNAL) <= 0) return;
        continue;
      }
      ssize_t n = ::read(c, buf, sizeof buf);
      if (n <= 0) return;
      data.append(buf, static_cast<std::size_t>(n));
    }
  }
  int fd_ = -1;
  int port_ = 0;
  std::thread accept_;
  std::vector<int> conns_;
  std::vector<std::thread> threads_;
};

void BM_SendRoundTrip(benchmark::State& state) {
  OkServer server;
  asio::io_context io;
  HttpClientOptions options;
  options.max_idle_per_host = state.range(0) ? 32 : 0;
  HttpClient client(io.get_executor(), options);
  HttpRequest request;
  request.method = "GET";
  request.url = server.url();
  std::int64_t failures = 0;
  for (auto _ : state) {
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          auto r = co_await client.send(request);
          if (!r) ++failures;
        },
        asio::detached);
    io.restart();
    io.run();
  }
  state.counters["failures"] = static_cast<double>(failures);
  state.counters["connections"] = static_cast<double>(client.connections_opened());
  state.SetLabel(state.range(0) ? "keep-alive pool" : "no pool");
}
BENCHMARK(BM_SendRoundTrip)->Arg(1)->UseRealTime();
// Without the pool every iteration opens a connection (and a server thread): keep the count bounded.
BENCHMARK(BM_SendRoundTrip)->Arg(0)->Iterations(2000)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
