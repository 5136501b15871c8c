// mcp_agent: a small MCP server on the Streamable HTTP transport (POST/DELETE /mcp), for the gateway.
//
//   PORT   where to listen (sluice sets it; default 8080)
//
// Tools:
//   echo {text}              → the text back
//   add {a, b}               → a + b, also as structuredContent {sum}
//   fail {message?}          → a tool execution error (isError: true)
//   slow {steps, delay_ms}   → one notifications/progress per step (when the call has a progressToken),
//                              cancellable by notifications/cancelled or by closing the connection
//   cancellations {}         → how many calls were cancelled so far, and the last one's request id
//   whoami {}                → this replica (SLUICE_REPLICA, SLUICE_REVISION), the caller's session,
//                              and the sessions open on this replica
//
// Sessions: initialize returns an Mcp-Session-Id; a request with an unknown one gets 404 (so that
// clients open a new session), DELETE ends one. GET /healthz answers 200.
// SIGTERM: stop accepting, finish requests in flight, exit 0.

#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "agent_server.hpp"

namespace {

using example::env_or;

using json = nlohmann::json;

struct State {
  std::mutex mu;
  std::set<std::string> sessions;
  std::set<std::string> cancelled;  // session + " " + request id
  long cancellations = 0;
  json last_cancelled = nullptr;
  std::string last_cancel_reason;
  long calls = 0;
};

std::string new_session_id() {
  static std::mt19937_64 rng{std::random_device{}()};
  static std::mutex mu;
  std::lock_guard lock(mu);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(rng()));
  return buf;
}

json rpc_result(const json& id, json result) {
  return {{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}};
}

