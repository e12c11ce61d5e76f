// The order saga end to end on the real system: every daemon, real rings,
// real LMDB, the real Unix socket. Each failure reason is checked in every
// daemon's state after the compensations.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "tests/integration/system.hpp"

namespace ringmart::test {
namespace {

class SagaTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    sys_ = new System();
    ASSERT_TRUE(sys_->start());
  }
  static void TearDownTestSuite() {
    EXPECT_TRUE(sys_->stop());
    delete sys_;
    sys_ = nullptr;
  }

  struct Shop {
    std::int64_t product = -1, user = -1, coupon = -1, user_coupon = -1;
  };
  /// A product (price 1000, stock 10), a user with 500 points, a fixed 200 coupon issued to them.
  Shop make_shop(std::int64_t coupon_min_order = 0) {
    Shop s;
    s.product = sys_->create_product("widget", 1000, 10);
    s.user = sys_->create_user("buyer" + std::to_string(counter_++));
    EXPECT_GT(s.product, 0);
    EXPECT_GT(s.user, 0);
    auto charged = sys_->admin("POST", "/v1/users/" + std::to_string(s.user) + "/points/charge",
                               {{"amount", 500}});
    EXPECT_EQ(charged.status, 200);
    EXPECT_EQ(charged.body["balance"], 500);
    auto c = sys_->admin("POST", "/v1/coupons",
                         {{"name", "200 off"},
                          {"discount_type", "fixed"},
                          {"discount_value", 200},
                          {"total_quantity", 5},
                          {"min_order", coupon_min_order}});
    EXPECT_EQ(c.status, 201);
    s.coupon = c.body["id"].get<std::int64_t>();
    auto issued = sys_->admin("POST", "/v1/coupons/" + std::to_string(s.coupon) + "/issue",
                              {{"user_id", s.user}});
    EXPECT_EQ(issued.status, 201);
    s.user_coupon = issued.body["user_coupon_id"].get<std::int64_t>();
    return s;
  }

  json order_body(const Shop& s, std::int64_t quantity, const std::string& token,
                  std::int64_t points = 300) {
    return {{"user_id", s.user},
            {"items", {{{"product_id", s.product}, {"quantity", quantity}}}},
            {"user_coupon_id", s.user_coupon},
            {"points", points},
            {"shipping", 100},
            {"payment", {{"token", token}, {"installments", 2}}}};
  }

  std::int64_t place(const json& body, const std::string& key = "") {
    std::map<std::string, std::string> headers;
    if (!key.empty()) headers["Idempotency-Key"] = key;
    auto r = sys_->api("POST", "/v1/orders", body, headers);
    EXPECT_EQ(r.status, 202) << r.body.dump();
    if (r.status != 202) return -1;
    EXPECT_EQ(r.body["status"], "PENDING");
    EXPECT_EQ(r.headers["location"],
              "/v1/orders/" + std::to_string(r.body["order_id"].get<std::int64_t>()));
    return r.body["order_id"].get<std::int64_t>();
  }

  std::string coupon_status(const Shop& s) {
    auto r = sys_->api("GET", "/v1/users/" + std::to_string(s.user) + "/coupons");
    for (const auto& c : r.body) {
      if (c["user_coupon_id"] == s.user_coupon) return c["status"];
    }
    return "MISSING";
  }

  json payment(std::int64_t order) {
    auto r = sys_->admin("GET", "/v1/payments/" + std::to_string(order));
    return r.status == 200 ? r.body : json();
  }

  /// Runs one order expected to fail with `reason` and checks every daemon's state.
  void expect_failure_compensated(const std::string& token, std::int64_t quantity,
                                  std::int64_t points, const std::string& reason,
                                  const std::string& payment_status, std::int64_t min_order = 0) {
    auto s = make_shop(min_order);
    const auto id = place(order_body(s, quantity, token, points));
    auto o = sys_->wait_order(id);
    EXPECT_EQ(o["status"], "FAILED") << o.dump();
    EXPECT_EQ(o["failure_reason"], reason) << o.dump();
    EXPECT_EQ(o["paid"], 0);
    EXPECT_EQ(sys_->stock(s.product), 10) << "stock restored";
    EXPECT_EQ(sys_->points(s.user), 500) << "points restored";
    EXPECT_EQ(coupon_status(s), "ISSUED") << "coupon usable again";
    auto p = payment(id);
    if (payment_status.empty()) {
      EXPECT_TRUE(p.is_null() || p["status"] != "CAPTURED") << p.dump();
    } else {
      EXPECT_EQ(p["status"], payment_status) << p.dump();
    }
    // The saga ends just after its order (on the order daemon's reply).
    auto saga = sys_->wait_saga(id);
    EXPECT_EQ(saga["state"], "FAILED") << saga.dump();
    EXPECT_EQ(saga["failure_reason"], reason);
  }

