// publish_latency: publish-to-sink latency at a fixed rate. Publishes binary-mode events to
// http://HOST:PORT/PATH at --rate events/s for --seconds, runs the subscriber itself (an HTTP server on
// --sink-port that a trigger delivers to), and prints the latency from the start of each publish to the
// event's arrival at the sink (p50, p90, p99, max) as one JSON line.
//
//   publish_latency --target 127.0.0.1:8080 --path /brokers/default --sink-port 9100 [--rate 1000]
//                   [--seconds 10] [--publishers 4]
//
// With --path pointing at the sink itself (--target 127.0.0.1:9100 --path /direct) the same program
// measures the baseline: one HTTP hop with no broker in between.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

namespace {

using Clock = std::chrono::steady_clock;

std::string option(int argc, char** argv, const std::string& name, const std::string& fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == "--" + name) return argv[i + 1];
  return fallback;
}

double percentile(std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  auto index = static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1));
  return sorted[index];
}

}  // namespace

int main(int argc, char** argv) {
  const std::string target = option(argc, argv, "target", "127.0.0.1:8080");
  const std::string path = option(argc, argv, "path", "/brokers/default");
  const int sink_port = std::stoi(option(argc, argv, "sink-port", "9100"));
  const int rate = std::stoi(option(argc, argv, "rate", "1000"));
  const int seconds = std::stoi(option(argc, argv, "seconds", "10"));
  const int publishers = std::stoi(option(argc, argv, "publishers", "4"));
  const auto colon = target.rfind(':');
  const std::string host = target.substr(0, colon);
  const int port = std::stoi(target.substr(colon + 1));

  std::mutex mu;
  std::map<std::string, Clock::time_point> sent;
  std::vector<double> latencies_ms;
  std::atomic<std::size_t> received{0};
  auto record_arrival = [&](const std::string& id) {
    const auto now = Clock::now();
    std::lock_guard lock(mu);
    auto it = sent.find(id);
    if (it == sent.end()) return;
    latencies_ms.push_back(std::chrono::duration<double, std::milli>(now - it->second).count());
    sent.erase(it);
    ++received;
  };

  httplib::Server sink;
  sink.new_task_queue = [] { return new httplib::ThreadPool(16); };
  sink.set_tcp_nodelay(true);
  sink.Post(".*", [&](const httplib::Request& req, httplib::Response& res) {
    record_arrival(req.get_header_value("ce-id"));
    res.status = req.path == "/direct" ? 202 : 200;
  });
  if (!sink.bind_to_port("127.0.0.1", sink_port)) {
    std::cerr << "publish_latency: cannot listen on port " << sink_port << "\n";
    return 1;
  }
  std::thread sink_thread([&] { sink.listen_after_bind(); });

  const int total = rate * seconds;
  const auto interval = std::chrono::nanoseconds(1'000'000'000LL * publishers / rate);
  std::atomic<int> failed{0};
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int p = 0; p < publishers; ++p) {
    threads.emplace_back([&, p] {
      httplib::Client client(host, port);
      client.set_keep_alive(true);
      client.set_tcp_nodelay(true);
      auto next = start + interval * p / publishers;
      for (int i = p; i < total; i += publishers) {
        std::this_thread::sleep_until(next);
        next += interval;
        const std::string id = "lat-" + std::to_string(i);
        {
          std::lock_guard lock(mu);
          sent[id] = Clock::now();
        }
        httplib::Headers headers{
            {"ce-specversion", "1.0"}, {"ce-id", id}, {"ce-type", "bench.latency"}, {"ce-source", "/bench"}};
        auto res = client.Post(path, headers, R"({"bench":true})", "application/json");
        if (!res || res->status != 202) ++failed;
      }
    });
  }
  for (auto& t : threads) t.join();
  const double publish_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (received + static_cast<std::size_t>(failed) < static_cast<std::size_t>(total) &&
         Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  sink.stop();
  sink_thread.join();

  std::vector<double> sorted;
  {
    std::lock_guard lock(mu);
    sorted = latencies_ms;
  }
  std::sort(sorted.begin(), sorted.end());
  nlohmann::json out = {{"target", target + path},
                        {"rate_requested", rate},
                        {"rate_achieved", static_cast<double>(total) / publish_seconds},
                        {"events", total},
                        {"delivered", sorted.size()},
                        {"failed_publishes", failed.load()},
                        {"p50_ms", percentile(sorted, 0.50)},
                        {"p90_ms", percentile(sorted, 0.90)},
                        {"p99_ms", percentile(sorted, 0.99)},
                        {"max_ms", sorted.empty() ? 0.0 : sorted.back()}};
  std::cout << out.dump() << "\n";
  return failed == 0 && sorted.size() == static_cast<std::size_t>(total) ? 0 : 1;
}
