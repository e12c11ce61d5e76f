#include "daemons/gateway/requests.hpp"

#include <strings.h>

#include <charconv>
#include <initializer_list>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "daemons/common/runtime.hpp"
#include "storage/text.hpp"

namespace ringmart::gateway {
namespace {

using nlohmann::json;

constexpr std::int64_t kInt64Max = std::numeric_limits<std::int64_t>::max();

// A string holds a control character (U+0000..U+001F, U+007F), raw or
// \u-escaped: names, e-mails and tokens never need one, and a NUL inside a
// stored name would cut it short for any C reader.
bool has_control(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

// True when a string of `j` (a value or a member name, at any depth) holds a
// control character.
bool any_control(const json& j) {
  if (j.is_string()) return has_control(j.get_ref<const std::string&>());
  if (j.is_object()) {
    for (const auto& [key, value] : j.items()) {
      if (has_control(key) || any_control(value)) return true;
    }
  }
  if (j.is_array()) {
    for (const auto& value : j) {
      if (any_control(value)) return true;
    }
  }
  return false;
}

// Parses a JSON object body (RFC 8259), strictly: a member name twice in one
// object (RFC 8259 §4 leaves the meaning to the reader; "last wins" let
// {"user_id":2,"user_id":1} pass a check on 2 and act on 1), nesting deeper
// than kMaxJsonDepth and control characters in strings are errors.
// Errors: 400 INVALID_ARGUMENT.
std::expected<json, ApiError> parse_object(std::string_view body) {
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  bool too_deep = false;
  json::parser_callback_t check = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth > static_cast<int>(kMaxJsonDepth)) {
      too_deep = true;
      return false;  // discarded: a hostile depth costs no memory
    }
    switch (event) {
      case json::parse_event_t::object_start:
        open_objects.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case json::parse_event_t::key:
        if (!open_objects.empty() && parsed.is_string() &&
            !open_objects.back().insert(parsed.get<std::string>()).second && duplicate.empty()) {
          duplicate = parsed.get<std::string>();
        }
        break;
      default:
        break;
    }
    return true;
  };
  json j = json::parse(body, check, /*allow_exceptions=*/false);
  if (too_deep) {
    return std::unexpected(
        invalid_argument("body nests deeper than " + std::to_string(kMaxJsonDepth) + " levels"));
  }
  if (j.is_discarded()) return std::unexpected(invalid_argument("body is not valid JSON"));
  if (!duplicate.empty()) {
    return std::unexpected(invalid_argument("member \"" + json(duplicate).dump().substr(1) +
                                            " appears more than once"));
  }
  if (!j.is_object()) return std::unexpected(invalid_argument("body must be a JSON object"));
  if (any_control(j)) {
    return std::unexpected(invalid_argument("strings must not contain control characters"));
  }
  return j;
}

// Rejects members not in `allowed` (catches typos such as "point" for "points").
std::expected<void, ApiError> only_members(const json& object, std::string_view where,
                                           std::initializer_list<std::string_view> allowed) {
  for (const auto& [key, value] : object.items()) {
    bool known = false;
    for (auto a : allowed) known |= key == a;
    if (!known) {
      return std::unexpected(
          invalid_argument("unknown member \"" + key + "\" in " + std::string(where)));
    }
  }
  return {};
}

// Present and not null.
const json* member(const json& object, const char* name) {
  auto it = object.find(name);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

// A JSON integer (not a float, not a bool) that fits int64.
std::optional<std::int64_t> as_int64(const json& v) {
  if (v.is_number_unsigned()) {
    const auto u = v.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(kInt64Max)) return std::nullopt;
    return static_cast<std::int64_t>(u);
  }
  if (v.is_number_integer()) return v.get<std::int64_t>();
  return std::nullopt;
}

std::expected<std::int64_t, ApiError> int_member(const json& object, const char* name,
                                                 std::optional<std::int64_t> fallback,
                                                 std::int64_t min, std::int64_t max,
                                                 std::string_view where = {}) {
  const std::string label = where.empty() ? std::string(name) : std::string(where) + "." + name;
  const json* v = member(object, name);
  if (!v) {
    if (fallback) return *fallback;
    return std::unexpected(invalid_argument(label + " is required"));
  }
  auto i = as_int64(*v);
  if (!i) return std::unexpected(invalid_argument(label + " must be an integer"));
  if (*i < min || *i > max) {
    std::string range = max == kInt64Max ? ">= " + std::to_string(min)
                                         : std::to_string(min) + ".." + std::to_string(max);
    return std::unexpected(invalid_argument(label + " must be " + range));
  }
  return *i;
}

std::expected<std::uint64_t, ApiError> id_member(const json& object, const char* name,
                                                 bool optional, std::string_view where = {}) {
  const std::string label = where.empty() ? std::string(name) : std::string(where) + "." + name;
  const json* v = member(object, name);
  if (!v) {
    if (optional) return 0;
    return std::unexpected(invalid_argument(label + " is required"));
  }
  std::uint64_t id = 0;
  if (v->is_number_unsigned()) {
    id = v->get<std::uint64_t>();
  } else if (v->is_number_integer() && v->get<std::int64_t>() > 0) {
    id = static_cast<std::uint64_t>(v->get<std::int64_t>());
  }
  if (id == 0) return std::unexpected(invalid_argument(label + " must be a positive integer id"));
  return id;
}

enum class Unit { bytes, characters };

// A string of 1..max units: bytes, or characters (code points of the UTF-8
// the JSON parser validated), as the owning domain counts them.
std::expected<std::string, ApiError> string_member(const json& object, const char* name,
                                                   std::size_t max, Unit unit) {
  const json* v = member(object, name);
  if (!v) return std::unexpected(invalid_argument(std::string(name) + " is required"));
  if (!v->is_string())
    return std::unexpected(invalid_argument(std::string(name) + " must be a string"));
  const auto& s = v->get_ref<const std::string&>();
  const std::size_t length = unit == Unit::bytes ? s.size() : storage::utf8_length(s);
  if (length < 1 || length > max) {
    return std::unexpected(invalid_argument(std::string(name) + " must be 1.." +
                                            std::to_string(max) +
                                            (unit == Unit::bytes ? " bytes" : " characters")));
  }
  return s;
}

// FNV-1a 64 (http://www.isthe.com/chongo/tech/comp/fnv/).
struct Fnv1a64 {
  std::uint64_t h = 0xcbf29ce484222325ull;
  void bytes(const void* data, std::size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (std::size_t i = 0; i < n; ++i) {
      h ^= p[i];
      h *= 0x100000001b3ull;
    }
  }
  void u64(std::uint64_t v) {
    unsigned char b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<unsigned char>(v >> (8 * i));
    bytes(b, 8);
  }
};

// An address object (parse_address; the order's shipping_address without "default").
std::expected<AddressRequest, ApiError> address_of(const json& j, bool partial, bool allow_default);

}  // namespace

