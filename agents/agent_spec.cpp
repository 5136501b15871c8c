#include "agents/agent_spec.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <initializer_list>
#include <optional>
#include <set>

#include "core/duration.hpp"
#include "core/quantity.hpp"
#include "core/text.hpp"

namespace sluice::agents {

using nlohmann::json;

namespace {

constexpr std::size_t kMaxNameLength = 57;  // NAME-00001 stays within a 63-character DNS label

Error field_error(const std::string& path, std::string message) {
  return make_error(path, std::move(message));
}

std::string type_name(const json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "a list";
  return "an object";
}

std::string join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += sep;
    out += item;
  }
  return out;
}

/// Rejects keys outside `allowed` and `ignored` (ignored ones are Knative fields without local meaning).
Status check_keys(const json& obj, const std::string& path, std::initializer_list<std::string_view> allowed,
                  std::initializer_list<std::string_view> ignored = {}) {
  for (const auto& item : obj.items()) {
    const std::string& key = item.key();  // a named reference: clang 14 cannot capture structured bindings
    auto in = [&](std::initializer_list<std::string_view> list) {
      return std::find(list.begin(), list.end(), key) != list.end();
    };
    if (in(allowed) || in(ignored)) continue;
    std::vector<std::string> names(allowed.begin(), allowed.end());
    return field_error(path.empty() ? key : path + "." + key,
                       "unknown or unsupported field; expected one of: " + join(names, ", "));
  }
  return ok();
}

Result<const json*> require_object(const json& parent, const std::string& key, const std::string& path) {
  auto it = parent.find(key);
  if (it == parent.end() || it->is_null()) return field_error(path, "required object is missing");
  if (!it->is_object()) return field_error(path, "must be an object, got " + type_name(*it));
  return &*it;
}

/// The member as an object, or nullptr when absent/null.
Result<const json*> optional_object(const json& parent, const std::string& key, const std::string& path) {
  auto it = parent.find(key);
  if (it == parent.end() || it->is_null()) return static_cast<const json*>(nullptr);
  if (!it->is_object()) return field_error(path, "must be an object, got " + type_name(*it));
  return &*it;
}

Result<std::string> string_value(const json& v, const std::string& path) {
  if (!v.is_string()) return field_error(path, "must be a string, got " + type_name(v));
  return v.get<std::string>();
}

/// Integers may arrive as JSON numbers or, from YAML written with quotes, as decimal strings.
Result<std::int64_t> int_value(const json& v, const std::string& path) {
  if (v.is_number_integer()) return v.get<std::int64_t>();
  if (v.is_number_unsigned()) {
    auto u = v.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(INT64_MAX)) return field_error(path, "integer is too large");
    return static_cast<std::int64_t>(u);
  }
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (d == static_cast<double>(static_cast<std::int64_t>(d))) return static_cast<std::int64_t>(d);
    return field_error(path, "must be a whole number, got " + v.dump());
  }
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    std::int64_t out = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    if (ec == std::errc() && p == s.data() + s.size() && !s.empty()) return out;
    return field_error(path, "must be an integer, got \"" + s + "\"");
  }
  return field_error(path, "must be an integer, got " + type_name(v));
}

Result<int> int_in_range(const json& v, const std::string& path, std::int64_t lo, std::int64_t hi,
                         std::string_view what) {
  auto n = int_value(v, path);
  if (!n) return n.error();
  if (n.value() < lo || n.value() > hi) {
    return field_error(path, "must be " + std::string(what) + ", got " + std::to_string(n.value()));
  }
  return static_cast<int>(n.value());
}

Result<std::vector<std::string>> string_list(const json& v, const std::string& path) {
  if (!v.is_array()) return field_error(path, "must be a list of strings, got " + type_name(v));
  std::vector<std::string> out;
  for (std::size_t i = 0; i < v.size(); ++i) {
    auto s = string_value(v[i], path + "[" + std::to_string(i) + "]");
    if (!s) return s.error();
    out.push_back(std::move(s).value());
  }
  return out;
}

/// Annotation values are strings in Kubernetes; YAML without quotes gives numbers or booleans, which
/// are taken as their text.
Result<std::map<std::string, std::string>> annotations_of(const json& metadata, const std::string& path) {
  std::map<std::string, std::string> out;
  auto it = metadata.find("annotations");
  if (it == metadata.end() || it->is_null()) return out;
  if (!it->is_object()) return field_error(path, "must be an object of strings, got " + type_name(*it));
  for (const auto& [key, value] : it->items()) {
    if (value.is_string()) {
      out[key] = value.get<std::string>();
    } else if (value.is_number() || value.is_boolean()) {
      out[key] = value.dump();
    } else {
      return field_error(path + "[" + key + "]", "must be a string, got " + type_name(value));
    }
  }
  return out;
}