json rpc_error(const json& id, int code, const std::string& message) {
  return {{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", code}, {"message", message}}}};
}

json text_content(const std::string& text) {
  return json::array({{{"type", "text"}, {"text", text}}});
}

json tools() {
  return json::array({
      {{"name", "echo"},
       {"description", "Returns the text it is given."},
       {"inputSchema",
        {{"type", "object"}, {"properties", {{"text", {{"type", "string"}}}}}, {"required", {"text"}}}}},
      {{"name", "add"},
       {"description", "Adds two numbers."},
       {"inputSchema",
        {{"type", "object"},
         {"properties", {{"a", {{"type", "number"}}}, {"b", {{"type", "number"}}}}},
         {"required", {"a", "b"}}}},
       {"outputSchema",
        {{"type", "object"}, {"properties", {{"sum", {{"type", "number"}}}}}, {"required", {"sum"}}}}},
      {{"name", "fail"},
       {"description", "Always fails (a tool execution error)."},
       {"inputSchema", {{"type", "object"}, {"properties", {{"message", {{"type", "string"}}}}}}}},
      {{"name", "slow"},
       {"description", "Works for steps × delay_ms, reporting progress after each step."},
       {"inputSchema",
        {{"type", "object"},
         {"properties", {{"steps", {{"type", "integer"}}}, {"delay_ms", {{"type", "integer"}}}}}}}},
      {{"name", "cancellations"},
       {"description", "How many calls were cancelled so far, and the last cancelled request's id."},
       {"inputSchema", {{"type", "object"}, {"properties", json::object()}}}},
      {{"name", "whoami"},
       {"description", "This replica, the caller's session, and the sessions open here."},
       {"inputSchema", {{"type", "object"}, {"properties", json::object()}}}},
  });
}

std::string sse(const json& message) {
  return "event: message\ndata: " + message.dump() + "\n\n";
}

}  // namespace

int main() {
  const sigset_t signals = example::block_stop_signals();

  const int port = std::atoi(env_or("PORT", "8080").c_str());
  const std::string agent = env_or("SLUICE_AGENT", "mcp");
  const std::string revision = env_or("SLUICE_REVISION", "");
  auto state = std::make_shared<State>();

  httplib::Server server;
  example::tune(server);
  server.set_post_routing_handler([&](const httplib::Request&, httplib::Response& res) {
    res.set_header("x-sluice-revision", revision);
  });
  server.Get("/healthz",
             [](const httplib::Request&, httplib::Response& res) { res.set_content("ok", "text/plain"); });
  server.Get("/mcp", [](const httplib::Request&, httplib::Response& res) {
    res.status = 405;
    res.set_header("Allow", "POST, DELETE");
  });
  server.Delete("/mcp", [state](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lock(state->mu);
    res.status = state->sessions.erase(req.get_header_value("Mcp-Session-Id")) ? 200 : 404;
  });
  server.Post("/mcp", [state, agent, revision](const httplib::Request& req, httplib::Response& res) {
    auto msg = json::parse(req.body, nullptr, false);
    if (msg.is_discarded() || !msg.is_object()) {
      res.status = 400;
      res.set_content(rpc_error(nullptr, -32700, "Parse error").dump(), "application/json");
      return;
    }
    const std::string method = msg.value("method", "");
    const json id = msg.contains("id") ? msg["id"] : json(nullptr);
    const json params = msg.value("params", json::object());
    std::string session = req.get_header_value("Mcp-Session-Id");

    if (method == "initialize") {
      session = new_session_id();
      {
        std::lock_guard lock(state->mu);
        state->sessions.insert(session);
      }
      std::string requested = params.value("protocolVersion", "");
      std::string version =
          requested == "2025-11-25" || requested == "2025-06-18" || requested == "2025-03-26" ? requested
                                                                                              : "2025-06-18";
      res.set_header("Mcp-Session-Id", session);
      res.set_content(rpc_result(id, {{"protocolVersion", version},
                                      {"capabilities", {{"tools", {{"listChanged", true}}}}},
                                      {"serverInfo", {{"name", "mcp_agent"}, {"version", "1.0.0"}}}})
                          .dump(),
                      "application/json");
      return;
    }
    {
      std::lock_guard lock(state->mu);
      if (session.empty()) {
        res.status = 400;
        res.set_content(rpc_error(id, -32600, "Mcp-Session-Id is required").dump(), "application/json");
        return;
      }
      if (!state->sessions.count(session)) {
        res.status = 404;
        res.set_content(rpc_error(id, -32001, "Session not found").dump(), "application/json");
        return;
      }
    }
    if (!msg.contains("id")) {  // a notification
      if (method == "notifications/cancelled") {
        std::lock_guard lock(state->mu);
        state->cancelled.insert(session + " " + params.value("requestId", json(nullptr)).dump());
      }
      res.status = 202;
      return;
    }
    if (method == "ping") {
      res.set_content(rpc_result(id, json::object()).dump(), "application/json");
      return;
    }
    if (method == "tools/list") {
      res.set_content(rpc_result(id, {{"tools", tools()}}).dump(), "application/json");
      return;
    }
    if (method != "tools/call") {
      res.set_content(rpc_error(id, -32601, "Method not found: " + method).dump(), "application/json");
      return;
    }
    {
      std::lock_guard lock(state->mu);
      ++state->calls;
    }
    const std::string name = params.value("name", "");
    const json args = params.value("arguments", json::object());
    json result;
    if (name == "echo") {
      result = {{"content", text_content(args.value("text", ""))}};
    } else if (name == "add") {
      if (!args.contains("a") || !args["a"].is_number() || !args.contains("b") || !args["b"].is_number()) {
        result = {{"content", text_content("a and b must be numbers")}, {"isError", true}};
      } else {
        double sum = args["a"].get<double>() + args["b"].get<double>();
        result = {{"content", text_content(json(sum).dump())}, {"structuredContent", {{"sum", sum}}}};
      }
    } else if (name == "fail") {
      result = {{"content", text_content(args.value("message", std::string("the tool failed")))},
                {"isError", true}};
    } else if (name == "cancellations") {
      std::lock_guard lock(state->mu);
      json info = {{"count", state->cancellations},
                   {"lastRequestId", state->last_cancelled},
                   {"reason", state->last_cancel_reason},
                   {"calls", state->calls}};
      result = {{"content", text_content(info.dump())}, {"structuredContent", info}};
    } else if (name == "whoami") {
      std::lock_guard lock(state->mu);
      json info = {{"replica", env_or("SLUICE_REPLICA", "")},
                   {"revision", revision},
                   {"session", session},
                   {"openSessions", state->sessions.size()}};
      result = {{"content", text_content(info.dump())}, {"structuredContent", info}};
    } else if (name == "slow") {
      const int steps = args.value("steps", 5);
      const int delay_ms = args.value("delay_ms", 200);
      json token = params.contains("_meta") && params["_meta"].contains("progressToken")
                       ? params["_meta"]["progressToken"]
                       : json(nullptr);
      const std::string key = session + " " + id.dump();
      res.set_header("Mcp-Session-Id", session);
      res.set_chunked_content_provider("text/event-stream", [state, steps, delay_ms, token, id, key](
                                                                std::size_t, httplib::DataSink& sink) {
        auto cancelled = [&](const std::string& reason) {
          std::lock_guard lock(state->mu);
          ++state->cancellations;
          state->last_cancelled = id;
          state->last_cancel_reason = reason;
          state->cancelled.erase(key);
          std::cout << "mcp_agent: call " << id.dump() << " cancelled (" << reason << ")" << std::endl;
        };
        for (int step = 1; step <= steps; ++step) {
          std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
          bool told = false;
          {
            std::lock_guard lock(state->mu);
            told = state->cancelled.count(key) > 0;
          }
          if (told) {
            cancelled("notifications/cancelled");
            sink.done();
            return true;
          }
          if (!token.is_null()) {
            json progress = {{"jsonrpc", "2.0"},
                             {"method", "notifications/progress"},
                             {"params",
                              {{"progressToken", token},
                               {"progress", step},
                               {"total", steps},
                               {"message", "step " + std::to_string(step)}}}};
            auto event = sse(progress);
            if (!sink.write(event.data(), event.size())) {
              cancelled("connection closed");
              return false;
            }
          } else if (!sink.is_writable()) {
            cancelled("connection closed");
            return false;
          }
        }
        json done =
            rpc_result(id, {{"content", text_content("done after " + std::to_string(steps) + " steps")},
                            {"structuredContent", {{"steps", steps}}}});
        auto event = sse(done);
        sink.write(event.data(), event.size());
        sink.done();
        return true;
      });
      return;
    } else {
      res.set_content(rpc_error(id, -32602, "Unknown tool: " + name).dump(), "application/json");
      return;
    }
    res.set_content(rpc_result(id, result).dump(), "application/json");
  });

  return example::serve(server, port, signals, "mcp_agent",
                        " (agent=" + agent + " revision=" + revision + ")");
}
