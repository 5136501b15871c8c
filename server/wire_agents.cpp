#include "server/wiring.hpp"

namespace sluice {

// Agents (revisions, activator, replicas) are wired here.
void wire_agents(ServerParts&) {}

}  // namespace sluice
