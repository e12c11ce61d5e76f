// ringmart::runtime — the event loop every daemon runs on.
//
// One thread owns the loop: it reads inbound rings, applies a batch of
// messages in ONE LMDB write transaction (group commit; optimistically all
// straight in that transaction — if a handler fails, the batch is undone and
// its items are applied again one per transaction, so a poison message is
// retried and skipped alone), records the inbox
// marks, appends replies to the outbox in the same transaction, commits, then
// acknowledges the rings (consume after commit), relays the outbox to the
// outbound rings and prunes acknowledged entries. Idle, it spins briefly and
// then sleeps on its doorbell (futex), so an idle daemon uses no CPU.
//
//   ring in ──► [ txn: inbox mark + handler effects + outbox append ] ──commit──► ack ring in
//                                                                     └──► relay ──► ring out
//
// Failures, and what the loop does about them:
//  - a handler that returns an error or throws: the batch is undone and its
//    items (messages, posted tasks) are applied again one per transaction; the
//    failing message's transaction is undone and it is run again alone, up to
//    `quarantine_after` times (so a handler may run once more than that on
//    in-memory state it keeps; durable effects only ever commit once); then the
//    message is moved to the quarantine (storage/quarantine.hpp) byte-exact
//    with its error, and the ring moves on;
//  - a message that keeps crashing the daemon: the status slot remembers the
//    message in flight across lives; after a crash the loop applies messages
//    one at a time, and the message that ended `quarantine_after` lives in a
//    row is quarantined unapplied;
//  - storage errors (LMDB map full, I/O): the whole batch is undone and
//    retried every second; nothing is acknowledged, so the commands wait in
//    the rings; the slot's kFlagStorageFull and reason tell the gateway (503)
//    and the operator (ringmartctl status);
//  - operator requests (ipc::ControlOp over the status slot): re-drive or
//    abandon a quarantined message here; other operations go to on_control().
//
// Thread-safety: everything runs on the loop thread except post() and stop(),
// which any thread may call (stop() also from a signal handler).
#pragma once

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <spdlog/logger.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "daemons/common/config.hpp"
#include "daemons/common/topology.hpp"
#include "ipc/ring.hpp"
#include "ipc/status_region.hpp"
#include "schemas/codes.hpp"
#include "schemas/envelope.capnp.h"
#include "storage/capnp_value.hpp"
#include "storage/lmdb.hpp"
#include "storage/outbox.hpp"
#include "storage/quarantine.hpp"
#include "telemetry/log.hpp"

namespace ringmart::runtime {

/// Exit code of a daemon that cannot start (bad configuration, unusable state
/// directory): EX_CONFIG of sysexits(3). The supervisor does not restart it;
/// it reports the reason the daemon left in its status slot.
inline constexpr int kExitCannotStart = 78;

/// Why Runtime::create failed, and the exit code the daemon should end with.
struct StartError {
  std::string message;
  int exit_code = 1;  ///< kExitCannotStart when retrying cannot help (config, state dir)
};

/// True for errors of the storage itself (LMDB map or transaction full, I/O,
/// no space, read-only file system) as opposed to a handler's failure.
bool is_storage_error(std::error_code ec);

/// The transaction a handler runs in, and the way to send messages from it.
class Context {
 public:
  storage::Txn& txn() { return *txn_; }
  /// Realtime clock in ms (for business timestamps).
  std::int64_t now_ms() const;
  /// Realtime clock in ns (for durations measured across transactions, e.g.
  /// a saga step's round trip).
  std::int64_t now_ns() const;

