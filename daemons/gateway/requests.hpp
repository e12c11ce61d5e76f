// ringmart::gateway — request validation and error mapping (pure functions).
//
// Everything here is a function of its arguments: no I/O, no LMDB, no clock,
// so the storefront's input rules (docs/api.md) are unit-tested alone
// (gateway_test.cpp). Bodies are validated strictly: wrong JSON types,
// out-of-range numbers and unknown members are 400 INVALID_ARGUMENT; optional
// members may be absent or null.
//
// Thread-safety: pure functions, safe from any thread.
#pragma once

#include <cstdint>
#include <expected>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemons/user/address.hpp"
#include "http/server.hpp"
#include "schemas/envelope.capnp.h"

namespace ringmart::gateway {

/// Limits of an order request (docs/api.md, "Order request").
inline constexpr std::size_t kMaxOrderLines = 100;
inline constexpr std::int64_t kMaxLineQuantity = 10'000;
inline constexpr std::uint32_t kMaxInstallments = 24;
/// Longest payment token accepted, in bytes.
inline constexpr std::size_t kMaxPaymentTokenBytes = 256;
/// Longest user, product and coupon name accepted, in characters (code points;
/// the user and product daemons count the same way).
inline constexpr std::size_t kMaxNameChars = 200;
/// Longest e-mail address accepted, in bytes: RFC 5321 §4.5.3.1.3 limits a
/// path to 256 octets including the angle brackets.
inline constexpr std::size_t kMaxEmailBytes = 254;
/// Longest product category accepted, in characters.
inline constexpr std::size_t kMaxCategoryChars = 100;
/// Shortest and longest password accepted, in bytes (OWASP ASVS 4.0 §2.1.1
/// and §2.1.2 ask for at least 8 and allow at least 64).
inline constexpr std::size_t kMinPasswordBytes = 8;
inline constexpr std::size_t kMaxPasswordBytes = 128;
/// Deepest nesting of a JSON body (an order is 3 levels deep).
inline constexpr std::size_t kMaxJsonDepth = 16;
/// Longest Idempotency-Key accepted, in bytes (an LMDB key is at most 511).
inline constexpr std::size_t kMaxIdempotencyKeyBytes = 255;
/// Longest long-poll of GET /v1/orders/{id}?wait_ms=N; larger N are clamped.
inline constexpr std::int64_t kMaxWaitMs = 30'000;

/// An API error: HTTP status, the `error.code` string and a human message.
struct ApiError {
  int status = 400;
  std::string code;
  std::string message;

  /// The error as an HTTP response: {"error":{"code","message"}}.
  http::Response response() const;
};

/// 400 INVALID_ARGUMENT with `message`.
ApiError invalid_argument(std::string message);

// ---------------------------------------------------------------- orders

struct OrderLineRequest {
  std::uint64_t product_id = 0;
  std::int64_t quantity = 0;  ///< 1..kMaxLineQuantity

  bool operator==(const OrderLineRequest&) const = default;
};

/// A validated POST /v1/orders body with defaults applied.
struct OrderRequest {
  std::uint64_t user_id = 0;                      ///< 0 only when parsed with user_id_optional
  std::vector<OrderLineRequest> items;            ///< 1..kMaxOrderLines, each product once
  std::uint64_t user_coupon_id = 0;               ///< 0 = none
  std::int64_t points = 0;                        ///< >= 0
  std::int64_t shipping_cents = 0;                ///< >= 0
  std::string payment_token;                      ///< non-empty
  std::uint32_t installments = 1;                 ///< 1..kMaxInstallments
  std::uint64_t shipping_address_id = 0;          ///< an address-book entry (0 = none)
  std::optional<user::Address> shipping_address;  ///< inline, or the entry's snapshot

