// The CLI's own edges on the real binary: `sluice VERB --help` and `sluice help VERB` (the verb's usage
// on stdout, exit 0, for every verb; they used to be refused as an unknown argument or kind), and
// `sluice serve` flags whose bad values stop it naming the flag.

#include <gtest/gtest.h>

#include <string>

#include "tests/support/process.hpp"

namespace sluice::testing {
namespace {

TEST(CliHelp, EveryVerbAnswersHelpWithItsUsage) {
  const std::string sluice = built_program("sluice");
  for (const char* verb_name : {"apply", "autoscaler simulate", "cesql eval", "delete", "event validate",
                                "get", "logs", "publish", "serve", "status", "top", "trace"}) {
    const std::string verb = verb_name;
    for (const std::string& form : {verb + " --help", verb + " -h", "help " + verb}) {
      std::string out;
      EXPECT_EQ(run_command(sluice + " " + form + " 2>&1", &out), 0) << form << ": " << out;
      EXPECT_EQ(out.rfind("usage: sluice " + verb + " ", 0), 0u) << form << ": " << out;
    }
  }
  std::string out;
  EXPECT_EQ(run_command(sluice + " get brokers --help 2>&1", &out), 0) << out;
  EXPECT_NE(out.find("-o json|yaml"), std::string::npos) << out;
  EXPECT_EQ(run_command(sluice + " help no-such-verb 2>&1", &out), 2) << out;
  EXPECT_NE(out.find("unknown verb 'no-such-verb'"), std::string::npos) << out;
}

// The first word of a two-word verb used to be "unknown verb 'event'" although the verb list shows
// "event validate": its help names the verbs it starts (exit 0), and alone it says what is missing.
TEST(CliHelp, FirstWordOfATwoWordVerbNamesItsVerbs) {
  const std::string sluice = built_program("sluice");
  for (const auto& [word, verb] : {std::pair{"event", "event validate"},
                                   {"cesql", "cesql eval"},
                                   {"autoscaler", "autoscaler simulate"}}) {
    const std::string w = word;
    for (const std::string& form : {w + " --help", w + " -h", "help " + w}) {
      std::string out;
      EXPECT_EQ(run_command(sluice + " " + form + " 2>&1", &out), 0) << form << ": " << out;
      EXPECT_EQ(out.rfind("usage: sluice " + std::string(verb) + " ", 0), 0u) << form << ": " << out;
    }
    std::string out;
    EXPECT_EQ(run_command(sluice + " " + w + " 2>&1", &out), 2) << out;
    EXPECT_NE(out.find("'" + w + "' needs a second word"), std::string::npos) << out;
    EXPECT_NE(out.find("usage: sluice " + std::string(verb)), std::string::npos) << out;
    EXPECT_EQ(run_command(sluice + " " + w + " bogus 2>&1", &out), 2) << out;
    EXPECT_NE(out.find("unknown verb '" + w + " bogus'"), std::string::npos) << out;
  }
}

// A misspelt option used to be taken for a name: `get brokers --bogus` looked up broker "--bogus".
TEST(CliHelp, AnUnknownOptionIsRefusedNotTakenForAName) {
  const std::string sluice = built_program("sluice") + " ";
  for (const char* args :
       {"get brokers --bogus", "get --bogus brokers", "get trigger t --outptu yaml", "delete broker --bogus",
        "delete broker b --force", "apply -f - --dry-run", "trace e1 --bogus"}) {
    std::string out;
    EXPECT_EQ(run_command(sluice + args + " --server http://127.0.0.1:1 </dev/null 2>&1", &out), 2)
        << args << ": " << out;
    EXPECT_NE(out.find("unknown option --"), std::string::npos) << args << ": " << out;
  }
  // And an output format the verb has not: trace used to print its tree for any -o.
  std::string out;
  EXPECT_EQ(run_command(sluice + "trace e1 -o yaml --server http://127.0.0.1:1 2>&1", &out), 2) << out;
  EXPECT_NE(out.find("-o must be json, got yaml"), std::string::npos) << out;
}

// `--threads x` used to stop with "stoul", `--threads -1` to ask for 2^64 I/O threads, and a port with
// trailing characters (`:80x`) to be read as port 80.
TEST(CliServeFlags, BadNumbersStopTheServerNamingTheFlag) {
  TempDir dir;
  const std::string serve = built_program("sluice") + " serve --data-dir " + dir.path() + "/data ";
  for (const auto& [flags, message] :
       {std::pair{"--threads x",
                  "--threads expects a number of I/O threads from 1 to 1024 (0: one per core), got x"},
        {"--threads -1",
         "--threads expects a number of I/O threads from 1 to 1024 (0: one per core), got -1"},
        {"--threads 100000", "--threads expects"},
        {"--listen 127.0.0.1:80x", "--listen expects HOST:PORT with a port 0-65535, got 127.0.0.1:80x"},
        {"--listen 127.0.0.1:", "--listen expects HOST:PORT with a port 0-65535"}}) {
    std::string out;
    EXPECT_EQ(run_command("timeout 20 " + serve + flags, &out), 2) << flags << ": " << out;
    EXPECT_NE(out.find(message), std::string::npos) << flags << ": " << out;
  }
}

}  // namespace
}  // namespace sluice::testing
