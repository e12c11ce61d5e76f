// The CI part of the fault-injection harness, against the real system:
//  - a random nemesis (SIGKILL of random daemons every 100-300 ms, SIGSTOP
//    hangs, reboots) during a replay of a few thousand orders with declines
//    and payment timeouts mixed in, then the invariant checker;
//  - the crash-point matrix: every daemon x every crash point that can fire
//    in it, each on a fresh system: the crash must happen (marker file), the
//    daemon must be restarted, and the checker must find nothing.
#include "tests/nemesis/nemesis.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "ipc/crash_point.hpp"
#include "testkit/temp_dir.hpp"
#include "tools/olist/generate.hpp"

namespace ringmart::nemesis {
namespace {

namespace fs = std::filesystem;
using runtime::DaemonId;

fs::path bin_dir() { return fs::read_symlink("/proc/self/exe").parent_path(); }

std::string violations_text(const checker::Report& report) {
  std::string text;
  for (const auto& v : report.violations) text += "  " + v.invariant + ": " + v.detail + "\n";
  return text;
}

TEST(Nemesis, RandomKillsHangsAndRebootsUnderLoadKeepEveryInvariant) {
  RunOptions options;
  options.data = olist::generate({.seed = 11, .orders = 2500, .stock_factor = 0.9});
  options.replay.concurrency = 8;
  options.replay.wait = std::chrono::milliseconds(2000);
  options.replay.progress = false;
  options.replay.decline_percent = 5;
  options.replay.timeout_percent = 3;
  options.replay.capture_fail_percent = 2;
  options.nemesis.kinds = {FaultKind::kill, FaultKind::stop, FaultKind::reboot};
  options.nemesis.interval_min_ms = 100;
  options.nemesis.interval_max_ms = 300;
  // Small enough that the first dozen faults include a hang and a reboot.
  options.nemesis.stop_every = 7;
  options.nemesis.reboot_every = 11;
  options.nemesis.heartbeat_timeout_ms = 1000;
  options.system.bin_dir = bin_dir();
  options.system.config = chaos_config(1000, 200);
  options.system.keep_dir = std::getenv("RINGMART_KEEP_TEST_DIRS") != nullptr;
  options.quiet_timeout_ms = 120000;

  auto result = run(options, std::cerr);
  ASSERT_TRUE(result.has_value()) << result.error();
  std::ostringstream summary;
  print_summary(*result, summary);
  std::printf("%s", summary.str().c_str());

  std::map<FaultKind, std::size_t> by_kind;
  std::size_t restarts_seen = 0;
  for (const auto& f : result->faults) {
    ++by_kind[f.kind];
    EXPECT_FALSE(f.timed_out) << to_string(f.kind) << " of " << runtime::daemon_name(f.target)
                              << " at " << f.at_ms << ": not serving again";
    if (f.restart_ms >= 0) ++restarts_seen;
  }
  EXPECT_GE(by_kind[FaultKind::kill], 10u) << summary.str();
  EXPECT_GE(by_kind[FaultKind::stop], 1u) << summary.str();
  EXPECT_GE(by_kind[FaultKind::reboot], 1u) << summary.str();
  EXPECT_EQ(restarts_seen, result->faults.size()) << "every fault's target served again";
  EXPECT_EQ(result->counters.supervisor_exits, 0u) << "the supervisor died without a kill";
  EXPECT_EQ(result->never_accepted, 0u) << summary.str();
  EXPECT_EQ(result->load.orders, 2500u);
  EXPECT_GT(result->load.completed, 0u);
  EXPECT_GT(result->load.failed, 0u);
  EXPECT_TRUE(result->counters.stock_violations.empty()) << summary.str();
  ASSERT_TRUE(result->report.has_value()) << result->checker_error;
  EXPECT_TRUE(result->report->ok()) << violations_text(*result->report);
  EXPECT_EQ(result->report->pending, 0u);
  EXPECT_EQ(result->report->sagas_nonterminal, 0u);
  EXPECT_GE(result->report->orders, 2500u);
  EXPECT_TRUE(result->ok()) << summary.str();
}

// ---------------------------------------------------------------- crash points

/// 60 orders shaped so that every compensation happens several times: every
/// order has a coupon and spends points (its user has enough), a quarter are
/// declined (coupon, stock restored; order failed) and a quarter fail at
/// capture (also the payment voided and the points restored).
olist::Dataset crash_dataset() {
  auto data = olist::generate({.seed = 21, .orders = 60, .products = 30, .stock_factor = 10});
  for (std::size_t i = 0; i < data.orders.size(); ++i) {
    auto& o = data.orders[i];
    o.voucher_cents = 100;
    o.points = 50;
    o.user_points = 1000;
    o.payment_token = i % 4 == 1 ? "tok_decline" : i % 4 == 3 ? "tok_capture_fail" : "tok_ok";
  }
  return data;
}

/// Whether `point` can fire in `daemon` (see ipc/crash_point.hpp): ranking
/// sends nothing, so it has no ring write and no relay; compensations are
/// handled or sent by every daemon except the gateway and ranking.
bool can_fire(std::string_view point, DaemonId daemon) {
  if (daemon == DaemonId::RANKING && (point == "mid_ring_write" || point == "mid_relay")) {
    return false;
  }
  if (point == "mid_compensation" && (daemon == DaemonId::GATEWAY || daemon == DaemonId::RANKING)) {
    return false;
  }
  return true;
}

/// A state directory with the catalogue, users, points and coupons of
/// crash_dataset() already created (by a clean run of the real system), so
/// that each crash run starts at the orders: set-up itself is not retried on
/// transport errors, and a crash point fired during set-up would test nothing.
/// Copies a state directory keeping the LMDB files sparse (each data.mdb is
/// as large as its map; std::filesystem::copy would write out the holes).
bool copy_state(const fs::path& from, const fs::path& to) {
  const std::string cmd = "cp -a --sparse=always '" + from.string() + "' '" + to.string() + "'";
  return std::system(cmd.c_str()) == 0;
}

class CrashPointTest : public ::testing::TestWithParam<std::string_view> {
 protected:
  static void SetUpTestSuite() {
    data_ = new olist::Dataset(crash_dataset());
    SystemOptions so;
    so.bin_dir = bin_dir();
    so.config = config();
    auto sys = System::create(so);
    ASSERT_TRUE(sys.has_value()) << sys.error();
    auto ok = (*sys)->start();
    ASSERT_TRUE(ok.has_value()) << ok.error();
    replay::Options ro = replay_options((*sys)->runtime_dir());
    std::ostringstream log;
    auto ids = replay::set_up(*data_, ro, log);
    ASSERT_TRUE(ids.has_value()) << ids.error().message;
    ids_ = new replay::Ids(std::move(*ids));
    ASSERT_TRUE((*sys)->stop()) << "clean stop of the seed system";
    seed_ = new testkit::TempDir("ringmart-nemesis-seed");
    ASSERT_TRUE(copy_state((*sys)->state_dir(), *seed_ / "state"));
  }
  static void TearDownTestSuite() {
    delete seed_;
    delete ids_;
    delete data_;
    seed_ = nullptr;
    ids_ = nullptr;
    data_ = nullptr;
  }

