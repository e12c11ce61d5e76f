#include "tests/nemesis/nemesis.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <ostream>
#include <sstream>

#include "daemons/common/runtime.hpp"
#include "http/client.hpp"

extern char** environ;

namespace ringmart::nemesis {

using nlohmann::json;
using runtime::DaemonId;

namespace {

std::int64_t now_ms() { return ipc::monotonic_ms(); }

void sleep_ms(std::int64_t ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

/// Alive and not a zombie: a zombie (exited, not yet reaped) has an empty cmdline.
bool alive(pid_t pid) {
  std::ifstream cmdline("/proc/" + std::to_string(pid) + "/cmdline");
  return cmdline && cmdline.peek() != std::ifstream::traits_type::eof();
}

std::string fixed(double value, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
  return buf;
}

/// Whether process `pid` heart-beat in `slot` since it started: before, the
/// slot still shows the previous process's heartbeat.
bool heart_beating(const ipc::DaemonSlot& slot, pid_t pid) {
  const auto hb = slot.heartbeat_ms.load();
  return pid != 0 && slot.pid.load() == pid && hb > 0 && hb >= slot.started_ms.load();
}

}  // namespace

std::string chaos_config(int heartbeat_timeout_ms, int backoff_max_ms,
                         const std::string& durability) {
  std::ostringstream cfg;
  // The restart intensity must never trip: the nemesis kills each daemon
  // about once a second for minutes, which would otherwise make the
  // supervisor give up (correctly) and turn a test of recovery into a test of
  // the give-up path.
  cfg << "[runtime]\nlog_level = \"warn\"\ndurability = \"" << durability << "\"\n"
      << "heartbeat_timeout_ms = " << heartbeat_timeout_ms
      << "\n"
      // The replay places orders for the user ids it registered (no sessions).
      << "[gateway]\ncustomer_auth = \"trusted\"\n"
      << "[supervisor]\nmax_restarts = 1000000\nrestart_period_ms = 60000\n"
      << "backoff_max_ms = "
      << backoff_max_ms
      // The nemesis also hangs daemons that were just spawned (after a
      // supervisor restart or a reboot), before their first heartbeat: those
      // are found by the start-up grace, not the heartbeat timeout. Start-up
      // takes ~10-20 ms here; 2 s instead of the production 10 s.
      << "\nstartup_grace_ms = 2000"
      << "\n"
      // As tests/integration/system.cpp: a payment timeout short enough for
      // tok_timeout orders to finish quickly, long enough for a loaded machine.
      << "[saga]\ncompensation_timeout_ms = 1000\n"
      << "[saga.start_payment]\ntimeout_ms = 1000\nmax_attempts = 2\n";
  return cfg.str();
}

bool is_ringmart_process(pid_t pid, const std::string& name) {
  if (pid <= 0) return false;
  std::ifstream cmdline("/proc/" + std::to_string(pid) + "/cmdline");
  std::string argv0;
  if (!std::getline(cmdline, argv0, '\0')) return false;
  return argv0.ends_with("ringmart-" + name);
}

// ---------------------------------------------------------------- System

System::System(SystemOptions options) : options_(std::move(options)) {}

std::expected<std::unique_ptr<System>, std::string> System::create(SystemOptions options) {
  std::unique_ptr<System> sys(new System(std::move(options)));
  std::error_code ec;
  if (sys->options_.base_dir.empty()) {
    std::string t = "/tmp/ringmart-nemesis-XXXXXX";
    if (!::mkdtemp(t.data())) return std::unexpected("mkdtemp: " + std::string(strerror(errno)));
    sys->base_ = t;
  } else {
    sys->base_ = std::filesystem::absolute(sys->options_.base_dir, ec);
  }
  std::filesystem::create_directories(sys->state_dir(), ec);
  std::filesystem::create_directories(sys->runtime_dir(), ec);
  if (ec) return std::unexpected("cannot create " + sys->base_.string() + ": " + ec.message());
  {
    std::ofstream cfg(sys->config_file());
    cfg << sys->options_.config;
    if (!cfg) return std::unexpected("cannot write " + sys->config_file().string());
  }
  auto config = runtime::Config::load(sys->state_dir().string(), sys->runtime_dir().string(),
                                      sys->config_file().string());
  if (!config) return std::unexpected(config.error());
  sys->config_ = std::move(*config);
  return sys;
}

std::int64_t System::kill_all_locked() {
  const auto daemons = daemon_pids();
  const auto at = now_ms();
  if (supervisor_) ::kill(supervisor_, SIGKILL);
  for (pid_t pid : daemons) ::kill(pid, SIGKILL);
  if (supervisor_) ::waitpid(supervisor_, nullptr, 0);
  supervisor_ = 0;
  const auto deadline = now_ms() + 10000;
  for (pid_t pid : daemons) {
    while (alive(pid) && now_ms() < deadline) sleep_ms(1);
  }
  return at;
}

System::~System() {
  {
    std::lock_guard lock(mutex_);
    kill_all_locked();
  }
  runtime::remove_transport(config_.runtime_dir);
  if (!options_.keep_dir) {
    std::error_code ec;
    std::filesystem::remove_all(base_, ec);
  }
}

pid_t System::spawn_locked() {
  const std::string exe = (options_.bin_dir / "ringmart-supervisor").string();
  std::vector<std::string> args = {exe,
                                   "--state-dir",
                                   state_dir().string(),
                                   "--runtime-dir",
                                   runtime_dir().string(),
                                   "--config",
                                   config_file().string()};
  // The environment: ours, with options_.env replacing variables of the same name.
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    const std::string_view entry(*e);
    const auto name = entry.substr(0, entry.find('='));
    const bool replaced =
        std::ranges::any_of(options_.env, [&](const auto& kv) { return kv.first == name; });
    if (!replaced) env.emplace_back(entry);
  }
  for (const auto& [k, v] : options_.env) env.push_back(k + "=" + v);
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  const int log_fd = ::open(log_file().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

  // The harness is multi-threaded: between fork and exec the child only makes
  // async-signal-safe calls, everything is prepared above.
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (log_fd >= 0) {
      ::dup2(log_fd, 1);
      ::dup2(log_fd, 2);
    }
    ::syscall(SYS_close_range, 3u, ~0u, 0u);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(exe.c_str(), argv.data(), envp.data());
    ::_exit(127);
  }
  if (log_fd >= 0) ::close(log_fd);
  supervisor_ = pid > 0 ? pid : 0;
  return supervisor_;
}

std::expected<void, std::string> System::start(int timeout_ms) {
  {
    std::lock_guard lock(mutex_);
    if (!supervisor_ && spawn_locked() <= 0) {
      return std::unexpected("cannot fork: " + std::string(strerror(errno)));
    }
  }
  if (auto ok = wait_healthy(timeout_ms); !ok) {
    return std::unexpected(ok.error() + "; log tail:\n" + log_tail());
  }
  return {};
}

std::expected<void, std::string> System::wait_healthy(int timeout_ms) const {
  http::UnixClient client((runtime_dir() / "api.sock").string(), std::chrono::seconds(5));
  const auto deadline = now_ms() + timeout_ms;
  std::string last = "no answer";
  while (now_ms() < deadline) {
    auto r = client.request("GET", "/v1/health");
    if (r && r->status == 200) return {};
    last = r ? "HTTP " + std::to_string(r->status) + " " + r->body : r.error().message();
    sleep_ms(50);
  }
  return std::unexpected("GET /v1/health did not answer 200 within " + std::to_string(timeout_ms) +
                         " ms (last: " + last + ")");
}

bool System::stop(int timeout_ms) {
  std::lock_guard lock(mutex_);
  if (!supervisor_) return true;
  ::kill(supervisor_, SIGTERM);
  int status = 0;
  const auto deadline = now_ms() + timeout_ms;
  for (;;) {
    const pid_t r = ::waitpid(supervisor_, &status, WNOHANG);
    if (r == supervisor_ || r < 0) break;
    if (now_ms() > deadline) {
      ::kill(supervisor_, SIGKILL);
      ::waitpid(supervisor_, &status, 0);
      status = -1;
      break;
    }
    sleep_ms(5);
  }
  supervisor_ = 0;
  return status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

std::optional<std::pair<std::int64_t, pid_t>> System::kill_supervisor() {
  std::lock_guard lock(mutex_);
  if (!supervisor_) return std::nullopt;
  const pid_t old = supervisor_;
  const auto at = now_ms();
  ::kill(old, SIGKILL);
  ::waitpid(old, nullptr, 0);
  // Like systemd's Restart=always with RestartSec=0: at once. The children of
  // the old supervisor are dying through PDEATHSIG; the new one retires them.
  spawn_locked();
  return std::pair{at, old};
}

std::int64_t System::reboot() {
  std::lock_guard lock(mutex_);
  // Every process must be gone before the shared memory goes: a survivor
  // would keep writing to a ring no one reads any more.
  const auto at = kill_all_locked();
  runtime::remove_transport(config_.runtime_dir);
  spawn_locked();
  return at;
}

std::optional<int> System::restart_if_exited() {
  std::lock_guard lock(mutex_);
  if (!supervisor_) return std::nullopt;
  int status = 0;
  if (::waitpid(supervisor_, &status, WNOHANG) != supervisor_) return std::nullopt;
  supervisor_ = 0;
  spawn_locked();
  return status;
}

pid_t System::supervisor_pid() const {
  std::lock_guard lock(mutex_);
  return supervisor_;
}

std::expected<ipc::StatusRegion, std::error_code> System::open_status() const {
  auto transport = runtime::read_shm_transport(runtime_dir());
  if (!transport) return std::unexpected(transport.error());
  return ipc::StatusRegion::open(runtime::status_name(transport->prefix), transport->access);
}

std::vector<pid_t> System::daemon_pids() const {
  // From /proc rather than the status region: a daemon the supervisor forked
  // an instant before it died is in no slot yet, and must die too.
  std::vector<pid_t> pids;
  const std::string run = runtime_dir().string();
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || !std::ranges::all_of(name, [](char c) { return c >= '0' && c <= '9'; })) {
      continue;
    }
    std::ifstream in(e.path() / "cmdline", std::ios::binary);
    std::vector<std::string> argv;
    for (std::string arg; std::getline(in, arg, '\0');) argv.push_back(arg);
    if (argv.empty() || argv[0].find("ringmart-") == std::string::npos ||
        argv[0].ends_with("ringmart-supervisor")) {
      continue;
    }
    for (std::size_t i = 1; i + 1 < argv.size(); ++i) {
      if (argv[i] == "--runtime-dir" &&
          (argv[i + 1] == run || argv[i + 1] == config_.runtime_dir)) {
        pids.push_back(static_cast<pid_t>(std::stol(name)));
        break;
      }
    }
  }
  return pids;
}

