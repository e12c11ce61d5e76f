// ringmart-chaos — replays Olist (or generated) orders with concurrency
// against a real ringmart while a nemesis kills, hangs and "reboots" its
// processes, then runs the invariant checker and reports the figures.
// See tests/nemesis/README.md.
//
// Exit codes: 0 no violation, 1 violations (or a harness failure: orders
// never accepted, a probe timed out, the supervisor died on its own),
// 2 bad arguments / data, 3 the system did not start or set-up failed.
#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "tests/nemesis/nemesis.hpp"
#include "tools/olist/generate.hpp"
#include "tools/olist/olist.hpp"

using namespace ringmart;

namespace {

bool parse_interval(const std::string& text, int& min_ms, int& max_ms) {
  const auto colon = text.find(':');
  try {
    min_ms = std::stoi(text.substr(0, colon));
    max_ms = colon == std::string::npos ? min_ms : std::stoi(text.substr(colon + 1));
  } catch (const std::exception&) {
    return false;
  }
  return min_ms >= 1 && max_ms >= min_ms;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "ringmart-chaos: replay orders against a real ringmart while a nemesis SIGKILLs, "
      "SIGSTOPs and reboots it, then check every invariant.\n"
      "Exit codes: 0 ok, 1 violations or harness failure, 2 bad arguments, 3 system failure."};
  std::string olist_dir;
  std::size_t generate_orders = 0;
  std::uint64_t seed = 1;
  std::size_t limit = 0;
  double stock_factor = 1.0;
  unsigned repeat = 1;
  unsigned concurrency = 16;
  std::string interval = "100:300";
  std::string kinds_text = "kill,stop,reboot";
  int stop_every = 25, reboot_every = 60;
  unsigned decline_percent = 0, timeout_percent = 0, capture_fail_percent = 0;
  int heartbeat_timeout_ms = 1000, backoff_max_ms = 200;
  std::string durability = "process";
  bool baseline = false;
  std::string results_file;
  bool keep_dir = false;
  std::string bin_dir;
  std::string base_dir;
  double quiet_timeout_s = 300;
  bool progress = false;
  std::size_t min_kills = 0;

