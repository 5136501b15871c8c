#pragma once
// MCP sessions of the Streamable HTTP transport (2025-03-26 … 2025-11-25): one per `initialize`, named
// by the MCP-Session-Id header. A session holds what the gateway keeps per client: the negotiated
// version, the upstream sessions it opened on agents, the tools/call requests in flight (so that
// notifications/cancelled can find them) and the server-to-client stream (GET).
//
// Requests of one session may arrive on several connections, hence on several io_contexts: every
// member is guarded by the session's mutex.

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/http_client.hpp"
#include "core/result.hpp"
#include "mcp/mailbox.hpp"
#include "mcp/response_stream.hpp"

namespace sluice::mcp {

/// An MCP session the gateway opened on an agent's replica.
struct UpstreamSession {
  std::string id;  // the agent's MCP-Session-Id; empty when the agent does not use sessions
  std::string protocol_version;
  std::string address;  // host:port of the replica that holds it
};

/// The rank of an MCP logging level (RFC 5424 severities): debug 0, info 1, notice 2, warning 3, error 4,
/// critical 5, alert 6, emergency 7; -1 for anything else.
int log_level_rank(std::string_view level);

class Session {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  Session(std::string id, std::string protocol_version, nlohmann::json client_info, TimePoint now);

  const std::string& id() const { return id_; }
  const std::string& protocol_version() const { return protocol_version_; }
  const nlohmann::json& client_info() const { return client_info_; }

  void touch(TimePoint now);
  TimePoint last_used() const;
  void mark_initialized();
  bool initialized() const;

  /// logging/setLevel: notifications/message below this rank are not sent to the client (0: all).
  void set_log_level(int rank);
  int log_level() const;

  /// Upstream sessions, keyed by agent and replica.
  std::optional<UpstreamSession> upstream(const std::string& key) const;
  void set_upstream(const std::string& key, UpstreamSession upstream);
  /// Forgets the upstream session `key` if it is still `id` (another request may have replaced it).
  void drop_upstream(const std::string& key, const std::string& id);
  std::vector<std::pair<std::string, UpstreamSession>> upstreams() const;

  /// Registers a request in flight; false when one with this id already is (ids must be unique).
  bool begin_call(const nlohmann::json& id, std::shared_ptr<CancelSignal> cancel);
  void end_call(const nlohmann::json& id);
  /// notifications/cancelled: cancels the request's work. False when no such request is in flight.
  bool cancel_call(const nlohmann::json& id);
  std::size_t calls_in_flight() const;

  /// The server-to-client stream: at most one GET stream at a time (nullptr when one is open). The
  /// mailbox yields SSE events whose ids are `0-<n>` (stream "0": response streams count from 1).
  std::shared_ptr<Mailbox> open_stream();
  /// GET with `Last-Event-ID: 0-<after>` (2025-11-25 "Resumability and Redelivery"): opens the stream
  /// with the events after `after` first, those sent on an earlier GET whose connection dropped and
  /// then those still queued. An Error with code 409 while a GET stream is open, 400 when event `after`
  /// was never sent or is no longer kept (the last `max_stream_events` are).
  Result<std::shared_ptr<Mailbox>> resume_stream(std::uint64_t after);
  void close_stream();
  bool stream_open() const;
  /// Sends a message on the GET stream, or keeps it (bounded) until one opens.
  void notify(const nlohmann::json& message);
  static constexpr const char* get_stream_id = "0";
  static constexpr std::size_t max_stream_events = 256;

  /// A new POST response stream (ids "1", "2", … within the session). At most `max_response_streams`
  /// are kept: the oldest is dropped to make room (its client can no longer resume it).
  std::shared_ptr<ResponseStream> open_response_stream();
  /// The kept response stream `id`; nullptr when unknown or dropped.
  std::shared_ptr<ResponseStream> response_stream(const std::string& id) const;
  /// Forgets a response stream whose response reached the client.
  void drop_response_stream(const std::string& id);
  static constexpr std::size_t max_response_streams = 32;

  /// DELETE or expiry: cancels every request in flight and ends the stream.
  void terminate();
  bool terminated() const;

 private:
  const std::string id_;
  const std::string protocol_version_;
  const nlohmann::json client_info_;
  mutable std::mutex mu_;
  TimePoint last_used_;
  bool initialized_ = false;
  int log_level_ = 0;
  bool terminated_ = false;
  bool stream_open_ = false;
  std::map<std::string, UpstreamSession> upstream_;
  std::map<std::string, std::shared_ptr<CancelSignal>> calls_;
  std::shared_ptr<Mailbox> mailbox_ = std::make_shared<Mailbox>(max_stream_events);
  std::deque<std::string> stream_events_;  // SSE text of GET stream events first_stream_event_ …
  std::uint64_t first_stream_event_ = 1;
  std::uint64_t next_stream_event_ = 1;
  std::uint64_t next_response_stream_ = 1;
  std::map<std::uint64_t, std::shared_ptr<ResponseStream>> response_streams_;
};

class SessionStore {
 public:
  explicit SessionStore(std::size_t max_sessions = 10000) : max_sessions_(max_sessions) {}

  /// A new session with a random id (128 bits, hex); nullptr when the store is full.
  std::shared_ptr<Session> create(std::string protocol_version, nlohmann::json client_info,
                                  Session::TimePoint now);
  std::shared_ptr<Session> find(const std::string& id) const;
  /// Removes and terminates a session; nullptr when unknown.
  std::shared_ptr<Session> remove(const std::string& id);
  std::vector<std::shared_ptr<Session>> all() const;
  std::size_t size() const;
  /// Terminates sessions idle since before `now - idle` with nothing in flight and no open stream.
  std::size_t expire(std::chrono::steady_clock::duration idle, Session::TimePoint now);

  /// MCP-Session-Id values: visible ASCII (0x21-0x7E) only, at most 256 characters.
  static bool valid_id(std::string_view id);

 private:
  std::size_t max_sessions_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Session>> sessions_;
};

}  // namespace sluice::mcp
