// GET /metrics of a real `sluice serve` as Prometheus reads it: the text exposition format checked
// strictly (https://prometheus.io/docs/instrumenting/exposition_formats/), counters that agree with
// what clients and subscribers saw, and per-trigger series that follow the trigger's lifecycle.

#include <cmath>
#include <cstdlib>

#include "tests/integration/broker_support.hpp"

namespace sluice::testing {
namespace {

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

bool valid_name(const std::string& s, bool colon) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && !(colon && c == ':')) return false;
  return true;
}

bool parse_value(const std::string& s, double& out) {
  if (s == "+Inf" || s == "Inf") return out = INFINITY, true;
  if (s == "-Inf") return out = -INFINITY, true;
  if (s == "NaN") return out = NAN, true;
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return !s.empty() && end == s.c_str() + s.size();
}

/// Parses `name{a="x",b="y"} value`; an error message names what is wrong.
std::optional<std::string> parse_sample(const std::string& line, Sample& sample) {
  std::size_t i = line.find_first_of("{ ");
  if (i == std::string::npos) return "no value";
  sample.name = line.substr(0, i);
  if (!valid_name(sample.name, true)) return "invalid metric name";
  if (line[i] == '{') {
    ++i;
    while (i < line.size() && line[i] != '}') {
      auto eq = line.find('=', i);
      if (eq == std::string::npos || eq + 1 >= line.size() || line[eq + 1] != '"') return "malformed label";
      std::string label = line.substr(i, eq - i);
      if (!valid_name(label, false)) return "invalid label name " + label;
      std::string value;
      std::size_t j = eq + 2;
      for (; j < line.size() && line[j] != '"'; ++j) {
        if (line[j] == '\n') return "raw newline in a label value";
        if (line[j] != '\\') {
          value += line[j];
          continue;
        }
        if (++j == line.size()) return "dangling escape";
        if (line[j] == 'n')
          value += '\n';
        else if (line[j] == '\\' || line[j] == '"')
          value += line[j];
        else
          return "invalid escape in a label value";
      }
      if (j == line.size()) return "unterminated label value";
      if (!sample.labels.emplace(label, value).second) return "label " + label + " twice";
      i = j + 1;
      if (i < line.size() && line[i] == ',') ++i;
    }
    if (i == line.size()) return "unterminated labels";
    ++i;
  }
  if (i >= line.size() || line[i] != ' ') return "no space before the value";
  if (!parse_value(line.substr(i + 1), sample.value)) return "invalid value";
  if (std::isnan(sample.value)) return "NaN value";
  return std::nullopt;
}

