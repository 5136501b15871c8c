// libFuzzer target: the Kafka binding. Input: first byte = flags (bit 0: value present, bit 1: key
// present), then header lines ("name: value\n") up to an empty line, then the value.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/kafka_binding.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::uint8_t flags = data[0];
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  sluice::KafkaRecord r;
  while (!in.empty()) {
    auto eol = in.find('\n');
    std::string_view line = in.substr(0, eol);
    in = eol == std::string_view::npos ? std::string_view() : in.substr(eol + 1);
    if (line.empty()) break;
    auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    auto value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    r.headers.emplace_back(std::string(line.substr(0, colon)), std::string(value));
  }
  if (flags & 1) r.value = std::string(in);
  if (flags & 2) r.key = "key";
  (void)sluice::is_cloudevent_record(r);
  auto e = sluice::decode_kafka(r);
  if (!e) return 0;
  for (auto mode : {sluice::KafkaMode::Binary, sluice::KafkaMode::Structured}) {
    auto again = sluice::decode_kafka(sluice::encode_kafka(e.value(), mode));
    if (!again) std::abort();
  }
  return 0;
}
