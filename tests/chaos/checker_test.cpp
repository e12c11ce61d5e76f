// The invariant checker against real LMDB environments: a consistent state
// built through the domain stores' own write functions (the saga's steps and
// compensations, in the daemons' layout), then one corruption at a time —
// each must be reported under its invariant name with the ids involved. And
// once against the real running system.
#include "tests/chaos/checker.hpp"

#include <capnp/message.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "daemons/common/config.hpp"
#include "daemons/common/topology.hpp"
#include "daemons/coupon/coupon_store.hpp"
#include "daemons/order/order_store.hpp"
#include "daemons/payment/payment_store.hpp"
#include "daemons/product/product_records.capnp.h"
#include "daemons/product/product_store.hpp"
#include "daemons/ranking/ranking_store.hpp"
#include "daemons/supervisor/saga_store.hpp"
#include "daemons/user/user_store.hpp"
#include "ipc/ring.hpp"
#include "storage/capnp_value.hpp"
#include "storage/outbox.hpp"
#include "testkit/temp_dir.hpp"
#include "tests/integration/system.hpp"

namespace ringmart::checker {
namespace {

using msg::Code;
using msg::DaemonId;
using storage::Txn;

constexpr std::int64_t kNowMs = 1'700'000'000'000;
constexpr std::int64_t kNowS = kNowMs / 1000;

// Ids of the consistent scenario (see SetUp).
constexpr std::uint64_t kP1 = 1, kP2 = 2;              // products
constexpr std::uint64_t kU1 = 1, kU2 = 2;              // users
constexpr std::uint64_t kCoupon = 1;                   // template
constexpr std::uint64_t kUc1 = 1, kUc2 = 2, kUc3 = 3;  // user coupons: U1, U2, U1

bool has(const Report& r, const std::string& invariant, std::vector<std::uint64_t> ids) {
  return std::ranges::any_of(r.violations, [&](const Violation& v) {
    return v.invariant == invariant && std::ranges::all_of(ids, [&](auto id) {
             return std::ranges::find(v.ids, id) != v.ids.end();
           });
  });
}

std::string dump(const Report& r) { return r.to_json().dump(2); }

class CheckerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.state_dir = base_ / "state";
    options_.runtime_dir = base_ / "run";
    std::filesystem::create_directories(options_.state_dir);
    std::filesystem::create_directories(options_.runtime_dir);
    auto config = runtime::Config::load(options_.state_dir, options_.runtime_dir, "");
    ASSERT_TRUE(config) << config.error();
    config_ = *config;
    // Every daemon's environment with its runtime tables, as Runtime::create leaves them.
    for (auto d : runtime::all_daemons()) {
      raw(d, [](Txn& t) {
        ASSERT_TRUE(storage::Outbox::open(t));
        ASSERT_TRUE(storage::Inbox::open(t));
      });
    }
    build_scenario();
  }

  // Runs `fn` in a committed write transaction of `daemon`'s environment. The
  // environment is closed again before returning: LMDB forbids one process
  // to hold the same environment open twice, and check() opens it too.
  template <class F>
  void raw(DaemonId daemon, F&& fn) {
    auto env = storage::Env::open({.path = config_.env_path(runtime::daemon_name(daemon)),
                                   .map_size_bytes = config_.map_size_bytes});
    ASSERT_TRUE(env) << env.error().message();
    auto txn = Txn::begin_write(**env);
    ASSERT_TRUE(txn);
    fn(*txn);
    ASSERT_FALSE(txn->commit());
  }
  // Like raw() with the daemon's store opened: fn(txn, store).
  template <class Store, class F>
  void with(DaemonId daemon, F&& fn) {
    raw(daemon, [&](Txn& t) {
      auto store = Store::open(t);
      ASSERT_TRUE(store) << store.error().message();
      fn(t, *store);
    });
  }
  // Deletes one row of a table (a lost idempotency record).
  void delete_row(DaemonId daemon, const char* table, std::uint64_t key) {
    raw(daemon, [&](Txn& t) {
      auto tbl = storage::Table::open(t, table);
      ASSERT_TRUE(tbl);
      ASSERT_TRUE(tbl->del(t, storage::Key{}.u64(key).view())) << table << " " << key;
    });
  }

