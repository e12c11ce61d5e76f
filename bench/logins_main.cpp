// ringmart-bench-logins: what a burst of logins costs the rest of the API.
//
// Starts the real system with the shipped [accounts] cost (Argon2id,
// libsodium's "interactive" limits) and customer_auth = "token", signs up
// --users customers with passwords, then measures, with --readers clients
// reading products (GET /v1/products/{id}) and --buyers clients placing
// orders with their tokens (POST /v1/orders, Prefer: wait) in closed loops:
//   1. --seconds without logins (the baseline);
//   2. --seconds with --login-clients more clients logging in back to back.
// Prints logins/s and the p50/p99 of the other requests in both phases as
// JSON (stdout and --out). Not a test: figures, not assertions.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "bench/system.hpp"
#include "http/client.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace ringmart;

namespace {

struct Samples {
  std::vector<std::int64_t> us;
  std::size_t errors = 0;
  std::size_t busy = 0;  // 503 BUSY / 429
};

json figures(std::vector<std::int64_t> us, double seconds) {
  std::ranges::sort(us);
  auto at = [&](double p) {
    if (us.empty()) return 0.0;
    const auto i = static_cast<std::size_t>(p / 100.0 * static_cast<double>(us.size() - 1));
    return static_cast<double>(us[i]) / 1000.0;
  };
  return {{"count", us.size()},
          {"per_s", seconds > 0 ? static_cast<double>(us.size()) / seconds : 0.0},
          {"p50_ms", at(50)},
          {"p99_ms", at(99)},
          {"max_ms", at(100)}};
}

// Runs `clients` threads calling `one(client index, http client)` until `stop`;
// each call's latency goes to its thread's samples (merged on return).
template <class Fn>
Samples closed_loop(const std::string& socket, unsigned clients, std::atomic<bool>& stop, Fn one) {
  std::vector<Samples> per(clients);
  std::vector<std::thread> threads;
  for (unsigned c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      http::UnixClient client(socket, std::chrono::seconds(60));
      while (!stop.load(std::memory_order_relaxed)) {
        const auto t0 = Clock::now();
        const int status = one(c, client);
        const auto us =
            std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();
        if (status == 200 || status == 201 || status == 202) {
          per[c].us.push_back(us);
        } else if (status == 503 || status == 429) {
          ++per[c].busy;
        } else {
          ++per[c].errors;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  Samples all;
  for (auto& s : per) {
    all.us.insert(all.us.end(), s.us.begin(), s.us.end());
    all.errors += s.errors;
    all.busy += s.busy;
  }
  return all;
}

int status_of(const std::expected<http::ClientResponse, std::error_code>& r) {
  return r ? r->status : 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ringmart-bench-logins: logins/s and the latency of other requests during a burst"};
  unsigned users = 64, login_clients = 16, readers = 4, buyers = 4;
  double seconds = 10;
  std::string out, base_dir = "/var/tmp";
  app.add_option("--users", users, "customers with a password")->capture_default_str();
  app.add_option("--login-clients", login_clients, "clients logging in back to back")
      ->capture_default_str();
  app.add_option("--readers", readers, "clients reading products")->capture_default_str();
  app.add_option("--buyers", buyers, "clients placing orders")->capture_default_str();
  app.add_option("--seconds", seconds, "length of each phase")->capture_default_str();
  app.add_option("--out", out, "also write the JSON here");
  app.add_option("--base-dir", base_dir, "where the system's state goes")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  const fs::path bin = fs::canonical("/proc/self/exe").parent_path();
  char tmpl[4096];
  std::snprintf(tmpl, sizeof tmpl, "%s/ringmart-logins.XXXXXX", base_dir.c_str());
  if (!::mkdtemp(tmpl)) {
    std::perror("mkdtemp");
    return 1;
  }
  const fs::path dir = tmpl;
  // The shipped defaults but the storefront authenticates with tokens.
  auto config = bench::bench_config("process");
  const std::string trusted = "customer_auth = \"trusted\"";
  config.replace(config.find(trusted), trusted.size(), "customer_auth = \"token\"");
  auto sys = bench::RunningSystem::start(bin, dir, config);
  if (!sys) {
    std::cerr << sys.error() << "\n";
    return 1;
  }
  const std::string api = ((*sys)->runtime_dir() / "api.sock").string();
  const std::string admin = ((*sys)->runtime_dir() / "admin.sock").string();

  http::UnixClient setup(admin, std::chrono::seconds(60));
  auto product = setup.request(
      "POST", "/v1/products",
      json{{"name", "mug"}, {"category", "bench"}, {"price", 1500}, {"stock", 100'000'000}}.dump());
  if (status_of(product) != 201) {
    std::cerr << "cannot create the product\n";
    return 1;
  }
  const auto product_id = json::parse(product->body)["id"].get<std::uint64_t>();
  std::vector<std::string> emails, tokens;
  const auto signup_start = Clock::now();
  for (unsigned i = 0; i < users; ++i) {
    emails.push_back("bench" + std::to_string(i) + "@example.com");
    auto r = setup.request("POST", "/v1/users",
                           json{{"name", "bench"},
                                {"email", emails.back()},
                                {"password", "bench-password-" + std::to_string(i)}}
                               .dump());
    if (status_of(r) != 201) {
      std::cerr << "sign-up " << i << " failed: " << (r ? r->body : r.error().message()) << "\n";
      return 1;
    }
    auto s = setup.request(
        "POST", "/v1/sessions",
        json{{"email", emails.back()}, {"password", "bench-password-" + std::to_string(i)}}.dump());
    if (status_of(s) != 201) {
      std::cerr << "login " << i << " failed\n";
      return 1;
    }
    tokens.push_back(json::parse(s->body)["token"].get<std::string>());
  }
  const double signup_s = std::chrono::duration<double>(Clock::now() - signup_start).count();

  const auto read_one = [&](unsigned, http::UnixClient& c) {
    return status_of(c.request("GET", "/v1/products/" + std::to_string(product_id)));
  };
  const std::string order = json{
      {"items", {{{"product_id", product_id}, {"quantity", 1}}}},
      {"payment",
       {{"token", "tok_ok"}}}}.dump();
  const auto buy_one = [&](unsigned c, http::UnixClient& client) {
    return status_of(client.request(
        "POST", "/v1/orders", order,
        {{"Authorization", "Bearer " + tokens[c % tokens.size()]}, {"Prefer", "wait=10"}}));
  };
  std::atomic<std::size_t> next_login{0};
  const auto login_one = [&](unsigned, http::UnixClient& c) {
    const auto i = next_login.fetch_add(1) % users;
    return status_of(c.request(
        "POST", "/v1/sessions",
        json{{"email", emails[i]}, {"password", "bench-password-" + std::to_string(i)}}.dump()));
  };

  auto phase = [&](bool logins) {
    std::atomic<bool> stop{false};
    Samples reads, orders, signins;
    std::thread r([&] { reads = closed_loop(api, readers, stop, read_one); });
    std::thread b([&] { orders = closed_loop(api, buyers, stop, buy_one); });
    std::thread l;
    if (logins)
      l = std::thread([&] { signins = closed_loop(api, login_clients, stop, login_one); });
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    stop = true;
    r.join();
    b.join();
    if (l.joinable()) l.join();
    json j = {{"product_reads", figures(reads.us, seconds)},
              {"orders", figures(orders.us, seconds)},
              {"errors", reads.errors + orders.errors + signins.errors}};
    if (logins) {
      j["logins"] = figures(signins.us, seconds);
      j["logins"]["refused_busy_or_429"] = signins.busy;
    }
    return j;
  };
  json result = {{"users", users},
                 {"login_clients", login_clients},
                 {"readers", readers},
                 {"buyers", buyers},
                 {"seconds_per_phase", seconds},
                 {"cores", std::thread::hardware_concurrency()},
                 {"signup_and_login_s_per_user", signup_s / users}};
  result["baseline"] = phase(false);
  result["during_login_burst"] = phase(true);
  result["cpu_seconds"] = (*sys)->cpu_seconds();
  (*sys)->stop();
  std::error_code ec;
  fs::remove_all(dir, ec);
  std::cout << result.dump(2) << "\n";
  if (!out.empty()) std::ofstream(out) << result.dump(2) << "\n";
  return 0;
}
