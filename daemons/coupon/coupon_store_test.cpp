#include "daemons/coupon/coupon_store.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "storage/store_test.hpp"

namespace ringmart::coupon {
namespace {

using storage::Txn;

constexpr std::int64_t kNow = 1'700'000'000;  // fixed "now" (Unix seconds)

class CouponStoreTest : public storage::testing::StoreTest<CouponStore> {
 protected:
  /// Runs `fn` in a write transaction and commits it.
  template <class F>
  auto write(F&& fn) {
    auto txn = Txn::begin_write(*env_);
    EXPECT_TRUE(txn);
    auto r = fn(*txn);
    EXPECT_FALSE(txn->commit());
    return r;
  }
  template <class F>
  auto read(F&& fn) {
    auto txn = Txn::begin_read(*env_);
    EXPECT_TRUE(txn);
    return fn(*txn);
  }

  std::uint64_t create(NewCoupon c) {
    auto r = write([&](Txn& t) { return store_.create_coupon(t, c); });
    EXPECT_TRUE(r);
    EXPECT_EQ(r->code, msg::Code::OK) << r->detail;
    return r->coupon_id;
  }
  std::uint64_t create_fixed(std::int64_t value_cents, std::int64_t total = 10,
                             std::int64_t expires_at_s = 0, std::int64_t per_user_limit = 1) {
    return create({.name = "WELCOME",
                   .discount_type = msg::DiscountType::FIXED,
                   .discount_value = value_cents,
                   .total_quantity = total,
                   .min_order_cents = 5000,
                   .expires_at_s = expires_at_s,
                   .per_user_limit = per_user_limit});
  }
  IssueCouponResult issue(std::uint64_t coupon_id, std::uint64_t user_id,
                          std::int64_t now_s = kNow) {
    auto r = write([&](Txn& t) { return store_.issue_coupon(t, coupon_id, user_id, now_s); });
    EXPECT_TRUE(r);
    return *r;
  }
  UseCouponResult use(std::uint64_t order_id, std::uint64_t user_id, std::uint64_t uc,
                      std::int64_t now_s = kNow) {
    auto r = write([&](Txn& t) { return store_.use_coupon(t, order_id, user_id, uc, now_s); });
    EXPECT_TRUE(r);
    return *r;
  }
  RestoreCouponResult restore(std::uint64_t order_id) {
    auto r = write([&](Txn& t) { return store_.restore_coupon(t, order_id); });
    EXPECT_TRUE(r);
    return *r;
  }
  UserCoupon user_coupon(std::uint64_t id) {
    auto uc = read([&](Txn& t) { return store_.user_coupon(t, id); });
    EXPECT_TRUE(uc);
    return uc.value_or(UserCoupon{});
  }
  CouponTemplate coupon(std::uint64_t id) {
    auto c = read([&](Txn& t) { return store_.coupon(t, id); });
    EXPECT_TRUE(c);
    return c.value_or(CouponTemplate{});
  }
};

TEST_F(CouponStoreTest, CreateCouponStoresTemplateWithIdsFromOne) {
  const auto a = create_fixed(1000, 3, kNow + 60);
  const auto b = create({.name = "TENOFF",
                         .discount_type = msg::DiscountType::PERCENT,
                         .discount_value = 10,
                         .total_quantity = 1});
  EXPECT_EQ(a, 1u);
  EXPECT_EQ(b, 2u);
  auto t = coupon(a);
  EXPECT_EQ(t.name, "WELCOME");
  EXPECT_EQ(t.discount_type, msg::DiscountType::FIXED);
  EXPECT_EQ(t.discount_value, 1000);
  EXPECT_EQ(t.total_quantity, 3);
  EXPECT_EQ(t.issued, 0);
  EXPECT_EQ(t.min_order_cents, 5000);
  EXPECT_EQ(t.expires_at_s, kNow + 60);
  EXPECT_EQ(coupon(b).discount_type, msg::DiscountType::PERCENT);
}

TEST_F(CouponStoreTest, CreateCouponRejectsInvalidTermsWithoutStoringAnything) {
  const NewCoupon good{.name = "X",
                       .discount_type = msg::DiscountType::FIXED,
                       .discount_value = 100,
                       .total_quantity = 1};
  std::vector<NewCoupon> bad;
  auto with = [&](auto change) {
    NewCoupon c = good;
    change(c);
    bad.push_back(c);
  };
  with([](NewCoupon& c) { c.discount_value = 0; });
  with([](NewCoupon& c) { c.discount_value = -5; });
  with([](NewCoupon& c) {
    c.discount_type = msg::DiscountType::PERCENT;
    c.discount_value = 0;
  });
  with([](NewCoupon& c) {
    c.discount_type = msg::DiscountType::PERCENT;
    c.discount_value = 101;
  });
  with([](NewCoupon& c) { c.total_quantity = 0; });
  with([](NewCoupon& c) { c.min_order_cents = -1; });
  with([](NewCoupon& c) { c.expires_at_s = -1; });
  with([](NewCoupon& c) { c.name.clear(); });
  with([](NewCoupon& c) { c.name.assign(201, 'n'); });
  for (const auto& c : bad) {
    auto r = write([&](Txn& t) { return store_.create_coupon(t, c); });
    ASSERT_TRUE(r);
    EXPECT_EQ(r->code, msg::Code::INVALID_ARGUMENT);
    EXPECT_EQ(r->coupon_id, 0u);
    EXPECT_FALSE(r->detail.empty());
  }
  EXPECT_FALSE(read([&](Txn& t) { return store_.coupon(t, 1); }));
  // No id was consumed by the rejections; boundaries are accepted.
  EXPECT_EQ(create(good), 1u);
  EXPECT_EQ(create({.name = "P",
                    .discount_type = msg::DiscountType::PERCENT,
                    .discount_value = 100,
                    .total_quantity = 1}),
            2u);
}

TEST_F(CouponStoreTest, IssueCouponCountsAndListsPerUser) {
  const auto id = create_fixed(1000, 5, 0, 2);
  auto r1 = issue(id, 7);
  auto r2 = issue(id, 8);
  auto r3 = issue(id, 7);
  ASSERT_EQ(r1.code, msg::Code::OK);
  ASSERT_EQ(r2.code, msg::Code::OK);
  ASSERT_EQ(r3.code, msg::Code::OK);
  EXPECT_EQ(r1.user_coupon_id, 1u);
  EXPECT_EQ(r2.user_coupon_id, 2u);
  EXPECT_EQ(r3.user_coupon_id, 3u);
  EXPECT_EQ(coupon(id).issued, 3);

  auto uc = user_coupon(r2.user_coupon_id);
  EXPECT_EQ(uc.coupon_id, id);
  EXPECT_EQ(uc.user_id, 8u);
  EXPECT_EQ(uc.status, UserCouponStatus::issued);
  EXPECT_EQ(uc.used_by_order, 0u);
  EXPECT_EQ(uc.issued_at_s, kNow);

  auto list7 = read([&](Txn& t) { return store_.user_coupons(t, 7); });
  ASSERT_EQ(list7.size(), 2u);
  EXPECT_EQ(list7[0].user_coupon_id, 1u);
  EXPECT_EQ(list7[1].user_coupon_id, 3u);
  EXPECT_EQ(list7[0].name, "WELCOME");
  EXPECT_EQ(list7[0].coupon_id, id);
  auto list8 = read([&](Txn& t) { return store_.user_coupons(t, 8); });
  ASSERT_EQ(list8.size(), 1u);
  EXPECT_EQ(list8[0].user_coupon_id, 2u);
  EXPECT_TRUE(read([&](Txn& t) { return store_.user_coupons(t, 6); }).empty());
  EXPECT_TRUE(read([&](Txn& t) { return store_.user_coupons(t, 9); }).empty());
}

TEST_F(CouponStoreTest, IssueCouponNeverExceedsTotalQuantity) {
  const auto id = create_fixed(1000, 2);
  EXPECT_EQ(issue(id, 1).code, msg::Code::OK);
  EXPECT_EQ(issue(id, 2).code, msg::Code::OK);
  auto r = issue(id, 3);
  EXPECT_EQ(r.code, msg::Code::COUPON_SOLD_OUT);
  EXPECT_EQ(r.user_coupon_id, 0u);
  EXPECT_EQ(issue(id, 3).code, msg::Code::COUPON_SOLD_OUT);
  EXPECT_EQ(coupon(id).issued, 2);
  EXPECT_FALSE(read([&](Txn& t) { return store_.user_coupon(t, 3); }));
  EXPECT_TRUE(read([&](Txn& t) { return store_.user_coupons(t, 3); }).empty());
}

TEST_F(CouponStoreTest, IssueCouponStopsAtTheUsersLimitWithoutTakingAUnit) {
  const auto id = create_fixed(1000, 10, 0, 2);
  EXPECT_EQ(coupon(id).per_user_limit, 2);
  EXPECT_EQ(issue(id, 7).code, msg::Code::OK);
  EXPECT_EQ(issue(id, 7).code, msg::Code::OK);
  const auto third = issue(id, 7);
  EXPECT_EQ(third.code, msg::Code::COUPON_USER_LIMIT);
  EXPECT_NE(third.detail.find("per_user_limit 2"), std::string::npos) << third.detail;
  EXPECT_EQ(third.user_coupon_id, 0u);
  // Another user is not affected; the refused issue took no unit.
  EXPECT_EQ(issue(id, 8).code, msg::Code::OK);
  EXPECT_EQ(coupon(id).issued, 3);
  EXPECT_EQ(read([&](Txn& t) { return store_.issued_to_user(t, id, 7); }), 2);
  EXPECT_EQ(read([&](Txn& t) { return store_.user_coupons(t, 7); }).size(), 2u);
  // Using a coupon does not give the user another one.
  EXPECT_EQ(use(100, 7, 1).code, msg::Code::OK);
  EXPECT_EQ(issue(id, 7).code, msg::Code::COUPON_USER_LIMIT);
  // Sold out is answered before the user's limit: the coupon is gone for everyone.
  const auto scarce = create_fixed(1000, 1, 0, 1);
  EXPECT_EQ(issue(scarce, 7).code, msg::Code::OK);
  EXPECT_EQ(issue(scarce, 7).code, msg::Code::COUPON_SOLD_OUT);
}

TEST_F(CouponStoreTest, APerUserLimitBelowOneIsRefused) {
  auto r = write([&](Txn& t) {
    return store_.create_coupon(t, {.name = "X",
                                    .discount_type = msg::DiscountType::FIXED,
                                    .discount_value = 100,
                                    .total_quantity = 5,
                                    .per_user_limit = 0});
  });
  ASSERT_TRUE(r);
  EXPECT_EQ(r->code, msg::Code::INVALID_ARGUMENT);
  EXPECT_EQ(r->detail, "per_user_limit must be >= 1");
  EXPECT_FALSE(read([&](Txn& t) { return store_.coupon(t, 1); }));
}

TEST_F(CouponStoreTest, IssueCouponRejectsUnknownAndExpiredCoupons) {
  EXPECT_EQ(issue(42, 1).code, msg::Code::COUPON_NOT_FOUND);
  const auto id = create_fixed(1000, 5, kNow + 10);
  EXPECT_EQ(issue(id, 1, kNow + 9).code, msg::Code::OK);
  EXPECT_EQ(issue(id, 1, kNow + 10).code, msg::Code::COUPON_EXPIRED);
  EXPECT_EQ(issue(id, 1, kNow + 11).code, msg::Code::COUPON_EXPIRED);
  EXPECT_EQ(coupon(id).issued, 1);
  EXPECT_EQ(read([&](Txn& t) { return store_.user_coupons(t, 1); }).size(), 1u);
}

TEST_F(CouponStoreTest, UseCouponMarksUsedAndAnswersTerms) {
  const auto id = create_fixed(1500);
  const auto uc = issue(id, 7).user_coupon_id;
  auto r = use(100, 7, uc);
  ASSERT_EQ(r.code, msg::Code::OK) << r.detail;
  EXPECT_TRUE(r.first_time);
  EXPECT_EQ(r.coupon_id, id);
  EXPECT_EQ(r.discount_type, msg::DiscountType::FIXED);
  EXPECT_EQ(r.discount_value, 1500);
  EXPECT_EQ(r.min_order_cents, 5000);
  auto after = user_coupon(uc);
  EXPECT_EQ(after.status, UserCouponStatus::used);
  EXPECT_EQ(after.used_by_order, 100u);
  auto list = read([&](Txn& t) { return store_.user_coupons(t, 7); });
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].status, UserCouponStatus::used);
}

