#include "bench/monolith.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <string_view>

namespace ringmart::bench {
namespace {

using storage::Key;
using storage::Table;
using storage::Txn;

// Rows are fixed structs (the daemons store Cap'n Proto; a fixed row is the
// monolith's best case).
struct ProductRow {
  std::int64_t price_cents;
  std::int64_t stock;
};
struct UserRow {
  std::int64_t points;
};
struct CouponRow {
  std::uint64_t user_id;
  std::int64_t value_cents;
  std::uint64_t used_by_order;  // 0 = issued, not used
};
enum class Status : std::uint8_t { completed = 1, failed = 2 };
struct OrderRow {
  std::uint64_t user_id;
  std::int64_t subtotal_cents, shipping_cents, discount_cents, points_used, paid_cents;
  std::uint64_t user_coupon_id;
  Status status;
  std::uint8_t reason;  // index into kReasons when failed
};
enum class PaymentStatus : std::uint8_t { authorized = 1, captured = 2 };
struct PaymentRow {
  std::int64_t amount_cents;
  PaymentStatus status;
};

constexpr const char* kReasons[] = {"",
                                    "COUPON_INVALID",
                                    "OUT_OF_STOCK",
                                    "PAYMENT_DECLINED",
                                    "INSUFFICIENT_POINTS",
                                    "PAYMENT_CAPTURE_FAILED",
                                    "PAYMENT_TIMEOUT"};
enum Reason : std::uint8_t {
  kNone = 0,
  kCouponInvalid,
  kOutOfStock,
  kDeclined,
  kInsufficientPoints,
  kCaptureFailed,
  kTimeout
};

Key k1(std::uint64_t a) {
  Key k;
  k.u64(a);
  return k;
}
Key k2(std::uint64_t a, std::uint64_t b) {
  Key k;
  k.u64(a).u64(b);
  return k;
}

struct Tables {
  Table products, users, coupons, orders, lines, payments, ranking, idempotency;
};

/// Ids of round r: disjoint ranges, like a fresh set-up per replay round.
struct RoundIds {
  std::uint64_t product_base, user_base, order_base;
};
RoundIds round_ids(const olist::Dataset& data, unsigned r) {
  const std::uint64_t p = data.products.size(), o = data.orders.size();
  return {1 + r * p, 1 + r * o, 1 + r * o};
}

std::error_code check(std::error_code ec, std::string& error, std::string_view what) {
  if (ec && error.empty()) error = std::string(what) + ": " + ec.message();
  return ec;
}

/// The saga's effects for one order inside `txn`; returns the failure reason
/// (kNone = completed). Checks every step first (reads only, in the saga's
/// step order, so a failure has the saga's reason), then writes: a failed
/// order writes nothing, without a nested transaction (which MDB_WRITEMAP,
/// used in `process` durability, does not support).
Reason apply_order(Txn& txn, const Tables& t, const olist::Dataset& data, const RoundIds& ids,
                   std::size_t i, std::int64_t day, OrderRow& row, std::string& error) {
  const olist::Order& o = data.orders[i];
  const std::uint64_t order_id = ids.order_base + i;
  // UseCoupon + ApplyCoupon.
  std::int64_t total = row.subtotal_cents + row.shipping_cents;
  std::optional<CouponRow> coupon;
  if (row.user_coupon_id) {
    coupon = t.coupons.get_pod<CouponRow>(txn, k1(row.user_coupon_id).view());
    if (!coupon || coupon->user_id != row.user_id || coupon->used_by_order != 0) {
      return kCouponInvalid;
    }
    row.discount_cents = std::min(coupon->value_cents, total);
  }
  // DeductInventory: all lines or none (a product on several lines sums up).
  struct Take {
    std::uint64_t product;
    std::int64_t quantity;
    ProductRow row;
  };
  std::vector<Take> takes;
  for (const auto& line : o.lines) {
    const std::uint64_t product = ids.product_base + line.product_index;
    auto it = std::find_if(takes.begin(), takes.end(),
                           [&](const Take& x) { return x.product == product; });
    if (it == takes.end()) {
      auto p = t.products.get_pod<ProductRow>(txn, k1(product).view());
      if (!p) return kOutOfStock;
      takes.push_back({product, 0, *p});
      it = std::prev(takes.end());
    }
    it->quantity += line.quantity;
    if (it->row.stock < it->quantity) return kOutOfStock;
  }
  // StartPayment (authorize the non-point part).
  row.points_used = o.points;
  row.paid_cents = total - row.discount_cents - row.points_used;
  if (o.payment_token == "tok_timeout") return kTimeout;
  if (o.payment_token != "tok_ok" && o.payment_token != "tok_capture_fail") return kDeclined;
  // DeductPoints.
  std::optional<UserRow> user;
  if (row.points_used > 0) {
    user = t.users.get_pod<UserRow>(txn, k1(row.user_id).view());
    if (!user || user->points < row.points_used) return kInsufficientPoints;
  }
  // CompletePayment (capture).
  if (o.payment_token == "tok_capture_fail") return kCaptureFailed;

  // Every step succeeds: write the effects.
  if (coupon) {
    coupon->used_by_order = order_id;
    if (check(t.coupons.put_pod(txn, k1(row.user_coupon_id).view(), *coupon), error, "coupon")) {
      return kCouponInvalid;
    }
  }
  for (auto& take : takes) {
    take.row.stock -= take.quantity;
    if (check(t.products.put_pod(txn, k1(take.product).view(), take.row), error, "stock")) {
      return kOutOfStock;
    }
  }
  if (user) {
    user->points -= row.points_used;
    if (check(t.users.put_pod(txn, k1(row.user_id).view(), *user), error, "points")) {
      return kInsufficientPoints;
    }
  }
  const PaymentRow pay{row.paid_cents, PaymentStatus::captured};
  if (check(t.payments.put_pod(txn, k1(order_id).view(), pay), error, "payment")) return kDeclined;
  // CompleteOrder + ranking.
  for (const auto& line : o.lines) {
    const auto product = ids.product_base + line.product_index;
    if (check(t.lines.put_pod(txn, k2(order_id, product).view(), line.quantity), error, "line")) {
      return kOutOfStock;
    }
    const auto rk = k2(static_cast<std::uint64_t>(day), product);
    const auto units = t.ranking.get_pod<std::int64_t>(txn, rk.view()).value_or(0);
    if (check(t.ranking.put_pod(txn, rk.view(), units + line.quantity), error, "ranking")) {
      return kOutOfStock;
    }
  }
  return kNone;
}

}  // namespace

std::expected<MonolithResult, std::string> run_monolith(const olist::Dataset& data,
                                                        const MonolithOptions& options) {
  auto env = storage::Env::open({.path = options.dir,
                                 .map_size_bytes = 8ull << 30,
                                 .max_tables = 16,
                                 .durability = options.durability});
  if (!env) return std::unexpected("open " + options.dir + ": " + env.error().message());
  Tables t;
  std::string error;
  {
    auto txn = Txn::begin_write(**env);
    if (!txn) return std::unexpected("begin: " + txn.error().message());
    const std::pair<Table*, const char*> named[] = {
        {&t.products, "products"}, {&t.users, "users"},     {&t.coupons, "coupons"},
        {&t.orders, "orders"},     {&t.lines, "lines"},     {&t.payments, "payments"},
        {&t.ranking, "ranking"},   {&t.idempotency, "idem"}};
    for (auto [table, name] : named) {
      auto opened = Table::open(*txn, name);
      if (!opened)
        return std::unexpected(std::string("table ") + name + ": " + opened.error().message());
      *table = *opened;
    }
    // Set-up of every round: catalogue, users with their points, coupons.
    for (unsigned r = 0; r < options.rounds; ++r) {
      const auto ids = round_ids(data, r);
      for (std::size_t p = 0; p < data.products.size(); ++p) {
        const ProductRow row{data.products[p].price_cents, data.products[p].stock};
        check(t.products.put_pod(*txn, k1(ids.product_base + p).view(), row), error, "set-up");
      }
      for (std::size_t i = 0; i < data.orders.size(); ++i) {
        const auto& o = data.orders[i];
        check(t.users.put_pod(*txn, k1(ids.user_base + i).view(), UserRow{o.user_points}), error,
              "set-up");
        if (o.voucher_cents > 0) {
          const CouponRow c{ids.user_base + i, o.voucher_cents, 0};
          check(t.coupons.put_pod(*txn, k1(ids.user_base + i).view(), c), error, "set-up");
        }
      }
    }
    if (!error.empty()) return std::unexpected(error);
    if (auto ec = txn->commit()) return std::unexpected("set-up commit: " + ec.message());
  }

  MonolithResult result;
  const std::int64_t day = std::chrono::duration_cast<std::chrono::days>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
  const std::size_t group = std::max<std::size_t>(1, options.orders_per_commit);
  const auto start = std::chrono::steady_clock::now();
  std::optional<Txn> txn;
  std::size_t in_txn = 0;
  for (unsigned r = 0; r < options.rounds; ++r) {
    const auto ids = round_ids(data, r);
    for (std::size_t i = 0; i < data.orders.size(); ++i) {
      if (!txn) {
        auto begun = Txn::begin_write(**env);
        if (!begun) return std::unexpected("begin: " + begun.error().message());
        txn.emplace(std::move(*begun));
      }
      const auto& o = data.orders[i];
      const std::uint64_t order_id = ids.order_base + i;
      // The gateway's idempotency key -> order id.
      const std::string key = "r" + std::to_string(r) + "-" + o.source_id;
      const std::span<const std::byte> key_bytes{reinterpret_cast<const std::byte*>(key.data()),
                                                 key.size()};
      if (t.idempotency.get(*txn, key_bytes)) continue;  // a retry: already decided
      check(t.idempotency.put_pod(*txn, key_bytes, order_id), error, "idempotency");
      OrderRow row{};
      row.user_id = ids.user_base + i;
      row.subtotal_cents = olist::subtotal_cents(data, o);
      row.shipping_cents = o.shipping_cents;
      row.user_coupon_id = o.voucher_cents > 0 ? ids.user_base + i : 0;
      const Reason reason = apply_order(*txn, t, data, ids, i, day, row, error);
      if (!error.empty()) return std::unexpected(error);
      if (reason == kNone) {
        row.status = Status::completed;
        ++result.completed;
      } else {
        row.status = Status::failed;
        row.reason = reason;
        row.discount_cents = row.points_used = row.paid_cents = 0;
        ++result.failed;
        ++result.failed_by_reason[kReasons[reason]];
      }
      if (check(t.orders.put_pod(*txn, k1(order_id).view(), row), error, "order")) {
        return std::unexpected(error);
      }
      ++result.orders;
      if (++in_txn == group) {
        if (auto ec = txn->commit()) return std::unexpected("commit: " + ec.message());
        txn.reset();
        in_txn = 0;
        ++result.commits;
      }
    }
  }
  if (txn) {
    if (auto ec = txn->commit()) return std::unexpected("commit: " + ec.message());
    txn.reset();
    ++result.commits;
  }
  result.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.orders_per_s = result.wall_s > 0 ? static_cast<double>(result.orders) / result.wall_s : 0;

  // Invariant sums over the final state, as checked after every benchmark run.
  auto read = Txn::begin_read(**env);
  if (!read) return std::unexpected("read: " + read.error().message());
  for (unsigned r = 0; r < options.rounds; ++r) {
    const auto ids = round_ids(data, r);
    std::vector<std::int64_t> sold(data.products.size(), 0);
    for (std::size_t i = 0; i < data.orders.size(); ++i) {
      const auto& o = data.orders[i];
      const auto row = t.orders.get_pod<OrderRow>(*read, k1(ids.order_base + i).view());
      if (!row) {
        result.violations.push_back("order " + o.source_id + " of round " + std::to_string(r) +
                                    " has no row");
        continue;
      }
      const bool done = row->status == Status::completed;
      if (done) {
        for (const auto& line : o.lines) sold[line.product_index] += line.quantity;
      }
      const auto user = t.users.get_pod<UserRow>(*read, k1(row->user_id).view());
      if (!user || user->points + (done ? row->points_used : 0) != o.user_points) {
        result.violations.push_back("points of the user of order " + o.source_id);
      }
      const auto pay = t.payments.get_pod<PaymentRow>(*read, k1(ids.order_base + i).view());
      if (done !=
          (pay && pay->status == PaymentStatus::captured && pay->amount_cents == row->paid_cents)) {
        result.violations.push_back("payment of order " + o.source_id);
      }
      if (row->user_coupon_id) {
        const auto c = t.coupons.get_pod<CouponRow>(*read, k1(row->user_coupon_id).view());
        const std::uint64_t expected = done ? ids.order_base + i : 0;
        if (!c || c->used_by_order != expected) {
          result.violations.push_back("coupon of order " + o.source_id);
        }
      }
    }
    for (std::size_t p = 0; p < data.products.size(); ++p) {
      const auto row = t.products.get_pod<ProductRow>(*read, k1(ids.product_base + p).view());
      const auto units = t.ranking.get_pod<std::int64_t>(
          *read, k2(static_cast<std::uint64_t>(day), ids.product_base + p).view());
      if (!row || row->stock + sold[p] != data.products[p].stock) {
        result.violations.push_back("stock of product " + data.products[p].source_id);
      }
      if (units.value_or(0) != sold[p]) {
        result.violations.push_back("ranking of product " + data.products[p].source_id);
      }
    }
  }
  read->abort();
  return result;
}

}  // namespace ringmart::bench
