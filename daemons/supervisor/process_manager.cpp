#include "daemons/supervisor/process_manager.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string_view>
#include <thread>

namespace ringmart::supervisor {
namespace {
std::string describe_exit(int status) {
  if (WIFEXITED(status)) return "exit code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("signal ") + strsignal(WTERMSIG(status));
  return "status " + std::to_string(status);
}
}  // namespace

ProcessManager::ProcessManager(runtime::Config config, ipc::StatusRegion& status,
                               std::string daemon_dir, RestartPolicy policy,
                               std::shared_ptr<spdlog::logger> log)
    : config_(std::move(config)),
      status_(status),
      daemon_dir_(std::move(daemon_dir)),
      policy_(policy),
      log_(std::move(log)) {
  for (auto id : runtime::all_daemons()) {
    if (id == runtime::DaemonId::SUPERVISOR) continue;
    Child c;
    c.id = id;
    children_.push_back(std::move(c));
  }
}

namespace {
std::filesystem::path executable_dir() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::current_path() : exe.parent_path();
}
}  // namespace

std::string ProcessManager::default_daemon_dir() { return resolve_daemon_dir(""); }

std::string ProcessManager::resolve_daemon_dir(const std::string& configured) {
  const std::filesystem::path dir =
      configured.empty() ? RINGMART_DAEMON_DIR_FROM_BINDIR : configured;
  if (dir.is_absolute()) return dir.lexically_normal().string();
  return (executable_dir() / dir).lexically_normal().string();
}

std::string ProcessManager::missing_daemons(const std::string& daemon_dir) {
  std::string missing;
  for (auto id : runtime::all_daemons()) {
    if (id == runtime::DaemonId::SUPERVISOR) continue;
    const std::string exe = std::string("ringmart-") + runtime::daemon_name(id);
    if (::access((daemon_dir + "/" + exe).c_str(), X_OK) == 0) continue;
    if (!missing.empty()) missing += ", ";
    missing += exe;
  }
  return missing;
}

namespace {
// True when `pid` is alive and runs ringmart-<name> (not a recycled pid).
bool is_daemon(pid_t pid, const std::string& name) {
  if (pid <= 0 || ::kill(pid, 0) != 0) return false;
  std::ifstream cmdline("/proc/" + std::to_string(pid) + "/cmdline");
  std::string argv0;
  std::getline(cmdline, argv0, '\0');
  return argv0.ends_with("ringmart-" + name);
}
}  // namespace

ProcessManager::Generation ProcessManager::previous_generation(const std::string& runtime_dir) {
  Generation pids{};
  auto transport = runtime::read_shm_transport(runtime_dir);
  if (!transport) return pids;
  auto status = ipc::StatusRegion::open(runtime::status_name(transport->prefix), transport->access);
  if (!status) return pids;
  for (auto id : runtime::all_daemons()) {
    pids[runtime::index(id)] = status->slot(runtime::index(id)).pid.load();
  }
  return pids;
}

