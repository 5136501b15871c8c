// echo_agent: a plain HTTP agent that accepts CloudEvents and optionally answers with a new one.
//
//   PORT        where to listen (sluice sets it; default 8080)
//   REPLY_TYPE  when set, every event is answered with a CloudEvent of this type in binary mode,
//               carrying the same data (an agent chain: the reply re-enters the broker)
//   REPLY_SOURCE  the reply's source (default /agents/$SLUICE_AGENT)
//   REPORT_ENV  comma-separated variable names whose values GET / shows under "env" (for tests)
//
// Accepts binary mode (ce-* headers, body = data) and structured mode
// (Content-Type: application/cloudevents+json). GET /healthz answers 200; GET / describes the replica
// (its ids, pid, events seen, and the open files limit it runs with).
// Every response carries x-sluice-revision and x-sluice-replica so that tests can see who answered.
// SIGTERM: stop accepting, finish requests in flight, exit 0.

#include <signal.h>
#include <sys/resource.h>

#include <atomic>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "agent_server.hpp"

namespace {

using example::env_or;

struct Event {
  std::string id, source, type, specversion, datacontenttype, data;
  bool structured = false;
};

bool read_event(const httplib::Request& req, Event& ev, std::string& error) {
  std::string content_type = req.get_header_value("Content-Type");
  if (content_type.rfind("application/cloudevents+json", 0) == 0) {
    auto j = nlohmann::json::parse(req.body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      error = "structured CloudEvent is not a JSON object";
      return false;
    }
    ev.structured = true;
    ev.id = j.value("id", "");
    ev.source = j.value("source", "");
    ev.type = j.value("type", "");
    ev.specversion = j.value("specversion", "");
    ev.datacontenttype = j.value("datacontenttype", "application/json");
    if (j.contains("data_base64")) {
      ev.data = j["data_base64"].get<std::string>();  // echoed as is (still base64)
    } else if (j.contains("data")) {
      ev.data = j["data"].is_string() && ev.datacontenttype.find("json") == std::string::npos
                    ? j["data"].get<std::string>()
                    : j["data"].dump();
    }
  } else {
    ev.id = req.get_header_value("ce-id");
    ev.source = req.get_header_value("ce-source");
    ev.type = req.get_header_value("ce-type");
    ev.specversion = req.get_header_value("ce-specversion");
    ev.datacontenttype = content_type;
    ev.data = req.body;
  }
  if (ev.id.empty() || ev.source.empty() || ev.type.empty() || ev.specversion.empty()) {
    error = "not a CloudEvent: id, source, type and specversion are required";
    return false;
  }
  return true;
}

}  // namespace

int main() {
  // Block SIGTERM/SIGINT in every thread; one thread waits for them and stops the server.
  const sigset_t signals = example::block_stop_signals();

  const int port = std::atoi(env_or("PORT", "8080").c_str());
  const std::string agent = env_or("SLUICE_AGENT", "echo");
  const std::string revision = env_or("SLUICE_REVISION", "");
  const std::string replica = env_or("SLUICE_REPLICA", "");
  const std::string reply_type = env_or("REPLY_TYPE", "");
  const std::string reply_source = env_or("REPLY_SOURCE", "/agents/" + agent);
  std::atomic<long> events{0};
  std::mutex out_mu;

  httplib::Server server;
  example::tune(server);
  server.set_post_routing_handler([&](const httplib::Request&, httplib::Response& res) {
    res.set_header("x-sluice-revision", revision);
    res.set_header("x-sluice-replica", replica);
  });
  server.Get("/healthz",
             [](const httplib::Request&, httplib::Response& res) { res.set_content("ok", "text/plain"); });
  server.Get("/", [&](const httplib::Request&, httplib::Response& res) {
    struct rlimit files {};
    ::getrlimit(RLIMIT_NOFILE, &files);
    struct rlimit address_space {};
    ::getrlimit(RLIMIT_AS, &address_space);
    nlohmann::json info = {
        {"agent", agent},
        {"revision", revision},
        {"replica", replica},
        {"pid", ::getpid()},
        {"events", events.load()},
        {"reply_type", reply_type},
        {"open_files_limit", static_cast<long long>(files.rlim_cur)},
        {"address_space_limit",
         address_space.rlim_cur == RLIM_INFINITY ? -1 : static_cast<long long>(address_space.rlim_cur)}};
    std::stringstream names(env_or("REPORT_ENV", ""));
    for (std::string name; std::getline(names, name, ',');)
      if (!name.empty()) info["env"][name] = env_or(name.c_str(), "");
    res.set_content(info.dump(), "application/json");
  });
  server.Post(R"(/.*)", [&](const httplib::Request& req, httplib::Response& res) {
    Event ev;
    std::string error;
    if (!read_event(req, ev, error)) {
      res.status = 400;
      res.set_content(nlohmann::json{{"error", error}}.dump(), "application/json");
      return;
    }
    long n = ++events;
    {
      std::lock_guard lock(out_mu);
      std::cout << "event #" << n << " id=" << ev.id << " type=" << ev.type << " source=" << ev.source
                << " mode=" << (ev.structured ? "structured" : "binary") << " bytes=" << ev.data.size()
                << std::endl;
    }
    res.status = 200;
    if (reply_type.empty()) return;
    res.set_header("ce-id", ev.id + "-reply-" + std::to_string(n));
    res.set_header("ce-source", reply_source);
    res.set_header("ce-type", reply_type);
    res.set_header("ce-specversion", "1.0");
    res.set_content(ev.data, ev.datacontenttype.empty() ? "application/json" : ev.datacontenttype.c_str());
  });

  const int code = example::serve(
      server, port, signals, "echo_agent",
      " (agent=" + agent + " revision=" + revision + " replica=" + replica + ")", [](int sig) {
        std::cout << "echo_agent: signal " << sig << ", finishing requests in flight" << std::endl;
      });
  if (code == 0) std::cout << "echo_agent: stopped after " << events.load() << " events" << std::endl;
  return code;
}
