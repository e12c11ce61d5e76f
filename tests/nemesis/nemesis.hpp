// ringmart::nemesis — a fault-injection harness around the real system.
//
// A System is one ringmart (the real supervisor and, through it, every real
// daemon) in its own directory, started with a given configuration and
// environment. The harness plays systemd for the supervisor: it restarts it at
// once when it dies (Restart=always) and kills it when its heartbeat stops
// (WatchdogSec).
//
// A Nemesis injects faults into a running System from its own thread while
// orders are replayed through the HTTP API (tools/replay):
//   kill    SIGKILL one random daemon, the supervisor and gateway included;
//   stop    SIGSTOP one random daemon (a hang) and wait until its supervisor
//           (or, for the supervisor, the harness watchdog) killed and
//           replaced it;
//   reboot  SIGKILL the supervisor and every daemon at once, delete the
//           shared-memory segments, start the supervisor again.
// and a probe thread measures, by polling the status region every ~1 ms, how
// long a killed process takes to serve again.
//
// run() ties it together: set-up, a fault-free baseline, the replay under
// faults, the quiet wait, the invariant checker (tests/chaos) and the figures.
//
// Thread-safety: System's methods may be called from any thread (one mutex
// guards the supervisor process); Nemesis::inject() is thread-safe; the rest
// of Nemesis is for the thread that owns it.
#pragma once

#include <sys/types.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <expected>
#include <filesystem>
#include <iosfwd>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "daemons/common/config.hpp"
#include "daemons/common/topology.hpp"
#include "ipc/status_region.hpp"
#include "tests/chaos/checker.hpp"
#include "tools/olist/dataset.hpp"
#include "tools/replay/replay.hpp"

namespace ringmart::nemesis {

/// The configuration the harness runs the system with: `[runtime]
/// heartbeat_timeout_ms` (the hang detection), a short payment timeout and
/// compensation timeout (as tests/integration/system.cpp), a restart
/// intensity high enough that the supervisor never gives up under the nemesis,
/// `backoff_max_ms` (the supervisor's restart backoff cap, ms) and a 2 s
/// `startup_grace_ms` (a daemon hung before its first heartbeat).
/// `durability` is "process" or "fsync".
std::string chaos_config(int heartbeat_timeout_ms = 1000, int backoff_max_ms = 200,
                         const std::string& durability = "process");

struct SystemOptions {
  std::filesystem::path base_dir;       ///< "" = a new /tmp/ringmart-nemesis-XXXXXX
  std::filesystem::path bin_dir;        ///< holds ringmart-supervisor and the daemons
  std::string config = chaos_config();  ///< the whole TOML file
  /// Added to the supervisor's environment (and so its daemons'), e.g.
  /// {"RINGMART_CRASH_POINT", "after_commit:order:3"}.
  std::vector<std::pair<std::string, std::string>> env;
  bool keep_dir = false;  ///< leave base_dir (logs, LMDB) behind
};

/// One ringmart in base_dir/{state,run}, config base_dir/ringmart.toml, the
/// supervisor's (and daemons') output in base_dir/ringmart.log.
class System {
 public:
  /// Creates the directories and writes the config. Errors: a message
  /// (mkdtemp/mkdir failed, config unreadable by runtime::Config::load).
  static std::expected<std::unique_ptr<System>, std::string> create(SystemOptions options);
  /// SIGKILLs whatever still runs, removes the shared memory, and removes
  /// base_dir unless keep_dir.
  ~System();
  System(const System&) = delete;
  System& operator=(const System&) = delete;

  /// Spawns the supervisor and waits until GET /v1/health answers 200 on
  /// api.sock (`timeout_ms`). Errors: a message with the log's tail.
  std::expected<void, std::string> start(int timeout_ms = 60000);
  /// Waits until GET /v1/health answers 200 on api.sock. Errors: timed out.
  std::expected<void, std::string> wait_healthy(int timeout_ms) const;
  /// SIGTERM to the supervisor, then waits up to `timeout_ms` (SIGKILL
  /// after). True when it exited with status 0.
  bool stop(int timeout_ms = 30000);

