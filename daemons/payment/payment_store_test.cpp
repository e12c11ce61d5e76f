#include "daemons/payment/payment_store.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "daemons/payment/payment_gateway.hpp"
#include "storage/store_test.hpp"

namespace ringmart::payment {
namespace {

using storage::Txn;
using Action = PaymentStep::Action;

constexpr std::int64_t kT0 = 1'700'000'000'000;  // fixed "now" (Unix ms)

PgResponse pg_answer(PgOutcome outcome, std::string transaction_id = {}) {
  PgResponse r;
  r.outcome = outcome;
  r.transaction_id = std::move(transaction_id);
  return r;
}

class PaymentStoreTest : public storage::testing::StoreTest<PaymentStore> {
 protected:
  /// Runs a command like main.cpp with a zero-latency gateway: one write
  /// transaction, the gateway called when the step asks for it.
  template <class F>
  PaymentStep run(F&& command) {
    auto txn = Txn::begin_write(*env_);
    EXPECT_TRUE(txn);
    auto step = command(*txn);
    EXPECT_TRUE(step);
    PaymentStep out = *step;
    if (out.action == Action::call_gateway) {
      ++gateway_calls_;
      auto answer = call_gateway(gateway_, out);
      auto fin =
          store_.apply_gateway_answer(*txn, out.payment.order_id, out.operation, answer, kT0 + 1);
      EXPECT_TRUE(fin);
      out = *fin;
    }
    EXPECT_FALSE(txn->commit());
    return out;
  }
  PaymentStep start(std::uint64_t order_id, std::int64_t amount, const std::string& token) {
    return run([&](Txn& t) {
      return store_.start_payment(
          t, {.order_id = order_id, .amount_cents = amount, .token = token, .installments = 3},
          kT0);
    });
  }
  PaymentStep complete(std::uint64_t order_id) {
    return run([&](Txn& t) { return store_.complete_payment(t, order_id, kT0); });
  }
  PaymentStep cancel(std::uint64_t order_id) {
    return run([&](Txn& t) { return store_.cancel_payment(t, order_id, kT0); });
  }
  /// One command step without calling the gateway (a slow gateway's first half).
  template <class F>
  PaymentStep begin(F&& command) {
    auto txn = Txn::begin_write(*env_);
    EXPECT_TRUE(txn);
    auto step = command(*txn);
    EXPECT_TRUE(step);
    EXPECT_FALSE(txn->commit());
    return *step;
  }
  PaymentStep answer(std::uint64_t order_id, PgOperation op, const PgResponse& a) {
    return begin([&](Txn& t) { return store_.apply_gateway_answer(t, order_id, op, a, kT0 + 2); });
  }
  std::optional<Payment> get(std::uint64_t order_id) {
    auto txn = Txn::begin_read(*env_);
    EXPECT_TRUE(txn);
    return store_.payment(*txn, order_id);
  }
  PaymentStatus status(std::uint64_t order_id) {
    auto p = get(order_id);
    EXPECT_TRUE(p);
    return p ? p->status : PaymentStatus::authorizing;
  }

