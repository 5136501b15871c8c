#include "tests/support/http_sink.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>

#include "tests/support/wait.hpp"

namespace sluice::testing {

std::string ReceivedRequest::header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? "" : it->second;
}

HttpSink::HttpSink() {
  auto handler = [this](const httplib::Request& req, httplib::Response& res) {
    ReceivedRequest r;
    r.method = req.method;
    r.path = req.path;
    r.body = req.body;
    r.at = std::chrono::steady_clock::now();
    for (auto& [k, v] : req.headers) {
      std::string lower = k;
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return std::tolower(c); });
      r.headers.emplace(lower, v);
    }
    Responder responder;
    std::size_t index;
    {
      std::lock_guard lock(mu_);
      index = requests_.size();
      requests_.push_back(r);
      responder = responder_;
    }
    SinkResponse answer;
    if (responder) answer = responder(r, index);
    if (answer.delay.count() > 0) std::this_thread::sleep_for(answer.delay);
    res.status = answer.status;
    std::string content_type = "application/octet-stream";
    for (auto& [k, v] : answer.headers) {
      if (k == "Content-Type" || k == "content-type")
        content_type = v;
      else
        res.set_header(k, v);
    }
    if (!answer.body.empty()) res.set_content(answer.body, content_type);
  };
  server_.Post(".*", handler);
  server_.Put(".*", handler);
  server_.Get(".*", handler);
  server_.Delete(".*", handler);
  server_.new_task_queue = [] { return new httplib::ThreadPool(16); };
  // An idle keep-alive connection is closed at once, so that stop() does not wait the default 5 s for
  // the broker's pooled connections (the broker's client retries a closed pooled connection).
  server_.set_keep_alive_timeout(0);
  // That timeout also bounds the wait for a new connection's first request (about 10 ms): on a loaded
  // machine a client's request can come later and find the connection closed. Accepting a connection only
  // once its request has arrived (TCP_DEFER_ACCEPT) takes that race away.
  server_.set_socket_options([](socket_t sock) {
    httplib::default_socket_options(sock);
    int defer_seconds = 10;
    ::setsockopt(sock, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer_seconds, sizeof defer_seconds);
  });
  port_ = server_.bind_to_any_port("127.0.0.1");
  thread_ = std::thread([this] { server_.listen_after_bind(); });
  wait_until([this] { return server_.is_running(); });
}

HttpSink::~HttpSink() {
  server_.stop();
  if (thread_.joinable()) thread_.join();
}

void HttpSink::respond(Responder responder) {
  std::lock_guard lock(mu_);
  responder_ = std::move(responder);
}

std::vector<ReceivedRequest> HttpSink::requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

std::size_t HttpSink::count() const {
  std::lock_guard lock(mu_);
  return requests_.size();
}

bool HttpSink::wait_for(std::size_t n, std::chrono::milliseconds timeout) const {
  return wait_until([&] { return count() >= n; }, timeout);
}

}  // namespace sluice::testing
