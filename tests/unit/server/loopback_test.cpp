// Which --listen hosts count as loopback: a server bound anywhere else refuses to start without
// authentication.

#include <gtest/gtest.h>

#include "server/wiring.hpp"

namespace sluice {
namespace {

TEST(Loopback, LoopbackAddressesAndLocalhost) {
  for (const std::string host : {"127.0.0.1", "127.8.9.10", "localhost", "::1", "[::1]"})
    EXPECT_TRUE(is_loopback(host)) << host;
}

TEST(Loopback, NamesThatLookLikeLoopbackAndOtherAddressesAreNot) {
  for (const std::string host : {"127.example.com", "127.0.0.1.nip.io", "0.0.0.0", "::", "[::]", "10.0.0.1",
                                 "192.168.1.2", "::ffff:127.0.0.1x", "", "[::1", "example.com"})
    EXPECT_FALSE(is_loopback(host)) << host;
}

}  // namespace
}  // namespace sluice
