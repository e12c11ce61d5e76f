#include "daemons/order/order_store.hpp"

#include <capnp/message.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "daemons/order/order_feed.hpp"
#include "storage/store_test.hpp"

namespace ringmart::order {
namespace {

using storage::Txn;

constexpr std::int64_t kT0 = 1'700'000'000'000;  // fixed "now" (Unix ms)

NewOrder sample_order(std::uint64_t id) {
  NewOrder o;
  o.order_id = id;
  o.user_id = 1;
  o.lines = {{.product_id = 7, .quantity = 2, .unit_price_cents = 5890},
             {.product_id = 9, .quantity = 1, .unit_price_cents = 0}};
  o.user_coupon_id = 3;
  o.points = 500;
  o.shipping_cents = 1329;
  o.payment_token = "tok_ok";
  o.installments = 3;
  return o;
}

class OrderStoreTest : public storage::testing::StoreTest<OrderStore> {
 protected:
  /// Runs `fn` in a write transaction, commits it and returns fn's value.
  template <class F>
  auto write(F&& fn) {
    auto txn = Txn::begin_write(*env_);
    EXPECT_TRUE(txn);
    auto r = fn(*txn);
    EXPECT_TRUE(r);
    EXPECT_FALSE(txn->commit());
    return *r;
  }
  std::optional<Order> get(std::uint64_t id) {
    auto txn = Txn::begin_read(*env_);
    EXPECT_TRUE(txn);
    return store_.order(*txn, id);
  }
  CreateOrderResult create(const NewOrder& o, std::int64_t now_ms = kT0) {
    return write([&](Txn& t) { return store_.create_order(t, o, now_ms); });
  }
  ApplyCouponResult apply(std::uint64_t id, CouponTerms terms) {
    return write([&](Txn& t) { return store_.apply_coupon(t, id, terms); });
  }
  CompleteOrderResult complete(std::uint64_t id, Settlement s, std::int64_t now_ms) {
    return write([&](Txn& t) { return store_.complete_order(t, id, s, now_ms); });
  }
  FailOrderResult fail(std::uint64_t id, msg::Code reason, std::int64_t now_ms) {
    return write([&](Txn& t) { return store_.fail_order(t, id, reason, now_ms); });
  }
};

const CouponTerms kFixed1000{
    .discount_type = msg::DiscountType::FIXED, .discount_value = 1000, .min_order_cents = 5000};

TEST_F(OrderStoreTest, CreateOrderStoresPendingWithSubtotal) {
  auto r = create(sample_order(42));
  EXPECT_EQ(r.code, msg::Code::OK);
  EXPECT_TRUE(r.first_time);
  EXPECT_EQ(r.subtotal_cents, 11780);

  auto o = get(42);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->status, OrderStatus::pending);
  EXPECT_EQ(o->user_id, 1u);
  ASSERT_EQ(o->lines.size(), 2u);
  EXPECT_EQ(o->lines[0].product_id, 7u);
  EXPECT_EQ(o->lines[0].quantity, 2);
  EXPECT_EQ(o->lines[0].unit_price_cents, 5890);
  EXPECT_EQ(o->user_coupon_id, 3u);
  EXPECT_EQ(o->points_requested, 500);
  EXPECT_EQ(o->shipping_cents, 1329);
  EXPECT_EQ(o->payment_token, "tok_ok");
  EXPECT_EQ(o->installments, 3u);
  EXPECT_EQ(o->subtotal_cents, 11780);
  EXPECT_EQ(o->total_cents(), 13109);
  EXPECT_EQ(o->paid_cents, 0);
  EXPECT_EQ(o->created_at_ms, kT0);
  ASSERT_EQ(o->history.size(), 1u);
  EXPECT_EQ(o->history[0].status, OrderStatus::pending);
  EXPECT_EQ(o->history[0].at_ms, kT0);
  EXPECT_FALSE(get(43));
}

TEST_F(OrderStoreTest, DuplicateCreateOrderHasNoEffect) {
  ASSERT_TRUE(create(sample_order(42)).first_time);
  auto changed = sample_order(42);
  changed.lines[0].quantity = 5;
  auto r = create(changed, kT0 + 5000);
  EXPECT_EQ(r.code, msg::Code::OK);
  EXPECT_FALSE(r.first_time);
  EXPECT_EQ(r.subtotal_cents, 11780);
  auto o = get(42);
  EXPECT_EQ(o->lines[0].quantity, 2);
  EXPECT_EQ(o->created_at_ms, kT0);
  EXPECT_EQ(o->history.size(), 1u);
}

TEST_F(OrderStoreTest, CreateOrderRejectsInvalidOrdersWithoutStoring) {
  std::vector<NewOrder> bad;
  auto with = [&](auto change) {
    auto o = sample_order(42);
    change(o);
    bad.push_back(o);
  };
  with([](NewOrder& o) { o.lines.clear(); });
  with([](NewOrder& o) { o.lines[1].quantity = 0; });
  with([](NewOrder& o) { o.lines[0].unit_price_cents = -1; });
  with([](NewOrder& o) { o.shipping_cents = -1; });
  with([](NewOrder& o) { o.points = -1; });
  with([](NewOrder& o) { o.lines[0].unit_price_cents = INT64_MAX / 2 + 1; });
  for (const auto& o : bad) {
    auto r = create(o);
    EXPECT_EQ(r.code, msg::Code::INVALID_ARGUMENT);
    EXPECT_FALSE(r.first_time);
    EXPECT_FALSE(r.detail.empty());
  }
  EXPECT_EQ(create(sample_order(0)).code, msg::Code::INVALID_ARGUMENT);
  EXPECT_FALSE(get(42));
  EXPECT_FALSE(get(0));
}

TEST(CouponDiscount, FollowsTheContractFormulas) {
  // fixed: min(value, total)
  EXPECT_EQ(coupon_discount(13109, kFixed1000).discount_cents, 1000);
  EXPECT_EQ(coupon_discount(5000, {.discount_type = msg::DiscountType::FIXED,
                                   .discount_value = 9000,
                                   .min_order_cents = 0})
                .discount_cents,
            5000);
  // percent: floor(total x pct / 100)
  const CouponTerms pct15{
      .discount_type = msg::DiscountType::PERCENT, .discount_value = 15, .min_order_cents = 0};
  EXPECT_EQ(coupon_discount(13109, pct15).discount_cents, 1966);  // 1966.35
  EXPECT_EQ(coupon_discount(INT64_MAX / 2, {.discount_type = msg::DiscountType::PERCENT,
                                            .discount_value = 100,
                                            .min_order_cents = 0})
                .discount_cents,
            INT64_MAX / 2);
  // minimum: total == min is enough, below is couponInvalid with no discount
  auto at_min = coupon_discount(5000, kFixed1000);
  EXPECT_EQ(at_min.code, msg::Code::OK);
  auto below = coupon_discount(4999, kFixed1000);
  EXPECT_EQ(below.code, msg::Code::COUPON_INVALID);
  EXPECT_EQ(below.discount_cents, 0);
  EXPECT_FALSE(below.detail.empty());
  EXPECT_EQ(coupon_discount(5000, {.discount_type = msg::DiscountType::PERCENT,
                                   .discount_value = 101,
                                   .min_order_cents = 0})
                .code,
            msg::Code::COUPON_INVALID);
}

TEST_F(OrderStoreTest, ApplyCouponStoresDiscountAndAnswersRetriesTheSame) {
  create(sample_order(42));
  auto r = apply(42, kFixed1000);
  EXPECT_EQ(r.code, msg::Code::OK);
  EXPECT_EQ(r.discount_cents, 1000);
  EXPECT_TRUE(r.first_time);
  EXPECT_EQ(get(42)->discount_cents, 1000);

  // A retry answers the stored result, whatever it carries.
  auto again = apply(
      42,
      {.discount_type = msg::DiscountType::PERCENT, .discount_value = 50, .min_order_cents = 0});
  EXPECT_EQ(again.code, msg::Code::OK);
  EXPECT_EQ(again.discount_cents, 1000);
  EXPECT_FALSE(again.first_time);
  EXPECT_EQ(get(42)->discount_cents, 1000);
}

TEST_F(OrderStoreTest, ApplyCouponBelowMinimumIsRecordedAsInvalid) {
  create(sample_order(42));  // total 13109
  const CouponTerms high_min{
      .discount_type = msg::DiscountType::FIXED, .discount_value = 1000, .min_order_cents = 13110};
  auto r = apply(42, high_min);
  EXPECT_EQ(r.code, msg::Code::COUPON_INVALID);
  EXPECT_EQ(r.discount_cents, 0);
  EXPECT_EQ(get(42)->discount_cents, 0);
  auto again = apply(42, kFixed1000);  // same answer on retry
  EXPECT_EQ(again.code, msg::Code::COUPON_INVALID);
  EXPECT_EQ(get(42)->discount_cents, 0);
}

TEST_F(OrderStoreTest, ApplyCouponOnUnknownOrFinishedOrderChangesNothing) {
  EXPECT_EQ(apply(42, kFixed1000).code, msg::Code::ORDER_NOT_FOUND);
  EXPECT_FALSE(get(42));
  create(sample_order(42));
  fail(42, msg::Code::OUT_OF_STOCK, kT0 + 1);
  auto late = apply(42, kFixed1000);
  EXPECT_FALSE(late.first_time);
  auto o = get(42);
  EXPECT_EQ(o->discount_cents, 0);
  EXPECT_FALSE(o->coupon_applied);
  EXPECT_EQ(o->status, OrderStatus::failed);
}

TEST_F(OrderStoreTest, CompleteOrderRecordsFiguresOnce) {
  create(sample_order(42));
  apply(42, kFixed1000);
  auto r =
      complete(42, {.discount_cents = 1000, .points_used = 500, .paid_cents = 11609}, kT0 + 900);
  EXPECT_EQ(r.code, msg::Code::OK);
  EXPECT_TRUE(r.first_time);
  EXPECT_EQ(r.completed_at_ms, kT0 + 900);
  ASSERT_EQ(r.lines.size(), 2u);
  EXPECT_EQ(r.lines[1].product_id, 9u);

  auto o = get(42);
  EXPECT_EQ(o->status, OrderStatus::completed);
  EXPECT_EQ(o->discount_cents, 1000);
  EXPECT_EQ(o->points_used, 500);
  EXPECT_EQ(o->paid_cents, 11609);
  EXPECT_EQ(o->completed_at_ms, kT0 + 900);
  ASSERT_EQ(o->history.size(), 2u);
  EXPECT_EQ(o->history[1].status, OrderStatus::completed);
  EXPECT_EQ(o->history[1].at_ms, kT0 + 900);

  auto again = complete(42, {.discount_cents = 0, .points_used = 0, .paid_cents = 1}, kT0 + 5000);
  EXPECT_EQ(again.code, msg::Code::OK);
  EXPECT_FALSE(again.first_time);
  EXPECT_EQ(again.completed_at_ms, kT0 + 900);
  EXPECT_EQ(again.lines.size(), 2u);
  o = get(42);
  EXPECT_EQ(o->paid_cents, 11609);
  EXPECT_EQ(o->history.size(), 2u);
}

TEST_F(OrderStoreTest, CompleteOrderRefusesUnknownAndFailedOrders) {
  EXPECT_EQ(complete(42, {}, kT0).code, msg::Code::ORDER_NOT_FOUND);
  EXPECT_FALSE(get(42));
  create(sample_order(42));
  fail(42, msg::Code::PAYMENT_DECLINED, kT0 + 1);
  auto r = complete(42, {.discount_cents = 0, .points_used = 0, .paid_cents = 13109}, kT0 + 2);
  EXPECT_EQ(r.code, msg::Code::INTERNAL);
  EXPECT_FALSE(r.first_time);
  auto o = get(42);
  EXPECT_EQ(o->status, OrderStatus::failed);
  EXPECT_EQ(o->paid_cents, 0);
  EXPECT_EQ(o->history.size(), 2u);
}

TEST_F(OrderStoreTest, FailOrderRecordsReasonOnce) {
  create(sample_order(42));
  auto r = fail(42, msg::Code::OUT_OF_STOCK, kT0 + 10);
  EXPECT_EQ(r.code, msg::Code::OK);
  EXPECT_TRUE(r.first_time);
  auto o = get(42);
  EXPECT_EQ(o->status, OrderStatus::failed);
  EXPECT_EQ(o->failure_reason, msg::Code::OUT_OF_STOCK);
  EXPECT_EQ(o->paid_cents, 0);
  ASSERT_EQ(o->history.size(), 2u);
  EXPECT_EQ(o->history[1].status, OrderStatus::failed);
  EXPECT_EQ(o->history[1].at_ms, kT0 + 10);

  auto again = fail(42, msg::Code::PAYMENT_TIMEOUT, kT0 + 20);
  EXPECT_EQ(again.code, msg::Code::OK);
  EXPECT_FALSE(again.first_time);
  o = get(42);
  EXPECT_EQ(o->failure_reason, msg::Code::OUT_OF_STOCK);
  EXPECT_EQ(o->history.size(), 2u);
}

TEST_F(OrderStoreTest, FailOrderRefusesCompletedOrder) {
  create(sample_order(42));
  complete(42, {.discount_cents = 0, .points_used = 0, .paid_cents = 13109}, kT0 + 1);
  auto r = fail(42, msg::Code::PAYMENT_TIMEOUT, kT0 + 2);
  EXPECT_EQ(r.code, msg::Code::INTERNAL);
  EXPECT_FALSE(r.first_time);
  auto o = get(42);
  EXPECT_EQ(o->status, OrderStatus::completed);
  EXPECT_EQ(o->paid_cents, 13109);
  EXPECT_EQ(o->failure_reason, msg::Code::OK);
}

TEST_F(OrderStoreTest, FailBeforeCreateLeavesTombstoneSoNoSagaStarts) {
  auto r = fail(42, msg::Code::PAYMENT_TIMEOUT, kT0);
  EXPECT_TRUE(r.first_time);
  auto t = get(42);
  ASSERT_TRUE(t);
  EXPECT_TRUE(t->tombstone);
  EXPECT_EQ(t->status, OrderStatus::failed);

  auto late = create(sample_order(42), kT0 + 100);
  EXPECT_EQ(late.code, msg::Code::OK);
  EXPECT_FALSE(late.first_time);  // main.cpp sends no orderCreated
  auto o = get(42);
  EXPECT_FALSE(o->tombstone);
  EXPECT_EQ(o->status, OrderStatus::failed);
  EXPECT_EQ(o->failure_reason, msg::Code::PAYMENT_TIMEOUT);
  EXPECT_EQ(o->subtotal_cents, 11780);
  EXPECT_EQ(o->lines.size(), 2u);
  EXPECT_FALSE(create(sample_order(42)).first_time);
}

TEST_F(OrderStoreTest, AbortedTransactionLeavesNoTrace) {
  {
    auto txn = Txn::begin_write(*env_);
    ASSERT_TRUE(txn);
    ASSERT_TRUE(store_.create_order(*txn, sample_order(42), kT0));
    txn->abort();
  }
  EXPECT_FALSE(get(42));
  EXPECT_TRUE(create(sample_order(42)).first_time);
}

TEST_F(OrderStoreTest, NewOrderFromMessageCopiesEveryField) {
  capnp::MallocMessageBuilder b;
  auto m = b.initRoot<msg::CreateOrder>();
  m.setOrderId(42);
  m.setUserId(5);
  auto lines = m.initLines(1);
  lines[0].setProductId(7);
  lines[0].setQuantity(3);
  lines[0].setUnitPriceCents(250);
  m.setUserCouponId(8);
  m.setPoints(40);
  m.setShippingCents(99);
  m.setPaymentToken("tok_decline");
  m.setInstallments(6);
  auto n = new_order_from(m.asReader());
  EXPECT_EQ(n.order_id, 42u);
  EXPECT_EQ(n.user_id, 5u);
  ASSERT_EQ(n.lines.size(), 1u);
  EXPECT_EQ(n.lines[0].quantity, 3);
  EXPECT_EQ(n.lines[0].unit_price_cents, 250);
  EXPECT_EQ(n.user_coupon_id, 8u);
  EXPECT_EQ(n.points, 40);
  EXPECT_EQ(n.shipping_cents, 99);
  EXPECT_EQ(n.payment_token, "tok_decline");
  EXPECT_EQ(n.installments, 6u);
}

TEST_F(OrderStoreTest, ReadOnlyQueriesSeeCommittedData) {
  create(sample_order(42));
  fail(42, msg::Code::INSUFFICIENT_POINTS, kT0 + 3);
  auto q = OrderQueries::open(dir_.path(), 64ull << 20);
  ASSERT_TRUE(q) << q.error().message();
  auto o = q->order(42);
  ASSERT_TRUE(o);
  ASSERT_TRUE(*o);
  EXPECT_STREQ(order_status_name((*o)->status), "FAILED");
  EXPECT_STREQ(failure_reason_name((*o)->failure_reason), "INSUFFICIENT_POINTS");
  EXPECT_EQ((*o)->subtotal_cents, 11780);
  auto missing = q->order(43);
  ASSERT_TRUE(missing);
  EXPECT_FALSE(*missing);

  create(sample_order(43));
  EXPECT_TRUE(*q->order(43));
}

TEST(OrderQueriesOpen, FailsOnMissingEnvironment) {
  EXPECT_FALSE(OrderQueries::open("/tmp/rm-order-does-not-exist", 1 << 20));
}

TEST(OrderNames, SpellTheApiValues) {
  EXPECT_STREQ(order_status_name(OrderStatus::pending), "PENDING");
  EXPECT_STREQ(order_status_name(OrderStatus::completed), "COMPLETED");
  EXPECT_STREQ(failure_reason_name(msg::Code::COUPON_INVALID), "COUPON_INVALID");
  EXPECT_STREQ(failure_reason_name(msg::Code::OUT_OF_STOCK), "OUT_OF_STOCK");
  EXPECT_STREQ(failure_reason_name(msg::Code::PAYMENT_DECLINED), "PAYMENT_DECLINED");
  EXPECT_STREQ(failure_reason_name(msg::Code::PAYMENT_CAPTURE_FAILED), "PAYMENT_CAPTURE_FAILED");
  EXPECT_STREQ(failure_reason_name(msg::Code::PAYMENT_TIMEOUT), "PAYMENT_TIMEOUT");
  EXPECT_STREQ(failure_reason_name(msg::Code::STEP_TIMEOUT), "STEP_TIMEOUT");
  EXPECT_STREQ(failure_reason_name(static_cast<msg::Code>(999)), "UNKNOWN");
}

TEST_F(OrderStoreTest, ScansEveryOrderInIdOrderTombstonesIncluded) {
  ASSERT_TRUE(create(sample_order(12)).first_time);
  ASSERT_TRUE(create(sample_order(3)).first_time);
  ASSERT_TRUE(fail(20, msg::Code::STEP_TIMEOUT, kT0).first_time);  // tombstone
  auto txn = Txn::begin_read(*env_);
  ASSERT_TRUE(txn);
  std::vector<std::pair<std::uint64_t, OrderStatus>> seen;
  store_.scan(*txn, [&](const Order& o) {
    seen.emplace_back(o.order_id, o.status);
    EXPECT_EQ(o.lines.size(), o.tombstone ? 0u : 2u);
    return true;
  });
  EXPECT_EQ(seen,
            (std::vector<std::pair<std::uint64_t, OrderStatus>>{
                {3, OrderStatus::pending}, {12, OrderStatus::pending}, {20, OrderStatus::failed}}));
}

TEST_F(OrderStoreTest, AUsersOrdersAreListedNewestFirstInPages) {
  auto for_user = [](std::uint64_t id, std::uint64_t user) {
    auto o = sample_order(id);
    o.user_id = user;
    return o;
  };
  for (std::uint64_t id : {3, 5, 8, 13, 21}) create(for_user(id, 1));
  create(for_user(6, 2));
  fail(9, msg::Code::OUT_OF_STOCK, kT0);  // a tombstone: no user, not listed
  fail(13, msg::Code::PAYMENT_DECLINED, kT0 + 1);
  auto list = [&](std::uint64_t user, std::uint64_t before, std::size_t limit) {
    auto txn = Txn::begin_read(*env_);
    std::vector<std::uint64_t> ids;
    for (const auto& s : store_.orders_of_user(*txn, user, before, limit))
      ids.push_back(s.order_id);
    return ids;
  };
  EXPECT_EQ(list(1, 0, 10), (std::vector<std::uint64_t>{21, 13, 8, 5, 3}));
  EXPECT_EQ(list(1, 0, 2), (std::vector<std::uint64_t>{21, 13}));
  EXPECT_EQ(list(1, 13, 2), (std::vector<std::uint64_t>{8, 5})) << "ids below the cursor";
  EXPECT_EQ(list(1, 3, 2), (std::vector<std::uint64_t>{}));
  EXPECT_EQ(list(1, 1, 2), (std::vector<std::uint64_t>{}));
  EXPECT_EQ(list(2, 0, 10), (std::vector<std::uint64_t>{6}));
  EXPECT_EQ(list(3, 0, 10), (std::vector<std::uint64_t>{}));
  auto txn = Txn::begin_read(*env_);
  const auto rows = store_.orders_of_user(*txn, 1, 14, 1);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].order_id, 13u);
  EXPECT_EQ(rows[0].status, OrderStatus::failed);
  EXPECT_EQ(rows[0].failure_reason, msg::Code::PAYMENT_DECLINED);
  EXPECT_EQ(rows[0].item_count, 3);  // 2 + 1 units
  EXPECT_EQ(rows[0].line_count, 2u);
  EXPECT_EQ(rows[0].total_cents, 2 * 5890 + 1329);
}