checker::Options System::checker_options(std::vector<std::uint64_t> accepted_order_ids) const {
  checker::Options o;
  o.state_dir = state_dir().string();
  o.runtime_dir = runtime_dir().string();
  o.config_file = config_file().string();
  o.accepted_order_ids = std::move(accepted_order_ids);
  return o;
}

std::string System::log_tail(std::size_t bytes) const {
  std::ifstream in(log_file(), std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(in)), {});
  return all.size() > bytes ? all.substr(all.size() - bytes) : all;
}

// ---------------------------------------------------------------- Nemesis

const char* to_string(FaultKind kind) {
  switch (kind) {
    case FaultKind::kill:
      return "kill";
    case FaultKind::stop:
      return "stop";
    case FaultKind::reboot:
      return "reboot";
  }
  return "?";
}

std::optional<FaultKind> parse_fault_kind(std::string_view name) {
  if (name == "kill") return FaultKind::kill;
  if (name == "stop") return FaultKind::stop;
  if (name == "reboot") return FaultKind::reboot;
  return std::nullopt;
}

Nemesis::Nemesis(System& system, NemesisOptions options)
    : system_(system), options_(std::move(options)), rng_(options_.seed) {}

Nemesis::~Nemesis() { stop(); }

void Nemesis::start() {
  monitor_thread_ = std::thread([this] { monitor_loop(); });
  if (!options_.kinds.empty()) fault_thread_ = std::thread([this] { fault_loop(); });
  if (options_.stock_check_interval_ms > 0) {
    stock_thread_ = std::thread([this] { stock_loop(); });
  }
}

