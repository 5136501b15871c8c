// Manifest parsing: listings printed by `sluice get` read back, and keys given twice are refused.

#include <gtest/gtest.h>

#include "core/manifest.hpp"

namespace sluice {
namespace {

TEST(ManifestParse, KindListingsReadBackAsTheirItems) {
  for (const std::string kind : {"List", "TriggerList", "BrokerList"}) {
    auto yaml = parse_manifests("kind: " + kind +
                                "\nitems:\n- {apiVersion: v1, kind: Broker, metadata: {name: a}}\n"
                                "- {apiVersion: v1, kind: Broker, metadata: {name: b}}\n");
    ASSERT_TRUE(yaml) << kind << ": " << yaml.error().to_string();
    ASSERT_EQ(yaml.value().size(), 2u) << kind;
    EXPECT_EQ(yaml.value()[1]["metadata"]["name"], "b");
    auto json = parse_manifests(R"({"kind": ")" + kind + R"(", "items": [{"kind": "Broker"}]})");
    ASSERT_TRUE(json) << kind << ": " << json.error().to_string();
    ASSERT_EQ(json.value().size(), 1u) << kind;
    EXPECT_EQ(json.value()[0]["kind"], "Broker");
  }
  // An empty listing applies nothing.
  auto empty = parse_manifests("kind: TriggerList\nitems: []\n");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty.value().empty());
}

TEST(ManifestParse, DuplicateYamlKeyIsRefusedWithItsPathAndLine) {
  auto docs = parse_manifests(
      "apiVersion: v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: a\n  subscriber: {uri: x}\n"
      "  broker: b\n");
  ASSERT_FALSE(docs);
  EXPECT_EQ(docs.error().code, 400);
  EXPECT_NE(docs.error().message.find("duplicate key spec.broker at line 7"), std::string::npos)
      << docs.error().to_string();

  auto second = parse_manifests("kind: Broker\n---\nkind: Broker\nspec:\n  filters:\n  - {a: 1, a: 2}\n");
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().to_string().find("document 2"), std::string::npos) << second.error().to_string();
  EXPECT_NE(second.error().to_string().find("spec.filters[0].a"), std::string::npos)
      << second.error().to_string();
}

TEST(ManifestParse, DuplicateJsonKeyIsRefusedWithItsPath) {
  auto docs = parse_manifests(R"({"kind": "Broker", "metadata": {"name": "a"}, "metadata": {"name": "b"}})");
  ASSERT_FALSE(docs);
  EXPECT_EQ(docs.error().code, 400);
  EXPECT_NE(docs.error().message.find("duplicate key metadata "), std::string::npos)
      << docs.error().to_string();

  auto nested = parse_manifests(R"([{"kind": "Broker"}, {"spec": {"x": [1, {"y": 1, "y": 2}]}}])");
  ASSERT_FALSE(nested);
  EXPECT_NE(nested.error().message.find("duplicate key [1].spec.x[1].y"), std::string::npos)
      << nested.error().to_string();
}

TEST(ManifestParse, SameKeyInSiblingMappingsIsFine) {
  auto json = parse_manifests(R"([{"kind": "A", "spec": {"a": {"k": 1}, "b": {"k": 2}}}, {"kind": "A"}])");
  ASSERT_TRUE(json) << json.error().to_string();
  EXPECT_EQ(json.value().size(), 2u);
  auto yaml =
      parse_manifests("kind: A\nspec:\n  a: {k: 1}\n  b: {k: 2}\n  c: [{k: 1}, {k: 2}]\n---\nkind: A\n");
  ASSERT_TRUE(yaml) << yaml.error().to_string();
  EXPECT_EQ(yaml.value().size(), 2u);
}

}  // namespace
}  // namespace sluice
