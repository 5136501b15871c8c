// Secret resources on a real `sluice serve`: stored privately, never shown.

#include <sys/stat.h>

#include <cstdlib>

#include "core/fs.hpp"
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

// `get -o yaml` shows <redacted> for every value; applying that output back keeps the stored values
// (it used to store the text "<redacted>" in place of the secret).
TEST(Secrets, GetOutputAppliedBackKeepsTheValues) {
  SluiceServer server;
  ASSERT_TRUE(server.wait_ready());
  std::string out;
  ASSERT_EQ(server.cli({"apply", "-f", "-"}, &out,
                       "apiVersion: v1\nkind: Secret\nmetadata: {name: openai}\n"
                       "stringData: {apiKey: sk-very-secret-value}\ndata: {cert: c2VjcmV0LWNlcnQ=}\n"),
            0)
      << out;
  auto stored = [&] {
    auto text = read_file(server.data_dir() + "/resources/secrets/openai.json");
    return text ? nlohmann::json::parse(text.value())["manifest"] : nlohmann::json();
  };
  for (const char* format : {"yaml", "json"}) {
    std::string shown;
    ASSERT_EQ(server.cli({"get", "secret", "openai", "-o", format}, &shown), 0) << shown;
    ASSERT_NE(shown.find("<redacted>"), std::string::npos) << shown;
    ASSERT_EQ(server.cli({"apply", "-f", "-"}, &out, shown), 0) << out;
    EXPECT_NE(out.find("secret/openai unchanged"), std::string::npos) << format << ": " << out;
    EXPECT_EQ(stored()["stringData"]["apiKey"], "sk-very-secret-value") << format;
    EXPECT_EQ(stored()["data"]["cert"], "c2VjcmV0LWNlcnQ=") << format;
  }
  // One value changed, the other still <redacted>: the new one is taken, the other kept.
  ASSERT_EQ(server.cli({"apply", "-f", "-"}, &out,
                       "apiVersion: v1\nkind: Secret\nmetadata: {name: openai}\n"
                       "stringData: {apiKey: sk-rotated}\ndata: {cert: <redacted>}\n"),
            0)
      << out;
  EXPECT_EQ(stored()["stringData"]["apiKey"], "sk-rotated");
  EXPECT_EQ(stored()["data"]["cert"], "c2VjcmV0LWNlcnQ=");
  // <redacted> where nothing is stored to keep is refused, naming the key.
  EXPECT_NE(
      server.cli({"apply", "-f", "-"}, &out,
                 "apiVersion: v1\nkind: Secret\nmetadata: {name: fresh}\nstringData: {apiKey: <redacted>}\n"),
      0);
  EXPECT_NE(out.find("stringData.apiKey"), std::string::npos) << out;
  EXPECT_NE(out.find("give the value"), std::string::npos) << out;
  EXPECT_FALSE(read_file(server.data_dir() + "/resources/secrets/fresh.json"));
}

// "secrets come from a Secret, never from the manifest": a password written into a KafkaSource's or a
// Kafka broker's config is refused naming the property (it used to be stored and shown by `get`).
TEST(Secrets, PlainCredentialsInKafkaConfigAreRefused) {
  SluiceServer server;
  ASSERT_TRUE(server.wait_ready());
  std::string out;
  EXPECT_EQ(server.cli({"apply", "-f", "-"}, &out,
                       "apiVersion: sources.knative.dev/v1beta1\nkind: KafkaSource\nmetadata: {name: ks}\n"
                       "spec:\n  bootstrapServers: [127.0.0.1:9]\n  topics: [t]\n"
                       "  config: {sasl.username: u, sasl.password: hunter2-plain}\n"
                       "  sink: {uri: \"http://127.0.0.1:9/\"}\n"),
            1)
      << out;
  EXPECT_NE(out.find("KafkaSource/ks: spec.config.sasl.password: is a credential"), std::string::npos) << out;
  EXPECT_EQ(
      server.cli({"apply", "-f", "-"}, &out,
                 "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata: {name: kb}\n"
                 "spec:\n  storage: kafka\n"
                 "  kafka: {bootstrapServers: \"127.0.0.1:9\", config: {ssl.key.password: hunter2-plain}}\n"),
      1)
      << out;
  EXPECT_NE(out.find("Broker/kb: spec.kafka.config.ssl.key.password: is a credential"), std::string::npos)
      << out;
  EXPECT_EQ(out.find("hunter2-plain"), std::string::npos) << out;
  // The same property from a Secret is accepted (the source waits for the Secret).
  EXPECT_EQ(server.cli({"apply", "-f", "-"}, &out,
                       "apiVersion: sources.knative.dev/v1beta1\nkind: KafkaSource\nmetadata: {name: ks}\n"
                       "spec:\n  bootstrapServers: [127.0.0.1:9]\n  topics: [t]\n"
                       "  config: {sasl.password: {secretKeyRef: {name: kafka-creds, key: password}}}\n"
                       "  sink: {uri: \"http://127.0.0.1:9/\"}\n"),
            0)
      << out;
  EXPECT_EQ(server.process().output().find("hunter2-plain"), std::string::npos);
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
