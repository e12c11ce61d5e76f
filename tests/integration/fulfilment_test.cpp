// Fulfilment on the real system: a paid order is shipped and delivered from
// the back office, each transition lands in the order's history, and what
// its status does not allow is 409 and changes nothing.
#include <gtest/gtest.h>

#include <string>

#include "tests/integration/system.hpp"

namespace ringmart::test {
namespace {

TEST(Fulfilment, APaidOrderIsShippedThenDeliveredAndEveryStepIsInItsHistory) {
  System sys;
  ASSERT_TRUE(sys.start());
  const auto product = sys.create_product("kettle", 8900, 5);
  const auto user = sys.create_user("shopper");
  ASSERT_GT(product, 0);
  ASSERT_GT(user, 0);
  auto place = [&](const char* token) {
    return sys.api("POST", "/v1/orders",
                   {{"user_id", user},
                    {"items", {{{"product_id", product}, {"quantity", 1}}}},
                    {"payment", {{"token", token}}}},
                   {{"Prefer", "wait=10"}});
  };
  auto paid = place("tok_ok");
  ASSERT_EQ(paid.status, 201) << paid.text;
  ASSERT_EQ(paid.body["status"], "COMPLETED");
  EXPECT_TRUE(paid.body["shipment"].is_null());
  const auto id = paid.body["order_id"].get<std::int64_t>();
  const std::string path = "/v1/orders/" + std::to_string(id);
  auto declined = place("tok_decline");
  ASSERT_EQ(declined.body["status"], "FAILED") << declined.text;
  const std::string failed_path = "/v1/orders/" + declined.body["order_id"].dump();

  const json shipment = {{"carrier", "Correios"}, {"tracking_number", "BR123456789"}};
  // What the order's status or the request does not allow: 4xx, nothing changes.
  EXPECT_EQ(sys.admin("POST", path + "/shipments", {{"carrier", "Correios"}}).status, 400);
  EXPECT_EQ(
      sys.admin("POST", path + "/shipments", {{"carrier", ""}, {"tracking_number", "x"}}).status,
      400);
  auto unknown = sys.admin("POST", "/v1/orders/999999/shipments", shipment);
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(error_code(unknown), "ORDER_NOT_FOUND");
  auto unpaid = sys.admin("POST", failed_path + "/shipments", shipment);
  EXPECT_EQ(unpaid.status, 409) << unpaid.text;
  EXPECT_EQ(error_code(unpaid), "ORDER_STATE_CONFLICT");
  auto early = sys.admin("POST", path + "/delivered");
  EXPECT_EQ(early.status, 409);
  EXPECT_EQ(error_code(early), "ORDER_STATE_CONFLICT");
  EXPECT_EQ(sys.api("POST", path + "/shipments", shipment).status, 404) << "admin.sock only";
  EXPECT_EQ(sys.admin("GET", path).body["status"], "COMPLETED");

  auto shipped = sys.admin("POST", path + "/shipments", shipment);
  ASSERT_EQ(shipped.status, 201) << shipped.text;
  EXPECT_EQ(shipped.body["status"], "SHIPPED");
  EXPECT_EQ(sys.admin("POST", path + "/shipments", shipment).status, 201) << "a repeat";
  auto other =
      sys.admin("POST", path + "/shipments", {{"carrier", "DHL"}, {"tracking_number", "JD0001"}});
  EXPECT_EQ(other.status, 409);
  auto view = sys.api("GET", path);
  ASSERT_EQ(view.status, 200);
  EXPECT_EQ(view.body["status"], "SHIPPED");
  EXPECT_EQ(view.body["shipment"]["carrier"], "Correios");
  EXPECT_EQ(view.body["shipment"]["tracking_number"], "BR123456789");
  EXPECT_TRUE(view.body["shipment"]["delivered_at_ms"].is_null());
  EXPECT_EQ(view.body["paid"], paid.body["paid"]) << "shipping moves no money";

  auto delivered = sys.admin("POST", path + "/delivered");
  ASSERT_EQ(delivered.status, 200) << delivered.text;
  EXPECT_EQ(delivered.body["status"], "DELIVERED");
  EXPECT_EQ(sys.admin("POST", path + "/delivered").status, 200) << "a repeat";
  EXPECT_EQ(sys.admin("POST", path + "/shipments", shipment).status, 409);
  view = sys.api("GET", path);
  EXPECT_EQ(view.body["status"], "DELIVERED");
  EXPECT_GE(view.body["shipment"]["delivered_at_ms"].get<std::int64_t>(),
            view.body["shipment"]["shipped_at_ms"].get<std::int64_t>());

  auto history = sys.api("GET", path + "/history");
  ASSERT_EQ(history.status, 200) << history.text;
  ASSERT_EQ(history.body["history"].size(), 4u) << history.text;
  const char* expected[] = {"PENDING", "COMPLETED", "SHIPPED", "DELIVERED"};
  std::int64_t last = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(history.body["history"][i]["status"], expected[i]);
    const auto at = history.body["history"][i]["at_ms"].get<std::int64_t>();
    EXPECT_GE(at, last);
    last = at;
  }
  auto failed_history = sys.api("GET", failed_path + "/history");
  ASSERT_EQ(failed_history.status, 200);
  EXPECT_EQ(failed_history.body["history"].back()["status"], "FAILED");
  EXPECT_EQ(sys.api("GET", "/v1/orders/999999/history").status, 404);
  auto list = sys.api("GET", "/v1/users/" + std::to_string(user) + "/orders");
  ASSERT_EQ(list.status, 200);
  EXPECT_EQ(list.body["orders"][1]["status"], "DELIVERED") << list.text;  // newest first
}

TEST(Fulfilment, AnOrdersHistoryIsItsCustomersOnlyInTokenMode) {
  System sys("[gateway]\ncustomer_auth = \"token\"\n");
  ASSERT_TRUE(sys.start());
  const auto product = sys.create_product("cup", 500, 5);
  std::string tokens[2];
  for (int i = 0; i < 2; ++i) {
    const std::string email = "c" + std::to_string(i) + "@example.com";
    ASSERT_EQ(sys.api("POST", "/v1/users",
                      {{"name", "c"}, {"email", email}, {"password", "password-" + email}})
                  .status,
              201);
    auto s = sys.api("POST", "/v1/sessions", {{"email", email}, {"password", "password-" + email}});
    ASSERT_EQ(s.status, 201);
    tokens[i] = s.body["token"].get<std::string>();
  }
  auto placed = sys.api(
      "POST", "/v1/orders",
      {{"items", {{{"product_id", product}, {"quantity", 1}}}}, {"payment", {{"token", "tok_ok"}}}},
      {{"Authorization", "Bearer " + tokens[0]}, {"Prefer", "wait=10"}});
  ASSERT_EQ(placed.status, 201) << placed.text;
  const std::string history = "/v1/orders/" + placed.body["order_id"].dump() + "/history";
  EXPECT_EQ(sys.api("GET", history, nullptr, {{"Authorization", "Bearer " + tokens[0]}}).status,
            200);
  auto theirs = sys.api("GET", history, nullptr, {{"Authorization", "Bearer " + tokens[1]}});
  EXPECT_EQ(theirs.status, 404);
  EXPECT_EQ(error_code(theirs), "ORDER_NOT_FOUND");
  EXPECT_EQ(sys.api("GET", history).status, 401);
}

}  // namespace
}  // namespace ringmart::test
