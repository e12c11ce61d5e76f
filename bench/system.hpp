// ringmart bench — one real ringmart (ringmart-supervisor and, through it,
// every daemon) started for a benchmark run, and what the benchmark reads off
// its processes: CPU time (/proc/PID/stat utime+stime, proc(5)) and peak RSS
// (/proc/PID/status VmHWM), per daemon.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <expected>
#include <filesystem>
#include <map>
#include <string>

namespace ringmart::bench {

/// The configuration file of a benchmark run: the defaults of
/// config/ringmart.toml with `durability` ("process" | "fsync"), log level
/// warn and, when `batch_max` > 0, that batch_max (0: the durability's default).
std::string bench_config(const std::string& durability, int batch_max = 0);

class RunningSystem {
 public:
  /// Writes base_dir/ringmart.toml, spawns bin_dir/ringmart-supervisor with
  /// state base_dir/state, runtime base_dir/run and output to
  /// base_dir/ringmart.log, and waits until GET /v1/health answers 200 on both
  /// sockets (up to 60 s). Errors: a message with the log's tail.
  static std::expected<std::unique_ptr<RunningSystem>, std::string> start(
      const std::filesystem::path& bin_dir, const std::filesystem::path& base_dir,
      const std::string& config);
  /// SIGKILLs the supervisor if stop() was not called (its daemons follow
  /// through PDEATHSIG).
  ~RunningSystem();
  RunningSystem(const RunningSystem&) = delete;
  RunningSystem& operator=(const RunningSystem&) = delete;

  /// SIGTERM, then waits up to 30 s. True when the supervisor exited 0.
  bool stop();

  /// Daemon name ("supervisor", "gateway", "order", ...) -> pid, from /proc:
  /// the supervisor and every process whose parent it is.
  std::map<std::string, pid_t> processes() const;
  /// user+system CPU seconds per daemon name, so far.
  std::map<std::string, double> cpu_seconds() const;
  /// Peak resident set (VmHWM) per daemon name, MiB.
  std::map<std::string, double> peak_rss_mib() const;
  /// Resident anonymous memory now (RssAnon: heap and stacks, without the
  /// LMDB file pages that VmHWM also counts), MiB.
  std::map<std::string, double> anon_rss_mib() const;
  /// Disk space data.mdb holds (allocated blocks, bytes) per daemon's
  /// environment, from the state directory.
  std::map<std::string, std::uintmax_t> lmdb_file_bytes() const;

  std::filesystem::path runtime_dir() const { return base_ / "run"; }
  std::filesystem::path state_dir() const { return base_ / "state"; }

 private:
  RunningSystem(std::filesystem::path base, pid_t supervisor)
      : base_(std::move(base)), pid_(supervisor) {}
  std::filesystem::path base_;
  pid_t pid_;
};

/// Sum of the values of a per-daemon map.
double total(const std::map<std::string, double>& per_daemon);

}  // namespace ringmart::bench
