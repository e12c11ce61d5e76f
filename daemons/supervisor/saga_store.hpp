// ringmart::supervisor — the saga store: saga instances in the supervisor's
// LMDB environment, and the read-only query library over it (the gateway's
// GET /v1/sagas/{id}, ringmartctl).
//
// A saga's id is its order id. Thread-safety: like the Txn used.
#pragma once

#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "daemons/supervisor/saga_records.capnp.h"
#include "storage/capnp_value.hpp"
#include "storage/lmdb.hpp"

namespace ringmart::supervisor {

enum class StepKind {
  use_coupon,        ///< coupon: UseCoupon / RestoreCoupon (skipped without a coupon)
  apply_coupon,      ///< order: ApplyCoupon (skipped without a coupon; no compensation)
  deduct_inventory,  ///< product: DeductInventory / RestoreInventory
  start_payment,     ///< payment: StartPayment (authorize) / CancelPayment (void)
  deduct_points,     ///< user: DeductPoints / RestorePoints (skipped when no points)
  complete_payment,  ///< payment: CompletePayment (capture); undone by CancelPayment of
                     ///< start_payment
  complete_order,    ///< order: CompleteOrder (last; retried until it answers)
};
/// How many step kinds there are (StepKind values are 0 .. kStepKinds - 1).
inline constexpr int kStepKinds = static_cast<int>(StepKind::complete_order) + 1;
/// The step kind of its config name ("deduct_inventory"), or nullopt.
std::optional<StepKind> parse_step_kind(std::string_view name);
/// The config name of a step kind.
const char* step_kind_name(StepKind k);

/// The ipc::SagaMetrics::step_round_trip slot of a step's command (its kind,
/// forward or compensation); fail_order has kFailOrderMetricSlot.
constexpr std::size_t step_metric_slot(StepKind k, bool compensation) {
  return static_cast<std::size_t>(k) * 2 + (compensation ? 1 : 0);
}
inline constexpr std::size_t kFailOrderMetricSlot = static_cast<std::size_t>(kStepKinds) * 2;
/// Labels of a step_round_trip slot: {step name, "forward" | "compensation"},
/// or nullopt for a slot no command uses.
std::optional<std::pair<std::string, std::string>> step_metric_labels(std::size_t slot);

/// One entry of a saga's timeline.
struct SagaEvent {
  std::string step;   ///< "deduct_inventory", "fail_order", ...
  std::string event;  ///< "sent", "ok", "failed OUT_OF_STOCK", "timeout", "retry", "compensated"
  std::int64_t at_ms = 0;  ///< realtime ms
};

/// A saga as operators and the API see it.
struct SagaView {
  std::uint64_t saga_id = 0;
  std::uint64_t order_id = 0;
  std::string state;  ///< "RUNNING", "COMPENSATING", "COMPLETED", "FAILED", "STUCK", "ABANDONED"
  std::string step;   ///< current step name ("" when terminal)
  std::string failure_reason;  ///< "" unless FAILED/STUCK
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
  std::string trace_id;  ///< W3C trace id, 32 hex digits ("" for a saga without one)
  std::vector<SagaEvent> history;
};

const char* state_name(SagaState s);
/// COMPLETED, FAILED and ABANDONED: nothing will happen to the saga again.
bool is_final(SagaState s);

/// Appends an entry to `r`'s timeline, dropping the oldest once it holds
/// `max_entries`. Grows the list in place when it is the message's last
/// object — as after SagaRecord's setRoot copy (pointer fields in order) —
/// so a step costs no copy of the record. `attempt` is clamped to 65535.
void append_timeline(SagaRecord::Builder r, std::uint8_t step, SagaEventKind kind,
                     std::int64_t at_ms, std::uint16_t code, unsigned attempt,
                     unsigned max_entries);

/// Sagas per state.
struct SagaTotals {
  std::uint64_t running = 0, compensating = 0, completed = 0, failed = 0, stuck = 0, abandoned = 0;
  /// Counts one saga moving from `from` (nullopt: a new saga) to `to`.
  void move(std::optional<SagaState> from, SagaState to);
  bool operator==(const SagaTotals&) const = default;
};

/// The supervisor's saga tables:
///   sagas         u64 order id -> SagaRecord
///   sagas_active  u64 order id -> (empty): the sagas that are not final
///                 (RUNNING, COMPENSATING, STUCK), what a restart resumes
///   sagas_final   u64 final-at realtime ms, u64 order id -> (empty): the
///                 final sagas in the order they ended, what retention prunes
///   saga_meta     "totals" -> SagaTotals (6 x u64, host order); "version" -> u32
/// put() keeps them in step in the caller's transaction, so a restart reads
/// the totals and the active sagas instead of scanning every saga.
class SagaStore {
 public:
  /// Opens the tables. In a write txn it creates them, and an environment
  /// written before the indexes existed (no "version", or an older one) is
  /// indexed once by a full scan (a final saga's end is its updatedAtMs). Errors: LMDB codes
  /// (MDB_NOTFOUND read-only before the supervisor created the tables).
  static std::expected<SagaStore, std::error_code> open(storage::Txn& txn);
  SagaStore() = default;

