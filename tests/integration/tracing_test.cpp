// Tracing through a real `sluice serve`: W3C traceparent from the publisher to every delivery and reply,
// `sluice trace EVENT_ID`, and spans exported to an OTLP/HTTP collector (an HTTP sink in the test).

#include <set>

#include "tests/integration/broker_support.hpp"

namespace sluice::testing {
namespace {

constexpr const char* kTraceId = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr const char* kPublisherSpan = "00f067aa0ba902b7";

std::string trace_of(const std::string& traceparent) {
  return traceparent.size() == 55 ? traceparent.substr(3, 32) : "";
}

TEST(Tracing, TraceparentFollowsTheEventAndSpansAreExported) {
  HttpSink collector, subscriber, replies;
  subscriber.respond([](const ReceivedRequest& r, std::size_t) {
    return SinkResponse{200,
                        "{}",
                        {{"ce-specversion", "1.0"},
                         {"ce-id", r.header("ce-id") + "-answer"},
                         {"ce-type", "com.example.answer"},
                         {"ce-source", "/agent"},
                         {"Content-Type", "application/json"}},
                        {}};
  });
  SluiceServer server({"--otlp-endpoint", collector.url()});
  ASSERT_TRUE(server.wait_ready());
  apply_yaml(
      server,
      broker_yaml() + "---\n" +
          trigger_yaml("ask", subscriber.url(), "  filter: {attributes: {type: com.example.ask}}\n") +
          "---\n" +
          trigger_yaml("answers", replies.url(), "  filter: {attributes: {type: com.example.answer}}\n"));

  httplib::Client client("127.0.0.1", server.port());
  auto res = client.Post("/brokers/default",
                         {{"ce-specversion", "1.0"},
                          {"ce-id", "q-1"},
                          {"ce-type", "com.example.ask"},
                          {"ce-source", "/user"},
                          {"traceparent", std::string("00-") + kTraceId + "-" + kPublisherSpan + "-01"}},
                         "{}", "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 202);
  ASSERT_TRUE(subscriber.wait_for(1));
  ASSERT_TRUE(replies.wait_for(1));

  // The subscriber sees the publisher's trace: the extension as published, and a traceparent header
  // naming the delivery's own span.
  const auto delivery = subscriber.requests()[0];
  EXPECT_EQ(delivery.header("ce-traceparent"), std::string("00-") + kTraceId + "-" + kPublisherSpan + "-01");
  EXPECT_EQ(trace_of(delivery.header("traceparent")), kTraceId);
  EXPECT_EQ(delivery.header("traceparent").find(kPublisherSpan), std::string::npos);
  // The reply continues the same trace.
  EXPECT_EQ(trace_of(replies.requests()[0].header("ce-traceparent")), kTraceId);

  std::string out;
  ASSERT_EQ(server.cli({"trace", "q-1"}, &out), 0) << out;
  EXPECT_NE(out.find(std::string("trace ") + kTraceId), std::string::npos) << out;
  EXPECT_NE(out.find("broker default stored event q-1"), std::string::npos) << out;
  EXPECT_NE(out.find("trigger ask → " + subscriber.url() + ": HTTP 200"), std::string::npos) << out;
  EXPECT_NE(out.find("stored event q-1-answer"), std::string::npos) << out;
  EXPECT_NE(out.find("trigger answers"), std::string::npos) << out;
  EXPECT_NE(server.cli({"trace", "never-published"}, &out), 0);
  EXPECT_NE(out.find("no spans recorded"), std::string::npos) << out;

  // The collector gets OTLP/HTTP JSON with the same trace id.
  std::set<std::string> names;
  ASSERT_TRUE(wait_until(
      [&] {
        for (const auto& r : collector.requests()) {
          if (r.path != "/v1/traces") continue;
          auto body = nlohmann::json::parse(r.body, nullptr, false);
          if (body.is_discarded()) continue;
          for (const auto& rs : body["resourceSpans"])
            for (const auto& ss : rs["scopeSpans"])
              for (const auto& span : ss["spans"])
                if (span["traceId"] == kTraceId) names.insert(span["name"].get<std::string>());
        }
        return names.count("publish") && names.count("deliver");
      },
      std::chrono::seconds(10)))
      << collector.count() << " export requests";
}

// W3C Trace Context §3.3: tracestate travels with traceparent. It is kept with the event (the
// CloudEvents distributed tracing extension) and sent with each delivery's and dead letter's traceparent.
TEST(Tracing, TracestateGoesWithTheTraceparentToSubscribersAndDeadLetterSinks) {
  HttpSink subscriber, failing, dead;
  failing.respond([](const ReceivedRequest&, std::size_t) { return SinkResponse{500, "", {}, {}}; });
  SluiceServer server;
  ASSERT_TRUE(server.wait_ready());
  apply_yaml(server,
             broker_yaml() + "---\n" + trigger_yaml("t", subscriber.url()) + "---\n" +
                 trigger_yaml("d", failing.url(),
                              "  delivery: {retry: 0, deadLetterSink: {uri: \"" + dead.url() + "\"}}\n"));
  httplib::Client client("127.0.0.1", server.port());
  auto res = client.Post("/brokers/default",
                         {{"ce-specversion", "1.0"},
                          {"ce-id", "stateful"},
                          {"ce-type", "t"},
                          {"ce-source", "/user"},
                          {"traceparent", std::string("00-") + kTraceId + "-" + kPublisherSpan + "-01"},
                          {"tracestate", "congo=t61rcWkgMzE"},
                          {"tracestate", "rojo=00f067aa0ba902b7"}},
                         "{}", "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 202) << res->body;
  ASSERT_TRUE(subscriber.wait_for(1));
  ASSERT_TRUE(dead.wait_for(1));

  const std::string tracestate = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";
  const auto delivery = subscriber.requests()[0];
  EXPECT_EQ(delivery.header("tracestate"), tracestate);
  EXPECT_EQ(delivery.header("ce-tracestate"), tracestate);
  EXPECT_EQ(trace_of(delivery.header("traceparent")), kTraceId);
  EXPECT_EQ(delivery.header("traceparent").find(kPublisherSpan), std::string::npos);
  const auto letter = dead.requests()[0];
  EXPECT_EQ(letter.header("tracestate"), tracestate);
  EXPECT_EQ(trace_of(letter.header("traceparent")), kTraceId);

  // A new root trace carries no tracestate.
  ASSERT_EQ(publish(server, "stateless", "t"), 202);
  ASSERT_TRUE(subscriber.wait_for(2));
  EXPECT_EQ(subscriber.requests()[1].header("tracestate"), "");
}

TEST(Tracing, EventsWithoutTraceparentGetANewTrace) {
  HttpSink subscriber;
  SluiceServer server;
  ASSERT_TRUE(server.wait_ready());
  apply_yaml(server, broker_yaml() + "---\n" + trigger_yaml("t", subscriber.url()));
  ASSERT_EQ(publish(server, "plain", "t"), 202);
  ASSERT_TRUE(subscriber.wait_for(1));
  const auto r = subscriber.requests()[0];
  const std::string extension = r.header("ce-traceparent");
  ASSERT_EQ(extension.size(), 55u) << extension;
  EXPECT_EQ(trace_of(r.header("traceparent")), trace_of(extension));
}

TEST(Tracing, DeadLettersContinueTheEventsTrace) {
  HttpSink subscriber, dead;
  subscriber.respond([](const ReceivedRequest&, std::size_t) { return SinkResponse{500, "", {}, {}}; });
  SluiceServer server({"--request-log"});
  ASSERT_TRUE(server.wait_ready());
  apply_yaml(server,
             broker_yaml() + "---\n" +
                 trigger_yaml("t", subscriber.url(),
                              "  delivery: {retry: 0, deadLetterSink: {uri: \"" + dead.url() + "\"}}\n"));
  ASSERT_EQ(publish(server, "lost", "t", "{}",
                    {{"traceparent", std::string("00-") + kTraceId + "-" + kPublisherSpan + "-01"}}),
            202);
  ASSERT_TRUE(dead.wait_for(1));

  const auto letter = dead.requests()[0];
  EXPECT_EQ(trace_of(letter.header("traceparent")), kTraceId) << letter.header("traceparent");
  EXPECT_EQ(letter.header("traceparent").find(kPublisherSpan), std::string::npos);
  std::string out;
  ASSERT_TRUE(wait_until([&] {
    return server.cli({"trace", "lost"}, &out) == 0 && out.find("dead-letter sink") != std::string::npos;
  })) << out;
  EXPECT_NE(out.find("✓ dead-letter  trigger t → dead-letter sink " + dead.url() + ": HTTP 200"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("✗ deliver  trigger t → " + subscriber.url() + ": HTTP 500  ["), std::string::npos)
      << "the status is not repeated as the error: " << out;
  ASSERT_TRUE(wait_until([&] {
    return server.process().output().find("\"url\":\"" + dead.url() + "\"") != std::string::npos;
  })) << "a request log line for the dead letter";
}

}  // namespace
}  // namespace sluice::testing
