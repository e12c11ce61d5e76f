#include "daemons/product/product_store.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "storage/capnp_value.hpp"
#include "storage/store_test.hpp"

namespace ringmart::product {
namespace {

using msg::Code;

constexpr std::int64_t kNow = 1'700'000'000'000;

class ProductStoreTest : public storage::testing::StoreTest<ProductStore> {
 protected:
  Outcome ok(std::expected<Outcome, std::error_code> r) {
    EXPECT_TRUE(r) << r.error().message();
    return r ? *r : Outcome{.code = Code::INTERNAL};
  }
  std::uint64_t add(std::string_view category, std::int64_t stock, std::int64_t price = 1000) {
    std::uint64_t id = 0;
    write([&](storage::Txn& t) {
      auto r = ok(store_.create_product(t, "Mug", category, price, stock, kNow));
      ASSERT_EQ(r.code, Code::OK) << r.detail;
      id = r.id;
    });
    return id;
  }
  std::int64_t stock(std::uint64_t id) {
    auto txn = storage::Txn::begin_read(*env_);
    EXPECT_TRUE(txn);
    auto p = store_.find(*txn, id);
    EXPECT_TRUE(p.has_value());
    return p ? p->stock : -1;
  }
  Outcome deduct(std::uint64_t order, std::vector<LineQuantity> lines) {
    Outcome out;
    write([&](storage::Txn& t) { out = ok(store_.deduct_inventory(t, order, lines, kNow)); });
    return out;
  }
  Outcome restore(std::uint64_t order) {
    Outcome out;
    write([&](storage::Txn& t) { out = ok(store_.restore_inventory(t, order, kNow + 5)); });
    return out;
  }
  std::vector<std::uint64_t> ids(const ProductPage& page) {
    std::vector<std::uint64_t> out;
    for (const auto& p : page.items) out.push_back(p.id);
    return out;
  }
};

TEST_F(ProductStoreTest, CreatesProductsWithIdsFromOne) {
  write([&](storage::Txn& t) {
    auto a = ok(store_.create_product(t, "Mug", "kitchen", 1290, 5, kNow));
    auto b = ok(store_.create_product(t, "Lamp", "home", 0, 0, kNow + 1));
    EXPECT_EQ(a.code, Code::OK);
    EXPECT_EQ(a.id, 1u);
    EXPECT_EQ(b.code, Code::OK);
    EXPECT_EQ(b.id, 2u);
    auto p = store_.find(t, 1);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->name, "Mug");
    EXPECT_EQ(p->category, "kitchen");
    EXPECT_EQ(p->price_cents, 1290);
    EXPECT_EQ(p->stock, 5);
    EXPECT_EQ(p->created_at_ms, kNow);
    EXPECT_TRUE(store_.exists(t, 2));
    EXPECT_FALSE(store_.exists(t, 3));
    EXPECT_EQ(store_.unit_price_cents(t, 1), 1290);
    EXPECT_EQ(store_.unit_price_cents(t, 2), 0);
    EXPECT_FALSE(store_.unit_price_cents(t, 3));
  });
}

TEST_F(ProductStoreTest, TheLongestNamesOutgrowTheRecordBuilderAndStillReadBack) {
  // 200 + 100 four-byte code points: 1.2 KB of text, more than the 1 KiB
  // first segment of a record builder, so the record has two segments.
  std::string name, category;
  for (std::size_t i = 0; i < kMaxNameChars; ++i) name += "\xF0\x9F\x8D\xB5";
  for (std::size_t i = 0; i < kMaxCategoryChars; ++i) category += "\xF0\x9F\x8F\xA0";
  ASSERT_GT(name.size() + category.size(), storage::kRecordBuilderWords * sizeof(capnp::word));
  write([&](storage::Txn& t) {
    auto a = ok(store_.create_product(t, name, category, 990, 3, kNow));
    ASSERT_EQ(a.code, Code::OK);
    EXPECT_EQ(ok(store_.adjust_stock(t, a.id, 2)).code, Code::OK);  // a rewrite of the record
  });
  auto txn = storage::Txn::begin_read(*env_);
  ASSERT_TRUE(txn);
  auto p = store_.find(*txn, 1);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->name, name);
  EXPECT_EQ(p->category, category);
  EXPECT_EQ(p->stock, 5);
  EXPECT_EQ(p->price_cents, 990);
}

