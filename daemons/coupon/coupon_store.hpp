// ringmart::coupon — coupon templates, coupons issued to users, and their use
// by orders (the coupon step of the order saga).
//
// CouponStore is the domain logic over the daemon's LMDB tables; it knows
// nothing of rings or the runtime, so it is tested against a real environment
// alone. CouponQueries is the read-only query library the gateway links to
// serve GETs straight from the coupon environment.
//
// Behaviour contract: docs/domains.md ("coupon"). Every saga command is
// idempotent by order id: the per-order usage row is the idempotency record,
// and restoreCoupon leaves a tombstone when it finds nothing to undo.
//
// Errors: business outcomes are msg::Code values inside the result structs;
// the std::error_code of a std::expected is an LMDB failure (MDB_MAP_FULL,
// MDB_TXN_FULL) after which the caller aborts the transaction.
// Thread-safety: a CouponStore holds only table handles; it may be shared by
// threads, each using its own Txn. CouponQueries is safe to use from several
// threads at once (each call runs its own read transaction).
#pragma once

#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "schemas/envelope.capnp.h"
#include "storage/lmdb.hpp"

namespace ringmart::coupon {

/// A coupon template, as created by an operator, with its issuance counter.
struct CouponTemplate {
  std::uint64_t id = 0;
  std::string name;
  msg::DiscountType discount_type = msg::DiscountType::FIXED;
  std::int64_t discount_value = 0;   ///< cents (fixed) or whole percent 1..100 (percent)
  std::int64_t total_quantity = 0;   ///< how many may ever be issued
  std::int64_t issued = 0;           ///< how many were issued; never exceeds total_quantity
  std::int64_t min_order_cents = 0;  ///< minimum order total (subtotal + shipping); 0 = none
  std::int64_t expires_at_s = 0;     ///< Unix seconds; 0 = never expires
  /// Issues to one user at most; 0 = no limit (templates created before the
  /// limit existed).
  std::int64_t per_user_limit = 0;
};

enum class UserCouponStatus : std::uint8_t { issued, used };

/// "ISSUED" / "USED" (the API's spelling).
const char* user_coupon_status_name(UserCouponStatus status);
/// "fixed" / "percent" (the API's spelling).
const char* discount_type_name(msg::DiscountType type);

/// One coupon issued to one user.
struct UserCoupon {
  std::uint64_t id = 0;  ///< the user coupon id
  std::uint64_t coupon_id = 0;
  std::uint64_t user_id = 0;
  UserCouponStatus status = UserCouponStatus::issued;
  std::uint64_t used_by_order = 0;  ///< the order holding it while USED, else 0
  std::int64_t issued_at_s = 0;     ///< Unix seconds
};

/// One row of GET /v1/users/{id}/coupons.
struct UserCouponListItem {
  std::uint64_t user_coupon_id = 0;
  std::uint64_t coupon_id = 0;
  std::string name;  ///< the template's name
  UserCouponStatus status = UserCouponStatus::issued;
};

enum class UsageState : std::uint8_t {
  used,      ///< the order holds the coupon
  restored,  ///< compensated; a tombstone when user_coupon_id is 0
  rejected,  ///< useCoupon failed with `reject_code`; nothing to undo
};

/// The per-order idempotency record of useCoupon / restoreCoupon.
struct CouponUsage {
  std::uint64_t order_id = 0;
  std::uint64_t user_coupon_id = 0;  ///< 0 for a tombstone
  UsageState state = UsageState::used;
  msg::Code reject_code = msg::Code::OK;
  std::string reject_detail;
};

/// Arguments of createCoupon (see msg::CreateCoupon).
struct NewCoupon {
  std::string name;  ///< 1..200 bytes
  msg::DiscountType discount_type = msg::DiscountType::FIXED;
  std::int64_t discount_value = 0;   ///< fixed: > 0 cents; percent: 1..100
  std::int64_t total_quantity = 0;   ///< >= 1
  std::int64_t min_order_cents = 0;  ///< >= 0
  std::int64_t expires_at_s = 0;     ///< >= 0, Unix seconds, 0 = never
  std::int64_t per_user_limit = 1;   ///< >= 1: issues to one user at most
};

/// Answer of createCoupon: `ok` with the new id, or `invalidArgument` + detail.
struct CreateCouponResult {
  msg::Code code = msg::Code::OK;
  std::uint64_t coupon_id = 0;
  std::string detail;
};

/// Answer of issueCoupon: `ok` with the user coupon id, or `couponNotFound`,
/// `couponExpired`, `couponSoldOut`, `couponUserLimit`.
struct IssueCouponResult {
  msg::Code code = msg::Code::OK;
  std::uint64_t user_coupon_id = 0;
  std::string detail;
};

/// Answer of useCoupon (the fields of msg::CouponUsed): `ok` with the terms
/// the order step applies, or `couponInvalid` + detail.
struct UseCouponResult {
  msg::Code code = msg::Code::OK;
  std::uint64_t coupon_id = 0;
  msg::DiscountType discount_type = msg::DiscountType::FIXED;
  std::int64_t discount_value = 0;
  std::int64_t min_order_cents = 0;
  std::string detail;
  bool first_time = true;  ///< false: a retry/duplicate answered from the usage record
};

/// What restoreCoupon did (its answer is always `ok`).
struct RestoreCouponResult {
  bool restored = false;   ///< a coupon went back to ISSUED now
  bool tombstone = false;  ///< nothing had been used: a tombstone was written
};

class CouponStore {
 public:
  /// Opens the tables "coupon_templates", "user_coupons", "user_coupons_by_user",
  /// "coupon_issued_per_user", "coupon_usage" and "coupon_meta". With a write txn they are created;
  /// with a read txn they must exist (MDB_NOTFOUND otherwise). Handles opened in a read txn stay
  /// valid only if that txn is committed (LMDB closes them on abort). Errors: MDB_NOTFOUND,
  /// MDB_DBS_FULL.
  static std::expected<CouponStore, std::error_code> open(storage::Txn& txn);
  CouponStore() = default;

