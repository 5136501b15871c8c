// CLI verbs that talk to a running server: apply, get, delete, publish.

#include <algorithm>
#include <chrono>
#include <iostream>
#include <map>
#include <thread>
#include <random>
#include <sstream>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "agents/readiness.hpp"
#include "core/duration.hpp"
#include "core/http_binding.hpp"
#include "core/json_format.hpp"
#include "core/manifest.hpp"
#include "server/command.hpp"
#include "server/cli_client.hpp"
#include "server/resource_store.hpp"

namespace sluice {
namespace {

using cli::client_for;
using cli::report_failure;
using cli::server_of;
using cli::Target;

void ensure_no_extra(const std::vector<std::string>& args, std::size_t expected) {
  // An option left over is misspelt, not a name (`get brokers --bogus` used to look up broker "--bogus").
  for (const auto& arg : args)
    if (arg.size() > 1 && arg[0] == '-')
      throw std::runtime_error("unknown option " + arg + " (see sluice help)");
  if (args.size() > expected) throw std::runtime_error("unexpected argument " + args[expected]);
}

std::chrono::milliseconds parse_timeout(const std::string& text) {
  auto d = parse_duration(text);
  if (!d) throw std::runtime_error("--timeout: " + d.error().message);
  return d.value();
}

std::string ready_column(const nlohmann::json& resource);
std::string reason_column(const nlohmann::json& resource);
nlohmann::json ready_condition(const nlohmann::json& resource);

/// Polls every applied resource until all are Ready, printing each change of state as it happens.
/// Ready=Unknown (still starting) and a Ready=False that can clear by itself (a trigger whose broker
/// comes later, an agent waiting for its Secret) keep it waiting; a Ready=False that only a new apply
/// can clear (agents/readiness.hpp: the replicas crash-loop, missed the progress deadline) ends it at
/// once with exit code 1, as `kn service create --wait` does.
int wait_until_ready(httplib::Client& client, const Target& target, const nlohmann::json& applied,
                     std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::map<std::string, std::string> last;  // "kind/name" → "Ready (reason)"
  for (;;) {
    std::vector<std::string> waiting;
    for (const auto& item : applied) {
      const KindInfo* kind = find_kind(item.value("kind", ""));
      if (!kind) continue;
      const std::string label = kind->plural + "/" + item.value("name", "");
      auto res = client.Get("/apis/v1/" + kind->plural + "/" + item.value("name", ""));
      if (!res || res->status != 200) return report_failure(target, res);
      auto resource = nlohmann::json::parse(res->body, nullptr, false);
      const std::string ready = ready_column(resource);
      const std::string state =
          ready + (reason_column(resource).empty() ? "" : " (" + reason_column(resource) + ")");
      if (last[label] != state) {
        std::cout << label << ": Ready=" << state << std::endl;
        last[label] = state;
      }
      if (ready != "True") waiting.push_back(label + " " + state);
      const std::string reason = ready_condition(resource).value("reason", "");
      if (ready == agents::kReadyFalse && agents::failure_needs_new_apply(reason)) {
        std::cerr << "error: " << label << " failed: " << reason << ": " << reason_column(resource) << "\n";
        return 1;
      }
    }
    if (waiting.empty()) return 0;
    if (std::chrono::steady_clock::now() >= deadline) {
      std::cerr << "error: not ready after " << timeout.count() / 1000 << "s:";
      for (const auto& w : waiting) std::cerr << "\n  " << w;
      std::cerr << "\n";
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

int run_apply(const std::vector<std::string>& argv) {
  auto args = argv;
  auto target = server_of(args);
  const bool wait = cli::take_flag(args, "wait");
  const auto timeout = parse_timeout(cli::take_option(args, "timeout").value_or("120s"));
  std::vector<std::string> files;
  while (auto f = cli::take_option(args, "f")) files.push_back(*f);
  while (auto f = cli::take_option(args, "filename")) files.push_back(*f);
  ensure_no_extra(args, 0);
  if (files.empty()) throw std::runtime_error("apply needs -f FILE (or -f - for standard input)");
  std::string text;
  for (const auto& f : files) {
    auto content = cli::read_file_or_stdin(f);
    if (!text.empty()) text += "\n---\n";
    text += content;
  }
  // Parse locally first: a syntax error is reported without a round trip.
  auto docs = parse_manifests(text);
  if (!docs) {
    std::cerr << "error: " << docs.error().to_string() << "\n";
    return 1;
  }
  auto client = client_for(target);
  auto res = client.Post("/apis/v1/apply", nlohmann::json(docs.value()).dump(), "application/json");
  if (!res || res->status != 200) return report_failure(target, res);
  auto body = nlohmann::json::parse(res->body, nullptr, false);
  for (const auto& item : body.value("applied", nlohmann::json::array())) {
    std::string kind = item.value("kind", "");
    std::transform(kind.begin(), kind.end(), kind.begin(), [](unsigned char c) { return std::tolower(c); });
    std::cout << kind << "/" << item.value("name", "") << " " << item.value("action", "") << "\n";
  }
  return wait ? wait_until_ready(client, target, body.value("applied", nlohmann::json::array()), timeout) : 0;
}

nlohmann::json ready_condition(const nlohmann::json& resource) {
  if (!resource.is_object()) return nlohmann::json::object();
  for (const auto& c :
       resource.value("status", nlohmann::json::object()).value("conditions", nlohmann::json::array()))
    if (c.value("type", "") == "Ready") return c;
  return nlohmann::json::object();
}

std::string ready_column(const nlohmann::json& resource) {
  return ready_condition(resource).value("status", std::string(agents::kReadyUnknown));
}

std::string reason_column(const nlohmann::json& resource) {
  return ready_condition(resource).value("message", "");
}

/// Where an agent's traffic goes, as `kn service describe` sums it up: "echo-00002 90%, echo-00001 10%"
/// (each revision with a share once, largest first; tags and 0 % targets are in `get revisions`).
std::string traffic_summary(const nlohmann::json& status) {
  std::vector<std::pair<std::string, int>> shares;
  for (const auto& t : status.value("traffic", nlohmann::json::array())) {
    const std::string revision = t.value("revisionName", "");
    auto it = std::find_if(shares.begin(), shares.end(), [&](const auto& s) { return s.first == revision; });
    if (it == shares.end()) it = shares.insert(shares.end(), {revision, 0});
    it->second += t.value("percent", 0);
  }
  std::stable_sort(shares.begin(), shares.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  std::string text;
  for (const auto& [revision, percent] : shares)
    if (percent > 0) text += (text.empty() ? "" : ", ") + revision + " " + std::to_string(percent) + "%";
  return text.empty() ? "-" : text;
}

/// One revision's share of the traffic and the tags that reach it: "10% @canary".
std::string revision_traffic(const nlohmann::json& status, const nlohmann::json& revision) {
  std::string text = std::to_string(revision.value("traffic", 0)) + "%";
  for (const auto& t : status.value("traffic", nlohmann::json::array()))
    if (t.value("revisionName", "") == revision.value("name", "") && t.contains("tag"))
      text += " @" + t.value("tag", "");
  return text;
}

void print_table(std::ostream& out, const KindInfo& kind, const std::vector<nlohmann::json>& items) {
  std::vector<std::vector<std::string>> rows{{"NAME", "READY", "GENERATION", "REASON"}};
  if (kind.kind == "Trigger") rows[0] = {"NAME", "BROKER", "SUBSCRIBER", "READY", "REASON"};
  if (kind.kind == "Agent") rows[0] = {"NAME", "READY", "GENERATION", "LATESTREADY", "TRAFFIC", "REASON"};
  for (const auto& r : items) {
    std::string name = r["metadata"].value("name", "");
    if (kind.kind == "Trigger") {
      const auto& spec = r.value("spec", nlohmann::json::object());
      std::string subscriber;
      if (spec.contains("subscriber")) {
        // With a ref, `uri` is a path on it (Agent/summarizer/events), as Destination::to_string shows it.
        const auto& s = spec["subscriber"];
        const auto ref = s.value("ref", nlohmann::json::object());
        subscriber = ref.empty() ? s.value("uri", "")
                                 : ref.value("kind", "") + "/" + ref.value("name", "") + s.value("uri", "");
      }
      rows.push_back({name, spec.value("broker", ""), subscriber, ready_column(r), reason_column(r)});
    } else if (kind.kind == "Agent") {
      const auto status = r.value("status", nlohmann::json::object());
      const std::string latest_ready = status.value("latestReadyRevisionName", "");
      rows.push_back({name, ready_column(r), std::to_string(r["metadata"].value("generation", 1)),
                      latest_ready.empty() ? "-" : latest_ready, traffic_summary(status), reason_column(r)});
    } else {
      rows.push_back(
          {name, ready_column(r), std::to_string(r["metadata"].value("generation", 1)), reason_column(r)});
    }
  }
  cli::print_columns(out, rows);
}

/// `get revisions [AGENT]`: the revisions of every agent (or one), newest first per agent, as
/// `kn revision list` shows them, from the agents' status.
std::string render_revisions(const nlohmann::json& body, bool one, const std::string& output) {
  std::vector<nlohmann::json> agents;
  if (one)
    agents.push_back(body);
  else
    for (const auto& a : body.value("items", nlohmann::json::array())) agents.push_back(a);
  auto entries = nlohmann::json::array();
  std::vector<std::vector<std::string>> rows{
      {"AGENT", "REVISION", "TRAFFIC", "READY", "REPLICAS", "GENERATION", "REASON"}};
  for (const auto& a : agents) {
    const std::string agent = a.value("metadata", nlohmann::json::object()).value("name", "");
    const auto status = a.value("status", nlohmann::json::object());
    const auto revisions = status.value("revisions", nlohmann::json::array());
    for (auto r = revisions.rbegin(); r != revisions.rend(); ++r) {
      auto entry = *r;
      entry["agent"] = agent;
      entries.push_back(entry);
      rows.push_back({agent, r->value("name", ""), revision_traffic(status, *r),
                      r->value("readyStatus", r->value("ready", false) ? "True" : "False"),
                      std::to_string(r->value("readyReplicas", 0)) + "/" +
                          std::to_string(r->value("desiredReplicas", 0)),
                      std::to_string(r->value("generation", 0)), r->value("reason", "")});
    }
  }
  std::ostringstream out;
  if (output == "json")
    out << entries.dump(2) << "\n";
  else if (output == "yaml")
    out << to_yaml(entries);
  else if (entries.empty())
    out << "No revisions found.\n";
  else
    cli::print_columns(out, rows);
  return out.str();
}

int run_get(const std::vector<std::string>& argv) {
  auto args = argv;
  auto target = server_of(args);
  std::string output =
      cli::take_option(args, "o").value_or(cli::take_option(args, "output").value_or("table"));
  if (output != "table" && output != "json" && output != "yaml")
    throw std::runtime_error("-o must be json or yaml, got " + output);
  const bool watch = cli::take_flag(args, "w") || cli::take_flag(args, "watch");
  ensure_no_extra(args, 2);
  if (args.empty()) throw std::runtime_error("get needs a KIND (brokers, triggers, agents, revisions, …)");
  if (args[0] == "revisions" || args[0] == "revision" || args[0] == "rev") {
    const bool one = args.size() > 1;
    const std::string path = "/apis/v1/agents" + (one ? "/" + cli::escape_path_segment(args[1]) : "");
    return show(target, path, watch,
                [&](const nlohmann::json& body) { return render_revisions(body, one, output); });
  }
  const KindInfo* kind = find_kind(args[0]);
  if (!kind) throw std::runtime_error("unknown kind \"" + args[0] + "\"");
  std::string path = "/apis/v1/" + kind->plural + (args.size() > 1 ? "/" + args[1] : "");
  const bool one = args.size() > 1;
  return show(target, path, watch, [&](const nlohmann::json& body) {
    std::ostringstream out;
    if (output == "json") {
      out << body.dump(2) << "\n";
    } else if (output == "yaml") {
      out << to_yaml(body);
    } else {
      std::vector<nlohmann::json> items;
      if (one)
        items.push_back(body);
      else
        for (const auto& i : body.value("items", nlohmann::json::array())) items.push_back(i);
      if (items.empty())
        out << "No " << kind->plural << " found.\n";
      else
        print_table(out, *kind, items);
    }
    return out.str();
  });
}

int run_delete(const std::vector<std::string>& argv) {
  auto args = argv;
  auto target = server_of(args);
  ensure_no_extra(args, 2);
  if (args.size() != 2) throw std::runtime_error("delete needs KIND NAME");
  const KindInfo* kind = find_kind(args[0]);
  if (!kind) throw std::runtime_error("unknown kind \"" + args[0] + "\"");
  auto client = client_for(target);
  auto res = client.Delete("/apis/v1/" + kind->plural + "/" + args[1]);
  if (!res || res->status != 200) return report_failure(target, res);
  std::string lower = kind->kind;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  std::cout << lower << "/" << args[1] << " deleted\n";
  return 0;
}

std::string random_id() {
  std::random_device rd;
  std::mt19937_64 gen(rd());
  std::uniform_int_distribution<std::uint64_t> dist;
  char buf[40];
  auto a = dist(gen), b = dist(gen);
  std::snprintf(buf, sizeof buf, "%08x-%04x-4%03x-%04x-%012llx", unsigned(a >> 32),
                unsigned((a >> 16) & 0xffff), unsigned(a & 0xfff), unsigned(0x8000 | (b >> 48 & 0x3fff)),
                static_cast<unsigned long long>(b & 0xffffffffffffULL));
  return buf;
}

/// --data without --content-type must be JSON (it is sent as application/json); so must data whose
/// --content-type is a JSON media type. Anything else is refused rather than sent with a guessed type.
void check_json_data(const std::string& data, bool typed) {
  if (nlohmann::json::accept(data)) return;
  try {
    auto parsed = nlohmann::json::parse(data);  // only for the parse error's words
  } catch (const nlohmann::json::parse_error& e) {
    std::string why = e.what();
    if (auto at = why.find("] "); why.rfind("[json.exception", 0) == 0 && at != std::string::npos)
      why.erase(0, at + 2);
    // "last read: '…'" quotes the input: keep it only when it prints as it is (not binary data).
    const bool printable =
        std::all_of(why.begin(), why.end(), [](unsigned char c) { return c >= 0x20 && c < 0x7f; });
    if (auto quoted = why.find("; last read:"); !printable && quoted != std::string::npos) why.erase(quoted);
    throw std::runtime_error("--data is not valid JSON: " + why +
                             (typed ? ""
                                    : "; use --content-type to send other data (text/plain, "
                                      "application/octet-stream, …)"));
  }
}

/// --ext sets extension attributes; each context attribute has its own option.
std::string context_attribute_refusal(const std::string& name) {
  static const std::map<std::string, std::string> kOption{{"id", "--id"},
                                                          {"source", "--source"},
                                                          {"type", "--type"},
                                                          {"subject", "--subject"},
                                                          {"time", "--time"},
                                                          {"dataschema", "--dataschema"},
                                                          {"datacontenttype", "--content-type"}};
  auto it = kOption.find(name);
  if (it == kOption.end())
    return "--ext " + name + ": " + name + " is a CloudEvents context attribute, not an extension " +
           "(sluice publishes CloudEvents 1.0)";
  return "--ext " + name + ": " + name + " is a CloudEvents context attribute, not an extension; use " +
         it->second;
}

int run_publish(const std::vector<std::string>& argv) {
  auto args = argv;
  auto target = server_of(args);
  CloudEvent event;
  event.type = cli::take_option(args, "type").value_or("");
  event.source = cli::take_option(args, "source").value_or("");
  event.id = cli::take_option(args, "id").value_or(random_id());
  if (auto subject = cli::take_option(args, "subject")) event.subject = *subject;
  if (auto time = cli::take_option(args, "time")) event.time = *time;
  if (auto dataschema = cli::take_option(args, "dataschema")) event.dataschema = *dataschema;
  auto content_type = cli::take_option(args, "content-type");
  if (auto data = cli::take_option(args, "data")) {
    event.data = data->size() > 1 && (*data)[0] == '@' ? cli::read_file_or_stdin(data->substr(1)) : *data;
    event.datacontenttype = content_type.value_or("application/json");
    if (event.data_is_json()) check_json_data(*event.data, content_type.has_value());
  } else if (content_type) {
    throw std::runtime_error("--content-type needs --data");
  }
  while (auto ext = cli::take_option(args, "ext")) {
    auto eq = ext->find('=');
    if (eq == std::string::npos) throw std::runtime_error("--ext expects NAME=VALUE, got " + *ext);
    const std::string name = ext->substr(0, eq);
    if (is_context_attribute(name)) throw std::runtime_error(context_attribute_refusal(name));
    event.set_attribute(name, ext->substr(eq + 1));
  }
  for (const auto& arg : args)
    if (arg.size() > 1 && arg[0] == '-')
      throw std::runtime_error("unknown option " + arg + " (see sluice help)");
  if (args.size() != 1) throw std::runtime_error("publish needs exactly one BROKER");
  if (event.type.empty()) throw std::runtime_error("publish needs --type");
  if (event.source.empty()) throw std::runtime_error("publish needs --source");
  auto violations = validate(event);
  if (!violations.empty()) {
    for (const auto& v : violations) std::cerr << "error: " << v.attribute << ": " << v.message << "\n";
    return 1;
  }
  auto message = encode_http(event, HttpMode::Binary);
  httplib::Headers headers;
  std::string body_type;  // none without data: the event gets no datacontenttype
  for (const auto& [k, v] : message.headers) {
    if (k == "content-type" || k == "Content-Type")
      body_type = v;
    else
      headers.emplace(k, v);
  }
  auto client = client_for(target);
  auto res = client.Post("/brokers/" + args[0], headers, message.body, body_type);
  if (!res || res->status != 202) return report_failure(target, res);
  std::cout << event.id << "\n";
  return 0;
}

SLUICE_COMMAND(
    "apply",
    "-f FILE|- [--wait [--timeout 120s]] [--server URL]  create or update resources from YAML/JSON "
    "(--wait: until every one is Ready)",
    run_apply);
SLUICE_COMMAND("get",
               "KIND [NAME] [-o json|yaml] [-w] [--server URL]  show resources with status (-w: watch); "
               "`get revisions [AGENT]`: agent revisions with traffic, readiness and replicas",
               run_get);
SLUICE_COMMAND("delete", "KIND NAME [--server URL]  delete a resource", run_delete);
SLUICE_COMMAND("publish",
               "BROKER --type T --source S [--id I] [--subject S] [--time T] [--dataschema URI] "
               "[--data JSON|@file [--content-type TYPE]] [--ext k=v]... [--server URL]  publish one "
               "CloudEvent",
               run_publish);

}  // namespace
}  // namespace sluice
