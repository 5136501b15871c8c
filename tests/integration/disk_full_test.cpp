// A full disk under a real `sluice serve`: ingress answers 503 with Retry-After, nothing acknowledged is
// lost, and publishing resumes once space returns. The data dir is a small tmpfs mounted for the test
// (needs root, as CI and `make test` run).

#include <sys/mount.h>

#include <iostream>
#include <map>
#include <set>

#include "tests/integration/broker_support.hpp"

namespace sluice::testing {
namespace {

class SmallFilesystem {
 public:
  explicit SmallFilesystem(const std::string& path) : path_(path) {
    mounted_ = ::mount("tmpfs", path.c_str(), "tmpfs", 0, "size=2m") == 0;
  }
  ~SmallFilesystem() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  bool grow() { return ::mount("tmpfs", path_.c_str(), "tmpfs", MS_REMOUNT, "size=64m") == 0; }

 private:
  std::string path_;
  bool mounted_ = false;
};

TEST(DiskFull, IngressAnswers503AndLosesNothingAcknowledged) {
  TempDir dir;
  SmallFilesystem fs(dir.path());
  if (!fs.mounted()) GTEST_SKIP() << "mounting a tmpfs needs root";
  HttpSink sink;
  SluiceServer server({}, dir.path() + "/data");
  ASSERT_TRUE(server.wait_ready());
  apply_yaml(server, broker_yaml() + "---\n" + trigger_yaml("t", sink.url()));

  const std::string data(3000, 'x');
  std::set<std::string> acknowledged;
  httplib::Client client("127.0.0.1", server.port());
  std::optional<httplib::Response> refused;
  for (int i = 0; i < 2000 && !refused; ++i) {
    const std::string id = "e" + std::to_string(i);
    auto res = client.Post("/brokers/default",
                           {{"ce-specversion", "1.0"}, {"ce-id", id}, {"ce-type", "t"}, {"ce-source", "/t"}},
                           data, "text/plain");
    ASSERT_TRUE(res);
    if (res->status == 202)
      acknowledged.insert(id);
    else
      refused = *res;
  }
  ASSERT_TRUE(refused) << "the disk never filled";
  EXPECT_EQ(refused->status, 503) << refused->body;
  EXPECT_EQ(refused->get_header_value("Retry-After"), "1");
  EXPECT_NE(refused->body.find("No space left"), std::string::npos) << refused->body;
  EXPECT_GT(acknowledged.size(), 100u);

  ASSERT_TRUE(fs.grow());
  ASSERT_TRUE(wait_until([&] { return publish(server, "after", "t") == 202; }));
  acknowledged.insert("after");

  // Every acknowledged event reaches the subscriber, across a restart too.
  server.process().signal(SIGTERM);
  ASSERT_EQ(server.process().wait(std::chrono::seconds(15)), 0) << server.process().output();
  server.restart();
  ASSERT_TRUE(server.wait_ready());
  ASSERT_TRUE(wait_all_delivered(sink, acknowledged, std::chrono::seconds(20)))
      << acknowledged.size() << " acknowledged, " << sink.count() << " delivered";
  std::map<std::string, int> deliveries;
  for (const auto& r : sink.requests()) ++deliveries[r.header("ce-id")];
  std::size_t lost = 0;
  std::size_t duplicated = 0;
  for (const auto& id : acknowledged) lost += deliveries.count(id) ? 0 : 1;
  for (const auto& [id, n] : deliveries) duplicated += n > 1 ? 1 : 0;
  std::cout << "disk-full: acknowledged=" << acknowledged.size() << " delivered=" << deliveries.size()
            << " duplicated=" << duplicated << " lost=" << lost
            << " (refused with 503 once the disk was full)" << std::endl;
  EXPECT_EQ(lost, 0u);
}

}  // namespace
}  // namespace sluice::testing
