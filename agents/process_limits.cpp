#include "agents/process_limits.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>

#include "core/fs.hpp"
#include "core/log.hpp"
#include "core/quantity.hpp"

namespace sluice::agents {

namespace {

constexpr const char* kV1Root = "/sys/fs/cgroup/memory";

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

// Writes a cgroup interface file; false with errno set when the kernel refuses.
bool write_text(const std::string& path, const std::string& text) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return false;
  return ::write(fd.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size());
}

bool lists(const Result<std::string>& words, const std::string& word) {
  if (!words) return false;
  std::istringstream in(words.value());
  for (std::string w; in >> w;)
    if (w == word) return true;
  return false;
}

struct CgroupParent {
  std::string dir;  // empty: no memory cgroups (RLIMIT_AS)
  bool v2 = false;
};

// Found from the server's own cgroup ("auto"). With cgroup v2 it may move this process (see
// delegate_controller), after which /proc/self/cgroup names the leaf.
CgroupParent find_own_parent() {
  CgroupParent parent;
  if (exists(std::string(kV1Root) + "/memory.limit_in_bytes")) {
    parent.dir = kV1Root + own_cgroup(false);
    return parent;
  }
  const std::string mount = detail::cgroup2_mount();
  if (mount.empty()) return parent;
  parent.v2 = true;
  auto delegated = detail::delegate_controller(mount + own_cgroup(true), "memory");
  if (delegated) {
    parent.dir = delegated.value();
  } else {
    SLUICE_LOG(agents, info, "replica memory limits use RLIMIT_AS: {}", delegated.error().message);
  }
  return parent;
}

std::mutex parent_mu;
std::optional<CgroupParent> configured_parent;  // nullopt: "auto", found at first use

// Where replicas' cgroups go.
CgroupParent cgroup_parent() {
  std::lock_guard lock(parent_mu);
  if (!configured_parent) configured_parent = find_own_parent();
  return *configured_parent;
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

namespace detail {

std::string cgroup2_mount() {
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    // "36 25 0:31 / /sys/fs/cgroup rw,... shared:9 - cgroup2 cgroup2 rw"
    const auto dash = line.find(" - ");
    if (dash == std::string::npos || line.compare(dash + 3, 8, "cgroup2 ") != 0) continue;
    std::istringstream fields(line.substr(0, dash));
    std::string id, parent, device, root, mount_point;
    if (fields >> id >> parent >> device >> root >> mount_point) return mount_point;
  }
  return "";
}

Result<std::string> delegate_controller(const std::string& dir, const std::string& controller) {
  const std::string what = "cgroup " + dir;
  if (!lists(read_file(dir + "/cgroup.controllers"), controller))
    return make_error(what, "the " + controller + " controller is not available to it", 503);
  if (lists(read_file(dir + "/cgroup.subtree_control"), controller)) return dir;
  if (write_text(dir + "/cgroup.subtree_control", "+" + controller)) return dir;
  if (errno != EBUSY)
    return make_error(what, "cannot enable " + controller + " for its children: " + std::strerror(errno),
                      503);
  // cgroup v2 lets a cgroup other than the root give controllers to its children only while no process
  // is in it: move this process into a leaf of its own (what systemd asks of a service with
  // Delegate=yes), then try again.
  const std::string leaf = dir + "/sluice-server";
  if (::mkdir(leaf.c_str(), 0755) != 0 && errno != EEXIST)
    return make_error(what, "cannot create " + leaf + ": " + std::strerror(errno), 503);
  if (!write_text(leaf + "/cgroup.procs", std::to_string(::getpid())))
    return make_error(what, "cannot move the server into " + leaf + ": " + std::strerror(errno), 503);
  if (write_text(dir + "/cgroup.subtree_control", "+" + controller)) return dir;
  return make_error(what,
                    "cannot enable " + controller + " for its children (" + std::strerror(errno) +
                        "): other processes are in it; run the server in a cgroup of its own (systemd: "
                        "Delegate=yes)",
                    503);
}

}  // namespace detail

Status set_cgroup_parent(const std::string& setting) {
  std::optional<CgroupParent> parent;
  if (setting == "none") {
    parent = CgroupParent{};
  } else if (setting != "auto") {
    const std::string what = "--cgroup-parent " + setting;
    if (setting.empty() || setting.front() != '/')
      return make_error(what, "expects auto, none or the absolute path of a cgroup directory", 400);
    if (exists(setting + "/cgroup.controllers")) {
      // cgroup v2: the operator made it for the replicas; enable memory for its children here (never
      // move the server into it, as "auto" may do with its own cgroup).
      if (!lists(read_file(setting + "/cgroup.controllers"), "memory"))
        return make_error(what, "the memory controller is not available to it (see its cgroup.controllers)",
                          400);
      if (!lists(read_file(setting + "/cgroup.subtree_control"), "memory") &&
          !write_text(setting + "/cgroup.subtree_control", "+memory"))
        return make_error(what, std::string("cannot enable memory for its children: ") + std::strerror(errno),
                          400);
      parent = CgroupParent{setting, true};
    } else if (exists(setting + "/memory.limit_in_bytes")) {
      parent = CgroupParent{setting, false};
    } else {
      return make_error(
          what, "is not a memory cgroup (it has neither cgroup.controllers nor memory.limit_in_bytes)", 400);
    }
  }
  std::lock_guard lock(parent_mu);
  configured_parent = parent;
  return ok();
}

bool memory_cgroups_available() {
  const std::string parent = cgroup_parent().dir;
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
    const CgroupParent parent = cgroup_parent();
    cgroup_v2_ = parent.v2;
    const std::string dir =
        parent.dir.empty() ? "" : parent.dir + "/sluice-" + std::to_string(::getpid()) + "-" + name_;
    if (!dir.empty() && (::mkdir(dir.c_str(), 0755) == 0 || errno == EEXIST)) {
      const std::string bytes = std::to_string(limits_.memory_bytes);
      const bool limited = write_text(dir + (cgroup_v2_ ? "/memory.max" : "/memory.limit_in_bytes"), bytes);
      if (limited) {
        // No swap beyond the limit. Without swap accounting the file is absent: the limit above still
        // holds for RAM.
        const std::string swap = dir + (cgroup_v2_ ? "/memory.swap.max" : "/memory.memsw.limit_in_bytes");
        if (exists(swap)) write_text(swap, cgroup_v2_ ? "0" : bytes);
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
