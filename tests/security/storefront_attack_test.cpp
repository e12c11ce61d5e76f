// A storefront caller against the gateway (issue 14, findings 2-4): routes
// that move money, idempotency keys across users, connection exhaustion and
// lenient parsing — each against a real system on its real sockets.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/system.hpp"

namespace ringmart::test {
namespace {

/// Sends `request` as raw bytes on a new connection to `socket_path` and
/// returns everything the server wrote until it closed (or 5 s passed).
std::string raw_exchange(const std::string& socket_path, const std::string& request) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket_path.c_str());
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    // A server that refuses the connection may close before the request is
    // written (EPIPE): its answer is still there to read.
    [[maybe_unused]] auto sent = ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    char buf[4096];
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      out.append(buf, static_cast<std::size_t>(n));
    }
  }
  ::close(fd);
  return out;
}

/// One chunk of a chunked body (RFC 9112 7.1).
std::string fmt_chunk(const std::string& data) {
  char size[32];
  std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  return size + data + "\r\n";
}

class StorefrontAttack : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    sys_ = new System();
    ASSERT_TRUE(sys_->start());
  }
  static void TearDownTestSuite() {
    delete sys_;
    sys_ = nullptr;
  }
  static json order(std::int64_t user, std::int64_t product, std::int64_t quantity) {
    return {{"user_id", user},
            {"items", {{{"product_id", product}, {"quantity", quantity}}}},
            {"payment", {{"token", "tok_ok"}}}};
  }
  /// Two customers and a product with `stock` units (asserts they exist).
  struct Shop {
    std::int64_t first = 0, second = 0, product = 0;
  };
  static Shop shop(const std::string& first, const std::string& second, std::int64_t stock) {
    Shop s{sys_->create_user(first), sys_->create_user(second),
           sys_->create_product("item for " + first, 300, stock)};
    EXPECT_GT(s.first, 0);
    EXPECT_GT(s.second, 0);
    EXPECT_GT(s.product, 0);
    return s;
  }
  static System* sys_;
};
System* StorefrontAttack::sys_ = nullptr;

TEST_F(StorefrontAttack, PointsCannotBeChargedThroughTheStorefrontSocket) {
  const auto user = sys_->create_user("greedy");
  ASSERT_GT(user, 0);
  const std::string path = "/v1/users/" + std::to_string(user) + "/points/charge";
  auto r = sys_->api("POST", path, {{"amount", 9223372036854775807LL}});
  EXPECT_EQ(r.status, 404) << r.body.dump();
  EXPECT_EQ(r.body["error"]["code"], "NOT_FOUND");
  EXPECT_EQ(sys_->points(user), 0);
  // The back office can.
  auto admin = sys_->admin("POST", path, {{"amount", 250}});
  EXPECT_EQ(admin.status, 200) << admin.body.dump();
  EXPECT_EQ(sys_->points(user), 250);
}

TEST_F(StorefrontAttack, CouponsCannotBeIssuedThroughTheStorefrontSocket) {
  const auto user = sys_->create_user("hoarder");
  ASSERT_GT(user, 0);
  auto c = sys_->admin("POST", "/v1/coupons",
                       {{"name", "10 off"},
                        {"discount_type", "fixed"},
                        {"discount_value", 1000},
                        {"total_quantity", 3}});
  ASSERT_EQ(c.status, 201) << c.body.dump();
  const std::string coupon = std::to_string(c.body["id"].get<std::int64_t>());
  for (int i = 0; i < 3; ++i) {
    auto r = sys_->api("POST", "/v1/coupons/" + coupon + "/issue", {{"user_id", user}});
    EXPECT_EQ(r.status, 404) << r.body.dump();
  }
  EXPECT_EQ(sys_->admin("GET", "/v1/coupons/" + coupon).body["issued"], 0);
  auto mine = sys_->api("GET", "/v1/users/" + std::to_string(user) + "/coupons");
  ASSERT_EQ(mine.status, 200);
  EXPECT_TRUE(mine.body.empty()) << mine.body.dump();
  auto admin = sys_->admin("POST", "/v1/coupons/" + coupon + "/issue", {{"user_id", user}});
  EXPECT_EQ(admin.status, 201) << admin.body.dump();
  EXPECT_EQ(sys_->admin("GET", "/v1/coupons/" + coupon).body["issued"], 1);
}

