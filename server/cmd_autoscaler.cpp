// `sluice autoscaler simulate FILE|-`: runs the KPA decider on a recorded input and prints one JSON
// line per decision. The input forms are documented in autoscaler/simulate.hpp.

#include <iostream>
#include <string>
#include <vector>

#include "autoscaler/simulate.hpp"
#include "core/log.hpp"
#include "server/command.hpp"

namespace {

int run_autoscaler_simulate(std::vector<std::string> args) {
  // Panic transitions are logged at info; keep standard error quiet unless asked.
  sluice::log::set_level(sluice::cli::take_flag(args, "verbose") ? "debug" : "warn");
  if (args.size() != 1) {
    std::cerr
        << "usage: sluice autoscaler simulate [--verbose] FILE|-\n"
           "  FILE is a scenario of kpa_vectors.json's shape ({\"spec\":…, \"steps\":[…]}) or a per-second\n"
           "  series ({\"annotations\":{…}, \"concurrency\":[…]} or a bare array); - reads standard input\n";
    return 2;
  }
  const std::string text = sluice::cli::read_file_or_stdin(args[0]);
  auto steps = sluice::autoscaler::simulate(text);
  if (!steps) {
    std::cerr << "sluice autoscaler simulate: " << args[0] << ": " << steps.error().to_string() << "\n";
    return 1;
  }
  std::string out;
  for (const auto& step : steps.value()) {
    out += sluice::autoscaler::to_json_line(step);
    out += '\n';
  }
  std::cout << out << std::flush;
  return 0;
}

}  // namespace

SLUICE_COMMAND("autoscaler simulate",
               "[--verbose] FILE|-  run the KPA decider on a scenario or a per-second concurrency series",
               run_autoscaler_simulate);