  void put_saga(std::uint64_t order_id, supervisor::SagaState state, Code reason = Code::OK) {
    with<supervisor::SagaStore>(DaemonId::SUPERVISOR, [&](Txn& t, supervisor::SagaStore& s) {
      capnp::MallocMessageBuilder b;
      auto r = b.initRoot<supervisor::SagaRecord>();
      r.setOrderId(order_id);
      r.setState(state);
      r.setFailureReason(static_cast<std::uint16_t>(reason));
      r.setCreatedAtMs(kNowMs);
      r.setUpdatedAtMs(kNowMs);
      std::optional<supervisor::SagaState> previous;
      if (auto old = s.get(t, order_id)) previous = old->root<supervisor::SagaRecord>().getState();
      ASSERT_FALSE(s.put(t, order_id, b, previous));
    });
  }

  // --- the order saga, step by step, through the real stores ---------------

  struct Spec {
    std::uint64_t order_id = 0;
    std::uint64_t user_id = 0;
    std::vector<order::OrderLine> lines;
    std::uint64_t user_coupon_id = 0;
    std::int64_t points = 0;
    std::int64_t shipping_cents = 0;
    std::string token = "tok_ok";
  };

  payment::PaymentStep pay(const std::function<std::expected<payment::PaymentStep, std::error_code>(
                               Txn&, payment::PaymentStore&)>& command) {
    payment::PaymentStep out;
    with<payment::PaymentStore>(DaemonId::PAYMENT, [&](Txn& t, payment::PaymentStore& s) {
      auto step = command(t, s);
      ASSERT_TRUE(step);
      out = *step;
      if (out.action == payment::PaymentStep::Action::call_gateway) {
        payment::SimulatedPaymentGateway pg(0);
        auto fin = s.apply_gateway_answer(t, out.payment.order_id, out.operation,
                                          payment::call_gateway(pg, out), kNowMs);
        ASSERT_TRUE(fin);
        out = *fin;
      }
    });
    return out;
  }

