#include "broker/broker_spec.hpp"

#include <algorithm>

#include "core/duration.hpp"
#include "core/quantity.hpp"

namespace sluice {

Result<BrokerSpec> parse_broker(const nlohmann::json& manifest) {
  BrokerSpec spec;
  auto name = manifest_name(manifest);
  if (!name) return name.error();
  spec.name = name.value();
  if (!manifest.contains("spec") || manifest["spec"].is_null()) return spec;
  const auto& s = manifest["spec"];
  if (!s.is_object()) return make_error("spec", "must be an object", 400);
  for (auto it = s.begin(); it != s.end(); ++it) {
    const auto& key = it.key();
    if (key != "delivery" && key != "storage" && key != "retention" && key != "ingress" && key != "kafka" &&
        key != "config")
      return make_error("spec." + key,
                        "unknown field (known: delivery, storage, retention, ingress, kafka, config)", 400);
  }
  if (s.contains("delivery")) {
    if (!s["delivery"].is_object()) return make_error("spec.delivery", "must be an object", 400);
    spec.delivery = s["delivery"];
  }
  if (s.contains("storage")) {
    if (!s["storage"].is_string()) return make_error("spec.storage", "must be \"file\" or \"kafka\"", 400);
    spec.storage = s["storage"].get<std::string>();
    if (spec.storage != "file" && spec.storage != "kafka")
      return make_error("spec.storage", "must be \"file\" or \"kafka\", got \"" + spec.storage + "\"", 400);
  }
  if (s.contains("kafka")) {
    if (!s["kafka"].is_object()) return make_error("spec.kafka", "must be an object", 400);
    spec.kafka = s["kafka"];
  }
  auto duration_field = [&](const nlohmann::json& parent, const char* key, const std::string& path,
                            std::chrono::milliseconds& out) -> Status {
    if (!parent.contains(key)) return ok();
    const auto& v = parent[key];
    if (!v.is_string()) return make_error(path, "must be an ISO-8601 duration such as PT10M", 400);
    auto d = parse_duration(v.get<std::string>());
    if (!d)
      return make_error(path, d.error().message + " (expected an ISO-8601 duration such as PT10M)", 400);
    out = d.value();
    return ok();
  };
  auto bytes_field = [&](const nlohmann::json& parent, const char* key, const std::string& path,
                         std::int64_t& out) -> Status {
    if (!parent.contains(key)) return ok();
    const auto& v = parent[key];
    if (v.is_number_integer()) {
      out = v.get<std::int64_t>();
    } else if (v.is_string()) {
      auto q = parse_quantity_bytes(v.get<std::string>());
      if (!q) return make_error(path, q.error().message + " (expected a quantity such as 1Mi)", 400);
      out = q.value();
    } else {
      return make_error(path, "must be a quantity such as 1Mi", 400);
    }
    if (out < 0) return make_error(path, "must not be negative", 400);
    return ok();
  };
  if (s.contains("retention")) {
    const auto& r = s["retention"];
    if (!r.is_object())
      return make_error("spec.retention", "must be an object with maxAge and/or maxBytes", 400);
    if (auto st = duration_field(r, "maxAge", "spec.retention.maxAge", spec.retention_age); !st)
      return st.error();
    if (auto st = bytes_field(r, "maxBytes", "spec.retention.maxBytes", spec.retention_bytes); !st)
      return st.error();
  }
  if (s.contains("ingress")) {
    const auto& in = s["ingress"];
    if (!in.is_object()) return make_error("spec.ingress", "must be an object", 400);
    if (auto st = bytes_field(in, "maxEventSize", "spec.ingress.maxEventSize", spec.max_event_size); !st)
      return st.error();
    if (spec.max_event_size == 0) return make_error("spec.ingress.maxEventSize", "must be positive", 400);
    if (auto st = duration_field(in, "idempotencyWindow", "spec.ingress.idempotencyWindow",
                                 spec.idempotency_window);
        !st)
      return st.error();
    if (in.contains("ttl")) {
      if (!in["ttl"].is_number_integer() || in["ttl"].get<int>() < 1 || in["ttl"].get<int>() > 10000)
        return make_error("spec.ingress.ttl", "must be an integer between 1 and 10000 (default 255)", 400);
      spec.ttl = in["ttl"].get<int>();
    }
    for (const auto& [key, value] : in.items()) {
      (void)value;
      if (key != "maxEventSize" && key != "idempotencyWindow" && key != "ttl" && key != "rateLimit" &&
          key != "quota")
        return make_error("spec.ingress." + key,
                          "unknown field (known: maxEventSize, idempotencyWindow, ttl, rateLimit, quota)",
                          400);
    }
    if (in.contains("rateLimit")) {
      const auto& rl = in["rateLimit"];
      if (!rl.is_object() || !rl.contains("eventsPerSecond") || !rl["eventsPerSecond"].is_number() ||
          rl["eventsPerSecond"].get<double>() <= 0)
        return make_error("spec.ingress.rateLimit.eventsPerSecond",
                          "must be a positive number (rateLimit: {eventsPerSecond: 100, burst: 200})", 400);
      spec.rate_limit = rl["eventsPerSecond"].get<double>();
      spec.rate_burst = std::max(1.0, spec.rate_limit);
      if (rl.contains("burst")) {
        if (!rl["burst"].is_number() || rl["burst"].get<double>() < 1)
          return make_error("spec.ingress.rateLimit.burst", "must be a number of events, at least 1", 400);
        spec.rate_burst = rl["burst"].get<double>();
      }
    }
    if (in.contains("quota")) {
      // Kafka's produce quota, per broker: bytes of published bodies per second.
      const auto& q = in["quota"];
      const char* shape = " (quota: {bytesPerSecond: 1Mi, burstBytes: 4Mi})";
      if (!q.is_object() || !q.contains("bytesPerSecond"))
        return make_error("spec.ingress.quota.bytesPerSecond", std::string("is required") + shape, 400);
      for (const auto& [key, value] : q.items()) {
        (void)value;
        if (key != "bytesPerSecond" && key != "burstBytes")
          return make_error("spec.ingress.quota." + key, "unknown field (known: bytesPerSecond, burstBytes)",
                            400);
      }
      if (auto st = bytes_field(q, "bytesPerSecond", "spec.ingress.quota.bytesPerSecond",
                                spec.quota_bytes_per_second);
          !st)
        return st.error();
      if (spec.quota_bytes_per_second == 0)
        return make_error("spec.ingress.quota.bytesPerSecond", std::string("must be positive") + shape, 400);
      spec.quota_burst_bytes = std::max(spec.quota_bytes_per_second, spec.max_event_size);
      if (auto st = bytes_field(q, "burstBytes", "spec.ingress.quota.burstBytes", spec.quota_burst_bytes);
          !st)
        return st.error();
      if (spec.quota_burst_bytes < spec.max_event_size)
        return make_error("spec.ingress.quota.burstBytes",
                          "must be at least maxEventSize (" + std::to_string(spec.max_event_size) +
                              " bytes), or an event of that size could never be published",
                          400);
    }
  }
  return spec;
}

}  // namespace sluice
