#include "core/fs.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>

#include "tests/support/process.hpp"

namespace sluice {
namespace {

TEST(Fs, WriteFileAtomicRoundTripsAndReplaces) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/state.json";
  ASSERT_TRUE(write_file_atomic(path, "first"));
  auto read = read_file(path);
  ASSERT_TRUE(read) << read.error().to_string();
  EXPECT_EQ(read.value(), "first");

  ASSERT_TRUE(write_file_atomic(path, std::string(100000, 'z')));
  EXPECT_EQ(read_file(path).value(), std::string(100000, 'z'));

  // No temporary file is left beside it.
  auto names = list_dir(dir.path());
  ASSERT_TRUE(names);
  EXPECT_EQ(names.value(), std::vector<std::string>{"state.json"});
}

TEST(Fs, WriteFileAtomicFailsInMissingDirectory) {
  testing::TempDir dir;
  auto st = write_file_atomic(dir.path() + "/missing/state.json", "x");
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().subject.find("missing"), std::string::npos);
}

TEST(Fs, ReadFileNamesTheMissingPath) {
  testing::TempDir dir;
  auto read = read_file(dir.path() + "/nope");
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error().subject, dir.path() + "/nope");
  EXPECT_NE(read.error().message.find("No such file"), std::string::npos);
}

TEST(Fs, MakeDirsCreatesParentsAndIsIdempotent) {
  testing::TempDir dir;
  const std::string nested = dir.path() + "/a/b/c";
  ASSERT_TRUE(make_dirs(nested));
  ASSERT_TRUE(make_dirs(nested));
  ASSERT_TRUE(make_dirs(nested + "/"));
  ASSERT_TRUE(write_file_atomic(nested + "/f", "x"));
  auto st = make_dirs(nested + "/f");
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("not a directory"), std::string::npos);
}

TEST(Fs, ParentDir) {
  EXPECT_EQ(parent_dir("/a/b/c"), "/a/b");
  EXPECT_EQ(parent_dir("/c"), "/");
  EXPECT_EQ(parent_dir("c"), ".");
}

TEST(Fs, RemoveFileToleratesMissing) {
  testing::TempDir dir;
  EXPECT_TRUE(remove_file(dir.path() + "/nope"));
  ASSERT_TRUE(write_file_atomic(dir.path() + "/f", "x"));
  EXPECT_TRUE(remove_file(dir.path() + "/f"));
  EXPECT_FALSE(read_file(dir.path() + "/f"));
}

TEST(Fs, PwriteAndPreadFull) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/data";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT, 0644));
  ASSERT_TRUE(fd.valid());
  ASSERT_TRUE(pwrite_all(fd.get(), "hello world", 11, 0, path));
  ASSERT_TRUE(pwrite_all(fd.get(), "W", 1, 6, path));
  char buf[32] = {};
  auto n = pread_full(fd.get(), buf, sizeof buf, 0, path);
  ASSERT_TRUE(n);
  EXPECT_EQ(n.value(), 11u);  // short at end of file, not an error
  EXPECT_EQ(std::string(buf, 11), "hello World");
}

}  // namespace
}  // namespace sluice
