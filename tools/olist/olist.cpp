#include "tools/olist/olist.hpp"

#include <algorithm>
#include <cmath>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "tools/olist/csv.hpp"

namespace ringmart::olist {

namespace {

/// Looks up required columns of a table by name.
std::expected<std::vector<size_t>, std::string> columns(const CsvTable& table,
                                                        std::initializer_list<const char*> names) {
  std::vector<size_t> out;
  for (const char* name : names) {
    const auto index = table.column(name);
    if (!index) return std::unexpected(table.file + ": missing column '" + name + "'");
    out.push_back(*index);
  }
  return out;
}

std::string bad_value(const CsvTable& table, const CsvRow& row, std::string_view column,
                      std::string_view value) {
  return table.file + ":" + std::to_string(row.line) + ": bad " + std::string(column) + " '" +
         std::string(value) + "'";
}

struct RawOrder {
  std::string id;
  std::vector<OrderLine> lines;
  int64_t shipping = 0;
  std::string sort_key;
};

}  // namespace

std::expected<Dataset, std::string> load_olist(const std::filesystem::path& dir,
                                               const LoadOptions& options) {
  if (!(options.stock_factor >= 0.0) || !std::isfinite(options.stock_factor)) {
    return std::unexpected("stock factor must be a finite number >= 0");
  }
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return std::unexpected(dir.string() + ": not a directory");
  }

  // Category translation (UTF-8 BOM, CRLF).
  auto translation = read_csv(dir / kTranslationFile);
  if (!translation) return std::unexpected(translation.error());
  auto tcols = columns(*translation, {"product_category_name", "product_category_name_english"});
  if (!tcols) return std::unexpected(tcols.error());
  std::unordered_map<std::string, std::string> english;
  for (const auto& row : translation->rows) {
    english[row.fields[(*tcols)[0]]] = row.fields[(*tcols)[1]];
  }

  // Catalogue: product id -> Portuguese category.
  auto catalogue = read_csv(dir / kProductsFile);
  if (!catalogue) return std::unexpected(catalogue.error());
  auto ccols = columns(*catalogue, {"product_id", "product_category_name"});
  if (!ccols) return std::unexpected(ccols.error());
  std::unordered_map<std::string, std::string> category_of;
  for (const auto& row : catalogue->rows) {
    category_of[row.fields[(*ccols)[0]]] = row.fields[(*ccols)[1]];
  }

  // Items: products and order lines.
  auto items = read_csv(dir / kItemsFile);
  if (!items) return std::unexpected(items.error());
  auto icols =
      columns(*items, {"order_id", "product_id", "shipping_limit_date", "price", "freight_value"});
  if (!icols) return std::unexpected(icols.error());
  const size_t i_order = (*icols)[0], i_product = (*icols)[1], i_date = (*icols)[2],
               i_price = (*icols)[3], i_freight = (*icols)[4];

  Dataset data;
  data.origin = "olist";
  data.attribution = kOlistAttribution;
  std::unordered_map<std::string, size_t> product_index;
  std::vector<RawOrder> raw;
  std::unordered_map<std::string, size_t> order_index;
  for (const auto& row : items->rows) {
    const auto& order_id = row.fields[i_order];
    const auto& product_id = row.fields[i_product];
    const auto& date = row.fields[i_date];
    if (order_id.empty()) return std::unexpected(bad_value(*items, row, "order_id", order_id));
    if (product_id.empty()) {
      return std::unexpected(bad_value(*items, row, "product_id", product_id));
    }
    if (date.empty()) {
      return std::unexpected(bad_value(*items, row, "shipping_limit_date", date));
    }
    const auto price = parse_cents(row.fields[i_price]);
    if (!price) return std::unexpected(bad_value(*items, row, "price", row.fields[i_price]));
    const auto freight = parse_cents(row.fields[i_freight]);
    if (!freight) {
      return std::unexpected(bad_value(*items, row, "freight_value", row.fields[i_freight]));
    }

    auto [pit, new_product] = product_index.try_emplace(product_id, data.products.size());
    if (new_product) {
      Product p;
      p.source_id = product_id;
      std::string category = "unknown";
      if (auto c = category_of.find(product_id); c != category_of.end() && !c->second.empty()) {
        auto e = english.find(c->second);
        category = (e != english.end() && !e->second.empty()) ? e->second : c->second;
      }
      p.category = category;
      p.name = category + " " + product_id.substr(0, 8);
      p.price_cents = *price;
      data.products.push_back(std::move(p));
    }

    auto [oit, new_order] = order_index.try_emplace(order_id, raw.size());
    if (new_order) {
      RawOrder r;
      r.id = order_id;
      r.sort_key = date;
      raw.push_back(std::move(r));
    }
    RawOrder& order = raw[oit->second];
    order.shipping += *freight;
    order.sort_key = std::min(order.sort_key, date);
    auto line = std::ranges::find(order.lines, pit->second, &OrderLine::product_index);
    if (line == order.lines.end()) {
      order.lines.push_back(OrderLine{.product_index = pit->second, .quantity = 1});
    } else {
      ++line->quantity;
    }
  }

