#include "core/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>
#include <string_view>

namespace sluice {

namespace {

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// [a-zA-Z_:][a-zA-Z0-9_:]*
bool valid_metric_name(std::string_view name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

// [a-zA-Z_][a-zA-Z0-9_]*, and names starting with "__" are reserved for Prometheus itself.
bool valid_label_name(std::string_view name) {
  if (name.empty() || name.starts_with("__")) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

// Prometheus accepts any float syntax Go's ParseFloat does; we print integers without exponent and
// everything else as the shortest round-tripping form, fixed notation where it stays readable.
void append_value(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
    return;
  }
  if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
    return;
  }
  char buf[64];
  double magnitude = std::fabs(v);
  auto format = (magnitude == 0 || (magnitude >= 1e-5 && magnitude < 1e15)) ? std::chars_format::fixed
                                                                            : std::chars_format::scientific;
  auto result = std::to_chars(buf, buf + sizeof buf, v, format);
  out.append(buf, result.ptr);
}

void append_escaped(std::string& out, std::string_view s, bool quote) {
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quote && c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

// `{a="x",b="y"}`, with an optional extra label (the histogram's `le`) last; nothing when empty.
void append_labels(std::string& out, const Labels& labels, std::string_view extra_name = {},
                   std::string_view extra_value = {}) {
  if (labels.empty() && extra_name.empty()) return;
  out += '{';
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out += ',';
    first = false;
    out += k;
    out += "=\"";
    append_escaped(out, v, true);
    out += '"';
  }
  if (!extra_name.empty()) {
    if (!first) out += ',';
    out += extra_name;
    out += "=\"";
    out += extra_value;
    out += '"';
  }
  out += '}';
}

}  // namespace

// ---- Histogram ----

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), buckets_(new std::atomic<std::uint64_t>[bounds_.size() + 1]) {
  for (std::size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
}

void Histogram::observe(double v) {
  if (std::isnan(v)) return;
  // First bound >= v: Prometheus buckets are "less than or equal".
  auto index =
      static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  buckets_[index].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

std::uint64_t Histogram::count() const {
  std::uint64_t total = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) total += buckets_[i].load(std::memory_order_relaxed);
  return total;
}

std::vector<std::uint64_t> Histogram::cumulative_counts() const {
  std::vector<std::uint64_t> out(bounds_.size() + 1);
  std::uint64_t running = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    out[i] = running;
  }
  return out;
}

double Histogram::quantile(double q) const {
  const auto counts = cumulative_counts();
  const std::uint64_t total = counts.back();
  if (total == 0) return 0;
  const double rank = std::clamp(q, 0.0, 1.0) * static_cast<double>(total);
  std::size_t i = 0;
  while (i < bounds_.size() && static_cast<double>(counts[i]) < rank) ++i;
  if (i == bounds_.size()) return bounds_.empty() ? 0 : bounds_.back();
  const double lower = i == 0 ? 0 : bounds_[i - 1];
  const double below = i == 0 ? 0 : static_cast<double>(counts[i - 1]);
  const double in_bucket = static_cast<double>(counts[i]) - below;
  if (in_bucket <= 0) return bounds_[i];
  return lower + (bounds_[i] - lower) * (rank - below) / in_bucket;
}

std::vector<double> latency_buckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
          0.1,    0.25,    0.5,    1,     2.5,    5,     10,   30,    60};
}

// ---- Registry ----

struct MetricsRegistry::Series {
  std::unique_ptr<Counter> counter;
  std::unique_ptr<Gauge> gauge;
  std::unique_ptr<Histogram> histogram;
};

struct MetricsRegistry::Family {
  std::string help;
  Type type;
  std::vector<double> bounds;                        // histograms only
  std::map<Labels, std::unique_ptr<Series>> series;  // keyed by labels sorted by name
};

MetricsRegistry::MetricsRegistry() = default;

const char* MetricsRegistry::type_name(Type type) {
  switch (type) {
    case Type::Counter:
      return "counter";
    case Type::Gauge:
      return "gauge";
    case Type::Histogram:
      break;
  }
  return "histogram";
}
MetricsRegistry::~MetricsRegistry() = default;

MetricsRegistry& MetricsRegistry::global() {
  // Never destroyed: metrics may be touched by threads still running during static destruction.
  static auto* registry = new MetricsRegistry();
  return *registry;
}

namespace {

Labels canonical_labels(Labels labels, const std::string& metric) {
  std::sort(labels.begin(), labels.end());
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (!valid_label_name(labels[i].first)) {
      throw std::invalid_argument("metric " + metric + ": invalid label name \"" + labels[i].first +
                                  "\" (expected [a-zA-Z_][a-zA-Z0-9_]*, not starting with __)");
    }
    if (i > 0 && labels[i].first == labels[i - 1].first) {
      throw std::invalid_argument("metric " + metric + ": label \"" + labels[i].first + "\" given twice");
    }
  }
  return labels;
}

}  // namespace

