// ringmart-bench: the system benchmarks of issue 4, side by side in one run on
// the same orders and machine:
//   api      the real system through api.sock (closed loop, N clients; then an
//            open loop at 50% of that throughput for the latency figures), in
//            durability `process` and `fsync`;
//   monolith one process, one LMDB environment, one write transaction per
//            order (and group commit), in both durabilities (bench/monolith.hpp);
//   micro    ring and Unix-socket round trips, read from the JSON that
//            ringmart-bench-micro wrote (--micro-json).
// Every run ends with the invariant sums checked (replay::verify through the
// API; the monolith's own check); a violation fails the run (exit 1).
// Writes the results as JSON (--out) and the latency samples (--samples-dir)
// for the CDF plot; scripts/bench.sh drives it and renders docs/benchmarks.md.
#include <sys/resource.h>
#include <sys/wait.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/inject.hpp"
#include "bench/monolith.hpp"
#include "bench/system.hpp"
#include "tools/olist/generate.hpp"
#include "tools/olist/olist.hpp"
#include "tools/replay/replay.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace ringmart;

namespace {

struct Args {
  std::string olist_dir;
  std::size_t generate = 0;
  unsigned rounds = 3;          // closed-loop rounds in `process`
  unsigned fsync_rounds = 1;    // closed-loop rounds in `fsync`
  unsigned inject_rounds = 10;  // saga-core rounds (injector in the gateway's place)
  std::size_t window = 256;     // saga-core orders in flight
  int batch_max = 0;            // [runtime] batch_max of the systems; 0 = by durability
  // The throughput is the system's maximum, so the closed loop needs enough
  // orders in flight to keep both cores busy: 16 clients gave 7.3k orders/s
  // (latency-bound, CPUs 11% idle), 32 8.4k, 64 9.8-10.4k, 128 9.8k, 256 9.7k.
  unsigned concurrency = 64;
  // fsync throughput comes from group commit, which needs orders in flight
  // (Little's law: rate = in flight / latency; ~16 durable commits, 20-80 ms, per order).
  unsigned fsync_concurrency = 512;
  // Open-loop clients are threads of this process on the same cores: enough for
  // rate x latency (~5-10 in flight at half the throughput); 128 added their own
  // scheduling delay to the tail (p99 27 ms against 8 ms with 32 at the same rate).
  unsigned open_loop_clients = 32;
  std::string out = "bench-results.json";
  std::string samples_dir;
  std::string base_dir = "/var/tmp";
  std::string micro_json;
  bool keep = false;
  bool process_only = false;
  bool fsync_only = false;
};

/// Latency figures of a set of outcomes, ms.
json latency_json(std::vector<std::int64_t> us) {
  std::ranges::sort(us);
  auto at = [&](double p) { return static_cast<double>(replay::percentile(us, p)) / 1000.0; };
  return {{"p50", at(50)},    {"p90", at(90)},  {"p99", at(99)},
          {"p999", at(99.9)}, {"max", at(100)}, {"count", us.size()}};
}

std::vector<std::int64_t> latencies(const std::vector<replay::ReplayResult>& results) {
  std::vector<std::int64_t> out;
  for (const auto& r : results) {
    for (const auto& o : r.outcomes) {
      if (o.error_kind.empty() && o.latency_us >= 0) out.push_back(o.latency_us);
    }
  }
  return out;
}

void write_samples(const std::string& dir, const std::string& name, std::vector<std::int64_t> us) {
  if (dir.empty()) return;
  fs::create_directories(dir);
  std::ranges::sort(us);
  std::ofstream out(fs::path(dir) / (name + ".dat"));
  out << "# latency_ms cumulative_fraction (" << name << ", " << us.size() << " orders)\n";
  // About 2,000 points for the shape; the tail stays exact (the last 1% is
  // written in full).
  const std::size_t n = us.size();
  const std::size_t step = std::max<std::size_t>(1, n / 2000);
  for (std::size_t i = 0; i < n; ++i) {
    if (i % step != 0 && i < n - n / 100) continue;
    out << static_cast<double>(us[i]) / 1000.0 << " "
        << static_cast<double>(i + 1) / static_cast<double>(n) << "\n";
  }
}

struct Phase {
  json figures;
  std::vector<std::int64_t> closed_us, open_us, core_us;
  bool ok = true;
};

double self_cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

/// ringmartctl ARGS against the system in `dir`; its exit code.
int ctl(const fs::path& bin, const std::string& dir, const std::string& args) {
  const std::string cmd = (bin / "ringmartctl").string() + " --runtime-dir " + dir + "/run" +
                          " --state-dir " + dir + "/state " + args + " >/dev/null 2>&1";
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/// The saga core: the gateway stopped, the injector in its place, then the
/// gateway started again. Adds "saga_core" to `phase.figures`.
bool run_saga_core(Phase& phase, bench::RunningSystem& sys, const fs::path& bin,
                   const std::string& dir, const olist::Dataset& data,
                   const std::vector<replay::Ids>& ids, unsigned first_round, const Args& args,
                   std::vector<replay::ReplayResult>& results) {
  if (ctl(bin, dir, "stop gateway") != 0) {
    std::cerr << "ringmart-bench: ringmartctl stop gateway failed\n";
    return false;
  }
  for (int i = 0; i < 1000 && sys.processes().contains("gateway"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  auto config = runtime::Config::load(dir + "/state", dir + "/run", dir + "/ringmart.toml");
  if (!config) {
    std::cerr << "ringmart-bench: " << config.error() << "\n";
    return false;
  }
  const auto cpu0 = sys.cpu_seconds();
  const double self0 = self_cpu_seconds();
  double wall = 0;
  std::size_t finished = 0;
  for (unsigned r = 0; r < args.inject_rounds; ++r) {
    bench::InjectOptions io;
    io.window = args.window;
    io.key_prefix = "i" + std::to_string(r) + "-";
    auto got = bench::inject_orders(*config, data, ids[first_round + r], io);
    if (!got) {
      std::cerr << "ringmart-bench: saga core: " << got.error() << "\n";
      return false;
    }
    wall += got->replay.wall_seconds;
    finished += got->finished;
    results.push_back(std::move(got->replay));
  }
  const double cpu =
      bench::total(sys.cpu_seconds()) - bench::total(cpu0) + (self_cpu_seconds() - self0);
  phase.core_us = latencies(results);
  const double per_s = wall > 0 ? static_cast<double>(finished) / wall : 0;
  phase.figures["saga_core"] = {
      {"orders", finished},
      {"window", args.window},
      {"wall_s", wall},
      {"orders_per_s", per_s},
      {"latency_ms", latency_json(phase.core_us)},
      {"cpu_s_per_1000_orders", cpu * 1000.0 / std::max<double>(1, finished)}};
  std::fprintf(
      stderr, "saga core (injector, %zu in flight): %zu orders, %.0f orders/s, p50 %.2f ms\n",
      args.window, finished, per_s, phase.figures["saga_core"]["latency_ms"]["p50"].get<double>());
  if (ctl(bin, dir, "start gateway") != 0) {
    std::cerr << "ringmart-bench: ringmartctl start gateway failed\n";
    return false;
  }
  replay::Options ro;
  ro.runtime_dir = sys.runtime_dir();
  std::ostringstream log;
  return replay::wait_healthy(ro, log).has_value() &&
         finished == static_cast<std::size_t>(args.inject_rounds) * data.orders.size();
}

std::string mkdtemp_in(const std::string& base, const std::string& tag) {
  std::string t = base + "/ringmart-bench-" + tag + "-XXXXXX";
  if (!::mkdtemp(t.data())) {
    std::perror(("mkdtemp " + t).c_str());
    std::exit(3);
  }
  return t;
}

/// The real system through api.sock. `open_loop`: also measure latency at
/// 50% of the closed-loop throughput on one further round.
Phase run_api(const olist::Dataset& data, const Args& args, const std::string& durability,
              unsigned rounds, bool open_loop) {
  Phase phase;
  const fs::path bin = fs::read_symlink("/proc/self/exe").parent_path();
  const std::string dir = mkdtemp_in(args.base_dir, "api-" + durability);
  auto sys = bench::RunningSystem::start(bin, dir, bench::bench_config(durability, args.batch_max));
  if (!sys) {
    std::cerr << "ringmart-bench: the system did not start: " << sys.error() << "\n";
    std::exit(3);
  }
  replay::Options ro;
  ro.runtime_dir = (*sys)->runtime_dir();
  ro.concurrency = durability == "fsync" ? args.fsync_concurrency : args.concurrency;
  ro.progress = false;
  ro.wait = std::chrono::milliseconds(5000);

  // Rounds: closed loop, then (process) the open loop and the saga core.
  const unsigned all_rounds = rounds + (open_loop ? 1 + args.inject_rounds : 0);
  std::vector<replay::Ids> ids;
  std::ostringstream setup_log;
  for (unsigned r = 0; r < all_rounds; ++r) {
    auto got = replay::set_up(data, ro, setup_log);
    if (!got) {
      std::cerr << "ringmart-bench: set-up failed: " << got.error().message << "\n";
      std::exit(3);
    }
    ids.push_back(std::move(*got));
  }

  // Closed loop.
  std::vector<replay::ReplayResult> closed;
  const auto cpu0 = (*sys)->cpu_seconds();
  const double client_cpu0 = self_cpu_seconds();
  double wall = 0;
  std::size_t terminal = 0, completed = 0, errors = 0;
  json per_round = json::array();  // the spread of the host, round by round
  for (unsigned r = 0; r < rounds; ++r) {
    ro.key_prefix = "c" + std::to_string(r) + "-";
    closed.push_back(replay::run_replay(data, ids[r], ro));
    wall += closed.back().wall_seconds;
    std::size_t round_terminal = 0;
    for (const auto& o : closed.back().outcomes) {
      if (!o.error_kind.empty()) ++errors;
      if (!o.status.empty()) ++round_terminal;
      if (o.status == "COMPLETED") ++completed;
    }
    terminal += round_terminal;
    per_round.push_back(closed.back().wall_seconds > 0
                            ? static_cast<double>(round_terminal) / closed.back().wall_seconds
                            : 0.0);
  }
  const double client_cpu = self_cpu_seconds() - client_cpu0;
  const auto cpu1 = (*sys)->cpu_seconds();
  json cpu_per_daemon = json::object();
  for (const auto& [name, s] : cpu1) {
    const double before = cpu0.contains(name) ? cpu0.at(name) : 0.0;
    cpu_per_daemon[name] = (s - before) * 1000.0 / std::max<double>(1, terminal);
  }
  const double cpu = bench::total(cpu1) - bench::total(cpu0);
  phase.closed_us = latencies(closed);
  const double orders_per_s = wall > 0 ? static_cast<double>(terminal) / wall : 0;
  phase.figures = {
      {"durability", durability},
      {"clients", ro.concurrency},
      {"orders", terminal},
      {"completed", completed},
      {"errors", errors},
      {"wall_s", wall},
      {"orders_per_s", orders_per_s},
      {"orders_per_s_by_round", per_round},
      {"latency_ms", latency_json(phase.closed_us)},
      // The replay's own CPU (this process): the load generator
      // shares the cores with the system it measures.
      {"load_generator_cpu_s_per_1000_orders", client_cpu * 1000.0 / std::max<double>(1, terminal)},
      {"cpu_s_per_1000_orders", cpu * 1000.0 / std::max<double>(1, terminal)},
      {"cpu_s_per_1000_orders_by_daemon", cpu_per_daemon}};
  std::fprintf(
      stderr, "api %-7s closed loop: %zu orders, %.0f orders/s, p50 %.2f ms, p99 %.2f ms\n",
      durability.c_str(), terminal, orders_per_s, phase.figures["latency_ms"]["p50"].get<double>(),
      phase.figures["latency_ms"]["p99"].get<double>());

  // Open loop at half the throughput.
  std::optional<replay::ReplayResult> open;
  if (open_loop && orders_per_s > 0) {
    replay::Options oo = ro;
    oo.key_prefix = "o-";
    oo.arrival_rate_per_s = orders_per_s / 2;
    oo.concurrency = args.open_loop_clients;
    open = replay::run_replay(data, ids[rounds], oo);
    phase.open_us = latencies({*open});
    phase.figures["open_loop"] = {{"rate_per_s", oo.arrival_rate_per_s},
                                  {"clients", oo.concurrency},
                                  {"wall_s", open->wall_seconds},
                                  {"latency_ms", latency_json(phase.open_us)}};
    std::fprintf(stderr, "api %-7s open loop at %.0f/s: p50 %.2f ms, p99 %.2f ms\n",
                 durability.c_str(), oo.arrival_rate_per_s,
                 phase.figures["open_loop"]["latency_ms"]["p50"].get<double>(),
                 phase.figures["open_loop"]["latency_ms"]["p99"].get<double>());
  }

  std::vector<replay::ReplayResult> core;
  if (open_loop && !run_saga_core(phase, **sys, bin, dir, data, ids, rounds + 1, args, core)) {
    phase.ok = false;
  }

  // Idle: every daemon asleep on its doorbell.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const auto idle0 = (*sys)->cpu_seconds();
  const auto idle_s = 3.0;
  std::this_thread::sleep_for(std::chrono::duration<double>(idle_s));
  const auto idle1 = (*sys)->cpu_seconds();
  const auto procs = idle1.size();
  phase.figures["idle_cpu_percent_per_daemon"] =
      (bench::total(idle1) - bench::total(idle0)) * 100.0 / idle_s / std::max<double>(1, procs);

  const auto rss = (*sys)->peak_rss_mib();
  double max_rss = 0;
  for (const auto& [name, mib] : rss) max_rss = std::max(max_rss, mib);
  phase.figures["peak_rss_mib"] = rss;
  phase.figures["anon_rss_mib"] = (*sys)->anon_rss_mib();
  phase.figures["max_rss_mib"] = max_rss;
  phase.figures["lmdb_file_bytes"] = (*sys)->lmdb_file_bytes();

  // The invariant sums of every round.
  std::size_t violations = 0;
  json examples = json::array();
  auto check = [&](const replay::Ids& round_ids, const replay::ReplayResult& result) {
    const auto v = replay::verify(data, round_ids, result, ro);
    violations += v.violations.size();
    for (const auto& line : v.violations) {
      if (examples.size() < 10) examples.push_back(line);
    }
  };
  for (unsigned r = 0; r < rounds; ++r) check(ids[r], closed[r]);
  if (open) check(ids[rounds], *open);
  for (std::size_t r = 0; r < core.size(); ++r) check(ids[rounds + 1 + r], core[r]);
  phase.figures["violations"] = violations;
  phase.figures["violation_examples"] = examples;
  phase.ok = phase.ok && violations == 0 && errors == 0;
  if (!(*sys)->stop()) std::cerr << "ringmart-bench: the supervisor did not stop cleanly\n";
  sys->reset();
  if (!args.keep) fs::remove_all(dir);
  std::fprintf(stderr, "api %-7s verify: %zu violations\n", durability.c_str(), violations);
  for (const auto& line : examples) std::fprintf(stderr, "  %s\n", line.get<std::string>().c_str());
  return phase;
}

json run_monolith(const olist::Dataset& data, const Args& args, storage::Durability d,
                  std::size_t group, unsigned rounds, bool& ok) {
  const std::string name = d == storage::Durability::fsync ? "fsync" : "process";
  const std::string dir = mkdtemp_in(args.base_dir, "monolith-" + name);
  auto r = bench::run_monolith(
      data, {.dir = dir, .durability = d, .orders_per_commit = group, .rounds = rounds});
  if (!args.keep) fs::remove_all(dir);
  if (!r) {
    std::cerr << "ringmart-bench: monolith failed: " << r.error() << "\n";
    ok = false;
    return {{"error", r.error()}};
  }
  ok = ok && r->violations.empty();
  std::fprintf(stderr,
               "monolith %-7s %3zu orders/commit: %zu orders, %.0f orders/s, %zu violations\n",
               name.c_str(), group, r->orders, r->orders_per_s, r->violations.size());
  return {{"durability", name},
          {"orders_per_commit", group},
          {"orders", r->orders},
          {"completed", r->completed},
          {"failed", r->failed},
          {"failed_by_reason", r->failed_by_reason},
          {"commits", r->commits},
          {"wall_s", r->wall_s},
          {"orders_per_s", r->orders_per_s},
          {"violations", r->violations.size()}};
}

/// real_time of the first benchmark in Google Benchmark's JSON whose name
/// starts with `prefix` (µs), or null.
/// The first iteration entry of ringmart-bench-micro's JSON whose name starts with `prefix`.
const json* micro_entry(const json& micro, const std::string& prefix) {
  if (!micro.contains("benchmarks")) return nullptr;
  for (const auto& b : micro["benchmarks"]) {
    const auto name = b.value("name", std::string());
    if (name.starts_with(prefix) && b.value("run_type", "iteration") == "iteration") return &b;
  }
  return nullptr;
}

json micro_us(const json& micro, const std::string& prefix) {
  const json* b = micro_entry(micro, prefix);
  if (!b) return nullptr;
  double t = b->value("real_time", 0.0);
  const auto unit = b->value("time_unit", std::string("ns"));
  if (unit == "ns") t /= 1000.0;
  if (unit == "ms") t *= 1000.0;
  return t;
}

/// A user counter of a micro benchmark given in seconds, as µs.
json micro_counter_us(const json& micro, const std::string& prefix, const std::string& counter) {
  const json* b = micro_entry(micro, prefix);
  if (!b || !b->contains(counter) || !(*b)[counter].is_number()) return nullptr;
  return (*b)[counter].get<double>() * 1e6;
}

double ratio(const json& a, const json& b) {
  if (!a.is_number() || !b.is_number() || b.get<double>() == 0) return 0;
  return a.get<double>() / b.get<double>();
}

std::string machine_fact(const std::string& cmd) {
  std::string out;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[256];
    while (std::fgets(buf, sizeof buf, p)) out += buf;
    ::pclose(p);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "ringmart-bench: the order saga against the monolith and the socket baseline, "
      "on the same orders, with the invariant sums checked after every run."};
  Args args;
  auto* olist_opt = app.add_option("--olist", args.olist_dir, "Olist directory to replay");
  auto* gen_opt = app.add_option("--generate", args.generate, "a generated data set of N orders")
                      ->check(CLI::Range(1, 10'000'000));
  olist_opt->excludes(gen_opt);
  app.add_option("--rounds", args.rounds, "closed-loop rounds of the data set (durability process)")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--fsync-rounds", args.fsync_rounds, "closed-loop rounds in durability fsync")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--inject-rounds", args.inject_rounds, "saga-core rounds (injector)")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--window", args.window, "saga-core orders in flight")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--batch-max", args.batch_max,
                 "[runtime] batch_max of the systems (0: 32 in process, 256 in fsync)")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  app.add_option("--concurrency", args.concurrency, "closed-loop clients")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--fsync-concurrency", args.fsync_concurrency, "closed-loop clients in fsync")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--open-loop-clients", args.open_loop_clients, "clients of the open loop")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--out", args.out, "results JSON file")->capture_default_str();
  app.add_option("--samples-dir", args.samples_dir, "write latency samples (CDF data) here");
  app.add_option("--base-dir", args.base_dir, "where the systems' state goes (a disk, not tmpfs)")
      ->capture_default_str();
  app.add_option("--micro-json", args.micro_json,
                 "ringmart-bench-micro --benchmark_out JSON to take the round trips from");
  app.add_flag("--keep", args.keep, "keep the systems' directories");
  app.add_flag("--process-only", args.process_only,
               "only the durability-process system run (api, open loop, saga core): for profiling");
  app.add_flag("--fsync-only", args.fsync_only,
               "only the durability-fsync system run (api.sock): for profiling")
      ->excludes("--process-only");
  CLI11_PARSE(app, argc, argv);

