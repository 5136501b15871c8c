#pragma once
// What every example agent's server shares: its environment and the httplib settings that keep
// connections from Sluice's activator open.

#include <sys/socket.h>

#include <cstdlib>
#include <memory>
#include <string>

#include <httplib.h>

namespace example {

inline std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : fallback;
}

/// `threads` request threads: httplib serves one open connection per thread, and a connection past
/// that waits for one to close. Headers and body go out as separate writes, so Nagle stays off. A
/// connection serves 100 requests before it closes (httplib's default of 5 makes a busy client
/// reconnect all the time); a bound still lets waiting connections have a thread.
inline void tune(httplib::Server& server, std::size_t threads = 16) {
  server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server.set_tcp_nodelay(true);
  server.set_keep_alive_max_count(100);
}

/// Binds to 127.0.0.1:`port` with a listen queue of SOMAXCONN. httplib listens with a queue of 5: a
/// burst of reconnects overflows it, and a connection whose SYN is dropped stalls for the kernel's
/// one-second retransmission. listen() again on the bound socket sets the longer queue.
inline bool bind(httplib::Server& server, int port) {
  auto listening = std::make_shared<int>(-1);
  server.set_socket_options([listening](socket_t sock) {
    httplib::default_socket_options(sock);
    *listening = sock;
  });
  if (!server.bind_to_port("127.0.0.1", port)) return false;
  return ::listen(*listening, SOMAXCONN) == 0;
}

}  // namespace example
