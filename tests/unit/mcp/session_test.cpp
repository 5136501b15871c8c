#include "mcp/session.hpp"

#include <gtest/gtest.h>

#include <thread>

#include "mcp/sse.hpp"

namespace sluice::mcp {
namespace {

using namespace std::chrono_literals;

TEST(SessionStore, CreatesFindsAndRemoves) {
  SessionStore store;
  auto now = std::chrono::steady_clock::now();
  auto a = store.create("2025-11-25", {{"name", "c"}}, now);
  auto b = store.create("2025-06-18", {}, now);
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->id(), b->id());
  EXPECT_EQ(a->id().size(), 32u);
  EXPECT_TRUE(SessionStore::valid_id(a->id()));
  EXPECT_EQ(store.find(a->id()), a);
  EXPECT_EQ(store.remove(a->id()), a);
  EXPECT_TRUE(a->terminated());
  EXPECT_FALSE(store.find(a->id()));
  EXPECT_FALSE(store.remove(a->id()));
  EXPECT_EQ(store.size(), 1u);
}

TEST(SessionStore, IsBounded) {
  SessionStore store(1);
  auto now = std::chrono::steady_clock::now();
  EXPECT_TRUE(store.create("v", {}, now));
  EXPECT_FALSE(store.create("v", {}, now));
}

TEST(SessionStore, SessionIdsAreVisibleAscii) {
  EXPECT_TRUE(SessionStore::valid_id("abc-123_!~"));
  EXPECT_FALSE(SessionStore::valid_id(""));
  EXPECT_FALSE(SessionStore::valid_id("a b"));
  EXPECT_FALSE(SessionStore::valid_id("tab\t"));
  EXPECT_FALSE(SessionStore::valid_id("\x7f"));
  EXPECT_FALSE(SessionStore::valid_id(std::string(300, 'a')));
}

TEST(SessionStore, ExpiresIdleSessionsButNotBusyOnes) {
  SessionStore store;
  auto t0 = std::chrono::steady_clock::now();
  auto idle = store.create("v", {}, t0);
  auto busy = store.create("v", {}, t0);
  auto streaming = store.create("v", {}, t0);
  busy->begin_call(1, std::make_shared<CancelSignal>());
  ASSERT_TRUE(streaming->open_stream());
  EXPECT_EQ(store.expire(10min, t0 + 5min), 0u);
  EXPECT_EQ(store.expire(10min, t0 + 11min), 1u);
  EXPECT_TRUE(idle->terminated());
  EXPECT_TRUE(store.find(busy->id()));
  EXPECT_TRUE(store.find(streaming->id()));
}

TEST(Session, CancelsCallsById) {
  Session s("id", "v", {}, std::chrono::steady_clock::now());
  auto one = std::make_shared<CancelSignal>();
  auto two = std::make_shared<CancelSignal>();
  EXPECT_TRUE(s.begin_call(1, one));
  EXPECT_TRUE(s.begin_call("1", two));  // a string id differs from a number
  EXPECT_FALSE(s.begin_call(1, std::make_shared<CancelSignal>()));
  EXPECT_TRUE(s.cancel_call(1));
  EXPECT_TRUE(one->cancelled());
  EXPECT_FALSE(two->cancelled());
  EXPECT_FALSE(s.cancel_call(99));
  s.end_call(1);
  EXPECT_EQ(s.calls_in_flight(), 1u);
  s.terminate();
  EXPECT_TRUE(two->cancelled());
}

TEST(Session, OneGetStreamAtATimeAndQueuedNotifications) {
  Session s("id", "v", {}, std::chrono::steady_clock::now());
  s.notify({{"method", "early"}});
  auto mailbox = s.open_stream();
  ASSERT_TRUE(mailbox);
  EXPECT_FALSE(s.open_stream());
  asio::io_context io;
  std::optional<std::vector<std::string>> got;
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { got = co_await mailbox->wait(5s); }, asio::detached);
  io.run();
  ASSERT_TRUE(got);
  ASSERT_EQ(got->size(), 1u);
  EXPECT_NE(got->front().find("early"), std::string::npos);
  s.close_stream();
  EXPECT_TRUE(s.open_stream());
}

// The mailbox's events, drained once.
std::vector<std::string> drain(const std::shared_ptr<Mailbox>& mailbox) {
  asio::io_context io;
  std::optional<std::vector<std::string>> got;
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { got = co_await mailbox->wait(10ms); }, asio::detached);
  io.run();
  return got.value_or(std::vector<std::string>{});
}

