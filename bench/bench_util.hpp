// ringmart bench — helpers shared by the benchmark binaries: spawning a peer
// process (fork + exec of the running binary, never a thread) and the
// machine's load average. Per-run temporary directories and shared-memory
// names come from testkit/ (kBenchPrefix).
//
// Nothing here is used by the product; the benchmarks must not depend on
// tests/ (the bench preset builds bench/ with the tests off).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ringmart::bench {

/// The prefix of the benchmarks' temporary directories and shared-memory
/// names (testkit::TempDir, testkit::ShmNames).
inline constexpr const char* kBenchPrefix = "rm-bench";

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
