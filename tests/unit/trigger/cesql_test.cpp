// Unit tests of the CESQL engine beyond the TCK: parse errors and their positions, precedence,
// limits, casts, functions on UTF-8 text, typed extensions and the filter decision.

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "trigger/cesql/cesql.hpp"
#include "trigger/cesql/like.hpp"

namespace sluice::cesql {

// Readable values in gtest's failure messages.
void PrintTo(const Value& v, std::ostream* os) {
  *os << to_string(v.type()) << " " << v.to_json();
}

namespace {

CloudEvent sample_event() {
  CloudEvent e;
  e.id = "evt-1";
  e.source = "https://example.com/orders";
  e.type = "com.example.order.created";
  e.subject = "order-42";
  e.extensions["region"] = AttributeValue::of_string("eu-west");
  e.extensions["priority"] = AttributeValue::of_int(7);
  e.extensions["urgent"] = AttributeValue::of_bool(true);
  e.extensions["blob"] = AttributeValue::of_binary("hi!");
  return e;
}

struct Outcome {
  Value value;
  std::vector<EvalError> errors;
};

Outcome eval(std::string_view text, const CloudEvent& event = sample_event()) {
  auto compiled = Expression::compile(text);
  EXPECT_TRUE(compiled) << text << ": " << (compiled ? "" : compiled.error().message);
  if (!compiled) return {};
  Outcome out;
  out.value = compiled.value().evaluate(event, &out.errors);
  return out;
}

std::string parse_error(std::string_view text) {
  auto compiled = Expression::compile(text);
  EXPECT_FALSE(compiled) << text << " compiled";
  if (compiled) return {};
  EXPECT_EQ(compiled.error().code, static_cast<int>(ErrorKind::Parse));
  return compiled.error().message;
}

// --- Parsing -------------------------------------------------------------------------------------

TEST(CesqlParse, ErrorsCarryPositionAndReason) {
  EXPECT_EQ(parse_error("ABC("), "position 5: expected a value, found the end of the expression");
  EXPECT_EQ(parse_error("(1 + 2"),
            "position 7: expected ')' to close the '(' at position 1, found end of expression");
  EXPECT_EQ(parse_error("type = 'abc"), "position 8: unterminated string literal");
  EXPECT_EQ(parse_error("type = #"), "position 8: unexpected character '#'");
  EXPECT_EQ(parse_error("x LIKE 123"), "position 8: LIKE needs a string literal pattern, found '123'");
  EXPECT_EQ(parse_error("1 2"), "position 3: expected an operator or the end of the expression, found '2'");
  EXPECT_EQ(parse_error(""), "position 1: expected a value, found the end of the expression");
  EXPECT_EQ(parse_error("EXISTS 'id'"), "position 8: EXISTS needs an attribute name, found string literal");
  EXPECT_EQ(parse_error("x IN ()"), "position 3: IN needs at least one value");
  EXPECT_EQ(parse_error("my_ext = 1"),
            "position 1: 'my_ext' is not an attribute name (letters and digits only)");
  EXPECT_EQ(parse_error("f1(2)"), "position 1: 'f1' is not a function name (letters and '_' only)");
  EXPECT_EQ(parse_error("AND"), "position 1: expected a value, found the keyword AND");
  EXPECT_EQ(parse_error("1 +"), "position 4: expected a value, found the end of the expression");
  EXPECT_EQ(parse_error("+'1'"), "position 2: expected digits after '+', found string literal");
  EXPECT_NE(parse_error("x = \xff").find("unexpected byte 0xff"), std::string::npos);
}

TEST(CesqlParse, IntegerLiteralsAre32Bit) {
  // Spec 2.2: integer literals MUST be valid 32-bit signed values; the sign belongs to the literal.
  EXPECT_EQ(eval("2147483647").value, Value::integer(2147483647));
  EXPECT_EQ(eval("-2147483648").value, Value::integer(-2147483647 - 1));
  EXPECT_EQ(eval("+5").value, Value::integer(5));
  EXPECT_EQ(eval("5 - -3").value, Value::integer(8));
  EXPECT_EQ(eval("5-3").value, Value::integer(2));
  EXPECT_EQ(parse_error("2147483648"), "position 1: integer literal 2147483648 is outside the 32-bit range");
  EXPECT_EQ(parse_error("-2147483649"),
            "position 2: integer literal -2147483649 is outside the 32-bit range");
}

TEST(CesqlParse, KeywordsIdentifiersAndFunctionsIgnoreCase) {
  EXPECT_EQ(eval("TYPE = 'com.example.order.created' aNd exists Subject").value, Value::boolean(true));
  EXPECT_EQ(eval("lower('ABC') = 'abc'").value, Value::boolean(true));
  EXPECT_EQ(eval("Region NoT LiKe 'us%'").value, Value::boolean(true));
}

TEST(CesqlParse, StringLiterals) {
  EXPECT_EQ(eval(R"('it''s')").value, Value::string("it's"));  // doubled quote
  EXPECT_EQ(eval(R"("say \"hi\"")").value, Value::string("say \"hi\""));
  EXPECT_EQ(eval(R"('a\nb')").value, Value::string("a\\nb"));  // only the quote is escapable
  EXPECT_EQ(eval(R"('a\\')").value, Value::string("a\\\\"));   // a backslash pair is kept
  EXPECT_EQ(eval(R"('')").value, Value::string(""));
}

TEST(CesqlParse, PrecedenceFollowsSpec36) {
  EXPECT_EQ(eval("1 + 2 * 3").value, Value::integer(7));
  EXPECT_EQ(eval("10 - 4 - 3").value, Value::integer(3));
  EXPECT_EQ(eval("20 / 5 / 2").value, Value::integer(2));
  // AND, OR and XOR share one precedence level and associate left to right.
  EXPECT_EQ(eval("TRUE OR FALSE AND FALSE").value, Value::boolean(false));
  EXPECT_EQ(eval("FALSE AND FALSE OR TRUE").value, Value::boolean(true));
  EXPECT_EQ(eval("TRUE XOR TRUE OR TRUE").value, Value::boolean(true));
  // Unary operators bind tighter than comparisons and LIKE.
  EXPECT_EQ(eval("NOT TRUE = FALSE").value, Value::boolean(true));
  EXPECT_EQ(eval("-2 * 3").value, Value::integer(-6));
  EXPECT_EQ(eval("1 + 1 = 2").value, Value::boolean(true));
  EXPECT_EQ(eval("1 < 2 = TRUE").value, Value::boolean(true));
  // IN binds tighter than `+`: 7 + (1 IN (8)) = 7 + FALSE = 7.
  EXPECT_EQ(eval("priority + 1 IN (8)").value, Value::integer(7));
}

TEST(CesqlParse, NestingIsBounded) {
  std::string deep(300, '(');
  deep += "1";
  deep += std::string(300, ')');
  EXPECT_NE(parse_error(deep).find("nested more than"), std::string::npos);
  std::string nots;
  for (int i = 0; i < 300; ++i) nots += "NOT ";
  EXPECT_NE(parse_error(nots + "TRUE").find("nested more than"), std::string::npos);
  std::string sum = "1";
  for (int i = 0; i < 300; ++i) sum += " + 1";
  EXPECT_NE(parse_error(sum).find("nested more than"), std::string::npos);
}

TEST(CesqlParse, LongAndOrChainsStayShallow) {
  // Generated filters list many alternatives; runs of one operator become one n-ary node.
  std::string text = "type = 'a0'";
  for (int i = 1; i < 2000; ++i) text += " OR type = 'a" + std::to_string(i) + "'";
  text += " OR type = 'com.example.order.created'";
  EXPECT_EQ(eval(text).value, Value::boolean(true));
  std::string in = "region IN ('x0'";
  for (int i = 1; i < 2000; ++i) in += ", 'x" + std::to_string(i) + "'";
  in += ", 'eu-west')";
  EXPECT_EQ(eval(in).value, Value::boolean(true));
}

TEST(CesqlParse, UnknownFunctionsCompileAndAreListed) {
  auto compiled = Expression::compile("FOO(1, 2) OR concat_ws()");
  ASSERT_TRUE(compiled);
  EXPECT_EQ(compiled.value().unknown_functions(), (std::vector<std::string>{"FOO/2", "CONCAT_WS/0"}));
  std::vector<EvalError> errors;
  EXPECT_EQ(compiled.value().evaluate(sample_event(), &errors), Value::boolean(false));
  ASSERT_EQ(errors.size(), 1u);  // OR stops at the first operand's error
  EXPECT_EQ(errors[0].to_string(), "missingFunction: unknown function FOO/2 (name/number of arguments)");
  EXPECT_EQ(compiled.value().text(), "FOO(1, 2) OR concat_ws()");
}

// --- Evaluation ----------------------------------------------------------------------------------

TEST(CesqlEval, AttributesKeepTheirTypes) {
  EXPECT_EQ(eval("priority").value, Value::integer(7));
  EXPECT_EQ(eval("urgent").value, Value::boolean(true));
  EXPECT_EQ(eval("priority > 5 AND urgent").value, Value::boolean(true));
  EXPECT_EQ(eval("priority = '7'").value, Value::boolean(true));  // right type String: 7 -> "7"
  EXPECT_EQ(eval("blob").value, Value::string("aGkh"));           // Binary as base64 (spec 3.2)
  EXPECT_EQ(eval("specversion").value, Value::string("1.0"));
  EXPECT_EQ(eval("EXISTS data").value, Value::boolean(false));  // data is not addressable
}

TEST(CesqlEval, MissingAttributeYieldsZeroValueOfTheEnclosingOperator) {
  auto r = eval("LENGTH(nothere)");
  EXPECT_EQ(r.value, Value::integer(0));
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].to_string(), "missingAttribute: attribute 'nothere' is not present in the event");
  EXPECT_EQ(eval("CONCAT('a', nothere)").value, Value::string(""));
  EXPECT_EQ(eval("nothere NOT IN ('a')").value, Value::boolean(false));
  EXPECT_EQ(eval("'a' IN ('a', nothere)").errors.size(), 0u);  // IN stops at the first match
}