TEST_F(ProductStoreTest, RejectsInvalidProductWithoutCreating) {
  write([&](storage::Txn& t) {
    EXPECT_EQ(ok(store_.create_product(t, "Mug", "kitchen", -1, 5, kNow)).code,
              Code::INVALID_ARGUMENT);
    EXPECT_EQ(ok(store_.create_product(t, "Mug", "kitchen", 1, -5, kNow)).code,
              Code::INVALID_ARGUMENT);
    EXPECT_EQ(ok(store_.create_product(t, "", "kitchen", 1, 5, kNow)).code, Code::INVALID_ARGUMENT);
    EXPECT_EQ(ok(store_.create_product(t, "Mug", "", 1, 5, kNow)).code, Code::INVALID_ARGUMENT);
    EXPECT_EQ(ok(store_.create_product(t, "Mug", std::string_view("a\0b", 3), 1, 5, kNow)).code,
              Code::INVALID_ARGUMENT);
    EXPECT_EQ(ok(store_.create_product(t, "Mug", std::string(101, 'c'), 1, 5, kNow)).code,
              Code::INVALID_ARGUMENT);
    EXPECT_EQ(store_.product_count(t), 0u);
    EXPECT_TRUE(store_.list(t, "", 0, 10).items.empty());
    EXPECT_EQ(ok(store_.create_product(t, "Mug", "kitchen", 1, 5, kNow)).id, 1u);
  });
}

TEST_F(ProductStoreTest, UpdatesNamePriceAndCategoryAndTheCategoryIndexFollows) {
  const auto id = add("kitchen", 5, 1000);
  const auto other = add("kitchen", 5, 2000);
  Outcome out;
  write([&](storage::Txn& t) {
    out = ok(store_.update_product(t, id,
                                   {.name = "Big mug", .category = "garden", .price_cents = 1250}));
  });
  ASSERT_EQ(out.code, Code::OK) << out.detail;
  EXPECT_EQ(out.value, 1250);
  auto txn = storage::Txn::begin_read(*env_);
  auto p = store_.find(*txn, id);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->name, "Big mug");
  EXPECT_EQ(p->category, "garden");
  EXPECT_EQ(p->price_cents, 1250);
  EXPECT_EQ(p->stock, 5) << "stock is not a product field to change";
  EXPECT_EQ(ids(store_.list(*txn, "garden", 0, 10)), (std::vector<std::uint64_t>{id}));
  EXPECT_EQ(ids(store_.list(*txn, "kitchen", 0, 10)), (std::vector<std::uint64_t>{other}));
  txn->abort();
  // Only the price: the rest stays.
  write([&](storage::Txn& t) { out = ok(store_.update_product(t, id, {.price_cents = 900})); });
  auto txn2 = storage::Txn::begin_read(*env_);
  EXPECT_EQ(store_.find(*txn2, id)->name, "Big mug");
  EXPECT_EQ(store_.find(*txn2, id)->price_cents, 900);
}

TEST_F(ProductStoreTest, UpdateRefusesBadFieldsAndUnknownProductsWithoutChange) {
  const auto id = add("kitchen", 5, 1000);
  auto update = [&](std::uint64_t pid, ProductChanges c) {
    Outcome out;
    write([&](storage::Txn& t) { out = ok(store_.update_product(t, pid, c)); });
    return out;
  };
  EXPECT_EQ(update(id, {}).code, Code::INVALID_ARGUMENT);
  EXPECT_EQ(update(id, {.price_cents = -1}).code, Code::INVALID_ARGUMENT);
  EXPECT_EQ(update(id, {.name = ""}).code, Code::INVALID_ARGUMENT);
  EXPECT_EQ(update(id, {.category = std::string("a\0b", 3)}).code, Code::INVALID_ARGUMENT);
  EXPECT_EQ(update(id + 1, {.price_cents = 5}).code, Code::PRODUCT_NOT_FOUND);
  auto txn = storage::Txn::begin_read(*env_);
  EXPECT_EQ(store_.find(*txn, id)->price_cents, 1000);
  EXPECT_EQ(store_.find(*txn, id)->name, "Mug");
}

