// Unit tests of the gateway's pure parts: request validation, code -> HTTP
// mapping, health/metrics rendering, and the intake tables on a real LMDB env.
#include "daemons/gateway/gateway.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "daemons/gateway/credentials.hpp"
#include "daemons/gateway/intake_store.hpp"
#include "daemons/gateway/requests.hpp"
#include "daemons/gateway/status_report.hpp"

namespace ringmart::gateway {
namespace {

using nlohmann::json;

const char* kValidOrder = R"({"user_id": 1, "items": [{"product_id": 7, "quantity": 2}],
  "user_coupon_id": 3, "points": 500, "shipping": 1329,
  "payment": {"token": "tok_ok", "installments": 3}})";

json valid_order() { return json::parse(kValidOrder); }

// Expects `body` to be rejected with 400 INVALID_ARGUMENT.
void ExpectRejected(const json& body) {
  auto r = parse_order_request(body.dump());
  ASSERT_FALSE(r.has_value()) << body.dump();
  EXPECT_EQ(r.error().status, 400);
  EXPECT_EQ(r.error().code, "INVALID_ARGUMENT");
  EXPECT_FALSE(r.error().message.empty());
}

TEST(OrderRequest, ParsesTheDocumentedExample) {
  auto r = parse_order_request(kValidOrder);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->user_id, 1u);
  ASSERT_EQ(r->items.size(), 1u);
  EXPECT_EQ(r->items[0].product_id, 7u);
  EXPECT_EQ(r->items[0].quantity, 2);
  EXPECT_EQ(r->user_coupon_id, 3u);
  EXPECT_EQ(r->points, 500);
  EXPECT_EQ(r->shipping_cents, 1329);
  EXPECT_EQ(r->payment_token, "tok_ok");
  EXPECT_EQ(r->installments, 3u);
}

TEST(OrderRequest, AppliesDefaultsForOptionalMembers) {
  auto r = parse_order_request(
      R"({"user_id":5,"items":[{"product_id":1,"quantity":1}],"payment":{"token":"t"}})");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->user_coupon_id, 0u);
  EXPECT_EQ(r->points, 0);
  EXPECT_EQ(r->shipping_cents, 0);
  EXPECT_EQ(r->installments, 1u);
}

TEST(OrderRequest, TreatsNullOptionalMembersAsAbsent) {
  auto body = valid_order();
  body["user_coupon_id"] = nullptr;
  body["points"] = nullptr;
  body["payment"]["installments"] = nullptr;
  auto r = parse_order_request(body.dump());
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->user_coupon_id, 0u);
  EXPECT_EQ(r->points, 0);
  EXPECT_EQ(r->installments, 1u);
}

TEST(OrderRequest, RejectsMalformedJson) {
  for (const char* body : {"", "{", "[]", "42", "\"x\"", "{\"user_id\":1,}"}) {
    auto r = parse_order_request(body);
    ASSERT_FALSE(r.has_value()) << body;
    EXPECT_EQ(r.error().status, 400);
  }
}

TEST(OrderRequest, RejectsWrongTypes) {
  auto b = valid_order();
  b["user_id"] = "1";
  ExpectRejected(b);
  b = valid_order();
  b["user_id"] = 1.5;
  ExpectRejected(b);
  b = valid_order();
  b["user_id"] = true;
  ExpectRejected(b);
  b = valid_order();
  b["items"] = json::object();
  ExpectRejected(b);
  b = valid_order();
  b["items"][0]["quantity"] = "2";
  ExpectRejected(b);
  b = valid_order();
  b["items"][0] = 7;
  ExpectRejected(b);
  b = valid_order();
  b["points"] = 1.0;
  ExpectRejected(b);
  b = valid_order();
  b["payment"] = "tok_ok";
  ExpectRejected(b);
  b = valid_order();
  b["payment"]["token"] = 1;
  ExpectRejected(b);
  b = valid_order();
  b["user_coupon_id"] = -3;
  ExpectRejected(b);
}

TEST(OrderRequest, RejectsMissingRequiredMembers) {
  for (const char* name : {"user_id", "items", "payment"}) {
    auto b = valid_order();
    b.erase(name);
    ExpectRejected(b);
  }
  auto b = valid_order();
  b["payment"].erase("token");
  ExpectRejected(b);
  b = valid_order();
  b["items"][0].erase("quantity");
  ExpectRejected(b);
  b = valid_order();
  b["items"][0].erase("product_id");
  ExpectRejected(b);
}

TEST(OrderRequest, RejectsUnknownMembers) {
  auto b = valid_order();
  b["point"] = 5;
  ExpectRejected(b);
  b = valid_order();
  b["items"][0]["price"] = 5;
  ExpectRejected(b);
  b = valid_order();
  b["payment"]["cvv"] = "123";
  ExpectRejected(b);
}

TEST(OrderRequest, EnforcesQuantityRange) {
  auto b = valid_order();
  b["items"][0]["quantity"] = 0;
  ExpectRejected(b);
  b["items"][0]["quantity"] = -1;
  ExpectRejected(b);
  b["items"][0]["quantity"] = kMaxLineQuantity + 1;
  ExpectRejected(b);
  b["items"][0]["quantity"] = kMaxLineQuantity;
  EXPECT_TRUE(parse_order_request(b.dump()).has_value());
  b["items"][0]["quantity"] = 1;
  EXPECT_TRUE(parse_order_request(b.dump()).has_value());
}

TEST(OrderRequest, EnforcesLineCountAndUniqueProducts) {
  auto b = valid_order();
  b["items"] = json::array();
  ExpectRejected(b);
  for (std::size_t i = 1; i <= kMaxOrderLines; ++i) {
    b["items"].push_back({{"product_id", i}, {"quantity", 1}});
  }
  EXPECT_TRUE(parse_order_request(b.dump()).has_value());
  b["items"].push_back({{"product_id", kMaxOrderLines + 1}, {"quantity", 1}});
  ExpectRejected(b);

  b = valid_order();
  b["items"].push_back({{"product_id", 7}, {"quantity", 1}});
  ExpectRejected(b);
}

TEST(OrderRequest, RejectsZeroIdsAndNegativeAmounts) {
  auto b = valid_order();
  b["user_id"] = 0;
  ExpectRejected(b);
  b = valid_order();
  b["items"][0]["product_id"] = 0;
  ExpectRejected(b);
  b = valid_order();
  b["points"] = -1;
  ExpectRejected(b);
  b = valid_order();
  b["shipping"] = -1;
  ExpectRejected(b);
  b = valid_order();
  b["points"] = 0;
  b["shipping"] = 0;
  EXPECT_TRUE(parse_order_request(b.dump()).has_value());
}

