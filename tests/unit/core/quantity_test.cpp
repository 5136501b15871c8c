#include "core/quantity.hpp"

#include <gtest/gtest.h>

namespace sluice {
namespace {

std::int64_t bytes(std::string_view s) {
  auto r = parse_quantity_bytes(s);
  EXPECT_TRUE(r) << s << ": " << (r ? "" : r.error().to_string());
  return r ? r.value() : -1;
}

double number(std::string_view s) {
  auto r = parse_quantity(s);
  EXPECT_TRUE(r) << s << ": " << (r ? "" : r.error().to_string());
  return r ? r.value() : -1;
}

TEST(Quantity, Bytes) {
  EXPECT_EQ(bytes("8Gi"), 8LL << 30);
  EXPECT_EQ(bytes("512Mi"), 512LL << 20);
  EXPECT_EQ(bytes("1G"), 1'000'000'000);
  EXPECT_EQ(bytes("100k"), 100'000);
  EXPECT_EQ(bytes("1024"), 1024);
  EXPECT_EQ(bytes("1Ki"), 1024);
  EXPECT_EQ(bytes("1.5Gi"), 3LL << 29);
  EXPECT_EQ(bytes("2Ti"), 2LL << 40);
  EXPECT_EQ(bytes("1Ei"), 1LL << 60);
  EXPECT_EQ(bytes("1e3"), 1000);
  EXPECT_EQ(bytes("1E6"), 1'000'000);
  EXPECT_EQ(bytes("1E"), 1'000'000'000'000'000'000);
  EXPECT_EQ(bytes("0"), 0);
  EXPECT_EQ(bytes("9223372036854775807"), INT64_MAX);
  EXPECT_EQ(bytes("0.000000000000000000000000000000000000000000000001"), 1);
  // Fractions round up, as Quantity.Value() does.
  EXPECT_EQ(bytes("1.5"), 2);
  EXPECT_EQ(bytes("100m"), 1);
  EXPECT_EQ(bytes("1000m"), 1);
  EXPECT_EQ(bytes("1.0001k"), 1001);
}

TEST(Quantity, BytesErrors) {
  for (const char* bad : {"", "Gi", "1.2.3", "1Gb", "1K", "-1Gi", "8Ei", "9223372036854775808", "1e", "1e+",
                          "1x", "abc", "1 Gi"}) {
    auto r = parse_quantity_bytes(bad);
    EXPECT_FALSE(r) << bad;
  }
  EXPECT_NE(parse_quantity_bytes("1K").error().message.find("\"Ki\""), std::string::npos);
  EXPECT_NE(parse_quantity_bytes("-1Gi").error().message.find("negative"), std::string::npos);
  EXPECT_NE(parse_quantity_bytes("1Gb").error().message.find("unknown suffix \"Gb\""), std::string::npos);
  EXPECT_NE(parse_quantity_bytes("8Ei").error().message.find("more than"), std::string::npos);
}

TEST(Quantity, EverySuffix) {
  const std::pair<const char*, double> cases[] = {{"3n", 3e-9},
                                                  {"3u", 3e-6},
                                                  {"3m", 3e-3},
                                                  {"3k", 3e3},
                                                  {"3M", 3e6},
                                                  {"3G", 3e9},
                                                  {"3T", 3e12},
                                                  {"3P", 3e15},
                                                  {"3E", 3e18},
                                                  {"3Ki", 3.0 * (1LL << 10)},
                                                  {"3Mi", 3.0 * (1LL << 20)},
                                                  {"3Gi", 3.0 * (1LL << 30)},
                                                  {"3Ti", 3.0 * (1LL << 40)},
                                                  {"3Pi", 3.0 * (1LL << 50)},
                                                  {"3Ei", 3.0 * (1LL << 60)}};
  for (const auto& [text, value] : cases) EXPECT_DOUBLE_EQ(number(text), value) << text;
  for (const char* bad : {"3 ", "3ni", "3ki", "3mi", "3i", "3Ki ", "3e"})
    EXPECT_FALSE(parse_quantity(bad)) << bad;
}

TEST(Quantity, Numbers) {
  EXPECT_DOUBLE_EQ(number("500m"), 0.5);
  EXPECT_DOUBLE_EQ(number("2"), 2);
  EXPECT_DOUBLE_EQ(number("0.25"), 0.25);
  EXPECT_DOUBLE_EQ(number("1Ki"), 1024);
  EXPECT_DOUBLE_EQ(number("1.5G"), 1.5e9);
  EXPECT_DOUBLE_EQ(number("100u"), 1e-4);
  EXPECT_DOUBLE_EQ(number("5n"), 5e-9);
  EXPECT_DOUBLE_EQ(number("-2"), -2);
  EXPECT_DOUBLE_EQ(number("1e-3"), 0.001);
  EXPECT_DOUBLE_EQ(number("+3M"), 3e6);
  EXPECT_DOUBLE_EQ(number("1."), 1);
  EXPECT_DOUBLE_EQ(number(".5"), 0.5);
  EXPECT_FALSE(parse_quantity("m"));
  EXPECT_FALSE(parse_quantity("."));
  EXPECT_FALSE(parse_quantity("1mi"));
}

TEST(Quantity, FormatBytes) {
  EXPECT_EQ(format_bytes(8LL << 30), "8Gi");
  EXPECT_EQ(format_bytes(512LL << 20), "512Mi");
  EXPECT_EQ(format_bytes(1536), "1536");
  EXPECT_EQ(format_bytes(0), "0");
  EXPECT_EQ(format_bytes(1000), "1000");
  EXPECT_EQ(format_bytes(3LL << 29), "1536Mi");
  EXPECT_EQ(format_bytes(-(1LL << 10)), "-1Ki");
  for (std::int64_t v : {std::int64_t{1}, std::int64_t{1023}, std::int64_t{1024}, std::int64_t{1} << 60,
                         std::int64_t{5} << 40, std::int64_t{123456789}, std::int64_t{INT64_MAX}}) {
    EXPECT_EQ(parse_quantity_bytes(format_bytes(v)).value(), v) << v;
  }
}

}  // namespace
}  // namespace sluice
