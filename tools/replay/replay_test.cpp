// Tests for ringmart-replay's core against an in-process fake of the ringmart
// API (docs/api.md) served by ringmart::http::Server on real Unix sockets.
#include "tools/replay/replay.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include "http/server.hpp"
#include "testkit/temp_dir.hpp"
#include "tools/olist/generate.hpp"
#include "tools/olist/olist.hpp"
#include "tools/replay/api.hpp"

namespace asio = boost::asio;
namespace rh = ringmart::http;
namespace fs = std::filesystem;
using namespace ringmart;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

/// A single-threaded, in-memory stand-in for the gateway: orders are decided at
/// POST time and become visible as terminal a few milliseconds later.
class FakeRingmart {
 public:
  bool leak_stock = false;  ///< bug to inject: failed orders still take stock

  explicit FakeRingmart(const fs::path& dir) {
    api_ = std::make_unique<rh::Server>(io_, rh::ServerOptions{.socket_path = dir / "api.sock"});
    admin_ =
        std::make_unique<rh::Server>(io_, rh::ServerOptions{.socket_path = dir / "admin.sock"});
    add_routes(*api_, false);
    add_routes(*admin_, true);
  }
  ~FakeRingmart() { stop(); }

  void start() {
    api_->start();
    admin_->start();
    thread_ = std::thread([this] { io_.run(); });
  }
  void stop() {
    if (!thread_.joinable()) return;
    asio::post(io_, [this] {
      api_->stop();
      admin_->stop();
    });
    work_.reset();
    thread_.join();
  }

 private:
  using Clock = std::chrono::steady_clock;
  struct Product {
    std::string name, category;
    int64_t price = 0, stock = 0;
  };
  struct UserCoupon {
    uint64_t coupon_id = 0, user_id = 0;
    bool used = false;
  };
  struct Order {
    json view;  // final state
    Clock::time_point ready;
  };

  static rh::Response bad(std::string_view msg) {
    return rh::error_response(400, "INVALID_ARGUMENT", msg);
  }
  static uint64_t id_param(const rh::Request& req) { return std::stoull(req.params.at("id")); }

  json product_view(uint64_t id) const {
    const auto& p = products_.at(id);
    return {{"id", id},
            {"name", p.name},
            {"category", p.category},
            {"price", p.price},
            {"stock", p.stock}};
  }

  json visible(uint64_t id) const {
    const Order& o = orders_.at(id);
    if (Clock::now() >= o.ready) return o.view;
    json v = o.view;
    v["status"] = "PENDING";
    v["paid"] = 0;
    v.erase("failure_reason");
    return v;
  }