TEST(OrderRequest, EnforcesTokenAndInstallments) {
  auto b = valid_order();
  b["payment"]["token"] = "";
  ExpectRejected(b);
  b = valid_order();
  b["payment"]["token"] = std::string(kMaxPaymentTokenBytes + 1, 'x');
  ExpectRejected(b);
  b = valid_order();
  b["payment"]["installments"] = 0;
  ExpectRejected(b);
  b["payment"]["installments"] = 25;
  ExpectRejected(b);
  b["payment"]["installments"] = 24;
  EXPECT_TRUE(parse_order_request(b.dump()).has_value());
}

TEST(OrderRequest, HashIgnoresFormattingAndDefaults) {
  auto a = parse_order_request(
      R"({"user_id":5,"items":[{"product_id":1,"quantity":1}],"payment":{"token":"t"}})");
  auto b = parse_order_request(
      R"({ "payment": {"installments": 1, "token": "t"}, "points": 0, "shipping": 0,
           "items": [ {"quantity": 1, "product_id": 1} ], "user_id": 5 })");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(order_request_hash(*a), order_request_hash(*b));

  auto c = *a;
  c.items[0].quantity = 2;
  EXPECT_NE(order_request_hash(*a), order_request_hash(c));
  c = *a;
  c.payment_token = "u";
  EXPECT_NE(order_request_hash(*a), order_request_hash(c));
  c = *a;
  c.user_coupon_id = 9;
  EXPECT_NE(order_request_hash(*a), order_request_hash(c));
}

TEST(OrderRequest, SubtotalIncludesEveryLineAndDetectsOverflow) {
  auto r = parse_order_request(
      R"({"user_id":1,"items":[{"product_id":1,"quantity":2},{"product_id":2,"quantity":3}],
          "shipping":100,"payment":{"token":"t"}})");
  ASSERT_TRUE(r.has_value());
  auto s = order_subtotal(*r, {5890, 10});
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(*s, 2 * 5890 + 3 * 10);

  auto huge = order_subtotal(*r, {std::numeric_limits<std::int64_t>::max() / 2, 1});
  ASSERT_FALSE(huge.has_value());
  EXPECT_EQ(huge.error().status, 400);
}

TEST(IdempotencyKey, AcceptsVisibleAsciiUpToTheLimit) {
  EXPECT_TRUE(check_idempotency_key("order-42_retry.1").has_value());
  EXPECT_TRUE(check_idempotency_key(std::string(kMaxIdempotencyKeyBytes, 'k')).has_value());
  EXPECT_FALSE(check_idempotency_key("").has_value());
  EXPECT_FALSE(check_idempotency_key(std::string(kMaxIdempotencyKeyBytes + 1, 'k')).has_value());
  EXPECT_FALSE(check_idempotency_key("with space").has_value());
  EXPECT_FALSE(check_idempotency_key("tab\there").has_value());
  EXPECT_FALSE(check_idempotency_key("caf\xc3\xa9").has_value());
}

TEST(OtherBodies, ValidateTypesAndRanges) {
  EXPECT_TRUE(parse_register_user(R"({"name":"Ann","email":"a@x"})").has_value());
  EXPECT_FALSE(parse_register_user(R"({"name":1,"email":"a@x"})").has_value());
  EXPECT_FALSE(parse_register_user(R"({"name":"Ann"})").has_value());

  EXPECT_EQ(parse_charge_points(R"({"amount":10})").value(), 10);
  EXPECT_FALSE(parse_charge_points(R"({"amount":0})").has_value());
  EXPECT_FALSE(parse_charge_points(R"({"amount":"10"})").has_value());

  EXPECT_EQ(parse_issue_coupon(R"({"user_id":4})").value(), 4u);
  EXPECT_FALSE(parse_issue_coupon(R"({"user_id":0})").has_value());

  auto p = parse_create_product(R"({"name":"Mug","category":"kitchen","price":990,"stock":3})");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->price_cents, 990);
  EXPECT_FALSE(parse_create_product(R"({"name":"Mug","category":"k","price":-1,"stock":3})"));
  EXPECT_FALSE(parse_create_product(R"({"name":"Mug","category":"k","price":1.5,"stock":3})"));

  EXPECT_EQ(parse_adjust_stock(R"({"delta":-5})").value(), -5);
  EXPECT_FALSE(parse_adjust_stock(R"({})").has_value());

  auto c = parse_create_coupon(
      R"({"name":"TEN","discount_type":"percent","discount_value":10,"total_quantity":5,
          "min_order":1000,"expires_at":1900000000})");
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->discount_type, msg::DiscountType::PERCENT);
  EXPECT_EQ(c->min_order_cents, 1000);
  EXPECT_EQ(c->expires_at_s, 1900000000);
  EXPECT_FALSE(parse_create_coupon(
      R"({"name":"X","discount_type":"percent","discount_value":101,"total_quantity":5})"));
  EXPECT_FALSE(parse_create_coupon(
      R"({"name":"X","discount_type":"fixed","discount_value":0,"total_quantity":5})"));
  EXPECT_FALSE(parse_create_coupon(
      R"({"name":"X","discount_type":"bogus","discount_value":1,"total_quantity":5})"));
  EXPECT_FALSE(parse_create_coupon(
      R"({"name":"X","discount_type":"fixed","discount_value":1,"total_quantity":0})"));
  EXPECT_EQ(c->per_user_limit, 1) << "default";
  EXPECT_FALSE(parse_create_coupon(
      R"({"name":"X","discount_type":"fixed","discount_value":1,"total_quantity":5,"per_user_limit":0})"));

  auto u = parse_update_product(R"({"price":1250})");
  ASSERT_TRUE(u.has_value()) << u.error().message;
  EXPECT_EQ(u->price_cents, 1250);
  EXPECT_FALSE(u->name);
  EXPECT_FALSE(u->category);
  auto all = parse_update_product(R"({"name":"Lamp","category":"home","price":0})");
  ASSERT_TRUE(all.has_value());
  EXPECT_EQ(all->name, "Lamp");
  EXPECT_EQ(all->category, "home");
  EXPECT_FALSE(parse_update_product(R"({})"));
  EXPECT_FALSE(parse_update_product(R"({"price":-1})"));
  EXPECT_FALSE(parse_update_product(R"({"stock":3})"));
  EXPECT_FALSE(parse_update_product(R"({"name":""})"));
  EXPECT_FALSE(parse_update_product(R"({"price":"10"})"));
}

