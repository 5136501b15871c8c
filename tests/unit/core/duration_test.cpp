#include "core/duration.hpp"

#include <gtest/gtest.h>

namespace sluice {
namespace {

using std::chrono::milliseconds;

milliseconds iso(std::string_view s) {
  auto r = parse_iso8601_duration(s);
  EXPECT_TRUE(r) << s << ": " << (r ? "" : r.error().to_string());
  return r ? r.value() : milliseconds(-1);
}

milliseconds go(std::string_view s) {
  auto r = parse_go_duration(s);
  EXPECT_TRUE(r) << s << ": " << (r ? "" : r.error().to_string());
  return r ? r.value() : milliseconds(-1);
}

std::string iso_error(std::string_view s) {
  auto r = parse_iso8601_duration(s);
  EXPECT_FALSE(r) << s;
  return r ? "" : r.error().message;
}

std::string go_error(std::string_view s) {
  auto r = parse_go_duration(s);
  EXPECT_FALSE(r) << s;
  return r ? "" : r.error().message;
}

TEST(Iso8601Duration, KnativeDeliveryValues) {
  EXPECT_EQ(iso("PT0.2S"), milliseconds(200));
  EXPECT_EQ(iso("PT1M30S"), milliseconds(90'000));
  EXPECT_EQ(iso("P1D"), milliseconds(86'400'000));
  EXPECT_EQ(iso("PT10S"), milliseconds(10'000));
  EXPECT_EQ(iso("PT1H"), milliseconds(3'600'000));
  EXPECT_EQ(iso("P1DT2H3M4.5S"), milliseconds(86'400'000 + 2 * 3'600'000 + 3 * 60'000 + 4'500));
  EXPECT_EQ(iso("P2W"), milliseconds(14LL * 86'400'000));
  EXPECT_EQ(iso("PT0S"), milliseconds(0));
  EXPECT_EQ(iso("PT1,5S"), milliseconds(1500));
  EXPECT_EQ(iso("PT0.5H"), milliseconds(1'800'000));
  EXPECT_EQ(iso("pt2m"), milliseconds(120'000));
  EXPECT_EQ(iso("PT.5S"), milliseconds(500));
  EXPECT_EQ(iso("PT0.0009S"), milliseconds(0));  // truncated below a millisecond
  EXPECT_EQ(iso("PT1.2345S"), milliseconds(1234));
}

TEST(Iso8601Duration, ErrorsNameTheProblem) {
  EXPECT_NE(iso_error("").find("empty"), std::string::npos);
  EXPECT_NE(iso_error("10S").find("must start with 'P'"), std::string::npos);
  EXPECT_NE(iso_error("P").find("no components"), std::string::npos);
  EXPECT_NE(iso_error("PT").find("'T' must be followed"), std::string::npos);
  EXPECT_NE(iso_error("P1H").find("\"PT1H\""), std::string::npos);
  EXPECT_NE(iso_error("PT1D").find("before the time designator"), std::string::npos);
  EXPECT_NE(iso_error("P1Y").find("years"), std::string::npos);
  EXPECT_NE(iso_error("P3M").find("\"PT3M\" for minutes"), std::string::npos);
  EXPECT_NE(iso_error("PT1S1M").find("out of order"), std::string::npos);
  EXPECT_NE(iso_error("PT1S1S").find("out of order"), std::string::npos);
  EXPECT_NE(iso_error("PT1.5M2S").find("only the last component"), std::string::npos);
  EXPECT_NE(iso_error("PT10").find("no designator"), std::string::npos);
  EXPECT_NE(iso_error("PTS").find("expected a number"), std::string::npos);
  EXPECT_NE(iso_error("PT1X").find("unknown designator 'X'"), std::string::npos);
  EXPECT_NE(iso_error("-PT1S").find("negative"), std::string::npos);
  EXPECT_NE(iso_error("PT1TS").find("unknown designator"), std::string::npos);
  EXPECT_NE(iso_error("PT99999999999999999999H").find("too large"), std::string::npos);
  // The message quotes the text so that a caller's "spec.delivery.timeout: ..." reads well.
  EXPECT_NE(iso_error("P1H").find("\"P1H\""), std::string::npos);
  EXPECT_EQ(parse_iso8601_duration("P1H").error().subject, "");
}

TEST(GoDuration, KnativeAnnotationValues) {
  EXPECT_EQ(go("60s"), milliseconds(60'000));
  EXPECT_EQ(go("1m30s"), milliseconds(90'000));
  EXPECT_EQ(go("500ms"), milliseconds(500));
  EXPECT_EQ(go("2h"), milliseconds(7'200'000));
  EXPECT_EQ(go("0s"), milliseconds(0));
  EXPECT_EQ(go("0"), milliseconds(0));
  EXPECT_EQ(go("1.5h"), milliseconds(5'400'000));
  EXPECT_EQ(go("2h45m"), milliseconds(9'900'000));
  EXPECT_EQ(go("1500us"), milliseconds(1));
  EXPECT_EQ(go("1500\xC2\xB5s"), milliseconds(1));
  EXPECT_EQ(go("999999ns"), milliseconds(0));
  EXPECT_EQ(go("+5s"), milliseconds(5000));
  EXPECT_EQ(go(".5s"), milliseconds(500));
}

TEST(GoDuration, ErrorsNameTheProblem) {
  EXPECT_NE(go_error("60").find("missing unit"), std::string::npos);
  EXPECT_NE(go_error("60").find("\"60s\""), std::string::npos);
  EXPECT_NE(go_error("").find("empty"), std::string::npos);
  EXPECT_NE(go_error("5d").find("unknown unit \"d\""), std::string::npos);
  EXPECT_NE(go_error("-5s").find("negative"), std::string::npos);
  EXPECT_NE(go_error("s").find("expected a number"), std::string::npos);
  EXPECT_NE(go_error("1m30").find("missing unit"), std::string::npos);
  EXPECT_NE(go_error("3000000h").find("too large"), std::string::npos);
}

TEST(Duration, EitherForm) {
  EXPECT_EQ(parse_duration("PT1M").value(), milliseconds(60'000));
  EXPECT_EQ(parse_duration("1m").value(), milliseconds(60'000));
  EXPECT_FALSE(parse_duration("60"));
  EXPECT_NE(parse_duration("-PT1S").error().message.find("negative"), std::string::npos);
}

TEST(Duration, FormatIso8601) {
  EXPECT_EQ(format_iso8601_duration(milliseconds(0)), "PT0S");
  EXPECT_EQ(format_iso8601_duration(milliseconds(200)), "PT0.2S");
  EXPECT_EQ(format_iso8601_duration(milliseconds(1050)), "PT1.05S");
  EXPECT_EQ(format_iso8601_duration(milliseconds(90'000)), "PT1M30S");
  EXPECT_EQ(format_iso8601_duration(milliseconds(3'600'000)), "PT1H");
  EXPECT_EQ(format_iso8601_duration(milliseconds(86'400'000)), "P1D");
  EXPECT_EQ(format_iso8601_duration(milliseconds(86'400'000 + 7'200'000 + 500)), "P1DT2H0.5S");
  EXPECT_EQ(format_iso8601_duration(milliseconds(-1500)), "-PT1.5S");
  for (std::int64_t ms :
       {0LL, 1LL, 999LL, 1000LL, 61'001LL, 3'600'000LL, 90'061'001LL, 1'000'000'000'000LL}) {
    EXPECT_EQ(parse_iso8601_duration(format_iso8601_duration(milliseconds(ms))).value(), milliseconds(ms))
        << ms;
  }
}

}  // namespace
}  // namespace sluice
