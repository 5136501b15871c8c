#include "mcp/session.hpp"

#include <openssl/rand.h>

#include <charconv>
#include <random>

#include "mcp/json_rpc.hpp"
#include "mcp/sse.hpp"

namespace sluice::mcp {

namespace {

std::string random_id() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) {
    std::random_device device;
    for (auto& b : bytes) b = static_cast<unsigned char>(device());
  }
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out.push_back(hex[b >> 4]);
    out.push_back(hex[b & 15]);
  }
  return out;
}

}  // namespace

int log_level_rank(std::string_view level) {
  static constexpr std::string_view levels[] = {"debug", "info",     "notice", "warning",
                                                "error", "critical", "alert",  "emergency"};
  for (int i = 0; i < 8; ++i)
    if (levels[i] == level) return i;
  return -1;
}

Session::Session(std::string id, std::string protocol_version, nlohmann::json client_info, TimePoint now)
    : id_(std::move(id)),
      protocol_version_(std::move(protocol_version)),
      client_info_(std::move(client_info)),
      last_used_(now) {}

void Session::touch(TimePoint now) {
  std::lock_guard lock(mu_);
  last_used_ = now;
}

Session::TimePoint Session::last_used() const {
  std::lock_guard lock(mu_);
  return last_used_;
}

void Session::mark_initialized() {
  std::lock_guard lock(mu_);
  initialized_ = true;
}

bool Session::initialized() const {
  std::lock_guard lock(mu_);
  return initialized_;
}

void Session::set_log_level(int rank) {
  std::lock_guard lock(mu_);
  log_level_ = rank;
}

int Session::log_level() const {
  std::lock_guard lock(mu_);
  return log_level_;
}

std::optional<UpstreamSession> Session::upstream(const std::string& key) const {
  std::lock_guard lock(mu_);
  auto it = upstream_.find(key);
  if (it == upstream_.end()) return std::nullopt;
  return it->second;
}

void Session::set_upstream(const std::string& key, UpstreamSession upstream) {
  std::lock_guard lock(mu_);
  upstream_[key] = std::move(upstream);
}

void Session::drop_upstream(const std::string& key, const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = upstream_.find(key);
  if (it != upstream_.end() && it->second.id == id) upstream_.erase(it);
}

std::vector<std::pair<std::string, UpstreamSession>> Session::upstreams() const {
  std::lock_guard lock(mu_);
  return {upstream_.begin(), upstream_.end()};
}

bool Session::begin_call(const nlohmann::json& id, std::shared_ptr<CancelSignal> cancel) {
  std::lock_guard lock(mu_);
  if (terminated_) {
    cancel->cancel();
    return true;
  }
  return calls_.emplace(id_key(id), std::move(cancel)).second;
}

void Session::end_call(const nlohmann::json& id) {
  std::lock_guard lock(mu_);
  calls_.erase(id_key(id));
}

bool Session::cancel_call(const nlohmann::json& id) {
  std::shared_ptr<CancelSignal> signal;
  {
    std::lock_guard lock(mu_);
    auto it = calls_.find(id_key(id));
    if (it == calls_.end()) return false;
    signal = it->second;
  }
  signal->cancel();
  return true;
}

std::size_t Session::calls_in_flight() const {
  std::lock_guard lock(mu_);
  return calls_.size();
}

std::shared_ptr<Mailbox> Session::open_stream() {
  std::lock_guard lock(mu_);
  if (stream_open_ || terminated_) return nullptr;
  stream_open_ = true;
  return mailbox_;
}

Result<std::shared_ptr<Mailbox>> Session::resume_stream(std::uint64_t after) {
  std::lock_guard lock(mu_);
  if (terminated_) return sluice::make_error("Last-Event-ID", "the session has ended", 404);
  if (stream_open_)
    return sluice::make_error("Last-Event-ID", "this session's GET stream is still open", 409);
  if (after >= next_stream_event_ || after + 1 < first_stream_event_)
    return sluice::make_error("Last-Event-ID",
                              "event " + std::string(get_stream_id) + "-" + std::to_string(after) +
                                  " is not kept on this session's GET stream",
                              400);
  // Every queued event is also kept, so the new mailbox holds the events after `after`, in order.
  mailbox_ = std::make_shared<Mailbox>(max_stream_events);
  for (auto it = stream_events_.begin() + static_cast<std::ptrdiff_t>(after + 1 - first_stream_event_);
       it != stream_events_.end(); ++it)
    mailbox_->push(*it);
  stream_open_ = true;
  return mailbox_;
}

