// ringmart::supervisor — spawns every daemon (fork/exec), restarts one that
// exits or stops heart-beating, with backoff and an Erlang-style restart
// intensity limit (more than `max_restarts` in `period_ms` -> give up: stop
// everything, exit non-zero so systemd escalates).
//
// A daemon that exits with runtime::kExitCannotStart (bad configuration,
// unusable state directory) is not restarted: it is marked failed with the
// reason it wrote to its status slot, the others keep running (reads still
// work, the gateway answers 503 for its writes), and the operator starts it
// again after the fix (`ringmartctl start <daemon>`).
//
// Children get PR_SET_PDEATHSIG(SIGTERM) and no inherited fds beyond 0-2.
// Thread-safety: loop thread only; reap() is driven by SIGCHLD via the doorbell.
#pragma once

#include <spdlog/logger.h>
#include <sys/types.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "daemons/common/config.hpp"
#include "daemons/common/runtime.hpp"
#include "daemons/common/topology.hpp"
#include "daemons/supervisor/gateway_sockets.hpp"
#include "ipc/status_region.hpp"

namespace ringmart::supervisor {

struct RestartPolicy {
  int max_restarts = 50;  ///< within period_ms, per daemon
  int period_ms = 60'000;
  int backoff_initial_ms = 0;     ///< wait before restarting a daemon that served
  int backoff_max_ms = 2'000;     ///< cap of the start-up crash-loop backoff
  int startup_grace_ms = 10'000;  ///< a starting daemon may be silent this long
};

/// The wait (ms) before restarting a daemon that exited. `served`: it
/// heart-beat at least once since it was spawned (it reached its loop), so
/// dying afterwards — killed, OOM, a crash on some message — is not a
/// start-up problem and a restart is due at once (policy.backoff_initial_ms);
/// the restart intensity limit bounds how often, and the runtime's
/// quarantine breaks a loop on one poison message. A daemon that exited
/// before it ever served is in a start-up crash loop (a missing file, a
/// dependency, a port): the wait doubles from 50 ms up to
/// policy.backoff_max_ms (`previous_ms` is the last wait, 0 at first).
/// This is Erlang/OTP's immediate restart for running children plus
/// Kubernetes' CrashLoopBackOff for children that never come up. Pure.
std::int64_t restart_backoff_ms(const RestartPolicy& policy, std::int64_t previous_ms, bool served);

class ProcessManager {
 public:
  /// `daemon_dir` holds the `ringmart-<name>` executables (check it first
  /// with missing_daemons()).
  ProcessManager(runtime::Config config, ipc::StatusRegion& status, std::string daemon_dir,
                 RestartPolicy policy, std::shared_ptr<spdlog::logger> log);

  /// The pid of each daemon (by runtime::index) in the status region a
  /// previous supervisor published for `runtime_dir` (0 where none; all 0 when
  /// nothing is published or it fails the owner checks). Read it before
  /// create_transport replaces that region.
  using Generation = std::array<pid_t, runtime::kDaemonCount>;
  static Generation previous_generation(const std::string& runtime_dir);