/// Every violation of the exposition format and of Prometheus' conventions in `text`; empty when valid.
std::vector<std::string> exposition_errors(const std::string& text) {
  std::vector<std::string> errors;
  auto fail = [&](const std::string& line, const std::string& why) { errors.push_back(why + ": " + line); };
  std::set<std::string> families_seen, series_seen;
  std::string family, type;
  bool help = false;
  // Histogram series of the current family, by their labels without `le`.
  struct Buckets {
    std::vector<std::pair<double, double>> le;  // (bound, cumulative count)
    std::optional<double> sum, count;
  };
  std::map<std::map<std::string, std::string>, Buckets> histograms;
  auto end_family = [&] {
    for (auto& [labels, h] : histograms) {
      std::string where = family + " " + nlohmann::json(labels).dump();
      if (h.le.empty() || !std::isinf(h.le.back().first)) fail(where, "buckets do not end with le=\"+Inf\"");
      for (std::size_t k = 1; k < h.le.size(); ++k) {
        if (!(h.le[k].first > h.le[k - 1].first)) fail(where, "le not strictly ascending");
        if (h.le[k].second < h.le[k - 1].second) fail(where, "buckets not cumulative");
      }
      if (!h.sum) fail(where, "no _sum");
      if (!h.count) fail(where, "no _count");
      if (h.count && !h.le.empty() && *h.count != h.le.back().second) fail(where, "_count differs from +Inf");
    }
    histograms.clear();
  };
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) {
      fail(line, "empty line");
      continue;
    }
    if (line.starts_with("# HELP ") || line.starts_with("# TYPE ")) {
      std::istringstream words(line.substr(7));
      std::string name, rest;
      words >> name >> rest;
      if (!valid_name(name, true)) fail(line, "invalid metric name");
      if (name != family) {
        end_family();
        if (!families_seen.insert(name).second) fail(line, "family appears twice");
        family = name;
        type.clear();
        help = false;
      }
      if (line[2] == 'H') {
        if (help || !type.empty()) fail(line, "HELP twice or after TYPE");
        help = true;
      } else {
        if (!help) fail(line, "TYPE without HELP before it");
        if (!type.empty()) fail(line, "TYPE twice");
        type = rest;
        if (type != "counter" && type != "gauge" && type != "histogram") fail(line, "unexpected type");
        if ((type == "counter") != name.ends_with("_total")) fail(line, "only counter names end in _total");
      }
      continue;
    }
    if (line[0] == '#') {
      fail(line, "unexpected comment");
      continue;
    }
    Sample s;
    if (auto why = parse_sample(line, s)) {
      fail(line, *why);
      continue;
    }
    if (type.empty()) {
      fail(line, "sample before its family's TYPE");
      continue;
    }
    if (!series_seen.insert(s.name + nlohmann::json(s.labels).dump()).second) fail(line, "series twice");
    if (type != "histogram") {
      if (s.name != family) fail(line, "sample outside its family");
      if (type == "counter" && s.value < 0) fail(line, "negative counter");
      continue;
    }
    auto labels = s.labels;
    labels.erase("le");
    auto& h = histograms[labels];
    if (s.name == family + "_bucket") {
      double bound = 0;
      if (!s.labels.count("le") || !parse_value(s.labels["le"], bound))
        fail(line, "bucket without a valid le");
      else
        h.le.emplace_back(bound, s.value);
    } else if (s.name == family + "_sum") {
      h.sum = s.value;
    } else if (s.name == family + "_count") {
      h.count = s.value;
    } else {
      fail(line, "sample outside its family");
    }
  }
  end_family();
  return errors;
}

std::string scrape(SluiceServer& server) {
  httplib::Client client("127.0.0.1", server.port());
  auto res = client.Get("/metrics");
  if (!res || res->status != 200) return "";
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  return res->body;
}

TEST(MetricsExposition, TheCheckerCatchesMalformedExpositions) {
  EXPECT_TRUE(
      exposition_errors("# HELP a_total a\n# TYPE a_total counter\na_total{x=\"q\\\"\\\\\\n\"} 1\n").empty());
  for (const char* bad : {
           "a_total 1\n",                                                       // no TYPE
           "# HELP a a\n# TYPE a counter\na 1\n",                               // counter without _total
           "# HELP a_total a\n# TYPE a_total counter\na_total{x=\"\\t\"} 1\n",  // bad escape
           "# HELP a a\n# TYPE a gauge\na 1\n# HELP b b\n# TYPE b gauge\nb 1\n# HELP a a\n# TYPE a "
           "gauge\na{x=\"1\"} 1\n",
           "# HELP a a\n# TYPE a gauge\na NaN\n",
           "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count "
           "1\n",
           "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",
           "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 1\n",
           "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n",
       })
    EXPECT_FALSE(exposition_errors(bad).empty()) << bad;
}

