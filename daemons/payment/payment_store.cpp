#include "daemons/payment/payment_store.hpp"

#include <capnp/message.h>

#include "daemons/payment/payment_records.capnp.h"
#include "storage/capnp_value.hpp"

namespace ringmart::payment {
namespace {

namespace rec = records;

storage::Key id_key(std::uint64_t id) { return storage::Key{}.u64(id); }

rec::PaymentStatus to_record(PaymentStatus s) {
  switch (s) {
    case PaymentStatus::authorizing:
      return rec::PaymentStatus::AUTHORIZING;
    case PaymentStatus::authorized:
      return rec::PaymentStatus::AUTHORIZED;
    case PaymentStatus::captured:
      return rec::PaymentStatus::CAPTURED;
    case PaymentStatus::voided:
      return rec::PaymentStatus::VOIDED;
    case PaymentStatus::refunded:
      return rec::PaymentStatus::REFUNDED;
    case PaymentStatus::declined:
      return rec::PaymentStatus::DECLINED;
    case PaymentStatus::capture_failed:
      return rec::PaymentStatus::CAPTURE_FAILED;
  }
  return rec::PaymentStatus::AUTHORIZING;
}

PaymentStatus from_record(rec::PaymentStatus s) {
  switch (s) {
    case rec::PaymentStatus::AUTHORIZING:
      return PaymentStatus::authorizing;
    case rec::PaymentStatus::AUTHORIZED:
      return PaymentStatus::authorized;
    case rec::PaymentStatus::CAPTURED:
      return PaymentStatus::captured;
    case rec::PaymentStatus::VOIDED:
      return PaymentStatus::voided;
    case rec::PaymentStatus::REFUNDED:
      return PaymentStatus::refunded;
    case rec::PaymentStatus::DECLINED:
      return PaymentStatus::declined;
    case rec::PaymentStatus::CAPTURE_FAILED:
      return PaymentStatus::capture_failed;
  }
  return PaymentStatus::authorizing;
}

Payment decode(rec::Payment::Reader r) {
  Payment p;
  p.order_id = r.getOrderId();
  p.amount_cents = r.getAmountCents();
  p.token = r.getToken();
  p.installments = r.getInstallments();
  p.status = from_record(r.getStatus());
  p.pg_transaction_id = r.getPgTransactionId();
  p.attempts = r.getAttempts();
  p.created_at_ms = r.getCreatedAtMs();
  p.updated_at_ms = r.getUpdatedAtMs();
  p.detail = r.getDetail();
  return p;
}

PaymentStep reply(msg::Code code, std::string detail, const Payment& p) {
  PaymentStep s;
  s.action = PaymentStep::Action::reply;
  s.code = code;
  s.detail = std::move(detail);
  s.payment = p;
  return s;
}

PaymentStep nothing(const Payment& p, bool stale) {
  PaymentStep s;
  s.action = PaymentStep::Action::none;
  s.payment = p;
  s.stale = stale;
  return s;
}

/// Whether a gateway answer to `op` still applies to a payment in `s`.
bool answer_applies(PgOperation op, PaymentStatus s) {
  switch (op) {
    case PgOperation::authorize:
      return s == PaymentStatus::authorizing;
    case PgOperation::capture:
      return s == PaymentStatus::authorized;
    case PgOperation::void_authorization:
      return s == PaymentStatus::authorizing || s == PaymentStatus::authorized ||
             s == PaymentStatus::capture_failed;
    case PgOperation::refund:
      return s == PaymentStatus::captured;
  }
  return false;
}

}  // namespace

const char* payment_status_name(PaymentStatus status) {
  switch (status) {
    case PaymentStatus::authorizing:
      return "AUTHORIZING";
    case PaymentStatus::authorized:
      return "AUTHORIZED";
    case PaymentStatus::captured:
      return "CAPTURED";
    case PaymentStatus::voided:
      return "VOIDED";
    case PaymentStatus::refunded:
      return "REFUNDED";
    case PaymentStatus::declined:
      return "DECLINED";
    case PaymentStatus::capture_failed:
      return "CAPTURE_FAILED";
  }
  return "UNKNOWN";
}

const char* operation_name(PgOperation op) {
  switch (op) {
    case PgOperation::authorize:
      return "authorize";
    case PgOperation::capture:
      return "capture";
    case PgOperation::void_authorization:
      return "void";
    case PgOperation::refund:
      return "refund";
  }
  return "unknown";
}

PaymentCommand command_of(PgOperation op) {
  switch (op) {
    case PgOperation::authorize:
      return PaymentCommand::start;
    case PgOperation::capture:
      return PaymentCommand::complete;
    case PgOperation::void_authorization:
    case PgOperation::refund:
      return PaymentCommand::cancel;
  }
  return PaymentCommand::cancel;
}

PgRequest pg_request(const Payment& p) {
  return {.order_id = p.order_id,
          .amount_cents = p.amount_cents,
          .token = p.token,
          .installments = p.installments,
          .transaction_id = p.pg_transaction_id};
}

PgResponse call_gateway(PaymentGateway& pg, const PaymentStep& step) {
  const auto request = pg_request(step.payment);
  switch (step.operation) {
    case PgOperation::authorize:
      return pg.authorize(request);
    case PgOperation::capture:
      return pg.capture(request);
    case PgOperation::void_authorization:
      return pg.void_authorization(request);
    case PgOperation::refund:
      return pg.refund(request);
  }
  return {};
}

std::expected<PaymentStore, std::error_code> PaymentStore::open(storage::Txn& txn) {
  auto t = storage::Table::open(txn, "payments");
  if (!t) return std::unexpected(t.error());
  PaymentStore s;
  s.payments_ = *t;
  return s;
}

std::error_code PaymentStore::put(storage::Txn& txn, const Payment& p) const {
  capnp::MallocMessageBuilder b(128);
  auto r = b.initRoot<rec::Payment>();
  r.setOrderId(p.order_id);
  r.setAmountCents(p.amount_cents);
  r.setToken(p.token);
  r.setInstallments(p.installments);
  r.setStatus(to_record(p.status));
  r.setPgTransactionId(p.pg_transaction_id);
  r.setAttempts(p.attempts);
  r.setCreatedAtMs(p.created_at_ms);
  r.setUpdatedAtMs(p.updated_at_ms);
  r.setDetail(p.detail);
  return storage::put_message(payments_, txn, id_key(p.order_id).view(), b);
}

std::expected<PaymentStep, std::error_code> PaymentStore::call(storage::Txn& txn, Payment p,
                                                               PgOperation op,
                                                               std::int64_t now_ms) const {
  ++p.attempts;
  p.updated_at_ms = now_ms;
  if (auto ec = put(txn, p)) return std::unexpected(ec);
  PaymentStep s;
  s.action = PaymentStep::Action::call_gateway;
  s.operation = op;
  s.payment = std::move(p);
  return s;
}

std::expected<PaymentStep, std::error_code> PaymentStore::settle(storage::Txn& txn, Payment p,
                                                                 PaymentStatus status,
                                                                 msg::Code code,
                                                                 std::int64_t now_ms) const {
  p.status = status;
  p.updated_at_ms = now_ms;
  if (auto ec = put(txn, p)) return std::unexpected(ec);
  return reply(code, code == msg::Code::OK ? std::string{} : p.detail, p);
}

std::expected<PaymentStep, std::error_code> PaymentStore::start_payment(storage::Txn& txn,
                                                                        const StartPaymentArgs& a,
                                                                        std::int64_t now_ms) const {
  if (auto p = payment(txn, a.order_id)) {
    switch (p->status) {
      case PaymentStatus::authorizing:
        // The first answer was lost (restart) or never came: ask again.
        return call(txn, std::move(*p), PgOperation::authorize, now_ms);
      case PaymentStatus::authorized:
      case PaymentStatus::captured:
      case PaymentStatus::capture_failed:
        return reply(msg::Code::OK, {}, *p);
      case PaymentStatus::declined:
        return reply(msg::Code::PAYMENT_DECLINED, p->detail, *p);
      case PaymentStatus::voided:
      case PaymentStatus::refunded:
        return reply(msg::Code::PAYMENT_DECLINED, "payment already cancelled", *p);
    }
  }
  Payment p;
  p.order_id = a.order_id;
  p.amount_cents = a.amount_cents;
  p.token = a.token;
  p.installments = a.installments;
  p.created_at_ms = now_ms;
  p.updated_at_ms = now_ms;
  if (a.amount_cents < 0) return reply(msg::Code::INVALID_ARGUMENT, "amount must be >= 0", p);
  if (a.amount_cents == 0) {
    return settle(txn, std::move(p), PaymentStatus::authorized, msg::Code::OK, now_ms);
  }
  p.status = PaymentStatus::authorizing;
  return call(txn, std::move(p), PgOperation::authorize, now_ms);
}

std::expected<PaymentStep, std::error_code> PaymentStore::complete_payment(
    storage::Txn& txn, std::uint64_t order_id, std::int64_t now_ms) const {
  auto p = payment(txn, order_id);
  if (!p) {
    Payment none;
    none.order_id = order_id;
    return reply(msg::Code::ORDER_NOT_FOUND, "no payment for this order", none);
  }
  switch (p->status) {
    case PaymentStatus::authorized:
      if (p->amount_cents == 0) {
        return settle(txn, std::move(*p), PaymentStatus::captured, msg::Code::OK, now_ms);
      }
      return call(txn, std::move(*p), PgOperation::capture, now_ms);
    case PaymentStatus::captured:
      return reply(msg::Code::OK, {}, *p);
    case PaymentStatus::capture_failed:
      return reply(msg::Code::PAYMENT_CAPTURE_FAILED, p->detail, *p);
    case PaymentStatus::authorizing:
    case PaymentStatus::declined:
    case PaymentStatus::voided:
    case PaymentStatus::refunded:
      break;
  }
  return reply(msg::Code::PAYMENT_CAPTURE_FAILED,
               std::string("payment is ") + payment_status_name(p->status), *p);
}

std::expected<PaymentStep, std::error_code> PaymentStore::cancel_payment(
    storage::Txn& txn, std::uint64_t order_id, std::int64_t now_ms) const {
  auto p = payment(txn, order_id);
  if (!p) {
    Payment tombstone;
    tombstone.order_id = order_id;
    tombstone.created_at_ms = now_ms;
    tombstone.detail = "cancelled before any payment";
    return settle(txn, std::move(tombstone), PaymentStatus::voided, msg::Code::OK, now_ms);
  }
  switch (p->status) {
    case PaymentStatus::authorizing:
    case PaymentStatus::authorized:
    case PaymentStatus::capture_failed:
      if (p->amount_cents == 0) {
        return settle(txn, std::move(*p), PaymentStatus::voided, msg::Code::OK, now_ms);
      }
      return call(txn, std::move(*p), PgOperation::void_authorization, now_ms);
    case PaymentStatus::captured:
      if (p->amount_cents == 0) {
        return settle(txn, std::move(*p), PaymentStatus::refunded, msg::Code::OK, now_ms);
      }
      return call(txn, std::move(*p), PgOperation::refund, now_ms);
    case PaymentStatus::voided:
    case PaymentStatus::refunded:
    case PaymentStatus::declined:
      break;
  }
  return reply(msg::Code::OK, {}, *p);
}

std::expected<PaymentStep, std::error_code> PaymentStore::apply_gateway_answer(
    storage::Txn& txn, std::uint64_t order_id, PgOperation op, const PgResponse& answer,
    std::int64_t now_ms) const {
  auto p = payment(txn, order_id);
  if (!p) {
    Payment none;
    none.order_id = order_id;
    return nothing(none, true);
  }
  if (!answer_applies(op, p->status)) return nothing(*p, true);

  const bool approved = answer.outcome == PgOutcome::approved;
  if (answer.outcome == PgOutcome::no_answer ||
      (!approved && (op == PgOperation::void_authorization || op == PgOperation::refund))) {
    // Unknown outcome, or a compensation the PG refused: keep the state so a
    // retried command asks again.
    p->updated_at_ms = now_ms;
    if (!answer.detail.empty()) p->detail = answer.detail;
    if (auto ec = put(txn, *p)) return std::unexpected(ec);
    return nothing(*p, false);
  }
  if (!approved) p->detail = answer.detail;
  switch (op) {
    case PgOperation::authorize:
      if (approved) {
        p->pg_transaction_id = answer.transaction_id;
        return settle(txn, std::move(*p), PaymentStatus::authorized, msg::Code::OK, now_ms);
      }
      return settle(txn, std::move(*p), PaymentStatus::declined, msg::Code::PAYMENT_DECLINED,
                    now_ms);
    case PgOperation::capture:
      if (approved) {
        return settle(txn, std::move(*p), PaymentStatus::captured, msg::Code::OK, now_ms);
      }
      return settle(txn, std::move(*p), PaymentStatus::capture_failed,
                    msg::Code::PAYMENT_CAPTURE_FAILED, now_ms);
    case PgOperation::void_authorization:
      return settle(txn, std::move(*p), PaymentStatus::voided, msg::Code::OK, now_ms);
    case PgOperation::refund:
      return settle(txn, std::move(*p), PaymentStatus::refunded, msg::Code::OK, now_ms);
  }
  return nothing(*p, true);
}

std::optional<Payment> PaymentStore::payment(storage::Txn& txn, std::uint64_t order_id) const {
  auto m = storage::get_message(payments_, txn, id_key(order_id).view());
  if (!m) return std::nullopt;
  return decode(m->root<rec::Payment>());
}

void PaymentStore::scan(storage::Txn& txn, const std::function<bool(const Payment&)>& fn) const {
  payments_.scan(txn, {}, [&](std::span<const std::byte>, std::span<const std::byte> value) {
    storage::StoredMessage m(value);
    return fn(decode(m.root<rec::Payment>()));
  });
}

// ------------------------------------------------------------------ queries

std::expected<PaymentQueries, std::error_code> PaymentQueries::open(const std::string& env_path,
                                                                    std::size_t map_size_bytes) {
  auto ro = storage::open_read_only<PaymentStore>(env_path, map_size_bytes);
  if (!ro) return std::unexpected(ro.error());
  return PaymentQueries(std::move(ro->env), ro->store);
}

std::expected<std::optional<Payment>, std::error_code> PaymentQueries::payment(
    std::uint64_t order_id) const {
  auto txn = storage::Txn::begin_read(*env_);
  if (!txn) return std::unexpected(txn.error());
  return store_.payment(*txn, order_id);
}

}  // namespace ringmart::payment
