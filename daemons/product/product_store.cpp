#include "daemons/product/product_store.hpp"

#include <capnp/message.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>

#include "daemons/product/product_records.capnp.h"
#include "storage/capnp_value.hpp"
#include "storage/text.hpp"

namespace ringmart::product {
namespace {

using storage::Key;
using storage::Txn;

constexpr std::uint8_t kProductIdCounter = 0;

Key product_key(std::uint64_t id) { return Key{}.u64(id); }

// products_by_category key: the category's bytes, a 0x00 separator (categories
// contain no NUL, so "ab" never prefixes "abc"'s rows), then the id big-endian.
std::string category_key(std::string_view category, std::uint64_t id) {
  std::string k(category);
  k.push_back('\0');
  const Key idk = Key{}.u64(id);
  k.append(reinterpret_cast<const char*>(idk.bytes), idk.size);
  return k;
}
std::span<const std::byte> bytes(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

using storage::set_text;
using storage::to_string;

using storage::utf8_length;

records::ReservationState to_record(ReservationState s) {
  switch (s) {
    case ReservationState::deducted:
      return records::ReservationState::DEDUCTED;
    case ReservationState::restored:
      return records::ReservationState::RESTORED;
    case ReservationState::rejected:
      return records::ReservationState::REJECTED;
  }
  return records::ReservationState::REJECTED;
}
ReservationState from_record(records::ReservationState s) {
  switch (s) {
    case records::ReservationState::DEDUCTED:
      return ReservationState::deducted;
    case records::ReservationState::RESTORED:
      return ReservationState::restored;
    case records::ReservationState::REJECTED:
      return ReservationState::rejected;
  }
  return ReservationState::rejected;
}

Outcome fail(msg::Code code, std::string detail) {
  return Outcome{.code = code, .detail = std::move(detail)};
}
Outcome success(std::uint64_t id, std::int64_t value, std::string detail = {}) {
  return Outcome{.code = msg::Code::OK, .id = id, .value = value, .detail = std::move(detail)};
}

std::string product_name(std::uint64_t id) { return "product " + std::to_string(id); }

[[noreturn]] void corrupt(const char* what, std::uint64_t order_id, std::uint64_t product_id) {
  std::fprintf(stderr, "ringmart product: order %llu: %s (product %llu)\n",
               static_cast<unsigned long long>(order_id), what,
               static_cast<unsigned long long>(product_id));
  std::abort();
}

}  // namespace

std::expected<ProductStore, std::error_code> ProductStore::open(Txn& txn) {
  ProductStore s;
  for (auto [table, name] : {std::pair{&s.products_, "products"},
                             {&s.by_category_, "products_by_category"},
                             {&s.reservations_, "reservations"},
                             {&s.counters_, "product_counters"}}) {
    auto t = storage::Table::open(txn, name);
    if (!t) return std::unexpected(t.error());
    *table = *t;
  }
  return s;
}

std::expected<Outcome, std::error_code> ProductStore::create_product(
    Txn& txn, std::string_view name, std::string_view category, std::int64_t price_cents,
    std::int64_t stock, std::int64_t now_ms) const {
  const std::size_t name_chars = utf8_length(name);
  if (name_chars < 1 || name_chars > kMaxNameChars) {
    return fail(msg::Code::INVALID_ARGUMENT,
                "name must be 1.." + std::to_string(kMaxNameChars) + " characters");
  }
  const std::size_t category_chars = utf8_length(category);
  if (category_chars < 1 || category_chars > kMaxCategoryChars ||
      category.find('\0') != std::string_view::npos) {
    return fail(msg::Code::INVALID_ARGUMENT,
                "category must be 1.." + std::to_string(kMaxCategoryChars) + " characters");
  }
  if (price_cents < 0) return fail(msg::Code::INVALID_ARGUMENT, "price must be >= 0");
  if (stock < 0) return fail(msg::Code::INVALID_ARGUMENT, "stock must be >= 0");

  const auto counter_key = Key{}.u8(kProductIdCounter);
  const std::uint64_t id =
      counters_.get_pod<std::uint64_t>(txn, counter_key.view()).value_or(0) + 1;
  if (auto ec = counters_.put_pod(txn, counter_key.view(), id)) return std::unexpected(ec);
  const ProductView p{.id = id,
                      .name = std::string(name),
                      .category = std::string(category),
                      .price_cents = price_cents,
                      .stock = stock,
                      .created_at_ms = now_ms,
                      .received_units = stock};
  if (auto ec = put_product(txn, p)) return std::unexpected(ec);
  if (auto ec = by_category_.put(txn, bytes(category_key(category, id)), {})) {
    return std::unexpected(ec);
  }
  return success(id, 0);
}

std::expected<Outcome, std::error_code> ProductStore::update_product(
    Txn& txn, std::uint64_t product_id, const ProductChanges& changes) const {
  if (!changes.name && !changes.category && !changes.price_cents) {
    return fail(msg::Code::INVALID_ARGUMENT, "nothing to change: name, category or price");
  }
  if (changes.name) {
    const std::size_t chars = utf8_length(*changes.name);
    if (chars < 1 || chars > kMaxNameChars) {
      return fail(msg::Code::INVALID_ARGUMENT,
                  "name must be 1.." + std::to_string(kMaxNameChars) + " characters");
    }
  }
  if (changes.category) {
    const std::size_t chars = utf8_length(*changes.category);
    if (chars < 1 || chars > kMaxCategoryChars ||
        changes.category->find('\0') != std::string::npos) {
      return fail(msg::Code::INVALID_ARGUMENT,
                  "category must be 1.." + std::to_string(kMaxCategoryChars) + " characters");
    }
  }
  if (changes.price_cents && *changes.price_cents < 0) {
    return fail(msg::Code::INVALID_ARGUMENT, "price must be >= 0");
  }
  auto p = find(txn, product_id);
  if (!p) return fail(msg::Code::PRODUCT_NOT_FOUND, product_name(product_id) + " not found");
  if (changes.category && *changes.category != p->category && !p->unlisted) {
    if (auto r = by_category_.erase(txn, bytes(category_key(p->category, p->id))); !r) {
      return std::unexpected(r.error());
    }
    if (auto ec = by_category_.put(txn, bytes(category_key(*changes.category, p->id)), {})) {
      return std::unexpected(ec);
    }
  }
  if (changes.name) p->name = *changes.name;
  if (changes.category) p->category = *changes.category;
  if (changes.price_cents) p->price_cents = *changes.price_cents;
  if (auto ec = put_product(txn, *p)) return std::unexpected(ec);
  return success(product_id, p->price_cents);
}

std::expected<Outcome, std::error_code> ProductStore::unlist_product(
    Txn& txn, std::uint64_t product_id) const {
  auto p = find(txn, product_id);
  if (!p) return fail(msg::Code::PRODUCT_NOT_FOUND, product_name(product_id) + " not found");
  if (p->unlisted) return success(product_id, 0);
  p->unlisted = true;
  if (auto r = by_category_.erase(txn, bytes(category_key(p->category, p->id))); !r) {
    return std::unexpected(r.error());
  }
  if (auto ec = put_product(txn, *p)) return std::unexpected(ec);
  return success(product_id, 0);
}

std::expected<Outcome, std::error_code> ProductStore::adjust_stock(Txn& txn,
                                                                   std::uint64_t product_id,
                                                                   std::int64_t delta) const {
  auto p = find(txn, product_id);
  if (!p) return fail(msg::Code::PRODUCT_NOT_FOUND, product_name(product_id) + " not found");
  // received_units >= stock while orders hold units, so it overflows first.
  if (delta > 0 &&
      std::max(p->stock, p->received_units) > std::numeric_limits<std::int64_t>::max() - delta) {
    return fail(msg::Code::INVALID_ARGUMENT, "stock would overflow");
  }
  // stock >= 0, so stock + delta cannot overflow downwards.
  if (p->stock + delta < 0) {
    return fail(msg::Code::STOCK_NEGATIVE, product_name(product_id) + " has " +
                                               std::to_string(p->stock) + " in stock, delta " +
                                               std::to_string(delta));
  }
  p->stock += delta;
  p->received_units += delta;
  if (auto ec = put_product(txn, *p)) return std::unexpected(ec);
  return success(product_id, p->stock);
}

std::expected<Outcome, std::error_code> ProductStore::deduct_inventory(
    Txn& txn, std::uint64_t order_id, std::span<const LineQuantity> lines,
    std::int64_t now_ms) const {
  if (auto previous = reservation(txn, order_id)) {
    if (previous->state == ReservationState::restored) {
      return success(0, 0, "order " + std::to_string(order_id) + " already restored; no effect");
    }
    return Outcome{.code = previous->code, .detail = previous->detail};
  }

  // Sum lines per product, keeping the order of first appearance.
  std::vector<LineQuantity> wanted;
  Outcome out = success(0, 0);
  if (lines.empty()) out = fail(msg::Code::INVALID_ARGUMENT, "order has no lines");
  for (const auto& line : lines) {
    if (out.code != msg::Code::OK) break;
    if (line.quantity <= 0) {
      out = fail(msg::Code::INVALID_ARGUMENT,
                 product_name(line.product_id) + ": quantity must be > 0");
      break;
    }
    auto it = std::ranges::find(wanted, line.product_id, &LineQuantity::product_id);
    if (it == wanted.end()) {
      wanted.push_back(line);
    } else if (it->quantity > std::numeric_limits<std::int64_t>::max() - line.quantity) {
      out =
          fail(msg::Code::INVALID_ARGUMENT, product_name(line.product_id) + ": quantity overflows");
    } else {
      it->quantity += line.quantity;
    }
  }
  // Check every line before touching any stock: all lines or none.
  std::vector<ProductView> products;
  for (const auto& w : wanted) {
    if (out.code != msg::Code::OK) break;
    auto p = find(txn, w.product_id);
    if (!p) {
      out = fail(msg::Code::PRODUCT_NOT_FOUND, product_name(w.product_id) + " not found");
    } else if (p->stock < w.quantity) {
      out = fail(msg::Code::OUT_OF_STOCK, product_name(w.product_id) + " (" + p->name +
                                              "): requested " + std::to_string(w.quantity) +
                                              ", in stock " + std::to_string(p->stock));
    } else {
      products.push_back(std::move(*p));
    }
  }

  ReservationView record{.at_ms = now_ms};
  if (out.code != msg::Code::OK) {
    // Recorded so that a retry answers the same even if stock changed since.
    record.state = ReservationState::rejected;
    record.code = out.code;
    record.detail = out.detail;
    if (auto ec = put_reservation(txn, order_id, record)) return std::unexpected(ec);
    return out;
  }
  for (std::size_t i = 0; i < wanted.size(); ++i) {
    products[i].stock -= wanted[i].quantity;
    if (auto ec = put_product(txn, products[i])) return std::unexpected(ec);
  }
  record.state = ReservationState::deducted;
  record.code = msg::Code::OK;
  record.lines = std::move(wanted);
  if (auto ec = put_reservation(txn, order_id, record)) return std::unexpected(ec);
  return out;
}

std::expected<Outcome, std::error_code> ProductStore::restore_inventory(Txn& txn,
                                                                        std::uint64_t order_id,
                                                                        std::int64_t now_ms) const {
  auto record = reservation(txn, order_id);
  if (!record) {
    const ReservationView tombstone{
        .state = ReservationState::restored, .code = msg::Code::OK, .at_ms = now_ms};
    if (auto ec = put_reservation(txn, order_id, tombstone)) return std::unexpected(ec);
    return success(0, 0, "nothing deducted; tombstone written");
  }
  if (record->state != ReservationState::deducted) return success(0, 0, "nothing to restore");
  for (const auto& line : record->lines) {
    auto p = find(txn, line.product_id);
    // Products are never deleted: a reservation without its product is a corrupt environment.
    if (!p) corrupt("reserved product missing", order_id, line.product_id);
    if (p->stock > std::numeric_limits<std::int64_t>::max() - line.quantity) {
      corrupt("stock overflow on restore", order_id, line.product_id);
    }
    p->stock += line.quantity;
    if (auto ec = put_product(txn, *p)) return std::unexpected(ec);
  }
  record->state = ReservationState::restored;
  record->at_ms = now_ms;
  if (auto ec = put_reservation(txn, order_id, *record)) return std::unexpected(ec);
  return success(0, static_cast<std::int64_t>(record->lines.size()));
}

std::optional<ProductView> ProductStore::find(Txn& txn, std::uint64_t product_id) const {
  auto m = storage::get_message(products_, txn, product_key(product_id).view());
  if (!m) return std::nullopt;
  auto p = m->root<records::Product>();
  return ProductView{.id = p.getId(),
                     .name = to_string(p.getName()),
                     .category = to_string(p.getCategory()),
                     .price_cents = p.getPriceCents(),
                     .stock = p.getStock(),
                     .created_at_ms = p.getCreatedAtMs(),
                     .received_units = p.getReceivedUnits(),
                     .unlisted = p.getUnlisted()};
}

bool ProductStore::exists(Txn& txn, std::uint64_t product_id) const {
  return products_.get(txn, product_key(product_id).view()).has_value();
}

std::optional<std::int64_t> ProductStore::unit_price_cents(Txn& txn,
                                                           std::uint64_t product_id) const {
  auto m = storage::get_message(products_, txn, product_key(product_id).view());
  if (!m) return std::nullopt;
  return m->root<records::Product>().getPriceCents();
}

std::vector<std::optional<ProductOffer>> ProductStore::offers(
    Txn& txn, std::span<const std::uint64_t> product_ids) const {
  std::vector<std::optional<ProductOffer>> out;
  out.reserve(product_ids.size());
  for (auto id : product_ids) {
    auto m = storage::get_message(products_, txn, product_key(id).view());
    if (!m) {
      out.emplace_back();
      continue;
    }
    auto p = m->root<records::Product>();
    out.push_back(ProductOffer{p.getPriceCents(), !p.getUnlisted()});
  }
  return out;
}

std::vector<CategoryCount> ProductStore::categories(Txn& txn) const {
  std::vector<CategoryCount> out;
  by_category_.scan(txn, {}, [&](std::span<const std::byte> key, std::span<const std::byte>) {
    // category bytes, NUL, u64 id
    if (key.size() < 9) corrupt("short category index key", 0, 0);
    const std::string_view category(reinterpret_cast<const char*>(key.data()), key.size() - 9);
    if (out.empty() || out.back().category != category) out.push_back({std::string(category), 0});
    ++out.back().products;
    return true;
  });
  return out;
}

ProductPage ProductStore::list(Txn& txn, std::string_view category, std::uint64_t cursor,
                               std::size_t limit) const {
  limit = std::clamp<std::size_t>(limit, 1, kMaxPageLimit);
  ProductPage page;
  if (cursor == std::numeric_limits<std::uint64_t>::max()) return page;
  std::vector<std::uint64_t> ids;
  // One id beyond the page tells whether another page follows.
  auto collect = [&](std::uint64_t id) {
    ids.push_back(id);
    return ids.size() <= limit;
  };
  if (category.empty()) {
    products_.scan(txn, product_key(cursor + 1).view(),
                   [&](std::span<const std::byte> key, std::span<const std::byte> value) {
                     storage::StoredMessage m(value);
                     if (m.root<records::Product>().getUnlisted()) return true;  // not listed
                     return collect(storage::read_u64_be(key));
                   });
  } else {
    if (category.find('\0') != std::string_view::npos) return page;
    const std::string from = category_key(category, cursor + 1);
    const std::size_t prefix = category.size() + 1;
    by_category_.scan(
        txn, bytes(from), [&](std::span<const std::byte> key, std::span<const std::byte>) {
          if (key.size() != prefix + 8 || std::memcmp(key.data(), from.data(), prefix) != 0) {
            return false;
          }
          return collect(storage::read_u64_be(key, prefix));
        });
  }
  if (ids.size() > limit) {
    ids.pop_back();
    page.next_cursor = ids.back();
  }
  for (auto id : ids) {
    auto p = find(txn, id);
    if (!p) corrupt("index row without product", 0, id);
    page.items.push_back(std::move(*p));
  }
  return page;
}

std::optional<ReservationView> ProductStore::reservation(Txn& txn, std::uint64_t order_id) const {
  auto m = storage::get_message(reservations_, txn, Key{}.u64(order_id).view());
  if (!m) return std::nullopt;
  auto r = m->root<records::Reservation>();
  ReservationView out{.state = from_record(r.getState()),
                      .code = r.getCode(),
                      .detail = to_string(r.getDetail()),
                      .lines = {},
                      .at_ms = r.getAtMs()};
  for (auto line : r.getLines()) {
    out.lines.push_back({.product_id = line.getProductId(), .quantity = line.getQuantity()});
  }
  return out;
}

std::uint64_t ProductStore::product_count(Txn& txn) const { return products_.count(txn); }

void ProductStore::scan_products(Txn& txn,
                                 const std::function<bool(const ProductView&)>& fn) const {
  products_.scan(txn, {}, [&](std::span<const std::byte> key, std::span<const std::byte>) {
    auto p = find(txn, storage::read_u64_be(key));
    return !p || fn(*p);
  });
}

void ProductStore::scan_reservations(
    Txn& txn, const std::function<bool(std::uint64_t, const ReservationView&)>& fn) const {
  reservations_.scan(txn, {}, [&](std::span<const std::byte> key, std::span<const std::byte>) {
    const std::uint64_t order_id = storage::read_u64_be(key);
    auto r = reservation(txn, order_id);
    return !r || fn(order_id, *r);
  });
}

std::error_code ProductStore::put_product(Txn& txn, const ProductView& p) const {
  capnp::MallocMessageBuilder b(storage::kRecordBuilderWords);
  auto r = b.initRoot<records::Product>();
  r.setId(p.id);
  set_text(r.initName(p.name.size()), p.name);
  set_text(r.initCategory(p.category.size()), p.category);
  r.setPriceCents(p.price_cents);
  r.setStock(p.stock);
  r.setCreatedAtMs(p.created_at_ms);
  r.setReceivedUnits(p.received_units);
  r.setUnlisted(p.unlisted);
  return storage::put_message(products_, txn, product_key(p.id).view(), b);
}

std::error_code ProductStore::put_reservation(Txn& txn, std::uint64_t order_id,
                                              const ReservationView& v) const {
  capnp::MallocMessageBuilder b(storage::kRecordBuilderWords);
  auto r = b.initRoot<records::Reservation>();
  r.setState(to_record(v.state));
  r.setCode(v.code);
  set_text(r.initDetail(v.detail.size()), v.detail);
  auto lines = r.initLines(static_cast<unsigned>(v.lines.size()));
  for (unsigned i = 0; i < v.lines.size(); ++i) {
    lines[i].setProductId(v.lines[i].product_id);
    lines[i].setQuantity(v.lines[i].quantity);
  }
  r.setAtMs(v.at_ms);
  return storage::put_message(reservations_, txn, Key{}.u64(order_id).view(), b);
}

// --- ProductQueries ----------------------------------------------------------

std::expected<ProductQueries, std::error_code> ProductQueries::open(const std::string& env_path,
                                                                    std::size_t map_size_bytes) {
  auto ro = storage::open_read_only<ProductStore>(env_path, map_size_bytes);
  if (!ro) return std::unexpected(ro.error());
  return ProductQueries(std::move(ro->env), ro->store);
}

std::expected<std::optional<ProductView>, std::error_code> ProductQueries::find(
    std::uint64_t product_id) const {
  auto txn = storage::Txn::begin_read(*env_);
  if (!txn) return std::unexpected(txn.error());
  return store_.find(*txn, product_id);
}

std::expected<bool, std::error_code> ProductQueries::exists(std::uint64_t product_id) const {
  auto txn = storage::Txn::begin_read(*env_);
  if (!txn) return std::unexpected(txn.error());
  return store_.exists(*txn, product_id);
}

std::expected<std::optional<std::int64_t>, std::error_code> ProductQueries::unit_price_cents(
    std::uint64_t product_id) const {
  auto txn = storage::Txn::begin_read(*env_);
  if (!txn) return std::unexpected(txn.error());
  return store_.unit_price_cents(*txn, product_id);
}

std::expected<std::vector<std::optional<ProductOffer>>, std::error_code> ProductQueries::offers(
    std::span<const std::uint64_t> product_ids) const {
  auto txn = storage::Txn::begin_read(*env_);
  if (!txn) return std::unexpected(txn.error());
  return store_.offers(*txn, product_ids);
}

std::expected<std::vector<CategoryCount>, std::error_code> ProductQueries::categories() const {
  auto txn = storage::Txn::begin_read(*env_);
  if (!txn) return std::unexpected(txn.error());
  return store_.categories(*txn);
}

std::expected<ProductPage, std::error_code> ProductQueries::list(std::string_view category,
                                                                 std::uint64_t cursor,
                                                                 std::size_t limit) const {
  auto txn = storage::Txn::begin_read(*env_);
  if (!txn) return std::unexpected(txn.error());
  return store_.list(*txn, category, cursor, limit);
}

}  // namespace ringmart::product