  /// SIGKILL the supervisor and start a new one at once (its children die
  /// through PDEATHSIG; the new one retires stragglers). Returns the kill
  /// time (CLOCK_MONOTONIC ms) and the killed pid; nullopt when not running.
  std::optional<std::pair<std::int64_t, pid_t>> kill_supervisor();
  /// The "reboot": SIGKILL the supervisor and every daemon at once, wait
  /// until they are gone, runtime::remove_transport(), start the supervisor
  /// again. Returns the kill time (CLOCK_MONOTONIC ms).
  std::int64_t reboot();
  /// When the supervisor exited on its own: reaps it, starts a new one and
  /// returns the waitpid status of the exit. nullopt while it runs.
  std::optional<int> restart_if_exited();

  pid_t supervisor_pid() const;
  /// Maps the status region the running supervisor published (every
  /// supervisor start and reboot makes a new one: a mapping from before shows
  /// a dead segment). Errors: no_such_file_or_directory (none published yet),
  /// those of runtime::read_shm_transport and StatusRegion::open.
  std::expected<ipc::StatusRegion, std::error_code> open_status() const;

  const std::filesystem::path& base_dir() const { return base_; }
  std::filesystem::path state_dir() const { return base_ / "state"; }
  std::filesystem::path runtime_dir() const { return base_ / "run"; }
  std::filesystem::path config_file() const { return base_ / "ringmart.toml"; }
  std::filesystem::path log_file() const { return base_ / "ringmart.log"; }
  const runtime::Config& config() const { return config_; }
  /// Options for the invariant checker over this system.
  checker::Options checker_options(std::vector<std::uint64_t> accepted_order_ids = {}) const;
  /// The last `bytes` of the log (for failure messages).
  std::string log_tail(std::size_t bytes = 4000) const;

 private:
  explicit System(SystemOptions options);
  pid_t spawn_locked();
  /// SIGKILL the supervisor and every daemon at once and wait (up to 10 s)
  /// until they are gone. Returns the kill time (CLOCK_MONOTONIC ms).
  std::int64_t kill_all_locked();
  /// Every running daemon (not the supervisor) of this system, by /proc scan.
  std::vector<pid_t> daemon_pids() const;

