#include "trigger/trigger_spec.hpp"

#include <gtest/gtest.h>

namespace sluice {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

json minimal() {
  return json::parse(R"({
    "apiVersion": "eventing.knative.dev/v1", "kind": "Trigger",
    "metadata": {"name": "summarize"},
    "spec": {"broker": "default", "subscriber": {"uri": "http://127.0.0.1:9000/events"}}
  })");
}

Error parse_error(const json& manifest) {
  auto r = parse_trigger(manifest);
  EXPECT_FALSE(r) << "expected an error";
  return r ? Error{} : r.error();
}

TEST(TriggerSpec, ParsesMinimalKnativeTrigger) {
  auto r = parse_trigger(minimal());
  ASSERT_TRUE(r) << r.error().to_string();
  const auto& spec = r.value();
  EXPECT_EQ(spec.name, "summarize");
  EXPECT_EQ(spec.broker, "default");
  EXPECT_EQ(spec.subscriber.uri, "http://127.0.0.1:9000/events");
  EXPECT_FALSE(spec.subscriber.ref);
  EXPECT_TRUE(spec.filter.matches_all());
  EXPECT_EQ(spec.order, DeliveryOrder::Unordered);
  EXPECT_EQ(spec.delivery, DeliverySpec{});
}

TEST(TriggerSpec, AcceptsSluiceApiVersion) {
  auto m = minimal();
  m["apiVersion"] = "sluice.dev/v1";
  EXPECT_TRUE(parse_trigger(m));
}

TEST(TriggerSpec, RejectsWrongApiVersionAndKind) {
  auto m = minimal();
  m["apiVersion"] = "serving.knative.dev/v1";
  EXPECT_EQ(parse_error(m).subject, "apiVersion");
  m = minimal();
  m["kind"] = "Broker";
  EXPECT_EQ(parse_error(m).subject, "kind");
  m = minimal();
  m.erase("apiVersion");
  EXPECT_EQ(parse_error(m).subject, "apiVersion");
}

TEST(TriggerSpec, RequiresValidName) {
  auto m = minimal();
  m["metadata"]["name"] = "Bad_Name";
  auto e = parse_error(m);
  EXPECT_EQ(e.subject, "metadata.name");
  EXPECT_EQ(e.code, 400);
  m["metadata"].erase("name");
  EXPECT_EQ(parse_error(m).subject, "metadata.name");
}

TEST(TriggerSpec, RequiresBroker) {
  auto m = minimal();
  m["spec"].erase("broker");
  auto e = parse_error(m);
  EXPECT_EQ(e.subject, "spec.broker");
  EXPECT_NE(e.message.find("required"), std::string::npos);
  m["spec"]["broker"] = "";
  EXPECT_EQ(parse_error(m).subject, "spec.broker");
}

TEST(TriggerSpec, RequiresSubscriber) {
  auto m = minimal();
  m["spec"].erase("subscriber");
  EXPECT_EQ(parse_error(m).subject, "spec.subscriber");
  m["spec"]["subscriber"] = json::object();
  EXPECT_EQ(parse_error(m).subject, "spec.subscriber");
}

TEST(TriggerSpec, RejectsUnknownSpecField) {
  auto m = minimal();
  m["spec"]["fliter"] = json::object();
  auto e = parse_error(m);
  EXPECT_EQ(e.subject, "spec.fliter");
  EXPECT_NE(e.message.find("unknown field"), std::string::npos);
}

TEST(TriggerSpec, SubscriberUriMustBeHttpUrl) {
  auto m = minimal();
  m["spec"]["subscriber"]["uri"] = "not a url";
  EXPECT_EQ(parse_error(m).subject, "spec.subscriber.uri");
  m["spec"]["subscriber"]["uri"] = 42;
  EXPECT_EQ(parse_error(m).subject, "spec.subscriber.uri");
}

