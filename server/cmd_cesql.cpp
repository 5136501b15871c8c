// `sluice cesql eval 'EXPRESSION' [--event FILE|-]`: evaluates a CESQL expression (the `cesql` trigger
// filter dialect) and prints one JSON line:
//
//   {"result": <true|false|integer|"string"|null>, "errors": ["<kind>: <message>", ...]}
//
// `<kind>` is one of the TCK's error names (parse, math, cast, missingAttribute, missingFunction,
// functionEvaluation, generic). A syntax error prints "result": null and the parse error. Exit status:
// 0 when evaluation raised no error, 1 when it did (parse errors included), 2 for a bad invocation or
// an invalid event file.
//
// Without --event the expression sees a minimal valid event carrying only the required attributes
// (specversion "1.0", id "cesql-eval", source "/sluice/cesql-eval", type "dev.sluice.cesql.eval"): every
// optional attribute and extension is missing, as in the TCK's cases that give no event.

#include <iostream>
#include <string>
#include <vector>

#include "core/json_format.hpp"
#include "server/command.hpp"
#include "trigger/cesql/cesql.hpp"

namespace sluice::cli {
namespace {

CloudEvent default_event() {
  CloudEvent e;
  e.specversion = "1.0";
  e.id = "cesql-eval";
  e.source = "/sluice/cesql-eval";
  e.type = "dev.sluice.cesql.eval";
  return e;
}

std::string result_line(const cesql::Value* value, const std::vector<std::string>& errors) {
  std::string out = "{\"result\": ";
  if (value == nullptr) {
    out += "null";
  } else if (value->is_string()) {
    append_json_string(out, value->as_string());  // invalid UTF-8 becomes U+FFFD, so the line stays JSON
  } else {
    out += value->to_json();
  }
  out += ", \"errors\": [";
  for (std::size_t i = 0; i < errors.size(); ++i) {
    if (i > 0) out += ", ";
    append_json_string(out, errors[i]);
  }
  out += "]}";
  return out;
}

int run_cesql_eval(const std::vector<std::string>& arguments) {
  std::vector<std::string> args = arguments;
  const auto event_path = take_option(args, "event");
  if (args.size() != 1) {
    std::cerr
        << "usage: sluice cesql eval 'EXPRESSION' [--event FILE|-]\n"
           "  FILE is a structured-mode JSON event; - reads it from standard input. Without --event the\n"
           "  expression sees an event with only specversion, id, source and type.\n";
    return 2;
  }

  CloudEvent event = default_event();
  if (event_path) {
    auto parsed = parse_json_event(read_file_or_stdin(*event_path));
    if (!parsed) {
      std::cerr << "sluice cesql eval: " << *event_path << ": " << parsed.error().to_string() << "\n";
      return 2;
    }
    event = std::move(parsed).value();
  }

  auto expression = cesql::Expression::compile(args[0]);
  if (!expression) {
    const std::string message =
        std::string(cesql::to_string(cesql::ErrorKind::Parse)) + ": " + expression.error().message;
    std::cout << result_line(nullptr, {message}) << std::endl;
    return 1;
  }

  std::vector<cesql::EvalError> errors;
  const cesql::Value value = expression.value().evaluate(event, &errors);
  std::vector<std::string> lines;
  lines.reserve(errors.size());
  for (const auto& e : errors) lines.push_back(e.to_string());
  std::cout << result_line(&value, lines) << std::endl;
  return errors.empty() ? 0 : 1;
}

}  // namespace
}  // namespace sluice::cli

SLUICE_COMMAND("cesql eval",
               "'EXPRESSION' [--event FILE|-]  evaluate a CESQL filter expression, print {result, errors}",
               sluice::cli::run_cesql_eval);