  SimulatedPaymentGateway gateway_{0};
  int gateway_calls_ = 0;
};

TEST_F(PaymentStoreTest, StartPaymentAuthorizesThroughTheGateway) {
  auto s = start(42, 11609, "tok_ok");
  EXPECT_EQ(s.action, Action::reply);
  EXPECT_EQ(s.code, msg::Code::OK);
  EXPECT_EQ(gateway_calls_, 1);
  auto p = get(42);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->status, PaymentStatus::authorized);
  EXPECT_EQ(p->amount_cents, 11609);
  EXPECT_EQ(p->token, "tok_ok");
  EXPECT_EQ(p->installments, 3u);
  EXPECT_EQ(p->pg_transaction_id, "sim-42");
  EXPECT_EQ(p->attempts, 1u);
  EXPECT_EQ(p->created_at_ms, kT0);
  EXPECT_EQ(p->updated_at_ms, kT0 + 1);
}

TEST_F(PaymentStoreTest, StartPaymentRetryAnswersTheSameWithoutCallingAgain) {
  ASSERT_EQ(start(42, 500, "tok_ok").code, msg::Code::OK);
  auto again = start(42, 999, "tok_decline");
  EXPECT_EQ(again.action, Action::reply);
  EXPECT_EQ(again.code, msg::Code::OK);
  EXPECT_EQ(gateway_calls_, 1);
  EXPECT_EQ(get(42)->amount_cents, 500);
  EXPECT_EQ(get(42)->attempts, 1u);
}

TEST_F(PaymentStoreTest, ZeroAmountIsAuthorizedWithoutTheGateway) {
  auto s = start(42, 0, "tok_decline");
  EXPECT_EQ(s.code, msg::Code::OK);
  EXPECT_EQ(gateway_calls_, 0);
  EXPECT_EQ(status(42), PaymentStatus::authorized);
  EXPECT_EQ(complete(42).code, msg::Code::OK);
  EXPECT_EQ(status(42), PaymentStatus::captured);
  EXPECT_EQ(cancel(42).code, msg::Code::OK);
  EXPECT_EQ(status(42), PaymentStatus::refunded);
  EXPECT_EQ(gateway_calls_, 0);
}

TEST_F(PaymentStoreTest, NegativeAmountIsRejectedWithoutRecord) {
  auto s = start(42, -1, "tok_ok");
  EXPECT_EQ(s.code, msg::Code::INVALID_ARGUMENT);
  EXPECT_EQ(gateway_calls_, 0);
  EXPECT_FALSE(get(42));
}

TEST_F(PaymentStoreTest, DeclinedTokensAreRecordedAndAnsweredAgain) {
  auto s = start(42, 1000, "tok_decline");
  EXPECT_EQ(s.action, Action::reply);
  EXPECT_EQ(s.code, msg::Code::PAYMENT_DECLINED);
  EXPECT_FALSE(s.detail.empty());
  EXPECT_EQ(status(42), PaymentStatus::declined);
  auto again = start(42, 1000, "tok_decline");
  EXPECT_EQ(again.code, msg::Code::PAYMENT_DECLINED);
  EXPECT_EQ(gateway_calls_, 1);

  EXPECT_EQ(start(43, 1000, "tok_whatever").code, msg::Code::PAYMENT_DECLINED);
  EXPECT_EQ(status(43), PaymentStatus::declined);

  // A declined payment cannot be captured; cancelling it has nothing to undo.
  EXPECT_EQ(complete(42).code, msg::Code::PAYMENT_CAPTURE_FAILED);
  EXPECT_EQ(status(42), PaymentStatus::declined);
  EXPECT_EQ(cancel(42).code, msg::Code::OK);
  EXPECT_EQ(status(42), PaymentStatus::declined);
  EXPECT_EQ(gateway_calls_, 2);
}

TEST_F(PaymentStoreTest, TimeoutTokenSendsNoReplyAndIsReauthorizedOnRetry) {
  auto s = start(42, 1000, "tok_timeout");
  EXPECT_EQ(s.action, Action::none);
  EXPECT_EQ(status(42), PaymentStatus::authorizing);
  auto retry = start(42, 1000, "tok_timeout");  // e.g. after a restart
  EXPECT_EQ(retry.action, Action::none);
  EXPECT_EQ(gateway_calls_, 2);
  EXPECT_EQ(get(42)->attempts, 2u);
  // The saga times out and cancels: the authorization is voided.
  EXPECT_EQ(cancel(42).code, msg::Code::OK);
  EXPECT_EQ(status(42), PaymentStatus::voided);
}

TEST_F(PaymentStoreTest, AuthorizingPaymentIsAuthorizedAgainWhenTheAnswerWasLost) {
  auto first = begin([&](Txn& t) {
    return store_.start_payment(
        t, {.order_id = 42, .amount_cents = 700, .token = "tok_ok", .installments = 1}, kT0);
  });
  ASSERT_EQ(first.action, Action::call_gateway);
  EXPECT_EQ(first.operation, PgOperation::authorize);
  EXPECT_EQ(status(42), PaymentStatus::authorizing);
  // The daemon restarted before the answer was applied; the saga retries.
  auto retry = start(42, 700, "tok_ok");
  EXPECT_EQ(retry.code, msg::Code::OK);
  EXPECT_EQ(status(42), PaymentStatus::authorized);
  EXPECT_EQ(get(42)->attempts, 2u);
}

TEST_F(PaymentStoreTest, CompletePaymentCapturesOnce) {
  start(42, 1000, "tok_ok");
  auto s = complete(42);
  EXPECT_EQ(s.code, msg::Code::OK);
  EXPECT_EQ(status(42), PaymentStatus::captured);
  EXPECT_EQ(gateway_calls_, 2);
  EXPECT_EQ(complete(42).code, msg::Code::OK);
  EXPECT_EQ(gateway_calls_, 2);
  EXPECT_EQ(start(42, 1000, "tok_ok").code, msg::Code::OK);  // late retry of the start
  EXPECT_EQ(status(42), PaymentStatus::captured);
}

TEST_F(PaymentStoreTest, CaptureFailureKeepsTheAuthorizationUntilCancelled) {
  ASSERT_EQ(start(42, 1000, "tok_capture_fail").code, msg::Code::OK);
  auto s = complete(42);
  EXPECT_EQ(s.code, msg::Code::PAYMENT_CAPTURE_FAILED);
  EXPECT_EQ(status(42), PaymentStatus::capture_failed);
  EXPECT_EQ(get(42)->pg_transaction_id, "sim-42");
  EXPECT_EQ(complete(42).code, msg::Code::PAYMENT_CAPTURE_FAILED);
  EXPECT_EQ(gateway_calls_, 2);
  EXPECT_EQ(cancel(42).code, msg::Code::OK);
  EXPECT_EQ(status(42), PaymentStatus::voided);
}

TEST_F(PaymentStoreTest, CompletePaymentOfUnknownOrUnauthorizedPaymentChangesNothing) {
  EXPECT_EQ(complete(42).code, msg::Code::ORDER_NOT_FOUND);
  EXPECT_FALSE(get(42));
  start(43, 1000, "tok_timeout");
  EXPECT_EQ(complete(43).code, msg::Code::PAYMENT_CAPTURE_FAILED);
  EXPECT_EQ(status(43), PaymentStatus::authorizing);
  EXPECT_EQ(gateway_calls_, 1);
}

TEST_F(PaymentStoreTest, CancelVoidsAnAuthorizationAndRefundsACapture) {
  start(42, 1000, "tok_ok");
  EXPECT_EQ(cancel(42).code, msg::Code::OK);
  EXPECT_EQ(status(42), PaymentStatus::voided);
  EXPECT_EQ(cancel(42).code, msg::Code::OK);  // repeat: nothing more to undo
  EXPECT_EQ(gateway_calls_, 2);
  EXPECT_EQ(complete(42).code, msg::Code::PAYMENT_CAPTURE_FAILED);
  EXPECT_EQ(status(42), PaymentStatus::voided);

  start(43, 1000, "tok_ok");
  complete(43);
  EXPECT_EQ(cancel(43).code, msg::Code::OK);
  EXPECT_EQ(status(43), PaymentStatus::refunded);
  EXPECT_EQ(cancel(43).code, msg::Code::OK);
  EXPECT_EQ(status(43), PaymentStatus::refunded);
  EXPECT_EQ(gateway_calls_, 5);
}

TEST_F(PaymentStoreTest, CancelBeforeStartLeavesTombstoneSoTheLateStartHasNoEffect) {
  auto c = cancel(42);
  EXPECT_EQ(c.code, msg::Code::OK);
  EXPECT_EQ(gateway_calls_, 0);
  auto p = get(42);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->status, PaymentStatus::voided);
  EXPECT_EQ(p->amount_cents, 0);

