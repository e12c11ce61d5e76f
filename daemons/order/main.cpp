// ringmart-order: the order daemon. Wires OrderStore to the runtime's rings
// and sends what the store reports (orderCreated starts the saga; completion
// and failure notify ranking and the gateway once). Every change also appends
// to the order change feed in its transaction; the tick prunes the feed's
// events older than `[order] feed_retention_hours` (default 168; 0 = kept).

#include <chrono>

#include "daemons/common/retention.hpp"
#include "daemons/common/runtime.hpp"
#include "daemons/order/order_store.hpp"
#include "storage/text.hpp"

using namespace ringmart;

namespace {

void fill_completed(msg::Envelope::Payload::Builder p, std::uint64_t order_id,
                    const order::CompleteOrderResult& r) {
  auto o = p.initOrderCompleted();
  o.setOrderId(order_id);
  o.setCompletedAtMs(r.completed_at_ms);
  auto lines = o.initLines(static_cast<unsigned>(r.lines.size()));
  for (unsigned i = 0; i < r.lines.size(); ++i) {
    lines[i].setProductId(r.lines[i].product_id);
    lines[i].setQuantity(r.lines[i].quantity);
    lines[i].setUnitPriceCents(r.lines[i].unit_price_cents);
  }
}

void fill_finalized(msg::Envelope::Payload::Builder p, std::uint64_t order_id, bool completed,
                    msg::Code reason) {
  auto f = p.initOrderFinalized();
  f.setOrderId(order_id);
  f.setCompleted(completed);
  f.setReason(reason);
}

}  // namespace

