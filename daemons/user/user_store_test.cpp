#include "daemons/user/user_store.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "storage/store_test.hpp"

namespace ringmart::user {
namespace {

using msg::Code;

constexpr std::int64_t kNow = 1'700'000'000'000;

class UserStoreTest : public storage::testing::StoreTest<UserStore> {
 protected:
  Outcome ok(std::expected<Outcome, std::error_code> r) {
    EXPECT_TRUE(r) << r.error().message();
    return r ? *r : Outcome{.code = Code::INTERNAL};
  }
  std::uint64_t add_user(std::int64_t points) {
    std::uint64_t id = 0;
    write([&](storage::Txn& t) {
      auto r = ok(store_.register_user(t, "Ana", "ana@example.com", kNow));
      ASSERT_EQ(r.code, Code::OK);
      id = r.id;
      if (points > 0) {
        ASSERT_EQ(ok(store_.charge_points(t, id, points, kNow)).code, Code::OK);
      }
    });
    return id;
  }
  PointsView points_of(std::uint64_t id) {
    auto txn = storage::Txn::begin_read(*env_);
    EXPECT_TRUE(txn);
    auto p = store_.points(*txn, id);
    EXPECT_TRUE(p.has_value());
    return p.value_or(PointsView{.balance = -1});
  }
  Outcome deduct(std::uint64_t order, std::uint64_t user, std::int64_t points) {
    Outcome out;
    write([&](storage::Txn& t) { out = ok(store_.deduct_points(t, order, user, points, kNow)); });
    return out;
  }
  Outcome restore(std::uint64_t order) {
    Outcome out;
    write([&](storage::Txn& t) { out = ok(store_.restore_points(t, order, kNow + 5)); });
    return out;
  }
};

TEST_F(UserStoreTest, RegistersUsersWithIdsFromOne) {
  write([&](storage::Txn& t) {
    auto a = ok(store_.register_user(t, "Ana", "ana@example.com", kNow));
    auto b = ok(store_.register_user(t, "Bruno", "bruno@example.com", kNow + 1));
    EXPECT_EQ(a.code, Code::OK);
    EXPECT_EQ(a.id, 1u);
    EXPECT_EQ(b.id, 2u);
    auto u = store_.find(t, 2);
    ASSERT_TRUE(u);
    EXPECT_EQ(u->name, "Bruno");
    EXPECT_EQ(u->email, "bruno@example.com");
    EXPECT_EQ(u->points, 0);
    EXPECT_EQ(u->created_at_ms, kNow + 1);
    EXPECT_TRUE(store_.exists(t, 1));
    EXPECT_FALSE(store_.exists(t, 3));
    EXPECT_FALSE(store_.exists(t, 0));
  });
}

TEST_F(UserStoreTest, RejectsInvalidNameOrEmailWithoutCreating) {
  write([&](storage::Txn& t) {
    EXPECT_EQ(ok(store_.register_user(t, "", "a@b", kNow)).code, Code::INVALID_ARGUMENT);
    EXPECT_EQ(ok(store_.register_user(t, std::string(201, 'x'), "a@b", kNow)).code,
              Code::INVALID_ARGUMENT);
    EXPECT_EQ(ok(store_.register_user(t, "Ana", "ana.example.com", kNow)).code,
              Code::INVALID_ARGUMENT);
    EXPECT_EQ(store_.user_count(t), 0u);
    // 200 two-byte characters are 200 characters, not 400.
    std::string name;
    for (int i = 0; i < 200; ++i) name += "\xc3\xa9";
    auto r = ok(store_.register_user(t, name, "a@b", kNow));
    EXPECT_EQ(r.code, Code::OK);
    EXPECT_EQ(r.id, 1u) << "failed registrations must not consume ids";
  });
}

TEST_F(UserStoreTest, ChargesPointsAndRecordsHistory) {
  auto id = add_user(0);
  write([&](storage::Txn& t) {
    auto r = ok(store_.charge_points(t, id, 700, kNow + 1));
    EXPECT_EQ(r.code, Code::OK);
    EXPECT_EQ(r.id, id);
    EXPECT_EQ(r.value, 700);
    EXPECT_EQ(ok(store_.charge_points(t, id, 300, kNow + 2)).value, 1000);
  });
  auto p = points_of(id);
  EXPECT_EQ(p.balance, 1000);
  ASSERT_EQ(p.history.size(), 2u);
  EXPECT_EQ(p.history[0].delta, 700);
  EXPECT_EQ(p.history[0].reason, HistoryReason::charge);
  EXPECT_EQ(p.history[0].at_ms, kNow + 1);
  EXPECT_EQ(p.history[1].delta, 300);
  EXPECT_STREQ(reason_name(p.history[1].reason), "charge");
}

TEST_F(UserStoreTest, ChargeFailuresChangeNothing) {
  auto id = add_user(100);
  write([&](storage::Txn& t) {
    EXPECT_EQ(ok(store_.charge_points(t, id, 0, kNow)).code, Code::INVALID_ARGUMENT);
    EXPECT_EQ(ok(store_.charge_points(t, id, -5, kNow)).code, Code::INVALID_ARGUMENT);
    EXPECT_EQ(ok(store_.charge_points(t, id + 1, 5, kNow)).code, Code::USER_NOT_FOUND);
    EXPECT_EQ(ok(store_.charge_points(t, id, INT64_MAX, kNow)).code, Code::INVALID_ARGUMENT);
  });
  auto p = points_of(id);
  EXPECT_EQ(p.balance, 100);
  EXPECT_EQ(p.history.size(), 1u);
}

TEST_F(UserStoreTest, DeductsPointsOncePerOrder) {
  auto id = add_user(1000);
  auto first = deduct(42, id, 300);
  EXPECT_EQ(first.code, Code::OK);
  auto again = deduct(42, id, 300);
  EXPECT_EQ(again.code, Code::OK);
  auto p = points_of(id);
  EXPECT_EQ(p.balance, 700);
  ASSERT_EQ(p.history.size(), 2u);
  EXPECT_EQ(p.history[1].delta, -300);
  EXPECT_EQ(p.history[1].reason, HistoryReason::order);
  EXPECT_EQ(p.history[1].order_id, 42u);
}

TEST_F(UserStoreTest, InsufficientPointsChangesNothingAndRetryGetsSameAnswer) {
  auto id = add_user(100);
  EXPECT_EQ(deduct(7, id, 101).code, Code::INSUFFICIENT_POINTS);
  auto p = points_of(id);
  EXPECT_EQ(p.balance, 100);
  EXPECT_EQ(p.history.size(), 1u);
  // Even after a charge that would cover it, a retry of the same order answers the same.
  write([&](storage::Txn& t) {
    ASSERT_EQ(ok(store_.charge_points(t, id, 50, kNow)).code, Code::OK);
  });
  EXPECT_EQ(deduct(7, id, 101).code, Code::INSUFFICIENT_POINTS);
  EXPECT_EQ(points_of(id).balance, 150);
  // Another order can deduct the same amount now.
  EXPECT_EQ(deduct(8, id, 101).code, Code::OK);
  EXPECT_EQ(points_of(id).balance, 49);
}

TEST_F(UserStoreTest, DeductForUnknownUserOrNegativePointsIsRejected) {
  auto id = add_user(100);
  EXPECT_EQ(deduct(1, id + 10, 5).code, Code::USER_NOT_FOUND);
  EXPECT_EQ(deduct(2, id, -5).code, Code::INVALID_ARGUMENT);
  auto p = points_of(id);
  EXPECT_EQ(p.balance, 100);
  EXPECT_EQ(p.history.size(), 1u);
}

TEST_F(UserStoreTest, ZeroPointsDeductionSucceedsWithoutHistory) {
  auto id = add_user(0);
  EXPECT_EQ(deduct(3, id, 0).code, Code::OK);
  EXPECT_EQ(restore(3).code, Code::OK);
  auto p = points_of(id);
  EXPECT_EQ(p.balance, 0);
  EXPECT_TRUE(p.history.empty());
}

TEST_F(UserStoreTest, RestoreGivesBackOnce) {
  auto id = add_user(1000);
  ASSERT_EQ(deduct(42, id, 400).code, Code::OK);
  EXPECT_EQ(restore(42).code, Code::OK);
  EXPECT_EQ(restore(42).code, Code::OK);
  auto p = points_of(id);
  EXPECT_EQ(p.balance, 1000);
  ASSERT_EQ(p.history.size(), 3u);
  EXPECT_EQ(p.history[2].delta, 400);
  EXPECT_EQ(p.history[2].reason, HistoryReason::restore);
  EXPECT_EQ(p.history[2].order_id, 42u);
  // A retried deduction after its compensation has no effect.
  EXPECT_EQ(deduct(42, id, 400).code, Code::OK);
  EXPECT_EQ(points_of(id).balance, 1000);
  auto txn = storage::Txn::begin_read(*env_);
  auto d = store_.deduction(*txn, 42);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->state, DeductionState::restored);
  EXPECT_EQ(d->points, 400);
}

TEST_F(UserStoreTest, RestoreBeforeDeductLeavesTombstone) {
  auto id = add_user(1000);
  EXPECT_EQ(restore(9).code, Code::OK);
  auto late = deduct(9, id, 400);
  EXPECT_EQ(late.code, Code::OK);
  EXPECT_NE(late.detail.find("already restored"), std::string::npos);
  auto p = points_of(id);
  EXPECT_EQ(p.balance, 1000);
  EXPECT_EQ(p.history.size(), 1u);
}

TEST_F(UserStoreTest, RestoreAfterRejectedDeductGivesNothing) {
  auto id = add_user(10);
  ASSERT_EQ(deduct(5, id, 20).code, Code::INSUFFICIENT_POINTS);
  EXPECT_EQ(restore(5).code, Code::OK);
  EXPECT_EQ(points_of(id).balance, 10);
  EXPECT_EQ(deduct(5, id, 20).code, Code::INSUFFICIENT_POINTS);
}

TEST_F(UserStoreTest, AbortedTransactionLeavesNoEffect) {
  auto id = add_user(500);
  {
    auto txn = storage::Txn::begin_write(*env_);
    ASSERT_TRUE(txn);
    ASSERT_EQ(ok(store_.deduct_points(*txn, 11, id, 200, kNow)).code, Code::OK);
  }
  EXPECT_EQ(points_of(id).balance, 500);
  EXPECT_EQ(deduct(11, id, 200).code, Code::OK);
  EXPECT_EQ(points_of(id).balance, 300);
}

TEST_F(UserStoreTest, HistoryReturnsMostRecentEntriesOldestFirst) {
  auto id = add_user(0);
  auto other = add_user(0);
  write([&](storage::Txn& t) {
    for (int i = 1; i <= 10; ++i)
      ASSERT_EQ(ok(store_.charge_points(t, id, i, kNow + i)).code, Code::OK);
    ASSERT_EQ(ok(store_.charge_points(t, other, 99, kNow)).code, Code::OK);
  });
  auto txn = storage::Txn::begin_read(*env_);
  auto p = store_.points(*txn, id, 3);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->balance, 55);
  ASSERT_EQ(p->history.size(), 3u);
  EXPECT_EQ(p->history[0].delta, 8);
  EXPECT_EQ(p->history[2].delta, 10);
  EXPECT_EQ(store_.points(*txn, id)->history.size(), 10u);
  EXPECT_FALSE(store_.points(*txn, other + 1));
}

