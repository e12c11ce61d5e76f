// The monolith baseline must be a correct order back end, or the ratios
// against it mean nothing: same business outcomes as the saga's rules, the
// same outcomes with and without group commit, invariant sums that hold.
#include "bench/monolith.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>

#include "testkit/temp_dir.hpp"
#include "tools/olist/generate.hpp"

namespace ringmart::bench {
namespace {

class MonolithTest : public ::testing::Test {
 protected:
  std::string env_dir(const std::string& name) { return dir_ / name; }
  testkit::TempDir dir_{"rm-monolith-test"};
};

/// 400 orders, stock for 90% of the units, a quarter paying with a token
/// that fails at some step.
olist::Dataset mixed_data() {
  auto data = olist::generate({.seed = 3, .orders = 400, .stock_factor = 0.9});
  for (std::size_t i = 0; i < data.orders.size(); ++i) {
    if (i % 12 == 1) data.orders[i].payment_token = "tok_decline";
    if (i % 12 == 5) data.orders[i].payment_token = "tok_capture_fail";
    if (i % 12 == 9) data.orders[i].payment_token = "tok_timeout";
  }
  return data;
}

TEST_F(MonolithTest, AppliesTheSagaRulesAndKeepsTheInvariantSums) {
  const auto data = mixed_data();
  auto r = run_monolith(data, {.dir = env_dir("a")});
  ASSERT_TRUE(r.has_value()) << r.error();
  EXPECT_EQ(r->orders, 400u);
  EXPECT_EQ(r->completed + r->failed, 400u);
  EXPECT_EQ(r->commits, 400u);
  EXPECT_GT(r->failed_by_reason["PAYMENT_DECLINED"], 0u);
  EXPECT_GT(r->failed_by_reason["PAYMENT_CAPTURE_FAILED"], 0u);
  EXPECT_GT(r->failed_by_reason["PAYMENT_TIMEOUT"], 0u);
  EXPECT_GT(r->failed_by_reason["OUT_OF_STOCK"], 0u);
  EXPECT_TRUE(r->violations.empty()) << r->violations.front();
}

TEST_F(MonolithTest, GroupCommitDecidesEveryOrderTheSameWay) {
  const auto data = mixed_data();
  auto one = run_monolith(data, {.dir = env_dir("one"), .rounds = 2});
  auto group = run_monolith(data, {.dir = env_dir("group"), .orders_per_commit = 64, .rounds = 2});
  ASSERT_TRUE(one.has_value()) << one.error();
  ASSERT_TRUE(group.has_value()) << group.error();
  EXPECT_EQ(group->orders, 800u);
  EXPECT_EQ(group->commits, 13u);  // ceil(800 / 64)
  EXPECT_EQ(group->completed, one->completed);
  EXPECT_EQ(group->failed_by_reason, one->failed_by_reason);
  EXPECT_TRUE(group->violations.empty()) << group->violations.front();
}

TEST_F(MonolithTest, FsyncDurabilityGivesTheSameOutcomes) {
  auto data = mixed_data();
  data.orders.resize(60);
  auto process = run_monolith(data, {.dir = env_dir("p")});
  auto fsync = run_monolith(data, {.dir = env_dir("f"), .durability = storage::Durability::fsync});
  ASSERT_TRUE(process.has_value()) << process.error();
  ASSERT_TRUE(fsync.has_value()) << fsync.error();
  EXPECT_EQ(fsync->failed_by_reason, process->failed_by_reason);
  EXPECT_TRUE(fsync->violations.empty());
}

}  // namespace
}  // namespace ringmart::bench