  olist::Dataset data;
  if (!args.olist_dir.empty()) {
    auto loaded = olist::load_olist(args.olist_dir, {});
    if (!loaded) {
      std::cerr << "ringmart-bench: " << loaded.error() << "\n";
      return 2;
    }
    data = std::move(*loaded);
  } else {
    data = olist::generate({.seed = 1, .orders = args.generate ? args.generate : 5000});
  }
  std::fprintf(stderr, "data: %s, %zu orders, %zu products\n", data.origin.c_str(),
               data.orders.size(), data.products.size());

  bool ok = true;
  Phase process, fsync;
  if (args.fsync_only) {
    fsync = run_api(data, args, "fsync", args.fsync_rounds, false);
  } else {
    process = run_api(data, args, "process", args.rounds, true);
  }
  json m_process_1 = json::object(), m_process_g = json::object(), m_fsync_1 = json::object(),
       m_fsync_g = json::object();
  if (!args.process_only && !args.fsync_only) {
    fsync = run_api(data, args, "fsync", args.fsync_rounds, false);
    m_process_1 = run_monolith(data, args, storage::Durability::process, 1, args.rounds, ok);
    m_process_g = run_monolith(data, args, storage::Durability::process, 256, args.rounds, ok);
    m_fsync_1 = run_monolith(data, args, storage::Durability::fsync, 1, args.fsync_rounds, ok);
    m_fsync_g = run_monolith(data, args, storage::Durability::fsync, 256, args.fsync_rounds, ok);
  }
  ok = ok && process.ok && fsync.ok;

