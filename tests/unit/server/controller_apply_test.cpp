// Controller::apply: what `get -o yaml` adds (status, server-set metadata) is dropped before storing,
// so applying it back is unchanged; fields no manifest has are refused.

#include "server/controller.hpp"

#include <gtest/gtest.h>

#include <future>

#include "broker/file_log.hpp"
#include "core/manifest.hpp"
#include "tests/support/process.hpp"

namespace sluice {
namespace {

class ControllerApply : public ::testing::Test {
 protected:
  void SetUp() override {
    ControllerOptions options;
    options.data_dir = dir_.path();
    options.fsync = false;
    controller_ = std::make_unique<Controller>(options, clock_, brokers_);
    ASSERT_TRUE(controller_->recover());
  }

  std::string action(const std::string& yaml) {
    auto docs = parse_manifests(yaml);
    if (!docs) return "parse: " + docs.error().to_string();
    auto applied = controller_->apply(std::move(docs).value());
    if (!applied) return "error: " + applied.error().to_string();
    return applied.value()[0].value("action", "");
  }

  testing::TempDir dir_;
  RealClock clock_;
  BrokerRegistry brokers_{clock_};
  std::unique_ptr<Controller> controller_;
};

constexpr const char* kBroker =
    "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: b\n  labels: {team: a}\n"
    "spec: {delivery: {retry: 3}}\n";

TEST_F(ControllerApply, AppliedGetOutputIsUnchangedAndStoresNoStatus) {
  ASSERT_EQ(action(kBroker), "created");
  auto described = controller_->describe("Broker", "b");
  ASSERT_TRUE(described);
  ASSERT_TRUE(described->contains("status"));
  EXPECT_EQ(action(to_yaml(*described)), "unchanged");
  auto stored = controller_->store().get("Broker", "b");
  ASSERT_TRUE(stored);
  EXPECT_FALSE(stored->manifest.contains("status")) << stored->manifest.dump();
  EXPECT_FALSE(stored->manifest["metadata"].contains("generation")) << stored->manifest.dump();
  EXPECT_FALSE(stored->manifest["metadata"].contains("creationTimestamp")) << stored->manifest.dump();
  EXPECT_EQ(action(kBroker), "unchanged");
  // The listing reads back too.
  auto list = parse_manifests(controller_->list("Broker").dump());
  ASSERT_TRUE(list) << list.error().to_string();
  ASSERT_EQ(list.value().size(), 1u);
  auto applied = controller_->apply(std::move(list).value());
  ASSERT_TRUE(applied) << applied.error().to_string();
  EXPECT_EQ(applied.value()[0]["action"], "unchanged");
  // A kubectl export's metadata is accepted and ignored.
  EXPECT_EQ(action(std::string(kBroker) + "status: {conditions: []}\n"), "unchanged");
  EXPECT_EQ(action("apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: b\n"
                   "  namespace: default\n  labels: {team: a}\n  uid: 6f0c\n  resourceVersion: \"7\"\n"
                   "  generation: 4\n  creationTimestamp: \"2024-01-01T00:00:00Z\"\n"
                   "spec: {delivery: {retry: 3}}\n"),
            "configured");  // the namespace is new
  EXPECT_EQ(action("apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: b\n"
                   "  labels: {team: b}\nspec: {delivery: {retry: 3}}\n"),
            "configured");
}

TEST_F(ControllerApply, UnknownTopLevelAndMetadataFieldsAreRefused) {
  auto top = action(std::string(kBroker) + "bogusTop: 1\n");
  EXPECT_NE(top.find("Broker/b: bogusTop: unknown field"), std::string::npos) << top;
  auto meta = action(
      "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata: {name: b, bogusMeta: 1}\nspec: {}\n");
  EXPECT_NE(meta.find("Broker/b: metadata.bogusMeta: unknown field"), std::string::npos) << meta;
  EXPECT_FALSE(controller_->store().get("Broker", "b"));
}

// An apiVersion that is not a string is refused naming the field (it used to throw: a 500 from the
// control API).
TEST_F(ControllerApply, AnApiVersionThatIsNotAStringIsRefused) {
  std::string result;
  EXPECT_NO_THROW(result =
                      action("apiVersion: [eventing.knative.dev/v1]\nkind: Broker\nmetadata: {name: b}\n"));
  EXPECT_NE(result.find("apiVersion: must be a string"), std::string::npos) << result;
  EXPECT_FALSE(controller_->store().get("Broker", "b"));
}

TEST_F(ControllerApply, ANewRetentionAppliesToTheOpenLog) {
  ASSERT_EQ(action("apiVersion: sluice.dev/v1\nkind: Broker\nmetadata: {name: r}\n"), "created");
  auto broker = brokers_.find("r");
  ASSERT_TRUE(broker);
  auto* log = dynamic_cast<FileLog*>(broker->log.get());
  ASSERT_NE(log, nullptr);
  const std::string payload(256 << 10, 'x');
  auto append = [&] {
    std::promise<Result<std::uint64_t>> done;
    log->append({payload}, [&](Result<std::uint64_t> r) { done.set_value(std::move(r)); });
    ASSERT_TRUE(done.get_future().get());
  };
  for (int i = 0; i < 16; ++i) append();
  ASSERT_EQ(action("apiVersion: sluice.dev/v1\nkind: Broker\nmetadata: {name: r}\n"
                   "spec: {retention: {maxBytes: 2Mi}}\n"),
            "configured");
  EXPECT_EQ(brokers_.find("r")->log.get(), log);  // the same log, not reopened
  for (int i = 0; i < 16; ++i) append();
  ASSERT_TRUE(log->enforce_retention());
  EXPECT_GE(log->start_offset(), 16u);
}

}  // namespace
}  // namespace sluice
