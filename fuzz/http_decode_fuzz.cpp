// libFuzzer target: the HTTP binding. The input is header lines ("Name: value\n") up to an empty
// line, then the body. Whatever decodes is re-encoded in every mode and must decode again (to the same event
// in structured and batched mode).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/http_binding.hpp"
#include "core/json_format.hpp"

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
    // Binary mode may add the implied `application/json` content type; structured mode is exact but
    // for whitespace around JSON data, so compare the JSON forms.
    auto binary = sluice::decode_http(sluice::encode_http(e, sluice::HttpMode::Binary));
    if (!binary || binary.value().size() != 1) std::abort();
    auto structured = sluice::decode_http(sluice::encode_http(e, sluice::HttpMode::Structured));
    if (!structured || structured.value().size() != 1 ||
        sluice::to_json(structured.value()[0]) != sluice::to_json(e))
      std::abort();
  }
  auto batch = sluice::decode_http(sluice::encode_http_batch(events.value()));
  if (!batch || sluice::to_json_batch(batch.value()) != sluice::to_json_batch(events.value())) std::abort();
  return 0;
}