TEST(TriggerSpec, SubscriberRefToAgentOrService) {
  auto m = minimal();
  m["spec"]["subscriber"] =
      json::parse(R"({"ref": {"apiVersion": "sluice.dev/v1", "kind": "Agent", "name": "summarizer"}})");
  auto r = parse_trigger(m);
  ASSERT_TRUE(r) << r.error().to_string();
  ASSERT_TRUE(r.value().subscriber.ref);
  EXPECT_EQ(r.value().subscriber.ref->kind, "Agent");
  EXPECT_EQ(r.value().subscriber.ref->name, "summarizer");
  EXPECT_EQ(r.value().subscriber.to_string(), "Agent/summarizer");

  m["spec"]["subscriber"] = json::parse(
      R"({"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "router", "namespace": "default"},
          "uri": "/events"})");
  r = parse_trigger(m);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r.value().subscriber.ref->kind, "Service");
  EXPECT_EQ(r.value().subscriber.uri, "/events");
  EXPECT_EQ(r.value().subscriber.to_string(), "Service/router/events");
}

TEST(TriggerSpec, SubscriberRefErrorsNameTheField) {
  auto m = minimal();
  m["spec"]["subscriber"] = json::parse(R"({"ref": {"kind": "Broker", "name": "x"}})");
  EXPECT_EQ(parse_error(m).subject, "spec.subscriber.ref.kind");
  m["spec"]["subscriber"] = json::parse(R"({"ref": {"kind": "Agent"}})");
  EXPECT_EQ(parse_error(m).subject, "spec.subscriber.ref.name");
  m["spec"]["subscriber"] =
      json::parse(R"({"ref": {"kind": "Agent", "apiVersion": "serving.knative.dev/v1", "name": "a"}})");
  EXPECT_EQ(parse_error(m).subject, "spec.subscriber.ref.apiVersion");
  m["spec"]["subscriber"] = json::parse(R"({"ref": {"kind": "Agent", "name": "a"}, "uri": "http://x/"})");
  EXPECT_EQ(parse_error(m).subject, "spec.subscriber.uri");
}

TEST(TriggerSpec, OrderingAnnotation) {
  auto m = minimal();
  m["metadata"]["annotations"] = {{kDeliveryOrderAnnotation, "ordered"}};
  auto r = parse_trigger(m);
  ASSERT_TRUE(r);
  EXPECT_EQ(r.value().order, DeliveryOrder::Ordered);
  m["metadata"]["annotations"][kDeliveryOrderAnnotation] = "unordered";
  EXPECT_EQ(parse_trigger(m).value().order, DeliveryOrder::Unordered);
  m["metadata"]["annotations"][kDeliveryOrderAnnotation] = "sorted";
  auto e = parse_error(m);
  EXPECT_EQ(e.subject, std::string("metadata.annotations[") + kDeliveryOrderAnnotation + "]");
}

TEST(TriggerSpec, FiltersOverrideFilter) {
  auto m = minimal();
  m["spec"]["filter"] = {{"attributes", {{"type", "a"}}}};
  m["spec"]["filters"] = json::parse(R"([{"exact": {"type": "b"}}])");
  auto r = parse_trigger(m);
  ASSERT_TRUE(r) << r.error().to_string();
  CloudEvent e;
  e.id = "1";
  e.source = "/s";
  e.type = "b";
  EXPECT_TRUE(r.value().filter.matches(e));
  e.type = "a";
  EXPECT_FALSE(r.value().filter.matches(e));
}

TEST(TriggerSpec, EmptyFiltersListFallsBackToFilterAttributes) {
  // As Knative: spec.filters is used only when it is non-empty.
  auto m = minimal();
  m["spec"]["filter"] = {{"attributes", {{"type", "a"}}}};
  m["spec"]["filters"] = json::array();
  auto r = parse_trigger(m);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_FALSE(r.value().filter.matches_all());
  CloudEvent e;
  e.id = "1";
  e.source = "/s";
  e.type = "a";
  EXPECT_TRUE(r.value().filter.matches(e));
  e.type = "b";
  EXPECT_FALSE(r.value().filter.matches(e));
}

TEST(TriggerSpec, EmptyFiltersListWithoutFilterMatchesAll) {
  auto m = minimal();
  m["spec"]["filters"] = json::array();
  auto r = parse_trigger(m);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_TRUE(r.value().filter.matches_all());
}

TEST(TriggerSpec, BadFilterIsRejectedEvenWhenFiltersOverrideIt) {
  auto m = minimal();
  m["spec"]["filter"] = {{"attributes", {{"Type", "a"}}}};
  m["spec"]["filters"] = json::array();
  EXPECT_EQ(parse_error(m).subject, "spec.filter.attributes.Type");
}

TEST(TriggerSpec, CesqlSyntaxErrorNamesPosition) {
  auto m = minimal();
  m["spec"]["filters"] = json::parse(R"([{"exact": {"type": "a"}}, {"cesql": "type = "}])");
  auto e = parse_error(m);
  EXPECT_EQ(e.subject, "spec.filters[1].cesql");
  EXPECT_NE(e.message.find("position"), std::string::npos) << e.message;
}

TEST(TriggerSpec, ParsesFullDelivery) {
  auto m = minimal();
  m["spec"]["delivery"] = json::parse(R"({
    "retry": 3, "backoffPolicy": "linear", "backoffDelay": "PT0.5S", "backoffMax": "PT10S",
    "timeout": "PT5S", "retryAfterMax": "PT2M", "format": "json", "maxInFlight": 7,
    "deadLetterSink": {"uri": "http://127.0.0.1:9001/dlq"}
  })");
  auto r = parse_trigger(m);
  ASSERT_TRUE(r) << r.error().to_string();
  const auto& d = r.value().delivery;
  EXPECT_EQ(d.retries(), 3);
  EXPECT_EQ(d.policy(), BackoffPolicy::Linear);
  EXPECT_EQ(d.delay(), milliseconds(500));
  EXPECT_EQ(d.delay_cap(), milliseconds(10000));
  EXPECT_EQ(d.attempt_timeout(), milliseconds(5000));
  EXPECT_EQ(d.retry_after_cap(), milliseconds(120000));
  EXPECT_EQ(d.delivery_format(), DeliveryFormat::Structured);
  EXPECT_EQ(d.in_flight_limit(), 7);
  ASSERT_TRUE(d.dead_letter_sink);
  EXPECT_EQ(d.dead_letter_sink->uri, "http://127.0.0.1:9001/dlq");
}

