// libFuzzer target: the protobuf event format. Whatever decodes must round-trip exactly.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/protobuf_format.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto e = sluice::parse_protobuf(bytes);
  if (!e) return 0;
  auto again = sluice::parse_protobuf(sluice::to_protobuf(e.value()));
  if (!again || !(again.value() == e.value())) std::abort();
  return 0;
}
