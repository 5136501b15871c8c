// Durability of a real `sluice serve`: acknowledged events survive kill -9 and are delivered; a graceful
// restart neither loses nor replays; a trigger's cursor survives restarts.

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "core/fs.hpp"
#include "tests/integration/agents_support.hpp"
#include "tests/integration/broker_support.hpp"
#include "tests/support/socket.hpp"

namespace sluice::testing {
namespace {

std::set<std::string> unique_ids(const HttpSink& sink) {
  auto ids = received_ids(sink);
  return {ids.begin(), ids.end()};
}

TEST(BrokerDurability, ASecondServerOnTheSameDataDirRefusesToStart) {
  SluiceServer first;
  ASSERT_TRUE(first.wait_ready());
  SluiceServer second({}, first.data_dir());
  EXPECT_EQ(second.process().wait(std::chrono::seconds(20)), 1);
  EXPECT_NE(second.process().output().find("another sluice serve is using this data dir"), std::string::npos)
      << second.process().output();
  // The first one is untouched and the data dir is free again once it is gone.
  EXPECT_EQ(first.cli({"apply", "-f", "-"}, nullptr,
                      "apiVersion: eventing.knative.dev/v1\nkind: Broker\n"
                      "metadata: {name: default}\n"),
            0);
  first.kill();
  second.restart();
  ASSERT_TRUE(second.wait_ready());
}

TEST(BrokerDurability, GracefulRestartNeitherLosesNorReplays) {
  HttpSink sink;
  SluiceServer server;
  ASSERT_TRUE(server.wait_ready());
  apply_yaml(server, broker_yaml() + "---\n" + trigger_yaml("t", sink.url()));
  for (int i = 0; i < 20; ++i) ASSERT_EQ(publish(server, "a" + std::to_string(i), "t"), 202);
  ASSERT_TRUE(sink.wait_for(20));

  server.process().signal(SIGTERM);
  ASSERT_EQ(server.process().wait(std::chrono::seconds(15)), 0) << server.process().output();
  server.restart();
  ASSERT_TRUE(server.wait_ready());
  ASSERT_EQ(publish(server, "b0", "t"), 202);
  ASSERT_TRUE(sink.wait_for(21));
  ASSERT_TRUE(wait_until([&] { return trigger_status(server, "t")["delivery"]["backlog"] == 0; }));
  EXPECT_EQ(sink.count(), 21u) << "nothing delivered twice after a clean stop";
}

// What a SIGTERM closes at once, having acknowledged nothing to it: an upload stalled in its body, a
// request still sending its headers, a connection idle between requests. None of them holds the server
// for the drain (30 s).
TEST(BrokerDurability, ShutdownClosesStalledRequestsAndIdleConnectionsAtOnce) {
  using namespace std::chrono_literals;
  SluiceServer server;
  ASSERT_TRUE(server.wait_ready());
  apply_yaml(server, broker_yaml());
  auto send_all = [](int fd, const std::string& data) {
    ASSERT_EQ(::send(fd, data.data(), data.size(), MSG_NOSIGNAL), static_cast<ssize_t>(data.size()));
  };
  auto read_head = [](int fd) {
    std::string got;
    char buf[1024];
    for (ssize_t n; got.find("\r\n\r\n") == std::string::npos && (n = ::recv(fd, buf, sizeof buf, 0)) > 0;)
      got.append(buf, static_cast<std::size_t>(n));
    return got;
  };
  // The stalled upload asks for 100 Continue, whose answer shows that the server has read its head.
  int stalled = connect_loopback(server.port(), 10s);
  send_all(stalled,
           "POST /brokers/default HTTP/1.1\r\nHost: x\r\nce-specversion: 1.0\r\nce-id: stalled\r\n"
           "ce-type: t\r\nce-source: /t\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n"
           "Expect: 100-continue\r\n\r\n");
  ASSERT_NE(read_head(stalled).find("100 Continue"), std::string::npos);
  send_all(stalled, std::string(10, ' '));
  int partial_head = connect_loopback(server.port(), 10s);
  send_all(partial_head, "POST /brokers/default HTTP/1.1\r\nHost: x\r\n");
  int idle = connect_loopback(server.port(), 10s);
  send_all(idle, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_NE(read_head(idle).find("200 OK"), std::string::npos);
  ASSERT_EQ(publish(server, "before", "t"), 202);

  server.process().signal(SIGTERM);
  ASSERT_EQ(server.process().wait(10s), 0) << server.process().output();
  char byte;
  EXPECT_LE(::recv(stalled, &byte, 1, 0), 0) << "the stalled upload is closed unanswered";
  for (int fd : {stalled, partial_head, idle}) ::close(fd);
}

TEST(BrokerDurability, EventsPublishedWhileTheSubscriberIsDownArriveLater) {
  std::atomic<bool> down{true};
  HttpSink sink;
  sink.respond([&](const ReceivedRequest&, std::size_t) {
    return down ? SinkResponse{503, "", {}, {}} : SinkResponse{};
  });
  SluiceServer server;
  ASSERT_TRUE(server.wait_ready());
  apply_yaml(server,
             broker_yaml() + "---\n" +
                 trigger_yaml("t", sink.url(),
                              "  delivery: {retry: 1000, backoffPolicy: linear, backoffDelay: PT0.05S}\n"));
  for (int i = 0; i < 10; ++i) ASSERT_EQ(publish(server, "e" + std::to_string(i), "t"), 202);
  ASSERT_TRUE(sink.wait_for(10));
  // Restart while every event is still failing: the cursor stays behind them.
  server.process().signal(SIGTERM);
  ASSERT_EQ(server.process().wait(std::chrono::seconds(15)), 0) << server.process().output();
  down = false;
  server.restart();
  ASSERT_TRUE(server.wait_ready());
  ASSERT_TRUE(wait_until([&] { return trigger_status(server, "t")["delivery"]["delivered"] == 10; },
                         std::chrono::seconds(15)))
      << trigger_status(server, "t");
  EXPECT_EQ(unique_ids(sink).size(), 10u);
}

void stop_gracefully(SluiceServer& server) {
  server.process().signal(SIGTERM);
  ASSERT_EQ(server.process().wait(std::chrono::seconds(15)), 0) << server.process().output();
}

/// Breaks one byte of the first record of a stopped server's cursor journal (the first trigger's first
/// cursor).
void damage_first_cursor_record(SluiceServer& server) {
  const std::string journal = server.data_dir() + "/cursors";
  UniqueFd fd(::open(journal.c_str(), O_WRONLY));
  ASSERT_TRUE(fd.valid());
  ASSERT_TRUE(pwrite_all(fd.get(), "\xFF", 1, 12, journal));  // inside its offset
}

// A trigger waiting for its agent keeps its place by a cursor; when the cursor journal lost that cursor,
// the trigger must not be given a new one at the end of the log (skipping what it never delivered), at
// this start or any later one, and it delivers that backlog once its agent exists.
TEST(BrokerDurability, AWaitingTriggerWhoseCursorWasDamagedKeepsItsBacklog) {
  HttpSink sink;
  SluiceServer server({"--gpus", "none"});
  ASSERT_TRUE(server.wait_ready());
  apply_yaml(server, broker_yaml() +
                         "---\napiVersion: eventing.knative.dev/v1\nkind: Trigger\n"
                         "metadata: {name: w}\nspec:\n  broker: default\n"
                         "  subscriber: {ref: {apiVersion: sluice.dev/v1, kind: Agent, name: "
                         "missing}}\n");
  for (int i = 0; i < 3; ++i) ASSERT_EQ(publish(server, "e" + std::to_string(i), "t"), 202);
  apply_yaml(server, trigger_yaml("t", sink.url()));  // its cursor record follows the waiting one's
  ASSERT_TRUE(
      wait_until([&] { return trigger_status(server, "t")["delivery"].contains("committedOffset"); }));
  EXPECT_EQ(trigger_status(server, "w")["delivery"].value("backlog", -1), 3);
  stop_gracefully(server);
  damage_first_cursor_record(server);  // the waiting trigger's
  for (int start = 0; start < 2; ++start) {
    if (start > 0) stop_gracefully(server);
    server.restart();
    ASSERT_TRUE(server.wait_ready());
    const auto status = trigger_status(server, "w");
    EXPECT_EQ(status["delivery"].value("committedOffset", -1), 0)
        << "start " << start << ": " << status.dump();
    EXPECT_EQ(status["delivery"].value("backlog", -1), 3) << "start " << start << ": " << status.dump();
  }
  ASSERT_TRUE(start_agent(server, warm_slow_agent("missing", "1")));
  ASSERT_TRUE(wait_until([&] { return trigger_status(server, "w")["delivery"].value("delivered", -1) == 3; }))
      << trigger_status(server, "w").dump();
  EXPECT_EQ(trigger_status(server, "w")["delivery"].value("backlog", -1), 0);
}

// A damaged cursor journal makes no trigger created afterwards replay the log: a trigger made while the
// server runs is new, and starts at the end.
TEST(BrokerDurability, ATriggerCreatedAfterTheJournalWasFoundDamagedStartsAtTheEnd) {
  HttpSink sink;
  SluiceServer server;
  ASSERT_TRUE(server.wait_ready());
  apply_yaml(server, broker_yaml() + "---\n" + trigger_yaml("a", sink.url() + "/a"));
  for (int i = 0; i < 3; ++i) ASSERT_EQ(publish(server, "old" + std::to_string(i), "t"), 202);
  apply_yaml(server, trigger_yaml("b", sink.url() + "/b"));  // a whole record after the damaged one
  ASSERT_TRUE(sink.wait_for(3));
  stop_gracefully(server);
  damage_first_cursor_record(server);
  server.restart();
  ASSERT_TRUE(server.wait_ready());
  apply_yaml(server, trigger_yaml("fresh", sink.url() + "/fresh"));
  EXPECT_EQ(trigger_status(server, "fresh")["delivery"].value("committedOffset", -1), 3);
  ASSERT_EQ(publish(server, "new", "t"), 202);
  ASSERT_TRUE(
      wait_until([&] { return trigger_status(server, "fresh")["delivery"].value("backlog", -1) == 0; }));
  ASSERT_TRUE(
      wait_until([&] { return trigger_status(server, "fresh")["delivery"].value("delivered", -1) == 1; }));
  std::vector<std::string> fresh;
  for (const auto& r : sink.requests())
    if (r.path == "/fresh") fresh.push_back(r.header("ce-id"));
  EXPECT_EQ(fresh, (std::vector<std::string>{"new"}));
}

// A trigger's cursor is committed when it is created: one that saw no event before a kill resumes where it
// was made, without replaying what was published before it existed.
TEST(BrokerDurability, AnIdleTriggerResumesWhereItWasCreatedAfterAKill) {
  HttpSink sink;
  SluiceServer server;
  ASSERT_TRUE(server.wait_ready());
  apply_yaml(server, broker_yaml());
  for (int i = 0; i < 3; ++i) ASSERT_EQ(publish(server, "before" + std::to_string(i), "t"), 202);
  apply_yaml(server, trigger_yaml("t", sink.url()));
  server.kill();
  server.restart();
  ASSERT_TRUE(server.wait_ready());
  ASSERT_EQ(publish(server, "after", "t"), 202);
  ASSERT_TRUE(sink.wait_for(1));
  ASSERT_TRUE(wait_until([&] { return trigger_status(server, "t")["delivery"].value("backlog", -1) == 0; }));
  EXPECT_EQ(received_ids(sink), (std::vector<std::string>{"after"}));
}

// Every trigger has a cursor from its creation on, so a stored trigger found without one at start lost
// it (here the whole journal): it starts at the beginning of the log, delivering again rather than
// skipping.
TEST(BrokerDurability, ATriggerFoundWithoutACursorAtStartBeginsAtTheLogStart) {
  HttpSink sink;
  SluiceServer server;
  ASSERT_TRUE(server.wait_ready());
  apply_yaml(server, broker_yaml() + "---\n" + trigger_yaml("t", sink.url()));
  for (int i = 0; i < 2; ++i) ASSERT_EQ(publish(server, "e" + std::to_string(i), "t"), 202);
  ASSERT_TRUE(sink.wait_for(2));
  stop_gracefully(server);
  ASSERT_EQ(::unlink((server.data_dir() + "/cursors").c_str()), 0);
  server.restart();
  ASSERT_TRUE(server.wait_ready());
  ASSERT_TRUE(sink.wait_for(4));
  const auto ids = received_ids(sink);
  EXPECT_EQ(std::multiset<std::string>(ids.begin(), ids.end()),
            (std::multiset<std::string>{"e0", "e0", "e1", "e1"}));
  EXPECT_NE(server.process().output().find("no cursor"), std::string::npos);
}

// A waiting trigger's cursor past the end of its broker's log (the broker was deleted and made again, or
// recovery cut the log's tail) must not skip the events published after it.
TEST(BrokerDurability, AWaitingTriggerOfARecreatedBrokerKeepsWhatIsPublishedMeanwhile) {
  SluiceServer server;
  ASSERT_TRUE(server.wait_ready());
  apply_yaml(server, broker_yaml());
  for (int i = 0; i < 3; ++i) ASSERT_EQ(publish(server, "old" + std::to_string(i), "t"), 202);
  const std::string waiting =
      "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: w}\nspec:\n  broker: default\n"
      "  subscriber: {ref: {apiVersion: sluice.dev/v1, kind: Agent, name: missing}}\n";
  apply_yaml(server, waiting);
  ASSERT_TRUE(wait_until([&] {
    return trigger_status(server, "w")["delivery"].value("committedOffset", -1) == 3;
  })) << trigger_status(server, "w").dump();
  ASSERT_EQ(server.cli({"delete", "broker", "default"}), 0);
  apply_yaml(server, broker_yaml());
  for (int i = 0; i < 2; ++i) ASSERT_EQ(publish(server, "new" + std::to_string(i), "t"), 202);
  const auto status = trigger_status(server, "w");
  EXPECT_EQ(status["delivery"].value("committedOffset", -1), 0) << status.dump();
  EXPECT_EQ(status["delivery"].value("backlog", -1), 2) << status.dump();
}

// A trigger deleted while its broker was gone, and made again with the same name, is a new trigger: it
// starts at the end of the log, not at the old trigger's cursor.
TEST(BrokerDurability, ATriggerDeletedWhileItsBrokerWasGoneComesBackAsANewOne) {
  HttpSink sink;
  SluiceServer server;
  ASSERT_TRUE(server.wait_ready());
  apply_yaml(server, broker_yaml() + "---\n" + trigger_yaml("t", sink.url()));
  ASSERT_EQ(publish(server, "first", "t"), 202);
  ASSERT_TRUE(sink.wait_for(1));
  ASSERT_TRUE(
      wait_until([&] { return trigger_status(server, "t")["delivery"].value("committedOffset", -1) == 1; }));
  ASSERT_EQ(server.cli({"delete", "broker", "default"}), 0);
  ASSERT_EQ(server.cli({"delete", "trigger", "t"}), 0);
  apply_yaml(server, broker_yaml());
  for (int i = 0; i < 3; ++i) ASSERT_EQ(publish(server, "before" + std::to_string(i), "t"), 202);
  apply_yaml(server, trigger_yaml("t", sink.url()));
  ASSERT_TRUE(
      wait_until([&] { return trigger_status(server, "t")["delivery"].contains("committedOffset"); }));
  ASSERT_EQ(publish(server, "after", "t"), 202);
  ASSERT_TRUE(sink.wait_for(2));
  ASSERT_TRUE(wait_until([&] { return trigger_status(server, "t")["delivery"].value("backlog", -1) == 0; }));
  EXPECT_EQ(received_ids(sink), (std::vector<std::string>{"first", "after"}));
}

std::int64_t log_end(SluiceServer& server) {
  std::string out;
  if (server.cli({"get", "brokers", "default", "-o", "json"}, &out) != 0) return -1;
  return nlohmann::json::parse(out)["status"]["log"]["endOffset"].get<std::int64_t>();
}

TEST(BrokerDurability, TheIdempotencyWindowStoresAnEventOnceAcrossKillsAndARefusedBatchClaimsNothing) {
  HttpSink sink;
  SluiceServer server;
  ASSERT_TRUE(server.wait_ready());
  apply_yaml(server, broker_yaml("default", "ingress: {idempotencyWindow: PT10M}") + "---\n" +
                         trigger_yaml("t", sink.url()));
  ASSERT_EQ(publish(server, "d1", "t"), 202);
  ASSERT_EQ(publish(server, "d1", "t"), 202);  // seen: acknowledged, not stored again
  EXPECT_EQ(log_end(server), 1);

  // A batch is all-or-nothing: the second event's exhausted hop count refuses it whole, and the first
  // event's (source, id) is not kept as seen.
  httplib::Client client("127.0.0.1", server.port());
  auto batch = client.Post("/brokers/default",
                           R"([{"specversion":"1.0","id":"d2","type":"t","source":"/tests"},
                               {"specversion":"1.0","id":"d3","type":"t","source":"/tests","knativebrokerttl":0}])",
                           "application/cloudevents-batch+json");
  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->status, 400) << batch->body;
  EXPECT_EQ(log_end(server), 1);
  ASSERT_EQ(publish(server, "d2", "t"), 202);
  EXPECT_EQ(log_end(server), 2) << "d2 was stored: the refused batch had not claimed it";

