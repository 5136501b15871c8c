// `sluice event validate FILE|-`: checks a structured-mode JSON event against the CloudEvents rules.

#include <iostream>
#include <set>
#include <string>
#include <vector>

#include "core/json_format.hpp"
#include "server/command.hpp"

namespace sluice::cli {
namespace {

// Prints `valid` (exit 0) or one `ATTRIBUTE: message` line per broken rule (exit 1). Problems with a
// member's JSON type come first; validate()'s rules follow, except those about an attribute already
// reported (a wrongly typed `id` is not also "missing").
int run_validate(const std::vector<std::string>& args) {
  if (args.size() != 1) {
    std::cerr << "usage: sluice event validate FILE|-\n";
    return 2;
  }
  std::string text = read_file_or_stdin(args[0]);
  auto parsed = parse_json_event_unchecked(text);
  if (!parsed) {
    std::cout << parsed.error().to_string() << "\n";
    return 1;
  }
  const auto& problems = parsed.value().problems;
  std::set<std::string> reported;
  std::vector<Violation> all = problems;
  for (const auto& p : problems) reported.insert(p.attribute);
  for (auto& v : validate(parsed.value().event))
    if (!reported.count(v.attribute)) all.push_back(std::move(v));
  if (all.empty()) {
    std::cout << "valid\n";
    return 0;
  }
  for (const auto& v : all)
    std::cout << (v.attribute.empty() ? "(unnamed)" : v.attribute) << ": " << v.message << "\n";
  return 1;
}

SLUICE_COMMAND("event validate", "FILE|-  validate a structured-mode JSON event", run_validate);

}  // namespace
}  // namespace sluice::cli
