// ringmart-coupon: the coupon daemon. Wires CouponStore to the runtime's
// rings; all domain logic lives in coupon_store.cpp.

#include "daemons/common/runtime.hpp"
#include "daemons/coupon/coupon_store.hpp"

using namespace ringmart;

int main(int argc, char** argv) {
  auto started = runtime::start_daemon<coupon::CouponStore>(argc, argv, msg::DaemonId::COUPON);
  if (!started) return started.error();
  runtime::Runtime& rt = *started->runtime;
  auto& store = started->store;
  auto log = rt.log();

  auto now_s = [](runtime::Context& ctx) { return ctx.now_ms() / 1000; };

  rt.on_message([&](runtime::Context& ctx, msg::Envelope::Reader m) -> std::error_code {
    auto payload = m.getPayload();
    switch (payload.which()) {
      case msg::Envelope::Payload::CREATE_COUPON: {
        auto c = payload.getCreateCoupon();
        auto r = store.create_coupon(
            ctx.txn(), {.name = c.getName(),
                        .discount_type = c.getDiscountType(),
                        .discount_value = c.getDiscountValue(),
                        .total_quantity = c.getTotalQuantity(),
                        .min_order_cents = c.getMinOrderCents(),
                        .expires_at_s = c.getExpiresAtS(),
                        .per_user_limit = c.getPerUserLimit() == 0 ? 1 : c.getPerUserLimit()});
        if (!r) return r.error();
        log->debug("createCoupon -> {} id={} {}", runtime::code_name(r->code), r->coupon_id,
                   r->detail);
        return ctx.reply(m, [&](auto p) {
          auto o = p.initReply();
          o.setCode(r->code);
          o.setId(r->coupon_id);
          o.setMessage(r->detail);
        });
      }
      case msg::Envelope::Payload::ISSUE_COUPON: {
        auto c = payload.getIssueCoupon();
        auto r = store.issue_coupon(ctx.txn(), c.getCouponId(), c.getUserId(), now_s(ctx));
        if (!r) return r.error();
        log->debug("issueCoupon coupon={} user={} -> {} user_coupon={}", c.getCouponId(),
                   c.getUserId(), runtime::code_name(r->code), r->user_coupon_id);
        return ctx.reply(m, [&](auto p) {
          auto o = p.initReply();
          o.setCode(r->code);
          o.setId(r->user_coupon_id);
          o.setMessage(r->detail);
        });
      }
      case msg::Envelope::Payload::USE_COUPON: {
        auto c = payload.getUseCoupon();
        auto r = store.use_coupon(ctx.txn(), c.getOrderId(), c.getUserId(), c.getUserCouponId(),
                                  now_s(ctx));
        if (!r) return r.error();
        log->debug("order={} useCoupon user_coupon={} -> {}{} {}", c.getOrderId(),
                   c.getUserCouponId(), runtime::code_name(r->code),
                   r->first_time ? "" : " (repeat)", r->detail);
        return ctx.reply(m, [&](auto p) {
          auto o = p.initCouponUsed();
          o.setCode(r->code);
          o.setCouponId(r->coupon_id);
          o.setDiscountType(r->discount_type);
          o.setDiscountValue(r->discount_value);
          o.setMinOrderCents(r->min_order_cents);
          o.setDetail(r->detail);
        });
      }
      case msg::Envelope::Payload::RESTORE_COUPON: {
        const auto order_id = payload.getRestoreCoupon().getOrderId();
        auto r = store.restore_coupon(ctx.txn(), order_id);
        if (!r) return r.error();
        log->debug("order={} restoreCoupon -> {}", order_id,
                   r->restored ? "restored" : (r->tombstone ? "tombstone" : "nothing to undo"));
        return ctx.reply(m, [&](auto p) { p.initCouponRestored().setCode(msg::Code::OK); });
      }
      default:
        runtime::warn_unexpected(*log, m);
        return {};
    }
  });
  rt.install_signal_handlers();
  return rt.run();
}
