// ringmart-user — the user daemon: users and their points.
//
// Applies registerUser / chargePoints from the gateway and deductPoints /
// restorePoints from the supervisor's saga (docs/domains.md), each inside the
// runtime's batch transaction, and replies through the outbox.
#include <string>

#include "daemons/common/runtime.hpp"
#include "daemons/user/user_store.hpp"
#include "storage/text.hpp"

namespace {

using ringmart::msg::Envelope;
namespace runtime = ringmart::runtime;

}  // namespace

int main(int argc, char** argv) {
  auto started =
      runtime::start_daemon<ringmart::user::UserStore>(argc, argv, ringmart::msg::DaemonId::USER);
  if (!started) return started.error();
  runtime::Runtime& rt = *started->runtime;
  auto& store = started->store;
  auto log = rt.log();

  rt.on_message([&](runtime::Context& ctx, Envelope::Reader m) -> std::error_code {
    const auto payload = m.getPayload();
    switch (payload.which()) {
      case Envelope::Payload::REGISTER_USER: {
        auto in = payload.getRegisterUser();
        auto out = store.register_user(ctx.txn(), ringmart::storage::to_string(in.getName()),
                                       ringmart::storage::to_string(in.getEmail()), ctx.now_ms());
        if (!out) return out.error();
        log->debug("registerUser msg={} -> {} id={}", m.getMessageId(),
                   runtime::code_name(out->code), out->id);
        return ctx.reply(m, [&](Envelope::Payload::Builder p) {
          auto r = p.initReply();
          r.setCode(out->code);
          r.setId(out->id);
          r.setMessage(out->detail);
        });
      }
      case Envelope::Payload::CHARGE_POINTS: {
        auto in = payload.getChargePoints();
        auto out = store.charge_points(ctx.txn(), in.getUserId(), in.getAmount(), ctx.now_ms());
        if (!out) return out.error();
        log->debug("chargePoints user={} amount={} -> {} balance={}", in.getUserId(),
                   in.getAmount(), runtime::code_name(out->code), out->value);
        return ctx.reply(m, [&](Envelope::Payload::Builder p) {
          auto r = p.initReply();
          r.setCode(out->code);
          r.setId(out->id);
          r.setValue(out->value);
          r.setMessage(out->detail);
        });
      }
      case Envelope::Payload::DEDUCT_POINTS: {
        auto in = payload.getDeductPoints();
        auto out = store.deduct_points(ctx.txn(), in.getOrderId(), in.getUserId(), in.getPoints(),
                                       ctx.now_ms());
        if (!out) return out.error();
        log->debug("saga={} order={} deductPoints user={} points={} -> {}", m.getSagaId(),
                   in.getOrderId(), in.getUserId(), in.getPoints(), runtime::code_name(out->code));
        return ctx.reply(m, [&](Envelope::Payload::Builder p) {
          auto r = p.initPointsDeducted();
          r.setCode(out->code);
          r.setDetail(out->detail);
        });
      }
      case Envelope::Payload::RESTORE_POINTS: {
        const auto order_id = payload.getRestorePoints().getOrderId();
        auto out = store.restore_points(ctx.txn(), order_id, ctx.now_ms());
        if (!out) return out.error();
        log->debug("saga={} order={} restorePoints user={} points={} {}", m.getSagaId(), order_id,
                   out->id, out->value, out->detail);
        return ctx.reply(m, [&](Envelope::Payload::Builder p) {
          auto r = p.initPointsRestored();
          r.setCode(out->code);
          r.setDetail(out->detail);
        });
      }
      default:
        runtime::warn_unexpected(*log, m);
        return {};
    }
  });
  rt.install_signal_handlers();
  return rt.run();
}
