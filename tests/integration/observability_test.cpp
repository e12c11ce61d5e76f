// Metrics, logs and traces of the real system: /metrics checked by the real
// `promtool` and scraped by a real `prometheus` over the optional TCP
// listener.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "testkit/command.hpp"
#include "testkit/eventually.hpp"
#include "tests/integration/system.hpp"

namespace ringmart::test {
namespace {

namespace fs = std::filesystem;

// The value of the series written exactly `series` (name and labels as
// rendered) in a text exposition, or nullopt when it is absent.
std::optional<double> sample(const std::string& text, const std::string& series) {
  std::size_t at = 0;
  while ((at = text.find(series + " ", at)) != std::string::npos) {
    if (at == 0 || text[at - 1] == '\n') {
      const auto start = at + series.size() + 1;
      const auto end = text.find('\n', start);
      return std::stod(text.substr(start, end - start));
    }
    at += series.size();
  }
  return std::nullopt;
}

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0 and released).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    return -1;
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

// Runs `argv` in the background (its output into `log`); stopped by pid.
class Background {
 public:
  Background(const std::vector<std::string>& argv, const std::string& log) {
    pid_ = ::fork();
    if (pid_ == 0) {
      std::FILE* out = std::freopen(log.c_str(), "w", stdout);
      if (!out || ::dup2(::fileno(stdout), 2) < 0) ::_exit(127);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execvp(args[0], args.data());
      ::_exit(127);
    }
  }
  ~Background() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;