  /// Runs the default saga for `o` like the supervisor does; returns the order's final status.
  order::OrderStatus run_saga(const Spec& o) {
    using order::OrderStatus;
    with<order::OrderStore>(DaemonId::ORDER, [&](Txn& t, order::OrderStore& s) {
      order::NewOrder n{.order_id = o.order_id,
                        .user_id = o.user_id,
                        .lines = o.lines,
                        .user_coupon_id = o.user_coupon_id,
                        .points = o.points,
                        .shipping_cents = o.shipping_cents,
                        .payment_token = o.token};
      auto r = s.create_order(t, n, kNowMs);
      ASSERT_TRUE(r && r->first_time);
    });
    put_saga(o.order_id, supervisor::SagaState::RUNNING);
    std::vector<std::function<void()>> compensations;
    auto fail = [&](Code reason) {
      for (auto it = compensations.rbegin(); it != compensations.rend(); ++it) (*it)();
      with<order::OrderStore>(DaemonId::ORDER, [&](Txn& t, order::OrderStore& s) {
        ASSERT_TRUE(s.fail_order(t, o.order_id, reason, kNowMs));
      });
      put_saga(o.order_id, supervisor::SagaState::FAILED, reason);
      return OrderStatus::failed;
    };

    std::int64_t discount = 0;
    if (o.user_coupon_id != 0) {
      Code code = Code::OK;
      order::CouponTerms terms;
      with<coupon::CouponStore>(DaemonId::COUPON, [&](Txn& t, coupon::CouponStore& s) {
        auto r = s.use_coupon(t, o.order_id, o.user_id, o.user_coupon_id, kNowS);
        ASSERT_TRUE(r);
        code = r->code;
        terms = {r->discount_type, r->discount_value, r->min_order_cents};
      });
      if (code != Code::OK) return fail(Code::COUPON_INVALID);
      compensations.push_back([&] {
        with<coupon::CouponStore>(DaemonId::COUPON, [&](Txn& t, coupon::CouponStore& s) {
          ASSERT_TRUE(s.restore_coupon(t, o.order_id));
        });
      });
      with<order::OrderStore>(DaemonId::ORDER, [&](Txn& t, order::OrderStore& s) {
        auto r = s.apply_coupon(t, o.order_id, terms);
        ASSERT_TRUE(r);
        code = r->code;
        discount = r->discount_cents;
      });
      if (code != Code::OK) return fail(Code::COUPON_INVALID);
    }

    Code code = Code::OK;
    with<product::ProductStore>(DaemonId::PRODUCT, [&](Txn& t, product::ProductStore& s) {
      std::vector<product::LineQuantity> lines;
      for (const auto& l : o.lines) lines.push_back({l.product_id, l.quantity});
      auto r = s.deduct_inventory(t, o.order_id, lines, kNowMs);
      ASSERT_TRUE(r);
      code = r->code;
    });
    if (code != Code::OK) return fail(code);
    compensations.push_back([&] {
      with<product::ProductStore>(DaemonId::PRODUCT, [&](Txn& t, product::ProductStore& s) {
        ASSERT_TRUE(s.restore_inventory(t, o.order_id, kNowMs));
      });
    });

    std::int64_t subtotal = 0;
    for (const auto& l : o.lines) subtotal += l.quantity * l.unit_price_cents;
    const std::int64_t total = subtotal + o.shipping_cents;
    const std::int64_t points = std::min(o.points, total - discount);
    const std::int64_t amount = total - discount - points;
    code = pay([&](Txn& t, payment::PaymentStore& s) {
             return s.start_payment(
                 t, {.order_id = o.order_id, .amount_cents = amount, .token = o.token}, kNowMs);
           }).code;
    if (code != Code::OK) return fail(code);
    compensations.push_back([&] {
      pay([&](Txn& t, payment::PaymentStore& s) {
        return s.cancel_payment(t, o.order_id, kNowMs);
      });
    });

    if (points > 0) {
      with<user::UserStore>(DaemonId::USER, [&](Txn& t, user::UserStore& s) {
        auto r = s.deduct_points(t, o.order_id, o.user_id, points, kNowMs);
        ASSERT_TRUE(r);
        code = r->code;
      });
      if (code != Code::OK) return fail(code);
      compensations.push_back([&] {
        with<user::UserStore>(DaemonId::USER, [&](Txn& t, user::UserStore& s) {
          ASSERT_TRUE(s.restore_points(t, o.order_id, kNowMs));
        });
      });
    }

    code = pay([&](Txn& t, payment::PaymentStore& s) {
             return s.complete_payment(t, o.order_id, kNowMs);
           }).code;
    if (code != Code::OK) return fail(code);

    std::vector<ranking::LineQuantity> ranked;
    with<order::OrderStore>(DaemonId::ORDER, [&](Txn& t, order::OrderStore& s) {
      auto r = s.complete_order(
          t, o.order_id, {.discount_cents = discount, .points_used = points, .paid_cents = amount},
          kNowMs);
      ASSERT_TRUE(r && r->first_time);
      for (const auto& l : r->lines) ranked.push_back({l.product_id, l.quantity});
    });
    with<ranking::RankingStore>(DaemonId::RANKING, [&](Txn& t, ranking::RankingStore& s) {
      ASSERT_TRUE(s.record_completed(t, o.order_id, ranked, kNowMs));
    });
    put_saga(o.order_id, supervisor::SagaState::COMPLETED);
    return OrderStatus::completed;
  }