http::Response ApiError::response() const { return http::error_response(status, code, message); }

ApiError invalid_argument(std::string message) {
  return ApiError{400, "INVALID_ARGUMENT", std::move(message)};
}

// ---------------------------------------------------------------- orders

std::expected<OrderRequest, ApiError> parse_order_request(std::string_view body,
                                                          bool user_id_optional) {
  auto j = parse_object(body);
  if (!j) return std::unexpected(j.error());
  if (auto ok = only_members(*j, "order",
                             {"user_id", "items", "user_coupon_id", "points", "shipping", "payment",
                              "shipping_address_id", "shipping_address"});
      !ok) {
    return std::unexpected(ok.error());
  }
  OrderRequest r;
  auto user = id_member(*j, "user_id", user_id_optional);
  if (!user) return std::unexpected(user.error());
  r.user_id = *user;

  const json* items = member(*j, "items");
  if (!items) return std::unexpected(invalid_argument("items is required"));
  if (!items->is_array()) return std::unexpected(invalid_argument("items must be an array"));
  if (items->empty()) return std::unexpected(invalid_argument("items must not be empty"));
  if (items->size() > kMaxOrderLines) {
    return std::unexpected(
        invalid_argument("at most " + std::to_string(kMaxOrderLines) + " items per order"));
  }
  std::set<std::uint64_t> seen;
  for (std::size_t i = 0; i < items->size(); ++i) {
    const auto& line = (*items)[i];
    const std::string where = "items[" + std::to_string(i) + "]";
    if (!line.is_object()) return std::unexpected(invalid_argument(where + " must be an object"));
    if (auto ok = only_members(line, where, {"product_id", "quantity"}); !ok) {
      return std::unexpected(ok.error());
    }
    auto product = id_member(line, "product_id", false, where);
    if (!product) return std::unexpected(product.error());
    auto quantity = int_member(line, "quantity", std::nullopt, 1, kMaxLineQuantity, where);
    if (!quantity) return std::unexpected(quantity.error());
    if (!seen.insert(*product).second) {
      return std::unexpected(invalid_argument("product " + std::to_string(*product) +
                                              " appears more than once in items"));
    }
    r.items.push_back({*product, *quantity});
  }

  auto coupon = id_member(*j, "user_coupon_id", true);
  if (!coupon) return std::unexpected(coupon.error());
  r.user_coupon_id = *coupon;
  auto points = int_member(*j, "points", 0, 0, kInt64Max);
  if (!points) return std::unexpected(points.error());
  r.points = *points;
  auto shipping = int_member(*j, "shipping", 0, 0, kInt64Max);
  if (!shipping) return std::unexpected(shipping.error());
  r.shipping_cents = *shipping;

  const json* payment = member(*j, "payment");
  if (!payment) return std::unexpected(invalid_argument("payment is required"));
  if (!payment->is_object()) return std::unexpected(invalid_argument("payment must be an object"));
  if (auto ok = only_members(*payment, "payment", {"token", "installments"}); !ok) {
    return std::unexpected(ok.error());
  }
  const json* token = member(*payment, "token");
  if (!token || !token->is_string() || token->get_ref<const std::string&>().empty()) {
    return std::unexpected(invalid_argument("payment.token must be a non-empty string"));
  }
  if (token->get_ref<const std::string&>().size() > kMaxPaymentTokenBytes) {
    return std::unexpected(invalid_argument("payment.token is longer than " +
                                            std::to_string(kMaxPaymentTokenBytes) + " bytes"));
  }
  r.payment_token = token->get<std::string>();
  auto installments = int_member(*payment, "installments", 1, 1, kMaxInstallments, "payment");
  if (!installments) return std::unexpected(installments.error());
  r.installments = static_cast<std::uint32_t>(*installments);

  auto address_id = id_member(*j, "shipping_address_id", true);
  if (!address_id) return std::unexpected(address_id.error());
  r.shipping_address_id = *address_id;
  if (const json* address = member(*j, "shipping_address")) {
    if (r.shipping_address_id != 0) {
      return std::unexpected(
          invalid_argument("give shipping_address_id or shipping_address, not both"));
    }
    if (!address->is_object()) {
      return std::unexpected(invalid_argument("shipping_address must be an object"));
    }
    auto parsed = address_of(*address, false, false);
    if (!parsed) {
      return std::unexpected(invalid_argument("shipping_address." + parsed.error().message));
    }
    r.shipping_address = std::move(parsed->address);
  }
  return r;
}