  static std::string config() { return chaos_config(1000, 200); }
  static replay::Options replay_options(const fs::path& runtime_dir) {
    replay::Options ro;
    ro.runtime_dir = runtime_dir;
    ro.concurrency = 6;
    ro.wait = std::chrono::milliseconds(2000);
    ro.order_timeout = std::chrono::milliseconds(60000);
    ro.progress = false;
    ro.key_prefix = "crash-";
    return ro;
  }

  /// One crash run; failures name the point and the daemon.
  void crash_run(std::string_view point, DaemonId daemon, int nth) {
    const std::string name = runtime::daemon_name(daemon);
    const std::string spec = std::string(point) + ":" + name + ":" + std::to_string(nth);
    SCOPED_TRACE("RINGMART_CRASH_POINT=" + spec);
    SystemOptions so;
    so.bin_dir = bin_dir();
    so.config = config();
    so.env = {{"RINGMART_CRASH_POINT", spec}};
    so.keep_dir = std::getenv("RINGMART_KEEP_TEST_DIRS") != nullptr;
    auto created = System::create(so);
    ASSERT_TRUE(created.has_value()) << created.error();
    System& sys = **created;
    fs::remove_all(sys.state_dir());
    ASSERT_TRUE(copy_state(*seed_ / "state", sys.state_dir()));

    // Only the harness's systemd part: restart a supervisor that crashed.
    NemesisOptions no;
    no.kinds = {};
    no.stock_check_interval_ms = 0;
    Nemesis monitor(sys, no);
    monitor.start();
    auto started = sys.start();
    ASSERT_TRUE(started.has_value()) << started.error();

    const auto ro = replay_options(sys.runtime_dir());
    auto result = replay::run_replay(*data_, *ids_, ro);
    for (int pass = 0; pass < 5; ++pass) {
      if (!sys.wait_healthy(30000)) break;
      if (resubmit_unanswered(*data_, *ids_, ro, result) == 0) break;
    }
    std::vector<std::uint64_t> accepted;
    for (const auto& o : result.outcomes) {
      EXPECT_TRUE(o.order_id.has_value()) << "never accepted: " << o.error;
      if (o.order_id) accepted.push_back(*o.order_id);
    }
    const auto copts = sys.checker_options(accepted);
    auto quiet = checker::wait_quiet(copts, 60000);
    EXPECT_TRUE(quiet.has_value()) << quiet.error() << "\n" << sys.log_tail();
    monitor.stop();

    const fs::path marker =
        sys.runtime_dir() / ("crash-" + std::string(point) + "-" + name + ".fired");
    EXPECT_TRUE(fs::exists(marker)) << "the crash point never fired: " << marker.string();
    const auto counters = monitor.counters();
    if (daemon == DaemonId::SUPERVISOR) {
      // No one counts the supervisor's own restarts in the status region:
      // the harness (systemd's part) restarted it after the crash.
      EXPECT_GE(counters.supervisor_exits, 1u);
      for (int status : counters.supervisor_exit_status) {
        EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
      }
    } else {
      EXPECT_EQ(counters.supervisor_exits, 0u);
      auto status = sys.open_status();
      ASSERT_TRUE(status.has_value());
      EXPECT_GE(status->slot(runtime::index(daemon)).restarts.load(), 1u)
          << name << " was not restarted";
    }
    auto report = checker::check(copts);
    ASSERT_TRUE(report.has_value()) << report.error();
    EXPECT_TRUE(report->ok()) << violations_text(*report);
    std::uint32_t restarts = 0;
    if (auto status = sys.open_status()) restarts = status->slot(runtime::index(daemon)).restarts;
    std::printf(
        "crash %-32s fired %d, restarts %u, supervisor exits %zu: %zu orders, %zu "
        "completed, %zu failed, %zu violations\n",
        spec.c_str(), fs::exists(marker) ? 1 : 0, restarts, counters.supervisor_exits,
        report->orders, report->completed, report->failed, report->violations.size());
    EXPECT_EQ(report->pending, 0u);
    EXPECT_GE(report->orders, data_->orders.size());
    EXPECT_TRUE(sys.stop()) << "clean stop after the crash\n" << sys.log_tail();
  }

  static olist::Dataset* data_;
  static replay::Ids* ids_;
  static testkit::TempDir* seed_;
};

olist::Dataset* CrashPointTest::data_ = nullptr;
replay::Ids* CrashPointTest::ids_ = nullptr;
testkit::TempDir* CrashPointTest::seed_ = nullptr;

TEST_P(CrashPointTest, EveryDaemonCrashesThereRestartsAndKeepsEveryInvariant) {
  ASSERT_NE(seed_, nullptr) << "the seed system failed";
  const std::string_view point = GetParam();
  int runs = 0;
  for (auto daemon : runtime::all_daemons()) {
    if (!can_fire(point, daemon)) continue;
    ++runs;
    crash_run(point, daemon, 3);
  }
  EXPECT_GE(runs, 6);
}

INSTANTIATE_TEST_SUITE_P(AllPoints, CrashPointTest, ::testing::ValuesIn(ipc::kCrashPoints),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace ringmart::nemesis
