#include "tools/olist/olist.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "testkit/temp_dir.hpp"
#include "tools/olist/csv.hpp"
#include "tools/olist/generate.hpp"

namespace fs = std::filesystem;
using namespace ringmart::olist;

namespace {

/// The test's CSV files, in a fresh directory removed at the end of the test.
class CsvDir {
 public:
  fs::path path() const { return dir_.path(); }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream(path() / name, std::ios::binary) << text;
  }

 private:
  ringmart::testkit::TempDir dir_{"olist_test"};
};
const char* kTranslation =
    "\xEF\xBB\xBFproduct_category_name,product_category_name_english\r\n"
    "beleza_saude,health_beauty\r\n"
    "informatica_acessorios,computers_accessories\r\n";

const char* kProducts =
    "\"product_id\",\"product_category_name\",\"product_weight_g\"\n"
    "\"aaaaaaaa11111111\",beleza_saude,225\n"
    "bbbbbbbb22222222,\"moveis_decoracao\",100\n"
    "\"cccccccc33333333\",,300\n";

// o2 ships earlier than o1; o1 has product a twice.
const char* kItems =
    "order_id,order_item_id,product_id,seller_id,shipping_limit_date,price,freight_value\r\n"
    "o1,1,aaaaaaaa11111111,s1,2017-09-19 09:45:35,58.90,13.29\r\n"
    "o1,2,aaaaaaaa11111111,s1,2017-09-19 09:45:35,58.90,13.29\r\n"
    "o1,3,bbbbbbbb22222222,s2,2017-09-20 10:00:00,0.85,1234.5\r\n"
    "o2,1,cccccccc33333333,s3,2017-05-03 11:05:13,12,0.00\r\n"
    "o3,1,dddddddd44444444,s3,2017-12-01 00:00:00,10.00,2.00\r\n";

const char* kPayments =
    "order_id,payment_sequential,payment_type,payment_installments,payment_value\r\n"
    "o1,1,credit_card,3,100.00\r\n"
    "o1,2,voucher,1,20.00\r\n"
    "o1,3,voucher,1,5.50\r\n"
    "o1,4,boleto,1,1254.23\r\n"
    "o2,1,credit_card,0,12.00\r\n"
    "o9,1,voucher,1,99.00\r\n";

void write_all(const CsvDir& dir) {
  dir.write(kTranslationFile, kTranslation);
  dir.write(kProductsFile, kProducts);
  dir.write(kItemsFile, kItems);
  dir.write(kPaymentsFile, kPayments);
}

const Order* find_order(const Dataset& d, const std::string& id) {
  for (const auto& o : d.orders) {
    if (o.source_id == id) return &o;
  }
  return nullptr;
}

fs::path real_dir() {
  if (const char* env = std::getenv("RINGMART_OLIST_DIR")) return env;
#ifdef RINGMART_OLIST_DIR
  return RINGMART_OLIST_DIR;
#else
  return "../shared/data/olist";
#endif
}

}  // namespace

TEST(Cents, ParsesExactly) {
  EXPECT_EQ(parse_cents("58.90"), 5890);
  EXPECT_EQ(parse_cents("0.85"), 85);
  EXPECT_EQ(parse_cents("1234.5"), 123450);
  EXPECT_EQ(parse_cents("12"), 1200);
  EXPECT_EQ(parse_cents("0"), 0);
  EXPECT_EQ(parse_cents(".5"), 50);
  EXPECT_EQ(parse_cents("0.01"), 1);
  EXPECT_EQ(parse_cents("6735.00"), 673500);
  EXPECT_EQ(parse_cents("0.29"), 29);  // 0.29 * 100 is 28.999... in binary floating point
}

TEST(Cents, RejectsMalformed) {
  for (const char* bad : {"", ".", "12.", "1.234", "-1.00", "+1", "1,50", "abc", "1.a", " 1",
                          "99999999999999999999"}) {
    EXPECT_FALSE(parse_cents(bad).has_value()) << bad;
  }
}

