#include "agents/process_limits.hpp"

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/fs.hpp"
#include "core/quantity.hpp"

namespace sluice::agents {

namespace {

constexpr const char* kV1Root = "/sys/fs/cgroup/memory";
constexpr const char* kV2Root = "/sys/fs/cgroup";

// The server's own cgroup path for the v1 memory hierarchy ("4:memory:/a/b") or v2 ("0::/a/b").
std::string own_cgroup(bool v2) {
  std::ifstream in("/proc/self/cgroup");
  for (std::string line; std::getline(in, line);) {
    const auto first = line.find(':');
    const auto second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    const std::string controllers = line.substr(first + 1, second - first - 1);
    const std::string path = line.substr(second + 1);
    if (v2 ? line.rfind("0::", 0) == 0 : controllers == "memory") return path == "/" ? "" : path;
  }
  return "";
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

bool write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.flush();
  return static_cast<bool>(out);
}

// Where replicas' cgroups go, or "" when there is no usable memory hierarchy. Sets *v2.
std::string cgroup_parent(bool* v2) {
  if (exists(std::string(kV1Root) + "/memory.limit_in_bytes")) {
    *v2 = false;
    return kV1Root + own_cgroup(false);
  }
  if (exists(std::string(kV2Root) + "/cgroup.controllers")) {
    *v2 = true;
    const std::string parent = kV2Root + own_cgroup(true);
    auto enabled = read_file(parent + "/cgroup.subtree_control");
    if (enabled && (" " + enabled.value() + " ").find(" memory") != std::string::npos) return parent;
  }
  return "";
}

// The "oom_kill N" count of a cgroup (v1 memory.oom_control, v2 memory.events); 0 when absent.
std::int64_t oom_kills(const std::string& cgroup, bool v2) {
  auto text = read_file(cgroup + (v2 ? "/memory.events" : "/memory.oom_control"));
  if (!text) return 0;
  std::istringstream in(text.value());
  for (std::string key; in >> key;) {
    std::int64_t value = 0;
    if (!(in >> value)) break;
    if (key == "oom_kill") return value;
  }
  return 0;
}

Status set_rlimit(pid_t pid, __rlimit_resource resource, rlim_t value, const char* what) {
  struct rlimit limit {
    value, value
  };
  if (::prlimit(pid, resource, &limit, nullptr) != 0)
    return make_error(what, std::string("cannot set the limit: ") + std::strerror(errno), 500);
  return ok();
}

}  // namespace

bool memory_cgroups_available() {
  bool v2 = false;
  const std::string parent = cgroup_parent(&v2);
  if (parent.empty()) return false;
  const std::string probe = parent + "/sluice-probe-" + std::to_string(::getpid());
  if (::mkdir(probe.c_str(), 0755) != 0 && errno != EEXIST) return false;
  ::rmdir(probe.c_str());
  return true;
}

ReplicaLimits::ReplicaLimits(ProcessLimits limits, std::string name)
    : limits_(limits), name_(std::move(name)) {}

ReplicaLimits::~ReplicaLimits() {
  if (!cgroup_.empty()) ::rmdir(cgroup_.c_str());
}

Status ReplicaLimits::apply(pid_t pid) {
  if (limits_.open_files > 0) {
    if (auto st =
            set_rlimit(pid, RLIMIT_NOFILE, static_cast<rlim_t>(limits_.open_files), "sluice.dev/open-files");
        !st)
      return st;
  }
  if (limits_.memory_bytes <= 0) return ok();
  if (cgroup_.empty()) {
    const std::string parent = cgroup_parent(&cgroup_v2_);
    const std::string dir =
        parent.empty() ? "" : parent + "/sluice-" + std::to_string(::getpid()) + "-" + name_;
    if (!dir.empty() && (::mkdir(dir.c_str(), 0755) == 0 || errno == EEXIST)) {
      const std::string bytes = std::to_string(limits_.memory_bytes);
      const bool limited =
          cgroup_v2_ ? write_text(dir + "/memory.max", bytes) && write_text(dir + "/memory.swap.max", "0")
                     : write_text(dir + "/memory.limit_in_bytes", bytes);
      if (limited) {
        // Without swap accounting the file is absent: the limit above still holds for RAM.
        if (!cgroup_v2_ && exists(dir + "/memory.memsw.limit_in_bytes"))
          write_text(dir + "/memory.memsw.limit_in_bytes", bytes);
        cgroup_ = dir;
      } else {
        ::rmdir(dir.c_str());
      }
    }
  }
  if (cgroup_.empty())
    return set_rlimit(pid, RLIMIT_AS, static_cast<rlim_t>(limits_.memory_bytes), "resources.limits.memory");
  oom_kills_at_apply_ = oom_kills(cgroup_, cgroup_v2_);
  if (!write_text(cgroup_ + "/cgroup.procs", std::to_string(pid)))
    return make_error("resources.limits.memory", "cannot move the process into " + cgroup_, 500);
  return ok();
}

bool ReplicaLimits::oom_killed() const {
  return !cgroup_.empty() && oom_kills(cgroup_, cgroup_v2_) > oom_kills_at_apply_;
}

std::string ReplicaLimits::describe() const {
  std::string out;
  if (limits_.memory_bytes > 0)
    out += "memory " + format_bytes(limits_.memory_bytes) +
           (cgroup_.empty() ? " (RLIMIT_AS)" : " (cgroup " + cgroup_ + ")");
  if (limits_.open_files > 0)
    out += std::string(out.empty() ? "" : ", ") + "open files " + std::to_string(limits_.open_files);
  return out;
}

}  // namespace sluice::agents
