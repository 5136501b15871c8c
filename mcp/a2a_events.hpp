#pragma once
// CloudEvents ↔ A2A (v1.0, JSON-RPC binding): a trigger's event becomes a SendMessage whose message
// carries the event's data as one part and its attributes in metadata; the agent's answer (a Message or
// a Task) becomes a reply CloudEvent, so agents chain through the broker.

#include <string>

#include <nlohmann/json.hpp>

#include "core/cloud_event.hpp"
#include "core/result.hpp"

namespace sluice::mcp {

/// The reply's type: `dev.sluice.a2a.message` or `dev.sluice.a2a.task`.
inline constexpr const char* a2a_message_reply_type = "dev.sluice.a2a.message";
inline constexpr const char* a2a_task_reply_type = "dev.sluice.a2a.task";

/// A2A Message (role ROLE_USER, messageId = the event id): JSON data as a `data` part, text as a `text`
/// part, anything else as a `raw` (base64) part, with the media type; attributes under
/// metadata["cloudevent"].
nlohmann::json message_from_event(const CloudEvent& event);

/// The JSON-RPC SendMessage request for an event.
nlohmann::json send_message_request(const CloudEvent& event, const nlohmann::json& id);

/// The reply CloudEvent for a SendMessage result ({"message": …} or {"task": …}; v0.3 results with
/// `kind` are accepted too). Error (code 502) when the result is neither, or a Task that failed or was
/// rejected (TASK_STATE_FAILED, TASK_STATE_REJECTED; v0.3 failed, rejected): the delivery failed.
Result<CloudEvent> reply_from_result(const nlohmann::json& result, const CloudEvent& request_event,
                                     const std::string& agent);

}  // namespace sluice::mcp
