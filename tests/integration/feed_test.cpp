// The order change feed on the real system: a consumer that keeps the last
// sequence it processed never misses or reorders an event, even while the
// daemon that writes the feed is SIGKILLed again and again; ringmartctl
// exports the same events; bad cursors are refused.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "http/client.hpp"
#include "tests/integration/system.hpp"

namespace ringmart::test {
namespace {

// The NDJSON lines of a feed answer.
std::vector<json> lines_of(const std::string& body) {
  std::vector<json> out;
  std::istringstream in(body);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(json::parse(line));
  }
  return out;
}

TEST(OrderFeed, AConsumerKeepingItsLastSeqMissesNothingWhileTheOrderDaemonIsKilled) {
  System sys;
  ASSERT_TRUE(sys.start());
  const auto product = sys.create_product("lamp", 2500, 100'000);
  const auto user = sys.create_user("feeder");
  ASSERT_GT(product, 0);
  ASSERT_GT(user, 0);
  // Orders are placed, paced, until the killer has killed the order daemon
  // six times (and at least 100 of them).
  constexpr int kMinOrders = 100;
  constexpr int kKills = 6;

  std::atomic<bool> placing{true};
  std::atomic<bool> killing{true};
  std::vector<std::int64_t> placed;
  std::thread producer([&] {
    http::UnixClient api(sys.api_socket());
    for (int i = 0; killing || i < kMinOrders; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      const json body = {{"user_id", user},
                         {"items", {{{"product_id", product}, {"quantity", 1}}}},
                         {"payment", {{"token", i % 4 == 3 ? "tok_decline" : "tok_ok"}}}};
      // The order daemon may be down: 503, retried under the same key.
      for (int attempt = 0; attempt < 400; ++attempt) {
        auto r = api.request("POST", "/v1/orders", body.dump(),
                             {{"Idempotency-Key", "feed-" + std::to_string(i)}});
        if (r && r->status == 202) {
          placed.push_back(json::parse(r->body)["order_id"].get<std::int64_t>());
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
      }
    }
    placing = false;
  });
  int kills = 0;
  std::thread killer([&] {
    for (int tries = 0; kills < kKills && tries < 100; ++tries) {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      if (const auto pid = sys.daemon_pid("order"); pid > 0 && ::kill(pid, SIGKILL) == 0) ++kills;
    }
    killing = false;
  });

  // The consumer: only its last seq survives between requests.
  std::vector<json> events;
  std::uint64_t last = 0;
  bool ordered = true;
  http::UnixClient admin(sys.admin_socket());
  auto consume = [&]() -> std::uint64_t {
    auto r = admin.request(
        "GET", "/v1/feeds/orders?after=" + std::to_string(last) + "&limit=50&wait_ms=200");
    if (!r || r->status != 200) return std::uint64_t{0};
    for (auto& e : lines_of(r->body)) {
      ordered &= e["seq"].get<std::uint64_t>() == last + 1;
      last = e["seq"].get<std::uint64_t>();
      events.push_back(std::move(e));
    }
    return static_cast<std::uint64_t>(std::stoull(r->headers["feed-last-seq"]));
  };
  while (placing) consume();
  producer.join();
  killer.join();
  ASSERT_GE(placed.size(), static_cast<std::size_t>(kMinOrders));
  EXPECT_EQ(kills, kKills);
  std::map<std::int64_t, std::string> status;
  for (auto id : placed) {
    const auto o = sys.wait_order(id, 60'000);
    status[id] = o.value("status", "");
    ASSERT_TRUE(status[id] == "COMPLETED" || status[id] == "FAILED") << id << " " << o.dump();
  }
  while (consume() > last) {
  }
  EXPECT_TRUE(ordered) << "a gap or a reordering";

  // Every order: created, then exactly one terminal event matching its status.
  std::map<std::int64_t, std::vector<std::string>> by_order;
  for (const auto& e : events) by_order[e["order_id"].get<std::int64_t>()].push_back(e["type"]);
  ASSERT_EQ(by_order.size(), placed.size());
  for (auto id : placed) {
    const auto& types = by_order[id];
    ASSERT_EQ(types.size(), 2u) << id;
    EXPECT_EQ(types[0], "created") << id;
    EXPECT_EQ(types[1], status[id] == "COMPLETED" ? "completed" : "failed") << id;
  }
  EXPECT_EQ(events.size(), 2 * placed.size());

  // ringmartctl exports the same events.
  auto csv = sys.ctl("export orders --format csv");
  ASSERT_EQ(csv.exit_code, 0) << csv.out;
  std::size_t rows = 0;
  for (char c : csv.out) rows += c == '\n';
  EXPECT_EQ(rows, events.size() + 1) << "a header and one row per event";
  auto tail = sys.ctl("export orders --after " + std::to_string(last - 2));
  ASSERT_EQ(tail.exit_code, 0);
  const auto tail_events = lines_of(tail.out);
  ASSERT_EQ(tail_events.size(), 2u);
  EXPECT_EQ(tail_events[1], events.back());
  EXPECT_EQ(sys.ctl("export orders --after " + std::to_string(last + 1)).exit_code, 2);

  // Bad cursors: 400, nothing else.
  for (const std::string q :
       {std::string("after=abc"), std::string("after=-1"), "after=" + std::to_string(last + 1),
        std::string("limit=0"), std::string("limit=1001"), std::string("wait_ms=x")}) {
    auto r = sys.admin("GET", "/v1/feeds/orders?" + q);
    EXPECT_EQ(r.status, 400) << q << " " << r.text;
    EXPECT_EQ(error_code(r), "INVALID_ARGUMENT") << q;
  }
  EXPECT_EQ(sys.api("GET", "/v1/feeds/orders").status, 404) << "admin.sock only";
  // A long-poll at the head answers empty after its wait.
  const auto t0 = std::chrono::steady_clock::now();
  auto empty = sys.admin("GET", "/v1/feeds/orders?after=" + std::to_string(last) + "&wait_ms=300");
  EXPECT_EQ(empty.status, 200);
  EXPECT_TRUE(empty.text.empty());
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(250));
}

TEST(OrderFeed, ACursorPastTheRetentionIs410NotASilentGap) {
  // 0.0003 h ≈ 1 s of retention.
  System sys("[order]\nfeed_retention_hours = 0.0003\n");
  ASSERT_TRUE(sys.start());
  const auto product = sys.create_product("pen", 100, 100);
  const auto user = sys.create_user("late");
  auto placed = sys.api("POST", "/v1/orders",
                        {{"user_id", user},
                         {"items", {{{"product_id", product}, {"quantity", 1}}}},
                         {"payment", {{"token", "tok_ok"}}}},
                        {{"Prefer", "wait=10"}});
  ASSERT_EQ(placed.status, 201) << placed.text;
  // Retention runs on the order daemon's tick: wait until the events are gone.
  HttpResult expired;
  for (int i = 0; i < 100; ++i) {
    expired = sys.admin("GET", "/v1/feeds/orders?after=0");
    if (expired.status == 410) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(expired.status, 410) << expired.text;
  EXPECT_EQ(error_code(expired), "FEED_EXPIRED");
  EXPECT_EQ(sys.ctl("export orders").exit_code, 4);
  // A consumer that had read them is fine: no new event is an empty page.
  auto head = sys.admin("GET", "/v1/feeds/orders?after=2");
  EXPECT_EQ(head.status, 200) << head.text;
  EXPECT_EQ(head.headers["feed-last-seq"], "2");
}

}  // namespace
}  // namespace ringmart::test
