#pragma once
// Thread per core: N single-threaded io_contexts, each run by one thread. Work placed on one context
// never runs concurrently with itself, so per-connection and per-dispatcher state needs no strands.
// (Strands would also be held in Asio 1.18's any_io_executor on the heap, where Boost 1.74 loses
// ownership of them under GCC 12; io_context executors are stored inline.)

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "core/asio.hpp"

namespace sluice {

class IoPool {
 public:
  /// `threads` 0 means one per core.
  explicit IoPool(std::size_t threads = 0);
  ~IoPool();

  /// The next context, round robin (for a new connection, dispatcher, agent…).
  asio::io_context& next();
  asio::io_context& at(std::size_t i) { return *contexts_[i % contexts_.size()]; }
  std::size_t size() const { return contexts_.size(); }

  /// Runs every context: threads 1..N-1 in the background and context 0 on the calling thread;
  /// returns when all have stopped.
  void run();
  /// Stops every context (thread-safe).
  void stop();

 private:
  std::vector<std::unique_ptr<asio::io_context>> contexts_;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards_;
  std::atomic<std::size_t> next_{0};
};

}  // namespace sluice
