#include "daemons/supervisor/saga_engine.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

namespace ringmart::supervisor {
namespace {
using msg::Code;
using msg::DaemonId;
using Payload = msg::Envelope::Payload;

// A saga's log fields: its order (= saga) id and the trace of its order's request.
telemetry::Fields log_fields(SagaRecord::Reader r) {
  return {r.getOrderId(), r.getOrderId(),
          telemetry::TraceId{r.getTraceIdHigh(), r.getTraceIdLow()}};
}

constexpr unsigned kMaxTimeline = 64;   // entries kept per saga (the most recent)
constexpr unsigned kRecordWords = 128;  // first segment of a record builder: fits one (~300 B)

bool is_saga_reason(Code c) {
  return c == Code::COUPON_INVALID || c == Code::OUT_OF_STOCK || c == Code::PAYMENT_DECLINED ||
         c == Code::INSUFFICIENT_POINTS || c == Code::PAYMENT_CAPTURE_FAILED ||
         c == Code::PAYMENT_TIMEOUT;
}

Code default_reason(StepKind k) {
  switch (k) {
    case StepKind::use_coupon:
    case StepKind::apply_coupon:
      return Code::COUPON_INVALID;
    case StepKind::deduct_inventory:
      return Code::OUT_OF_STOCK;
    case StepKind::start_payment:
      return Code::PAYMENT_DECLINED;
    case StepKind::deduct_points:
      return Code::INSUFFICIENT_POINTS;
    case StepKind::complete_payment:
      return Code::PAYMENT_CAPTURE_FAILED;
    case StepKind::complete_order:
      return Code::INTERNAL;
  }
  return Code::INTERNAL;
}

bool has_compensation(StepKind k) {
  return k == StepKind::use_coupon || k == StepKind::deduct_inventory ||
         k == StepKind::start_payment || k == StepKind::deduct_points;
}

/// What a reply answers: the step kind (or fail_order), and whether it is a compensation.
struct ReplyInfo {
  std::optional<StepKind> kind;  // nullopt = fail_order
  bool compensation = false;
  Code code = Code::OK;
};

std::optional<ReplyInfo> classify(msg::Envelope::Reader m) {
  auto p = m.getPayload();
  switch (p.which()) {
    case Payload::COUPON_USED:
      return ReplyInfo{StepKind::use_coupon, false, p.getCouponUsed().getCode()};
    case Payload::COUPON_RESTORED:
      return ReplyInfo{StepKind::use_coupon, true, p.getCouponRestored().getCode()};
    case Payload::COUPON_APPLIED:
      return ReplyInfo{StepKind::apply_coupon, false, p.getCouponApplied().getCode()};
    case Payload::INVENTORY_DEDUCTED:
      return ReplyInfo{StepKind::deduct_inventory, false, p.getInventoryDeducted().getCode()};
    case Payload::INVENTORY_RESTORED:
      return ReplyInfo{StepKind::deduct_inventory, true, p.getInventoryRestored().getCode()};
    case Payload::PAYMENT_STARTED:
      return ReplyInfo{StepKind::start_payment, false, p.getPaymentStarted().getCode()};
    case Payload::PAYMENT_CANCELLED:
      return ReplyInfo{StepKind::start_payment, true, p.getPaymentCancelled().getCode()};
    case Payload::POINTS_DEDUCTED:
      return ReplyInfo{StepKind::deduct_points, false, p.getPointsDeducted().getCode()};
    case Payload::POINTS_RESTORED:
      return ReplyInfo{StepKind::deduct_points, true, p.getPointsRestored().getCode()};
    case Payload::PAYMENT_COMPLETED:
      return ReplyInfo{StepKind::complete_payment, false, p.getPaymentCompleted().getCode()};
    case Payload::ORDER_COMPLETED:
      return ReplyInfo{StepKind::complete_order, false, Code::OK};
    case Payload::ORDER_FAILED:
      return ReplyInfo{std::nullopt, true, p.getOrderFailed().getCode()};
    default:
      return std::nullopt;
  }
}

void recompute_amounts(SagaRecord::Builder r) {
  const std::int64_t total = r.getSubtotalCents() + r.getShippingCents();
  const std::int64_t discount = std::min(r.getDiscountCents(), total);
  const std::int64_t points = std::clamp<std::int64_t>(r.getPointsRequested(), 0, total - discount);
  r.setPointsUsed(points);
  r.setAmountDueCents(total - discount - points);
}
}  // namespace

SagaDefinition SagaDefinition::standard() {
  SagaDefinition d;
  for (int i = 0; i < kStepKinds; ++i) d.steps.push_back({static_cast<StepKind>(i)});
  for (auto& s : d.steps) {
    if (s.kind == StepKind::start_payment) {
      s.timeout_ms = 1000;
      s.max_attempts = 3;
    }
  }
  return d;
}

std::expected<SagaDefinition, std::string> SagaDefinition::from_config(
    const runtime::Config& config) {
  SagaDefinition d = standard();
  const auto saga = config.file["saga"];
  if (auto steps = saga["steps"].as_array()) {
    d.steps.clear();
    std::set<StepKind> seen;
    for (const auto& node : *steps) {
      auto name = node.value<std::string>();
      auto kind = name ? parse_step_kind(*name) : std::nullopt;
      if (!kind) return std::unexpected("[saga] steps: unknown step " + name.value_or("?"));
      if (!seen.insert(*kind).second)
        return std::unexpected("[saga] steps: duplicate step " + *name);
      d.steps.push_back({*kind});
      if (*kind == StepKind::start_payment) d.steps.back() = {*kind, 1000, 3};
    }
  }
  auto pos = [&](StepKind k) {
    for (std::size_t i = 0; i < d.steps.size(); ++i) {
      if (d.steps[i].kind == k) return static_cast<int>(i);
    }
    return -1;
  };
  if (d.steps.empty() || d.steps.back().kind != StepKind::complete_order) {
    return std::unexpected("[saga] steps: complete_order must be the last step");
  }
  for (auto k : {StepKind::use_coupon, StepKind::apply_coupon, StepKind::deduct_inventory,
                 StepKind::start_payment, StepKind::complete_payment}) {
    if (pos(k) < 0)
      return std::unexpected(fmt::format("[saga] steps: {} is required", step_kind_name(k)));
  }
  if (pos(StepKind::apply_coupon) < pos(StepKind::use_coupon)) {
    return std::unexpected("[saga] steps: apply_coupon must come after use_coupon");
  }
  if (pos(StepKind::complete_payment) < pos(StepKind::start_payment)) {
    return std::unexpected("[saga] steps: complete_payment must come after start_payment");
  }
  if (pos(StepKind::deduct_points) >= 0 &&
      pos(StepKind::start_payment) < pos(StepKind::apply_coupon)) {
    return std::unexpected("[saga] steps: start_payment must come after apply_coupon");
  }
  for (auto& s : d.steps) {
    const auto t = saga[step_kind_name(s.kind)];
    s.timeout_ms = t["timeout_ms"].value_or(s.timeout_ms);
    s.max_attempts = t["max_attempts"].value_or(s.max_attempts);
    if (s.timeout_ms <= 0 || s.max_attempts <= 0) {
      return std::unexpected(
          fmt::format("[saga.{}] timeout_ms and max_attempts must be > 0", step_kind_name(s.kind)));
    }
  }
  d.compensation_timeout_ms = saga["compensation_timeout_ms"].value_or(d.compensation_timeout_ms);
  d.compensation_max_attempts =
      saga["compensation_max_attempts"].value_or(d.compensation_max_attempts);
  d.retry_backoff_max_ms = saga["retry_backoff_max_ms"].value_or(d.retry_backoff_max_ms);
  if (d.compensation_timeout_ms <= 0 || d.compensation_max_attempts <= 0 ||
      d.retry_backoff_max_ms <= 0) {
    return std::unexpected(
        "[saga] compensation_timeout_ms, compensation_max_attempts and retry_backoff_max_ms must "
        "be > 0");
  }
  if (auto hours = saga["final_retention_hours"].value<double>()) {
    if (*hours < 0) return std::unexpected("[saga] final_retention_hours must be >= 0");
    d.final_retention_ms = static_cast<std::int64_t>(*hours * 3600 * 1000);
  }
  return d;
}

SagaEngine::SagaEngine(SagaDefinition definition, SagaStore store,
                       std::shared_ptr<spdlog::logger> log)
    : def_(std::move(definition)),
      store_(store),
      log_(std::move(log)),
      retention_(def_.final_retention_ms, kPruneBatch, "final sagas") {}

std::string SagaEngine::step_name(int step) const {
  return step < static_cast<int>(def_.steps.size()) ? step_kind_name(def_.steps[step].kind)
                                                    : "fail_order";
}

void SagaEngine::recover(storage::Txn& txn) {
  deadlines_.clear();
  totals_ = store_.totals(txn);
  store_.scan_active(txn, [&](std::uint64_t id, SagaRecord::Reader r) {
    if (r.getState() == SagaState::RUNNING || r.getState() == SagaState::COMPENSATING) {
      deadlines_[id] = r.getDeadlineMs();
    }
    return true;
  });
  log_->info("recovered sagas: {} running, {} compensating, {} completed, {} failed, {} stuck",
             totals_.running, totals_.compensating, totals_.completed, totals_.failed,
             totals_.stuck);
}

void SagaEngine::set_state(SagaRecord::Builder r, SagaState s) {
  r.setState(s);
  if (s == SagaState::COMPLETED || s == SagaState::FAILED || s == SagaState::STUCK ||
      s == SagaState::ABANDONED) {
    deadlines_.erase(r.getOrderId());
  }
}

void SagaEngine::event(SagaRecord::Builder r, int step, SagaEventKind kind, std::int64_t now,
                       Code code, unsigned attempt) {
  append_timeline(r, static_cast<std::uint8_t>(step), kind, now, static_cast<std::uint16_t>(code),
                  attempt, kMaxTimeline);
  r.setUpdatedAtMs(now);
}

SagaEngine::Record SagaEngine::load(storage::Txn& txn, std::uint64_t id) {
  if (auto it = cache_.find(id); it != cache_.end()) {
    auto mb = std::move(it->second);
    cache_.erase(it);
    return mb;
  }
  auto stored = store_.get(txn, id);
  if (!stored) return nullptr;
  auto mb = std::make_shared<capnp::MallocMessageBuilder>(kRecordWords);
  mb->setRoot(stored->root<SagaRecord>());
  return mb;
}

std::error_code SagaEngine::save(runtime::Context& ctx, Record mb,
                                 std::optional<SagaState> previous,
                                 std::optional<RoundTrip> round_trip) {
  auto r = mb->getRoot<SagaRecord>();
  const SagaState state = r.getState();
  const std::uint64_t id = r.getOrderId();
  if (auto ec = store_.put(ctx.txn(), id, *mb, previous)) return ec;
  // Counted and cached once the transaction commits: one that aborts, or a
  // batch the runtime redoes, leaves the totals as they were and the record
  // out of the cache (the next message reads the store).
  const std::int64_t duration_ms = r.getUpdatedAtMs() - r.getCreatedAtMs();
  const std::uint16_t reason = r.getFailureReason();
  ctx.after_commit([this, id, previous, state, duration_ms, reason, round_trip,
                    mb = std::move(mb)] {
    if (round_trip && metrics_) {
      metrics_->step_round_trip.at(round_trip->slot)
          .observe_us(static_cast<std::uint64_t>(std::max<std::int64_t>(round_trip->ns, 0)) / 1000);
    }
    if (previous != state) {
      totals_.move(previous, state);
      observe_final(state, duration_ms, reason);
    }
    const bool active = state == SagaState::RUNNING || state == SagaState::COMPENSATING;
    if (active && cache_.size() < kMaxCached) {
      cache_.insert_or_assign(id, mb);
    } else {
      cache_.erase(id);
    }
  });
  return {};
}

void SagaEngine::observe_final(SagaState state, std::int64_t duration_ms, std::uint16_t reason) {
  if (!metrics_) return;
  std::optional<ipc::SagaOutcome> outcome;
  if (state == SagaState::COMPLETED) outcome = ipc::SagaOutcome::completed;
  if (state == SagaState::FAILED) outcome = ipc::SagaOutcome::failed;
  if (state == SagaState::STUCK) outcome = ipc::SagaOutcome::stuck;
  if (state == SagaState::ABANDONED) outcome = ipc::SagaOutcome::abandoned;
  if (!outcome) return;
  metrics_->duration[static_cast<std::size_t>(*outcome)].observe_us(
      static_cast<std::uint64_t>(std::max<std::int64_t>(duration_ms, 0)) * 1000);
  if (state == SagaState::FAILED && reason < metrics_->failed_by_reason.size()) {
    metrics_->failed_by_reason[reason].fetch_add(1, std::memory_order_relaxed);
  }
}

bool SagaEngine::skipped(SagaRecord::Reader r, int step) const {
  switch (def_.steps[step].kind) {
    case StepKind::use_coupon:
    case StepKind::apply_coupon:
      return r.getUserCouponId() == 0;
    case StepKind::deduct_points:
      return r.getPointsUsed() == 0;
    default:
      return false;
  }
}

std::error_code SagaEngine::send_current(runtime::Context& ctx, SagaRecord::Builder r) {
  const std::uint64_t order = r.getOrderId();
  const int step = r.getStep();
  const bool comp = r.getState() == SagaState::COMPENSATING;
  const std::uint64_t id = saga_message_id(order, step, comp);
  const std::int64_t now = ctx.now_ms();
  const int base = comp || step >= static_cast<int>(def_.steps.size())
                       ? def_.compensation_timeout_ms
                       : def_.steps[step].timeout_ms;
  // Back off: each retry waits twice as long as the previous one, up to the cap.
  const int shift = static_cast<int>(std::min<unsigned>(std::max(r.getAttempt(), 1u) - 1, 16u));
  const std::int64_t timeout = std::min<std::int64_t>(static_cast<std::int64_t>(base) << shift,
                                                      std::max(base, def_.retry_backoff_max_ms));
  r.setDeadlineMs(now + timeout);
  r.setSentAtNs(ctx.now_ns());
  deadlines_[order] = now + timeout;
  if (r.getAttempt() > 1) {
    event(r, step, SagaEventKind::RETRIED, now, Code::OK, r.getAttempt());
  } else {
    event(r, step, SagaEventKind::SENT, now);
  }

  auto send = [&](DaemonId to, const std::function<void(Payload::Builder)>& fill) {
    return ctx.send(to, order, id, 0, fill);
  };
  if (step >= static_cast<int>(def_.steps.size())) {
    return send(DaemonId::ORDER, [&](Payload::Builder p) {
      auto c = p.initFailOrder();
      c.setOrderId(order);
      c.setReason(static_cast<Code>(r.getFailureReason()));
    });
  }
  switch (def_.steps[step].kind) {
    case StepKind::use_coupon:
      if (comp)
        return send(DaemonId::COUPON,
                    [&](Payload::Builder p) { p.initRestoreCoupon().setOrderId(order); });
      return send(DaemonId::COUPON, [&](Payload::Builder p) {
        auto c = p.initUseCoupon();
        c.setOrderId(order);
        c.setUserId(r.getUserId());
        c.setUserCouponId(r.getUserCouponId());
      });
    case StepKind::apply_coupon:
      return send(DaemonId::ORDER, [&](Payload::Builder p) {
        auto c = p.initApplyCoupon();
        c.setOrderId(order);
        c.setDiscountType(static_cast<msg::DiscountType>(r.getDiscountType()));
        c.setDiscountValue(r.getDiscountValue());
        c.setMinOrderCents(r.getMinOrderCents());
      });
    case StepKind::deduct_inventory:
      if (comp)
        return send(DaemonId::PRODUCT,
                    [&](Payload::Builder p) { p.initRestoreInventory().setOrderId(order); });
      return send(DaemonId::PRODUCT, [&](Payload::Builder p) {
        auto c = p.initDeductInventory();
        c.setOrderId(order);
        auto src = r.getLines();
        auto lines = c.initLines(src.size());
        for (unsigned i = 0; i < src.size(); ++i) {
          lines[i].setProductId(src[i].getProductId());
          lines[i].setQuantity(src[i].getQuantity());
          lines[i].setUnitPriceCents(src[i].getUnitPriceCents());
        }
      });
    case StepKind::start_payment:
      if (comp)
        return send(DaemonId::PAYMENT,
                    [&](Payload::Builder p) { p.initCancelPayment().setOrderId(order); });
      return send(DaemonId::PAYMENT, [&](Payload::Builder p) {
        auto c = p.initStartPayment();
        c.setOrderId(order);
        c.setAmountCents(r.getAmountDueCents());
        c.setPaymentToken(r.getPaymentToken());
        c.setInstallments(r.getInstallments());
      });
    case StepKind::deduct_points:
      if (comp)
        return send(DaemonId::USER,
                    [&](Payload::Builder p) { p.initRestorePoints().setOrderId(order); });
      return send(DaemonId::USER, [&](Payload::Builder p) {
        auto c = p.initDeductPoints();
        c.setOrderId(order);
        c.setUserId(r.getUserId());
        c.setPoints(r.getPointsUsed());
      });
    case StepKind::complete_payment:
      return send(DaemonId::PAYMENT,
                  [&](Payload::Builder p) { p.initCompletePayment().setOrderId(order); });
    case StepKind::complete_order:
      return send(DaemonId::ORDER, [&](Payload::Builder p) {
        auto c = p.initCompleteOrder();
        c.setOrderId(order);
        c.setDiscountCents(r.getDiscountCents());
        c.setPointsUsed(r.getPointsUsed());
        c.setPaidCents(r.getAmountDueCents());
      });
  }
  return {};
}

std::error_code SagaEngine::advance(runtime::Context& ctx, SagaRecord::Builder r, int from_step) {
  int next = from_step + 1;
  while (next < static_cast<int>(def_.steps.size()) && skipped(r, next)) ++next;
  r.setStep(static_cast<std::uint8_t>(next));
  r.setAttempt(1);
  return send_current(ctx, r);
}

std::error_code SagaEngine::begin_compensation(runtime::Context& ctx, SagaRecord::Builder r,
                                               Code reason) {
  set_state(r, SagaState::COMPENSATING);
  r.setFailureReason(static_cast<std::uint16_t>(reason));
  log_->info("saga={} order={} failed at {}: {}; compensating", r.getOrderId(), r.getOrderId(),
             step_name(r.getStep()), runtime::code_name(reason));
  return next_compensation(ctx, r);
}

std::error_code SagaEngine::next_compensation(runtime::Context& ctx, SagaRecord::Builder r) {
  int target = static_cast<int>(def_.steps.size());  // fail_order when nothing is left to undo
  for (int j = static_cast<int>(def_.steps.size()) - 1; j >= 0; --j) {
    if ((r.getDoneMask() & (1u << j)) && has_compensation(def_.steps[j].kind)) {
      target = j;
      break;
    }
  }
  r.setStep(static_cast<std::uint8_t>(target));
  r.setAttempt(1);
  return send_current(ctx, r);
}

std::error_code SagaEngine::start(runtime::Context& ctx, msg::Envelope::Reader m) {
  auto created = m.getPayload().getOrderCreated();
  auto order = created.getOrder();
  const std::uint64_t id = order.getOrderId();
  if (store_.exists(ctx.txn(), id)) return {};  // duplicate OrderCreated: the saga exists
  auto mb = std::make_shared<capnp::MallocMessageBuilder>(kRecordWords);
  auto r = mb->initRoot<SagaRecord>();
  r.setOrderId(id);
  r.setUserId(order.getUserId());
  auto src = order.getLines();
  auto lines = r.initLines(src.size());
  for (unsigned i = 0; i < src.size(); ++i) {
    lines[i].setProductId(src[i].getProductId());
    lines[i].setQuantity(src[i].getQuantity());
    lines[i].setUnitPriceCents(src[i].getUnitPriceCents());
  }
  r.setUserCouponId(order.getUserCouponId());
  r.setPointsRequested(order.getPoints());
  r.setShippingCents(order.getShippingCents());
  r.setSubtotalCents(created.getSubtotalCents());
  r.setPaymentToken(order.getPaymentToken());
  r.setInstallments(order.getInstallments());
  r.setTraceIdHigh(m.getTraceIdHigh());
  r.setTraceIdLow(m.getTraceId());
  r.setState(SagaState::RUNNING);
  const auto now = ctx.now_ms();
  r.setCreatedAtMs(now);
  auto kinds = r.initStepKinds(def_.steps.size());
  for (unsigned i = 0; i < def_.steps.size(); ++i)
    kinds.set(i, static_cast<std::uint8_t>(def_.steps[i].kind));
  recompute_amounts(r);
  event(r, SAGA_STEP, SagaEventKind::STARTED, now);
  if (auto ec = advance(ctx, r, -1)) return ec;
  return save(ctx, std::move(mb), std::nullopt);
}

std::error_code SagaEngine::on_message(runtime::Context& ctx, msg::Envelope::Reader m) {
  if (m.getPayload().isOrderCreated()) return start(ctx, m);
  auto info = classify(m);
  if (!info) {
    log_->warn("unexpected message type {} from {}", static_cast<int>(m.getPayload().which()),
               runtime::daemon_name(m.getSender()));
    return {};
  }
  const std::uint64_t order = m.getSagaId();
  auto mb = load(ctx.txn(), order);
  if (!mb) {
    log_->warn("saga={} reply for an unknown saga ignored", order);
    return {};
  }
  auto r = mb->getRoot<SagaRecord>();
  const auto state = r.getState();
  if (state != SagaState::RUNNING && state != SagaState::COMPENSATING) return {};
  const bool comp = state == SagaState::COMPENSATING;
  if (m.getCorrelationId() != saga_message_id(order, r.getStep(), comp)) {
    log_->debug("saga={} stale reply ignored", order);
    return {};
  }
  const int step = r.getStep();
  const auto now = ctx.now_ms();
  const std::size_t metric_slot = step >= static_cast<int>(def_.steps.size())
                                      ? kFailOrderMetricSlot
                                      : step_metric_slot(def_.steps[step].kind, comp);
  const std::int64_t sent_at_ns = r.getSentAtNs();  // 0: a record from before the field
  const std::int64_t round_trip_ns = ctx.now_ns() - sent_at_ns;
  std::error_code ec;
  if (!comp) {
    const auto kind = def_.steps[step].kind;
    if (info->code != Code::OK) {
      event(r, step, SagaEventKind::FAILED, now, info->code);
      ec = begin_compensation(ctx, r,
                              is_saga_reason(info->code) ? info->code : default_reason(kind));
    } else {
      event(r, step, SagaEventKind::OK, now);
      r.setDoneMask(r.getDoneMask() | (1u << step));
      auto p = m.getPayload();
      if (kind == StepKind::use_coupon) {
        auto u = p.getCouponUsed();
        r.setCouponId(u.getCouponId());
        r.setDiscountType(static_cast<std::uint8_t>(u.getDiscountType()));
        r.setDiscountValue(u.getDiscountValue());
        r.setMinOrderCents(u.getMinOrderCents());
      } else if (kind == StepKind::apply_coupon) {
        r.setDiscountCents(p.getCouponApplied().getDiscountCents());
        recompute_amounts(r);
      }
      if (kind == StepKind::complete_order) {
        set_state(r, SagaState::COMPLETED);
        event(r, SAGA_STEP, SagaEventKind::COMPLETED, now);
      } else {
        ec = advance(ctx, r, step);
      }
    }
  } else if (step >= static_cast<int>(def_.steps.size())) {
    set_state(r, SagaState::FAILED);
    event(r, SAGA_STEP, SagaEventKind::SAGA_FAILED, now);
  } else if (info->code == Code::OK) {
    event(r, step, SagaEventKind::COMPENSATED, now);
    r.setDoneMask(r.getDoneMask() & ~(1u << step));
    ec = next_compensation(ctx, r);
  }  // a failed compensation is retried when its deadline passes
  if (ec) return ec;
  std::optional<RoundTrip> round_trip;
  if (sent_at_ns != 0) round_trip = RoundTrip{metric_slot, round_trip_ns};
  return save(ctx, std::move(mb), state, round_trip);
}

std::error_code SagaEngine::on_timeout(runtime::Context& ctx, SagaRecord::Builder r) {
  const int step = r.getStep();
  const bool comp = r.getState() == SagaState::COMPENSATING;
  const auto now = ctx.now_ms();
  event(r, step, SagaEventKind::TIMED_OUT, now);
  if (!comp) {
    const auto kind = def_.steps[step].kind;
    // complete_order is never given up: payment is captured, only the order record is missing.
    if (r.getAttempt() < static_cast<unsigned>(def_.steps[step].max_attempts) ||
        kind == StepKind::complete_order) {
      r.setAttempt(r.getAttempt() + 1);
      return send_current(ctx, r);
    }
    // Unknown outcome: the command may have taken effect, so undo it too.
    r.setDoneMask(r.getDoneMask() | (1u << step));
    const bool payment = kind == StepKind::start_payment || kind == StepKind::complete_payment;
    return begin_compensation(ctx, r, payment ? Code::PAYMENT_TIMEOUT : Code::STEP_TIMEOUT);
  }
  if (r.getAttempt() < static_cast<unsigned>(def_.compensation_max_attempts)) {
    r.setAttempt(r.getAttempt() + 1);
    return send_current(ctx, r);
  }
  set_state(r, SagaState::STUCK);
  event(r, step, SagaEventKind::STUCK, now);
  log_->error("saga={} order={} STUCK: compensation {} exhausted its retry budget", r.getOrderId(),
              r.getOrderId(), step_name(step));
  return {};
}

void SagaEngine::prune(runtime::Runtime& rt, std::int64_t now_ms) {
  // Logged by Retention; an error is retried on a later tick.
  (void)retention_.run(rt, now_ms, [&](storage::Txn& txn, std::int64_t cutoff, std::size_t n) {
    return store_.prune_final(txn, cutoff, n);
  });
}

void SagaEngine::on_tick(runtime::Runtime& rt, std::int64_t now_ms) {
  prune(rt, now_ms);
  std::vector<std::uint64_t> due;
  for (const auto& [id, deadline] : deadlines_) {
    if (deadline <= now_ms) due.push_back(id);
    if (due.size() >= 512) break;
  }
  if (due.empty()) return;
  auto ec = rt.transact([&](runtime::Context& ctx) -> std::error_code {
    for (auto id : due) {
      auto mb = load(ctx.txn(), id);
      if (!mb) {
        deadlines_.erase(id);
        continue;
      }
      auto r = mb->getRoot<SagaRecord>();
      if (r.getState() != SagaState::RUNNING && r.getState() != SagaState::COMPENSATING) {
        deadlines_.erase(id);
        continue;
      }
      if (r.getDeadlineMs() > now_ms) {
        deadlines_[id] = r.getDeadlineMs();
        continue;
      }
      // The retry continues the saga's trace (Context::send stamps it).
      const telemetry::ScopedFields fields(log_fields(r));
      log_->info("saga={} order={} step {} timed out (attempt {})", id, id, step_name(r.getStep()),
                 r.getAttempt());
      const auto previous = r.getState();
      if (auto e = on_timeout(ctx, r)) return e;
      if (auto e = save(ctx, mb, previous)) return e;
    }
    return {};
  });
  if (ec) log_->error("saga timeout handling failed: {}", ec.message());
}

ipc::ControlReply SagaEngine::operate(
    runtime::Runtime& rt, std::uint64_t order_id, const char* action,
    const std::function<ipc::ControlReply(runtime::Context&, SagaRecord::Builder)>& fn) {
  ipc::ControlReply reply;
  auto ec = rt.transact([&](runtime::Context& ctx) -> std::error_code {
    auto mb = load(ctx.txn(), order_id);
    if (!mb) {
      reply = {ipc::ControlResult::not_found, fmt::format("no saga for order {}", order_id)};
      return {};
    }
    const auto previous = mb->getRoot<SagaRecord>().getState();
    const telemetry::ScopedFields fields(log_fields(mb->getRoot<SagaRecord>()));
    reply = fn(ctx, mb->getRoot<SagaRecord>());
    // A refused action may have left the builder half-changed: not cached.
    return reply.result == ipc::ControlResult::ok ? save(ctx, std::move(mb), previous)
                                                  : std::error_code{};
  });
  if (ec) return {ipc::ControlResult::failed, fmt::format("cannot {}: {}", action, ec.message())};
  return reply;
}

ipc::ControlReply SagaEngine::redrive(runtime::Runtime& rt, std::uint64_t order_id) {
  return operate(
      rt, order_id, "re-drive",
      [&](runtime::Context& ctx, SagaRecord::Builder r) -> ipc::ControlReply {
        if (r.getState() != SagaState::STUCK) {
          // Re-driving twice is harmless: the first one already resumed it.
          const bool resumed =
              r.getState() == SagaState::COMPENSATING || r.getState() == SagaState::FAILED;
          return {resumed ? ipc::ControlResult::already_done : ipc::ControlResult::bad_request,
                  fmt::format("saga {} is {}, not STUCK", order_id, state_name(r.getState()))};
        }
        set_state(r, SagaState::COMPENSATING);
        event(r, r.getStep(), SagaEventKind::REDRIVEN, ctx.now_ms());
        r.setAttempt(1);
        if (auto e = send_current(ctx, r)) {
          return {ipc::ControlResult::failed, "cannot send: " + e.message()};
        }
        return {ipc::ControlResult::ok, fmt::format("saga {} compensating again from {}", order_id,
                                                    step_name(r.getStep()))};
      });
}

ipc::ControlReply SagaEngine::abandon(runtime::Runtime& rt, std::uint64_t order_id) {
  return operate(
      rt, order_id, "abandon",
      [&](runtime::Context& ctx, SagaRecord::Builder r) -> ipc::ControlReply {
        if (r.getState() == SagaState::ABANDONED) {
          return {ipc::ControlResult::already_done,
                  fmt::format("saga {} already abandoned", order_id)};
        }
        if (r.getState() != SagaState::STUCK) {
          return {ipc::ControlResult::bad_request,
                  fmt::format("saga {} is {}, not STUCK", order_id, state_name(r.getState()))};
        }
        set_state(r, SagaState::ABANDONED);
        event(r, r.getStep(), SagaEventKind::ABANDONED, ctx.now_ms());
        log_->warn("saga={} order={} ABANDONED by the operator at {}", order_id, order_id,
                   step_name(r.getStep()));
        return {ipc::ControlResult::ok, fmt::format("saga {} abandoned", order_id)};
      });
}

std::int64_t retry_wait_ms(int base_ms, unsigned attempt, int cap_ms) {
  const unsigned shift = std::min(std::max(attempt, 1u) - 1, 16u);
  return std::min<std::int64_t>(static_cast<std::int64_t>(base_ms) << shift,
                                std::max(base_ms, cap_ms));
}

std::int64_t SagaEngine::next_deadline() const {
  std::int64_t best = 0;
  for (const auto& [id, d] : deadlines_) {
    if (best == 0 || d < best) best = d;
  }
  return best;
}

}  // namespace ringmart::supervisor
