#include "trigger/filter.hpp"

#include <gtest/gtest.h>

namespace sluice {
namespace {

using nlohmann::json;

CloudEvent event(std::string type, std::string source = "/orders/eu") {
  CloudEvent e;
  e.id = "1";
  e.source = std::move(source);
  e.type = std::move(type);
  e.subject = "invoice.pdf";
  e.extensions["region"] = AttributeValue::of_string("eu-west");
  e.extensions["priority"] = AttributeValue::of_int(42);
  return e;
}

Filter dialects(const char* text) {
  auto f = Filter::from_dialects(json::parse(text), "spec.filters");
  EXPECT_TRUE(f) << text << ": " << (f ? "" : f.error().to_string());
  return f ? f.value() : Filter();
}

Filter attributes(const char* text) {
  auto f = Filter::from_attributes(json::parse(text), "spec.filter");
  EXPECT_TRUE(f) << text << ": " << (f ? "" : f.error().to_string());
  return f ? f.value() : Filter();
}

Error dialect_error(const char* text) {
  auto f = Filter::from_dialects(json::parse(text), "spec.filters");
  EXPECT_FALSE(f) << text;
  return f ? Error{} : f.error();
}

TEST(Filter, DefaultMatchesEverything) {
  Filter f;
  EXPECT_TRUE(f.matches_all());
  EXPECT_TRUE(f.matches(event("a")));
}

TEST(Filter, AttributesExactAnded) {
  auto f = attributes(R"({"attributes": {"type": "com.a", "region": "eu-west"}})");
  EXPECT_TRUE(f.matches(event("com.a")));
  EXPECT_FALSE(f.matches(event("com.b")));
  auto e = event("com.a");
  e.extensions["region"] = AttributeValue::of_string("us");
  EXPECT_FALSE(f.matches(e));
  e.extensions.erase("region");
  EXPECT_FALSE(f.matches(e));
}

TEST(Filter, AttributesEmptyValueMeansPresent) {
  auto f = attributes(R"({"attributes": {"region": ""}})");
  auto e = event("a");
  EXPECT_TRUE(f.matches(e));
  e.extensions.erase("region");
  EXPECT_FALSE(f.matches(e));
  auto g = attributes(R"({"attributes": {"dataschema": ""}})");
  EXPECT_FALSE(g.matches(event("a")));
}

TEST(Filter, AttributesComparesCanonicalText) {
  auto f = attributes(R"({"attributes": {"priority": "42"}})");
  EXPECT_TRUE(f.matches(event("a")));
}

TEST(Filter, AttributesEmptyOrNullMatchesAll) {
  EXPECT_TRUE(attributes(R"({"attributes": {}})").matches_all());
  EXPECT_TRUE(attributes(R"({})").matches_all());
  EXPECT_TRUE(attributes("null").matches_all());
}

TEST(Filter, AttributesErrors) {
  auto f = Filter::from_attributes(json::parse(R"({"attributes": {"Type": "a"}})"), "spec.filter");
  ASSERT_FALSE(f);
  EXPECT_EQ(f.error().subject, "spec.filter.attributes.Type");
  f = Filter::from_attributes(json::parse(R"({"attributes": {"type": 1}})"), "spec.filter");
  ASSERT_FALSE(f);
  EXPECT_EQ(f.error().subject, "spec.filter.attributes.type");
  f = Filter::from_attributes(json::parse(R"({"attrs": {}})"), "spec.filter");
  ASSERT_FALSE(f);
  EXPECT_EQ(f.error().subject, "spec.filter.attrs");
  f = Filter::from_attributes(json::parse(R"({"attributes": []})"), "spec.filter");
  ASSERT_FALSE(f);
  EXPECT_EQ(f.error().subject, "spec.filter.attributes");
}

TEST(Filter, Exact) {
  auto f = dialects(R"([{"exact": {"type": "com.a"}}])");
  EXPECT_TRUE(f.matches(event("com.a")));
  EXPECT_FALSE(f.matches(event("com.ab")));
  EXPECT_FALSE(f.matches(event("com")));
}

TEST(Filter, ExactWithSeveralAttributesNeedsAll) {
  auto f = dialects(R"([{"exact": {"type": "com.a", "subject": "invoice.pdf"}}])");
  EXPECT_TRUE(f.matches(event("com.a")));
  auto e = event("com.a");
  e.subject = "other";
  EXPECT_FALSE(f.matches(e));
}

TEST(Filter, Prefix) {
  auto f = dialects(R"([{"prefix": {"source": "/orders/"}}])");
  EXPECT_TRUE(f.matches(event("a", "/orders/eu")));
  EXPECT_TRUE(f.matches(event("a", "/orders/")));
  EXPECT_FALSE(f.matches(event("a", "/order")));
  EXPECT_FALSE(f.matches(event("a", "/users/orders/")));
}

TEST(Filter, Suffix) {
  auto f = dialects(R"([{"suffix": {"subject": ".pdf"}}])");
  EXPECT_TRUE(f.matches(event("a")));
  auto e = event("a");
  e.subject = "invoice.pdf.txt";
  EXPECT_FALSE(f.matches(e));
  e.subject.reset();
  EXPECT_FALSE(f.matches(e));
}

TEST(Filter, MissingAttributeNeverMatchesLeafDialects) {
  auto e = event("a");
  EXPECT_FALSE(dialects(R"([{"exact": {"missing": "x"}}])").matches(e));
  EXPECT_FALSE(dialects(R"([{"prefix": {"missing": "x"}}])").matches(e));
  EXPECT_FALSE(dialects(R"([{"suffix": {"missing": "x"}}])").matches(e));
  EXPECT_TRUE(dialects(R"([{"not": {"exact": {"missing": "x"}}}])").matches(e));
}

TEST(Filter, ListIsAnded) {
  auto f = dialects(R"([{"prefix": {"type": "com."}}, {"suffix": {"type": ".created"}}])");
  EXPECT_TRUE(f.matches(event("com.order.created")));
  EXPECT_FALSE(f.matches(event("com.order.deleted")));
  EXPECT_FALSE(f.matches(event("org.order.created")));
}

TEST(Filter, All) {
  auto f = dialects(R"([{"all": [{"exact": {"type": "a"}}, {"exact": {"region": "eu-west"}}]}])");
  EXPECT_TRUE(f.matches(event("a")));
  EXPECT_FALSE(f.matches(event("b")));
  EXPECT_TRUE(dialects(R"([{"all": []}])").matches(event("x")));
}

TEST(Filter, Any) {
  auto f = dialects(R"([{"any": [{"exact": {"type": "a"}}, {"exact": {"type": "b"}}]}])");
  EXPECT_TRUE(f.matches(event("a")));
  EXPECT_TRUE(f.matches(event("b")));
  EXPECT_FALSE(f.matches(event("c")));
  // Knative's anyFilter of an empty list is NoFilter: it passes, as `all: []` does.
  EXPECT_TRUE(dialects(R"([{"any": []}])").matches(event("x")));
  EXPECT_TRUE(dialects(R"([{"not": {"any": [{"exact": {"type": "a"}}]}}, {"any": []}])").matches(event("x")));
  EXPECT_FALSE(dialects(R"([{"not": {"any": []}}])").matches(event("x")));
}

TEST(Filter, Not) {
  auto f = dialects(R"([{"not": {"prefix": {"type": "internal."}}}])");
  EXPECT_TRUE(f.matches(event("com.a")));
  EXPECT_FALSE(f.matches(event("internal.x")));
}

TEST(Filter, Nesting) {
  // (type starts with com. AND NOT (region = us OR subject ends with .tmp)) OR type = audit
  auto f = dialects(R"([{"any": [
      {"all": [{"prefix": {"type": "com."}},
               {"not": {"any": [{"exact": {"region": "us"}}, {"suffix": {"subject": ".tmp"}}]}}]},
      {"exact": {"type": "audit"}}]}])");
  EXPECT_TRUE(f.matches(event("com.x")));
  EXPECT_TRUE(f.matches(event("audit")));
  auto us = event("com.x");
  us.extensions["region"] = AttributeValue::of_string("us");
  EXPECT_FALSE(f.matches(us));
  auto tmp = event("com.x");
  tmp.subject = "a.tmp";
  EXPECT_FALSE(f.matches(tmp));
  EXPECT_FALSE(f.matches(event("org.x")));
  EXPECT_EQ(
      f.to_string(),
      "any(all(prefix(type=com.), not(any(exact(region=us), suffix(subject=.tmp)))), exact(type=audit))");
}