  /// Appends one message for `to` to the outbox in this transaction.
  /// `fill` sets the payload union, e.g. [&](auto p){ p.initReply().setCode(...); }.
  /// `message_id` 0 = a fresh unique id; a retried saga command passes its
  /// stable id. `correlation_id` = the message id a reply answers. The
  /// envelope's trace id is the calling thread's (telemetry::current_fields:
  /// the message being applied, or a scope the caller set).
  /// Errors: LMDB codes (MDB_MAP_FULL) — the caller's transaction is aborted.
  std::error_code send(DaemonId to, std::uint64_t saga_id, std::uint64_t message_id,
                       std::uint64_t correlation_id,
                       const std::function<void(msg::Envelope::Payload::Builder)>& fill);

  /// Runs `fn` on the loop thread after the enclosing transaction committed
  /// (dropped if it aborts). Use it to answer a client only once its command
  /// is durable.
  void after_commit(std::function<void()> fn);

  /// Convenience: a reply to `request` (same saga id, correlation = its message id).
  std::error_code reply(msg::Envelope::Reader request,
                        const std::function<void(msg::Envelope::Payload::Builder)>& fill);

 private:
  friend class Runtime;
  Context(class Runtime& rt, storage::Txn& txn) : rt_(&rt), txn_(&txn) {}
  class Runtime* rt_;
  storage::Txn* txn_;
};

class Runtime {
 public:
  /// Called for each new (not duplicate) inbound message, inside the batch
  /// transaction. Return an error to undo this message's effects (the batch
  /// is undone and applied again one item per transaction; a message that
  /// keeps failing is quarantined).
  using Handler = std::function<std::error_code(Context&, msg::Envelope::Reader)>;

  /// Opens the daemon's LMDB environment (state_dir/<name>), takes the
  /// per-daemon lock file (waits for a dying previous instance), attaches the
  /// status region and its rings (waiting up to `attach_timeout_ms` for the
  /// supervisor to create them).
  /// Errors: a message saying what failed: lock held or rings missing after
  /// the timeout (exit code 1: the supervisor retries), the LMDB environment
  /// or its tables unusable (kExitCannotStart; the reason is also written to
  /// the daemon's status slot).
  static std::expected<std::unique_ptr<Runtime>, StartError> create(DaemonId self, Config config,
                                                                    int attach_timeout_ms = 10000);
  ~Runtime();

  DaemonId self() const { return self_; }
  const Config& config() const { return config_; }
  storage::Env& env() { return *env_; }
  std::shared_ptr<spdlog::logger> log() const { return log_; }
  ipc::StatusRegion& status() { return status_; }
  /// The shared memory this runtime attached to (its names and owner).
  const ShmTransport& transport() const { return transport_; }

  void on_message(Handler h) { handler_ = std::move(h); }
  /// Operations of the control channel the runtime does not handle itself
  /// (redrive_message / abandon_message are handled here). Loop thread.
  using ControlHandler = std::function<ipc::ControlReply(ipc::ControlOp op, std::uint64_t arg)>;
  void on_control(ControlHandler h) { control_ = std::move(h); }
  /// Re-applies quarantined message `id` through the handler in its own
  /// transaction (the inbox is bypassed: the mark is already past it). On
  /// success the row is marked re-driven in the same transaction; a failure
  /// is recorded on the row. Idempotent: a resolved row answers already_done.
  ipc::ControlReply redrive(std::uint64_t id);
  /// Marks quarantined message `id` abandoned.
  ipc::ControlReply abandon(std::uint64_t id);
  /// Called every loop turn (at least every 100 ms) on the loop thread,
  /// outside any transaction; use transact() to change state from it.
  void on_tick(std::function<void(std::int64_t monotonic_ms)> f) { tick_ = std::move(f); }
  /// Asks the loop to wake no later than `monotonic_ms` (timers).
  void wake_at(std::int64_t monotonic_ms);

  /// Runs `fn` in its own write transaction and commits (loop thread only).
  /// Errors: from LMDB, or the one `fn` returns (then nothing is committed).
  std::error_code transact(const std::function<std::error_code(Context&)>& fn);
  /// Thread-safe: runs `fn` on the loop thread in the next batch transaction.
  /// A task that fails (an error or a throw) is undone and logged, not
  /// retried; the batch's other items still commit once.
  void post(std::function<std::error_code(Context&)> fn);

