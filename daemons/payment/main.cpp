// ringmart-payment: the payment daemon. Wires PaymentStore and a
// PaymentGateway to the runtime's rings.
//
// A gateway answer with no latency is applied inside the command's
// transaction. One with a latency (the simulated gateway's `[payment]
// latency_ms`) is kept in memory until due and applied on the loop's tick in
// its own transaction, so a slow PG never stalls other orders. Losing the
// in-memory answers in a crash is safe: the payment stays AUTHORIZING (or
// AUTHORIZED for a capture), and the saga's retry of the same command asks the
// gateway again.
#include <algorithm>
#include <vector>

#include "daemons/common/runtime.hpp"
#include "daemons/payment/payment_gateway.hpp"
#include "daemons/payment/payment_store.hpp"
#include "ipc/status_region.hpp"

using namespace ringmart;
using payment::PaymentCommand;
using payment::PaymentStep;
using payment::PgOperation;

namespace {

/// A gateway answer waiting for its simulated latency to pass.
struct PendingAnswer {
  std::uint64_t order_id;
  PgOperation operation;
  std::uint64_t message_id;  ///< the command it answers (a retry keeps the id)
  payment::PgResponse answer;
  payment::Payment payment;  ///< the payment as the gateway was called about it
  std::int64_t due_ms;       ///< monotonic clock
};

void fill_reply(msg::Envelope::Payload::Builder p, PaymentCommand command, msg::Code code,
                const std::string& detail) {
  auto o = command == PaymentCommand::start      ? p.initPaymentStarted()
           : command == PaymentCommand::complete ? p.initPaymentCompleted()
                                                 : p.initPaymentCancelled();
  o.setCode(code);
  o.setDetail(detail);
}

}  // namespace

