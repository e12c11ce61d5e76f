#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <system_error>

#include "testkit/command.hpp"
#include "testkit/shm_names.hpp"
#include "testkit/temp_dir.hpp"

namespace fs = std::filesystem;
using ringmart::testkit::ShmNames;
using ringmart::testkit::TempDir;
using ringmart::testkit::unique_shm_name;

TEST(TempDir, MakesAFreshDirectoryAndRemovesItWithItsContents) {
  std::string path;
  {
    TempDir a("testkit-test");
    TempDir b("testkit-test");
    path = a.path();
    EXPECT_NE(a.path(), b.path());
    EXPECT_TRUE(fs::is_directory(a.path()));
    EXPECT_EQ(fs::path(a.path()).parent_path(), fs::temp_directory_path().string());
    EXPECT_EQ(fs::path(a.path()).filename().string().rfind("testkit-test-", 0), 0u);
    EXPECT_EQ(a / "state", a.path() + "/state");
    fs::create_directories(a / "state/product");
    std::ofstream(a / "state/product/data.mdb") << "x";
  }
  EXPECT_FALSE(fs::exists(path));
}

TEST(TempDir, KeptWhenTheKeepVariableIsSet) {
  std::string path;
  ASSERT_EQ(::setenv(ringmart::testkit::kKeepTestDirsVariable, "1", 1), 0);
  {
    TempDir dir("testkit-keep");
    path = dir.path();
  }
  ::unsetenv(ringmart::testkit::kKeepTestDirsVariable);
  EXPECT_TRUE(fs::is_directory(path));
  fs::remove_all(path);
}

TEST(TempDir, AMissingParentThrowsWithMkdtempsErrno) {
  std::optional<std::system_error> thrown;
  try {
    TempDir dir("x", "/nonexistent-ringmart-parent");
  } catch (const std::system_error& e) {
    thrown = e;
  }
  ASSERT_TRUE(thrown);
  EXPECT_EQ(thrown->code().value(), ENOENT);
}

TEST(ShmNames, NamesAreUniqueAndUnlinkedAtTheEnd) {
  const std::string pid = std::to_string(::getpid());
  EXPECT_EQ(unique_shm_name("rm-kit", "ring").rfind("/rm-kit-" + pid + "-ring-", 0), 0u);
  EXPECT_NE(unique_shm_name("rm-kit", "ring"), unique_shm_name("rm-kit", "ring"));
  std::string made;
  {
    ShmNames names("rm-kit");
    const std::string& first = names.add("a");
    for (int i = 0; i < 100; ++i) names.add("never-created");  // skipped at the end
    made = first;                                              // still valid after later adds
    EXPECT_EQ(made.rfind("/rm-kit-" + pid + "-a-", 0), 0u);
    const int fd = ::shm_open(made.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
    ASSERT_GE(fd, 0) << made;
    ::close(fd);
  }
  errno = 0;
  EXPECT_LT(::shm_open(made.c_str(), O_RDONLY, 0), 0);
  EXPECT_EQ(errno, ENOENT);
}

TEST(RunCommand, CollectsOutputAndExitCode) {
  const auto ok = ringmart::testkit::run_command("printf 'a\\nb'; echo err >&2");
  EXPECT_EQ(ok.exit_code, 0);
  EXPECT_EQ(ok.out, "a\nb");  // standard error only with 2>&1
  const auto both = ringmart::testkit::run_command("echo out; echo err >&2; exit 3 2>&1");
  EXPECT_EQ(both.exit_code, 3);
  const auto merged = ringmart::testkit::run_command("(echo out; echo err >&2; exit 4) 2>&1");
  EXPECT_EQ(merged.exit_code, 4);
  EXPECT_EQ(merged.out, "out\nerr\n");
  EXPECT_EQ(ringmart::testkit::run_command("kill -9 $$").exit_code, -1);
}
