// gpu_agent: reports the GPUs sluice placed on this replica.
//
// GET / answers {"cuda_visible_devices", "sluice_gpu_memory", "agent", "revision", "replica"} and,
// when nvidia-smi is on PATH and devices were given, "nvidia_smi": its CSV lines for those devices.
// GET /healthz answers 200. Listens on $PORT; SIGTERM stops it.

#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "agent_server.hpp"

namespace {

nlohmann::json env_value(const char* name) {
  const char* v = std::getenv(name);
  return v ? nlohmann::json(std::string(v)) : nlohmann::json(nullptr);
}

/// nvidia-smi's view of `devices` ("0,2"), one line per GPU; null when nvidia-smi is absent or fails.
nlohmann::json query_nvidia_smi(const std::string& devices) {
  for (char c : devices) {
    if (!(std::isdigit(static_cast<unsigned char>(c)) || c == ',')) return nullptr;  // only plain indices
  }
  std::string cmd = "nvidia-smi --query-gpu=index,name,memory.total,memory.used --format=csv,noheader -i " +
                    devices + " 2>/dev/null";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (!pipe) return nullptr;
  std::string out;
  char buf[1024];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  if (::pclose(pipe) != 0) return nullptr;
  nlohmann::json lines = nlohmann::json::array();
  std::size_t start = 0;
  while (start < out.size()) {
    auto end = out.find('\n', start);
    if (end == std::string::npos) end = out.size();
    if (end > start) lines.push_back(out.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

}  // namespace

int main() {
  const sigset_t signals = example::block_stop_signals();

  const char* port_env = std::getenv("PORT");
  const int port = port_env ? std::atoi(port_env) : 8080;

  httplib::Server server;
  example::tune(server);
  server.Get("/healthz",
             [](const httplib::Request&, httplib::Response& res) { res.set_content("ok", "text/plain"); });
  server.Get("/", [](const httplib::Request&, httplib::Response& res) {
    nlohmann::json info = {{"cuda_visible_devices", env_value("CUDA_VISIBLE_DEVICES")},
                           {"sluice_gpu_memory", env_value("SLUICE_GPU_MEMORY")},
                           {"agent", env_value("SLUICE_AGENT")},
                           {"revision", env_value("SLUICE_REVISION")},
                           {"replica", env_value("SLUICE_REPLICA")}};
    const char* devices = std::getenv("CUDA_VISIBLE_DEVICES");
    if (devices && *devices) info["nvidia_smi"] = query_nvidia_smi(devices);
    res.set_content(info.dump(), "application/json");
  });

  const char* devices = std::getenv("CUDA_VISIBLE_DEVICES");
  return example::serve(server, port, signals, "gpu_agent",
                        std::string(" CUDA_VISIBLE_DEVICES=") + (devices ? devices : "(unset)"));
}