TEST(AccountBodies, PasswordsAreBoundedAndNeverQuotedInErrors) {
  const std::string secret = "s3cr";  // too short: the error must not echo it
  auto short_one =
      parse_register_user(R"({"name":"A","email":"a@x","password":")" + secret + R"("})");
  ASSERT_FALSE(short_one);
  EXPECT_EQ(short_one.error().message.find(secret), std::string::npos) << short_one.error().message;
  EXPECT_TRUE(parse_register_user(R"({"name":"A","email":"a@x","password":"12345678"})"));
  EXPECT_TRUE(parse_register_user(R"({"name":"A","email":"a@x","password":null})"));
  EXPECT_FALSE(parse_register_user(R"({"name":"A","email":"a@x","password":12345678})"));
  EXPECT_TRUE(parse_register_user(R"({"name":"A","email":"a@x","password":")" +
                                  std::string(128, 'p') + R"("})"));
  EXPECT_FALSE(parse_register_user(R"({"name":"A","email":"a@x","password":")" +
                                   std::string(129, 'p') + R"("})"));
  auto guest = parse_register_user(R"({"name":"A","email":"a@x"})");
  ASSERT_TRUE(guest);
  EXPECT_FALSE(guest->password);

  auto login = parse_login(R"({"email":"a@x","password":"x"})");
  ASSERT_TRUE(login);
  EXPECT_EQ(login->password, "x");
  EXPECT_FALSE(parse_login(R"({"email":"a@x"})"));
  EXPECT_FALSE(parse_login(R"({"email":"a@x","password":""})"));
  EXPECT_FALSE(parse_login(R"({"email":"a@x","password":"x","remember":true})"));

  EXPECT_FALSE(parse_update_user("{}"));
  EXPECT_FALSE(parse_update_user(R"({"current_password":"x"})")) << "nothing to change";
  auto change = parse_update_user(R"({"email":"b@y","current_password":"old"})");
  ASSERT_TRUE(change);
  EXPECT_EQ(change->email, "b@y");
  EXPECT_EQ(change->current_password, "old");
  EXPECT_FALSE(change->name);
  EXPECT_FALSE(parse_update_user(R"({"email":"no-at"})"));
  EXPECT_FALSE(parse_update_user(R"({"password":"short"})"));

  // An Idempotency-Key's fingerprint keeps nothing derived from a password.
  const auto hash = [](const std::string& body) {
    return command_request_hash("POST", "/v1/users", body);
  };
  EXPECT_EQ(hash(R"({"name":"A","email":"a@x","password":"first-secret"})"),
            hash(R"({"name":"A","email":"a@x","password":"other-secret"})"));
  EXPECT_EQ(hash(R"({"name":"A","email":"a@x","password":"first-secret"})"),
            hash(R"({"name":"A","email":"a@x"})"));
  EXPECT_NE(hash(R"({"name":"A","email":"a@x","password":"first-secret"})"),
            hash(R"({"name":"A","email":"b@x","password":"first-secret"})"));
}