TEST(Csv, QuotesBomAndCrlf) {
  auto t = parse_csv(
      "\xEF\xBB\xBF\"a\",b\r\n\"x,1\",\"say \"\"hi\"\"\"\r\n\r\nplain,\"multi\nline\"\n", "t.csv");
  ASSERT_TRUE(t.has_value()) << t.error();
  ASSERT_EQ(t->header, (std::vector<std::string>{"a", "b"}));
  ASSERT_EQ(t->rows.size(), 2u);
  EXPECT_EQ(t->rows[0].fields, (std::vector<std::string>{"x,1", "say \"hi\""}));
  EXPECT_EQ(t->rows[0].line, 2u);
  EXPECT_EQ(t->rows[1].fields, (std::vector<std::string>{"plain", "multi\nline"}));
  EXPECT_EQ(t->rows[1].line, 4u);
  EXPECT_EQ(t->column("b"), 1u);
  EXPECT_FALSE(t->column("c").has_value());
}

TEST(Csv, EmptyFieldsAndNoTrailingNewline) {
  auto t = parse_csv("a,b,c\n,,\n1,,3", "t.csv");
  ASSERT_TRUE(t.has_value()) << t.error();
  ASSERT_EQ(t->rows.size(), 2u);
  EXPECT_EQ(t->rows[0].fields, (std::vector<std::string>{"", "", ""}));
  EXPECT_EQ(t->rows[1].fields, (std::vector<std::string>{"1", "", "3"}));
}

TEST(Csv, Errors) {
  auto count = parse_csv("a,b\n1,2\n1,2,3\n", "f.csv");
  ASSERT_FALSE(count.has_value());
  EXPECT_EQ(count.error(), "f.csv:3: expected 2 fields, found 3");
  auto quote = parse_csv("a,b\n1,\"2\n", "f.csv");
  ASSERT_FALSE(quote.has_value());
  EXPECT_EQ(quote.error(), "f.csv:2: unterminated quoted field");
  EXPECT_FALSE(parse_csv("a,b\n\"1\"x,2\n", "f.csv").has_value());
  EXPECT_FALSE(parse_csv("", "f.csv").has_value());
}

TEST(LoadOlist, GroupsLinesAndSums) {
  CsvDir dir;
  write_all(dir);
  auto d = load_olist(dir.path());
  ASSERT_TRUE(d.has_value()) << d.error();
  EXPECT_EQ(d->origin, "olist");
  EXPECT_EQ(d->attribution, "Olist (CC BY-NC-SA 4.0)");

  // Products in order of first appearance.
  ASSERT_EQ(d->products.size(), 4u);
  const auto& a = d->products[0];
  EXPECT_EQ(a.source_id, "aaaaaaaa11111111");
  EXPECT_EQ(a.category, "health_beauty");  // translated
  EXPECT_EQ(a.name, "health_beauty aaaaaaaa");
  EXPECT_EQ(a.price_cents, 5890);
  EXPECT_EQ(a.units_sold, 2);
  EXPECT_EQ(a.stock, 2);
  EXPECT_EQ(d->products[1].category, "moveis_decoracao");  // no translation: Portuguese
  EXPECT_EQ(d->products[1].price_cents, 85);
  EXPECT_EQ(d->products[2].category, "unknown");  // empty category
  EXPECT_EQ(d->products[2].price_cents, 1200);
  EXPECT_EQ(d->products[3].category, "unknown");  // not in the catalogue
  EXPECT_EQ(d->products[3].name, "unknown dddddddd");

  // Sorted by earliest shipping_limit_date.
  ASSERT_EQ(d->orders.size(), 3u);
  EXPECT_EQ(d->orders[0].source_id, "o2");
  EXPECT_EQ(d->orders[1].source_id, "o1");
  EXPECT_EQ(d->orders[2].source_id, "o3");
  EXPECT_EQ(d->orders[1].sort_key, "2017-09-19 09:45:35");

  const Order* o1 = find_order(*d, "o1");
  ASSERT_NE(o1, nullptr);
  ASSERT_EQ(o1->lines.size(), 2u);
  EXPECT_EQ(o1->lines[0].product_index, 0u);
  EXPECT_EQ(o1->lines[0].quantity, 2);
  EXPECT_EQ(o1->lines[1].product_index, 1u);
  EXPECT_EQ(o1->lines[1].quantity, 1);
  EXPECT_EQ(o1->shipping_cents, 1329 + 1329 + 123450);
  EXPECT_EQ(o1->voucher_cents, 2550);  // 20.00 + 5.50
  EXPECT_EQ(o1->installments, 1);      // of the largest non-voucher payment (boleto 1254.23)
  EXPECT_EQ(o1->payment_token, "tok_ok");
  EXPECT_EQ(o1->points, 0);
  EXPECT_EQ(subtotal_cents(*d, *o1), 5890 * 2 + 85);

  const Order* o2 = find_order(*d, "o2");
  ASSERT_NE(o2, nullptr);
  EXPECT_EQ(o2->voucher_cents, 0);
  EXPECT_EQ(o2->installments, 1);  // 0 in the file -> 1
  const Order* o3 = find_order(*d, "o3");
  ASSERT_NE(o3, nullptr);  // no payment rows at all
  EXPECT_EQ(o3->installments, 1);
  EXPECT_EQ(total_units(*d), 5);
}