  void build_scenario() {
    with<product::ProductStore>(DaemonId::PRODUCT, [&](Txn& t, product::ProductStore& s) {
      ASSERT_EQ(s.create_product(t, "mug", "kitchen", 1000, 10, kNowMs)->id, kP1);
      ASSERT_EQ(s.create_product(t, "cup", "kitchen", 500, 5, kNowMs)->id, kP2);
      ASSERT_EQ(s.adjust_stock(t, kP1, 3)->code, Code::OK);  // a delivery
    });
    with<user::UserStore>(DaemonId::USER, [&](Txn& t, user::UserStore& s) {
      ASSERT_EQ(s.register_user(t, "Ana", "ana@example.com", "", kNowMs)->id, kU1);
      ASSERT_EQ(s.register_user(t, "Bruno", "bruno@example.com", "", kNowMs)->id, kU2);
      ASSERT_EQ(s.charge_points(t, kU1, 1000, kNowMs)->code, Code::OK);
      ASSERT_EQ(s.charge_points(t, kU2, 200, kNowMs)->code, Code::OK);
    });
    with<coupon::CouponStore>(DaemonId::COUPON, [&](Txn& t, coupon::CouponStore& s) {
      ASSERT_EQ(s.create_coupon(t, {.name = "200 off",
                                    .discount_type = msg::DiscountType::FIXED,
                                    .discount_value = 200,
                                    .total_quantity = 5,
                                    .per_user_limit = 2})  // kU1 holds two
                    ->coupon_id,
                kCoupon);
      ASSERT_EQ(s.issue_coupon(t, kCoupon, kU1, kNowS)->user_coupon_id, kUc1);
      ASSERT_EQ(s.issue_coupon(t, kCoupon, kU2, kNowS)->user_coupon_id, kUc2);
      ASSERT_EQ(s.issue_coupon(t, kCoupon, kU1, kNowS)->user_coupon_id, kUc3);
    });
    using order::OrderStatus;
    using L = order::OrderLine;
    const std::vector<std::pair<Spec, OrderStatus>> orders = {
        // coupon + points + shipping: paid 2500 + 100 - 200 - 300 = 2100
        {{1, kU1, {L{kP1, 2, 1000}, L{kP2, 1, 500}}, kUc1, 300, 100}, OrderStatus::completed},
        {{2, kU2, {L{kP1, 1, 1000}}, kUc2, 100, 0, "tok_decline"}, OrderStatus::failed},
        {{3, kU2, {L{kP2, 1, 500}}, 0, 5000, 0}, OrderStatus::failed},    // insufficient points
        {{4, kU1, {L{kP2, 1, 500}}, 0, 500, 0}, OrderStatus::completed},  // all paid by points
        {{5, kU1, {L{kP1, 1, 1000}}, 0, 0, 0, "tok_capture_fail"}, OrderStatus::failed},
        {{6, kU1, {L{kP1, 100, 1000}}, 0, 0, 0}, OrderStatus::failed},  // out of stock
        {{7, kU2, {L{kP2, 1, 500}}, kUc1, 0, 0}, OrderStatus::failed},  // another's coupon
        {{8, kU2, {L{kP2, 1, 500}, L{kP2, 2, 500}}, 0, 0, 0}, OrderStatus::completed},
    };
    for (const auto& [spec, want] : orders) {
      ASSERT_EQ(run_saga(spec), want) << "order " << spec.order_id;
      options_.accepted_order_ids.push_back(spec.order_id);
    }
  }

  Report check_ok() {
    auto r = check(options_);
    EXPECT_TRUE(r) << r.error();
    return r.value_or(Report{});
  }

  testkit::TempDir base_{"checker_test"};  // first: removed after the rest
  Options options_;
  runtime::Config config_;
};

TEST_F(CheckerTest, ConsistentStatePassesWithItsCounts) {
  auto r = check_ok();
  EXPECT_TRUE(r.ok()) << dump(r);
  EXPECT_EQ(r.orders, 8u);
  EXPECT_EQ(r.completed, 3u);
  EXPECT_EQ(r.failed, 5u);
  EXPECT_EQ(r.pending, 0u);
  EXPECT_EQ(r.sagas, 8u);
  EXPECT_EQ(r.sagas_nonterminal, 0u);
  EXPECT_EQ(r.sagas_stuck, 0u);
  EXPECT_EQ(r.products, 2u);
  EXPECT_EQ(r.users, 2u);
  EXPECT_EQ(r.user_coupons, 3u);
  EXPECT_EQ(r.payments, 6u);  // orders 6 and 7 failed before the payment step
  EXPECT_EQ(r.outbox_pending, 0u);
  EXPECT_FALSE(r.rings_checked);  // no shared memory: the system is not running
  auto j = r.to_json();
  EXPECT_EQ(j["orders"], 8);
  EXPECT_EQ(j["rings_checked"], false);
  EXPECT_TRUE(j["violations"].empty());

  auto probe = check_stock_nonnegative(options_);
  ASSERT_TRUE(probe) << probe.error();
  EXPECT_TRUE(probe->empty());
  auto waited = wait_quiet(options_, 1000);
  ASSERT_TRUE(waited) << waited.error();
  EXPECT_LT(*waited, 1000);
}

TEST_F(CheckerTest, ManualStockAdjustmentIsNoViolation) {
  with<product::ProductStore>(DaemonId::PRODUCT, [&](Txn& t, product::ProductStore& s) {
    ASSERT_EQ(s.adjust_stock(t, kP2, 4)->code, Code::OK);
    ASSERT_EQ(s.adjust_stock(t, kP1, -2)->code, Code::OK);
  });
  auto r = check_ok();
  EXPECT_TRUE(r.ok()) << dump(r);
}

