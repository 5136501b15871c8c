// The --config-store URL: bootstrap servers, topic (default sluice-config) and librdkafka properties.

#include "server/config_topic.hpp"

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(ConfigStoreUrl, ServersTopicAndProperties) {
  auto plain = parse_config_store_url("kafka://k1:9092,k2:9092");
  ASSERT_TRUE(plain) << plain.error().to_string();
  EXPECT_EQ(plain.value().bootstrap_servers, "k1:9092,k2:9092");
  EXPECT_EQ(plain.value().topic, "sluice-config");
  EXPECT_TRUE(plain.value().properties.empty());

  auto full = parse_config_store_url(
      "kafka://k1:9093/team-config?security.protocol=ssl&ssl.ca.location=%2Fetc%2Fca.pem");
  ASSERT_TRUE(full) << full.error().to_string();
  EXPECT_EQ(full.value().bootstrap_servers, "k1:9093");
  EXPECT_EQ(full.value().topic, "team-config");
  EXPECT_EQ(full.value().properties.at("security.protocol"), "ssl");
  EXPECT_EQ(full.value().properties.at("ssl.ca.location"), "/etc/ca.pem");

  auto trailing_slash = parse_config_store_url("kafka://k1:9092/");
  ASSERT_TRUE(trailing_slash);
  EXPECT_EQ(trailing_slash.value().topic, "sluice-config");
}

TEST(ConfigStoreUrl, BadUrlsSayWhatIsExpected) {
  for (const char* url :
       {"http://k1:9092/t", "kafka://", "kafka:///t", "kafka://k1:9092/a/b", "kafka://k1:9092/t?novalue",
        "kafka://k1:9092/t?no.such.property=1", "kafka://k1:9092/t?acks=sometimes"}) {
    auto parsed = parse_config_store_url(url);
    ASSERT_FALSE(parsed) << url;
    EXPECT_EQ(parsed.error().code, 400) << url;
    EXPECT_NE(parsed.error().to_string().find("kafka://HOST:PORT"), std::string::npos)
        << url << ": " << parsed.error().to_string();
  }
}

}  // namespace
}  // namespace sluice
