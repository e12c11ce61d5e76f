#include "bench/inject.hpp"

#include <condition_variable>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "daemons/common/runtime.hpp"
#include "daemons/gateway/intake_store.hpp"
#include "daemons/gateway/requests.hpp"

namespace ringmart::bench {
namespace {

using Clock = std::chrono::steady_clock;
using msg::Envelope;

gateway::OrderRequest request_of(const olist::Dataset& data, const replay::Ids& ids,
                                 const replay::Options& mix, std::size_t i,
                                 std::vector<std::int64_t>& unit_prices) {
  const auto& o = data.orders[i];
  gateway::OrderRequest r;
  r.user_id = ids.user_ids[i];
  unit_prices.clear();
  for (const auto& line : o.lines) {
    r.items.push_back({ids.product_ids[line.product_index], line.quantity});
    // The catalogue was created with these prices (replay::set_up); the
    // gateway reads the same values from the product query library.
    unit_prices.push_back(data.products[line.product_index].price_cents);
  }
  r.user_coupon_id = ids.user_coupon_ids[i].value_or(0);
  r.points = o.points;
  r.shipping_cents = o.shipping_cents;
  r.payment_token = replay::payment_token(o, mix);
  r.installments = static_cast<std::uint32_t>(o.installments);
  return r;
}

}  // namespace

std::expected<InjectResult, std::string> inject_orders(const runtime::Config& config,
                                                       const olist::Dataset& data,
                                                       const replay::Ids& ids,
                                                       const InjectOptions& options) {
  auto created = runtime::Runtime::create(msg::DaemonId::GATEWAY, config, 5000);
  if (!created) return std::unexpected("cannot run as the gateway: " + created.error().message);
  runtime::Runtime& rt = **created;
  auto intake = runtime::open_store<gateway::IntakeStore>(rt);
  if (!intake) return std::unexpected("gateway tables: " + intake.error().message());

  InjectResult result;
  auto& outcomes = result.replay.outcomes;
  outcomes.resize(data.orders.size());
  // Loop-thread state: the next order to send and the orders in flight.
  std::size_t next = 0;
  std::unordered_map<std::uint64_t, std::pair<std::size_t, Clock::time_point>> in_flight;
  std::vector<std::int64_t> unit_prices;

  // Changed inside handlers, so a batch the runtime undoes would leave it
  // ahead of the committed state; that only happens on a storage error
  // (these handlers never fail otherwise), which ends the benchmark anyway.
  auto send_next = [&](runtime::Context& ctx) -> std::error_code {
    if (next >= data.orders.size()) return {};
    const std::size_t i = next++;
    const auto request = request_of(data, ids, options.mix, i, unit_prices);
    auto subtotal = gateway::order_subtotal(request, unit_prices);
    if (!subtotal) {
      outcomes[i].error_kind = "invalid order";
      outcomes[i].error = subtotal.error().message;
      return {};
    }
    auto accepted =
        intake->accept(ctx.txn(), options.key_prefix + data.orders[i].source_id, request,
                       gateway::order_request_hash(request), unit_prices, *subtotal, ctx.now_ms());
    if (!accepted) return accepted.error();
    if (accepted->kind != gateway::AcceptOutcome::Kind::accepted) {
      outcomes[i].error_kind = "idempotency key already used";
      outcomes[i].error = "order " + data.orders[i].source_id + ": key known";
      return {};
    }
    outcomes[i].order_id = accepted->order_id;
    in_flight[accepted->order_id] = {i, Clock::now()};
    return gateway::send_create_order(ctx, accepted->order_id, request, unit_prices);
  };

  rt.on_message([&](runtime::Context& ctx, Envelope::Reader m) -> std::error_code {
    const auto payload = m.getPayload();
    if (payload.which() != Envelope::Payload::ORDER_FINALIZED) return {};  // replies: none asked
    const auto f = payload.getOrderFinalized();
    const auto order_id = f.getOrderId();
    intake->forget(ctx.txn(), order_id);
    const auto it = in_flight.find(order_id);
    if (it != in_flight.end()) {
      const auto [i, t0] = it->second;
      in_flight.erase(it);
      const bool completed = f.getCompleted();
      const std::string reason = completed ? "" : std::string(runtime::code_name(f.getReason()));
      // Like the gateway, an answer counts once its transaction committed.
      ctx.after_commit([&, i, t0, completed, reason] {
        auto& out = outcomes[i];
        out.status = completed ? "COMPLETED" : "FAILED";
        out.failure_reason = reason;
        out.latency_us =
            std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();
        if (++result.finished == data.orders.size()) rt.stop();
      });
    }
    return send_next(ctx);
  });

  const std::size_t window = std::max<std::size_t>(1, options.window);
  rt.post([&](runtime::Context& ctx) -> std::error_code {
    for (std::size_t w = 0; w < window; ++w) {
      if (auto ec = send_next(ctx)) return ec;
    }
    return {};
  });

  // Bounded: a lost order must not hang the benchmark.
  std::mutex mu;
  std::condition_variable cv;
  bool finished = false;
  std::thread watchdog([&] {
    std::unique_lock lock(mu);
    if (!cv.wait_for(lock, options.timeout, [&] { return finished; })) rt.stop();
  });
  const auto start = Clock::now();
  const int rc = rt.run();
  result.replay.wall_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  {
    std::lock_guard lock(mu);
    finished = true;
  }
  cv.notify_all();
  watchdog.join();
  for (auto& out : outcomes) {
    if (out.status.empty() && out.error_kind.empty()) {
      out.error_kind = "not finished";
      out.error = "no orderFinalized within the timeout";
    }
  }
  if (rc != 0) return std::unexpected("the injector's loop failed (" + std::to_string(rc) + ")");
  return result;
}

}  // namespace ringmart::bench
