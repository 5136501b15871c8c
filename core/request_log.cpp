#include "core/request_log.hpp"

#include <algorithm>
#include <atomic>

#include "core/log.hpp"
#include "core/trace.hpp"

namespace sluice::request_log {
namespace {

std::atomic<bool> g_enabled{false};
std::vector<std::string>& fields() {
  static std::vector<std::string> f;
  return f;
}

}  // namespace

void configure(bool enabled, std::vector<std::string> selected) {
  fields() = std::move(selected);
  g_enabled = enabled;
}

bool enabled() {
  return g_enabled.load(std::memory_order_relaxed);
}

void write(nlohmann::json line) {
  const auto& selected = fields();
  if (!selected.empty()) {
    for (auto it = line.begin(); it != line.end();) {
      if (std::find(selected.begin(), selected.end(), it.key()) == selected.end())
        it = line.erase(it);
      else
        ++it;
    }
  }
  SLUICE_LOG(request, info, "{}", line.dump());
}

std::string trace_id_of(std::string_view traceparent) {
  auto tp = TraceParent::parse(traceparent);
  return tp ? tp->trace_id.str() : "";
}

}  // namespace sluice::request_log
