// The example agents as programs: a port another process listens on is an error, not a port shared with
// it (httplib's default socket options set SO_REUSEPORT, which lets a second listener in).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "tests/support/process.hpp"

namespace sluice::testing {
namespace {

/// A socket listening on 127.0.0.1 with SO_REUSEPORT set, as another httplib server's would be.
class Listener {
 public:
  Listener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int yes = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEPORT, &yes, sizeof(yes));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    ok_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) == 0 && ::listen(fd_, 16) == 0 &&
          ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
    port_ = ntohs(addr.sin_port);
  }
  ~Listener() { ::close(fd_); }
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
  bool ok() const { return ok_; }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  bool ok_ = false;
  int port_ = 0;
};

TEST(ExampleAgents, APortInUseIsAnErrorNotAShare) {
  Listener taken;
  ASSERT_TRUE(taken.ok());
  for (const char* agent : {"echo_agent", "slow_agent", "mcp_agent", "a2a_agent", "gpu_agent"}) {
    Process p(built_program(agent), {}, {{"PORT", std::to_string(taken.port())}});
    EXPECT_EQ(p.wait(), 1) << agent << ": " << p.output();
    EXPECT_NE(
        p.output().find(std::string(agent) + ": cannot listen on 127.0.0.1:" + std::to_string(taken.port())),
        std::string::npos)
        << p.output();
  }
}

}  // namespace
}  // namespace sluice::testing
