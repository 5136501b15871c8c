// JSON-RPC 2.0 message parsing and validation (the body of every POST /mcp and /a2a request), and the
// SSE parser the gateway feeds with agents' responses.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "mcp/json_rpc.hpp"
#include "mcp/sse.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto parsed = sluice::mcp::parse_message(input);
  if (auto* message = std::get_if<sluice::mcp::Message>(&parsed)) {
    if (message->is_request()) (void)sluice::mcp::make_rpc_result(message->id, nullptr).dump();
  } else {
    (void)sluice::mcp::make_rpc_failure(std::get<sluice::mcp::RpcFailure>(parsed)).dump();
  }
  sluice::mcp::SseParser sse(1 << 16);
  auto half = size / 2;
  sse.feed(input.substr(0, half));
  sse.feed(input.substr(half));
  return 0;
}
