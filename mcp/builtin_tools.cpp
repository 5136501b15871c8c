#include "mcp/builtin_tools.hpp"

#include <openssl/rand.h>

#include "core/async.hpp"
#include "core/json_format.hpp"
#include "mcp/json_rpc.hpp"

namespace sluice::mcp {

namespace {

std::string new_event_id() {
  unsigned char b[16];
  RAND_bytes(b, sizeof b);
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(hex[b[i] >> 4]);
    out.push_back(hex[b[i] & 15]);
  }
  return out;
}

nlohmann::json text_result(std::string text, nlohmann::json structured) {
  return {{"content", nlohmann::json::array({{{"type", "text"}, {"text", std::move(text)}}})},
          {"structuredContent", std::move(structured)},
          {"isError", false}};
}

}  // namespace

std::vector<nlohmann::json> builtin_tool_definitions() {
  nlohmann::json publish = {
      {"name", "publish_event"},
      {"title", "Publish a CloudEvent"},
      {"description",
       "Publishes a CloudEvent to a Sluice broker; triggers deliver it to the agents that subscribe. Returns "
       "the "
       "event's id once it is durable."},
      {"inputSchema",
       {{"type", "object"},
        {"properties",
         {{"broker", {{"type", "string"}, {"description", "the broker's name"}}},
          {"type", {{"type", "string"}, {"description", "the event's type attribute"}}},
          {"source", {{"type", "string"}, {"description", "the event's source (a URI-reference)"}}},
          {"subject", {{"type", "string"}}},
          {"data", {{"description", "the event's data: any JSON value"}}},
          {"datacontenttype", {{"type", "string"}, {"description", "default application/json"}}},
          {"extensions",
           {{"type", "object"},
            {"additionalProperties", {{"type", "string"}}},
            {"description", "extension attributes (lower-case names)"}}}}},
        {"required", {"broker", "type", "source"}}}},
      {"outputSchema",
       {{"type", "object"},
        {"properties", {{"id", {{"type", "string"}}}, {"broker", {{"type", "string"}}}}},
        {"required", {"id", "broker"}}}}};
  nlohmann::json list = {
      {"name", "list_agents"},
      {"title", "List agents"},
      {"description",
       "Lists the agents Sluice runs: protocol (http, mcp, a2a), revisions, replicas and traffic."},
      {"inputSchema", {{"type", "object"}, {"properties", nlohmann::json::object()}}},
      {"annotations", {{"readOnlyHint", true}}}};
  return {publish, list};
}

bool is_builtin_tool(const std::string& name) {
  return name == "publish_event" || name == "list_agents";
}

nlohmann::json tool_error_result(std::string message) {
  return {{"content", nlohmann::json::array({{{"type", "text"}, {"text", std::move(message)}}})},
          {"isError", true}};
}

Result<CloudEvent> event_from_arguments(const nlohmann::json& arguments, std::string id) {
  if (!arguments.is_object())
    return sluice::make_error("arguments", "must be an object", rpc_error::invalid_params);
  for (const char* required : {"broker", "type", "source"})
    if (!arguments.contains(required) || !arguments[required].is_string() ||
        arguments[required].get_ref<const std::string&>().empty())
      return sluice::make_error(required, "is required (a non-empty string)", rpc_error::invalid_params);
  nlohmann::json structured = {{"specversion", "1.0"},
                               {"id", std::move(id)},
                               {"type", arguments["type"]},
                               {"source", arguments["source"]}};
  if (arguments.contains("subject")) structured["subject"] = arguments["subject"];
  if (arguments.contains("data")) {
    structured["data"] = arguments["data"];
    structured["datacontenttype"] = arguments.value("datacontenttype", std::string("application/json"));
  }
  if (arguments.contains("extensions")) {
    const auto& ext = arguments["extensions"];
    if (!ext.is_object())
      return sluice::make_error("extensions", "must be an object of strings", rpc_error::invalid_params);
    for (const auto& [name, value] : ext.items()) {
      if (!value.is_string() && !value.is_number_integer() && !value.is_boolean())
        return sluice::make_error("extensions." + name, "must be a string, an integer or a boolean",
                                  rpc_error::invalid_params);
      if (is_context_attribute(name) || !is_valid_attribute_name(name))
        return sluice::make_error("extensions." + name,
                                  "is not a valid extension attribute name (lower-case a-z, 0-9)",
                                  rpc_error::invalid_params);
      structured[name] = value;
    }
  }
  auto event = event_from_json(structured);
  if (!event)
    return sluice::make_error(event.error().subject, event.error().message, rpc_error::invalid_params);
  return event;
}

asio::awaitable<Result<nlohmann::json>> call_builtin_tool(const std::string& name,
                                                          const nlohmann::json& arguments,
                                                          const PublishFn& publish,
                                                          const DescribeAgentsFn& describe_agents) {
  if (name == "list_agents") {
    nlohmann::json agents = describe_agents ? describe_agents() : nlohmann::json::array();
    co_return text_result(agents.dump(), {{"agents", agents}});
  }
  auto event = event_from_arguments(arguments, new_event_id());
  if (!event) co_return event.error();
  if (!publish) co_return tool_error_result("publishing is not available in this server");
  std::string broker = arguments["broker"].get<std::string>();
  std::string id = event.value().id;
  std::vector<CloudEvent> events{std::move(event).value()};
  auto start = [&publish, &broker, &events](std::function<void(Result<std::uint64_t>)> done) {
    publish(broker, std::move(events), std::move(done));
  };
  auto published = co_await await_callback<Result<std::uint64_t>>(start);
  if (!published)
    co_return tool_error_result("publish to broker " + broker + " failed: " + published.error().to_string());
  co_return text_result("published event " + id + " to broker " + broker, {{"id", id}, {"broker", broker}});
}

}  // namespace sluice::mcp
