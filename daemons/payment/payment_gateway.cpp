#include "daemons/payment/payment_gateway.hpp"

namespace ringmart::payment {

const char* outcome_name(PgOutcome outcome) {
  switch (outcome) {
    case PgOutcome::approved:
      return "approved";
    case PgOutcome::declined:
      return "declined";
    case PgOutcome::failed:
      return "failed";
    case PgOutcome::no_answer:
      return "no_answer";
  }
  return "unknown";
}

PgResponse SimulatedPaymentGateway::answer(PgOutcome outcome, std::string detail) const {
  PgResponse r;
  r.outcome = outcome;
  r.latency_ms = latency_ms_;
  r.detail = std::move(detail);
  return r;
}

PgResponse SimulatedPaymentGateway::authorize(const PgRequest& r) {
  if (r.token == "tok_ok" || r.token == "tok_capture_fail") {
    auto a = answer(PgOutcome::approved);
    // Derived from the order id (the idempotency key): a re-authorization
    // after a restart gets the same id, as from a real PG.
    a.transaction_id = "sim-" + std::to_string(r.order_id);
    return a;
  }
  if (r.token == "tok_timeout") return answer(PgOutcome::no_answer);
  if (r.token == "tok_decline") return answer(PgOutcome::declined, "card declined");
  return answer(PgOutcome::declined, "unknown payment token");
}

PgResponse SimulatedPaymentGateway::capture(const PgRequest& r) {
  if (r.token == "tok_capture_fail") return answer(PgOutcome::failed, "capture refused");
  return answer(PgOutcome::approved);
}

PgResponse SimulatedPaymentGateway::void_authorization(const PgRequest&) {
  return answer(PgOutcome::approved);
}

PgResponse SimulatedPaymentGateway::refund(const PgRequest&) { return answer(PgOutcome::approved); }

}  // namespace ringmart::payment
