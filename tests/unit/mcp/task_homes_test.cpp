// Where an A2A task lives: the ids named by agents' answers in both protocol versions, the task a
// request is about, and the bounded map from task to replica.

#include "mcp/task_homes.hpp"

#include <gtest/gtest.h>

namespace sluice::mcp {
namespace {

using json = nlohmann::json;

TEST(TaskIds, NamedByAnswersOfBothVersions) {
  // v1.0: SendMessage answers {task} or {message}; streamed events {task}, {statusUpdate}, {artifactUpdate}.
  EXPECT_EQ(task_ids_in(json::parse(R"({"jsonrpc":"2.0","id":1,"result":{"task":{"id":"t1","status":{}}}})")),
            std::vector<std::string>{"t1"});
  EXPECT_EQ(task_ids_in(json::parse(R"({"id":1,"result":{"message":{"messageId":"m","taskId":"t2"}}})")),
            std::vector<std::string>{"t2"});
  EXPECT_EQ(task_ids_in(json::parse(R"({"id":1,"result":{"statusUpdate":{"taskId":"t3"}}})")),
            std::vector<std::string>{"t3"});
  EXPECT_EQ(task_ids_in(json::parse(R"({"id":1,"result":{"artifactUpdate":{"taskId":"t4"}}})")),
            std::vector<std::string>{"t4"});
  // v0.3: the result itself, with a kind.
  EXPECT_EQ(task_ids_in(json::parse(R"({"id":1,"result":{"kind":"task","id":"t5"}})")),
            std::vector<std::string>{"t5"});
  EXPECT_EQ(task_ids_in(json::parse(R"({"id":1,"result":{"kind":"status-update","taskId":"t6"}})")),
            std::vector<std::string>{"t6"});
  // A message without a task, an error, garbage: none.
  EXPECT_TRUE(task_ids_in(json::parse(R"({"id":1,"result":{"kind":"message","messageId":"m"}})")).empty());
  EXPECT_TRUE(task_ids_in(json::parse(R"({"id":1,"error":{"code":-32001,"message":"x"}})")).empty());
  EXPECT_TRUE(task_ids_in(json::parse(R"({"id":1,"result":{"kind":"task","id":7}})")).empty());
  EXPECT_TRUE(task_ids_in(json("text")).empty());
}

TEST(TaskIds, TheTaskARequestIsAbout) {
  EXPECT_EQ(task_of_request(json::parse(R"({"method":"GetTask","params":{"id":"t1"}})")), "t1");
  EXPECT_EQ(task_of_request(json::parse(R"({"method":"tasks/get","params":{"id":"t2"}})")), "t2");
  EXPECT_EQ(task_of_request(json::parse(R"({"method":"CancelTask","params":{"name":"tasks/t3"}})")), "t3");
  EXPECT_EQ(
      task_of_request(json::parse(
          R"({"method":"GetTaskPushNotificationConfig","params":{"name":"tasks/t4/pushNotificationConfigs/c"}})")),
      "t4");
  EXPECT_EQ(task_of_request(json::parse(R"({"method":"tasks/resubscribe","params":{"taskId":"t5"}})")), "t5");
  EXPECT_FALSE(task_of_request(json::parse(R"({"method":"SendMessage","params":{"id":"t1"}})")));
  // A message that continues a task (multi-turn) belongs to it; one without a taskId to none.
  EXPECT_EQ(task_of_request(json::parse(R"({"method":"SendMessage","params":{"message":{"taskId":"t6"}}})")),
            "t6");
  EXPECT_EQ(task_of_request(
                json::parse(R"({"method":"SendStreamingMessage","params":{"message":{"taskId":"t7"}}})")),
            "t7");
  EXPECT_EQ(task_of_request(json::parse(R"({"method":"message/send","params":{"message":{"taskId":"t8"}}})")),
            "t8");
  EXPECT_EQ(
      task_of_request(json::parse(R"({"method":"message/stream","params":{"message":{"taskId":"t9"}}})")),
      "t9");
  EXPECT_FALSE(
      task_of_request(json::parse(R"({"method":"SendMessage","params":{"message":{"contextId":"c"}}})")));
  EXPECT_FALSE(task_of_request(json::parse(R"({"method":"SendMessage","params":{"message":{"taskId":5}}})")));
  EXPECT_FALSE(task_of_request(json::parse(R"({"method":"SendMessage","params":{"message":"x"}})")));
  EXPECT_FALSE(task_of_request(json::parse(R"({"method":"GetTask","params":{"id":""}})")));
  EXPECT_FALSE(task_of_request(json::parse(R"({"method":"GetTask","params":[1]})")));
}

TEST(TaskHomes, RemembersPerAgentAndForgetsTheOldestPastItsBound) {
  TaskHomes homes(2);
  homes.remember("a", "t1", "127.0.0.1:1");
  homes.remember("b", "t1", "127.0.0.1:2");
  EXPECT_EQ(homes.find("a", "t1"), "127.0.0.1:1");
  EXPECT_EQ(homes.find("b", "t1"), "127.0.0.1:2");
  homes.remember("a", "t2", "127.0.0.1:3");  // over the bound: a/t1 goes
  EXPECT_FALSE(homes.find("a", "t1"));
  EXPECT_EQ(homes.size(), 2u);
  homes.forget("b", "t1");
  EXPECT_FALSE(homes.find("b", "t1"));
  EXPECT_EQ(homes.find("a", "t2"), "127.0.0.1:3");
}

TEST(TaskIdReader, ReadsJsonBodiesAndSseEventsAsTheyStream) {
  TaskIdReader json_reader;
  json_reader.start({{"Content-Type", "application/json"}});
  json_reader.feed(R"({"id":1,"result":{"task":)");
  json_reader.feed(R"({"id":"t1"}}})");
  EXPECT_EQ(json_reader.finish(), std::vector<std::string>{"t1"});

  TaskIdReader sse_reader;
  sse_reader.start({{"content-type", "text/event-stream"}});
  sse_reader.feed("data: {\"id\":1,\"result\":{\"task\":{\"id\":\"t2\"}}}\n\ndata: {\"id\":1,\"result\":");
  sse_reader.feed("{\"statusUpdate\":{\"taskId\":\"t2\"}}}\n\n");
  EXPECT_EQ(sse_reader.finish(), std::vector<std::string>{"t2"});

  TaskIdReader other;
  other.start({{"Content-Type", "text/plain"}});
  other.feed(R"({"id":1,"result":{"task":{"id":"t3"}}})");
  EXPECT_TRUE(other.finish().empty());
}

}  // namespace
}  // namespace sluice::mcp
