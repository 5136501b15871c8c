// A SendMessage answer as a reply CloudEvent: a message or a finished task is one; a task that failed
// or was rejected, or a result of the wrong shape, is a failed delivery.

#include "mcp/a2a_events.hpp"

#include <gtest/gtest.h>

namespace sluice::mcp {
namespace {

using json = nlohmann::json;

CloudEvent asked() {
  CloudEvent event;
  event.id = "e1";
  event.source = "/test";
  event.type = "com.example.ask";
  return event;
}

TEST(A2aReply, FailedOrRejectedTasksAreNoReply) {
  auto done = reply_from_result(
      json::parse(R"({"task":{"id":"t1","status":{"state":"TASK_STATE_COMPLETED"}}})"), asked(), "echo");
  ASSERT_TRUE(done);
  EXPECT_EQ(done.value().type, a2a_task_reply_type);
  EXPECT_EQ(done.value().subject, "t1");
  for (const char* result : {R"({"task":{"id":"t","status":{"state":"TASK_STATE_FAILED"}}})",
                             R"({"task":{"id":"t","status":{"state":"TASK_STATE_REJECTED"}}})",
                             R"({"kind":"task","id":"t","status":{"state":"failed"}})",
                             R"({"kind":"task","id":"t","status":{"state":"rejected"}})"}) {
    auto reply = reply_from_result(json::parse(result), asked(), "echo");
    ASSERT_FALSE(reply) << result;
    EXPECT_EQ(reply.error().code, 502);
  }
  // Still working or waiting for input: the agent answered; the reply says so.
  EXPECT_TRUE(reply_from_result(json::parse(R"({"task":{"id":"t","status":{"state":"TASK_STATE_WORKING"}}})"),
                                asked(), "echo"));
}

TEST(A2aReply, ResultsOfTheWrongShapeAreErrorsNotExceptions) {
  for (const char* result : {R"({"task":"t"})", R"({"message":[1]})", R"({"other":1})", R"(7)"})
    EXPECT_FALSE(reply_from_result(json::parse(result), asked(), "echo")) << result;
  auto odd = reply_from_result(json::parse(R"({"message":{"messageId":5,"parts":[]}})"), asked(), "echo");
  ASSERT_TRUE(odd);
  EXPECT_EQ(odd.value().id, "e1-reply");
}

}  // namespace
}  // namespace sluice::mcp