TEST_F(ProductStoreTest, CategoriesCountTheirListedProducts) {
  const auto a = add("kitchen", 1);
  add("kitchen", 1);
  add("garden", 1);
  const auto moved = add("garden", 1);
  auto counts = [&] {
    auto txn = storage::Txn::begin_read(*env_);
    std::vector<std::pair<std::string, std::uint64_t>> out;
    for (const auto& c : store_.categories(*txn)) out.emplace_back(c.category, c.products);
    return out;
  };
  using Counts = std::vector<std::pair<std::string, std::uint64_t>>;
  EXPECT_EQ(counts(), (Counts{{"garden", 2}, {"kitchen", 2}}));
  write([&](storage::Txn& t) { ok(store_.unlist_product(t, a)); });
  write([&](storage::Txn& t) { ok(store_.update_product(t, moved, {.category = "toys"})); });
  EXPECT_EQ(counts(), (Counts{{"garden", 1}, {"kitchen", 1}, {"toys", 1}}));
}

TEST_F(ProductStoreTest, AnUnlistedProductIsReadableButNeitherListedNorOrderable) {
  const auto a = add("kitchen", 5);
  const auto b = add("kitchen", 5);
  Outcome out;
  write([&](storage::Txn& t) { out = ok(store_.unlist_product(t, a)); });
  EXPECT_EQ(out.code, Code::OK);
  write([&](storage::Txn& t) { out = ok(store_.unlist_product(t, a)); });
  EXPECT_EQ(out.code, Code::OK) << "idempotent";
  write([&](storage::Txn& t) { out = ok(store_.unlist_product(t, b + 1)); });
  EXPECT_EQ(out.code, Code::PRODUCT_NOT_FOUND);
  auto txn = storage::Txn::begin_read(*env_);
  auto p = store_.find(*txn, a);
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->unlisted);
  EXPECT_EQ(ids(store_.list(*txn, "", 0, 10)), (std::vector<std::uint64_t>{b}));
  EXPECT_EQ(ids(store_.list(*txn, "kitchen", 0, 10)), (std::vector<std::uint64_t>{b}));
  const std::vector<std::uint64_t> wanted{a, b, b + 7};
  const auto offers = store_.offers(*txn, wanted);
  ASSERT_EQ(offers.size(), 3u);
  ASSERT_TRUE(offers[0] && offers[1]);
  EXPECT_FALSE(offers[0]->orderable);
  EXPECT_TRUE(offers[1]->orderable);
  EXPECT_FALSE(offers[2]);
  txn->abort();
  // An order accepted before the unlisting still gets its stock.
  EXPECT_EQ(deduct(77, {{a, 2}}).code, Code::OK);
  EXPECT_EQ(stock(a), 3);
}

TEST_F(ProductStoreTest, AdjustsStock) {
  auto id = add("kitchen", 5);
  write([&](storage::Txn& t) {
    auto r = ok(store_.adjust_stock(t, id, 3));
    EXPECT_EQ(r.code, Code::OK);
    EXPECT_EQ(r.id, id);
    EXPECT_EQ(r.value, 8);
    EXPECT_EQ(ok(store_.adjust_stock(t, id, -8)).value, 0);
  });
  EXPECT_EQ(stock(id), 0);
}

TEST_F(ProductStoreTest, AdjustStockFailuresChangeNothing) {
  auto id = add("kitchen", 5);
  write([&](storage::Txn& t) {
    auto r = ok(store_.adjust_stock(t, id, -6));
    EXPECT_EQ(r.code, Code::STOCK_NEGATIVE);
    EXPECT_EQ(ok(store_.adjust_stock(t, id + 1, 1)).code, Code::PRODUCT_NOT_FOUND);
    EXPECT_EQ(ok(store_.adjust_stock(t, id, INT64_MAX)).code, Code::INVALID_ARGUMENT);
  });
  EXPECT_EQ(stock(id), 5);
}

