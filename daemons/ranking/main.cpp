// ringmart-ranking — the ranking daemon: units sold per UTC day and product.
//
// Counts each `orderCompleted` from the order daemon once (docs/domains.md,
// "ranking") inside the runtime's batch transaction. It sends nothing; the
// gateway reads best sellers through RankingQueries.
#include <vector>

#include "daemons/common/runtime.hpp"
#include "daemons/ranking/ranking_store.hpp"

namespace {

using ringmart::msg::Envelope;
namespace runtime = ringmart::runtime;
namespace ranking = ringmart::ranking;

}  // namespace

int main(int argc, char** argv) {
  auto started =
      runtime::start_daemon<ranking::RankingStore>(argc, argv, ringmart::msg::DaemonId::RANKING);
  if (!started) return started.error();
  runtime::Runtime& rt = *started->runtime;
  auto& store = started->store;
  auto log = rt.log();

  rt.on_message([&](runtime::Context& ctx, Envelope::Reader m) -> std::error_code {
    const auto payload = m.getPayload();
    if (payload.which() != Envelope::Payload::ORDER_COMPLETED) {
      runtime::warn_unexpected(*log, m);
      return {};
    }
    auto in = payload.getOrderCompleted();
    std::vector<ranking::LineQuantity> lines;
    lines.reserve(in.getLines().size());
    for (auto l : in.getLines()) {
      lines.push_back({.product_id = l.getProductId(), .quantity = l.getQuantity()});
    }
    auto applied = store.record_completed(ctx.txn(), in.getOrderId(), lines, in.getCompletedAtMs());
    if (!applied) return applied.error();
    log->debug("saga={} order={} orderCompleted lines={} day={} {}", m.getSagaId(), in.getOrderId(),
               lines.size(), ranking::utc_day(in.getCompletedAtMs()),
               *applied ? "counted" : "already counted");
    return {};
  });
  rt.install_signal_handlers();
  return rt.run();
}