TEST(TriggerSpec, DeliveryDefaults) {
  DeliverySpec d;
  EXPECT_EQ(d.retries(), 10);
  EXPECT_EQ(d.policy(), BackoffPolicy::Exponential);
  EXPECT_EQ(d.delay(), milliseconds(200));
  EXPECT_EQ(d.delay_cap(), milliseconds(0));
  EXPECT_EQ(d.attempt_timeout(), milliseconds(30000));
  EXPECT_EQ(d.retry_after_cap(), milliseconds(60000));
  EXPECT_EQ(d.delivery_format(), DeliveryFormat::Binary);
  EXPECT_EQ(d.in_flight_limit(), 100);
  EXPECT_FALSE(d.dead_letter_sink);
}

struct BadDelivery {
  const char* json;
  const char* subject;
  const char* message_part;
};

TEST(TriggerSpec, DeliveryErrorsNameFieldAndWhatIsRight) {
  const BadDelivery cases[] = {
      {R"({"backoffDelay": "200ms"})", "spec.delivery.backoffDelay",
       "must be an ISO-8601 duration such as PT0.2S"},
      {R"({"backoffDelay": 5})", "spec.delivery.backoffDelay", "ISO-8601"},
      {R"({"timeout": "PT0S"})", "spec.delivery.timeout", "longer than zero"},
      {R"({"timeout": "soon"})", "spec.delivery.timeout", "ISO-8601"},
      {R"({"backoffMax": "P1Y"})", "spec.delivery.backoffMax", "ISO-8601"},
      {R"({"retryAfterMax": "x"})", "spec.delivery.retryAfterMax", "ISO-8601"},
      {R"({"retry": -1})", "spec.delivery.retry", "between 0"},
      {R"({"retry": "3"})", "spec.delivery.retry", "integer"},
      {R"({"retry": 99999999999999})", "spec.delivery.retry", "between 0"},
      {R"({"backoffPolicy": "fibonacci"})", "spec.delivery.backoffPolicy", "exponential"},
      {R"({"format": "xml"})", "spec.delivery.format", "binary"},
      {R"({"maxInFlight": 0})", "spec.delivery.maxInFlight", "between 1 and 10000"},
      {R"({"deadLetterSink": {}})", "spec.delivery.deadLetterSink", "uri"},
      {R"({"deadLetterSink": {"uri": "ftp://x"}})", "spec.delivery.deadLetterSink.uri", ""},
      {R"({"retries": 3})", "spec.delivery.retries", "unknown field"},
  };
  for (const auto& c : cases) {
    auto m = minimal();
    m["spec"]["delivery"] = json::parse(c.json);
    auto r = parse_trigger(m);
    ASSERT_FALSE(r) << c.json;
    EXPECT_EQ(r.error().subject, c.subject) << c.json;
    EXPECT_NE(r.error().message.find(c.message_part), std::string::npos)
        << c.json << " → " << r.error().message;
    EXPECT_EQ(r.error().code, 400);
  }
}

TEST(TriggerSpec, ParseDeliveryUsesGivenPath) {
  auto r = parse_delivery(json::parse(R"({"backoffDelay": "nope"})"), "spec.delivery");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().subject, "spec.delivery.backoffDelay");
  auto broker = parse_delivery(json::parse(R"({"retry": 2})"), "brokers/default.spec.delivery");
  ASSERT_TRUE(broker);
  EXPECT_EQ(broker.value().retries(), 2);
  EXPECT_TRUE(parse_delivery(json(), "x"));
}

