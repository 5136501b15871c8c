#include "agents/revision_history.hpp"

#include <gtest/gtest.h>

#include "tests/support/process.hpp"

namespace sluice::agents {
namespace {

nlohmann::json manifest(const std::string& model) {
  return {{"apiVersion", "sluice.dev/v1"},
          {"kind", "Agent"},
          {"metadata", {{"name", "sum"}}},
          {"spec",
           {{"template",
             {{"spec",
               {{"containers",
                 {{{"command", {"/bin/agent"}}, {"env", {{{"name", "M"}, {"value", model}}}}}}}}}}}}}};
}

TEST(RevisionHistory, NewTemplateNewGenerationKeptAcrossLoads) {
  testing::TempDir dir;
  auto history = RevisionHistory::load(dir.path(), "sum").value();
  bool created = false;
  auto spec_a = parse_agent(manifest("a")).value();
  EXPECT_EQ(history.record(spec_a, manifest("a"), &created).value()->name, "sum-00001");
  EXPECT_TRUE(created);
  EXPECT_EQ(history.record(spec_a, manifest("a"), &created).value()->name, "sum-00001");
  EXPECT_FALSE(created);
  auto spec_b = parse_agent(manifest("b")).value();
  EXPECT_EQ(history.record(spec_b, manifest("b"), &created).value()->name, "sum-00002");

  auto reloaded = RevisionHistory::load(dir.path(), "sum").value();
  ASSERT_EQ(reloaded.revisions().size(), 2u);
  EXPECT_EQ(reloaded.revisions()[0].revision_template.container.env[0].value, "a");
  // Going back to an earlier template is a change too: a new revision, as in Knative.
  EXPECT_EQ(reloaded.record(spec_a, manifest("a"), &created).value()->name, "sum-00003");
  RevisionHistory::erase(dir.path(), "sum");
  EXPECT_TRUE(RevisionHistory::load(dir.path(), "sum").value().revisions().empty());
}

}  // namespace
}  // namespace sluice::agents