TEST(LoadOlist, StockFactorAndLimit) {
  CsvDir dir;
  write_all(dir);
  auto half = load_olist(dir.path(), {.stock_factor = 0.5});
  ASSERT_TRUE(half.has_value()) << half.error();
  EXPECT_EQ(half->products[0].stock, 1);  // round(2 * 0.5)
  EXPECT_EQ(half->products[1].stock, 1);  // round(0.5) away from zero

  auto one = load_olist(dir.path(), {.stock_factor = 3.0, .max_orders = 1});
  ASSERT_TRUE(one.has_value()) << one.error();
  ASSERT_EQ(one->orders.size(), 1u);
  EXPECT_EQ(one->orders[0].source_id, "o2");
  ASSERT_EQ(one->products.size(), 1u);  // only the products of kept orders
  EXPECT_EQ(one->products[0].source_id, "cccccccc33333333");
  EXPECT_EQ(one->products[0].stock, 3);
  EXPECT_EQ(one->orders[0].lines[0].product_index, 0u);

  EXPECT_FALSE(load_olist(dir.path(), {.stock_factor = -1.0}).has_value());
}

TEST(LoadOlist, MissingFile) {
  CsvDir dir;
  write_all(dir);
  fs::remove(dir.path() / kPaymentsFile);
  auto d = load_olist(dir.path());
  ASSERT_FALSE(d.has_value());
  EXPECT_NE(d.error().find(kPaymentsFile), std::string::npos) << d.error();
  EXPECT_NE(d.error().find("cannot open"), std::string::npos) << d.error();

  auto none = load_olist(dir.path() / "nope");
  ASSERT_FALSE(none.has_value());
  EXPECT_NE(none.error().find("not a directory"), std::string::npos) << none.error();
}

