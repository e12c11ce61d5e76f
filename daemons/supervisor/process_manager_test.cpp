// The supervisor's restart policy (process_manager.hpp): a daemon that served
// is restarted at once, one that keeps dying before it served backs off.
#include "daemons/supervisor/process_manager.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "testkit/temp_dir.hpp"

namespace ringmart::supervisor {
namespace {

TEST(RestartBackoff, DaemonThatServedIsRestartedAtOnceEvenAfterABackoff) {
  const RestartPolicy policy;  // backoff_initial_ms 0, backoff_max_ms 2000
  EXPECT_EQ(restart_backoff_ms(policy, 0, true), 0);
  // A daemon that came up after a start-up crash loop and was then killed is
  // not penalised for the loop before.
  EXPECT_EQ(restart_backoff_ms(policy, 1600, true), 0);

  RestartPolicy delayed;
  delayed.backoff_initial_ms = 100;  // systemd's RestartSec-style fixed pause
  EXPECT_EQ(restart_backoff_ms(delayed, 800, true), 100);
}

TEST(RestartBackoff, DaemonThatNeverServedDoublesItsWaitUpToTheCap) {
  RestartPolicy policy;
  policy.backoff_max_ms = 1000;
  std::int64_t wait = 0;
  std::vector<std::int64_t> waits;
  for (int i = 0; i < 7; ++i) {
    wait = restart_backoff_ms(policy, wait, false);
    waits.push_back(wait);
  }
  EXPECT_EQ(waits, (std::vector<std::int64_t>{50, 100, 200, 400, 800, 1000, 1000}));
}

std::filesystem::path own_dir() {
  return std::filesystem::read_symlink("/proc/self/exe").parent_path();
}

TEST(DaemonDir, DefaultIsTheLibexecDirectoryBesideTheExecutablesBinDirectory) {
  // The test runs from the build's bin/, laid out like an install.
  EXPECT_EQ(ProcessManager::default_daemon_dir(),
            (own_dir() / ".." / "libexec" / "ringmart").lexically_normal().string());
  EXPECT_EQ(ProcessManager::missing_daemons(ProcessManager::default_daemon_dir()), "");
}

TEST(DaemonDir, RelativeIsResolvedAgainstTheExecutableAndAbsoluteKept) {
  EXPECT_EQ(ProcessManager::resolve_daemon_dir("/opt/rm/./daemons/"), "/opt/rm/daemons/");
  EXPECT_EQ(ProcessManager::resolve_daemon_dir("../x"), (own_dir().parent_path() / "x").string());
}

TEST(DaemonDir, NamesEachDaemonThatIsMissingOrNotExecutable) {
  testkit::TempDir dir("rm-daemon-dir");
  auto make = [&](const std::string& name, mode_t mode) {
    const auto path = dir.path() + "/ringmart-" + name;
    std::ofstream(path) << "#!/bin/sh\n";
    ::chmod(path.c_str(), mode);
  };
  for (const char* name : {"user", "product", "coupon", "order", "payment", "ranking"}) {
    make(name, 0755);
  }
  EXPECT_EQ(ProcessManager::missing_daemons(dir.path()), "ringmart-gateway");
  make("gateway", 0644);
  EXPECT_EQ(ProcessManager::missing_daemons(dir.path()), "ringmart-gateway");
  ::chmod((dir.path() + "/ringmart-user").c_str(), 0644);
  ::chmod((dir.path() + "/ringmart-gateway").c_str(), 0755);
  EXPECT_EQ(ProcessManager::missing_daemons(dir.path()), "ringmart-user");
  EXPECT_EQ(ProcessManager::missing_daemons(dir.path() + "/nowhere"),
            "ringmart-user, ringmart-product, ringmart-coupon, ringmart-order, ringmart-payment, "
            "ringmart-ranking, ringmart-gateway");
}

}  // namespace
}  // namespace ringmart::supervisor
