#pragma once
// Server-Sent Events (WHATWG HTML, "event stream interpretation"): formatting events for clients and an
// incremental parser for streams read from agents.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::mcp {

struct SseEvent {
  std::string event;  // empty: "message"
  std::string id;
  std::string data;  // data lines joined with '\n'
};

/// One event: optional "id:" and "event:" lines, one "data:" line per line of `data`, a blank line.
std::string format_sse(std::string_view data, std::string_view id = {}, std::string_view event = {});

/// Feeds bytes in any split; returns the events completed so far. Lines end with LF, CRLF or CR.
/// Comments (":") and "retry:" are skipped. A stream larger than `max_event_bytes` in one event is
/// an error (the parser then reports failed()).
class SseParser {
 public:
  explicit SseParser(std::size_t max_event_bytes = 16 << 20) : max_event_bytes_(max_event_bytes) {}

  std::vector<SseEvent> feed(std::string_view bytes);
  bool failed() const { return failed_; }

 private:
  void line(std::string_view text, std::vector<SseEvent>& out);

  std::size_t max_event_bytes_;
  std::string buffer_;
  SseEvent current_;
  bool has_data_ = false;
  bool skip_lf_ = false;
  bool failed_ = false;
};

}  // namespace sluice::mcp