TEST_F(OrderStoreTest, AnEnvironmentFromBeforeTheIndexIsIndexedWhenOpened) {
  for (std::uint64_t id : {1, 2, 4}) create(sample_order(id));
  // Drop the index, as an environment written before it existed has none.
  {
    auto txn = Txn::begin_write(*env_);
    ASSERT_TRUE(txn);
    auto index = storage::Table::open(*txn, "orders_by_user");
    ASSERT_TRUE(index);
    for (std::uint64_t id : {1, 2, 4}) {
      ASSERT_TRUE(index->erase(*txn, storage::Key{}.u64(1).u64(~id).view()).value());
    }
    ASSERT_FALSE(txn->commit());
  }
  auto empty = Txn::begin_read(*env_);
  EXPECT_TRUE(store_.orders_of_user(*empty, 1, 0, 10).empty());
  empty->abort();
  auto txn = Txn::begin_write(*env_);
  ASSERT_TRUE(txn);
  auto reopened = OrderStore::open(*txn);
  ASSERT_TRUE(reopened);
  ASSERT_FALSE(txn->commit());
  auto read = Txn::begin_read(*env_);
  const auto rows = reopened->orders_of_user(*read, 1, 0, 10);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].order_id, 4u);
  EXPECT_EQ(rows[2].order_id, 1u);
}

