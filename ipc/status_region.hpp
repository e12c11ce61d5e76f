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
#include <string_view>
#include <system_error>

#include "ipc/doorbell.hpp"
#include "ipc/histogram.hpp"
#include "ipc/shm_segment.hpp"

namespace ringmart::ipc {

inline constexpr std::uint32_t kStatusMagic = 0x53544154;  // "STAT"
inline constexpr std::uint32_t kStatusVersion = 3;
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
  std::atomic<std::uint64_t> quarantined{0};     ///< messages moved to the quarantine
  std::atomic<std::uint32_t> flags{0};           ///< DaemonFlags bits, set by the daemon
  /// Outbox entries not yet acknowledged, per receiving daemon (the channel
  /// this daemon -> index); outbox_pending is their sum.
  std::array<std::atomic<std::uint64_t>, kMaxDaemons> outbox_pending_to{};
  std::atomic<std::uint64_t> map_used_bytes{0};  ///< LMDB pages in use x page size
  std::atomic<std::uint64_t> map_size_bytes{0};  ///< LMDB map size (the most it can hold)

  /// Why the daemon last failed to start or stopped working (NUL-terminated,
  /// written by the daemon before it exits or sets a flag; reason_len is
  /// stored last with release order, so a reader that loads it with acquire
  /// and sees a non-zero length reads a complete text).
  std::atomic<std::uint32_t> reason_len{0};
  char reason[200]{};

  /// Crash-loop detection, kept across the daemon's own crashes (it lives in
  /// shared memory; only the daemon owning the slot writes it). inflight_* is
  /// the inbound message (peer, seq) being applied: set before each message,
  /// cleared after the commit. A daemon starting with inflight set crashed
  /// with that message in flight: it becomes the suspect, and suspect_crashes
  /// counts how many lives it ended in a row.
  std::atomic<std::uint32_t> inflight_peer{0};
  std::atomic<std::uint64_t> inflight_seq{0};
  std::atomic<std::uint32_t> suspect_peer{0};
  std::atomic<std::uint64_t> suspect_seq{0};
  std::atomic<std::uint32_t> suspect_crashes{0};

  /// Operator control channel (ringmartctl -> this daemon). A client claims
  /// the channel by CAS of control_owner 0 -> its pid (stealing it from a dead
  /// pid), writes op and arg, then publishes control_request = previous + 1
  /// (release) and rings the doorbell. The daemon executes, writes
  /// control_result and control_message, then stores control_done = request
  /// (release). The client waits for control_done, reads, and releases owner.
  std::atomic<std::int32_t> control_owner{0};
  std::atomic<std::uint32_t> control_op{0};  ///< ControlOp
  std::atomic<std::uint64_t> control_arg{0};
  std::atomic<std::uint64_t> control_request{0};
  std::atomic<std::uint64_t> control_done{0};
  std::atomic<std::int32_t> control_result{0};  ///< ControlResult
  char control_message[200]{};
};

/// Bits of DaemonSlot::flags.
enum DaemonFlags : std::uint32_t {
  /// The LMDB map is full: commands are not applied (they wait in the rings)
  /// until the operator raises map_size_bytes and restarts the daemon.
  kFlagStorageFull = 1u << 0,
};

/// Operations of the control channel.
enum class ControlOp : std::uint32_t {
  none = 0,
  redrive_message = 1,  ///< arg = quarantine id: apply the message again
  abandon_message = 2,  ///< arg = quarantine id: give up on it (kept, marked)
  redrive_saga = 3,     ///< supervisor; arg = order id of a STUCK saga
  abandon_saga = 4,     ///< supervisor; arg = order id of a STUCK saga
  start_daemon = 5,     ///< supervisor; arg = daemon index: start a failed/stopped daemon
  restart_daemon = 6,   ///< supervisor; arg = daemon index: SIGTERM it, then start again
  stop_daemon = 7,      ///< supervisor; arg = daemon index: SIGTERM it, keep it stopped
  /// Any daemon; arg = lease in ms (1..60000): finish the current batch, then
  /// commit nothing (no message applied, no relay, no acknowledgement, no
  /// tick or posted work; heartbeat and control go on) until resume_commits
  /// or the lease runs out. Answered once the daemon is between batches, so
  /// every answer means its environment is not written from then on: what an
  /// online backup needs to copy every environment at one cut.
  pause_commits = 8,
  /// Any daemon: end a pause. ok while the lease held; failed when the lease
  /// had run out (commits resumed on their own: a backup taken under that
  /// pause is not one cut); already_done when not paused.
  resume_commits = 9,
};

/// Answers of the control channel.
enum class ControlResult : std::int32_t {
  ok = 0,
  not_found = 1,     ///< no such quarantined message / saga / daemon
  already_done = 2,  ///< re-driven or abandoned before (idempotent success)
  failed = 3,        ///< attempted and failed; control_message says why
  bad_request = 4,   ///< op unknown to this daemon, or a saga not STUCK
};

