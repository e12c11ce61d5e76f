// ringmart-supervisor: creates the shared memory, spawns and watches every
// daemon, and orchestrates the order saga. Foreground process; under systemd
// it is Type=notify (READY=1, STATUS=, WATCHDOG=1).
#include <signal.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include <cstdio>
#include <cstdlib>

#include "daemons/common/runtime.hpp"
#include "daemons/supervisor/gateway_sockets.hpp"
#include "daemons/supervisor/process_manager.hpp"
#include "daemons/supervisor/saga_engine.hpp"
#include "http/listener.hpp"

using namespace ringmart;

namespace {
ipc::DoorbellWord* g_doorbell = nullptr;

void on_sigchld(int) {
  supervisor::ProcessManager::child_exited();
  if (g_doorbell) ipc::Doorbell(g_doorbell).ring();
}

std::int64_t realtime_ms() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}
}  // namespace

int main(int argc, char** argv) {
  auto config = runtime::parse_command_line(argc, argv, "supervisor");
  if (auto dirs = runtime::prepare_directories(config); !dirs) {
    std::fprintf(stderr, "ringmart-supervisor: %s\n", dirs.error().c_str());
    return 1;
  }
  const auto daemon_dir = supervisor::ProcessManager::resolve_daemon_dir(
      config.get_string("supervisor", "daemon_dir", ""));
  if (auto missing = supervisor::ProcessManager::missing_daemons(daemon_dir); !missing.empty()) {
    std::fprintf(stderr,
                 "ringmart-supervisor: daemon_dir %s lacks %s (set [supervisor] daemon_dir to the "
                 "directory that holds the ringmart-* daemons)\n",
                 daemon_dir.c_str(), missing.c_str());
    return runtime::kExitCannotStart;
  }
  const auto metrics_listen = config.get_string("metrics", "listen", "");
  if (!metrics_listen.empty()) {
    try {
      (void)http::parse_tcp_address(metrics_listen);
    } catch (const std::invalid_argument& e) {
      std::fprintf(stderr, "ringmart-supervisor: [metrics] listen: %s\n", e.what());
      return runtime::kExitCannotStart;
    }
  }
  auto definition = supervisor::SagaDefinition::from_config(config);
  if (!definition) {
    std::fprintf(stderr, "ringmart-supervisor: %s\n", definition.error().c_str());
    return 2;
  }
  auto transport_lock = runtime::TransportLock::acquire(config.runtime_dir, 5000);
  if (!transport_lock) {
    std::fprintf(stderr, "ringmart-supervisor: %s\n", transport_lock.error().c_str());
    return 1;
  }
  // Before create_transport replaces the status region that names them.
  const auto previous = supervisor::ProcessManager::previous_generation(config.runtime_dir);
  if (auto t = runtime::create_transport(config); !t) {
    std::fprintf(stderr, "ringmart-supervisor: %s\n", t.error().c_str());
    return 1;
  }
  auto rt = runtime::Runtime::create(msg::DaemonId::SUPERVISOR, config, 2000);
  if (!rt) {
    std::fprintf(stderr, "ringmart-supervisor: %s\n", rt.error().message.c_str());
    return rt.error().exit_code;
  }
  auto& runtime = **rt;
  auto log = runtime.log();
  if (!config.operator_group_problem.empty()) {
    log->warn("{}: ringmartctl needs root or the service's user", config.operator_group_problem);
  }

  std::optional<supervisor::SagaEngine> engine;
  if (auto e = runtime.transact([&](runtime::Context& ctx) -> std::error_code {
        auto store = supervisor::SagaStore::open(ctx.txn());
        if (!store) return store.error();
        engine.emplace(*definition, *store, log);
        engine->set_metrics(&runtime.status().layout().saga_metrics);
        engine->recover(ctx.txn());
        return {};
      })) {
    log->critical("cannot open the saga store: {}", e.message());
    return 1;
  }
  runtime.on_message(
      [&](runtime::Context& ctx, msg::Envelope::Reader m) { return engine->on_message(ctx, m); });

  supervisor::RestartPolicy policy;
  policy.max_restarts =
      static_cast<int>(config.get_int("supervisor", "max_restarts", policy.max_restarts));
  policy.period_ms =
      static_cast<int>(config.get_int("supervisor", "restart_period_ms", policy.period_ms));
  policy.backoff_max_ms =
      static_cast<int>(config.get_int("supervisor", "backoff_max_ms", policy.backoff_max_ms));
  policy.startup_grace_ms =
      static_cast<int>(config.get_int("supervisor", "startup_grace_ms", policy.startup_grace_ms));
  supervisor::ProcessManager processes(config, runtime.status(), daemon_dir, policy, log);

  runtime.on_control([&](ipc::ControlOp op, std::uint64_t arg) -> ipc::ControlReply {
    const auto now = ipc::monotonic_ms();
    auto daemon = [&]() -> std::optional<runtime::DaemonId> {
      for (auto id : runtime::all_daemons()) {
        if (runtime::index(id) == arg && id != msg::DaemonId::SUPERVISOR) return id;
      }
      return std::nullopt;
    };
    switch (op) {
      case ipc::ControlOp::redrive_saga:
        return engine->redrive(runtime, arg);
      case ipc::ControlOp::abandon_saga:
        return engine->abandon(runtime, arg);
      case ipc::ControlOp::start_daemon:
        if (auto id = daemon()) return processes.start(*id, now);
        return {ipc::ControlResult::not_found, "no such daemon"};
      case ipc::ControlOp::restart_daemon:
        if (auto id = daemon()) return processes.restart(*id, now);
        return {ipc::ControlResult::not_found, "no such daemon"};
      case ipc::ControlOp::stop_daemon:
        if (auto id = daemon()) return processes.stop(*id);
        return {ipc::ControlResult::not_found, "no such daemon"};
      default:
        return {ipc::ControlResult::bad_request, "the supervisor does not handle this operation"};
    }
  });

  auto& layout = runtime.status().layout();
  layout.supervisor_pid.store(::getpid());
  auto& own_slot = runtime.status().slot(runtime::index(msg::DaemonId::SUPERVISOR));
  own_slot.pid.store(::getpid());
  own_slot.started_ms.store(ipc::monotonic_ms());
  own_slot.state.store(static_cast<std::uint32_t>(ipc::DaemonState::running));
  g_doorbell = &runtime.status().slot(runtime::index(msg::DaemonId::SUPERVISOR)).doorbell;
  struct sigaction sa {};
  sa.sa_handler = on_sigchld;
  sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGCHLD, &sa, nullptr);
  runtime.install_signal_handlers();

  // The previous generation first: its gateway may still listen on the
  // socket files the previous supervisor bound.
  processes.retire_previous_generation(previous);
  auto gateway_sockets = supervisor::GatewaySockets::acquire(config.runtime_dir, metrics_listen);
  if (!gateway_sockets) {
    log->critical("cannot listen for the gateway: {}", gateway_sockets.error());
    return 1;
  }
  log->info("api.sock and admin.sock: {} (handed to every gateway)", gateway_sockets->origin());
  if (gateway_sockets->handover().size() > 2) log->info("GET /metrics also served over TCP");
  processes.hand_sockets(msg::DaemonId::GATEWAY, gateway_sockets->handover());
  processes.start_all();

  std::uint64_t watchdog_usec = 0;
  const bool watchdog = sd_watchdog_enabled(0, &watchdog_usec) > 0;
  std::int64_t last_watchdog = 0, last_status = 0;
  bool ready = false;
  int exit_code = 0;
  runtime.on_tick([&](std::int64_t now) {
    layout.supervisor_heartbeat_ms.store(now, std::memory_order_relaxed);
    if (!processes.tick(now)) {
      exit_code = 1;
      sd_notify(0, "STATUS=restart intensity exceeded; stopping");
      runtime.stop();
      return;
    }
    const auto real_now = realtime_ms();
    engine->on_tick(runtime, real_now);
    if (auto d = engine->next_deadline())
      runtime.wake_at(now + std::max<std::int64_t>(0, d - real_now));
    const auto& t = engine->totals();
    layout.sagas.running.store(t.running, std::memory_order_relaxed);
    layout.sagas.compensating.store(t.compensating, std::memory_order_relaxed);
    layout.sagas.completed.store(t.completed, std::memory_order_relaxed);
    layout.sagas.failed.store(t.failed, std::memory_order_relaxed);
    layout.sagas.stuck.store(t.stuck, std::memory_order_relaxed);
    layout.sagas.abandoned.store(t.abandoned, std::memory_order_relaxed);
    if (!ready && processes.all_running(now, 2000)) {
      ready = true;
      log->info("all daemons running");
      sd_notify(0, "READY=1");
    }
    if (watchdog && now - last_watchdog >= static_cast<std::int64_t>(watchdog_usec / 2000)) {
      sd_notify(0, "WATCHDOG=1");
      last_watchdog = now;
    }
    if (now - last_status >= 1000) {
      const auto failures = processes.failures();
      sd_notifyf(0, "STATUS=sagas: %lu running, %lu completed, %lu failed, %lu stuck%s%s",
                 static_cast<unsigned long>(t.running), static_cast<unsigned long>(t.completed),
                 static_cast<unsigned long>(t.failed), static_cast<unsigned long>(t.stuck),
                 failures.empty() ? "" : "; cannot start: ", failures.c_str());
      last_status = now;
    }
  });

  const int rc = runtime.run();
  sd_notify(0, "STOPPING=1");
  log->info("stopping daemons");
  processes.stop_all();
  layout.supervisor_pid.store(0);
  own_slot.pid.store(0);
  own_slot.state.store(static_cast<std::uint32_t>(ipc::DaemonState::stopped));
  if (rc == 0 && exit_code == 0) {
    // Clean stop: nothing is in flight that the outboxes cannot re-send.
    runtime::remove_transport(config.runtime_dir);
  }
  return exit_code ? exit_code : rc;
}