TEST(AccountBodies, AddressesNeedAnAssignedCountryAndPatchesOnlyWhatTheyName) {
  auto full = parse_address(
      R"({"recipient":"Ana","line1":"Rua A 1","city":"Recife","country":"BR","default":true})",
      false);
  ASSERT_TRUE(full) << full.error().message;
  EXPECT_EQ(full->address.country, "BR");
  EXPECT_EQ(full->address.phone, "");
  EXPECT_TRUE(full->make_default);
  EXPECT_EQ(full->mask, user::kAllAddressFields);
  for (const char* country : {"UK", "br", "XX", "BRA", ""}) {
    EXPECT_FALSE(parse_address(
        std::string(R"({"recipient":"Ana","line1":"x","city":"y","country":")") + country + R"("})",
        false))
        << country;
  }
  EXPECT_FALSE(parse_address(R"({"recipient":"Ana","line1":"x","country":"BR"})", false))
      << "city is required";
  EXPECT_FALSE(parse_address(
      R"({"recipient":"Ana","line1":"x","city":"y","country":"BR","phone":"call me"})", false));
  auto patch = parse_address(R"({"city":"Olinda"})", true);
  ASSERT_TRUE(patch);
  EXPECT_EQ(patch->mask, user::kCity);
  EXPECT_EQ(patch->address.city, "Olinda");
  EXPECT_FALSE(parse_address(R"({"country":"ZZ"})", true));
  EXPECT_FALSE(parse_address(R"({"city":""})", true));
  EXPECT_FALSE(parse_address("{}", true));
  EXPECT_TRUE(parse_address(R"({"default":true})", true));

  auto order = valid_order();
  order["shipping_address_id"] = 4;
  auto by_id = parse_order_request(order.dump());
  ASSERT_TRUE(by_id);
  EXPECT_EQ(by_id->shipping_address_id, 4u);
  order["shipping_address"] = {
      {"recipient", "A"}, {"line1", "x"}, {"city", "y"}, {"country", "DE"}};
  EXPECT_FALSE(parse_order_request(order.dump())) << "both";
  order.erase("shipping_address_id");
  auto inline_address = parse_order_request(order.dump());
  ASSERT_TRUE(inline_address);
  EXPECT_EQ(inline_address->shipping_address->country, "DE");
  EXPECT_NE(order_request_hash(*inline_address),
            order_request_hash(*parse_order_request(kValidOrder)));
  order["shipping_address"]["default"] = true;
  EXPECT_FALSE(parse_order_request(order.dump())) << "default belongs to the address book";
  auto no_user = valid_order();
  no_user.erase("user_id");
  EXPECT_FALSE(parse_order_request(no_user.dump()));
  auto tokened = parse_order_request(no_user.dump(), /*user_id_optional=*/true);
  ASSERT_TRUE(tokened);
  EXPECT_EQ(tokened->user_id, 0u);
}

TEST(Credentials, TokensAre256BitsOfBase64urlAndOnlyTheirHashIdentifiesThem) {
  const auto a = new_session_token();
  const auto b = new_session_token();
  EXPECT_EQ(a.token.size(), 43u);
  EXPECT_NE(a.token, b.token);
  EXPECT_EQ(
      a.token.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
      std::string::npos);
  auto hash = session_token_hash(a.token);
  ASSERT_TRUE(hash);
  EXPECT_EQ(*hash, a.hash);
  EXPECT_NE(*session_token_hash(b.token), a.hash);
  EXPECT_FALSE(session_token_hash(a.token.substr(1)));
  EXPECT_FALSE(session_token_hash(a.token + "A"));
  EXPECT_FALSE(session_token_hash(std::string(42, 'A') + "*"));
  EXPECT_EQ(bearer_token("Bearer abc"), "abc");
  EXPECT_EQ(bearer_token("bearer  abc "), "abc");
  EXPECT_FALSE(bearer_token("Basic YTpi"));
  EXPECT_FALSE(bearer_token("Bearer "));
  EXPECT_FALSE(bearer_token("Bearerabc"));
}

TEST(Credentials, TheHasherVerifiesOffTheCallersThreadAndRefusesBeyondItsQueue) {
  boost::asio::io_context io;
  auto work = boost::asio::make_work_guard(io);
  // Results come back through `io`, as they do on the gateway's io thread.
  const auto run_until = [&](const std::function<bool()>& done) {
    for (int i = 0; i < 500 && !done(); ++i) io.run_one_for(std::chrono::milliseconds(10));
  };
  PasswordHasher hasher(io, PasswordCost{.opslimit = 1, .memlimit_bytes = 8192}, 1, 2);
  std::optional<std::string> stored;
  int hashed = 0;
  ASSERT_TRUE(hasher.hash("correct horse", [&](std::optional<std::string> h) {
    stored = h;
    ++hashed;
  }));
  ASSERT_TRUE(hasher.hash("another one", [&](std::optional<std::string>) { ++hashed; }));
  EXPECT_FALSE(hasher.hash("a third", [](std::optional<std::string>) {})) << "queue of 2";
  EXPECT_EQ(hasher.queued(), 2u);
  EXPECT_FALSE(stored) << "delivered only through io";
  run_until([&] { return hashed == 2; });
  ASSERT_TRUE(stored);
  EXPECT_TRUE(stored->starts_with("$argon2id$"));
  EXPECT_EQ(stored->find("correct horse"), std::string::npos);
  std::vector<bool> results;
  for (const char* attempt : {"correct horse", "wrong horse"}) {
    ASSERT_TRUE(hasher.verify(*stored, attempt, [&](bool ok) { results.push_back(ok); }));
  }
  // No account: the decoy takes the same path and matches nothing.
  ASSERT_TRUE(hasher.queued() == 2 && !hasher.verify("", "x", [](bool) {})) << "queue of 2";
  run_until([&] { return results.size() == 2; });
  ASSERT_TRUE(hasher.verify("", "correct horse", [&](bool ok) { results.push_back(ok); }));
  run_until([&] { return results.size() == 3; });
  EXPECT_EQ(results, (std::vector<bool>{true, false, false}));
  EXPECT_EQ(hasher.queued(), 0u);
}

TEST(StrictBodies, RejectDuplicateMembersAtAnyDepth) {
  // "Last wins" would let a check pass on user 2 and the order go to user 1.
  auto dup = parse_order_request(
      R"({"user_id":2,"user_id":1,"items":[{"product_id":1,"quantity":1}],"payment":{"token":"t"}})");
  ASSERT_FALSE(dup.has_value());
  EXPECT_NE(dup.error().message.find("user_id"), std::string::npos) << dup.error().message;
  EXPECT_FALSE(parse_order_request(
      R"({"user_id":1,"items":[{"product_id":1,"quantity":1,"quantity":9}],"payment":{"token":"t"}})"));
  EXPECT_FALSE(parse_register_user(R"({"name":"A","name":"B","email":"a@x"})"));
  // The same name in two different objects is fine.
  EXPECT_TRUE(parse_order_request(
      R"({"user_id":1,"items":[{"product_id":1,"quantity":1},{"product_id":2,"quantity":1}],
          "payment":{"token":"t"}})"));
}

TEST(StrictBodies, RejectControlCharactersInStringsAndNames) {
  EXPECT_FALSE(parse_register_user(R"({"name":"Ann\u0000Admin","email":"a@x"})"));
  EXPECT_FALSE(parse_register_user(R"({"name":"Ann\nB","email":"a@x"})"));
  EXPECT_FALSE(parse_register_user(R"({"name":"Ann\u007f","email":"a@x"})"));
  EXPECT_FALSE(parse_order_request(
      R"({"user_id":1,"items":[{"product_id":1,"quantity":1}],"payment":{"token":"t\u0001"}})"));
  EXPECT_FALSE(parse_create_product(R"({"name":"M","category":"k\u001f","price":1,"stock":1})"));
  // Non-ASCII text is not a control character.
  EXPECT_TRUE(parse_register_user(R"({"name":"J\u00fcrgen Dö","email":"j@x"})"));
}

TEST(StrictBodies, CapEveryStringField) {
  const std::string local(kMaxEmailBytes - 2, 'a');
  EXPECT_TRUE(parse_register_user(R"({"name":"A","email":")" + local + R"(@x"})"));
  EXPECT_FALSE(parse_register_user(R"({"name":"A","email":")" + local + R"(@xy"})"));
  EXPECT_FALSE(
      parse_register_user(R"({"name":"A","email":")" + std::string(60000, 'a') + R"(@x"})"));
  EXPECT_FALSE(parse_register_user(R"({"name":"A","email":"no-at-sign"})"));
  EXPECT_FALSE(parse_register_user(R"({"name":"A","email":"@x"})"));
  EXPECT_FALSE(parse_register_user(R"({"name":"A","email":"a@"})"));
  EXPECT_FALSE(parse_register_user(R"({"name":"A","email":"a b@x"})"));
  EXPECT_FALSE(parse_register_user(R"({"name":"","email":"a@x"})"));
  // Names count characters, as the user and product daemons do: 200 CJK
  // characters (600 bytes) pass, 201 do not.
  std::string cjk;
  for (std::size_t i = 0; i < kMaxNameChars; ++i) cjk += "\xe5\x90\x8d";
  EXPECT_TRUE(parse_register_user(R"({"name":")" + cjk + R"(","email":"a@x"})"));
  EXPECT_FALSE(parse_register_user(R"({"name":")" + cjk + "\xe5\x90\x8d" + R"(","email":"a@x"})"));
  const std::string name(kMaxNameChars, 'n');
  EXPECT_TRUE(parse_register_user(R"({"name":")" + name + R"(","email":"a@x"})"));
  EXPECT_FALSE(parse_register_user(R"({"name":")" + name + R"(n","email":"a@x"})"));
  EXPECT_FALSE(
      parse_create_product(R"({"name":")" + name + R"(n","category":"k","price":1,"stock":1})"));
  EXPECT_FALSE(parse_create_product(R"({"name":"M","category":")" +
                                    std::string(kMaxCategoryChars + 1, 'c') +
                                    R"(","price":1,"stock":1})"));
  EXPECT_FALSE(parse_create_coupon(R"({"name":")" + name + R"(n","discount_type":"fixed",
                                   "discount_value":1,"total_quantity":1})"));
}

