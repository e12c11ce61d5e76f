#include "tools/olist/dataset.hpp"

namespace ringmart::olist {

int64_t total_units(const Dataset& data) {
  int64_t units = 0;
  for (const auto& order : data.orders) {
    for (const auto& line : order.lines) units += line.quantity;
  }
  return units;
}

int64_t subtotal_cents(const Dataset& data, const Order& order) {
  int64_t sum = 0;
  for (const auto& line : order.lines) {
    sum += data.products.at(line.product_index).price_cents * line.quantity;
  }
  return sum;
}

}  // namespace ringmart::olist