  rh::Response place(const rh::Request& req) {
    const json b = json::parse(req.body, nullptr, false);
    if (!b.is_object() || !b.contains("user_id") || !b.contains("items")) return bad("body");
    if (auto key = req.headers.find("idempotency-key"); key != req.headers.end()) {
      if (auto it = keys_.find(key->second); it != keys_.end()) {
        if (it->second.first != req.body) {
          return rh::error_response(409, "IDEMPOTENCY_KEY_REUSED", key->second);
        }
        return rh::json_response(202, visible(it->second.second));
      }
    }
    const uint64_t user_id = b["user_id"];
    if (!users_.contains(user_id)) return rh::error_response(404, "USER_NOT_FOUND", "");
    int64_t subtotal = 0;
    json items = json::array();
    for (const auto& item : b["items"]) {
      const uint64_t pid = item["product_id"];
      if (!products_.contains(pid)) return rh::error_response(404, "PRODUCT_NOT_FOUND", "");
      const int64_t q = item["quantity"];
      subtotal += q * products_[pid].price;
      items.push_back({{"product_id", pid}, {"quantity", q}, {"unit_price", products_[pid].price}});
    }
    const int64_t shipping = b.value("shipping", int64_t{0});
    const int64_t points = b.value("points", int64_t{0});
    const std::string token = b["payment"]["token"];
    const int64_t total = subtotal + shipping;
    int64_t discount = 0;
    std::string failure;
    UserCoupon* uc = nullptr;
    if (b.contains("user_coupon_id")) {
      const uint64_t ucid = b["user_coupon_id"];
      if (!user_coupons_.contains(ucid)) return rh::error_response(404, "COUPON_NOT_FOUND", "");
      uc = &user_coupons_[ucid];
      if (uc->used || uc->user_id != user_id) {
        failure = "COUPON_INVALID";
      } else {
        discount = std::min(coupon_value_[uc->coupon_id], total);
      }
    }
    if (failure.empty() && users_[user_id] < points) failure = "INSUFFICIENT_POINTS";
    if (failure.empty() || leak_stock) {
      bool enough = true;
      for (const auto& item : items)
        enough &= products_[item["product_id"]].stock >= item["quantity"];
      if (!enough && failure.empty()) failure = "OUT_OF_STOCK";
      if (enough && (failure.empty() || leak_stock)) {
        for (const auto& item : items)
          products_[item["product_id"]].stock -= item["quantity"].get<int64_t>();
      }
    }
    if (failure.empty() && token == "tok_decline") failure = "PAYMENT_DECLINED";
    if (failure.empty() && token == "tok_capture_fail") failure = "PAYMENT_CAPTURE_FAILED";
    if (!failure.empty() && !leak_stock) {
      // Compensation: give the stock back when it was taken (payment failures).
      if (failure == "PAYMENT_DECLINED" || failure == "PAYMENT_CAPTURE_FAILED") {
        for (const auto& item : items)
          products_[item["product_id"]].stock += item["quantity"].get<int64_t>();
      }
    }
    const uint64_t id = next_id_++;
    json view = {{"order_id", id},
                 {"status", failure.empty() ? "COMPLETED" : "FAILED"},
                 {"user_id", user_id},
                 {"subtotal", subtotal},
                 {"shipping", shipping},
                 {"discount", failure.empty() ? discount : 0},
                 {"points_used", failure.empty() ? points : 0},
                 {"paid", failure.empty() ? total - discount - points : 0},
                 {"items", items}};
    if (failure.empty()) {
      users_[user_id] -= points;
      if (uc) uc->used = true;
      for (const auto& item : items) sold_[item["product_id"]] += item["quantity"].get<int64_t>();
    } else {
      view["failure_reason"] = failure;
    }
    orders_[id] = Order{view, Clock::now() + 3ms};
    if (auto key = req.headers.find("idempotency-key"); key != req.headers.end()) {
      keys_[key->second] = {req.body, id};
    }
    auto response = rh::json_response(202, {{"order_id", id}, {"status", "PENDING"}});
    response.headers["Location"] = "/v1/orders/" + std::to_string(id);
    return response;
  }

