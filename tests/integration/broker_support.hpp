#pragma once
// Shared steps of the broker and trigger integration tests: a real `sluice serve`, manifests applied
// through the CLI, events published over real HTTP.

#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/http_sink.hpp"
#include "tests/support/process.hpp"
#include "tests/support/wait.hpp"

namespace sluice::testing {

/// Applies YAML through `sluice apply -f -`; fails the test when the CLI does.
inline void apply_yaml(SluiceServer& server, const std::string& yaml) {
  std::string out;
  ASSERT_EQ(server.cli({"apply", "-f", "-"}, &out, yaml), 0) << out;
}

/// A broker plus a trigger to `subscriber_uri` (extra trigger spec lines appended under spec:).
inline std::string broker_yaml(const std::string& name = "default", const std::string& extra_spec = "") {
  return "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata: {name: " + name + "}\nspec: {" +
         extra_spec + "}\n";
}

inline std::string trigger_yaml(const std::string& name, const std::string& subscriber_uri,
                                const std::string& extra_spec = "", const std::string& broker = "default",
                                const std::string& annotations = "") {
  std::string yaml = "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: " + name + "\n";
  if (!annotations.empty()) yaml += "  annotations: {" + annotations + "}\n";
  yaml += "spec:\n  broker: " + broker + "\n  subscriber: {uri: \"" + subscriber_uri + "\"}\n" + extra_spec;
  return yaml;
}

/// Publishes one event in binary mode; returns the HTTP status (0 on a transport error).
inline int publish(SluiceServer& server, const std::string& id, const std::string& type,
                   const std::string& data = R"({"n":1})", std::map<std::string, std::string> ext = {},
                   const std::string& broker = "default") {
  httplib::Client client("127.0.0.1", server.port());
  client.set_read_timeout(std::chrono::seconds(10));
  httplib::Headers headers{{"ce-specversion", "1.0"}, {"ce-id", id}, {"ce-type", type}, {"ce-source", "/tests"}};
  for (auto& [k, v] : ext) headers.emplace("ce-" + k, v);
  auto res = client.Post("/brokers/" + broker, headers, data, "application/json");
  return res ? res->status : 0;
}

/// The trigger's status.delivery counters (empty when absent).
inline nlohmann::json trigger_status(SluiceServer& server, const std::string& name) {
  httplib::Client client("127.0.0.1", server.port());
  auto res = client.Get("/apis/v1/triggers/" + name);
  if (!res || res->status != 200) return nlohmann::json::object();
  auto j = nlohmann::json::parse(res->body, nullptr, false);
  if (j.is_discarded() || !j.contains("status")) return nlohmann::json::object();
  return j["status"];
}

/// The value of one Prometheus sample (a line starting with `series`), or -1 when absent.
inline double metric(SluiceServer& server, const std::string& series) {
  httplib::Client client("127.0.0.1", server.port());
  auto res = client.Get("/metrics");
  if (!res) return -1;
  std::size_t pos = 0;
  while ((pos = res->body.find(series, pos)) != std::string::npos) {
    if (pos == 0 || res->body[pos - 1] == '\n') {
      auto end = res->body.find('\n', pos);
      auto line = res->body.substr(pos, end - pos);
      if (line.size() > series.size() && line[series.size()] == ' ') return std::stod(line.substr(series.size() + 1));
    }
    ++pos;
  }
  return -1;
}

/// The ce-id header of every request the sink received, in arrival order.
inline std::vector<std::string> received_ids(const HttpSink& sink) {
  std::vector<std::string> ids;
  for (const auto& r : sink.requests()) ids.push_back(r.header("ce-id"));
  return ids;
}

/// Waits until the sink has received every id in `acknowledged` (at least once).
inline bool wait_all_delivered(const HttpSink& sink, const std::set<std::string>& acknowledged,
                               std::chrono::milliseconds timeout) {
  return wait_until(
      [&] {
        auto ids = received_ids(sink);
        std::set<std::string> got(ids.begin(), ids.end());
        return std::includes(got.begin(), got.end(), acknowledged.begin(), acknowledged.end());
      },
      timeout);
}

}  // namespace sluice::testing
