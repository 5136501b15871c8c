// libFuzzer target: any bytes as a CESQL expression. Compiling must fail cleanly or succeed, and a
// compiled expression must evaluate (with and without an error list) without crashing, within the
// evaluator's recursion bound, on an event carrying every attribute type.

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "core/cloud_event.hpp"
#include "trigger/cesql/cesql.hpp"

namespace {

sluice::CloudEvent fuzz_event() {
  sluice::CloudEvent e;
  e.id = "id-1";
  e.source = "https://example.com/src";
  e.type = "com.example.type";
  e.subject = "sübject 日本";
  e.time = "2026-01-01T00:00:00Z";
  e.extensions["a"] = sluice::AttributeValue::of_string("abc");
  e.extensions["n"] = sluice::AttributeValue::of_int(-2147483647 - 1);
  e.extensions["b"] = sluice::AttributeValue::of_bool(true);
  e.extensions["bin"] = sluice::AttributeValue::of_binary(std::string("\x00\xff", 2));
  e.extensions["num"] = sluice::AttributeValue::of_string("42");
  return e;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const sluice::CloudEvent event = fuzz_event();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto compiled = sluice::cesql::Expression::compile(text);
  if (!compiled) {
    if (compiled.error().message.rfind("position ", 0) != 0)
      __builtin_trap();  // every parse error has a position
    return 0;
  }
  std::vector<sluice::cesql::EvalError> errors;
  const auto value = compiled.value().evaluate(event, &errors);
  bool had_error = false;
  const bool matched = compiled.value().matches(event, &had_error);
  // matches() agrees with evaluate(): Boolean true and no error (spec 1.2).
  if (had_error != !errors.empty()) __builtin_trap();
  if (matched != (errors.empty() && value == sluice::cesql::Value::boolean(true))) __builtin_trap();
  return 0;
}
