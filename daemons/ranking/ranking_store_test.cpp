#include "daemons/ranking/ranking_store.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <tuple>
#include <vector>

#include "storage/store_test.hpp"

namespace ringmart::ranking {
namespace {

// 2023-11-14T22:13:20Z; its UTC day starts at kDayStart.
constexpr std::int64_t kNow = 1'700'000'000'000;
constexpr std::int64_t kDayStart = kNow / kMsPerDay * kMsPerDay;

class RankingStoreTest : public storage::testing::StoreTest<RankingStore> {
 protected:
  bool complete(std::uint64_t order, std::vector<LineQuantity> lines, std::int64_t at_ms) {
    auto txn = storage::Txn::begin_write(*env_);
    EXPECT_TRUE(txn);
    auto r = store_.record_completed(*txn, order, lines, at_ms);
    EXPECT_TRUE(r) << r.error().message();
    EXPECT_FALSE(txn->commit());
    return r.value_or(false);
  }
  std::vector<BestSeller> best(std::int64_t now_ms, int days, std::size_t limit) {
    auto txn = storage::Txn::begin_read(*env_);
    EXPECT_TRUE(txn);
    return store_.bestsellers(*txn, now_ms, days, limit);
  }
};

TEST(UtcDayTest, SplitsAtUtcMidnight) {
  EXPECT_EQ(utc_day(0), 0u);
  EXPECT_EQ(utc_day(kMsPerDay - 1), 0u);
  EXPECT_EQ(utc_day(kMsPerDay), 1u);
  EXPECT_EQ(utc_day(kNow), 19675u);  // 2023-11-14
  EXPECT_EQ(utc_day(-1), 0u);
}

TEST_F(RankingStoreTest, CountsUnitsPerDayAndProduct) {
  EXPECT_TRUE(complete(1, {{7, 2}, {8, 1}}, kNow));
  EXPECT_TRUE(complete(2, {{7, 3}}, kNow + 1000));
  EXPECT_TRUE(complete(3, {{7, 4}}, kDayStart - 1));  // the day before
  auto txn = storage::Txn::begin_read(*env_);
  EXPECT_EQ(store_.units(*txn, utc_day(kNow), 7), 5);
  EXPECT_EQ(store_.units(*txn, utc_day(kNow), 8), 1);
  EXPECT_EQ(store_.units(*txn, utc_day(kNow) - 1, 7), 4);
  EXPECT_EQ(store_.units(*txn, utc_day(kNow), 9), 0);
  auto p = store_.processed(*txn, 2);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->completed_at_ms, kNow + 1000);
  EXPECT_EQ(p->day, utc_day(kNow));
  EXPECT_FALSE(store_.processed(*txn, 4));
}

TEST_F(RankingStoreTest, CountsEachOrderOnce) {
  EXPECT_TRUE(complete(1, {{7, 2}}, kNow));
  EXPECT_FALSE(complete(1, {{7, 2}}, kNow));
  EXPECT_FALSE(complete(1, {{7, 9}}, kNow + kMsPerDay));
  auto txn = storage::Txn::begin_read(*env_);
  EXPECT_EQ(store_.units(*txn, utc_day(kNow), 7), 2);
  EXPECT_EQ(store_.units(*txn, utc_day(kNow) + 1, 7), 0);
}

TEST_F(RankingStoreTest, IgnoresNonPositiveQuantitiesAndSumsRepeatedProducts) {
  EXPECT_TRUE(complete(1, {{7, 0}, {8, -3}, {9, 2}, {9, 3}}, kNow));
  auto txn = storage::Txn::begin_read(*env_);
  EXPECT_EQ(store_.units(*txn, utc_day(kNow), 7), 0);
  EXPECT_EQ(store_.units(*txn, utc_day(kNow), 8), 0);
  EXPECT_EQ(store_.units(*txn, utc_day(kNow), 9), 5);
}

TEST_F(RankingStoreTest, AbortedTransactionCountsNothing) {
  {
    auto txn = storage::Txn::begin_write(*env_);
    ASSERT_TRUE(txn);
    const std::vector<LineQuantity> lines{{7, 2}};
    ASSERT_TRUE(store_.record_completed(*txn, 1, lines, kNow).value());
  }
  EXPECT_TRUE(best(kNow, 7, 10).empty());
  EXPECT_TRUE(complete(1, {{7, 2}}, kNow));
  EXPECT_EQ(best(kNow, 7, 10), (std::vector<BestSeller>{{7, 2}}));
}

TEST_F(RankingStoreTest, BestSellersOrderByUnitsThenProductId) {
  complete(1, {{5, 3}, {6, 7}, {4, 3}}, kNow);
  complete(2, {{9, 3}, {5, 1}}, kNow);
  // 6:7, 5:4, then 4:3 and 9:3 tie and go by id.
  EXPECT_EQ(best(kNow, 1, 10), (std::vector<BestSeller>{{6, 7}, {5, 4}, {4, 3}, {9, 3}}));
  EXPECT_EQ(best(kNow, 1, 3), (std::vector<BestSeller>{{6, 7}, {5, 4}, {4, 3}}));
}

TEST_F(RankingStoreTest, BestSellersWindowIncludesTodayAndEndsNDaysBack) {
  complete(1, {{1, 10}}, kDayStart - 7 * kMsPerDay);  // 7 days before today: outside 7 days
  complete(2, {{2, 5}}, kDayStart - 6 * kMsPerDay);   // first day of the window
  complete(3, {{3, 2}}, kDayStart);                   // today, midnight
  complete(4, {{3, 2}}, kDayStart + kMsPerDay - 1);   // today, last ms
  complete(5, {{4, 99}}, kDayStart + kMsPerDay);      // tomorrow: not yet
  EXPECT_EQ(best(kNow, 7, 10), (std::vector<BestSeller>{{2, 5}, {3, 4}}));
  EXPECT_EQ(best(kNow, 8, 10), (std::vector<BestSeller>{{1, 10}, {2, 5}, {3, 4}}));
  EXPECT_EQ(best(kNow, 1, 10), (std::vector<BestSeller>{{3, 4}}));
  // Units of one product add up across the days of the window.
  complete(6, {{3, 3}}, kDayStart - kMsPerDay);
  EXPECT_EQ(best(kNow, 2, 10), (std::vector<BestSeller>{{3, 7}}));
}

TEST_F(RankingStoreTest, BestSellersClampsDaysAndLimit) {
  complete(1, {{1, 1}}, kNow);
  complete(2, {{2, 2}}, kNow - 400 * kMsPerDay);  // beyond kMaxDays
  EXPECT_EQ(best(kNow, 0, 10), (std::vector<BestSeller>{{1, 1}}));
  EXPECT_EQ(best(kNow, 100000, 10), (std::vector<BestSeller>{{1, 1}}));
  EXPECT_EQ(best(kNow, 1, 0).size(), 1u);
  EXPECT_TRUE(best(0, 7, 10).empty());
}

TEST_F(RankingStoreTest, ReadOnlyQueriesSeeCommittedData) {
  complete(1, {{7, 2}, {8, 5}}, kNow);
  auto q = RankingQueries::open(dir_.path(), 64u << 20);
  ASSERT_TRUE(q) << q.error().message();
  EXPECT_EQ(q->bestsellers(kNow, 7, 10).value(), (std::vector<BestSeller>{{8, 5}, {7, 2}}));
  complete(2, {{7, 4}}, kNow);
  EXPECT_EQ(q->bestsellers(kNow, 7, 10).value(), (std::vector<BestSeller>{{7, 6}, {8, 5}}));
}

TEST(RankingQueriesTest, OpenFailsForMissingEnvironment) {
  EXPECT_FALSE(RankingQueries::open("/tmp/ringmart-ranking-does-not-exist", 64u << 20));
}

TEST_F(RankingStoreTest, ScansUnitsOfEveryDayAndProcessedOrders) {
  ASSERT_TRUE(complete(5, {{7, 2}, {8, 1}}, kNow));
  ASSERT_TRUE(complete(3, {{7, 4}}, kNow - kMsPerDay));
  auto txn = storage::Txn::begin_read(*env_);
  ASSERT_TRUE(txn);
  std::vector<std::tuple<std::uint64_t, std::uint64_t, std::int64_t>> units;
  store_.scan_units(*txn, [&](std::uint64_t day, std::uint64_t product, std::int64_t n) {
    units.emplace_back(day, product, n);
    return true;
  });
  const auto today = utc_day(kNow);
  EXPECT_EQ(units, (std::vector<std::tuple<std::uint64_t, std::uint64_t, std::int64_t>>{
                       {today - 1, 7, 4}, {today, 7, 2}, {today, 8, 1}}));
  std::vector<std::pair<std::uint64_t, std::uint64_t>> processed;
  store_.scan_processed(*txn, [&](std::uint64_t order_id, const ProcessedOrder& p) {
    processed.emplace_back(order_id, p.day);
    return true;
  });
  EXPECT_EQ(processed,
            (std::vector<std::pair<std::uint64_t, std::uint64_t>>{{3, today - 1}, {5, today}}));
}

}  // namespace
}  // namespace ringmart::ranking