  void add_routes(rh::Server& s, bool admin) {
    auto now = [](rh::Response r) {
      return [r](const rh::Request&, rh::ResponderPtr out) { out->send(r); };
    };
    s.route("GET", "/v1/health", now(rh::json_response(200, {{"status", "ok"}})));
    s.route("POST", "/v1/users", [this](const rh::Request& req, rh::ResponderPtr out) {
      const uint64_t id = next_id_++;
      users_[id] = 0;
      out->send(rh::json_response(201, {{"id", id}}));
    });
    s.route("GET", "/v1/users/{id}/points", [this](const rh::Request& req, rh::ResponderPtr out) {
      const uint64_t id = id_param(req);
      if (!users_.contains(id)) return out->send(rh::error_response(404, "USER_NOT_FOUND", ""));
      out->send(rh::json_response(200, {{"balance", users_[id]}, {"history", json::array()}}));
    });
    s.route("GET", "/v1/users/{id}/coupons", [this](const rh::Request& req, rh::ResponderPtr out) {
      const uint64_t id = id_param(req);
      json list = json::array();
      for (const auto& [ucid, uc] : user_coupons_) {
        if (uc.user_id != id) continue;
        list.push_back({{"user_coupon_id", ucid},
                        {"coupon_id", uc.coupon_id},
                        {"name", "c"},
                        {"status", uc.used ? "USED" : "ISSUED"}});
      }
      out->send(rh::json_response(200, list));
    });
    s.route("GET", "/v1/products/{id}", [this](const rh::Request& req, rh::ResponderPtr out) {
      const uint64_t id = id_param(req);
      if (!products_.contains(id)) {
        return out->send(rh::error_response(404, "PRODUCT_NOT_FOUND", ""));
      }
      out->send(rh::json_response(200, product_view(id)));
    });
    s.route("POST", "/v1/orders",
            [this](const rh::Request& req, rh::ResponderPtr out) { out->send(place(req)); });
    s.route("GET", "/v1/orders/{id}", [this](const rh::Request& req, rh::ResponderPtr out) {
      const uint64_t id = id_param(req);
      if (!orders_.contains(id)) return out->send(rh::error_response(404, "ORDER_NOT_FOUND", ""));
      const auto wait = req.query.contains("wait_ms") ? std::stoi(req.query.at("wait_ms")) : 0;
      const auto ready = orders_[id].ready;
      if (wait == 0 || Clock::now() >= ready) return out->send(rh::json_response(200, visible(id)));
      auto timer = std::make_shared<asio::steady_timer>(
          io_, std::min<Clock::time_point>(ready, Clock::now() + std::chrono::milliseconds(wait)));
      timer->async_wait([this, timer, out, id](boost::system::error_code) {
        out->send(rh::json_response(200, visible(id)));
      });
    });
    s.route("GET", "/v1/rankings/bestsellers",
            [this](const rh::Request& req, rh::ResponderPtr out) {
              const size_t limit = std::stoul(req.query.at("limit"));
              std::vector<std::pair<uint64_t, int64_t>> rows(sold_.begin(), sold_.end());
              std::ranges::stable_sort(rows, std::greater{}, &std::pair<uint64_t, int64_t>::second);
              json list = json::array();
              for (size_t i = 0; i < rows.size() && i < limit; ++i) {
                list.push_back({{"product_id", rows[i].first}, {"units", rows[i].second}});
              }
              out->send(rh::json_response(200, list));
            });
    if (!admin) return;
    s.route("POST", "/v1/users/{id}/points/charge",
            [this](const rh::Request& req, rh::ResponderPtr out) {
              const uint64_t id = id_param(req);
              if (!users_.contains(id))
                return out->send(rh::error_response(404, "USER_NOT_FOUND", ""));
              users_[id] += json::parse(req.body)["amount"].get<int64_t>();
              out->send(rh::json_response(200, {{"balance", users_[id]}}));
            });
    s.route("POST", "/v1/coupons/{id}/issue", [this](const rh::Request& req, rh::ResponderPtr out) {
      const uint64_t coupon = id_param(req);
      const uint64_t user = json::parse(req.body)["user_id"];
      if (!coupon_value_.contains(coupon)) {
        return out->send(rh::error_response(404, "COUPON_NOT_FOUND", ""));
      }
      if (coupon_left_[coupon]-- <= 0) {
        return out->send(rh::error_response(409, "COUPON_SOLD_OUT", ""));
      }
      const uint64_t id = next_id_++;
      user_coupons_[id] = UserCoupon{coupon, user, false};
      out->send(rh::json_response(201, {{"user_coupon_id", id}}));
    });
    s.route("POST", "/v1/products", [this](const rh::Request& req, rh::ResponderPtr out) {
      const json b = json::parse(req.body);
      if (b["price"].get<int64_t>() < 0) return out->send(bad("price"));
      const uint64_t id = next_id_++;
      products_[id] = Product{b["name"], b["category"], b["price"], b["stock"]};
      out->send(rh::json_response(201, {{"id", id}}));
    });
    s.route("POST", "/v1/coupons", [this](const rh::Request& req, rh::ResponderPtr out) {
      const json b = json::parse(req.body);
      if (b["discount_type"] != "fixed") return out->send(bad("type"));
      const uint64_t id = next_id_++;
      coupon_value_[id] = b["discount_value"];
      coupon_left_[id] = b["total_quantity"];
      out->send(rh::json_response(201, {{"id", id}}));
    });
  }

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
  std::unique_ptr<rh::Server> api_, admin_;
  std::thread thread_;
  uint64_t next_id_ = 1;
  std::map<uint64_t, Product> products_;
  std::map<uint64_t, int64_t> users_;  // points balance
  std::map<uint64_t, int64_t> coupon_value_, coupon_left_;
  std::map<uint64_t, UserCoupon> user_coupons_;
  std::map<uint64_t, Order> orders_;
  std::map<std::string, std::pair<std::string, uint64_t>> keys_;
  std::map<uint64_t, int64_t> sold_;
};

class ReplayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.runtime_dir = dir_.path();
    options_.concurrency = 8;
    options_.wait = 1000ms;
    options_.startup_timeout = 2000ms;
    options_.order_timeout = 10000ms;
    options_.progress = false;
  }
  void TearDown() override { fake_.reset(); }
  FakeRingmart& start_fake() {
    fake_ = std::make_unique<FakeRingmart>(dir_.path());
    fake_->start();
    return *fake_;
  }

  testkit::TempDir dir_{"ringmart-replay"};  // first: removed after the rest
  replay::Options options_;
  std::unique_ptr<FakeRingmart> fake_;
};

}  // namespace

TEST(Percentile, NearestRank) {
  const std::vector<int64_t> v = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  EXPECT_EQ(replay::percentile(v, 50), 5);
  EXPECT_EQ(replay::percentile(v, 90), 9);
  EXPECT_EQ(replay::percentile(v, 99), 10);
  EXPECT_EQ(replay::percentile(v, 100), 10);
  EXPECT_EQ(replay::percentile(v, 0), 1);
  EXPECT_EQ(replay::percentile({}, 50), 0);
  EXPECT_EQ(replay::percentile({42}, 99), 42);
}

static replay::OrderOutcome done(uint64_t id, std::string status, std::string reason,
                                 int64_t latency_us) {
  replay::OrderOutcome o;
  o.order_id = id;
  o.status = std::move(status);
  o.failure_reason = std::move(reason);
  o.latency_us = latency_us;
  return o;
}

TEST(Summary, CountsReasonsAndErrors) {
  olist::Dataset data;
  data.origin = "olist";
  data.attribution = "Olist (CC BY-NC-SA 4.0)";
  replay::ReplayResult r;
  r.wall_seconds = 2.0;
  r.outcomes.resize(5);
  r.outcomes[0] = done(1, "COMPLETED", "", 1000);
  r.outcomes[1] = done(2, "COMPLETED", "", 3000);
  r.outcomes[2] = done(3, "FAILED", "OUT_OF_STOCK", 2000);
  r.outcomes[3].error_kind = "POST /v1/orders HTTP 409 IDEMPOTENCY_KEY_REUSED";
  r.outcomes[3].error = "order x: 409";
  r.outcomes[4].error_kind = "POST /v1/orders transport: Connection refused";
  r.outcomes[4].error = "order y: refused";
  const auto s = replay::summarize(data, r);
  EXPECT_EQ(s.total, 5u);
  EXPECT_EQ(s.completed, 2u);
  EXPECT_EQ(s.failed, 1u);
  EXPECT_EQ(s.failed_by_reason.at("OUT_OF_STOCK"), 1u);
  EXPECT_EQ(s.errors, 2u);
  EXPECT_EQ(s.transport_errors, 1u);
  EXPECT_DOUBLE_EQ(s.orders_per_second, 1.5);
  EXPECT_DOUBLE_EQ(s.p50_ms, 2.0);
  EXPECT_DOUBLE_EQ(s.max_ms, 3.0);
  std::ostringstream text;
  replay::print_summary(s, text);
  EXPECT_NE(text.str().find("OUT_OF_STOCK"), std::string::npos) << text.str();
  EXPECT_NE(text.str().find("IDEMPOTENCY_KEY_REUSED"), std::string::npos) << text.str();
  EXPECT_NE(text.str().find("Data: Olist (CC BY-NC-SA 4.0)"), std::string::npos) << text.str();
  const json j = replay::summary_json(s);
  EXPECT_EQ(j["orders"]["failed_by_reason"]["OUT_OF_STOCK"], 1);
  EXPECT_EQ(j["attribution"], "Olist (CC BY-NC-SA 4.0)");
}

TEST_F(ReplayTest, MissingSocketIsUnreachable) {
  options_.startup_timeout = 300ms;
  std::ostringstream log;
  auto r = replay::wait_healthy(options_, log);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().exit_code, replay::kExitUnreachable);
  EXPECT_NE(r.error().message.find("api.sock: no such socket"), std::string::npos)
      << r.error().message;

  options_.runtime_dir = dir_ / "absent";
  r = replay::wait_healthy(options_, log);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("does not exist"), std::string::npos) << r.error().message;
}

