// ringmart::payment — one payment per order: authorize (startPayment),
// capture (completePayment), void or refund (cancelPayment), through a
// payment-gateway adapter (payment_gateway.hpp).
//
// A command is two-phase so a slow gateway never holds the daemon's
// transaction: the store's command method decides what to do and records the
// intent (e.g. AUTHORIZING), returning a PaymentStep; when the step asks for a
// gateway call, the daemon calls the PaymentGateway and hands the answer to
// apply_gateway_answer() — in the same transaction when the answer is
// immediate, in a later one after the simulated latency (main.cpp).
//
// Behaviour contract: docs/domains.md ("payment"). The payment row is the
// per-order idempotency record: a retry gets the same answer without a
// second gateway call, except an AUTHORIZING payment (its answer was lost,
// e.g. by a restart), which is authorized again. cancelPayment on an unknown
// order leaves a VOIDED tombstone, so a late startPayment has no effect.
//
// Errors: business outcomes are msg::Code values in PaymentStep; the
// std::error_code of a std::expected is an LMDB failure (MDB_MAP_FULL) after
// which the caller aborts the transaction.
// Thread-safety: a PaymentStore holds only table handles and may be shared by
// threads, each with its own Txn; PaymentQueries may be used from several
// threads at once (each call runs its own read transaction).
#pragma once

#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>

#include "daemons/payment/payment_gateway.hpp"
#include "schemas/envelope.capnp.h"
#include "storage/lmdb.hpp"

namespace ringmart::payment {

enum class PaymentStatus : std::uint8_t {
  authorizing,     ///< authorization asked, answer not (yet) known
  authorized,      ///< amount held on the card
  captured,        ///< money taken
  voided,          ///< authorization released (also the cancel-first tombstone)
  refunded,        ///< capture given back
  declined,        ///< authorization refused
  capture_failed,  ///< capture refused; the authorization is still held
};

/// "AUTHORIZING", "AUTHORIZED", "CAPTURED", "VOIDED", "REFUNDED", "DECLINED",
/// "CAPTURE_FAILED" (the API's spelling).
const char* payment_status_name(PaymentStatus status);

/// The payment of one order (GET /v1/payments/{order_id}).
struct Payment {
  std::uint64_t order_id = 0;
  std::int64_t amount_cents = 0;  ///< what is authorized/captured: total - discount - points
  std::string token;
  std::uint32_t installments = 1;
  PaymentStatus status = PaymentStatus::authorizing;
  std::string pg_transaction_id;   ///< from the gateway's authorization; "" when none
  std::uint32_t attempts = 0;      ///< gateway calls made for this payment
  std::int64_t created_at_ms = 0;  ///< Unix ms
  std::int64_t updated_at_ms = 0;  ///< Unix ms
  std::string detail;              ///< the gateway's last decline/failure text
};

/// The saga command a step belongs to, i.e. which reply it gets:
/// start -> paymentStarted, complete -> paymentCompleted, cancel -> paymentCancelled.
enum class PaymentCommand : std::uint8_t { start, complete, cancel };

enum class PgOperation : std::uint8_t { authorize, capture, void_authorization, refund };
const char* operation_name(PgOperation op);
/// The command whose reply a gateway operation produces.
PaymentCommand command_of(PgOperation op);

/// What the daemon does next for a payment command or gateway answer.
struct PaymentStep {
  enum class Action : std::uint8_t {
    reply,         ///< send `code`/`detail` as the command's reply
    call_gateway,  ///< call the gateway for `operation`, then apply_gateway_answer()
    none,          ///< send nothing (the outcome is unknown; the saga times out or retries)
  };
  Action action = Action::reply;
  msg::Code code = msg::Code::OK;
  std::string detail;
  PgOperation operation = PgOperation::authorize;
  Payment payment;  ///< the payment after this step (what a gateway call is about)
  /// apply_gateway_answer only: the payment moved on while the gateway was
  /// answering (e.g. voided during a slow authorization); nothing changed. An
  /// approved stale authorization/capture should be voided/refunded at the PG.
  bool stale = false;
};

/// Arguments of startPayment (msg::StartPayment).
struct StartPaymentArgs {
  std::uint64_t order_id = 0;
  std::int64_t amount_cents = 0;  ///< >= 0; 0 (all paid by points/coupon) skips the gateway
  std::string token;
  std::uint32_t installments = 1;
};

/// The gateway request for `p` (views into `p`: keep it alive during the call).
PgRequest pg_request(const Payment& p);
/// Calls `pg` for a call_gateway step.
PgResponse call_gateway(PaymentGateway& pg, const PaymentStep& step);

class PaymentStore {
 public:
  /// Opens the table "payments" (created with a write txn; must exist with a
  /// read txn). Handles opened in a read txn survive only if it is committed.
  /// Errors: MDB_NOTFOUND, MDB_DBS_FULL.
  static std::expected<PaymentStore, std::error_code> open(storage::Txn& txn);
  PaymentStore() = default;

