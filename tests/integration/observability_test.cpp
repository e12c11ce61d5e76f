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
#include <set>
#include <sstream>
#include <string>
#include <tuple>

#include "telemetry/trace_context.hpp"
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

  // Every query of the shipped Grafana dashboard evaluates in this Prometheus,
  // and names only metrics that /metrics exposes.
  std::ifstream file(std::string(RINGMART_SOURCE_DIR) + "/deploy/grafana/ringmart.json");
  const auto dashboard = json::parse(file, nullptr, false);
  ASSERT_TRUE(dashboard.is_object());
  const auto exposed = curl(base + "/metrics");
  std::size_t queries = 0;
  for (const auto& panel : dashboard["panels"]) {
    for (const auto& target : panel["targets"]) {
      std::string expr = target["expr"];
      for (auto at = expr.find("$__rate_interval"); at != std::string::npos;
           at = expr.find("$__rate_interval")) {
        expr.replace(at, std::string("$__rate_interval").size(), "1m");
      }
      std::ofstream(dir / "query") << expr;
      const auto out = json::parse(
          testkit::run_command("curl -sS --max-time 5 -G --data-urlencode query@" +
                               (dir / "query").string() +
                               " http://127.0.0.1:" + std::to_string(web) + "/api/v1/query")
              .out,
          nullptr, false);
      EXPECT_TRUE(out.is_object() && out.value("status", "") == "success")
          << panel["title"] << ": " << expr << " -> " << out.dump();
      ++queries;
      for (std::size_t at = expr.find("ringmart_"); at != std::string::npos;
           at = expr.find("ringmart_", at + 1)) {
        auto end = expr.find_first_not_of("abcdefghijklmnopqrstuvwxyz_", at);
        std::string name = expr.substr(at, end - at);
        for (const char* suffix : {"_bucket", "_count", "_sum"}) {
          if (name.ends_with(suffix) && exposed.find("# TYPE " + name + " ") == std::string::npos)
            name.resize(name.size() - std::string(suffix).size());
        }
        EXPECT_NE(exposed.find("# TYPE " + name + " "), std::string::npos)
            << panel["title"] << " uses " << name << ", which /metrics does not expose";
        at = end == std::string::npos ? expr.size() : end;
      }
    }
  }
  EXPECT_GE(queries, 12u);
  EXPECT_TRUE(sys.stop());
}

TEST_F(ObservabilityTest, TheCallersTraceFollowsTheOrderIntoItsSagaAndBack) {
  System sys;
  ASSERT_TRUE(sys.start());
  const auto product = sys.create_product("desk", 9000, 10);
  const auto user = sys.create_user("tracer");
  ASSERT_GT(product, 0);
  ASSERT_GT(user, 0);
  const json body = {{"user_id", user},
                     {"items", {{{"product_id", product}, {"quantity", 1}}}},
                     {"payment", {{"token", "tok_ok"}}}};
  // The trace each answer names, and the trace its saga records.
  auto place = [&](const std::map<std::string, std::string>& headers) {
    auto r = sys.api("POST", "/v1/orders", body, headers);
    EXPECT_EQ(r.status, 202) << r.text;
    const auto response = telemetry::parse_traceparent(r.headers["traceresponse"]);
    EXPECT_TRUE(response) << r.headers["traceresponse"];
    const auto id = r.body.value("order_id", std::int64_t{0});
    const auto saga = sys.wait_saga(id);
    return std::tuple{id, response ? response->trace_id.hex() : "",
                      saga.is_null() ? json() : saga["trace_id"]};
  };
  const std::string caller = "0af7651916cd43dd8448eb211c80319c";
  const auto [id, answered, recorded] =
      place({{"traceparent", "00-" + caller + "-b7ad6b7169203331-01"}});
  EXPECT_EQ(answered, caller);
  EXPECT_EQ(recorded, caller);
  const auto show = sys.ctl("saga show " + std::to_string(id));
  EXPECT_NE(show.out.find("trace " + caller), std::string::npos) << show.out;
  const auto shown =
      json::parse(sys.ctl("-o json saga show " + std::to_string(id)).out, nullptr, false);
  ASSERT_TRUE(shown.is_object());
  EXPECT_EQ(shown["trace_id"], caller);

  // Malformed (upper case, a zero trace id, garbage) or absent: ignored, and a
  // new trace starts, different each time.
  std::set<std::string> fresh;
  for (const std::string bad :
       {"00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
        "00-00000000000000000000000000000000-b7ad6b7169203331-01", "not a traceparent", ""}) {
    std::map<std::string, std::string> headers;
    if (!bad.empty()) headers["traceparent"] = bad;
    const auto [other, new_answered, new_recorded] = place(headers);
    EXPECT_GT(other, 0) << bad;
    EXPECT_EQ(new_answered.size(), 32u) << bad;
    EXPECT_NE(new_answered, caller) << bad;
    EXPECT_EQ(new_recorded, new_answered) << bad;
    fresh.insert(new_answered);
  }
  EXPECT_EQ(fresh.size(), 4u);
  EXPECT_TRUE(sys.stop());
}