TEST(CesqlEval, IntegerOverflowIsAMathError) {
  auto r = eval("2147483647 + 1");
  EXPECT_EQ(r.value, Value::integer(-2147483647 - 1));
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].kind, ErrorKind::Math);
  EXPECT_EQ(eval("-2147483648 / -1").errors.size(), 1u);
  EXPECT_EQ(eval("-2147483648 % -1").value, Value::integer(0));
  EXPECT_EQ(eval("-(-2147483648)").errors[0].kind, ErrorKind::Math);
  EXPECT_EQ(eval("65536 * 65536").errors[0].kind, ErrorKind::Math);
  EXPECT_EQ(eval("-7 / 2").value, Value::integer(-3));  // truncation towards 0
  EXPECT_EQ(eval("-7 % 2").value, Value::integer(-1));  // sign of x
}

TEST(CesqlEval, Casts) {
  EXPECT_EQ(eval("INT('+12')").value, Value::integer(12));
  EXPECT_EQ(eval("INT('2147483648')").errors[0].kind, ErrorKind::Cast);
  EXPECT_EQ(eval("INT(' 1')").errors[0].kind, ErrorKind::Cast);
  EXPECT_EQ(eval("INT('')").errors[0].kind, ErrorKind::Cast);
  EXPECT_EQ(eval("INT('+-1')").errors[0].kind, ErrorKind::Cast);
  EXPECT_EQ(eval("BOOL('TrUe')").value, Value::boolean(true));
  EXPECT_EQ(eval("STRING(-0)").value, Value::string("0"));
  auto r = eval("'abc' + 1");
  EXPECT_EQ(r.value, Value::integer(1));  // the cast error yields 0 and the operator goes on
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].to_string(), "cast: cannot cast String 'abc' to Integer");
  EXPECT_EQ(eval("TRUE AND 1").errors[0].kind, ErrorKind::Cast);  // implicit Integer -> Boolean
  EXPECT_EQ(eval("IS_INT('12')").value, Value::boolean(true));
  EXPECT_EQ(eval("IS_INT('x12')").value, Value::boolean(false));
  EXPECT_EQ(eval("IS_INT(TRUE)").value, Value::boolean(true));
  EXPECT_EQ(eval("IS_BOOL('FALSE')").value, Value::boolean(true));
  EXPECT_EQ(eval("IS_BOOL('no')").value, Value::boolean(false));
  EXPECT_EQ(eval("IS_BOOL('falsey')").value, Value::boolean(false));
  EXPECT_EQ(eval("IS_BOOL(0)").value, Value::boolean(true));
  EXPECT_EQ(eval("IS_STRING(1)").value, Value::boolean(true));
  EXPECT_EQ(eval("IS_INT(nothere)").errors[0].kind, ErrorKind::MissingAttribute);
}

