// ringmart::olist — the data model of a replay: a catalogue and a time-ordered
// list of orders, each order placed by its own user. Built either from the
// Olist CSV files (olist.hpp) or by a deterministic generator (generate.hpp).
//
// Money is integer cents everywhere; points are worth one cent each.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ringmart::olist {

/// One catalogue entry.
struct Product {
  std::string source_id;    ///< id in the source data (Olist product_id / "gen-p0001")
  std::string name;         ///< "<category> <first 8 chars of source_id>"
  std::string category;     ///< English category, or the Portuguese one, or "unknown"
  int64_t price_cents = 0;  ///< list price in cents (Olist: the price of its first sale)
  int64_t units_sold = 0;   ///< units over all orders of the data set
  int64_t stock = 0;        ///< initial stock to create it with (>= 0)
};

/// One line of an order; each product appears at most once per order.
struct OrderLine {
  size_t product_index = 0;  ///< index into Dataset::products
  int64_t quantity = 0;      ///< >= 1
};

/// One order, placed by a user created for it alone.
struct Order {
  std::string source_id;                 ///< Olist order_id / "gen-o000001"; the Idempotency-Key
  std::vector<OrderLine> lines;          ///< in order of first appearance
  int64_t shipping_cents = 0;            ///< freight (Olist: sum of freight_value)
  int64_t voucher_cents = 0;             ///< fixed coupon value issued to the user; 0 = no coupon
  int64_t points = 0;                    ///< points the order spends (1 point = 1 cent)
  int64_t user_points = 0;               ///< points charged to the user before the replay
  std::string payment_token = "tok_ok";  ///< simulated gateway token
  int installments = 1;                  ///< >= 1
  std::string sort_key;                  ///< earliest shipping_limit_date ("YYYY-MM-DD HH:MM:SS")
};

/// A whole replay data set. Orders are sorted by (sort_key, source_id).
struct Dataset {
  std::vector<Product> products;
  std::vector<Order> orders;
  std::string origin;       ///< "olist" or "generated"
  std::string attribution;  ///< credit line to print, e.g. "Olist (CC BY-NC-SA 4.0)"; may be empty
};

/// Sum of quantities over all orders.
int64_t total_units(const Dataset& data);

/// Subtotal of an order at list prices, in cents.
int64_t subtotal_cents(const Dataset& data, const Order& order);

}  // namespace ringmart::olist