  static System* sys_;
  static inline int counter_ = 0;
};
System* SagaTest::sys_ = nullptr;

TEST_F(SagaTest, HappyPathCompletesEveryStep) {
  auto s = make_shop();
  const auto id = place(order_body(s, 2, "tok_ok", 300));
  auto o = sys_->wait_order(id);
  ASSERT_EQ(o["status"], "COMPLETED") << o.dump();
  // total = 2 x 1000 + 100 shipping; discount 200; points 300.
  EXPECT_EQ(o["subtotal"], 2000);
  EXPECT_EQ(o["shipping"], 100);
  EXPECT_EQ(o["discount"], 200);
  EXPECT_EQ(o["points_used"], 300);
  EXPECT_EQ(o["paid"], 1600);
  EXPECT_FALSE(o.contains("failure_reason") && !o["failure_reason"].is_null());
  EXPECT_EQ(sys_->stock(s.product), 8);
  EXPECT_EQ(sys_->points(s.user), 200);
  EXPECT_EQ(coupon_status(s), "USED");
  auto p = payment(id);
  EXPECT_EQ(p["status"], "CAPTURED");
  EXPECT_EQ(p["amount"], 1600);
  EXPECT_EQ(p["installments"], 2);
  // The ranking learns of the completion from the order daemon afterwards
  // (order -> ranking ring), so it converges shortly after the order.
  std::int64_t units = 0;
  for (int i = 0; i < 250 && units != 2; ++i) {
    auto ranking = sys_->api("GET", "/v1/rankings/bestsellers?days=1&limit=1000");
    ASSERT_EQ(ranking.status, 200);
    for (const auto& row : ranking.body) {
      if (row["product_id"] == s.product) units = row["units"];
    }
    if (units != 2) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(units, 2);
  EXPECT_EQ(sys_->wait_saga(id)["state"], "COMPLETED");
}

TEST_F(SagaTest, OutOfStockCompensatesCoupon) {
  expect_failure_compensated("tok_ok", 11, 300, "OUT_OF_STOCK", "");
}

TEST_F(SagaTest, PaymentDeclinedRestoresStockAndCoupon) {
  expect_failure_compensated("tok_decline", 2, 300, "PAYMENT_DECLINED", "DECLINED");
}

TEST_F(SagaTest, InsufficientPointsVoidsAuthorization) {
  expect_failure_compensated("tok_ok", 2, 600, "INSUFFICIENT_POINTS", "VOIDED");
}

TEST_F(SagaTest, CaptureFailureRestoresPointsAndVoids) {
  expect_failure_compensated("tok_capture_fail", 2, 300, "PAYMENT_CAPTURE_FAILED", "VOIDED");
}

TEST_F(SagaTest, PaymentTimeoutIsVoided) {
  expect_failure_compensated("tok_timeout", 2, 300, "PAYMENT_TIMEOUT", "VOIDED");
}

TEST_F(SagaTest, CouponBelowMinimumOrderIsInvalid) {
  expect_failure_compensated("tok_ok", 1, 0, "COUPON_INVALID", "", 1'000'000);
}

TEST_F(SagaTest, IdempotencyKeyReturnsTheSameOrder) {
  auto s = make_shop();
  const auto body = order_body(s, 1, "tok_ok", 0);
  const auto first = place(body, "key-" + std::to_string(s.user));
  const auto second = place(body, "key-" + std::to_string(s.user));
  EXPECT_EQ(first, second);
  EXPECT_EQ(sys_->wait_order(first)["status"], "COMPLETED");
  EXPECT_EQ(sys_->stock(s.product), 9) << "stock deducted once";
  auto other = order_body(s, 3, "tok_ok", 0);
  auto r = sys_->api("POST", "/v1/orders", other,
                     {{"Idempotency-Key", "key-" + std::to_string(s.user)}});
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(r.body["error"]["code"], "IDEMPOTENCY_KEY_REUSED");
  EXPECT_EQ(sys_->stock(s.product), 9);
}

TEST_F(SagaTest, PreferWaitAnswersThePostWithTheOutcome) {
  // RFC 7240 `Prefer: wait=N`: the POST itself answers once the order is
  // terminal (201 with the order), or with the usual 202 when N runs out.
  auto post = [&](const json& body, const std::string& prefer, const std::string& key) {
    return sys_->api("POST", "/v1/orders", body, {{"Prefer", prefer}, {"Idempotency-Key", key}});
  };
  auto s = make_shop();
  const auto key = "wait-" + std::to_string(s.user);
  auto done = post(order_body(s, 2, "tok_ok", 300), "wait=10", key);
  ASSERT_EQ(done.status, 201) << done.body.dump();
  const auto id = done.body["order_id"].get<std::int64_t>();
  EXPECT_EQ(done.headers["location"], "/v1/orders/" + std::to_string(id));
  EXPECT_EQ(done.headers["preference-applied"], "wait=10");
  EXPECT_EQ(done.body["status"], "COMPLETED") << done.body.dump();
  EXPECT_EQ(done.body, sys_->wait_order(id)) << "the same body as GET /v1/orders/{id}";
  EXPECT_EQ(sys_->stock(s.product), 8);
  // A retry with the key answers with the same order, once, however asked.
  auto again = post(order_body(s, 2, "tok_ok", 300), "respond-async, wait=10", key);
  EXPECT_EQ(again.status, 201);
  EXPECT_EQ(again.body["order_id"], id);
  EXPECT_EQ(sys_->stock(s.product), 8);

  auto declined = make_shop();
  auto failed = post(order_body(declined, 2, "tok_decline", 0), "wait=10",
                     "wait-" + std::to_string(declined.user));
  ASSERT_EQ(failed.status, 201) << failed.body.dump();
  EXPECT_EQ(failed.body["status"], "FAILED");
  EXPECT_EQ(failed.body["failure_reason"], "PAYMENT_DECLINED");
  EXPECT_EQ(sys_->stock(declined.product), 10);

  // tok_timeout takes its payment step's retries (~2 s): a 1 s wait runs out first.
  auto slow = make_shop();
  auto pending =
      post(order_body(slow, 1, "tok_timeout", 0), "wait=1", "wait-" + std::to_string(slow.user));
  ASSERT_EQ(pending.status, 202) << pending.body.dump();
  EXPECT_EQ(pending.body["status"], "PENDING");
  const auto slow_id = pending.body["order_id"].get<std::int64_t>();
  EXPECT_EQ(pending.headers["location"], "/v1/orders/" + std::to_string(slow_id));
  EXPECT_EQ(sys_->wait_order(slow_id)["failure_reason"], "PAYMENT_TIMEOUT");
  // A malformed preference is ignored (RFC 7240): the plain 202.
  auto plain = make_shop();
  auto ignored =
      post(order_body(plain, 1, "tok_ok", 0), "wait=soon", "wait-" + std::to_string(plain.user));
  EXPECT_EQ(ignored.status, 202) << ignored.body.dump();
}

TEST_F(SagaTest, BadInputIsRejectedWithoutStateChange) {
  auto s = make_shop();
  struct Case {
    std::string body;
    int status;
  };
  const std::string user = std::to_string(s.user), product = std::to_string(s.product);
  const std::vector<Case> cases = {
      {"{not json", 400},
      {R"({"user_id":)" + user + R"(,"items":[],"payment":{"token":"tok_ok"}})", 400},
      {R"({"user_id":)" + user + R"(,"items":[{"product_id":)" + product +
           R"(,"quantity":0}],"payment":{"token":"tok_ok"}})",
       400},
      {R"({"user_id":)" + user + R"(,"items":[{"product_id":)" + product +
           R"(,"quantity":"two"}],"payment":{"token":"tok_ok"}})",
       400},
      {R"({"user_id":)" + user +
           R"(,"items":[{"product_id":999999,"quantity":1}],"payment":{"token":"tok_ok"}})",
       404},
      {R"({"user_id":999999,"items":[{"product_id":)" + product +
           R"(,"quantity":1}],"payment":{"token":"tok_ok"}})",
       404},
  };
  http::UnixClient raw(sys_->api_socket());
  for (const auto& c : cases) {
    auto r = raw.request("POST", "/v1/orders", c.body);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, c.status) << c.body << " -> " << r->body;
    auto j = json::parse(r->body, nullptr, false);
    EXPECT_TRUE(j.contains("error") && j["error"].contains("code")) << r->body;
  }
  auto big = raw.request("POST", "/v1/users", std::string(1 << 20, 'x'));
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
  EXPECT_EQ(sys_->stock(s.product), 10);
  EXPECT_EQ(sys_->points(s.user), 500);
  EXPECT_EQ(sys_->api("GET", "/v1/orders/999999").status, 404);
}

