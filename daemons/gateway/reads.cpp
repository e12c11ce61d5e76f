#include "daemons/gateway/reads.hpp"

#include <lmdb.h>

#include <cerrno>
#include <utility>

#include "daemons/common/runtime.hpp"
#include "daemons/coupon/coupon_store.hpp"
#include "daemons/order/order_store.hpp"
#include "daemons/payment/payment_store.hpp"
#include "daemons/product/product_store.hpp"
#include "daemons/ranking/ranking_store.hpp"
#include "daemons/supervisor/saga_store.hpp"
#include "daemons/user/user_store.hpp"

namespace ringmart::gateway {
namespace {

using nlohmann::json;

ApiError unavailable(const std::string& domain, const std::string& why) {
  return ApiError{503, "UNAVAILABLE", domain + " data is not available: " + why};
}

[[maybe_unused]] ApiError not_built(const std::string& domain) {
  return unavailable(domain, "its query library is not built into this gateway");
}

[[maybe_unused]] ApiError read_failed(const std::string& domain, std::error_code ec) {
  return ApiError{500, "INTERNAL", "reading " + domain + " data failed: " + ec.message()};
}

[[maybe_unused]] ApiError not_found(const char* code, const std::string& what, std::uint64_t id) {
  return ApiError{404, code, what + " " + std::to_string(id) + " not found"};
}

// A query library opened on first use and kept (an LMDB environment must not
// be opened twice by one process); a failed open is retried on the next use.
template <class Queries>
class Lazy {
 public:
  Lazy(std::string domain, std::string path, std::size_t map_size_bytes)
      : domain_(std::move(domain)), path_(std::move(path)), map_size_bytes_(map_size_bytes) {}

  std::expected<const Queries*, ApiError> get() {
    if (!queries_) {
      auto q = Queries::open(path_, map_size_bytes_);
      if (!q) {
        // Env::open reports errno values in the LMDB category: compare values.
        absent_ = q.error().value() == ENOENT || q.error().value() == MDB_NOTFOUND;
        return std::unexpected(unavailable(
            domain_, absent_ ? std::string("the ") + domain_ + " daemon has not created it yet"
                             : q.error().message()));
      }
      queries_.emplace(std::move(*q));
    }
    return &*queries_;
  }
  const std::string& domain() const { return domain_; }
  /// The last open failed because the environment or its tables do not exist
  /// yet (the daemon never ran), as opposed to an unreadable one.
  bool absent() const { return absent_; }

 private:
  std::string domain_;
  std::string path_;
  std::size_t map_size_bytes_;
  std::optional<Queries> queries_;
  bool absent_ = false;
};

}  // namespace

json address_json(const user::Address& a) {
  return json{{"recipient", a.recipient},
              {"phone", a.phone},
              {"line1", a.line1},
              {"line2", a.line2},
              {"city", a.city},
              {"region", a.region},
              {"postal_code", a.postal_code},
              {"country", a.country}};
}

json address_view_json(const user::AddressView& a) {
  json j = address_json(a.address);
  j["id"] = a.id;
  j["default"] = a.is_default;
  return j;
}

namespace {

json order_view_json(const order::Order& o) {
  json items = json::array();
  for (const auto& l : o.lines) {
    items.push_back({{"product_id", l.product_id},
                     {"quantity", l.quantity},
                     {"unit_price", l.unit_price_cents}});
  }
  json j = {{"order_id", o.order_id}, {"status", order::order_status_name(o.status)}};
  if (o.status == order::OrderStatus::failed) {
    j["failure_reason"] = order::failure_reason_name(o.failure_reason);
  }
  j["user_id"] = o.user_id;
  j["subtotal"] = o.subtotal_cents;
  j["shipping"] = o.shipping_cents;
  j["discount"] = o.discount_cents;
  j["points_used"] = o.points_used;
  j["paid"] = order::is_paid(o.status) ? o.paid_cents : 0;
  j["items"] = std::move(items);
  j["shipping_address"] = o.shipping_address ? address_json(*o.shipping_address) : json(nullptr);
  j["shipment"] = o.shipped_at_ms == 0
                      ? json(nullptr)
                      : json{{"carrier", o.carrier},
                             {"tracking_number", o.tracking_number},
                             {"shipped_at_ms", o.shipped_at_ms},
                             {"delivered_at_ms",
                              o.delivered_at_ms == 0 ? json(nullptr) : json(o.delivered_at_ms)}};
  return j;
}

}  // namespace

struct DomainReads::Impl {
  explicit Impl(const runtime::Config& c)
      : user("user", c.env_path("user"), c.map_size_bytes),
        product("product", c.env_path("product"), c.map_size_bytes),
        coupon("coupon", c.env_path("coupon"), c.map_size_bytes),
        order("order", c.env_path("order"), c.map_size_bytes),
        payment("payment", c.env_path("payment"), c.map_size_bytes),
        ranking("ranking", c.env_path("ranking"), c.map_size_bytes),
        supervisor("supervisor", c.env_path("supervisor"), c.map_size_bytes) {}