TEST_F(ReplayTest, GeneratedEndToEndVerifies) {
  start_fake();
  const auto data = olist::generate({.seed = 3, .orders = 400});
  std::ostringstream log;
  ASSERT_TRUE(replay::wait_healthy(options_, log).has_value());
  auto ids = replay::set_up(data, options_, log);
  ASSERT_TRUE(ids.has_value()) << ids.error().message;
  const auto result = replay::run_replay(data, *ids, options_);
  auto s = replay::summarize(data, result);
  replay::fetch_bestsellers(data, *ids, options_, s);
  std::ostringstream text;
  replay::print_summary(s, text);
  EXPECT_EQ(s.errors, 0u) << text.str();
  EXPECT_EQ(s.completed + s.failed, 400u);
  EXPECT_GE(s.failed_by_reason.size(), 3u) << text.str();  // several reasons
  EXPECT_TRUE(s.failed_by_reason.contains("OUT_OF_STOCK")) << text.str();
  EXPECT_TRUE(s.failed_by_reason.contains("PAYMENT_DECLINED")) << text.str();
  ASSERT_EQ(s.bestsellers.size(), 10u) << s.bestsellers_error;
  EXPECT_FALSE(s.bestsellers[0].source_id.empty());
  EXPECT_FALSE(s.bestsellers[0].category.empty());
  EXPECT_GT(s.p50_ms, 0.0);

  const auto v = replay::verify(data, *ids, result, options_);
  std::string all;
  for (const auto& line : v.violations) all += line + "\n";
  EXPECT_TRUE(v.ok()) << all;
  EXPECT_EQ(v.orders, 400u);

  // The same keys with new users: the idempotency check of the fake answers
  // 409, which the replay reports as errors (never silently).
  auto ids2 = replay::set_up(data, options_, log);
  ASSERT_TRUE(ids2.has_value());
  const auto again = replay::run_replay(data, *ids2, options_);
  const auto s2 = replay::summarize(data, again);
  EXPECT_EQ(s2.errors, 400u);
  EXPECT_EQ(s2.errors_by_kind.begin()->first, "POST /v1/orders HTTP 409 IDEMPOTENCY_KEY_REUSED");
}

TEST_F(ReplayTest, OlistSliceWithScarceStockVerifies) {
  const fs::path olist_dir =
      std::getenv("RINGMART_OLIST_DIR") ? std::getenv("RINGMART_OLIST_DIR") : RINGMART_OLIST_DIR;
  if (!fs::is_directory(olist_dir)) GTEST_SKIP() << "no Olist data at " << olist_dir;
  auto data = olist::load_olist(olist_dir, {.stock_factor = 0.5, .max_orders = 300});
  ASSERT_TRUE(data.has_value()) << data.error();
  start_fake();
  std::ostringstream log;
  auto ids = replay::set_up(*data, options_, log);
  ASSERT_TRUE(ids.has_value()) << ids.error().message;
  const auto result = replay::run_replay(*data, *ids, options_);
  const auto s = replay::summarize(*data, result);
  EXPECT_EQ(s.errors, 0u);
  EXPECT_TRUE(s.failed_by_reason.contains("OUT_OF_STOCK")) << s.failed;
  const auto v = replay::verify(*data, *ids, result, options_);
  std::string all;
  for (const auto& line : v.violations) all += line + "\n";
  EXPECT_TRUE(v.ok()) << all;
}

TEST_F(ReplayTest, VerifyReportsLeakedStock) {
  start_fake().leak_stock = true;
  const auto data = olist::generate({.seed = 5, .orders = 300});
  std::ostringstream log;
  auto ids = replay::set_up(data, options_, log);
  ASSERT_TRUE(ids.has_value()) << ids.error().message;
  const auto result = replay::run_replay(data, *ids, options_);
  const auto v = replay::verify(data, *ids, result, options_);
  ASSERT_FALSE(v.ok());
  bool stock = false;
  for (const auto& line : v.violations) stock |= line.find("initial stock") != std::string::npos;
  EXPECT_TRUE(stock) << v.violations.front();
}

TEST(PaymentMix, DefaultKeepsTheDataSetToken) {
  const auto data = olist::generate({.seed = 9, .orders = 500});
  const replay::Options options;
  for (const auto& o : data.orders) EXPECT_EQ(replay::payment_token(o, options), o.payment_token);
}