TEST_F(StorefrontAttack, AnIdempotencyKeyNeverAnswersAnotherUsersRequest) {
  const auto [alice, mallory, product] = shop("alice", "mallory", 10);
  ASSERT_FALSE(HasFailure());
  const std::map<std::string, std::string> key = {{"Idempotency-Key", "checkout-1"}};
  auto first = sys_->api("POST", "/v1/orders", order(alice, product, 1), key);
  ASSERT_EQ(first.status, 202) << first.body.dump();
  const auto alices = first.body["order_id"].get<std::int64_t>();

  // Mallory replays Alice's key with her own body: an order of her own, and
  // nothing about Alice's order in the answer.
  auto other = sys_->api("POST", "/v1/orders", order(mallory, product, 2), key);
  ASSERT_EQ(other.status, 202) << other.body.dump();
  const auto mallorys = other.body["order_id"].get<std::int64_t>();
  EXPECT_NE(mallorys, alices);
  EXPECT_EQ(other.body.dump().find(std::to_string(alices)), std::string::npos) << other.body.dump();
  EXPECT_EQ(sys_->wait_order(mallorys)["user_id"], mallory);

  // Within one user the key still works both ways.
  auto retry = sys_->api("POST", "/v1/orders", order(alice, product, 1), key);
  ASSERT_EQ(retry.status, 202);
  EXPECT_EQ(retry.body["order_id"], alices);
  auto reused = sys_->api("POST", "/v1/orders", order(alice, product, 3), key);
  EXPECT_EQ(reused.status, 409);
  EXPECT_EQ(reused.body["error"]["code"], "IDEMPOTENCY_KEY_REUSED");
  EXPECT_EQ(sys_->wait_order(alices)["status"], "COMPLETED");
  EXPECT_EQ(sys_->stock(product), 7) << "one unit for Alice, two for Mallory";
}

TEST_F(StorefrontAttack, DuplicateMembersNeverPlaceAnOrderForTheLastOne) {
  const auto [victim, attacker, product] = shop("victim", "attacker", 5);
  ASSERT_FALSE(HasFailure());
  const std::string body = R"({"user_id":)" + std::to_string(attacker) + R"(,"user_id":)" +
                           std::to_string(victim) + R"(,"items":[{"product_id":)" +
                           std::to_string(product) +
                           R"(,"quantity":1}],"payment":{"token":"tok_ok"}})";
  const std::string request =
      "POST /v1/orders HTTP/1.1\r\nHost: localhost\r\n"
      "Content-Type: application/json\r\nConnection: close\r\n"
      "Content-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  const auto out = raw_exchange(sys_->api_socket(), request);
  EXPECT_EQ(out.rfind("HTTP/1.1 400", 0), 0u) << out;
  EXPECT_NE(out.find("appears more than once"), std::string::npos) << out;
  EXPECT_EQ(sys_->stock(product), 5);
}

TEST_F(StorefrontAttack, ControlCharactersAndOversizedStringsAreRefused) {
  auto nul =
      sys_->api("POST", "/v1/users", json::parse(R"({"name":"Ann\u0000Admin","email":"a@x"})"));
  EXPECT_EQ(nul.status, 400) << nul.body.dump();
  auto huge = sys_->api("POST", "/v1/users",
                        {{"name", "Ann"}, {"email", std::string(60 * 1024, 'a') + "@example.com"}});
  EXPECT_EQ(huge.status, 400) << huge.body.dump();
  auto product =
      sys_->admin("POST", "/v1/products",
                  {{"name", std::string(300, 'p')}, {"category", "x"}, {"price", 1}, {"stock", 1}});
  EXPECT_EQ(product.status, 400) << product.body.dump();
}

TEST_F(StorefrontAttack, UnknownTransferCodingsAndMissingHostAreRefused) {
  const std::string body = R"({"name":"te","email":"te@example.com"})";
  const auto gzip = raw_exchange(sys_->api_socket(),
                                 "POST /v1/users HTTP/1.1\r\nHost: localhost\r\n"
                                 "Transfer-Encoding: gzip, chunked\r\n\r\n" +
                                     fmt_chunk(body) + "0\r\n\r\n");
  EXPECT_EQ(gzip.rfind("HTTP/1.1 501", 0), 0u) << gzip;
  const auto no_host = raw_exchange(sys_->admin_socket(), "GET /v1/health HTTP/1.1\r\n\r\n");
  EXPECT_EQ(no_host.rfind("HTTP/1.1 400", 0), 0u) << no_host;
}

TEST_F(StorefrontAttack, RingmartctlRejectsIdsThatAreNotPositiveDecimals) {
  for (const std::string id : {"-1", "0", "0x10", "+7", "18446744073709551616", "1e3"}) {
    const auto r = sys_->ctl("saga redrive " + id);
    EXPECT_EQ(r.exit_code, 2) << id << ": " << r.out;
    EXPECT_NE(r.out.find("not a positive decimal integer"), std::string::npos) << r.out;
  }
  // A well-formed id of no saga is a lookup, not a usage error.
  EXPECT_NE(sys_->ctl("saga show 999999").exit_code, 2);
}

constexpr const char* kHealth =
    "GET /v1/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

