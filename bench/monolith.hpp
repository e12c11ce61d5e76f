// ringmart bench — the monolith baseline of issue 4: the whole order saga as
// one process over one LMDB environment, each order one write transaction
// that does every step's effect (idempotency key, coupon, discount, stock,
// payment record, points, order and its lines, ranking), with the same
// business rules as the daemons (docs/domains.md) and the same simulated
// payment tokens. Every step is checked before anything is written, so a
// FAILED order changes nothing but its own row — what the saga's
// compensations reach in many transactions. `orders_per_commit` > 1 is group
// commit. The environment is opened like a daemon's (MDB_WRITEMAP in
// `process` durability).
//
// It answers: what does splitting the domains into daemons cost against the
// simplest correct program on the same disk and durability?
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <map>
#include <string>
#include <vector>

#include "storage/lmdb.hpp"
#include "tools/olist/dataset.hpp"

namespace ringmart::bench {

struct MonolithOptions {
  std::string dir;  ///< the LMDB environment (a new directory on the disk measured)
  storage::Durability durability = storage::Durability::process;
  std::size_t orders_per_commit = 1;  ///< 1 = one commit per order; N = group commit
  unsigned rounds = 1;                ///< the data set K times, fresh ids per round
};

struct MonolithResult {
  std::size_t orders = 0, completed = 0, failed = 0;
  std::map<std::string, std::size_t> failed_by_reason;
  double wall_s = 0;        ///< the order transactions only (set-up excluded)
  double orders_per_s = 0;  ///< orders / wall_s
  std::size_t commits = 0;
  /// Invariant sums over the final state, one line per violation (stock,
  /// points, coupons, captured payments, ranking): empty when all hold.
  std::vector<std::string> violations;
};

/// Creates the catalogue, users, points and coupons of every round (not
/// timed), then applies every order in data-set order. Errors: an LMDB
/// failure (open, map full, commit) as a message. Single-threaded.
std::expected<MonolithResult, std::string> run_monolith(const olist::Dataset& data,
                                                        const MonolithOptions& options);

}  // namespace ringmart::bench
