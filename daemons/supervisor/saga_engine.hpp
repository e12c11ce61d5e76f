// ringmart::supervisor — the order saga engine (orchestration).
//
// The step list, order, timeouts and retry budgets are data (SagaDefinition,
// from the [saga] table of the config); what each step kind sends, and which
// compensation undoes it, is code. Per saga the engine keeps one command in
// flight. Every command has a stable message id, (order_id << 8) | (step << 1)
// | compensation, reused on every retry, and each domain daemon is idempotent
// per order, so a timeout (unknown outcome) is safe to retry. A forward step
// that exhausts its budget is treated as possibly applied and compensated.
//
//   RUNNING ──step fails / times out──► COMPENSATING ──all undone──► fail_order ──► FAILED
//      │                                      └──compensation budget exhausted──► STUCK
//      └──complete_order ok──► COMPLETED                      STUCK ──operator re-drive──►
//      COMPENSATING
//                                                             STUCK ──operator abandon──► ABANDONED
//
// Retries back off: the n-th send of a command waits timeout_ms * 2^(n-1),
// capped at retry_backoff_max_ms (never below timeout_ms), before the next.
//
// Thread-safety: loop thread only (the supervisor's runtime).
#pragma once

#include <spdlog/logger.h>

#include <array>
#include <cstdint>
#include <expected>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "daemons/common/retention.hpp"
#include "daemons/common/runtime.hpp"
#include "daemons/supervisor/saga_store.hpp"

namespace ringmart::supervisor {

struct StepDef {
  StepKind kind;
  int timeout_ms = 2000;  ///< wait for the reply before retrying
  int max_attempts = 5;   ///< sends before the outcome is declared unknown
};

struct SagaDefinition {
  std::vector<StepDef> steps;
  int compensation_timeout_ms = 2000;
  int compensation_max_attempts = 30;  ///< then the saga is STUCK
  int retry_backoff_max_ms = 8000;     ///< cap of the doubling wait between retries
  /// Retention: a final saga (COMPLETED, FAILED, ABANDONED) is deleted this
  /// long after it ended (`[saga] final_retention_hours`, 0 = kept forever).
  /// The order, its payment and its stock records stay with their daemons;
  /// only the saga's own record and timeline go.
  std::int64_t final_retention_ms = std::int64_t{7} * 24 * 3600 * 1000;

  /// The default order of DESIGN.md.
  static SagaDefinition standard();
  /// Reads `[saga] steps = [...]`, `[saga.<step>] timeout_ms / max_attempts`,
  /// `[saga] compensation_timeout_ms / compensation_max_attempts / retry_backoff_max_ms /
  /// final_retention_hours`.
  /// Errors: unknown step name, duplicate step, complete_order not last,
  /// apply_coupon before use_coupon, start_payment after complete_payment.
  static std::expected<SagaDefinition, std::string> from_config(const runtime::Config& config);
};

class SagaEngine {
 public:
  SagaEngine(SagaDefinition definition, SagaStore store, std::shared_ptr<spdlog::logger> log);

  /// Rebuilds the in-memory timers and totals from the store (after a restart
  /// every non-terminal saga continues where it was).
  void recover(storage::Txn& txn);
  /// Applies an event from a domain daemon (or starts a saga on orderCreated).
  /// Stale replies (not the command in flight) are ignored.
  std::error_code on_message(runtime::Context& ctx, msg::Envelope::Reader m);
  /// Retries or gives up on commands whose deadline (realtime ms) passed;
  /// deletes up to kPruneBatch final sagas past their retention when a pass
  /// is due (runtime::Retention: again on the next tick while more are due,
  /// else when the oldest one left comes due).
  void on_tick(runtime::Runtime& rt, std::int64_t now_ms);
  /// Final sagas deleted per retention transaction.
  static constexpr std::size_t kPruneBatch = 1024;
  /// Operator: a STUCK saga resumes its compensation with a fresh retry
  /// budget (same message ids, so re-driving twice is harmless).
  /// Errors (as the reply): not_found, bad_request when not STUCK.
  ipc::ControlReply redrive(runtime::Runtime& rt, std::uint64_t order_id);
  /// Operator: a STUCK saga becomes ABANDONED (terminal; its remaining
  /// compensations are not sent; the operator settles them by hand).
  ipc::ControlReply abandon(runtime::Runtime& rt, std::uint64_t order_id);
  /// Earliest deadline (realtime ms) of a command in flight, 0 when none.
  std::int64_t next_deadline() const;
  const SagaTotals& totals() const { return totals_; }
  /// Where to record saga durations, step round trips and failure reasons
  /// (the status region's; nullptr: not measured). Recorded once the change
  /// commits.
  void set_metrics(ipc::SagaMetrics* metrics) { metrics_ = metrics; }