MetricsRegistry::Series& MetricsRegistry::find_or_add(std::string name, std::string help, Type type,
                                                      Labels labels, const std::vector<double>* buckets) {
  if (!valid_metric_name(name)) {
    throw std::invalid_argument("invalid metric name \"" + name + "\" (expected [a-zA-Z_:][a-zA-Z0-9_:]*)");
  }
  if (type == Type::Counter && !ends_with(name, "_total")) {
    throw std::invalid_argument("counter " + name + ": counter names end in _total");
  }
  if (type != Type::Counter && ends_with(name, "_total")) {
    throw std::invalid_argument(std::string(type_name(type)) + " " + name +
                                ": only counter names end in _total");
  }
  labels = canonical_labels(std::move(labels), name);
  std::vector<double> bounds;
  if (type == Type::Histogram) {
    for (const auto& [k, v] : labels) {
      if (k == "le") throw std::invalid_argument("histogram " + name + ": \"le\" is reserved for buckets");
    }
    bounds = *buckets;
    if (!bounds.empty() && std::isinf(bounds.back()) && bounds.back() > 0) bounds.pop_back();
    for (std::size_t i = 0; i < bounds.size(); ++i) {
      if (!std::isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1]))) {
        throw std::invalid_argument("histogram " + name + ": buckets must be finite and strictly increasing");
      }
    }
  }

  std::lock_guard lock(mu_);
  auto& family = families_[name];
  if (!family) {
    family = std::make_unique<Family>();
    family->help = std::move(help);
    family->type = type;
    family->bounds = bounds;
  } else if (family->type != type) {
    throw std::invalid_argument("metric " + name + " is already registered as a " + type_name(family->type));
  } else if (type == Type::Histogram && family->bounds != bounds) {
    throw std::invalid_argument("histogram " + name + " is already registered with other buckets");
  }
  auto& series = family->series[labels];
  if (!series) {
    series = std::make_unique<Series>();
    switch (type) {
      case Type::Counter:
        series->counter = std::make_unique<Counter>();
        break;
      case Type::Gauge:
        series->gauge = std::make_unique<Gauge>();
        break;
      case Type::Histogram:
        series->histogram = std::make_unique<Histogram>(std::move(bounds));
        break;
    }
  }
  return *series;
}

Counter& MetricsRegistry::counter(std::string name, std::string help, Labels labels) {
  return *find_or_add(std::move(name), std::move(help), Type::Counter, std::move(labels), nullptr).counter;
}

Gauge& MetricsRegistry::gauge(std::string name, std::string help, Labels labels) {
  return *find_or_add(std::move(name), std::move(help), Type::Gauge, std::move(labels), nullptr).gauge;
}

Histogram& MetricsRegistry::histogram(std::string name, std::string help, std::vector<double> buckets,
                                      Labels labels) {
  return *find_or_add(std::move(name), std::move(help), Type::Histogram, std::move(labels), &buckets)
              .histogram;
}

void MetricsRegistry::remove(const std::string& name, const Labels& labels) {
  Labels key = labels;
  std::sort(key.begin(), key.end());
  std::lock_guard lock(mu_);
  auto family = families_.find(name);
  if (family == families_.end()) return;
  family->second->series.erase(key);
  if (family->second->series.empty()) families_.erase(family);
}

void MetricsRegistry::retire(const std::string& label, const std::string& value) {
  std::lock_guard lock(mu_);
  for (auto family = families_.begin(); family != families_.end();) {
    auto& series = family->second->series;
    for (auto it = series.begin(); it != series.end();) {
      const bool match = std::any_of(it->first.begin(), it->first.end(), [&](const auto& pair) {
        return pair.first == label && pair.second == value;
      });
      if (match) {
        retired_.push_back(std::move(it->second));
        it = series.erase(it);
      } else {
        ++it;
      }
    }
    family = series.empty() ? families_.erase(family) : std::next(family);
  }
  generation_.fetch_add(1, std::memory_order_acq_rel);
}

std::string MetricsRegistry::render() const {
  std::string out;
  std::lock_guard lock(mu_);
  for (const auto& [name, family] : families_) {
    if (family->series.empty()) continue;
    out += "# HELP ";
    out += name;
    out += ' ';
    append_escaped(out, family->help, false);
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type_name(family->type);
    out += '\n';
    for (const auto& [labels, series] : family->series) {
      switch (family->type) {
        case Type::Counter:
        case Type::Gauge:
          out += name;
          append_labels(out, labels);
          out += ' ';
          append_value(out, series->counter ? series->counter->value() : series->gauge->value());
          out += '\n';
          break;
        case Type::Histogram: {
          const Histogram& h = *series->histogram;
          // One snapshot of the buckets so that +Inf and _count agree even under concurrent observe().
          auto counts = h.cumulative_counts();
          std::string le;
          for (std::size_t i = 0; i < counts.size(); ++i) {
            le.clear();
            if (i < h.bounds().size()) {
              append_value(le, h.bounds()[i]);
            } else {
              le = "+Inf";
            }
            out += name;
            out += "_bucket";
            append_labels(out, labels, "le", le);
            out += ' ';
            out += std::to_string(counts[i]);
            out += '\n';
          }
          out += name;
          out += "_sum";
          append_labels(out, labels);
          out += ' ';
          append_value(out, h.sum());
          out += '\n';
          out += name;
          out += "_count";
          append_labels(out, labels);
          out += ' ';
          out += std::to_string(counts.back());
          out += '\n';
          break;
        }
      }
    }
  }
  return out;
}

}  // namespace sluice