TEST(StrictBodies, RejectDeepNestingWithoutBuildingIt) {
  std::string deep = R"({"user_id":1,"x":)";
  for (int i = 0; i < 100000; ++i) deep += '[';
  auto r = parse_order_request(deep);  // unterminated too: depth is what it reports
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("deeper"), std::string::npos) << r.error().message;
}

TEST(IdempotencyKey, IsScopedToTheRouteAndTheUser) {
  const auto a = scoped_idempotency_key("POST /v1/orders", 1, "k");
  EXPECT_EQ(a, scoped_idempotency_key("POST /v1/orders", 1, "k"));
  EXPECT_NE(a, scoped_idempotency_key("POST /v1/orders", 2, "k"));
  EXPECT_NE(a, scoped_idempotency_key("POST /v1/users", 1, "k"));
  // User 1 with key "2\x1fk" cannot collide with user 12 and key "k": a valid
  // key has no unit separator (check_idempotency_key).
  EXPECT_FALSE(check_idempotency_key("2\x1fk").has_value());
}

TEST(PathsAndQueries, ParseIdsAndIntegers) {
  EXPECT_EQ(parse_id("42", "id").value(), 42u);
  EXPECT_EQ(parse_id("18446744073709551615", "id").value(), 18446744073709551615ull);
  for (const char* bad : {"", "0", "-1", "+1", "1x", "18446744073709551616", " 1"}) {
    auto r = parse_id(bad, "order id");
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().status, 400);
  }

  std::map<std::string, std::string> q = {{"limit", "5"}, {"days", "x"}, {"empty", ""}};
  EXPECT_EQ(query_int(q, "limit", 10, 1, 100).value(), 5);
  EXPECT_EQ(query_int(q, "absent", 10, 1, 100).value(), 10);
  EXPECT_EQ(query_int(q, "empty", 10, 1, 100).value(), 10);
  EXPECT_FALSE(query_int(q, "days", 7, 1, 366).has_value());
  EXPECT_FALSE(query_int({{"limit", "101"}}, "limit", 10, 1, 100).has_value());

  EXPECT_EQ(parse_wait_ms({}).value(), 0);
  EXPECT_EQ(parse_wait_ms({{"wait_ms", "250"}}).value(), 250);
  EXPECT_EQ(parse_wait_ms({{"wait_ms", "999999"}}).value(), kMaxWaitMs);
  EXPECT_FALSE(parse_wait_ms({{"wait_ms", "-1"}}).has_value());
  EXPECT_FALSE(parse_wait_ms({{"wait_ms", "soon"}}).has_value());
  // RFC 7240 wait=delta-seconds, among other preferences; malformed ones are ignored.
  EXPECT_EQ(prefer_wait_ms("wait=5"), 5000);
  EXPECT_EQ(prefer_wait_ms("respond-async, WAIT = 2"), 2000);
  EXPECT_EQ(prefer_wait_ms("return=minimal; foo=bar, wait=\"3\""), 3000);
  EXPECT_EQ(prefer_wait_ms("wait=999999"), kMaxWaitMs);
  EXPECT_EQ(prefer_wait_ms(""), 0);
  EXPECT_EQ(prefer_wait_ms("wait=-1"), 0);
  EXPECT_EQ(prefer_wait_ms("wait=soon"), 0);
  EXPECT_EQ(prefer_wait_ms("waiting=5"), 0);
  EXPECT_EQ(prefer_wait_ms("wait=soon, wait=4"), 4000);
}

TEST(CodeMapping, MapsCommandCodesToHttp) {
  EXPECT_EQ(http_status(msg::Code::OK), 200);
  EXPECT_EQ(http_status(msg::Code::USER_NOT_FOUND), 404);
  EXPECT_EQ(http_status(msg::Code::PRODUCT_NOT_FOUND), 404);
  EXPECT_EQ(http_status(msg::Code::COUPON_NOT_FOUND), 404);
  EXPECT_EQ(http_status(msg::Code::ORDER_NOT_FOUND), 404);
  EXPECT_EQ(http_status(msg::Code::COUPON_SOLD_OUT), 409);
  EXPECT_EQ(http_status(msg::Code::COUPON_EXPIRED), 409);
  EXPECT_EQ(http_status(msg::Code::STOCK_NEGATIVE), 409);
  EXPECT_EQ(http_status(msg::Code::INVALID_ARGUMENT), 400);
  EXPECT_EQ(http_status(msg::Code::INTERNAL), 500);
  EXPECT_EQ(http_status(msg::Code::STEP_TIMEOUT), 504);

  auto e = command_error(msg::Code::COUPON_SOLD_OUT, "coupon 3 sold out");
  EXPECT_EQ(e.status, 409);
  EXPECT_EQ(e.code, "COUPON_SOLD_OUT");
  EXPECT_EQ(e.message, "coupon 3 sold out");
  EXPECT_FALSE(command_error(msg::Code::INTERNAL, "").message.empty());

  auto r = e.response();
  EXPECT_EQ(r.status, 409);
  auto body = json::parse(r.body);
  EXPECT_EQ(body["error"]["code"], "COUPON_SOLD_OUT");
  EXPECT_EQ(body["error"]["message"], "coupon 3 sold out");
}

// A status region in ordinary memory, every daemon running and fresh at `now`.
std::unique_ptr<ipc::StatusLayout> AllRunning(std::int64_t now) {
  auto s = std::make_unique<ipc::StatusLayout>();
  for (auto& slot : s->slots) {
    slot.state = static_cast<std::uint32_t>(ipc::DaemonState::running);
    slot.heartbeat_ms = now - 10;
  }
  return s;
}

