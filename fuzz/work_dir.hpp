#pragma once
// A scratch directory for fuzz targets that need files: in /dev/shm when there is one (no disk writes or
// fsync cost per input), named after the process, and removed when the process exits.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

namespace sluice::fuzz {

inline const std::string& work_dir(const char* name) {
  static const std::string dir = [name] {
    const std::string root = std::filesystem::exists("/dev/shm") ? "/dev/shm" : "/tmp";
    return root + "/sluice-" + name + "-" + std::to_string(::getpid());
  }();
  static const bool registered = [] {
    std::filesystem::create_directories(dir);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    });
    return true;
  }();
  (void)registered;
  return dir;
}

}  // namespace sluice::fuzz