TEST(CesqlEval, StringFunctionsCountCharactersNotBytes) {
  EXPECT_EQ(eval("LENGTH('héllo')").value, Value::integer(5));
  EXPECT_EQ(eval("LEFT('héllo', 2)").value, Value::string("hé"));
  EXPECT_EQ(eval("RIGHT('日本語テキスト', 3)").value, Value::string("キスト"));
  EXPECT_EQ(eval("SUBSTRING('日本語', 2, 1)").value, Value::string("本"));
  EXPECT_EQ(eval("SUBSTRING('日本語', -1)").value, Value::string("語"));
  EXPECT_EQ(eval("'日本語' LIKE '日_語'").value, Value::boolean(true));
  EXPECT_EQ(eval("TRIM('\u3000\u00a0 x y\t\n')").value, Value::string("x y"));
  EXPECT_EQ(eval("TRIM('   ')").value, Value::string(""));
  EXPECT_EQ(eval("UPPER('straße')").value, Value::string("STRAßE"));  // ASCII case mapping only
  EXPECT_EQ(eval("SUBSTRING('abc', 1, -1)").errors[0].kind, ErrorKind::FunctionEvaluation);
  EXPECT_EQ(eval("SUBSTRING('abc', 0, -1)").value, Value::string(""));
  EXPECT_EQ(eval("SUBSTRING('abc', 3)").value, Value::string("c"));
  EXPECT_EQ(eval("SUBSTRING('abc', 4)").errors[0].kind, ErrorKind::FunctionEvaluation);
  EXPECT_EQ(eval("SUBSTRING('abc', 2, 100)").value, Value::string("bc"));
  EXPECT_EQ(eval("LENGTH('\xff\xfe')").value, Value::integer(2));  // malformed bytes count one each
}

