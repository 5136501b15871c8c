#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace sluice {

/// Standard base64 with padding (RFC 4648 §4).
std::string base64_encode(std::string_view bytes);

/// Decodes standard base64; whitespace is not allowed; padding optional. nullopt when malformed.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace sluice
