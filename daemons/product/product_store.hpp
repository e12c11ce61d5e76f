// ringmart::product — the catalogue and its stock, over the product daemon's LMDB environment.
//
// ProductStore implements the commands of docs/domains.md ("product") as
// plain functions of a transaction, so it runs inside the daemon's batch
// transaction and in unit tests alike. ProductQueries is the read-only library
// the gateway links to answer GETs and to snapshot unit prices into CreateOrder.
//
// Tables (integers big-endian, so byte order = numeric order):
//   products              u64 product id              -> records::Product
//   products_by_category  category bytes, 0x00, u64 id -> empty (index for list())
//   reservations          u64 order id                -> records::Reservation (idempotency +
//   tombstone) product_counters      u8 0                        -> u64 last product id (ids start
//   at 1)
//
// Invariants: stock is never negative; every product has exactly one index
// row under its category (categories never change); an order takes stock at
// most once, all lines or none, and gives it back at most once; a restore
// that finds no reservation leaves a tombstone so a late deduction has no effect.
//
// Errors: business failures are values (`Outcome::code`); std::error_code is
// only for LMDB failures (MDB_MAP_FULL, MDB_TXN_FULL...), after which the
// caller must abort the transaction.
// Thread-safety: ProductStore holds only table handles; use it with one Txn per
// thread. ProductQueries may be shared by threads (each call has its own read txn).
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

#include "schemas/envelope.capnp.h"
#include "storage/lmdb.hpp"

namespace ringmart::product {

/// Longest product name, in Unicode code points (UTF-8 is assumed).
inline constexpr std::size_t kMaxNameChars = 200;
/// Longest category, in code points; it is part of an index key (LMDB keys are <= 511 bytes).
inline constexpr std::size_t kMaxCategoryChars = 100;
/// list() returns at most this many products per page.
inline constexpr std::size_t kMaxPageLimit = 100;

/// A product as the API shows it (`GET /v1/products/{id}`), plus its creation time.
struct ProductView {
  std::uint64_t id = 0;
  std::string name{};
  std::string category{};
  std::int64_t price_cents = 0;
  std::int64_t stock = 0;
  std::int64_t created_at_ms = 0;  ///< Unix ms
  /// Units ever put into stock: the initial stock plus every adjustStock
  /// delta. received_units - stock = units held by deducted orders, which is
  /// what tests/chaos checks. Records written before this field read 0.
  std::int64_t received_units = 0;
  /// Unlisted (DELETE /v1/products/{id}): no longer orderable nor listed,
  /// still readable (past orders name it).
  bool unlisted = false;
};

/// What an order may take of a product: its price now, and whether it is
/// still orderable (not unlisted).
struct ProductOffer {
  std::int64_t price_cents = 0;
  bool orderable = true;
};

/// One category of the catalogue and how many listed products it has.
struct CategoryCount {
  std::string category;
  std::uint64_t products = 0;
};

/// The fields updateProduct changes (nullopt: kept).
struct ProductChanges {
  std::optional<std::string> name;
  std::optional<std::string> category;
  std::optional<std::int64_t> price_cents;
};

/// One page of list(): products ordered by id; `next_cursor` is the last id of
/// this page when more products follow, nullopt on the last page.
struct ProductPage {
  std::vector<ProductView> items{};
  std::optional<std::uint64_t> next_cursor{};
};

/// A quantity of one product (an order line without its price).
struct LineQuantity {
  std::uint64_t product_id = 0;
  std::int64_t quantity = 0;
};

/// State of an order's inventory reservation (see reservations).
enum class ReservationState { deducted, restored, rejected };

/// The idempotency record of one order's deductInventory/restoreInventory.
struct ReservationView {
  ReservationState state = ReservationState::rejected;
  msg::Code code = msg::Code::OK;  ///< the answer deductInventory gave
  std::string detail{};
  std::vector<LineQuantity> lines{};  ///< per product, summed; empty unless stock was taken
  std::int64_t at_ms = 0;
};

/// The answer to a command: a `msg::Code` and, per command, the affected id,
/// a resulting figure (stock) and a human-readable detail.
struct Outcome {
  msg::Code code = msg::Code::OK;
  std::uint64_t id = 0;
  std::int64_t value = 0;
  std::string detail{};
};

class ProductStore {
 public:
  /// Opens the tables; with a write txn creates them. On a read txn (e.g. a
  /// read-only env) the tables must exist: MDB_NOTFOUND otherwise. Other
  /// errors: MDB_DBS_FULL. The handles stay valid for the Env's life once
  /// `txn` commits (a read txn too: commit it, do not abort it).
  static std::expected<ProductStore, std::error_code> open(storage::Txn& txn);
  ProductStore() = default;

