// `sluice autoscaler simulate`: the real binary on a scenario of the reference vectors (from a file
// and from standard input) and on a per-second concurrency series.

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/process.hpp"

namespace sluice::testing {
namespace {

using nlohmann::json;

json reference_scenario(const std::string& id) {
  std::ifstream in(SLUICE_REFERENCE_DIR "/kpa/kpa_vectors.json");
  std::stringstream ss;
  ss << in.rdbuf();
  const json doc = json::parse(ss.str());
  for (const json& s : doc["scale_vectors"]) {
    if (s["id"] == id) return s;
  }
  ADD_FAILURE() << "no scenario " << id;
  return json::object();
}

std::vector<json> lines_of(const std::string& out) {
  std::vector<json> lines;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto j = json::parse(line, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "not JSON: " << line;
    if (!j.is_discarded()) lines.push_back(j);
  }
  return lines;
}

void expect_matches(const json& scenario, const std::vector<json>& lines) {
  ASSERT_EQ(lines.size(), scenario["steps"].size());
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const json& expect = scenario["steps"][i]["expect"];
    const json& got = lines[i];
    SCOPED_TRACE(got.dump());
    ASSERT_EQ(got.size(), 5u);
    EXPECT_EQ(got["t_s"].get<double>(), scenario["steps"][i]["t_s"].get<double>());
    EXPECT_EQ(got["scale_valid"], expect["scale_valid"]);
    EXPECT_EQ(got["desired_pod_count"], expect["desired_pod_count"]);
    EXPECT_LE(std::abs(got["excess_burst_capacity"].get<int>() - expect["excess_burst_capacity"].get<int>()),
              expect.value("ebc_tolerance", 0));
    const json& derived = scenario["steps"][i]["derived_not_asserted"];
    if (!derived["in_panic_after"].is_null()) {
      EXPECT_EQ(got["in_panic"], derived["in_panic_after"]);
    }
  }
}

TEST(AutoscalerSimulate, ScenarioFromFile) {
  TempDir dir;
  const json scenario = reference_scenario("unpanic_after_slow_increase");
  const std::string path = dir.path() + "/scenario.json";
  std::ofstream(path) << scenario.dump(2);
  std::string out;
  ASSERT_EQ(run_command(built_program("sluice") + " autoscaler simulate " + path + " 2>/dev/null", &out), 0)
      << out;
  const auto lines = lines_of(out);
  expect_matches(scenario, lines);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0]["desired_pod_count"], 25);
  EXPECT_EQ(lines[0]["in_panic"], true);
  EXPECT_EQ(lines[2]["in_panic"], false);
}

TEST(AutoscalerSimulate, ScenarioFromStandardInput) {
  const json scenario = reference_scenario("scale_down_delay_simple_and_gradual");
  std::string out;
  ASSERT_EQ(
      run_command(built_program("sluice") + " autoscaler simulate - 2>/dev/null", &out, scenario.dump()), 0)
      << out;
  expect_matches(scenario, lines_of(out));
}

TEST(AutoscalerSimulate, PerSecondConcurrencySeries) {
  TempDir dir;
  json series;
  series["annotations"] = {{"autoscaling.knative.dev/target", "10"},
                           {"autoscaling.knative.dev/target-utilization-percentage", "100"}};
  std::vector<double> load(30, 10.0);  // one replica
  load.insert(load.end(), 60, 100.0);  // a burst: panic, ten replicas
  load.insert(load.end(), 240, 0.0);   // idle: down after the window, zero after the grace period
  series["concurrency"] = load;
  const std::string path = dir.path() + "/series.json";
  std::ofstream(path) << series.dump();
  std::string out;
  ASSERT_EQ(run_command(built_program("sluice") + " autoscaler simulate " + path + " 2>/dev/null", &out), 0)
      << out;
  const auto lines = lines_of(out);
  ASSERT_EQ(lines.size(), 165u);  // a tick every 2 s over 330 s
  EXPECT_EQ(lines[0]["t_s"], 0);
  EXPECT_EQ(lines[1]["t_s"], 2);
  bool panicked = false;
  int peak = 0;
  for (const json& l : lines) {
    EXPECT_EQ(l.size(), 5u);
    panicked = panicked || l["in_panic"].get<bool>();
    peak = std::max(peak, l["desired_pod_count"].get<int>());
  }
  EXPECT_TRUE(panicked);
  EXPECT_EQ(peak, 10);
  EXPECT_EQ(lines.back()["desired_pod_count"], 0);

  // The bare array form on standard input.
  ASSERT_EQ(run_command(built_program("sluice") + " autoscaler simulate - 2>/dev/null", &out,
                        "[0, 0, 140, 140, 140]"),
            0)
      << out;
  EXPECT_EQ(lines_of(out).size(), 3u);
}

TEST(AutoscalerSimulate, ErrorsNameTheAnnotation) {
  std::string out;
  const int rc =
      run_command(built_program("sluice") + " autoscaler simulate -", &out,
                  R"({"annotations": {"autoscaling.knative.dev/window": "3s"}, "concurrency": [1]})");
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("autoscaling.knative.dev/window"), std::string::npos) << out;
  EXPECT_EQ(run_command(built_program("sluice") + " autoscaler simulate", &out), 2) << out;
}

}  // namespace
}  // namespace sluice::testing
