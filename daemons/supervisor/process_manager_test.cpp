// The supervisor's restart policy (process_manager.hpp): a daemon that served
// is restarted at once, one that keeps dying before it served backs off.
#include "daemons/supervisor/process_manager.hpp"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace ringmart::supervisor
