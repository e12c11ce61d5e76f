// ringmart::user — users and their points, over the user daemon's LMDB environment.
//
// UserStore implements the commands of docs/domains.md ("user (points)") as
// plain functions of a transaction, so it runs inside the daemon's batch
// transaction and in unit tests alike. UserQueries is the read-only library
// the gateway links to answer GETs from the same environment without a round trip.
//
// Tables (keys are big-endian, so byte order = numeric order):
//   users            u64 user id                -> records::User
//   points_history   u64 user id, u64 seq (1..) -> records::HistoryEntry
//   point_deductions u64 order id               -> records::Deduction (idempotency + tombstone)
//   user_counters    u8 0                       -> u64 last user id (ids start at 1)
//
// Invariants: a balance is never negative; the balance equals the sum of the
// user's history deltas; an order deducts points at most once and restores
// them at most once; a restore that finds no deduction leaves a tombstone so a
// late deduction for that order has no effect.
//
// Errors: business failures are values (`Outcome::code`); std::error_code is
// only for LMDB failures (MDB_MAP_FULL, MDB_TXN_FULL...), after which the
// caller must abort the transaction.
// Thread-safety: UserStore holds only table handles; use it with one Txn per
// thread. UserQueries may be shared by threads (each call has its own read txn).
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "schemas/envelope.capnp.h"
#include "storage/lmdb.hpp"

namespace ringmart::user {

/// Longest accepted user name, in Unicode code points (UTF-8 is assumed).
inline constexpr std::size_t kMaxNameChars = 200;
/// Default number of most recent history entries returned by points().
inline constexpr std::size_t kDefaultHistoryEntries = 1000;

/// Why a balance changed.
enum class HistoryReason { charge, order, restore };
/// "charge" | "order" | "restore" (the API's spelling).
const char* reason_name(HistoryReason reason);

/// State of an order's points deduction (see point_deductions).
enum class DeductionState { deducted, restored, rejected };

/// A user as the API shows it (`GET /v1/users/{id}`), plus its creation time.
struct UserView {
  std::uint64_t id = 0;
  std::string name{};
  std::string email{};
  std::int64_t points = 0;
  std::int64_t created_at_ms = 0;  ///< Unix ms
};

/// One balance change.
struct HistoryEntry {
  std::int64_t delta = 0;  ///< signed points
  HistoryReason reason = HistoryReason::charge;
  std::uint64_t order_id = 0;  ///< 0 for charges
  std::int64_t at_ms = 0;      ///< Unix ms
};

/// Balance and history (`GET /v1/users/{id}/points`), history oldest first.
struct PointsView {
  std::int64_t balance = 0;
  std::vector<HistoryEntry> history{};
};

/// The idempotency record of one order's deductPoints/restorePoints.
struct DeductionView {
  std::uint64_t user_id = 0;  ///< 0 for a tombstone
  std::int64_t points = 0;    ///< points taken (0 unless deducted/restored after a deduction)
  DeductionState state = DeductionState::rejected;
  msg::Code code = msg::Code::OK;  ///< the answer deductPoints gave
  std::int64_t at_ms = 0;
};

/// The answer to a command: a `msg::Code` and, per command, the affected id,
/// a resulting figure (balance) and a human-readable detail.
struct Outcome {
  msg::Code code = msg::Code::OK;
  std::uint64_t id = 0;
  std::int64_t value = 0;
  std::string detail{};
};

class UserStore {
 public:
  /// Opens the tables; with a write txn creates them. On a read txn (e.g. a
  /// read-only env) the tables must exist: MDB_NOTFOUND otherwise. Other
  /// errors: MDB_DBS_FULL. The handles stay valid for the Env's life once
  /// `txn` commits (a read txn too: commit it, do not abort it).
  static std::expected<UserStore, std::error_code> open(storage::Txn& txn);
  UserStore() = default;

  // --- commands (write txn) -------------------------------------------------

  /// registerUser: name of 1..kMaxNameChars code points, email containing '@'.
  /// Returns {ok, id = new user id (from 1)} or {invalidArgument, detail}.
  std::expected<Outcome, std::error_code> register_user(storage::Txn& txn, std::string_view name,
                                                        std::string_view email,
                                                        std::int64_t now_ms) const;

  /// chargePoints: adds `amount` > 0 points. Returns {ok, id = user id,
  /// value = new balance} / userNotFound / invalidArgument (amount <= 0, or the
  /// balance would overflow int64). Failures change nothing.
  std::expected<Outcome, std::error_code> charge_points(storage::Txn& txn, std::uint64_t user_id,
                                                        std::int64_t amount,
                                                        std::int64_t now_ms) const;