// ---------------------------------------------------------------- fulfilment

TEST_F(OrderStoreTest, OnlyAPaidOrderShipsAndOnlyAShippedOneIsDelivered) {
  auto ship = [&](std::uint64_t id, const char* carrier, const char* tracking, std::int64_t at) {
    return write([&](Txn& t) { return store_.ship(t, id, carrier, tracking, at); });
  };
  auto deliver = [&](std::uint64_t id, std::int64_t at) {
    return write([&](Txn& t) { return store_.mark_delivered(t, id, at); });
  };
  create(sample_order(1));
  EXPECT_EQ(ship(1, "Correios", "BR123", kT0 + 1).code, msg::Code::ORDER_STATE_CONFLICT)
      << "PENDING: not paid yet";
  EXPECT_EQ(deliver(1, kT0 + 1).code, msg::Code::ORDER_STATE_CONFLICT);
  create(sample_order(2));
  fail(2, msg::Code::OUT_OF_STOCK, kT0 + 1);
  EXPECT_EQ(ship(2, "Correios", "BR123", kT0 + 2).code, msg::Code::ORDER_STATE_CONFLICT)
      << "FAILED: never paid";
  EXPECT_EQ(ship(99, "Correios", "BR123", kT0).code, msg::Code::ORDER_NOT_FOUND);
  EXPECT_EQ(deliver(99, kT0).code, msg::Code::ORDER_NOT_FOUND);

  complete(1, {.discount_cents = 0, .points_used = 0, .paid_cents = 13109}, kT0 + 10);
  EXPECT_EQ(ship(1, "", "BR123", kT0 + 20).code, msg::Code::INVALID_ARGUMENT);
  EXPECT_EQ(ship(1, "Correios", std::string(101, 'x').c_str(), kT0 + 20).code,
            msg::Code::INVALID_ARGUMENT);
  EXPECT_EQ(deliver(1, kT0 + 20).code, msg::Code::ORDER_STATE_CONFLICT) << "not shipped yet";
  auto shipped = ship(1, "Correios", "BR123", kT0 + 20);
  EXPECT_EQ(shipped.code, msg::Code::OK);
  EXPECT_TRUE(shipped.first_time);
  auto repeat = ship(1, "Correios", "BR123", kT0 + 30);
  EXPECT_EQ(repeat.code, msg::Code::OK);
  EXPECT_FALSE(repeat.first_time);
  EXPECT_EQ(ship(1, "DHL", "X9", kT0 + 30).code, msg::Code::ORDER_STATE_CONFLICT)
      << "another shipment of a shipped order";
  auto o = get(1);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->status, OrderStatus::shipped);
  EXPECT_EQ(o->carrier, "Correios");
  EXPECT_EQ(o->tracking_number, "BR123");
  EXPECT_EQ(o->shipped_at_ms, kT0 + 20);
  EXPECT_EQ(o->paid_cents, 13109) << "shipping changes no money";

  // A late repeat of the saga's completeOrder or failOrder changes nothing.
  auto again = complete(1, {.discount_cents = 0, .points_used = 0, .paid_cents = 1}, kT0 + 40);
  EXPECT_EQ(again.code, msg::Code::OK);
  EXPECT_FALSE(again.first_time);
  EXPECT_EQ(fail(1, msg::Code::PAYMENT_DECLINED, kT0 + 40).code, msg::Code::INTERNAL);
  EXPECT_EQ(get(1)->status, OrderStatus::shipped);

  EXPECT_TRUE(deliver(1, kT0 + 50).first_time);
  EXPECT_FALSE(deliver(1, kT0 + 60).first_time);
  EXPECT_EQ(ship(1, "Correios", "BR123", kT0 + 70).code, msg::Code::ORDER_STATE_CONFLICT);
  o = get(1);
  EXPECT_EQ(o->status, OrderStatus::delivered);
  EXPECT_EQ(o->delivered_at_ms, kT0 + 50);
  EXPECT_EQ(fail(1, msg::Code::PAYMENT_DECLINED, kT0 + 80).code, msg::Code::INTERNAL);
  std::vector<std::pair<OrderStatus, std::int64_t>> history;
  for (const auto& h : o->history) history.emplace_back(h.status, h.at_ms);
  EXPECT_EQ(history, (std::vector<std::pair<OrderStatus, std::int64_t>>{
                         {OrderStatus::pending, kT0},
                         {OrderStatus::completed, kT0 + 10},
                         {OrderStatus::shipped, kT0 + 20},
                         {OrderStatus::delivered, kT0 + 50}}));
  EXPECT_TRUE(is_paid(OrderStatus::delivered));
  EXPECT_FALSE(is_paid(OrderStatus::failed));
}