bool is_dns_label(std::string_view s, bool must_start_with_letter) {
  if (s.empty() || s.size() > 63) return false;
  auto lower_alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (must_start_with_letter ? !(s.front() >= 'a' && s.front() <= 'z') : !lower_alnum(s.front()))
    return false;
  if (!lower_alnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(), [&](char c) { return lower_alnum(c) || c == '-'; });
}

/// Kubernetes env var names: [-._a-zA-Z][-._a-zA-Z0-9]*.
bool is_env_name(std::string_view s) {
  if (s.empty()) return false;
  auto ok_char = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
  };
  if (std::isdigit(static_cast<unsigned char>(s.front()))) return false;
  return std::all_of(s.begin(), s.end(), ok_char);
}

bool is_gpu_class(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

/// "A100, L4" or ["A100", "L4"].
Result<std::vector<std::string>> gpu_class_list(const json& v, const std::string& path) {
  std::vector<std::string> raw;
  if (v.is_string()) {
    std::string_view s = v.get_ref<const std::string&>();
    std::size_t start = 0;
    while (start <= s.size()) {
      auto comma = s.find(',', start);
      if (comma == std::string_view::npos) comma = s.size();
      raw.push_back(std::string(trim_space(s.substr(start, comma - start))));
      start = comma + 1;
    }
  } else if (v.is_array()) {
    auto list = string_list(v, path);
    if (!list) return list.error();
    for (auto& item : list.value()) raw.push_back(std::string(trim_space(item)));
  } else {
    return field_error(path,
                       "must be a comma-separated string or a list of GPU classes, got " + type_name(v));
  }
  std::vector<std::string> out;
  for (auto& c : raw) {
    if (!is_gpu_class(c)) {
      return field_error(path, "\"" + c + "\" is not a GPU class; expected names such as A100, H100, L4, T4");
    }
    bool dup = std::any_of(out.begin(), out.end(), [&](const std::string& o) {
      return std::equal(o.begin(), o.end(), c.begin(), c.end(),
                        [](char a, char b) { return std::tolower(a) == std::tolower(b); });
    });
    if (dup) return field_error(path, "GPU class \"" + c + "\" is listed twice");
    out.push_back(c);
  }
  return out;
}

const std::set<std::string, std::less<>> kReservedEnv = {
    "PORT", "SLUICE_AGENT", "SLUICE_REVISION", "SLUICE_REPLICA", "CUDA_VISIBLE_DEVICES", "SLUICE_GPU_MEMORY"};

Result<std::vector<EnvVar>> parse_env(const json& v, const std::string& path) {
  if (!v.is_array()) return field_error(path, "must be a list of {name, value}, got " + type_name(v));
  std::vector<EnvVar> out;
  std::set<std::string> seen;
  for (std::size_t i = 0; i < v.size(); ++i) {
    std::string item_path = path + "[" + std::to_string(i) + "]";
    const json& e = v[i];
    if (!e.is_object()) return field_error(item_path, "must be an object {name, value}, got " + type_name(e));
    if (auto st = check_keys(e, item_path, {"name", "value", "valueFrom"}); !st) return st.error();
    auto name_it = e.find("name");
    if (name_it == e.end()) return field_error(item_path + ".name", "required");
    auto name = string_value(*name_it, item_path + ".name");
    if (!name) return name.error();
    if (!is_env_name(name.value())) {
      return field_error(item_path + ".name",
                         "\"" + name.value() +
                             "\" is not a valid variable name (letters, digits, '_', '-', '.'; "
                             "not starting with a digit)");
    }
    if (kReservedEnv.count(name.value())) {
      return field_error(item_path + ".name",
                         name.value() + " is set by sluice for every replica; choose another name");
    }
    if (!seen.insert(name.value()).second) {
      return field_error(item_path + ".name", name.value() + " is set twice");
    }
    std::string value;
    if (auto vit = e.find("value"); vit != e.end() && !vit->is_null()) {
      if (vit->is_string()) {
        value = vit->get<std::string>();
      } else if (vit->is_number() || vit->is_boolean()) {
        value = vit->dump();
      } else {
        return field_error(item_path + ".value", "must be a string, got " + type_name(*vit));
      }
    }
    std::optional<SecretRef> secret;
    if (auto from = e.find("valueFrom"); from != e.end() && !from->is_null()) {
      if (e.contains("value") && !e["value"].is_null())
        return field_error(item_path + ".valueFrom", "give value or valueFrom, not both");
      if (!is_secret_key_ref(*from))
        return field_error(item_path + ".valueFrom",
                           "only {secretKeyRef: {name, key}} is supported (a Secret of this server)");
      auto ref = parse_secret_key_ref(*from, item_path + ".valueFrom");
      if (!ref) return ref.error();
      secret = ref.value();
    }
    out.push_back({std::move(name).value(), std::move(value), std::move(secret)});
  }
  return out;
}

Result<ReadinessProbe> parse_probe(const json& v, const std::string& path) {
  if (!v.is_object()) return field_error(path, "must be an object, got " + type_name(v));
  if (auto st = check_keys(v, path,
                           {"httpGet", "tcpSocket", "periodSeconds", "failureThreshold",
                            "initialDelaySeconds", "timeoutSeconds", "successThreshold"});
      !st) {
    return st.error();
  }
  ReadinessProbe probe;
  bool http = v.contains("httpGet") && !v["httpGet"].is_null();
  bool tcp = v.contains("tcpSocket") && !v["tcpSocket"].is_null();
  if (http && tcp) return field_error(path, "set one of httpGet or tcpSocket, not both");
  auto parse_port = [&](const json& obj, const std::string& p) -> Status {
    auto it = obj.find("port");
    if (it == obj.end() || it->is_null()) return ok();
    auto port = int_in_range(*it, p + ".port", 0, 65535, "a port number (0 or absent: the replica's PORT)");
    if (!port) return port.error();
    probe.port = port.value();
    return ok();
  };
  if (http) {
    std::string p = path + ".httpGet";
    const json& g = v["httpGet"];
    if (!g.is_object()) return field_error(p, "must be an object, got " + type_name(g));
    if (auto st = check_keys(g, p, {"path", "port"}, {"scheme", "httpHeaders", "host"}); !st)
      return st.error();
    if (g.contains("scheme") && g["scheme"] != "HTTP")
      return field_error(p + ".scheme", "only HTTP is supported");
    probe.kind = ReadinessProbe::Kind::HttpGet;
    if (auto it = g.find("path"); it != g.end() && !it->is_null()) {
      auto s = string_value(*it, p + ".path");
      if (!s) return s.error();
      if (s.value().empty() || s.value().front() != '/') {
        return field_error(p + ".path", "must start with '/', got \"" + s.value() + "\"");
      }
      probe.path = std::move(s).value();
    }
    if (auto st = parse_port(g, p); !st) return st.error();
  } else if (tcp) {
    std::string p = path + ".tcpSocket";
    const json& t = v["tcpSocket"];
    if (!t.is_object()) return field_error(p, "must be an object, got " + type_name(t));
    if (auto st = check_keys(t, p, {"port"}, {"host"}); !st) return st.error();
    probe.kind = ReadinessProbe::Kind::TcpSocket;
    if (auto st = parse_port(t, p); !st) return st.error();
  }
  struct IntField {
    const char* key;
    int* out;
    std::int64_t lo;
    const char* what;
  };
  for (const IntField& f :
       {IntField{"periodSeconds", &probe.period_seconds, 0, "between 0 and 3600 (0: unset)"},
        IntField{"failureThreshold", &probe.failure_threshold, 1, "between 1 and 3600"},
        IntField{"initialDelaySeconds", &probe.initial_delay_seconds, 0, "between 0 and 3600"},
        IntField{"timeoutSeconds", &probe.timeout_seconds, 1, "between 1 and 3600"}}) {
    auto it = v.find(f.key);
    if (it == v.end() || it->is_null()) continue;
    auto n = int_in_range(*it, path + "." + f.key, f.lo, 3600, f.what);
    if (!n) return n.error();
    *f.out = n.value();
  }
  if (auto it = v.find("successThreshold"); it != v.end() && !it->is_null()) {
    auto n = int_in_range(*it, path + ".successThreshold", 1, 1, "1 (readiness needs one success)");
    if (!n) return n.error();
  }
  return probe;
}

/// A positive memory quantity ("8Gi", "512Mi", or a number of bytes).
Result<std::int64_t> memory_quantity(const json& value, const std::string& p) {
  std::string text;
  if (value.is_string()) {
    text = value.get<std::string>();
  } else if (value.is_number_integer() || value.is_number_unsigned()) {
    text = value.dump();
  } else {
    return field_error(p, "must be a memory quantity such as 8Gi, got " + type_name(value));
  }
  auto bytes = parse_quantity_bytes(text);
  if (!bytes)
    return field_error(p, bytes.error().message + "; expected a memory quantity such as 8Gi or 512Mi");
  if (bytes.value() <= 0) return field_error(p, "must be more than 0 (omit it for no limit)");
  return bytes.value();
}

struct Resources {
  GpuResources gpu;
  ProcessLimits limits;
};

/// resources.limits → GPU needs and process limits. cpu is accepted and not enforced.
Result<Resources> parse_resources(const json& v, const std::string& path) {
  Resources out;
  if (!v.is_object()) return field_error(path, "must be an object, got " + type_name(v));
  if (auto st = check_keys(v, path, {"limits"}, {"requests", "claims"}); !st) return st.error();
  auto limits = optional_object(v, "limits", path + ".limits");
  if (!limits) return limits.error();
  if (!limits.value()) return out;
  const json& l = *limits.value();
  for (const auto& [key, value] : l.items()) {
    std::string p = path + ".limits[" + key + "]";
    if (key == kGpuLimit) {
      auto n = int_in_range(value, p, 0, 64, "a whole number of GPUs between 0 and 64");
      if (!n) return n.error();
      out.gpu.whole_gpus = n.value();
    } else if (key == kGpuMemoryLimit) {
      auto bytes = memory_quantity(value, p);
      if (!bytes) return bytes.error();
      out.gpu.memory_bytes = bytes.value();
    } else if (key == "memory") {
      auto bytes = memory_quantity(value, p);
      if (!bytes) return bytes.error();
      if (bytes.value() < (4 << 20)) return field_error(p, "must be at least 4Mi");
      out.limits.memory_bytes = bytes.value();
    } else if (key == kOpenFilesLimit) {
      auto n = int_in_range(value, p, 16, 1048576, "a number of open files between 16 and 1048576");
      if (!n) return n.error();
      out.limits.open_files = n.value();
    } else if (key == "cpu" || key == "ephemeral-storage") {
      // Not enforced, but still a quantity: a manifest Kubernetes refuses is refused here too.
      std::optional<double> amount;
      if (value.is_number()) {
        amount = value.get<double>();
      } else if (value.is_string()) {
        if (auto q = parse_quantity(value.get<std::string>())) amount = q.value();
      }
      if (!amount) return field_error(p, "must be a quantity such as 500m, 2 or 1Gi");
      if (*amount < 0) return field_error(p, "cannot be negative, got " + value.dump());
      continue;
    } else {
      return field_error(p,
                         "unknown resource; expected nvidia.com/gpu (whole GPUs), sluice.dev/gpu-memory (a "
                         "share of one GPU, e.g. 8Gi), memory or sluice.dev/open-files (cpu is accepted and "
                         "not enforced)");
    }
  }
  if (out.gpu.whole_gpus > 0 && out.gpu.memory_bytes > 0) {
    return field_error(path + ".limits",
                       "set nvidia.com/gpu (whole GPUs) or sluice.dev/gpu-memory (a share of one "
                       "GPU), not both");
  }
  return out;
}

Result<std::vector<std::string>> command_list(const json& v, const std::string& path) {
  if (v.is_string()) return std::vector<std::string>{v.get<std::string>()};
  return string_list(v, path);
}

Result<Container> parse_container(const json& c, const std::string& path, bool knative) {
  if (!c.is_object()) return field_error(path, "must be an object, got " + type_name(c));
  if (auto st = check_keys(c, path, {"command", "args", "env", "readinessProbe", "resources", "workingDir"},
                           {"name", "image", "imagePullPolicy", "ports", "securityContext",
                            "terminationMessagePath", "terminationMessagePolicy"});
      !st) {
    return st.error();
  }
  Container out;
  auto cmd_it = c.find("command");
  if (cmd_it == c.end() || cmd_it->is_null() || (cmd_it->is_array() && cmd_it->empty())) {
    return field_error(path + ".command",
                       knative
                           ? "a Knative Service runs in Sluice only when its container has a command (the "
                             "program to start as a local process, e.g. [python3, agent.py]); the image is "
                             "ignored"
                           : "required: the program to start for each replica, e.g. [python3, agent.py]");
  }
  auto cmd = command_list(*cmd_it, path + ".command");
  if (!cmd) return cmd.error();
  if (cmd.value().front().empty()) return field_error(path + ".command[0]", "must name a program");
  out.command = std::move(cmd).value();
  if (auto it = c.find("args"); it != c.end() && !it->is_null()) {
    auto args = string_list(*it, path + ".args");
    if (!args) return args.error();
    out.args = std::move(args).value();
  }
  if (auto it = c.find("env"); it != c.end() && !it->is_null()) {
    auto env = parse_env(*it, path + ".env");
    if (!env) return env.error();
    out.env = std::move(env).value();
  }
  if (auto it = c.find("workingDir"); it != c.end() && !it->is_null()) {
    auto dir = string_value(*it, path + ".workingDir");
    if (!dir) return dir.error();
    out.working_dir = std::move(dir).value();
  }
  if (auto it = c.find("readinessProbe"); it != c.end() && !it->is_null()) {
    auto probe = parse_probe(*it, path + ".readinessProbe");
    if (!probe) return probe.error();
    out.readiness_probe = std::move(probe).value();
  }
  if (auto it = c.find("resources"); it != c.end() && !it->is_null()) {
    auto resources = parse_resources(*it, path + ".resources");
    if (!resources) return resources.error();
    out.gpu = std::move(resources.value().gpu);
    out.limits = resources.value().limits;
  }
  return out;
}

/// spec.template.spec.reserve: overrides applied to a copy of the main container.
Result<Container> parse_reserve(const json& r, const std::string& path, const Container& main) {
  if (!r.is_object()) return field_error(path, "must be an object, got " + type_name(r));
  if (auto st = check_keys(r, path, {"command", "args", "env", "resources", "gpuClasses"}); !st)
    return st.error();
  Container out = main;
  out.gpu = GpuResources{};
  if (auto it = r.find("command"); it != r.end() && !it->is_null()) {
    auto cmd = command_list(*it, path + ".command");
    if (!cmd) return cmd.error();
    if (cmd.value().empty() || cmd.value().front().empty()) {
      return field_error(path + ".command", "must name a program (omit it to use the main container's)");
    }
    out.command = std::move(cmd).value();
  }
  if (auto it = r.find("args"); it != r.end() && !it->is_null()) {
    auto args = string_list(*it, path + ".args");
    if (!args) return args.error();
    out.args = std::move(args).value();
  }
  if (auto it = r.find("env"); it != r.end() && !it->is_null()) {
    auto env = parse_env(*it, path + ".env");
    if (!env) return env.error();
    for (auto& e : env.value()) {
      auto same =
          std::find_if(out.env.begin(), out.env.end(), [&](const EnvVar& o) { return o.name == e.name; });
      if (same != out.env.end()) {
        *same = e;
      } else {
        out.env.push_back(e);
      }
    }
  }
  if (auto it = r.find("resources"); it != r.end() && !it->is_null()) {
    auto resources = parse_resources(*it, path + ".resources");
    if (!resources) return resources.error();
    out.gpu = std::move(resources.value().gpu);
    out.limits = resources.value().limits;
  }
  if (auto it = r.find("gpuClasses"); it != r.end() && !it->is_null()) {
    auto classes = gpu_class_list(*it, path + ".gpuClasses");
    if (!classes) return classes.error();
    if (!out.gpu.any()) {
      return field_error(path + ".gpuClasses",
                         "the reserve asks for no GPU; set " + path +
                             ".resources.limits nvidia.com/gpu or sluice.dev/gpu-memory");
    }
    out.gpu.classes = std::move(classes).value();
  }
  return out;
}

Result<std::chrono::milliseconds> duration_annotation(const std::map<std::string, std::string>& annotations,
                                                      std::string_view key, const std::string& path) {
  auto it = annotations.find(std::string(key));
  if (it == annotations.end()) return std::chrono::milliseconds(-1);
  auto d = parse_go_duration(it->second);
  if (!d) return field_error(path + "[" + std::string(key) + "]", d.error().message);
  return d.value();
}

Result<AgentTemplate> parse_template(const json& tmpl, const std::string& path, bool knative) {
  AgentTemplate out;
  if (auto st = check_keys(tmpl, path, {"metadata", "spec"}); !st) return st.error();
  std::string apath = path + ".metadata.annotations";
  if (auto meta = optional_object(tmpl, "metadata", path + ".metadata"); !meta) {
    return meta.error();
  } else if (meta.value()) {
    auto ann = annotations_of(*meta.value(), apath);
    if (!ann) return ann.error();
    out.annotations = std::move(ann).value();
  }
  auto spec = require_object(tmpl, "spec", path + ".spec");
  if (!spec) return spec.error();
  const json& s = *spec.value();
  std::string spath = path + ".spec";
  if (auto st = check_keys(s, spath, {"containers", "containerConcurrency", "timeoutSeconds", "reserve"},
                           {"serviceAccountName", "imagePullSecrets", "enableServiceLinks"});
      !st) {
    return st.error();
  }
  if (auto it = s.find("containerConcurrency"); it != s.end() && !it->is_null()) {
    auto n = int_in_range(*it, spath + ".containerConcurrency", 0, 1000,
                          "0 (unlimited) or 1 to 1000, as in Knative");
    if (!n) return n.error();
    out.container_concurrency = n.value();
  }
  if (auto it = s.find("timeoutSeconds"); it != s.end() && !it->is_null()) {
    auto n = int_in_range(*it, spath + ".timeoutSeconds", 1, 86400, "between 1 and 86400 seconds");
    if (!n) return n.error();
    out.timeout_seconds = n.value();
  }
  auto cit = s.find("containers");
  if (cit == s.end() || cit->is_null()) {
    return field_error(spath + ".containers",
                       "required: a list with one container (command, args, env, ...)");
  }
  if (!cit->is_array()) return field_error(spath + ".containers", "must be a list, got " + type_name(*cit));
  if (cit->size() != 1) {
    return field_error(spath + ".containers",
                       "must hold exactly one container, got " + std::to_string(cit->size()));
  }
  auto container = parse_container((*cit)[0], spath + ".containers[0]", knative);
  if (!container) return container.error();
  out.container = std::move(container).value();

  const auto& ann = out.annotations;
  auto key_path = [&](std::string_view key) { return apath + "[" + std::string(key) + "]"; };
  if (auto it = ann.find(std::string(kProtocolAnnotation)); it != ann.end()) {
    if (it->second == "http") {
      out.protocol = AgentProtocol::Http;
    } else if (it->second == "mcp") {
      out.protocol = AgentProtocol::Mcp;
    } else if (it->second == "a2a") {
      out.protocol = AgentProtocol::A2a;
    } else {
      return field_error(key_path(kProtocolAnnotation),
                         "must be http, mcp or a2a, got \"" + it->second + "\"");
    }
  }
  if (auto it = ann.find(std::string(kPriorityAnnotation)); it != ann.end()) {
    auto n = int_in_range(json(it->second), key_path(kPriorityAnnotation), -1000000, 1000000,
                          "an integer between -1000000 and 1000000 (higher wins GPUs)");
    if (!n) return n.error();
    out.priority = n.value();
  }
  if (auto it = ann.find(std::string(kMaxBufferedAnnotation)); it != ann.end()) {
    auto n = int_in_range(json(it->second), key_path(kMaxBufferedAnnotation), 1, 10000000,
                          "a number of requests between 1 and 10000000");
    if (!n) return n.error();
    out.max_buffered = static_cast<std::size_t>(n.value());
  }
  if (auto it = ann.find(std::string(kGpuClassesAnnotation)); it != ann.end()) {
    auto classes = gpu_class_list(json(it->second), key_path(kGpuClassesAnnotation));
    if (!classes) return classes.error();
    if (!out.container.gpu.any()) {
      return field_error(
          key_path(kGpuClassesAnnotation),
          "no GPU is requested; set spec.template.spec.containers[0].resources.limits nvidia.com/gpu "
          "or sluice.dev/gpu-memory");
    }
    out.container.gpu.classes = std::move(classes).value();
  }
  bool reserve_enabled = false;
  if (auto it = ann.find(std::string(kReserveInstanceAnnotation)); it != ann.end()) {
    if (it->second == "enable" || it->second == "enabled") {
      reserve_enabled = true;
    } else if (it->second != "disable" && it->second != "disabled") {
      return field_error(key_path(kReserveInstanceAnnotation),
                         "must be enable or disable, got \"" + it->second + "\"");
    }
  }
  auto rit = s.find("reserve");
  bool has_reserve = rit != s.end() && !rit->is_null();
  if (has_reserve && !reserve_enabled) {
    return field_error(spath + ".reserve", "a reserve spec needs the template annotation " +
                                               std::string(kReserveInstanceAnnotation) + ": enable");
  }
  if (reserve_enabled) {
    if (has_reserve) {
      auto reserve = parse_reserve(*rit, spath + ".reserve", out.container);
      if (!reserve) return reserve.error();
      out.reserve = std::move(reserve).value();
    } else {
      Container reserve = out.container;
      reserve.gpu = GpuResources{};
      out.reserve = std::move(reserve);
    }
  }
  if (auto d = duration_annotation(ann, kProgressDeadlineAnnotation, apath); !d) {
    return d.error();
  } else if (d.value().count() == 0) {
    return field_error(key_path(kProgressDeadlineAnnotation), "must be more than 0, e.g. 10m");
  }
  return out;
}

Result<std::vector<TrafficTarget>> parse_traffic(const json& v, const std::string& agent) {
  const std::string path = "spec.traffic";
  if (!v.is_array())
    return field_error(path, "must be a list of {revisionName | latestRevision, percent, tag}");
  std::vector<TrafficTarget> out;
  std::set<std::string> tags;
  int total = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    std::string p = path + "[" + std::to_string(i) + "]";
    const json& t = v[i];
    if (!t.is_object()) return field_error(p, "must be an object, got " + type_name(t));
    if (auto st = check_keys(t, p, {"revisionName", "latestRevision", "percent", "tag"}, {"url"}); !st) {
      return st.error();
    }
    TrafficTarget target;
    if (auto it = t.find("latestRevision"); it != t.end() && !it->is_null()) {
      if (!it->is_boolean()) return field_error(p + ".latestRevision", "must be true or false");
      target.latest_revision = it->get<bool>();
    }
    if (auto it = t.find("revisionName"); it != t.end() && !it->is_null()) {
      auto s = string_value(*it, p + ".revisionName");
      if (!s) return s.error();
      target.revision_name = std::move(s).value();
    }
    if (target.latest_revision && !target.revision_name.empty()) {
      return field_error(p, "set revisionName or latestRevision: true, not both");
    }
    if (!target.latest_revision && target.revision_name.empty()) {
      return field_error(p,
                         "set revisionName (e.g. " + revision_name(agent, 1) + ") or latestRevision: true");
    }
    if (!target.revision_name.empty() && !revision_generation(agent, target.revision_name)) {
      return field_error(p + ".revisionName", "\"" + target.revision_name + "\" is not a revision of " +
                                                  agent + "; revisions are named like " +
                                                  revision_name(agent, 1));
    }
    if (auto it = t.find("percent"); it != t.end() && !it->is_null()) {
      auto n = int_in_range(*it, p + ".percent", 0, 100, "between 0 and 100");
      if (!n) return n.error();
      target.percent = n.value();
    }
    if (auto it = t.find("tag"); it != t.end() && !it->is_null()) {
      auto s = string_value(*it, p + ".tag");
      if (!s) return s.error();
      // A DNS-1035 label, as Knative requires of tags.
      if (!is_dns_label(s.value(), true)) {
        return field_error(p + ".tag", "\"" + s.value() +
                                           "\" is not a valid tag (lowercase letters, digits and '-', "
                                           "starting with a letter, at most 63 characters)");
      }
      if (!tags.insert(s.value()).second)
        return field_error(p + ".tag", "tag \"" + s.value() + "\" is used twice");
      target.tag = std::move(s).value();
    }
    total += target.percent;
    out.push_back(std::move(target));
  }
  if (out.empty()) return out;
  if (total != 100) {
    return field_error(path, "percents add up to " + std::to_string(total) + "; they must add up to 100");
  }
  return out;
}

}  // namespace

