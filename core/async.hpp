#pragma once
// Bridges between callback-style APIs (the event log's group commit, blocking work on a pool) and
// coroutines.

#include <atomic>
#include <exception>
#include <functional>
#include <memory>
#include <optional>

#include "core/asio.hpp"

namespace sluice {

// GCC 12 destroys temporaries that appear inside a co_await expression twice. Callers therefore bind
// the function objects they pass here to named locals first and pass those (lvalues):
//
//   auto start = [&](std::function<void(R)> done) { ... };
//   auto result = co_await await_callback<R>(start);

/// The handler of an awaited callback, and whether its `start` is still running.
template <class Handler>
struct AwaitedCallback {
  explicit AwaitedCallback(Handler h) : handler(std::move(h)) {}
  Handler handler;
  std::atomic<bool> starting{true};
};

/// How a callback resumes its coroutine: always through a post to the coroutine's executor, or in place
/// (asio::dispatch) when it runs there after `start` returned.
enum class Resume { Post, Dispatch };

template <class T, Resume How, class Start>
asio::awaitable<T> await_callback_resuming(Start& start) {
  auto executor = co_await asio::this_coro::executor;
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(T)>(
      [executor, start = std::move(start)](auto handler) mutable {
        auto state = std::make_shared<AwaitedCallback<decltype(handler)>>(std::move(handler));
        start(std::function<void(T)>([executor, state](T value) {
          auto resume = [state, value = std::move(value)]() mutable { state->handler(std::move(value)); };
          if (How == Resume::Post || state->starting.load(std::memory_order_acquire))
            asio::post(executor, std::move(resume));
          else
            asio::dispatch(executor, std::move(resume));
        }));
        state->starting.store(false, std::memory_order_release);
      },
      asio::use_awaitable);
}

/// Suspends the calling coroutine until `start` calls the callback it is given (from any thread);
/// resumes on the coroutine's executor with the value. `start` must call the callback exactly once.
/// `start` is moved from before the first suspension.
template <class T, class Start>
asio::awaitable<T> await_callback(Start& start) {
  return await_callback_resuming<T, Resume::Post>(start);
}

/// Like await_callback, for a `start` whose callback, when it is not called before `start` returns, runs
/// on the coroutine's own thread with no lock held: the coroutine then resumes right there (asio::dispatch)
/// instead of through another post, which saves a trip through the I/O thread's queue. Called from any
/// other thread, or before `start` returns, it posts as await_callback does.
template <class T, class Start>
asio::awaitable<T> await_callback_dispatched(Start& start) {
  return await_callback_resuming<T, Resume::Dispatch>(start);
}

/// Runs blocking `fn` (fsync, process spawn, file reads) on `pool` and resumes with its result, so
/// I/O threads never block. Pass a named lvalue (see above); it is moved from. An exception `fn` throws
/// is rethrown in the awaiting coroutine (an HTTP handler's becomes a 500) instead of escaping the
/// pool's thread, which would end the process.
template <class Fn>
auto offload(asio::thread_pool& pool, Fn& fn) -> asio::awaitable<decltype(fn())> {
  using T = decltype(fn());
  struct Outcome {
    std::optional<T> value;
    std::exception_ptr error;
  };
  auto start = [&pool, fn = std::move(fn)](std::function<void(Outcome)> done) mutable {
    asio::post(pool, [fn = std::move(fn), done = std::move(done)]() mutable {
      Outcome outcome;
      try {
        outcome.value.emplace(fn());
      } catch (...) {
        outcome.error = std::current_exception();
      }
      done(std::move(outcome));
    });
  };
  Outcome outcome = co_await await_callback<Outcome>(start);
  if (outcome.error) std::rethrow_exception(outcome.error);
  co_return std::move(*outcome.value);
}

}  // namespace sluice