TEST(MetricsExposition, CountersAgreeWithDeliveriesAndIngressAndFollowTheTrigger) {
  HttpSink
      sink;  // fails every delivery of an event whose id starts with "fail"; the dead-letter sink accepts
  sink.respond([](const ReceivedRequest& r, std::size_t) {
    SinkResponse res;
    res.status = r.path == "/flaky" && r.header("ce-id").starts_with("fail") ? 500 : 202;
    return res;
  });
  SluiceServer server;
  ASSERT_TRUE(server.wait_ready());
  const std::string retries =
      "  delivery: {retry: 2, backoffPolicy: linear, backoffDelay: PT0.01S, deadLetterSink: {uri: \"" +
      sink.url() + "/dead\"}}\n";
  apply_yaml(server, broker_yaml() + "---\n" + trigger_yaml("ok", sink.url() + "/ok") + "---\n" +
                         trigger_yaml("flaky", sink.url() + "/flaky", retries));
  for (const std::string id : {"a", "b", "c", "d", "e", "fail1", "fail2"})
    ASSERT_EQ(publish(server, id, "t"), 202);

  httplib::Client client("127.0.0.1", server.port());
  httplib::Headers event{{"ce-specversion", "1.0"}, {"ce-id", "x"}, {"ce-type", "t"}, {"ce-source", "/s"}};
  std::map<int, int> answered;
  ++answered[client.Post("/brokers/default", {{"ce-specversion", "1.0"}}, "{}", "application/json")->status];
  ++answered[client.Post("/brokers/nope", event, "{}", "application/json")->status];
  ++answered[client.Post("/brokers/default", "<x/>", "application/cloudevents+xml")->status];
  EXPECT_EQ(answered, (std::map<int, int>{{400, 1}, {404, 1}, {415, 1}}));

  const std::string flaky = "{broker=\"default\",trigger=\"flaky\"}";
  ASSERT_TRUE(wait_until([&] {
    return metric(server, "sluice_trigger_events_dead_lettered_total" + flaky) == 2 &&
           metric(server, "sluice_trigger_backlog_events" + flaky) == 0 &&
           metric(server, "sluice_trigger_backlog_events{broker=\"default\",trigger=\"ok\"}") == 0;
  }));
  EXPECT_EQ(metric(server, "sluice_trigger_events_delivered_total" + flaky), 5);
  EXPECT_EQ(metric(server, "sluice_trigger_events_failed_total" + flaky), 6);  // 2 events x 3 attempts
  EXPECT_EQ(metric(server, "sluice_trigger_events_retried_total" + flaky), 4);
  EXPECT_EQ(metric(server, "sluice_trigger_delivery_duration_seconds_count" + flaky), 11);
  EXPECT_EQ(metric(server, "sluice_trigger_in_flight_events" + flaky), 0);
  EXPECT_EQ(metric(server, "sluice_trigger_dead_letter_pending_events" + flaky), 0);
  EXPECT_EQ(metric(server, "sluice_trigger_events_delivered_total{broker=\"default\",trigger=\"ok\"}"), 7);
  for (const char* reason : {"not_retryable", "retries_exhausted", "undecodable"})
    EXPECT_EQ(metric(server, "sluice_trigger_events_dropped_total{broker=\"default\",reason=\"" +
                                 std::string(reason) + "\",trigger=\"flaky\"}"),
              0)
        << reason;
  EXPECT_EQ(metric(server, "sluice_ingress_requests_total{broker=\"default\",code=\"202\"}"), 7);
  EXPECT_EQ(metric(server, "sluice_ingress_requests_total{broker=\"default\",code=\"400\"}"), 1);
  EXPECT_EQ(metric(server, "sluice_ingress_requests_total{broker=\"\",code=\"404\"}"), 1);
  EXPECT_EQ(metric(server, "sluice_ingress_requests_total{broker=\"default\",code=\"415\"}"), 1);
  for (const auto& e : exposition_errors(scrape(server))) ADD_FAILURE() << e;

  // A deleted trigger's series leave; the trigger created again under the name counts from zero.
  std::string out;
  ASSERT_EQ(server.cli({"delete", "trigger", "flaky"}, &out), 0) << out;
  ASSERT_TRUE(wait_until([&] { return scrape(server).find("trigger=\"flaky\"") == std::string::npos; }));
  for (const auto& e : exposition_errors(scrape(server))) ADD_FAILURE() << e;
  apply_yaml(server, trigger_yaml("flaky", sink.url() + "/flaky", retries));
  ASSERT_TRUE(
      wait_until([&] { return metric(server, "sluice_trigger_events_delivered_total" + flaky) == 0; }));
  EXPECT_EQ(metric(server, "sluice_trigger_events_failed_total" + flaky), 0);
  EXPECT_EQ(metric(server, "sluice_trigger_delivery_duration_seconds_count" + flaky), 0);
  for (const auto& e : exposition_errors(scrape(server))) ADD_FAILURE() << e;
}

}  // namespace
}  // namespace sluice::testing
