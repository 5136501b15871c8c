#include "server/command.hpp"

#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <stdexcept>

namespace sluice::cli {

std::map<std::string, Command>& commands() {
  static std::map<std::string, Command> all;
  return all;
}

Registrar::Registrar(std::string verb, std::string usage, CommandFn run) {
  auto key = verb;
  commands().emplace(std::move(key), Command{std::move(verb), std::move(usage), std::move(run)});
}

std::optional<std::string> take_option(std::vector<std::string>& args, const std::string& name) {
  // One-letter options take one dash (-f, -o), as kubectl users expect.
  const std::string flag = (name.size() == 1 ? "-" : "--") + name;
  for (auto it = args.begin(); it != args.end(); ++it) {
    if (*it == flag) {
      if (std::next(it) == args.end()) throw std::runtime_error(flag + " needs a value");
      std::string value = *std::next(it);
      args.erase(it, std::next(it, 2));
      return value;
    }
    if (it->rfind(flag + "=", 0) == 0) {
      std::string value = it->substr(flag.size() + 1);
      args.erase(it);
      return value;
    }
  }
  return std::nullopt;
}

std::optional<long long> take_int_option(std::vector<std::string>& args, const std::string& name,
                                         long long lo, long long hi, const std::string& what) {
  auto text = take_option(args, name);
  if (!text) return std::nullopt;
  std::size_t used = 0;
  long long value = 0;
  try {
    value = std::stoll(*text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text->size() || value < lo || value > hi)
    throw std::runtime_error("--" + name + " expects " + what + ", got " + *text);
  return value;
}

bool take_flag(std::vector<std::string>& args, const std::string& name) {
  const std::string flag = (name.size() == 1 ? "-" : "--") + name;
  for (auto it = args.begin(); it != args.end(); ++it) {
    if (*it == flag) {
      args.erase(it);
      return true;
    }
  }
  return false;
}

std::string read_file_or_stdin(const std::string& path) {
  if (path == "-") {
    return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace sluice::cli