  // After kill -9 the window is rebuilt from the log.
  server.kill();
  server.restart();
  ASSERT_TRUE(server.wait_ready());
  ASSERT_EQ(publish(server, "d1", "t"), 202);
  ASSERT_EQ(publish(server, "d2", "t"), 202);
  EXPECT_EQ(log_end(server), 2);
  ASSERT_TRUE(wait_until([&] { return trigger_status(server, "t")["delivery"]["backlog"] == 0; }))
      << trigger_status(server, "t");
  EXPECT_EQ(unique_ids(sink), (std::set<std::string>{"d1", "d2"}));
  EXPECT_GE(metric(server, R"(sluice_broker_duplicates_total{broker="default"})"), 2);
}

TEST(BrokerDurability, KillDuringAPublishBurstLosesNoAcknowledgedEvent) {
  HttpSink sink;
  SluiceServer server;
  ASSERT_TRUE(server.wait_ready());
  apply_yaml(server, broker_yaml() + "---\n" + trigger_yaml("t", sink.url()));

  std::mutex mu;
  std::set<std::string> acknowledged;
  std::atomic<bool> stop{false};
  std::vector<std::thread> publishers;
  for (int p = 0; p < 4; ++p) {
    publishers.emplace_back([&, p] {
      for (int i = 0; !stop; ++i) {
        const std::string id = "p" + std::to_string(p) + "-" + std::to_string(i);
        if (publish(server, id, "t") == 202) {
          std::lock_guard lock(mu);
          acknowledged.insert(id);
        }
      }
    });
  }
  ASSERT_TRUE(wait_until(
      [&] {
        std::lock_guard lock(mu);
        return acknowledged.size() >= 200;
      },
      std::chrono::seconds(20)));
  server.kill();  // SIGKILL in the middle of the burst
  stop = true;
  for (auto& t : publishers) t.join();

  server.restart();
  ASSERT_TRUE(server.wait_ready());
  ASSERT_TRUE(wait_all_delivered(sink, acknowledged, std::chrono::seconds(20)))
      << acknowledged.size() << " acknowledged, " << unique_ids(sink).size() << " delivered";
}

}  // namespace
}  // namespace sluice::testing