// ---------------------------------------------------------------- the change feed

TEST_F(OrderStoreTest, EveryChangeAppendsOneFeedEventWithAGapFreeSequence) {
  auto feed = [&](std::uint64_t after, std::size_t limit = 100) {
    auto txn = Txn::begin_read(*env_);
    EXPECT_TRUE(txn);
    return std::pair{store_.feed(*txn, after, limit), store_.feed_bounds(*txn)};
  };
  EXPECT_EQ(feed(0).second.last, 0u);
  create(sample_order(1), kT0);
  create(sample_order(1), kT0 + 1);  // a duplicate: no event
  create(sample_order(2), kT0 + 2);
  complete(1, {.discount_cents = 0, .points_used = 500, .paid_cents = 12609}, kT0 + 3);
  complete(1, {.discount_cents = 0, .points_used = 500, .paid_cents = 12609}, kT0 + 4);
  fail(2, msg::Code::OUT_OF_STOCK, kT0 + 5);
  fail(2, msg::Code::OUT_OF_STOCK, kT0 + 6);
  write([&](Txn& t) { return store_.ship(t, 1, "Correios", "BR1", kT0 + 7); });
  write([&](Txn& t) { return store_.ship(t, 2, "Correios", "BR2", kT0 + 7); });  // refused
  write([&](Txn& t) { return store_.mark_delivered(t, 1, kT0 + 8); });

  auto [events, bounds] = feed(0);
  ASSERT_EQ(events.size(), 6u);
  EXPECT_EQ(bounds.first, 1u);
  EXPECT_EQ(bounds.last, 6u);
  using K = FeedEventKind;
  const std::vector<std::tuple<std::uint64_t, K, std::uint64_t, OrderStatus>> want = {
      {1, K::created, 1, OrderStatus::pending},     {2, K::created, 2, OrderStatus::pending},
      {3, K::completed, 1, OrderStatus::completed}, {4, K::failed, 2, OrderStatus::failed},
      {5, K::shipped, 1, OrderStatus::shipped},     {6, K::delivered, 1, OrderStatus::delivered}};
  for (std::size_t i = 0; i < want.size(); ++i) {
    const auto& [seq, kind, order_id, status] = want[i];
    EXPECT_EQ(events[i].seq, seq);
    EXPECT_EQ(events[i].kind, kind) << i;
    EXPECT_EQ(events[i].order_id, order_id) << i;
    EXPECT_EQ(events[i].status, status) << i;
  }
  EXPECT_EQ(events[2].paid_cents, 12609);
  EXPECT_EQ(events[0].paid_cents, 0);
  EXPECT_EQ(events[0].total_cents, 11780 + 1329);
  EXPECT_EQ(events[0].item_count, 3);
  EXPECT_EQ(events[3].failure_reason, msg::Code::OUT_OF_STOCK);
  EXPECT_EQ(events[4].carrier, "Correios");
  EXPECT_EQ(events[4].tracking_number, "BR1");
  EXPECT_EQ(events[5].at_ms, kT0 + 8);
  // Paging: after a seq, at most limit.
  auto page = feed(2, 2).first;
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0].seq, 3u);
  EXPECT_EQ(page[1].seq, 4u);
  EXPECT_TRUE(feed(6).first.empty());
  EXPECT_TRUE(feed(std::numeric_limits<std::uint64_t>::max()).first.empty());

  // Retention deletes the oldest events; their sequence numbers are never reused.
  auto pruned = write([&](Txn& t) { return store_.prune_feed(t, kT0 + 4, 10); });
  EXPECT_EQ(pruned.deleted, 3u);
  EXPECT_EQ(pruned.oldest_kept_ms, kT0 + 5);
  bounds = feed(0).second;
  EXPECT_EQ(bounds.first, 4u);
  EXPECT_EQ(bounds.last, 6u);
  create(sample_order(3), kT0 + 9);
  EXPECT_EQ(feed(6).first.at(0).seq, 7u);
  pruned = write([&](Txn& t) { return store_.prune_feed(t, kT0 + 100, 10); });
  EXPECT_EQ(pruned.deleted, 4u);
  bounds = feed(0).second;
  EXPECT_EQ(bounds.first, 0u) << "empty";
  EXPECT_EQ(bounds.last, 7u) << "the counter stays";
  EXPECT_EQ(feed_cursor(7, bounds), FeedCursor::ok) << "had everything: waits for more";
  EXPECT_EQ(feed_cursor(6, bounds), FeedCursor::expired) << "seq 7 was pruned";
  EXPECT_EQ(feed_cursor(8, bounds), FeedCursor::ahead);
  EXPECT_EQ(feed_cursor(3, FeedBounds{.first = 4, .last = 7}), FeedCursor::ok);
  EXPECT_EQ(feed_cursor(2, FeedBounds{.first = 4, .last = 7}), FeedCursor::expired);
  EXPECT_EQ(feed_cursor(0, FeedBounds{}), FeedCursor::ok) << "a new feed";
}