  Lazy<user::UserQueries> user;
  Lazy<product::ProductQueries> product;
  Lazy<coupon::CouponQueries> coupon;
  Lazy<order::OrderQueries> order;
  Lazy<payment::PaymentQueries> payment;
  Lazy<ranking::RankingQueries> ranking;
  Lazy<supervisor::SagaQueries> supervisor;
};

DomainReads::DomainReads(const runtime::Config& config) : impl_(std::make_unique<Impl>(config)) {}
DomainReads::~DomainReads() = default;

// ---------------------------------------------------------------- validation

std::expected<bool, ApiError> DomainReads::user_exists(std::uint64_t user_id) {
  auto q = impl_->user.get();
  if (!q) return std::unexpected(q.error());
  auto r = (*q)->exists(user_id);
  if (!r) return std::unexpected(read_failed("user", r.error()));
  return *r;
}

std::expected<std::vector<std::optional<product::ProductOffer>>, ApiError> DomainReads::unit_prices(
    const std::vector<std::uint64_t>& product_ids) {
  auto q = impl_->product.get();
  if (!q) return std::unexpected(q.error());
  auto r = (*q)->offers(product_ids);
  if (!r) return std::unexpected(read_failed("product", r.error()));
  return std::move(*r);
}

std::expected<std::optional<UserCouponRef>, ApiError> DomainReads::user_coupon(
    std::uint64_t user_coupon_id) {
  auto q = impl_->coupon.get();
  if (!q) return std::unexpected(q.error());
  auto r = (*q)->user_coupon(user_coupon_id);
  if (!r) return std::unexpected(read_failed("coupon", r.error()));
  if (!*r) return std::optional<UserCouponRef>{};
  return std::optional<UserCouponRef>(
      UserCouponRef{(*r)->user_id, (*r)->status == coupon::UserCouponStatus::issued});
}

std::expected<std::optional<OrderSnapshot>, ApiError> DomainReads::order(std::uint64_t order_id) {
  auto q = impl_->order.get();
  if (!q) return std::unexpected(q.error());
  auto r = (*q)->order(order_id);
  if (!r) return std::unexpected(read_failed("order", r.error()));
  if (!*r) return std::optional<OrderSnapshot>{};
  return std::optional<OrderSnapshot>(
      OrderSnapshot{order_view_json(**r), (*r)->status != order::OrderStatus::pending});
}

std::expected<std::pair<std::vector<order::FeedEvent>, order::FeedBounds>, ApiError>
DomainReads::order_feed(std::uint64_t after_seq, std::size_t limit) {
  auto q = impl_->order.get();
  if (!q) return std::unexpected(q.error());
  auto r = (*q)->feed(after_seq, limit);
  if (!r) return std::unexpected(read_failed("order", r.error()));
  return std::move(*r);
}

std::expected<std::optional<json>, ApiError> DomainReads::order_history_json(
    std::uint64_t order_id) {
  auto q = impl_->order.get();
  if (!q) return std::unexpected(q.error());
  auto r = (*q)->order(order_id);
  if (!r) return std::unexpected(read_failed("order", r.error()));
  if (!*r) return std::optional<json>{};
  json history = json::array();
  for (const auto& h : (*r)->history) {
    history.push_back({{"status", order::order_status_name(h.status)}, {"at_ms", h.at_ms}});
  }
  return std::optional<json>(json{{"order_id", order_id},
                                  {"status", order::order_status_name((*r)->status)},
                                  {"history", std::move(history)}});
}

// ---------------------------------------------------------------- GET views

std::expected<json, ApiError> DomainReads::user_json(std::uint64_t user_id) {
  auto q = impl_->user.get();
  if (!q) return std::unexpected(q.error());
  auto r = (*q)->find(user_id);
  if (!r) return std::unexpected(read_failed("user", r.error()));
  if (!*r) return std::unexpected(not_found("USER_NOT_FOUND", "user", user_id));
  const auto& u = **r;
  return json{{"id", u.id},
              {"name", u.name},
              {"email", u.email},
              {"points", u.points},
              {"has_password", u.has_password},
              {"default_address_id",
               u.default_address_id == 0 ? json(nullptr) : json(u.default_address_id)}};
}

std::expected<json, ApiError> DomainReads::addresses_json(std::uint64_t user_id) {
  auto q = impl_->user.get();
  if (!q) return std::unexpected(q.error());
  auto r = (*q)->addresses(user_id);
  if (!r) return std::unexpected(read_failed("user", r.error()));
  if (!*r) return std::unexpected(not_found("USER_NOT_FOUND", "user", user_id));
  json list = json::array();
  for (const auto& a : **r) list.push_back(address_view_json(a));
  return json{{"addresses", std::move(list)}};
}

std::expected<user::AddressView, ApiError> DomainReads::address(std::uint64_t user_id,
                                                                std::uint64_t address_id) {
  auto q = impl_->user.get();
  if (!q) return std::unexpected(q.error());
  auto r = (*q)->address(user_id, address_id);
  if (!r) return std::unexpected(read_failed("user", r.error()));
  if (!*r) return std::unexpected(not_found("ADDRESS_NOT_FOUND", "address", address_id));
  return std::move(**r);
}

std::expected<std::optional<user::Credentials>, ApiError> DomainReads::credentials(
    std::string_view email) {
  auto q = impl_->user.get();
  if (!q) return std::unexpected(q.error());
  auto r = (*q)->credentials(email);
  if (!r) return std::unexpected(read_failed("user", r.error()));
  return std::move(*r);
}

std::expected<std::optional<user::Credentials>, ApiError> DomainReads::credentials_of_user(
    std::uint64_t user_id) {
  auto q = impl_->user.get();
  if (!q) return std::unexpected(q.error());
  auto r = (*q)->credentials_of_user(user_id);
  if (!r) return std::unexpected(read_failed("user", r.error()));
  return std::move(*r);
}

std::expected<std::optional<user::SessionView>, ApiError> DomainReads::session(
    std::span<const std::byte> token_hash, std::int64_t now_ms) {
  auto q = impl_->user.get();
  if (!q) return std::unexpected(q.error());
  auto r = (*q)->session(token_hash, now_ms);
  if (!r) return std::unexpected(read_failed("user", r.error()));
  return *r;
}

std::expected<json, ApiError> DomainReads::points_json(std::uint64_t user_id) {
  auto q = impl_->user.get();
  if (!q) return std::unexpected(q.error());
  auto r = (*q)->points(user_id);
  if (!r) return std::unexpected(read_failed("user", r.error()));
  if (!*r) return std::unexpected(not_found("USER_NOT_FOUND", "user", user_id));
  json history = json::array();
  for (const auto& e : (*r)->history) {
    history.push_back(
        {{"delta", e.delta}, {"reason", user::reason_name(e.reason)}, {"order_id", e.order_id}});
  }
  return json{{"balance", (*r)->balance}, {"history", std::move(history)}};
}

std::expected<json, ApiError> DomainReads::user_coupons_json(std::uint64_t user_id) {
  auto exists = user_exists(user_id);
  if (!exists) return std::unexpected(exists.error());
  if (!*exists) return std::unexpected(not_found("USER_NOT_FOUND", "user", user_id));
  auto q = impl_->coupon.get();
  json out = json::array();
  if (!q) {
    // The coupon daemon never ran: nobody has a coupon yet.
    if (impl_->coupon.absent()) return out;
    return std::unexpected(q.error());
  }
  auto r = (*q)->user_coupons(user_id);
  if (!r) return std::unexpected(read_failed("coupon", r.error()));
  for (const auto& c : *r) {
    out.push_back({{"user_coupon_id", c.user_coupon_id},
                   {"coupon_id", c.coupon_id},
                   {"name", c.name},
                   {"status", coupon::user_coupon_status_name(c.status)}});
  }
  return out;
}

std::expected<json, ApiError> DomainReads::user_orders_json(std::uint64_t user_id,
                                                            std::uint64_t before_id,
                                                            std::size_t limit) {
  auto exists = user_exists(user_id);
  if (!exists) return std::unexpected(exists.error());
  if (!*exists) return std::unexpected(not_found("USER_NOT_FOUND", "user", user_id));
  json orders = json::array();
  auto q = impl_->order.get();
  if (!q) {
    // The order daemon never ran: nobody has an order yet.
    if (impl_->order.absent()) return json{{"orders", orders}, {"next_cursor", nullptr}};
    return std::unexpected(q.error());
  }
  // One more than asked: whether another page follows.
  auto r = (*q)->orders_of_user(user_id, before_id, limit + 1);
  if (!r) return std::unexpected(read_failed("order", r.error()));
  const bool more = r->size() > limit;
  if (more) r->pop_back();
  for (const auto& o : *r) {
    orders.push_back({{"order_id", o.order_id},
                      {"status", order::order_status_name(o.status)},
                      {"failure_reason", o.status == order::OrderStatus::failed
                                             ? json(runtime::code_name(o.failure_reason))
                                             : json(nullptr)},
                      {"total", o.total_cents},
                      {"discount", o.discount_cents},
                      {"points_used", o.points_used},
                      {"paid", o.paid_cents},
                      {"item_count", o.item_count},
                      {"line_count", o.line_count},
                      {"created_at_ms", o.created_at_ms}});
  }
  return json{{"orders", std::move(orders)},
              {"next_cursor", more && !r->empty() ? json(r->back().order_id) : json(nullptr)}};
}

std::expected<json, ApiError> DomainReads::product_json(std::uint64_t product_id) {
  auto q = impl_->product.get();
  if (!q) return std::unexpected(q.error());
  auto r = (*q)->find(product_id);
  if (!r) return std::unexpected(read_failed("product", r.error()));
  if (!*r) return std::unexpected(not_found("PRODUCT_NOT_FOUND", "product", product_id));
  const auto& p = **r;
  return json{{"id", p.id},
              {"name", p.name},
              {"category", p.category},
              {"price", p.price_cents},
              {"stock", p.stock},
              {"listed", !p.unlisted}};
}

std::expected<json, ApiError> DomainReads::categories_json() {
  auto q = impl_->product.get();
  if (!q) {
    // The product daemon never ran: no category yet.
    if (impl_->product.absent()) return json::array();
    return std::unexpected(q.error());
  }
  auto r = (*q)->categories();
  if (!r) return std::unexpected(read_failed("product", r.error()));
  json out = json::array();
  for (const auto& c : *r) out.push_back({{"category", c.category}, {"products", c.products}});
  return out;
}

std::expected<json, ApiError> DomainReads::products_json(const std::string& category,
                                                         std::uint64_t cursor, std::size_t limit) {
  auto q = impl_->product.get();
  if (!q) return std::unexpected(q.error());
  auto r = (*q)->list(category, cursor, limit);
  if (!r) return std::unexpected(read_failed("product", r.error()));
  json items = json::array();
  for (const auto& p : r->items) {
    items.push_back({{"id", p.id},
                     {"name", p.name},
                     {"category", p.category},
                     {"price", p.price_cents},
                     {"stock", p.stock}});
  }
  json next = r->next_cursor ? json(*r->next_cursor) : json(nullptr);
  return json{{"items", std::move(items)}, {"next_cursor", std::move(next)}};
}

std::expected<json, ApiError> DomainReads::coupon_json(std::uint64_t coupon_id) {
  auto q = impl_->coupon.get();
  if (!q) return std::unexpected(q.error());
  auto r = (*q)->coupon(coupon_id);
  if (!r) return std::unexpected(read_failed("coupon", r.error()));
  if (!*r) return std::unexpected(not_found("COUPON_NOT_FOUND", "coupon", coupon_id));
  const auto& c = **r;
  return json{{"id", c.id},
              {"name", c.name},
              {"discount_type", coupon::discount_type_name(c.discount_type)},
              {"discount_value", c.discount_value},
              {"total_quantity", c.total_quantity},
              {"issued", c.issued},
              {"remaining", std::max<std::int64_t>(c.total_quantity - c.issued, 0)},
              {"per_user_limit",
               c.per_user_limit == 0 ? json(nullptr) : json(c.per_user_limit)},  // 0: none
              {"min_order", c.min_order_cents},
              {"expires_at", c.expires_at_s}};
}

std::expected<json, ApiError> DomainReads::saga_json(std::uint64_t order_id) {
  auto q = impl_->supervisor.get();
  if (!q) return std::unexpected(q.error());
  auto v = (*q)->get(order_id);
  if (!v)
    return std::unexpected(
        ApiError{404, "SAGA_NOT_FOUND", "no saga for order " + std::to_string(order_id)});
  json history = json::array();
  for (const auto& e : v->history) {
    history.push_back({{"step", e.step}, {"event", e.event}, {"at_ms", e.at_ms}});
  }
  return json{{"saga_id", v->saga_id},
              {"order_id", v->order_id},
              {"state", v->state},
              {"step", v->step},
              {"failure_reason", v->failure_reason},
              {"trace_id", v->trace_id.empty() ? json(nullptr) : json(v->trace_id)},
              {"history", std::move(history)}};
}

std::expected<json, ApiError> DomainReads::payment_json(std::uint64_t order_id) {
  auto q = impl_->payment.get();
  if (!q) return std::unexpected(q.error());
  auto r = (*q)->payment(order_id);
  if (!r) return std::unexpected(read_failed("payment", r.error()));
  if (!*r) return std::unexpected(not_found("PAYMENT_NOT_FOUND", "payment of order", order_id));
  const auto& p = **r;
  return json{{"order_id", p.order_id},
              {"status", payment::payment_status_name(p.status)},
              {"amount", p.amount_cents},
              {"installments", p.installments}};
}

std::expected<json, ApiError> DomainReads::bestsellers_json(std::int64_t now_ms, int days,
                                                            std::size_t limit) {
  json out = json::array();
  auto q = impl_->ranking.get();
  if (!q) {
    // The ranking daemon never ran: nothing was sold yet.
    if (impl_->ranking.absent()) return out;
    return std::unexpected(q.error());
  }
  auto r = (*q)->bestsellers(now_ms, days, limit);
  if (!r) return std::unexpected(read_failed("ranking", r.error()));
  for (const auto& b : *r) out.push_back({{"product_id", b.product_id}, {"units", b.units}});
  return out;
}

}  // namespace ringmart::gateway
