// Accounts on the real system: sign-up with Argon2id passwords, sessions,
// api.sock in customer_auth = "token" (each customer sees only its own
// resources), login throttling, the address book and an order's shipping
// snapshot, and that no password or token reaches a log or an LMDB file.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/system.hpp"

namespace ringmart::test {
namespace {

using Headers = std::map<std::string, std::string>;

Headers bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }

// Signs up with a password and logs in: {user id, token}.
std::pair<std::int64_t, std::string> customer(System& sys, const std::string& email,
                                              const std::string& password) {
  auto u =
      sys.api("POST", "/v1/users", {{"name", email}, {"email", email}, {"password", password}});
  EXPECT_EQ(u.status, 201) << u.text;
  auto s = sys.api("POST", "/v1/sessions", {{"email", email}, {"password", password}});
  EXPECT_EQ(s.status, 201) << s.text;
  if (u.status != 201 || s.status != 201) return {-1, ""};
  return {u.body["id"].get<std::int64_t>(), s.body["token"].get<std::string>()};
}

constexpr const char* kTokenMode = "[gateway]\ncustomer_auth = \"token\"\n";

TEST(Accounts, SignUpLoginAndLogoutWithAnEmailUniqueInAnyCase) {
  System sys(kTokenMode);
  ASSERT_TRUE(sys.start());
  const std::string password = "correct horse battery";
  auto ana = sys.api("POST", "/v1/users",
                     {{"name", "Ana"}, {"email", "Ana@Example.com"}, {"password", password}});
  ASSERT_EQ(ana.status, 201) << ana.text;
  const auto id = ana.body["id"].get<std::int64_t>();
  EXPECT_EQ(ana.headers["location"], "/v1/users/" + std::to_string(id));
  auto again = sys.api("POST", "/v1/users", {{"name", "Ana 2"}, {"email", "ana@EXAMPLE.COM"}});
  EXPECT_EQ(again.status, 409);
  EXPECT_EQ(error_code(again), "EMAIL_TAKEN");

  // Bad sign-ups: 400 naming the problem, nothing created.
  for (const json& bad :
       {json{{"name", "x"}, {"email", "x@y.z"}, {"password", "short"}},
        json{{"name", "x"}, {"email", "x@y.z"}, {"password", std::string(129, 'p')}},
        json{{"name", "x"}, {"email", "not-an-email"}, {"password", password}},
        json{{"name", "x"}, {"email", "x@y.z"}, {"password", 12345678}},
        json{{"name", "x"}, {"email", "x@y.z"}, {"pasword", password}}}) {
    auto r = sys.api("POST", "/v1/users", bad);
    EXPECT_EQ(r.status, 400) << bad.dump() << " " << r.text;
    EXPECT_EQ(error_code(r), "INVALID_ARGUMENT");
  }
  EXPECT_EQ(
      sys.api("POST", "/v1/sessions", {{"email", "x@y.z"}, {"password", std::string(129, 'p')}})
          .status,
      400);

  // A wrong password and an unknown address get the same answer.
  auto wrong =
      sys.api("POST", "/v1/sessions", {{"email", "ana@example.com"}, {"password", "nope-nope"}});
  auto unknown =
      sys.api("POST", "/v1/sessions", {{"email", "who@example.com"}, {"password", password}});
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(unknown.status, 401);
  EXPECT_EQ(wrong.body, unknown.body);
  EXPECT_EQ(error_code(wrong), "INVALID_CREDENTIALS");

  auto login =
      sys.api("POST", "/v1/sessions", {{"email", "ANA@example.com"}, {"password", password}});
  ASSERT_EQ(login.status, 201) << login.text;
  const auto token = login.body["token"].get<std::string>();
  EXPECT_EQ(token.size(), 43u) << "256 bits in base64url";
  EXPECT_EQ(login.body["user_id"], id);
  const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  EXPECT_GT(login.body["expires_at"].get<std::int64_t>(), now_s + 3600);
  EXPECT_EQ(login.headers["cache-control"], "no-store");
  auto second =
      sys.api("POST", "/v1/sessions", {{"email", "ana@example.com"}, {"password", password}});
  ASSERT_EQ(second.status, 201);
  EXPECT_NE(second.body["token"], login.body["token"]);

  auto me = sys.api("GET", "/v1/me", nullptr, bearer(token));
  ASSERT_EQ(me.status, 200) << me.text;
  EXPECT_EQ(me.body["id"], id);
  EXPECT_EQ(me.body["email"], "Ana@Example.com");
  EXPECT_EQ(me.body["has_password"], true);
  auto anonymous = sys.api("GET", "/v1/me");
  EXPECT_EQ(anonymous.status, 401);
  EXPECT_EQ(anonymous.headers["www-authenticate"], R"(Bearer realm="ringmart")");
  for (const std::string& bad : {std::string(43, 'A'), std::string("short"), token + "x"}) {
    auto r = sys.api("GET", "/v1/me", nullptr, bearer(bad));
    EXPECT_EQ(r.status, 401) << bad;
    EXPECT_EQ(r.headers["www-authenticate"], R"(Bearer realm="ringmart", error="invalid_token")");
  }
  EXPECT_EQ(sys.api("GET", "/v1/me", nullptr, {{"Authorization", "Basic YTpi"}}).status, 401);

  // Logout ends this session only.
  EXPECT_EQ(sys.api("DELETE", "/v1/sessions/current", nullptr, bearer(token)).status, 204);
  EXPECT_EQ(sys.api("GET", "/v1/me", nullptr, bearer(token)).status, 401);
  EXPECT_EQ(sys.api("DELETE", "/v1/sessions/current", nullptr, bearer(token)).status, 401);
  EXPECT_EQ(sys.api("GET", "/v1/me", nullptr, bearer(second.body["token"])).status, 200);

  // A guest checks out without a password, cannot log in, and sets one later.
  auto guest = sys.api("POST", "/v1/users", {{"name", "Guest"}, {"email", "guest@example.com"}});
  ASSERT_EQ(guest.status, 201);
  const auto guest_id = guest.body["id"].get<std::int64_t>();
  EXPECT_EQ(
      sys.api("POST", "/v1/sessions", {{"email", "guest@example.com"}, {"password", "anything1"}})
          .status,
      401);
  auto set =
      sys.admin("PATCH", "/v1/users/" + std::to_string(guest_id), {{"password", "guest-password"}});
  ASSERT_EQ(set.status, 200) << set.text;
  EXPECT_EQ(set.body["has_password"], true);
  EXPECT_EQ(sys.api("POST", "/v1/sessions",
                    {{"email", "guest@example.com"}, {"password", "guest-password"}})
                .status,
            201);
}

TEST(Accounts, ATokenShowsOnlyItsOwnCustomersResources) {
  System sys(kTokenMode);
  ASSERT_TRUE(sys.start());
  const auto [ana, ana_token] = customer(sys, "ana@example.com", "ana-password");
  const auto [bob, bob_token] = customer(sys, "bob@example.com", "bob-password");
  ASSERT_GT(ana, 0);
  ASSERT_GT(bob, 0);
  const auto product = sys.create_product("mug", 1500, 10);
  ASSERT_GT(product, 0);
  const std::string ana_path = "/v1/users/" + std::to_string(ana);

  // No token: 401 on every customer route.
  for (const std::string& target : {ana_path, ana_path + "/points", ana_path + "/coupons",
                                    ana_path + "/orders", ana_path + "/addresses"}) {
    EXPECT_EQ(sys.api("GET", target).status, 401) << target;
    // Another customer's id answers as an unknown one would: no oracle.
    auto theirs = sys.api("GET", target, nullptr, bearer(bob_token));
    auto unknown = sys.api("GET", "/v1/users/999999" + target.substr(ana_path.size()), nullptr,
                           bearer(bob_token));
    EXPECT_EQ(theirs.status, 404) << target;
    EXPECT_EQ(error_code(theirs), "USER_NOT_FOUND");
    EXPECT_EQ(unknown.status, 404);
    EXPECT_EQ(error_code(unknown), "USER_NOT_FOUND");
    EXPECT_EQ(sys.api("GET", target, nullptr, bearer(ana_token)).status, 200) << target;
    // admin.sock is the back office's: no token needed.
    EXPECT_EQ(sys.admin("GET", target).status, 200) << target;
  }
  EXPECT_EQ(sys.api("PATCH", ana_path, {{"name", "Mallory"}}, bearer(bob_token)).status, 404);
  EXPECT_EQ(sys.api("POST", ana_path + "/addresses",
                    {{"recipient", "M"}, {"line1", "x"}, {"city", "y"}, {"country", "BR"}},
                    bearer(bob_token))
                .status,
            404);

  // Orders: the token names the customer; another's user_id or order is unknown.
  const json order = {{"items", {{{"product_id", product}, {"quantity", 1}}}},
                      {"payment", {{"token", "tok_ok"}}}};
  EXPECT_EQ(sys.api("POST", "/v1/orders", order).status, 401);
  json for_ana = order;
  for_ana["user_id"] = ana;
  auto stolen = sys.api("POST", "/v1/orders", for_ana, bearer(bob_token));
  EXPECT_EQ(stolen.status, 404);
  EXPECT_EQ(error_code(stolen), "USER_NOT_FOUND");
  auto placed = sys.api("POST", "/v1/orders", order,
                        Headers{{"Authorization", "Bearer " + ana_token}, {"Prefer", "wait=10"}});
  ASSERT_EQ(placed.status, 201) << placed.text;
  EXPECT_EQ(placed.body["user_id"], ana);
  EXPECT_EQ(placed.body["status"], "COMPLETED");
  const auto order_id = placed.body["order_id"].get<std::int64_t>();
  const std::string order_path = "/v1/orders/" + std::to_string(order_id);
  EXPECT_EQ(sys.api("GET", order_path, nullptr, bearer(ana_token)).status, 200);
  auto peek = sys.api("GET", order_path, nullptr, bearer(bob_token));
  EXPECT_EQ(peek.status, 404);
  EXPECT_EQ(error_code(peek), "ORDER_NOT_FOUND");
  EXPECT_EQ(sys.api("GET", order_path).status, 401);
  EXPECT_EQ(sys.admin("GET", order_path).status, 200);
  auto list = sys.api("GET", ana_path + "/orders", nullptr, bearer(ana_token));
  ASSERT_EQ(list.status, 200);
  ASSERT_EQ(list.body["orders"].size(), 1u);
  EXPECT_EQ(
      sys.api("GET", "/v1/users/" + std::to_string(bob) + "/orders", nullptr, bearer(bob_token))
          .body["orders"]
          .size(),
      0u);
  // Still admin-only: a customer cannot grant itself points.
  EXPECT_EQ(
      sys.api("POST", ana_path + "/points/charge", {{"amount", 100}}, bearer(ana_token)).status,
      404);
}

TEST(Accounts, APasswordChangeNeedsTheCurrentOneAndSignsOtherSessionsOut) {
  System sys(kTokenMode);
  ASSERT_TRUE(sys.start());
  const auto [ana, token] = customer(sys, "ana@example.com", "first-password");
  ASSERT_GT(ana, 0);
  customer(sys, "bob@example.com", "bob-password");
  const std::string path = "/v1/users/" + std::to_string(ana);
  auto r = sys.api("PATCH", path, {{"password", "second-password"}}, bearer(token));
  EXPECT_EQ(r.status, 400) << r.text;
  r = sys.api("PATCH", path, {{"password", "second-password"}, {"current_password", "wrong-one"}},
              bearer(token));
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(error_code(r), "INVALID_CREDENTIALS");
  r = sys.api("PATCH", path, {{"email", "bob@EXAMPLE.com"}, {"current_password", "first-password"}},
              bearer(token));
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(error_code(r), "EMAIL_TAKEN");
  r = sys.api("PATCH", path, {{"name", "Ana Maria"}}, bearer(token));
  ASSERT_EQ(r.status, 200) << r.text;
  EXPECT_EQ(r.body["name"], "Ana Maria");
  Headers keyed = bearer(token);
  keyed["Idempotency-Key"] = "password-change-1";
  r = sys.api("PATCH", path,
              {{"password", "second-password"}, {"current_password", "first-password"}}, keyed);
  ASSERT_EQ(r.status, 200) << r.text;
  // A retry is answered from its key: not checked again against the new password.
  auto retried = sys.api(
      "PATCH", path, {{"password", "second-password"}, {"current_password", "first-password"}},
      {{"Idempotency-Key", "password-change-1"}, {"Authorization", "Bearer " + token}});
  EXPECT_EQ(retried.status, 401) << "the change ended this session: " << retried.text;
  retried = sys.admin("PATCH", path,
                      {{"password", "second-password"}, {"current_password", "first-password"}},
                      {{"Idempotency-Key", "password-change-1"}});
  EXPECT_EQ(retried.status, 200) << retried.text;
  EXPECT_EQ(sys.api("GET", "/v1/me", nullptr, bearer(token)).status, 401)
      << "sessions from before a password change end";
  EXPECT_EQ(sys.api("POST", "/v1/sessions",
                    {{"email", "ana@example.com"}, {"password", "first-password"}})
                .status,
            401);
  auto fresh = sys.api("POST", "/v1/sessions",
                       {{"email", "ana@example.com"}, {"password", "second-password"}});
  ASSERT_EQ(fresh.status, 201);
  // The back office resets a forgotten password without the current one; on
  // api.sock, even in trusted mode, the current one stays required.
  EXPECT_EQ(sys.admin("PATCH", path, {{"password", "reset-password"}}).status, 200);
  EXPECT_EQ(sys.api("GET", "/v1/me", nullptr, bearer(fresh.body["token"])).status, 401);
  EXPECT_EQ(sys.api("POST", "/v1/sessions",
                    {{"email", "ana@example.com"}, {"password", "reset-password"}})
                .status,
            201);
}

TEST(Accounts, InTrustedModeTheStorefrontServerActsForAnyUserButNotWithoutTheCurrentPassword) {
  System sys;  // the tests' default: customer_auth = "trusted"
  ASSERT_TRUE(sys.start());
  auto ana =
      sys.api("POST", "/v1/users",
              {{"name", "Ana"}, {"email", "ana@example.com"}, {"password", "first-password"}});
  ASSERT_EQ(ana.status, 201);
  const std::string path = "/v1/users/" + ana.body["id"].dump();
  EXPECT_EQ(sys.api("GET", path).status, 200) << "no token needed";
  EXPECT_EQ(sys.api("GET", "/v1/me").status, 401) << "/v1/me is a session's, in any mode";
  EXPECT_EQ(sys.api("PATCH", path, {{"password", "second-password"}}).status, 400);
  EXPECT_EQ(sys.api("PATCH", path,
                    {{"password", "second-password"}, {"current_password", "first-password"}})
                .status,
            200);
}

TEST(Accounts, RepeatedWrongPasswordsAreRefusedWith429AndRetryAfterThenLetIn) {
  System sys(std::string(kTokenMode) +
             "[accounts]\nmax_failed_logins = 3\nlockout_base_ms = 1500\nlockout_max_s = 60\n");
  ASSERT_TRUE(sys.start());
  const auto [ana, token] = customer(sys, "ana@example.com", "ana-password");
  ASSERT_GT(ana, 0);
  const json wrong = {{"email", "ana@example.com"}, {"password", "guess-guess"}};
  const json right = {{"email", "ana@example.com"}, {"password", "ana-password"}};
  for (int i = 0; i < 3; ++i) EXPECT_EQ(sys.api("POST", "/v1/sessions", wrong).status, 401) << i;
  auto refused = sys.api("POST", "/v1/sessions", right);
  ASSERT_EQ(refused.status, 429) << refused.text;
  EXPECT_EQ(error_code(refused), "TOO_MANY_ATTEMPTS");
  const int retry_after = std::stoi(refused.headers["retry-after"]);
  EXPECT_GE(retry_after, 1);
  EXPECT_LE(retry_after, 2);
  // The same lock guards a password change with the current password.
  auto patch =
      sys.api("PATCH", "/v1/users/" + std::to_string(ana),
              {{"password", "new-password"}, {"current_password", "ana-password"}}, bearer(token));
  EXPECT_EQ(patch.status, 429);
  std::this_thread::sleep_for(std::chrono::seconds(retry_after) + std::chrono::milliseconds(100));
  EXPECT_EQ(sys.api("POST", "/v1/sessions", right).status, 201);
  // The login cleared the count: one wrong password is a plain 401 again.
  EXPECT_EQ(sys.api("POST", "/v1/sessions", wrong).status, 401);
  EXPECT_EQ(sys.api("POST", "/v1/sessions", right).status, 201);
}

TEST(Accounts, AnExpiredTokenIs401) {
  // 0.0005 h = 1.8 s.
  System sys(std::string(kTokenMode) + "[accounts]\nsession_ttl_hours = 0.0005\n");
  ASSERT_TRUE(sys.start());
  const auto [ana, token] = customer(sys, "ana@example.com", "ana-password");
  ASSERT_GT(ana, 0);
  EXPECT_EQ(sys.api("GET", "/v1/me", nullptr, bearer(token)).status, 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(2300));
  auto expired = sys.api("GET", "/v1/me", nullptr, bearer(token));
  EXPECT_EQ(expired.status, 401);
  EXPECT_EQ(expired.headers["www-authenticate"],
            R"(Bearer realm="ringmart", error="invalid_token")");
}

std::string file_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

TEST(Accounts, PasswordsAndTokensNeverReachTheLogsOrTheDatabases) {
  // Small maps: every file is read whole below (data.mdb is the map's size).
  System sys(std::string(kTokenMode) +
             "[runtime]\nlog_level = \"debug\"\nmap_size_bytes = 16777216\n");
  ASSERT_TRUE(sys.start());
  const std::string password = "Pa55-unique-8b1f";
  const std::string second = "Pa55-second-77c2";
  const auto [ana, token] = customer(sys, "ana@example.com", password);
  ASSERT_GT(ana, 0);
  // Every path a password or a token takes: wrong logins, a change, a
  // malformed body quoting one, a bad bearer, a keyed sign-up, a logout.
  sys.api("POST", "/v1/sessions", {{"email", "ana@example.com"}, {"password", second}});
  sys.api("POST", "/v1/sessions", {{"email", "nobody@example.com"}, {"password", password}});
  auto malformed = sys.api("POST", "/v1/users",
                           {{"name", "x"}, {"email", "x@y.z"}, {"password", second.substr(0, 5)}});
  EXPECT_EQ(malformed.text.find(second.substr(0, 5)), std::string::npos) << malformed.text;
  sys.api("POST", "/v1/users", {{"name", "k"}, {"email", "k@y.z"}, {"password", second}},
          {{"Idempotency-Key", "signup-k"}});
  ASSERT_EQ(sys.api("PATCH", "/v1/users/" + std::to_string(ana),
                    {{"password", second}, {"current_password", password}}, bearer(token))
                .status,
            200);
  sys.api("GET", "/v1/me", nullptr, bearer(token + "Z"));
  auto again =
      sys.api("POST", "/v1/sessions", {{"email", "ana@example.com"}, {"password", second}});
  ASSERT_EQ(again.status, 201);
  const auto token2 = again.body["token"].get<std::string>();
  EXPECT_EQ(sys.api("DELETE", "/v1/sessions/current", nullptr, bearer(token2)).status, 204);
  ASSERT_TRUE(sys.stop());  // flushes every log and environment

  const auto log = sys.log();
  EXPECT_NE(log.find("openSession"), std::string::npos) << "debug logging did not run";
  const std::vector<std::string> secrets = {password, second, token, token2};
  for (const auto& secret : secrets) {
    EXPECT_EQ(log.find(secret), std::string::npos) << "a secret is in the log";
  }
  std::size_t files = 0;
  bool email_seen = false;  // the scan reads what the daemons stored
  for (const auto& entry : std::filesystem::recursive_directory_iterator(sys.state_dir())) {
    if (!entry.is_regular_file()) continue;
    const auto text = file_text(entry.path());
    ++files;
    email_seen |= text.find("ana@example.com") != std::string::npos;
    for (const auto& secret : secrets) {
      EXPECT_EQ(text.find(secret), std::string::npos)
          << "a secret is stored in clear in " << entry.path();
    }
  }
  EXPECT_GE(files, 16u) << "every daemon's data.mdb and lock.mdb";
  EXPECT_TRUE(email_seen);
}

TEST(Accounts, AddressBookAndAnOrdersShippingSnapshot) {
  System sys(kTokenMode);
  ASSERT_TRUE(sys.start());
  const auto [ana, token] = customer(sys, "ana@example.com", "ana-password");
  const auto [bob, bob_token] = customer(sys, "bob@example.com", "bob-password");
  ASSERT_GT(ana, 0);
  const auto product = sys.create_product("lamp", 4200, 10);
  const std::string book = "/v1/users/" + std::to_string(ana) + "/addresses";
  const json home = {{"recipient", "Ana Silva"},    {"phone", "+55 11 5555-0100"},
                     {"line1", "Rua Augusta 1200"}, {"line2", "apto 31"},
                     {"city", "São Paulo"},         {"region", "SP"},
                     {"postal_code", "01304-001"},  {"country", "BR"}};
  for (const char* country : {"UK", "br", "BRA", ""}) {
    json bad = home;
    bad["country"] = country;
    auto r = sys.api("POST", book, bad, bearer(token));
    EXPECT_EQ(r.status, 400) << country << " " << r.text;
    EXPECT_EQ(error_code(r), "INVALID_ARGUMENT");
  }
  json no_city = home;
  no_city.erase("city");
  EXPECT_EQ(sys.api("POST", book, no_city, bearer(token)).status, 400);
  EXPECT_EQ(sys.api("GET", book, nullptr, bearer(token)).body["addresses"].size(), 0u);

  auto first = sys.api("POST", book, home, bearer(token));
  ASSERT_EQ(first.status, 201) << first.text;
  EXPECT_EQ(first.body["default"], true);
  EXPECT_EQ(first.body["city"], "São Paulo");
  const auto home_id = first.body["id"].get<std::int64_t>();
  json office = home;
  office["line1"] = "Av. Paulista 1000";
  office["default"] = true;
  auto second = sys.api("POST", book, office, bearer(token));
  ASSERT_EQ(second.status, 201);
  const auto office_id = second.body["id"].get<std::int64_t>();
  auto listed = sys.api("GET", book, nullptr, bearer(token));
  ASSERT_EQ(listed.body["addresses"].size(), 2u);
  EXPECT_EQ(listed.body["addresses"][0]["default"], false);
  EXPECT_EQ(listed.body["addresses"][1]["default"], true);
  EXPECT_EQ(sys.api("GET", "/v1/me", nullptr, bearer(token)).body["default_address_id"], office_id);

  // An order ships to the entry as it was; later edits and the deletion do not reach it.
  const json order = {{"items", {{{"product_id", product}, {"quantity", 1}}}},
                      {"payment", {{"token", "tok_ok"}}},
                      {"shipping_address_id", home_id}};
  const Headers wait{{"Authorization", "Bearer " + token}, {"Prefer", "wait=10"}};
  auto placed = sys.api("POST", "/v1/orders", order, wait);
  ASSERT_EQ(placed.status, 201) << placed.text;
  const auto order_path = "/v1/orders/" + placed.body["order_id"].dump();
  json expected = home;
  EXPECT_EQ(placed.body["shipping_address"], expected);
  auto moved = sys.api("PATCH", book + "/" + std::to_string(home_id),
                       {{"line1", "Rua Nova 5"}, {"postal_code", "01000-000"}}, bearer(token));
  ASSERT_EQ(moved.status, 200) << moved.text;
  EXPECT_EQ(moved.body["line1"], "Rua Nova 5");
  EXPECT_EQ(moved.body["city"], "São Paulo") << "members not given are kept";
  EXPECT_EQ(
      sys.api("PATCH", book + "/" + std::to_string(home_id), {{"country", "ZZ"}}, bearer(token))
          .status,
      400);
  EXPECT_EQ(sys.api("DELETE", book + "/" + std::to_string(home_id), nullptr, bearer(token)).status,
            204);
  auto gone = sys.api("GET", book + "/" + std::to_string(home_id), nullptr, bearer(token));
  EXPECT_EQ(gone.status, 404);
  EXPECT_EQ(error_code(gone), "ADDRESS_NOT_FOUND");
  EXPECT_EQ(sys.api("GET", order_path, nullptr, bearer(token)).body["shipping_address"], expected);

  // An inline address; both at once is 400; an unknown or another's entry is 404.
  json inline_order = order;
  inline_order.erase("shipping_address_id");
  inline_order["shipping_address"] = {{"recipient", "Ana at work"},
                                      {"line1", "Av. Paulista 1000"},
                                      {"city", "São Paulo"},
                                      {"country", "BR"}};
  auto placed_inline = sys.api("POST", "/v1/orders", inline_order, wait);
  ASSERT_EQ(placed_inline.status, 201) << placed_inline.text;
  EXPECT_EQ(placed_inline.body["shipping_address"]["recipient"], "Ana at work");
  EXPECT_EQ(placed_inline.body["shipping_address"]["phone"], "");
  json both = inline_order;
  both["shipping_address_id"] = office_id;
  EXPECT_EQ(sys.api("POST", "/v1/orders", both, bearer(token)).status, 400);
  json bad_inline = inline_order;
  bad_inline["shipping_address"]["country"] = "XX";
  EXPECT_EQ(sys.api("POST", "/v1/orders", bad_inline, bearer(token)).status, 400);
  json deleted = order;  // home_id was deleted
  auto refused = sys.api("POST", "/v1/orders", deleted, bearer(token));
  EXPECT_EQ(refused.status, 404);
  EXPECT_EQ(error_code(refused), "ADDRESS_NOT_FOUND");
  json theirs = order;
  theirs["shipping_address_id"] = office_id;
  auto bob_try = sys.api("POST", "/v1/orders", theirs, bearer(bob_token));
  EXPECT_EQ(bob_try.status, 404) << "bob's book has no entry " << office_id;
  EXPECT_EQ(error_code(bob_try), "ADDRESS_NOT_FOUND");
  // Deleting the default makes the oldest entry left the default.
  EXPECT_EQ(
      sys.api("DELETE", book + "/" + std::to_string(office_id), nullptr, bearer(token)).status,
      204);
  EXPECT_TRUE(
      sys.api("GET", "/v1/me", nullptr, bearer(token)).body["default_address_id"].is_null());
}

}  // namespace
}  // namespace ringmart::test
