// ringmart::order — orders, their lines and status history: creating an order
// (which starts the saga), applying a coupon's discount, completing or
// failing it.
//
// OrderStore is the domain logic over the daemon's LMDB tables; it returns
// what happened (first_time flags, figures) and main.cpp sends the messages,
// so the store is tested without rings. OrderQueries is the read-only query
// library the gateway links to serve GET /v1/orders/{id}.
//
// Behaviour contract: docs/domains.md ("order"). Every command is idempotent
// by order id: the order row itself is the idempotency record (status,
// couponApplied, completedAtMs), and failOrder on an unknown order leaves a
// tombstone (a FAILED order) so a late createOrder starts no saga.
//
// Errors: business outcomes are msg::Code values inside the result structs;
// the std::error_code of a std::expected is an LMDB failure (MDB_MAP_FULL,
// MDB_TXN_FULL) after which the caller aborts the transaction.
// Thread-safety: an OrderStore holds only table handles and may be shared by
// threads, each with its own Txn; OrderQueries may be used from several
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

#include "daemons/user/address.hpp"
#include "schemas/envelope.capnp.h"
#include "storage/lmdb.hpp"

namespace ringmart::order {

/// An order's life: PENDING -> COMPLETED (paid) or FAILED by its saga; a
/// COMPLETED order is then SHIPPED and DELIVERED (fulfilment, admin).
enum class OrderStatus : std::uint8_t { pending, completed, failed, shipped, delivered };

/// "PENDING" / "COMPLETED" / "FAILED" / "SHIPPED" / "DELIVERED" (the API's spelling).
const char* order_status_name(OrderStatus status);
/// The saga completed it (paid): COMPLETED, SHIPPED or DELIVERED.
bool is_paid(OrderStatus status);
/// The API's name of a failure reason or reply code: "OUT_OF_STOCK",
/// "PAYMENT_TIMEOUT", ... ("UNKNOWN" for a value outside msg::Code).
const char* failure_reason_name(msg::Code code);

struct OrderLine {
  std::uint64_t product_id = 0;
  std::int64_t quantity = 0;          ///< > 0
  std::int64_t unit_price_cents = 0;  ///< >= 0, the price when the order was placed
};

struct StatusChange {
  OrderStatus status = OrderStatus::pending;
  std::int64_t at_ms = 0;  ///< Unix ms
};

/// The arguments of createOrder (see msg::CreateOrder).
struct NewOrder {
  std::uint64_t order_id = 0;  ///< assigned by the gateway, != 0; also the saga id
  std::uint64_t user_id = 0;
  std::vector<OrderLine> lines;      ///< at least one
  std::uint64_t user_coupon_id = 0;  ///< 0 = none
  std::int64_t points = 0;           ///< points the user wants to spend, >= 0
  std::int64_t shipping_cents = 0;   ///< >= 0
  std::string payment_token;
  std::uint32_t installments = 1;
  std::optional<user::Address> shipping_address;  ///< snapshot from intake
};
/// Copies a createOrder message into a NewOrder.
NewOrder new_order_from(msg::CreateOrder::Reader m);

/// An order as stored, and as GET /v1/orders/{id} shows it.
struct Order {
  std::uint64_t order_id = 0;
  std::uint64_t user_id = 0;
  std::vector<OrderLine> lines;
  std::uint64_t user_coupon_id = 0;
  std::int64_t points_requested = 0;
  std::int64_t shipping_cents = 0;
  std::string payment_token;
  std::uint32_t installments = 1;
  std::int64_t subtotal_cents = 0;  ///< sum of quantity x unit price
  std::int64_t discount_cents = 0;  ///< coupon discount, capped at the total
  std::int64_t points_used = 0;     ///< set on completion
  std::int64_t paid_cents = 0;      ///< captured amount; 0 unless COMPLETED
  OrderStatus status = OrderStatus::pending;
  msg::Code failure_reason = msg::Code::OK;  ///< meaningful when FAILED
  std::int64_t created_at_ms = 0;
  std::int64_t completed_at_ms = 0;  ///< 0 unless COMPLETED
  std::vector<StatusChange> history;
  bool coupon_applied = false;            ///< applyCoupon ran (its answer is stored)
  msg::Code coupon_code = msg::Code::OK;  ///< applyCoupon's answer
  bool tombstone = false;  ///< failOrder came before createOrder: FAILED, no lines yet
  /// Where to ship, as it was when the order was placed: later edits or the
  /// deletion of the address-book entry do not change it.
  std::optional<user::Address> shipping_address;
  std::string carrier;          ///< set when SHIPPED
  std::string tracking_number;  ///< set when SHIPPED
  std::int64_t shipped_at_ms = 0;
  std::int64_t delivered_at_ms = 0;

