#include "core/log.hpp"

#include <mutex>

#include <spdlog/sinks/stdout_color_sinks.h>

namespace sluice::log {
namespace {
std::mutex mu;
spdlog::level::level_enum current = spdlog::level::info;
}  // namespace

std::shared_ptr<spdlog::logger> get(const std::string& component) {
  std::lock_guard lock(mu);
  if (auto existing = spdlog::get(component)) return existing;
  auto logger = spdlog::stderr_color_mt(component);
  logger->set_level(current);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] %v");
  return logger;
}

void set_level(const std::string& level) {
  std::lock_guard lock(mu);
  current = spdlog::level::from_str(level);
  spdlog::apply_all([](const std::shared_ptr<spdlog::logger>& l) { l->set_level(current); });
}

}  // namespace sluice::log