TEST_F(CouponStoreTest, UseCouponRetryHasNoSecondEffectAndSameAnswer) {
  const auto id = create_fixed(1500);
  const auto uc = issue(id, 7).user_coupon_id;
  ASSERT_EQ(use(100, 7, uc).code, msg::Code::OK);
  auto again = use(100, 7, uc);
  EXPECT_EQ(again.code, msg::Code::OK);
  EXPECT_FALSE(again.first_time);
  EXPECT_EQ(again.coupon_id, id);
  EXPECT_EQ(again.discount_value, 1500);
  EXPECT_EQ(user_coupon(uc).used_by_order, 100u);
}

TEST_F(CouponStoreTest, UseCouponRejectsUnknownForeignUsedAndExpiredWithoutChange) {
  const auto id = create_fixed(1500, 10, kNow + 100);
  const auto uc = issue(id, 7).user_coupon_id;

  EXPECT_EQ(use(1, 7, 999).code, msg::Code::COUPON_INVALID);
  EXPECT_EQ(use(2, 8, uc).code, msg::Code::COUPON_INVALID);  // another user's
  EXPECT_EQ(user_coupon(uc).status, UserCouponStatus::issued);
  EXPECT_EQ(use(3, 7, uc, kNow + 100).code, msg::Code::COUPON_INVALID);  // expired
  EXPECT_EQ(user_coupon(uc).status, UserCouponStatus::issued);

  ASSERT_EQ(use(4, 7, uc).code, msg::Code::OK);
  auto other = use(5, 7, uc);  // used by another order
  EXPECT_EQ(other.code, msg::Code::COUPON_INVALID);
  EXPECT_FALSE(other.detail.empty());
  EXPECT_EQ(user_coupon(uc).used_by_order, 4u);
  auto rec = read([&](Txn& t) { return store_.usage(t, 5); });
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->state, UsageState::rejected);
}