  // ---- commands (write txn) ---------------------------------------------

  /// createCoupon: validates and stores a template with issued = 0; ids start at 1.
  /// Business failure: `invalidArgument` (no change).
  std::expected<CreateCouponResult, std::error_code> create_coupon(storage::Txn& txn,
                                                                   const NewCoupon& c) const;

  /// issueCoupon: first come, first served; `now_s` is the current Unix time.
  /// A coupon is expired when expires_at_s != 0 and now_s >= expires_at_s.
  /// Failures (no change): `couponNotFound`, `couponExpired`, `couponSoldOut`,
  /// `couponUserLimit` (the user holds per_user_limit of it: issued or used,
  /// counted in "coupon_issued_per_user"). Both limits are checked and
  /// counted in the one write transaction, which the daemon runs alone.
  /// The user's existence is checked by the gateway (the user daemon owns users).
  std::expected<IssueCouponResult, std::error_code> issue_coupon(storage::Txn& txn,
                                                                 std::uint64_t coupon_id,
                                                                 std::uint64_t user_id,
                                                                 std::int64_t now_s) const;

  /// useCoupon (saga step): marks the user coupon USED by `order_id`.
  /// `couponInvalid` when the user coupon is unknown, belongs to another user,
  /// is used by another order, or its template expired at `now_s`; the
  /// rejection is recorded so a retry gets the same answer. A retry after a
  /// success answers the same terms without a second effect; after a restore
  /// (or its tombstone) the command has no effect.
  std::expected<UseCouponResult, std::error_code> use_coupon(storage::Txn& txn,
                                                             std::uint64_t order_id,
                                                             std::uint64_t user_id,
                                                             std::uint64_t user_coupon_id,
                                                             std::int64_t now_s) const;