int main(int argc, char** argv) {
  auto started = runtime::start_daemon<payment::PaymentStore>(argc, argv, msg::DaemonId::PAYMENT);
  if (!started) return started.error();
  runtime::Runtime& rt = *started->runtime;
  auto& store = started->store;
  auto log = rt.log();
  const auto latency_ms =
      std::max<std::int64_t>(0, rt.config().get_int("payment", "latency_ms", 0));
  payment::SimulatedPaymentGateway gateway(latency_ms);
  log->info("payment gateway: simulated, latency {} ms", latency_ms);

  std::vector<PendingAnswer> pending;
  auto in_flight = [&](std::uint64_t order_id, std::initializer_list<PgOperation> ops) {
    return std::ranges::any_of(pending, [&](const PendingAnswer& a) {
      return a.order_id == order_id && std::ranges::find(ops, a.operation) != ops.end();
    });
  };

  // Sends the reply a step asks for (to the supervisor: the saga's commands
  // come only from it).
  auto send_reply = [&](runtime::Context& ctx, PaymentCommand command, std::uint64_t order_id,
                        std::uint64_t message_id, const PaymentStep& step) -> std::error_code {
    if (step.action != PaymentStep::Action::reply) return {};
    return ctx.send(msg::DaemonId::SUPERVISOR, order_id, 0, message_id,
                    [&](auto p) { fill_reply(p, command, step.code, step.detail); });
  };

  // Applies a gateway answer and replies; releases what a stale approval holds.
  auto apply_answer = [&](runtime::Context& ctx, std::uint64_t order_id, PgOperation op,
                          std::uint64_t message_id, const payment::PgResponse& answer,
                          const payment::Payment& called_about) -> std::error_code {
    auto step = store.apply_gateway_answer(ctx.txn(), order_id, op, answer, ctx.now_ms());
    if (!step) return step.error();
    log->debug("order={} {} -> {} status={}", order_id, payment::operation_name(op),
               payment::outcome_name(answer.outcome),
               payment::payment_status_name(step->payment.status));
    if (step->stale && answer.outcome == payment::PgOutcome::approved &&
        (op == PgOperation::authorize || op == PgOperation::capture)) {
      // The payment was cancelled while the PG was answering: give the money back.
      auto held = called_about;
      held.pg_transaction_id =
          answer.transaction_id.empty() ? held.pg_transaction_id : answer.transaction_id;
      const auto request = payment::pg_request(held);
      auto undo = op == PgOperation::authorize ? gateway.void_authorization(request)
                                               : gateway.refund(request);
      log->warn("order={} late {} approval on a {} payment: {} -> {}", order_id,
                payment::operation_name(op), payment::payment_status_name(step->payment.status),
                op == PgOperation::authorize ? "void" : "refund",
                payment::outcome_name(undo.outcome));
    }
    return send_reply(ctx, payment::command_of(op), order_id, message_id, *step);
  };

  // Carries a command's step out: reply, or call the gateway now and apply
  // the answer at once (no latency) or when due.
  auto drive = [&](runtime::Context& ctx, PaymentCommand command, std::uint64_t order_id,
                   std::uint64_t message_id, const PaymentStep& step) -> std::error_code {
    switch (step.action) {
      case PaymentStep::Action::reply:
        log->debug("order={} {} -> {} status={}", order_id,
                   command == PaymentCommand::start      ? "startPayment"
                   : command == PaymentCommand::complete ? "completePayment"
                                                         : "cancelPayment",
                   runtime::code_name(step.code),
                   payment::payment_status_name(step.payment.status));
        return send_reply(ctx, command, order_id, message_id, step);
      case PaymentStep::Action::none:
        return {};
      case PaymentStep::Action::call_gateway:
        break;
    }
    auto answer = payment::call_gateway(gateway, step);
    if (answer.latency_ms <= 0) {
      return apply_answer(ctx, order_id, step.operation, message_id, answer, step.payment);
    }
    const auto due_ms = ipc::monotonic_ms() + answer.latency_ms;
    PendingAnswer entry{.order_id = order_id,
                        .operation = step.operation,
                        .message_id = message_id,
                        .answer = std::move(answer),
                        .payment = step.payment,
                        .due_ms = due_ms};
    // Only once the AUTHORIZING/attempt record is durable; dropped on abort.
    ctx.after_commit([&, entry = std::move(entry)]() mutable {
      rt.wake_at(entry.due_ms);
      pending.push_back(std::move(entry));
    });
    return {};
  };

  rt.on_message([&](runtime::Context& ctx, msg::Envelope::Reader m) -> std::error_code {
    auto payload = m.getPayload();
    switch (payload.which()) {
      case msg::Envelope::Payload::START_PAYMENT: {
        auto s = payload.getStartPayment();
        const auto order_id = s.getOrderId();
        if (in_flight(order_id, {PgOperation::authorize})) {
          log->debug("order={} startPayment retry while the authorization is in flight", order_id);
          return {};
        }
        auto step = store.start_payment(ctx.txn(),
                                        {.order_id = order_id,
                                         .amount_cents = s.getAmountCents(),
                                         .token = s.getPaymentToken(),
                                         .installments = s.getInstallments()},
                                        ctx.now_ms());
        if (!step) return step.error();
        return drive(ctx, PaymentCommand::start, order_id, m.getMessageId(), *step);
      }
      case msg::Envelope::Payload::COMPLETE_PAYMENT: {
        const auto order_id = payload.getCompletePayment().getOrderId();
        if (in_flight(order_id, {PgOperation::capture})) return {};
        auto step = store.complete_payment(ctx.txn(), order_id, ctx.now_ms());
        if (!step) return step.error();
        if (step->code == msg::Code::ORDER_NOT_FOUND) {
          log->warn("order={} completePayment without a payment", order_id);
        }
        return drive(ctx, PaymentCommand::complete, order_id, m.getMessageId(), *step);
      }
      case msg::Envelope::Payload::CANCEL_PAYMENT: {
        const auto order_id = payload.getCancelPayment().getOrderId();
        if (in_flight(order_id, {PgOperation::void_authorization, PgOperation::refund})) return {};
        auto step = store.cancel_payment(ctx.txn(), order_id, ctx.now_ms());
        if (!step) return step.error();
        return drive(ctx, PaymentCommand::cancel, order_id, m.getMessageId(), *step);
      }
      default:
        runtime::warn_unexpected(*log, m);
        return {};
    }
  });

  rt.on_tick([&](std::int64_t now_ms) {
    if (pending.empty()) return;
    std::vector<PendingAnswer> due;
    std::erase_if(pending, [&](PendingAnswer& a) {
      if (a.due_ms > now_ms) return false;
      due.push_back(std::move(a));
      return true;
    });
    for (const auto& a : due) {
      if (auto ec = rt.transact([&](runtime::Context& ctx) {
            return apply_answer(ctx, a.order_id, a.operation, a.message_id, a.answer, a.payment);
          })) {
        // Nothing was recorded: the saga's retry of the command asks the PG again.
        log->error("order={} cannot apply the {} answer: {}", a.order_id,
                   payment::operation_name(a.operation), ec.message());
      }
    }
    for (const auto& a : pending) rt.wake_at(a.due_ms);
  });

  rt.install_signal_handlers();
  return rt.run();
}
