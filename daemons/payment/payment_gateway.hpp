// ringmart::payment — the payment-gateway (PG) adapter interface and the
// built-in simulated gateway.
//
// The payment daemon talks to a PG only through PaymentGateway: authorize a
// card payment, capture it, void an authorization, refund a capture. Each call
// returns an outcome plus the PG's transaction id and how long the answer takes
// (`latency_ms`). Calls never block: the daemon applies an answer with a
// latency once that time has passed, on its loop (see main.cpp), so one slow
// PG answer does not stall the other orders.
//
// Thread-safety: implementations are used from the daemon's loop thread only.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ringmart::payment {

enum class PgOutcome : std::uint8_t {
  approved,   ///< the operation happened
  declined,   ///< refused by the issuer (authorize) — a business answer
  failed,     ///< the operation did not happen (e.g. capture refused)
  no_answer,  ///< the PG never answers: the outcome is unknown
};

/// "approved", "declined", "failed", "no_answer".
const char* outcome_name(PgOutcome outcome);

/// What the PG is asked about: one order's payment.
struct PgRequest {
  std::uint64_t order_id = 0;     ///< also the idempotency key sent to the PG
  std::int64_t amount_cents = 0;  ///< > 0
  std::string_view token;         ///< the card token the storefront obtained
  std::uint32_t installments = 1;
  std::string_view transaction_id;  ///< the authorization's id (capture/void/refund), may be empty
};

struct PgResponse {
  PgOutcome outcome = PgOutcome::no_answer;
  std::string transaction_id;   ///< set by an approved authorization
  std::int64_t latency_ms = 0;  ///< when the answer is known, relative to the call
  std::string detail;           ///< the PG's text for a decline/failure
};

/// The adapter every PG integration implements.
class PaymentGateway {
 public:
  virtual ~PaymentGateway() = default;
  /// Reserves `amount_cents` on the card (an authorization / hold).
  virtual PgResponse authorize(const PgRequest& r) = 0;
  /// Captures a held authorization (the money moves).
  virtual PgResponse capture(const PgRequest& r) = 0;
  /// Releases an authorization that was not captured.
  virtual PgResponse void_authorization(const PgRequest& r) = 0;
  /// Gives back a captured amount.
  virtual PgResponse refund(const PgRequest& r) = 0;
};

/// A deterministic stand-in for a real PG (development, tests, load runs).
/// Tokens (docs/domains.md): `tok_ok` approves everything; `tok_decline` is
/// declined at authorization; `tok_capture_fail` authorizes but fails at
/// capture; `tok_timeout` never answers an authorization; any other token is
/// declined. Void and refund are always approved. Every answer takes
/// `latency_ms` (config `[payment] latency_ms`, default 0).
class SimulatedPaymentGateway final : public PaymentGateway {
 public:
  explicit SimulatedPaymentGateway(std::int64_t latency_ms) : latency_ms_(latency_ms) {}
  PgResponse authorize(const PgRequest& r) override;
  PgResponse capture(const PgRequest& r) override;
  PgResponse void_authorization(const PgRequest& r) override;
  PgResponse refund(const PgRequest& r) override;

 private:
  PgResponse answer(PgOutcome outcome, std::string detail = {}) const;
  std::int64_t latency_ms_;
};

}  // namespace ringmart::payment
