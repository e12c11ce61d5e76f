#include "daemons/order/order_store.hpp"

#include <capnp/message.h>

#include <limits>
#include <span>

#include "daemons/order/order_records.capnp.h"
#include "schemas/codes.hpp"
#include "storage/capnp_value.hpp"
#include "storage/text.hpp"

namespace ringmart::order {
namespace {

// orders_by_user key: user id, then the order id's complement (newest first).
storage::Key user_order_key(std::uint64_t user_id, std::uint64_t order_id) {
  return storage::Key{}.u64(user_id).u64(~order_id);
}

namespace rec = records;

storage::Key id_key(std::uint64_t id) { return storage::Key{}.u64(id); }

constexpr std::uint8_t kFeedSeqCounter = 0;

rec::FeedEventKind to_record(FeedEventKind k) {
  switch (k) {
    case FeedEventKind::created:
      return rec::FeedEventKind::CREATED;
    case FeedEventKind::completed:
      return rec::FeedEventKind::COMPLETED;
    case FeedEventKind::failed:
      return rec::FeedEventKind::FAILED;
    case FeedEventKind::shipped:
      return rec::FeedEventKind::SHIPPED;
    case FeedEventKind::delivered:
      return rec::FeedEventKind::DELIVERED;
  }
  return rec::FeedEventKind::CREATED;
}

FeedEventKind from_record(rec::FeedEventKind k) {
  switch (k) {
    case rec::FeedEventKind::CREATED:
      return FeedEventKind::created;
    case rec::FeedEventKind::COMPLETED:
      return FeedEventKind::completed;
    case rec::FeedEventKind::FAILED:
      return FeedEventKind::failed;
    case rec::FeedEventKind::SHIPPED:
      return FeedEventKind::shipped;
    case rec::FeedEventKind::DELIVERED:
      return FeedEventKind::delivered;
  }
  return FeedEventKind::created;
}

rec::OrderStatus to_record(OrderStatus s) {
  switch (s) {
    case OrderStatus::pending:
      return rec::OrderStatus::PENDING;
    case OrderStatus::completed:
      return rec::OrderStatus::COMPLETED;
    case OrderStatus::failed:
      return rec::OrderStatus::FAILED;
    case OrderStatus::shipped:
      return rec::OrderStatus::SHIPPED;
    case OrderStatus::delivered:
      return rec::OrderStatus::DELIVERED;
  }
  return rec::OrderStatus::PENDING;
}

OrderStatus from_record(rec::OrderStatus s) {
  switch (s) {
    case rec::OrderStatus::PENDING:
      return OrderStatus::pending;
    case rec::OrderStatus::COMPLETED:
      return OrderStatus::completed;
    case rec::OrderStatus::FAILED:
      return OrderStatus::failed;
    case rec::OrderStatus::SHIPPED:
      return OrderStatus::shipped;
    case rec::OrderStatus::DELIVERED:
      return OrderStatus::delivered;
  }
  return OrderStatus::pending;
}

Order decode(rec::Order::Reader r) {
  Order o;
  o.order_id = r.getOrderId();
  o.user_id = r.getUserId();
  for (auto l : r.getLines()) {
    o.lines.push_back({.product_id = l.getProductId(),
                       .quantity = l.getQuantity(),
                       .unit_price_cents = l.getUnitPriceCents()});
  }
  o.user_coupon_id = r.getUserCouponId();
  o.points_requested = r.getPointsRequested();
  o.shipping_cents = r.getShippingCents();
  o.payment_token = r.getPaymentToken();
  o.installments = r.getInstallments();
  o.subtotal_cents = r.getSubtotalCents();
  o.discount_cents = r.getDiscountCents();
  o.points_used = r.getPointsUsed();
  o.paid_cents = r.getPaidCents();
  o.status = from_record(r.getStatus());
  o.failure_reason = static_cast<msg::Code>(r.getFailureReason());
  o.created_at_ms = r.getCreatedAtMs();
  o.completed_at_ms = r.getCompletedAtMs();
  for (auto h : r.getHistory()) {
    o.history.push_back({.status = from_record(h.getStatus()), .at_ms = h.getAtMs()});
  }
  o.coupon_applied = r.getCouponApplied();
  o.coupon_code = static_cast<msg::Code>(r.getCouponCode());
  o.tombstone = r.getTombstone();
  if (r.hasShippingAddress()) o.shipping_address = user::from_message(r.getShippingAddress());
  o.carrier = r.getCarrier();
  o.tracking_number = r.getTrackingNumber();
  o.shipped_at_ms = r.getShippedAtMs();
  o.delivered_at_ms = r.getDeliveredAtMs();
  return o;
}

/// Moves the order to `status` at `at_ms` and records it in the history.
void transition(Order& o, OrderStatus status, std::int64_t at_ms) {
  o.status = status;
  o.history.push_back({.status = status, .at_ms = at_ms});
}

}  // namespace

const char* order_status_name(OrderStatus status) {
  switch (status) {
    case OrderStatus::pending:
      return "PENDING";
    case OrderStatus::completed:
      return "COMPLETED";
    case OrderStatus::failed:
      return "FAILED";
    case OrderStatus::shipped:
      return "SHIPPED";
    case OrderStatus::delivered:
      return "DELIVERED";
  }
  return "UNKNOWN";
}

bool is_paid(OrderStatus status) {
  return status == OrderStatus::completed || status == OrderStatus::shipped ||
         status == OrderStatus::delivered;
}

const char* failure_reason_name(msg::Code code) { return msg::code_name(code); }

NewOrder new_order_from(msg::CreateOrder::Reader m) {
  NewOrder o;
  o.order_id = m.getOrderId();
  o.user_id = m.getUserId();
  for (auto l : m.getLines()) {
    o.lines.push_back({.product_id = l.getProductId(),
                       .quantity = l.getQuantity(),
                       .unit_price_cents = l.getUnitPriceCents()});
  }
  o.user_coupon_id = m.getUserCouponId();
  o.points = m.getPoints();
  o.shipping_cents = m.getShippingCents();
  o.payment_token = m.getPaymentToken();
  o.installments = m.getInstallments();
  if (m.hasShippingAddress()) o.shipping_address = user::from_message(m.getShippingAddress());
  return o;
}

Discount coupon_discount(std::int64_t total_cents, const CouponTerms& terms) {
  Discount d;
  if (terms.discount_value < 0 ||
      (terms.discount_type == msg::DiscountType::PERCENT && terms.discount_value > 100)) {
    d.code = msg::Code::COUPON_INVALID;
    d.detail = "coupon terms out of range";
    return d;
  }
  if (total_cents < terms.min_order_cents) {
    d.code = msg::Code::COUPON_INVALID;
    d.detail = "order total " + std::to_string(total_cents) + " below the coupon minimum " +
               std::to_string(terms.min_order_cents);
    return d;
  }
  if (terms.discount_type == msg::DiscountType::FIXED) {
    d.discount_cents = std::min(terms.discount_value, total_cents);
  } else {
    // 128-bit product: total x 100 must not overflow for large totals.
    d.discount_cents =
        static_cast<std::int64_t>(static_cast<__int128>(total_cents) * terms.discount_value / 100);
  }
  return d;
}

std::expected<OrderStore, std::error_code> OrderStore::open(storage::Txn& txn) {
  auto t = storage::Table::open(txn, "orders");
  if (!t) return std::unexpected(t.error());
  auto by_user = storage::Table::open_added(txn, "orders_by_user");
  if (!by_user) return std::unexpected(by_user.error());
  OrderStore s;
  s.orders_ = *t;
  s.by_user_ = *by_user;
  // Added with the change feed: absent tables read as empty in an older env.
  for (auto [table, name] :
       {std::pair{&s.feed_, "order_feed"}, std::pair{&s.counters_, "order_counters"}}) {
    auto added = storage::Table::open_added(txn, name);
    if (!added) return std::unexpected(added.error());
    *table = *added;
  }
  // An environment from before the index: index every order once.
  if (txn.writable() && s.by_user_.count(txn) == 0 && s.orders_.count(txn) > 0) {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> rows;
    s.scan(txn, [&](const Order& o) {
      if (!o.tombstone && o.user_id != 0) rows.emplace_back(o.user_id, o.order_id);
      return true;
    });
    for (auto [user, id] : rows) {
      if (auto ec = s.by_user_.put(txn, user_order_key(user, id).view(), {})) {
        return std::unexpected(ec);
      }
    }
  }
  return s;
}

std::error_code OrderStore::put(storage::Txn& txn, const Order& o) const {
  capnp::MallocMessageBuilder b(256);
  auto r = b.initRoot<rec::Order>();
  r.setOrderId(o.order_id);
  r.setUserId(o.user_id);
  auto lines = r.initLines(static_cast<unsigned>(o.lines.size()));
  for (unsigned i = 0; i < o.lines.size(); ++i) {
    lines[i].setProductId(o.lines[i].product_id);
    lines[i].setQuantity(o.lines[i].quantity);
    lines[i].setUnitPriceCents(o.lines[i].unit_price_cents);
  }
  r.setUserCouponId(o.user_coupon_id);
  r.setPointsRequested(o.points_requested);
  r.setShippingCents(o.shipping_cents);
  r.setPaymentToken(o.payment_token);
  r.setInstallments(o.installments);
  r.setSubtotalCents(o.subtotal_cents);
  r.setDiscountCents(o.discount_cents);
  r.setPointsUsed(o.points_used);
  r.setPaidCents(o.paid_cents);
  r.setStatus(to_record(o.status));
  r.setFailureReason(static_cast<std::uint16_t>(o.failure_reason));
  r.setCreatedAtMs(o.created_at_ms);
  r.setCompletedAtMs(o.completed_at_ms);
  auto history = r.initHistory(static_cast<unsigned>(o.history.size()));
  for (unsigned i = 0; i < o.history.size(); ++i) {
    history[i].setStatus(to_record(o.history[i].status));
    history[i].setAtMs(o.history[i].at_ms);
  }
  r.setCouponApplied(o.coupon_applied);
  r.setCouponCode(static_cast<std::uint16_t>(o.coupon_code));
  r.setTombstone(o.tombstone);
  if (o.shipping_address) user::to_message(*o.shipping_address, r.initShippingAddress());
  if (!o.carrier.empty()) r.setCarrier(o.carrier);
  if (!o.tracking_number.empty()) r.setTrackingNumber(o.tracking_number);
  r.setShippedAtMs(o.shipped_at_ms);
  r.setDeliveredAtMs(o.delivered_at_ms);
  return storage::put_message(orders_, txn, id_key(o.order_id).view(), b);
}

std::expected<CreateOrderResult, std::error_code> OrderStore::create_order(
    storage::Txn& txn, const NewOrder& n, std::int64_t now_ms) const {
  CreateOrderResult r;
  auto reject = [&](std::string detail) {
    r.code = msg::Code::INVALID_ARGUMENT;
    r.detail = std::move(detail);
    return r;
  };
  if (n.order_id == 0) return reject("order id must be > 0");
  if (n.lines.empty()) return reject("an order needs at least one line");
  if (n.shipping_cents < 0) return reject("shipping must be >= 0");
  if (n.points < 0) return reject("points must be >= 0");
  std::int64_t subtotal = 0;
  for (const auto& l : n.lines) {
    if (l.quantity <= 0) return reject("quantity must be > 0");
    if (l.unit_price_cents < 0) return reject("unit price must be >= 0");
    std::int64_t amount = 0;
    if (__builtin_mul_overflow(l.quantity, l.unit_price_cents, &amount) ||
        __builtin_add_overflow(subtotal, amount, &subtotal)) {
      return reject("subtotal overflows");
    }
  }
  std::int64_t total = 0;
  if (__builtin_add_overflow(subtotal, n.shipping_cents, &total)) return reject("total overflows");

  auto existing = order(txn, n.order_id);
  if (existing && !existing->tombstone) {
    r.subtotal_cents = existing->subtotal_cents;
    return r;  // duplicate: nothing
  }
  Order o = existing.value_or(Order{});
  o.order_id = n.order_id;
  o.user_id = n.user_id;
  o.lines = n.lines;
  o.user_coupon_id = n.user_coupon_id;
  o.points_requested = n.points;
  o.shipping_cents = n.shipping_cents;
  o.payment_token = n.payment_token;
  o.installments = n.installments;
  o.shipping_address = n.shipping_address;
  o.subtotal_cents = subtotal;
  o.created_at_ms = now_ms;
  if (existing) {
    // The saga already failed this order id: keep it FAILED, start nothing.
    o.tombstone = false;
  } else {
    transition(o, OrderStatus::pending, now_ms);
    r.first_time = true;
  }
  if (auto ec = put(txn, o)) return std::unexpected(ec);
  if (r.first_time) {
    if (auto ec = append_event(txn, o, FeedEventKind::created, now_ms)) return std::unexpected(ec);
  }
  if (auto ec = by_user_.put(txn, user_order_key(o.user_id, o.order_id).view(), {})) {
    return std::unexpected(ec);
  }
  r.subtotal_cents = subtotal;
  return r;
}

std::expected<ApplyCouponResult, std::error_code> OrderStore::apply_coupon(
    storage::Txn& txn, std::uint64_t order_id, const CouponTerms& terms) const {
  ApplyCouponResult r;
  auto o = order(txn, order_id);
  if (!o || o->tombstone) {
    r.code = msg::Code::ORDER_NOT_FOUND;
    r.detail = "no such order";
    return r;
  }
  if (o->coupon_applied) {
    r.code = o->coupon_code;
    r.discount_cents = o->discount_cents;
    return r;
  }
  auto d = coupon_discount(o->total_cents(), terms);
  r.code = d.code;
  r.discount_cents = d.discount_cents;
  r.detail = std::move(d.detail);
  if (o->status != OrderStatus::pending) return r;  // the saga moved on: no effect

  o->coupon_applied = true;
  o->coupon_code = r.code;
  o->discount_cents = r.discount_cents;
  if (auto ec = put(txn, *o)) return std::unexpected(ec);
  r.first_time = true;
  return r;
}

std::expected<CompleteOrderResult, std::error_code> OrderStore::complete_order(
    storage::Txn& txn, std::uint64_t order_id, const Settlement& s, std::int64_t now_ms) const {
  CompleteOrderResult r;
  auto o = order(txn, order_id);
  if (!o) {
    r.code = msg::Code::ORDER_NOT_FOUND;
    r.detail = "no such order";
    return r;
  }
  if (o->status == OrderStatus::failed) {
    r.code = msg::Code::INTERNAL;
    r.detail = "order already FAILED";
    return r;
  }
  if (o->status == OrderStatus::pending) {
    o->discount_cents = s.discount_cents;
    o->points_used = s.points_used;
    o->paid_cents = s.paid_cents;
    o->completed_at_ms = now_ms;
    transition(*o, OrderStatus::completed, now_ms);
    if (auto ec = put(txn, *o)) return std::unexpected(ec);
    if (auto ec = append_event(txn, *o, FeedEventKind::completed, now_ms)) {
      return std::unexpected(ec);
    }
    r.first_time = true;
  }
  r.lines = std::move(o->lines);
  r.completed_at_ms = o->completed_at_ms;
  return r;
}

std::expected<FailOrderResult, std::error_code> OrderStore::fail_order(storage::Txn& txn,
                                                                       std::uint64_t order_id,
                                                                       msg::Code reason,
                                                                       std::int64_t now_ms) const {
  FailOrderResult r;
  auto o = order(txn, order_id);
  if (o && is_paid(o->status)) {
    r.code = msg::Code::INTERNAL;
    r.detail = std::string("order already ") + order_status_name(o->status);
    return r;
  }
  if (o && o->status == OrderStatus::failed) return r;  // repeat: same answer, no effect

  if (!o) {
    o.emplace();
    o->order_id = order_id;
    o->tombstone = true;
    o->created_at_ms = now_ms;
  }
  o->failure_reason = reason;
  o->paid_cents = 0;
  transition(*o, OrderStatus::failed, now_ms);
  if (auto ec = put(txn, *o)) return std::unexpected(ec);
  if (auto ec = append_event(txn, *o, FeedEventKind::failed, now_ms)) return std::unexpected(ec);
  r.first_time = true;
  return r;
}

std::expected<FulfilmentResult, std::error_code> OrderStore::ship(storage::Txn& txn,
                                                                  std::uint64_t order_id,
                                                                  std::string_view carrier,
                                                                  std::string_view tracking_number,
                                                                  std::int64_t now_ms) const {
  FulfilmentResult r;
  const auto carrier_chars = storage::utf8_length(carrier);
  const auto tracking_chars = storage::utf8_length(tracking_number);
  if (carrier_chars < 1 || carrier_chars > kMaxCarrierChars || tracking_chars < 1 ||
      tracking_chars > kMaxTrackingChars) {
    r.code = msg::Code::INVALID_ARGUMENT;
    r.detail = "carrier and tracking_number must be 1..100 characters";
    return r;
  }
  auto o = order(txn, order_id);
  if (!o || o->tombstone) {
    r.code = msg::Code::ORDER_NOT_FOUND;
    r.detail = "order " + std::to_string(order_id) + " not found";
    return r;
  }
  if (o->status == OrderStatus::shipped && o->carrier == carrier &&
      o->tracking_number == tracking_number) {
    return r;  // a repeat: same answer, no effect
  }
  if (o->status != OrderStatus::completed) {
    r.code = msg::Code::ORDER_STATE_CONFLICT;
    r.detail =
        std::string("order ") + std::to_string(order_id) + " is " + order_status_name(o->status) +
        (o->status == OrderStatus::shipped ? " with another carrier or tracking number"
                                           : "; only a COMPLETED (paid) order can be shipped");
    return r;
  }
  o->carrier = carrier;
  o->tracking_number = tracking_number;
  o->shipped_at_ms = now_ms;
  transition(*o, OrderStatus::shipped, now_ms);
  if (auto ec = put(txn, *o)) return std::unexpected(ec);
  if (auto ec = append_event(txn, *o, FeedEventKind::shipped, now_ms)) return std::unexpected(ec);
  r.first_time = true;
  return r;
}

std::expected<FulfilmentResult, std::error_code> OrderStore::mark_delivered(
    storage::Txn& txn, std::uint64_t order_id, std::int64_t now_ms) const {
  FulfilmentResult r;
  auto o = order(txn, order_id);
  if (!o || o->tombstone) {
    r.code = msg::Code::ORDER_NOT_FOUND;
    r.detail = "order " + std::to_string(order_id) + " not found";
    return r;
  }
  if (o->status == OrderStatus::delivered) return r;  // a repeat
  if (o->status != OrderStatus::shipped) {
    r.code = msg::Code::ORDER_STATE_CONFLICT;
    r.detail = std::string("order ") + std::to_string(order_id) + " is " +
               order_status_name(o->status) + "; only a SHIPPED order can be delivered";
    return r;
  }
  o->delivered_at_ms = now_ms;
  transition(*o, OrderStatus::delivered, now_ms);
  if (auto ec = put(txn, *o)) return std::unexpected(ec);
  if (auto ec = append_event(txn, *o, FeedEventKind::delivered, now_ms)) {
    return std::unexpected(ec);
  }
  r.first_time = true;
  return r;
}

std::optional<Order> OrderStore::order(storage::Txn& txn, std::uint64_t order_id) const {
  auto m = storage::get_message(orders_, txn, id_key(order_id).view());
  if (!m) return std::nullopt;
  return decode(m->root<rec::Order>());
}

void OrderStore::scan(storage::Txn& txn, const std::function<bool(const Order&)>& fn) const {
  orders_.scan(txn, {}, [&](std::span<const std::byte>, std::span<const std::byte> value) {
    storage::StoredMessage m(value);
    return fn(decode(m.root<rec::Order>()));
  });
}

std::vector<OrderSummary> OrderStore::orders_of_user(storage::Txn& txn, std::uint64_t user_id,
                                                     std::uint64_t before_id,
                                                     std::size_t limit) const {
  std::vector<std::uint64_t> ids;
  if (limit == 0 || before_id == 1) return {};
  // ~id ascending is id descending: start at the newest id below before_id.
  const auto from =
      before_id == 0 ? storage::Key{}.u64(user_id) : user_order_key(user_id, before_id - 1);
  by_user_.scan(txn, from.view(), [&](std::span<const std::byte> key, auto) {
    if (key.size() != 16 || storage::read_u64_be(key) != user_id) return false;
    ids.push_back(~storage::read_u64_be(key, 8));
    return ids.size() < limit;
  });
  std::vector<OrderSummary> out;
  out.reserve(ids.size());
  for (auto id : ids) {
    auto o = order(txn, id);
    if (!o) continue;
    OrderSummary s{.order_id = o->order_id,
                   .status = o->status,
                   .failure_reason = o->failure_reason,
                   .total_cents = o->total_cents(),
                   .discount_cents = o->discount_cents,
                   .points_used = o->points_used,
                   .paid_cents = o->paid_cents,
                   .item_count = 0,
                   .line_count = o->lines.size(),
                   .created_at_ms = o->created_at_ms};
    for (const auto& l : o->lines) s.item_count += l.quantity;
    out.push_back(s);
  }
  return out;
}

// ------------------------------------------------------------------ queries

std::expected<OrderQueries, std::error_code> OrderQueries::open(const std::string& env_path,
                                                                std::size_t map_size_bytes) {
  auto ro = storage::open_read_only<OrderStore>(env_path, map_size_bytes);
  if (!ro) return std::unexpected(ro.error());
  return OrderQueries(std::move(ro->env), ro->store);
}

const char* feed_event_name(FeedEventKind kind) {
  switch (kind) {
    case FeedEventKind::created:
      return "created";
    case FeedEventKind::completed:
      return "completed";
    case FeedEventKind::failed:
      return "failed";
    case FeedEventKind::shipped:
      return "shipped";
    case FeedEventKind::delivered:
      return "delivered";
  }
  return "unknown";
}

std::error_code OrderStore::append_event(storage::Txn& txn, const Order& o, FeedEventKind kind,
                                         std::int64_t now_ms) const {
  const auto counter_key = storage::Key{}.u8(kFeedSeqCounter);
  const std::uint64_t seq =
      counters_.get_pod<std::uint64_t>(txn, counter_key.view()).value_or(0) + 1;
  if (auto ec = counters_.put_pod(txn, counter_key.view(), seq)) return ec;
  std::int64_t items = 0;
  for (const auto& l : o.lines) items += l.quantity;
  capnp::MallocMessageBuilder b(128);
  auto e = b.initRoot<rec::FeedEvent>();
  e.setSeq(seq);
  e.setKind(to_record(kind));
  e.setOrderId(o.order_id);
  e.setUserId(o.user_id);
  e.setStatus(to_record(o.status));
  e.setAtMs(now_ms);
  e.setTotalCents(o.total_cents());
  e.setPaidCents(is_paid(o.status) ? o.paid_cents : 0);
  e.setFailureReason(static_cast<std::uint16_t>(o.failure_reason));
  e.setItemCount(items);
  if (kind == FeedEventKind::shipped) {
    e.setCarrier(o.carrier);
    e.setTrackingNumber(o.tracking_number);
  }
  return storage::put_message(feed_, txn, id_key(seq).view(), b);
}

std::vector<FeedEvent> OrderStore::feed(storage::Txn& txn, std::uint64_t after_seq,
                                        std::size_t limit) const {
  std::vector<FeedEvent> out;
  if (limit == 0 || after_seq == std::numeric_limits<std::uint64_t>::max()) return out;
  feed_.scan(
      txn, id_key(after_seq + 1).view(),
      [&](std::span<const std::byte>, std::span<const std::byte> value) {
        storage::StoredMessage m(value);
        const auto e = m.root<rec::FeedEvent>();
        out.push_back(FeedEvent{.seq = e.getSeq(),
                                .kind = from_record(e.getKind()),
                                .order_id = e.getOrderId(),
                                .user_id = e.getUserId(),
                                .status = from_record(e.getStatus()),
                                .at_ms = e.getAtMs(),
                                .total_cents = e.getTotalCents(),
                                .paid_cents = e.getPaidCents(),
                                .failure_reason = static_cast<msg::Code>(e.getFailureReason()),
                                .item_count = e.getItemCount(),
                                .carrier = e.getCarrier(),
                                .tracking_number = e.getTrackingNumber()});
        return out.size() < limit;
      });
  return out;
}

FeedBounds OrderStore::feed_bounds(storage::Txn& txn) const {
  FeedBounds b;
  b.last =
      counters_.get_pod<std::uint64_t>(txn, storage::Key{}.u8(kFeedSeqCounter).view()).value_or(0);
  feed_.scan(txn, {}, [&](std::span<const std::byte> key, std::span<const std::byte>) {
    b.first = storage::read_u64_be(key);
    return false;
  });
  return b;
}

std::expected<storage::PruneResult, std::error_code> OrderStore::prune_feed(
    storage::Txn& txn, std::int64_t cutoff_ms, std::size_t limit) const {
  storage::PruneResult result;
  std::vector<std::uint64_t> due;
  feed_.scan(txn, {}, [&](std::span<const std::byte> key, std::span<const std::byte> value) {
    if (due.size() >= limit) return false;
    storage::StoredMessage m(value);
    const auto at = m.root<rec::FeedEvent>().getAtMs();
    if (at >= cutoff_ms) {
      result.oldest_kept_ms = at;
      return false;
    }
    due.push_back(storage::read_u64_be(key));
    return true;
  });
  for (auto seq : due) {
    if (auto r = feed_.erase(txn, id_key(seq).view()); !r) return std::unexpected(r.error());
    ++result.deleted;
  }
  return result;
}

std::expected<std::pair<std::vector<FeedEvent>, FeedBounds>, std::error_code> OrderQueries::feed(
    std::uint64_t after_seq, std::size_t limit) const {
  auto txn = storage::Txn::begin_read(*env_);
  if (!txn) return std::unexpected(txn.error());
  return std::pair{store_.feed(*txn, after_seq, limit), store_.feed_bounds(*txn)};
}

std::expected<std::optional<Order>, std::error_code> OrderQueries::order(
    std::uint64_t order_id) const {
  auto txn = storage::Txn::begin_read(*env_);
  if (!txn) return std::unexpected(txn.error());
  return store_.order(*txn, order_id);
}

std::expected<std::vector<OrderSummary>, std::error_code> OrderQueries::orders_of_user(
    std::uint64_t user_id, std::uint64_t before_id, std::size_t limit) const {
  auto txn = storage::Txn::begin_read(*env_);
  if (!txn) return std::unexpected(txn.error());
  return store_.orders_of_user(*txn, user_id, before_id, limit);
}

}  // namespace ringmart::order
