// Limits of the process that runs `sluice serve`: many clients at once, against the open files limit it
// was started with.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>

#include "tests/integration/broker_support.hpp"

namespace sluice::testing {
namespace {

std::size_t open_files_of(pid_t pid) {
  std::error_code ec;
  std::size_t n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    ++n;
  return n;
}

/// The "Max open files" line of /proc/PID/limits: soft and hard.
std::pair<std::string, std::string> open_files_limit_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/limits");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Max open files", 0) != 0) continue;
    std::istringstream fields(line.substr(14));
    std::string soft, hard;
    fields >> soft >> hard;
    return {soft, hard};
  }
  return {};
}

TEST(ServeLimits, ALowSoftOpenFilesLimitIsRaisedSoManyIdleClientsDoNotLockOthersOut) {
  rlimit original{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &original), 0);
  constexpr std::size_t kIdle = 400;
  if (original.rlim_max < 4 * kIdle) GTEST_SKIP() << "the hard limit on open files is below " << 4 * kIdle;
  // The server inherits a soft limit below the number of clients, as under a shell or systemd default.
  rlimit low = original;
  low.rlim_cur = 256;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  auto server = std::make_unique<SluiceServer>();
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &original), 0);
  ASSERT_TRUE(server->wait_ready());
  const pid_t pid = server->process().pid();
  auto [soft, hard] = open_files_limit_of(pid);
  EXPECT_EQ(soft, hard) << "soft limit " << soft << ", hard " << hard;

  std::vector<int> idle;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(server->port()));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (std::size_t i = 0; i < kIdle; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    idle.push_back(fd);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  }
  // Every idle client is accepted, and a new one is still served.
  EXPECT_TRUE(wait_until([&] { return open_files_of(pid) > kIdle; }, std::chrono::seconds(10)))
      << open_files_of(pid) << " files open in the server";
  httplib::Client client("127.0.0.1", server->port());
  client.set_connection_timeout(std::chrono::seconds(5));
  client.set_read_timeout(std::chrono::seconds(5));
  auto res = client.Get("/healthz");
  ASSERT_TRUE(res) << "no answer with " << kIdle << " idle clients";
  EXPECT_EQ(res->status, 200);
  apply_yaml(*server, broker_yaml());
  EXPECT_EQ(publish(*server, "after-idle", "t"), 202);
  for (int fd : idle) ::close(fd);
}

std::size_t count_of(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

TEST(ServeLimits, AtTheOpenFilesLimitAcceptFailuresAreCountedNotLoggedEach) {
  SluiceServer server;
  ASSERT_TRUE(server.wait_ready());
  const pid_t pid = server.process().pid();
  rlimit raised{};
  ASSERT_EQ(::prlimit(pid, RLIMIT_NOFILE, nullptr, &raised), 0);
  // A few descriptors left: the clients beyond them wait in the listen backlog, and every accept (one
  // each 50 ms) fails with EMFILE.
  rlimit low = raised;
  low.rlim_cur = open_files_of(pid) + 4;
  ASSERT_EQ(::prlimit(pid, RLIMIT_NOFILE, &low, nullptr), 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(server.port()));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::vector<int> clients;
  for (int i = 0; i < 12; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    clients.push_back(fd);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  }
  ASSERT_TRUE(wait_until([&] { return server.process().output().find("accept failed") != std::string::npos; },
                         std::chrono::seconds(10)))
      << server.process().output();
  // Some 30 failures in this window: one line, not one each.
  EXPECT_FALSE(wait_until([&] { return count_of(server.process().output(), "accept failed") > 1; },
                          std::chrono::milliseconds(1500), std::chrono::milliseconds(50)))
      << server.process().output();

  ASSERT_EQ(::prlimit(pid, RLIMIT_NOFILE, &raised, nullptr), 0);
  const std::regex again(R"(accepting again \((\d+) more failed accepts)");
  std::string output;
  std::smatch match;
  ASSERT_TRUE(wait_until(
      [&] {
        output = server.process().output();
        return std::regex_search(output, match, again);
      },
      std::chrono::seconds(10)))
      << output;
  EXPECT_GT(std::stoul(match[1].str()), 10u) << match[0].str();
  httplib::Client client("127.0.0.1", server.port());
  client.set_read_timeout(std::chrono::seconds(5));
  auto res = client.Get("/healthz");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  for (int fd : clients) ::close(fd);
}

}  // namespace
}  // namespace sluice::testing