 private:
  pid_t pid_ = -1;
};

std::string curl(const std::string& url) {
  return testkit::run_command("curl -sS --max-time 5 '" + url + "' 2>&1").out;
}

class ObservabilityTest : public ::testing::Test {
 protected:
  std::int64_t place(System& sys, std::int64_t user, std::int64_t product, std::int64_t quantity) {
    const json body = {{"user_id", user},
                       {"items", {{{"product_id", product}, {"quantity", quantity}}}},
                       {"shipping", 100},
                       {"payment", {{"token", "tok_ok"}, {"installments", 1}}}};
    auto r = sys.api("POST", "/v1/orders", body);
    EXPECT_EQ(r.status, 202) << r.text;
    return r.status == 202 ? r.body["order_id"].get<std::int64_t>() : -1;
  }
};

TEST_F(ObservabilityTest, MetricsPassPromtoolAndCountWhatHappened) {
  System sys;
  ASSERT_TRUE(sys.start());
  const auto product = sys.create_product("lamp", 1500, 3);
  const auto user = sys.create_user("watcher");
  ASSERT_GT(product, 0);
  ASSERT_GT(user, 0);
  std::vector<std::int64_t> orders;
  for (int i = 0; i < 3; ++i) orders.push_back(place(sys, user, product, 1));
  orders.push_back(place(sys, user, product, 5));  // more than is left: OUT_OF_STOCK
  for (auto id : orders) {
    ASSERT_GT(id, 0);
    const auto saga = sys.wait_saga(id);
    ASSERT_FALSE(saga.is_null());
  }
  // A method nobody routes: counted, but under "other", never under its own name.
  ASSERT_EQ(sys.api("BREW", "/v1/orders").status, 405);

  const auto m = sys.admin("GET", "/metrics");
  ASSERT_EQ(m.status, 200);
  EXPECT_EQ(m.headers.at("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  const auto file = fs::path(sys.state_dir()).parent_path() / "metrics.txt";
  std::ofstream(file) << m.text;
  const auto lint = testkit::run_command("promtool check metrics < " + file.string() + " 2>&1");
  EXPECT_EQ(lint.exit_code, 0) << lint.out;

  const auto& t = m.text;
  EXPECT_EQ(sample(t, "ringmart_saga_duration_seconds_count{outcome=\"completed\"}"), 3);
  EXPECT_EQ(sample(t, "ringmart_saga_duration_seconds_count{outcome=\"failed\"}"), 1);
  EXPECT_EQ(sample(t, "ringmart_orders_completed_total"), 3);
  EXPECT_EQ(sample(t, "ringmart_orders_failed_total{reason=\"OUT_OF_STOCK\"}"), 1);
  EXPECT_EQ(sample(t, "ringmart_orders_failed_total{reason=\"PAYMENT_DECLINED\"}"), 0);
  // Every order tried its stock; only the three that got it went on to pay.
  EXPECT_EQ(sample(t,
                   "ringmart_saga_step_round_trip_seconds_count{step=\"deduct_inventory\","
                   "phase=\"forward\"}"),
            4);
  EXPECT_EQ(sample(t,
                   "ringmart_saga_step_round_trip_seconds_count{step=\"complete_payment\","
                   "phase=\"forward\"}"),
            3);
  EXPECT_EQ(sample(t,
                   "ringmart_saga_step_round_trip_seconds_count{step=\"fail_order\","
                   "phase=\"compensation\"}"),
            1);
  // Cumulative buckets: the +Inf bucket holds every observation.
  EXPECT_EQ(sample(t, "ringmart_saga_duration_seconds_bucket{outcome=\"completed\",le=\"+Inf\"}"),
            3);
  EXPECT_EQ(sample(t,
                   "ringmart_http_request_duration_seconds_count{socket=\"api\",method=\"POST\","
                   "route=\"/v1/orders\",code=\"2xx\"}"),
            4);
  EXPECT_EQ(sample(t,
                   "ringmart_http_request_duration_seconds_count{socket=\"api\",method=\"other\","
                   "route=\"unmatched\",code=\"4xx\"}"),
            1);
  EXPECT_EQ(t.find("BREW"), std::string::npos);
  EXPECT_GT(sample(t, "ringmart_lmdb_map_used_bytes{daemon=\"order\"}").value_or(0), 0);
  EXPECT_GT(sample(t, "ringmart_lmdb_map_size_bytes{daemon=\"order\"}").value_or(0),
            sample(t, "ringmart_lmdb_map_used_bytes{daemon=\"order\"}").value_or(0));
  EXPECT_EQ(sample(t, "ringmart_outbox_pending{from=\"supervisor\",to=\"product\"}"), 0);
  EXPECT_EQ(sample(t, "ringmart_daemon_quarantined_total{daemon=\"payment\"}"), 0);
  EXPECT_TRUE(sys.stop());
}

TEST_F(ObservabilityTest, AStockPrometheusScrapesTheTcpListener) {
  const int port = free_port();
  ASSERT_GT(port, 0);
  System sys("[metrics]\nlisten = \"127.0.0.1:" + std::to_string(port) + "\"\n");
  ASSERT_TRUE(sys.start());
  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  EXPECT_NE(curl(base + "/metrics").find("ringmart_daemon_up{daemon=\"gateway\"} 1"),
            std::string::npos);
  // /metrics only: nothing else of the API is reachable over TCP.
  EXPECT_NE(curl(base + "/v1/health").find("NOT_FOUND"), std::string::npos);

  const auto dir = fs::path(sys.state_dir()).parent_path() / "prometheus";
  fs::create_directories(dir);
  std::ofstream(dir / "prometheus.yml")
      << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
         "scrape_configs:\n  - job_name: ringmart\n    static_configs:\n"
         "      - targets: ['127.0.0.1:"
      << port << "']\n";
  const int web = free_port();
  ASSERT_GT(web, 0);
  Background prometheus({"prometheus", "--config.file=" + (dir / "prometheus.yml").string(),
                         "--storage.tsdb.path=" + (dir / "data").string(),
                         "--web.listen-address=127.0.0.1:" + std::to_string(web)},
                        (dir / "prometheus.log").string());
  const std::string api = "http://127.0.0.1:" + std::to_string(web) + "/api/v1/query?query=";
  auto value_of = [&](const std::string& query) -> std::string {
    const auto out = json::parse(curl(api + query), nullptr, false);
    if (!out.is_object() || out.value("status", "") != "success") return "";
    const auto& result = out["data"]["result"];
    if (!result.is_array() || result.empty()) return "";
    return result[0]["value"][1].get<std::string>();
  };
  EXPECT_TRUE(testkit::eventually([&] { return value_of("up") == "1"; }, 30000))
      << testkit::run_command("cat " + (dir / "prometheus.log").string()).out;
  EXPECT_EQ(value_of("ringmart_daemon_up%7Bdaemon%3D%22order%22%7D"), "1");
  EXPECT_TRUE(sys.stop());
}

TEST_F(ObservabilityTest, AMalformedMetricsListenAddressStopsTheStartWith78) {
  for (const std::string bad : {"localhost:9464", "127.0.0.1:99999", "127.0.0.1", "::1:9464"}) {
    System sys("[metrics]\nlisten = \"" + bad + "\"\n");
    ASSERT_TRUE(sys.start(false));
    EXPECT_EQ(sys.wait_exit(10000), 78) << bad;
    EXPECT_NE(sys.log().find("[metrics] listen"), std::string::npos) << sys.log();
  }
}

}  // namespace
}  // namespace ringmart::test