  auto late = start(42, 1000, "tok_ok");
  EXPECT_EQ(late.action, Action::reply);
  EXPECT_EQ(late.code, msg::Code::PAYMENT_DECLINED);
  EXPECT_EQ(gateway_calls_, 0);
  EXPECT_EQ(status(42), PaymentStatus::voided);
  EXPECT_EQ(get(42)->amount_cents, 0);
}

TEST_F(PaymentStoreTest, LateApprovalOfACancelledAuthorizationIsStale) {
  auto auth = begin([&](Txn& t) {
    return store_.start_payment(
        t, {.order_id = 42, .amount_cents = 1000, .token = "tok_ok", .installments = 1}, kT0);
  });
  ASSERT_EQ(auth.action, Action::call_gateway);
  auto void_step = begin([&](Txn& t) { return store_.cancel_payment(t, 42, kT0); });
  ASSERT_EQ(void_step.action, Action::call_gateway);
  EXPECT_EQ(void_step.operation, PgOperation::void_authorization);
  auto voided = answer(42, PgOperation::void_authorization, pg_answer(PgOutcome::approved));
  EXPECT_EQ(voided.action, Action::reply);
  EXPECT_EQ(voided.code, msg::Code::OK);

  auto late = answer(42, PgOperation::authorize, pg_answer(PgOutcome::approved, "sim-42"));
  EXPECT_EQ(late.action, Action::none);
  EXPECT_TRUE(late.stale);
  EXPECT_EQ(status(42), PaymentStatus::voided);
  EXPECT_EQ(get(42)->pg_transaction_id, "");
}