  /// deductPoints: takes `points` >= 0 from the user's balance for `order_id`.
  /// Returns ok / insufficientPoints / userNotFound / invalidArgument (points
  /// < 0); failures leave the balance and history unchanged but are recorded,
  /// so a retry gets the same answer. Idempotent by order id: a second call
  /// returns the first answer whatever its arguments. After restorePoints for
  /// the order (even one that came first and left a tombstone) it has no
  /// effect and answers ok with a detail saying so. 0 points = ok, no history row.
  std::expected<Outcome, std::error_code> deduct_points(storage::Txn& txn, std::uint64_t order_id,
                                                        std::uint64_t user_id, std::int64_t points,
                                                        std::int64_t now_ms) const;

  /// restorePoints: gives back what `order_id` deducted (once) with a
  /// "restore" history row; with no deduction on record writes a tombstone.
  /// Always ok (a rejected deduction stays rejected: nothing to give back).
  std::expected<Outcome, std::error_code> restore_points(storage::Txn& txn, std::uint64_t order_id,
                                                         std::int64_t now_ms) const;

  // --- reads (any txn) -------------------------------------------------------

  std::optional<UserView> find(storage::Txn& txn, std::uint64_t user_id) const;
  bool exists(storage::Txn& txn, std::uint64_t user_id) const;
  /// Balance and the `max_entries` most recent history entries, oldest first;
  /// nullopt for an unknown user.
  std::optional<PointsView> points(storage::Txn& txn, std::uint64_t user_id,
                                   std::size_t max_entries = kDefaultHistoryEntries) const;
  std::optional<DeductionView> deduction(storage::Txn& txn, std::uint64_t order_id) const;
  /// Number of registered users.
  std::uint64_t user_count(storage::Txn& txn) const;
  /// Visits every user in id order while `fn` returns true (audits, the
  /// invariant checker: one snapshot of every balance).
  void scan_users(storage::Txn& txn, const std::function<bool(const UserView&)>& fn) const;
  /// Visits every history entry of every user, by user id then oldest first,
  /// while `fn` returns true.
  void scan_history(
      storage::Txn& txn,
      const std::function<bool(std::uint64_t user_id, const HistoryEntry&)>& fn) const;
  /// Visits every deduction record (tombstones included) in order id order
  /// while `fn` returns true.
  void scan_deductions(
      storage::Txn& txn,
      const std::function<bool(std::uint64_t order_id, const DeductionView&)>& fn) const;

 private:
  std::error_code put_history(storage::Txn& txn, std::uint64_t user_id,
                              const HistoryEntry& e) const;
  std::error_code put_balance(storage::Txn& txn, const UserView& user) const;
  std::error_code put_deduction(storage::Txn& txn, std::uint64_t order_id,
                                const DeductionView& d) const;

  storage::Table users_;
  storage::Table history_;
  storage::Table deductions_;
  storage::Table counters_;
};

/// Read-only access to the user daemon's environment for other processes
/// (the gateway). Each call runs in its own short read transaction and sees
/// the last committed state. Thread-safe.
class UserQueries {
 public:
  /// Opens `env_path` (Config::env_path("user")) read-only with the same map
  /// size as the daemon. Errors: ENOENT (the daemon never ran), MDB_NOTFOUND
  /// (its tables are not created yet), MDB_VERSION_MISMATCH, MDB_INVALID.
  static std::expected<UserQueries, std::error_code> open(const std::string& env_path,
                                                          std::size_t map_size_bytes);

  /// The user, or nullopt. Errors: MDB_READERS_FULL, MDB_MAP_RESIZED.
  std::expected<std::optional<UserView>, std::error_code> find(std::uint64_t user_id) const;
  /// Whether the user is registered (the gateway validates order user ids).
  std::expected<bool, std::error_code> exists(std::uint64_t user_id) const;
  /// Balance and recent history, or nullopt for an unknown user.
  std::expected<std::optional<PointsView>, std::error_code> points(
      std::uint64_t user_id, std::size_t max_entries = kDefaultHistoryEntries) const;

 private:
  UserQueries(std::unique_ptr<storage::Env> env, UserStore store)
      : env_(std::move(env)), store_(store) {}
  std::unique_ptr<storage::Env> env_;
  UserStore store_;
};

}  // namespace ringmart::user