TEST_F(CheckerTest, ReportsSagaLeftRunningAndPendingOrder) {
  with<order::OrderStore>(DaemonId::ORDER, [&](Txn& t, order::OrderStore& s) {
    ASSERT_TRUE(s.create_order(
        t, {.order_id = 9, .user_id = kU1, .lines = {{kP1, 1, 1000}}, .payment_token = "tok_ok"},
        kNowMs));
  });
  put_saga(9, supervisor::SagaState::RUNNING);
  auto r = check_ok();
  EXPECT_TRUE(has(r, "saga_terminal", {9})) << dump(r);
  EXPECT_TRUE(has(r, "order_terminal", {9})) << dump(r);
  EXPECT_EQ(r.pending, 1u);
  EXPECT_EQ(r.sagas_nonterminal, 1u);

  auto waited = wait_quiet(options_, 60);
  ASSERT_FALSE(waited);
  EXPECT_NE(waited.error().find("1 saga(s) not terminal"), std::string::npos) << waited.error();
}

TEST_F(CheckerTest, ReportsStuckSaga) {
  put_saga(5, supervisor::SagaState::STUCK, Code::PAYMENT_CAPTURE_FAILED);
  auto r = check_ok();
  EXPECT_TRUE(has(r, "saga_terminal", {5})) << dump(r);
  EXPECT_EQ(r.sagas_stuck, 1u);
  // STUCK is terminal: nothing more will happen without an operator.
  EXPECT_TRUE(wait_quiet(options_, 1000));
}

TEST_F(CheckerTest, ReportsSagaDisagreeingWithItsOrder) {
  put_saga(1, supervisor::SagaState::FAILED, Code::STEP_TIMEOUT);
  auto r = check_ok();
  EXPECT_TRUE(has(r, "saga_terminal", {1})) << dump(r);
}

TEST_F(CheckerTest, ReportsAcceptedOrderTheOrderStoreDoesNotKnow) {
  options_.accepted_order_ids.push_back(4242);
  auto r = check_ok();
  EXPECT_TRUE(has(r, "accepted_unknown", {4242})) << dump(r);
  EXPECT_EQ(r.violations.size(), 1u) << dump(r);
}

TEST_F(CheckerTest, ReportsStockDeductedTwice) {
  // The reservation (idempotency record) is lost and the command applied again.
  delete_row(DaemonId::PRODUCT, "reservations", 1);
  with<product::ProductStore>(DaemonId::PRODUCT, [&](Txn& t, product::ProductStore& s) {
    ASSERT_EQ(s.adjust_stock(t, kP2, 5)->code, Code::OK);  // a delivery: cups were sold out
    std::vector<product::LineQuantity> lines{{kP1, 2}, {kP2, 1}};
    ASSERT_EQ(s.deduct_inventory(t, 1, lines, kNowMs)->code, Code::OK);
  });
  auto r = check_ok();
  EXPECT_TRUE(has(r, "stock", {kP1})) << dump(r);
  EXPECT_TRUE(has(r, "stock", {kP2})) << dump(r);
}

TEST_F(CheckerTest, ReportsStockRestoredForCompletedOrder) {
  with<product::ProductStore>(DaemonId::PRODUCT, [&](Txn& t, product::ProductStore& s) {
    ASSERT_TRUE(s.restore_inventory(t, 1, kNowMs));
  });
  auto r = check_ok();
  EXPECT_TRUE(has(r, "stock", {1})) << dump(r);    // order 1's reservation
  EXPECT_TRUE(has(r, "stock", {kP2})) << dump(r);  // and the units
}

TEST_F(CheckerTest, ProbeReportsNegativeStock) {
  // Only a corrupt environment can hold a negative stock: write the record raw.
  raw(DaemonId::PRODUCT, [&](Txn& t) {
    auto tbl = storage::Table::open(t, "products");
    ASSERT_TRUE(tbl);
    capnp::MallocMessageBuilder b;
    auto p = b.initRoot<product::records::Product>();
    p.setId(kP2);
    p.setName("cup");
    p.setCategory("kitchen");
    p.setPriceCents(500);
    p.setStock(-1);
    p.setReceivedUnits(2);
    ASSERT_FALSE(storage::put_message(*tbl, t, storage::Key{}.u64(kP2).view(), b));
  });
  auto probe = check_stock_nonnegative(options_);
  ASSERT_TRUE(probe) << probe.error();
  ASSERT_EQ(probe->size(), 1u);
  EXPECT_EQ(probe->at(0).invariant, "stock");
  EXPECT_EQ(probe->at(0).ids, std::vector<std::uint64_t>{kP2});
  auto r = check_ok();
  EXPECT_TRUE(has(r, "stock", {kP2})) << dump(r);
}