TEST_F(CouponStoreTest, RejectedUseAnswersTheSameOnRetryEvenAfterTheCouponFreesUp) {
  const auto id = create_fixed(1500);
  const auto uc = issue(id, 7).user_coupon_id;
  ASSERT_EQ(use(4, 7, uc).code, msg::Code::OK);
  ASSERT_EQ(use(5, 7, uc).code, msg::Code::COUPON_INVALID);
  restore(4);
  ASSERT_EQ(user_coupon(uc).status, UserCouponStatus::issued);
  auto retry = use(5, 7, uc);
  EXPECT_EQ(retry.code, msg::Code::COUPON_INVALID);
  EXPECT_FALSE(retry.first_time);
  EXPECT_EQ(user_coupon(uc).status, UserCouponStatus::issued);
}

TEST_F(CouponStoreTest, RestoreCouponReissuesAndIsIdempotent) {
  const auto id = create_fixed(1500);
  const auto uc = issue(id, 7).user_coupon_id;
  ASSERT_EQ(use(100, 7, uc).code, msg::Code::OK);

  auto r = restore(100);
  EXPECT_TRUE(r.restored);
  EXPECT_FALSE(r.tombstone);
  auto after = user_coupon(uc);
  EXPECT_EQ(after.status, UserCouponStatus::issued);
  EXPECT_EQ(after.used_by_order, 0u);

  // A second order takes it; a repeated restore of the first must not free it.
  ASSERT_EQ(use(200, 7, uc).code, msg::Code::OK);
  auto again = restore(100);
  EXPECT_FALSE(again.restored);
  EXPECT_FALSE(again.tombstone);
  EXPECT_EQ(user_coupon(uc).used_by_order, 200u);
  EXPECT_EQ(coupon(id).issued, 1);
}

