// `sluice event validate`: the real binary, reading a file and standard input.

#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "tests/support/process.hpp"

namespace sluice::testing {
namespace {

int validate_stdin(const std::string& json, std::string* out) {
  return run_command(built_program("sluice") + " event validate -", out, json);
}

TEST(EventValidate, ValidEventFromFile) {
  TempDir dir;
  std::string path = dir.path() + "/event.json";
  std::ofstream(path) << R"({"specversion":"1.0","type":"com.example.someevent","source":"/mycontext",
                             "id":"A234","time":"2018-04-05T17:31:00Z","data":{"a":1}})";
  std::string out;
  EXPECT_EQ(run_command(built_program("sluice") + " event validate " + path, &out), 0) << out;
  EXPECT_EQ(out, "valid\n");
}

TEST(EventValidate, ReportsEveryViolationWithItsAttribute) {
  std::string out;
  int rc = validate_stdin(R"({"specversion":"0.3","id":5,"source":"not a uri","time":"yesterday",
                             "Bad":"x","ext":1.5,"data":"x","data_base64":"eA=="})",
                          &out);
  EXPECT_EQ(rc, 1) << out;
  for (const char* line : {"id: must be a JSON string", "ext: ", "data: data and data_base64",
                           "specversion: must be \"1.0\"", "source: must be a URI-reference",
                           "type: required attribute", "time: must be an RFC 3339", "Bad: extension names"}) {
    EXPECT_NE(out.find(line), std::string::npos) << "missing '" << line << "' in:\n" << out;
  }
  EXPECT_EQ(out.find("id: required attribute"), std::string::npos) << out;  // reported once, as a type error
}

TEST(EventValidate, SyntaxErrorExitsOne) {
  std::string out;
  EXPECT_EQ(validate_stdin("{\"id\": ", &out), 1);
  EXPECT_NE(out.find("malformed JSON"), std::string::npos) << out;
  EXPECT_EQ(validate_stdin("[1,2]", &out), 1);
  EXPECT_NE(out.find("JSON object"), std::string::npos) << out;
}

TEST(EventValidate, MissingFileIsAUsageError) {
  std::string out;
  EXPECT_NE(run_command(built_program("sluice") + " event validate /nonexistent/event.json", &out), 0);
  EXPECT_NE(out.find("/nonexistent/event.json"), std::string::npos) << out;
}

}  // namespace
}  // namespace sluice::testing
