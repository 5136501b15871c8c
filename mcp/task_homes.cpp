#include "mcp/task_homes.hpp"

#include <strings.h>

#include <algorithm>

namespace sluice::mcp {
namespace {

using nlohmann::json;

void add_string(std::vector<std::string>& out, const json& object, const char* field) {
  if (!object.is_object()) return;
  auto it = object.find(field);
  if (it == object.end() || !it->is_string() || it->get_ref<const std::string&>().empty()) return;
  const auto& id = it->get_ref<const std::string&>();
  if (std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
}

// A member that must be a string: empty when it is absent or of another type.
std::string string_of(const json& object, const char* field) {
  if (!object.is_object()) return {};
  auto it = object.find(field);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

void TaskHomes::remember(const std::string& agent, const std::string& task, const std::string& address) {
  std::lock_guard lock(mu_);
  Key key{agent, task};
  auto [it, inserted] = homes_.insert_or_assign(key, address);
  if (!inserted) return;
  order_.push_back(std::move(key));
  while (homes_.size() > capacity_ && !order_.empty()) {
    homes_.erase(order_.front());
    order_.pop_front();
  }
}

std::optional<std::string> TaskHomes::find(const std::string& agent, const std::string& task) const {
  std::lock_guard lock(mu_);
  auto it = homes_.find(Key{agent, task});
  if (it == homes_.end()) return std::nullopt;
  return it->second;
}

void TaskHomes::forget(const std::string& agent, const std::string& task) {
  std::lock_guard lock(mu_);
  homes_.erase(Key{agent, task});  // its place in order_ goes when it reaches the front
}

std::size_t TaskHomes::size() const {
  std::lock_guard lock(mu_);
  return homes_.size();
}

std::vector<std::string> task_ids_in(const json& response) {
  std::vector<std::string> out;
  if (!response.is_object()) return out;
  auto result = response.find("result");
  if (result == response.end() || !result->is_object()) return out;
  const json& r = *result;
  // v0.3: the result is the Task, Message or update itself, with a kind.
  const std::string kind = string_of(r, "kind");
  if (kind == "task") add_string(out, r, "id");
  add_string(out, r, "taskId");
  // v1.0: the result wraps it.
  if (r.contains("task")) add_string(out, r["task"], "id");
  for (const char* wrapper : {"message", "statusUpdate", "artifactUpdate"})
    if (r.contains(wrapper)) add_string(out, r[wrapper], "taskId");
  return out;
}

std::optional<std::string> task_of_request(const json& request) {
  if (!request.is_object()) return std::nullopt;
  const std::string method = string_of(request, "method");
  const bool about_a_task = method.rfind("tasks/", 0) == 0 || method == "GetTask" || method == "CancelTask" ||
                            method == "SubscribeToTask" ||
                            method.find("TaskPushNotificationConfig") != std::string::npos;
  const bool continues_a_task = method == "SendMessage" || method == "SendStreamingMessage" ||
                                method == "message/send" || method == "message/stream";
  if (!about_a_task && !continues_a_task) return std::nullopt;
  const json params = request.value("params", json::object());
  if (!params.is_object()) return std::nullopt;
  if (continues_a_task) {
    // A2A §3.4.2: a message with a taskId continues that task, which only its replica knows.
    const json message = params.value("message", json::object());
    std::string id = string_of(message, "taskId");
    if (id.empty()) return std::nullopt;
    return id;
  }
  for (const char* field : {"id", "taskId"})
    if (params.contains(field) && params[field].is_string() && !params[field].get<std::string>().empty())
      return params[field].get<std::string>();
  if (params.contains("name") && params["name"].is_string()) {
    const std::string name = params["name"];  // tasks/{id} or tasks/{id}/pushNotificationConfigs/…
    if (name.rfind("tasks/", 0) == 0) {
      std::string id =
          name.substr(6, name.find('/', 6) == std::string::npos ? std::string::npos : name.find('/', 6) - 6);
      if (!id.empty()) return id;
    }
  }
  return std::nullopt;
}

void TaskIdReader::start(const HttpHeaders& headers) {
  for (const auto& [name, value] : headers) {
    if (strcasecmp(name.c_str(), "content-type") != 0) continue;
    sse_ = value.rfind("text/event-stream", 0) == 0;
    json_ = value.rfind("application/json", 0) == 0;
  }
}

void TaskIdReader::feed(std::string_view bytes) {
  if (sse_) {
    for (const auto& event : parser_.feed(bytes)) take(json::parse(event.data, nullptr, false));
  } else if (json_ && body_.size() + bytes.size() <= (1u << 20)) {
    body_.append(bytes);
  } else {
    json_ = false;  // too large to look into
    body_.clear();
  }
}

std::vector<std::string> TaskIdReader::finish() {
  if (json_) take(json::parse(body_, nullptr, false));
  body_.clear();
  return std::move(ids_);
}

void TaskIdReader::take(const json& message) {
  for (auto& id : task_ids_in(message))
    if (std::find(ids_.begin(), ids_.end(), id) == ids_.end()) ids_.push_back(std::move(id));
}

}  // namespace sluice::mcp