std::uint64_t order_request_hash(const OrderRequest& r) {
  Fnv1a64 f;
  f.u64(r.user_id);
  f.u64(r.items.size());
  for (const auto& line : r.items) {
    f.u64(line.product_id);
    f.u64(static_cast<std::uint64_t>(line.quantity));
  }
  f.u64(r.user_coupon_id);
  f.u64(static_cast<std::uint64_t>(r.points));
  f.u64(static_cast<std::uint64_t>(r.shipping_cents));
  f.u64(r.payment_token.size());
  f.bytes(r.payment_token.data(), r.payment_token.size());
  f.u64(r.installments);
  f.u64(r.shipping_address_id);
  f.u64(r.shipping_address.has_value());
  if (r.shipping_address) {
    const auto& a = *r.shipping_address;
    for (const std::string* s : {&a.recipient, &a.phone, &a.line1, &a.line2, &a.city, &a.region,
                                 &a.postal_code, &a.country}) {
      f.u64(s->size());
      f.bytes(s->data(), s->size());
    }
  }
  return f.h;
}

std::expected<void, ApiError> check_idempotency_key(std::string_view key) {
  if (key.empty() || key.size() > kMaxIdempotencyKeyBytes) {
    return std::unexpected(invalid_argument("Idempotency-Key must be 1.." +
                                            std::to_string(kMaxIdempotencyKeyBytes) + " bytes"));
  }
  for (unsigned char c : key) {
    if (c < 0x21 || c > 0x7e) {
      return std::unexpected(
          invalid_argument("Idempotency-Key must be visible ASCII characters without spaces"));
    }
  }
  return {};
}