TEST_F(ObservabilityTest, JsonLogLinesCarryTheOrderSagaAndTraceOfEveryDaemon) {
  System sys("[runtime]\nlog_format = \"json\"\nlog_level = \"debug\"\n");
  ASSERT_TRUE(sys.start());
  const auto product = sys.create_product("chair", 2500, 10);
  const auto user = sys.create_user("jsonlog");
  const std::string caller = "4bf92f3577b34da6a3ce929d0e0e4736";
  auto r = sys.api("POST", "/v1/orders",
                   {{"user_id", user},
                    {"items", {{{"product_id", product}, {"quantity", 1}}}},
                    {"payment", {{"token", "tok_ok"}}}},
                   {{"traceparent", "00-" + caller + "-00f067aa0ba902b7-01"}});
  ASSERT_EQ(r.status, 202) << r.text;
  const auto id = r.body["order_id"].get<std::uint64_t>();
  ASSERT_FALSE(sys.wait_saga(static_cast<std::int64_t>(id)).is_null());
  EXPECT_TRUE(sys.stop());

  std::set<std::string> daemons;
  std::size_t lines = 0, not_json = 0;
  std::istringstream log(sys.log());
  for (std::string line; std::getline(log, line);) {
    const auto j = json::parse(line, nullptr, false);
    if (!j.is_object()) {
      ++not_json;
      continue;
    }
    ++lines;
    EXPECT_TRUE(j.contains("TIMESTAMP") && j.contains("PRIORITY") && j.contains("DAEMON") &&
                j.contains("MESSAGE"))
        << line;
    if (j.value("ORDER_ID", std::uint64_t{0}) != id) continue;
    EXPECT_EQ(j.value("SAGA_ID", std::uint64_t{0}), id) << line;
    EXPECT_EQ(j.value("TRACE_ID", ""), caller) << line;
    daemons.insert(j["DAEMON"].get<std::string>());
  }
  EXPECT_GT(lines, 20u);
  EXPECT_EQ(not_json, 0u) << sys.log().substr(0, 2000);
  for (const char* d : {"gateway", "order", "supervisor", "product", "payment", "ranking"}) {
    EXPECT_TRUE(daemons.count(d)) << d << " logged nothing about order " << id;
  }
}

TEST_F(ObservabilityTest, AnUnknownLogFormatIsAConfigurationErrorExit2) {
  System sys("[runtime]\nlog_format = \"xml\"\n");
  ASSERT_TRUE(sys.start(false));
  EXPECT_EQ(sys.wait_exit(10000), 2);
  EXPECT_NE(sys.log().find("log_format must be"), std::string::npos) << sys.log();
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