TEST_F(PaymentStoreTest, RefusedVoidKeepsTheStateForTheRetriedCancel) {
  start(42, 1000, "tok_ok");
  auto v = begin([&](Txn& t) { return store_.cancel_payment(t, 42, kT0); });
  ASSERT_EQ(v.action, Action::call_gateway);
  auto refused = answer(42, PgOperation::void_authorization, pg_answer(PgOutcome::failed));
  EXPECT_EQ(refused.action, Action::none);
  EXPECT_FALSE(refused.stale);
  EXPECT_EQ(status(42), PaymentStatus::authorized);
  auto no_answer = answer(42, PgOperation::void_authorization, pg_answer(PgOutcome::no_answer));
  EXPECT_EQ(no_answer.action, Action::none);
  EXPECT_EQ(status(42), PaymentStatus::authorized);
  EXPECT_EQ(cancel(42).code, msg::Code::OK);
  EXPECT_EQ(status(42), PaymentStatus::voided);
}

TEST_F(PaymentStoreTest, CaptureWithoutAnswerStaysAuthorized) {
  start(42, 1000, "tok_ok");
  auto c = begin([&](Txn& t) { return store_.complete_payment(t, 42, kT0); });
  ASSERT_EQ(c.action, Action::call_gateway);
  EXPECT_EQ(c.operation, PgOperation::capture);
  EXPECT_EQ(c.payment.pg_transaction_id, "sim-42");
  auto none = answer(42, PgOperation::capture, pg_answer(PgOutcome::no_answer));
  EXPECT_EQ(none.action, Action::none);
  EXPECT_EQ(status(42), PaymentStatus::authorized);
  EXPECT_EQ(complete(42).code, msg::Code::OK);
  EXPECT_EQ(status(42), PaymentStatus::captured);
}

TEST_F(PaymentStoreTest, AnswerForUnknownPaymentIsStale) {
  auto s = answer(42, PgOperation::authorize, pg_answer(PgOutcome::approved));
  EXPECT_EQ(s.action, Action::none);
  EXPECT_TRUE(s.stale);
  EXPECT_FALSE(get(42));
}

