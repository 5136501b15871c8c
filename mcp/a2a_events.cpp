#include "mcp/a2a_events.hpp"

#include "core/base64.hpp"
#include "core/json_format.hpp"
#include "mcp/json_rpc.hpp"

namespace sluice::mcp {

namespace {

bool is_text_type(const std::string& type) {
  return type.rfind("text/", 0) == 0;
}

// A task the agent gave up on or refused: its reply is no answer to the event (A2A §4.1.3 TaskState).
bool is_unsuccessful_state(const std::string& state) {
  return state == "TASK_STATE_FAILED" || state == "TASK_STATE_REJECTED" || state == "failed" ||
         state == "rejected";
}

}  // namespace

nlohmann::json message_from_event(const CloudEvent& event) {
  nlohmann::json attributes = event_to_json(event);
  attributes.erase("data");
  attributes.erase("data_base64");
  std::string media = event.datacontenttype.value_or("application/json");
  nlohmann::json part = nlohmann::json::object();
  if (event.data) {
    nlohmann::json parsed = nlohmann::json::parse(*event.data, nullptr, false);
    if (event.data_is_json() && !parsed.is_discarded()) {
      part["data"] = std::move(parsed);
    } else if (is_text_type(media) && is_valid_utf8(*event.data)) {
      part["text"] = *event.data;
    } else {
      part["raw"] = base64_encode(*event.data);
    }
    part["mediaType"] = media;
  } else {
    part["data"] = nullptr;
  }
  return {{"messageId", event.id},
          {"role", "ROLE_USER"},
          {"parts", nlohmann::json::array({part})},
          {"metadata", {{"cloudevent", attributes}}}};
}

nlohmann::json send_message_request(const CloudEvent& event, const nlohmann::json& id) {
  return make_rpc_request(id, "SendMessage", {{"message", message_from_event(event)}});
}

Result<CloudEvent> reply_from_result(const nlohmann::json& result, const CloudEvent& request_event,
                                     const std::string& agent) {
  const nlohmann::json* body = nullptr;
  std::string type;
  if (result.is_object() && result.contains("message")) {
    body = &result["message"];
    type = a2a_message_reply_type;
  } else if (result.is_object() && result.contains("task")) {
    body = &result["task"];
    type = a2a_task_reply_type;
  } else if (result.is_object() && result.contains("kind") && result["kind"] == "message") {
    body = &result;
    type = a2a_message_reply_type;
  } else if (result.is_object() && result.contains("kind") && result["kind"] == "task") {
    body = &result;
    type = a2a_task_reply_type;
  } else {
    return make_error(agent, "SendMessage result is neither a message nor a task", 502);
  }
  if (!body->is_object())
    return make_error(agent, "SendMessage result's message or task is not an object", 502);
  if (type == a2a_task_reply_type) {
    const auto status = body->value("status", nlohmann::json::object());
    const auto state = status.is_object() ? status.value("state", nlohmann::json()) : nlohmann::json();
    if (state.is_string() && is_unsuccessful_state(state.get<std::string>()))
      return make_error(agent, "SendMessage answered a task in state " + state.get<std::string>(), 502);
  }
  CloudEvent reply;
  reply.type = type;
  reply.source = "/a2a/" + agent;
  auto string_at = [body](const char* field) {
    auto it = body->find(field);
    return it != body->end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  std::string id = string_at("messageId");
  if (id.empty()) id = string_at("id");
  reply.id = id.empty() ? request_event.id + "-reply" : request_event.id + "-" + id;
  if (body->contains("id") && (*body)["id"].is_string()) reply.subject = (*body)["id"].get<std::string>();
  reply.datacontenttype = "application/json";
  reply.data = body->dump();
  return reply;
}

}  // namespace sluice::mcp
