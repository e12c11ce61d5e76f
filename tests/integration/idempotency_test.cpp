// Idempotency-Key on every mutating route of the real system: a retry gets
// the first answer and changes nothing, another body under the key is 409,
// and a points charge retried through SIGKILLs of the user daemon (and of the
// gateway) is applied exactly once.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <map>
#include <string>
#include <thread>

#include "testkit/eventually.hpp"
#include "tests/integration/system.hpp"

namespace ringmart::test {
namespace {

using testkit::eventually;

// A back-office request with an Idempotency-Key.
HttpResult keyed(System& sys, const std::string& method, const std::string& target,
                 const json& body, const std::string& key) {
  return sys.admin(method, target, body, {{"Idempotency-Key", key}});
}

TEST(Idempotency, EveryMutatingRouteAnswersARetryFromItsKeyAndAppliesItOnce) {
  System sys;
  ASSERT_TRUE(sys.start());
  // POST /v1/users (api.sock)
  const json alice = {{"name", "alice"}, {"email", "alice@example.com"}};
  auto u1 = sys.api("POST", "/v1/users", alice, {{"Idempotency-Key", "signup-1"}});
  auto u2 = sys.api("POST", "/v1/users", alice, {{"Idempotency-Key", "signup-1"}});
  ASSERT_EQ(u1.status, 201) << u1.text;
  EXPECT_EQ(u2.status, 201) << u2.text;
  EXPECT_EQ(u1.body["id"], u2.body["id"]);
  const auto user = u1.body["id"].get<std::int64_t>();
  EXPECT_EQ(sys.create_user("next"), user + 1) << "the retry created a user";
  const auto other = sys.api("POST", "/v1/users", {{"name", "bob"}, {"email", "bob@example.com"}},
                             {{"Idempotency-Key", "signup-1"}});
  EXPECT_EQ(other.status, 409);
  EXPECT_EQ(other.body["error"]["code"], "IDEMPOTENCY_KEY_REUSED");

  // POST /v1/users/{id}/points/charge
  const std::string charge = "/v1/users/" + std::to_string(user) + "/points/charge";
  for (int i = 0; i < 3; ++i) {
    auto r = keyed(sys, "POST", charge, {{"amount", 700}}, "charge-1");
    EXPECT_EQ(r.status, 200) << r.text;
    EXPECT_EQ(r.body["balance"], 700);
  }
  EXPECT_EQ(sys.points(user), 700);
  // Member order and spacing do not make another request; another amount does.
  EXPECT_EQ(keyed(sys, "POST", charge, json::parse(R"({ "amount" : 700 })"), "charge-1").status,
            200);
  auto reused = keyed(sys, "POST", charge, {{"amount", 800}}, "charge-1");
  EXPECT_EQ(reused.status, 409);
  EXPECT_EQ(reused.body["error"]["code"], "IDEMPOTENCY_KEY_REUSED");
  EXPECT_EQ(sys.points(user), 700);
  // The same key for another user's charge is that user's own request.
  const auto second = user + 1;
  auto theirs = keyed(sys, "POST", "/v1/users/" + std::to_string(second) + "/points/charge",
                      {{"amount", 50}}, "charge-1");
  EXPECT_EQ(theirs.status, 200) << theirs.text;
  EXPECT_EQ(sys.points(second), 50);
  // A malformed key changes nothing.
  auto bad = keyed(sys, "POST", charge, {{"amount", 1}}, std::string(300, 'k'));
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(sys.points(user), 700);

  // POST /v1/products and PATCH /v1/products/{id}/stock
  const json lamp = {{"name", "lamp"}, {"category", "home"}, {"price", 1500}, {"stock", 5}};
  auto p1 = keyed(sys, "POST", "/v1/products", lamp, "product-1");
  auto p2 = keyed(sys, "POST", "/v1/products", lamp, "product-1");
  ASSERT_EQ(p1.status, 201) << p1.text;
  EXPECT_EQ(p1.body["id"], p2.body["id"]);
  const auto product = p1.body["id"].get<std::int64_t>();
  const std::string stock = "/v1/products/" + std::to_string(product) + "/stock";
  for (int i = 0; i < 3; ++i) {
    auto r = keyed(sys, "PATCH", stock, {{"delta", 4}}, "restock-1");
    EXPECT_EQ(r.status, 200) << r.text;
    EXPECT_EQ(r.body["stock"], 9);
  }
  EXPECT_EQ(sys.stock(product), 9);
  // A failed command's answer is kept too: the retry gets the same 409.
  auto negative = keyed(sys, "PATCH", stock, {{"delta", -100}}, "restock-2");
  EXPECT_EQ(negative.status, 409);
  EXPECT_EQ(keyed(sys, "PATCH", stock, {{"delta", -100}}, "restock-2").body, negative.body);
  EXPECT_EQ(sys.stock(product), 9);

  // POST /v1/coupons and POST /v1/coupons/{id}/issue
  const json coupon_body = {{"name", "5 off"},
                            {"discount_type", "fixed"},
                            {"discount_value", 500},
                            {"total_quantity", 10},
                            {"per_user_limit", 3}};
  auto c1 = keyed(sys, "POST", "/v1/coupons", coupon_body, "coupon-1");
  auto c2 = keyed(sys, "POST", "/v1/coupons", coupon_body, "coupon-1");
  ASSERT_EQ(c1.status, 201) << c1.text;
  EXPECT_EQ(c1.body["id"], c2.body["id"]);
  const auto coupon = c1.body["id"].get<std::int64_t>();
  const std::string issue = "/v1/coupons/" + std::to_string(coupon) + "/issue";
  auto i1 = keyed(sys, "POST", issue, {{"user_id", user}}, "issue-1");
  auto i2 = keyed(sys, "POST", issue, {{"user_id", user}}, "issue-1");
  ASSERT_EQ(i1.status, 201) << i1.text;
  EXPECT_EQ(i1.body["user_coupon_id"], i2.body["user_coupon_id"]);
  EXPECT_EQ(sys.admin("GET", "/v1/coupons/" + std::to_string(coupon)).body["issued"], 1);
  EXPECT_TRUE(sys.stop());
}

TEST(Idempotency, AChargeRetriedThroughKillsOfTheUserDaemonAndTheGatewayIsAppliedOnce) {
  // Short command timeouts: the client learns fast that its answer is late.
  System sys("[gateway]\ncommand_timeout_ms = 300\n");
  ASSERT_TRUE(sys.start());
  const auto user = sys.create_user("retrier");
  ASSERT_GT(user, 0);
  const std::string charge = "/v1/users/" + std::to_string(user) + "/points/charge";
  constexpr int kCharges = 12;
  constexpr std::int64_t kAmount = 25;
  std::map<std::string, int> answers;  // "504", "409 IDEMPOTENCY_KEY_IN_USE", ...
  auto retry_until_answered = [&](const std::string& key) {
    HttpResult r;
    const bool ok = eventually(
        [&] {
          r = keyed(sys, "POST", charge, {{"amount", kAmount}}, key);
          ++answers[std::to_string(r.status) +
                    (r.body.is_object() && r.body.contains("error")
                         ? " " + r.body["error"]["code"].get<std::string>()
                         : "")];
          return r.status == 200;
        },
        30000);
    EXPECT_TRUE(ok) << key << ": last answer " << r.status << " " << r.text;
    return r;
  };
  for (int i = 0; i < kCharges; ++i) {
    const std::string key = "charge-" + std::to_string(i);
    ASSERT_TRUE(sys.wait_healthy(20000)) << "after charge " << i - 1;  // every daemon back
    const auto user_daemon = sys.daemon_pid("user");
    ASSERT_GT(user_daemon, 0);
    if (i % 3 == 2) {
      // Killed at any moment around the request.
      std::thread killer([&, i] {
        std::this_thread::sleep_for(std::chrono::microseconds(300 * (i % 4)));
        ::kill(user_daemon, SIGKILL);
      });
      retry_until_answered(key);
      killer.join();
      // The kill may land after the answer: wait for the next user daemon.
      ASSERT_TRUE(eventually(
          [&] { return sys.daemon_pid("user") > 0 && sys.daemon_pid("user") != user_daemon; },
          20000));
    } else {
      // The command is queued while the user daemon is frozen, so the client's
      // first request times out; then the user daemon (i % 3 == 0) or the
      // gateway (i % 3 == 1) is killed before the command is applied.
      ::kill(user_daemon, SIGSTOP);
      const auto first = keyed(sys, "POST", charge, {{"amount", kAmount}}, key);
      ++answers[std::to_string(first.status)];
      EXPECT_EQ(first.status, 504) << first.text;
      if (i % 3 == 0) {
        ::kill(user_daemon, SIGKILL);
      } else {
        ::kill(sys.daemon_pid("gateway"), SIGKILL);
        ::kill(user_daemon, SIGCONT);
      }
      retry_until_answered(key);
    }
    // Retried once more after the answer: the same balance, nothing applied.
    const auto again = keyed(sys, "POST", charge, {{"amount", kAmount}}, key);
    EXPECT_EQ(again.status, 200) << again.text;
    EXPECT_EQ(again.body["balance"], (i + 1) * kAmount);
  }
  ASSERT_TRUE(eventually([&] { return sys.wait_healthy(1000); }, 20000));
  EXPECT_EQ(sys.points(user), kCharges * kAmount);
  std::string seen;
  for (const auto& [answer, n] : answers) seen += answer + " x" + std::to_string(n) + "; ";
  std::printf("answers while retrying: %s\n", seen.c_str());
  // The paths this test is about were taken.
  EXPECT_GE(answers["504"], kCharges / 3) << seen;
  EXPECT_GE(answers["409 IDEMPOTENCY_KEY_IN_USE"], 1) << seen;
  EXPECT_TRUE(sys.stop());
}

}  // namespace
}  // namespace ringmart::test