std::string scoped_idempotency_key(std::string_view route, std::uint64_t user_id,
                                   std::string_view key) {
  std::string scoped;
  scoped.reserve(route.size() + key.size() + 32);
  scoped.append(route)
      .append("\x1fuser=")
      .append(std::to_string(user_id))
      .append("\x1f")
      .append(key);
  return scoped;
}

std::uint64_t command_request_hash(std::string_view method, std::string_view path,
                                   std::string_view body) {
  Fnv1a64 f;
  f.u64(method.size());
  f.bytes(method.data(), method.size());
  f.u64(path.size());
  f.bytes(path.data(), path.size());
  auto parsed = json::parse(body, nullptr, false);
  if (parsed.is_object()) {
    // Nothing derived from a password is kept with the key.
    parsed.erase("password");
    parsed.erase("current_password");
  }
  const std::string canonical = parsed.is_discarded() ? std::string(body) : parsed.dump();
  f.u64(canonical.size());
  f.bytes(canonical.data(), canonical.size());
  return f.h;
}

std::string scoped_command_key(std::string_view method, std::string_view route,
                               std::string_view path, std::string_view key) {
  std::string scoped;
  scoped.reserve(method.size() + route.size() + path.size() + key.size() + 4);
  scoped.append(method).append(" ").append(route).append("\x1f").append(path).append("\x1f").append(
      key);
  return scoped;
}

std::expected<std::int64_t, ApiError> order_subtotal(
    const OrderRequest& request, const std::vector<std::int64_t>& unit_prices_cents) {
  std::int64_t subtotal = 0;
  for (std::size_t i = 0; i < request.items.size() && i < unit_prices_cents.size(); ++i) {
    std::int64_t line = 0;
    if (__builtin_mul_overflow(request.items[i].quantity, unit_prices_cents[i], &line) ||
        __builtin_add_overflow(subtotal, line, &subtotal)) {
      return std::unexpected(invalid_argument("order total is too large"));
    }
  }
  std::int64_t total = 0;
  if (__builtin_add_overflow(subtotal, request.shipping_cents, &total)) {
    return std::unexpected(invalid_argument("order total is too large"));
  }
  return subtotal;
}

// ---------------------------------------------------------------- other bodies