TEST(Session, GetStreamEventsHaveIdsAndResumeAfterLastEventId) {
  Session s("id", "2025-11-25", {}, std::chrono::steady_clock::now());
  for (int i = 1; i <= 3; ++i) s.notify({{"method", "m" + std::to_string(i)}});
  auto first = s.open_stream();
  ASSERT_TRUE(first);
  auto sent = drain(first);
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_EQ(sent[0].rfind("id: 0-1\n", 0), 0u) << sent[0];
  EXPECT_EQ(sent[2].rfind("id: 0-3\n", 0), 0u) << sent[2];
  // Still open: a resume is refused.
  auto busy = s.resume_stream(1);
  ASSERT_FALSE(busy);
  EXPECT_EQ(busy.error().code, 409);
  // The connection dropped after the client saw 0-1; 0-4 was sent while no stream was open.
  s.close_stream();
  s.notify({{"method", "m4"}});
  auto resumed = s.resume_stream(1);
  ASSERT_TRUE(resumed);
  auto replay = drain(resumed.value());
  ASSERT_EQ(replay.size(), 3u);
  EXPECT_EQ(replay[0].rfind("id: 0-2\n", 0), 0u) << replay[0];
  EXPECT_NE(replay[0].find("m2"), std::string::npos);
  EXPECT_EQ(replay[2].rfind("id: 0-4\n", 0), 0u) << replay[2];
  s.notify({{"method", "m5"}});
  auto live = drain(resumed.value());
  ASSERT_EQ(live.size(), 1u);
  EXPECT_EQ(live[0].rfind("id: 0-5\n", 0), 0u) << live[0];
  s.close_stream();
  // An id never sent, or one no longer kept, cannot be resumed.
  EXPECT_EQ(s.resume_stream(6).error().code, 400);
  for (std::size_t i = 0; i < Session::max_stream_events; ++i) s.notify({{"method", "more"}});
  EXPECT_EQ(s.resume_stream(1).error().code, 400);
  EXPECT_TRUE(s.resume_stream(5 + Session::max_stream_events - 1));
}

TEST(Mailbox, WakesAWaitingConsumerFromAnotherThread) {
  auto mailbox = std::make_shared<Mailbox>();
  asio::io_context io;
  std::optional<std::vector<std::string>> got;
  auto started = std::chrono::steady_clock::now();
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { got = co_await mailbox->wait(10s); }, asio::detached);
  std::thread producer([&] {
    std::this_thread::sleep_for(50ms);
    mailbox->push("hello");
  });
  io.run();
  producer.join();
  ASSERT_TRUE(got);
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ(got->front(), "hello");
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
}

TEST(Mailbox, ClosedAndDrainedEndsTheStreamAndBoundsTheQueue) {
  auto mailbox = std::make_shared<Mailbox>(2);
  mailbox->push("1");
  mailbox->push("2");
  mailbox->push("3");
  EXPECT_EQ(mailbox->dropped(), 1u);
  mailbox->close();
  asio::io_context io;
  std::vector<std::optional<std::vector<std::string>>> results;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        results.push_back(co_await mailbox->wait(1s));
        results.push_back(co_await mailbox->wait(1s));
      },
      asio::detached);
  io.run();
  ASSERT_EQ(results.size(), 2u);
  ASSERT_TRUE(results[0]);
  EXPECT_EQ(*results[0], (std::vector<std::string>{"2", "3"}));
  EXPECT_FALSE(results[1]);
}

TEST(Sse, FormatsAndParsesAcrossSplits) {
  auto text =
      format_sse("{\"a\":1}\nsecond", "7", "message") + ": comment\r\n" + "data: x\r\n\r\n" + "retry: 10\n\n";
  for (std::size_t split = 0; split <= text.size(); ++split) {
    SseParser parser;
    auto events = parser.feed(std::string_view(text).substr(0, split));
    auto rest = parser.feed(std::string_view(text).substr(split));
    events.insert(events.end(), rest.begin(), rest.end());
    ASSERT_EQ(events.size(), 2u) << "split at " << split;
    EXPECT_EQ(events[0].id, "7");
    EXPECT_EQ(events[0].event, "message");
    EXPECT_EQ(events[0].data, "{\"a\":1}\nsecond");
    EXPECT_EQ(events[1].data, "x");
  }
}

TEST(Sse, OversizedEventFails) {
  SseParser parser(16);
  parser.feed("data: " + std::string(64, 'x'));
  EXPECT_TRUE(parser.failed());
}

}  // namespace
}  // namespace sluice::mcp
