#include "mcp/response_stream.hpp"

#include <charconv>

#include "mcp/sse.hpp"

namespace sluice::mcp {

std::string ResponseStream::priming_event() const {
  return format_sse("", id_ + "-0");
}

std::string ResponseStream::record(std::string_view message) {
  std::shared_ptr<Mailbox> follower;
  std::string event;
  {
    std::lock_guard lock(mu_);
    event = format_sse(message, id_ + "-" + std::to_string(next_++));
    events_.push_back(event);
    if (events_.size() > max_events_) {
      events_.erase(events_.begin());
      ++first_kept_;
    }
    if (attached_) return event;
    follower = follower_;
  }
  if (follower) follower->push(std::move(event));
  return {};
}

void ResponseStream::finish() {
  std::shared_ptr<Mailbox> follower;
  {
    std::lock_guard lock(mu_);
    finished_ = true;
    follower = follower_;
  }
  if (follower) follower->close();
}

void ResponseStream::detach() {
  std::lock_guard lock(mu_);
  attached_ = false;
}

bool ResponseStream::finished() const {
  std::lock_guard lock(mu_);
  return finished_;
}

Result<ResponseStream::Resumed> ResponseStream::resume(std::uint64_t after) {
  std::lock_guard lock(mu_);
  if (attached_ || follower_)
    return sluice::make_error("Last-Event-ID", "stream " + id_ + " is still connected", 409);
  if (after >= next_ || after + 1 < first_kept_)
    return sluice::make_error(
        "Last-Event-ID", "event " + id_ + "-" + std::to_string(after) + " is not kept on stream " + id_, 400);
  Resumed out;
  out.replay.assign(events_.begin() + static_cast<std::ptrdiff_t>(after + 1 - first_kept_), events_.end());
  out.follow = std::make_shared<Mailbox>(max_events_);
  if (finished_) out.follow->close();
  follower_ = out.follow;
  return out;
}

void ResponseStream::detach_follower(const std::shared_ptr<Mailbox>& follow) {
  std::lock_guard lock(mu_);
  if (follower_ == follow) follower_.reset();
}

std::optional<std::pair<std::string, std::uint64_t>> ResponseStream::parse_event_id(
    std::string_view event_id) {
  auto dash = event_id.rfind('-');
  if (dash == std::string_view::npos || dash == 0 || dash + 1 == event_id.size()) return std::nullopt;
  std::uint64_t n = 0;
  auto digits = event_id.substr(dash + 1);
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  return std::make_pair(std::string(event_id.substr(0, dash)), n);
}

}  // namespace sluice::mcp