namespace {

// e-mail: 1..kMaxEmailBytes bytes shaped as a mailbox (RFC 5321 §4.1.2):
// local-part "@" domain, both non-empty, no spaces. Deliverability is the
// shop's mail system's business.
std::expected<std::string, ApiError> email_member(const json& object) {
  auto email = string_member(object, "email", kMaxEmailBytes, Unit::bytes);
  if (!email) return std::unexpected(email.error());
  const auto at = email->rfind('@');
  if (at == std::string::npos || at == 0 || at + 1 == email->size() ||
      email->find(' ') != std::string::npos) {
    return std::unexpected(invalid_argument("email must look like local-part@domain"));
  }
  return email;
}

// A password member: a string of min..kMaxPasswordBytes bytes. The message
// names the member and the rule, never the value.
std::expected<std::string, ApiError> password_member(const json& object, const char* name,
                                                     std::size_t min) {
  const json* v = member(object, name);
  if (!v) return std::unexpected(invalid_argument(std::string(name) + " is required"));
  if (!v->is_string()) {
    return std::unexpected(invalid_argument(std::string(name) + " must be a string"));
  }
  const auto& s = v->get_ref<const std::string&>();
  if (s.size() < min || s.size() > kMaxPasswordBytes) {
    return std::unexpected(invalid_argument(std::string(name) + " must be " + std::to_string(min) +
                                            ".." + std::to_string(kMaxPasswordBytes) + " bytes"));
  }
  return s;
}

// An optional string member of 0..max characters ("" when absent or null).
std::expected<std::string, ApiError> optional_text(const json& object, const char* name,
                                                   std::size_t max) {
  const json* v = member(object, name);
  if (!v) return std::string();
  if (!v->is_string()) {
    return std::unexpected(invalid_argument(std::string(name) + " must be a string"));
  }
  const auto& s = v->get_ref<const std::string&>();
  if (storage::utf8_length(s) > max) {
    return std::unexpected(invalid_argument(std::string(name) + " must be at most " +
                                            std::to_string(max) + " characters"));
  }
  return s;
}

std::expected<AddressRequest, ApiError> address_of(const json& j, bool partial,
                                                   bool allow_default) {
  if (allow_default) {
    if (auto ok = only_members(j, "address",
                               {"recipient", "phone", "line1", "line2", "city", "region",
                                "postal_code", "country", "default"});
        !ok) {
      return std::unexpected(ok.error());
    }
  } else if (auto ok = only_members(j, "shipping_address",
                                    {"recipient", "phone", "line1", "line2", "city", "region",
                                     "postal_code", "country"});
             !ok) {
    return std::unexpected(ok.error());
  }
  AddressRequest r;
  struct Field {
    const char* name;
    std::string user::Address::*member;
    std::uint32_t bit;
  };
  static constexpr Field kFields[] = {
      {"recipient", &user::Address::recipient, user::kRecipient},
      {"phone", &user::Address::phone, user::kPhone},
      {"line1", &user::Address::line1, user::kLine1},
      {"line2", &user::Address::line2, user::kLine2},
      {"city", &user::Address::city, user::kCity},
      {"region", &user::Address::region, user::kRegion},
      {"postal_code", &user::Address::postal_code, user::kPostalCode},
      {"country", &user::Address::country, user::kCountry},
  };
  for (const auto& f : kFields) {
    if (!j.contains(f.name)) continue;
    auto v = optional_text(j, f.name, user::kMaxAddressLineChars);
    if (!v) return std::unexpected(v.error());
    r.address.*f.member = std::move(*v);
    r.mask |= f.bit;
  }
  if (const json* d = member(j, "default")) {
    if (!d->is_boolean()) return std::unexpected(invalid_argument("default must be true or false"));
    r.make_default = d->get<bool>();
  }
  if (partial) {
    if (r.mask == 0 && !r.make_default) {
      return std::unexpected(invalid_argument("nothing to change: give an address member"));
    }
    // Each given member must be valid on its own: checked on a valid base.
    const user::Address base{.recipient = "x", .line1 = "x", .city = "x", .country = "BR"};
    if (auto problem = user::address_problem(user::merged(base, r.address, r.mask))) {
      return std::unexpected(invalid_argument(*problem));
    }
    return r;
  }
  if (auto problem = user::address_problem(r.address)) {
    return std::unexpected(invalid_argument(*problem));
  }
  r.mask = user::kAllAddressFields;
  return r;
}

}  // namespace

std::expected<RegisterUserRequest, ApiError> parse_register_user(std::string_view body) {
  auto j = parse_object(body);
  if (!j) return std::unexpected(j.error());
  if (auto ok = only_members(*j, "user", {"name", "email", "password"}); !ok)
    return std::unexpected(ok.error());
  auto name = string_member(*j, "name", kMaxNameChars, Unit::characters);
  if (!name) return std::unexpected(name.error());
  auto email = email_member(*j);
  if (!email) return std::unexpected(email.error());
  RegisterUserRequest r{std::move(*name), std::move(*email), std::nullopt};
  if (member(*j, "password")) {
    auto password = password_member(*j, "password", kMinPasswordBytes);
    if (!password) return std::unexpected(password.error());
    r.password = std::move(*password);
  }
  return r;
}

