#include "agents/agent_spec.hpp"

#include <gtest/gtest.h>

#include "core/manifest.hpp"

namespace sluice::agents {
namespace {

using nlohmann::json;

json knative_service() {
  return json::parse(R"({
    "apiVersion": "serving.knative.dev/v1",
    "kind": "Service",
    "metadata": {"name": "summarizer", "annotations": {"serving.knative.dev/rollout-duration": "60s"}},
    "spec": {
      "template": {
        "metadata": {"annotations": {"autoscaling.knative.dev/min-scale": "1", "sluice.dev/protocol": "mcp"}},
        "spec": {
          "containerConcurrency": 4,
          "timeoutSeconds": 30,
          "containers": [{
            "image": "ghcr.io/example/summarizer:latest",
            "ports": [{"containerPort": 8080}],
            "command": ["python3", "agent.py"],
            "args": ["--model", "small"],
            "env": [{"name": "MODEL", "value": "small"}, {"name": "TEMPERATURE", "value": 0.5}],
            "readinessProbe": {"httpGet": {"path": "/healthz"}, "periodSeconds": 2, "failureThreshold": 5},
            "resources": {"limits": {"nvidia.com/gpu": 1, "cpu": "2"}}
          }]
        }
      },
      "traffic": [
        {"latestRevision": true, "percent": 90},
        {"revisionName": "summarizer-00001", "percent": 10, "tag": "stable"}
      ]
    }
  })");
}

json sluice_agent() {
  return json::parse(R"({
    "apiVersion": "sluice.dev/v1",
    "kind": "Agent",
    "metadata": {"name": "echo"},
    "spec": {"template": {"spec": {"containers": [{"command": ["./echo_agent"]}]}}}
  })");
}

TEST(AgentSpec, ParsesKnativeService) {
  auto r = parse_agent(knative_service());
  ASSERT_TRUE(r) << r.error().to_string();
  const auto& a = r.value();
  EXPECT_EQ(a.name, "summarizer");
  EXPECT_EQ(a.api_version, "serving.knative.dev/v1");
  EXPECT_EQ(a.rollout_duration, std::chrono::seconds(60));
  const auto& t = a.revision_template;
  EXPECT_EQ(t.annotations.at("autoscaling.knative.dev/min-scale"), "1");
  EXPECT_EQ(t.protocol, AgentProtocol::Mcp);
  EXPECT_EQ(t.container_concurrency, 4);
  EXPECT_EQ(t.timeout_seconds, 30);
  EXPECT_EQ(t.container.command, (std::vector<std::string>{"python3", "agent.py"}));
  EXPECT_EQ(t.container.args, (std::vector<std::string>{"--model", "small"}));
  ASSERT_EQ(t.container.env.size(), 2u);
  EXPECT_EQ(t.container.env[1].value, "0.5");
  EXPECT_EQ(t.container.readiness_probe.kind, ReadinessProbe::Kind::HttpGet);
  EXPECT_EQ(t.container.readiness_probe.path, "/healthz");
  EXPECT_EQ(t.container.readiness_probe.period_seconds, 2);
  EXPECT_EQ(t.container.readiness_probe.failure_threshold, 5);
  EXPECT_EQ(t.container.gpu.whole_gpus, 1);
  ASSERT_EQ(a.traffic.size(), 2u);
  EXPECT_TRUE(a.traffic[0].latest_revision);
  EXPECT_EQ(a.traffic[0].percent, 90);
  EXPECT_EQ(a.traffic[1].revision_name, "summarizer-00001");
  EXPECT_EQ(a.traffic[1].tag, "stable");
  EXPECT_EQ(drain_grace(t), std::chrono::milliseconds(36000));
  EXPECT_EQ(progress_deadline(t), std::chrono::seconds(600));
}

