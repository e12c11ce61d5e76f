#include "daemons/common/runtime.hpp"

#include <capnp/serialize.h>
#include <fcntl.h>
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <thread>

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

}  // namespace

// ---------------------------------------------------------------- Context

std::int64_t Context::now_ms() const { return realtime_ns() / 1'000'000; }

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
  e.setTraceId(saga_id ? saga_id : e.getMessageId());
  e.setCorrelationId(correlation_id);
  fill(e.initPayload());
  auto words = storage::to_words(builder);
  if (auto ec = rt_->outbox_.put(*txn_, index(to), *seq, storage::as_bytes(words))) return ec;
  rt_->relay_needed_ = true;
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
  if (g_signal_target == this) g_signal_target = nullptr;
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

std::expected<std::unique_ptr<Runtime>, std::string> Runtime::create(DaemonId self, Config config,
                                                                     int attach_timeout_ms) {
  std::unique_ptr<Runtime> rt(new Runtime(self, std::move(config)));
  const auto& cfg = rt->config_;
  const std::string name = daemon_name(self);
  rt->log_ = make_logger(name, cfg.log_level);

  // One instance per daemon and runtime directory: a restarted daemon waits
  // here until its dying predecessor has released the rings (SPSC invariant).
  const std::string lock_path = cfg.runtime_dir + "/" + name + ".lock";
  rt->lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (rt->lock_fd_ < 0) {
    return std::unexpected(
        fmt::format("cannot open lock file {}: {}", lock_path, std::strerror(errno)));
  }
  const auto deadline = ipc::monotonic_ms() + attach_timeout_ms;
  while (::flock(rt->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    if (ipc::monotonic_ms() > deadline) {
      return std::unexpected(fmt::format("another {} holds {}", name, lock_path));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }

  auto env = storage::Env::open({.path = cfg.env_path(name),
                                 .map_size_bytes = cfg.map_size_bytes,
                                 .durability = cfg.durability});
  if (!env) {
    return std::unexpected(fmt::format("cannot open LMDB environment {}: {}", cfg.env_path(name),
                                       env.error().message()));
  }
  rt->env_ = std::move(*env);
  {
    auto txn = storage::Txn::begin_write(*rt->env_);
    if (!txn) return std::unexpected("cannot begin transaction: " + txn.error().message());
    auto outbox = storage::Outbox::open(*txn);
    auto inbox = storage::Inbox::open(*txn);
    if (!outbox || !inbox) return std::unexpected("cannot open outbox/inbox tables");
    rt->outbox_ = *outbox;
    rt->inbox_ = *inbox;
    if (auto ec = txn->commit()) return std::unexpected("cannot commit: " + ec.message());
  }

  // Attach to the transport the supervisor created.
  const auto prefix = shm_prefix(cfg.runtime_dir);
  for (;;) {
    std::string missing;
    auto status = ipc::StatusRegion::open(status_name(prefix));
    if (status) {
      rt->status_ = std::move(*status);
      rt->inbound_.clear();
      rt->outbound_.clear();
      for (auto peer : inbound_peers(self)) {
        auto ring = ipc::Ring::open(ring_name(prefix, peer, self));
        if (!ring) {
          missing = ring_name(prefix, peer, self);
          break;
        }
        rt->inbound_.push_back({peer, std::move(*ring)});
      }
      for (auto peer : outbound_peers(self)) {
        if (!missing.empty()) break;
        auto ring = ipc::Ring::open(ring_name(prefix, self, peer));
        if (!ring) {
          missing = ring_name(prefix, self, peer);
          break;
        }
        Outbound out{peer, std::move(*ring)};
        out.pushed = out.ring.pushed_seq();
        rt->outbound_.push_back(std::move(out));
      }
      if (missing.empty()) break;
    } else {
      missing = status_name(prefix);
    }
    if (ipc::monotonic_ms() > deadline) {
      return std::unexpected("shared memory not found (is the supervisor running?): " + missing);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
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
  std::lock_guard lock(posted_mu_);
  return !posted_.empty();
}

void Runtime::heartbeat() {
  status_.slot(index(self_)).heartbeat_ms.store(ipc::monotonic_ms(), std::memory_order_relaxed);
}

void Runtime::prune(storage::Txn& txn) {
  std::uint64_t pending = 0;
  for (auto& out : outbound_) {
    const auto acked = out.ring.acked_seq();
    if (acked > out.pruned) {
      outbox_.prune(txn, index(out.peer), acked);
      out.pruned = acked;
    }
    pending += outbox_.pending(txn, index(out.peer), acked);
  }
  status_.slot(index(self_)).outbox_pending.store(pending, std::memory_order_relaxed);
}

bool Runtime::process_batch() {
  std::vector<std::function<std::error_code(Context&)>> posted;
  {
    std::lock_guard lock(posted_mu_);
    posted.swap(posted_);
  }
  bool prune_due = false;
  for (auto& out : outbound_) prune_due |= out.ring.acked_seq() > out.pruned;
  bool readable = false;
  for (auto& in : inbound_) readable |= in.ring.readable();
  if (!readable && posted.empty() && !prune_due) return false;

  auto& slot = status_.slot(index(self_));
  auto txn = storage::Txn::begin_write(*env_);
  if (!txn) {
    log_->error("cannot begin write transaction: {}", txn.error().message());
    std::lock_guard lock(posted_mu_);
    posted_.insert(posted_.begin(), posted.begin(), posted.end());
    return false;
  }
  prune(*txn);

  struct Ack {
    ipc::Ring* ring;
    std::uint64_t end_pos;
    std::uint64_t seq;
  };
  std::vector<Ack> acks;
  int budget = config_.batch_max;
  std::uint64_t applied = 0, duplicates = 0, errors = 0;

  after_commit_.clear();
  std::vector<std::function<void()>> hooks;
  auto apply_nested = [&](auto&& body) {
    auto nested = storage::Txn::begin_nested(*txn);
    if (!nested) return nested.error();
    Context ctx(*this, *nested);
    after_commit_.clear();
    std::error_code ec;
    try {
      ec = body(ctx);
    } catch (const kj::Exception& e) {
      log_->error("message handler failed (malformed message?): {}", e.getDescription().cStr());
      ec = std::make_error_code(std::errc::bad_message);
    } catch (const std::exception& e) {
      log_->error("message handler failed: {}", e.what());
      ec = std::make_error_code(std::errc::bad_message);
    }
    if (ec) {
      nested->abort();
      after_commit_.clear();
      return ec;
    }
    ec = nested->commit();
    if (!ec) {
      for (auto& h : after_commit_) hooks.push_back(std::move(h));
    }
    after_commit_.clear();
    return ec;
  };

  for (auto& in : inbound_) {
    std::uint64_t mark = inbox_.mark(*txn, index(in.peer));
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
      end_pos = r.end_pos;
      last_seq = std::max(last_seq, r.seq);
      if (r.seq <= mark) {
        ++duplicates;
        continue;
      }
      mark = r.seq;
      const auto* words = reinterpret_cast<const capnp::word*>(r.payload.data());
      auto ec = apply_nested([&](Context& ctx) {
        capnp::FlatArrayMessageReader reader(kj::arrayPtr(words, r.payload.size() / 8),
                                             storage::StoredMessage::reader_options());
        auto envelope = reader.getRoot<msg::Envelope>();
        return handler_ ? handler_(ctx, envelope) : std::error_code{};
      });
      if (ec) {
        ++errors;
        log_->warn("message seq {} from {} skipped: {}", r.seq, daemon_name(in.peer), ec.message());
      } else {
        ++applied;
      }
    }
    if (mark != mark_before) {
      if (auto ec = inbox_.set_mark(*txn, index(in.peer), mark)) {
        log_->error("cannot record inbox mark: {}", ec.message());
      }
    }
    if (end_pos) acks.push_back({&in.ring, end_pos, last_seq});
  }

  for (auto& fn : posted) {
    if (auto ec = apply_nested(fn)) {
      ++errors;
      log_->warn("posted task failed: {}", ec.message());
    }
  }

  if (auto ec = txn->commit()) {
    log_->error("commit failed, batch will be retried: {}", ec.message());
    for (auto& in : inbound_) in.ring.rewind();
    slot.errors.fetch_add(1, std::memory_order_relaxed);
    {
      std::lock_guard lock(posted_mu_);
      posted_.insert(posted_.begin(), posted.begin(), posted.end());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return false;
  }
  // SYNC: consume after commit — only now may the producers reuse the space.
  for (auto& a : acks) a.ring->commit(a.end_pos, a.seq);
  after_commit_ = std::move(hooks);
  run_after_commit();
  slot.commits.fetch_add(1, std::memory_order_relaxed);
  slot.messages_in.fetch_add(applied, std::memory_order_relaxed);
  slot.duplicates.fetch_add(duplicates, std::memory_order_relaxed);
  slot.errors.fetch_add(errors, std::memory_order_relaxed);
  return true;
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
                   ++pushed;
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
  last_sync_ms_ = ipc::monotonic_ms();
  while (!stopping_) {
    heartbeat();
    const bool worked = process_batch();
    relay();
    const auto now = ipc::monotonic_ms();
    if (wake_at_ms_ && now >= wake_at_ms_) wake_at_ms_ = 0;
    if (tick_) tick_(now);
    if (config_.durability == storage::Durability::process &&
        now - last_sync_ms_ >= config_.sync_interval_ms) {
      env_->sync();
      last_sync_ms_ = now;
    }
    if (worked || relay_needed_) continue;

    // Idle: spin briefly (cheap when the peer answers within microseconds),
    // then sleep on the doorbell.
    if (config_.spin_us > 0) {
      const auto until =
          std::chrono::steady_clock::now() + std::chrono::microseconds(config_.spin_us);
      bool ready = false;
      while (!stopping_ && std::chrono::steady_clock::now() < until) {
        if ((ready = inbound_ready())) break;
      }
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
  env_->sync();
  slot.heartbeat_ms.store(ipc::monotonic_ms(), std::memory_order_relaxed);
  log_->info("stopped");
  return 0;
}

// ---------------------------------------------------------------- transport

std::expected<void, std::string> create_transport(const Config& config) {
  const auto prefix = shm_prefix(config.runtime_dir);
  auto status = ipc::StatusRegion::create(status_name(prefix));
  if (!status) return std::unexpected("cannot create status region: " + status.error().message());
  for (const auto& c : channels()) {
    auto ring = ipc::Ring::create(ring_name(prefix, c.from, c.to), config.ring_capacity_bytes);
    if (!ring) {
      return std::unexpected(fmt::format("cannot create ring {}: {}",
                                         ring_name(prefix, c.from, c.to), ring.error().message()));
    }
  }
  return {};
}

void remove_transport(const Config& config) {
  const auto prefix = shm_prefix(config.runtime_dir);
  ipc::ShmSegment::unlink(status_name(prefix));
  for (const auto& c : channels()) ipc::ShmSegment::unlink(ring_name(prefix, c.from, c.to));
}

// ---------------------------------------------------------------- helpers

std::shared_ptr<spdlog::logger> make_logger(const std::string& name, const std::string& level) {
  auto existing = spdlog::get(name);
  if (existing) return existing;
  auto logger = spdlog::stderr_color_mt(name);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %n[%P] %v");
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::warn);
  return logger;
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