TEST(PaymentMix, SharesFollowThePercentagesAndAreStable) {
  const auto data = olist::generate({.seed = 9, .orders = 10000});
  replay::Options options;
  options.decline_percent = 10;
  options.timeout_percent = 5;
  options.capture_fail_percent = 3;
  std::map<std::string, size_t> mixed;  // tokens of the orders whose own token is tok_ok
  size_t n = 0;
  for (const auto& o : data.orders) {
    const auto token = replay::payment_token(o, options);
    EXPECT_EQ(token, replay::payment_token(o, options)) << o.source_id;  // deterministic
    // Other options (the key prefix of a re-run) do not change the choice.
    replay::Options again = options;
    again.key_prefix = "rerun-";
    EXPECT_EQ(token, replay::payment_token(o, again));
    if (o.payment_token != "tok_ok") continue;
    ++n;
    ++mixed[token];
  }
  // Binomial standard deviations are ~30 / ~21 / ~17 orders: 4-5 of them as bounds.
  const double total = static_cast<double>(n);
  EXPECT_NEAR(static_cast<double>(mixed["tok_decline"]), 0.10 * total, 120.0);
  EXPECT_NEAR(static_cast<double>(mixed["tok_timeout"]), 0.05 * total, 100.0);
  EXPECT_NEAR(static_cast<double>(mixed["tok_capture_fail"]), 0.03 * total, 80.0);
  EXPECT_EQ(mixed.size(), 4u);

  // 100% of one kind replaces every token.
  replay::Options all;
  all.timeout_percent = 100;
  for (const auto& o : data.orders) EXPECT_EQ(replay::payment_token(o, all), "tok_timeout");
}

TEST_F(ReplayTest, PaymentMixDeclinesTheChosenOrders) {
  start_fake();
  // Ample stock, so a payment token is the only reason an order with enough
  // points and a valid coupon fails.
  const auto data = olist::generate({.seed = 4, .orders = 300, .stock_factor = 10});
  options_.decline_percent = 20;
  options_.capture_fail_percent = 10;
  std::ostringstream log;
  auto ids = replay::set_up(data, options_, log);
  ASSERT_TRUE(ids.has_value()) << ids.error().message;
  const auto result = replay::run_replay(data, *ids, options_);
  size_t declined = 0, capture_failed = 0;
  for (size_t i = 0; i < data.orders.size(); ++i) {
    const auto& out = result.outcomes[i];
    ASSERT_TRUE(out.error_kind.empty()) << out.error;
    const auto token = replay::payment_token(data.orders[i], options_);
    if (out.failure_reason == "PAYMENT_DECLINED") {
      ++declined;
      EXPECT_EQ(token, "tok_decline") << data.orders[i].source_id;
    }
    if (out.failure_reason == "PAYMENT_CAPTURE_FAILED") {
      ++capture_failed;
      EXPECT_EQ(token, "tok_capture_fail") << data.orders[i].source_id;
    }
    if (out.status == "COMPLETED") {
      EXPECT_EQ(token, "tok_ok") << data.orders[i].source_id;
    }
  }
  EXPECT_GT(declined, 30u);
  EXPECT_GT(capture_failed, 15u);
}

TEST_F(ReplayTest, OpenLoopPacesOrdersAndChargesTheirWait) {
  start_fake();
  const auto data = olist::generate({.seed = 5, .orders = 100, .stock_factor = 10});
  std::ostringstream log;
  auto ids = replay::set_up(data, options_, log);
  ASSERT_TRUE(ids.has_value()) << ids.error().message;
  options_.arrival_rate_per_s = 200;  // the last order is due 99 / 200 s after the start
  options_.concurrency = 4;
  const auto result = replay::run_replay(data, *ids, options_);
  EXPECT_GE(result.wall_seconds, 99.0 / 200.0);
  size_t terminal = 0;
  for (const auto& o : result.outcomes) {
    ASSERT_TRUE(o.error_kind.empty()) << o.error;
    if (!o.status.empty()) ++terminal;
    EXPECT_GE(o.latency_us, 0);
  }
  EXPECT_EQ(terminal, data.orders.size());
}