TEST(AgentSpec, ParsesSluiceAgentWithDefaults) {
  auto r = parse_agent(sluice_agent());
  ASSERT_TRUE(r) << r.error().to_string();
  const auto& a = r.value();
  EXPECT_EQ(a.name, "echo");
  const auto& t = a.revision_template;
  EXPECT_EQ(t.timeout_seconds, 300);
  EXPECT_EQ(t.container_concurrency, 0);
  EXPECT_EQ(t.protocol, AgentProtocol::Http);
  EXPECT_EQ(t.priority, 0);
  EXPECT_FALSE(t.reserve.has_value());
  EXPECT_EQ(t.container.readiness_probe.kind, ReadinessProbe::Kind::TcpSocket);
  EXPECT_FALSE(t.container.gpu.any());
  ASSERT_EQ(a.traffic.size(), 1u);
  EXPECT_TRUE(a.traffic[0].latest_revision);
  EXPECT_EQ(a.traffic[0].percent, 100);
  EXPECT_EQ(a.rollout_duration, std::chrono::milliseconds(0));
}

TEST(AgentSpec, GpuSharesClassesPriorityAndReserve) {
  auto m = sluice_agent();
  m["spec"]["template"]["metadata"]["annotations"] = {{"sluice.dev/gpu-classes", "A100, L4"},
                                                      {"sluice.dev/priority", 10},
                                                      {"sluice.dev/max-buffered-requests", "50"},
                                                      {"sluice.dev/reserve-instance", "enable"},
                                                      {"serving.knative.dev/progress-deadline", "2m"}};
  auto& c = m["spec"]["template"]["spec"]["containers"][0];
  c["resources"] = {
      {"limits", {{"sluice.dev/gpu-memory", "8Gi"}, {"memory", "2Gi"}, {"sluice.dev/open-files", 4096}}}};
  c["env"] = json::array(
      {{{"name", "MODEL"}, {"value", "big"}},
       {{"name", "KEEP"}, {"value", "1"}},
       {{"name", "API_KEY"}, {"valueFrom", {{"secretKeyRef", {{"name", "openai"}, {"key", "apiKey"}}}}}}});
  m["spec"]["template"]["spec"]["reserve"] = {{"gpuClasses", json::array({"T4"})},
                                              {"resources", {{"limits", {{"sluice.dev/gpu-memory", "4Gi"}}}}},
                                              {"env", json::array({{{"name", "MODEL"}, {"value", "tiny"}}})}};
  auto r = parse_agent(m);
  ASSERT_TRUE(r) << r.error().to_string();
  const auto& t = r.value().revision_template;
  EXPECT_EQ(t.container.gpu.memory_bytes, 8LL << 30);
  EXPECT_EQ(t.container.gpu.whole_gpus, 0);
  EXPECT_EQ(t.container.limits.memory_bytes, 2LL << 30);
  EXPECT_EQ(t.container.limits.open_files, 4096);
  ASSERT_EQ(t.container.env.size(), 3u);
  EXPECT_EQ(t.container.env[2].secret, (SecretRef{"openai", "apiKey"}));
  EXPECT_EQ(t.container.gpu.classes, (std::vector<std::string>{"A100", "L4"}));
  EXPECT_EQ(t.priority, 10);
  EXPECT_EQ(t.max_buffered, 50u);
  EXPECT_EQ(progress_deadline(t), std::chrono::minutes(2));
  ASSERT_TRUE(t.reserve.has_value());
  EXPECT_EQ(t.reserve->command, t.container.command);
  EXPECT_EQ(t.reserve->gpu.memory_bytes, 4LL << 30);
  EXPECT_EQ(t.reserve->gpu.classes, (std::vector<std::string>{"T4"}));
  ASSERT_EQ(t.reserve->env.size(), 3u);
  EXPECT_EQ(t.reserve->env[0].value, "tiny");
  EXPECT_EQ(t.reserve->env[1].name, "KEEP");
}

TEST(AgentSpec, ReserveWithoutSpecHasNoGpu) {
  auto m = sluice_agent();
  m["spec"]["template"]["metadata"]["annotations"] = {{"sluice.dev/reserve-instance", "enable"}};
  m["spec"]["template"]["spec"]["containers"][0]["resources"] = {{"limits", {{"nvidia.com/gpu", "2"}}}};
  auto r = parse_agent(m);
  ASSERT_TRUE(r) << r.error().to_string();
  ASSERT_TRUE(r.value().revision_template.reserve.has_value());
  EXPECT_EQ(r.value().revision_template.container.gpu.whole_gpus, 2);
  EXPECT_FALSE(r.value().revision_template.reserve->gpu.any());
}

