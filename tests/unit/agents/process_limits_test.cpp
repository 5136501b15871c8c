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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "core/fs.hpp"

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

// A cgroup made for one test under the hierarchy's root, with `controller` delegated to it, as a
// supervisor (systemd with Delegate=yes, a container runtime) gives one to a service. Skips the test
// where there is no cgroup2 hierarchy with a controller, or no permission to make cgroups.
class DelegatedCgroup : public testing::Test {
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
    if (sleeper_ > 0) {
      ::kill(sleeper_, SIGKILL);
      ::waitpid(sleeper_, nullptr, 0);
    }
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
    sleeper_ = ::fork();
    if (sleeper_ == 0) {
      ::pause();
      ::_exit(0);
    }
    ASSERT_TRUE(write_text(dir_ + "/cgroup.procs", std::to_string(sleeper_)));
  }

  UniqueFd lock_;
  std::string mount_;
  std::string controller_;
  std::string dir_;
  bool enabled_at_root_ = false;
  pid_t sleeper_ = -1;
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

}  // namespace
}  // namespace sluice::agents
