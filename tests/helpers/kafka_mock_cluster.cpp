// A Kafka-protocol server for tests and benchmarks: librdkafka's mock cluster, kept alive until the
// process is killed, so that several `sluice serve` processes and kcat share one cluster.
//
//   kafka_mock_cluster [--brokers N] [--topic NAME:PARTITIONS]...
//
// Prints the bootstrap servers as the first line of stdout ("bootstrap=HOST:PORT,...") once the
// cluster is up and every --topic exists. Topics not created here are created by CreateTopics or, on
// first use, with the mock's default of 4 partitions.
//
// Fault injection: while running it reads commands from stdin, one a line, and answers each on stdout
// once it is applied (an error line starts with "error"):
//
//   down ID   ->  ok down ID   broker ID (1..N) closes its connections and refuses new ones
//   up ID     ->  ok up ID     broker ID serves again
//
// At the end of stdin (for example /dev/null) the cluster simply runs until SIGTERM or SIGINT.

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include <signal.h>
#include <unistd.h>

namespace {

volatile std::sig_atomic_t stop_requested = 0;

void on_signal(int) {
  stop_requested = 1;
}

// Applies one command line ("down 1", "up 1") and answers it on stdout.
void apply_command(rd_kafka_mock_cluster_t* cluster, int brokers, const std::string& line) {
  char verb[16] = {};
  int id = 0;
  if (std::sscanf(line.c_str(), "%15s %d", verb, &id) != 2 || id < 1 || id > brokers ||
      (std::strcmp(verb, "down") != 0 && std::strcmp(verb, "up") != 0)) {
    std::printf("error: \"%s\": expected \"down ID\" or \"up ID\" with ID in 1..%d\n", line.c_str(), brokers);
  } else {
    const bool down = std::strcmp(verb, "down") == 0;
    const rd_kafka_resp_err_t err =
        down ? rd_kafka_mock_broker_set_down(cluster, id) : rd_kafka_mock_broker_set_up(cluster, id);
    if (err)
      std::printf("error: %s %d: %s\n", verb, id, rd_kafka_err2str(err));
    else
      std::printf("ok %s %d\n", verb, id);
  }
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  int brokers = 1;
  std::vector<std::pair<std::string, int>> topics;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--brokers" && i + 1 < argc) {
      brokers = std::atoi(argv[++i]);
    } else if (arg == "--topic" && i + 1 < argc) {
      const std::string spec = argv[++i];
      const auto colon = spec.rfind(':');
      if (colon == std::string::npos) {
        topics.emplace_back(spec, 4);
      } else {
        topics.emplace_back(spec.substr(0, colon), std::atoi(spec.c_str() + colon + 1));
      }
    } else {
      std::fprintf(stderr, "usage: %s [--brokers N] [--topic NAME:PARTITIONS]...\n", argv[0]);
      return 2;
    }
  }
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  if (rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
    std::fprintf(stderr, "config: %s\n", errstr);
    return 1;
  }
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (rk == nullptr) {
    std::fprintf(stderr, "rd_kafka_new: %s\n", errstr);
    return 1;
  }
  rd_kafka_mock_cluster_t* cluster = rd_kafka_mock_cluster_new(rk, brokers);
  if (cluster == nullptr) {
    std::fprintf(stderr, "could not start the mock cluster\n");
    return 1;
  }
  for (const auto& [name, partitions] : topics) {
    if (rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(cluster, name.c_str(), partitions, 1); err) {
      std::fprintf(stderr, "topic %s: %s\n", name.c_str(), rd_kafka_err2str(err));
      return 1;
    }
  }
  // Without SA_RESTART, so that a signal interrupts the blocking read of stdin below.
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  std::printf("bootstrap=%s\n", rd_kafka_mock_cluster_bootstraps(cluster));
  std::fflush(stdout);
  char line[256];
  while (!stop_requested) {
    if (std::fgets(line, sizeof line, stdin) == nullptr) {
      if (std::feof(stdin) || errno != EINTR) break;
      std::clearerr(stdin);  // a signal: the loop condition decides
      continue;
    }
    std::string command(line);
    while (!command.empty() && (command.back() == '\n' || command.back() == '\r')) command.pop_back();
    if (!command.empty()) apply_command(cluster, brokers, command);
  }
  while (!stop_requested) pause();
  rd_kafka_mock_cluster_destroy(cluster);
  rd_kafka_destroy(rk);
  return 0;
}
