// ringmart bench — helpers shared by the benchmark binaries: spawning a peer
// process (fork + exec of the running binary, never a thread), per-run
// shared-memory names and temporary directories, the machine's load average.
//
// Nothing here is used by the product; the benchmarks must not depend on
// tests/ (CI never builds bench/, and bench/ builds with tests off).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ringmart::bench {

/// "/rm-bench-<pid>-<tag>-<n>": unique per process and per call.
std::string unique_shm_name(std::string_view tag);

/// Unlinks the shared-memory names it was given when destroyed.
class ShmNames {
 public:
  ShmNames() = default;
  ShmNames(const ShmNames&) = delete;
  ShmNames& operator=(const ShmNames&) = delete;
  ~ShmNames();
  const std::string& add(std::string_view tag);

 private:
  std::vector<std::string> names_;
};

/// A mkdtemp directory "<base>/rm-bench-XXXXXX", removed recursively when
/// destroyed. `base` must be on the disk being measured (not tmpfs) for the
/// LMDB figures to mean anything. Aborts when the directory cannot be made.
class TempDir {
 public:
  explicit TempDir(const std::string& base = "/tmp");
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

/// A child process running this same executable with `args` (argv[1..]).
/// It dies with the parent (PR_SET_PDEATHSIG) and is SIGKILLed and reaped on
/// destruction if still running. `inherit_fd` (>= 0) is kept open across exec.
class Child {
 public:
  static Child spawn(const std::vector<std::string>& args, int inherit_fd = -1);
  Child(Child&& other) noexcept;
  Child& operator=(Child&&) = delete;
  Child(const Child&) = delete;
  ~Child();
  /// Blocks until exit; returns the waitpid status.
  int wait();
  pid_t pid() const { return pid_; }

 private:
  explicit Child(pid_t pid) : pid_(pid) {}
  pid_t pid_ = -1;
};

/// The first three fields of /proc/loadavg ("4.00 3.26 3.29"), or "" when unreadable.
std::string load_average();

/// Busy-wait hint to the CPU (x86 PAUSE): cheaper for the sibling hyperthread
/// and the memory system than a naked spin.
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

/// CLOCK_REALTIME in ms (business timestamps).
std::int64_t realtime_ms();

}  // namespace ringmart::bench
