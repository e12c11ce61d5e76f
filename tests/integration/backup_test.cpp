// Online backup (ringmartctl backup) under load and restore (ringmartctl
// restore) into a new state directory: the restored system finishes every
// saga it holds with the invariants intact (tests/chaos checker). The
// consistency protocol: tools/ctl/backup.hpp.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "daemons/common/topology.hpp"
#include "http/client.hpp"
#include "testkit/eventually.hpp"
#include "testkit/temp_dir.hpp"
#include "tests/chaos/checker.hpp"
#include "tests/integration/system.hpp"

namespace ringmart::test {
namespace {

namespace fs = std::filesystem;

// Orders from `threads` clients until stop(), each for one unit of a product
// (a few with more units than the stock, to fail), paid by a token that
// sometimes declines: completed, failed and compensated sagas all occur.
class Load {
 public:
  Load(System& sys, int threads) {
    product_ = sys.create_product("backed-up", 1500, 100000);
    scarce_ = sys.create_product("scarce", 900, 3);
    for (int i = 0; i < threads; ++i)
      users_.push_back(sys.create_user("buyer" + std::to_string(i)));
    for (int t = 0; t < threads; ++t) {
      threads_.emplace_back([this, path = sys.api_socket(), t] {
        http::UnixClient client(path, std::chrono::seconds(30));  // one per thread
        for (int n = 0; !stop_; ++n) {
          const bool scarce = n % 7 == 3;
          const json body = {
              {"user_id", users_[t]},
              {"items", {{{"product_id", scarce ? scarce_ : product_}, {"quantity", 1}}}},
              {"payment", {{"token", n % 11 == 5 ? "tok_decline" : "tok_ok"}}}};
          const auto r = client.request("POST", "/v1/orders", body.dump());
          if (r && r->status == 202) ++accepted_;
        }
      });
    }
  }
  ~Load() { stop(); }
  void stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  int accepted() const { return accepted_; }
  bool ready() const { return product_ > 0 && scarce_ > 0; }

 private:
  std::int64_t product_ = -1, scarce_ = -1;
  std::vector<std::int64_t> users_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
};

// Waits until every saga of the system on `state_dir` is final, then checks
// every invariant; returns the number of orders it holds.
std::size_t check_restored(const System& sys) {
  checker::Options options{.state_dir = sys.state_dir(),
                           .runtime_dir = sys.runtime_dir(),
                           .config_file = "",
                           .accepted_order_ids = {}};
  auto quiet = checker::wait_quiet(options, 60000);
  EXPECT_TRUE(quiet) << quiet.error();
  auto report = checker::check(options);
  EXPECT_TRUE(report) << report.error();
  if (!report) return 0;
  for (const auto& v : report->violations) ADD_FAILURE() << v.invariant << ": " << v.detail;
  EXPECT_EQ(report->pending, 0u);
  EXPECT_EQ(report->sagas_nonterminal, 0u);
  return report->orders;
}

TEST(Backup, TakenUnderLoadRestoresToASystemThatFinishesEverySagaWithTheInvariantsIntact) {
  testkit::TempDir backups("ringmart-backups");
  const std::string dir = backups / "b1";
  System sys;
  ASSERT_TRUE(sys.start());
  Load load(sys, 4);
  ASSERT_TRUE(load.ready());
  ASSERT_TRUE(testkit::eventually([&] { return load.accepted() >= 200; }, 30000));
  const auto backup = sys.ctl("backup " + dir);
  ASSERT_EQ(backup.exit_code, 0) << backup.out;
  std::printf("%s", backup.out.c_str());
  const int at_backup = load.accepted();
  ASSERT_TRUE(testkit::eventually([&] { return load.accepted() >= at_backup + 200; }, 30000))
      << "the system stopped taking orders after the backup";
  load.stop();
  EXPECT_FALSE(fs::exists(dir + ".partial"));

  System restored;
  const auto restore = restored.ctl("restore " + dir);
  ASSERT_EQ(restore.exit_code, 0) << restore.out;
  ASSERT_TRUE(restored.start());
  const auto orders = check_restored(restored);
  EXPECT_GE(orders, 200u) << "the backup holds the orders accepted before it";
  EXPECT_LE(orders, static_cast<std::size_t>(load.accepted()));
  // And it serves.
  EXPECT_GT(restored.create_user("after-restore"), 0);
}

TEST(Backup, RestoredWhereTheOldSystemsSharedMemoryIsStillThereStartsAfreshAndFinishesItsSagas) {
  testkit::TempDir backups("ringmart-backups");
  const std::string dir = backups / "b2";
  System sys;
  ASSERT_TRUE(sys.start());
  {
    Load load(sys, 2);
    ASSERT_TRUE(load.ready());
    ASSERT_TRUE(testkit::eventually([&] { return load.accepted() >= 100; }, 30000));
    const auto backup = sys.ctl("backup " + dir);
    ASSERT_EQ(backup.exit_code, 0) << backup.out;
  }
  // The host loses the system (SIGKILL: its segments and transport record
  // stay), and its state is replaced by the backup, in the same directories.
  sys.kill_supervisor();
  ASSERT_TRUE(runtime::read_shm_transport(sys.runtime_dir())) << "the old transport should remain";
  for (const auto& entry : fs::directory_iterator(sys.state_dir())) fs::remove_all(entry.path());
  const auto restore = sys.ctl("restore " + dir);
  ASSERT_EQ(restore.exit_code, 0) << restore.out;
  ASSERT_TRUE(sys.start());
  EXPECT_GE(check_restored(sys), 100u);
}

TEST(Backup, MisuseIsRefusedAndChangesNothing) {
  testkit::TempDir backups("ringmart-backups");
  System sys;
  ASSERT_TRUE(sys.start());
  ASSERT_GT(sys.create_user("kept"), 0);
  // Into a directory that holds something: refused, left as it was.
  const std::string full = backups / "full";
  fs::create_directory(full);
  { std::ofstream(full + "/keep") << "x"; }
  auto r = sys.ctl("backup " + full);
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("is not empty"), std::string::npos) << r.out;
  EXPECT_EQ(std::distance(fs::directory_iterator(full), fs::directory_iterator()), 1);
  // A pause longer than the protocol allows.
  r = sys.ctl("backup " + backups / "b" + " --pause-ms 600000");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_FALSE(fs::exists(backups / "b"));
  // Restore over a running system's state: refused; the system still serves.
  const std::string good = backups / "good";
  ASSERT_EQ(sys.ctl("backup " + good).exit_code, 0);
  r = sys.ctl("restore " + good);
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("never over a system's state"), std::string::npos) << r.out;
  EXPECT_GT(sys.create_user("still-serving"), 0);
  // Restore from something that is not a backup.
  System other;
  r = other.ctl("restore " + full);
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("not a ringmart backup"), std::string::npos) << r.out;
  EXPECT_TRUE(fs::is_empty(other.state_dir()));
}

}  // namespace
}  // namespace ringmart::test
