#pragma once
// Shared steps of the Kafka integration tests: a mock Kafka cluster in its own process
// (tests/helpers/kafka_mock_cluster.cpp) and kcat as an independent producer and consumer.

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "tests/integration/broker_support.hpp"

namespace sluice::testing {

/// A mock Kafka cluster process; topics are given as NAME:PARTITIONS.
/// Starts the test helper `program` (tests/helpers/) with a writable stdin and reads the
/// "bootstrap=HOST:PORT,…" line it prints once it listens into `bootstrap` (a test failure when it does
/// not come within 10 s).
inline std::unique_ptr<Process> start_helper(const std::string& program, const std::vector<std::string>& args,
                                             std::string& bootstrap) {
  auto process = std::make_unique<Process>(built_program(program), args, std::map<std::string, std::string>{},
                                           "", /*writable_stdin=*/true);
  const bool up = wait_until(
      [&] {
        const std::string out = process->output();
        const auto at = out.find("bootstrap=");
        return (at != std::string::npos && out.find('\n', at) != std::string::npos) || !process->running();
      },
      std::chrono::seconds(10));
  const std::string out = process->output();
  const auto at = out.find("bootstrap=");
  if (!up || at == std::string::npos)
    ADD_FAILURE() << program << " did not start: " << out;
  else
    bootstrap = out.substr(at + 10, out.find('\n', at) - at - 10);
  return process;
}

class MockKafka {
 public:
  explicit MockKafka(const std::vector<std::string>& topics, int brokers = 1) : brokers_(brokers) {
    std::vector<std::string> args{"--brokers", std::to_string(brokers)};
    for (const auto& topic : topics) {
      args.push_back("--topic");
      args.push_back(topic);
    }
    process_ = start_helper("kafka_mock_cluster", args, bootstrap_);
  }
  const std::string& bootstrap() const { return bootstrap_; }

  /// Takes every broker down: connections close and new ones are refused until up(). Returns once the
  /// mock cluster applied it.
  bool down() { return for_each_broker("down"); }
  /// Brings every broker back.
  bool up() { return for_each_broker("up"); }
  /// Sends one command ("down 1", "up 1"; see tests/helpers/kafka_mock_cluster.cpp) and waits for its
  /// answer; false (with a test failure) when it is refused or does not come.
  bool command(const std::string& line) {
    const std::size_t before = answers();
    if (!process_->write_stdin(line + "\n")) {
      ADD_FAILURE() << "the mock cluster is gone: " << process_->output();
      return false;
    }
    if (!wait_until([&] { return answers() > before; }, std::chrono::seconds(10))) {
      ADD_FAILURE() << "the mock cluster did not answer \"" << line << "\": " << process_->output();
      return false;
    }
    const std::string out = process_->output();
    if (out.find("\nok " + line + "\n") == std::string::npos) {
      ADD_FAILURE() << "the mock cluster refused \"" << line << "\": " << out;
      return false;
    }
    return true;
  }

  /// Produces `lines` with kcat (-K: splits key and value at the first ':'; extra kcat flags such as
  /// -H name=value go in `flags`). Returns kcat's exit status.
  int produce(const std::string& topic, const std::string& lines, const std::string& flags = "") const {
    std::string out;
    const int rc = run_command("kcat -b " + bootstrap_ + " -t " + topic + " -P " + flags, &out, lines);
    if (rc != 0) ADD_FAILURE() << "kcat: " << out;
    return rc;
  }

  /// Every record of `topic` as kcat prints it with `format` (kcat -f), read to the end.
  std::string consume(const std::string& topic, const std::string& format) const {
    std::string out;
    run_command("kcat -b " + bootstrap_ + " -t " + topic + " -C -e -q -f '" + format + "' 2>/dev/null", &out);
    return out;
  }

 private:
  // Lines the cluster printed in answer to commands ("ok ..." or "error: ...").
  std::size_t answers() const {
    const std::string out = process_->output();
    std::size_t n = 0;
    for (std::size_t at = out.find('\n'); at != std::string::npos; at = out.find('\n', at + 1))
      if (out.compare(at + 1, 3, "ok ") == 0 || out.compare(at + 1, 6, "error:") == 0) ++n;
    return n;
  }
  bool for_each_broker(const std::string& verb) {
    bool all = true;
    for (int id = 1; id <= brokers_; ++id) all = command(verb + " " + std::to_string(id)) && all;
    return all;
  }

  int brokers_;
  std::unique_ptr<Process> process_;
  std::string bootstrap_;
};

/// A Broker "kb" kept in Kafka (`topic` at `bootstrap`), with `config` as its librdkafka properties (by
/// default a short session, so that a killed node's partitions move within seconds).
inline std::string kafka_broker_yaml(const std::string& bootstrap, const std::string& topic = "kb-events",
                                     const std::string& config =
                                         "session.timeout.ms: \"3000\", "
                                         "heartbeat.interval.ms: \"300\"") {
  return broker_yaml("kb", "storage: kafka, kafka: {bootstrapServers: \"" + bootstrap +
                               "\", topic: " + topic + ", config: {" + config + "}}");
}

/// The status of any resource (empty when absent).
inline nlohmann::json resource_status(SluiceServer& server, const std::string& kind_path,
                                      const std::string& name) {
  httplib::Client client("127.0.0.1", server.port());
  auto res = client.Get("/apis/v1/" + kind_path + "/" + name);
  if (!res || res->status != 200) return nlohmann::json::object();
  auto j = nlohmann::json::parse(res->body, nullptr, false);
  if (j.is_discarded() || !j.contains("status")) return nlohmann::json::object();
  return j["status"];
}

/// "True: " or "False: MESSAGE" from a resource's Ready condition; "" when it has none.
inline std::string ready_message(SluiceServer& server, const std::string& kind_path,
                                 const std::string& name) {
  const auto status = resource_status(server, kind_path, name);
  if (!status.contains("conditions")) return "";
  for (const auto& c : status["conditions"])
    if (c.value("type", "") == "Ready") return c.value("status", "") + ": " + c.value("message", "");
  return "";
}

/// Partitions a consumer group holds on this node, from the resource's status.
inline std::size_t assigned_partitions(SluiceServer& server, const std::string& kind_path,
                                       const std::string& name) {
  auto status = resource_status(server, kind_path, name);
  return status.contains("partitions") ? status["partitions"].size() : 0;
}

}  // namespace sluice::testing
