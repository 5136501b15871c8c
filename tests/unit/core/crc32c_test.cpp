#include "core/crc32c.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace sluice {
namespace {

TEST(Crc32c, CheckValue) {
  EXPECT_EQ(crc32c(std::string_view("123456789")), 0xE3069283u);
  EXPECT_EQ(crc32c_software("123456789", 9), 0xE3069283u);
  EXPECT_EQ(crc32c(std::string_view()), 0u);
}

// RFC 3720 (iSCSI) appendix B.4 test vectors.
TEST(Crc32c, Rfc3720Vectors) {
  std::string zeros(32, '\0');
  std::string ones(32, '\xFF');
  std::string incrementing(32, '\0');
  std::string decrementing(32, '\0');
  for (int i = 0; i < 32; ++i) {
    incrementing[static_cast<std::size_t>(i)] = static_cast<char>(i);
    decrementing[static_cast<std::size_t>(i)] = static_cast<char>(31 - i);
  }
  EXPECT_EQ(crc32c(zeros), 0x8A9136AAu);
  EXPECT_EQ(crc32c(ones), 0x62A8AB43u);
  EXPECT_EQ(crc32c(incrementing), 0x46DD794Eu);
  EXPECT_EQ(crc32c(decrementing), 0x113FDB5Cu);
}

TEST(Crc32c, HardwareAndSoftwareAgreeOnEveryLengthAndAlignment) {
  std::mt19937 rng(42);
  std::string data(4096 + 16, '\0');
  for (auto& c : data) c = static_cast<char>(rng());
  for (std::size_t align = 0; align < 8; ++align) {
    for (std::size_t len : {0, 1, 3, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000, 4096}) {
      EXPECT_EQ(crc32c(data.data() + align, len), crc32c_software(data.data() + align, len))
          << "align " << align << " len " << len;
    }
  }
}

TEST(Crc32c, ExtendsAcrossPieces) {
  std::string a = "The quick brown fox ";
  std::string b = "jumps over the lazy dog";
  EXPECT_EQ(crc32c(b, crc32c(a)), crc32c(a + b));
  EXPECT_EQ(crc32c_software(b.data(), b.size(), crc32c_software(a.data(), a.size())), crc32c(a + b));
}

TEST(Crc32c, DetectsSingleBitFlip) {
  std::string data(1024, 'x');
  const auto before = crc32c(data);
  data[500] ^= 0x01;
  EXPECT_NE(crc32c(data), before);
}

}  // namespace
}  // namespace sluice
