// Runs every case of the CESQL conformance suite (shared/reference/cesql-tck/*.yaml, format in its
// README.md) through the engine: one gtest per case.

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "core/json_format.hpp"
#include "trigger/cesql/cesql.hpp"

namespace sluice::cesql {
namespace {

struct TckCase {
  std::string file;
  std::string name;
  std::string expression;
  YAML::Node event;       // full event, or null
  YAML::Node overrides;   // eventOverrides, or null
  YAML::Node result;      // expected value, or null
  std::string error;      // expected error kind, or empty
  std::string test_name;  // unique, gtest-safe
};

std::string tck_dir() {
  return std::string(SLUICE_REFERENCE_DIR) + "/cesql-tck";
}

std::string sanitize(const std::string& s) {
  std::string out;
  for (char c : s) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return out;
}

std::vector<TckCase> load_cases() {
  std::vector<TckCase> cases;
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(tck_dir()))
    if (entry.path().extension() == ".yaml") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  for (const auto& path : files) {
    const YAML::Node doc = YAML::LoadFile(path.string());
    int index = 0;
    for (const auto& test : doc["tests"]) {
      TckCase c;
      c.file = path.stem().string();
      c.name = test["name"].as<std::string>();
      c.expression = test["expression"].as<std::string>();
      // Absent keys give invalid nodes, which yaml-cpp refuses to assign: keep null nodes instead.
      const auto optional = [&](const char* key) { return test[key] ? YAML::Node(test[key]) : YAML::Node(); };
      c.event = optional("event");
      c.overrides = optional("eventOverrides");
      c.result = optional("result");
      if (test["error"]) c.error = test["error"].as<std::string>();
      c.test_name = sanitize(c.file) + "_" + std::to_string(index++) + "_" + sanitize(c.name);
      cases.push_back(std::move(c));
    }
  }
  return cases;
}

bool is_quoted(const YAML::Node& scalar) {
  return scalar.Tag() == "!";
}

// YAML 1.2 core schema for plain scalars: true/false (any case, as the TCK writes FALSE), decimal
// integers, else strings. Quoted scalars are always strings (`result: 'true'` is the string).
nlohmann::json scalar_to_json(const YAML::Node& node) {
  const std::string s = node.Scalar();
  if (!is_quoted(node)) {
    std::string lower = s;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    if (lower == "true") return true;
    if (lower == "false") return false;
    std::int64_t i = 0;
    const char* begin = s.data() + (!s.empty() && s[0] == '+' ? 1 : 0);
    const auto [end, ec] = std::from_chars(begin, s.data() + s.size(), i);
    if (!s.empty() && ec == std::errc() && end == s.data() + s.size()) return i;
  }
  return s;
}

nlohmann::json yaml_to_json(const YAML::Node& node) {
  if (node.IsMap()) {
    nlohmann::json obj = nlohmann::json::object();
    for (const auto& kv : node) obj[kv.first.as<std::string>()] = yaml_to_json(kv.second);
    return obj;
  }
  if (node.IsSequence()) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& item : node) arr.push_back(yaml_to_json(item));
    return arr;
  }
  if (node.IsNull()) return nullptr;
  return scalar_to_json(node);
}

Value expected_value(const YAML::Node& node) {
  const nlohmann::json j = scalar_to_json(node);
  if (j.is_boolean()) return Value::boolean(j.get<bool>());
  if (j.is_number_integer()) return Value::integer(static_cast<std::int32_t>(j.get<std::int64_t>()));
  return Value::string(j.get<std::string>());
}

// "If absent, when testing the expression, any valid event can be passed" (TCK README): the required
// attributes only, so that every optional attribute and extension is missing unless overridden.
nlohmann::json base_event() {
  return {{"specversion", "1.0"}, {"id", "tck-id"}, {"source", "http://localhost/tck"}, {"type", "tck.type"}};
}

std::string describe(const Value& v) {
  return std::string(to_string(v.type())) + " " + v.to_json();
}

// Names the case in gtest's output instead of dumping its bytes.
void PrintTo(const TckCase& c, std::ostream* os) {
  *os << c.file << ": " << c.name;
}

class CesqlTck : public ::testing::TestWithParam<TckCase> {};

TEST_P(CesqlTck, Case) {
  const TckCase& c = GetParam();
  SCOPED_TRACE(c.file + ": " + c.name + ": " + c.expression);

  auto compiled = Expression::compile(c.expression);
  if (!compiled) {
    EXPECT_EQ(c.error, "parse") << "unexpected parse error: " << compiled.error().message;
    return;
  }
  ASSERT_NE(c.error, "parse") << "expected a parse error";

  nlohmann::json event_json = c.event.IsMap() ? yaml_to_json(c.event) : base_event();
  if (c.overrides.IsMap()) {
    const nlohmann::json overrides = yaml_to_json(c.overrides);
    for (auto it = overrides.begin(); it != overrides.end(); ++it) event_json[it.key()] = *it;
  }
  auto event = event_from_json(event_json);
  ASSERT_TRUE(event) << "TCK event rejected: " << event.error().to_string() << "\n" << event_json.dump();

  std::vector<EvalError> errors;
  const Value got = compiled.value().evaluate(event.value(), &errors);

  if (c.error.empty()) {
    for (const auto& e : errors) ADD_FAILURE() << "unexpected error " << e.to_string();
  } else {
    ASSERT_FALSE(errors.empty()) << "expected a " << c.error << " error";
    for (const auto& e : errors) EXPECT_EQ(to_string(e.kind), c.error) << e.to_string();
  }
  if (c.result.IsScalar()) {
    const Value want = expected_value(c.result);
    EXPECT_EQ(got, want) << "got " << describe(got) << ", want " << describe(want);
  }

  // The filter decision agrees with the value and the errors (spec 1.2).
  bool had_error = false;
  const bool matched = compiled.value().matches(event.value(), &had_error);
  EXPECT_EQ(had_error, !errors.empty());
  EXPECT_EQ(matched, errors.empty() && got == Value::boolean(true));
}

INSTANTIATE_TEST_SUITE_P(Tck, CesqlTck, ::testing::ValuesIn(load_cases()),
                         [](const ::testing::TestParamInfo<TckCase>& info) { return info.param.test_name; });

// Guards against the suite silently finding no files.
TEST(CesqlTckSuite, LoadsEveryFile) {
  const auto cases = load_cases();
  EXPECT_GE(cases.size(), 275u);
  std::set<std::string> files;
  for (const auto& c : cases) files.insert(c.file);
  EXPECT_EQ(files.size(), 18u);
}

}  // namespace
}  // namespace sluice::cesql
