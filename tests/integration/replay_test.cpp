// The Olist sample (and the built-in generated data set) replayed through
// api.sock by the real ringmart-replay tool, with its --verify sums.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>

#include "tests/integration/system.hpp"

namespace ringmart::test {
namespace {

/// Runs a command, returns (exit code, stdout).
std::pair<int, std::string> run(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return {-1, out};
  std::array<char, 4096> buf;
  while (auto n = std::fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  const int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

TEST(Replay, OlistSampleAddsUp) {
  const std::string dir = RINGMART_SOURCE_DIR "/../shared/data/olist";
  if (!std::filesystem::exists(dir + "/olist_order_items_dataset.csv"))
    GTEST_SKIP() << "no Olist data at " << dir;
  System sys;
  ASSERT_TRUE(sys.start());
  auto [rc, out] =
      run(System::bin_dir() + "/ringmart-replay " + dir + " --runtime-dir " + sys.runtime_dir() +
          " --concurrency 16 --verify --stock-factor 0.9 2>/dev/null");
  std::printf("%s\n", out.c_str());
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("verify: OK"), std::string::npos) << out;
  EXPECT_TRUE(sys.stop());
}

TEST(Replay, GeneratedDataSetAddsUp) {
  System sys;
  ASSERT_TRUE(sys.start());
  auto [rc, out] = run(System::bin_dir() + "/ringmart-replay --generate 600 --runtime-dir " +
                       sys.runtime_dir() + " --concurrency 8 --verify 2>/dev/null");
  std::printf("%s\n", out.c_str());
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("verify: OK"), std::string::npos) << out;
  EXPECT_TRUE(sys.stop());
}

}  // namespace
}  // namespace ringmart::test
