#include "core/log.hpp"

#include <mutex>
#include <stdexcept>

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
  // spdlog maps names it does not know to "off", which would silence every logger.
  const auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off")
    throw std::invalid_argument("unknown log level \"" + level +
                                "\" (valid: trace, debug, info, warn, error, critical, off)");
  std::lock_guard lock(mu);
  current = parsed;
  spdlog::apply_all([](const std::shared_ptr<spdlog::logger>& l) { l->set_level(current); });
}

}  // namespace sluice::log
