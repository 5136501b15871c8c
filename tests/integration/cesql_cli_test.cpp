// `sluice cesql eval`: the real binary on a match, a non-match, evaluation errors, a parse error, an
// event from a file and from standard input, and its exit codes.

#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "tests/support/process.hpp"

namespace sluice::testing {
namespace {

using nlohmann::json;

// Single-quotes an argument for /bin/sh.
std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

struct CliRun {
  int status;
  json line;
  std::string raw;
};

CliRun eval(const std::string& expression, const std::string& extra = "",
            const std::string& stdin_text = "") {
  CliRun r;
  r.status = run_command(built_program("sluice") + " cesql eval " + shell_quote(expression) + extra, &r.raw,
                         stdin_text);
  r.line = json::parse(r.raw, nullptr, false);
  return r;
}

constexpr const char* kEvent =
    R"({"specversion":"1.0","id":"o-1","source":"https://shop.example/orders","type":"com.example.order.created",)"
    R"("subject":"order-42","region":"eu-west","priority":7,"urgent":true})";

TEST(CesqlCli, MatchOnTheDefaultEvent) {
  const CliRun r = eval("EXISTS id AND type = 'dev.sluice.cesql.eval' AND NOT EXISTS subject");
  EXPECT_EQ(r.status, 0) << r.raw;
  EXPECT_EQ(r.line, json::parse(R"({"result": true, "errors": []})")) << r.raw;
}

TEST(CesqlCli, EventFromFileAndFromStdin) {
  TempDir dir;
  const std::string path = dir.path() + "/event.json";
  std::ofstream(path) << kEvent;
  const std::string expression =
      "type LIKE 'com.example.%' AND region IN ('eu-west', 'eu-north') AND priority > 5 AND urgent";

  const CliRun from_file = eval(expression, " --event " + shell_quote(path));
  EXPECT_EQ(from_file.status, 0) << from_file.raw;
  EXPECT_EQ(from_file.line["result"], true) << from_file.raw;

  const CliRun from_stdin = eval("CONCAT(subject, '/', priority)", " --event -", kEvent);
  EXPECT_EQ(from_stdin.status, 0) << from_stdin.raw;
  EXPECT_EQ(from_stdin.line, json::parse(R"({"result": "order-42/7", "errors": []})")) << from_stdin.raw;

  const CliRun no_match = eval("region = 'us-east'", " --event -", kEvent);
  EXPECT_EQ(no_match.status, 0) << no_match.raw;
  EXPECT_EQ(no_match.line["result"], false) << no_match.raw;
}

TEST(CesqlCli, EvaluationErrorsExitOne) {
  const CliRun missing = eval("myext = 'x'");
  EXPECT_EQ(missing.status, 1) << missing.raw;
  EXPECT_EQ(
      missing.line,
      json::parse(
          R"({"result": false, "errors": ["missingAttribute: attribute 'myext' is not present in the event"]})"))
      << missing.raw;

  const CliRun math = eval("10 / (5 - 5)");
  EXPECT_EQ(math.status, 1) << math.raw;
  EXPECT_EQ(math.line, json::parse(R"({"result": 0, "errors": ["math: division by zero"]})")) << math.raw;

  const CliRun function = eval("NOPE(1)");
  EXPECT_EQ(function.status, 1) << function.raw;
  EXPECT_EQ(function.line["errors"][0],
            "missingFunction: unknown function NOPE/1 (name/number of arguments)");
}

TEST(CesqlCli, ParseErrorPrintsNullResult) {
  const CliRun r = eval("type = 'unterminated");
  EXPECT_EQ(r.status, 1) << r.raw;
  EXPECT_EQ(r.line,
            json::parse(R"({"result": null, "errors": ["parse: position 8: unterminated string literal"]})"))
      << r.raw;
}

TEST(CesqlCli, BadInvocationExitsTwo) {
  std::string out;
  EXPECT_EQ(run_command(built_program("sluice") + " cesql eval", &out), 2) << out;
  EXPECT_NE(out.find("usage: sluice cesql eval"), std::string::npos) << out;
  const CliRun bad_event = eval("true", " --event -", R"({"id": 1})");
  EXPECT_EQ(bad_event.status, 2) << bad_event.raw;
}

}  // namespace
}  // namespace sluice::testing
