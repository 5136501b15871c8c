#pragma once
// Raw TCP clients for tests that speak HTTP byte by byte.

#include <chrono>

namespace sluice::testing {

/// A socket connected to 127.0.0.1:`port` (the caller closes it); with `receive_timeout`, its reads give
/// up after that long. Fails the current test when the connection cannot be made.
int connect_loopback(int port, std::chrono::seconds receive_timeout = std::chrono::seconds(0));

}  // namespace sluice::testing