TEST_F(CouponStoreTest, UseAfterRestoreHasNoEffect) {
  const auto id = create_fixed(1500);
  const auto uc = issue(id, 7).user_coupon_id;
  ASSERT_EQ(use(100, 7, uc).code, msg::Code::OK);
  restore(100);
  auto late = use(100, 7, uc);  // a delayed retry of the compensated step
  EXPECT_FALSE(late.first_time);
  EXPECT_EQ(user_coupon(uc).status, UserCouponStatus::issued);
  EXPECT_EQ(user_coupon(uc).used_by_order, 0u);
}

TEST_F(CouponStoreTest, RestoreBeforeUseLeavesTombstoneThatBlocksTheLateUse) {
  const auto id = create_fixed(1500);
  const auto uc = issue(id, 7).user_coupon_id;
  auto r = restore(100);
  EXPECT_FALSE(r.restored);
  EXPECT_TRUE(r.tombstone);
  auto rec = read([&](Txn& t) { return store_.usage(t, 100); });
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->state, UsageState::restored);
  EXPECT_EQ(rec->user_coupon_id, 0u);

  auto late = use(100, 7, uc);
  EXPECT_EQ(late.code, msg::Code::COUPON_INVALID);
  EXPECT_EQ(user_coupon(uc).status, UserCouponStatus::issued);
  // The coupon is still usable by another order.
  EXPECT_EQ(use(101, 7, uc).code, msg::Code::OK);
  EXPECT_FALSE(restore(100).tombstone);
}