std::expected<LoginRequest, ApiError> parse_login(std::string_view body) {
  auto j = parse_object(body);
  if (!j) return std::unexpected(j.error());
  if (auto ok = only_members(*j, "login", {"email", "password"}); !ok)
    return std::unexpected(ok.error());
  auto email = string_member(*j, "email", kMaxEmailBytes, Unit::bytes);
  if (!email) return std::unexpected(email.error());
  auto password = password_member(*j, "password", 1);
  if (!password) return std::unexpected(password.error());
  return LoginRequest{std::move(*email), std::move(*password)};
}

std::expected<UpdateUserRequest, ApiError> parse_update_user(std::string_view body) {
  auto j = parse_object(body);
  if (!j) return std::unexpected(j.error());
  if (auto ok = only_members(*j, "user change", {"name", "email", "password", "current_password"});
      !ok) {
    return std::unexpected(ok.error());
  }
  UpdateUserRequest r;
  if (member(*j, "name")) {
    auto name = string_member(*j, "name", kMaxNameChars, Unit::characters);
    if (!name) return std::unexpected(name.error());
    r.name = std::move(*name);
  }
  if (member(*j, "email")) {
    auto email = email_member(*j);
    if (!email) return std::unexpected(email.error());
    r.email = std::move(*email);
  }
  if (member(*j, "password")) {
    auto password = password_member(*j, "password", kMinPasswordBytes);
    if (!password) return std::unexpected(password.error());
    r.password = std::move(*password);
  }
  if (member(*j, "current_password")) {
    auto current = password_member(*j, "current_password", 1);
    if (!current) return std::unexpected(current.error());
    r.current_password = std::move(*current);
  }
  if (!r.name && !r.email && !r.password) {
    return std::unexpected(invalid_argument("nothing to change: give name, email or password"));
  }
  return r;
}

std::expected<ShipmentRequest, ApiError> parse_shipment(std::string_view body) {
  auto j = parse_object(body);
  if (!j) return std::unexpected(j.error());
  if (auto ok = only_members(*j, "shipment", {"carrier", "tracking_number"}); !ok) {
    return std::unexpected(ok.error());
  }
  auto carrier = string_member(*j, "carrier", 100, Unit::characters);
  if (!carrier) return std::unexpected(carrier.error());
  auto tracking = string_member(*j, "tracking_number", 100, Unit::characters);
  if (!tracking) return std::unexpected(tracking.error());
  return ShipmentRequest{std::move(*carrier), std::move(*tracking)};
}

std::expected<AddressRequest, ApiError> parse_address(std::string_view body, bool partial) {
  auto j = parse_object(body);
  if (!j) return std::unexpected(j.error());
  return address_of(*j, partial, true);
}

std::expected<std::int64_t, ApiError> parse_charge_points(std::string_view body) {
  auto j = parse_object(body);
  if (!j) return std::unexpected(j.error());
  if (auto ok = only_members(*j, "charge", {"amount"}); !ok) return std::unexpected(ok.error());
  return int_member(*j, "amount", std::nullopt, 1, kInt64Max);
}

std::expected<std::uint64_t, ApiError> parse_issue_coupon(std::string_view body) {
  auto j = parse_object(body);
  if (!j) return std::unexpected(j.error());
  if (auto ok = only_members(*j, "issue", {"user_id"}); !ok) return std::unexpected(ok.error());
  return id_member(*j, "user_id", false);
}

std::expected<CreateProductRequest, ApiError> parse_create_product(std::string_view body) {
  auto j = parse_object(body);
  if (!j) return std::unexpected(j.error());
  if (auto ok = only_members(*j, "product", {"name", "category", "price", "stock"}); !ok) {
    return std::unexpected(ok.error());
  }
  CreateProductRequest r;
  auto name = string_member(*j, "name", kMaxNameChars, Unit::characters);
  if (!name) return std::unexpected(name.error());
  auto category = string_member(*j, "category", kMaxCategoryChars, Unit::characters);
  if (!category) return std::unexpected(category.error());
  auto price = int_member(*j, "price", std::nullopt, 0, kInt64Max);
  if (!price) return std::unexpected(price.error());
  auto stock = int_member(*j, "stock", std::nullopt, 0, kInt64Max);
  if (!stock) return std::unexpected(stock.error());
  r.name = std::move(*name);
  r.category = std::move(*category);
  r.price_cents = *price;
  r.stock = *stock;
  return r;
}