  /// subtotal + shipping: what the coupon and the points apply to.
  std::int64_t total_cents() const { return subtotal_cents + shipping_cents; }
};

/// Coupon terms as the coupon step answered them (msg::ApplyCoupon).
struct CouponTerms {
  msg::DiscountType discount_type = msg::DiscountType::FIXED;
  std::int64_t discount_value = 0;  ///< cents (fixed) or whole percent (percent)
  std::int64_t min_order_cents = 0;
};

/// The discount `terms` give on `total_cents` (docs/domains.md applyCoupon):
/// total < min -> `couponInvalid`; fixed: min(value, total); percent:
/// floor(total x pct / 100). Terms outside their range (negative value,
/// percent > 100) are `couponInvalid`. Pure.
struct Discount {
  msg::Code code = msg::Code::OK;
  std::int64_t discount_cents = 0;
  std::string detail;
};
Discount coupon_discount(std::int64_t total_cents, const CouponTerms& terms);

struct CreateOrderResult {
  msg::Code code = msg::Code::OK;  ///< ok, or invalidArgument (nothing stored)
  bool first_time = false;         ///< stored now: send orderCreated (starts the saga)
  std::int64_t subtotal_cents = 0;
  std::string detail;
};

struct ApplyCouponResult {
  msg::Code code = msg::Code::OK;  ///< ok, couponInvalid, orderNotFound
  std::int64_t discount_cents = 0;
  std::string detail;
  bool first_time = false;  ///< false: answered from the stored result, or no effect
};

/// The figures the saga settled (msg::CompleteOrder).
struct Settlement {
  std::int64_t discount_cents = 0;
  std::int64_t points_used = 0;
  std::int64_t paid_cents = 0;
};

struct CompleteOrderResult {
  /// ok; orderNotFound; internal when the order is already FAILED (a violated
  /// saga invariant: nothing changes and nothing should be sent).
  msg::Code code = msg::Code::OK;
  bool first_time = false;  ///< completed now: also notify ranking and the gateway
  std::vector<OrderLine> lines;
  std::int64_t completed_at_ms = 0;
  std::string detail;
};

struct FailOrderResult {
  /// ok; internal when the order is already paid (nothing changes).
  msg::Code code = msg::Code::OK;
  bool first_time = false;  ///< failed now: notify the gateway
  std::string detail;
};

/// The answer to a fulfilment command (shipOrder, markDelivered).
struct FulfilmentResult {
  /// ok; orderNotFound; orderStateConflict (the status does not allow it);
  /// invalidArgument (carrier or tracking number empty or too long).
  msg::Code code = msg::Code::OK;
  bool first_time = false;  ///< the status changed now (false for a repeat)
  std::string detail;
};

/// Longest carrier name and tracking number, in characters.
inline constexpr std::size_t kMaxCarrierChars = 100;
inline constexpr std::size_t kMaxTrackingChars = 100;

/// What happened to an order, as the change feed tells it.
enum class FeedEventKind : std::uint8_t { created, completed, failed, shipped, delivered };
/// "created", "completed", "failed", "shipped", "delivered".
const char* feed_event_name(FeedEventKind kind);

/// One event of the order change feed (GET /v1/feeds/orders). Sequence
/// numbers start at 1 and have no gaps: an event is appended in the
/// transaction of the change it reports, so a reader that has seen seq N has
/// seen every event before it, and never one that was rolled back.
struct FeedEvent {
  std::uint64_t seq = 0;
  FeedEventKind kind = FeedEventKind::created;
  std::uint64_t order_id = 0;
  std::uint64_t user_id = 0;
  OrderStatus status = OrderStatus::pending;  ///< after the event
  std::int64_t at_ms = 0;                     ///< Unix ms
  std::int64_t total_cents = 0;
  std::int64_t paid_cents = 0;
  msg::Code failure_reason = msg::Code::OK;  ///< when failed
  std::int64_t item_count = 0;
  std::string carrier{};  ///< shipped
  std::string tracking_number{};
};

/// The feed's extent: `first` is the oldest sequence kept (0 when empty),
/// `last` the newest ever written (0 before the first event).
struct FeedBounds {
  std::uint64_t first = 0;
  std::uint64_t last = 0;
};

/// One row of a customer's order list (GET /v1/users/{id}/orders).
struct OrderSummary {
  std::uint64_t order_id = 0;
  OrderStatus status = OrderStatus::pending;
  msg::Code failure_reason = msg::Code::OK;  ///< meaningful when FAILED
  std::int64_t total_cents = 0;              ///< subtotal + shipping
  std::int64_t discount_cents = 0;
  std::int64_t points_used = 0;
  std::int64_t paid_cents = 0;
  std::int64_t item_count = 0;  ///< units over all lines
  std::size_t line_count = 0;
  std::int64_t created_at_ms = 0;
};

class OrderStore {
 public:
  /// Opens the tables "orders" and "orders_by_user" (created with a write
  /// txn; "orders" must exist with a read txn, a missing index reads as
  /// empty). A write txn indexes an environment from before the index once
  /// (a full scan, when the index is empty and orders exist). Handles opened
  /// in a read txn survive only if it is committed.
  /// Errors: MDB_NOTFOUND, MDB_DBS_FULL, MDB_MAP_FULL.
  static std::expected<OrderStore, std::error_code> open(storage::Txn& txn);
  OrderStore() = default;

