// EventPolicy decisions: publishing and calling are open until a policy names the broker or agent;
// changing resources is closed to all but the admin group until a policy grants the verb change.

#include "server/event_policy.hpp"

#include <gtest/gtest.h>

namespace sluice {
namespace {

EventPolicySpec policy(const std::string& yaml_like_json) {
  auto parsed = parse_event_policy(nlohmann::json::parse(yaml_like_json));
  EXPECT_TRUE(parsed) << parsed.error().to_string();
  return parsed ? parsed.value() : EventPolicySpec{};
}

std::string refusal(const std::string& json) {
  auto parsed = parse_event_policy(nlohmann::json::parse(json));
  return parsed ? "" : parsed.error().to_string();
}

Principal someone(const std::string& subject, std::vector<std::string> groups = {}) {
  Principal who;
  who.subject = subject;
  who.groups = std::move(groups);
  return who;
}

constexpr const char* kTeamA = R"({"metadata": {"name": "team-a"}, "spec": {
  "to": [{"ref": {"kind": "Trigger", "name": "team-a-*"}},
         {"ref": {"kind": "Agent", "name": "team-a-bot"}, "verbs": ["change"]}],
  "from": [{"group": "team-a"}]}})";

TEST(EventPolicy, ChangingIsForTheAdminGroupUntilAPolicyGrantsIt) {
  PolicyEngine engine;
  const auto alice = someone("alice", {"team-a"});
  const auto root = someone("root", {"admin"});
  EXPECT_TRUE(engine.authorize_change("Trigger", "team-a-x", root, "admin"));
  auto refused = engine.authorize_change("Trigger", "team-a-x", alice, "admin");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, 403);
  EXPECT_NE(refused.error().message.find("\"alice\" may not change Trigger \"team-a-x\""), std::string::npos)
      << refused.error().message;
  EXPECT_NE(refused.error().message.find("verb change"), std::string::npos);

  engine.put(policy(kTeamA));
  EXPECT_TRUE(engine.authorize_change("Trigger", "team-a-x", alice, "admin"));
  EXPECT_TRUE(engine.authorize_change("Agent", "team-a-bot", alice, "admin"));
  EXPECT_FALSE(engine.authorize_change("Trigger", "team-b-x", alice, "admin")) << "outside the prefix";
  EXPECT_FALSE(engine.authorize_change("Agent", "team-a-bot2", alice, "admin")) << "an exact name";
  EXPECT_FALSE(engine.authorize_change("Broker", "team-a-x", alice, "admin")) << "another kind";
  EXPECT_FALSE(engine.authorize_change("Trigger", "team-a-x", someone("bob", {"team-b"}), "admin"));
  EXPECT_TRUE(engine.authorize_change("Trigger", "anything", root, "admin"));

  engine.remove("team-a");
  EXPECT_FALSE(engine.authorize_change("Trigger", "team-a-x", alice, "admin"));
}

TEST(EventPolicy, AChangeGrantDoesNotRestrictPublishingOrCalling) {
  PolicyEngine engine;
  engine.put(policy(kTeamA));
  // The policy names the agent for change only: calling it stays open to everyone, as before.
  EXPECT_TRUE(engine.authorize_agent("team-a-bot", "", someone("bob")));
  // A policy without `to` governs every broker and agent, but grants no change.
  engine.put(policy(R"({"metadata": {"name": "all"}, "spec": {"from": [{"sub": "ci"}]}})"));
  EXPECT_FALSE(engine.authorize_agent("team-a-bot", "", someone("bob")));
  EXPECT_TRUE(engine.authorize_agent("team-a-bot", "", someone("ci")));
  EXPECT_FALSE(engine.authorize_change("Trigger", "x", someone("ci"), "admin"));
}

TEST(EventPolicy, ABrokerTargetMayGrantPublishAndChangeTogether) {
  PolicyEngine engine;
  engine.put(policy(R"({"metadata": {"name": "orders"}, "spec": {
    "to": [{"ref": {"kind": "Broker", "name": "orders"}, "verbs": ["publish", "change"]}],
    "from": [{"sub": "orders-team"}]}})"));
  const auto team = someone("orders-team");
  EXPECT_TRUE(engine.authorize_change("Broker", "orders", team, "admin"));
  CloudEvent event;
  event.id = "1";
  event.source = "/s";
  event.type = "t";
  EXPECT_TRUE(engine.authorize_publish("orders", {event}, team));
  EXPECT_FALSE(engine.authorize_publish("orders", {event}, someone("other")));

  // Change alone: publishing to the broker stays open.
  engine.put(policy(R"({"metadata": {"name": "orders"}, "spec": {
    "to": [{"ref": {"kind": "Broker", "name": "orders"}, "verbs": ["change"]}],
    "from": [{"sub": "orders-team"}]}})"));
  EXPECT_TRUE(engine.authorize_publish("orders", {event}, someone("other")));
}

