// ringmart-replay — replays the Olist data set (or a generated one) against a
// running ringmart through its HTTP API and prints throughput, latency, failure
// reasons and best sellers; --verify checks the end state. See README.md.
#include <CLI/CLI.hpp>
#include <cmath>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>

#include "tools/olist/generate.hpp"
#include "tools/olist/olist.hpp"
#include "tools/replay/replay.hpp"

using namespace ringmart;

int main(int argc, char** argv) {
  CLI::App app{
      "ringmart-replay: replay real Olist orders (or a generated data set) against a running "
      "ringmart through RUNDIR/api.sock and RUNDIR/admin.sock.\n"
      "Exit codes: 0 ok, 1 verification failed, 2 bad arguments/data, 3 system unreachable."};
  std::string dir;
  std::string runtime_dir;
  unsigned concurrency = 16;
  size_t limit = 0;
  double stock_factor = 1.0;
  size_t generate_orders = 2000;
  uint64_t seed = 1;
  int64_t wait_ms = 5000;
  double startup_timeout_s = 30;
  double order_timeout_s = 120;
  std::string json_file;
  std::string key_prefix;
  bool do_verify = false;
  bool no_progress = false;
  unsigned decline_percent = 0, timeout_percent = 0, capture_fail_percent = 0;

  auto* dir_opt = app.add_option("DIR", dir,
                                 "Olist directory (olist_order_items_dataset.csv, ...); "
                                 "without it a generated data set is used");
  app.add_option("--runtime-dir", runtime_dir, "ringmart runtime directory (api.sock, admin.sock)")
      ->required();
  app.add_option(
         "--concurrency", concurrency,
         "connections (set-up and verify: one thread each; the replay runs them all on one thread)")
      ->check(CLI::Range(1u, 1024u))
      ->capture_default_str();
  app.add_option("--limit", limit, "replay only the first N orders (0 = all)")
      ->capture_default_str();
  app.add_option("--stock-factor", stock_factor,
                 "initial stock = units sold x factor (< 1 makes orders fail on stock)")
      ->check(CLI::Range(0.0, 1e6))
      ->capture_default_str();
  auto* gen_opt = app.add_option("--generate", generate_orders,
                                 "number of orders of the generated data set (without DIR)")
                      ->check(CLI::Range(size_t{1}, size_t{10'000'000}))
                      ->capture_default_str();
  app.add_option("--seed", seed, "seed of the generated data set")->capture_default_str();
  app.add_option("--wait-ms", wait_ms,
                 "how long one request waits for an order's outcome (Prefer: wait on the "
                 "POST, wait_ms of each long poll)")
      ->check(CLI::Range(int64_t{1}, int64_t{30000}))
      ->capture_default_str();
  bool poll = false;
  app.add_flag("--poll", poll,
               "POST without Prefer: wait (answered 202 at once), then long-poll GET "
               "/v1/orders/{id}: two requests per order");
  app.add_option("--json", json_file, "also write the figures as JSON to FILE");
  app.add_flag("--verify", do_verify, "check stock, points, coupons and rankings afterwards");
  app.add_option("--key-prefix", key_prefix,
                 "prefix of each Idempotency-Key (use a new one to replay again on the same "
                 "system)");
  app.add_option("--startup-timeout", startup_timeout_s,
                 "seconds to wait for GET /v1/health to answer 200")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  app.add_option("--order-timeout", order_timeout_s,
                 "seconds after which an order still PENDING counts as an error")
      ->check(CLI::Range(0.1, 86400.0))
      ->capture_default_str();
  app.add_flag("--no-progress", no_progress, "no progress line on stderr");
  app.add_option("--decline-percent", decline_percent,
                 "percent of the orders paying with tok_decline (by source id hash)")
      ->check(CLI::Range(0u, 100u))
      ->capture_default_str();
  app.add_option("--timeout-percent", timeout_percent,
                 "percent of the orders paying with tok_timeout (by source id hash)")
      ->check(CLI::Range(0u, 100u))
      ->capture_default_str();
  app.add_option("--capture-fail-percent", capture_fail_percent,
                 "percent of the orders paying with tok_capture_fail (by source id hash)")
      ->check(CLI::Range(0u, 100u))
      ->capture_default_str();
  double rate = 0;
  app.add_option("--rate", rate,
                 "open loop: send this many orders per second (latency from the scheduled "
                 "time); 0 = closed loop")
      ->check(CLI::Range(0.0, 1e7))
      ->capture_default_str();
  dir_opt->excludes(gen_opt);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? replay::kExitOk : replay::kExitBadInput;
  }

  if (decline_percent + timeout_percent + capture_fail_percent > 100) {
    std::cerr << "ringmart-replay: --decline-percent + --timeout-percent + "
                 "--capture-fail-percent must not exceed 100\n";
    return replay::kExitBadInput;
  }

  // Data.
  olist::Dataset data;
  if (!dir.empty()) {
    auto loaded = olist::load_olist(dir, {.stock_factor = stock_factor, .max_orders = limit});
    if (!loaded) {
      std::cerr << "ringmart-replay: " << loaded.error() << "\n";
      return replay::kExitBadInput;
    }
    data = std::move(*loaded);
  } else {
    const size_t n = limit != 0 ? std::min(limit, generate_orders) : generate_orders;
    data = olist::generate({.seed = seed, .orders = n, .stock_factor = stock_factor});
  }
  if (data.orders.empty()) {
    std::cerr << "ringmart-replay: the data set has no orders\n";
    return replay::kExitBadInput;
  }
  size_t vouchers = 0;
  for (const auto& o : data.orders) vouchers += o.voucher_cents > 0;
  std::cerr << "data: " << data.origin << (dir.empty() ? "" : " from " + dir) << ": "
            << data.orders.size() << " orders, " << data.products.size() << " products, "
            << olist::total_units(data) << " units, " << vouchers << " with vouchers\n";

  replay::Options options;
  options.runtime_dir = runtime_dir;
  options.concurrency = concurrency;
  options.wait = std::chrono::milliseconds(wait_ms);
  options.prefer_wait = !poll;
  options.startup_timeout = std::chrono::milliseconds(std::llround(startup_timeout_s * 1000));
  options.order_timeout = std::chrono::milliseconds(std::llround(order_timeout_s * 1000));
  options.key_prefix = key_prefix;
  options.progress = !no_progress;
  options.decline_percent = decline_percent;
  options.timeout_percent = timeout_percent;
  options.capture_fail_percent = capture_fail_percent;
  options.arrival_rate_per_s = rate;

  // System.
  if (auto healthy = replay::wait_healthy(options, std::cerr); !healthy) {
    std::cerr << "ringmart-replay: " << healthy.error().message << "\n";
    return healthy.error().exit_code;
  }
  auto ids = replay::set_up(data, options, std::cerr);
  if (!ids) {
    std::cerr << "ringmart-replay: " << ids.error().message << "\n";
    return ids.error().exit_code;
  }

  // Replay and report.
  const auto result = replay::run_replay(data, *ids, options);
  auto summary = replay::summarize(data, result);
  replay::fetch_bestsellers(data, *ids, options, summary);
  replay::print_summary(summary, std::cout);

  std::optional<replay::VerifyResult> verified;
  if (do_verify) {
    verified = replay::verify(data, *ids, result, options);
    for (const auto& v : verified->violations) std::cout << "verify: " << v << "\n";
    if (verified->ok()) {
      std::cout << "verify: OK (" << verified->orders << " orders, " << verified->products
                << " products)\n";
    } else {
      std::cout << "verify: FAILED, " << verified->violations.size() << " violations ("
                << verified->orders << " orders, " << verified->products << " products)\n";
    }
  }
  std::cout << std::flush;

  int rc = replay::kExitOk;
  if (verified && !verified->ok()) {
    rc = replay::kExitVerifyFailed;
  } else if (summary.transport_errors > 0) {
    std::cerr << "ringmart-replay: " << summary.transport_errors
              << " orders failed on the connection (system unreachable?)\n";
    rc = replay::kExitUnreachable;
  }

  if (!json_file.empty()) {
    auto j = replay::summary_json(summary);
    if (verified) {
      j["verify"] = {{"ok", verified->ok()},
                     {"orders", verified->orders},
                     {"products", verified->products},
                     {"violations", verified->violations}};
    }
    j["exit_code"] = rc;
    std::ofstream out(json_file);
    out << j.dump(2) << "\n";
    if (!out) {
      std::cerr << "ringmart-replay: cannot write " << json_file << "\n";
      return replay::kExitBadInput;
    }
  }
  return rc;
}
