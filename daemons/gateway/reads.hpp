// ringmart::gateway — the read side (CQRS): the domains' read-only query
// libraries, opened lazily, and the JSON the API shows for their views.
//
// Each domain environment is opened read-only on first use; when it does not
// exist yet (the daemon never ran, or has not created its tables) the request
// answers 503 UNAVAILABLE and the next request tries again. Once open, reads
// work while the owning daemon is down or restarting. A query library that is
// not built into this gateway (its CMake target did not exist) answers 503 too.
//
// LMDB forbids opening one environment twice in a process, so each is opened
// at most once and kept for the gateway's life.
//
// Thread-safety: not thread-safe (lazy opening); use from the io thread only.
#pragma once

#include <cstdint>
#include <expected>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "daemons/common/config.hpp"
#include "daemons/gateway/requests.hpp"
#include "daemons/order/order_store.hpp"
#include "daemons/product/product_store.hpp"
#include "daemons/user/user_store.hpp"

namespace ringmart::gateway {

/// A user coupon as order validation needs it.
struct UserCouponRef {
  std::uint64_t user_id = 0;
  bool issued = false;  ///< false = USED
};

/// An order as GET /v1/orders/{id} shows it (docs/api.md "Order response").
struct OrderSnapshot {
  nlohmann::json view;
  bool terminal = false;  ///< COMPLETED or FAILED
};

/// {"recipient","phone","line1","line2","city","region","postal_code","country"}
nlohmann::json address_json(const user::Address& a);
/// address_json plus {"id","default"}.
nlohmann::json address_view_json(const user::AddressView& a);

class DomainReads {
 public:
  /// Remembers where the environments are (`config.env_path(name)`,
  /// `config.map_size_bytes`); opens nothing yet.
  explicit DomainReads(const runtime::Config& config);
  ~DomainReads();
  DomainReads(const DomainReads&) = delete;
  DomainReads& operator=(const DomainReads&) = delete;

  // ---- for validation. Errors: 503 UNAVAILABLE (env not available), 500 INTERNAL (LMDB).

  std::expected<bool, ApiError> user_exists(std::uint64_t user_id);
  /// Unit prices in cents and whether each product is still orderable, in
  /// the order of `product_ids`, from one snapshot; nullopt entries are
  /// unknown products.
  std::expected<std::vector<std::optional<product::ProductOffer>>, ApiError> unit_prices(
      const std::vector<std::uint64_t>& product_ids);
  /// The user coupon, or nullopt when unknown.
  std::expected<std::optional<UserCouponRef>, ApiError> user_coupon(std::uint64_t user_coupon_id);
  /// The account registered with `email` (any case), or nullopt.
  std::expected<std::optional<user::Credentials>, ApiError> credentials(std::string_view email);
  /// The account of `user_id`, or nullopt.
  std::expected<std::optional<user::Credentials>, ApiError> credentials_of_user(
      std::uint64_t user_id);
  /// The valid session of a token hash at `now_ms` (UserStore::session), or nullopt.
  std::expected<std::optional<user::SessionView>, ApiError> session(
      std::span<const std::byte> token_hash, std::int64_t now_ms);
  /// One address of the user; 404 ADDRESS_NOT_FOUND when it has none by that id.
  std::expected<user::AddressView, ApiError> address(std::uint64_t user_id,
                                                     std::uint64_t address_id);
  /// The order daemon's view of `order_id`, or nullopt when it does not know it.
  std::expected<std::optional<OrderSnapshot>, ApiError> order(std::uint64_t order_id);
  /// The order change feed after `after_seq` (at most `limit` events) and
  /// its bounds, from one snapshot.
  std::expected<std::pair<std::vector<order::FeedEvent>, order::FeedBounds>, ApiError> order_feed(
      std::uint64_t after_seq, std::size_t limit);
  /// GET /v1/orders/{id}/history: {"order_id","status","history":[{"status","at_ms"}]}
  /// oldest first, or nullopt when the order daemon does not know the order.
  std::expected<std::optional<nlohmann::json>, ApiError> order_history_json(std::uint64_t order_id);

  // ---- JSON for GET routes (docs/api.md shapes). Errors: 404 with the
  // domain's *_NOT_FOUND code, 503, 500.

  /// {"id","name","email","points","has_password","default_address_id"}
  std::expected<nlohmann::json, ApiError> user_json(std::uint64_t user_id);
  /// {"balance","history":[{"delta","reason","order_id"}]} (order_id 0 for charges)
  std::expected<nlohmann::json, ApiError> points_json(std::uint64_t user_id);
  /// {"addresses":[address_view_json...]} by id; 404 USER_NOT_FOUND.
  std::expected<nlohmann::json, ApiError> addresses_json(std::uint64_t user_id);
  /// [{"user_coupon_id","coupon_id","name","status"}]; 404 USER_NOT_FOUND.
  std::expected<nlohmann::json, ApiError> user_coupons_json(std::uint64_t user_id);
  /// GET /v1/users/{id}/orders: {"orders":[{order_id, status, failure_reason,
  /// total, discount, points_used, paid, item_count, line_count,
  /// created_at_ms}], "next_cursor"}: newest first, at most `limit`, ids below
  /// `before_id` (0 = from the newest); next_cursor is the last id listed,
  /// null when the list ended. 404 USER_NOT_FOUND for an unknown user. Orders
  /// the gateway accepted but the order daemon has not stored yet are not
  /// listed (GET /v1/orders/{id} shows them).
  std::expected<nlohmann::json, ApiError> user_orders_json(std::uint64_t user_id,
                                                           std::uint64_t before_id,
                                                           std::size_t limit);
  /// {"id","name","category","price","stock"}
  std::expected<nlohmann::json, ApiError> product_json(std::uint64_t product_id);
  /// [{"category","products"}]: every category with listed products.
  std::expected<nlohmann::json, ApiError> categories_json();
  /// {"items":[product...],"next_cursor":id|null}; `limit` 1..100.
  std::expected<nlohmann::json, ApiError> products_json(const std::string& category,
                                                        std::uint64_t cursor, std::size_t limit);
  /// {"id","name","discount_type","discount_value","total_quantity","issued","min_order","expires_at"}
  std::expected<nlohmann::json, ApiError> coupon_json(std::uint64_t coupon_id);
  /// {"saga_id","order_id","state","step","failure_reason","history":[{"step","event","at_ms"}]}
  std::expected<nlohmann::json, ApiError> saga_json(std::uint64_t order_id);
  /// {"order_id","status","amount","installments"}
  std::expected<nlohmann::json, ApiError> payment_json(std::uint64_t order_id);
  /// [{"product_id","units"}] over the `days` UTC days ending today (`now_ms` Unix ms).
  std::expected<nlohmann::json, ApiError> bestsellers_json(std::int64_t now_ms, int days,
                                                           std::size_t limit);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ringmart::gateway
