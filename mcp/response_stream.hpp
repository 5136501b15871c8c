#pragma once
// The SSE stream of one POST response on an MCP session (2025-11-25 Streamable HTTP, "Resumability and
// Redelivery"): every event gets an id `<stream>-<n>` (n = 0 for the priming event with empty data), and
// the events are kept until the response has reached the client, so that a client whose connection
// dropped before the response can resume the stream with GET and `Last-Event-ID`. Thread-safe.

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.hpp"
#include "mcp/mailbox.hpp"

namespace sluice::mcp {

class ResponseStream {
 public:
  /// `id` is unique within the session; at most `max_events` events are kept (older ones are dropped,
  /// and resuming before them fails).
  explicit ResponseStream(std::string id, std::size_t max_events = 1024)
      : id_(std::move(id)), max_events_(max_events) {}

  const std::string& id() const { return id_; }

  /// The priming event: id `<stream>-0` and an empty data field.
  std::string priming_event() const;

  /// Records the next message (a JSON-RPC message) as an event. Returns its SSE text when the POST
  /// connection still carries the stream (the caller writes it there); otherwise empty: the event goes
  /// to the GET that resumed the stream, or is kept for one.
  std::string record(std::string_view message);
  /// The response was recorded: the stream ends after it (a GET following it ends too).
  void finish();
  /// The POST connection is gone (a failed write or a disconnect): later events wait for a resume.
  void detach();
  bool finished() const;

  struct Resumed {
    std::vector<std::string> replay;  // SSE text of the events after the Last-Event-ID
    std::shared_ptr<Mailbox> follow;  // the SSE text of later events; closed once the stream finished
  };
  /// GET with `Last-Event-ID: <stream>-<after>`: takes the stream over. An Error with code 409 while a
  /// connection (the POST or another GET) still carries it, 400 when event `after` is unknown or no
  /// longer kept.
  Result<Resumed> resume(std::uint64_t after);
  /// The GET that resumed the stream is gone (a failed write or a disconnect).
  void detach_follower(const std::shared_ptr<Mailbox>& follow);

  /// `<stream>-<n>` → (stream, n); nullopt for anything else.
  static std::optional<std::pair<std::string, std::uint64_t>> parse_event_id(std::string_view event_id);

 private:
  const std::string id_;
  const std::size_t max_events_;
  mutable std::mutex mu_;
  std::vector<std::string> events_;  // SSE text of events first_kept_ … first_kept_ + size - 1
  std::uint64_t first_kept_ = 1;
  std::uint64_t next_ = 1;
  bool attached_ = true;  // the POST connection carries the stream
  bool finished_ = false;
  std::shared_ptr<Mailbox> follower_;
};

}  // namespace sluice::mcp