  /// createOrder: stores the order PENDING with its subtotal; `now_ms` is the
  /// Unix time in ms. A duplicate changes nothing (first_time false). On a
  /// tombstone the order's data is filled in, it stays FAILED and no saga starts.
  /// `invalidArgument` (nothing stored): order id 0, no lines, quantity <= 0,
  /// negative price/shipping/points, or a subtotal overflowing int64.
  std::expected<CreateOrderResult, std::error_code> create_order(storage::Txn& txn,
                                                                 const NewOrder& o,
                                                                 std::int64_t now_ms) const;

  /// applyCoupon: computes and stores the discount (coupon_discount on the
  /// order total). A retry answers the stored result. On an order that is no
  /// longer PENDING it has no effect and answers what it would have given.
  std::expected<ApplyCouponResult, std::error_code> apply_coupon(storage::Txn& txn,
                                                                 std::uint64_t order_id,
                                                                 const CouponTerms& terms) const;

  /// completeOrder: PENDING -> COMPLETED with the saga's figures at `now_ms`.
  /// A repeat answers the first completion's lines and time (first_time false).
  std::expected<CompleteOrderResult, std::error_code> complete_order(storage::Txn& txn,
                                                                     std::uint64_t order_id,
                                                                     const Settlement& s,
                                                                     std::int64_t now_ms) const;

  /// failOrder: PENDING -> FAILED with `reason`, paid 0. A repeat changes
  /// nothing (first_time false); an unknown order gets a FAILED tombstone; a
  /// paid order (COMPLETED, SHIPPED, DELIVERED) is `internal`, unchanged.
  std::expected<FailOrderResult, std::error_code> fail_order(storage::Txn& txn,
                                                             std::uint64_t order_id,
                                                             msg::Code reason,
                                                             std::int64_t now_ms) const;

