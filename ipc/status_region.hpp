// ringmart::ipc — the status region: one shared-memory segment per system
// holding, per daemon, its doorbell, pid, state, restart count, last exit,
// heartbeat and counters, plus the saga counts. The supervisor creates it and
// owns the process fields; each daemon writes its own heartbeat and counters;
// ringmartctl only reads (it works while every daemon is down).
//
// All fields are individually atomic; a reader may see fields of one slot from
// slightly different moments (no snapshot consistency), which is fine for
// monitoring. Process-safe; no locks.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <expected>
#include <string>
#include <system_error>

#include "ipc/doorbell.hpp"
#include "ipc/shm_segment.hpp"

namespace ringmart::ipc {

inline constexpr std::uint32_t kStatusMagic = 0x53544154;  // "STAT"
inline constexpr std::uint32_t kStatusVersion = 1;
inline constexpr std::size_t kMaxDaemons = 8;

/// Process state as managed by the supervisor.
enum class DaemonState : std::uint32_t {
  stopped = 0,   ///< not running (not started yet, or stopped on shutdown)
  starting = 1,  ///< spawned, has not heart-beaten yet
  running = 2,   ///< heart-beating
  backoff = 3,   ///< exited; waiting before the restart
  failed = 4,    ///< gave up (restart intensity exceeded / cannot start)
};
const char* to_string(DaemonState s);

struct alignas(64) DaemonSlot {
  DoorbellWord doorbell;  ///< rings of this daemon's inbound channels
  std::atomic<std::int32_t> pid{0};
  std::atomic<std::uint32_t> state{0};  ///< DaemonState
  std::atomic<std::uint32_t> restarts{0};
  std::atomic<std::int32_t> last_exit{0};        ///< waitpid status of the last exit
  std::atomic<std::int64_t> heartbeat_ms{0};     ///< CLOCK_MONOTONIC ms of the last loop turn
  std::atomic<std::int64_t> started_ms{0};       ///< CLOCK_MONOTONIC ms of the last spawn
  std::atomic<std::uint64_t> messages_in{0};     ///< applied inbound messages (duplicates excluded)
  std::atomic<std::uint64_t> messages_out{0};    ///< records pushed to rings
  std::atomic<std::uint64_t> duplicates{0};      ///< redelivered messages skipped by the inbox
  std::atomic<std::uint64_t> commits{0};         ///< LMDB write transactions committed
  std::atomic<std::uint64_t> outbox_pending{0};  ///< outbox entries not yet acknowledged
  std::atomic<std::uint64_t> errors{0};          ///< failed transactions / corrupt records
};

/// Saga counts by state, written by the supervisor.
struct SagaCounts {
  std::atomic<std::uint64_t> running{0};
  std::atomic<std::uint64_t> compensating{0};
  std::atomic<std::uint64_t> completed{0};
  std::atomic<std::uint64_t> failed{0};
  std::atomic<std::uint64_t> stuck{0};
};

struct StatusLayout {
  std::uint32_t magic;
  std::atomic<std::uint32_t> version;  ///< written last by the creator
  std::atomic<std::int32_t> supervisor_pid{0};
  std::atomic<std::int64_t> supervisor_heartbeat_ms{0};
  SagaCounts sagas;
  std::array<DaemonSlot, kMaxDaemons> slots;
};

class StatusRegion {
 public:
  /// Creates or re-attaches the region (supervisor). Keeps a valid existing
  /// region (restart counters survive a supervisor restart).
  static std::expected<StatusRegion, std::error_code> create(const std::string& name,
                                                             unsigned mode = 0600);
  /// Attaches to an existing region (daemons, ringmartctl).
  /// Errors: no_such_file_or_directory; protocol_error for another layout version.
  static std::expected<StatusRegion, std::error_code> open(const std::string& name);

  StatusRegion() = default;
  StatusLayout& layout() const { return *layout_; }
  DaemonSlot& slot(std::size_t daemon) const { return layout_->slots.at(daemon); }
  Doorbell doorbell(std::size_t daemon) const { return Doorbell(&slot(daemon).doorbell); }

 private:
  explicit StatusRegion(ShmSegment s)
      : segment_(std::move(s)), layout_(static_cast<StatusLayout*>(segment_.data())) {}
  ShmSegment segment_;
  StatusLayout* layout_ = nullptr;
};

/// CLOCK_MONOTONIC in milliseconds (comparable across processes on one host).
std::int64_t monotonic_ms();

}  // namespace ringmart::ipc