  SystemOptions options_;
  std::filesystem::path base_;
  runtime::Config config_;
  mutable std::mutex mutex_;  // guards supervisor_
  pid_t supervisor_ = 0;
};

/// True when `pid` is alive and runs the executable ringmart-`name`
/// (not a zombie, not a recycled pid).
bool is_ringmart_process(pid_t pid, const std::string& name);

enum class FaultKind { kill, stop, reboot };
const char* to_string(FaultKind kind);  ///< "kill", "stop", "reboot"
std::optional<FaultKind> parse_fault_kind(std::string_view name);

/// One injected fault and what the probe saw after it. Times are
/// CLOCK_MONOTONIC ms; durations ms, -1 = not observed.
struct FaultRecord {
  FaultKind kind = FaultKind::kill;
  runtime::DaemonId target = runtime::DaemonId::SUPERVISOR;  ///< reboot: the supervisor
  pid_t pid = 0;                                             ///< the process the signal went to
  std::int64_t at_ms = 0;
  std::int64_t at_realtime_ms = 0;  ///< CLOCK_REALTIME ms of at_ms, to find it in ringmart.log
  /// kill/stop: from the signal until the target's status slot holds a new
  /// pid whose heartbeat_ms is later than the signal (it serves again).
  /// reboot: the same for the supervisor.
  std::int64_t restart_ms = -1;
  /// supervisor kill / reboot / stop: until every daemon serves again
  /// (a new pid with a fresh heartbeat in all 8 slots).
  std::int64_t recovery_ms = -1;
  /// A supervisor kill or reboot came before the target served again, so
  /// restart_ms includes a whole system restart: left out of the percentiles.
  bool superseded = false;
  bool timed_out = false;  ///< not serving again within NemesisOptions::probe_timeout_ms
};

struct NemesisOptions {
  std::set<FaultKind> kinds = {FaultKind::kill};  ///< empty = only the watchdog and probes
  int interval_min_ms = 100;  ///< pause between two faults: uniform in [min, max]
  int interval_max_ms = 300;
  int stop_every = 25;    ///< with `stop` enabled, every Nth fault is a hang
  int reboot_every = 60;  ///< with `reboot` enabled, every Nth fault is a reboot
  std::uint64_t seed = 1;
  /// The system's [runtime] heartbeat_timeout_ms: the harness watchdog kills
  /// a supervisor whose heartbeat is older (systemd WatchdogSec).
  int heartbeat_timeout_ms = 1000;
  int probe_timeout_ms = 60000;
  /// check_stock_nonnegative() period during the load (0 = never).
  int stock_check_interval_ms = 2000;
};

/// Counts kept by the harness itself (not by the system).
struct NemesisCounters {
  std::size_t supervisor_exits = 0;         ///< the supervisor died without a nemesis kill
  std::vector<int> supervisor_exit_status;  ///< their waitpid statuses
  std::size_t watchdog_kills = 0;           ///< supervisor killed for a stale heartbeat
  std::size_t skipped = 0;                  ///< fault rounds whose target was not running
  std::size_t stock_checks = 0;
  std::vector<checker::Violation> stock_violations;  ///< found during the load
  std::vector<std::string> errors;                   ///< checker/status access failures
};

class Nemesis {
 public:
  Nemesis(System& system, NemesisOptions options);
  /// Stops the threads (stop()).
  ~Nemesis();
  Nemesis(const Nemesis&) = delete;
  Nemesis& operator=(const Nemesis&) = delete;

  /// Starts the watchdog/probe thread and, when kinds is not empty, the fault thread.
  void start();
  /// Suspends (true) or resumes (false) the fault thread; returns once a
  /// fault being injected is over. Probes and the watchdog go on.
  void pause(bool paused);
  /// Stops injecting (a hang in progress is waited for), then waits up to
  /// probe_timeout_ms for open probes. Idempotent.
  void stop();
  /// Injects one fault now (thread-safe; serialised with the fault thread).
  /// For `stop`, waits until the hung process was replaced (or SIGKILLs it
  /// itself after heartbeat_timeout_ms + 10 s, recorded as timed_out).
  /// Returns the record as injected; nullopt when the target was not running.
  std::optional<FaultRecord> inject(FaultKind kind, runtime::DaemonId target);

  std::vector<FaultRecord> faults() const;  ///< with the probe results so far
  NemesisCounters counters() const;
  std::int64_t last_fault_ms() const;  ///< CLOCK_MONOTONIC ms; 0 = none

 private:
  struct Pending {
    FaultRecord record;
    /// Slot pids before the fault (supervisor index: the signalled supervisor).
    std::array<pid_t, runtime::kDaemonCount> old_pids{};
    bool done = false;  // probe finished (or timed out)
  };
  void fault_loop();
  void monitor_loop();
  void stock_loop();
  void probe(std::int64_t now_ms, const ipc::StatusRegion& status);
  bool open_probes() const;