 private:
  struct Loaded;
  std::error_code start(runtime::Context& ctx, msg::Envelope::Reader m);
  std::error_code send_current(runtime::Context& ctx, SagaRecord::Builder r);
  std::error_code advance(runtime::Context& ctx, SagaRecord::Builder r, int from_step);
  std::error_code begin_compensation(runtime::Context& ctx, SagaRecord::Builder r,
                                     msg::Code reason);
  std::error_code next_compensation(runtime::Context& ctx, SagaRecord::Builder r);
  std::error_code on_timeout(runtime::Context& ctx, SagaRecord::Builder r);
  bool skipped(SagaRecord::Reader r, int step) const;
  void set_state(SagaRecord::Builder r, SagaState s);
  /// Appends to the record's timeline (the most recent 64 entries are kept).
  void event(SagaRecord::Builder r, int step, SagaEventKind kind, std::int64_t now,
             msg::Code code = msg::Code::OK, unsigned attempt = 0);
  using Record = std::shared_ptr<capnp::MallocMessageBuilder>;
  /// The record of saga `id` to change, or nullptr: taken out of the cache of
  /// committed records (no read, no copy), else copied from the store. A
  /// record loaded and not saved is dropped (the next load reads the store).
  Record load(storage::Txn& txn, std::uint64_t id);
  /// A reply's step round trip: its ipc::SagaMetrics::step_round_trip slot
  /// and the ns from the command's last send to the reply.
  struct RoundTrip {
    std::size_t slot;
    std::int64_t ns;
  };
  /// Stores the record; `previous` is the state it was loaded with (nullopt:
  /// new). After the commit it goes (back) into the cache while not final,
  /// and the totals and metrics_ (a final state, `round_trip`) are updated.
  std::error_code save(runtime::Context& ctx, Record mb, std::optional<SagaState> previous,
                       std::optional<RoundTrip> round_trip = std::nullopt);
  /// One retention pass (on_tick).
  void prune(runtime::Runtime& rt, std::int64_t now_ms);
  /// Operator actions: loads saga `order_id` in a transaction, lets `fn`
  /// change it (a reply with result ok saves it), answers not_found when absent.
  ipc::ControlReply operate(
      runtime::Runtime& rt, std::uint64_t order_id, const char* action,
      const std::function<ipc::ControlReply(runtime::Context&, SagaRecord::Builder)>& fn);
  std::string step_name(int step) const;
  /// metrics_: a saga that became final (committed).
  void observe_final(SagaState state, std::int64_t duration_ms, std::uint16_t reason);

  SagaDefinition def_;
  SagaStore store_;
  std::shared_ptr<spdlog::logger> log_;
  std::map<std::uint64_t, std::int64_t> deadlines_;  // order id -> realtime ms
  SagaTotals totals_;                                // committed sagas only
  runtime::Retention retention_;                     // of final sagas
  ipc::SagaMetrics* metrics_ = nullptr;
  /// Builders of RUNNING/COMPENSATING records as committed, by order id. A
  /// record is in here only between commits: load() takes it out, save()'s
  /// after_commit puts it back, so a transaction that aborts never leaves a
  /// change behind (the record is then read from the store again).
  std::unordered_map<std::uint64_t, Record> cache_;
  static constexpr std::size_t kMaxCached = 65536;
};

/// How long the `attempt`-th send (1-based) of a command waits for its reply:
/// base_ms * 2^(attempt-1), capped at max(base_ms, cap_ms) — exponential
/// backoff, so a slow or restarting daemon is not flooded with retries.
std::int64_t retry_wait_ms(int base_ms, unsigned attempt, int cap_ms);

/// Stable id of a saga command: (order_id << 8) | (step << 1) | compensation.
inline std::uint64_t saga_message_id(std::uint64_t order_id, int step, bool compensation) {
  return (order_id << 8) | (static_cast<std::uint64_t>(step) << 1) | (compensation ? 1 : 0);
}

}  // namespace ringmart::supervisor
