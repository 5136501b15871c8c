// a2a_agent: a small A2A agent (v1.0 JSON-RPC binding, with the v0.3 method names too), for the gateway.
//
//   PORT       where to listen (sluice sets it; default 8080)
//   RPC_PATH   where the JSON-RPC endpoint is (default "/"; the card names it)
//
// GET /.well-known/agent-card.json  the agent card (one JSONRPC interface at RPC_PATH)
// POST RPC_PATH                    SendMessage: answers "echo: <text>" as a Message, or as a completed
//                                  Task when the text contains "task" (a failed one when it contains
//                                  "fail"); a data part is echoed as data. A message continuing a task
//                                  (taskId) gets TaskNotFound (-32001) or, tasks here being finished,
//                                  UnsupportedOperation (-32004); SubscribeToTask too. Push
//                                  notification configs: PushNotificationNotSupported (-32003).
//                                  SendStreamingMessage (SSE): the task submitted, working, its artifact,
//                                  completed. GetTask, CancelTask (tasks here are already finished),
//                                  and message/send, message/stream, tasks/get, tasks/cancel (v0.3).
// GET /healthz answers 200. SIGTERM: stop accepting, finish requests in flight, exit 0.

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "agent_server.hpp"

namespace {

using example::env_or;

using json = nlohmann::json;

json rpc_result(const json& id, json result) {
  return {{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}};
}

json rpc_error(const json& id, int code, const std::string& message) {
  return {{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", code}, {"message", message}}}};
}

// The text of a message's text parts, and its first data part.
void read_parts(const json& message, std::string& text, json& data) {
  for (const auto& part : message.value("parts", json::array())) {
    if (part.contains("text") && part["text"].is_string()) text += part["text"].get<std::string>();
    if (part.contains("data") && data.is_null()) data = part["data"];
    if (part.value("kind", "") == "data" && part.contains("data")) data = part["data"];
  }
}

struct Store {
  std::mutex mu;
  std::map<std::string, json> tasks;
  long next = 1;
};

// The answer to a request about an existing task (continue it, subscribe to it): this agent's tasks are
// all finished, so UnsupportedOperation (-32004) for one of its own, TaskNotFound (-32001) for others.
json finished_task_error(Store& store, const json& id, const std::string& task_id) {
  std::lock_guard lock(store.mu);
  if (store.tasks.count(task_id) == 0) return rpc_error(id, -32001, "Task not found: " + task_id);
  return rpc_error(id, -32004, "Task " + task_id + " is in a terminal state");
}

}  // namespace

int main() {
  const sigset_t signals = example::block_stop_signals();

  const int port = std::atoi(env_or("PORT", "8080").c_str());
  const std::string agent = env_or("SLUICE_AGENT", "a2a");
  const std::string revision = env_or("SLUICE_REVISION", "");
  const std::string rpc_path = env_or("RPC_PATH", "/");
  auto store = std::make_shared<Store>();
  // Task ids are unique across replicas (a task lives on the replica that made it), and each task
  // says which replica that was (metadata.replica).
  const std::string replica = env_or("SLUICE_REPLICA", "");
  const std::string task_prefix = "task-" + std::to_string(::getpid()) + "-";

  httplib::Server server;
  example::tune(server);
  server.set_post_routing_handler([&](const httplib::Request&, httplib::Response& res) {
    res.set_header("x-sluice-revision", revision);
  });
  server.Get("/healthz",
             [](const httplib::Request&, httplib::Response& res) { res.set_content("ok", "text/plain"); });
  auto card = [port, agent, rpc_path](const httplib::Request&, httplib::Response& res) {
    json c = {
        {"name", agent},
        {"description", "Echoes what it is sent, as a message or as a task."},
        {"version", "1.0.0"},
        {"supportedInterfaces", json::array({{{"url", "http://127.0.0.1:" + std::to_string(port) + rpc_path},
                                              {"protocolBinding", "JSONRPC"},
                                              {"protocolVersion", "1.0"}}})},
        {"capabilities", {{"streaming", true}, {"pushNotifications", false}}},
        {"defaultInputModes", {"text/plain", "application/json"}},
        {"defaultOutputModes", {"text/plain", "application/json"}},
        {"skills", json::array({{{"id", "echo"},
                                 {"name", "Echo"},
                                 {"description", "Answers with what it was sent."},
                                 {"tags", {"echo"}}}})}};
    res.set_content(c.dump(), "application/json");
  };
  server.Get("/.well-known/agent-card.json", card);
  auto handle = [store, replica, task_prefix](const httplib::Request& req, httplib::Response& res) {
    auto body = json::parse(req.body, nullptr, false);
    if (body.is_discarded()) {
      res.set_content(rpc_error(nullptr, -32700, "Parse error").dump(), "application/json");
      return;
    }
    // JSON-RPC 2.0: valid JSON that is no request object is an Invalid Request, and params of the wrong
    // shape are Invalid params, never an HTTP 500.
    if (!body.is_object() || !body.contains("method") || !body["method"].is_string()) {
      res.set_content(rpc_error(nullptr, -32600, "Invalid Request").dump(), "application/json");
      return;
    }
    const json id = body.value("id", json(nullptr));
    const std::string method = body["method"].get<std::string>();
    const json params = body.value("params", json::object());
    auto invalid_params = [&](const std::string& why) {
      res.set_content(rpc_error(id, -32602, "Invalid params: " + why).dump(), "application/json");
    };
    if (!params.is_object()) return invalid_params("params must be an object");
    if (params.contains("id") && !params["id"].is_string()) return invalid_params("id must be a string");
    if (params.contains("message") && !params["message"].is_object())
      return invalid_params("message must be an object");
    const bool v03 = method.find('/') != std::string::npos;

    if (method == "GetTask" || method == "tasks/get" || method == "CancelTask" || method == "tasks/cancel") {
      std::string task_id = params.value("id", "");
      std::lock_guard lock(store->mu);
      auto it = store->tasks.find(task_id);
      if (it == store->tasks.end()) {
        res.set_content(rpc_error(id, -32001, "Task not found: " + task_id).dump(), "application/json");
      } else if (method == "CancelTask" || method == "tasks/cancel") {
        res.set_content(rpc_error(id, -32002, "Task cannot be canceled: it is completed").dump(),
                        "application/json");
      } else {
        res.set_content(rpc_result(id, it->second).dump(), "application/json");
      }
      return;
    }
    if (method == "SubscribeToTask" || method == "tasks/resubscribe") {
      res.set_content(finished_task_error(*store, id, params.value("id", "")).dump(), "application/json");
      return;
    }
    // The card says pushNotifications: false (A2A §3.3.4).
    if (method.find("PushNotificationConfig") != std::string::npos ||
        method.rfind("tasks/pushNotificationConfig/", 0) == 0) {
      res.set_content(rpc_error(id, -32003, "Push notifications are not supported").dump(),
                      "application/json");
      return;
    }
    const bool streaming = method == "SendStreamingMessage" || method == "message/stream";
    if (method != "SendMessage" && method != "message/send" && !streaming) {
      res.set_content(rpc_error(id, -32601, "Method not found: " + method).dump(), "application/json");
      return;
    }
    const json message = params.value("message", json::object());
    // A message that continues a task (A2A §3.4.2): this replica's tasks are all finished.
    if (message.contains("taskId")) {
      res.set_content(finished_task_error(*store, id, message["taskId"].get<std::string>()).dump(),
                      "application/json");
      return;
    }
    std::string text;
    json data;
    read_parts(message, text, data);
    std::string context = message.value("contextId", std::string());
    std::string task_id;
    {
      std::lock_guard lock(store->mu);
      long n = store->next++;
      if (context.empty()) context = "ctx-" + std::to_string(n);
      task_id = task_prefix + std::to_string(n);
    }
    json reply_part = data.is_null() ? json{{"text", "echo: " + text}} : json{{"data", data}};
    if (v03) reply_part["kind"] = data.is_null() ? "text" : "data";
    json reply = {{"messageId", "reply-" + task_id},
                  {"contextId", context},
                  {"role", v03 ? "agent" : "ROLE_AGENT"},
                  {"parts", json::array({reply_part})}};
    if (v03) reply["kind"] = "message";
    auto state = [v03](const char* v1) -> std::string {
      if (!v03) return v1;
      std::string s = std::string(v1).substr(11);  // TASK_STATE_
      for (auto& c : s) c = static_cast<char>(std::tolower(c));
      return s;
    };
    json task = {
        {"id", task_id},
        {"contextId", context},
        {"status",
         {{"state",
           state(text.find("fail") != std::string::npos ? "TASK_STATE_FAILED" : "TASK_STATE_COMPLETED")},
          {"message", reply}}},
        {"artifacts", json::array({{{"artifactId", "result"}, {"parts", json::array({reply_part})}}})},
        {"history", json::array({message, reply})},
        {"metadata", {{"replica", replica}}}};
    if (v03) task["kind"] = "task";
    {
      std::lock_guard lock(store->mu);
      store->tasks[task_id] = task;
    }
    if (!streaming) {
      const bool as_task = text.find("task") != std::string::npos || text.find("fail") != std::string::npos;
      json result;
      if (v03)
        result = as_task ? task : reply;
      else
        result = as_task ? json{{"task", task}} : json{{"message", reply}};
      res.set_content(rpc_result(id, result).dump(), "application/json");
      return;
    }
    // Streaming: the task submitted, working, its artifact, completed (final).
    json submitted = task;
    submitted["status"] = {{"state", state("TASK_STATE_SUBMITTED")}};
    submitted.erase("artifacts");
    std::vector<json> events;
    if (v03) {
      events.push_back(submitted);
      events.push_back({{"kind", "status-update"},
                        {"taskId", task_id},
                        {"contextId", context},
                        {"status", {{"state", "working"}}},
                        {"final", false}});
      events.push_back({{"kind", "artifact-update"},
                        {"taskId", task_id},
                        {"contextId", context},
                        {"artifact", task["artifacts"][0]}});
      events.push_back({{"kind", "status-update"},
                        {"taskId", task_id},
                        {"contextId", context},
                        {"status", task["status"]},
                        {"final", true}});
    } else {
      json working = {{"taskId", task_id}, {"contextId", context}};
      working["status"] = {{"state", "TASK_STATE_WORKING"}};
      json artifact = {{"taskId", task_id}, {"contextId", context}, {"artifact", task["artifacts"][0]}};
      json completed = {{"taskId", task_id}, {"contextId", context}, {"status", task["status"]}};
      events.push_back(json{{"task", submitted}});
      events.push_back(json{{"statusUpdate", working}});
      events.push_back(json{{"artifactUpdate", artifact}});
      events.push_back(json{{"statusUpdate", completed}});
    }
    res.set_chunked_content_provider("text/event-stream", [events, id](std::size_t, httplib::DataSink& sink) {
      for (const auto& e : events) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        std::string chunk = "data: " + rpc_result(id, e).dump() + "\n\n";
        if (!sink.write(chunk.data(), chunk.size())) return false;
      }
      sink.done();
      return true;
    });
  };
  // A request member of an unexpected type deep in params (parts, contextId) is Invalid params too.
  server.Post(rpc_path, [handle](const httplib::Request& req, httplib::Response& res) {
    try {
      handle(req, res);
    } catch (const json::exception& e) {
      auto body = json::parse(req.body, nullptr, false);
      const json id = body.is_object() ? body.value("id", json(nullptr)) : json(nullptr);
      res.set_content(rpc_error(id, -32602, std::string("Invalid params: ") + e.what()).dump(),
                      "application/json");
    }
  });

  return example::serve(server, port, signals, "a2a_agent",
                        " (agent=" + agent + " revision=" + revision + ")");
}