TEST(TriggerSpec, MergeOverridesFieldByField) {
  DeliverySpec broker;
  broker.retry = 5;
  broker.backoff_delay = milliseconds(1000);
  broker.dead_letter_sink = Destination{std::nullopt, "http://dlq/"};
  broker.max_in_flight = 10;
  DeliverySpec trigger;
  trigger.retry = 1;
  trigger.timeout = milliseconds(2000);
  auto m = merge(broker, trigger);
  EXPECT_EQ(m.retries(), 1);
  EXPECT_EQ(m.delay(), milliseconds(1000));
  EXPECT_EQ(m.attempt_timeout(), milliseconds(2000));
  ASSERT_TRUE(m.dead_letter_sink);
  EXPECT_EQ(m.dead_letter_sink->uri, "http://dlq/");
  EXPECT_EQ(m.in_flight_limit(), 10);
  EXPECT_EQ(m.policy(), BackoffPolicy::Exponential);
  EXPECT_EQ(merge(DeliverySpec{}, DeliverySpec{}), DeliverySpec{});
}

TEST(TriggerSpec, RetryableStatuses) {
  for (int s : {0, 404, 408, 409, 429, 500, 502, 503, 504, 599}) EXPECT_TRUE(is_retryable_status(s)) << s;
  for (int s : {100, 200, 302, 400, 401, 403, 405, 410, 413, 415, 422, 600})
    EXPECT_FALSE(is_retryable_status(s)) << s;
}

TEST(TriggerSpec, ToolAnnotationsBindTheSubscriberAgentToATool) {
  auto m = minimal();
  m["spec"]["subscriber"] =
      json::parse(R"({"ref": {"apiVersion": "sluice.dev/v1", "kind": "Agent", "name": "calc"}})");
  m["metadata"]["annotations"] = {{"sluice.dev/tool", "add"},
                                  {"sluice.dev/tool-arguments", R"({"a": "$data.x"})"}};
  auto r = parse_trigger(m);
  ASSERT_TRUE(r) << r.error().to_string();
  ASSERT_TRUE(r.value().subscriber.ref);
  EXPECT_EQ(r.value().subscriber.ref->tool, "add");
  EXPECT_EQ(r.value().subscriber.ref->tool_arguments, R"({"a": "$data.x"})");
  EXPECT_EQ(r.value().subscriber.to_string(), "Agent/calc tool add");

  auto no_tool = m;
  no_tool["metadata"]["annotations"].erase("sluice.dev/tool");
  EXPECT_EQ(parse_error(no_tool).subject, "metadata.annotations[sluice.dev/tool-arguments]");
  auto bad_args = m;
  bad_args["metadata"]["annotations"]["sluice.dev/tool-arguments"] = R"({"a": "$Nope"})";
  EXPECT_EQ(parse_error(bad_args).subject, "metadata.annotations[sluice.dev/tool-arguments]");
  auto uri = minimal();
  uri["metadata"]["annotations"] = {{"sluice.dev/tool", "add"}};
  EXPECT_EQ(parse_error(uri).subject, "metadata.annotations[sluice.dev/tool]");
  auto empty = m;
  empty["metadata"]["annotations"]["sluice.dev/tool"] = "";
  EXPECT_EQ(parse_error(empty).subject, "metadata.annotations[sluice.dev/tool]");
}

}  // namespace
}  // namespace sluice