std::string_view to_string(AgentProtocol protocol) {
  switch (protocol) {
    case AgentProtocol::Http:
      return "http";
    case AgentProtocol::Mcp:
      return "mcp";
    case AgentProtocol::A2a:
      return "a2a";
  }
  return "http";
}

Result<AgentSpec> parse_agent(const json& manifest) {
  if (!manifest.is_object())
    return field_error("", "an Agent manifest must be an object, got " + type_name(manifest));
  AgentSpec out;
  auto api_it = manifest.find("apiVersion");
  if (api_it == manifest.end() || !api_it->is_string()) {
    return field_error("apiVersion",
                       "required: sluice.dev/v1 (kind: Agent) or serving.knative.dev/v1 (kind: Service)");
  }
  out.api_version = api_it->get<std::string>();
  auto kind_it = manifest.find("kind");
  std::string kind = kind_it != manifest.end() && kind_it->is_string() ? kind_it->get<std::string>() : "";
  bool knative = false;
  if (out.api_version == "sluice.dev/v1") {
    if (kind != "Agent")
      return field_error("kind", "must be Agent for apiVersion sluice.dev/v1, got \"" + kind + "\"");
  } else if (out.api_version == "serving.knative.dev/v1") {
    if (kind != "Service") {
      return field_error("kind",
                         "must be Service for apiVersion serving.knative.dev/v1, got \"" + kind + "\"");
    }
    knative = true;
  } else {
    return field_error("apiVersion",
                       "must be sluice.dev/v1 (kind: Agent) or serving.knative.dev/v1 (kind: Service), "
                       "got \"" +
                           out.api_version + "\"");
  }
  if (auto st = check_keys(manifest, "", {"apiVersion", "kind", "metadata", "spec"}, {"status"}); !st) {
    return st.error();
  }
  auto meta = require_object(manifest, "metadata", "metadata");
  if (!meta) return meta.error();
  auto name_it = meta.value()->find("name");
  if (name_it == meta.value()->end() || name_it->is_null()) return field_error("metadata.name", "required");
  auto name = string_value(*name_it, "metadata.name");
  if (!name) return name.error();
  if (!is_dns_label(name.value(), true) || name.value().size() > kMaxNameLength) {
    return field_error("metadata.name",
                       "\"" + name.value() +
                           "\" is not a valid agent name: lowercase letters, digits and '-', "
                           "starting with a letter, at most 57 characters");
  }
  out.name = std::move(name).value();
  auto ann = annotations_of(*meta.value(), "metadata.annotations");
  if (!ann) return ann.error();
  out.annotations = std::move(ann).value();
  // As Knative's Service validation: on the agent's own metadata they would silently do nothing.
  for (const auto& [key, value] : out.annotations) {
    if (key.rfind("autoscaling.knative.dev/", 0) == 0) {
      return field_error("metadata.annotations[" + key + "]",
                         "autoscaling annotations must be put under spec.template.metadata.annotations to "
                         "work");
    }
  }

  auto spec = require_object(manifest, "spec", "spec");
  if (!spec) return spec.error();
  if (auto st = check_keys(*spec.value(), "spec", {"template", "traffic"}); !st) return st.error();
  auto tmpl = require_object(*spec.value(), "template", "spec.template");
  if (!tmpl) return tmpl.error();
  auto parsed = parse_template(*tmpl.value(), "spec.template", knative);
  if (!parsed) return parsed.error();
  out.revision_template = std::move(parsed).value();

  if (auto it = spec.value()->find("traffic"); it != spec.value()->end() && !it->is_null()) {
    auto traffic = parse_traffic(*it, out.name);
    if (!traffic) return traffic.error();
    out.traffic = std::move(traffic).value();
  }
  if (out.traffic.empty()) out.traffic.push_back(TrafficTarget{"", true, 100, ""});

  // Knative reads rollout-duration from the Service's own annotations; the template's are accepted too.
  auto rollout = duration_annotation(out.annotations, kRolloutDurationAnnotation, "metadata.annotations");
  if (!rollout) return rollout.error();
  if (rollout.value().count() < 0) {
    rollout = duration_annotation(out.revision_template.annotations, kRolloutDurationAnnotation,
                                  "spec.template.metadata.annotations");
    if (!rollout) return rollout.error();
  }
  out.rollout_duration = std::max(std::chrono::milliseconds(0), rollout.value());
  return out;
}

