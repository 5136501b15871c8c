#include "core/async.hpp"

#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace sluice {
namespace {

using Done = std::function<void(int)>;

// Runs `body` as a coroutine on `ctx` until everything posted has run.
template <class Body>
void run_coroutine(asio::io_context& ctx, Body body) {
  asio::co_spawn(ctx, std::move(body), asio::detached);
  ctx.run();
}

TEST(AwaitCallback, ResumesOnItsOwnThreadWithTheValueGivenOnAnother) {
  for (bool dispatched : {false, true}) {
    asio::io_context ctx;
    std::thread::id resumed_on;
    int value = 0;
    run_coroutine(ctx, [&]() -> asio::awaitable<void> {
      auto start = [](Done done) { std::thread([done] { done(42); }).detach(); };
      value =
          dispatched ? co_await await_callback_dispatched<int>(start) : co_await await_callback<int>(start);
      resumed_on = std::this_thread::get_id();
    });
    EXPECT_EQ(value, 42) << "dispatched: " << dispatched;
    EXPECT_EQ(resumed_on, std::this_thread::get_id()) << "dispatched: " << dispatched;
  }
}

// The order of what ran: a callback posted to the coroutine's own context resumes it after the handler
// that called it (await_callback) or inside that call (await_callback_dispatched).
std::vector<std::string> order_of(bool dispatched) {
  asio::io_context ctx;
  std::vector<std::string> order;
  run_coroutine(ctx, [&]() -> asio::awaitable<void> {
    auto start = [&](Done done) {
      asio::post(ctx, [&order, done] {
        done(1);
        order.push_back("callback returned");
      });
    };
    int v = dispatched ? co_await await_callback_dispatched<int>(start) : co_await await_callback<int>(start);
    order.push_back("resumed with " + std::to_string(v));
  });
  return order;
}

TEST(AwaitCallback, ACallbackOnTheCoroutinesThreadResumesItInPlaceWhenDispatched) {
  EXPECT_EQ(order_of(false), (std::vector<std::string>{"callback returned", "resumed with 1"}));
  EXPECT_EQ(order_of(true), (std::vector<std::string>{"resumed with 1", "callback returned"}));
}

TEST(AwaitCallback, ACallbackCalledBeforeStartReturnsIsPostedWhenDispatched) {
  asio::io_context ctx;
  std::vector<std::string> order;
  run_coroutine(ctx, [&]() -> asio::awaitable<void> {
    auto start = [&](Done done) {
      done(5);
      order.push_back("start returned");
    };
    int v = co_await await_callback_dispatched<int>(start);
    order.push_back("resumed with " + std::to_string(v));
  });
  EXPECT_EQ(order, (std::vector<std::string>{"start returned", "resumed with 5"}));
}

// An exception from the offloaded function reaches the awaiting coroutine; on the pool's thread it would
// end the process.
TEST(Offload, AnExceptionIsRethrownInTheAwaitingCoroutine) {
  asio::io_context ctx;
  asio::thread_pool pool(1);
  std::string caught;
  int value = 0;
  run_coroutine(ctx, [&]() -> asio::awaitable<void> {
    auto fails = []() -> int { throw std::runtime_error("bad manifest"); };
    try {
      co_await offload(pool, fails);
    } catch (const std::runtime_error& e) {
      caught = e.what();
    }
    auto works = [] { return 7; };
    value = co_await offload(pool, works);
  });
  pool.join();
  EXPECT_EQ(caught, "bad manifest");
  EXPECT_EQ(value, 7);
}

}  // namespace
}  // namespace sluice