  /// Thread-safe and async-signal-safe: makes run() return after this turn.
  void stop();
  /// The loop. Returns 0 after stop(), non-zero on a fatal error.
  int run();
  /// Installs SIGTERM/SIGINT handlers that call stop() on this runtime.
  void install_signal_handlers();

 private:
  Runtime(DaemonId self, Config config);
  struct Inbound {
    DaemonId peer;
    ipc::Ring ring;
  };
  struct Outbound {
    DaemonId peer;
    ipc::Ring ring;
    std::uint64_t pushed = 0;   // highest seq pushed (mirror of the ring header)
    std::uint64_t pruned = 0;   // highest seq pruned from the outbox (committed)
    std::uint64_t pruning = 0;  // what the batch in progress prunes up to; pruned once it commits
  };
  friend class Context;
  /// ControlOp::pause_commits: monotonic ms the pause ends (0 = not paused);
  /// pause_expired_: the last pause ended by its lease, not by a resume.
  std::int64_t paused_until_ms_ = 0;
  bool pause_expired_ = false;
  static constexpr std::uint64_t kMaxPauseMs = 60000;
  bool process_batch();
  void serve_control();
  void enter_storage_failure(std::error_code ec);
  std::error_code quarantine(storage::Txn& txn, DaemonId peer, std::uint64_t seq,
                             std::span<const std::byte> message, const std::string& error,
                             std::uint32_t attempts);
  void relay();
  void prune(storage::Txn& txn);
  bool inbound_ready();
  void heartbeat();
  void run_after_commit();