void Nemesis::pause(bool paused) {
  paused_ = paused;
  // A fault being injected (a hang waiting for its replacement) finishes first.
  std::lock_guard serial(inject_mutex_);
}

void Nemesis::stop() {
  stopping_ = true;
  if (fault_thread_.joinable()) fault_thread_.join();
  if (stock_thread_.joinable()) stock_thread_.join();
  if (monitor_thread_.joinable()) {
    // Let the probes of the last faults finish.
    const auto deadline = now_ms() + options_.probe_timeout_ms;
    while (open_probes() && now_ms() < deadline) sleep_ms(5);
    monitor_stopping_ = true;
    monitor_thread_.join();
  }
}

bool Nemesis::open_probes() const {
  std::lock_guard lock(mutex_);
  return std::ranges::any_of(faults_, [](const Pending& p) { return !p.done; });
}

std::vector<FaultRecord> Nemesis::faults() const {
  std::lock_guard lock(mutex_);
  std::vector<FaultRecord> out;
  for (const auto& p : faults_) out.push_back(p.record);
  return out;
}

NemesisCounters Nemesis::counters() const {
  std::lock_guard lock(mutex_);
  return counters_;
}

std::int64_t Nemesis::last_fault_ms() const {
  std::lock_guard lock(mutex_);
  return faults_.empty() ? 0 : faults_.back().record.at_ms;
}

std::optional<FaultRecord> Nemesis::inject(FaultKind kind, DaemonId target) {
  std::lock_guard serial(inject_mutex_);
  Pending p;
  p.record.kind = kind;
  p.record.target = kind == FaultKind::reboot ? DaemonId::SUPERVISOR : target;
  // Whether this supervisor heart-beat yet (its slot names it). The watchdog
  // below acts only then: a supervisor hung before that would wait for
  // systemd's start timeout (TimeoutStartSec), far beyond a run, so it is not
  // hung on purpose.
  bool supervisor_beating = false;
  {
    auto status = system_.open_status();
    if (status) {
      for (auto id : runtime::all_daemons()) {
        p.old_pids[runtime::index(id)] = status->slot(runtime::index(id)).pid.load();
      }
      supervisor_beating = heart_beating(status->slot(runtime::index(DaemonId::SUPERVISOR)),
                                         system_.supervisor_pid());
    }
  }
  if (kind == FaultKind::stop && target == DaemonId::SUPERVISOR && !supervisor_beating) {
    return std::nullopt;
  }
  const bool whole_system =
      kind == FaultKind::reboot || (kind == FaultKind::kill && target == DaemonId::SUPERVISOR);
  if (kind == FaultKind::reboot) {
    p.record.pid = system_.supervisor_pid();
    p.record.at_ms = system_.reboot();
  } else if (kind == FaultKind::kill && target == DaemonId::SUPERVISOR) {
    auto killed = system_.kill_supervisor();
    if (!killed) return std::nullopt;
    p.record.at_ms = killed->first;
    p.record.pid = killed->second;
  } else {
    const pid_t pid = target == DaemonId::SUPERVISOR ? system_.supervisor_pid()
                                                     : p.old_pids[runtime::index(target)];
    if (!is_ringmart_process(pid, runtime::daemon_name(target))) return std::nullopt;
    p.record.pid = pid;
    p.record.at_ms = now_ms();
    if (::kill(pid, kind == FaultKind::stop ? SIGSTOP : SIGKILL) != 0) return std::nullopt;
  }
  p.record.at_realtime_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count() -
                            (now_ms() - p.record.at_ms);
  p.old_pids[runtime::index(DaemonId::SUPERVISOR)] = p.record.pid;
  const std::size_t index = [&] {
    std::lock_guard lock(mutex_);
    if (whole_system) {
      // Open probes of single daemons now include a whole restart.
      for (auto& q : faults_) {
        if (!q.done && q.record.restart_ms < 0) q.record.superseded = true;
      }
    }
    faults_.push_back(p);
    return faults_.size() - 1;
  }();
  if (kind != FaultKind::stop) return p.record;

  // A hang: wait until the supervisor (or, for the supervisor, the harness
  // watchdog) noticed the silence and a new process serves. If nothing does,
  // end the hang here so the run goes on, and say so.
  const auto deadline = p.record.at_ms + options_.heartbeat_timeout_ms + 10000;
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (faults_[index].done) return faults_[index].record;
      if (now_ms() > deadline) {
        faults_[index].record.timed_out = true;
        faults_[index].done = true;
        ::kill(p.record.pid, SIGKILL);
        return faults_[index].record;
      }
    }
    if (stopping_ && monitor_stopping_) return p.record;
    sleep_ms(5);
  }
}