void ProcessManager::retire_previous_generation(const Generation& previous, int grace_ms) {
  // After a supervisor crash its children are dying (PDEATHSIG) but may still
  // answer (a gateway on api.sock): let them finish before the new generation
  // starts, so READY/health only ever describe processes of this supervisor.
  // All at once, with one deadline: they already had SIGTERM from PDEATHSIG,
  // and one that does not go (hung, or SIGSTOPped — a stopped process never
  // acts on SIGTERM) must not hold the others' restart for grace_ms each.
  std::vector<std::pair<pid_t, std::string>> old;
  for (auto& c : children_) {
    std::string name = runtime::daemon_name(c.id);
    const pid_t pid = previous[runtime::index(c.id)];
    if (!is_daemon(pid, name)) continue;
    log_->warn("{} pid {} of a previous supervisor is still running: stopping it", name, pid);
    ::kill(pid, SIGTERM);
    old.emplace_back(pid, std::move(name));
  }
  auto any_alive = [&] {
    return std::ranges::any_of(old, [](const auto& o) { return is_daemon(o.first, o.second); });
  };
  auto deadline = ipc::monotonic_ms() + grace_ms;
  while (any_alive() && ipc::monotonic_ms() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  for (const auto& [pid, name] : old) {
    if (!is_daemon(pid, name)) continue;
    log_->warn("{} pid {} did not stop within {} ms: SIGKILL", name, pid, grace_ms);
    ::kill(pid, SIGKILL);
  }
  // SIGKILL works on a stopped process too; wait (bounded) until it is gone,
  // so the new daemon does not spend its start waiting for the lock.
  deadline = ipc::monotonic_ms() + 2000;
  while (any_alive() && ipc::monotonic_ms() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

void ProcessManager::hand_sockets(runtime::DaemonId id, std::vector<HandedSocket> sockets) {
  if (auto* c = find(id)) c->sockets = std::move(sockets);
}

void ProcessManager::start_all() {
  const auto now = ipc::monotonic_ms();
  for (auto& c : children_) spawn(c, now);
}

void ProcessManager::spawn(Child& c, std::int64_t now_ms) {
  const std::string name = runtime::daemon_name(c.id);
  const std::string exe = daemon_dir_ + "/ringmart-" + name;
  std::vector<std::string> args = {exe, "--state-dir", config_.state_dir, "--runtime-dir",
                                   config_.runtime_dir};
  if (!config_.config_file.empty()) {
    args.push_back("--config");
    args.push_back(config_.config_file);
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // Handed-over sockets (sd_listen_fds(3)): the environment is built here;
  // only LISTEN_PID, the child's own pid, is filled in after fork, into a
  // buffer sized for any pid (async-signal-safe: no allocation there).
  std::vector<std::string> env_strings;
  std::vector<char*> envp;
  std::string listen_pid = "LISTEN_PID=" + std::string(20, '\0');
  const std::size_t pid_at = std::string_view("LISTEN_PID=").size();
  if (!c.sockets.empty()) {
    std::string names;
    for (const auto& h : c.sockets) names += (names.empty() ? "" : ":") + h.name;
    for (char** e = environ; *e; ++e) {
      if (!std::string_view(*e).starts_with("LISTEN_")) env_strings.emplace_back(*e);
    }
    env_strings.push_back("LISTEN_FDS=" + std::to_string(c.sockets.size()));
    env_strings.push_back("LISTEN_FDNAMES=" + names);
    for (auto& e : env_strings) envp.push_back(e.data());
    envp.push_back(listen_pid.data());
    envp.push_back(nullptr);
  }
  const int handed = static_cast<int>(c.sockets.size());
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    // Child: die with the supervisor; drop every inherited fd (LMDB, sockets)
    // before exec, except the handed-over sockets, moved to 3, 4, ...
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(1);
    if (handed > 0) {
      int above[8];
      if (handed > 8) ::_exit(127);
      // First above the target range, so no dup2 below overwrites a source.
      for (int i = 0; i < handed; ++i) {
        above[i] = ::fcntl(c.sockets[i].fd, F_DUPFD_CLOEXEC, 3 + handed);
        if (above[i] < 0) ::_exit(127);
      }
      for (int i = 0; i < handed; ++i) {
        if (::dup2(above[i], 3 + i) < 0) ::_exit(127);  // dup2 clears FD_CLOEXEC
      }
      char digits[20];
      int n = 0;
      for (auto v = static_cast<unsigned long>(::getpid()); v > 0 || n == 0; v /= 10) {
        digits[n++] = static_cast<char>('0' + v % 10);
      }
      for (int i = 0; i < n; ++i) listen_pid[pid_at + i] = digits[n - 1 - i];
    }
    ::syscall(SYS_close_range, static_cast<unsigned>(3 + handed), ~0u, 0u);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    if (handed > 0) {
      ::execve(exe.c_str(), argv.data(), envp.data());
    } else {
      ::execv(exe.c_str(), argv.data());
    }
    ::_exit(127);
  }
  auto& slot = status_.slot(runtime::index(c.id));
  if (pid < 0) {
    log_->error("cannot fork {}: {}", name, std::strerror(errno));
    c.restart_at_ms = now_ms + 1000;
    slot.state.store(static_cast<std::uint32_t>(ipc::DaemonState::backoff));
    return;
  }
  c.pid = pid;
  c.restart_at_ms = 0;
  slot.pid.store(pid);
  slot.started_ms.store(now_ms);
  slot.heartbeat_ms.store(0);
  slot.state.store(static_cast<std::uint32_t>(ipc::DaemonState::starting));
  log_->info("started {} pid {}", name, pid);
}

std::int64_t restart_backoff_ms(const RestartPolicy& policy, std::int64_t previous_ms,
                                bool served) {
  if (served) return policy.backoff_initial_ms;
  return std::min<std::int64_t>(policy.backoff_max_ms, std::max<std::int64_t>(50, previous_ms * 2));
}

void ProcessManager::on_exit(Child& c, int status, std::int64_t now_ms) {
  const std::string name = runtime::daemon_name(c.id);
  auto& slot = status_.slot(runtime::index(c.id));
  slot.last_exit.store(status);
  slot.pid.store(0);
  c.pid = 0;
  if (c.stop_requested) {
    c.stop_requested = false;
    c.restart_at_ms = 0;
    slot.state.store(static_cast<std::uint32_t>(ipc::DaemonState::stopped));
    log_->info("{} stopped by the operator; `ringmartctl start {}` starts it again", name, name);
    return;
  }
  if (c.restart_requested) {
    c.restart_requested = false;
    log_->info("{} stopped for the operator's restart", name);
    spawn(c, now_ms);
    return;
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == runtime::kExitCannotStart) {
    // Restarting cannot help; keep the others running and wait for the operator.
    auto why = ipc::reason(slot);
    if (why.empty()) why = "exit code " + std::to_string(runtime::kExitCannotStart);
    log_->error("{} cannot start: {}; not restarting it (fix, then `ringmartctl start {}`)", name,
                why, name);
    c.cannot_start = true;
    c.restart_at_ms = 0;
    slot.state.store(static_cast<std::uint32_t>(ipc::DaemonState::failed));
    return;
  }
  while (!c.restarts.empty() && c.restarts.front() < now_ms - policy_.period_ms)
    c.restarts.pop_front();
  c.restarts.push_back(now_ms);
  if (static_cast<int>(c.restarts.size()) > policy_.max_restarts) {
    log_->error("{} exited ({}) {} times within {} ms: giving up", name, describe_exit(status),
                c.restarts.size(), policy_.period_ms);
    slot.state.store(static_cast<std::uint32_t>(ipc::DaemonState::failed));
    gave_up_ = true;
    return;
  }
  // spawn() zeroes the heartbeat; the daemon's loop sets it on its first turn.
  c.backoff_ms = restart_backoff_ms(policy_, c.backoff_ms, slot.heartbeat_ms.load() != 0);
  c.restart_at_ms = now_ms + c.backoff_ms;
  slot.restarts.fetch_add(1);
  slot.state.store(static_cast<std::uint32_t>(ipc::DaemonState::backoff));
  log_->warn("{} exited ({}); restart in {} ms", name, describe_exit(status), c.backoff_ms);
}

bool ProcessManager::tick(std::int64_t now_ms) {
  int status = 0;
  pid_t pid;
  // SYNC: relaxed — the flag only says "look"; waitpid itself is the truth.
  if (child_exited_.exchange(false, std::memory_order_relaxed) ||
      now_ms - last_reap_ms_ >= kReapBackstopMs) {
    last_reap_ms_ = now_ms;
    while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
      for (auto& c : children_) {
        if (c.pid == pid) on_exit(c, status, now_ms);
      }
    }
  }
  if (gave_up_) return false;
  for (auto& c : children_) {
    auto& slot = status_.slot(runtime::index(c.id));
    if (c.pid == 0) {
      if (c.restart_at_ms && now_ms >= c.restart_at_ms) spawn(c, now_ms);
      continue;
    }
    const auto hb = slot.heartbeat_ms.load();
    if (hb == 0) {
      if (now_ms - slot.started_ms.load() > policy_.startup_grace_ms) {
        log_->error("{} did not start within {} ms: killing it", runtime::daemon_name(c.id),
                    policy_.startup_grace_ms);
        ::kill(c.pid, SIGKILL);
      }
      continue;
    }
    if (slot.state.load() == static_cast<std::uint32_t>(ipc::DaemonState::starting)) {
      slot.state.store(static_cast<std::uint32_t>(ipc::DaemonState::running));
    }
    if (now_ms - hb > config_.heartbeat_timeout_ms) {
      log_->error("{} missed its heartbeat for {} ms: killing it", runtime::daemon_name(c.id),
                  now_ms - hb);
      ::kill(c.pid, SIGKILL);
      slot.heartbeat_ms.store(now_ms);  // one kill per timeout period
    }
  }
  return true;
}

ProcessManager::Child* ProcessManager::find(runtime::DaemonId id) {
  for (auto& c : children_) {
    if (c.id == id) return &c;
  }
  return nullptr;
}

ipc::ControlReply ProcessManager::start(runtime::DaemonId id, std::int64_t now_ms) {
  auto* c = find(id);
  if (!c) return {ipc::ControlResult::not_found, "not a daemon the supervisor runs"};
  const std::string name = runtime::daemon_name(id);
  if (c->pid != 0) return {ipc::ControlResult::already_done, name + " is running"};
  c->cannot_start = false;
  c->restarts.clear();
  c->backoff_ms = 0;
  log_->info("operator starts {}", name);
  spawn(*c, now_ms);
  return {ipc::ControlResult::ok, name + " started"};
}

ipc::ControlReply ProcessManager::restart(runtime::DaemonId id, std::int64_t now_ms) {
  auto* c = find(id);
  if (!c) return {ipc::ControlResult::not_found, "not a daemon the supervisor runs"};
  if (c->pid == 0) return start(id, now_ms);
  const std::string name = runtime::daemon_name(id);
  log_->info("operator restarts {} (pid {})", name, c->pid);
  c->restart_requested = true;
  ::kill(c->pid, SIGTERM);
  return {ipc::ControlResult::ok, name + " restarting"};
}

ipc::ControlReply ProcessManager::stop(runtime::DaemonId id) {
  auto* c = find(id);
  if (!c) return {ipc::ControlResult::not_found, "not a daemon the supervisor runs"};
  const std::string name = runtime::daemon_name(id);
  if (c->pid == 0) {
    // A restart waiting for its backoff is cancelled; a daemon that failed
    // (cannot start) keeps that state and its reason.
    if (c->restart_at_ms) {
      c->restart_at_ms = 0;
      status_.slot(runtime::index(id))
          .state.store(static_cast<std::uint32_t>(ipc::DaemonState::stopped));
    }
    return {ipc::ControlResult::already_done, name + " is not running"};
  }
  log_->info("operator stops {} (pid {})", name, c->pid);
  c->stop_requested = true;
  c->restart_requested = false;
  ::kill(c->pid, SIGTERM);
  return {ipc::ControlResult::ok, name + " stopping"};
}

std::string ProcessManager::failures() const {
  std::string out;
  for (const auto& c : children_) {
    if (!c.cannot_start) continue;
    if (!out.empty()) out += "; ";
    out += std::string(runtime::daemon_name(c.id)) + ": " +
           ipc::reason(status_.slot(runtime::index(c.id)));
  }
  return out;
}

bool ProcessManager::all_running(std::int64_t now_ms, std::int64_t fresh_ms) const {
  for (const auto& c : children_) {
    const auto& slot = status_.slot(runtime::index(c.id));
    if (c.cannot_start) continue;  // reported through failures(), not a reason to wait
    if (c.pid == 0 || now_ms - slot.heartbeat_ms.load() > fresh_ms) return false;
  }
  return true;
}

void ProcessManager::stop_all(int grace_ms) {
  for (auto it = children_.rbegin(); it != children_.rend(); ++it) {
    if (it->pid == 0) continue;
    ::kill(it->pid, SIGTERM);
    const auto deadline = ipc::monotonic_ms() + grace_ms;
    int status = 0;
    for (;;) {
      const pid_t r = ::waitpid(it->pid, &status, WNOHANG);
      if (r == it->pid || r < 0) break;
      if (ipc::monotonic_ms() > deadline) {
        log_->warn("{} ignored SIGTERM for {} ms: SIGKILL", runtime::daemon_name(it->id), grace_ms);
        ::kill(it->pid, SIGKILL);
        ::waitpid(it->pid, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    auto& slot = status_.slot(runtime::index(it->id));
    slot.pid.store(0);
    slot.state.store(static_cast<std::uint32_t>(ipc::DaemonState::stopped));
    it->pid = 0;
  }
}

}  // namespace ringmart::supervisor
