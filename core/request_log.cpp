#include "core/request_log.hpp"

#include <algorithm>
#include <array>
#include <atomic>

#include "core/log.hpp"
#include "core/text.hpp"
#include "core/trace.hpp"

namespace sluice::request_log {
namespace {

std::atomic<bool> g_enabled{false};
std::vector<std::string>& fields() {
  static std::vector<std::string> f;
  return f;
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

// Whether a query parameter's name says that its value is a credential: compared lowercase with
// separators dropped, so `access_token`, `X-Amz-Security-Token` and `apiKey` all count.
bool is_secret_name(std::string_view name) {
  std::string folded;
  for (char c : name) {
    c = ascii_lower(c);
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) folded += c;
  }
  static constexpr std::array<std::string_view, 10> kParts = {
      "token",     "secret",    "passw",      "pwd",           "apikey",
      "accesskey", "signature", "credential", "authorization", "privatekey"};
  static constexpr std::array<std::string_view, 7> kNames = {"key",  "sig", "code",   "pass",
                                                             "auth", "jwt", "session"};
  for (auto part : kParts)
    if (folded.find(part) != std::string::npos) return true;
  return std::find(kNames.begin(), kNames.end(), folded) != kNames.end();
}

// Where a URL inside `text` ends: URLs hold no whitespace or quotes.
bool ends_url(char c) {
  return is_space(c) || c == '"' || c == '\'';
}

}  // namespace

std::string redact_secrets(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    if (text.substr(i, 3) == "://") {
      out += "://";
      i += 3;
      // RFC 3986 §3.2.1: the userinfo is what precedes the last '@' of the authority.
      std::size_t end = i;
      while (end < text.size() && std::string_view("/?#").find(text[end]) == std::string_view::npos &&
             !ends_url(text[end]))
        ++end;
      auto at = text.substr(i, end - i).rfind('@');
      if (at != std::string_view::npos) {
        out += "REDACTED";
        i += at;
      }
      continue;
    }
    const char c = text[i];
    out += c;
    ++i;
    if (c != '?' && c != '&') continue;
    std::size_t name_end = i;
    while (name_end < text.size() && std::string_view("=&#").find(text[name_end]) == std::string_view::npos &&
           !ends_url(text[name_end]))
      ++name_end;
    if (name_end == text.size() || text[name_end] != '=' || !is_secret_name(text.substr(i, name_end - i)))
      continue;
    out.append(text.substr(i, name_end + 1 - i));
    out += "REDACTED";
    std::size_t value_end = name_end + 1;
    while (value_end < text.size() && text[value_end] != '&' && text[value_end] != '#' &&
           !ends_url(text[value_end]))
      ++value_end;
    // In a message, "URL: reason" puts the colon right after the URL.
    if (value_end < text.size() && value_end > name_end + 1 && text[value_end - 1] == ':') --value_end;
    i = value_end;
  }
  return out;
}

void configure(bool enabled, std::vector<std::string> selected) {
  fields() = std::move(selected);
  g_enabled = enabled;
}

bool enabled() {
  return g_enabled.load(std::memory_order_relaxed);
}

void write(nlohmann::json line) {
  for (const char* key : {"path", "url", "error"}) {
    auto it = line.find(key);
    if (it != line.end() && it->is_string()) *it = redact_secrets(it->get_ref<const std::string&>());
  }
  const auto& selected = fields();
  if (!selected.empty()) {
    for (auto it = line.begin(); it != line.end();) {
      if (std::find(selected.begin(), selected.end(), it.key()) == selected.end())
        it = line.erase(it);
      else
        ++it;
    }
  }
  SLUICE_LOG(request, info, "{}", line.dump());
}

std::string trace_id_of(std::string_view traceparent) {
  auto tp = TraceParent::parse(traceparent);
  return tp ? tp->trace_id.str() : "";
}

}  // namespace sluice::request_log