TEST_F(CheckerTest, ReportsPointsDeductedTwice) {
  delete_row(DaemonId::USER, "point_deductions", 1);
  with<user::UserStore>(DaemonId::USER, [&](Txn& t, user::UserStore& s) {
    ASSERT_EQ(s.charge_points(t, kU1, 1000, kNowMs)->code, Code::OK);  // enough for a second time
    ASSERT_EQ(s.deduct_points(t, 1, kU1, 300, kNowMs)->code, Code::OK);
  });
  auto r = check_ok();
  EXPECT_TRUE(has(r, "duplicate_effect", {1, kU1})) << dump(r);
  EXPECT_TRUE(has(r, "points", {kU1})) << dump(r);
}

TEST_F(CheckerTest, ReportsPointsRestoredForCompletedOrder) {
  with<user::UserStore>(DaemonId::USER, [&](Txn& t, user::UserStore& s) {
    ASSERT_EQ(s.restore_points(t, 1, kNowMs)->value, 300);
  });
  auto r = check_ok();
  EXPECT_TRUE(has(r, "points", {1, kU1})) << dump(r);
  EXPECT_FALSE(has(r, "duplicate_effect", {1})) << "one deduction, one restore: " << dump(r);
}

TEST_F(CheckerTest, ReportsCapturedPaymentOfFailedOrder) {
  delete_row(DaemonId::PAYMENT, "payments", 2);  // order 2 was declined
  pay([&](Txn& t, payment::PaymentStore& s) {
    return s.start_payment(t, {.order_id = 2, .amount_cents = 900, .token = "tok_ok"}, kNowMs);
  });
  EXPECT_EQ(pay([&](Txn& t, payment::PaymentStore& s) {
              return s.complete_payment(t, 2, kNowMs);
            }).payment.status,
            payment::PaymentStatus::captured);
  auto r = check_ok();
  EXPECT_TRUE(has(r, "payment", {2})) << dump(r);
}

TEST_F(CheckerTest, ReportsAuthorizationHeldForFailedOrder) {
  delete_row(DaemonId::PAYMENT, "payments", 3);  // order 3's payment was voided
  EXPECT_EQ(pay([&](Txn& t, payment::PaymentStore& s) {
              return s.start_payment(t, {.order_id = 3, .amount_cents = 500, .token = "tok_ok"},
                                     kNowMs);
            }).payment.status,
            payment::PaymentStatus::authorized);
  auto r = check_ok();
  EXPECT_TRUE(has(r, "payment", {3})) << dump(r);
}

TEST_F(CheckerTest, ReportsRefundedPaymentOfCompletedOrder) {
  EXPECT_EQ(pay([&](Txn& t, payment::PaymentStore& s) {
              return s.cancel_payment(t, 1, kNowMs);
            }).payment.status,
            payment::PaymentStatus::refunded);
  auto r = check_ok();
  EXPECT_TRUE(has(r, "payment", {1})) << dump(r);
}

TEST_F(CheckerTest, ReportsCouponRestoredForCompletedOrder) {
  with<coupon::CouponStore>(DaemonId::COUPON, [&](Txn& t, coupon::CouponStore& s) {
    ASSERT_TRUE(s.restore_coupon(t, 1)->restored);
  });
  auto r = check_ok();
  EXPECT_TRUE(has(r, "coupon", {1, kUc1})) << dump(r);
}

TEST_F(CheckerTest, ReportsCouponStillUsedByFailedOrder) {
  // Order 2 failed and gave uc2 back; a late, re-applied useCoupon takes it again.
  delete_row(DaemonId::COUPON, "coupon_usage", 2);
  with<coupon::CouponStore>(DaemonId::COUPON, [&](Txn& t, coupon::CouponStore& s) {
    ASSERT_EQ(s.use_coupon(t, 2, kU2, kUc2, kNowS)->code, Code::OK);
  });
  auto r = check_ok();
  EXPECT_TRUE(has(r, "coupon", {2, kUc2})) << dump(r);
}