  /// shipOrder: COMPLETED -> SHIPPED with the carrier and tracking number
  /// (1..100 characters each). A repeat with the same carrier and tracking
  /// number answers ok and changes nothing; with others, or on an order that
  /// is not COMPLETED (PENDING, FAILED: never paid; DELIVERED),
  /// orderStateConflict.
  std::expected<FulfilmentResult, std::error_code> ship(storage::Txn& txn, std::uint64_t order_id,
                                                        std::string_view carrier,
                                                        std::string_view tracking_number,
                                                        std::int64_t now_ms) const;
  /// markDelivered: SHIPPED -> DELIVERED. A repeat answers ok; any other
  /// status is orderStateConflict.
  std::expected<FulfilmentResult, std::error_code> mark_delivered(storage::Txn& txn,
                                                                  std::uint64_t order_id,
                                                                  std::int64_t now_ms) const;

  /// The order, tombstones included (they are FAILED orders).
  std::optional<Order> order(storage::Txn& txn, std::uint64_t order_id) const;
  /// Visits every order (tombstones included) in id order while `fn` returns
  /// true (audits, the invariant checker).
  void scan(storage::Txn& txn, const std::function<bool(const Order&)>& fn) const;
  /// `user_id`'s orders, newest (highest id) first: at most `limit`, with ids
  /// below `before_id` (0 = from the newest). Tombstones have no user and are
  /// not listed.
  std::vector<OrderSummary> orders_of_user(storage::Txn& txn, std::uint64_t user_id,
                                           std::uint64_t before_id, std::size_t limit) const;

  /// The feed events after `after_seq`, oldest first, at most `limit`.
  std::vector<FeedEvent> feed(storage::Txn& txn, std::uint64_t after_seq, std::size_t limit) const;
  FeedBounds feed_bounds(storage::Txn& txn) const;
  /// Deletes at most `limit` feed events older than `cutoff_ms`, oldest
  /// first (runtime::Retention's pass; `[order] feed_retention_hours`). The
  /// sequence counter is kept. Errors: LMDB codes.
  std::expected<storage::PruneResult, std::error_code> prune_feed(storage::Txn& txn,
                                                                  std::int64_t cutoff_ms,
                                                                  std::size_t limit) const;

 private:
  std::error_code put(storage::Txn& txn, const Order& o) const;
  /// Appends `kind` for `o` (as it is after the change) to the feed.
  std::error_code append_event(storage::Txn& txn, const Order& o, FeedEventKind kind,
                               std::int64_t now_ms) const;
  storage::Table orders_;
  storage::Table feed_;      ///< order_feed
  storage::Table counters_;  ///< order_counters
  /// (user id, ~order id) -> (empty): ascending keys are a user's orders
  /// newest first.
  storage::Table by_user_;
};

/// Read-only query library over the order environment (CQRS read side).
class OrderQueries {
 public:
  /// Opens `env_path` (Config::env_path("order")) read-only. Errors: ENOENT
  /// when the environment does not exist yet, MDB_NOTFOUND when the daemon has
  /// not created its tables yet (retry later), other LMDB codes.
  static std::expected<OrderQueries, std::error_code> open(const std::string& env_path,
                                                           std::size_t map_size_bytes);
  /// GET /v1/orders/{id}: nullopt = ORDER_NOT_FOUND. Errors: MDB_READERS_FULL.
  std::expected<std::optional<Order>, std::error_code> order(std::uint64_t order_id) const;
  /// GET /v1/feeds/orders: the events after `after_seq` (at most `limit`)
  /// and the feed's bounds, from one snapshot. Errors: MDB_READERS_FULL.
  std::expected<std::pair<std::vector<FeedEvent>, FeedBounds>, std::error_code> feed(
      std::uint64_t after_seq, std::size_t limit) const;
  /// GET /v1/users/{id}/orders (OrderStore::orders_of_user). Errors: MDB_READERS_FULL.
  std::expected<std::vector<OrderSummary>, std::error_code> orders_of_user(std::uint64_t user_id,
                                                                           std::uint64_t before_id,
                                                                           std::size_t limit) const;

 private:
  OrderQueries(std::unique_ptr<storage::Env> env, OrderStore store)
      : env_(std::move(env)), store_(store) {}
  std::unique_ptr<storage::Env> env_;
  OrderStore store_;
};

}  // namespace ringmart::order