TEST(AgentSpec, KnativeServiceNeedsCommand) {
  auto m = knative_service();
  m["spec"]["template"]["spec"]["containers"][0].erase("command");
  auto r = parse_agent(m);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().subject, "spec.template.spec.containers[0].command");
  EXPECT_NE(r.error().message.find("Knative Service"), std::string::npos) << r.error().message;
}

struct BadCase {
  const char* name;
  std::function<void(json&)> mutate;
  std::string subject;
  std::string message_part;
};

TEST(AgentSpec, EveryValidationErrorNamesItsField) {
  const std::string c0 = "spec.template.spec.containers[0]";
  const std::string ann = "spec.template.metadata.annotations";
  auto container = [](json& m) -> json& { return m["spec"]["template"]["spec"]["containers"][0]; };
  auto annotations = [](json& m) -> json& { return m["spec"]["template"]["metadata"]["annotations"]; };
  std::vector<BadCase> cases = {
      {"api", [](json& m) { m["apiVersion"] = "v1"; }, "apiVersion", "sluice.dev/v1"},
      {"kind", [](json& m) { m["kind"] = "Service"; }, "kind", "must be Agent"},
      {"no name", [](json& m) { m["metadata"].erase("name"); }, "metadata.name", "required"},
      {"bad name", [](json& m) { m["metadata"]["name"] = "Echo_1"; }, "metadata.name", "lowercase"},
      {"long name", [](json& m) { m["metadata"]["name"] = std::string(58, 'a'); }, "metadata.name", "57"},
      {"unknown top", [](json& m) { m["sepc"] = json::object(); }, "sepc", "expected one of"},
      {"no template", [](json& m) { m["spec"].erase("template"); }, "spec.template", "missing"},
      {"no containers", [](json& m) { m["spec"]["template"]["spec"].erase("containers"); },
       "spec.template.spec.containers", "one container"},
      {"two containers",
       [](json& m) {
         auto& cs = m["spec"]["template"]["spec"]["containers"];
         cs.push_back(cs[0]);
       },
       "spec.template.spec.containers", "exactly one"},
      {"empty command", [&](json& m) { container(m)["command"] = json::array(); }, c0 + ".command",
       "required"},
      {"command type", [&](json& m) { container(m)["command"] = 5; }, c0 + ".command", "list of strings"},
      {"args type", [&](json& m) { container(m)["args"] = json::array({1}); }, c0 + ".args[0]", "string"},
      {"typo", [&](json& m) { container(m)["comand"] = json::array({"x"}); }, c0 + ".comand", "unknown"},
      {"env no name",
       [&](json& m) {
         container(m)["env"] = json::array({{{"value", "x"}}});
       },
       c0 + ".env[0].name", "required"},
      {"env reserved",
       [&](json& m) {
         container(m)["env"] = json::array({{{"name", "PORT"}, {"value", "1"}}});
       },
       c0 + ".env[0].name", "set by sluice"},
      {"env valueFrom",
       [&](json& m) {
         container(m)["env"] = json::array({{{"name", "A"}, {"valueFrom", json::object()}}});
       },
       c0 + ".env[0].valueFrom", "only {secretKeyRef"},
      {"env valueFrom and value",
       [&](json& m) {
         container(m)["env"] =
             json::array({{{"name", "A"},
                           {"value", "x"},
                           {"valueFrom", {{"secretKeyRef", {{"name", "s"}, {"key", "k"}}}}}}});
       },
       c0 + ".env[0].valueFrom", "not both"},
      {"env dup",
       [&](json& m) {
         container(m)["env"] =
             json::array({{{"name", "A"}, {"value", "1"}}, {{"name", "A"}, {"value", "2"}}});
       },
       c0 + ".env[1].name", "twice"},
      {"probe both",
       [&](json& m) {
         container(m)["readinessProbe"] = {{"httpGet", {{"path", "/"}}}, {"tcpSocket", json::object()}};
       },
       c0 + ".readinessProbe", "not both"},
      {"probe path",
       [&](json& m) {
         container(m)["readinessProbe"] = {{"httpGet", {{"path", "healthz"}}}};
       },
       c0 + ".readinessProbe.httpGet.path", "start with '/'"},
      {"probe threshold",
       [&](json& m) {
         container(m)["readinessProbe"] = {{"failureThreshold", 0}};
       },
       c0 + ".readinessProbe.failureThreshold", "between 1"},
      {"probe period",
       [&](json& m) {
         container(m)["readinessProbe"] = {{"periodSeconds", "often"}};
       },
       c0 + ".readinessProbe.periodSeconds", "integer"},
      {"gpu count",
       [&](json& m) {
         container(m)["resources"] = {{"limits", {{"nvidia.com/gpu", -1}}}};
       },
       c0 + ".resources.limits[nvidia.com/gpu]", "whole number"},
      {"gpu memory",
       [&](json& m) {
         container(m)["resources"] = {{"limits", {{"sluice.dev/gpu-memory", "lots"}}}};
       },
       c0 + ".resources.limits[sluice.dev/gpu-memory]", "8Gi"},
      {"gpu both",
       [&](json& m) {
         container(m)["resources"] = {{"limits", {{"sluice.dev/gpu-memory", "8Gi"}, {"nvidia.com/gpu", 1}}}};
       },
       c0 + ".resources.limits", "not both"},
      {"unknown resource",
       [&](json& m) {
         container(m)["resources"] = {{"limits", {{"amd.com/gpu", 1}}}};
       },
       c0 + ".resources.limits[amd.com/gpu]", "nvidia.com/gpu"},
      {"concurrency", [](json& m) { m["spec"]["template"]["spec"]["containerConcurrency"] = -1; },
       "spec.template.spec.containerConcurrency", "0 (unlimited)"},
      {"concurrency over Knative's limit",
       [](json& m) { m["spec"]["template"]["spec"]["containerConcurrency"] = 1001; },
       "spec.template.spec.containerConcurrency", "1 to 1000"},
      {"cpu",
       [&](json& m) {
         container(m)["resources"] = {{"limits", {{"cpu", "lots"}}}};
       },
       c0 + ".resources.limits[cpu]", "quantity such as 500m"},
      {"autoscaling on the agent",
       [](json& m) {
         m["metadata"]["annotations"] = {{"autoscaling.knative.dev/min-scale", "3"}};
       },
       "metadata.annotations[autoscaling.knative.dev/min-scale]", "spec.template.metadata.annotations"},
      {"negative cpu",
       [&](json& m) {
         container(m)["resources"] = {{"limits", {{"cpu", "-500m"}}}};
       },
       c0 + ".resources.limits[cpu]", "cannot be negative"},
      {"negative cpu number",
       [&](json& m) {
         container(m)["resources"] = {{"limits", {{"cpu", -1}}}};
       },
       c0 + ".resources.limits[cpu]", "cannot be negative"},
      {"negative ephemeral storage",
       [&](json& m) {
         container(m)["resources"] = {{"limits", {{"ephemeral-storage", "-1Gi"}}}};
       },
       c0 + ".resources.limits[ephemeral-storage]", "cannot be negative"},
      {"timeout", [](json& m) { m["spec"]["template"]["spec"]["timeoutSeconds"] = 0; },
       "spec.template.spec.timeoutSeconds", "between 1"},
      {"protocol",
       [&](json& m) {
         annotations(m) = {{"sluice.dev/protocol", "grpc"}};
       },
       ann + "[sluice.dev/protocol]", "http, mcp or a2a"},
      {"priority",
       [&](json& m) {
         annotations(m) = {{"sluice.dev/priority", "high"}};
       },
       ann + "[sluice.dev/priority]", "integer"},
      {"open files",
       [&](json& m) {
         container(m)["resources"] = {{"limits", {{"sluice.dev/open-files", 3}}}};
       },
       "spec.template.spec.containers[0].resources.limits[sluice.dev/open-files]", "between 16 and 1048576"},
      {"memory",
       [&](json& m) {
         container(m)["resources"] = {{"limits", {{"memory", "lots"}}}};
       },
       "spec.template.spec.containers[0].resources.limits[memory]", "memory quantity"},
      {"max buffered",
       [&](json& m) {
         annotations(m) = {{"sluice.dev/max-buffered-requests", "0"}};
       },
       ann + "[sluice.dev/max-buffered-requests]", "between 1 and 10000000"},
      {"classes without gpu",
       [&](json& m) {
         annotations(m) = {{"sluice.dev/gpu-classes", "A100"}};
       },
       ann + "[sluice.dev/gpu-classes]", "no GPU is requested"},
      {"bad class",
       [&](json& m) {
         annotations(m) = {{"sluice.dev/gpu-classes", "A100,,L4"}};
         container(m)["resources"] = {{"limits", {{"nvidia.com/gpu", 1}}}};
       },
       ann + "[sluice.dev/gpu-classes]", "not a GPU class"},
      {"reserve flag",
       [&](json& m) {
         annotations(m) = {{"sluice.dev/reserve-instance", "yes"}};
       },
       ann + "[sluice.dev/reserve-instance]", "enable or disable"},
      {"reserve without flag", [](json& m) { m["spec"]["template"]["spec"]["reserve"] = json::object(); },
       "spec.template.spec.reserve", "reserve-instance: enable"},
      {"reserve classes without gpu",
       [&](json& m) {
         annotations(m) = {{"sluice.dev/reserve-instance", "enable"}};
         m["spec"]["template"]["spec"]["reserve"] = {{"gpuClasses", "T4"}};
       },
       "spec.template.spec.reserve.gpuClasses", "asks for no GPU"},
      {"progress deadline",
       [&](json& m) {
         annotations(m) = {{"serving.knative.dev/progress-deadline", "10"}};
       },
       ann + "[serving.knative.dev/progress-deadline]", "10s"},
      {"rollout",
       [](json& m) {
         m["metadata"]["annotations"] = {{"serving.knative.dev/rollout-duration", "x"}};
       },
       "metadata.annotations[serving.knative.dev/rollout-duration]", ""},
      {"traffic sum",
       [](json& m) {
         m["spec"]["traffic"] = json::array({{{"latestRevision", true}, {"percent", 50}},
                                             {{"revisionName", "echo-00001"}, {"percent", 40}}});
       },
       "spec.traffic", "add up to 90"},
      {"traffic neither",
       [](json& m) {
         m["spec"]["traffic"] = json::array({{{"percent", 100}}});
       },
       "spec.traffic[0]", "latestRevision: true"},
      {"traffic both",
       [](json& m) {
         m["spec"]["traffic"] =
             json::array({{{"percent", 100}, {"latestRevision", true}, {"revisionName", "echo-00001"}}});
       },
       "spec.traffic[0]", "not both"},
      {"traffic other agent",
       [](json& m) {
         m["spec"]["traffic"] = json::array({{{"percent", 100}, {"revisionName", "other-00001"}}});
       },
       "spec.traffic[0].revisionName", "echo-00001"},
      {"traffic percent",
       [](json& m) {
         m["spec"]["traffic"] = json::array({{{"percent", 120}, {"latestRevision", true}}});
       },
       "spec.traffic[0].percent", "between 0 and 100"},
      {"traffic tag",
       [](json& m) {
         m["spec"]["traffic"] = json::array({{{"percent", 100}, {"latestRevision", true}, {"tag", "Blue!"}}});
       },
       "spec.traffic[0].tag", "not a valid tag"},
      {"traffic tag starting with a digit",
       [](json& m) {
         m["spec"]["traffic"] = json::array({{{"percent", 100}, {"latestRevision", true}, {"tag", "1st"}}});
       },
       "spec.traffic[0].tag", "starting with a letter"},
      {"traffic dup tag",
       [](json& m) {
         m["spec"]["traffic"] = json::array({{{"percent", 100}, {"latestRevision", true}, {"tag", "a"}},
                                             {{"percent", 0}, {"revisionName", "echo-00001"}, {"tag", "a"}}});
       },
       "spec.traffic[1].tag", "twice"},
  };
  for (const auto& c : cases) {
    json m = sluice_agent();
    c.mutate(m);
    auto r = parse_agent(m);
    ASSERT_FALSE(r) << c.name << " parsed";
    EXPECT_EQ(r.error().subject, c.subject) << c.name << ": " << r.error().to_string();
    EXPECT_NE(r.error().message.find(c.message_part), std::string::npos)
        << c.name << ": " << r.error().to_string();
  }
}