void Nemesis::fault_loop() {
  std::uint64_t n = 0;
  while (!stopping_) {
    const auto pause = std::uniform_int_distribution<int>(options_.interval_min_ms,
                                                          options_.interval_max_ms)(rng_);
    const auto until = now_ms() + pause;
    while (!stopping_ && now_ms() < until) sleep_ms(std::min<std::int64_t>(5, until - now_ms()));
    if (stopping_) break;
    if (paused_) continue;
    ++n;
    std::optional<FaultKind> kind;
    if (options_.kinds.contains(FaultKind::reboot) && options_.reboot_every > 0 &&
        n % static_cast<std::uint64_t>(options_.reboot_every) == 0) {
      kind = FaultKind::reboot;
    } else if (options_.kinds.contains(FaultKind::stop) && options_.stop_every > 0 &&
               n % static_cast<std::uint64_t>(options_.stop_every) == 0) {
      kind = FaultKind::stop;
    } else if (options_.kinds.contains(FaultKind::kill)) {
      kind = FaultKind::kill;
    }
    if (!kind) continue;
    const auto& all = runtime::all_daemons();
    const DaemonId target =
        all[std::uniform_int_distribution<std::size_t>(0, all.size() - 1)(rng_)];
    if (!inject(*kind, target)) {
      std::lock_guard lock(mutex_);
      ++counters_.skipped;
    }
  }
}

void Nemesis::probe(std::int64_t t, const ipc::StatusRegion& status) {
  auto serving = [&](DaemonId id, pid_t old, std::int64_t since) {
    const auto& slot = status.slot(runtime::index(id));
    const pid_t pid = slot.pid.load();
    return pid != 0 && pid != old && slot.heartbeat_ms.load() > since;
  };
  std::lock_guard lock(mutex_);
  for (auto& p : faults_) {
    if (p.done) continue;
    auto& r = p.record;
    if (r.restart_ms < 0 && serving(r.target, r.pid, r.at_ms)) r.restart_ms = t - r.at_ms;
    const bool whole = r.kind == FaultKind::reboot || r.target == DaemonId::SUPERVISOR ||
                       r.kind == FaultKind::stop;
    if (whole && r.recovery_ms < 0) {
      bool all = true;
      for (auto id : runtime::all_daemons()) {
        // After a reboot or a supervisor restart every process is new; after
        // the hang of one daemon only that one is.
        const bool must_change = r.kind != FaultKind::stop || id == r.target;
        if (must_change) {
          all = all && serving(id, p.old_pids[runtime::index(id)], r.at_ms);
        } else {
          all = all && status.slot(runtime::index(id)).pid.load() != 0;
        }
      }
      if (all) r.recovery_ms = t - r.at_ms;
    }
    if (r.restart_ms >= 0 && (!whole || r.recovery_ms >= 0)) p.done = true;
    if (!p.done && t - r.at_ms > options_.probe_timeout_ms) {
      r.timed_out = true;
      p.done = true;
    }
  }
}

void Nemesis::monitor_loop() {
  std::optional<ipc::StatusRegion> status;
  std::string prefix;  // of the region `status` maps: every supervisor start makes a new one
  std::int64_t last_watchdog_check = 0;
  while (!monitor_stopping_) {
    const auto t = now_ms();
    // The systemd part: restart a supervisor that died on its own.
    if (auto exited = system_.restart_if_exited()) {
      std::lock_guard lock(mutex_);
      ++counters_.supervisor_exits;
      counters_.supervisor_exit_status.push_back(*exited);
    }
    auto transport = runtime::read_shm_transport(system_.runtime_dir());
    if (!transport) {
      status.reset();
      sleep_ms(1);
      continue;
    }
    if (!status || prefix != transport->prefix) {
      auto s = ipc::StatusRegion::open(runtime::status_name(transport->prefix), transport->access);
      if (!s) {
        status.reset();
        sleep_ms(1);
        continue;
      }
      status.emplace(std::move(*s));
      prefix = transport->prefix;
    }
    probe(t, *status);
    // The watchdog (WatchdogSec): a supervisor whose loop stopped turning.
    if (t - last_watchdog_check >= 10) {
      last_watchdog_check = t;
      const pid_t sup = system_.supervisor_pid();
      const auto& slot = status->slot(runtime::index(DaemonId::SUPERVISOR));
      const auto hb = slot.heartbeat_ms.load();
      // Only once this supervisor heart-beat (its slot names it).
      if (heart_beating(slot, sup) && t - hb > options_.heartbeat_timeout_ms) {
        if (system_.kill_supervisor()) {
          std::lock_guard lock(mutex_);
          ++counters_.watchdog_kills;
          for (auto& q : faults_) {
            if (!q.done && q.record.restart_ms < 0 && q.record.target != DaemonId::SUPERVISOR) {
              q.record.superseded = true;
            }
          }
        }
      }
    }
    sleep_ms(1);
  }
}