TEST_F(ProductStoreTest, DeductsAllLinesOncePerOrder) {
  auto a = add("kitchen", 5);
  auto b = add("home", 2);
  EXPECT_EQ(deduct(42, {{a, 3}, {b, 2}}).code, Code::OK);
  EXPECT_EQ(deduct(42, {{a, 3}, {b, 2}}).code, Code::OK);
  EXPECT_EQ(stock(a), 2);
  EXPECT_EQ(stock(b), 0);
  auto txn = storage::Txn::begin_read(*env_);
  auto r = store_.reservation(*txn, 42);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->state, ReservationState::deducted);
  ASSERT_EQ(r->lines.size(), 2u);
  EXPECT_EQ(r->lines[0].product_id, a);
  EXPECT_EQ(r->lines[0].quantity, 3);
}

TEST_F(ProductStoreTest, SumsLinesOfTheSameProduct) {
  auto a = add("kitchen", 5);
  auto out = deduct(1, {{a, 3}, {a, 3}});
  EXPECT_EQ(out.code, Code::OUT_OF_STOCK);
  EXPECT_EQ(stock(a), 5);
  EXPECT_EQ(deduct(2, {{a, 2}, {a, 3}}).code, Code::OK);
  EXPECT_EQ(stock(a), 0);
  EXPECT_EQ(restore(2).code, Code::OK);
  EXPECT_EQ(stock(a), 5);
}

TEST_F(ProductStoreTest, OutOfStockTakesNothingAndNamesTheProduct) {
  auto a = add("kitchen", 5);
  auto b = add("home", 1);
  auto out = deduct(7, {{a, 2}, {b, 2}});
  EXPECT_EQ(out.code, Code::OUT_OF_STOCK);
  EXPECT_NE(out.detail.find("product " + std::to_string(b)), std::string::npos) << out.detail;
  EXPECT_EQ(stock(a), 5);
  EXPECT_EQ(stock(b), 1);
  // After a restock, a retry of the same order still gets the same answer.
  write([&](storage::Txn& t) { ASSERT_EQ(ok(store_.adjust_stock(t, b, 10)).code, Code::OK); });
  auto again = deduct(7, {{a, 2}, {b, 2}});
  EXPECT_EQ(again.code, Code::OUT_OF_STOCK);
  EXPECT_EQ(again.detail, out.detail);
  EXPECT_EQ(stock(a), 5);
  EXPECT_EQ(stock(b), 11);
}

TEST_F(ProductStoreTest, UnknownProductTakesNothing) {
  auto a = add("kitchen", 5);
  auto out = deduct(8, {{a, 1}, {a + 100, 1}});
  EXPECT_EQ(out.code, Code::PRODUCT_NOT_FOUND);
  EXPECT_NE(out.detail.find("product " + std::to_string(a + 100)), std::string::npos);
  EXPECT_EQ(stock(a), 5);
}

TEST_F(ProductStoreTest, RejectsEmptyOrNonPositiveLines) {
  auto a = add("kitchen", 5);
  EXPECT_EQ(deduct(9, {}).code, Code::INVALID_ARGUMENT);
  EXPECT_EQ(deduct(10, {{a, 0}}).code, Code::INVALID_ARGUMENT);
  EXPECT_EQ(deduct(11, {{a, 1}, {a, -1}}).code, Code::INVALID_ARGUMENT);
  EXPECT_EQ(stock(a), 5);
}

TEST_F(ProductStoreTest, RestoreGivesBackOnce) {
  auto a = add("kitchen", 5);
  ASSERT_EQ(deduct(42, {{a, 4}}).code, Code::OK);
  EXPECT_EQ(restore(42).code, Code::OK);
  EXPECT_EQ(restore(42).code, Code::OK);
  EXPECT_EQ(stock(a), 5);
  // A retried deduction after its compensation has no effect.
  auto late = deduct(42, {{a, 4}});
  EXPECT_EQ(late.code, Code::OK);
  EXPECT_EQ(stock(a), 5);
  auto txn = storage::Txn::begin_read(*env_);
  EXPECT_EQ(store_.reservation(*txn, 42)->state, ReservationState::restored);
}

TEST_F(ProductStoreTest, RestoreBeforeDeductLeavesTombstone) {
  auto a = add("kitchen", 5);
  EXPECT_EQ(restore(9).code, Code::OK);
  auto late = deduct(9, {{a, 4}});
  EXPECT_EQ(late.code, Code::OK);
  EXPECT_NE(late.detail.find("already restored"), std::string::npos);
  EXPECT_EQ(stock(a), 5);
}