TEST(Filter, Cesql) {
  auto f = dialects(R"([{"cesql": "type LIKE 'com.%' AND region = 'eu-west'"}])");
  EXPECT_TRUE(f.matches(event("com.a")));
  EXPECT_FALSE(f.matches(event("org.a")));
}

TEST(Filter, CesqlCombinesWithOtherDialects) {
  auto f = dialects(R"([{"exact": {"subject": "invoice.pdf"}}, {"not": {"cesql": "priority > 10"}}])");
  EXPECT_FALSE(f.matches(event("a")));
  auto e = event("a");
  e.extensions["priority"] = AttributeValue::of_int(3);
  EXPECT_TRUE(f.matches(e));
}

TEST(Filter, CesqlEvaluationErrorIsReported) {
  // A missing attribute raises an error (CESQL 3.3) and the filter does not match.
  auto f = dialects(R"([{"cesql": "missingattr = 'x'"}])");
  bool had_error = false;
  EXPECT_FALSE(f.matches(event("a"), &had_error));
  EXPECT_TRUE(had_error);
  auto ok = dialects(R"([{"cesql": "type = 'a'"}])");
  had_error = false;
  EXPECT_TRUE(ok.matches(event("a"), &had_error));
  EXPECT_FALSE(had_error);
}

TEST(Filter, CesqlSyntaxError) {
  auto e = dialect_error(R"([{"cesql": "type = = 'a'"}])");
  EXPECT_EQ(e.subject, "spec.filters[0].cesql");
  EXPECT_NE(e.message.find("position"), std::string::npos) << e.message;
  e = dialect_error(R"([{"all": [{"cesql": "("}]}])");
  EXPECT_EQ(e.subject, "spec.filters[0].all[0].cesql");
  e = dialect_error(R"([{"cesql": ""}])");
  EXPECT_EQ(e.subject, "spec.filters[0].cesql");
}

TEST(Filter, DialectErrorsNameThePath) {
  EXPECT_EQ(dialect_error(R"([{"exact": {"type": "a"}, "prefix": {"type": "b"}}])").subject,
            "spec.filters[0]");
  EXPECT_EQ(dialect_error(R"([{"regex": {"type": "a"}}])").subject, "spec.filters[0].regex");
  EXPECT_EQ(dialect_error(R"([{}])").subject, "spec.filters[0]");
  EXPECT_EQ(dialect_error(R"([{"exact": {}}])").subject, "spec.filters[0].exact");
  EXPECT_EQ(dialect_error(R"([{"exact": {"type": ""}}])").subject, "spec.filters[0].exact.type");
  EXPECT_EQ(dialect_error(R"([{"prefix": {"Bad-Name": "x"}}])").subject, "spec.filters[0].prefix.Bad-Name");
  EXPECT_EQ(dialect_error(R"([{"suffix": {"type": 3}}])").subject, "spec.filters[0].suffix.type");
  EXPECT_EQ(dialect_error(R"([{"all": {"exact": {"type": "a"}}}])").subject, "spec.filters[0].all");
  EXPECT_EQ(dialect_error(R"([{"not": [{"exact": {"type": "a"}}]}])").subject, "spec.filters[0].not");
  EXPECT_EQ(dialect_error(R"([{"any": [{"exact": {"type": "a"}}, {"not": {"nope": {}}}]}])").subject,
            "spec.filters[0].any[1].not.nope");
  EXPECT_EQ(dialect_error(R"({"exact": {"type": "a"}})").subject, "spec.filters");
}

TEST(Filter, RejectsDeepNesting) {
  json f = {{"exact", {{"type", "a"}}}};
  for (int i = 0; i < 40; ++i) f = {{"not", f}};
  auto r = Filter::from_dialects(json::array({f}), "spec.filters");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("nested too deeply"), std::string::npos);
}

TEST(Filter, CopiesShareTheCompiledTree) {
  auto f = dialects(R"([{"exact": {"type": "a"}}])");
  Filter g = f;
  EXPECT_TRUE(g.matches(event("a")));
  EXPECT_FALSE(g.matches(event("b")));
}

}  // namespace
}  // namespace sluice