TEST_F(SagaTest, CouponIssuanceNeverExceedsQuantity) {
  auto c = sys_->admin("POST", "/v1/coupons",
                       {{"name", "limited"},
                        {"discount_type", "percent"},
                        {"discount_value", 10},
                        {"total_quantity", 3}});
  ASSERT_EQ(c.status, 201);
  const auto coupon = c.body["id"].get<std::int64_t>();
  std::atomic<int> issued{0}, sold_out{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      System& sys = *sys_;
      http::UnixClient client(sys.api_socket());
      http::UnixClient back_office(sys.admin_socket());
      for (int i = 0; i < 5; ++i) {
        auto u = client.request(
            "POST", "/v1/users",
            json{{"name", "c"},
                 {"email", "c" + std::to_string(t) + "-" + std::to_string(i) + "@x.io"}}
                .dump());
        auto uid = json::parse(u->body)["id"].get<std::int64_t>();
        auto r = back_office.request("POST", "/v1/coupons/" + std::to_string(coupon) + "/issue",
                                     json{{"user_id", uid}}.dump());
        if (r && r->status == 201) ++issued;
        if (r && r->status == 409) ++sold_out;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(issued.load(), 3);
  EXPECT_EQ(sold_out.load(), 17);
  auto info = sys_->admin("GET", "/v1/coupons/" + std::to_string(coupon));
  EXPECT_EQ(info.body["issued"], 3);
}

TEST_F(SagaTest, APriceChangeKeepsPlacedOrdersAndAnUnlistedProductIsNoLongerSold) {
  const auto product = sys_->create_product("lamp", 4000, 10, "lighting");
  const auto user = sys_->create_user("catalogue");
  ASSERT_GT(product, 0);
  ASSERT_GT(user, 0);
  const json body = {{"user_id", user},
                     {"items", {{{"product_id", product}, {"quantity", 1}}}},
                     {"payment", {{"token", "tok_ok"}}}};
  // Accepted at 4000, then repriced while the first order runs its saga.
  const auto before = place(body);
  const std::string path = "/v1/products/" + std::to_string(product);
  auto patched = sys_->admin("PATCH", path, {{"price", 4500}, {"name", "Desk lamp"}});
  ASSERT_EQ(patched.status, 200) << patched.text;
  EXPECT_EQ(patched.body["price"], 4500);
  EXPECT_EQ(sys_->wait_order(before)["items"][0]["unit_price"], 4000);
  const auto after = place(body);
  EXPECT_EQ(sys_->wait_order(after)["items"][0]["unit_price"], 4500);
  auto view = sys_->api("GET", path);
  EXPECT_EQ(view.body["name"], "Desk lamp");
  EXPECT_EQ(view.body["category"], "lighting");
  EXPECT_EQ(view.body["listed"], true);
  // Bad changes are 400 and change nothing; an unknown product is 404.
  EXPECT_EQ(sys_->admin("PATCH", path, {{"price", -1}}).status, 400);
  EXPECT_EQ(sys_->admin("PATCH", path, json::object()).status, 400);
  EXPECT_EQ(sys_->admin("PATCH", path, {{"stock", 3}}).status, 400);
  EXPECT_EQ(sys_->admin("PATCH", "/v1/products/999999", {{"price", 1}}).status, 404);
  EXPECT_EQ(sys_->api("GET", path).body["price"], 4500);
  // The storefront cannot change the catalogue.
  EXPECT_EQ(sys_->api("PATCH", path, {{"price", 1}}).status, 405);
  EXPECT_EQ(sys_->api("DELETE", path).status, 405);

  auto count_in = [&](const std::string& category) {
    auto c = sys_->api("GET", "/v1/categories");
    EXPECT_EQ(c.status, 200);
    for (const auto& row : c.body)
      if (row["category"] == category) return row["products"].get<int>();
    return 0;
  };
  EXPECT_EQ(count_in("lighting"), 1);
  auto deleted = sys_->admin("DELETE", path);
  ASSERT_EQ(deleted.status, 200) << deleted.text;
  EXPECT_EQ(deleted.body["listed"], false);
  EXPECT_EQ(sys_->admin("DELETE", path).status, 200) << "idempotent";
  auto refused = sys_->api("POST", "/v1/orders", body);
  EXPECT_EQ(refused.status, 409);
  EXPECT_EQ(refused.body["error"]["code"], "PRODUCT_UNAVAILABLE");
  // Still readable for past orders, no longer listed.
  view = sys_->api("GET", path);
  EXPECT_EQ(view.status, 200);
  EXPECT_EQ(view.body["listed"], false);
  auto listed = sys_->api("GET", "/v1/products?category=lighting");
  ASSERT_EQ(listed.status, 200);
  for (const auto& p : listed.body["items"]) EXPECT_NE(p["id"], product);
  EXPECT_EQ(sys_->api("GET", "/v1/orders/" + std::to_string(before)).status, 200);
  EXPECT_EQ(count_in("lighting"), 0);
}

TEST_F(SagaTest, AUsersOrdersAreListedNewestFirstWithACursor) {
  const auto product = sys_->create_product("mug", 1200, 2);
  const auto user = sys_->create_user("lister");
  const auto other = sys_->create_user("someone");
  ASSERT_GT(product, 0);
  ASSERT_GT(user, 0);
  ASSERT_GT(other, 0);
  auto place_qty = [&](std::int64_t quantity) {
    const json body = {{"user_id", user},
                       {"items", {{{"product_id", product}, {"quantity", quantity}}}},
                       {"shipping", 300},
                       {"payment", {{"token", "tok_ok"}}}};
    const auto id = place(body);
    EXPECT_FALSE(sys_->wait_order(id).is_null());
    return id;
  };
  const auto first = place_qty(1);
  const auto second = place_qty(5);  // more than is left: FAILED
  const auto third = place_qty(1);
  const std::string list = "/v1/users/" + std::to_string(user) + "/orders";
  auto page1 = sys_->api("GET", list + "?limit=2");
  ASSERT_EQ(page1.status, 200) << page1.text;
  ASSERT_EQ(page1.body["orders"].size(), 2u);
  EXPECT_EQ(page1.body["orders"][0]["order_id"], third);
  EXPECT_EQ(page1.body["orders"][0]["status"], "COMPLETED");
  EXPECT_EQ(page1.body["orders"][0]["item_count"], 1);
  EXPECT_EQ(page1.body["orders"][0]["total"], 1200 + 300);
  EXPECT_EQ(page1.body["orders"][0]["paid"], 1200 + 300);
  EXPECT_EQ(page1.body["orders"][1]["order_id"], second);
  EXPECT_EQ(page1.body["orders"][1]["status"], "FAILED");
  EXPECT_EQ(page1.body["orders"][1]["failure_reason"], "OUT_OF_STOCK");
  EXPECT_EQ(page1.body["orders"][1]["item_count"], 5);
  EXPECT_EQ(page1.body["orders"][1]["paid"], 0);
  EXPECT_EQ(page1.body["next_cursor"], second);
  auto page2 = sys_->api("GET", list + "?limit=2&cursor=" + std::to_string(second));
  ASSERT_EQ(page2.status, 200);
  ASSERT_EQ(page2.body["orders"].size(), 1u);
  EXPECT_EQ(page2.body["orders"][0]["order_id"], first);
  EXPECT_TRUE(page2.body["next_cursor"].is_null());
  // Another user's list holds none of them; an unknown user is 404; bad paging is 400.
  auto theirs = sys_->api("GET", "/v1/users/" + std::to_string(other) + "/orders");
  EXPECT_EQ(theirs.status, 200);
  EXPECT_TRUE(theirs.body["orders"].empty());
  EXPECT_EQ(sys_->api("GET", "/v1/users/999999/orders").status, 404);
  EXPECT_EQ(sys_->api("GET", list + "?limit=0").status, 400);
  EXPECT_EQ(sys_->api("GET", list + "?limit=101").status, 400);
  EXPECT_EQ(sys_->api("GET", list + "?cursor=-1").status, 400);
}

TEST_F(SagaTest, TwoHundredConcurrentIssuesByTwentyUsersStopAtEachUsersLimit) {
  // 100 units, at most 2 per user: 20 users asking 10 times each get exactly 40.
  auto c = sys_->admin("POST", "/v1/coupons",
                       {{"name", "two each"},
                        {"discount_type", "fixed"},
                        {"discount_value", 100},
                        {"total_quantity", 100},
                        {"per_user_limit", 2}});
  ASSERT_EQ(c.status, 201) << c.body.dump();
  const auto coupon = c.body["id"].get<std::int64_t>();
  std::vector<std::int64_t> users;
  for (int i = 0; i < 20; ++i) users.push_back(sys_->create_user("limit" + std::to_string(i)));
  std::atomic<int> issued{0}, limited{0}, other{0};
  std::atomic<int> next{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      http::UnixClient back_office(sys_->admin_socket());
      for (int i = next++; i < 200; i = next++) {
        auto r = back_office.request("POST", "/v1/coupons/" + std::to_string(coupon) + "/issue",
                                     json{{"user_id", users[i % 20]}}.dump());
        if (r && r->status == 201) {
          ++issued;
        } else if (r && r->status == 409 &&
                   json::parse(r->body)["error"]["code"] == "COUPON_USER_LIMIT") {
          ++limited;
        } else {
          ++other;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(issued.load(), 40);
  EXPECT_EQ(limited.load(), 160);
  EXPECT_EQ(other.load(), 0);
  for (auto user : users) {
    auto held = sys_->api("GET", "/v1/users/" + std::to_string(user) + "/coupons");
    ASSERT_EQ(held.status, 200);
    int of_this = 0;
    for (const auto& uc : held.body) of_this += uc["coupon_id"] == coupon ? 1 : 0;
    EXPECT_EQ(of_this, 2) << "user " << user;
  }
  auto info = sys_->admin("GET", "/v1/coupons/" + std::to_string(coupon));
  EXPECT_EQ(info.body["issued"], 40);
  EXPECT_EQ(info.body["remaining"], 60);
  EXPECT_EQ(info.body["per_user_limit"], 2);
  // Misuse: a limit below 1 is refused and creates nothing.
  auto bad = sys_->admin("POST", "/v1/coupons",
                         {{"name", "none"},
                          {"discount_type", "fixed"},
                          {"discount_value", 100},
                          {"total_quantity", 5},
                          {"per_user_limit", 0}});
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.body["error"]["code"], "INVALID_ARGUMENT");
  EXPECT_EQ(sys_->admin("GET", "/v1/coupons/" + std::to_string(coupon + 1)).status, 404);
}

TEST_F(SagaTest, TwoHundredConcurrentOrdersForFiftyUnits) {
  const auto product = sys_->create_product("hot item", 500, 50);
  ASSERT_GT(product, 0);
  std::vector<std::int64_t> users;
  for (int i = 0; i < 200; ++i) users.push_back(sys_->create_user("rush" + std::to_string(i)));
  std::vector<std::int64_t> orders(200, -1);
  std::vector<std::thread> threads;
  std::atomic<int> next{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      http::UnixClient client(sys_->api_socket());
      for (int i; (i = next++) < 200;) {
        json body = {{"user_id", users[i]},
                     {"items", {{{"product_id", product}, {"quantity", 1}}}},
                     {"payment", {{"token", "tok_ok"}}}};
        auto r = client.request("POST", "/v1/orders", body.dump());
        if (r && r->status == 202) orders[i] = json::parse(r->body)["order_id"].get<std::int64_t>();
      }
    });
  }
  for (auto& t : threads) t.join();
  int completed = 0, out_of_stock = 0;
  std::map<std::string, int> outcomes;
  for (auto id : orders) {
    ASSERT_GT(id, 0);
    auto o = sys_->wait_order(id);
    if (o["status"] == "COMPLETED") ++completed;
    if (o["status"] == "FAILED" && o["failure_reason"] == "OUT_OF_STOCK") ++out_of_stock;
    ++outcomes[o.value("status", "?") + " " + o.value("failure_reason", "")];
  }
  for (const auto& [outcome, n] : outcomes) std::printf("outcome %s: %d\n", outcome.c_str(), n);
  EXPECT_EQ(completed, 50);
  EXPECT_EQ(out_of_stock, 150);
  EXPECT_EQ(sys_->stock(product), 0);
}

}  // namespace
}  // namespace ringmart::test
