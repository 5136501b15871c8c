#pragma once
// Request logs, in the spirit of Knative's logging.request-log-template: one JSON line per request on
// the "request" logger, off by default, for the traffic Sluice serves (kind "http": publish, control
// API, agents, gateways) and the traffic it sends (kind "dispatch": each delivery attempt; kind
// "activator": each request proxied to a replica).
//
// Fields, when known: kind, method, path or url, status, latency_ms, request_bytes, response_bytes,
// remote, trace_id, event_id, broker, trigger, agent, revision, replica, error. `configure` can keep
// only some of them (`sluice serve --request-log --request-log-fields kind,status,latency_ms,trace_id`).
//
// Logs travel further than the server's own data, so `path`, `url` and `error` are written with
// credentials masked (redact_secrets): a request authenticated by `?access_token=…` or a subscriber URL
// with `?sig=…` or `user:password@` must not put the secret in every log line.

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace sluice::request_log {

/// Thread-safe to read after configure(), which the server calls once at start.
void configure(bool enabled, std::vector<std::string> fields = {});
bool enabled();
/// Writes one line (dropping fields not configured). Call only when enabled().
void write(nlohmann::json line);
/// `text` (a URL, a request target, or a message that contains URLs) with the value of every query
/// parameter whose name says it holds a credential (`token`, `access_token`, `api_key`, `key`, `sig`,
/// `signature`, `password`, `secret`, `code`, `X-Amz-Credential`, …) and the user information of every
/// `scheme://user:password@host` replaced by `REDACTED`.
std::string redact_secrets(std::string_view text);
/// The trace id of a W3C traceparent value, or "".
std::string trace_id_of(std::string_view traceparent);

}  // namespace sluice::request_log