TEST(AgentSpec, TemplateHashIsStableAndTracksTemplateOnly) {
  auto a = parse_agent(knative_service());
  ASSERT_TRUE(a);
  auto h = template_hash(a.value());
  EXPECT_EQ(h.size(), 64u);
  // The same manifest again, with keys in another order and defaults spelled out: same hash.
  auto m = knative_service();
  m["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["timeoutSeconds"] = 1;
  json reordered = json::parse(m.dump());
  auto b = parse_agent(reordered);
  ASSERT_TRUE(b);
  EXPECT_EQ(template_hash(b.value()), h);
  // Traffic and metadata annotations are not part of the template.
  m["spec"]["traffic"] = json::array({{{"latestRevision", true}, {"percent", 100}}});
  m["metadata"]["annotations"]["team"] = "x";
  auto c = parse_agent(m);
  ASSERT_TRUE(c);
  EXPECT_EQ(template_hash(c.value()), h);
  // A changed env value makes a new revision.
  m["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] = "large";
  auto d = parse_agent(m);
  ASSERT_TRUE(d);
  EXPECT_NE(template_hash(d.value()), h);
  // Known digest: guards against accidental changes of the canonical form across versions.
  auto e = parse_agent(sluice_agent());
  ASSERT_TRUE(e);
  EXPECT_EQ(template_hash(e.value()), template_hash(e.value().revision_template));
}

TEST(AgentSpec, RevisionNames) {
  EXPECT_EQ(revision_name("echo", 1), "echo-00001");
  EXPECT_EQ(revision_name("echo", 12345), "echo-12345");
  EXPECT_EQ(revision_name("echo", 123456), "echo-123456");
  EXPECT_EQ(revision_generation("echo", "echo-00042"), 42);
  EXPECT_EQ(revision_generation("echo", "echo-123456"), 123456);
  EXPECT_FALSE(revision_generation("echo", "echo-42"));
  EXPECT_FALSE(revision_generation("echo", "other-00001"));
  EXPECT_FALSE(revision_generation("echo", "echo-bar-00001"));
  EXPECT_FALSE(revision_generation("echo", "echo-00000"));
}

}  // namespace
}  // namespace sluice::agents