  bool operator==(const OrderRequest&) const = default;
};

/// Parses and validates a POST /v1/orders body:
/// `{"user_id", "items":[{"product_id","quantity"}], "user_coupon_id"?, "points"?,
///   "shipping"?, "payment":{"token","installments"?},
///   "shipping_address_id"? | "shipping_address"?: {address}}`.
/// Ids are integers >= 1; quantity 1..10000; 1..100 lines; a product at most
/// once; points and shipping integers >= 0; token a non-empty string;
/// installments 1..24; at most one of shipping_address_id and
/// shipping_address (an address as parse_address takes it). `user_id_optional`:
/// user_id may be absent (0; the caller's token names the user).
/// Errors: 400 INVALID_ARGUMENT naming the first problem.
std::expected<OrderRequest, ApiError> parse_order_request(std::string_view body,
                                                          bool user_id_optional = false);

/// Stable 64-bit fingerprint of a normalised order request (FNV-1a 64 over a
/// length-prefixed encoding of every field, http://www.isthe.com/chongo/tech/comp/fnv/).
/// Two bodies that differ only in formatting, member order or defaults written
/// out hash equal; it tells an idempotent retry from a reused key, it is not a
/// defence against an adversary.
std::uint64_t order_request_hash(const OrderRequest& request);

/// Validates an Idempotency-Key header value: 1..kMaxIdempotencyKeyBytes
/// bytes of visible ASCII (0x21..0x7e). Errors: 400 INVALID_ARGUMENT.
std::expected<void, ApiError> check_idempotency_key(std::string_view key);

/// The stored form of an Idempotency-Key: the route and the user it was sent
/// for, then the key ("POST /v1/orders\x1fuser=12\x1f<key>"), so one user's
/// key never answers, reveals or blocks another user's request, nor another
/// route's. Unit separators (0x1f) cannot occur in a valid key. Pure; at most
/// kMaxIdempotencyKeyBytes + route + 30 bytes (within LMDB's 511).
std::string scoped_idempotency_key(std::string_view route, std::uint64_t user_id,
                                   std::string_view key);

/// Fingerprint of a command request (FNV-1a 64 over the method, the path and
/// the body as canonical JSON: members sorted, no whitespace; a body that is
/// not JSON counts as its bytes). The members "password" and
/// "current_password" are left out, so the key store keeps nothing derived
/// from a password (a retry that differs only in them is the same request).
/// Tells a retry from a reused key. Pure.
std::uint64_t command_request_hash(std::string_view method, std::string_view path,
                                   std::string_view body);

/// The stored form of a command route's Idempotency-Key: method, route
/// pattern and path (so ids in the path scope it: one user's charge key
/// never answers another user's), then the key. Pure.
std::string scoped_command_key(std::string_view method, std::string_view route,
                               std::string_view path, std::string_view key);

/// Subtotal Σ quantity × unit price in cents. `unit_prices_cents[i]` belongs
/// to `request.items[i]`. Errors: 400 INVALID_ARGUMENT when the sum (with
/// shipping) does not fit in int64.
std::expected<std::int64_t, ApiError> order_subtotal(
    const OrderRequest& request, const std::vector<std::int64_t>& unit_prices_cents);

// ---------------------------------------------------------------- other bodies
//
// Every body parser is strict: a JSON object (RFC 8259) with only the members
// it names, none twice, nested at most kMaxJsonDepth deep, and no string (nor
// member name) holding a control character (U+0000..U+001F, U+007F). Errors:
// 400 INVALID_ARGUMENT naming the first problem; nothing is changed.

/// POST /v1/users {name, email, password?}: name 1..kMaxNameChars characters,
/// email 1..kMaxEmailBytes bytes shaped local-part@domain without spaces,
/// password 8..128 bytes (absent or null: a guest customer). Errors: 400
/// (whose message never quotes the password).
struct RegisterUserRequest {
  std::string name;
  std::string email;
  std::optional<std::string> password;
};
std::expected<RegisterUserRequest, ApiError> parse_register_user(std::string_view body);

/// POST /v1/sessions {email, password}: email 1..kMaxEmailBytes bytes,
/// password 1..128 bytes (a shorter one than 8 cannot match and is simply a
/// wrong password). Errors: 400.
struct LoginRequest {
  std::string email;
  std::string password;
};
std::expected<LoginRequest, ApiError> parse_login(std::string_view body);

/// PATCH /v1/users/{id} {name?, email?, password?, current_password?}: at
/// least one of name, email, password (rules of parse_register_user);
/// current_password 1..128 bytes. Errors: 400.
struct UpdateUserRequest {
  std::optional<std::string> name;
  std::optional<std::string> email;
  std::optional<std::string> password;
  std::optional<std::string> current_password;
};
std::expected<UpdateUserRequest, ApiError> parse_update_user(std::string_view body);

/// An address body: {recipient, phone?, line1, line2?, city, region?,
/// postal_code?, country, default?} (user::address_problem's rules; country
/// ISO 3166-1 alpha-2). `partial` (PATCH): every member optional, at least
/// one, and `mask` says which were given. Errors: 400.
struct AddressRequest {
  user::Address address;
  std::uint32_t mask = 0;     ///< user::AddressField bits present in the body
  bool make_default = false;  ///< "default": true
};
std::expected<AddressRequest, ApiError> parse_address(std::string_view body, bool partial);

/// POST /v1/users/{id}/points/charge {amount}: integer > 0. Errors: 400.
std::expected<std::int64_t, ApiError> parse_charge_points(std::string_view body);

/// POST /v1/coupons/{id}/issue {user_id}: integer id >= 1. Errors: 400.
std::expected<std::uint64_t, ApiError> parse_issue_coupon(std::string_view body);

/// POST /v1/products {name, category, price, stock}: name 1..kMaxNameChars,
/// category 1..kMaxCategoryChars characters, price and stock integers >= 0.
struct CreateProductRequest {
  std::string name;
  std::string category;
  std::int64_t price_cents = 0;
  std::int64_t stock = 0;
};
std::expected<CreateProductRequest, ApiError> parse_create_product(std::string_view body);

/// PATCH /v1/products/{id}/stock {delta}: a signed integer. Errors: 400.
std::expected<std::int64_t, ApiError> parse_adjust_stock(std::string_view body);

/// POST /v1/coupons {name, discount_type, discount_value, total_quantity,
/// min_order?, expires_at?}: name 1..kMaxNameChars characters, fixed value > 0 cents,
/// percent 1..100, total_quantity >= 1, min_order >= 0 cents, expires_at >= 0 Unix seconds (0 or
/// absent = never). Errors: 400.
struct CreateCouponRequest {
  std::string name;
  msg::DiscountType discount_type = msg::DiscountType::FIXED;
  std::int64_t discount_value = 0;
  std::int64_t total_quantity = 0;
  std::int64_t min_order_cents = 0;
  std::int64_t expires_at_s = 0;
  std::int64_t per_user_limit = 1;  ///< "per_user_limit", >= 1, default 1
};
std::expected<CreateCouponRequest, ApiError> parse_create_coupon(std::string_view body);

/// PATCH /v1/products/{id} {name?, category?, price?}: at least one member;
/// name 1..200 and category 1..100 characters, price >= 0 cents. Errors: 400
/// INVALID_ARGUMENT naming the first problem.
struct UpdateProductRequest {
  std::optional<std::string> name;
  std::optional<std::string> category;
  std::optional<std::int64_t> price_cents;
};
std::expected<UpdateProductRequest, ApiError> parse_update_product(std::string_view body);

/// POST /v1/orders/{id}/shipments {carrier, tracking_number}: each 1..100
/// characters. Errors: 400.
struct ShipmentRequest {
  std::string carrier;
  std::string tracking_number;
};
std::expected<ShipmentRequest, ApiError> parse_shipment(std::string_view body);

// ---------------------------------------------------------------- paths, queries

/// A decimal id from a path segment: digits only, 1..2^64-1.
/// Errors: 400 INVALID_ARGUMENT ("<what> must be a positive integer").
std::expected<std::uint64_t, ApiError> parse_id(std::string_view text, std::string_view what);

/// Integer query parameter `name` in [min, max]; `fallback` when absent or
/// empty. Errors: 400 INVALID_ARGUMENT (not an integer, out of range).
std::expected<std::int64_t, ApiError> query_int(const std::map<std::string, std::string>& query,
                                                const std::string& name, std::int64_t fallback,
                                                std::int64_t min, std::int64_t max);

/// `wait_ms` of GET /v1/orders/{id}: absent = 0; negative or not an integer
/// = 400; larger than kMaxWaitMs is clamped to it.
std::expected<std::int64_t, ApiError> parse_wait_ms(
    const std::map<std::string, std::string>& query);

/// The `wait` preference of a `Prefer` header (RFC 7240, section 4.3:
/// `wait=delta-seconds`; preferences are separated by commas, parameters by
/// ';', names are case-insensitive) in ms, clamped to kMaxWaitMs; 0 when the
/// header has none. A malformed preference is ignored, as RFC 7240 asks of
/// servers, so this never fails.
std::int64_t prefer_wait_ms(std::string_view prefer_header);

// ---------------------------------------------------------------- codes

/// HTTP status for a command's msg::Code: ok 200; userNotFound,
/// productNotFound, couponNotFound, orderNotFound 404; couponSoldOut,
/// couponExpired, stockNegative (and the saga's business failures) 409;
/// invalidArgument 400; paymentTimeout, stepTimeout 504; internal 500.
int http_status(msg::Code code);

/// The ApiError for a failed command: http_status(code), the code's API name
/// ("COUPON_SOLD_OUT") and `message` (or a generic one when empty).
ApiError command_error(msg::Code code, std::string_view message);

}  // namespace ringmart::gateway