TEST_F(UserStoreTest, ReadOnlyQueriesSeeCommittedData) {
  auto id = add_user(250);
  ASSERT_EQ(deduct(77, id, 50).code, Code::OK);
  auto q = UserQueries::open(dir_.path(), 64u << 20);
  ASSERT_TRUE(q) << q.error().message();
  auto u = q->find(id);
  ASSERT_TRUE(u);
  ASSERT_TRUE(u->has_value());
  EXPECT_EQ((*u)->name, "Ana");
  EXPECT_EQ((*u)->points, 200);
  EXPECT_TRUE(q->exists(id).value());
  EXPECT_FALSE(q->exists(id + 1).value());
  auto p = q->points(id);
  ASSERT_TRUE(p && p->has_value());
  EXPECT_EQ((*p)->history.size(), 2u);
  // Later commits by the writer are visible to the open query library.
  write(
      [&](storage::Txn& t) { ASSERT_EQ(ok(store_.charge_points(t, id, 1, kNow)).code, Code::OK); });
  EXPECT_EQ(q->find(id).value()->points, 201);
  EXPECT_FALSE(q->find(id + 1).value().has_value());
}

TEST(UserQueriesTest, OpenFailsForMissingEnvironment) {
  auto q = UserQueries::open("/tmp/ringmart-user-does-not-exist", 64u << 20);
  EXPECT_FALSE(q);
}