TEST(LoadOlist, MalformedRowNamesFileAndLine) {
  CsvDir dir;
  write_all(dir);
  dir.write(
      kItemsFile,
      "order_id,order_item_id,product_id,seller_id,shipping_limit_date,price,freight_value\r\n"
      "o1,1,aaaaaaaa11111111,s1,2017-09-19 09:45:35,58.90,13.29\r\n"
      "o1,2,aaaaaaaa11111111,s1,2017-09-19 09:45:35,58.9x,13.29\r\n");
  auto d = load_olist(dir.path());
  ASSERT_FALSE(d.has_value());
  EXPECT_NE(d.error().find(std::string(kItemsFile) + ":3: bad price '58.9x'"), std::string::npos)
      << d.error();

  dir.write(
      kItemsFile,
      "order_id,order_item_id,product_id,seller_id,shipping_limit_date,price,freight_value\r\n"
      "o1,1,aaaaaaaa11111111,s1,2017-09-19 09:45:35,58.90\r\n");
  d = load_olist(dir.path());
  ASSERT_FALSE(d.has_value());
  EXPECT_NE(d.error().find(std::string(kItemsFile) + ":2: expected 7 fields, found 6"),
            std::string::npos)
      << d.error();

  dir.write(kItemsFile, "order_id,product_id\r\no1,a\r\n");
  d = load_olist(dir.path());
  ASSERT_FALSE(d.has_value());
  EXPECT_NE(d.error().find("missing column 'shipping_limit_date'"), std::string::npos) << d.error();
}

TEST(LoadOlist, RealSample) {
  const fs::path dir = real_dir();
  if (!fs::is_directory(dir)) GTEST_SKIP() << "no Olist data at " << dir;
  auto d = load_olist(dir);
  ASSERT_TRUE(d.has_value()) << d.error();

  // Raw sums straight from the files (prices as sold, not list prices).
  auto items = read_csv(dir / kItemsFile);
  auto payments = read_csv(dir / kPaymentsFile);
  ASSERT_TRUE(items.has_value()) << items.error();
  ASSERT_TRUE(payments.has_value()) << payments.error();
  std::map<std::string, int64_t> due;
  for (const auto& row : items->rows) {
    due[row.fields[0]] += *parse_cents(row.fields[5]) + *parse_cents(row.fields[6]);
  }
  std::map<std::string, std::pair<int64_t, int64_t>> paid;  // sum, count
  for (const auto& row : payments->rows) {
    auto& p = paid[row.fields[0]];
    p.first += *parse_cents(row.fields[4]);
    p.second += 1;
  }

  EXPECT_EQ(d->orders.size(), due.size());
  std::vector<std::string> mismatches;
  int64_t units = 0;
  for (size_t i = 0; i < d->orders.size(); ++i) {
    const Order& o = d->orders[i];
    if (i > 0) {
      EXPECT_LE(d->orders[i - 1].sort_key, o.sort_key);
    }
    ASSERT_FALSE(o.lines.empty());
    for (const auto& line : o.lines) {
      ASSERT_LT(line.product_index, d->products.size());
      units += line.quantity;
    }
    ASSERT_TRUE(paid.contains(o.source_id)) << o.source_id;
    const auto [sum, count] = paid[o.source_id];
    const int64_t diff = std::llabs(due[o.source_id] - sum);
    if (diff > count) mismatches.push_back(o.source_id + " " + std::to_string(diff));
    EXPECT_LE(o.voucher_cents, sum);
    EXPECT_GE(o.installments, 1);
  }
  EXPECT_EQ(units, static_cast<int64_t>(items->rows.size()));
  EXPECT_EQ(total_units(*d), units);

  if (d->orders.size() == 6975) {
    // The shared sample: a slice of 6,975 whole orders.
    EXPECT_EQ(d->products.size(), 4999u);
    EXPECT_EQ(units, 7928);
    size_t vouchers = 0;
    for (const auto& o : d->orders) vouchers += o.voucher_cents > 0;
    EXPECT_EQ(vouchers, 251u);
    // The source itself does not always balance: 20 orders of this slice pay
    // credit-card instalment interest or differ by a few cents of rounding.
    EXPECT_EQ(mismatches.size(), 20u);
  } else {
    // A full Kaggle download: the same kind of anomalies, well under 1%.
    EXPECT_LT(mismatches.size() * 100, d->orders.size());
  }
}