void Nemesis::stock_loop() {
  while (!stopping_) {
    const auto until = now_ms() + options_.stock_check_interval_ms;
    while (!stopping_ && now_ms() < until) sleep_ms(10);
    if (stopping_) break;
    auto found = checker::check_stock_nonnegative(system_.checker_options());
    std::lock_guard lock(mutex_);
    ++counters_.stock_checks;
    if (!found) {
      // The product environment may be briefly unreadable during a reboot;
      // a check that cannot run is recorded, not counted as a violation.
      counters_.errors.push_back("check_stock_nonnegative: " + found.error());
      continue;
    }
    for (auto& v : *found) counters_.stock_violations.push_back(std::move(v));
  }
}

// ---------------------------------------------------------------- run

std::size_t resubmit_unanswered(const olist::Dataset& data, const replay::Ids& ids,
                                const replay::Options& options, replay::ReplayResult& result) {
  std::vector<std::size_t> todo;
  for (std::size_t i = 0; i < result.outcomes.size(); ++i) {
    if (!result.outcomes[i].order_id) todo.push_back(i);
  }
  if (todo.empty()) return 0;
  olist::Dataset sub;
  sub.products = data.products;
  sub.origin = data.origin;
  replay::Ids sub_ids;
  sub_ids.product_ids = ids.product_ids;
  for (auto i : todo) {
    sub.orders.push_back(data.orders[i]);
    sub_ids.user_ids.push_back(ids.user_ids[i]);
    sub_ids.coupon_ids.push_back(ids.coupon_ids[i]);
    sub_ids.user_coupon_ids.push_back(ids.user_coupon_ids[i]);
  }
  replay::Options o = options;
  o.progress = false;
  auto again = replay::run_replay(sub, sub_ids, o);
  for (std::size_t j = 0; j < todo.size(); ++j) result.outcomes[todo[j]] = again.outcomes[j];
  return todo.size();
}

std::int64_t percentile(std::vector<std::int64_t> values, double p) {
  std::ranges::sort(values);
  return replay::percentile(values, p);
}

bool RunResult::ok() const {
  if (!report || !report->ok()) return false;
  if (!counters.stock_violations.empty()) return false;
  if (counters.supervisor_exits != 0) return false;
  if (never_accepted != 0) return false;
  return std::ranges::none_of(faults, [](const FaultRecord& f) { return f.timed_out; });
}