TEST_F(CheckerTest, ReportsIssuanceCounterDisagreeingWithIssuedCoupons) {
  delete_row(DaemonId::COUPON, "user_coupons", kUc3);
  auto r = check_ok();
  EXPECT_TRUE(has(r, "coupon", {kCoupon})) << dump(r);
}

TEST_F(CheckerTest, ReportsRankingOfFailedOrder) {
  with<ranking::RankingStore>(DaemonId::RANKING, [&](Txn& t, ranking::RankingStore& s) {
    std::vector<ranking::LineQuantity> lines{{kP1, 1}};
    ASSERT_TRUE(s.record_completed(t, 2, lines, kNowMs).value());
  });
  auto r = check_ok();
  EXPECT_TRUE(has(r, "ranking", {2})) << dump(r);    // the order
  EXPECT_TRUE(has(r, "ranking", {kP1})) << dump(r);  // its units
}

TEST_F(CheckerTest, ReportsCompletedOrderRankingNeverCounted) {
  delete_row(DaemonId::RANKING, "processed_orders", 8);
  auto r = check_ok();
  EXPECT_TRUE(has(r, "ranking", {8})) << dump(r);
}

TEST_F(CheckerTest, ReportsOutboxBacklogUntilTheReceiverAppliedIt) {
  raw(DaemonId::ORDER, [&](Txn& t) {
    auto outbox = storage::Outbox::open(t);
    ASSERT_TRUE(outbox);
    auto seq = outbox->next_seq(t, runtime::index(DaemonId::RANKING));
    ASSERT_TRUE(seq);
    const std::byte message[8]{};
    ASSERT_FALSE(outbox->put(t, runtime::index(DaemonId::RANKING), *seq, message));
  });
  auto r = check_ok();
  EXPECT_TRUE(has(r, "backlog", {})) << dump(r);
  EXPECT_EQ(r.outbox_pending, 1u);
  EXPECT_FALSE(wait_quiet(options_, 60));

  raw(DaemonId::RANKING, [&](Txn& t) {
    auto inbox = storage::Inbox::open(t);
    ASSERT_TRUE(inbox);
    ASSERT_FALSE(inbox->set_mark(t, runtime::index(DaemonId::ORDER), 1));
  });
  r = check_ok();
  EXPECT_TRUE(r.ok()) << dump(r);
  EXPECT_EQ(r.outbox_pending, 0u);
}

TEST_F(CheckerTest, ReportsRingRecordsNotAcknowledged) {
  std::filesystem::create_directories(options_.runtime_dir);
  auto transport = runtime::new_shm_transport(options_.runtime_dir);
  ASSERT_TRUE(transport) << transport.error().message();
  ASSERT_FALSE(runtime::publish_shm_transport(options_.runtime_dir, *transport));
  const auto& prefix = transport->prefix;
  std::vector<std::string> names;
  std::vector<ipc::Ring> rings;
  std::size_t supervisor_to_order = 0;
  for (const auto& c : runtime::channels()) {
    names.push_back(runtime::ring_name(prefix, c.from, c.to));
    auto ring = ipc::Ring::create(names.back(), 4096);
    ASSERT_TRUE(ring) << ring.error().message();
    if (c.from == DaemonId::SUPERVISOR && c.to == DaemonId::ORDER) {
      supervisor_to_order = rings.size();
    }
    rings.push_back(std::move(*ring));
  }
  auto r = check_ok();
  EXPECT_TRUE(r.rings_checked);
  EXPECT_TRUE(r.ok()) << dump(r);

  const std::byte payload[8]{};
  ASSERT_TRUE(rings.at(supervisor_to_order).try_push(payload, 1));
  r = check_ok();
  EXPECT_EQ(r.ring_backlog, 1u);
  EXPECT_TRUE(has(r, "backlog", {})) << dump(r);
  for (const auto& n : names) ipc::ShmSegment::unlink(n);
  runtime::unpublish_shm_transport(options_.runtime_dir);
}