TEST(Generate, Deterministic) {
  const Dataset a = generate({.seed = 7, .orders = 500});
  const Dataset b = generate({.seed = 7, .orders = 500});
  const Dataset c = generate({.seed = 8, .orders = 500});
  ASSERT_EQ(a.orders.size(), 500u);
  ASSERT_EQ(a.products.size(), b.products.size());
  for (size_t i = 0; i < a.products.size(); ++i) {
    EXPECT_EQ(a.products[i].source_id, b.products[i].source_id);
    EXPECT_EQ(a.products[i].price_cents, b.products[i].price_cents);
    EXPECT_EQ(a.products[i].stock, b.products[i].stock);
  }
  for (size_t i = 0; i < a.orders.size(); ++i) {
    const Order& x = a.orders[i];
    const Order& y = b.orders[i];
    EXPECT_EQ(x.source_id, y.source_id);
    EXPECT_EQ(x.sort_key, y.sort_key);
    EXPECT_EQ(x.voucher_cents, y.voucher_cents);
    EXPECT_EQ(x.points, y.points);
    EXPECT_EQ(x.user_points, y.user_points);
    EXPECT_EQ(x.payment_token, y.payment_token);
    ASSERT_EQ(x.lines.size(), y.lines.size());
    for (size_t l = 0; l < x.lines.size(); ++l) {
      EXPECT_EQ(x.lines[l].product_index, y.lines[l].product_index);
      EXPECT_EQ(x.lines[l].quantity, y.lines[l].quantity);
    }
  }
  EXPECT_NE(a.orders[0].source_id, c.orders[0].source_id);
}

TEST(Generate, Shape) {
  const Dataset d = generate();
  EXPECT_EQ(d.origin, "generated");
  EXPECT_TRUE(d.attribution.empty());
  EXPECT_EQ(d.products.size(), 200u);
  ASSERT_EQ(d.orders.size(), 2000u);
  std::map<std::string, int> categories, tokens;
  for (const auto& p : d.products) {
    ++categories[p.category];
    EXPECT_GT(p.price_cents, 0);
    EXPECT_GE(p.stock, 0);
    EXPECT_EQ(p.name, p.category + " " + p.source_id.substr(0, 8));
  }
  EXPECT_EQ(categories.size(), 10u);
  size_t coupons = 0, points = 0, short_points = 0;
  int64_t scarce_units = 0;
  for (size_t i = 0; i < d.orders.size(); ++i) {
    const Order& o = d.orders[i];
    if (i > 0) {
      EXPECT_LT(d.orders[i - 1].sort_key, o.sort_key);
    }
    ASSERT_GE(o.lines.size(), 1u);
    ASSERT_LE(o.lines.size(), 3u);
    for (size_t l = 0; l < o.lines.size(); ++l) {
      EXPECT_GE(o.lines[l].quantity, 1);
      for (size_t m = 0; m < l; ++m) {
        EXPECT_NE(o.lines[l].product_index, o.lines[m].product_index);
      }
    }
    coupons += o.voucher_cents > 0;
    if (o.points > 0) {
      ++points;
      short_points += o.user_points < o.points;
      EXPECT_LE(o.points + o.voucher_cents, subtotal_cents(d, o) + o.shipping_cents);
    } else {
      EXPECT_EQ(o.user_points, 0);
    }
    ++tokens[o.payment_token];
    EXPECT_GE(o.installments, 1);
  }
  for (const auto& p : d.products) scarce_units += std::max<int64_t>(0, p.units_sold - p.stock);
  EXPECT_NEAR(static_cast<double>(coupons) / 2000, 0.10, 0.03);
  EXPECT_NEAR(static_cast<double>(points) / 2000, 0.20, 0.04);
  EXPECT_GT(short_points, 0u);
  EXPECT_GT(tokens["tok_decline"], 0);
  EXPECT_GT(tokens["tok_capture_fail"], 0);
  EXPECT_GT(tokens["tok_ok"], 1800);
  EXPECT_GT(scarce_units, 0);  // out-of-stock pressure
}