void Session::close_stream() {
  std::lock_guard lock(mu_);
  stream_open_ = false;
}

bool Session::stream_open() const {
  std::lock_guard lock(mu_);
  return stream_open_;
}

void Session::notify(const nlohmann::json& message) {
  // Under the lock: the mailbox gets the events in the order of their ids.
  std::lock_guard lock(mu_);
  if (terminated_) return;
  auto event =
      format_sse(message.dump(), std::string(get_stream_id) + "-" + std::to_string(next_stream_event_++));
  stream_events_.push_back(event);
  if (stream_events_.size() > max_stream_events) {
    stream_events_.pop_front();
    ++first_stream_event_;
  }
  mailbox_->push(std::move(event));
}

std::shared_ptr<ResponseStream> Session::open_response_stream() {
  std::lock_guard lock(mu_);
  auto number = next_response_stream_++;
  auto stream = std::make_shared<ResponseStream>(std::to_string(number));
  response_streams_.emplace(number, stream);
  while (response_streams_.size() > max_response_streams) response_streams_.erase(response_streams_.begin());
  return stream;
}

std::shared_ptr<ResponseStream> Session::response_stream(const std::string& id) const {
  std::uint64_t number = 0;
  auto [end, ec] = std::from_chars(id.data(), id.data() + id.size(), number);
  if (id.empty() || ec != std::errc() || end != id.data() + id.size()) return nullptr;
  std::lock_guard lock(mu_);
  auto it = response_streams_.find(number);
  return it == response_streams_.end() ? nullptr : it->second;
}

void Session::drop_response_stream(const std::string& id) {
  std::lock_guard lock(mu_);
  for (auto it = response_streams_.begin(); it != response_streams_.end(); ++it)
    if (it->second->id() == id) {
      response_streams_.erase(it);
      return;
    }
}

void Session::terminate() {
  std::vector<std::shared_ptr<CancelSignal>> signals;
  std::shared_ptr<Mailbox> mailbox;
  std::vector<std::shared_ptr<ResponseStream>> streams;
  {
    std::lock_guard lock(mu_);
    terminated_ = true;
    for (auto& [_, signal] : calls_) signals.push_back(signal);
    mailbox = mailbox_;
    for (auto& [_, stream] : response_streams_) streams.push_back(stream);
    response_streams_.clear();
  }
  for (auto& signal : signals) signal->cancel();
  mailbox->close();
  for (auto& stream : streams) stream->finish();  // a GET following one ends
}

bool Session::terminated() const {
  std::lock_guard lock(mu_);
  return terminated_;
}

std::shared_ptr<Session> SessionStore::create(std::string protocol_version, nlohmann::json client_info,
                                              Session::TimePoint now) {
  auto session =
      std::make_shared<Session>(random_id(), std::move(protocol_version), std::move(client_info), now);
  std::lock_guard lock(mu_);
  if (sessions_.size() >= max_sessions_) return nullptr;
  sessions_.emplace(session->id(), session);
  return session;
}

std::shared_ptr<Session> SessionStore::find(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : it->second;
}

std::shared_ptr<Session> SessionStore::remove(const std::string& id) {
  std::shared_ptr<Session> session;
  {
    std::lock_guard lock(mu_);
    auto it = sessions_.find(id);
    if (it == sessions_.end()) return nullptr;
    session = std::move(it->second);
    sessions_.erase(it);
  }
  session->terminate();
  return session;
}

std::vector<std::shared_ptr<Session>> SessionStore::all() const {
  std::lock_guard lock(mu_);
  std::vector<std::shared_ptr<Session>> out;
  for (const auto& [_, s] : sessions_) out.push_back(s);
  return out;
}

std::size_t SessionStore::size() const {
  std::lock_guard lock(mu_);
  return sessions_.size();
}

std::size_t SessionStore::expire(std::chrono::steady_clock::duration idle, Session::TimePoint now) {
  std::vector<std::shared_ptr<Session>> expired;
  {
    std::lock_guard lock(mu_);
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      auto& s = it->second;
      if (now - s->last_used() > idle && s->calls_in_flight() == 0 && !s->stream_open()) {
        expired.push_back(std::move(s));
        it = sessions_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& s : expired) s->terminate();
  return expired.size();
}

bool SessionStore::valid_id(std::string_view id) {
  if (id.empty() || id.size() > 256) return false;
  for (char c : id)
    if (c < 0x21 || c > 0x7e) return false;
  return true;
}

}  // namespace sluice::mcp