namespace sluice::agents {
namespace {

TEST(AgentSpec, FromYamlManifest) {
  auto docs = parse_manifests(R"(
apiVersion: sluice.dev/v1
kind: Agent
metadata:
  name: summarizer
  annotations:
    serving.knative.dev/rollout-duration: 2m
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/max-scale: 3
        sluice.dev/protocol: a2a
        sluice.dev/priority: 7
        sluice.dev/gpu-classes: H100,A100
        sluice.dev/reserve-instance: enable
    spec:
      containerConcurrency: 2
      containers:
      - command: [python3, agent.py]
        env:
        - {name: WORKERS, value: 4}
        readinessProbe:
          tcpSocket: {}
          periodSeconds: 1
        resources:
          limits:
            nvidia.com/gpu: 1
      reserve:
        gpuClasses: T4
        resources:
          limits:
            sluice.dev/gpu-memory: 12Gi
  traffic:
  - latestRevision: true
    percent: 75
  - revisionName: summarizer-00002
    percent: 25
    tag: previous
)");
  ASSERT_TRUE(docs) << docs.error().to_string();
  ASSERT_EQ(docs.value().size(), 1u);
  auto r = parse_agent(docs.value()[0]);
  ASSERT_TRUE(r) << r.error().to_string();
  const auto& a = r.value();
  EXPECT_EQ(a.rollout_duration, std::chrono::minutes(2));
  EXPECT_EQ(a.revision_template.annotations.at("autoscaling.knative.dev/max-scale"), "3");
  EXPECT_EQ(a.revision_template.protocol, AgentProtocol::A2a);
  EXPECT_EQ(a.revision_template.priority, 7);
  EXPECT_EQ(a.revision_template.container.gpu.classes, (std::vector<std::string>{"H100", "A100"}));
  EXPECT_EQ(a.revision_template.container.env[0].value, "4");
  ASSERT_TRUE(a.revision_template.reserve);
  EXPECT_EQ(a.revision_template.reserve->gpu.memory_bytes, 12LL << 30);
  EXPECT_EQ(a.revision_template.reserve->gpu.classes, (std::vector<std::string>{"T4"}));
  EXPECT_EQ(a.traffic[1].tag, "previous");
}

}  // namespace
}  // namespace sluice::agents
