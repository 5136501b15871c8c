// libFuzzer target: the SSE parser that reads agents' MCP and A2A event streams. The first byte seeds the
// sizes of the pieces the rest is fed in. Aborts when feeding the stream in pieces gives other events (or
// another failure) than feeding it whole, or when an event written again by format_sse() does not parse
// back to itself.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "mcp/sse.hpp"

namespace {

using sluice::mcp::SseEvent;
using sluice::mcp::SseParser;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "sse_stream_fuzz: %s\n", what);
  std::abort();
}

bool same(const std::vector<SseEvent>& a, const std::vector<SseEvent>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].event != b[i].event || a[i].id != b[i].id || a[i].data != b[i].data) return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::uint32_t split = data[0] | 1u;
  const std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);
  constexpr std::size_t kMaxEventBytes = 256;

  SseParser whole(kMaxEventBytes);
  const auto events = whole.feed(stream);

  SseParser pieces(kMaxEventBytes);
  std::vector<SseEvent> fed;
  for (std::size_t at = 0; at < stream.size();) {
    split = split * 1103515245u + 12345u;
    const std::size_t n = std::min<std::size_t>(stream.size() - at, 1 + (split >> 16) % 7);
    for (auto& e : pieces.feed(stream.substr(at, n))) fed.push_back(std::move(e));
    at += n;
  }
  if (whole.failed() != pieces.failed()) fail("the failure depends on how the stream is split");
  if (!same(events, fed)) fail("the events depend on how the stream is split");

  for (const auto& e : events) {
    SseParser again;
    const auto parsed = again.feed(sluice::mcp::format_sse(e.data, e.id, e.event));
    if (again.failed() || parsed.size() != 1 || !same(parsed, {e})) fail("format_sse does not round-trip");
  }
  return 0;
}
