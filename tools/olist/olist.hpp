// ringmart::olist — load the Olist "Brazilian E-Commerce Public Dataset"
// (Kaggle, CC BY-NC-SA 4.0) into a replay Dataset. See README.md for the
// mapping; the shared sample lives in ../shared/data/olist.
#pragma once

#include <cstddef>
#include <expected>
#include <filesystem>
#include <string>

#include "tools/olist/dataset.hpp"

namespace ringmart::olist {

/// File names inside an Olist directory.
inline constexpr const char* kItemsFile = "olist_order_items_dataset.csv";
inline constexpr const char* kPaymentsFile = "olist_order_payments_dataset.csv";
inline constexpr const char* kProductsFile = "olist_products_dataset.csv";
inline constexpr const char* kTranslationFile = "product_category_name_translation.csv";

/// The credit line for results computed from Olist data.
inline constexpr const char* kOlistAttribution = "Olist (CC BY-NC-SA 4.0)";

struct LoadOptions {
  /// Initial stock per product = round(units_sold * stock_factor); must be >= 0.
  /// Below 1 some orders fail on stock.
  double stock_factor = 1.0;
  /// Keep only the first max_orders orders (after sorting); 0 = all. Products
  /// and units_sold are then those of the kept orders.
  size_t max_orders = 0;
};

/// Loads an Olist directory (the four files above; the sellers file is not needed).
///
/// - products: those appearing in the items file, in order of first
///   appearance; category translated to English (falls back to the Portuguese
///   name, or "unknown"); name "<category> <first 8 hex of id>"; price = the
///   price of its first sale, in cents.
/// - orders: one per order_id, lines grouped by product (same product twice =
///   quantity 2); shipping = sum of freight; voucher = sum of `voucher`
///   payments; installments = of the largest non-voucher payment (default 1);
///   token "tok_ok"; no points. Sorted by the earliest shipping_limit_date.
///
/// Errors (as a message): a missing or unreadable file (its path), a missing
/// column, a malformed row or value ("file:line: ..."), a negative stock_factor.
std::expected<Dataset, std::string> load_olist(const std::filesystem::path& dir,
                                               const LoadOptions& options = {});

}  // namespace ringmart::olist