TEST_F(CouponStoreTest, AbortedTransactionLeavesNoTrace) {
  const auto id = create_fixed(1500);
  {
    auto txn = Txn::begin_write(*env_);
    ASSERT_TRUE(txn);
    auto r = store_.issue_coupon(*txn, id, 7, kNow);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->code, msg::Code::OK);
    txn->abort();
  }
  EXPECT_EQ(coupon(id).issued, 0);
  EXPECT_EQ(issue(id, 7).user_coupon_id, 1u);
}

TEST_F(CouponStoreTest, ReadOnlyQueriesSeeCommittedData) {
  const auto id = create_fixed(1500, 4);
  const auto uc = issue(id, 7).user_coupon_id;
  ASSERT_EQ(use(100, 7, uc).code, msg::Code::OK);

  auto q = CouponQueries::open(dir_.path(), 64ull << 20);
  ASSERT_TRUE(q) << q.error().message();
  auto c = q->coupon(id);
  ASSERT_TRUE(c);
  ASSERT_TRUE(*c);
  EXPECT_EQ((*c)->issued, 1);
  EXPECT_EQ((*c)->name, "WELCOME");
  auto missing = q->coupon(id + 1);
  ASSERT_TRUE(missing);
  EXPECT_FALSE(*missing);

  auto list = q->user_coupons(7);
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].status, UserCouponStatus::used);
  EXPECT_STREQ(user_coupon_status_name((*list)[0].status), "USED");

  auto one = q->user_coupon(uc);
  ASSERT_TRUE(one);
  ASSERT_TRUE(*one);
  EXPECT_EQ((*one)->user_id, 7u);

  // Later commits by the writer are visible to the next query; uncommitted ones are not.
  issue(id, 8);
  {
    auto txn = Txn::begin_write(*env_);
    ASSERT_TRUE(txn);
    ASSERT_TRUE(store_.issue_coupon(*txn, id, 9, kNow));
    EXPECT_EQ((**q->coupon(id)).issued, 2);
    txn->abort();
  }
  EXPECT_EQ((**q->coupon(id)).issued, 2);
  EXPECT_EQ(q->user_coupons(8)->size(), 1u);
}

TEST(CouponQueriesOpen, FailsOnMissingEnvironment) {
  auto q = CouponQueries::open("/tmp/rm-coupon-does-not-exist", 1 << 20);
  EXPECT_FALSE(q);
}

TEST(CouponNames, SpellTheApiValues) {
  EXPECT_STREQ(user_coupon_status_name(UserCouponStatus::issued), "ISSUED");
  EXPECT_STREQ(discount_type_name(msg::DiscountType::PERCENT), "percent");
  EXPECT_STREQ(discount_type_name(msg::DiscountType::FIXED), "fixed");
}

TEST_F(CouponStoreTest, ScansTemplatesUserCouponsAndUsages) {
  auto c1 = create_fixed(500, 3);
  auto c2 = create_fixed(700, 1);
  auto uc1 = issue(c1, 7).user_coupon_id;
  auto uc2 = issue(c2, 8).user_coupon_id;
  ASSERT_EQ(use(40, 7, uc1).code, msg::Code::OK);
  ASSERT_EQ(use(41, 7, uc2).code, msg::Code::COUPON_INVALID);  // another user's coupon
  restore(42);                                                 // tombstone
  std::vector<std::pair<std::uint64_t, std::int64_t>> templates;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> used_by;
  std::vector<std::pair<std::uint64_t, UsageState>> usages;
  read([&](Txn& t) {
    store_.scan_coupons(t, [&](const CouponTemplate& c) {
      templates.emplace_back(c.id, c.issued);
      return true;
    });
    store_.scan_user_coupons(t, [&](const UserCoupon& uc) {
      used_by.emplace_back(uc.id, uc.used_by_order);
      return true;
    });
    store_.scan_usages(t, [&](const CouponUsage& u) {
      usages.emplace_back(u.order_id, u.state);
      return true;
    });
    return 0;
  });
  EXPECT_EQ(templates, (std::vector<std::pair<std::uint64_t, std::int64_t>>{{c1, 1}, {c2, 1}}));
  EXPECT_EQ(used_by, (std::vector<std::pair<std::uint64_t, std::uint64_t>>{{uc1, 40}, {uc2, 0}}));
  EXPECT_EQ(usages,
            (std::vector<std::pair<std::uint64_t, UsageState>>{
                {40, UsageState::used}, {41, UsageState::rejected}, {42, UsageState::restored}}));
}

}  // namespace
}  // namespace ringmart::coupon