std::expected<UpdateProductRequest, ApiError> parse_update_product(std::string_view body) {
  auto j = parse_object(body);
  if (!j) return std::unexpected(j.error());
  if (auto ok = only_members(*j, "product change", {"name", "category", "price"}); !ok) {
    return std::unexpected(ok.error());
  }
  if (j->empty()) {
    return std::unexpected(invalid_argument("nothing to change: give name, category or price"));
  }
  UpdateProductRequest r;
  if (j->contains("name")) {
    auto name = string_member(*j, "name", kMaxNameChars, Unit::characters);
    if (!name) return std::unexpected(name.error());
    r.name = std::move(*name);
  }
  if (j->contains("category")) {
    auto category = string_member(*j, "category", kMaxCategoryChars, Unit::characters);
    if (!category) return std::unexpected(category.error());
    r.category = std::move(*category);
  }
  if (j->contains("price")) {
    auto price = int_member(*j, "price", std::nullopt, 0, kInt64Max);
    if (!price) return std::unexpected(price.error());
    r.price_cents = *price;
  }
  return r;
}

std::expected<std::int64_t, ApiError> parse_adjust_stock(std::string_view body) {
  auto j = parse_object(body);
  if (!j) return std::unexpected(j.error());
  if (auto ok = only_members(*j, "stock adjustment", {"delta"}); !ok) {
    return std::unexpected(ok.error());
  }
  return int_member(*j, "delta", std::nullopt, std::numeric_limits<std::int64_t>::min(), kInt64Max);
}

std::expected<CreateCouponRequest, ApiError> parse_create_coupon(std::string_view body) {
  auto j = parse_object(body);
  if (!j) return std::unexpected(j.error());
  if (auto ok = only_members(*j, "coupon",
                             {"name", "discount_type", "discount_value", "total_quantity",
                              "min_order", "expires_at", "per_user_limit"});
      !ok) {
    return std::unexpected(ok.error());
  }
  CreateCouponRequest r;
  auto name = string_member(*j, "name", kMaxNameChars, Unit::characters);
  if (!name) return std::unexpected(name.error());
  r.name = std::move(*name);
  auto type = string_member(*j, "discount_type", kMaxNameChars, Unit::characters);
  if (!type) return std::unexpected(type.error());
  if (*type == "fixed") {
    r.discount_type = msg::DiscountType::FIXED;
  } else if (*type == "percent") {
    r.discount_type = msg::DiscountType::PERCENT;
  } else {
    return std::unexpected(invalid_argument("discount_type must be \"fixed\" or \"percent\""));
  }
  const bool percent = r.discount_type == msg::DiscountType::PERCENT;
  auto value = int_member(*j, "discount_value", std::nullopt, 1, percent ? 100 : kInt64Max);
  if (!value) return std::unexpected(value.error());
  r.discount_value = *value;
  auto total = int_member(*j, "total_quantity", std::nullopt, 1, kInt64Max);
  if (!total) return std::unexpected(total.error());
  r.total_quantity = *total;
  auto min_order = int_member(*j, "min_order", 0, 0, kInt64Max);
  if (!min_order) return std::unexpected(min_order.error());
  r.min_order_cents = *min_order;
  auto expires = int_member(*j, "expires_at", 0, 0, kInt64Max);
  if (!expires) return std::unexpected(expires.error());
  r.expires_at_s = *expires;
  auto per_user = int_member(*j, "per_user_limit", 1, 1, kInt64Max);
  if (!per_user) return std::unexpected(per_user.error());
  r.per_user_limit = *per_user;
  return r;
}

// ---------------------------------------------------------------- paths, queries

