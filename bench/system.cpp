#include "bench/system.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "tools/replay/replay.hpp"

extern char** environ;

namespace ringmart::bench {
namespace fs = std::filesystem;

std::string bench_config(const std::string& durability, int batch_max) {
  std::ostringstream cfg;
  cfg << "[runtime]\nlog_level = \"warn\"\ndurability = \"" << durability << "\"\n";
  if (batch_max > 0) cfg << "batch_max = " << batch_max << "\n";
  // The load generators place orders for the user ids they registered, as a
  // storefront's server does (no sessions).
  cfg << "[gateway]\ncustomer_auth = \"trusted\"\n";
  return cfg.str();
}

namespace {

std::string tail_of(const fs::path& file, std::size_t bytes = 3000) {
  std::ifstream in(file);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string s = ss.str();
  return s.size() > bytes ? s.substr(s.size() - bytes) : s;
}

/// argv[0] of `pid` ("" when gone).
std::string argv0(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline");
  std::string a;
  std::getline(in, a, '\0');
  return a;
}

/// Fields 4 (ppid), 14 (utime) and 15 (stime) of /proc/PID/stat (proc(5));
/// the command field may hold spaces, so parsing starts after its ')'.
bool read_stat(pid_t pid, pid_t& ppid, unsigned long long& ticks) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return false;
  const auto close = line.rfind(')');
  if (close == std::string::npos) return false;
  std::istringstream rest(line.substr(close + 2));
  std::string state;
  long long field_ppid = 0;
  rest >> state >> field_ppid;
  std::string skip;
  for (int i = 5; i <= 13; ++i) rest >> skip;
  unsigned long long utime = 0, stime = 0;
  rest >> utime >> stime;
  ppid = static_cast<pid_t>(field_ppid);
  ticks = utime + stime;
  return static_cast<bool>(rest);
}

std::string daemon_of(const std::string& exe) {
  const auto base = fs::path(exe).filename().string();
  return base.starts_with("ringmart-") ? base.substr(9) : base;
}

}  // namespace

std::expected<std::unique_ptr<RunningSystem>, std::string> RunningSystem::start(
    const fs::path& bin_dir, const fs::path& base_dir, const std::string& config) {
  std::error_code ec;
  fs::create_directories(base_dir / "state", ec);
  fs::create_directories(base_dir / "run", ec);
  if (ec) return std::unexpected("mkdir " + base_dir.string() + ": " + ec.message());
  const fs::path config_file = base_dir / "ringmart.toml";
  const fs::path log_file = base_dir / "ringmart.log";
  std::ofstream(config_file) << config;

  const std::string exe = (bin_dir / "ringmart-supervisor").string();
  std::vector<std::string> args = {exe,
                                   "--state-dir",
                                   (base_dir / "state").string(),
                                   "--runtime-dir",
                                   (base_dir / "run").string(),
                                   "--config",
                                   config_file.string()};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                   0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, exe.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return std::unexpected("spawn " + exe + ": " + std::strerror(rc));
  std::unique_ptr<RunningSystem> sys(new RunningSystem(base_dir, pid));

  replay::Options ro;
  ro.runtime_dir = sys->runtime_dir();
  ro.startup_timeout = std::chrono::seconds(60);
  std::ostringstream log;
  // The sockets appear a moment after the spawn; wait_healthy fails at once
  // on a missing runtime directory only, which exists.
  if (auto healthy = replay::wait_healthy(ro, log); !healthy) {
    return std::unexpected(healthy.error().message + "\n" + tail_of(log_file));
  }
  return sys;
}

RunningSystem::~RunningSystem() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

bool RunningSystem::stop() {
  if (pid_ <= 0) return false;
  ::kill(pid_, SIGTERM);
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (::waitpid(pid_, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  pid_ = 0;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

std::map<std::string, pid_t> RunningSystem::processes() const {
  std::map<std::string, pid_t> out;
  if (pid_ <= 0) return out;
  out["supervisor"] = pid_;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const auto name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = std::stoi(name);
    pid_t ppid = 0;
    unsigned long long ticks = 0;
    if (!read_stat(pid, ppid, ticks) || ppid != pid_) continue;
    const std::string exe = argv0(pid);
    if (fs::path(exe).filename().string().starts_with("ringmart-")) out[daemon_of(exe)] = pid;
  }
  return out;
}

std::map<std::string, double> RunningSystem::cpu_seconds() const {
  std::map<std::string, double> out;
  const double hz = static_cast<double>(::sysconf(_SC_CLK_TCK));
  for (const auto& [name, pid] : processes()) {
    pid_t ppid = 0;
    unsigned long long ticks = 0;
    if (read_stat(pid, ppid, ticks)) out[name] = static_cast<double>(ticks) / hz;
  }
  return out;
}

namespace {
/// A "<field>: <n> kB" line of /proc/PID/status per daemon, MiB.
std::map<std::string, double> status_field_mib(const std::map<std::string, pid_t>& procs,
                                               const std::string& field) {
  std::map<std::string, double> out;
  for (const auto& [name, pid] : procs) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
      if (!line.starts_with(field + ":")) continue;
      std::istringstream fields(line.substr(field.size() + 1));
      double kib = 0;
      fields >> kib;
      out[name] = kib / 1024.0;
    }
  }
  return out;
}
}  // namespace

std::map<std::string, double> RunningSystem::peak_rss_mib() const {
  return status_field_mib(processes(), "VmHWM");
}

std::map<std::string, double> RunningSystem::anon_rss_mib() const {
  return status_field_mib(processes(), "RssAnon");
}

std::map<std::string, std::uintmax_t> RunningSystem::lmdb_file_bytes() const {
  std::map<std::string, std::uintmax_t> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(state_dir(), ec)) {
    const auto data = entry.path() / "data.mdb";
    // The disk blocks the file holds: pages are allocated as LMDB first uses
    // them, so this is the high-water mark of the environment, the figure
    // that must stop growing. (Not the file size: with MDB_WRITEMAP LMDB
    // sizes the sparse file to the whole map.)
    struct stat st {};
    if (::stat(data.c_str(), &st) == 0) {
      out[entry.path().filename()] = static_cast<std::uintmax_t>(st.st_blocks) * 512;
    }
  }
  return out;
}

double total(const std::map<std::string, double>& per_daemon) {
  double sum = 0;
  for (const auto& [name, v] : per_daemon) sum += v;
  return sum;
}

}  // namespace ringmart::bench
