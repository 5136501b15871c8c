// Resumable POST response streams (MCP 2025-11-25 Streamable HTTP, "Resumability and Redelivery").

#include "mcp/response_stream.hpp"

#include <gtest/gtest.h>

#include "mcp/session.hpp"
#include "mcp/sse.hpp"

namespace sluice::mcp {
namespace {

// The id and data of one SSE event text.
std::pair<std::string, std::string> parse(const std::string& text) {
  SseParser parser;
  auto events = parser.feed(text);
  EXPECT_EQ(events.size(), 1u) << text;
  if (events.empty()) return {};
  return {events.front().id, events.front().data};
}

TEST(ResponseStream, NumbersEventsAfterAPrimingEvent) {
  ResponseStream stream("7");
  EXPECT_EQ(parse(stream.priming_event()), std::make_pair(std::string("7-0"), std::string()));
  EXPECT_EQ(parse(stream.record(R"({"a":1})")),
            std::make_pair(std::string("7-1"), std::string(R"({"a":1})")));
  EXPECT_EQ(parse(stream.record(R"({"b":2})")).first, "7-2");
  EXPECT_EQ(ResponseStream::parse_event_id("7-2"), std::make_pair(std::string("7"), std::uint64_t{2}));
  EXPECT_FALSE(ResponseStream::parse_event_id("7"));
  EXPECT_FALSE(ResponseStream::parse_event_id("7-x"));
  EXPECT_FALSE(ResponseStream::parse_event_id("-2"));
}

TEST(ResponseStream, AResumeGetsTheEventsAfterTheLastIdAndTheRest) {
  ResponseStream stream("1");
  stream.record("one");
  stream.record("two");
  // The POST connection still carries it.
  auto busy = stream.resume(0);
  ASSERT_FALSE(busy);
  EXPECT_EQ(busy.error().code, 409);

  stream.detach();
  EXPECT_EQ(stream.record("three"), "");  // kept for a resume, not for the dead connection
  EXPECT_EQ(stream.resume(9).error().code, 400);
  auto resumed = stream.resume(1);
  ASSERT_TRUE(resumed) << resumed.error().message;
  ASSERT_EQ(resumed.value().replay.size(), 2u);
  EXPECT_EQ(parse(resumed.value().replay[0]), std::make_pair(std::string("1-2"), std::string("two")));
  EXPECT_EQ(parse(resumed.value().replay[1]).first, "1-3");
  EXPECT_EQ(stream.resume(1).error().code, 409);  // one follower at a time

  EXPECT_EQ(stream.record("four"), "");
  stream.finish();
  auto follow = resumed.value().follow;
  EXPECT_TRUE(follow->closed());
  stream.detach_follower(follow);
  // A later resume from the priming event replays everything, and ends at once.
  auto again = stream.resume(0);
  ASSERT_TRUE(again);
  EXPECT_EQ(again.value().replay.size(), 4u);
  EXPECT_TRUE(again.value().follow->closed());
}

TEST(ResponseStream, EventsBeyondTheBoundCannotBeResumedFrom) {
  ResponseStream stream("1", 2);
  stream.detach();
  stream.record("one");
  stream.record("two");
  stream.record("three");
  EXPECT_EQ(stream.resume(0).error().code, 400);  // event 1 is gone
  auto resumed = stream.resume(1);
  ASSERT_TRUE(resumed);
  EXPECT_EQ(resumed.value().replay.size(), 2u);
}

TEST(ResponseStream, SessionsKeepABoundedNumberAndEndThemOnTermination) {
  Session session("s", "2025-11-25", nlohmann::json::object(), std::chrono::steady_clock::now());
  auto first = session.open_response_stream();
  auto second = session.open_response_stream();
  EXPECT_NE(first->id(), second->id());
  EXPECT_EQ(session.response_stream(first->id()), first);
  session.drop_response_stream(first->id());
  EXPECT_EQ(session.response_stream(first->id()), nullptr);
  EXPECT_EQ(session.response_stream("nope"), nullptr);
  for (std::size_t i = 0; i < Session::max_response_streams; ++i) session.open_response_stream();
  EXPECT_EQ(session.response_stream(second->id()), nullptr);  // the oldest made room

  auto last = session.open_response_stream();
  last->detach();
  auto resumed = last->resume(0);
  ASSERT_TRUE(resumed);
  session.terminate();
  EXPECT_TRUE(resumed.value().follow->closed());
}

}  // namespace
}  // namespace sluice::mcp
