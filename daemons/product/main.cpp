// ringmart-product — the product daemon: catalogue and stock.
//
// Applies createProduct / adjustStock from the gateway and deductInventory /
// restoreInventory from the supervisor's saga (docs/domains.md), each inside
// the runtime's batch transaction, and replies through the outbox.
#include <string>
#include <vector>

#include "daemons/common/runtime.hpp"
#include "daemons/product/product_store.hpp"
#include "storage/text.hpp"

namespace {

using ringmart::msg::Envelope;
namespace runtime = ringmart::runtime;
namespace product = ringmart::product;

}  // namespace

int main(int argc, char** argv) {
  auto started =
      runtime::start_daemon<product::ProductStore>(argc, argv, ringmart::msg::DaemonId::PRODUCT);
  if (!started) return started.error();
  runtime::Runtime& rt = *started->runtime;
  auto& store = started->store;
  auto log = rt.log();

  rt.on_message([&](runtime::Context& ctx, Envelope::Reader m) -> std::error_code {
    const auto payload = m.getPayload();
    switch (payload.which()) {
      case Envelope::Payload::CREATE_PRODUCT: {
        auto in = payload.getCreateProduct();
        auto out = store.create_product(ctx.txn(), ringmart::storage::to_string(in.getName()),
                                        ringmart::storage::to_string(in.getCategory()),
                                        in.getPriceCents(), in.getStock(), ctx.now_ms());
        if (!out) return out.error();
        log->debug("createProduct msg={} -> {} id={}", m.getMessageId(),
                   runtime::code_name(out->code), out->id);
        return ctx.reply(m, [&](Envelope::Payload::Builder p) {
          auto r = p.initReply();
          r.setCode(out->code);
          r.setId(out->id);
          r.setMessage(out->detail);
        });
      }
      case Envelope::Payload::ADJUST_STOCK: {
        auto in = payload.getAdjustStock();
        auto out = store.adjust_stock(ctx.txn(), in.getProductId(), in.getDelta());
        if (!out) return out.error();
        log->debug("adjustStock product={} delta={} -> {} stock={}", in.getProductId(),
                   in.getDelta(), runtime::code_name(out->code), out->value);
        return ctx.reply(m, [&](Envelope::Payload::Builder p) {
          auto r = p.initReply();
          r.setCode(out->code);
          r.setId(in.getProductId());
          r.setValue(out->value);
          r.setMessage(out->detail);
        });
      }
      case Envelope::Payload::UPDATE_PRODUCT: {
        auto in = payload.getUpdateProduct();
        product::ProductChanges changes;
        if (in.getSetName()) changes.name = ringmart::storage::to_string(in.getName());
        if (in.getSetCategory()) changes.category = ringmart::storage::to_string(in.getCategory());
        if (in.getSetPrice()) changes.price_cents = in.getPriceCents();
        auto out = store.update_product(ctx.txn(), in.getProductId(), changes);
        if (!out) return out.error();
        log->debug("updateProduct product={} -> {}", in.getProductId(),
                   runtime::code_name(out->code));
        return ctx.reply(m, [&](Envelope::Payload::Builder p) {
          auto r = p.initReply();
          r.setCode(out->code);
          r.setId(in.getProductId());
          r.setValue(out->value);  // the price now
          r.setMessage(out->detail);
        });
      }
      case Envelope::Payload::UNLIST_PRODUCT: {
        const auto id = payload.getUnlistProduct().getProductId();
        auto out = store.unlist_product(ctx.txn(), id);
        if (!out) return out.error();
        log->debug("unlistProduct product={} -> {}", id, runtime::code_name(out->code));
        return ctx.reply(m, [&](Envelope::Payload::Builder p) {
          auto r = p.initReply();
          r.setCode(out->code);
          r.setId(id);
          r.setMessage(out->detail);
        });
      }
      case Envelope::Payload::DEDUCT_INVENTORY: {
        auto in = payload.getDeductInventory();
        std::vector<product::LineQuantity> lines;
        lines.reserve(in.getLines().size());
        for (auto l : in.getLines()) {
          lines.push_back({.product_id = l.getProductId(), .quantity = l.getQuantity()});
        }
        auto out = store.deduct_inventory(ctx.txn(), in.getOrderId(), lines, ctx.now_ms());
        if (!out) return out.error();
        log->debug("saga={} order={} deductInventory lines={} -> {} {}", m.getSagaId(),
                   in.getOrderId(), lines.size(), runtime::code_name(out->code), out->detail);
        return ctx.reply(m, [&](Envelope::Payload::Builder p) {
          auto r = p.initInventoryDeducted();
          r.setCode(out->code);
          r.setDetail(out->detail);
        });
      }
      case Envelope::Payload::RESTORE_INVENTORY: {
        const auto order_id = payload.getRestoreInventory().getOrderId();
        auto out = store.restore_inventory(ctx.txn(), order_id, ctx.now_ms());
        if (!out) return out.error();
        log->debug("saga={} order={} restoreInventory lines={} {}", m.getSagaId(), order_id,
                   out->value, out->detail);
        return ctx.reply(m, [&](Envelope::Payload::Builder p) {
          auto r = p.initInventoryRestored();
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
