#pragma once
// What every example agent's server shares: its environment and the httplib settings that keep
// connections from Sluice's activator open.

#include <pthread.h>
#include <sys/socket.h>

#include <csignal>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include <httplib.h>

namespace example {

inline std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : fallback;
}

/// `threads` request threads: httplib serves one open connection per thread, and a connection past
/// that waits for one to close. Headers and body go out as separate writes, so Nagle stays off. A
/// connection serves 100 requests before it closes (httplib's default of 5 makes a busy client
/// reconnect all the time); a bound still lets waiting connections have a thread. An idle connection
/// closes after 1 s instead of httplib's 5: stop() waits for every connection thread, and a thread
/// waiting on an idle keep-alive connection notices the stop only when that wait ends, so SIGTERM
/// would take 5 s to end an agent that serves nothing (Sluice's client reconnects when it finds a
/// pooled connection closed).
inline void tune(httplib::Server& server, std::size_t threads = 16) {
  server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server.set_tcp_nodelay(true);
  server.set_keep_alive_max_count(100);
  server.set_keep_alive_timeout(1);
}

/// Binds to 127.0.0.1:`port` with a listen queue of SOMAXCONN. httplib listens with a queue of 5: a
/// burst of reconnects overflows it, and a connection whose SYN is dropped stalls for the kernel's
/// one-second retransmission. listen() again on the bound socket sets the longer queue. The socket takes
/// SO_REUSEADDR only, not httplib's default SO_REUSEPORT: a port another process listens on is an error,
/// not a port shared with it.
inline bool bind(httplib::Server& server, int port) {
  auto listening = std::make_shared<int>(-1);
  server.set_socket_options([listening](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    *listening = sock;
  });
  if (!server.bind_to_port("127.0.0.1", port)) return false;
  return ::listen(*listening, SOMAXCONN) == 0;
}

/// Blocks SIGTERM and SIGINT in the calling thread and in every thread it starts afterwards, so that only
/// serve()'s waiting thread receives them. Call it first in main().
inline sigset_t block_stop_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

/// Serves on 127.0.0.1:`port` until SIGTERM or SIGINT: a thread waits for them, calls `on_signal` and
/// stops the server, which returns once the requests in flight have finished. Prints
/// "`name` listening on 127.0.0.1:`port``detail`". Returns main()'s exit code: 1 when the port cannot be
/// bound.
inline int serve(httplib::Server& server, int port, const sigset_t& signals, const std::string& name,
                 const std::string& detail, std::function<void(int)> on_signal = {}) {
  std::thread stopper([&server, signals, on_signal = std::move(on_signal)] {
    int sig = 0;
    sigwait(&signals, &sig);
    if (on_signal) on_signal(sig);
    server.stop();
  });
  stopper.detach();
  if (!bind(server, port)) {
    std::cerr << name << ": cannot listen on 127.0.0.1:" << port << std::endl;
    return 1;
  }
  std::cout << name << " listening on 127.0.0.1:" << port << detail << std::endl;
  server.listen_after_bind();
  return 0;
}

}  // namespace example