  auto* olist_opt = app.add_option("--olist", olist_dir, "Olist directory to replay");
  auto* gen_opt =
      app.add_option("--generate", generate_orders, "replay a generated data set of N orders")
          ->check(CLI::Range(std::size_t{1}, std::size_t{10'000'000}));
  olist_opt->excludes(gen_opt);
  app.add_option("--seed", seed, "seed of the generated data set and of the nemesis")
      ->capture_default_str();
  app.add_option("--limit", limit, "only the first N Olist orders (0 = all)")
      ->capture_default_str();
  app.add_option("--stock-factor", stock_factor, "initial stock = units sold x factor")
      ->check(CLI::Range(0.0, 1e6))
      ->capture_default_str();
  app.add_option("--repeat", repeat,
                 "replay the data set K times (fresh users, products and idempotency keys)")
      ->check(CLI::Range(1u, 10000u))
      ->capture_default_str();
  app.add_option("--min-kills", min_kills,
                 "replay further rounds (beyond --repeat) until this many kills happened")
      ->capture_default_str();
  app.add_option("--concurrency", concurrency, "client threads")
      ->check(CLI::Range(1u, 1024u))
      ->capture_default_str();
  app.add_option("--kill-interval-ms", interval, "pause between two faults, MIN:MAX ms")
      ->capture_default_str();
  app.add_option("--kinds", kinds_text, "fault kinds, comma-separated: kill,stop,reboot")
      ->capture_default_str();
  app.add_option("--stop-every", stop_every, "every Nth fault is a SIGSTOP hang (with 'stop')")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--reboot-every", reboot_every, "every Nth fault is a reboot (with 'reboot')")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--decline-percent", decline_percent, "orders paying with tok_decline")
      ->check(CLI::Range(0u, 100u))
      ->capture_default_str();
  app.add_option("--timeout-percent", timeout_percent, "orders paying with tok_timeout")
      ->check(CLI::Range(0u, 100u))
      ->capture_default_str();
  app.add_option("--capture-fail-percent", capture_fail_percent,
                 "orders paying with tok_capture_fail")
      ->check(CLI::Range(0u, 100u))
      ->capture_default_str();
  app.add_option("--heartbeat-timeout-ms", heartbeat_timeout_ms,
                 "[runtime] heartbeat_timeout_ms of the system (hang detection)")
      ->check(CLI::Range(100, 600000))
      ->capture_default_str();
  app.add_option("--backoff-max-ms", backoff_max_ms, "[supervisor] backoff_max_ms of the system")
      ->check(CLI::Range(0, 600000))
      ->capture_default_str();
  app.add_option("--durability", durability, "process | fsync")
      ->check(CLI::IsMember({"process", "fsync"}))
      ->capture_default_str();
  app.add_flag("--fault-free-baseline", baseline,
               "first replay the same orders on a fresh system without faults");
  app.add_option("--results", results_file, "write the figures as JSON to FILE");
  app.add_flag("--keep-dir", keep_dir, "keep the system's directory (logs, LMDB)");
  app.add_option("--dir", base_dir, "the system's directory (default: a new /tmp directory)");
  app.add_option("--bin-dir", bin_dir,
                 "directory of ringmart-supervisor and the daemons (default: next to this tool)");
  app.add_option("--quiet-timeout-s", quiet_timeout_s,
                 "how long to wait for every saga to end after the load")
      ->check(CLI::Range(1.0, 86400.0))
      ->capture_default_str();
  app.add_flag("--progress", progress, "replay progress lines on stderr");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }

  nemesis::RunOptions options;
  if (!parse_interval(interval, options.nemesis.interval_min_ms, options.nemesis.interval_max_ms)) {
    std::cerr << "ringmart-chaos: --kill-interval-ms must be MIN:MAX with 1 <= MIN <= MAX\n";
    return 2;
  }
  options.nemesis.kinds.clear();
  std::stringstream kinds(kinds_text);
  for (std::string k; std::getline(kinds, k, ',');) {
    if (k.empty() || k == "none") continue;
    auto kind = nemesis::parse_fault_kind(k);
    if (!kind) {
      std::cerr << "ringmart-chaos: unknown fault kind '" << k << "' (kill, stop, reboot)\n";
      return 2;
    }
    options.nemesis.kinds.insert(*kind);
  }
  if (decline_percent + timeout_percent + capture_fail_percent > 100) {
    std::cerr << "ringmart-chaos: the payment mix exceeds 100%\n";
    return 2;
  }

  if (!olist_dir.empty()) {
    auto loaded = olist::load_olist(olist_dir, {.stock_factor = stock_factor, .max_orders = limit});
    if (!loaded) {
      std::cerr << "ringmart-chaos: " << loaded.error() << "\n";
      return 2;
    }
    options.data = std::move(*loaded);
  } else {
    options.data = olist::generate({.seed = seed,
                                    .orders = generate_orders ? generate_orders : 2000,
                                    .stock_factor = stock_factor});
  }
  if (options.data.orders.empty()) {
    std::cerr << "ringmart-chaos: the data set has no orders\n";
    return 2;
  }

  options.repeat = repeat;
  options.min_kills = min_kills;
  options.fault_free_baseline = baseline;
  options.quiet_timeout_ms = static_cast<int>(quiet_timeout_s * 1000);
  options.replay.concurrency = concurrency;
  options.replay.progress = progress;
  options.replay.decline_percent = decline_percent;
  options.replay.timeout_percent = timeout_percent;
  options.replay.capture_fail_percent = capture_fail_percent;
  options.nemesis.seed = seed;
  options.nemesis.stop_every = stop_every;
  options.nemesis.reboot_every = reboot_every;
  options.nemesis.heartbeat_timeout_ms = heartbeat_timeout_ms;
  options.system.bin_dir = bin_dir.empty()
                               ? std::filesystem::read_symlink("/proc/self/exe").parent_path()
                               : std::filesystem::path(bin_dir);
  options.system.base_dir = base_dir;
  options.system.keep_dir = keep_dir;
  options.system.config = nemesis::chaos_config(heartbeat_timeout_ms, backoff_max_ms, durability);
  if (!std::filesystem::exists(options.system.bin_dir / "ringmart-supervisor")) {
    std::cerr << "ringmart-chaos: no ringmart-supervisor in " << options.system.bin_dir.string()
              << " (--bin-dir)\n";
    return 2;
  }

  std::cerr << "data: " << options.data.origin << ", " << options.data.orders.size() << " orders x "
            << repeat << " = " << options.data.orders.size() * repeat << " orders\n";
  auto result = nemesis::run(std::move(options), std::cerr);
  if (!result) {
    std::cerr << "ringmart-chaos: " << result.error() << "\n";
    return 3;
  }
  nemesis::print_summary(*result, std::cout);
  if (!results_file.empty()) {
    std::ofstream out(results_file);
    out << nemesis::to_json(*result).dump(2) << "\n";
    if (!out) {
      std::cerr << "ringmart-chaos: cannot write " << results_file << "\n";
      return 2;
    }
  }
  if (keep_dir) std::cerr << "system directory kept: " << result->base_dir << "\n";
  return result->ok() ? 0 : 1;
}