TEST(GatewayOptions, IdempotencyKeyTtlIsReadInHoursAndDefaultsToADay) {
  auto options = [](const std::string& toml) {
    const std::string path = "/tmp/rm-gw-options-" + std::to_string(::getpid()) + ".toml";
    std::ofstream(path) << toml;
    auto cfg = runtime::Config::load("/tmp", "/tmp", path);
    std::filesystem::remove(path);
    EXPECT_TRUE(cfg.has_value());
    return GatewayOptions::from(*cfg).value();
  };
  EXPECT_EQ(options("").idempotency_key_ttl_ms, 24 * 3600 * 1000);
  EXPECT_EQ(options("[gateway]\nidempotency_key_ttl_hours = 0.5\n").idempotency_key_ttl_ms,
            1800 * 1000);
  EXPECT_EQ(options("[gateway]\nidempotency_key_ttl_hours = 0\n").idempotency_key_ttl_ms, 0);
  EXPECT_EQ(options("[gateway]\nidempotency_key_ttl_hours = -3\n").idempotency_key_ttl_ms, 0);
  EXPECT_EQ(options("").customer_auth, CustomerAuth::token) << "the shipped default";
  EXPECT_EQ(options("[gateway]\ncustomer_auth = \"trusted\"\n").customer_auth,
            CustomerAuth::trusted);
}

TEST(GatewayOptions, AnUnknownCustomerAuthIsAnError) {
  const std::string path = "/tmp/rm-gw-auth-" + std::to_string(::getpid()) + ".toml";
  std::ofstream(path) << "[gateway]\ncustomer_auth = \"none\"\n";
  auto cfg = runtime::Config::load("/tmp", "/tmp", path);
  std::filesystem::remove(path);
  ASSERT_TRUE(cfg.has_value());
  auto options = GatewayOptions::from(*cfg);
  ASSERT_FALSE(options);
  EXPECT_NE(options.error().find("customer_auth"), std::string::npos);
}