  // --- commands (write txn) -------------------------------------------------

  /// createProduct: name of 1..kMaxNameChars and category of
  /// 1..kMaxCategoryChars code points (no NUL), price_cents >= 0, stock >= 0.
  /// Returns {ok, id = new product id (from 1)} or {invalidArgument, detail}.
  std::expected<Outcome, std::error_code> create_product(storage::Txn& txn, std::string_view name,
                                                         std::string_view category,
                                                         std::int64_t price_cents,
                                                         std::int64_t stock,
                                                         std::int64_t now_ms) const;

  /// adjustStock: stock += delta, and received_units += delta. Returns {ok,
  /// id, value = new stock} / productNotFound / stockNegative (the result
  /// would be < 0) / invalidArgument (int64 overflow of stock or received
  /// units). Failures change nothing.
  std::expected<Outcome, std::error_code> adjust_stock(storage::Txn& txn, std::uint64_t product_id,
                                                       std::int64_t delta) const;

  /// updateProduct: sets the given fields, with create_product's rules (and
  /// the category index follows a new category). Orders placed before keep
  /// the price they were accepted at (the gateway snapshots it). Returns {ok,
  /// id} / productNotFound / invalidArgument (nothing to change, or a bad
  /// field). Failures change nothing.
  std::expected<Outcome, std::error_code> update_product(storage::Txn& txn,
                                                         std::uint64_t product_id,
                                                         const ProductChanges& changes) const;
  /// unlistProduct: the product is no longer orderable nor listed (the
  /// category index drops it); find() still reads it. Idempotent: {ok, id}
  /// again for an unlisted one; productNotFound.
  std::expected<Outcome, std::error_code> unlist_product(storage::Txn& txn,
                                                         std::uint64_t product_id) const;

  /// deductInventory: takes every line's quantity from stock for `order_id`,
  /// all lines or none. Lines naming the same product are summed. Returns ok /
  /// outOfStock (detail names the product) / productNotFound (detail names it)
  /// / invalidArgument (no lines, quantity <= 0); the first failing line in
  /// order decides. Failures leave stock unchanged but are recorded, so a
  /// retry gets the same answer. Idempotent by order id: a second call returns
  /// the first answer whatever its lines. After restoreInventory for the order
  /// (even one that came first and left a tombstone) it has no effect and
  /// answers ok with a detail saying so.
  std::expected<Outcome, std::error_code> deduct_inventory(storage::Txn& txn,
                                                           std::uint64_t order_id,
                                                           std::span<const LineQuantity> lines,
                                                           std::int64_t now_ms) const;

  /// restoreInventory: gives back the stock `order_id` took (once); with no
  /// reservation on record writes a tombstone. Always ok.
  std::expected<Outcome, std::error_code> restore_inventory(storage::Txn& txn,
                                                            std::uint64_t order_id,
                                                            std::int64_t now_ms) const;

  // --- reads (any txn) -------------------------------------------------------

