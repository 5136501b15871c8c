#pragma once
// A bounded queue of server-to-client messages drained by one streaming coroutine (an SSE stream):
// producers push from any thread; the consumer waits on its own executor and is woken by a post.

#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/asio.hpp"

namespace sluice::mcp {

class Mailbox : public std::enable_shared_from_this<Mailbox> {
 public:
  /// Beyond `capacity` queued messages the oldest are dropped (a client that does not read its
  /// stream must not grow the server's memory).
  explicit Mailbox(std::size_t capacity = 256) : capacity_(capacity) {}

  /// Queues a message and wakes the consumer. Thread-safe.
  void push(std::string message);
  /// Ends the stream: the consumer's wait() returns nullopt once the queue is drained. Thread-safe.
  void close();
  /// Wakes the consumer without a message (a client disconnect it should look at). Thread-safe.
  void wake();
  bool closed() const;
  std::size_t dropped() const;

  /// Consumer side, from one coroutine at a time: the queued messages, waiting up to `max_wait` for
  /// one (an empty vector after the wait or a wake()); nullopt once closed and drained.
  asio::awaitable<std::optional<std::vector<std::string>>> wait(std::chrono::milliseconds max_wait);

 private:
  mutable std::mutex mu_;
  std::size_t capacity_;
  std::deque<std::string> queue_;
  bool closed_ = false;
  std::size_t dropped_ = 0;
  // Set while the consumer waits; only touched on `executor_` (wake() posts there).
  asio::steady_timer* timer_ = nullptr;
  std::optional<asio::any_io_executor> executor_;
};

}  // namespace sluice::mcp
