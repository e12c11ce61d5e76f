// Test-side helpers: spawning ringmart-mp-peer as a real separate process
// (fork + exec) and a seeded random source for kill timing. Per-run
// shared-memory names and temporary directories come from testkit/.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace ringmart::mp {

/// The prefix of these tests' temporary directories and shared-memory names
/// (testkit::TempDir, testkit::ShmNames).
inline constexpr const char* kMpPrefix = "rm-mp";

/// A running ringmart-mp-peer. Its stdout is a pipe to the test; stderr is
/// inherited. Killed (SIGKILL) and reaped on destruction if still running, and
/// killed by the kernel if the test process dies (PR_SET_PDEATHSIG).
class Peer {
 public:
  static Peer spawn(const std::vector<std::string>& args);
  Peer(Peer&& other) noexcept;
  Peer& operator=(Peer&& other) noexcept;
  Peer(const Peer&) = delete;
  ~Peer();

  pid_t pid() const { return pid_; }
  void signal(int sig) const;
  /// Blocks until the process is stopped (after SIGSTOP); false if it exited.
  bool wait_stopped();
  /// Blocks until exit; returns the waitpid status.
  int wait();
  /// The waitpid status if the process has exited, without blocking.
  std::optional<int> try_wait();
  /// Next stdout line (without '\n') within timeout_ms, or nullopt (timeout / EOF).
  std::optional<std::string> read_line(int timeout_ms);
  /// Everything left on stdout until EOF (call after the process exited).
  std::string read_rest();

 private:
  Peer() = default;
  void release();
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::optional<int> status_;
  std::string buffered_;
};

/// "exited 0", "killed by signal 9", ...
std::string describe_status(int status);
bool exited_ok(int status);
bool killed_by(int status, int sig);

/// The line of a peer's output that starts with "DONE" ("" if none).
std::string done_line(const std::string& output);
/// Value of `key=` in a "DONE a=1 b=2" line, or nullopt.
std::optional<std::uint64_t> field(const std::string& line, const std::string& key);

/// Process-wide random source; seed from RINGMART_MP_SEED or the clock (printed).
std::mt19937_64& rng();
std::uint64_t uniform(std::uint64_t lo, std::uint64_t hi);  // inclusive

/// CLOCK_MONOTONIC microseconds.
std::int64_t now_us();
/// Sleeps (clock_nanosleep, absolute) until now_us() >= t.
void sleep_until_us(std::int64_t t);

}  // namespace ringmart::mp