  std::optional<ProductView> find(storage::Txn& txn, std::uint64_t product_id) const;
  bool exists(storage::Txn& txn, std::uint64_t product_id) const;
  /// Current unit price in cents, or nullopt for an unknown product.
  std::optional<std::int64_t> unit_price_cents(storage::Txn& txn, std::uint64_t product_id) const;
  /// Offers of several products read in one snapshot, in the order given;
  /// nullopt entries are unknown products.
  std::vector<std::optional<ProductOffer>> offers(storage::Txn& txn,
                                                  std::span<const std::uint64_t> product_ids) const;
  /// Products with id > `cursor` (0 = from the start) in `category` ("" = all
  /// categories), ordered by id; `limit` is clamped to 1..kMaxPageLimit.
  ProductPage list(storage::Txn& txn, std::string_view category, std::uint64_t cursor,
                   std::size_t limit) const;
  std::optional<ReservationView> reservation(storage::Txn& txn, std::uint64_t order_id) const;
  /// Every category with listed products, in byte order of the name, with
  /// their counts: one pass over the category index (unlisted products are
  /// not in it).
  std::vector<CategoryCount> categories(storage::Txn& txn) const;
  /// Number of products in the catalogue.
  std::uint64_t product_count(storage::Txn& txn) const;
  /// Visits every product in id order while `fn` returns true (audits, the
  /// invariant checker: one snapshot of the whole catalogue).
  void scan_products(storage::Txn& txn, const std::function<bool(const ProductView&)>& fn) const;
  /// Visits every reservation (tombstones included) in order id order while
  /// `fn` returns true.
  void scan_reservations(
      storage::Txn& txn,
      const std::function<bool(std::uint64_t order_id, const ReservationView&)>& fn) const;

 private:
  std::error_code put_product(storage::Txn& txn, const ProductView& p) const;
  std::error_code put_reservation(storage::Txn& txn, std::uint64_t order_id,
                                  const ReservationView& r) const;

  storage::Table products_;
  storage::Table by_category_;
  storage::Table reservations_;
  storage::Table counters_;
};

/// Read-only access to the product daemon's environment for other processes
/// (the gateway). Each call runs in its own short read transaction and sees
/// the last committed state. Thread-safe.
class ProductQueries {
 public:
  /// Opens `env_path` (Config::env_path("product")) read-only with the same
  /// map size as the daemon. Errors: ENOENT (the daemon never ran),
  /// MDB_NOTFOUND (its tables are not created yet), MDB_VERSION_MISMATCH, MDB_INVALID.
  static std::expected<ProductQueries, std::error_code> open(const std::string& env_path,
                                                             std::size_t map_size_bytes);

  // Each call's errors: MDB_READERS_FULL, MDB_MAP_RESIZED (from beginning the read txn).

  /// The product, or nullopt.
  std::expected<std::optional<ProductView>, std::error_code> find(std::uint64_t product_id) const;
  std::expected<bool, std::error_code> exists(std::uint64_t product_id) const;
  /// Current unit price in cents (snapshotted into CreateOrder), or nullopt.
  std::expected<std::optional<std::int64_t>, std::error_code> unit_price_cents(
      std::uint64_t product_id) const;
  /// Offers (price, orderable) of all of an order's products from one
  /// consistent snapshot (what the gateway snapshots into createOrder).
  std::expected<std::vector<std::optional<ProductOffer>>, std::error_code> offers(
      std::span<const std::uint64_t> product_ids) const;
  /// See ProductStore::categories.
  std::expected<std::vector<CategoryCount>, std::error_code> categories() const;
  /// See ProductStore::list.
  std::expected<ProductPage, std::error_code> list(std::string_view category, std::uint64_t cursor,
                                                   std::size_t limit) const;

 private:
  ProductQueries(std::unique_ptr<storage::Env> env, ProductStore store)
      : env_(std::move(env)), store_(store) {}
  std::unique_ptr<storage::Env> env_;
  ProductStore store_;
};

}  // namespace ringmart::product