TEST(CesqlEval, VariadicFunctionsTakeManyArguments) {
  EXPECT_EQ(eval("CONCAT(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, TRUE)").value, Value::string("12345678910true"));
  EXPECT_EQ(eval("CONCAT_WS('-', region, priority, urgent)").value, Value::string("eu-west-7-true"));
  EXPECT_EQ(eval("ABS('-3')").value, Value::integer(3));
}

TEST(CesqlEval, ErrorsInOperandsGiveZeroValuesErrorsOfOperatorsDoNot) {
  // 1/0 raises in the operand of `!=`, so `!=` yields false (TCK binary_logical_operators).
  EXPECT_EQ(eval("1 != 1 / 0").value, Value::boolean(false));
  // NOT's own cast fails: NOT false (TCK not_operator).
  EXPECT_EQ(eval("NOT 10").value, Value::boolean(true));
  // LEFT's own error keeps its defined result.
  EXPECT_EQ(eval("LEFT('abc', -1)").value, Value::string("abc"));
  EXPECT_EQ(eval("CONCAT(LEFT('abc', -1), 'x')").value, Value::string(""));
}

TEST(CesqlEval, MatchesNeedsBooleanTrueWithoutErrors) {
  const CloudEvent e = sample_event();
  bool had_error = true;
  auto yes = Expression::compile("type LIKE 'com.example.%' AND region IN ('eu-west', 'eu-north')");
  ASSERT_TRUE(yes);
  EXPECT_TRUE(yes.value().matches(e, &had_error));
  EXPECT_FALSE(had_error);

  auto string_result = Expression::compile("type");
  ASSERT_TRUE(string_result);
  EXPECT_FALSE(string_result.value().matches(e, &had_error));
  EXPECT_FALSE(had_error);

  auto truthy_string = Expression::compile("'true'");
  ASSERT_TRUE(truthy_string);
  EXPECT_FALSE(truthy_string.value().matches(e));  // a String is not a Boolean (spec 1.2)

  // TRUE with an error still does not pass (spec 1.2).
  auto with_error = Expression::compile("NOT 10");
  ASSERT_TRUE(with_error);
  EXPECT_FALSE(with_error.value().matches(e, &had_error));
  EXPECT_TRUE(had_error);

  auto missing = Expression::compile("NOT (nothere = 'x')");
  ASSERT_TRUE(missing);
  EXPECT_FALSE(missing.value().matches(e, &had_error));
  EXPECT_TRUE(had_error);
}

TEST(CesqlEval, ExpressionsAreCopyableAndShareTheirProgram) {
  auto compiled = Expression::compile("subject = 'order-42'");
  ASSERT_TRUE(compiled);
  const Expression copy = compiled.value();
  EXPECT_TRUE(copy.matches(sample_event()));
  EXPECT_EQ(&copy.text(), &compiled.value().text());
}

TEST(CesqlValue, JsonEncoding) {
  EXPECT_EQ(Value::boolean(true).to_json(), "true");
  EXPECT_EQ(Value::integer(-5).to_json(), "-5");
  EXPECT_EQ(Value::string("a\"b\\c\n\x01").to_json(), "\"a\\\"b\\\\c\\n\\u0001\"");
  EXPECT_EQ(Value::zero(Type::String), Value::string(""));
  EXPECT_EQ(Value(), Value::boolean(false));
}

