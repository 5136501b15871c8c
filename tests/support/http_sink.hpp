#pragma once
// A real HTTP subscriber for tests: records every request and answers as the test scripts it.

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>

namespace sluice::testing {

struct ReceivedRequest {
  std::string method;
  std::string path;
  std::multimap<std::string, std::string> headers;  // names lowercased
  std::string body;
  std::chrono::steady_clock::time_point at;

  /// First header value by lowercase name, or "".
  std::string header(const std::string& name) const;
};

struct SinkResponse {
  int status = 200;
  std::string body;
  std::map<std::string, std::string> headers;
  std::chrono::milliseconds delay{0};
};

/// Listens on 127.0.0.1:<free port>. By default answers 200 with an empty body.
class HttpSink {
 public:
  using Responder = std::function<SinkResponse(const ReceivedRequest&, std::size_t index)>;
  HttpSink();
  ~HttpSink();

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  /// Decides each answer; `index` counts requests from 0.
  void respond(Responder responder);
  std::vector<ReceivedRequest> requests() const;
  std::size_t count() const;
  /// Waits until at least n requests arrived.
  bool wait_for(std::size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  mutable std::mutex mu_;
  std::vector<ReceivedRequest> requests_;
  Responder responder_;
};

}  // namespace sluice::testing
