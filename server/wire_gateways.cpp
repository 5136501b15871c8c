#include "server/wiring.hpp"

namespace sluice {

// The MCP gateway (/mcp) and the A2A endpoints (/a2a/{agent}) are wired here.
void wire_gateways(ServerParts&) {}

}  // namespace sluice