  System& system_;
  NemesisOptions options_;
  std::mt19937_64 rng_;       // fault thread only
  mutable std::mutex mutex_;  // guards faults_ and counters_
  std::mutex inject_mutex_;   // one fault at a time
  std::vector<Pending> faults_;
  NemesisCounters counters_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> paused_{false};
  std::atomic<bool> monitor_stopping_{false};
  std::thread fault_thread_;
  std::thread monitor_thread_;
  std::thread stock_thread_;
};

/// Sends the orders of `result` whose POST never got an answer (no order_id:
/// every retry failed while the gateway or the whole system restarted) again,
/// with the same Idempotency-Key (options.key_prefix + source id): the gateway
/// answers an order it accepted before from the key and accepts one it never
/// saw. Their outcomes in `result` are replaced. Returns how many were sent.
/// Thread-safe for distinct `result`s.
std::size_t resubmit_unanswered(const olist::Dataset& data, const replay::Ids& ids,
                                const replay::Options& options, replay::ReplayResult& result);

/// Nearest-rank percentile (p in 0..100) of unsorted values (replay::percentile
/// after a sort); 0 when empty.
std::int64_t percentile(std::vector<std::int64_t> values, double p);

/// A chaos run: data, load, faults, checks.
struct RunOptions {
  olist::Dataset data;
  unsigned repeat = 1;     ///< replay the data set K times, key prefixes "r<k>-"
  replay::Options replay;  ///< concurrency, payment mix, timeouts (runtime_dir is set here)
  NemesisOptions nemesis;
  SystemOptions system;
  /// Also replay the same orders on a fresh system without faults first, for
  /// the throughput comparison.
  bool fault_free_baseline = false;
  /// Replay further rounds (set up while the nemesis pauses) until at least
  /// this many kills happened, up to max_rounds rounds in all. 0 = exactly `repeat`.
  std::size_t min_kills = 0;
  std::size_t max_rounds = 1000;
  int quiet_timeout_ms = 180000;  ///< for checker::wait_quiet after the load
  /// Orders whose POST never got an answer (all retries failed during a
  /// restart) are sent again with the same Idempotency-Key, up to this often.
  int resubmit_passes = 5;
};

/// Figures of one replay phase.
struct PhaseFigures {
  std::size_t orders = 0, accepted = 0, completed = 0, failed = 0, errors = 0;
  std::map<std::string, std::size_t> failed_by_reason;
  std::map<std::string, std::size_t> errors_by_kind;
  double wall_s = 0;
  double orders_per_s = 0;  ///< accepted-and-terminal orders / wall_s
  double latency_p50_ms = 0, latency_p99_ms = 0, latency_max_ms = 0;  ///< POST -> terminal seen
};

struct RunResult {
  PhaseFigures baseline;  ///< orders == 0 when no baseline ran (it replays `repeat` rounds)
  PhaseFigures load;
  double setup_s = 0;
  std::size_t resubmitted = 0;  ///< orders sent again after an unanswered POST
  std::size_t never_accepted = 0;
  std::vector<FaultRecord> faults;
  NemesisCounters counters;
  std::int64_t quiet_after_last_fault_ms = -1;  ///< last fault -> checker::wait_quiet returned
  std::int64_t quiet_wait_ms = -1;              ///< wait_quiet's own wait
  std::optional<checker::Report> report;        ///< absent when the checker failed
  std::string checker_error;
  std::string base_dir;
  nlohmann::json config;  ///< what ran: kinds, intervals, concurrency, mix

  /// 0 violations from the checker and during the load, every order accepted,
  /// no probe timed out, the supervisor never died on its own.
  bool ok() const;
};

/// Runs: create + start a system, set-up of every repeat (fault-free), the
/// optional baseline on a second system, the replay of every repeat under the
/// nemesis, resubmission of unanswered orders, nemesis stop,
/// checker::wait_quiet, checker::check. Progress goes to `log`.
/// Errors: a message when the system did not start or set-up failed.
std::expected<RunResult, std::string> run(RunOptions options, std::ostream& log);

/// The figures as JSON (the --results file of ringmart-chaos).
nlohmann::json to_json(const RunResult& result);
/// The human summary.
void print_summary(const RunResult& result, std::ostream& out);

}  // namespace ringmart::nemesis