TEST(OrderFeedFormat, NdjsonAndCsvCarryTheSameFieldsAndQuoteWhatCsvMust) {
  FeedEvent shipped{.seq = 9,
                    .kind = FeedEventKind::shipped,
                    .order_id = 4,
                    .user_id = 2,
                    .status = OrderStatus::shipped,
                    .at_ms = 1000,
                    .total_cents = 1500,
                    .paid_cents = 1400,
                    .item_count = 3,
                    .carrier = "Loggi, \"express\"",
                    .tracking_number = "T1"};
  const auto j = feed_event_json(shipped);
  EXPECT_EQ(j["type"], "shipped");
  EXPECT_EQ(j["status"], "SHIPPED");
  EXPECT_EQ(j["carrier"], "Loggi, \"express\"");
  EXPECT_FALSE(j.contains("failure_reason"));
  EXPECT_EQ(feed_event_csv(shipped),
            "9,shipped,4,2,SHIPPED,1000,1500,1400,3,,\"Loggi, \"\"express\"\"\",T1");
  FeedEvent failed{.seq = 10,
                   .kind = FeedEventKind::failed,
                   .order_id = 5,
                   .status = OrderStatus::failed,
                   .failure_reason = msg::Code::PAYMENT_DECLINED};
  EXPECT_EQ(feed_event_json(failed)["failure_reason"], "PAYMENT_DECLINED");
  EXPECT_EQ(feed_event_csv(failed), "10,failed,5,0,FAILED,0,0,0,0,PAYMENT_DECLINED,,");
  // As many cells as the header has columns.
  const auto columns = [](const std::string& row) {
    return std::count(row.begin(), row.end(), ',') + 1;
  };
  EXPECT_EQ(columns(feed_csv_header()), columns(feed_event_csv(failed)));
}

}  // namespace
}  // namespace ringmart::order
