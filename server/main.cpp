// sluice: one binary for the server and its CLI. The verbs live in server/cmd_*.cpp.

#include <algorithm>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "server/command.hpp"

namespace {

int usage(std::ostream& out) {
  out << "usage: sluice VERB [ARGS...]\n\nverbs:\n";
  for (const auto& [verb, command] : sluice::cli::commands())
    out << "  " << verb << " " << command.usage << "\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  // `sluice help VERB` is `sluice VERB --help`.
  if (args.size() >= 2 && args[0] == "help") {
    args.erase(args.begin());
    args.push_back("--help");
  }
  if (args.empty() || args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
    usage(std::cout);
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "version" || args[0] == "--version") {
    std::cout << "sluice 0.1.0\n";
    return 0;
  }
  auto& commands = sluice::cli::commands();
  // Two-word verbs ("event validate") take precedence over one-word verbs.
  auto found = commands.end();
  std::size_t words = 0;
  if (args.size() >= 2) {
    found = commands.find(args[0] + " " + args[1]);
    words = 2;
  }
  if (found == commands.end()) {
    found = commands.find(args[0]);
    words = 1;
  }
  if (found == commands.end()) {
    // The first word of two-word verbs ("event", "cesql", "autoscaler"): name the verbs it starts,
    // as their usage when help was asked for.
    const std::string group = args[0] + " ";
    std::vector<const sluice::cli::Command*> members;
    for (const auto& [verb, command] : commands)
      if (verb.rfind(group, 0) == 0) members.push_back(&command);
    if (members.empty()) {
      std::cerr << "sluice: unknown verb '" << args[0] << "'\n";
      return usage(std::cerr);
    }
    const bool help = std::any_of(args.begin() + 1, args.end(),
                                  [](const std::string& a) { return a == "--help" || a == "-h"; });
    if (!help) {
      if (args.size() > 1 && args[1].rfind('-', 0) != 0)
        std::cerr << "sluice: unknown verb '" << args[0] << " " << args[1] << "'; did you mean:\n";
      else
        std::cerr << "sluice: '" << args[0] << "' needs a second word:\n";
    }
    for (const auto* member : members)
      (help ? std::cout : std::cerr) << "usage: sluice " << member->verb << " " << member->usage << "\n";
    return help ? 0 : 2;
  }
  args.erase(args.begin(), args.begin() + static_cast<std::ptrdiff_t>(words));
  // `sluice VERB --help`, as kubectl users type it: the verb's usage, not an unknown argument or kind.
  if (std::any_of(args.begin(), args.end(),
                  [](const std::string& a) { return a == "--help" || a == "-h"; })) {
    std::cout << "usage: sluice " << found->first << " " << found->second.usage << "\n";
    return 0;
  }
  try {
    return found->second.run(args);
  } catch (const std::exception& e) {
    std::cerr << "sluice " << found->first << ": " << e.what() << "\n";
    return 2;
  }
}