  /// restoreCoupon (compensation): the coupon `order_id` used is ISSUED again.
  /// Finding nothing to undo, it leaves a tombstone so a late useCoupon of
  /// that order has no effect. Idempotent.
  std::expected<RestoreCouponResult, std::error_code> restore_coupon(storage::Txn& txn,
                                                                     std::uint64_t order_id) const;

  // ---- reads (any txn) --------------------------------------------------

  std::optional<CouponTemplate> coupon(storage::Txn& txn, std::uint64_t coupon_id) const;
  std::optional<UserCoupon> user_coupon(storage::Txn& txn, std::uint64_t user_coupon_id) const;
  /// The user's coupons, oldest first, each with its template's name.
  std::vector<UserCouponListItem> user_coupons(storage::Txn& txn, std::uint64_t user_id) const;
  /// How many of `coupon_id` were issued to `user_id` (0 for templates
  /// without a per-user limit: those are not counted).
  std::int64_t issued_to_user(storage::Txn& txn, std::uint64_t coupon_id,
                              std::uint64_t user_id) const;
  /// The idempotency record of `order_id`, if any.
  std::optional<CouponUsage> usage(storage::Txn& txn, std::uint64_t order_id) const;
  /// Visits every template in id order while `fn` returns true (audits, the
  /// invariant checker: one snapshot of every issuance counter).
  void scan_coupons(storage::Txn& txn, const std::function<bool(const CouponTemplate&)>& fn) const;
  /// Visits every issued user coupon in id order while `fn` returns true.
  void scan_user_coupons(storage::Txn& txn, const std::function<bool(const UserCoupon&)>& fn) const;
  /// Visits every usage record (tombstones included) in order id order while
  /// `fn` returns true.
  void scan_usages(storage::Txn& txn, const std::function<bool(const CouponUsage&)>& fn) const;

 private:
  std::expected<std::uint64_t, std::error_code> next_id(storage::Txn& txn,
                                                        std::uint8_t counter) const;
  std::error_code put_template(storage::Txn& txn, const CouponTemplate& t) const;
  std::error_code put_user_coupon(storage::Txn& txn, const UserCoupon& uc) const;
  std::error_code put_usage(storage::Txn& txn, const CouponUsage& u) const;

  storage::Table templates_;
  storage::Table user_coupons_;
  storage::Table by_user_;
  storage::Table per_user_;  ///< (coupon id, user id) -> issues to that user (u64)
  storage::Table usage_;
  storage::Table meta_;
};

/// Read-only query library over the coupon environment (CQRS read side).
class CouponQueries {
 public:
  /// Opens `env_path` (Config::env_path("coupon")) read-only. Errors: ENOENT
  /// when the environment does not exist yet, MDB_NOTFOUND when the daemon has
  /// not created its tables yet (retry later), other LMDB codes.
  static std::expected<CouponQueries, std::error_code> open(const std::string& env_path,
                                                            std::size_t map_size_bytes);

  /// GET /v1/coupons/{id}. nullopt = COUPON_NOT_FOUND. Errors: MDB_READERS_FULL.
  std::expected<std::optional<CouponTemplate>, std::error_code> coupon(std::uint64_t id) const;
  /// GET /v1/users/{id}/coupons (the gateway checks that the user exists).
  std::expected<std::vector<UserCouponListItem>, std::error_code> user_coupons(
      std::uint64_t user_id) const;
  /// One user coupon: the gateway checks ownership before accepting an order.
  std::expected<std::optional<UserCoupon>, std::error_code> user_coupon(std::uint64_t id) const;

 private:
  CouponQueries(std::unique_ptr<storage::Env> env, CouponStore store)
      : env_(std::move(env)), store_(store) {}
  std::unique_ptr<storage::Env> env_;
  CouponStore store_;
};

}  // namespace ringmart::coupon