  /// SIGTERM to every daemon of `previous` (a crashed supervisor's) that
  /// still runs, SIGKILL to those still there after `grace_ms` (one deadline
  /// for all), then waits (up to 2 s) until they are gone; a zombie
  /// reparented to init counts as gone once reaped. Before start_all().
  void retire_previous_generation(const Generation& previous, int grace_ms = 1000);
  /// `id` is started, at every start and restart, with `sockets` as its
  /// descriptors 3, 4, ... and LISTEN_FDS / LISTEN_PID / LISTEN_FDNAMES set
  /// (the sd_listen_fds(3) protocol, so the daemon reads them as it would
  /// from systemd). The descriptors stay the caller's (GatewaySockets) and
  /// must outlive this manager's children. Before start_all().
  void hand_sockets(runtime::DaemonId id, std::vector<HandedSocket> sockets);
  /// Spawns every daemon except the supervisor (in start order).
  void start_all();
  /// Reaps exits (after child_exited(), or every kReapBackstopMs), kills hung
  /// daemons, restarts due ones. Returns false when the restart intensity was
  /// exceeded (the caller shuts down and exits 1).
  bool tick(std::int64_t now_ms);
  /// Async-signal-safe: a child exited (the SIGCHLD handler calls it), so
  /// the next tick() reaps. Without it tick() would make a waitpid(2) per
  /// loop turn — one syscall per batch for nothing.
  static void child_exited() { child_exited_.store(true, std::memory_order_relaxed); }
  /// A missed or coalesced SIGCHLD still gets its exit reaped this soon.
  static constexpr std::int64_t kReapBackstopMs = 100;
  /// SIGTERM to every child in reverse start order, SIGKILL after `grace_ms`.
  void stop_all(int grace_ms = 5000);
  /// Operator: starts a daemon that is not running (failed to start, or
  /// stopped); already running -> already_done.
  ipc::ControlReply start(runtime::DaemonId id, std::int64_t now_ms);
  /// Operator: SIGTERM a running daemon and start it again at once (not
  /// counted against the restart intensity); not running -> like start().
  ipc::ControlReply restart(runtime::DaemonId id, std::int64_t now_ms);
  /// Operator: SIGTERM a running daemon and keep it stopped (state `stopped`,
  /// not restarted, not counted against the intensity) until start(); for
  /// maintenance, or to let another process take its place (the saga-core
  /// benchmark injects orders as the gateway). Not running -> already_done.
  ipc::ControlReply stop(runtime::DaemonId id);
  /// "name: reason" of every daemon that could not start ("" when none).
  std::string failures() const;
  /// True when every daemon heart-beat within `fresh_ms`.
  bool all_running(std::int64_t now_ms, std::int64_t fresh_ms) const;
  /// Where the daemons are when `[supervisor] daemon_dir` is not set: the
  /// install layout's libexec directory relative to the directory of the
  /// running supervisor executable (`<bindir>/../libexec/ringmart`, the
  /// relative path from CMAKE_INSTALL_BINDIR to CMAKE_INSTALL_LIBEXECDIR/ringmart).
  /// The build tree puts the daemons at the same relative place, so one rule
  /// serves an install under any prefix, an unpacked package and a build.
  static std::string default_daemon_dir();
  /// `[supervisor] daemon_dir` resolved: absolute as given, a relative one
  /// against the supervisor executable's directory, unset = default_daemon_dir().
  static std::string resolve_daemon_dir(const std::string& configured);
  /// The `ringmart-<name>` executables that `daemon_dir` lacks (missing, or
  /// not executable by this process, access(2) X_OK), comma-separated; ""
  /// when every daemon is there.
  static std::string missing_daemons(const std::string& daemon_dir);

 private:
  struct Child {
    runtime::DaemonId id;
    pid_t pid = 0;
    std::int64_t restart_at_ms = 0;  // 0 = not scheduled
    std::int64_t backoff_ms = 0;
    std::deque<std::int64_t> restarts;  // times within the intensity period
    bool cannot_start = false;          // exited kExitCannotStart: waits for the operator
    bool restart_requested = false;     // the operator asked: restart at once, uncounted
    bool stop_requested = false;        // the operator asked: stay stopped until start()
    std::vector<HandedSocket> sockets;  // handed over at every spawn (hand_sockets)
  };
  Child* find(runtime::DaemonId id);
  void spawn(Child& c, std::int64_t now_ms);
  void on_exit(Child& c, int status, std::int64_t now_ms);

  runtime::Config config_;
  ipc::StatusRegion& status_;
  std::string daemon_dir_;
  RestartPolicy policy_;
  std::shared_ptr<spdlog::logger> log_;
  std::vector<Child> children_;
  bool gave_up_ = false;
  std::int64_t last_reap_ms_ = 0;
  static inline std::atomic<bool> child_exited_{true};
};

}  // namespace ringmart::supervisor
