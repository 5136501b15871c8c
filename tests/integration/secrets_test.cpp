// Secret resources on a real `sluice serve`: stored privately, never shown.

#include <sys/stat.h>

#include <cstdlib>

#include "tests/integration/agents_support.hpp"
#include "tests/integration/broker_support.hpp"

namespace sluice::testing {
namespace {

TEST(Secrets, ValuesAreStoredPrivatelyAndNeverShown) {
  SluiceServer server;
  ASSERT_TRUE(server.wait_ready());
  std::string out;
  ASSERT_EQ(server.cli({"apply", "-f", "-"}, &out,
                       "apiVersion: v1\nkind: Secret\nmetadata: {name: openai}\n"
                       "stringData: {apiKey: sk-very-secret-value}\n"
                       "data: {cert: c2VjcmV0LWNlcnQ=}\n"
                       "fromEnv: {token: SLUICE_TEST_TOKEN}\n"),
            0)
      << out;
  ASSERT_EQ(server.cli({"get", "secret", "openai", "-o", "json"}, &out), 0) << out;
  auto secret = nlohmann::json::parse(out);
  EXPECT_EQ(secret["stringData"]["apiKey"], "<redacted>");
  EXPECT_EQ(secret["data"]["cert"], "<redacted>");
  EXPECT_EQ(secret["fromEnv"]["token"], "SLUICE_TEST_TOKEN");  // names a variable, holds no value
  EXPECT_EQ(secret["status"]["keys"], (nlohmann::json{"apiKey", "cert", "token"}));
  ASSERT_EQ(server.cli({"get", "secrets", "-o", "yaml"}, &out), 0);
  EXPECT_EQ(out.find("sk-very-secret-value"), std::string::npos) << out;
  EXPECT_EQ(server.process().output().find("sk-very-secret-value"), std::string::npos);

  struct stat st {};
  ASSERT_EQ(::stat((server.data_dir() + "/resources/secrets/openai.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(server.data_dir().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0077, 0u) << "the data dir is private";

  EXPECT_NE(
      server.cli({"apply", "-f", "-"}, &out,
                 "apiVersion: v1\nkind: Secret\nmetadata: {name: bad}\ndata: {cert: \"not base64!\"}\n"),
      0);
  EXPECT_NE(out.find("data.cert"), std::string::npos) << out;
  ASSERT_EQ(server.cli({"delete", "secret", "openai"}, &out), 0) << out;
}

TEST(Secrets, AgentEnvFromASecretWaitsForItAndNeverShowsTheValue) {
  SluiceServer server({"--gpus", "none"});
  ASSERT_TRUE(server.wait_ready());
  AgentYaml agent;
  agent.name = "keyed";
  agent.env = {{"REPORT_ENV", "API_KEY"}};
  agent.container = "        - {name: API_KEY, valueFrom: {secretKeyRef: {name: openai, key: apiKey}}}\n";
  apply_agent(server, agent_yaml(agent));
  // Kubernetes' CreateContainerConfigError: no replica until the Secret exists.
  EXPECT_TRUE(wait_until([&] {
    return revision_status(server, "keyed", "keyed-00001")
               .value("reason", "")
               .find("CreateContainerConfigError: env API_KEY") != std::string::npos;
  })) << agent_status(server, "keyed").dump();
  EXPECT_EQ(revision_status(server, "keyed", "keyed-00001").value("replicas", -1), 0);
  std::string out;
  ASSERT_EQ(server.cli(
                {"apply", "-f", "-"}, &out,
                "apiVersion: v1\nkind: Secret\nmetadata: {name: openai}\nstringData: {apiKey: sk-live-42}\n"),
            0)
      << out;
  ASSERT_TRUE(wait_until([&] { return ready_replicas(server, "keyed", "keyed-00001") == 1; }))
      << agent_status(server, "keyed").dump();
  auto info = nlohmann::json::parse(call_agent(server, "/agents/keyed/").body, nullptr, false);
  EXPECT_EQ(info["env"].value("API_KEY", ""), "sk-live-42") << info.dump();
  // The agent's manifest, status and the server's log keep the reference only.
  ASSERT_EQ(server.cli({"get", "agent", "keyed", "-o", "json"}, &out), 0) << out;
  EXPECT_EQ(out.find("sk-live-42"), std::string::npos) << out;
  EXPECT_NE(out.find("secretKeyRef"), std::string::npos) << out;
  EXPECT_EQ(server.process().output().find("sk-live-42"), std::string::npos);
}

}  // namespace
}  // namespace sluice::testing
