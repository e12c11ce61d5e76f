// ringmart::user — users, their accounts (credentials, sessions, address
// book) and their points, over the user daemon's LMDB environment.
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
//   users_by_email   email_key(email)           -> u64 user id (unique)
//   sessions         32-byte token hash         -> records::Session
//   sessions_by_expiry u64 expires ms, token hash -> (empty), for retention
//   addresses        u64 user id, u64 address id -> records::StoredAddress
//
// Accounts: a password arrives only as a libsodium crypto_pwhash_str string
// computed by the gateway (the daemon never sees one in clear); a session is
// stored under the BLAKE2b-256 hash of its token, never the token.
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
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "daemons/user/address.hpp"
#include "schemas/envelope.capnp.h"
#include "storage/lmdb.hpp"

namespace ringmart::user {

/// Bytes of a session token's hash (BLAKE2b-256, crypto_generichash).
inline constexpr std::size_t kTokenHashBytes = 32;

/// The uniqueness key of an e-mail address: ASCII letters lowered, the rest
/// unchanged ("Ana@Example.COM" and "ana@example.com" are one account). Pure.
std::string email_key(std::string_view email);

/// Login throttling, from `[accounts]` (max_failed_logins,
/// failed_login_window_s, lockout_base_ms, lockout_max_s): after
/// `max_failures` consecutive wrong passwords (each within `window_ms` of the
/// one before) logins are refused for lockout_base_ms, doubling with each
/// further failure up to lockout_max_ms.
struct LoginPolicy {
  std::uint32_t max_failures = 5;
  std::int64_t window_ms = 15 * 60 * 1000;
  std::int64_t lockout_base_ms = 1000;
  std::int64_t lockout_max_ms = 15 * 60 * 1000;
};

/// What a login needs to know about an account.
struct Credentials {
  std::uint64_t user_id = 0;
  std::string password_hash{};       ///< crypto_pwhash_str string; empty = guest (no login)
  std::int64_t locked_until_ms = 0;  ///< logins refused before (Unix ms)
};

/// A session found by its token's hash.
struct SessionView {
  std::uint64_t user_id = 0;
  std::int64_t expires_at_ms = 0;  ///< Unix ms
  std::int64_t created_at_ms = 0;
};

/// An address-book entry.
struct AddressView {
  std::uint64_t id = 0;  ///< per user, from 1
  Address address{};
  bool is_default = false;
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
};

/// A PATCH of a user: members present are changed.
struct UserUpdate {
  std::uint64_t user_id = 0;
  std::optional<std::string> name{};
  std::optional<std::string> email{};
  std::optional<std::string> password_hash{};  ///< crypto_pwhash_str string
  /// Non-empty: the change applies only while this is still the user's
  /// password hash (the one the gateway verified the current password against).
  std::string expected_password_hash{};
};

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
  std::int64_t created_at_ms = 0;        ///< Unix ms
  bool has_password = false;             ///< false = a guest customer
  std::uint64_t default_address_id = 0;  ///< 0 = none
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

  /// registerUser: name of 1..kMaxNameChars code points, email containing '@',
  /// password_hash empty (a guest) or a "$argon2id$" crypto_pwhash_str string.
  /// Returns {ok, id = new user id (from 1)}, {emailTaken} (the address is
  /// another user's, compared by email_key) or {invalidArgument, detail}.
  std::expected<Outcome, std::error_code> register_user(storage::Txn& txn, std::string_view name,
                                                        std::string_view email,
                                                        std::string_view password_hash,
                                                        std::int64_t now_ms) const;

  /// updateUser: changes what `u` names (rules of register_user). Returns
  /// {ok, id} / userNotFound / emailTaken / invalidArgument / invalidCredentials
  /// (u.expected_password_hash is no longer the user's: the password changed
  /// since the gateway verified it). A new password hash starts a new session
  /// epoch: every session opened before no longer authenticates.
  std::expected<Outcome, std::error_code> update_user(storage::Txn& txn, const UserUpdate& u,
                                                      std::int64_t now_ms) const;

  /// openSession: stores a session of `user_id` under `token_hash`
  /// (kTokenHashBytes) until `expires_at_ms`, if `verified_password_hash` is
  /// still the user's and logins are not locked (record_login_failure), and
  /// clears its failed logins. Returns {ok, id = user} / userNotFound /
  /// invalidCredentials (another hash, or locked) / invalidArgument (hash
  /// size, expiry not after now). Idempotent for the same token hash.
  std::expected<Outcome, std::error_code> open_session(storage::Txn& txn, std::uint64_t user_id,
                                                       std::span<const std::byte> token_hash,
                                                       std::int64_t expires_at_ms,
                                                       std::string_view verified_password_hash,
                                                       std::int64_t now_ms) const;

