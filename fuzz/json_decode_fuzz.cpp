// libFuzzer target: the JSON event format (single events and batches), plus re-encoding whatever
// decodes and checking that it decodes to the same event.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/json_format.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto e = sluice::parse_json_event(text)) {
    auto again = sluice::parse_json_event(sluice::to_json(e.value()));
    if (!again || !(again.value() == e.value())) std::abort();
    (void)sluice::event_to_json(e.value());
  }
  (void)sluice::parse_json_event_unchecked(text);
  if (auto batch = sluice::parse_json_batch(text)) {
    auto again = sluice::parse_json_batch(sluice::to_json_batch(batch.value()));
    if (!again || !(again.value() == batch.value())) std::abort();
  }
  return 0;
}
