#include "daemons/user/user_store.hpp"

#include <gtest/gtest.h>
#include <sodium.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <span>
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
  int users_added_ = 0;
  Outcome ok(std::expected<Outcome, std::error_code> r) {
    EXPECT_TRUE(r) << r.error().message();
    return r ? *r : Outcome{.code = Code::INTERNAL};
  }
  std::uint64_t add_user(std::int64_t points) {
    std::uint64_t id = 0;
    write([&](storage::Txn& t) {
      const auto email = "ana" + std::to_string(++users_added_) + "@example.com";
      auto r = ok(store_.register_user(t, "Ana", email, "", kNow));
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
    auto a = ok(store_.register_user(t, "Ana", "ana@example.com", "", kNow));
    auto b = ok(store_.register_user(t, "Bruno", "bruno@example.com", "", kNow + 1));
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
    EXPECT_EQ(ok(store_.register_user(t, "", "a@b", "", kNow)).code, Code::INVALID_ARGUMENT);
    EXPECT_EQ(ok(store_.register_user(t, std::string(201, 'x'), "a@b", "", kNow)).code,
              Code::INVALID_ARGUMENT);
    EXPECT_EQ(ok(store_.register_user(t, "Ana", "ana.example.com", "", kNow)).code,
              Code::INVALID_ARGUMENT);
    EXPECT_EQ(store_.user_count(t), 0u);
    // 200 two-byte characters are 200 characters, not 400.
    std::string name;
    for (int i = 0; i < 200; ++i) name += "\xc3\xa9";
    auto r = ok(store_.register_user(t, name, "a@b", "", kNow));
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

// ---------------------------------------------------------------- accounts

// A real crypto_pwhash_str string at libsodium's minimum cost (the store
// only keeps it; the gateway verifies passwords).
std::string password_hash(const char* password) {
  char out[crypto_pwhash_STRBYTES];
  EXPECT_EQ(crypto_pwhash_str_alg(out, password, std::strlen(password), crypto_pwhash_OPSLIMIT_MIN,
                                  crypto_pwhash_MEMLIMIT_MIN, crypto_pwhash_ALG_ARGON2ID13),
            0);
  return out;
}

std::vector<std::byte> token_hash(unsigned char fill) {
  return std::vector<std::byte>(kTokenHashBytes, static_cast<std::byte>(fill));
}

class AccountTest : public UserStoreTest {
 protected:
  std::uint64_t sign_up(const std::string& email, const std::string& hash) {
    std::uint64_t id = 0;
    write([&](storage::Txn& t) {
      auto r = ok(store_.register_user(t, "Ana", email, hash, kNow));
      ASSERT_EQ(r.code, Code::OK) << r.detail;
      id = r.id;
    });
    return id;
  }
  Outcome open(std::uint64_t user, const std::vector<std::byte>& token, const std::string& verified,
               std::int64_t expires = kNow + 60'000) {
    Outcome out;
    write([&](storage::Txn& t) {
      out = ok(store_.open_session(t, user, token, expires, verified, kNow));
    });
    return out;
  }
  std::optional<SessionView> session(const std::vector<std::byte>& token, std::int64_t now = kNow) {
    auto txn = storage::Txn::begin_read(*env_);
    EXPECT_TRUE(txn);
    return store_.session(*txn, token, now);
  }
  std::optional<Credentials> credentials(const std::string& email) {
    auto txn = storage::Txn::begin_read(*env_);
    EXPECT_TRUE(txn);
    return store_.credentials(*txn, email);
  }
  Outcome update(const UserUpdate& u) {
    Outcome out;
    write([&](storage::Txn& t) { out = ok(store_.update_user(t, u, kNow)); });
    return out;
  }
};

TEST_F(AccountTest, AnEmailBelongsToOneAccountWhateverItsCase) {
  const auto hash = password_hash("correct horse");
  const auto ana = sign_up("Ana.Silva@Example.COM", hash);
  write([&](storage::Txn& t) {
    auto again = ok(store_.register_user(t, "Other", "ana.silva@example.com", "", kNow));
    EXPECT_EQ(again.code, Code::EMAIL_TAKEN);
    EXPECT_EQ(store_.user_count(t), 1u);
  });
  auto c = credentials("ANA.SILVA@EXAMPLE.com");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->user_id, ana);
  EXPECT_EQ(c->password_hash, hash);
  EXPECT_FALSE(credentials("ana@example.com"));
  // Kept as typed; a guest has no password.
  const auto guest = sign_up("guest@example.com", "");
  auto txn = storage::Txn::begin_read(*env_);
  ASSERT_TRUE(txn);
  EXPECT_EQ(store_.find(*txn, ana)->email, "Ana.Silva@Example.COM");
  EXPECT_TRUE(store_.find(*txn, ana)->has_password);
  EXPECT_FALSE(store_.find(*txn, guest)->has_password);
}

TEST_F(AccountTest, APasswordInClearIsNeverStored) {
  write([&](storage::Txn& t) {
    EXPECT_EQ(ok(store_.register_user(t, "Ana", "a@x.io", "hunter2hunter2", kNow)).code,
              Code::INVALID_ARGUMENT);
    EXPECT_EQ(store_.user_count(t), 0u);
  });
  const auto id = sign_up("a@x.io", "");
  EXPECT_EQ(update({.user_id = id, .password_hash = "hunter2hunter2"}).code,
            Code::INVALID_ARGUMENT);
  EXPECT_EQ(credentials("a@x.io")->password_hash, "");
}

TEST_F(AccountTest, ASessionAuthenticatesUntilItExpiresOrIsClosed) {
  const auto hash = password_hash("correct horse");
  const auto id = sign_up("a@x.io", hash);
  const auto token = token_hash(7);
  // Verified against a hash that is not the user's: refused, nothing stored.
  EXPECT_EQ(open(id, token, password_hash("another one")).code, Code::INVALID_CREDENTIALS);
  EXPECT_FALSE(session(token));
  EXPECT_EQ(open(id, token, hash).code, Code::OK);
  auto s = session(token);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->user_id, id);
  EXPECT_EQ(s->expires_at_ms, kNow + 60'000);
  EXPECT_FALSE(session(token_hash(8))) << "another token";
  EXPECT_FALSE(session(token, kNow + 60'000)) << "expired";
  EXPECT_FALSE(session(std::vector<std::byte>(31, std::byte{7}))) << "a short hash";
  EXPECT_EQ(open(id, token_hash(9), hash, kNow).code, Code::INVALID_ARGUMENT) << "already expired";
  // A guest cannot open one; nor can an unknown user.
  const auto guest = sign_up("g@x.io", "");
  EXPECT_EQ(open(guest, token_hash(10), "").code, Code::INVALID_CREDENTIALS);
  EXPECT_EQ(open(99, token_hash(11), hash).code, Code::USER_NOT_FOUND);
  Outcome closed;
  write([&](storage::Txn& t) { closed = ok(store_.close_session(t, token)); });
  EXPECT_EQ(closed.id, id);
  EXPECT_FALSE(session(token));
  write([&](storage::Txn& t) { EXPECT_EQ(ok(store_.close_session(t, token)).id, 0u); });
}

TEST_F(AccountTest, APasswordChangeNeedsTheVerifiedHashAndSignsEverySessionOut) {
  const auto old_hash = password_hash("correct horse");
  const auto new_hash = password_hash("battery staple");
  const auto id = sign_up("a@x.io", old_hash);
  ASSERT_EQ(open(id, token_hash(1), old_hash).code, Code::OK);
  // The gateway verified the current password against a hash that changed since.
  EXPECT_EQ(
      update({.user_id = id, .password_hash = new_hash, .expected_password_hash = new_hash}).code,
      Code::INVALID_CREDENTIALS);
  EXPECT_EQ(credentials("a@x.io")->password_hash, old_hash);
  EXPECT_TRUE(session(token_hash(1)));
  EXPECT_EQ(
      update({.user_id = id, .password_hash = new_hash, .expected_password_hash = old_hash}).code,
      Code::OK);
  EXPECT_EQ(credentials("a@x.io")->password_hash, new_hash);
  EXPECT_FALSE(session(token_hash(1))) << "a session from before the change";
  EXPECT_EQ(open(id, token_hash(2), old_hash).code, Code::INVALID_CREDENTIALS);
  EXPECT_EQ(open(id, token_hash(2), new_hash).code, Code::OK);
  EXPECT_TRUE(session(token_hash(2)));
}

TEST_F(AccountTest, AnEmailChangeMovesTheIndexAndCannotTakeAnothersAddress) {
  const auto a = sign_up("a@x.io", "");
  const auto b = sign_up("b@x.io", "");
  EXPECT_EQ(update({.user_id = a, .email = "B@X.IO"}).code, Code::EMAIL_TAKEN);
  EXPECT_EQ(update({.user_id = a, .name = "Ana Maria", .email = "A@X.IO"}).code, Code::OK);
  EXPECT_EQ(credentials("a@x.io")->user_id, a) << "its own address in another case";
  EXPECT_EQ(update({.user_id = a, .email = "new@x.io"}).code, Code::OK);
  EXPECT_FALSE(credentials("a@x.io")) << "the old address is free again";
  EXPECT_EQ(credentials("new@x.io")->user_id, a);
  EXPECT_EQ(update({.user_id = b, .email = "a@x.io"}).code, Code::OK);
  EXPECT_EQ(update({.user_id = a, .email = "not-an-address"}).code, Code::INVALID_ARGUMENT);
  EXPECT_EQ(update({.user_id = a}).code, Code::INVALID_ARGUMENT);
  EXPECT_EQ(update({.user_id = 77, .name = "X"}).code, Code::USER_NOT_FOUND);
  auto txn = storage::Txn::begin_read(*env_);
  ASSERT_TRUE(txn);
  EXPECT_EQ(store_.find(*txn, a)->name, "Ana Maria");
  EXPECT_EQ(store_.find(*txn, a)->email, "new@x.io");
}

TEST_F(AccountTest, RepeatedWrongPasswordsLockLoginsForLongerEachTime) {
  const LoginPolicy policy{
      .max_failures = 3, .window_ms = 60'000, .lockout_base_ms = 1000, .lockout_max_ms = 3000};
  const auto hash = password_hash("correct horse");
  const auto id = sign_up("a@x.io", hash);
  auto fail_at = [&](std::int64_t at) {
    Outcome out;
    write([&](storage::Txn& t) { out = ok(store_.record_login_failure(t, id, policy, at)); });
    return out.value;
  };
  EXPECT_EQ(fail_at(kNow), 0);
  EXPECT_EQ(fail_at(kNow + 1), 0);
  EXPECT_EQ(fail_at(kNow + 2), kNow + 2 + 1000);
  EXPECT_EQ(credentials("a@x.io")->locked_until_ms, kNow + 2 + 1000);
  EXPECT_EQ(fail_at(kNow + 3), kNow + 3 + 2000);
  EXPECT_EQ(fail_at(kNow + 4), kNow + 4 + 3000) << "capped";
  EXPECT_EQ(fail_at(kNow + 5), kNow + 5 + 3000);
  // The right password does not open a locked account...
  Outcome early;
  write([&](storage::Txn& t) {
    early = ok(store_.open_session(t, id, token_hash(1), kNow + 60'000, hash, kNow + 6));
  });
  EXPECT_EQ(early.code, Code::INVALID_CREDENTIALS);
  // ...once the lock is over, a login clears the count.
  write([&](storage::Txn& t) {
    EXPECT_EQ(
        ok(store_.open_session(t, id, token_hash(1), kNow + 60'000, hash, kNow + 5 + 3000)).code,
        Code::OK);
  });
  EXPECT_EQ(credentials("a@x.io")->locked_until_ms, 0);
  EXPECT_EQ(fail_at(kNow + 10), 0);
  // Failures further apart than the window start the count again.
  EXPECT_EQ(fail_at(kNow + 100'000), 0);
  EXPECT_EQ(fail_at(kNow + 200'000), 0);
  write([&](storage::Txn& t) {
    EXPECT_EQ(ok(store_.record_login_failure(t, 99, policy, kNow)).code, Code::USER_NOT_FOUND);
  });
}

TEST_F(AccountTest, ExpiredSessionsArePrunedOldestFirstAndOnlyThem) {
  const auto hash = password_hash("correct horse");
  const auto id = sign_up("a@x.io", hash);
  ASSERT_EQ(open(id, token_hash(1), hash, kNow + 1000).code, Code::OK);
  ASSERT_EQ(open(id, token_hash(2), hash, kNow + 2000).code, Code::OK);
  ASSERT_EQ(open(id, token_hash(3), hash, kNow + 3000).code, Code::OK);
  storage::PruneResult pruned;
  write([&](storage::Txn& t) {
    auto r = store_.expire_sessions(t, kNow + 2500, 10);
    ASSERT_TRUE(r);
    pruned = *r;
  });
  EXPECT_EQ(pruned.deleted, 2u);
  EXPECT_EQ(pruned.oldest_kept_ms, kNow + 3000);
  EXPECT_FALSE(session(token_hash(1), kNow));
  EXPECT_FALSE(session(token_hash(2), kNow));
  EXPECT_TRUE(session(token_hash(3), kNow));
}

TEST_F(AccountTest, AnEnvironmentFromBeforeTheEmailIndexIsIndexedOnce) {
  const auto a = sign_up("a@x.io", "");
  write([&](storage::Txn& t) {
    auto index = storage::Table::open(t, "users_by_email");
    ASSERT_TRUE(index);
    const std::string key = "a@x.io";
    ASSERT_TRUE(*index->erase(t, {reinterpret_cast<const std::byte*>(key.data()), key.size()}));
  });
  EXPECT_FALSE(credentials("a@x.io"));
  write([&](storage::Txn& t) {
    auto reopened = UserStore::open(t);
    ASSERT_TRUE(reopened);
    store_ = *reopened;
  });
  EXPECT_EQ(credentials("A@x.io")->user_id, a);
}

// ---------------------------------------------------------------- addresses

Address home() {
  return Address{.recipient = "Ana Silva",
                 .phone = "+55 11 5555-0100",
                 .line1 = "Rua Augusta 1200",
                 .line2 = "apto 31",
                 .city = "São Paulo",
                 .region = "SP",
                 .postal_code = "01304-001",
                 .country = "BR"};
}

TEST_F(AccountTest, TheAddressBookKeepsOneDefaultAndRefusesBadAddresses) {
  const auto id = sign_up("a@x.io", "");
  const auto other = sign_up("b@x.io", "");
  auto add = [&](std::uint64_t user, const Address& a, bool make_default) {
    Outcome out;
    write([&](storage::Txn& t) { out = ok(store_.add_address(t, user, a, make_default, kNow)); });
    return out;
  };
  auto book = [&](std::uint64_t user) {
    auto txn = storage::Txn::begin_read(*env_);
    EXPECT_TRUE(txn);
    return store_.addresses(*txn, user).value_or(std::vector<AddressView>{});
  };
  auto bad = home();
  bad.country = "UK";  // not assigned: the United Kingdom is GB
  EXPECT_EQ(add(id, bad, false).code, Code::INVALID_ARGUMENT);
  bad.country = "br";
  EXPECT_EQ(add(id, bad, false).code, Code::INVALID_ARGUMENT);
  bad = home();
  bad.line1.clear();
  EXPECT_EQ(add(id, bad, false).code, Code::INVALID_ARGUMENT);
  EXPECT_TRUE(book(id).empty());
  EXPECT_EQ(add(77, home(), false).code, Code::USER_NOT_FOUND);

  const auto first = add(id, home(), false);
  ASSERT_EQ(first.code, Code::OK);
  auto office = home();
  office.line1 = "Av. Paulista 1000";
  const auto second = add(id, office, false);
  ASSERT_EQ(second.code, Code::OK);
  auto b = book(id);
  ASSERT_EQ(b.size(), 2u);
  EXPECT_TRUE(b[0].is_default) << "the first address is the default";
  EXPECT_FALSE(b[1].is_default);
  EXPECT_EQ(b[1].address, office);

  Outcome changed;
  Address patch;
  patch.city = "Campinas";
  patch.country = "XX";
  write([&](storage::Txn& t) {
    changed = ok(store_.update_address(t, id, second.id, kCity | kCountry, patch, false, kNow + 1));
  });
  EXPECT_EQ(changed.code, Code::INVALID_ARGUMENT);
  EXPECT_EQ(book(id)[1].address, office) << "a refused change changes nothing";
  write([&](storage::Txn& t) {
    changed = ok(store_.update_address(t, id, second.id, kCity, patch, true, kNow + 1));
  });
  ASSERT_EQ(changed.code, Code::OK);
  b = book(id);
  EXPECT_EQ(b[1].address.city, "Campinas");
  EXPECT_EQ(b[1].address.line1, office.line1) << "members outside the mask are kept";
  EXPECT_TRUE(b[1].is_default);
  EXPECT_FALSE(b[0].is_default);
  // Another user's address id is not found for this one.
  write([&](storage::Txn& t) {
    EXPECT_EQ(ok(store_.update_address(t, other, second.id, kCity, patch, false, kNow)).code,
              Code::ADDRESS_NOT_FOUND);
    EXPECT_EQ(ok(store_.delete_address(t, other, second.id)).code, Code::ADDRESS_NOT_FOUND);
    EXPECT_EQ(ok(store_.delete_address(t, id, second.id)).code, Code::OK);
    EXPECT_EQ(ok(store_.delete_address(t, id, second.id)).code, Code::ADDRESS_NOT_FOUND);
  });
  b = book(id);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_TRUE(b[0].is_default) << "deleting the default makes the oldest left the default";
  for (std::size_t i = 1; i < kMaxAddressesPerUser; ++i)
    ASSERT_EQ(add(id, home(), false).code, Code::OK);
  EXPECT_EQ(add(id, home(), false).code, Code::INVALID_ARGUMENT) << "the book is full";
  EXPECT_EQ(book(id).size(), kMaxAddressesPerUser);
}

TEST(CountryCodes, AreTheAssignedIso3166Alpha2CodesOfTheIsoCodesPackage) {
  std::ifstream in("/usr/share/iso-codes/json/iso_3166-1.json");
  if (!in) GTEST_SKIP() << "iso-codes is not installed";
  const auto list = nlohmann::json::parse(in)["3166-1"];
  std::size_t n = 0;
  for (const auto& c : list) {
    EXPECT_TRUE(is_country_code(c["alpha_2"].get<std::string>())) << c["alpha_2"];
    ++n;
  }
  EXPECT_EQ(n, 249u);
  for (const char* no : {"UK", "XX", "EU", "br", "B", "BRA", ""})
    EXPECT_FALSE(is_country_code(no)) << no;
}

}  // namespace
}  // namespace ringmart::user