  json micro = json::object();
  if (!args.micro_json.empty()) {
    std::ifstream in(args.micro_json);
    if (in) micro = json::parse(in, nullptr, false);
    if (micro.is_discarded()) micro = json::object();
  }
  const json ring_spin = micro_us(micro, "BM_RingRoundTrip/spin/64/");
  const json ring_futex = micro_us(micro, "BM_RingRoundTrip/futex/64/");
  const json ring_adaptive = micro_us(micro, "BM_RingRoundTrip/adaptive/64/");
  const json uds = micro_us(micro, "BM_UdsRoundTrip/stream/64/");
  // micro_saga.cpp's time per saga step (an iteration is one order of several steps).
  const json step_process = micro_counter_us(micro, "BM_SagaStep/process/", "s_per_step");
  const json step_fsync = micro_counter_us(micro, "BM_SagaStep/fsync/", "s_per_step");

  write_samples(args.samples_dir, "api_closed_loop", process.closed_us);
  write_samples(args.samples_dir, "api_open_loop", process.open_us);
  write_samples(args.samples_dir, "api_fsync_closed_loop", fsync.closed_us);
  write_samples(args.samples_dir, "saga_core", process.core_us);

  const auto& open =
      process.figures.contains("open_loop") ? process.figures["open_loop"] : json::object();
  json results = {
      {"saga_core_orders_per_s", process.figures.contains("saga_core")
                                     ? process.figures["saga_core"]["orders_per_s"]
                                     : json(nullptr)},
      {"api_orders_per_s", process.figures["orders_per_s"]},
      {"fsync_orders_per_s", fsync.figures["orders_per_s"]},
      {"monolith_orders_per_s", m_process_1.value("orders_per_s", 0.0)},
      {"monolith_group_commit_orders_per_s", m_process_g.value("orders_per_s", 0.0)},
      {"monolith_fsync_orders_per_s", m_fsync_1.value("orders_per_s", 0.0)},
      {"monolith_fsync_group_commit_orders_per_s", m_fsync_g.value("orders_per_s", 0.0)},
      {"latency_p50_ms", open.contains("latency_ms") ? open["latency_ms"]["p50"] : json(nullptr)},
      {"latency_p99_ms", open.contains("latency_ms") ? open["latency_ms"]["p99"] : json(nullptr)},
      {"ring_rtt_us", ring_spin},
      {"ring_futex_rtt_us", ring_futex},
      {"ring_adaptive_rtt_us", ring_adaptive},
      {"uds_rtt_us", uds},
      {"saga_step_us", step_process},
      {"saga_step_fsync_us", step_fsync},
      {"cpu_s_per_1000_orders", process.figures["cpu_s_per_1000_orders"]},
      {"max_rss_mib", process.figures["max_rss_mib"]},
      {"idle_cpu_percent_per_daemon", process.figures["idle_cpu_percent_per_daemon"]},
      {"ratios",
       {{"saga_core_over_monolith_process",
         process.figures.contains("saga_core")
             ? ratio(process.figures["saga_core"]["orders_per_s"], m_process_1["orders_per_s"])
             : 0.0},
        {"saga_api_over_monolith_process",
         ratio(process.figures["orders_per_s"], m_process_1["orders_per_s"])},
        {"saga_api_over_monolith_fsync",
         ratio(fsync.figures["orders_per_s"], m_fsync_1["orders_per_s"])},
        {"saga_api_over_monolith_group_commit_process",
         ratio(process.figures["orders_per_s"], m_process_g["orders_per_s"])},
        {"ring_spin_over_uds_rtt", ratio(ring_spin, uds)},
        {"ring_futex_over_uds_rtt", ratio(ring_futex, uds)}}},
      {"api_process", process.figures},
      {"api_fsync", fsync.figures},
      {"monolith", json::array({m_process_1, m_process_g, m_fsync_1, m_fsync_g})},
      {"machine",
       {{"cpu", machine_fact("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2")},
        {"cores", std::thread::hardware_concurrency()},
        {"memory", machine_fact("grep MemTotal /proc/meminfo | awk '{print $2 \" kB\"}'")},
        {"kernel", machine_fact("uname -r")},
        {"disk_of_state", machine_fact("df -h " + args.base_dir + " | tail -1 | awk '{print $1}'")},
        {"date", machine_fact("date -u +%Y-%m-%dT%H:%M:%SZ")}}},
      {"data",
       {{"origin", data.origin},
        {"orders", data.orders.size()},
        {"products", data.products.size()},
        {"rounds", args.rounds},
        {"fsync_rounds", args.fsync_rounds}}},
      {"ok", ok}};
  std::ofstream(args.out) << results.dump(2) << "\n";
  std::fprintf(stderr, "results: %s (%s)\n", args.out.c_str(), ok ? "ok" : "VIOLATIONS");
  return ok ? 0 : 1;
}
