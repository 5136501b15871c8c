#include <gtest/gtest.h>

#include <set>
#include <string>

#include "core/trace.hpp"

namespace sluice {
namespace {

bool lower_hex(std::string_view s) {
  return s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

TEST(TraceContext, TraceparentRoundTrips) {
  const std::string text = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  auto tp = TraceParent::parse(text);
  ASSERT_TRUE(tp);
  EXPECT_EQ(tp->trace_id.view(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(tp->span_id.view(), "00f067aa0ba902b7");
  EXPECT_EQ(tp->flags, 1);
  EXPECT_EQ(tp->to_string(), text);
  auto unsampled = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
  ASSERT_TRUE(unsampled);
  EXPECT_EQ(unsampled->flags, 0);
  // A later version is read by its first four fields.
  auto later =
      TraceParent::parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-what-the-future-holds");
  ASSERT_TRUE(later);
  EXPECT_EQ(later->flags, 9);
  EXPECT_EQ(later->to_string(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09");
}

TEST(TraceContext, InvalidTraceparentsAreRefused) {
  for (const char* bad : {
           "",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",       // no flags
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",    // upper case
           "00-00000000000000000000000000000000-00f067aa0ba902b7-01",    // zero trace id
           "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",    // zero span id
           "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",    // fields misplaced
           "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    // version ff
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",  // version 00 has four fields
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
       }) {
    EXPECT_FALSE(TraceParent::parse(bad)) << bad;
  }
  EXPECT_FALSE(SpanId::parse("00f067aa0ba902b"));
  EXPECT_FALSE(SpanId::parse("00f067aa0ba902b71"));
  EXPECT_TRUE(SpanId::parse("00f067aa0ba902b7"));
}

TEST(TraceContext, NewIdsAreRandomLowerHexAndChildrenKeepTheTrace) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    auto root = TraceParent::make_root();
    EXPECT_EQ(root.trace_id.view().size(), 32u);
    EXPECT_EQ(root.span_id.view().size(), 16u);
    EXPECT_TRUE(lower_hex(root.trace_id.view()) && lower_hex(root.span_id.view()));
    EXPECT_EQ(root.flags, 1);
    EXPECT_TRUE(TraceParent::parse(root.to_string()));
    seen.insert(root.trace_id.str());
    auto child = root.child();
    EXPECT_EQ(child.trace_id, root.trace_id);
    EXPECT_NE(child.span_id, root.span_id);
  }
  EXPECT_EQ(seen.size(), 1000u);
  char text[TraceParent::kTextSize];
  auto tp = TraceParent::make_root();
  tp.write(text);
  EXPECT_EQ(std::string(text, sizeof text), tp.to_string());
}

TEST(TraceContext, SpansAreQueriedByEventAndTraceAndPrintedAsJson) {
  Tracer tracer(3);
  auto root = TraceParent::make_root();
  auto span = [&](const char* name, const char* event, std::int64_t start) {
    Span s;
    s.trace_id = root.trace_id;
    s.span_id = SpanId::random();
    s.name = name;
    s.event_id = event;
    s.start_unix_ns = start;
    s.attributes = {{"broker", "default"}, {"error", "boom"}};
    return s;
  };
  tracer.record(span("publish", "e1", 1));
  Span other = span("publish", "e2", 3);
  other.trace_id = TraceId::random();
  std::vector<Span> batch{span("deliver", "reply-of-e1", 2), other};
  tracer.record(batch);
  auto of_e1 = tracer.spans_of_event("e1");
  ASSERT_EQ(of_e1.size(), 2u);  // its own span and the reply's, which shares its trace
  EXPECT_EQ(of_e1[0].name, "publish");
  EXPECT_EQ(of_e1[1].event_id, "reply-of-e1");
  auto json = Tracer::to_json(of_e1[0]);
  EXPECT_EQ(json["traceId"], root.trace_id.str());
  EXPECT_EQ(json["parentSpanId"], "");
  EXPECT_EQ(json["attributes"], (nlohmann::json{{"broker", "default"}, {"error", "boom"}}));
  tracer.record(span("reply", "e3", 4));  // over capacity: the oldest goes
  EXPECT_TRUE(tracer.spans_of_event("e1").empty());
}

TEST(TraceContext, CredentialsInUrlAttributesAreNotKept) {
  Tracer tracer(10);
  Span span;
  span.trace_id = TraceId::random();
  span.span_id = SpanId::random();
  span.name = "deliver";
  span.event_id = "e";
  span.attributes = {{"subscriber", "https://hooks.example.com/in?sig=s3cret&x=1"},
                     {"error", "https://u:pw@h/x: connection refused"},
                     {"trigger", "t=1"}};
  tracer.record(span);
  std::vector<Span> batch{span};
  batch[0].event_id = "e2";
  tracer.record(batch);
  auto kept = tracer.spans_of_event("e");  // both: they share the trace
  ASSERT_EQ(kept.size(), 2u);
  for (const auto& k : kept) {
    EXPECT_EQ(k.attributes, (std::vector<std::pair<std::string, std::string>>{
                                {"subscriber", "https://hooks.example.com/in?sig=REDACTED&x=1"},
                                {"error", "https://REDACTED@h/x: connection refused"},
                                {"trigger", "t=1"}}));
  }
}

TEST(TraceContext, AFullTracerKeepsTheNewestSpansWhole) {
  Tracer tracer(2);
  auto span = [](std::string event, std::int64_t start, std::size_t attributes) {
    Span s;
    s.trace_id = TraceId::random();
    s.span_id = SpanId::random();
    s.name = start % 2 ? "publish" : "a-span-name-longer-than-the-small-string-buffer";
    s.event_id = std::move(event);
    s.start_unix_ns = start;
    s.end_unix_ns = start + 1;
    s.error = start == 5;
    for (std::size_t i = 0; i < attributes; ++i)
      s.attributes.emplace_back("attribute-" + std::to_string(i),
                                std::string(40, 'a' + static_cast<char>(i)));
    return s;
  };
  // Each span replaces the oldest, with more or fewer attributes and longer or shorter strings than it.
  for (std::int64_t i = 0; i < 7; ++i)
    tracer.record(span("event-" + std::to_string(i) + std::string(static_cast<std::size_t>(i) * 10, 'x'), i,
                       static_cast<std::size_t>(i % 3)));
  for (std::int64_t i = 0; i < 5; ++i)
    EXPECT_TRUE(
        tracer
            .spans_of_event("event-" + std::to_string(i) + std::string(static_cast<std::size_t>(i) * 10, 'x'))
            .empty());
  for (std::int64_t i = 5; i < 7; ++i) {
    const auto expected =
        span("event-" + std::to_string(i) + std::string(static_cast<std::size_t>(i) * 10, 'x'), i,
             static_cast<std::size_t>(i % 3));
    auto found = tracer.spans_of_event(expected.event_id);
    ASSERT_EQ(found.size(), 1u);
    EXPECT_EQ(found[0].name, expected.name);
    EXPECT_EQ(found[0].start_unix_ns, i);
    EXPECT_EQ(found[0].end_unix_ns, i + 1);
    EXPECT_EQ(found[0].error, i == 5);
    EXPECT_EQ(found[0].attributes, expected.attributes);
  }
}

TEST(TraceContext, TheHistoryKeepsAsManySpansAsSetAndNoneAtZero) {
  auto span = [](int i) {
    Span s;
    s.trace_id = TraceId::random();
    s.span_id = SpanId::random();
    s.name = "publish";
    s.event_id = "e-" + std::to_string(i);
    return s;
  };
  Tracer tracer;
  tracer.record(span(0));
  tracer.set_history(3);
  EXPECT_TRUE(tracer.spans_of_event("e-0").empty());  // a new setting starts afresh
  for (int i = 1; i <= 5; ++i) tracer.record(span(i));
  for (int i = 1; i <= 5; ++i)
    EXPECT_EQ(tracer.spans_of_event("e-" + std::to_string(i)).size(), i > 2 ? 1u : 0u);
  tracer.set_history(0);
  tracer.record(span(6));
  EXPECT_TRUE(tracer.spans_of_event("e-6").empty());
  EXPECT_TRUE(tracer.spans_of_event("e-5").empty());
}

}  // namespace
}  // namespace sluice