std::expected<std::uint64_t, ApiError> parse_id(std::string_view text, std::string_view what) {
  std::uint64_t id = 0;
  const auto* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, id);
  if (text.empty() || text.front() < '0' || text.front() > '9' || ec != std::errc{} || ptr != end ||
      id == 0) {
    return std::unexpected(invalid_argument(std::string(what) + " must be a positive integer"));
  }
  return id;
}

std::expected<std::int64_t, ApiError> query_int(const std::map<std::string, std::string>& query,
                                                const std::string& name, std::int64_t fallback,
                                                std::int64_t min, std::int64_t max) {
  auto it = query.find(name);
  if (it == query.end() || it->second.empty()) return fallback;
  const auto& s = it->second;
  std::int64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || ptr != s.data() + s.size()) {
    return std::unexpected(invalid_argument(name + " must be an integer"));
  }
  if (v < min || v > max) {
    return std::unexpected(
        invalid_argument(name + " must be " + std::to_string(min) + ".." + std::to_string(max)));
  }
  return v;
}

std::expected<std::int64_t, ApiError> parse_wait_ms(
    const std::map<std::string, std::string>& query) {
  auto v = query_int(query, "wait_ms", 0, 0, kInt64Max);
  if (!v) {
    return std::unexpected(invalid_argument("wait_ms must be an integer >= 0 (at most " +
                                            std::to_string(kMaxWaitMs) + " is used)"));
  }
  return std::min(*v, kMaxWaitMs);
}

std::int64_t prefer_wait_ms(std::string_view header) {
  auto trim = [](std::string_view v) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    return v;
  };
  while (!header.empty()) {
    const auto comma = header.find(',');
    auto pref = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view{} : header.substr(comma + 1);
    pref = trim(pref.substr(0, pref.find(';')));  // parameters do not apply to wait
    const auto eq = pref.find('=');
    if (eq == std::string_view::npos) continue;
    auto name = trim(pref.substr(0, eq));
    auto value = trim(pref.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
      value = value.substr(1, value.size() - 2);
    if (name.size() != 4 || ::strncasecmp(name.data(), "wait", 4) != 0) continue;
    std::int64_t seconds = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (ec != std::errc{} || end != value.data() + value.size() || seconds < 0) continue;
    return std::min<std::int64_t>(seconds, kMaxWaitMs / 1000) * 1000;
  }
  return 0;
}

// ---------------------------------------------------------------- codes

int http_status(msg::Code code) {
  switch (code) {
    case msg::Code::OK:
      return 200;
    case msg::Code::USER_NOT_FOUND:
    case msg::Code::PRODUCT_NOT_FOUND:
    case msg::Code::COUPON_NOT_FOUND:
    case msg::Code::ORDER_NOT_FOUND:
    case msg::Code::ADDRESS_NOT_FOUND:
      return 404;
    case msg::Code::INVALID_CREDENTIALS:
      return 401;
    case msg::Code::COUPON_SOLD_OUT:
    case msg::Code::COUPON_USER_LIMIT:
    case msg::Code::PRODUCT_UNAVAILABLE:
    case msg::Code::EMAIL_TAKEN:
    case msg::Code::ORDER_STATE_CONFLICT:
    case msg::Code::COUPON_EXPIRED:
    case msg::Code::STOCK_NEGATIVE:
    case msg::Code::COUPON_INVALID:
    case msg::Code::OUT_OF_STOCK:
    case msg::Code::PAYMENT_DECLINED:
    case msg::Code::INSUFFICIENT_POINTS:
    case msg::Code::PAYMENT_CAPTURE_FAILED:
      return 409;
    case msg::Code::INVALID_ARGUMENT:
      return 400;
    case msg::Code::PAYMENT_TIMEOUT:
    case msg::Code::STEP_TIMEOUT:
      return 504;
    case msg::Code::INTERNAL:
      return 500;
  }
  return 500;
}

ApiError command_error(msg::Code code, std::string_view message) {
  const char* name = runtime::code_name(code);
  std::string text(message);
  if (text.empty()) text = std::string("the command failed: ") + name;
  return ApiError{http_status(code), name, std::move(text)};
}

}  // namespace ringmart::gateway