  DaemonId self_;
  Config config_;
  std::shared_ptr<spdlog::logger> log_;
  std::unique_ptr<storage::Env> env_;
  storage::Outbox outbox_;
  storage::Inbox inbox_;
  storage::Quarantine quarantine_;
  ControlHandler control_;
  std::int64_t storage_retry_at_ms_ = 0;  // storage failure: next attempt (0 = healthy)
  ShmTransport transport_;
  ipc::StatusRegion status_;
  std::vector<Inbound> inbound_;
  std::vector<Outbound> outbound_;
  int lock_fd_ = -1;
  Handler handler_;
  std::function<void(std::int64_t)> tick_;
  std::mutex posted_mu_;
  std::vector<std::function<std::error_code(Context&)>> posted_;
  std::atomic<bool> posted_pending_{false};  // posted_ is not empty (polled without the mutex)
  std::vector<std::function<void()>> after_commit_;
  std::int64_t wake_at_ms_ = 0;
  /// `process` durability: flushes the environment every sync_interval_ms on
  /// its own thread (lowest priority, each daemon at its own phase of the
  /// interval), so the loop never stalls on the flush (ms on a busy disk). mdb_env_sync "does not
  /// interact with transactions, and can be called concurrently with itself" (H. Chu,
  /// openldap-technical, 2015-12).
  void run_syncer();
  void stop_syncer();  ///< idempotent
  std::thread syncer_;
  std::mutex syncer_mu_;
  std::condition_variable syncer_cv_;
  bool syncer_stop_ = false;        // guarded by syncer_mu_
  int spin_budget_us_ = 0;          // adaptive idle spin (loop thread), <= config_.spin_us
  std::uint32_t idle_periods_ = 0;  // counts idle periods spent without spinning
  /// Careful mode: after a handler failed in an optimistic batch, its items
  /// (ring messages, posted tasks) are applied again one per transaction.
  std::uint32_t careful_items_ = 0;
  /// The message whose handler failed in a careful batch: retried alone, and
  /// quarantined with `error` once it has failed quarantine_after times.
  struct CarefulFailure {
    std::uint8_t peer;
    std::uint64_t seq;
    std::uint32_t attempts;
    std::string error;
  };
  std::optional<CarefulFailure> careful_failure_;
  std::int64_t map_use_reported_ms_ = 0;  // monotonic ms map use was last written to the slot
  std::int64_t prune_due_since_ms_ = 0;   // acked outbox entries wait since (monotonic ms), 0: none
  /// A commit for pruning alone waits for this many acked entries or this long.
  static constexpr std::uint64_t kPruneAloneAfterEntries = 1024;
  static constexpr std::int64_t kPruneAloneAfterMs = 50;
  bool relay_needed_ = false;   // the outbox may hold entries not yet in the rings
  bool relay_blocked_ = false;  // a ring was full: retry soon
  std::atomic<bool> stopping_{false};
};

/// Opens a domain store's tables (`Store::open(storage::Txn&)`) in one
/// committed write transaction: the first thing a daemon does after create().
/// Errors: LMDB codes (EACCES, MDB_MAP_FULL, MDB_DBS_FULL). Loop thread only.
template <class Store>
std::expected<Store, std::error_code> open_store(Runtime& rt) {
  std::optional<Store> store;
  auto ec = rt.transact([&](Context& ctx) -> std::error_code {
    auto s = Store::open(ctx.txn());
    if (!s) return s.error();
    store.emplace(std::move(*s));
    return {};
  });
  if (ec) return std::unexpected(ec);
  return std::move(*store);
}

/// Supervisor side, before create_transport: creates the state directory
/// (0700) and the runtime directory (0755: the sockets in it are reached
/// through their own group and mode) when missing. An existing state directory
/// of ours that group or others may read is tightened to 0700. Errors: a
/// message (cannot create; a directory owned by another user; a runtime
/// directory group or others may write, which would let them replace files).
std::expected<void, std::string> prepare_directories(const Config& config);
/// The supervisor's claim on a runtime directory: an exclusive flock(2) on
/// RUNDIR/transport.lock for the supervisor's whole life (O_CLOEXEC: the
/// daemons it spawns do not inherit it). Take it before create_transport: a
/// second supervisor started on the same directory (a duplicate unit, a
/// mistake) then stops here instead of replacing the running system's shared
/// memory. Move-only; released on destruction or process death.
class TransportLock {
 public:
  /// Waits up to `timeout_ms` for a dying predecessor to release it.
  /// Errors: a message (another process holds it; the file cannot be opened).
  static std::expected<TransportLock, std::string> acquire(const std::string& runtime_dir,
                                                           int timeout_ms);
  TransportLock(TransportLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  TransportLock& operator=(TransportLock&& other) noexcept;
  TransportLock(const TransportLock&) = delete;
  TransportLock& operator=(const TransportLock&) = delete;
  ~TransportLock();

 private:
  explicit TransportLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

/// Supervisor side, at every start (holding the TransportLock): removes what a previous start left
/// (remove_transport), then creates the status region and every ring of the
/// topology afresh (mode 0600, O_EXCL) under a new random prefix and publishes
/// it (topology.hpp). Errors: a message (runtime directory owned by another
/// user or writable by others, a segment that cannot be created); nothing is
/// left behind on error.
std::expected<ShmTransport, std::string> create_transport(const Config& config);
/// Removes every shared-memory segment of the published transport of this
/// runtime directory, and of one a supervisor was creating when it died
/// (TransportFile::pending), and unpublishes both ("reboot"). Nothing
/// published, or a file that fails read_shm_transport's checks: nothing is
/// removed.
void remove_transport(const std::string& runtime_dir);

/// The daemon's logger "<daemon>" in config.log_format at config.log_level
/// (telemetry::make_logger).
std::shared_ptr<spdlog::logger> make_logger(const std::string& name, const Config& config);

/// Writes `reason` to this daemon's status slot (if the status region is
/// reachable) and logs it: a daemon that cannot start calls this, then exits
/// with kExitCannotStart.
void report_start_failure(DaemonId self, const Config& config, const std::string& reason);

/// Parses "--state-dir DIR --runtime-dir DIR [--config FILE]" (CLI11) and
/// loads the config; prints the error and exits 2 on bad arguments.
Config parse_command_line(int argc, char** argv, const std::string& daemon_name);

/// What a daemon's start gives its main(): the runtime and the store its
/// opener returned.
template <class Store>
struct Started {
  std::unique_ptr<Runtime> runtime;
  Store store;
};

/// The first half of start_daemon: parse_command_line (which exits 2 on bad
/// arguments), then Runtime::create for `self`. Errors: the exit code for
/// main(), StartError::exit_code, after printing the message to stderr.
std::expected<std::unique_ptr<Runtime>, int> create_from_command_line(int argc, char** argv,
                                                                      DaemonId self);

/// The store type an opener for start_daemon returns.
template <class Open>
using OpenedStore = typename std::invoke_result_t<Open&, Runtime&>::value_type;

/// The start every daemon but the supervisor shares: create_from_command_line,
/// then `open(Runtime&)`, which returns std::expected<Store, std::error_code>
/// (open_store<Store> for a domain store). Errors: the exit code for main():
/// that of create_from_command_line, or kExitCannotStart after
/// report_start_failure("cannot open the <daemon> tables: ...") when `open`
/// failed. Call it once, on the thread that then runs the loop.
template <class Open>
std::expected<Started<OpenedStore<Open>>, int> start_daemon(int argc, char** argv, DaemonId self,
                                                            Open open) {
  auto rt = create_from_command_line(argc, argv, self);
  if (!rt) return std::unexpected(rt.error());
  auto store = open(**rt);
  if (!store) {
    report_start_failure(self, (*rt)->config(),
                         std::string("cannot open the ") + daemon_name(self) +
                             " tables: " + store.error().message());
    return std::unexpected(kExitCannotStart);
  }
  return Started<OpenedStore<Open>>{std::move(*rt), std::move(*store)};
}

/// start_daemon with open_store<Store>: a domain daemon (user, product,
/// coupon, order, payment, ranking).
template <class Store>
std::expected<Started<Store>, int> start_daemon(int argc, char** argv, DaemonId self) {
  return start_daemon(argc, argv, self, open_store<Store>);
}

/// The default branch of a daemon's message switch: logs a warning naming the
/// payload type, the sender and the message id. The message is consumed and
/// has no effect (a newer sender's type this build does not know).
void warn_unexpected(spdlog::logger& log, msg::Envelope::Reader message);

/// The log fields of the work `message` belongs to: its saga id as order
/// and saga id, its trace id (telemetry::ScopedFields; the runtime sets them
/// around every handler call, and Context::send stamps their trace id).
telemetry::Fields log_fields(msg::Envelope::Reader message);

/// Reads one ring record (or quarantined payload) as the loop does before its
/// handler runs: an 8-byte aligned Cap'n Proto flat array (a trailing partial
/// word is ignored) with storage::StoredMessage::reader_options() (traversal
/// limit 2^20 words), and calls `fn` with the root Envelope; returns what `fn`
/// returns. A malformed message throws kj::Exception from the reads (the loop
/// turns it into a handler failure, then a quarantine). `payload.data()` must
/// be 8-byte aligned (ring records are). Pure; thread-safe.
template <class Fn>
decltype(auto) with_envelope(std::span<const std::byte> payload, Fn&& fn) {
  const auto* words = reinterpret_cast<const capnp::word*>(payload.data());
  capnp::FlatArrayMessageReader reader(kj::arrayPtr(words, payload.size() / sizeof(capnp::word)),
                                       storage::StoredMessage::reader_options());
  return std::forward<Fn>(fn)(reader.getRoot<msg::Envelope>());
}

using msg::code_name;  // "OUT_OF_STOCK" (schemas/codes.hpp)

}  // namespace ringmart::runtime
