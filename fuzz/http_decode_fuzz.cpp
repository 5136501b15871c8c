// libFuzzer target: the HTTP binding. The input is header lines ("Name: value\n") up to an empty
// line, then the body. Whatever decodes is re-encoded in every mode and must decode again.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/http_binding.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  sluice::HttpMessage msg;
  while (!in.empty()) {
    auto eol = in.find('\n');
    std::string_view line = in.substr(0, eol);
    in = eol == std::string_view::npos ? std::string_view() : in.substr(eol + 1);
    if (line.empty()) break;
    auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    msg.headers.emplace_back(std::string(line.substr(0, colon)), std::string(line.substr(colon + 1)));
  }
  msg.body = std::string(in);
  auto events = sluice::decode_http(msg);
  if (!events) return 0;
  for (const auto& e : events.value()) {
    for (auto mode : {sluice::HttpMode::Binary, sluice::HttpMode::Structured}) {
      auto again = sluice::decode_http(sluice::encode_http(e, mode));
      if (!again || again.value().size() != 1) std::abort();
    }
  }
  auto batch = sluice::decode_http(sluice::encode_http_batch(events.value()));
  if (!batch || batch.value().size() != events.value().size()) std::abort();
  return 0;
}