namespace {

json container_to_json(const Container& c) {
  json env = json::array();
  for (const auto& e : c.env) {
    if (e.secret)
      env.push_back({{"name", e.name}, {"valueFrom", to_json(*e.secret)}});
    else
      env.push_back({{"name", e.name}, {"value", e.value}});
  }
  const auto& p = c.readiness_probe;
  json probe = {{"kind", p.kind == ReadinessProbe::Kind::HttpGet ? "httpGet" : "tcpSocket"},
                {"path", p.kind == ReadinessProbe::Kind::HttpGet ? p.path : ""},
                {"port", p.port},
                {"periodSeconds", p.period_seconds},
                {"failureThreshold", p.failure_threshold},
                {"initialDelaySeconds", p.initial_delay_seconds},
                {"timeoutSeconds", p.timeout_seconds}};
  json out = {
      {"command", c.command},
      {"args", c.args},
      {"env", env},
      {"workingDir", c.working_dir},
      {"readinessProbe", probe},
      {"gpu",
       {{"wholeGpus", c.gpu.whole_gpus}, {"memoryBytes", c.gpu.memory_bytes}, {"classes", c.gpu.classes}}}};
  // Only when set, so that the hashes of revisions made before limits existed stay the same.
  if (c.limits.any())
    out["limits"] = {{"memoryBytes", c.limits.memory_bytes}, {"openFiles", c.limits.open_files}};
  return out;
}

}  // namespace