TEST_F(CheckerTest, MissingEnvironmentIsAnError) {
  options_.state_dir = base_ / "nowhere";
  auto r = check(options_);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("nowhere"), std::string::npos) << r.error();
  EXPECT_FALSE(check_stock_nonnegative(options_));
  // Fails at once, not after the timeout: a wrong directory never becomes quiet.
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(wait_quiet(options_, 30000));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

// --- the real system --------------------------------------------------------

TEST(CheckerSystemTest, RealSystemAfterThirtyOrdersIsConsistent) {
  test::System sys;
  ASSERT_TRUE(sys.start());
  std::vector<std::int64_t> products;
  for (int i = 0; i < 3; ++i) {
    products.push_back(sys.create_product("item" + std::to_string(i), 1000 + 100 * i, 50));
    ASSERT_GT(products.back(), 0);
  }
  std::vector<std::int64_t> users, user_coupons;
  auto c = sys.admin("POST", "/v1/coupons",
                     {{"name", "150 off"},
                      {"discount_type", "fixed"},
                      {"discount_value", 150},
                      {"total_quantity", 10}});
  ASSERT_EQ(c.status, 201) << c.body.dump();
  const auto coupon_id = c.body["id"].get<std::int64_t>();
  for (int i = 0; i < 4; ++i) {
    users.push_back(sys.create_user("buyer" + std::to_string(i)));
    ASSERT_GT(users.back(), 0);
    auto charged = sys.admin("POST", "/v1/users/" + std::to_string(users.back()) + "/points/charge",
                             {{"amount", 1000}});
    ASSERT_EQ(charged.status, 200);
    auto issued = sys.admin("POST", "/v1/coupons/" + std::to_string(coupon_id) + "/issue",
                            {{"user_id", users.back()}});
    ASSERT_EQ(issued.status, 201) << issued.body.dump();
    user_coupons.push_back(issued.body["user_coupon_id"].get<std::int64_t>());
  }

  // 30 orders: 20 that complete, 10 that fail (declined, capture failure, out of stock).
  Options options;
  options.state_dir = sys.state_dir();
  options.runtime_dir = sys.runtime_dir();
  for (int i = 0; i < 30; ++i) {
    const int u = i % 4;
    std::string token = "tok_ok";
    std::int64_t quantity = 1 + i % 2;
    if (i % 10 == 3) token = "tok_decline";
    if (i % 10 == 6) token = "tok_capture_fail";
    if (i % 10 == 9) quantity = 1000;  // out of stock
    test::json body = {{"user_id", users[u]},
                       {"items", {{{"product_id", products[i % 3]}, {"quantity", quantity}}}},
                       {"points", i % 3 == 0 ? 50 : 0},
                       {"shipping", 100},
                       {"payment", {{"token", token}, {"installments", 1}}}};
    // Each user's coupon goes with their first order only.
    if (i < 4) body["user_coupon_id"] = user_coupons[u];
    auto r = sys.api("POST", "/v1/orders", body);
    ASSERT_EQ(r.status, 202) << r.body.dump();
    options.accepted_order_ids.push_back(r.body["order_id"].get<std::uint64_t>());
  }

  auto waited = wait_quiet(options, 60000);
  ASSERT_TRUE(waited) << waited.error();
  auto r = check(options);
  ASSERT_TRUE(r) << r.error();
  EXPECT_TRUE(r->ok()) << dump(*r);
  EXPECT_EQ(r->orders, 30u);
  EXPECT_EQ(r->completed, 21u);  // i % 10 in {0,1,2,4,5,7,8}
  EXPECT_EQ(r->failed, 9u);
  EXPECT_EQ(r->pending, 0u);
  EXPECT_EQ(r->sagas, 30u);
  EXPECT_EQ(r->products, 3u);
  EXPECT_EQ(r->users, 4u);
  EXPECT_EQ(r->user_coupons, 4u);
  EXPECT_EQ(r->payments, 27u);  // the out-of-stock orders never reach the payment step
  EXPECT_EQ(r->outbox_pending, 0u);
  EXPECT_EQ(r->ring_backlog, 0u);
  EXPECT_TRUE(r->rings_checked);

  // Stopped, the state still checks out (the rings are gone).
  ASSERT_TRUE(sys.stop());
  r = check(options);
  ASSERT_TRUE(r) << r.error();
  EXPECT_TRUE(r->ok()) << dump(*r);
  EXPECT_EQ(r->completed, 21u);
}

}  // namespace
}  // namespace ringmart::checker