TEST_F(PaymentStoreTest, ReadOnlyQueriesSeeCommittedData) {
  start(42, 1000, "tok_capture_fail");
  complete(42);
  auto q = PaymentQueries::open(dir_.path(), 64ull << 20);
  ASSERT_TRUE(q) << q.error().message();
  auto p = q->payment(42);
  ASSERT_TRUE(p);
  ASSERT_TRUE(*p);
  EXPECT_STREQ(payment_status_name((*p)->status), "CAPTURE_FAILED");
  EXPECT_EQ((*p)->amount_cents, 1000);
  EXPECT_EQ((*p)->installments, 3u);
  auto missing = q->payment(43);
  ASSERT_TRUE(missing);
  EXPECT_FALSE(*missing);
  cancel(42);
  EXPECT_EQ((**q->payment(42)).status, PaymentStatus::voided);
}

TEST(PaymentQueriesOpen, FailsOnMissingEnvironment) {
  EXPECT_FALSE(PaymentQueries::open("/tmp/rm-payment-does-not-exist", 1 << 20));
}

TEST(SimulatedPaymentGateway, AnswersPerTokenWithTheConfiguredLatency) {
  SimulatedPaymentGateway pg(250);
  auto req = [](std::string_view token) {
    return PgRequest{.order_id = 9,
                     .amount_cents = 100,
                     .token = token,
                     .installments = 1,
                     .transaction_id = "sim-9"};
  };
  auto ok = pg.authorize(req("tok_ok"));
  EXPECT_EQ(ok.outcome, PgOutcome::approved);
  EXPECT_EQ(ok.transaction_id, "sim-9");
  EXPECT_EQ(ok.latency_ms, 250);
  EXPECT_EQ(pg.capture(req("tok_ok")).outcome, PgOutcome::approved);
  EXPECT_EQ(pg.authorize(req("tok_decline")).outcome, PgOutcome::declined);
  EXPECT_EQ(pg.authorize(req("tok_timeout")).outcome, PgOutcome::no_answer);
  EXPECT_EQ(pg.authorize(req("tok_nope")).outcome, PgOutcome::declined);
  EXPECT_EQ(pg.authorize(req("tok_capture_fail")).outcome, PgOutcome::approved);
  EXPECT_EQ(pg.capture(req("tok_capture_fail")).outcome, PgOutcome::failed);
  EXPECT_EQ(pg.void_authorization(req("tok_capture_fail")).outcome, PgOutcome::approved);
  EXPECT_EQ(pg.refund(req("tok_ok")).outcome, PgOutcome::approved);
  EXPECT_EQ(SimulatedPaymentGateway(0).authorize(req("tok_ok")).latency_ms, 0);
}

TEST(PaymentNames, SpellTheApiValues) {
  EXPECT_STREQ(payment_status_name(PaymentStatus::authorizing), "AUTHORIZING");
  EXPECT_STREQ(payment_status_name(PaymentStatus::refunded), "REFUNDED");
  EXPECT_STREQ(payment_status_name(PaymentStatus::declined), "DECLINED");
  EXPECT_EQ(command_of(PgOperation::authorize), PaymentCommand::start);
  EXPECT_EQ(command_of(PgOperation::capture), PaymentCommand::complete);
  EXPECT_EQ(command_of(PgOperation::refund), PaymentCommand::cancel);
  EXPECT_EQ(command_of(PgOperation::void_authorization), PaymentCommand::cancel);
}

TEST_F(PaymentStoreTest, ScansEveryPaymentInOrderIdOrder) {
  start(9, 100, "tok_ok");
  complete(9);
  start(4, 200, "tok_decline");
  cancel(6);  // tombstone
  auto txn = Txn::begin_read(*env_);
  ASSERT_TRUE(txn);
  std::vector<std::pair<std::uint64_t, PaymentStatus>> seen;
  store_.scan(*txn, [&](const Payment& p) {
    seen.emplace_back(p.order_id, p.status);
    return true;
  });
  EXPECT_EQ(
      seen,
      (std::vector<std::pair<std::uint64_t, PaymentStatus>>{
          {4, PaymentStatus::declined}, {6, PaymentStatus::voided}, {9, PaymentStatus::captured}}));
}

}  // namespace
}  // namespace ringmart::payment