json template_to_json(const AgentTemplate& t) {
  json out = {{"annotations", t.annotations},
              {"containerConcurrency", t.container_concurrency},
              {"timeoutSeconds", t.timeout_seconds},
              {"container", container_to_json(t.container)},
              {"protocol", std::string(to_string(t.protocol))},
              {"priority", t.priority}};
  out["reserve"] = t.reserve ? container_to_json(*t.reserve) : json(nullptr);
  return out;
}

std::string template_hash(const AgentTemplate& revision_template) {
  // json::dump() of objects is ordered by key (std::map), so the text is canonical.
  std::string text = template_to_json(revision_template).dump();
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), digest.data(), &len, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 0xf]);
  }
  return out;
}

std::string template_hash(const AgentSpec& spec) {
  return template_hash(spec.revision_template);
}

std::string revision_name(const std::string& agent, int generation) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%05d", generation);
  return agent + "-" + buf;
}

std::optional<int> revision_generation(std::string_view agent, std::string_view revision) {
  if (revision.size() < agent.size() + 6 || revision.substr(0, agent.size()) != agent ||
      revision[agent.size()] != '-') {
    return std::nullopt;
  }
  auto digits = revision.substr(agent.size() + 1);
  if (digits.size() < 5) return std::nullopt;
  int gen = 0;
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), gen);
  if (ec != std::errc() || p != digits.data() + digits.size() || gen <= 0) return std::nullopt;
  return gen;
}

std::chrono::milliseconds drain_grace(const AgentTemplate& revision_template) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(revision_template.timeout_seconds) * 1200);
}

std::chrono::milliseconds progress_deadline(const AgentTemplate& revision_template) {
  auto it = revision_template.annotations.find(std::string(kProgressDeadlineAnnotation));
  if (it != revision_template.annotations.end()) {
    auto d = parse_go_duration(it->second);
    if (d && d.value().count() > 0) return d.value();
  }
  return std::chrono::seconds(600);
}

}  // namespace sluice::agents
