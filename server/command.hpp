#pragma once
// The CLI's verbs. Each cmd_*.cpp registers its verbs with SLUICE_COMMAND, so adding a verb touches
// one file:
//
//   SLUICE_COMMAND("event validate", "FILE|-  validate a structured-mode JSON event", run_validate);

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sluice::cli {

/// Arguments after the verb words. Returns the process exit code.
using CommandFn = std::function<int(const std::vector<std::string>& args)>;

struct Command {
  std::string verb;   // one or two words: "serve", "event validate"
  std::string usage;  // one line for `sluice help`
  CommandFn run;
};

/// All registered commands, by verb.
std::map<std::string, Command>& commands();

struct Registrar {
  Registrar(std::string verb, std::string usage, CommandFn run);
};

/// Finds `--name VALUE` or `--name=VALUE` (`-n VALUE` for one-letter names) in args, removing it.
std::optional<std::string> take_option(std::vector<std::string>& args, const std::string& name);

/// take_option for a whole number in [lo, hi]; otherwise throws "--NAME expects WHAT, got VALUE".
std::optional<long long> take_int_option(std::vector<std::string>& args, const std::string& name,
                                         long long lo, long long hi, const std::string& what);

/// Finds a bare `--name` flag, removing it.
bool take_flag(std::vector<std::string>& args, const std::string& name);

/// Reads a file, or standard input for "-". Throws std::runtime_error naming the file.
std::string read_file_or_stdin(const std::string& path);

}  // namespace sluice::cli

#define SLUICE_CONCAT_INNER(a, b) a##b
#define SLUICE_CONCAT(a, b) SLUICE_CONCAT_INNER(a, b)
#define SLUICE_COMMAND(verb, usage, fn) \
  static const ::sluice::cli::Registrar SLUICE_CONCAT(sluice_command_, __LINE__)(verb, usage, fn)
