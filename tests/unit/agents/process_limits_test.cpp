// cgroup v2 delegation against the kernel's own rules, on this machine's real cgroup2 hierarchy: a
// server placed in a cgroup by its supervisor moves itself into a leaf and gives a controller to its
// replicas' cgroups; with other processes in the cgroup it says why it cannot. Where the memory
// controller belongs to cgroup v1 (as here), the test uses another controller of the v2 hierarchy: the
// rules are the same for every controller.

#include "agents/process_limits.hpp"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <sstream>

#include "core/fs.hpp"
#include "tests/support/process.hpp"

namespace sluice::agents {
namespace {

bool write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.flush();
  return static_cast<bool>(out);
}

std::string first_word(const std::string& text) {
  std::istringstream in(text);
  std::string word;
  in >> word;
  return word;
}

bool lists(const std::string& path, const std::string& word) {
  auto text = read_file(path);
  if (!text) return false;
  std::istringstream in(text.value());
  for (std::string w; in >> w;)
    if (w == word) return true;
  return false;
}

// A child process that only waits, killed when this goes away: a process to put in a cgroup.
class Sleeper {
 public:
  Sleeper() : pid_(::fork()) {
    if (pid_ == 0) {
      ::pause();
      ::_exit(0);
    }
  }
  ~Sleeper() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Sleeper(const Sleeper&) = delete;
  Sleeper& operator=(const Sleeper&) = delete;
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_;
};

// A cgroup made for one test under the hierarchy's root, with `controller` delegated to it, as a
// supervisor (systemd with Delegate=yes, a container runtime) gives one to a service. Skips the test
// where there is no cgroup2 hierarchy with a controller, or no permission to make cgroups.
class DelegatedCgroup : public ::testing::Test {
 protected:
  void SetUp() override {
    // One test at a time on this machine touches the root's subtree_control (ctest runs in parallel).
    lock_ = UniqueFd(::open("/tmp/sluice-cgroup-test.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    ASSERT_TRUE(lock_.valid());
    ASSERT_EQ(::flock(lock_.get(), LOCK_EX), 0);
    mount_ = detail::cgroup2_mount();
    if (mount_.empty()) GTEST_SKIP() << "no cgroup2 hierarchy here";
    auto controllers = read_file(mount_ + "/cgroup.controllers");
    controller_ = controllers ? first_word(controllers.value()) : "";
    if (controller_.empty()) GTEST_SKIP() << "the cgroup2 hierarchy has no controller here";
    dir_ = mount_ + "/sluice-test-" + std::to_string(::getpid());
    if (::mkdir(dir_.c_str(), 0755) != 0) GTEST_SKIP() << "cannot make cgroups here";
    enabled_at_root_ = !lists(mount_ + "/cgroup.subtree_control", controller_);
    if (enabled_at_root_ && !write_text(mount_ + "/cgroup.subtree_control", "+" + controller_)) {
      GTEST_SKIP() << "cannot delegate " << controller_ << " here";
    }
    ASSERT_TRUE(lists(dir_ + "/cgroup.controllers", controller_));
  }

  void TearDown() override {
    sleeper_.reset();
    if (dir_.empty()) return;
    ::rmdir((dir_ + "/replica").c_str());
    ::rmdir((dir_ + "/sluice-server").c_str());
    EXPECT_EQ(::rmdir(dir_.c_str()), 0) << dir_;
    if (enabled_at_root_) write_text(mount_ + "/cgroup.subtree_control", "-" + controller_);
  }

  // Runs `body` in a child process placed in the test's cgroup (the server as its supervisor started
  // it); returns the child's exit status.
  template <class Body>
  int in_child(Body body) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      if (!write_text(dir_ + "/cgroup.procs", std::to_string(::getpid()))) ::_exit(90);
      ::_exit(body());
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 99;
  }

  // A process other than the server in the test's cgroup.
  void add_sleeper() {
    sleeper_ = std::make_unique<Sleeper>();
    ASSERT_TRUE(write_text(dir_ + "/cgroup.procs", std::to_string(sleeper_->pid())));
  }

  UniqueFd lock_;
  std::string mount_;
  std::string controller_;
  std::string dir_;
  bool enabled_at_root_ = false;
  std::unique_ptr<Sleeper> sleeper_;
};

std::string own_v2_cgroup() {
  auto text = read_file("/proc/self/cgroup");
  if (!text) return "";
  std::istringstream in(text.value());
  for (std::string line; std::getline(in, line);)
    if (line.rfind("0::", 0) == 0) return line.substr(3);
  return "";
}

TEST_F(DelegatedCgroup, TheServerMovesIntoALeafAndItsReplicasGetTheController) {
  const std::string relative = dir_.substr(mount_.size());
  const int status = in_child([&] {
    auto parent = detail::delegate_controller(dir_, controller_);
    if (!parent || parent.value() != dir_) return 1;
    if (own_v2_cgroup() != relative + "/sluice-server") return 2;  // the server itself, in the leaf
    if (::mkdir((dir_ + "/replica").c_str(), 0755) != 0) return 3;
    if (!write_text(dir_ + "/replica/cgroup.procs", std::to_string(::getpid()))) return 4;
    // Asked again (another replica), nothing moves.
    auto again = detail::delegate_controller(dir_, controller_);
    return again && again.value() == dir_ ? 0 : 5;
  });
  EXPECT_EQ(status, 0);
  EXPECT_TRUE(lists(dir_ + "/cgroup.subtree_control", controller_));
  EXPECT_TRUE(lists(dir_ + "/replica/cgroup.controllers", controller_));
}

TEST_F(DelegatedCgroup, OtherProcessesInTheCgroupAreNamedAsTheReason) {
  add_sleeper();
  const int status = in_child([&] {
    auto parent = detail::delegate_controller(dir_, controller_);
    if (parent) return 1;
    const std::string& message = parent.error().message;
    return message.find("other processes are in it") != std::string::npos &&
                   message.find("Delegate=yes") != std::string::npos
               ? 0
               : 2;
  });
  EXPECT_EQ(status, 0);
  EXPECT_FALSE(lists(dir_ + "/cgroup.subtree_control", controller_));
}

TEST_F(DelegatedCgroup, AControllerThatIsNotDelegatedIsRefusedWithoutMovingAnything) {
  auto parent = detail::delegate_controller(dir_, "no-such-controller");
  ASSERT_FALSE(parent);
  EXPECT_NE(parent.error().message.find("the no-such-controller controller is not available"),
            std::string::npos)
      << parent.error().message;
  struct stat st {};
  EXPECT_NE(::stat((dir_ + "/sluice-server").c_str(), &st), 0);  // no leaf made, nothing moved
}

// --cgroup-parent DIR, against a directory laid out as the kernel lays out a cgroup (the interface files
// are plain files here): what the server writes, and how it reads an OOM kill. No machine here has a
// cgroup v2 memory controller, so the kernel's side of v2 is not exercised.
class CgroupParentDirectory : public ::testing::Test {
 protected:
  void TearDown() override {
    sleepers_.clear();
    EXPECT_TRUE(set_cgroup_parent("auto"));
  }