namespace {

/// One replay of the data set under its key prefix.
struct Round {
  std::string key_prefix;
  replay::Ids ids;
  replay::ReplayResult result;
};

PhaseFigures figures(const std::vector<Round>& rounds, double wall_s) {
  PhaseFigures f;
  std::vector<std::int64_t> latencies;
  for (const auto& round : rounds) {
    for (const auto& o : round.result.outcomes) {
      ++f.orders;
      if (o.order_id) ++f.accepted;
      if (!o.error_kind.empty()) {
        ++f.errors;
        ++f.errors_by_kind[o.error_kind];
        continue;
      }
      if (o.status == "COMPLETED") {
        ++f.completed;
      } else {
        ++f.failed;
        ++f.failed_by_reason[o.failure_reason];
      }
      if (o.latency_us >= 0) latencies.push_back(o.latency_us);
    }
  }
  f.wall_s = wall_s;
  f.orders_per_s = wall_s > 0 ? static_cast<double>(f.completed + f.failed) / wall_s : 0.0;
  f.latency_p50_ms = static_cast<double>(percentile(latencies, 50)) / 1000.0;
  f.latency_p99_ms = static_cast<double>(percentile(latencies, 99)) / 1000.0;
  f.latency_max_ms = static_cast<double>(percentile(latencies, 100)) / 1000.0;
  return f;
}

std::expected<Round, std::string> set_up_round(const RunOptions& options, const System& sys,
                                               unsigned k, std::ostream& log) {
  Round round;
  // Appended piecewise: GCC 12 warns (-Wrestrict, a false positive) on "r" + to_string(k) + "-".
  round.key_prefix = "r";
  round.key_prefix += std::to_string(k);
  round.key_prefix += '-';
  replay::Options ro = options.replay;
  ro.runtime_dir = sys.runtime_dir();
  ro.key_prefix = round.key_prefix;
  auto ids = replay::set_up(options.data, ro, log);
  if (!ids) {
    return std::unexpected("set-up of round " + std::to_string(k) + ": " + ids.error().message);
  }
  round.ids = std::move(*ids);
  return round;
}

std::expected<std::vector<Round>, std::string> set_up_rounds(const RunOptions& options,
                                                             const System& sys, std::ostream& log) {
  std::vector<Round> rounds;
  for (unsigned k = 0; k < options.repeat; ++k) {
    auto round = set_up_round(options, sys, k, log);
    if (!round) return std::unexpected(round.error());
    rounds.push_back(std::move(*round));
  }
  return rounds;
}

std::size_t kills(const Nemesis& nemesis) {
  const auto faults = nemesis.faults();
  return static_cast<std::size_t>(std::ranges::count(faults, FaultKind::kill, &FaultRecord::kind));
}

double replay_rounds(const RunOptions& options, const System& sys, std::vector<Round>& rounds) {
  const auto t0 = std::chrono::steady_clock::now();
  for (auto& round : rounds) {
    replay::Options ro = options.replay;
    ro.runtime_dir = sys.runtime_dir();
    ro.key_prefix = round.key_prefix;
    round.result = replay::run_replay(options.data, round.ids, ro);
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

std::expected<RunResult, std::string> run(RunOptions options, std::ostream& log) {
  RunResult result;
  result.config = {
      {"orders_per_round", options.data.orders.size()},
      {"rounds_planned", options.repeat},
      {"min_kills", options.min_kills},
      {"data", options.data.origin},
      {"concurrency", options.replay.concurrency},
      {"kill_interval_ms", {options.nemesis.interval_min_ms, options.nemesis.interval_max_ms}},
      {"stop_every", options.nemesis.stop_every},
      {"reboot_every", options.nemesis.reboot_every},
      {"heartbeat_timeout_ms", options.nemesis.heartbeat_timeout_ms},
      {"payment_mix_percent",
       {{"decline", options.replay.decline_percent},
        {"timeout", options.replay.timeout_percent},
        {"capture_fail", options.replay.capture_fail_percent}}},
      {"seed", options.nemesis.seed},
  };
  json kinds = json::array();
  for (auto k : options.nemesis.kinds) kinds.push_back(to_string(k));
  result.config["kinds"] = kinds;

  if (options.fault_free_baseline) {
    SystemOptions so = options.system;
    so.base_dir.clear();  // a fresh directory of its own
    so.keep_dir = false;
    auto sys = System::create(so);
    if (!sys) return std::unexpected("baseline: " + sys.error());
    if (auto ok = (*sys)->start(); !ok) return std::unexpected("baseline: " + ok.error());
    log << "baseline: set-up of " << options.repeat << " x " << options.data.orders.size()
        << " orders\n";
    auto rounds = set_up_rounds(options, **sys, log);
    if (!rounds) return std::unexpected("baseline: " + rounds.error());
    log << "baseline: replay without faults\n";
    const double wall = replay_rounds(options, **sys, *rounds);
    result.baseline = figures(*rounds, wall);
    log << "baseline: " << fixed(result.baseline.orders_per_s, 1) << " orders/s\n";
    (*sys)->stop();
  }

  auto sys = System::create(options.system);
  if (!sys) return std::unexpected(sys.error());
  System& system = **sys;
  result.base_dir = system.base_dir().string();
  if (auto ok = system.start(); !ok) return std::unexpected(ok.error());
  log << "system in " << system.base_dir().string() << "\n";
  const auto setup_start = std::chrono::steady_clock::now();
  log << "set-up of " << options.repeat << " x " << options.data.orders.size() << " orders\n";
  auto rounds = set_up_rounds(options, system, log);
  if (!rounds) return std::unexpected(rounds.error());
  result.setup_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - setup_start).count();

  Nemesis nemesis(system, options.nemesis);
  nemesis.start();
  log << "replay under the nemesis\n";
  double wall = replay_rounds(options, system, *rounds);
  // More rounds until the kill target is met. Set-up is not idempotent under
  // transport errors, so the nemesis pauses for it (not counted in the wall time).
  while (options.min_kills > 0 && kills(nemesis) < options.min_kills &&
         rounds->size() < options.max_rounds) {
    log << kills(nemesis) << " kills of " << options.min_kills << ": one more round\n";
    nemesis.pause(true);
    std::expected<Round, std::string> round = std::unexpected("not tried");
    for (int attempt = 0; attempt < 3 && !round; ++attempt) {
      if (auto healthy = system.wait_healthy(60000); !healthy) continue;
      round = set_up_round(options, system, static_cast<unsigned>(rounds->size()), log);
    }
    nemesis.pause(false);
    if (!round) return std::unexpected(round.error());
    std::vector<Round> one;
    one.push_back(std::move(*round));
    wall += replay_rounds(options, system, one);
    rounds->push_back(std::move(one.front()));
  }
  result.config["rounds"] = rounds->size();
  log << "load done; stopping the nemesis\n";
  nemesis.stop();
  // Clients that never got an answer retry with the same key once the
  // system is calm; until a pass accepts them all.
  for (int pass = 0; pass < options.resubmit_passes; ++pass) {
    if (auto healthy = system.wait_healthy(60000); !healthy) {
      log << "resubmit: " << healthy.error() << "\n";
    }
    std::size_t n = 0;
    for (auto& round : *rounds) {
      replay::Options ro = options.replay;
      ro.runtime_dir = system.runtime_dir();
      ro.key_prefix = round.key_prefix;
      n += resubmit_unanswered(options.data, round.ids, ro, round.result);
    }
    if (n == 0) break;
    log << "resubmit pass " << pass + 1 << ": " << n << " orders\n";
    result.resubmitted += n;
  }
  result.load = figures(*rounds, wall);
  result.faults = nemesis.faults();
  result.counters = nemesis.counters();

  std::vector<std::uint64_t> accepted;
  for (const auto& round : *rounds) {
    for (const auto& o : round.result.outcomes) {
      if (o.order_id) {
        accepted.push_back(*o.order_id);
      } else {
        ++result.never_accepted;
      }
    }
  }
  const auto copts = system.checker_options(accepted);
  auto waited = checker::wait_quiet(copts, options.quiet_timeout_ms);
  const auto last_fault = nemesis.last_fault_ms();
  if (waited) {
    result.quiet_wait_ms = *waited;
    if (last_fault > 0) result.quiet_after_last_fault_ms = now_ms() - last_fault;
  } else {
    log << "wait_quiet: " << waited.error() << "\n";
  }
  auto report = checker::check(copts);
  if (report) {
    result.report = std::move(*report);
  } else {
    result.checker_error = report.error();
  }
  if (!system.stop()) log << "the supervisor did not exit 0 on SIGTERM\n";
  return result;
}

// ---------------------------------------------------------------- figures

namespace {

json distribution(std::vector<std::int64_t> v) {
  json j = {{"count", v.size()}};
  if (!v.empty()) {
    j["p50"] = percentile(v, 50);
    j["p99"] = percentile(v, 99);
    j["max"] = percentile(v, 100);
  }
  return j;
}

json phase_json(const PhaseFigures& f) {
  return {{"orders", f.orders},
          {"accepted", f.accepted},
          {"completed", f.completed},
          {"failed", f.failed},
          {"failed_by_reason", f.failed_by_reason},
          {"errors", f.errors},
          {"errors_by_kind", f.errors_by_kind},
          {"wall_s", f.wall_s},
          {"orders_per_s", f.orders_per_s},
          {"latency_ms",
           {{"p50", f.latency_p50_ms}, {"p99", f.latency_p99_ms}, {"max", f.latency_max_ms}}}};
}

struct Derived {
  std::map<std::string, std::size_t> by_kind;
  std::map<std::string, std::size_t> kills_by_daemon;
  std::vector<std::int64_t> daemon_restart, supervisor_restart, reboot_restart, reboot_recovery,
      supervisor_recovery, hang_recovery;
  std::size_t superseded = 0, timed_out = 0;
};

Derived derive(const RunResult& r) {
  Derived d;
  for (const auto& f : r.faults) {
    ++d.by_kind[to_string(f.kind)];
    if (f.kind == FaultKind::kill) ++d.kills_by_daemon[runtime::daemon_name(f.target)];
    if (f.timed_out) ++d.timed_out;
    if (f.superseded) {
      ++d.superseded;
      continue;
    }
    switch (f.kind) {
      case FaultKind::kill:
        if (f.target == DaemonId::SUPERVISOR) {
          if (f.restart_ms >= 0) d.supervisor_restart.push_back(f.restart_ms);
          if (f.recovery_ms >= 0) d.supervisor_recovery.push_back(f.recovery_ms);
        } else if (f.restart_ms >= 0) {
          d.daemon_restart.push_back(f.restart_ms);
        }
        break;
      case FaultKind::stop:
        if (f.recovery_ms >= 0) d.hang_recovery.push_back(f.recovery_ms);
        break;
      case FaultKind::reboot:
        if (f.restart_ms >= 0) d.reboot_restart.push_back(f.restart_ms);
        if (f.recovery_ms >= 0) d.reboot_recovery.push_back(f.recovery_ms);
        break;
    }
  }
  return d;
}

}  // namespace

json to_json(const RunResult& r) {
  const auto d = derive(r);
  json j;
  j["config"] = r.config;
  j["ok"] = r.ok();
  j["orders_replayed"] = r.load.orders;
  j["load"] = phase_json(r.load);
  if (r.baseline.orders > 0) {
    j["baseline"] = phase_json(r.baseline);
    j["throughput_ratio"] =
        r.baseline.orders_per_s > 0 ? r.load.orders_per_s / r.baseline.orders_per_s : 0.0;
  }
  j["setup_s"] = r.setup_s;
  j["resubmitted"] = r.resubmitted;
  j["never_accepted"] = r.never_accepted;
  j["faults"] = {{"total", r.faults.size()},
                 {"by_kind", d.by_kind},
                 {"kills_by_daemon", d.kills_by_daemon},
                 {"watchdog_kills", r.counters.watchdog_kills},
                 {"skipped_not_running", r.counters.skipped},
                 {"superseded_probes", d.superseded},
                 {"timed_out_probes", d.timed_out}};
  j["restart_ms"] = {
      {"definition",
       "SIGKILL -> the status slot holds a new pid whose heartbeat_ms is later than the "
       "kill (polled every ~1 ms); daemon kills overtaken by a supervisor kill or reboot "
       "are left out"},
      {"daemon_kill", distribution(d.daemon_restart)},
      {"supervisor_kill", distribution(d.supervisor_restart)},
      {"supervisor_kill_all_daemons", distribution(d.supervisor_recovery)},
      {"reboot_supervisor", distribution(d.reboot_restart)},
      {"reboot_all_daemons", distribution(d.reboot_recovery)},
      {"hang_to_replaced", distribution(d.hang_recovery)}};
  j["quiet"] = {{"definition",
                 "after_last_fault_ms: last fault -> checker::wait_quiet returned (every saga "
                 "terminal, outboxes and rings drained); longest_order_ms: the longest order "
                 "lifetime seen by a client, POST -> terminal status, during the faults"},
                {"after_last_fault_ms", r.quiet_after_last_fault_ms},
                {"wait_ms", r.quiet_wait_ms},
                {"longest_order_ms", r.load.latency_max_ms}};
  j["harness"] = {{"supervisor_exits_without_kill", r.counters.supervisor_exits},
                  {"supervisor_exit_status", r.counters.supervisor_exit_status},
                  {"stock_checks_during_load", r.counters.stock_checks},
                  {"errors", r.counters.errors}};
  json stock = json::array();
  for (const auto& v : r.counters.stock_violations) {
    stock.push_back({{"invariant", v.invariant}, {"detail", v.detail}, {"ids", v.ids}});
  }
  j["stock_violations_during_load"] = stock;
  if (r.report) {
    j["checker"] = r.report->to_json();
    j["violations"] = r.report->violations.size() + r.counters.stock_violations.size();
  } else {
    j["checker_error"] = r.checker_error;
    j["violations"] = nullptr;
  }
  // The slowest recoveries, to look them up in ringmart.log (--keep-dir).
  std::vector<const FaultRecord*> slow;
  for (const auto& f : r.faults) slow.push_back(&f);
  auto worst = [](const FaultRecord* f) { return std::max(f->restart_ms, f->recovery_ms); };
  std::ranges::sort(slow, std::greater{}, worst);
  json slowest = json::array();
  for (std::size_t i = 0; i < slow.size() && i < 10; ++i) {
    const auto& f = *slow[i];
    const auto t = static_cast<std::time_t>(f.at_realtime_ms / 1000);
    char when[32];
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    slowest.push_back(
        {{"kind", to_string(f.kind)},
         {"target", runtime::daemon_name(f.target)},
         {"pid", f.pid},
         {"at_utc", std::string(when) + "." + std::to_string(f.at_realtime_ms % 1000)},
         {"restart_ms", f.restart_ms},
         {"recovery_ms", f.recovery_ms},
         {"superseded", f.superseded},
         {"timed_out", f.timed_out}});
  }
  j["slowest_faults"] = slowest;
  j["base_dir"] = r.base_dir;
  return j;
}

void print_summary(const RunResult& r, std::ostream& out) {
  const auto d = derive(r);
  auto dist = [](const std::vector<std::int64_t>& v) {
    if (v.empty()) return std::string("-");
    return "p50 " + std::to_string(percentile(v, 50)) + "  p99 " +
           std::to_string(percentile(v, 99)) + "  max " + std::to_string(percentile(v, 100)) +
           "  (n=" + std::to_string(v.size()) + ")";
  };
  out << "ringmart chaos run\n";
  out << "  orders replayed        " << r.load.orders << " (" << r.load.accepted << " accepted, "
      << r.load.completed << " completed, " << r.load.failed << " failed, " << r.load.errors
      << " client errors, " << r.resubmitted << " resubmitted, " << r.never_accepted
      << " never accepted)\n";
  for (const auto& [reason, n] : r.load.failed_by_reason) {
    out << "    " << reason << ": " << n << "\n";
  }
  for (const auto& [kind, n] : r.load.errors_by_kind) {
    out << "    client error " << kind << ": " << n << "\n";
  }
  out << "  faults injected        " << r.faults.size();
  for (const auto& [kind, n] : d.by_kind) out << "  " << kind << " " << n;
  out << "  (watchdog kills " << r.counters.watchdog_kills << ", skipped " << r.counters.skipped
      << ")\n";
  out << "    kills by daemon     ";
  for (const auto& [name, n] : d.kills_by_daemon) out << " " << name << " " << n;
  out << "\n";
  if (r.report) {
    out << "  violations             "
        << r.report->violations.size() + r.counters.stock_violations.size() << "\n";
    for (const auto& v : r.report->violations) {
      out << "    " << v.invariant << ": " << v.detail << "\n";
    }
  } else {
    out << "  violations             unknown: checker failed: " << r.checker_error << "\n";
  }
  for (const auto& v : r.counters.stock_violations) {
    out << "    during load " << v.invariant << ": " << v.detail << "\n";
  }
  out << "  restart ms (kill -> new pid heart-beating)\n"
      << "    daemon               " << dist(d.daemon_restart) << "\n"
      << "    supervisor           " << dist(d.supervisor_restart) << "\n"
      << "    supervisor, all 8    " << dist(d.supervisor_recovery) << "\n"
      << "    reboot, supervisor   " << dist(d.reboot_restart) << "\n"
      << "    reboot, all 8        " << dist(d.reboot_recovery) << "\n"
      << "    hang -> replaced     " << dist(d.hang_recovery) << "\n"
      << "    (" << d.superseded << " overtaken by a supervisor restart, " << d.timed_out
      << " timed out)\n";
  out << "  quiet after last fault " << r.quiet_after_last_fault_ms << " ms (wait_quiet "
      << r.quiet_wait_ms << " ms); longest order " << fixed(r.load.latency_max_ms, 0) << " ms\n";
  out << "  throughput under faults " << fixed(r.load.orders_per_s, 1) << " orders/s over "
      << fixed(r.load.wall_s, 1) << " s; latency p50 " << fixed(r.load.latency_p50_ms, 1) << " p99 "
      << fixed(r.load.latency_p99_ms, 1) << " ms\n";
  if (r.baseline.orders > 0) {
    out << "  throughput fault-free   " << fixed(r.baseline.orders_per_s, 1) << " orders/s over "
        << fixed(r.baseline.wall_s, 1) << " s; latency p50 " << fixed(r.baseline.latency_p50_ms, 1)
        << " p99 " << fixed(r.baseline.latency_p99_ms, 1) << " ms  (ratio "
        << fixed(r.baseline.orders_per_s > 0 ? r.load.orders_per_s / r.baseline.orders_per_s : 0, 2)
        << ")\n";
  }
  if (r.report) {
    out << "  checker: " << r.report->orders << " orders (" << r.report->completed << " completed, "
        << r.report->failed << " failed, " << r.report->pending << " pending), " << r.report->sagas
        << " sagas (" << r.report->sagas_stuck << " stuck), outbox pending "
        << r.report->outbox_pending << ", ring backlog " << r.report->ring_backlog << "\n";
  }
  out << "  result: " << (r.ok() ? "OK" : "FAILED") << "\n";
}

}  // namespace ringmart::nemesis