int main(int argc, char** argv) {
  auto started = runtime::start_daemon<order::OrderStore>(argc, argv, msg::DaemonId::ORDER);
  if (!started) return started.error();
  runtime::Runtime& rt = *started->runtime;
  auto& store = started->store;
  auto log = rt.log();
  double retention_hours = 168;
  if (auto h = rt.config().file["order"]["feed_retention_hours"].value<double>()) {
    retention_hours = std::max(0.0, *h);
  }
  runtime::Retention feed_retention(static_cast<std::int64_t>(retention_hours * 3'600'000), 1024,
                                    "order feed events");
  rt.on_tick([&](std::int64_t) {
    const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    (void)feed_retention.run(rt, now_ms,
                             [&](storage::Txn& txn, std::int64_t cutoff, std::size_t n) {
                               return store.prune_feed(txn, cutoff, n);
                             });
  });

  rt.on_message([&](runtime::Context& ctx, msg::Envelope::Reader m) -> std::error_code {
    auto payload = m.getPayload();
    switch (payload.which()) {
      case msg::Envelope::Payload::CREATE_ORDER: {
        auto c = payload.getCreateOrder();
        const auto order_id = c.getOrderId();
        auto r = store.create_order(ctx.txn(), order::new_order_from(c), ctx.now_ms());
        if (!r) return r.error();
        if (r->code != msg::Code::OK) {
          // The gateway validates orders first: this is a gateway/store mismatch.
          log->warn("order={} createOrder rejected: {}", order_id, r->detail);
          return ctx.send(msg::DaemonId::GATEWAY, order_id, 0, m.getMessageId(),
                          [&](auto p) { fill_finalized(p, order_id, false, r->code); });
        }
        if (!r->first_time) {
          log->debug("order={} createOrder duplicate ignored", order_id);
          return {};
        }
        log->debug("order={} created user={} subtotal={}", order_id, c.getUserId(),
                   r->subtotal_cents);
        return ctx.send(msg::DaemonId::SUPERVISOR, order_id, 0, m.getMessageId(), [&](auto p) {
          auto o = p.initOrderCreated();
          o.setOrder(c);
          o.setSubtotalCents(r->subtotal_cents);
        });
      }
      case msg::Envelope::Payload::APPLY_COUPON: {
        auto a = payload.getApplyCoupon();
        auto r = store.apply_coupon(ctx.txn(), a.getOrderId(),
                                    {.discount_type = a.getDiscountType(),
                                     .discount_value = a.getDiscountValue(),
                                     .min_order_cents = a.getMinOrderCents()});
        if (!r) return r.error();
        log->debug("order={} applyCoupon -> {} discount={}{} {}", a.getOrderId(),
                   order::failure_reason_name(r->code), r->discount_cents,
                   r->first_time ? "" : " (repeat)", r->detail);
        return ctx.reply(m, [&](auto p) {
          auto o = p.initCouponApplied();
          o.setCode(r->code);
          o.setDiscountCents(r->discount_cents);
          o.setDetail(r->detail);
        });
      }
      case msg::Envelope::Payload::SHIP_ORDER:
      case msg::Envelope::Payload::MARK_DELIVERED: {
        const bool ship = payload.which() == msg::Envelope::Payload::SHIP_ORDER;
        const auto order_id =
            ship ? payload.getShipOrder().getOrderId() : payload.getMarkDelivered().getOrderId();
        auto r = ship ? store.ship(ctx.txn(), order_id,
                                   storage::to_string(payload.getShipOrder().getCarrier()),
                                   storage::to_string(payload.getShipOrder().getTrackingNumber()),
                                   ctx.now_ms())
                      : store.mark_delivered(ctx.txn(), order_id, ctx.now_ms());
        if (!r) return r.error();
        log->debug("order={} {} -> {}{}", order_id, ship ? "shipOrder" : "markDelivered",
                   order::failure_reason_name(r->code), r->first_time ? "" : " (no change)");
        return ctx.reply(m, [&](msg::Envelope::Payload::Builder p) {
          auto reply = p.initReply();
          reply.setCode(r->code);
          reply.setId(order_id);
          reply.setMessage(r->detail);
        });
      }
      case msg::Envelope::Payload::COMPLETE_ORDER: {
        auto c = payload.getCompleteOrder();
        const auto order_id = c.getOrderId();
        auto r = store.complete_order(ctx.txn(), order_id,
                                      {.discount_cents = c.getDiscountCents(),
                                       .points_used = c.getPointsUsed(),
                                       .paid_cents = c.getPaidCents()},
                                      ctx.now_ms());
        if (!r) return r.error();
        if (r->code != msg::Code::OK) {
          // No orderCompleted can carry a failure: the saga step stays
          // unanswered and surfaces as STUCK for an operator.
          log->warn("order={} completeOrder refused: {} ({})", order_id,
                    order::failure_reason_name(r->code), r->detail);
          return {};
        }
        if (auto ec = ctx.reply(m, [&](auto p) { fill_completed(p, order_id, *r); })) return ec;
        if (!r->first_time) {
          log->debug("order={} completeOrder repeat answered", order_id);
          return {};
        }
        log->debug("order={} completed paid={} discount={} points={}", order_id, c.getPaidCents(),
                   c.getDiscountCents(), c.getPointsUsed());
        if (auto ec = ctx.send(msg::DaemonId::RANKING, order_id, 0, 0,
                               [&](auto p) { fill_completed(p, order_id, *r); })) {
          return ec;
        }
        return ctx.send(msg::DaemonId::GATEWAY, order_id, 0, 0,
                        [&](auto p) { fill_finalized(p, order_id, true, msg::Code::OK); });
      }
      case msg::Envelope::Payload::FAIL_ORDER: {
        auto f = payload.getFailOrder();
        const auto order_id = f.getOrderId();
        auto r = store.fail_order(ctx.txn(), order_id, f.getReason(), ctx.now_ms());
        if (!r) return r.error();
        if (r->code != msg::Code::OK) {
          log->warn("order={} failOrder refused: {}", order_id, r->detail);
        } else {
          log->debug("order={} failed reason={}{}", order_id,
                     order::failure_reason_name(f.getReason()), r->first_time ? "" : " (repeat)");
        }
        if (auto ec = ctx.reply(m, [&](auto p) {
              auto o = p.initOrderFailed();
              o.setCode(r->code);
              o.setDetail(r->detail);
            })) {
          return ec;
        }
        if (!r->first_time) return {};
        return ctx.send(msg::DaemonId::GATEWAY, order_id, 0, 0,
                        [&](auto p) { fill_finalized(p, order_id, false, f.getReason()); });
      }
      default:
        runtime::warn_unexpected(*log, m);
        return {};
    }
  });
  rt.install_signal_handlers();
  return rt.run();
}
