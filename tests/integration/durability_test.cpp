// Both durability settings on the real system: orders complete, and after a
// SIGKILL of the whole process tree (supervisor first, children by
// PDEATHSIG) everything acknowledged before is still there.
#include <gtest/gtest.h>

#include "tests/integration/system.hpp"

namespace ringmart::test {
namespace {

class Durability : public ::testing::TestWithParam<std::string> {};

TEST_P(Durability, AcknowledgedStateSurvivesKillingEveryProcess) {
  System sys("", GetParam());
  ASSERT_TRUE(sys.start());
  const auto product = sys.create_product("durable", 1200, 20);
  ASSERT_GT(product, 0);
  std::vector<std::int64_t> orders;
  for (int i = 0; i < 10; ++i) {
    const auto user = sys.create_user("d" + std::to_string(i));
    ASSERT_GT(user, 0);
    auto r = sys.api("POST", "/v1/orders",
                     {{"user_id", user},
                      {"items", {{{"product_id", product}, {"quantity", 1}}}},
                      {"payment", {{"token", "tok_ok"}}}});
    ASSERT_EQ(r.status, 202);
    orders.push_back(r.body["order_id"].get<std::int64_t>());
  }
  for (auto id : orders) ASSERT_EQ(sys.wait_order(id)["status"], "COMPLETED");
  EXPECT_EQ(sys.stock(product), 10);

  sys.kill_supervisor();
  ASSERT_TRUE(sys.start());
  EXPECT_EQ(sys.stock(product), 10);
  for (auto id : orders) {
    auto o = sys.api("GET", "/v1/orders/" + std::to_string(id));
    EXPECT_EQ(o.body["status"], "COMPLETED") << id;
  }
  // The system keeps working after the restart.
  const auto user = sys.create_user("after");
  auto r = sys.api("POST", "/v1/orders",
                   {{"user_id", user},
                    {"items", {{{"product_id", product}, {"quantity", 2}}}},
                    {"payment", {{"token", "tok_ok"}}}});
  ASSERT_EQ(r.status, 202);
  EXPECT_EQ(sys.wait_order(r.body["order_id"].get<std::int64_t>())["status"], "COMPLETED");
  EXPECT_EQ(sys.stock(product), 8);
  EXPECT_TRUE(sys.stop());
}

INSTANTIATE_TEST_SUITE_P(Modes, Durability, ::testing::Values("process", "fsync"));

}  // namespace
}  // namespace ringmart::test
