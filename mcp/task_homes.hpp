#pragma once
// Which replica holds an A2A task. An A2A agent keeps its tasks where it runs them; with several
// replicas, GetTask and CancelTask must reach the replica whose SendMessage made the task. The A2A
// gateway remembers, per agent, the replica (host:port) that answered with each task id, and sends the
// task's later requests there. Bounded: the oldest entries go first. Thread-safe.

#include <cstddef>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/http_client.hpp"
#include "mcp/sse.hpp"

namespace sluice::mcp {

class TaskHomes {
 public:
  explicit TaskHomes(std::size_t capacity = 10000) : capacity_(capacity) {}

  void remember(const std::string& agent, const std::string& task, const std::string& address);
  std::optional<std::string> find(const std::string& agent, const std::string& task) const;
  void forget(const std::string& agent, const std::string& task);
  std::size_t size() const;

 private:
  using Key = std::pair<std::string, std::string>;  // agent, task id
  std::size_t capacity_;
  mutable std::mutex mu_;
  std::map<Key, std::string> homes_;
  std::deque<Key> order_;  // insertion order, for eviction
};

/// The task ids a JSON-RPC response (or streamed event) of an A2A agent names: a Task's id, and the
/// taskId of messages and status or artifact updates, in the v1.0 shapes ({task}, {message},
/// {statusUpdate}, {artifactUpdate}) and the v0.3 ones (kind: task, message, status-update, …).
std::vector<std::string> task_ids_in(const nlohmann::json& response);

/// The task a request is about (GetTask, CancelTask, SubscribeToTask, push notification configs, and
/// their v0.3 names): params.id, params.taskId, or the id in params.name ("tasks/{id}…"); and the task
/// a SendMessage or SendStreamingMessage (message/send, message/stream) continues: params.message.taskId.
std::optional<std::string> task_of_request(const nlohmann::json& request);

/// Reads an A2A agent's answer as it streams by (application/json, or text/event-stream events) and
/// collects the task ids it names. A JSON body over 1 MiB is not read.
class TaskIdReader {
 public:
  void start(const HttpHeaders& headers);
  void feed(std::string_view bytes);
  /// The ids seen, once the answer ended.
  std::vector<std::string> finish();

 private:
  void take(const nlohmann::json& message);

  bool sse_ = false;
  bool json_ = false;
  SseParser parser_{1 << 20};
  std::string body_;
  std::vector<std::string> ids_;
};

}  // namespace sluice::mcp
