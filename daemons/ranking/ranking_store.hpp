// ringmart::ranking — units sold per UTC day and product, and best sellers,
// over the ranking daemon's LMDB environment.
//
// RankingStore applies `orderCompleted` (docs/domains.md, "ranking") as a
// plain function of a transaction; RankingQueries is the read-only library the
// gateway links to answer `GET /v1/rankings/bestsellers`.
//
// Tables (integers big-endian, so byte order = numeric order; values are PODs):
//   daily_units       u64 UTC day, u64 product id -> int64 units
//   processed_orders  u64 order id                -> ProcessedOrder
//
// A UTC day is floor(ms / 86'400'000) since the Unix epoch; times before the
// epoch count as day 0. Invariants: each order is counted once (its row in
// processed_orders is written in the same transaction as its units); units
// are positive and only grow.
//
// Errors: std::error_code only for LMDB failures (MDB_MAP_FULL...), after
// which the caller must abort the transaction.
// Thread-safety: RankingStore holds only table handles; use it with one Txn per
// thread. RankingQueries may be shared by threads (each call has its own read txn).
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "storage/lmdb.hpp"

namespace ringmart::ranking {

inline constexpr std::int64_t kMsPerDay = 86'400'000;
/// bestsellers() looks back at most this many days.
inline constexpr int kMaxDays = 366;
/// bestsellers() returns at most this many entries.
inline constexpr std::size_t kMaxLimit = 100000;  // large enough to list a whole catalogue (audits)

/// UTC day number (days since 1970-01-01) of a Unix time in ms; 0 before the epoch.
std::uint64_t utc_day(std::int64_t unix_ms);

/// A completed order's line as ranking needs it.
struct LineQuantity {
  std::uint64_t product_id = 0;
  std::int64_t quantity = 0;
};

/// One best-seller entry (`[{"product_id","units"}]`).
struct BestSeller {
  std::uint64_t product_id = 0;
  std::int64_t units = 0;
  friend bool operator==(const BestSeller&, const BestSeller&) = default;
};

/// Value of processed_orders: when the order was completed and the day it counted for.
struct ProcessedOrder {
  std::int64_t completed_at_ms = 0;
  std::uint64_t day = 0;
};

class RankingStore {
 public:
  /// Opens the tables; with a write txn creates them. On a read txn (e.g. a
  /// read-only env) the tables must exist: MDB_NOTFOUND otherwise. Other
  /// errors: MDB_DBS_FULL. The handles stay valid for the Env's life once
  /// `txn` commits (a read txn too: commit it, do not abort it).
  static std::expected<RankingStore, std::error_code> open(storage::Txn& txn);
  RankingStore() = default;

  /// orderCompleted: adds each line's quantity to (utc_day(completed_at_ms),
  /// product) — once per order. Lines with quantity <= 0 are ignored; lines of
  /// the same product add up. Returns true when applied, false for an order
  /// already counted (nothing changes).
  std::expected<bool, std::error_code> record_completed(storage::Txn& txn, std::uint64_t order_id,
                                                        std::span<const LineQuantity> lines,
                                                        std::int64_t completed_at_ms) const;

  /// Best sellers over the `days` UTC days ending with today (utc_day(now_ms)),
  /// today included: units summed per product, most units first, ties by
  /// ascending product id, at most `limit` entries. `days` is clamped to
  /// 1..kMaxDays and `limit` to 1..kMaxLimit.
  std::vector<BestSeller> bestsellers(storage::Txn& txn, std::int64_t now_ms, int days,
                                      std::size_t limit) const;

  /// Units of `product_id` sold on UTC day `day` (0 when none).
  std::int64_t units(storage::Txn& txn, std::uint64_t day, std::uint64_t product_id) const;
  /// The record of a counted order, or nullopt.
  std::optional<ProcessedOrder> processed(storage::Txn& txn, std::uint64_t order_id) const;
  /// Visits every (UTC day, product, units) row, by day then product id, while
  /// `fn` returns true (audits, the invariant checker: units of all days).
  /// A row of the wrong size (a corrupt environment) aborts, like bestsellers().
  void scan_units(storage::Txn& txn,
                  const std::function<bool(std::uint64_t day, std::uint64_t product_id,
                                           std::int64_t units)>& fn) const;
  /// Visits every counted order in id order while `fn` returns true.
  void scan_processed(
      storage::Txn& txn,
      const std::function<bool(std::uint64_t order_id, const ProcessedOrder&)>& fn) const;

 private:
  storage::Table daily_units_;
  storage::Table processed_;
};

/// Read-only access to the ranking daemon's environment for other processes
/// (the gateway). Each call runs in its own short read transaction. Thread-safe.
class RankingQueries {
 public:
  /// Opens `env_path` (Config::env_path("ranking")) read-only with the same
  /// map size as the daemon. Errors: ENOENT (the daemon never ran),
  /// MDB_NOTFOUND (its tables are not created yet), MDB_VERSION_MISMATCH, MDB_INVALID.
  static std::expected<RankingQueries, std::error_code> open(const std::string& env_path,
                                                             std::size_t map_size_bytes);

  /// See RankingStore::bestsellers. Errors: MDB_READERS_FULL, MDB_MAP_RESIZED.
  std::expected<std::vector<BestSeller>, std::error_code> bestsellers(std::int64_t now_ms, int days,
                                                                      std::size_t limit) const;

 private:
  RankingQueries(std::unique_ptr<storage::Env> env, RankingStore store)
      : env_(std::move(env)), store_(store) {}
  std::unique_ptr<storage::Env> env_;
  RankingStore store_;
};

}  // namespace ringmart::ranking
