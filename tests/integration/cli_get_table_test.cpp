// `sluice get triggers` as a table on a real server: the SUBSCRIBER column of a trigger whose subscriber
// is a ref with a path used to show the path alone ("/events"), hiding which agent it names.

#include "tests/integration/broker_support.hpp"

namespace sluice::testing {
namespace {

TEST(CliGetTable, TriggerSubscriberShowsTheRefAndItsPath) {
  SluiceServer server;
  ASSERT_TRUE(server.wait_ready());
  std::string out;
  ASSERT_EQ(server.cli({"apply", "-f", "-"}, &out, broker_yaml("default")), 0)
      << out << server.process().output();
  ASSERT_EQ(server.cli({"apply", "-f", "-"}, &out, R"(apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: to-agent}
spec:
  broker: default
  subscriber:
    ref: {apiVersion: sluice.dev/v1, kind: Agent, name: summarizer}
    uri: /events
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: to-ref}
spec:
  broker: default
  subscriber: {ref: {apiVersion: sluice.dev/v1, kind: Agent, name: summarizer}}
)"),
            0)
      << out << server.process().output();
  ASSERT_EQ(server.cli({"apply", "-f", "-"}, &out, trigger_yaml("to-uri", "http://127.0.0.1:9/x")), 0)
      << out << server.process().output();
  ASSERT_EQ(server.cli({"get", "triggers"}, &out), 0) << out;
  EXPECT_EQ(out.rfind("NAME", 0), 0u) << out;
  EXPECT_NE(out.find("BROKER"), std::string::npos) << out;
  EXPECT_NE(out.find("SUBSCRIBER"), std::string::npos) << out;
  EXPECT_NE(out.find("Agent/summarizer/events"), std::string::npos) << out;
  EXPECT_NE(out.find("Agent/summarizer "), std::string::npos) << out;
  EXPECT_NE(out.find("http://127.0.0.1:9/x"), std::string::npos) << out;
}

}  // namespace
}  // namespace sluice::testing
