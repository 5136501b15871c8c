#pragma once
// Bridges between callback-style APIs (the event log's group commit, blocking work on a pool) and
// coroutines.

#include <functional>
#include <memory>

#include "core/asio.hpp"

namespace sluice {

// GCC 12 destroys temporaries that appear inside a co_await expression twice. Callers therefore bind
// the function objects they pass here to named locals first and pass those (lvalues):
//
//   auto start = [&](std::function<void(R)> done) { ... };
//   auto result = co_await await_callback<R>(start);

/// Suspends the calling coroutine until `start` calls the callback it is given (from any thread);
/// resumes on the coroutine's executor with the value. `start` must call the callback exactly once.
/// `start` is moved from before the first suspension.
template <class T, class Start>
asio::awaitable<T> await_callback(Start& start) {
  auto executor = co_await asio::this_coro::executor;
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(T)>(
      [executor, start = std::move(start)](auto handler) mutable {
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        start(std::function<void(T)>([executor, shared](T value) {
          asio::post(executor, [shared, value = std::move(value)]() mutable { (*shared)(std::move(value)); });
        }));
      },
      asio::use_awaitable);
}

/// Runs blocking `fn` (fsync, process spawn, file reads) on `pool` and resumes with its result, so
/// I/O threads never block. Pass a named lvalue (see above); it is moved from.
template <class Fn>
auto offload(asio::thread_pool& pool, Fn& fn) -> asio::awaitable<decltype(fn())> {
  using T = decltype(fn());
  auto start = [&pool, fn = std::move(fn)](std::function<void(T)> done) mutable {
    asio::post(pool, [fn = std::move(fn), done = std::move(done)]() mutable { done(fn()); });
  };
  co_return co_await await_callback<T>(start);
}

}  // namespace sluice