TEST(Health, IsOkWhenEveryDaemonHeartBeats) {
  auto s = AllRunning(100'000);
  auto h = health(*s, 100'000);
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.body["status"], "ok");
  EXPECT_EQ(h.body["daemons"]["payment"], "up");
  EXPECT_EQ(h.body["daemons"].size(), runtime::all_daemons().size());
}

TEST(Health, NamesDaemonsThatAreDownOrStale) {
  auto s = AllRunning(100'000);
  s->slots[runtime::index(msg::DaemonId::PAYMENT)].state =
      static_cast<std::uint32_t>(ipc::DaemonState::backoff);
  s->slots[runtime::index(msg::DaemonId::RANKING)].heartbeat_ms = 100'000 - kFreshHeartbeatMs - 1;
  auto h = health(*s, 100'000);
  EXPECT_EQ(h.status, 503);
  EXPECT_EQ(h.body["status"], "degraded");
  EXPECT_EQ(h.body["missing"], json({"payment", "ranking"}));
  EXPECT_EQ(h.body["daemons"]["payment"], "backoff");
  EXPECT_EQ(h.body["daemons"]["ranking"], "stale");
  EXPECT_FALSE(daemon_alive(*s, msg::DaemonId::PAYMENT, 100'000));
  EXPECT_TRUE(daemon_alive(*s, msg::DaemonId::USER, 100'000));
}

TEST(Health, SupervisorCountsByItsOwnHeartbeat) {
  auto s = AllRunning(100'000);
  auto& sup = s->slots[runtime::index(msg::DaemonId::SUPERVISOR)];
  sup.state = static_cast<std::uint32_t>(ipc::DaemonState::stopped);
  EXPECT_FALSE(daemon_alive(*s, msg::DaemonId::SUPERVISOR, 100'000));
  s->supervisor_pid = 1234;
  s->supervisor_heartbeat_ms = 99'990;
  EXPECT_TRUE(daemon_alive(*s, msg::DaemonId::SUPERVISOR, 100'000));
  EXPECT_EQ(health(*s, 100'000).status, 200);
}

TEST(Metrics, RendersPrometheusText) {
  auto s = AllRunning(100'000);
  s->slots[runtime::index(msg::DaemonId::ORDER)].restarts = 2;
  s->slots[runtime::index(msg::DaemonId::ORDER)].messages_in = 17;
  s->sagas.completed = 5;
  GatewayGauges g;
  g.pending_commands = 3;
  const auto text = render_metrics(
      *s, 100'000, {{msg::DaemonId::GATEWAY, msg::DaemonId::ORDER, 128, 1 << 20}}, g);
  EXPECT_NE(text.find("# TYPE ringmart_daemon_up gauge\n"), std::string::npos);
  EXPECT_NE(text.find("ringmart_daemon_up{daemon=\"order\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("ringmart_daemon_restarts_total{daemon=\"order\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("ringmart_daemon_messages_in_total{daemon=\"order\"} 17\n"),
            std::string::npos);
  EXPECT_NE(text.find("ringmart_ring_fill_bytes{from=\"gateway\",to=\"order\"} 128\n"),
            std::string::npos);
  EXPECT_NE(text.find("ringmart_sagas{state=\"completed\"} 5\n"), std::string::npos);
  EXPECT_NE(text.find("ringmart_gateway_pending_commands 3\n"), std::string::npos);
  EXPECT_EQ(text.back(), '\n');
}

TEST(Metrics, AHistogramRendersCumulativeBucketsInSecondsWithSumAndCount) {
  ipc::Histogram h;
  h.observe_us(30);          // <= 50 µs
  h.observe_us(50);          // the bound itself belongs to its bucket
  h.observe_us(700);         // <= 1 ms
  h.observe_us(20'000'000);  // <= 30 s
  h.observe_us(40'000'000);  // above every bound: +Inf only
  std::string out;
  append_histogram(out, "x_seconds", "a=\"b\"", h);
  EXPECT_NE(out.find("x_seconds_bucket{a=\"b\",le=\"5e-05\"} 2\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_seconds_bucket{a=\"b\",le=\"0.0005\"} 2\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_seconds_bucket{a=\"b\",le=\"0.001\"} 3\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_seconds_bucket{a=\"b\",le=\"10\"} 3\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_seconds_bucket{a=\"b\",le=\"30\"} 4\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_seconds_bucket{a=\"b\",le=\"+Inf\"} 5\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_seconds_count{a=\"b\"} 5\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_seconds_sum{a=\"b\"} 60.00078\n"), std::string::npos) << out;
  std::string bare;
  append_histogram(bare, "y_seconds", "", h);
  EXPECT_NE(bare.find("y_seconds_bucket{le=\"+Inf\"} 5\n"), std::string::npos) << bare;
  EXPECT_NE(bare.find("y_seconds_count 5\n"), std::string::npos) << bare;
}

TEST(Metrics, RequestDurationsAreKeyedByRouteAndStatusClassNeverByClientText) {
  RequestMetrics m;
  m.observe("api", http::Served{"POST", "/v1/orders", 202, 2'000'000});
  m.observe("api", http::Served{"POST", "/v1/orders", 201, 1'000'000});
  m.observe("api", http::Served{"POST", "/v1/orders", 409, 1'000});
  m.observe("api", http::Served{"X\"}\nevil 1", "", 405, 1'000});
  std::string out;
  m.render(out);
  EXPECT_NE(out.find("# TYPE ringmart_http_request_duration_seconds histogram\n"),
            std::string::npos);
  EXPECT_NE(out.find("ringmart_http_request_duration_seconds_count{socket=\"api\",method=\"POST\","
                     "route=\"/v1/orders\",code=\"2xx\"} 2\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("ringmart_http_request_duration_seconds_count{socket=\"api\",method=\"POST\","
                     "route=\"/v1/orders\",code=\"4xx\"} 1\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("method=\"other\",route=\"unmatched\",code=\"4xx\"} 1\n"), std::string::npos)
      << out;
  EXPECT_EQ(out.find("evil"), std::string::npos) << out;
}

// ---------------------------------------------------------------- intake tables

class IntakeStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("gateway_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    auto env = storage::Env::open({.path = dir_.string(), .map_size_bytes = 64ull << 20});
    ASSERT_TRUE(env.has_value()) << env.error().message();
    env_ = std::move(*env);
    auto txn = storage::Txn::begin_write(*env_);
    ASSERT_TRUE(txn.has_value());
    auto store = IntakeStore::open(*txn);
    ASSERT_TRUE(store.has_value());
    store_ = *store;
    ASSERT_FALSE(txn->commit());
  }
  void TearDown() override {
    env_.reset();
    std::filesystem::remove_all(dir_);
  }
  AcceptOutcome Accept(std::string_view key, const OrderRequest& r, std::int64_t now_ms = 1000) {
    auto txn = storage::Txn::begin_write(*env_);
    EXPECT_TRUE(txn.has_value());
    auto out = store_.accept(*txn, key, r, order_request_hash(r), {5890}, 11780, now_ms);
    EXPECT_TRUE(out.has_value());
    EXPECT_FALSE(txn->commit());
    return *out;
  }
  /// Runs `fn` in a committed write transaction.
  void Write(const std::function<void(storage::Txn&)>& fn) {
    auto txn = storage::Txn::begin_write(*env_);
    ASSERT_TRUE(txn.has_value());
    fn(*txn);
    ASSERT_FALSE(txn->commit());
  }
  std::size_t Expire(std::int64_t created_before_ms, std::size_t limit) {
    std::size_t n = 0;
    Write([&](storage::Txn& t) {
      auto expired = store_.expire_keys(t, created_before_ms, limit);
      ASSERT_TRUE(expired.has_value()) << expired.error().message();
      n = expired->deleted;
      oldest_kept_ = expired->oldest_kept_ms;
    });
    return n;
  }
  bool Known(std::string_view key) {
    auto txn = storage::Txn::begin_read(*env_);
    return store_.idempotency(*txn, key).has_value();
  }

  std::filesystem::path dir_;
  std::unique_ptr<storage::Env> env_;
  IntakeStore store_;
  std::optional<std::int64_t> oldest_kept_;  // of the last Expire()
};

OrderRequest SampleOrder() {
  auto r = parse_order_request(kValidOrder);
  return *r;
}

TEST_F(IntakeStoreTest, AllocatesIncreasingOrderIds) {
  auto r = SampleOrder();
  auto a = Accept("", r);
  auto b = Accept("", r);
  EXPECT_EQ(a.kind, AcceptOutcome::Kind::accepted);
  EXPECT_EQ(a.order_id, 1u);
  EXPECT_EQ(b.order_id, 2u);
  auto txn = storage::Txn::begin_read(*env_);
  EXPECT_EQ(store_.last_order_id(*txn), 2u);
}

TEST_F(IntakeStoreTest, ReplaysTheSameKeyAndRejectsAnotherBody) {
  auto r = SampleOrder();
  auto first = Accept("key-1", r);
  ASSERT_EQ(first.kind, AcceptOutcome::Kind::accepted);
  auto again = Accept("key-1", r);
  EXPECT_EQ(again.kind, AcceptOutcome::Kind::replayed);
  EXPECT_EQ(again.order_id, first.order_id);

  auto other = r;
  other.items[0].quantity = 3;
  auto conflict = Accept("key-1", other);
  EXPECT_EQ(conflict.kind, AcceptOutcome::Kind::conflict);
  EXPECT_EQ(conflict.order_id, first.order_id);

  auto txn = storage::Txn::begin_read(*env_);
  EXPECT_EQ(store_.last_order_id(*txn), first.order_id);  // nothing allocated for retries
  auto entry = store_.idempotency(*txn, "key-1");
  ASSERT_TRUE(entry.has_value());
  EXPECT_EQ(entry->order_id, first.order_id);
  EXPECT_EQ(entry->request_hash, order_request_hash(r));
}

TEST_F(IntakeStoreTest, StoresTheAcceptedOrderUntilForgotten) {
  auto r = SampleOrder();
  auto a = Accept("", r);
  {
    auto txn = storage::Txn::begin_read(*env_);
    auto o = store_.accepted(*txn, a.order_id);
    ASSERT_TRUE(o.has_value());
    EXPECT_EQ(o->user_id, 1u);
    ASSERT_EQ(o->lines.size(), 1u);
    EXPECT_EQ(o->lines[0].unit_price_cents, 5890);
    EXPECT_EQ(o->subtotal_cents, 11780);
    EXPECT_EQ(o->shipping_cents, 1329);
    EXPECT_EQ(store_.accepted_count(*txn), 1u);
  }
  auto txn = storage::Txn::begin_write(*env_);
  EXPECT_TRUE(store_.forget(*txn, a.order_id));
  EXPECT_FALSE(store_.accepted(*txn, a.order_id).has_value());
  EXPECT_FALSE(store_.forget(*txn, a.order_id));
}

TEST_F(IntakeStoreTest, ExpiresKeysOlderThanTheCutOffOnceTheirOrderIsFinal) {
  auto r = SampleOrder();
  const auto a = Accept("key-a", r, 1000);
  const auto b = Accept("key-b", r, 2000);
  const auto c = Accept("key-c", r, 3000);
  Write([&](storage::Txn& t) {
    store_.forget(t, a.order_id);  // final
    store_.forget(t, c.order_id);  // final; b is still pending
  });
  EXPECT_EQ(Expire(1000, 10), 0u) << "created at 1000 is not before 1000";
  EXPECT_EQ(Expire(5000, 10), 2u);  // a and c; b's order is pending
  EXPECT_EQ(oldest_kept_, 2000) << "b, kept while pending";
  EXPECT_FALSE(Known("key-a"));
  EXPECT_TRUE(Known("key-b"));
  EXPECT_FALSE(Known("key-c"));
  // An expired key is a new key: a retry with it is a new order.
  EXPECT_EQ(Accept("key-a", r, 6000).kind, AcceptOutcome::Kind::accepted);
  // b expires once its order is final.
  Write([&](storage::Txn& t) { store_.forget(t, b.order_id); });
  EXPECT_EQ(Expire(5000, 10), 1u);
  EXPECT_FALSE(Known("key-b"));
  EXPECT_TRUE(Known("key-a")) << "the new key-a was created at 6000";
  EXPECT_EQ(Expire(5000, 10), 0u);
  EXPECT_EQ(oldest_kept_, 6000);
}

TEST_F(IntakeStoreTest, ACommandKeyWaitsForItsReplyThenAnswersRetriesAndExpiresOnlyThen) {
  auto begin = [&](std::string_view key, std::uint64_t hash, std::uint64_t id, std::int64_t at) {
    CommandKeyOutcome out;
    Write([&](storage::Txn& t) {
      auto r = store_.begin_command(t, key, hash, id, at);
      ASSERT_TRUE(r.has_value());
      out = *r;
    });
    return out;
  };
  EXPECT_EQ(begin("charge-1", 11, 501, 1000).kind, CommandKeyOutcome::Kind::send);
  // Before the reply: a retry waits, another request under the key conflicts.
  EXPECT_EQ(begin("charge-1", 11, 502, 1001).kind, CommandKeyOutcome::Kind::waiting);
  EXPECT_EQ(begin("charge-1", 12, 503, 1002).kind, CommandKeyOutcome::Kind::conflict);
  EXPECT_EQ(Expire(5000, 10), 0u) << "a key waiting for its reply never expires";
  // The reply of another command (sent without a key) is not stored.
  Write([&](storage::Txn& t) {
    EXPECT_FALSE(*store_.answer_command(t, 999, CommandReply{msg::Code::OK, 0, 1, ""}));
  });
  Write([&](storage::Txn& t) {
    EXPECT_TRUE(*store_.answer_command(t, 501, CommandReply{msg::Code::OK, 7, 700, "ok"}));
  });
  const auto answered = begin("charge-1", 11, 504, 1003);
  ASSERT_EQ(answered.kind, CommandKeyOutcome::Kind::answered);
  ASSERT_TRUE(answered.entry.reply);
  EXPECT_EQ(answered.entry.reply->value, 700);
  EXPECT_EQ(answered.entry.reply->id, 7u);
  EXPECT_EQ(answered.entry.command_id, 501u);
  // A second delivery of the reply (none happens: the inbox) would change nothing.
  Write([&](storage::Txn& t) {
    EXPECT_FALSE(*store_.answer_command(t, 501, CommandReply{msg::Code::OK, 7, 1, ""}));
  });
  EXPECT_EQ(begin("charge-1", 11, 505, 1004).entry.reply->value, 700);
  // An order's key is never a command's.
  Accept("order-key", SampleOrder(), 1000);
  EXPECT_EQ(begin("order-key", 11, 506, 1005).kind, CommandKeyOutcome::Kind::conflict);
  // Answered, it expires like any key.
  EXPECT_EQ(Expire(5000, 10), 1u);
  EXPECT_EQ(begin("charge-1", 12, 507, 6000).kind, CommandKeyOutcome::Kind::send);
  Write([&](storage::Txn& t) {
    EXPECT_EQ(*store_.next_start(t), 1u);
    EXPECT_EQ(*store_.next_start(t), 2u);
  });
}

TEST_F(IntakeStoreTest, ExpiryLooksAtMostAtTheLimitOldestFirst) {
  auto r = SampleOrder();
  for (int i = 0; i < 5; ++i) {
    const auto o = Accept("k" + std::to_string(i), r, 100 * (5 - i));  // k4 is the oldest
    Write([&](storage::Txn& t) { store_.forget(t, o.order_id); });
  }
  EXPECT_EQ(Expire(10'000, 2), 2u);
  EXPECT_FALSE(Known("k4"));
  EXPECT_FALSE(Known("k3"));
  EXPECT_TRUE(Known("k2"));
  EXPECT_EQ(Expire(10'000, 10), 3u);
}

TEST_F(IntakeStoreTest, KeysFromBeforeTheTimeIndexAreIndexedOnOpen) {
  auto r = SampleOrder();
  const auto a = Accept("old-key", r, 1000);
  // What an older gateway left: no gw_keys_by_time rows, no "indexed" mark.
  Write([&](storage::Txn& t) {
    store_.forget(t, a.order_id);
    auto by_time = storage::Table::open(t, "gw_keys_by_time");
    auto meta = storage::Table::open(t, "gw_meta");
    ASSERT_TRUE(by_time && meta);
    std::vector<std::vector<std::byte>> rows;
    by_time->scan(t, {}, [&](std::span<const std::byte> k, std::span<const std::byte>) {
      rows.emplace_back(k.begin(), k.end());
      return true;
    });
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_TRUE(by_time->del(t, rows[0]));
    EXPECT_TRUE(meta->del(t, storage::Key{}.u8(1).view()));
  });
  EXPECT_EQ(Expire(2000, 10), 0u) << "not indexed";
  Write([&](storage::Txn& t) {
    auto store = IntakeStore::open(t);
    ASSERT_TRUE(store.has_value());
    store_ = *store;
  });
  EXPECT_EQ(Expire(2000, 10), 1u);
  EXPECT_FALSE(Known("old-key"));
}

}  // namespace
}  // namespace ringmart::gateway
