// Request logs of a real `sluice serve`: one JSON line per request served, per delivery attempt and
// per request the activator proxies to a replica.

#include <sys/socket.h>
#include <unistd.h>

#include <sstream>

#include "tests/integration/agents_support.hpp"
#include "tests/integration/broker_support.hpp"
#include "tests/support/socket.hpp"

namespace sluice::testing {
namespace {

/// The JSON objects of the server's "request" log lines.
std::vector<nlohmann::json> request_lines(SluiceServer& server) {
  std::vector<nlohmann::json> out;
  std::istringstream in(server.process().output());
  for (std::string line; std::getline(in, line);) {
    if (line.find("[request]") == std::string::npos) continue;
    auto brace = line.find('{');
    if (brace == std::string::npos) continue;
    auto j = nlohmann::json::parse(line.substr(brace), nullptr, false);
    if (!j.is_discarded()) out.push_back(j);
  }
  return out;
}

std::optional<nlohmann::json> find_line(SluiceServer& server, const std::string& kind) {
  for (auto& line : request_lines(server))
    if (line.value("kind", "") == kind) return line;
  return std::nullopt;
}

TEST(RequestLog, OneLinePerRequestAndPerDeliveryAttempt) {
  HttpSink sink;
  SluiceServer server({"--request-log"});
  ASSERT_TRUE(server.wait_ready());
  apply_yaml(server, broker_yaml() + "---\n" + trigger_yaml("t", sink.url()));
  ASSERT_EQ(publish(server, "logged", "t", R"({"k":1})"), 202);
  ASSERT_TRUE(sink.wait_for(1));
  ASSERT_TRUE(wait_until([&] { return find_line(server, "dispatch").has_value(); }));

  std::optional<nlohmann::json> publish_line;
  for (auto& line : request_lines(server))
    if (line.value("path", "") == "/brokers/default") publish_line = line;
  ASSERT_TRUE(publish_line);
  EXPECT_EQ((*publish_line)["method"], "POST");
  EXPECT_EQ((*publish_line)["status"], 202);
  EXPECT_EQ((*publish_line)["request_bytes"], 7);
  EXPECT_TRUE((*publish_line)["latency_ms"].is_number());

  auto dispatch = *find_line(server, "dispatch");
  EXPECT_EQ(dispatch["trigger"], "t");
  EXPECT_EQ(dispatch["event_id"], "logged");
  EXPECT_EQ(dispatch["status"], 200);
  EXPECT_EQ(dispatch["url"], sink.url());
  EXPECT_EQ(dispatch["trace_id"].get<std::string>().size(), 32u);
}

TEST(RequestLog, OneLinePerRequestTheActivatorProxies) {
  SluiceServer server({"--request-log", "--gpus", "none"});
  ASSERT_TRUE(server.wait_ready());
  AgentYaml echo;
  echo.name = "echo";
  ASSERT_TRUE(start_agent(server, echo));
  const std::string trace = "4bf92f3577b34da6a3ce929d0e0e4736";
  ASSERT_EQ(call_agent(server, "/agents/echo/?q=1", {{"traceparent", "00-" + trace + "-00f067aa0ba902b7-01"}})
                .status,
            200);
  ASSERT_TRUE(wait_until([&] { return find_line(server, "activator").has_value(); }));
  auto line = *find_line(server, "activator");
  EXPECT_EQ(line["method"], "GET");
  EXPECT_EQ(line["agent"], "echo");
  EXPECT_EQ(line["revision"], "echo-00001");
  EXPECT_EQ(line["replica"], "1");
  EXPECT_EQ(line["status"], 200);
  EXPECT_EQ(line["trace_id"], trace);
  EXPECT_TRUE(line["url"].get<std::string>().ends_with("/?q=1")) << line.dump();
  EXPECT_TRUE(line["latency_ms"].is_number());
}

TEST(RequestLog, FieldsCanBeChosenAndTheLogIsOffByDefault) {
  SluiceServer quiet;
  ASSERT_TRUE(quiet.wait_ready());
  apply_yaml(quiet, broker_yaml());
  EXPECT_TRUE(request_lines(quiet).empty());

  SluiceServer server({"--request-log", "--request-log-fields", "kind,status"});
  ASSERT_TRUE(server.wait_ready());
  apply_yaml(server, broker_yaml());
  ASSERT_TRUE(wait_until([&] { return find_line(server, "http").has_value(); }));
  auto line = *find_line(server, "http");
  EXPECT_EQ(line.size(), 2u) << line.dump();
  EXPECT_TRUE(line.contains("status"));
}

// Requests the HTTP layer refuses before any route sees them (over the body limit, a malformed header)
// are logged and counted like the ones the publish endpoint answers.
TEST(RequestLog, RequestsRefusedBeforeRoutingAreLoggedAndCounted) {
  using namespace std::chrono_literals;
  SluiceServer server({"--request-log"});
  ASSERT_TRUE(server.wait_ready());
  apply_yaml(server, broker_yaml());
  httplib::Client client("127.0.0.1", server.port());
  auto big = client.Post("/brokers/default", {{"ce-specversion", "1.0"}, {"ce-id", "big"}},
                         std::string(2 << 20, 'x'), "application/json");
  ASSERT_TRUE(big) << httplib::to_string(big.error());
  EXPECT_EQ(big->status, 413) << big->body;

  int fd = connect_loopback(server.port(), 10s);
  const std::string malformed =
      "POST /brokers/default HTTP/1.1\r\nHost: x\r\nce id: bad\r\nContent-Length: 2\r\n\r\n{}";
  ASSERT_EQ(::send(fd, malformed.data(), malformed.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(malformed.size()));
  std::string answer;
  char buf[1024];
  for (ssize_t n; answer.find("\r\n\r\n") == std::string::npos && (n = ::recv(fd, buf, sizeof buf, 0)) > 0;)
    answer.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  EXPECT_EQ(answer.rfind("HTTP/1.1 400", 0), 0u) << answer;

  auto logged = [&](int status) {
    for (auto& line : request_lines(server))
      if (line.value("path", "") == "/brokers/default" && line.value("status", 0) == status) return line;
    return nlohmann::json();
  };
  ASSERT_TRUE(wait_until([&] { return !logged(413).is_null() && !logged(400).is_null(); }))
      << server.process().output();
  EXPECT_EQ(logged(413)["method"], "POST");
  EXPECT_EQ(logged(400)["method"], "POST");
  EXPECT_EQ(metric(server, R"(sluice_ingress_requests_total{broker="default",code="413"})"), 1);
  EXPECT_EQ(metric(server, R"(sluice_ingress_requests_total{broker="default",code="400"})"), 1);
  // A refusal is one response: one line each, counted once.
  int lines_413 = 0;
  for (auto& line : request_lines(server)) lines_413 += line.value("status", 0) == 413;
  EXPECT_EQ(lines_413, 1);
}

TEST(RequestLog, CredentialsInUrlsAreNotLogged) {
  HttpSink sink;
  SluiceServer server({"--request-log"});
  ASSERT_TRUE(server.wait_ready());
  const std::string subscriber =
      "http://127.0.0.1:" + std::to_string(sink.port()) + "/in?sig=subscribersig&x=1";
  apply_yaml(server, broker_yaml() + "---\n" + trigger_yaml("t", subscriber));
  httplib::Client client("127.0.0.1", server.port());
  ASSERT_EQ(
      client
          .Get("/apis/v1/brokers?access_token=querytoken&limit=5", {{"Authorization", "Bearer headertoken"}})
          ->status,
      200);
  ASSERT_EQ(publish(server, "e1", "t"), 202);
  ASSERT_TRUE(sink.wait_for(1));
  ASSERT_TRUE(wait_until([&] { return find_line(server, "dispatch").has_value(); }));

  for (auto& line : request_lines(server))
    for (const char* secret : {"querytoken", "headertoken", "subscribersig"})
      EXPECT_EQ(line.dump().find(secret), std::string::npos) << line.dump();
  std::optional<nlohmann::json> get_line;
  for (auto& line : request_lines(server))
    if (line.value("method", "") == "GET") get_line = line;
  ASSERT_TRUE(get_line);
  EXPECT_EQ((*get_line)["path"], "/apis/v1/brokers?access_token=REDACTED&limit=5");
  EXPECT_EQ((*find_line(server, "dispatch"))["url"],
            "http://127.0.0.1:" + std::to_string(sink.port()) + "/in?sig=REDACTED&x=1");
}

// The server's own log lines name subscribers and sinks too (a trigger dispatching, updated, giving up,
// dead-lettering): their credentials are masked there as in request logs.
TEST(RequestLog, CredentialsInSubscriberAndSinkUrlsStayOutOfTheServerLog) {
  HttpSink subscriber, dead;
  SluiceServer server({"--log-level", "debug"});
  ASSERT_TRUE(server.wait_ready());
  const std::string ok_url = subscriber.url() + "/in?sig=subscribersig";
  const std::string refused_url = "http://127.0.0.1:1/in?sig=refusedsig";  // nothing listens on port 1
  const std::string dead_url = dead.url() + "/dead?token=deadtoken";
  apply_yaml(server, broker_yaml() + "---\n" + trigger_yaml("ok", ok_url) + "---\n" +
                         trigger_yaml("lost", refused_url,
                                      "  delivery: {retry: 1, backoffPolicy: linear, backoffDelay: PT0.01S, "
                                      "deadLetterSink: {uri: \"" +
                                          dead_url + "\"}}\n"));
  ASSERT_EQ(publish(server, "e1", "t"), 202);
  ASSERT_TRUE(subscriber.wait_for(1));
  ASSERT_TRUE(dead.wait_for(1));
  apply_yaml(server, trigger_yaml("ok", ok_url, "  filter: {attributes: {type: t}}\n"));
  ASSERT_TRUE(wait_until([&] {
    const auto out = server.process().output();
    return out.find("dead-lettered to") != std::string::npos &&
           out.find("trigger=ok] updated") != std::string::npos;
  })) << server.process().output();

  const std::string out = server.process().output();
  for (const char* secret : {"subscribersig", "refusedsig", "deadtoken"})
    EXPECT_EQ(out.find(secret), std::string::npos) << secret << " in:\n" << out;
  EXPECT_NE(out.find("dispatching to " + subscriber.url() + "/in?sig=REDACTED"), std::string::npos) << out;
  EXPECT_NE(out.find(dead.url() + "/dead?token=REDACTED"), std::string::npos) << out;
}

}  // namespace
}  // namespace sluice::testing
