#include "daemons/supervisor/saga_store.hpp"

#include <capnp/orphan.h>

#include <algorithm>
#include <array>

#include "schemas/codes.hpp"
#include "telemetry/trace_context.hpp"

namespace ringmart::supervisor {

const char* state_name(SagaState s) {
  switch (s) {
    case SagaState::RUNNING:
      return "RUNNING";
    case SagaState::COMPENSATING:
      return "COMPENSATING";
    case SagaState::COMPLETED:
      return "COMPLETED";
    case SagaState::FAILED:
      return "FAILED";
    case SagaState::STUCK:
      return "STUCK";
    case SagaState::ABANDONED:
      return "ABANDONED";
  }
  return "UNKNOWN";
}

bool is_final(SagaState s) {
  return s == SagaState::COMPLETED || s == SagaState::FAILED || s == SagaState::ABANDONED;
}

namespace {
constexpr std::array<const char*, kStepKinds> kKindNames = {
    "use_coupon",    "apply_coupon",     "deduct_inventory", "start_payment",
    "deduct_points", "complete_payment", "complete_order"};
// 1: sagas_active and totals kept by put(); 2: sagas_final too.
constexpr std::uint32_t kVersion = 2;
constexpr std::string_view kTotalsKey = "totals", kVersionKey = "version";
std::span<const std::byte> key_of(std::string_view name) { return std::as_bytes(std::span(name)); }
storage::Key final_key(std::int64_t ended_ms, std::uint64_t id) {
  return storage::Key{}
      .u64(static_cast<std::uint64_t>(std::max<std::int64_t>(0, ended_ms)))
      .u64(id);
}

std::uint64_t& count_of(SagaTotals& t, SagaState s) {
  switch (s) {
    case SagaState::RUNNING:
      return t.running;
    case SagaState::COMPENSATING:
      return t.compensating;
    case SagaState::COMPLETED:
      return t.completed;
    case SagaState::FAILED:
      return t.failed;
    case SagaState::STUCK:
      return t.stuck;
    case SagaState::ABANDONED:
      return t.abandoned;
  }
  return t.abandoned;
}

/// "sent", "retry 3", "failed OUT_OF_STOCK", ...: the text the API has always shown.
std::string event_text(SagaTimelineEntry::Reader e) {
  switch (e.getKind()) {
    case SagaEventKind::STARTED:
      return "started";
    case SagaEventKind::SENT:
      return "sent";
    case SagaEventKind::RETRIED:
      return "retry " + std::to_string(e.getAttempt());
    case SagaEventKind::OK:
      return "ok";
    case SagaEventKind::FAILED:
      return std::string("failed ") + msg::code_name(static_cast<msg::Code>(e.getCode()));
    case SagaEventKind::COMPENSATED:
      return "compensated";
    case SagaEventKind::TIMED_OUT:
      return "timeout";
    case SagaEventKind::STUCK:
      return "stuck";
    case SagaEventKind::COMPLETED:
      return "completed";
    case SagaEventKind::SAGA_FAILED:
      return "failed";
    case SagaEventKind::REDRIVEN:
      return "re-driven by the operator";
    case SagaEventKind::ABANDONED:
      return "abandoned by the operator";
  }
  return "unknown";
}
}  // namespace

std::optional<StepKind> parse_step_kind(std::string_view name) {
  for (std::size_t i = 0; i < kKindNames.size(); ++i) {
    if (name == kKindNames[i]) return static_cast<StepKind>(i);
  }
  return std::nullopt;
}

const char* step_kind_name(StepKind k) { return kKindNames.at(static_cast<std::size_t>(k)); }

std::optional<std::pair<std::string, std::string>> step_metric_labels(std::size_t slot) {
  if (slot == kFailOrderMetricSlot)
    return std::pair<std::string, std::string>{"fail_order", "compensation"};
  if (slot >= kFailOrderMetricSlot) return std::nullopt;
  return std::pair<std::string, std::string>{step_kind_name(static_cast<StepKind>(slot / 2)),
                                             slot % 2 ? "compensation" : "forward"};
}

void append_timeline(SagaRecord::Builder r, std::uint8_t step, SagaEventKind kind,
                     std::int64_t at_ms, std::uint16_t code, unsigned attempt,
                     unsigned max_entries) {
  auto orphan = r.disownTimeline();
  if (orphan == nullptr) {  // a record from before the timeline
    orphan =
        capnp::Orphanage::getForMessageContaining(r).newOrphan<capnp::List<SagaTimelineEntry>>(0);
  }
  const unsigned size = orphan.getReader().size();
  if (size < max_entries) orphan.truncate(size + 1);
  auto list = orphan.get();
  if (size >= max_entries) {  // full: drop the oldest entry
    for (unsigned i = 0; i + 1 < list.size(); ++i) list.setWithCaveats(i, list[i + 1].asReader());
  }
  auto e = list[list.size() - 1];
  e.setStep(step);
  e.setKind(kind);
  e.setCode(code);
  e.setAttempt(static_cast<std::uint16_t>(std::min(attempt, 0xFFFFu)));
  e.setAtMs(at_ms);
  r.adoptTimeline(kj::mv(orphan));
}

void SagaTotals::move(std::optional<SagaState> from, SagaState to) {
  if (from == to) return;
  if (from) --count_of(*this, *from);
  ++count_of(*this, to);
}

std::expected<SagaStore, std::error_code> SagaStore::open(storage::Txn& txn) {
  SagaStore s;
  for (auto [table, name] : {std::pair{&s.sagas_, "sagas"},
                             {&s.active_, "sagas_active"},
                             {&s.final_, "sagas_final"},
                             {&s.meta_, "saga_meta"}}) {
    // sagas_final came with store version 2: an older environment opened
    // read-only has none yet.
    auto t = table == &s.final_ ? storage::Table::open_added(txn, name)
                                : storage::Table::open(txn, name);
    if (!t) return std::unexpected(t.error());
    *table = *t;
  }
  if (txn.writable() && s.meta_.get_pod<std::uint32_t>(txn, key_of(kVersionKey)) != kVersion) {
    if (auto ec = s.index_all(txn)) return std::unexpected(ec);
  }
  return s;
}

std::error_code SagaStore::index_all(storage::Txn& txn) const {
  SagaTotals totals;
  std::vector<std::uint64_t> active;
  std::vector<storage::Key> ended;
  scan(txn, [&](std::uint64_t id, SagaRecord::Reader r) {
    totals.move(std::nullopt, r.getState());
    if (!is_final(r.getState())) {
      active.push_back(id);
    } else {
      ended.push_back(final_key(r.getUpdatedAtMs(), id));
    }
    return true;
  });
  for (auto id : active) {
    if (auto ec = active_.put(txn, storage::Key{}.u64(id).view(), {})) return ec;
  }
  for (const auto& k : ended) {
    if (auto ec = final_.put(txn, k.view(), {})) return ec;
  }
  if (auto ec = meta_.put_pod(txn, key_of(kTotalsKey), totals)) return ec;
  return meta_.put_pod(txn, key_of(kVersionKey), kVersion);
}

std::optional<storage::StoredMessage> SagaStore::get(storage::Txn& txn, std::uint64_t id) const {
  return storage::get_message(sagas_, txn, storage::Key{}.u64(id).view());
}

bool SagaStore::exists(storage::Txn& txn, std::uint64_t id) const {
  return sagas_.get(txn, storage::Key{}.u64(id).view()).has_value();
}

std::error_code SagaStore::put(storage::Txn& txn, std::uint64_t id, capnp::MessageBuilder& record,
                               std::optional<SagaState> previous) const {
  const auto key = storage::Key{}.u64(id);
  if (auto ec = storage::put_message(sagas_, txn, key.view(), record)) return ec;
  const SagaState state = record.getRoot<SagaRecord>().getState();
  if (previous == state) return {};
  const bool was_active = previous && !is_final(*previous);
  if (!is_final(state) && !was_active) {
    if (auto ec = active_.put(txn, key.view(), {})) return ec;
  } else if (is_final(state) && was_active) {
    active_.del(txn, key.view());
  }
  if (is_final(state) && !(previous && is_final(*previous))) {
    const auto ended = record.getRoot<SagaRecord>().getUpdatedAtMs();
    if (auto ec = final_.put(txn, final_key(ended, id).view(), {})) return ec;
  }
  auto totals = this->totals(txn);
  totals.move(previous, state);
  return meta_.put_pod(txn, key_of(kTotalsKey), totals);
}

void SagaStore::scan(storage::Txn& txn,
                     const std::function<bool(std::uint64_t, SagaRecord::Reader)>& fn) const {
  sagas_.scan(txn, {}, [&](std::span<const std::byte> k, std::span<const std::byte> v) {
    storage::StoredMessage m(v);
    return fn(storage::read_u64_be(k), m.root<SagaRecord>());
  });
}

void SagaStore::scan_active(
    storage::Txn& txn, const std::function<bool(std::uint64_t, SagaRecord::Reader)>& fn) const {
  active_.scan(txn, {}, [&](std::span<const std::byte> k, std::span<const std::byte>) {
    const std::uint64_t id = storage::read_u64_be(k);
    auto m = get(txn, id);
    return !m || fn(id, m->root<SagaRecord>());
  });
}

std::expected<storage::PruneResult, std::error_code> SagaStore::prune_final(
    storage::Txn& txn, std::int64_t ended_before_ms, std::size_t limit) const {
  storage::PruneResult result;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> due;  // (ended ms, id)
  final_.scan(txn, {}, [&](std::span<const std::byte> k, std::span<const std::byte>) {
    if (due.size() >= limit || k.size() != 16) return false;
    const auto ended = static_cast<std::int64_t>(storage::read_u64_be(k));
    if (ended >= ended_before_ms) {
      result.oldest_kept_ms = ended;
      return false;
    }
    due.emplace_back(ended, storage::read_u64_be(k, 8));
    return true;
  });
  for (const auto& [ended, id] : due) {
    if (auto r = final_.erase(txn, final_key(static_cast<std::int64_t>(ended), id).view()); !r) {
      return std::unexpected(r.error());
    }
    if (auto r = sagas_.erase(txn, storage::Key{}.u64(id).view()); !r) {
      return std::unexpected(r.error());
    }
  }
  result.deleted = due.size();
  return result;
}

SagaTotals SagaStore::totals(storage::Txn& txn) const {
  return meta_.get_pod<SagaTotals>(txn, key_of(kTotalsKey)).value_or(SagaTotals{});
}

SagaView SagaStore::view(SagaRecord::Reader r) {
  SagaView v;
  v.saga_id = v.order_id = r.getOrderId();
  v.state = state_name(r.getState());
  std::vector<std::string> names;
  for (auto k : r.getStepKinds()) {
    names.emplace_back(k < kKindNames.size() ? kKindNames[k] : "unknown");
  }
  if (names.empty()) {
    for (auto n : r.getStepNames()) names.emplace_back(n.cStr());
  }
  auto name = [&](unsigned step) -> std::string {
    if (step == SAGA_STEP) return "saga";
    return step < names.size() ? names[step] : "fail_order";
  };
  const bool terminal = r.getState() == SagaState::COMPLETED || r.getState() == SagaState::FAILED;
  if (!terminal) v.step = name(r.getStep());
  if (r.getState() == SagaState::FAILED || r.getState() == SagaState::STUCK ||
      r.getState() == SagaState::ABANDONED || r.getState() == SagaState::COMPENSATING) {
    v.failure_reason = msg::code_name(static_cast<msg::Code>(r.getFailureReason()));
  }
  v.created_at_ms = r.getCreatedAtMs();
  v.updated_at_ms = r.getUpdatedAtMs();
  v.trace_id = telemetry::TraceId{r.getTraceIdHigh(), r.getTraceIdLow()}.hex();
  for (auto e : r.getHistory()) v.history.push_back({e.getStep(), e.getEvent(), e.getAtMs()});
  for (auto e : r.getTimeline())
    v.history.push_back({name(e.getStep()), event_text(e), e.getAtMs()});
  return v;
}

std::expected<SagaQueries, std::error_code> SagaQueries::open(const std::string& env_path,
                                                              std::size_t map_size_bytes) {
  auto ro = storage::open_read_only<SagaStore>(env_path, map_size_bytes);
  if (!ro) return std::unexpected(ro.error());
  SagaQueries q;
  q.env_ = std::move(ro->env);
  q.store_ = ro->store;
  return q;
}

std::optional<SagaView> SagaQueries::get(std::uint64_t order_id) const {
  auto txn = storage::Txn::begin_read(*env_);
  if (!txn) return std::nullopt;
  auto m = store_.get(*txn, order_id);
  if (!m) return std::nullopt;
  return SagaStore::view(m->root<SagaRecord>());
}

std::vector<SagaView> SagaQueries::list(const std::string& state, std::size_t limit) const {
  std::vector<SagaView> out;
  auto txn = storage::Txn::begin_read(*env_);
  if (!txn) return out;
  auto add = [&](std::uint64_t, SagaRecord::Reader r) {
    if (state.empty() || state == state_name(r.getState())) out.push_back(SagaStore::view(r));
    return out.size() < limit;
  };
  // RUNNING, COMPENSATING and STUCK sagas are few: read them through the index.
  const bool active = state == "RUNNING" || state == "COMPENSATING" || state == "STUCK";
  if (active) {
    store_.scan_active(*txn, add);
  } else {
    store_.scan(*txn, add);
  }
  return out;
}

}  // namespace ringmart::supervisor