TEST_F(ProductStoreTest, RestoreAfterRejectedDeductGivesNothing) {
  auto a = add("kitchen", 1);
  ASSERT_EQ(deduct(5, {{a, 2}}).code, Code::OUT_OF_STOCK);
  EXPECT_EQ(restore(5).code, Code::OK);
  EXPECT_EQ(stock(a), 1);
}

TEST_F(ProductStoreTest, ListsByCategoryOrderedByIdWithCursor) {
  std::vector<std::uint64_t> kitchen;
  for (int i = 0; i < 5; ++i) {
    kitchen.push_back(add("kitchen", 1));
    add("kitchenware", 1);  // shares a prefix with "kitchen"
    add("home", 1);
  }
  auto txn = storage::Txn::begin_read(*env_);
  auto p1 = store_.list(*txn, "kitchen", 0, 2);
  EXPECT_EQ(ids(p1), (std::vector<std::uint64_t>{kitchen[0], kitchen[1]}));
  ASSERT_TRUE(p1.next_cursor);
  EXPECT_EQ(*p1.next_cursor, kitchen[1]);
  auto p2 = store_.list(*txn, "kitchen", *p1.next_cursor, 2);
  EXPECT_EQ(ids(p2), (std::vector<std::uint64_t>{kitchen[2], kitchen[3]}));
  ASSERT_TRUE(p2.next_cursor);
  auto p3 = store_.list(*txn, "kitchen", *p2.next_cursor, 2);
  EXPECT_EQ(ids(p3), (std::vector<std::uint64_t>{kitchen[4]}));
  EXPECT_FALSE(p3.next_cursor);
  // Exactly a full last page: no next cursor.
  auto exact = store_.list(*txn, "kitchen", kitchen[2], 2);
  EXPECT_EQ(ids(exact), (std::vector<std::uint64_t>{kitchen[3], kitchen[4]}));
  EXPECT_FALSE(exact.next_cursor);
  for (const auto& p : store_.list(*txn, "kitchen", 0, 100).items) EXPECT_EQ(p.category, "kitchen");
  EXPECT_TRUE(store_.list(*txn, "garden", 0, 10).items.empty());
  EXPECT_TRUE(store_.list(*txn, "kitch", 0, 10).items.empty());
  // No category: every product by id; the limit is clamped to kMaxPageLimit.
  auto all = store_.list(*txn, "", 0, 1000);
  EXPECT_EQ(all.items.size(), 15u);
  EXPECT_FALSE(all.next_cursor);
  EXPECT_EQ(all.items.front().id, 1u);
  EXPECT_EQ(store_.list(*txn, "", 3, 0).items.size(), 1u);
  EXPECT_EQ(store_.list(*txn, "", 3, 0).items[0].id, 4u);
}

TEST_F(ProductStoreTest, PriceSnapshotMarksUnknownProducts) {
  auto a = add("kitchen", 1, 500);
  auto b = add("home", 1, 1290);
  auto txn = storage::Txn::begin_read(*env_);
  const std::vector<std::uint64_t> wanted{b, a + b + 1, a};
  auto prices = store_.offers(*txn, wanted);
  ASSERT_EQ(prices.size(), 3u);
  ASSERT_TRUE(prices[0] && prices[2]);
  EXPECT_EQ(prices[0]->price_cents, 1290);
  EXPECT_FALSE(prices[1]);
  EXPECT_EQ(prices[2]->price_cents, 500);
}

TEST_F(ProductStoreTest, AbortedTransactionLeavesNoEffect) {
  auto a = add("kitchen", 5);
  {
    auto txn = storage::Txn::begin_write(*env_);
    ASSERT_TRUE(txn);
    const std::vector<LineQuantity> lines{{a, 5}};
    ASSERT_EQ(ok(store_.deduct_inventory(*txn, 3, lines, kNow)).code, Code::OK);
  }
  EXPECT_EQ(stock(a), 5);
  EXPECT_EQ(deduct(3, {{a, 5}}).code, Code::OK);
  EXPECT_EQ(stock(a), 0);
}

