#include "daemons/common/runtime.hpp"

#include <capnp/serialize.h>
#include <fcntl.h>
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <thread>

#include "ipc/crash_point.hpp"
#include "storage/capnp_value.hpp"

namespace ringmart::runtime {
namespace {

Runtime* g_signal_target = nullptr;

void on_stop_signal(int) {
  if (g_signal_target) g_signal_target->stop();
}

std::int64_t realtime_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Ids the runtime assigns set the top bit; saga command ids (order id << 8 | step)
// never do, so the two spaces cannot collide.
std::uint64_t auto_message_id(DaemonId self, DaemonId to, std::uint64_t seq) {
  return (1ull << 63) | (static_cast<std::uint64_t>(index(self)) << 56) |
         (static_cast<std::uint64_t>(index(to)) << 48) | (seq & ((1ull << 48) - 1));
}

bool is_compensation(msg::Envelope::Payload::Which w) {
  using W = msg::Envelope::Payload::Which;
  return w == W::RESTORE_COUPON || w == W::RESTORE_INVENTORY || w == W::CANCEL_PAYMENT ||
         w == W::RESTORE_POINTS || w == W::FAIL_ORDER;
}

std::string describe(std::error_code ec) {
  return fmt::format("{} ({}:{})", ec.message(), ec.category().name(), ec.value());
}

// Runs `fn` and turns a failure — an error it returns or an exception (a
// malformed message makes Cap'n Proto throw) — into an error code and a
// sentence for the log and the quarantine row.
template <class Fn>
std::error_code guarded(Fn&& fn, std::string& failure) {
  std::error_code ec;
  try {
    ec = fn();
    if (ec) failure = "handler error: " + describe(ec);
  } catch (const kj::Exception& e) {
    failure = std::string("handler threw (malformed message?): ") + e.getDescription().cStr();
    ec = std::make_error_code(std::errc::bad_message);
  } catch (const std::exception& e) {
    failure = std::string("handler threw: ") + e.what();
    ec = std::make_error_code(std::errc::bad_message);
  }
  return ec;
}

}  // namespace

bool is_storage_error(std::error_code ec) {
  if (!ec) return false;
  if (ec.category() == storage::lmdb_category()) {
    switch (ec.value()) {
      case MDB_MAP_FULL:
      case MDB_TXN_FULL:
      case MDB_PAGE_FULL:
      case MDB_MAP_RESIZED:
      case MDB_PANIC:
      case EIO:
      case ENOSPC:
      case EROFS:
      case EACCES:
      case ENOMEM:
        return true;
      default:
        return false;
    }
  }
  return ec.category() == std::system_category() &&
         (ec.value() == EIO || ec.value() == ENOSPC || ec.value() == EROFS);
}

// ---------------------------------------------------------------- Context

std::int64_t Context::now_ms() const { return realtime_ns() / 1'000'000; }

std::int64_t Context::now_ns() const { return realtime_ns(); }

std::error_code Context::send(DaemonId to, std::uint64_t saga_id, std::uint64_t message_id,
                              std::uint64_t correlation_id,
                              const std::function<void(msg::Envelope::Payload::Builder)>& fill) {
  auto seq = rt_->outbox_.next_seq(*txn_, index(to));
  if (!seq) return seq.error();
  capnp::MallocMessageBuilder builder(256);
  auto e = builder.initRoot<msg::Envelope>();
  e.setMessageId(message_id ? message_id : auto_message_id(rt_->self_, to, *seq));
  e.setSagaId(saga_id);
  e.setSender(rt_->self_);
  e.setReceiver(to);
  e.setSeq(*seq);
  e.setSentAtNs(realtime_ns());
  // The trace of the work this message continues (the message being applied,
  // or the scope its sender set: an order's intake, a saga's timer).
  const auto& trace = telemetry::current_fields().trace_id;
  e.setTraceId(trace.low);
  e.setTraceIdHigh(trace.high);
  e.setCorrelationId(correlation_id);
  fill(e.initPayload());
  if (auto ec = rt_->outbox_.put_message(*txn_, index(to), *seq, builder)) return ec;
  rt_->relay_needed_ = true;
  // Sending a compensation (the supervisor): crash with it written, not committed.
  if (is_compensation(e.getPayload().which())) ipc::crash_point("mid_compensation");
  return {};
}

void Context::after_commit(std::function<void()> fn) {
  rt_->after_commit_.push_back(std::move(fn));
}

std::error_code Context::reply(msg::Envelope::Reader request,
                               const std::function<void(msg::Envelope::Payload::Builder)>& fill) {
  return send(request.getSender(), request.getSagaId(), 0, request.getMessageId(), fill);
}

// ---------------------------------------------------------------- Runtime

Runtime::Runtime(DaemonId self, Config config) : self_(self), config_(std::move(config)) {}

Runtime::~Runtime() {
  stop_syncer();  // run() left early
  if (g_signal_target == this) g_signal_target = nullptr;
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

std::expected<std::unique_ptr<Runtime>, StartError> Runtime::create(DaemonId self, Config config,
                                                                    int attach_timeout_ms) {
  std::unique_ptr<Runtime> rt(new Runtime(self, std::move(config)));
  const auto& cfg = rt->config_;
  const std::string name = daemon_name(self);
  rt->log_ = make_logger(name, cfg);
  ipc::set_crash_identity(name, cfg.runtime_dir);

  // One instance per daemon and runtime directory: a restarted daemon waits
  // here until its dying predecessor has released the rings (SPSC invariant).
  const std::string lock_path = cfg.runtime_dir + "/" + name + ".lock";
  rt->lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (rt->lock_fd_ < 0) {
    return std::unexpected(
        StartError{fmt::format("cannot open lock file {}: {}", lock_path, std::strerror(errno)),
                   kExitCannotStart});
  }
  const auto deadline = ipc::monotonic_ms() + attach_timeout_ms;
  while (::flock(rt->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    if (ipc::monotonic_ms() > deadline) {
      return std::unexpected(StartError{fmt::format("another {} holds {}", name, lock_path)});
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }

  // Attach to the transport the supervisor created. What is absent is waited
  // for (the supervisor may still be creating it); what fails the owner and
  // mode checks (another user's file or segment) is refused at once.
  const auto refused = [](const std::error_code& ec) {
    return ec.category() == ipc::shm_category() || ec == std::errc::permission_denied ||
           ec == std::errc::not_a_directory || ec == std::errc::protocol_error;
  };
  for (;;) {
    std::string missing;
    std::error_code error;
    auto transport = read_shm_transport(cfg.runtime_dir);
    if (transport) {
      rt->transport_ = *transport;
      const auto& prefix = transport->prefix;
      const auto owner = transport->access;
      rt->inbound_.clear();
      rt->outbound_.clear();
      rt->status_ = {};
      auto status = ipc::StatusRegion::open(status_name(prefix), owner);
      if (status) {
        rt->status_ = std::move(*status);
      } else {
        missing = status_name(prefix);
        error = status.error();
      }
      for (auto peer : inbound_peers(self)) {
        if (!missing.empty()) break;
        auto ring = ipc::Ring::open(ring_name(prefix, peer, self), owner);
        if (!ring) {
          missing = ring_name(prefix, peer, self);
          error = ring.error();
          break;
        }
        rt->inbound_.push_back({peer, std::move(*ring)});
      }
      for (auto peer : outbound_peers(self)) {
        if (!missing.empty()) break;
        auto ring = ipc::Ring::open(ring_name(prefix, self, peer), owner);
        if (!ring) {
          missing = ring_name(prefix, self, peer);
          error = ring.error();
          break;
        }
        Outbound out{peer, std::move(*ring)};
        out.pushed = out.ring.pushed_seq();
        rt->outbound_.push_back(std::move(out));
      }
      if (missing.empty()) break;
    } else {
      missing = shm_transport_path(cfg.runtime_dir);
      error = transport.error();
    }
    if (refused(error)) {
      auto reason = fmt::format("refusing shared memory {}: {}", missing, error.message());
      // The status region passed the checks (it is opened first): tell the
      // supervisor and the operator why, as for any start failure.
      if (rt->status_.valid()) ipc::set_reason(rt->status_.slot(index(self)), reason);
      return std::unexpected(StartError{std::move(reason), kExitCannotStart});
    }
    if (ipc::monotonic_ms() > deadline) {
      return std::unexpected(
          StartError{fmt::format("shared memory not found (is the supervisor running?): {}: {}",
                                 missing, error.message())});
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  auto env = storage::Env::open({.path = cfg.env_path(name),
                                 .map_size_bytes = cfg.map_size_for(name),
                                 .durability = cfg.durability,
                                 .operator_group = cfg.operator_gid});
  auto& slot = rt->status_.slot(index(self));
  auto fail = [&](std::string reason) {
    ipc::set_reason(slot, reason);
    return std::unexpected(StartError{std::move(reason), kExitCannotStart});
  };
  if (!env) {
    return fail(fmt::format("cannot open LMDB environment {}: {}", cfg.env_path(name),
                            env.error().message()));
  }
  rt->env_ = std::move(*env);
  {
    auto txn = storage::Txn::begin_write(*rt->env_);
    if (!txn) return fail("cannot begin a write transaction: " + txn.error().message());
    auto outbox = storage::Outbox::open(*txn);
    auto inbox = storage::Inbox::open(*txn);
    auto quarantine = storage::Quarantine::open(*txn);
    if (!outbox || !inbox || !quarantine)
      return fail("cannot open the outbox/inbox/quarantine tables in " + cfg.env_path(name));
    rt->outbox_ = *outbox;
    rt->inbox_ = *inbox;
    rt->quarantine_ = *quarantine;
    if (auto ec = txn->commit()) return fail("cannot commit: " + ec.message());
  }

  ipc::set_reason(slot, "");
  slot.flags.store(0, std::memory_order_relaxed);
  // Crash-loop detection: a message still marked in flight ended our predecessor.
  const auto in_peer = slot.inflight_peer.load(std::memory_order_relaxed);
  const auto in_seq = slot.inflight_seq.load(std::memory_order_relaxed);
  if (in_seq != 0) {
    if (slot.suspect_seq.load(std::memory_order_relaxed) == in_seq &&
        slot.suspect_peer.load(std::memory_order_relaxed) == in_peer) {
      slot.suspect_crashes.fetch_add(1, std::memory_order_relaxed);
    } else {
      slot.suspect_peer.store(in_peer, std::memory_order_relaxed);
      slot.suspect_seq.store(in_seq, std::memory_order_relaxed);
      slot.suspect_crashes.store(1, std::memory_order_relaxed);
    }
    slot.inflight_seq.store(0, std::memory_order_relaxed);
    rt->log_->warn("the previous {} died applying seq {} from {} ({} time(s) in a row)", name,
                   in_seq, daemon_name(static_cast<DaemonId>(in_peer)),
                   slot.suspect_crashes.load(std::memory_order_relaxed));
  }
  // A predecessor killed while asleep on the doorbell never withdrew its
  // waiter count; we hold the lock, so no other consumer of this doorbell exists.
  rt->status_.slot(index(self)).doorbell.waiters.store(0, std::memory_order_relaxed);
  rt->relay_needed_ = true;  // re-send what the outbox holds beyond the rings
  rt->log_->info("attached: {} inbound, {} outbound channels, state {}", rt->inbound_.size(),
                 rt->outbound_.size(), cfg.env_path(name));
  return rt;
}

void Runtime::wake_at(std::int64_t monotonic_ms) {
  if (wake_at_ms_ == 0 || monotonic_ms < wake_at_ms_) wake_at_ms_ = monotonic_ms;
}

std::error_code Runtime::transact(const std::function<std::error_code(Context&)>& fn) {
  auto txn = storage::Txn::begin_write(*env_);
  if (!txn) return txn.error();
  Context ctx(*this, *txn);
  after_commit_.clear();
  if (auto ec = fn(ctx)) {
    after_commit_.clear();
    return ec;
  }
  if (auto ec = txn->commit()) {
    after_commit_.clear();
    return ec;
  }
  status_.slot(index(self_)).commits.fetch_add(1, std::memory_order_relaxed);
  run_after_commit();
  return {};
}

void Runtime::post(std::function<std::error_code(Context&)> fn) {
  {
    std::lock_guard lock(posted_mu_);
    posted_.push_back(std::move(fn));
    // SYNC: relaxed is enough — the mutex orders the task itself; the flag
    // only tells the idle loop to look (and the doorbell wakes a sleeper).
    posted_pending_.store(true, std::memory_order_relaxed);
  }
  status_.doorbell(index(self_)).ring();
}

void Runtime::stop() {
  stopping_ = true;
  status_.doorbell(index(self_)).ring();
}

void Runtime::install_signal_handlers() {
  g_signal_target = this;
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

bool Runtime::inbound_ready() {
  for (auto& in : inbound_) {
    if (in.ring.readable()) return true;
  }
  return posted_pending_.load(std::memory_order_relaxed);
}

void Runtime::heartbeat() {
  auto& slot = status_.slot(index(self_));
  const auto now = ipc::monotonic_ms();
  slot.heartbeat_ms.store(now, std::memory_order_relaxed);
  // Map use for /metrics: two LMDB calls that read the meta page, once a second.
  if (now - map_use_reported_ms_ >= 1000) {
    map_use_reported_ms_ = now;
    slot.map_used_bytes.store(env_->used_bytes(), std::memory_order_relaxed);
    slot.map_size_bytes.store(env_->map_size_bytes(), std::memory_order_relaxed);
  }
}

void Runtime::prune(storage::Txn& txn) {
  std::uint64_t pending = 0;
  for (auto& out : outbound_) {
    const auto acked = out.ring.acked_seq();
    out.pruning = out.pruned;
    if (acked > out.pruned) {
      outbox_.prune(txn, index(out.peer), acked);
      out.pruning = acked;  // becomes `pruned` when the batch commits
    }
    const auto to_peer = outbox_.pending(txn, index(out.peer), acked);
    status_.slot(index(self_))
        .outbox_pending_to[index(out.peer)]
        .store(to_peer, std::memory_order_relaxed);
    pending += to_peer;
  }
  status_.slot(index(self_)).outbox_pending.store(pending, std::memory_order_relaxed);
}

bool Runtime::process_batch() {
  if (storage_retry_at_ms_ && ipc::monotonic_ms() < storage_retry_at_ms_) return false;
  std::vector<std::function<std::error_code(Context&)>> posted;
  {
    std::lock_guard lock(posted_mu_);
    posted.swap(posted_);
    posted_pending_.store(false, std::memory_order_relaxed);
  }
  std::uint64_t acked_unpruned = 0;
  for (auto& out : outbound_) {
    const auto acked = out.ring.acked_seq();
    if (acked > out.pruned) acked_unpruned += acked - out.pruned;
  }
  bool readable = false;
  for (auto& in : inbound_) readable |= in.ring.readable();
  if (!readable && posted.empty()) {
    // Pruning alone is a commit that moves no message (in `fsync`, two
    // flushes): right after a batch the peers' acks are usually in, and
    // committing for them then would delay the next messages by a whole
    // commit. Pruning rides along with the next batch instead, or runs alone
    // once the acked entries are many or have waited long.
    if (!acked_unpruned) return false;
    const auto now = ipc::monotonic_ms();
    if (!prune_due_since_ms_) prune_due_since_ms_ = now;
    if (acked_unpruned < kPruneAloneAfterEntries &&
        now - prune_due_since_ms_ < kPruneAloneAfterMs) {
      return false;
    }
  }
  prune_due_since_ms_ = 0;

  auto& slot = status_.slot(index(self_));
  // Puts tasks from `posted` (from index `from` on) back at the head of the
  // queue, in order, ahead of tasks posted since.
  auto requeue_posted = [&](std::size_t from = 0) {
    std::lock_guard lock(posted_mu_);
    posted_.insert(posted_.begin(),
                   std::make_move_iterator(posted.begin() + static_cast<std::ptrdiff_t>(from)),
                   std::make_move_iterator(posted.end()));
    posted_pending_.store(!posted_.empty(), std::memory_order_relaxed);
    posted.resize(from);
  };
  auto txn = storage::Txn::begin_write(*env_);
  if (!txn) {
    log_->error("cannot begin write transaction: {}", describe(txn.error()));
    requeue_posted();
    enter_storage_failure(txn.error());
    return false;
  }
  prune(*txn);

  struct Ack {
    ipc::Ring* ring;
    std::uint64_t end_pos;
    std::uint64_t seq;
  };
  std::vector<Ack> acks;
  // After a crash with a message in flight, apply one message per transaction
  // until the suspect is behind us, so a crash can be pinned on one message.
  const bool isolating = slot.suspect_crashes.load(std::memory_order_relaxed) > 0;
  // Optimistic batches apply every message straight in the batch transaction.
  // A handler failure is rare (a poison message or a bug; business refusals
  // are replies), so then the whole batch is undone and its items are applied
  // again carefully: one per transaction, so a failing message is retried and
  // quarantined alone. (Not LMDB nested transactions: MDB_WRITEMAP, which
  // `process` durability uses, does not support them, and each costs a copy
  // of every page it touches.)
  const bool careful = careful_items_ > 0 || isolating;
  int budget = careful ? 1 : config_.batch_limit();
  std::uint32_t consumed = 0;  // ring messages and posted tasks this batch took up
  bool handler_failed = false;
  std::uint64_t applied = 0, duplicates = 0, errors = 0, quarantined = 0;
  std::error_code storage_ec;  // set: undo the whole batch

  after_commit_.clear();
  std::vector<std::function<void()>> hooks;
  std::string failure;  // what the last failed handler run said
  // One message or posted task, straight in the batch transaction. A handler
  // error leaves its partial effects in the transaction: the batch is undone.
  auto apply_one = [&](auto&& body) -> std::error_code {
    Context ctx(*this, *txn);
    after_commit_.clear();
    auto ec = guarded([&] { return body(ctx); }, failure);
    if (ec) {
      after_commit_.clear();
      if (!is_storage_error(ec)) handler_failed = true;
      return ec;
    }
    for (auto& h : after_commit_) hooks.push_back(std::move(h));
    after_commit_.clear();
    return {};
  };
  // Undoes this batch (nothing of it was acknowledged or committed).
  auto undo = [&] {
    txn->abort();
    hooks.clear();
    for (auto& in : inbound_) in.ring.rewind();
  };

  // Isolating: the suspect's ring goes first, so its message is reached
  // without waiting for busier rings to drain one message at a time.
  // Likewise a message whose handler failed in a careful batch.
  std::size_t first = 0;
  if (isolating || careful_failure_) {
    const auto lead =
        isolating ? slot.suspect_peer.load(std::memory_order_relaxed) : careful_failure_->peer;
    for (std::size_t i = 0; i < inbound_.size(); ++i) {
      if (index(inbound_[i].peer) == lead) first = i;
    }
  }
  // The message of a failed careful attempt: its peer and seq.
  std::uint8_t failed_peer = 0;
  std::uint64_t failed_seq = 0;
  bool failing_consumed = false;  // careful_failure_'s message is applied or quarantined here
  for (std::size_t k = 0; k < inbound_.size(); ++k) {
    auto& in = inbound_[(first + k) % inbound_.size()];
    if (storage_ec) break;
    const auto peer = index(in.peer);
    std::uint64_t mark = inbox_.mark(*txn, peer);
    const std::uint64_t mark_before = mark;
    std::uint64_t end_pos = 0, last_seq = 0;
    while (budget > 0) {
      ipc::RecordView r;
      auto got = in.ring.next(r);
      if (!got) {
        log_->error("corrupt record on ring {}: discarding it and asking {} to re-send",
                    in.ring.name(), daemon_name(in.peer));
        ++errors;
        in.ring.discard_and_request_resend();
        status_.doorbell(index(in.peer)).ring();
        end_pos = 0;
        break;
      }
      if (!*got) break;
      --budget;
      ++consumed;
      end_pos = r.end_pos;
      last_seq = std::max(last_seq, r.seq);
      const bool failing =
          careful_failure_ && careful_failure_->peer == peer && careful_failure_->seq == r.seq;
      failing_consumed |= failing;  // applied, quarantined or found a duplicate here
      if (r.seq <= mark) {
        ++duplicates;
        continue;
      }
      mark = r.seq;
      const bool suspect = isolating && slot.suspect_peer.load(std::memory_order_relaxed) == peer &&
                           slot.suspect_seq.load(std::memory_order_relaxed) == r.seq;
      const auto crashes = suspect ? slot.suspect_crashes.load(std::memory_order_relaxed) : 0u;
      std::string reason;
      std::uint32_t attempts = 0;
      if (suspect && crashes >= static_cast<std::uint32_t>(config_.quarantine_after)) {
        reason = fmt::format("the daemon died {} times applying it", crashes);
        attempts = crashes;
      } else if (failing && careful_failure_->attempts >=
                                static_cast<std::uint32_t>(config_.quarantine_after)) {
        reason = careful_failure_->error;
        attempts = careful_failure_->attempts;
        ++errors;
      }
      if (!reason.empty()) {
        if (auto ec = quarantine(*txn, in.peer, r.seq, r.payload, reason, attempts)) {
          storage_ec = ec;
          break;
        }
        ++quarantined;
        continue;
      }
      // SYNC: none — only this daemon's later lives read it (same-process order
      // suffices; a crash leaves the last store visible in shared memory).
      slot.inflight_peer.store(peer, std::memory_order_relaxed);
      slot.inflight_seq.store(r.seq, std::memory_order_relaxed);
      bool compensation = false;
      auto ec = apply_one([&](Context& ctx) {
        return with_envelope(r.payload, [&](msg::Envelope::Reader envelope) {
          compensation = is_compensation(envelope.getPayload().which());
          const telemetry::ScopedFields fields(log_fields(envelope));
          if (log_->should_log(spdlog::level::debug)) {
            log_->debug("applying {} from {} (seq {})",
                        msg::payload_name(envelope.getPayload().which()), daemon_name(in.peer),
                        r.seq);
          }
          return handler_ ? handler_(ctx, envelope) : std::error_code{};
        });
      });
      if (is_storage_error(ec)) {
        storage_ec = ec;
        break;
      }
      if (ec) {
        failed_peer = peer;
        failed_seq = r.seq;
        failing_consumed = false;
        break;
      }
      ++applied;
      // A compensation applied but not committed: the retry must not apply it twice.
      if (compensation) ipc::crash_point("mid_compensation");
    }
    if (storage_ec || handler_failed) break;
    if (mark != mark_before) {
      if (auto ec = inbox_.set_mark(*txn, peer, mark)) {
        storage_ec = ec;
        break;
      }
    }
    if (end_pos) acks.push_back({&in.ring, end_pos, last_seq});
  }

  // Posted tasks: all of them in an optimistic batch; carefully, one per
  // transaction (and none after a message). A careful task that fails is
  // dropped (posted tasks are not retried).
  std::size_t posted_done = 0;
  bool posted_failed = false;
  if (!storage_ec && !handler_failed) {
    for (; posted_done < posted.size(); ++posted_done) {
      if (careful && budget <= 0) break;
      --budget;
      ++consumed;
      if (auto ec = apply_one(posted[posted_done])) {
        if (is_storage_error(ec)) {
          storage_ec = ec;
          break;
        }
        posted_failed = true;
        break;
      }
    }
  }
  if (handler_failed && !storage_ec) {
    undo();
    if (!careful) {
      // Undo everything this batch did and apply it again, one item per transaction.
      requeue_posted();
      careful_items_ = consumed;
      log_->info("a handler failed in a batch ({}): applying its {} items again one by one",
                 failure, consumed);
      return true;
    }
    if (posted_failed) {
      slot.errors.fetch_add(1, std::memory_order_relaxed);
      log_->warn("posted task failed: {}", failure);
      posted.erase(posted.begin() + static_cast<std::ptrdiff_t>(posted_done));
      requeue_posted();
      if (careful_items_ > 0) --careful_items_;
      return true;
    }
    requeue_posted();
    if (!careful_failure_ || careful_failure_->peer != failed_peer ||
        careful_failure_->seq != failed_seq) {
      careful_failure_ = CarefulFailure{failed_peer, failed_seq, 0, {}};
    }
    careful_failure_->attempts += 1;
    careful_failure_->error = failure;
    log_->warn("message seq {} from {} failed (attempt {} of {}): {}", failed_seq,
               daemon_name(static_cast<DaemonId>(failed_peer)), careful_failure_->attempts,
               config_.quarantine_after, failure);
    // The next batch retries it alone, or quarantines it after the last attempt.
    return true;
  }
  // Careful: the tasks after this transaction's one go back to the queue
  // (`posted` keeps the one applied here, for a failed commit).
  if (careful && !storage_ec && posted_done < posted.size()) requeue_posted(posted_done);

  if (!storage_ec && (applied || quarantined)) ipc::crash_point("before_commit");
  if (!storage_ec) storage_ec = txn->commit();
  if (storage_ec) {
    txn->abort();
    hooks.clear();
    for (auto& in : inbound_) in.ring.rewind();
    slot.errors.fetch_add(1, std::memory_order_relaxed);
    requeue_posted();
    enter_storage_failure(storage_ec);
    return false;
  }
  if (storage_retry_at_ms_) {
    log_->info("storage works again");
    storage_retry_at_ms_ = 0;
    slot.flags.fetch_and(~ipc::kFlagStorageFull, std::memory_order_relaxed);
    ipc::set_reason(slot, "");
  }
  for (auto& out : outbound_) out.pruned = out.pruning;
  slot.inflight_seq.store(0, std::memory_order_relaxed);
  if (careful) {
    careful_items_ -= std::min(careful_items_, std::max<std::uint32_t>(consumed, 1));
    if (failing_consumed) careful_failure_.reset();
  }
  if (isolating) {
    // Once the suspect is committed (applied, quarantined or found a duplicate), leave isolation.
    const auto sp = slot.suspect_peer.load(std::memory_order_relaxed);
    const auto sseq = slot.suspect_seq.load(std::memory_order_relaxed);
    auto rtxn = storage::Txn::begin_read(*env_);
    if (rtxn && inbox_.mark(*rtxn, static_cast<std::uint8_t>(sp)) >= sseq) {
      slot.suspect_crashes.store(0, std::memory_order_relaxed);
      slot.suspect_seq.store(0, std::memory_order_relaxed);
    }
  }
  if (applied || quarantined) ipc::crash_point("after_commit");
  // SYNC: consume after commit — only now may the producers reuse the space.
  for (auto& a : acks) a.ring->commit(a.end_pos, a.seq);
  after_commit_ = std::move(hooks);
  run_after_commit();
  slot.commits.fetch_add(1, std::memory_order_relaxed);
  slot.messages_in.fetch_add(applied, std::memory_order_relaxed);
  slot.duplicates.fetch_add(duplicates, std::memory_order_relaxed);
  slot.errors.fetch_add(errors, std::memory_order_relaxed);
  slot.quarantined.fetch_add(quarantined, std::memory_order_relaxed);
  return true;
}

std::error_code Runtime::quarantine(storage::Txn& txn, DaemonId peer, std::uint64_t seq,
                                    std::span<const std::byte> message, const std::string& error,
                                    std::uint32_t attempts) {
  auto id =
      quarantine_.add(txn, index(peer), seq, message, error, attempts, realtime_ns() / 1'000'000);
  if (!id) return id.error();
  log_->error("message seq {} from {} quarantined as #{}: {} (ringmartctl quarantine)", seq,
              daemon_name(peer), *id, error);
  return {};
}

void Runtime::enter_storage_failure(std::error_code ec) {
  auto& slot = status_.slot(index(self_));
  const std::string name = daemon_name(self_);
  std::string reason;
  if (ec.category() == storage::lmdb_category() && ec.value() == MDB_MAP_FULL) {
    slot.flags.fetch_or(ipc::kFlagStorageFull, std::memory_order_relaxed);
    reason = fmt::format(
        "LMDB map full ({} bytes): raise [{}] map_size_bytes (or [runtime] map_size_bytes), "
        "then `ringmartctl restart {}`",
        config_.map_size_for(name), name, name);
  } else {
    reason = "storage error: " + describe(ec);
  }
  if (!storage_retry_at_ms_) log_->error("{}; commands wait in the rings", reason);
  ipc::set_reason(slot, reason);
  storage_retry_at_ms_ = ipc::monotonic_ms() + 1000;
  wake_at(storage_retry_at_ms_);
}

void Runtime::serve_control() {
  auto& slot = status_.slot(index(self_));
  ipc::ControlOp op;
  std::uint64_t arg = 0;
  if (!ipc::control_pending(slot, op, arg)) return;
  ipc::ControlReply reply;
  switch (op) {
    case ipc::ControlOp::pause_commits:
      if (arg == 0 || arg > kMaxPauseMs) {
        reply = {ipc::ControlResult::bad_request,
                 fmt::format("a pause's lease is 1..{} ms, not {}", kMaxPauseMs, arg)};
      } else {
        paused_until_ms_ = ipc::monotonic_ms() + static_cast<std::int64_t>(arg);
        pause_expired_ = false;
        reply = {ipc::ControlResult::ok, fmt::format("commits paused for at most {} ms", arg)};
      }
      break;
    case ipc::ControlOp::resume_commits:
      if (pause_expired_) {
        reply = {ipc::ControlResult::failed, "the pause's lease ran out before the resume"};
      } else if (paused_until_ms_ == 0) {
        reply = {ipc::ControlResult::already_done, "not paused"};
      } else {
        reply = {ipc::ControlResult::ok, "commits resumed"};
      }
      paused_until_ms_ = 0;
      pause_expired_ = false;
      break;
    case ipc::ControlOp::redrive_message:
      reply = redrive(arg);
      break;
    case ipc::ControlOp::abandon_message:
      reply = abandon(arg);
      break;
    default:
      reply = control_ ? control_(op, arg)
                       : ipc::ControlReply{
                             ipc::ControlResult::bad_request,
                             std::string(daemon_name(self_)) + " does not handle this operation"};
  }
  log_->info("control operation {} {}: {}", static_cast<unsigned>(op), arg, reply.message);
  ipc::control_answer(slot, reply.result, reply.message);
}

ipc::ControlReply Runtime::redrive(std::uint64_t id) {
  using ipc::ControlResult;
  std::optional<storage::QuarantinedMessage> row;
  {
    auto rtxn = storage::Txn::begin_read(*env_);
    if (!rtxn) return {ControlResult::failed, "cannot read: " + describe(rtxn.error())};
    row = quarantine_.get(*rtxn, id);
  }
  if (!row) return {ControlResult::not_found, fmt::format("no quarantined message #{}", id)};
  if (row->state != storage::QuarantineState::quarantined) {
    return {ControlResult::already_done,
            fmt::format("message #{} was already {}", id, storage::to_string(row->state))};
  }
  std::string failure;
  auto ec = transact([&](Context& ctx) -> std::error_code {
    // Copy to word-aligned memory: the row's bytes come from the LMDB map.
    kj::Array<capnp::word> words = kj::heapArray<capnp::word>(row->message.size() / 8);
    std::memcpy(words.begin(), row->message.data(), words.size() * 8);
    auto hec = guarded(
        [&] {
          const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(words.begin()),
                                                 words.size() * sizeof(capnp::word));
          return with_envelope(bytes, [&](msg::Envelope::Reader e) {
            const telemetry::ScopedFields fields(log_fields(e));
            return handler_ ? handler_(ctx, e) : std::error_code{};
          });
        },
        failure);
    if (hec) return hec;
    return quarantine_.resolve(ctx.txn(), id, storage::QuarantineState::redriven, ctx.now_ms());
  });
  if (!ec) {
    relay_needed_ = true;
    return {ControlResult::ok, fmt::format("message #{} re-driven", id)};
  }
  if (failure.empty()) failure = describe(ec);
  transact([&](Context& ctx) { return quarantine_.record_failure(ctx.txn(), id, failure); });
  return {ControlResult::failed, fmt::format("message #{} failed again: {}", id, failure)};
}

ipc::ControlReply Runtime::abandon(std::uint64_t id) {
  using ipc::ControlResult;
  ControlResult result = ControlResult::ok;
  auto ec = transact([&](Context& ctx) -> std::error_code {
    auto row = quarantine_.get(ctx.txn(), id);
    if (!row) {
      result = ControlResult::not_found;
      return {};
    }
    if (row->state != storage::QuarantineState::quarantined) {
      result = ControlResult::already_done;
      return {};
    }
    return quarantine_.resolve(ctx.txn(), id, storage::QuarantineState::abandoned, ctx.now_ms());
  });
  if (ec) return {ControlResult::failed, "cannot abandon: " + describe(ec)};
  switch (result) {
    case ControlResult::not_found:
      return {result, fmt::format("no quarantined message #{}", id)};
    case ControlResult::already_done:
      return {result, fmt::format("message #{} was already resolved", id)};
    default:
      return {result, fmt::format("message #{} abandoned", id)};
  }
}

void Runtime::run_after_commit() {
  auto hooks = std::move(after_commit_);
  after_commit_.clear();
  for (auto& h : hooks) h();
}

void Runtime::relay() {
  bool resend = false;
  for (auto& out : outbound_) {
    if (out.ring.take_resend_request()) {
      out.pushed = out.ring.pushed_seq();
      resend = true;
    }
  }
  if (!relay_needed_ && !resend && !relay_blocked_) return;
  relay_needed_ = false;
  relay_blocked_ = false;
  auto txn = storage::Txn::begin_read(*env_);
  if (!txn) {
    log_->error("relay cannot begin read transaction: {}", txn.error().message());
    relay_blocked_ = true;
    return;
  }
  auto& slot = status_.slot(index(self_));
  for (auto& out : outbound_) {
    const auto last = outbox_.last_seq(*txn, index(out.peer));
    if (out.pushed >= last) continue;
    std::uint64_t pushed = 0;
    outbox_.scan(*txn, index(out.peer), out.pushed,
                 [&](std::uint64_t seq, std::span<const std::byte> m) {
                   auto r = out.ring.try_push(m, seq);
                   if (!r) {
                     if (r.error() == ipc::RingError::too_large) {
                       log_->error("outbox seq {} for {} is larger than a quarter ring; dropped",
                                   seq, daemon_name(out.peer));
                       out.pushed = seq;
                       return true;
                     }
                     relay_blocked_ = true;  // back-pressure: stays in the outbox
                     return false;
                   }
                   out.pushed = seq;
                   // Published but the rest of the pass and the doorbell not yet done.
                   if (++pushed == 1) ipc::crash_point("mid_relay");
                   return true;
                 });
    if (pushed) {
      slot.messages_out.fetch_add(pushed, std::memory_order_relaxed);
      status_.doorbell(index(out.peer)).ring();
    }
  }
}

int Runtime::run() {
  auto& slot = status_.slot(index(self_));
  auto doorbell = status_.doorbell(index(self_));
  log_->info("running");
  if (config_.durability == storage::Durability::process) {
    syncer_stop_ = false;
    syncer_ = std::thread([this] { run_syncer(); });
  }
  while (!stopping_) {
    heartbeat();
    serve_control();
    if (paused_until_ms_ != 0) {
      // ControlOp::pause_commits: nothing is written until resume or the lease.
      const auto now = ipc::monotonic_ms();
      if (now < paused_until_ms_) {
        const auto token = doorbell.prepare();
        doorbell.wait(token, static_cast<int>(std::min<std::int64_t>(paused_until_ms_ - now, 5)));
        continue;
      }
      log_->warn("a pause of commits ran out its lease: resuming");
      paused_until_ms_ = 0;
      pause_expired_ = true;
    }
    const bool worked = process_batch();
    relay();
    const auto now = ipc::monotonic_ms();
    if (wake_at_ms_ && now >= wake_at_ms_) wake_at_ms_ = 0;
    if (tick_) tick_(now);
    if (worked || relay_needed_) continue;

    // Idle: spin briefly (cheap when the peer answers within microseconds),
    // then sleep on the doorbell. The spin adapts like an adaptive mutex: it
    // halves after a spin that found nothing (the peers are slow or share our
    // core — spinning then only steals their CPU) and doubles back, up to
    // spin_us, after one that did; at 0 every 32nd idle period probes with a
    // full spin.
    if (config_.spin_us > 0) {
      const int budget_us =
          spin_budget_us_ > 0 || (++idle_periods_ & 31) == 0 ? std::max(spin_budget_us_, 1) : 0;
      bool ready = false;
      if (budget_us > 0) {
        const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(budget_us);
        // The clock is read every 16 polls: a poll is a few loads, a clock read is not.
        for (unsigned polls = 1; !stopping_; ++polls) {
          if ((ready = inbound_ready())) break;
          if ((polls & 15) == 0 && std::chrono::steady_clock::now() >= until) break;
        }
      }
      spin_budget_us_ =
          ready ? std::min(config_.spin_us, std::max(2 * spin_budget_us_, 4)) : spin_budget_us_ / 2;
      if (ready) continue;
    }
    const auto token = doorbell.prepare();
    if (stopping_ || inbound_ready()) {
      doorbell.cancel();
      continue;
    }
    int timeout_ms = relay_blocked_ ? 1 : 100;
    if (wake_at_ms_) {
      timeout_ms = static_cast<int>(
          std::clamp<std::int64_t>(wake_at_ms_ - ipc::monotonic_ms(), 0, timeout_ms));
    }
    doorbell.wait(token, timeout_ms);
  }
  stop_syncer();
  env_->sync();
  slot.heartbeat_ms.store(ipc::monotonic_ms(), std::memory_order_relaxed);
  log_->info("stopped");
  return 0;
}

void Runtime::stop_syncer() {
  if (!syncer_.joinable()) return;
  {
    std::lock_guard lock(syncer_mu_);
    syncer_stop_ = true;
  }
  syncer_cv_.notify_all();
  syncer_.join();
}

void Runtime::run_syncer() {
  // Lowest priority: a flush write-protects every dirty page of the map and
  // writes it out, milliseconds of kernel CPU on a busy daemon; the loop
  // threads of all daemons go first (measured: p99 at 2,500 orders/s 10-16 ->
  // 7-8 ms together with the phase below). It still gets its share under full load.
  ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 19);
  // Each daemon flushes at its own phase of the interval, not all at once:
  // an order passes every daemon within a millisecond, so aligned flushes
  // would stall it for their sum.
  const auto interval = std::chrono::milliseconds(config_.sync_interval_ms);
  auto next = std::chrono::steady_clock::now() +
              interval * (index(self_) + 1) / static_cast<int>(kDaemonCount + 1);
  std::unique_lock lock(syncer_mu_);
  while (!syncer_cv_.wait_until(lock, next, [this] { return syncer_stop_; })) {
    lock.unlock();
    if (auto ec = env_->sync()) log_->warn("periodic sync failed: {}", describe(ec));
    lock.lock();
    next += interval;
    // A flush slower than the interval: the next one waits a whole interval.
    if (const auto now = std::chrono::steady_clock::now(); next < now) next = now + interval;
  }
}

// ---------------------------------------------------------------- transport

std::expected<void, std::string> prepare_directories(const Config& config) {
  const auto make = [](const std::string& dir, mode_t mode) -> std::error_code {
    std::error_code ec;
    const auto parent = std::filesystem::path(dir).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    if (ec) return ec;
    if (::mkdir(dir.c_str(), mode) != 0 && errno != EEXIST) return {errno, std::generic_category()};
    return {};
  };
  if (auto ec = make(config.state_dir, 0700)) {
    return std::unexpected(fmt::format("cannot create {}: {}", config.state_dir, ec.message()));
  }
  struct stat st {};
  if (::stat(config.state_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return std::unexpected(fmt::format("state directory {} is not a directory", config.state_dir));
  }
  if (st.st_uid != ::geteuid()) {
    return std::unexpected(fmt::format("state directory {} belongs to uid {}, not to this uid {}",
                                       config.state_dir, st.st_uid, ::geteuid()));
  }
  // The service user's only, or also readable by the operators' group
  // (ringmartctl reads the environments): set at every start, so a changed
  // operator_group takes effect and nothing wider survives.
  const bool shared = config.operator_gid != static_cast<gid_t>(-1);
  const mode_t mode = shared ? 0750 : 0700;
  if ((shared && st.st_gid != config.operator_gid &&
       ::chown(config.state_dir.c_str(), static_cast<uid_t>(-1), config.operator_gid) != 0) ||
      ((st.st_mode & 07777) != mode && ::chmod(config.state_dir.c_str(), mode) != 0)) {
    return std::unexpected(
        fmt::format("cannot give {} mode {:o}: {}", config.state_dir, mode, std::strerror(errno)));
  }
  if (auto ec = make(config.runtime_dir, 0755)) {
    return std::unexpected(fmt::format("cannot create {}: {}", config.runtime_dir, ec.message()));
  }
  // Ours (this uid), not a symlink, writable by nobody else, and so is the
  // path to it.
  if (auto owner = check_runtime_dir(config.runtime_dir); !owner) {
    return std::unexpected(fmt::format("runtime directory {} or a directory above it: {}",
                                       config.runtime_dir, owner.error().message()));
  }
  return {};
}

std::expected<TransportLock, std::string> TransportLock::acquire(const std::string& runtime_dir,
                                                                 int timeout_ms) {
  const std::string path = runtime_dir + "/transport.lock";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    return std::unexpected(fmt::format("cannot open {}: {}", path, std::strerror(errno)));
  }
  const auto deadline = ipc::monotonic_ms() + timeout_ms;
  while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK || ipc::monotonic_ms() > deadline) {
      ::close(fd);
      return std::unexpected(
          fmt::format("another supervisor runs on {} (it holds {}); not touching its shared memory",
                      runtime_dir, path));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return TransportLock(fd);
}

TransportLock& TransportLock::operator=(TransportLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

TransportLock::~TransportLock() {
  if (fd_ >= 0) ::close(fd_);
}

std::expected<ShmTransport, std::string> create_transport(const Config& config) {
  // What a previous start left (it crashed, or the host kept /dev/shm): its
  // segments are ours to remove; nothing of them is adopted.
  remove_transport(config.runtime_dir);
  auto transport = new_shm_transport(config.runtime_dir, config.operator_gid);
  if (!transport) {
    return std::unexpected(
        fmt::format("runtime directory {}: {}", config.runtime_dir, transport.error().message()));
  }
  const auto& prefix = transport->prefix;
  const auto fail = [&](const std::string& name, const std::error_code& ec) {
    remove_transport(config.runtime_dir);
    return std::unexpected(fmt::format("cannot create shared memory {}: {}", name, ec.message()));
  };
  // Named before anything is created: a supervisor killed half-way leaves
  // segments the next start finds here and removes.
  if (auto ec = publish_shm_transport(config.runtime_dir, *transport, TransportFile::pending)) {
    return fail(shm_transport_path(config.runtime_dir, TransportFile::pending), ec);
  }
  const gid_t group = transport->access.group;
  if (auto status = ipc::StatusRegion::create(status_name(prefix), group); !status) {
    return fail(status_name(prefix), status.error());
  }
  for (const auto& c : channels()) {
    auto ring =
        ipc::Ring::create(ring_name(prefix, c.from, c.to), config.ring_capacity_bytes, group);
    if (!ring) return fail(ring_name(prefix, c.from, c.to), ring.error());
  }
  if (auto ec = publish_shm_transport(config.runtime_dir, *transport)) {
    return fail(shm_transport_path(config.runtime_dir), ec);
  }
  unpublish_shm_transport(config.runtime_dir, TransportFile::pending);
  return *transport;
}

void report_start_failure(DaemonId self, const Config& config, const std::string& reason) {
  const std::string name = daemon_name(self);
  make_logger(name, config)->critical("cannot start: {}", reason);
  auto transport = read_shm_transport(config.runtime_dir);
  if (!transport) return;
  if (auto status = ipc::StatusRegion::open(status_name(transport->prefix), transport->access)) {
    ipc::set_reason(status->slot(index(self)), reason);
  }
}

void remove_transport(const std::string& runtime_dir) {
  for (auto file : {TransportFile::pending, TransportFile::published}) {
    auto transport = read_shm_transport(runtime_dir, Viewer::service, file);
    if (!transport) continue;
    const auto& prefix = transport->prefix;
    ipc::ShmSegment::unlink(status_name(prefix));
    for (const auto& c : channels()) ipc::ShmSegment::unlink(ring_name(prefix, c.from, c.to));
    unpublish_shm_transport(runtime_dir, file);
  }
}

// ---------------------------------------------------------------- helpers

std::shared_ptr<spdlog::logger> make_logger(const std::string& name, const Config& config) {
  // Config::load checked log_format.
  const auto format =
      telemetry::parse_log_format(config.log_format).value_or(telemetry::LogFormat::text);
  return telemetry::make_logger(name, config.log_level, format);
}

std::expected<std::unique_ptr<Runtime>, int> create_from_command_line(int argc, char** argv,
                                                                      DaemonId self) {
  const char* name = daemon_name(self);
  auto rt = Runtime::create(self, parse_command_line(argc, argv, name));
  if (!rt) {
    std::fprintf(stderr, "ringmart-%s: %s\n", name, rt.error().message.c_str());
    return std::unexpected(rt.error().exit_code);
  }
  return std::move(*rt);
}

void warn_unexpected(spdlog::logger& log, msg::Envelope::Reader message) {
  log.warn("unexpected message type {} ({}) from {} (message {}); ignored",
           msg::payload_name(message.getPayload().which()),
           static_cast<unsigned>(message.getPayload().which()), daemon_name(message.getSender()),
           message.getMessageId());
}

telemetry::Fields log_fields(msg::Envelope::Reader message) {
  // Saga traffic: the saga id is the order id (schemas/envelope.capnp).
  return {message.getSagaId(), message.getSagaId(),
          telemetry::TraceId{message.getTraceIdHigh(), message.getTraceId()}};
}

Config parse_command_line(int argc, char** argv, const std::string& daemon_name) {
  CLI::App app("ringmart " + daemon_name + " daemon");
  std::string state_dir, runtime_dir, config_file;
  app.add_option("--state-dir", state_dir, "directory of the LMDB environments")->required();
  app.add_option("--runtime-dir", runtime_dir, "directory of sockets and lock files")->required();
  app.add_option("--config", config_file, "TOML configuration file")->check(CLI::ExistingFile);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::exit(app.exit(e) == 0 ? 0 : 2);
  }
  auto config = Config::load(state_dir, runtime_dir, config_file);
  if (!config) {
    std::fprintf(stderr, "ringmart-%s: %s\n", daemon_name.c_str(), config.error().c_str());
    std::exit(2);
  }
  return std::move(*config);
}

}  // namespace ringmart::runtime
