// ringmart::runtime — bounded retention passes run from a daemon's tick
// (the supervisor's final sagas, the gateway's idempotency keys).
//
// Thread-safety: the runtime thread only (like Runtime::transact).
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <functional>
#include <string>
#include <system_error>
#include <utility>

#include "daemons/common/runtime.hpp"
#include "storage/lmdb.hpp"

namespace ringmart::runtime {

/// Deletes rows older than a keep time in bounded passes and schedules the
/// next pass from what the last one left, so an idle daemon does not open a
/// write transaction per second.
class Retention {
 public:
  /// `pass(txn, cutoff_ms, batch)` deletes at most `batch` rows older than
  /// `cutoff_ms` (realtime ms), oldest first. Errors: LMDB codes.
  using Pass = std::function<std::expected<storage::PruneResult, std::error_code>(
      storage::Txn&, std::int64_t cutoff_ms, std::size_t batch)>;

  /// Rows are kept `keep_ms` (<= 0: forever, run() never does anything);
  /// a pass deletes at most `batch` of them. `what` names the rows in the
  /// log lines ("final sagas", "idempotency keys").
  Retention(std::int64_t keep_ms, std::size_t batch, std::string what)
      : keep_ms_(keep_ms), batch_(batch), what_(std::move(what)) {}

  /// When a pass is due at `now_ms` (realtime), runs `pass` in one write
  /// transaction of `rt` with the cut-off now − keep. The next pass is due at
  /// the next call after a full batch (more rows are due), else when the
  /// oldest row left comes due (at the earliest in 1 s; rows added later come
  /// due later still), and 1 s after an error. Logs through rt.log(): the
  /// rows deleted (info) or the error. Returns the rows deleted (0 when no
  /// pass was due). Errors: the transaction's (nothing deleted).
  std::expected<std::size_t, std::error_code> run(Runtime& rt, std::int64_t now_ms,
                                                  const Pass& pass) {
    if (keep_ms_ <= 0 || now_ms < next_ms_) return 0;
    storage::PruneResult result;
    const auto ec = rt.transact([&](Context& ctx) -> std::error_code {
      auto r = pass(ctx.txn(), now_ms - keep_ms_, batch_);
      if (!r) return r.error();
      result = *r;
      return {};
    });
    if (ec) {
      rt.log()->error("retention of {} failed: {}", what_, ec.message());
      next_ms_ = now_ms + kMinIntervalMs;
      return std::unexpected(ec);
    }
    if (result.deleted > 0) {
      rt.log()->info("retention: deleted {} {} older than {} h", result.deleted, what_,
                     static_cast<double>(keep_ms_) / 3'600'000.0);
    }
    if (result.deleted >= batch_) {
      next_ms_ = 0;
    } else {
      const std::int64_t due =
          result.oldest_kept_ms ? *result.oldest_kept_ms + keep_ms_ + 1 : now_ms + keep_ms_;
      next_ms_ = std::max(now_ms + kMinIntervalMs, due);
    }
    return result.deleted;
  }

  std::int64_t keep_ms() const { return keep_ms_; }

 private:
  static constexpr std::int64_t kMinIntervalMs = 1000;
  std::int64_t keep_ms_;
  std::size_t batch_;
  std::string what_;
  std::int64_t next_ms_ = 0;  // realtime ms of the next pass; 0 = at the next call
};

}  // namespace ringmart::runtime