  /// closeSession: deletes the session (logout). Always {ok}; id = its user (0
  /// when there was none).
  std::expected<Outcome, std::error_code> close_session(
      storage::Txn& txn, std::span<const std::byte> token_hash) const;

  /// recordLoginFailure: counts a wrong password under `policy`. Returns {ok,
  /// id, value = locked until (Unix ms), 0 when not locked} / userNotFound.
  std::expected<Outcome, std::error_code> record_login_failure(storage::Txn& txn,
                                                               std::uint64_t user_id,
                                                               const LoginPolicy& policy,
                                                               std::int64_t now_ms) const;

  /// Deletes at most `limit` sessions that expired before `cutoff_ms`, oldest
  /// first (runtime::Retention's pass). Errors: LMDB codes.
  std::expected<storage::PruneResult, std::error_code> expire_sessions(storage::Txn& txn,
                                                                       std::int64_t cutoff_ms,
                                                                       std::size_t limit) const;

  /// addAddress: a valid address (address_problem) into the user's book, at
  /// most kMaxAddressesPerUser; the first one, or with `make_default`, becomes
  /// the default. Returns {ok, id = address id} / userNotFound / invalidArgument.
  std::expected<Outcome, std::error_code> add_address(storage::Txn& txn, std::uint64_t user_id,
                                                      const Address& address, bool make_default,
                                                      std::int64_t now_ms) const;
  /// updateAddress: replaces the members in `field_mask` (AddressField bits);
  /// `make_default` makes it the default (false leaves the default as it is).
  /// Returns {ok, id} / userNotFound / addressNotFound / invalidArgument (the
  /// merged address is invalid; nothing changes).
  std::expected<Outcome, std::error_code> update_address(storage::Txn& txn, std::uint64_t user_id,
                                                         std::uint64_t address_id,
                                                         std::uint32_t field_mask,
                                                         const Address& patch, bool make_default,
                                                         std::int64_t now_ms) const;
  /// deleteAddress: removes it; when it was the default, the oldest address
  /// left becomes the default. Returns {ok, id} / userNotFound / addressNotFound.
  std::expected<Outcome, std::error_code> delete_address(storage::Txn& txn, std::uint64_t user_id,
                                                         std::uint64_t address_id) const;

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
  /// The account registered with `email` (any case), or nullopt.
  std::optional<Credentials> credentials(storage::Txn& txn, std::string_view email) const;
  /// The account of `user_id`, or nullopt.
  std::optional<Credentials> credentials_of_user(storage::Txn& txn, std::uint64_t user_id) const;
  /// The session stored under `token_hash` if it is valid at `now_ms`: not
  /// expired, its user's password unchanged since it opened. The stored hash
  /// is compared again in constant time (sodium_memcmp) after the lookup.
  std::optional<SessionView> session(storage::Txn& txn, std::span<const std::byte> token_hash,
                                     std::int64_t now_ms) const;
  /// The user's addresses by id, or nullopt for an unknown user.
  std::optional<std::vector<AddressView>> addresses(storage::Txn& txn, std::uint64_t user_id) const;
  /// One address of the user, or nullopt.
  std::optional<AddressView> address(storage::Txn& txn, std::uint64_t user_id,
                                     std::uint64_t address_id) const;
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
  struct Row;  // a users record, every field
  std::optional<Row> load(storage::Txn& txn, std::uint64_t user_id) const;
  std::error_code put_user(storage::Txn& txn, const Row& row) const;
  std::error_code put_history(storage::Txn& txn, std::uint64_t user_id,
                              const HistoryEntry& e) const;
  std::error_code put_deduction(storage::Txn& txn, std::uint64_t order_id,
                                const DeductionView& d) const;

  storage::Table users_;
  storage::Table history_;
  storage::Table deductions_;
  storage::Table counters_;
  storage::Table by_email_;
  storage::Table sessions_;
  storage::Table sessions_by_expiry_;
  storage::Table addresses_;
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
  /// UserStore::credentials, session, addresses and address in a read txn.
  std::expected<std::optional<Credentials>, std::error_code> credentials(
      std::string_view email) const;
  std::expected<std::optional<Credentials>, std::error_code> credentials_of_user(
      std::uint64_t user_id) const;
  std::expected<std::optional<SessionView>, std::error_code> session(
      std::span<const std::byte> token_hash, std::int64_t now_ms) const;
  std::expected<std::optional<std::vector<AddressView>>, std::error_code> addresses(
      std::uint64_t user_id) const;
  std::expected<std::optional<AddressView>, std::error_code> address(
      std::uint64_t user_id, std::uint64_t address_id) const;

 private:
  UserQueries(std::unique_ptr<storage::Env> env, UserStore store)
      : env_(std::move(env)), store_(store) {}
  std::unique_ptr<storage::Env> env_;
  UserStore store_;
};

}  // namespace ringmart::user
