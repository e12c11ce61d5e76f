#include "tools/olist/generate.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace ringmart::olist {

namespace {

/// Uniform integer in [0, n) by rejection; n >= 1. Portable, unlike
/// std::uniform_int_distribution whose algorithm is implementation-defined.
uint64_t below(std::mt19937_64& rng, uint64_t n) {
  const uint64_t limit =
      std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % n;
  uint64_t x;
  do {
    x = rng();
  } while (x >= limit);
  return x % n;
}

/// True with probability per_mille / 1000.
bool chance(std::mt19937_64& rng, uint64_t per_mille) { return below(rng, 1000) < per_mille; }

std::string hex_id(std::mt19937_64& rng) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  for (int word = 0; word < 2; ++word) {
    uint64_t x = rng();
    for (int i = 0; i < 16; ++i, x >>= 4) id += kHex[x & 0xF];
  }
  return id;
}

/// "YYYY-MM-DD HH:MM:SS" for 2018-01-01 00:00:00 + seconds.
std::string timestamp(int64_t seconds) {
  using namespace std::chrono;
  const sys_seconds t = sys_days{year{2018} / January / 1} + std::chrono::seconds(seconds);
  const auto day = floor<days>(t);
  const year_month_day ymd{day};
  const hh_mm_ss hms{t - day};
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u %02ld:%02ld:%02ld", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<long>(hms.hours().count()), static_cast<long>(hms.minutes().count()),
                static_cast<long>(hms.seconds().count()));
  return buf;
}

constexpr std::array<const char*, 10> kCategories = {
    "bed_bath_table", "health_beauty", "sports_leisure", "furniture_decor", "computers_accessories",
    "housewares",     "watches_gifts", "telephony",      "garden_tools",    "toys"};

}  // namespace

Dataset generate(const GenerateOptions& options) {
  std::mt19937_64 rng(options.seed);
  Dataset data;
  data.origin = "generated";
  const size_t n_products = std::max<size_t>(1, options.products);

  for (size_t i = 0; i < n_products; ++i) {
    Product p;
    p.source_id = hex_id(rng);
    p.category = kCategories[below(rng, kCategories.size())];
    p.name = p.category + " " + p.source_id.substr(0, 8);
    p.price_cents = static_cast<int64_t>(4 + below(rng, 300)) * 100 + 90;
    data.products.push_back(std::move(p));
  }

  // Popularity: a random permutation of products; rank r has weight 1/(r+1).
  std::vector<size_t> by_rank(n_products);
  for (size_t i = 0; i < n_products; ++i) by_rank[i] = i;
  for (size_t i = n_products; i > 1; --i) std::swap(by_rank[i - 1], by_rank[below(rng, i)]);
  std::vector<uint64_t> cumulative(n_products);
  uint64_t total_weight = 0;
  for (size_t r = 0; r < n_products; ++r) {
    total_weight += 1'000'000 / (r + 1);
    cumulative[r] = total_weight;
  }
  auto pick_product = [&] {
    const uint64_t x = below(rng, total_weight);
    const size_t rank = std::ranges::upper_bound(cumulative, x) - cumulative.begin();
    return by_rank[rank];
  };

  int64_t clock = 0;
  for (size_t n = 0; n < options.orders; ++n) {
    Order order;
    order.source_id = hex_id(rng);
    clock += 60 + static_cast<int64_t>(below(rng, 600));
    order.sort_key = timestamp(clock);

    const uint64_t roll = below(rng, 10);
    const size_t n_lines = std::min<size_t>(n_products, roll < 6 ? 1 : roll < 9 ? 2 : 3);
    while (order.lines.size() < n_lines) {
      const size_t product = pick_product();
      if (std::ranges::find(order.lines, product, &OrderLine::product_index) != order.lines.end()) {
        continue;
      }
      const uint64_t q = below(rng, 100);
      order.lines.push_back({.product_index = product, .quantity = q < 80 ? 1 : q < 95 ? 2 : 3});
    }
    order.shipping_cents = 500 + static_cast<int64_t>(below(rng, 2500));

    if (chance(rng, 100)) order.voucher_cents = static_cast<int64_t>(5 + below(rng, 26)) * 100;
    const int64_t due = subtotal_cents(data, order) + order.shipping_cents - order.voucher_cents;
    if (chance(rng, 200) && due > 100) {
      order.points = 1 + static_cast<int64_t>(below(rng, static_cast<uint64_t>(due / 2)));
      order.user_points = chance(rng, 50) ? order.points / 2 : order.points;
    }

    const uint64_t token = below(rng, 1000);
    order.payment_token = token < 30 ? "tok_decline" : token < 50 ? "tok_capture_fail" : "tok_ok";
    order.installments = chance(rng, 500) ? 1 : 2 + static_cast<int>(below(rng, 9));
    data.orders.push_back(std::move(order));
  }

  for (const auto& order : data.orders) {
    for (const auto& line : order.lines)
      data.products[line.product_index].units_sold += line.quantity;
  }
  const double factor = std::isfinite(options.stock_factor) && options.stock_factor > 0.0
                            ? options.stock_factor
                            : 0.0;
  for (size_t r = 0; r < n_products; ++r) {
    Product& p = data.products[by_rank[r]];
    const double scarce = (r % 20 == 2) ? 0.6 : 1.0;
    p.stock = std::llround(static_cast<double>(p.units_sold) * factor * scarce);
  }

  return data;
}

}  // namespace ringmart::olist