TEST_F(ProductStoreTest, ReadOnlyQueriesSeeCommittedData) {
  auto a = add("kitchen", 5, 990);
  ASSERT_EQ(deduct(1, {{a, 2}}).code, Code::OK);
  auto q = ProductQueries::open(dir_.path(), 64u << 20);
  ASSERT_TRUE(q) << q.error().message();
  auto p = q->find(a);
  ASSERT_TRUE(p && p->has_value());
  EXPECT_EQ((*p)->stock, 3);
  EXPECT_TRUE(q->exists(a).value());
  EXPECT_FALSE(q->exists(a + 1).value());
  EXPECT_EQ(q->unit_price_cents(a).value(), 990);
  const std::vector<std::uint64_t> wanted{a};
  EXPECT_EQ(q->offers(wanted).value().at(0)->price_cents, 990);
  EXPECT_EQ(q->list("kitchen", 0, 10).value().items.size(), 1u);
  // Later commits by the writer are visible to the open query library.
  auto b = add("kitchen", 1);
  EXPECT_EQ(ids(q->list("kitchen", 0, 10).value()), (std::vector<std::uint64_t>{a, b}));
}

TEST(ProductQueriesTest, OpenFailsForMissingEnvironment) {
  EXPECT_FALSE(ProductQueries::open("/tmp/ringmart-product-does-not-exist", 64u << 20));
}

TEST_F(ProductStoreTest, ReceivedUnitsCountInitialStockAndAdjustmentsButNotOrders) {
  auto id = add("kitchen", 5);
  write([&](storage::Txn& t) {
    ASSERT_EQ(ok(store_.adjust_stock(t, id, 7)).code, Code::OK);
    ASSERT_EQ(ok(store_.adjust_stock(t, id, -2)).code, Code::OK);
    // A refused adjustment receives nothing.
    ASSERT_EQ(ok(store_.adjust_stock(t, id, -100)).code, Code::STOCK_NEGATIVE);
  });
  ASSERT_EQ(deduct(1, {{.product_id = id, .quantity = 4}}).code, Code::OK);
  ASSERT_EQ(deduct(2, {{.product_id = id, .quantity = 3}}).code, Code::OK);
  write(
      [&](storage::Txn& t) { ASSERT_EQ(ok(store_.restore_inventory(t, 2, kNow)).code, Code::OK); });
  auto txn = storage::Txn::begin_read(*env_);
  ASSERT_TRUE(txn);
  auto p = store_.find(*txn, id);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->received_units, 10);  // 5 + 7 - 2
  EXPECT_EQ(p->stock, 6);            // 10 - order 1's 4
}

TEST_F(ProductStoreTest, ScansEveryProductAndReservation) {
  auto a = add("kitchen", 5);
  auto b = add("garden", 2);
  ASSERT_EQ(deduct(9, {{.product_id = a, .quantity = 1}, {.product_id = a, .quantity = 2}}).code,
            Code::OK);
  ASSERT_EQ(deduct(4, {{.product_id = b, .quantity = 3}}).code, Code::OUT_OF_STOCK);
  auto txn = storage::Txn::begin_read(*env_);
  ASSERT_TRUE(txn);
  std::vector<std::uint64_t> ids;
  store_.scan_products(*txn, [&](const ProductView& p) {
    ids.push_back(p.id);
    return true;
  });
  EXPECT_EQ(ids, (std::vector<std::uint64_t>{a, b}));
  std::vector<std::uint64_t> orders;
  std::vector<ReservationState> states;
  store_.scan_reservations(*txn, [&](std::uint64_t order_id, const ReservationView& r) {
    orders.push_back(order_id);
    states.push_back(r.state);
    if (order_id == 9) {
      EXPECT_EQ(r.lines.size(), 1u);
      EXPECT_EQ(r.lines.at(0).quantity, 3);
    }
    return true;
  });
  EXPECT_EQ(orders, (std::vector<std::uint64_t>{4, 9}));
  EXPECT_EQ(states, (std::vector{ReservationState::rejected, ReservationState::deducted}));
  // Returning false stops the scan.
  int seen = 0;
  store_.scan_products(*txn, [&](const ProductView&) { return ++seen < 1; });
  EXPECT_EQ(seen, 1);
}

}  // namespace
}  // namespace ringmart::product
