// ringmart::olist — a deterministic built-in data set, used by the replay when
// no Olist directory is given.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tools/olist/dataset.hpp"

namespace ringmart::olist {

struct GenerateOptions {
  uint64_t seed = 1;          ///< std::mt19937_64 seed; same seed -> same data set
  size_t orders = 2000;       ///< number of orders
  size_t products = 200;      ///< number of products (spread over 10 categories)
  double stock_factor = 1.0;  ///< scales every product's initial stock (>= 0)
};

/// Generates a data set shaped like Olist's (32-hex ids, prices in cents,
/// "YYYY-MM-DD HH:MM:SS" sort keys), deterministic for a given options value on
/// any platform (it uses its own integer distributions, not <random>'s).
///
/// - products: 10 categories, prices 4.90 .. 303.90, a Zipf-like popularity.
/// - orders: 1-3 lines, quantity 1-3, shipping 5.00 .. 29.99; about 10% use
///   a fixed coupon (5 .. 30 in whole units); about 20% spend points (the user is
///   charged enough first, except about 1 in 20 of them, which then fail with
///   INSUFFICIENT_POINTS); about 3% pay with tok_decline and 2% with
///   tok_capture_fail; installments 1 .. 10.
/// - stock: units sold x stock_factor, except every 20th product by popularity
///   (from the 3rd) gets 60% of that, so some orders fail OUT_OF_STOCK.
/// Products no order uses are kept, with stock 0.
Dataset generate(const GenerateOptions& options = {});

}  // namespace ringmart::olist
