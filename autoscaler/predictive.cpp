#include "autoscaler/predictive.hpp"

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "autoscaler/window.hpp"
#include "core/fs.hpp"

namespace sluice::autoscaler {
namespace {

constexpr std::int64_t kDayMs = 24LL * 3600 * 1000;
constexpr std::int64_t kWeekMs = 7 * kDayMs;
constexpr std::string_view kFormat = "sluice.predictive/v1";

std::int64_t positive_mod(std::int64_t a, std::int64_t b) {
  return ((a % b) + b) % b;
}

bool valid_options(const PredictiveOptions& o) {
  return o.slot.count() > 0 && kDayMs % o.slot.count() == 0 && o.smoothing > 0 && o.smoothing <= 1;
}

}  // namespace

PredictiveModel::PredictiveModel(PredictiveOptions options)
    : options_(valid_options(options) ? options : PredictiveOptions{}) {
  daily_.resize(static_cast<std::size_t>(kDayMs / options_.slot.count()));
  weekly_.resize(static_cast<std::size_t>(kWeekMs / options_.slot.count()));
}

std::int64_t PredictiveModel::absolute_slot_of(WallTime t) const {
  const auto ms = std::chrono::duration_cast<Millis>(t.time_since_epoch()).count();
  return floor_div(ms, options_.slot.count());
}

void PredictiveModel::observe(WallTime wall, double demand) {
  if (!std::isfinite(demand) || demand < 0) demand = 0;
  const std::int64_t slot = absolute_slot_of(wall);
  if (has_current_ && slot == current_slot_) {
    current_peak_ = std::max(current_peak_, demand);
    return;
  }
  if (has_current_ && slot > current_slot_) fold(current_slot_, current_peak_);
  has_current_ = true;
  current_slot_ = slot;
  current_peak_ = demand;
}

void PredictiveModel::fold(std::int64_t absolute_slot, double peak) {
  auto update = [&](Slot& s) {
    const double blended =
        s.count == 0 ? peak : options_.smoothing * peak + (1 - options_.smoothing) * s.value;
    s.value = static_cast<float>(std::min(blended, 3.0e38));
    if (s.count < UINT32_MAX) ++s.count;
  };
  update(daily_[static_cast<std::size_t>(
      positive_mod(absolute_slot, static_cast<std::int64_t>(daily_.size())))]);
  update(weekly_[static_cast<std::size_t>(
      positive_mod(absolute_slot, static_cast<std::int64_t>(weekly_.size())))]);
}

std::optional<double> PredictiveModel::slot_forecast(std::int64_t absolute_slot) const {
  const Slot& w = weekly_[static_cast<std::size_t>(
      positive_mod(absolute_slot, static_cast<std::int64_t>(weekly_.size())))];
  if (w.count >= options_.min_observations) return static_cast<double>(w.value);
  const Slot& d =
      daily_[static_cast<std::size_t>(positive_mod(absolute_slot, static_cast<std::int64_t>(daily_.size())))];
  if (d.count >= options_.min_observations) return static_cast<double>(d.value);
  return std::nullopt;
}

std::optional<double> PredictiveModel::forecast(WallTime from, WallTime to) const {
  std::int64_t first = absolute_slot_of(from);
  std::int64_t last = absolute_slot_of(to);
  if (last < first) std::swap(first, last);
  last = std::min<std::int64_t>(last, first + static_cast<std::int64_t>(weekly_.size()) - 1);
  std::optional<double> peak;
  for (std::int64_t s = first; s <= last; ++s) {
    if (auto v = slot_forecast(s)) peak = std::max(peak.value_or(0.0), *v);
  }
  return peak;
}

std::int32_t PredictiveModel::desired_pods(WallTime now, Millis lead, double target_value) const {
  if (!(target_value > 0)) return 0;
  auto peak = forecast(now, now + std::max(lead, Millis(0)));
  if (!peak || !(*peak > 0)) return 0;
  const double pods = std::ceil(*peak / target_value);
  return pods >= 2147483647.0 ? INT32_MAX : static_cast<std::int32_t>(pods);
}

std::string PredictiveModel::to_json() const {
  nlohmann::json doc;
  doc["format"] = kFormat;
  doc["slot_ms"] = options_.slot.count();
  doc["smoothing"] = options_.smoothing;
  doc["min_observations"] = options_.min_observations;
  auto dump = [](const std::vector<Slot>& slots) {
    nlohmann::json out = nlohmann::json::array();
    for (std::size_t i = 0; i < slots.size(); ++i) {
      if (slots[i].count > 0) out.push_back({i, slots[i].value, slots[i].count});
    }
    return out;
  };
  doc["daily"] = dump(daily_);
  doc["weekly"] = dump(weekly_);
  if (has_current_) doc["current"] = {{"slot", current_slot_}, {"peak", current_peak_}};
  return doc.dump();
}

Result<PredictiveModel> PredictiveModel::from_json(std::string_view text) {
  auto doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return make_error("predictive profile", "is not a JSON object");
  if (doc.value("format", "") != kFormat) {
    return make_error("predictive profile", "format must be \"" + std::string(kFormat) + "\"");
  }
  auto number = [&](const char* key) -> std::optional<double> {
    auto it = doc.find(key);
    if (it == doc.end() || !it->is_number()) return std::nullopt;
    return it->get<double>();
  };
  auto slot_ms = number("slot_ms");
  auto smoothing = number("smoothing");
  auto min_obs = number("min_observations");
  if (!slot_ms || !smoothing || !min_obs || *min_obs < 0) {
    return make_error("predictive profile", "needs slot_ms, smoothing and min_observations");
  }
  PredictiveOptions options{Millis(static_cast<std::int64_t>(*slot_ms)), *smoothing,
                            static_cast<std::uint32_t>(*min_obs)};
  if (!valid_options(options)) {
    return make_error("predictive profile", "slot_ms must divide a day and smoothing be in (0, 1]");
  }
  PredictiveModel model(options);
  auto load_slots = [](const nlohmann::json& arr, std::vector<Slot>& slots, const char* name) -> Status {
    if (!arr.is_array()) return make_error(std::string("predictive profile.") + name, "must be an array");
    for (const auto& e : arr) {
      if (!e.is_array() || e.size() != 3 || !e[0].is_number_unsigned() || !e[1].is_number() ||
          !e[2].is_number_unsigned()) {
        return make_error(std::string("predictive profile.") + name, "entries must be [slot, value, count]");
      }
      const auto index = e[0].get<std::uint64_t>();
      if (index >= slots.size()) {
        return make_error(std::string("predictive profile.") + name,
                          "slot " + std::to_string(index) + " out of range");
      }
      slots[index] =
          Slot{static_cast<float>(std::clamp(e[1].get<double>(), 0.0, 3.0e38)), e[2].get<std::uint32_t>()};
    }
    return ok();
  };
  if (auto st = load_slots(doc.value("daily", nlohmann::json::array()), model.daily_, "daily"); !st)
    return st.error();
  if (auto st = load_slots(doc.value("weekly", nlohmann::json::array()), model.weekly_, "weekly"); !st) {
    return st.error();
  }
  if (auto it = doc.find("current"); it != doc.end() && it->is_object()) {
    auto slot = it->find("slot");
    auto peak = it->find("peak");
    if (slot != it->end() && slot->is_number_integer() && peak != it->end() && peak->is_number()) {
      model.has_current_ = true;
      model.current_slot_ = slot->get<std::int64_t>();
      model.current_peak_ = peak->get<double>();
    }
  }
  return model;
}

Status PredictiveModel::save(const std::string& path) const {
  return write_file_atomic(path, to_json());
}

Result<PredictiveModel> PredictiveModel::load(const std::string& path) {
  auto text = read_file(path);
  if (!text) return text.error();
  auto model = from_json(text.value());
  if (!model) return make_error(path, model.error().to_string());
  return model;
}

}  // namespace sluice::autoscaler