/// Saga counts by state, written by the supervisor.
struct SagaCounts {
  std::atomic<std::uint64_t> running{0};
  std::atomic<std::uint64_t> compensating{0};
  std::atomic<std::uint64_t> completed{0};
  std::atomic<std::uint64_t> failed{0};
  std::atomic<std::uint64_t> stuck{0};
  std::atomic<std::uint64_t> abandoned{0};
};

/// Saga outcomes measured by SagaMetrics::duration.
enum class SagaOutcome : std::uint32_t { completed = 0, failed = 1, stuck = 2, abandoned = 3 };
inline constexpr std::size_t kSagaOutcomes = 4;
/// Step slots of SagaMetrics::step_round_trip and reason codes of
/// SagaMetrics::failed_by_reason (both indexed by their owner's numbering).
inline constexpr std::size_t kMaxSagaSteps = 32;
inline constexpr std::size_t kMaxReasonCodes = 32;

/// Saga measurements, written by the supervisor once each change commits
/// (counters since the supervisor started: a Prometheus counter reset).
struct SagaMetrics {
  /// Created -> final, by SagaOutcome.
  std::array<Histogram, kSagaOutcomes> duration;
  /// A step's command sent -> its reply applied, by the supervisor's step
  /// slot (its step kind and whether it compensates).
  std::array<Histogram, kMaxSagaSteps> step_round_trip;
  /// Sagas ended FAILED, by failure reason (the schema's msg::Code).
  std::array<std::atomic<std::uint64_t>, kMaxReasonCodes> failed_by_reason{};
};

struct StatusLayout {
  std::uint32_t magic;
  std::atomic<std::uint32_t> version;  ///< written last by the creator
  std::atomic<std::int32_t> supervisor_pid{0};
  std::atomic<std::int64_t> supervisor_heartbeat_ms{0};
  SagaCounts sagas;
  SagaMetrics saga_metrics;
  std::array<DaemonSlot, kMaxDaemons> slots;
};

class StatusRegion {
 public:
  /// Creates a new region (supervisor, at every start; ShmSegment::create:
  /// never an existing name; mode 0600, or 0660 for `group`). Errors:
  /// file_exists; errno values from shm.
  static std::expected<StatusRegion, std::error_code> create(const std::string& name,
                                                             gid_t group = kNoGroup);
  /// Attaches to an existing region that `access` allows (daemons,
  /// ringmartctl). Errors: no_such_file_or_directory; ShmError::foreign_owner /
  /// unsafe_mode / empty; protocol_error for another layout version or size.
  static std::expected<StatusRegion, std::error_code> open(const std::string& name,
                                                           ShmAccess access = {});

  StatusRegion() = default;
  /// False for a default-constructed (not attached) region.
  bool valid() const { return layout_ != nullptr; }
  StatusLayout& layout() const { return *layout_; }
  DaemonSlot& slot(std::size_t daemon) const { return layout_->slots.at(daemon); }
  Doorbell doorbell(std::size_t daemon) const { return Doorbell(&slot(daemon).doorbell); }

 private:
  explicit StatusRegion(ShmSegment s)
      : segment_(std::move(s)), layout_(static_cast<StatusLayout*>(segment_.data())) {}
  ShmSegment segment_;
  StatusLayout* layout_ = nullptr;
};

/// Writes `text` (truncated to fit) as the slot's reason. Process-safe for
/// one writer (the daemon owning the slot, or the supervisor for its children).
void set_reason(DaemonSlot& slot, std::string_view text);
/// The slot's reason, "" when none was written.
std::string reason(const DaemonSlot& slot);

/// What a control operation answered.
struct ControlReply {
  ControlResult result = ControlResult::ok;
  std::string message;
};

/// Client side of the control channel (see DaemonSlot): claims the channel,
/// publishes the request, rings the daemon's doorbell and waits up to
/// `timeout_ms` for the answer. Process-safe (concurrent clients queue on the
/// owner word). Errors: timed_out when the daemon did not answer (not running,
/// or busy), device_or_resource_busy when another client held the channel for
/// the whole timeout.
std::expected<ControlReply, std::error_code> control_call(const StatusRegion& region,
                                                          std::size_t daemon, ControlOp op,
                                                          std::uint64_t arg, int timeout_ms);

/// Daemon side: a request is pending when it returns true (op and arg filled).
/// Call from the daemon's loop thread only.
bool control_pending(const DaemonSlot& slot, ControlOp& op, std::uint64_t& arg);
/// Daemon side: publishes the answer to the pending request.
void control_answer(DaemonSlot& slot, ControlResult result, std::string_view message);

/// CLOCK_MONOTONIC in milliseconds (comparable across processes on one host).
std::int64_t monotonic_ms();

}  // namespace ringmart::ipc