TEST(UserQueriesTest, OpenFailsWhenTablesDoNotExistYet) {
  const testkit::TempDir dir("user_store_test");
  {
    // An environment created by someone else, without the user tables.
    auto env = storage::Env::open({.path = dir.path(), .map_size_bytes = 64u << 20});
    ASSERT_TRUE(env);
    auto txn = storage::Txn::begin_write(**env);
    ASSERT_TRUE(txn);
    ASSERT_TRUE(storage::Table::open(*txn, "other"));
    ASSERT_FALSE(txn->commit());
  }
  auto q = UserQueries::open(dir.path(), 64u << 20);
  ASSERT_FALSE(q);
  EXPECT_EQ(q.error(), storage::lmdb_error(MDB_NOTFOUND));
}

TEST_F(UserStoreTest, ScansUsersHistoryAndDeductions) {
  auto a = add_user(100);
  auto b = add_user(50);
  ASSERT_EQ(deduct(7, a, 30).code, Code::OK);
  ASSERT_EQ(restore(7).code, Code::OK);
  ASSERT_EQ(deduct(8, b, 80).code, Code::INSUFFICIENT_POINTS);
  auto txn = storage::Txn::begin_read(*env_);
  ASSERT_TRUE(txn);
  std::vector<std::pair<std::uint64_t, std::int64_t>> balances;
  store_.scan_users(*txn, [&](const UserView& u) {
    balances.emplace_back(u.id, u.points);
    return true;
  });
  EXPECT_EQ(balances, (std::vector<std::pair<std::uint64_t, std::int64_t>>{{a, 100}, {b, 50}}));
  std::vector<std::tuple<std::uint64_t, std::int64_t, HistoryReason, std::uint64_t>> history;
  store_.scan_history(*txn, [&](std::uint64_t user_id, const HistoryEntry& e) {
    history.emplace_back(user_id, e.delta, e.reason, e.order_id);
    return true;
  });
  using R = HistoryReason;
  EXPECT_EQ(history, (std::vector<std::tuple<std::uint64_t, std::int64_t, R, std::uint64_t>>{
                         {a, 100, R::charge, 0},
                         {a, -30, R::order, 7},
                         {a, 30, R::restore, 7},
                         {b, 50, R::charge, 0}}));
  std::vector<std::pair<std::uint64_t, DeductionState>> deductions;
  store_.scan_deductions(*txn, [&](std::uint64_t order_id, const DeductionView& d) {
    deductions.emplace_back(order_id, d.state);
    return true;
  });
  EXPECT_EQ(deductions, (std::vector<std::pair<std::uint64_t, DeductionState>>{
                            {7, DeductionState::restored}, {8, DeductionState::rejected}}));
}

}  // namespace
}  // namespace ringmart::user
