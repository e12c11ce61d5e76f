// ringmart::checker — a Jepsen-style invariant checker over the state every
// daemon keeps in its LMDB environment (and the rings between them).
//
// It reads each environment read-only, in one read transaction per
// environment, and checks the business invariants the saga must keep whatever
// crashed or was retried: no order is left PENDING, stock, points, coupons,
// payments and rankings all agree with the set of COMPLETED orders, no
// message applied twice, nothing left in an outbox or a ring. See
// tests/chaos/README.md for the list and the name of each invariant.
//
// Consistency: each environment is one snapshot, but the environments are read
// one after another, so while daemons run, invariants that span two daemons
// may disagree transiently. Call wait_quiet() first; check_stock_nonnegative()
// reads one environment only and is safe under load.
//
// Thread-safety: every function opens its own environments and shares no
// state: callable from any thread and any process, concurrently with the
// running daemons (LMDB allows any number of reader processes).
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ringmart::checker {

/// One broken invariant.
struct Violation {
  /// Short stable name: "stock", "points", "coupon", "payment", "ranking",
  /// "saga_terminal", "order_terminal", "backlog", "duplicate_effect", "accepted_unknown".
  std::string invariant;
  std::string detail;              ///< one human line with the ids and the numbers that disagree
  std::vector<std::uint64_t> ids;  ///< the ids involved (order / product / user / coupon ids)
};

struct Options {
  std::string state_dir;    ///< holds one LMDB env per daemon (Config::env_path(name))
  std::string runtime_dir;  ///< its published shared-memory transport (topology.hpp)
  std::string config_file;  ///< optional TOML (map size etc.), "" = defaults
  std::vector<std::uint64_t>
      accepted_order_ids;  ///< orders answered 202; each must exist and be terminal
};

struct Report {
  std::vector<Violation> violations;
  std::size_t orders = 0, completed = 0, failed = 0, pending = 0;
  std::size_t sagas = 0, sagas_nonterminal = 0, sagas_stuck = 0;
  std::size_t sagas_abandoned = 0;  ///< terminal by an operator's decision (after STUCK)
  std::size_t products = 0, users = 0, user_coupons = 0, payments = 0;
  /// Messages appended to an outbox that their receiver has not applied yet:
  /// per channel, the producer's last outbox seq minus the consumer's inbox
  /// mark, summed over every channel. Read from LMDB, so it is exact whether
  /// the system runs or not (pruning lag — applied but not yet deleted — is
  /// not counted).
  std::uint64_t outbox_pending = 0;
  std::uint64_t ring_backlog = 0;  ///< records pushed but not acknowledged, all rings
  /// false when the rings' shared memory does not exist (system stopped):
  /// ring_backlog is then 0 and was not checked.
  bool rings_checked = false;

  bool ok() const { return violations.empty(); }
  /// Every field above; violations as {"invariant","detail","ids"} objects.
  nlohmann::json to_json() const;
};

/// Reads every daemon's state read-only (works while daemons run or are down)
/// and checks all invariants (README.md). The gateway's environment is
/// optional (only its outbox is read); every other daemon's must exist.
/// Errors: a message naming the environment when it cannot be opened (ENOENT
/// before its daemon first ran, MDB_NOTFOUND before it created its tables) or
/// the configuration file cannot be read.
std::expected<Report, std::string> check(const Options& options);

/// Polls (every 20 ms) until every saga is terminal (COMPLETED, FAILED,
/// STUCK or ABANDONED) and the outboxes and rings are drained, up to `timeout_ms`.
/// Returns the ms it waited; an error message with the counts still
/// outstanding (or why an environment could not be read) on timeout, at once
/// when `state_dir` does not exist.
std::expected<std::int64_t, std::string> wait_quiet(const Options& options, int timeout_ms);

/// Cheap probe for the harness to call during load: a violation ("stock")
/// per product whose stock is negative. Reads the product environment only.
/// Errors: a message when it cannot be opened.
std::expected<std::vector<Violation>, std::string> check_stock_nonnegative(const Options& options);

}  // namespace ringmart::checker
