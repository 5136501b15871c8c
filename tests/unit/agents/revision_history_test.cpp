#include "agents/revision_history.hpp"

#include <gtest/gtest.h>

#include "core/fs.hpp"
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

TEST(RevisionHistory, WhetherARevisionHasBeenReadyIsKept) {
  testing::TempDir dir;
  auto history = RevisionHistory::load(dir.path(), "sum").value();
  history.record(parse_agent(manifest("a")).value(), manifest("a"), nullptr).value();
  history.record(parse_agent(manifest("b")).value(), manifest("b"), nullptr).value();
  ASSERT_TRUE(history.mark_ready("sum-00002"));
  ASSERT_TRUE(history.mark_ready("sum-00009"));  // gone (collected): nothing to record

  auto reloaded = RevisionHistory::load(dir.path(), "sum").value();
  ASSERT_EQ(reloaded.revisions().size(), 2u);
  EXPECT_FALSE(reloaded.revisions()[0].ever_ready);
  EXPECT_TRUE(reloaded.revisions()[1].ever_ready);
}

TEST(RevisionHistory, ARevisionThatNoLongerValidatesIsDroppedAndItsNameStaysTaken) {
  testing::TempDir dir;
  auto history = RevisionHistory::load(dir.path(), "sum").value();
  auto spec_a = parse_agent(manifest("a")).value();
  ASSERT_TRUE(history.record(spec_a, manifest("a"), nullptr));
  auto spec_b = parse_agent(manifest("b")).value();
  ASSERT_TRUE(history.record(spec_b, manifest("b"), nullptr));
  // Rewrite the file as an older version may have left it: sum-00002's template refused by today's
  // validation, and sum-00001's own annotations and traffic (not part of the revision) too.
  auto doc = nlohmann::json::parse(read_file(RevisionHistory::path_of(dir.path(), "sum")).value());
  doc[1]["manifest"]["spec"]["template"]["spec"]["containers"][0]["resources"] = {{"limits", {{"cpu", -1}}}};
  doc[0]["manifest"]["metadata"]["annotations"] = {{"autoscaling.knative.dev/min-scale", "1"}};
  doc[0]["manifest"]["spec"]["traffic"] = {{{"latestRevision", true}, {"percent", 100}, {"tag", "1st"}}};
  ASSERT_TRUE(write_file_atomic(RevisionHistory::path_of(dir.path(), "sum"), doc.dump()));

  auto reloaded = RevisionHistory::load(dir.path(), "sum");
  ASSERT_TRUE(reloaded) << reloaded.error().to_string();
  ASSERT_EQ(reloaded.value().revisions().size(), 1u);
  EXPECT_EQ(reloaded.value().revisions()[0].name, "sum-00001");
  auto spec_c = parse_agent(manifest("c")).value();
  EXPECT_EQ(reloaded.value().record(spec_c, manifest("c"), nullptr).value()->name, "sum-00003");
}

}  // namespace
}  // namespace sluice::agents