/// GET /v1/health on new connections until one answers 200 or `tries` x 20 ms
/// pass: the last answer.
std::string health_until_served(const std::string& socket_path, int tries) {
  std::string out;
  for (int i = 0; i < tries; ++i) {
    out = raw_exchange(socket_path, kHealth);
    if (out.rfind("HTTP/1.1 200", 0) == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return out;
}

/// Milliseconds since `t0`.
double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

/// Opens `n` connections to `socket_path` and keeps them idle (never sends).
std::vector<int> idle_connections(const std::string& socket_path, int n) {
  std::vector<int> fds;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket_path.c_str());
  for (int i = 0; i < n; ++i) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) break;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd);
      continue;
    }
    fds.push_back(fd);
  }
  return fds;
}

/// This process needs more descriptors than the gateway it attacks.
void raise_own_open_files(rlim_t want) {
  rlimit limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &limit), 0);
  if (limit.rlim_cur >= want) return;
  limit.rlim_cur = std::min(want, limit.rlim_max);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &limit), 0);
  ASSERT_GE(limit.rlim_cur, want) << "the test needs " << want << " descriptors";
}

// Finding 2: 1,100 idle connections under a 1,024 descriptor limit made every
// request on both sockets time out, silently.
TEST(ConnectionAttack, IdleConnectionsBeyondTheDescriptorLimitLeaveBothSocketsAnswering) {
  raise_own_open_files(2048);  // 1,100 attackers and the test's own
  // A long header timeout: the idle attackers must still be there when the
  // sockets are checked, however slow the machine.
  System sys("[gateway]\nheader_timeout_ms = 120000\n");
  sys.set_open_files_limit(1024);
  ASSERT_TRUE(sys.start());
  const auto attack = idle_connections(sys.api_socket(), 1100);
  ASSERT_EQ(attack.size(), 1100u);
  // The gateway accepts up to its api.sock cap and answers the rest 503.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));

  auto t0 = std::chrono::steady_clock::now();
  const auto health = raw_exchange(sys.admin_socket(), kHealth);
  const double admin_ms = ms_since(t0);
  EXPECT_EQ(health.rfind("HTTP/1.1 200", 0), 0u) << health;

  t0 = std::chrono::steady_clock::now();
  const auto storefront = raw_exchange(sys.api_socket(), kHealth);
  const double storefront_ms = ms_since(t0);
  EXPECT_EQ(storefront.rfind("HTTP/1.1 503", 0), 0u) << storefront;
  EXPECT_NE(storefront.find("TOO_MANY_CONNECTIONS"), std::string::npos) << storefront;
  std::printf("under 1,100 idle connections: admin.sock answered in %.1f ms, api.sock in %.1f ms\n",
              admin_ms, storefront_ms);
  // Answers, not timeouts (raw_exchange gives up after 5 s; the issue's goal is
  // 100 ms, printed above rather than asserted on a shared machine).
  EXPECT_LT(admin_ms, 1000);
  EXPECT_LT(storefront_ms, 1000);

  auto metrics = raw_exchange(
      sys.admin_socket(), "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
  EXPECT_NE(metrics.find("ringmart_gateway_connections_refused_total{socket=\"api\"}"),
            std::string::npos);
  EXPECT_EQ(metrics.find("ringmart_gateway_connections_refused_total{socket=\"api\"} 0\n"),
            std::string::npos)
      << "refusals are counted";
  EXPECT_NE(sys.log().find("api.sock: connection limit"), std::string::npos) << "and logged";

  for (int fd : attack) ::close(fd);
  // With the attackers gone the storefront serves again.
  const auto again = health_until_served(sys.api_socket(), 100);
  EXPECT_EQ(again.rfind("HTTP/1.1 200", 0), 0u) << again;
}

// Slowloris: connections that never finish a request free their slot after
// the header timeout, while the attacker still holds them open.
TEST(ConnectionAttack, ConnectionsThatNeverSendARequestAreClosedAfterTheHeaderTimeout) {
  System sys("[gateway]\nmax_connections = 50\nheader_timeout_ms = 500\n");
  ASSERT_TRUE(sys.start());
  const auto attack = idle_connections(sys.api_socket(), 50);
  ASSERT_EQ(attack.size(), 50u);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const auto full = raw_exchange(sys.api_socket(), kHealth);
  EXPECT_EQ(full.rfind("HTTP/1.1 503", 0), 0u) << full;
  // Freed after 500 ms although the attacker keeps them open.
  const auto served = health_until_served(sys.api_socket(), 150);
  EXPECT_EQ(served.rfind("HTTP/1.1 200", 0), 0u) << served;
  for (int fd : attack) ::close(fd);
}

}  // namespace
}  // namespace ringmart::test
