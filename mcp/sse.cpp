#include "mcp/sse.hpp"

namespace sluice::mcp {

std::string format_sse(std::string_view data, std::string_view id, std::string_view event) {
  std::string out;
  out.reserve(data.size() + 32);
  if (!id.empty()) out.append("id: ").append(id).append("\n");
  if (!event.empty()) out.append("event: ").append(event).append("\n");
  std::size_t start = 0;
  while (true) {
    auto end = data.find('\n', start);
    out.append("data: ")
        .append(data.substr(start, end == std::string_view::npos ? end : end - start))
        .append("\n");
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  out.append("\n");
  return out;
}

std::vector<SseEvent> SseParser::feed(std::string_view bytes) {
  std::vector<SseEvent> out;
  if (failed_) return out;
  for (char c : bytes) {
    if (skip_lf_) {
      skip_lf_ = false;
      if (c == '\n') continue;
    }
    if (c == '\n' || c == '\r') {
      skip_lf_ = c == '\r';
      line(buffer_, out);
      buffer_.clear();
      continue;
    }
    buffer_.push_back(c);
    if (buffer_.size() + current_.data.size() > max_event_bytes_) {
      failed_ = true;
      return out;
    }
  }
  return out;
}

void SseParser::line(std::string_view text, std::vector<SseEvent>& out) {
  if (text.empty()) {
    if (has_data_ || !current_.id.empty()) out.push_back(std::move(current_));
    current_ = SseEvent{};
    has_data_ = false;
    return;
  }
  if (text.front() == ':') return;
  auto colon = text.find(':');
  std::string_view field = text.substr(0, colon);
  std::string_view value = colon == std::string_view::npos ? std::string_view{} : text.substr(colon + 1);
  if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  if (field == "data") {
    if (has_data_) current_.data.push_back('\n');
    current_.data.append(value);
    has_data_ = true;
  } else if (field == "event") {
    current_.event = std::string(value);
  } else if (field == "id") {
    current_.id = std::string(value);
  }
}

}  // namespace sluice::mcp
