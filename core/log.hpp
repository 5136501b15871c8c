#pragma once
// One named spdlog logger per component; SLUICE_LOG checks the level before formatting.
//
//   SLUICE_LOG(broker, info, "[broker={}] appended {} events", name, n);
// Levels are spdlog's: trace, debug, info, warn, err, critical.

#include <memory>
#include <string>

#include <spdlog/spdlog.h>

namespace sluice::log {

/// The logger of a component ("broker", "trigger", "agents", …), created on first use.
std::shared_ptr<spdlog::logger> get(const std::string& component);

/// Sets the level of every component logger ("trace", "debug", "info", "warn", "error", "critical",
/// "off"). Throws std::invalid_argument, naming the valid levels, for any other name.
void set_level(const std::string& level);

}  // namespace sluice::log

#define SLUICE_LOG(component, lvl, ...)                                \
  do {                                                                 \
    static const auto sluice_logger_ = ::sluice::log::get(#component); \
    if (sluice_logger_->should_log(spdlog::level::lvl)) {              \
      sluice_logger_->log(spdlog::level::lvl, __VA_ARGS__);            \
    }                                                                  \
  } while (0)