  std::optional<storage::StoredMessage> get(storage::Txn& txn, std::uint64_t saga_id) const;
  /// Whether saga `saga_id` is stored (no copy of the record).
  bool exists(storage::Txn& txn, std::uint64_t saga_id) const;
  /// Stores `record` for `saga_id`; `previous` is the state stored before
  /// (nullopt for a new saga), from which the index and the totals follow.
  /// Errors: LMDB codes (MDB_MAP_FULL).
  std::error_code put(storage::Txn& txn, std::uint64_t saga_id, capnp::MessageBuilder& record,
                      std::optional<SagaState> previous) const;
  /// Visits every saga in id order while `fn` returns true.
  void scan(storage::Txn& txn,
            const std::function<bool(std::uint64_t saga_id, SagaRecord::Reader)>& fn) const;
  /// Visits the sagas that are not final, in id order, while `fn` returns true.
  void scan_active(storage::Txn& txn,
                   const std::function<bool(std::uint64_t saga_id, SagaRecord::Reader)>& fn) const;
  /// Retention: deletes at most `limit` final sagas (COMPLETED, FAILED,
  /// ABANDONED) that ended before `ended_before_ms` (realtime), oldest first,
  /// with their index rows; returns how many, and when the oldest final saga
  /// left ended. Sagas that are not final are never touched, and the totals
  /// keep counting pruned sagas (they count every saga run). Errors: LMDB codes.
  std::expected<storage::PruneResult, std::error_code> prune_final(storage::Txn& txn,
                                                                   std::int64_t ended_before_ms,
                                                                   std::size_t limit) const;
  /// The persisted totals.
  SagaTotals totals(storage::Txn& txn) const;
  /// The API/operator view of a stored record (records of either layout:
  /// timeline/stepKinds, or the legacy history/stepNames).
  static SagaView view(SagaRecord::Reader r);

 private:
  std::error_code index_all(storage::Txn& txn) const;

  storage::Table sagas_, active_, final_, meta_;
};

/// Read-only access to the supervisor's environment from another process.
class SagaQueries {
 public:
  /// Opens `state_dir/supervisor` read-only. Errors: ENOENT before the
  /// supervisor first ran; LMDB codes.
  static std::expected<SagaQueries, std::error_code> open(const std::string& env_path,
                                                          std::size_t map_size_bytes);
  /// The saga of `order_id`, or nullopt.
  std::optional<SagaView> get(std::uint64_t order_id) const;
  /// Sagas whose state is `state` (all when empty), at most `limit`, id order.
  std::vector<SagaView> list(const std::string& state, std::size_t limit) const;

 private:
  std::shared_ptr<storage::Env> env_;
  SagaStore store_;
};

}  // namespace ringmart::supervisor
