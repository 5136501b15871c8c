// bare_server: the baseline for ingress benchmarks. The same HTTP stack as `sluice serve` (Beast
// coroutines on a thread-per-core IoPool) answering every request 202 at once: no decoding, no log.
//
//   bare_server [--listen HOST:PORT] [--threads N]

#include <csignal>
#include <iostream>
#include <string>

#include "core/http_server.hpp"
#include "core/io_pool.hpp"

int main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8099;
  std::size_t threads = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string arg = argv[i];
    std::string value = argv[i + 1];
    if (arg == "--listen") {
      auto colon = value.rfind(':');
      host = value.substr(0, colon);
      port = static_cast<std::uint16_t>(std::stoi(value.substr(colon + 1)));
    } else if (arg == "--threads") {
      threads = std::stoul(value);
    } else {
      std::cerr << "usage: bare_server [--listen HOST:PORT] [--threads N]\n";
      return 2;
    }
  }
  sluice::IoPool io(threads);
  sluice::HttpServerOptions options;
  options.host = host;
  options.port = port;
  sluice::HttpServer server(io, options);
  server.route("/",
               [](sluice::HttpServerRequest& req,
                  sluice::RequestContext&) -> sluice::asio::awaitable<sluice::HttpServerResponse> {
                 co_return sluice::make_response(req, sluice::http::status::accepted, "");
               });
  if (auto st = server.start(); !st) {
    std::cerr << "bare_server: " << st.error().to_string() << "\n";
    return 1;
  }
  sluice::asio::signal_set signals(io.at(0), SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code&, int) { io.stop(); });
  io.run();
  return 0;
}