  // Payments: vouchers and installments.
  auto payments = read_csv(dir / kPaymentsFile);
  if (!payments) return std::unexpected(payments.error());
  auto pcols =
      columns(*payments, {"order_id", "payment_type", "payment_installments", "payment_value"});
  if (!pcols) return std::unexpected(pcols.error());
  struct PaymentSummary {
    int64_t voucher = 0;
    int64_t largest = -1;  // value of the largest non-voucher payment
    int installments = 1;
  };
  std::unordered_map<std::string, PaymentSummary> pay;
  for (const auto& row : payments->rows) {
    const auto& order_id = row.fields[(*pcols)[0]];
    const auto& type = row.fields[(*pcols)[1]];
    const auto installments = parse_int(row.fields[(*pcols)[2]]);
    if (!installments || *installments > 1000) {
      return std::unexpected(
          bad_value(*payments, row, "payment_installments", row.fields[(*pcols)[2]]));
    }
    const auto value = parse_cents(row.fields[(*pcols)[3]]);
    if (!value) {
      return std::unexpected(bad_value(*payments, row, "payment_value", row.fields[(*pcols)[3]]));
    }
    if (type.empty()) return std::unexpected(bad_value(*payments, row, "payment_type", type));
    if (!order_index.contains(order_id)) continue;  // payment of an order not in the items
    auto& summary = pay[order_id];
    if (type == "voucher") {
      summary.voucher += *value;
    } else if (*value > summary.largest) {
      summary.largest = *value;
      summary.installments = std::max<int>(1, static_cast<int>(*installments));
    }
  }

  // Sort by the earliest shipping limit (ties: order id), optionally truncate.
  std::ranges::stable_sort(raw, [](const RawOrder& a, const RawOrder& b) {
    return std::tie(a.sort_key, a.id) < std::tie(b.sort_key, b.id);
  });
  if (options.max_orders != 0 && raw.size() > options.max_orders) raw.resize(options.max_orders);

  for (auto& r : raw) {
    Order order;
    order.source_id = std::move(r.id);
    order.lines = std::move(r.lines);
    order.shipping_cents = r.shipping;
    order.sort_key = std::move(r.sort_key);
    if (auto p = pay.find(order.source_id); p != pay.end()) {
      order.voucher_cents = p->second.voucher;
      order.installments = p->second.installments;
    }
    data.orders.push_back(std::move(order));
  }

  // Drop products no kept order uses (only with max_orders), then count units.
  std::vector<int64_t> units(data.products.size(), 0);
  for (const auto& order : data.orders) {
    for (const auto& line : order.lines) units[line.product_index] += line.quantity;
  }
  std::vector<size_t> remap(data.products.size(), 0);
  std::vector<Product> kept;
  for (size_t i = 0; i < data.products.size(); ++i) {
    if (units[i] == 0) continue;
    remap[i] = kept.size();
    data.products[i].units_sold = units[i];
    data.products[i].stock = std::llround(static_cast<double>(units[i]) * options.stock_factor);
    kept.push_back(std::move(data.products[i]));
  }
  data.products = std::move(kept);
  for (auto& order : data.orders) {
    for (auto& line : order.lines) line.product_index = remap[line.product_index];
  }
  return data;
}

}  // namespace ringmart::olist
