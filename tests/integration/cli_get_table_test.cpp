// `sluice get triggers` as a table on a real server: the SUBSCRIBER column of a trigger whose subscriber
// is a ref with a path used to show the path alone ("/events"), hiding which agent it names.
// `sluice get revisions` and the agents table: where each agent's traffic goes.

#include <sstream>

#include "tests/integration/agents_support.hpp"
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

/// The table row (line) of `revision` in `text`, "" when absent.
std::string row_of(const std::string& text, const std::string& revision) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.find(" " + revision + " ") != std::string::npos) return line;
  return "";
}

TEST(CliGetTable, RevisionsShowTrafficTagsAndReplicas) {
  SluiceServer server;
  ASSERT_TRUE(server.wait_ready());
  AgentYaml a;
  a.name = "split";
  ASSERT_TRUE(start_agent(server, a));
  a.env = {{"GREETING", "two"}};
  a.traffic =
      "  traffic:\n  - {revisionName: split-00001, percent: 10, tag: old}\n"
      "  - {latestRevision: true, percent: 90}\n";
  apply_agent(server, agent_yaml(a));
  std::string out;
  ASSERT_TRUE(wait_until([&] {
    server.cli({"get", "revisions", "split"}, &out);
    return row_of(out, "split-00002").find(" 90% ") != std::string::npos &&
           row_of(out, "split-00002").find(" 1/1 ") != std::string::npos;
  })) << out;
  EXPECT_EQ(out.rfind("AGENT", 0), 0u) << out;
  for (const char* column : {"REVISION", "TRAFFIC", "READY", "REPLICAS", "GENERATION", "REASON"})
    EXPECT_NE(out.find(column), std::string::npos) << column << "\n" << out;
  EXPECT_NE(row_of(out, "split-00001").find(" 10% @old "), std::string::npos) << out;
  EXPECT_NE(row_of(out, "split-00002").find(" True "), std::string::npos) << out;
  EXPECT_LT(out.find("split-00002"), out.find("split-00001")) << "newest first\n" << out;

  ASSERT_EQ(server.cli({"get", "agents"}, &out), 0) << out;
  EXPECT_NE(out.find("LATESTREADY"), std::string::npos) << out;
  EXPECT_NE(out.find("split-00002 90%, split-00001 10%"), std::string::npos) << out;

  ASSERT_EQ(server.cli({"get", "revisions", "-o", "json"}, &out), 0) << out;
  auto entries = nlohmann::json::parse(out, nullptr, false);
  ASSERT_TRUE(entries.is_array()) << out;
  ASSERT_EQ(entries.size(), 2u) << out;
  EXPECT_EQ(entries[0].value("agent", ""), "split");
  EXPECT_EQ(entries[0].value("name", ""), "split-00002");
  EXPECT_EQ(entries[1].value("traffic", 0), 10);

  EXPECT_NE(server.cli({"get", "revisions", "nosuch"}, &out), 0) << out;
  EXPECT_NE(out.find("nosuch"), std::string::npos) << out;
}

// A revision whose readiness probe never passes says why, not only "started pid N".
TEST(CliGetTable, RevisionReasonNamesTheFailingReadinessProbe) {
  SluiceServer server;
  ASSERT_TRUE(server.wait_ready());
  apply_agent(server,
              "apiVersion: sluice.dev/v1\nkind: Agent\nmetadata: {name: unready}\nspec:\n"
              "  template:\n    spec:\n      containers:\n      - command: [\"" +
                  built_program("echo_agent") + "\"]\n        readinessProbe: {httpGet: {path: /nope}}\n");
  std::string out;
  EXPECT_TRUE(wait_until([&] {
    server.cli({"get", "revisions"}, &out);
    return row_of(out, "unready-00001").find("readiness probe failing: HTTP GET /nope answered 404") !=
           std::string::npos;
  })) << out;
  // Still within its progress deadline: starting (Unknown), not failed.
  EXPECT_NE(row_of(out, "unready-00001").find(" Unknown "), std::string::npos) << out;
  EXPECT_NE(row_of(out, "unready-00001").find(" 0/1 "), std::string::npos) << out;
}

}  // namespace
}  // namespace sluice::testing