  // A replica's cgroup directory as the kernel makes it on mkdir: with its interface files.
  std::string make_leaf(const std::string& replica, std::vector<std::string> files) {
    const std::string leaf = dir_.path() + "/sluice-" + std::to_string(::getpid()) + "-" + replica;
    EXPECT_EQ(::mkdir(leaf.c_str(), 0755), 0);
    for (const auto& file : files) EXPECT_TRUE(write_text(leaf + "/" + file, ""));
    return leaf;
  }

  pid_t sleeper() { return sleepers_.emplace_back(std::make_unique<Sleeper>())->pid(); }

  sluice::testing::TempDir dir_;
  std::vector<std::unique_ptr<Sleeper>> sleepers_;
};

ProcessLimits memory(std::int64_t bytes) {
  ProcessLimits limits;
  limits.memory_bytes = bytes;
  return limits;
}

TEST_F(CgroupParentDirectory, CgroupV2ReplicasGetMemoryMaxNoSwapAndTheirOomKillsAreSeen) {
  ASSERT_TRUE(write_text(dir_.path() + "/cgroup.controllers", "cpu io memory pids\n"));
  ASSERT_TRUE(write_text(dir_.path() + "/cgroup.subtree_control", "cpu\n"));
  auto set = set_cgroup_parent(dir_.path());
  ASSERT_TRUE(set) << set.error().to_string();
  EXPECT_EQ(read_file(dir_.path() + "/cgroup.subtree_control").value(), "+memory")
      << "memory enabled for the replicas' cgroups";

  const std::string leaf =
      make_leaf("a.r.1", {"memory.max", "memory.swap.max", "cgroup.procs", "memory.events"});
  ASSERT_TRUE(write_text(leaf + "/memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n"));
  const pid_t pid = sleeper();
  ReplicaLimits limits(memory(256 << 20), "a.r.1");
  auto applied = limits.apply(pid);
  ASSERT_TRUE(applied) << applied.error().to_string();
  EXPECT_EQ(read_file(leaf + "/memory.max").value(), "268435456");
  EXPECT_EQ(read_file(leaf + "/memory.swap.max").value(), "0");
  EXPECT_EQ(read_file(leaf + "/cgroup.procs").value(), std::to_string(pid));
  EXPECT_EQ(limits.describe(), "memory 256Mi (cgroup " + leaf + ")");
  EXPECT_FALSE(limits.oom_killed()) << "kills before the replica started are not its own";
  ASSERT_TRUE(write_text(leaf + "/memory.events", "low 0\nhigh 0\nmax 9\noom 2\noom_kill 2\n"));
  EXPECT_TRUE(limits.oom_killed());
}

TEST_F(CgroupParentDirectory, WithoutSwapAccountingTheMemoryLimitStillUsesTheCgroup) {
  ASSERT_TRUE(write_text(dir_.path() + "/cgroup.controllers", "memory\n"));
  ASSERT_TRUE(write_text(dir_.path() + "/cgroup.subtree_control", "memory\n"));
  ASSERT_TRUE(set_cgroup_parent(dir_.path()));
  EXPECT_EQ(read_file(dir_.path() + "/cgroup.subtree_control").value(), "memory\n") << "already enabled";
  const std::string leaf = make_leaf("b.r.1", {"memory.max", "cgroup.procs"});  // no memory.swap.max
  ReplicaLimits limits(memory(64 << 20), "b.r.1");
  ASSERT_TRUE(limits.apply(sleeper()));
  EXPECT_EQ(read_file(leaf + "/memory.max").value(), "67108864");
  EXPECT_EQ(limits.describe(), "memory 64Mi (cgroup " + leaf + ")");
}

TEST_F(CgroupParentDirectory, CgroupV1MemoryDirectoriesAreUsedToo) {
  ASSERT_TRUE(write_text(dir_.path() + "/memory.limit_in_bytes", "9223372036854771712\n"));
  ASSERT_TRUE(set_cgroup_parent(dir_.path()));
  const std::string leaf =
      make_leaf("c.r.1", {"memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "cgroup.procs"});
  ReplicaLimits limits(memory(32 << 20), "c.r.1");
  ASSERT_TRUE(limits.apply(sleeper()));
  EXPECT_EQ(read_file(leaf + "/memory.limit_in_bytes").value(), "33554432");
  EXPECT_EQ(read_file(leaf + "/memory.memsw.limit_in_bytes").value(), "33554432");
}

TEST_F(CgroupParentDirectory, NoneLimitsTheAddressSpace) {
  ASSERT_TRUE(set_cgroup_parent("none"));
  EXPECT_FALSE(memory_cgroups_available());
  const pid_t pid = sleeper();
  ReplicaLimits limits(memory(512 << 20), "d.r.1");
  ASSERT_TRUE(limits.apply(pid));
  EXPECT_EQ(limits.describe(), "memory 512Mi (RLIMIT_AS)");
  struct rlimit as {};
  ASSERT_EQ(::prlimit(pid, RLIMIT_AS, nullptr, &as), 0);
  EXPECT_EQ(as.rlim_cur, rlim_t{512} << 20);
  EXPECT_EQ(as.rlim_max, rlim_t{512} << 20);
}

TEST_F(CgroupParentDirectory, ADirectoryThatCannotBeUsedIsRefusedWithTheReason) {
  auto refused = set_cgroup_parent("relative/dir");
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().to_string().find("expects auto, none or the absolute path"), std::string::npos);
  refused = set_cgroup_parent(dir_.path());
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().to_string().find("is not a memory cgroup"), std::string::npos)
      << refused.error().to_string();
  ASSERT_TRUE(write_text(dir_.path() + "/cgroup.controllers", "cpu pids\n"));
  refused = set_cgroup_parent(dir_.path());
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().to_string().find("the memory controller is not available to it"),
            std::string::npos)
      << refused.error().to_string();
}

}  // namespace
}  // namespace sluice::agents