TEST(EventPolicy, PrefixTargetsGovernPublishingToo) {
  PolicyEngine engine;
  engine.put(policy(R"({"metadata": {"name": "p"}, "spec": {
    "to": [{"ref": {"kind": "Agent", "name": "*"}, "tools": ["read"]}], "from": [{"group": "readers"}]}})"));
  const auto reader = someone("r", {"readers"});
  EXPECT_TRUE(engine.authorize_agent("any", "read", reader));
  EXPECT_FALSE(engine.authorize_agent("any", "write", reader));
  EXPECT_FALSE(engine.authorize_agent("any", "", someone("x")));
}

TEST(EventPolicy, BadTargetsAreRefusedNamingTheField) {
  auto with_target = [](const std::string& target) {
    return refusal(R"({"metadata": {"name": "p"}, "spec": {"to": [)" + target +
                   R"(], "from": [{"sub": "a"}]}})");
  };
  EXPECT_NE(with_target(R"({"ref": {"kind": "Pod", "name": "x"}})").find("spec.to[0].ref.kind"),
            std::string::npos);
  EXPECT_NE(with_target(R"({"ref": {"kind": "Trigger", "name": "Bad_Name"}})").find("spec.to[0].ref.name"),
            std::string::npos);
  EXPECT_NE(with_target(R"({"ref": {"kind": "Trigger", "name": "a*b"}})").find("spec.to[0].ref.name"),
            std::string::npos);
  EXPECT_NE(with_target(R"({"ref": {"kind": "Trigger", "name": "-*"}})").find("spec.to[0].ref.name"),
            std::string::npos);
  const auto publish_trigger =
      with_target(R"({"ref": {"kind": "Trigger", "name": "t"}, "verbs": ["publish"]})");
  EXPECT_NE(publish_trigger.find("spec.to[0].verbs"), std::string::npos) << publish_trigger;
  EXPECT_NE(publish_trigger.find("not a verb of a Trigger (change)"), std::string::npos) << publish_trigger;
  EXPECT_NE(with_target(R"({"ref": {"kind": "Broker", "name": "b"}, "verbs": ["call"]})")
                .find("publish and change"),
            std::string::npos);
  EXPECT_NE(with_target(R"({"ref": {"kind": "Broker", "name": "b"}, "verbs": []})").find("spec.to[0].verbs"),
            std::string::npos);
  EXPECT_NE(with_target(R"({"ref": {"kind": "Agent", "name": "a"}, "verbs": ["change"], "tools": ["t"]})")
                .find("spec.to[0].tools"),
            std::string::npos);
  EXPECT_NE(with_target(R"({"ref": {"kind": "Agent", "name": "a"}, "tool": ["t"]})").find("spec.to[0].tool"),
            std::string::npos);
  EXPECT_EQ(with_target(R"({"ref": {"kind": "Secret", "name": "team-a-*"}})"), "");
  EXPECT_EQ(
      with_target(R"({"ref": {"kind": "Agent", "name": "a"}, "verbs": ["call", "change"], "tools": ["t"]})"),
      "");
}

// A ref whose kind or name is not a string is a 400 naming the field, not an exception (which ended the
// server: validation runs on the blocking pool).
TEST(EventPolicy, RefFieldsOfTheWrongTypeAreRefusedNamingTheField) {
  for (const auto& [ref, field] : {std::pair{R"({"kind": 5, "name": "x"})", "spec.to[0].ref.kind"},
                                   {R"({"kind": "Broker", "name": ["x"]})", "spec.to[0].ref.name"}}) {
    std::string why;
    EXPECT_NO_THROW(why = refusal(R"({"metadata": {"name": "p"}, "spec": {"to": [{"ref": )" +
                                  std::string(ref) + R"(}], "from": [{"sub": "a"}]}})"))
        << ref;
    EXPECT_NE(why.find(field), std::string::npos) << why;
    EXPECT_NE(why.find("must be a string"), std::string::npos) << why;
  }
}

}  // namespace
}  // namespace sluice