  /// startPayment. New payment: amount 0 -> AUTHORIZED, reply ok; otherwise
  /// AUTHORIZING + call_gateway(authorize). Negative amount: reply
  /// `invalidArgument`, nothing stored. Existing: AUTHORIZING -> authorize
  /// again; AUTHORIZED/CAPTURED/CAPTURE_FAILED -> reply ok; DECLINED -> reply
  /// `paymentDeclined`; VOIDED/REFUNDED (cancelled) -> reply `paymentDeclined`
  /// with no effect. `now_ms`: Unix ms.
  std::expected<PaymentStep, std::error_code> start_payment(storage::Txn& txn,
                                                            const StartPaymentArgs& a,
                                                            std::int64_t now_ms) const;

  /// completePayment. AUTHORIZED -> call_gateway(capture) (amount 0: CAPTURED
  /// at once); CAPTURED -> reply ok; CAPTURE_FAILED -> reply
  /// `paymentCaptureFailed`; any other state -> reply `paymentCaptureFailed`
  /// with no change; unknown order -> reply `orderNotFound`.
  std::expected<PaymentStep, std::error_code> complete_payment(storage::Txn& txn,
                                                               std::uint64_t order_id,
                                                               std::int64_t now_ms) const;

  /// cancelPayment (compensation; its answer is always ok once done).
  /// AUTHORIZING/AUTHORIZED/CAPTURE_FAILED -> call_gateway(void);
  /// CAPTURED -> call_gateway(refund); amount 0 skips the gateway;
  /// VOIDED/REFUNDED/DECLINED -> reply ok, nothing to undo; unknown order ->
  /// VOIDED tombstone, reply ok.
  std::expected<PaymentStep, std::error_code> cancel_payment(storage::Txn& txn,
                                                             std::uint64_t order_id,
                                                             std::int64_t now_ms) const;

  /// Applies the gateway's answer to `op` for `order_id`:
  /// authorize: approved -> AUTHORIZED + ok; declined/failed -> DECLINED +
  ///   `paymentDeclined`; no_answer -> stays AUTHORIZING, action none.
  /// capture: approved -> CAPTURED + ok; declined/failed -> CAPTURE_FAILED +
  ///   `paymentCaptureFailed`; no_answer -> stays AUTHORIZED, none.
  /// void/refund: approved -> VOIDED/REFUNDED + ok; otherwise no change,
  ///   none (the saga retries the cancel).
  /// When the payment is no longer in the state the call was made from:
  /// no change, action none, `stale` set.
  std::expected<PaymentStep, std::error_code> apply_gateway_answer(storage::Txn& txn,
                                                                   std::uint64_t order_id,
                                                                   PgOperation op,
                                                                   const PgResponse& answer,
                                                                   std::int64_t now_ms) const;

  std::optional<Payment> payment(storage::Txn& txn, std::uint64_t order_id) const;
  /// Visits every payment (tombstones included) in order id order while `fn`
  /// returns true (audits, the invariant checker).
  void scan(storage::Txn& txn, const std::function<bool(const Payment&)>& fn) const;

 private:
  std::error_code put(storage::Txn& txn, const Payment& p) const;
  /// Records a gateway call about to be made for `p` and returns its step.
  std::expected<PaymentStep, std::error_code> call(storage::Txn& txn, Payment p, PgOperation op,
                                                   std::int64_t now_ms) const;
  /// Stores `p` moved to `status` and returns a reply step with `code`.
  std::expected<PaymentStep, std::error_code> settle(storage::Txn& txn, Payment p,
                                                     PaymentStatus status, msg::Code code,
                                                     std::int64_t now_ms) const;
  storage::Table payments_;
};

/// Read-only query library over the payment environment (CQRS read side).
class PaymentQueries {
 public:
  /// Opens `env_path` (Config::env_path("payment")) read-only. Errors: ENOENT
  /// when the environment does not exist yet, MDB_NOTFOUND when the daemon has
  /// not created its tables yet (retry later), other LMDB codes.
  static std::expected<PaymentQueries, std::error_code> open(const std::string& env_path,
                                                             std::size_t map_size_bytes);
  /// GET /v1/payments/{order_id}: nullopt = not found. Errors: MDB_READERS_FULL.
  std::expected<std::optional<Payment>, std::error_code> payment(std::uint64_t order_id) const;

 private:
  PaymentQueries(std::unique_ptr<storage::Env> env, PaymentStore store)
      : env_(std::move(env)), store_(store) {}
  std::unique_ptr<storage::Env> env_;
  PaymentStore store_;
};

}  // namespace ringmart::payment