TEST(CesqlErrorKind, TckNames) {
  EXPECT_EQ(to_string(ErrorKind::Parse), "parse");
  EXPECT_EQ(to_string(ErrorKind::Math), "math");
  EXPECT_EQ(to_string(ErrorKind::Cast), "cast");
  EXPECT_EQ(to_string(ErrorKind::MissingAttribute), "missingAttribute");
  EXPECT_EQ(to_string(ErrorKind::MissingFunction), "missingFunction");
  EXPECT_EQ(to_string(ErrorKind::FunctionEvaluation), "functionEvaluation");
  EXPECT_EQ(to_string(ErrorKind::Generic), "generic");
}

// --- LIKE patterns -------------------------------------------------------------------------------

bool like(std::string_view text, std::string_view pattern) {
  return detail::LikePattern::compile(pattern).matches(text);
}

TEST(CesqlLike, Shapes) {
  EXPECT_TRUE(like("abc", "abc"));
  EXPECT_FALSE(like("abcd", "abc"));
  EXPECT_TRUE(like("abc", "ab%"));
  EXPECT_TRUE(like("ab", "ab%"));
  EXPECT_TRUE(like("xabc", "%bc"));
  EXPECT_TRUE(like("xabcx", "%bc%"));
  EXPECT_TRUE(like("", "%"));
  EXPECT_TRUE(like("", "%%"));
  EXPECT_FALSE(like("", "_"));
  EXPECT_FALSE(like("", "%_"));
  EXPECT_TRUE(like("a", "%_%"));
}

TEST(CesqlLike, Backtracking) {
  EXPECT_TRUE(like("aaab", "%a%b"));
  EXPECT_TRUE(like("abcabd", "%ab_"));
  EXPECT_TRUE(like("mississippi", "m%iss%pi"));
  EXPECT_FALSE(like("mississippi", "m%iss%pix"));
  EXPECT_TRUE(like("a.b.c", "%._._"));
  EXPECT_FALSE(like(std::string(10000, 'a'), std::string(50, '%') + "b"));  // linear-ish, no blow-up
}

TEST(CesqlLike, Escapes) {
  EXPECT_TRUE(like("50%", "50\\%"));
  EXPECT_FALSE(like("500", "50\\%"));
  EXPECT_TRUE(like("a_b", "a\\_b"));
  EXPECT_FALSE(like("axb", "a\\_b"));
  EXPECT_TRUE(like("a\\b", "a\\b"));      // a backslash before another character is itself
  EXPECT_TRUE(like("a\\", "a\\"));        // trailing backslash
  EXPECT_TRUE(like("a\\%x", "a\\\\%%"));  // `\\%`: a backslash, then an escaped `%`... as documented
}

// The `cesql:` filters shown in README.md compile: a reader copies them.
TEST(CesqlReadme, ExampleFiltersCompile) {
  std::ifstream in(std::string(SLUICE_SOURCE_DIR) + "/README.md");
  ASSERT_TRUE(in) << "cannot read README.md";
  std::ostringstream text;
  text << in.rdbuf();
  const std::string readme = text.str();
  const std::string marker = "cesql: \"";
  std::size_t found = 0;
  for (std::size_t at = readme.find(marker); at != std::string::npos; at = readme.find(marker, at + 1)) {
    const std::size_t begin = at + marker.size();
    const std::size_t end = readme.find('"', begin);
    ASSERT_NE(end, std::string::npos);
    const std::string expression = readme.substr(begin, end - begin);
    ++found;
    auto compiled = Expression::compile(expression);
    EXPECT_TRUE(compiled) << expression << ": " << (compiled ? "" : compiled.error().message);
  }
  EXPECT_GT(found, 0u);
}

TEST(CesqlEval, IntCastOfAStringAttributeFiltersAsTheReadmeShows) {
  CloudEvent e = sample_event();
  e.extensions["tenant"] = AttributeValue::of_string("acme");
  e.extensions["priority"] = AttributeValue::of_string("5");
  EXPECT_EQ(eval("tenant = 'acme' AND INT(priority) > 3", e).value, Value::boolean(true));
  e.extensions["priority"] = AttributeValue::of_string("2");
  EXPECT_EQ(eval("tenant = 'acme' AND INT(priority) > 3", e).value, Value::boolean(false));
}

}  // namespace
}  // namespace sluice::cesql
