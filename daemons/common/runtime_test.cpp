// The runtime's failure handling on real rings and real LMDB: a message whose
// handler keeps failing, and a message that keeps crashing the daemon, end in
// the quarantine (byte-exact) while the ring moves on; the operator re-drives
// or abandons them over the status region's control channel.
//
// The test process is the producer (the order daemon's side of order ->
// ranking) and drives a ranking runtime, on a thread or in forked children.
#include "daemons/common/runtime.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "daemons/common/retention.hpp"
#include "storage/capnp_value.hpp"
#include "testkit/temp_dir.hpp"

namespace ringmart::runtime {
namespace {

using msg::DaemonId;

constexpr unsigned long long kPoison = 13;

/// Config::load over a file holding `text`; the directory is removed after.
std::expected<Config, std::string> load_config(const std::string& text) {
  const testkit::TempDir dir("rm-config");
  std::ofstream(dir / "cfg.toml") << text;
  return Config::load(dir / "state", dir / "run", dir / "cfg.toml");
}

TEST(ConfigTest, BatchMaxDefaultsByDurabilityAndAnExplicitValueWins) {
  auto process = load_config("[runtime]\ndurability = \"process\"\n");
  ASSERT_TRUE(process) << process.error();
  EXPECT_EQ(process->batch_limit(), Config::kBatchMaxProcess);
  auto fsync = load_config("[runtime]\ndurability = \"fsync\"\n");
  ASSERT_TRUE(fsync) << fsync.error();
  EXPECT_EQ(fsync->batch_limit(), Config::kBatchMaxFsync);
  EXPECT_NE(Config::kBatchMaxProcess, Config::kBatchMaxFsync);
  for (const char* d : {"process", "fsync"}) {
    auto set = load_config(std::string("[runtime]\nbatch_max = 7\ndurability = \"") + d + "\"\n");
    ASSERT_TRUE(set) << set.error();
    EXPECT_EQ(set->batch_limit(), 7) << d;
  }
  auto bad = load_config("[runtime]\nbatch_max = -1\n");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().find("batch_max"), std::string::npos) << bad.error();
}

class RuntimeFailureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(base_ / "cfg.toml") << "[runtime]\nquarantine_after = 3\nspin_us = 0\n";
    auto cfg = Config::load(base_ / "state", base_ / "run", base_ / "cfg.toml");
    ASSERT_TRUE(cfg) << cfg.error();
    config_ = *cfg;
    std::filesystem::create_directories(config_.runtime_dir);
    auto transport = create_transport(config_);
    ASSERT_TRUE(transport) << transport.error();
    const auto& prefix = transport->prefix;
    ring_ = std::move(*ipc::Ring::open(ring_name(prefix, DaemonId::ORDER, DaemonId::RANKING)));
    status_ = std::move(*ipc::StatusRegion::open(status_name(prefix)));
  }

  void TearDown() override { remove_transport(config_.runtime_dir); }

  /// Pushes a reply envelope carrying `id` as the order daemon would.
  void push(std::uint64_t id) {
    capnp::MallocMessageBuilder b;
    auto e = b.initRoot<msg::Envelope>();
    const auto seq = ++seq_;
    e.setMessageId((1ull << 62) | seq);
    e.setSender(DaemonId::ORDER);
    e.setReceiver(DaemonId::RANKING);
    e.setSeq(seq);
    e.initPayload().initReply().setId(id);
    auto words = storage::to_words(b);
    ASSERT_TRUE(ring_.try_push(storage::as_bytes(words), seq));
    status_.doorbell(index(DaemonId::RANKING)).ring();
  }

  /// Waits until the consumer acknowledged everything pushed.
  bool wait_drained(int timeout_ms) {
    const auto deadline = ipc::monotonic_ms() + timeout_ms;
    while (ipc::monotonic_ms() < deadline) {
      if (ring_.acked_seq() == seq_) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return false;
  }

  /// The quarantine rows. `open_env`: the environment of a runtime in this
  /// process (LMDB must not be opened twice in one process, lmdb.h caveats);
  /// nullptr opens it read-only (the runtime ran in another process).
  std::vector<storage::QuarantinedMessage> quarantined(storage::Env* open_env = nullptr) {
    std::unique_ptr<storage::Env> own;
    if (!open_env) {
      auto env = storage::Env::open(
          {.path = config_.env_path("ranking"), .map_size_bytes = 1ull << 26, .read_only = true});
      EXPECT_TRUE(env);
      if (!env) return {};
      own = std::move(*env);
      open_env = own.get();
    }
    std::vector<storage::QuarantinedMessage> out;
    auto txn = storage::Txn::begin_read(*open_env);
    auto q = storage::Quarantine::open(*txn);
    if (q)
      q->scan(*txn, [&](const storage::QuarantinedMessage& m) {
        out.push_back(m);
        return true;
      });
    return out;
  }

  testkit::TempDir base_{"rm-runtime"};  // first: removed after the rest
  Config config_;
  ipc::Ring ring_;
  ipc::StatusRegion status_;
  std::uint64_t seq_ = 0;
};

TEST_F(RuntimeFailureTest, RetentionSchedulesTheNextPassFromWhatTheLastOneLeft) {
  auto created = Runtime::create(DaemonId::RANKING, config_, 2000);
  ASSERT_TRUE(created) << created.error().message;
  auto& rt = **created;
  std::vector<std::int64_t> cutoffs;  // one per pass that ran
  std::expected<storage::PruneResult, std::error_code> next_result;
  const Retention::Pass pass = [&](storage::Txn& txn, std::int64_t cutoff, std::size_t batch) {
    EXPECT_TRUE(txn.writable());
    EXPECT_EQ(batch, 2u);
    cutoffs.push_back(cutoff);
    return next_result;
  };
  Retention retention(1000, 2, "test rows");  // kept 1 s, 2 rows per pass

  next_result = storage::PruneResult{2, std::nullopt};  // a full batch: more are due
  EXPECT_EQ(retention.run(rt, 10'000, pass), 2u);
  next_result = storage::PruneResult{1, 9'500};  // the oldest row left comes due at 10,501
  EXPECT_EQ(retention.run(rt, 10'001, pass), 1u);
  EXPECT_EQ(retention.run(rt, 11'000, pass), 0u) << "not due: at the earliest 1 s later";
  next_result = storage::PruneResult{0, std::nullopt};  // nothing left: due a keep time later
  EXPECT_EQ(retention.run(rt, 11'001, pass), 0u);
  EXPECT_EQ(retention.run(rt, 12'000, pass), 0u);
  next_result = std::unexpected(std::make_error_code(std::errc::no_space_on_device));
  auto failed = retention.run(rt, 12'001, pass);
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error(), std::errc::no_space_on_device);
  next_result = storage::PruneResult{0, 20'000};
  EXPECT_EQ(retention.run(rt, 13'000, pass), 0u) << "1 s after an error";
  EXPECT_EQ(retention.run(rt, 13'001, pass), 0u);
  EXPECT_EQ(cutoffs, (std::vector<std::int64_t>{9'000, 9'001, 10'001, 11'001, 12'001}));

  Retention forever(0, 2, "test rows");
  EXPECT_EQ(forever.run(rt, 1'000'000, pass), 0u);
  EXPECT_EQ(cutoffs.size(), 5u) << "keep 0: no pass";
}

TEST_F(RuntimeFailureTest, QuarantinesAMessageWhoseHandlerKeepsFailingAndMovesOn) {
  auto created = Runtime::create(DaemonId::RANKING, config_, 2000);
  ASSERT_TRUE(created) << created.error().message;
  auto& rt = **created;
  std::mutex mu;
  std::vector<std::uint64_t> applied;
  int poison_runs = 0;
  std::atomic<bool> poisoned{true};
  // `applied` records what committed (after_commit), the contract handlers
  // rely on: a handler may run again when its batch is redone, its effects
  // commit once.
  rt.on_message([&](Context& ctx, msg::Envelope::Reader m) -> std::error_code {
    const auto id = m.getPayload().getReply().getId();
    std::lock_guard lock(mu);
    if (id == kPoison && poisoned) {
      ++poison_runs;
      return std::make_error_code(std::errc::invalid_argument);
    }
    ctx.after_commit([&, id] {
      std::lock_guard lock(mu);
      applied.push_back(id);
    });
    return {};
  });
  std::thread loop([&] { rt.run(); });

  for (std::uint64_t id : {1ull, 2ull, kPoison, 4ull, 5ull}) push(id);
  ASSERT_TRUE(wait_drained(5000));
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(applied, (std::vector<std::uint64_t>{1, 2, 4, 5}));
    // Once in the optimistic batch (which is then undone), then
    // quarantine_after (3) times alone in the careful batch.
    EXPECT_EQ(poison_runs, 1 + 3);
  }
  auto rows = quarantined(&rt.env());
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].seq, 3u);
  EXPECT_EQ(rows[0].sender, index(DaemonId::ORDER));
  EXPECT_EQ(rows[0].state, storage::QuarantineState::quarantined);
  EXPECT_NE(rows[0].error.find("Invalid argument"), std::string::npos) << rows[0].error;
  {
    // Byte-exact: the stored envelope still says what was sent.
    kj::Array<capnp::word> words = kj::heapArray<capnp::word>(rows[0].message.size() / 8);
    std::memcpy(words.begin(), rows[0].message.data(), rows[0].message.size());
    capnp::FlatArrayMessageReader reader(words);
    EXPECT_EQ(reader.getRoot<msg::Envelope>().getPayload().getReply().getId(), kPoison);
    EXPECT_EQ(reader.getRoot<msg::Envelope>().getSeq(), 3u);
  }
  EXPECT_EQ(status_.slot(index(DaemonId::RANKING)).quarantined.load(), 1u);

  // Still failing: the re-drive reports it and the row stays quarantined.
  auto again = ipc::control_call(status_, index(DaemonId::RANKING), ipc::ControlOp::redrive_message,
                                 rows[0].id, 5000);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->result, ipc::ControlResult::failed) << again->message;
  EXPECT_EQ(quarantined(&rt.env())[0].state, storage::QuarantineState::quarantined);
  EXPECT_EQ(quarantined(&rt.env())[0].attempts, 4u);

  // Fixed: the re-drive applies it once; a second re-drive is a no-op.
  poisoned = false;
  auto redriven = ipc::control_call(status_, index(DaemonId::RANKING),
                                    ipc::ControlOp::redrive_message, rows[0].id, 5000);
  ASSERT_TRUE(redriven);
  EXPECT_EQ(redriven->result, ipc::ControlResult::ok) << redriven->message;
  auto twice = ipc::control_call(status_, index(DaemonId::RANKING), ipc::ControlOp::redrive_message,
                                 rows[0].id, 5000);
  ASSERT_TRUE(twice);
  EXPECT_EQ(twice->result, ipc::ControlResult::already_done);
  auto abandon = ipc::control_call(status_, index(DaemonId::RANKING),
                                   ipc::ControlOp::abandon_message, rows[0].id, 5000);
  ASSERT_TRUE(abandon);
  EXPECT_EQ(abandon->result, ipc::ControlResult::already_done);
  auto unknown = ipc::control_call(status_, index(DaemonId::RANKING),
                                   ipc::ControlOp::redrive_message, 999, 5000);
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->result, ipc::ControlResult::not_found);
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(applied, (std::vector<std::uint64_t>{1, 2, 4, 5, kPoison}));
  }
  EXPECT_EQ(quarantined(&rt.env())[0].state, storage::QuarantineState::redriven);

  rt.stop();
  loop.join();
}

TEST_F(RuntimeFailureTest, AFailingBatchIsAppliedAgainOneItemPerTransactionEffectsOnce) {
  // Messages and posted tasks queued before the loop starts: the first batch
  // holds them all. The poison message and the failing task write before
  // they fail; those writes must vanish, everything else commit exactly once.
  auto created = Runtime::create(DaemonId::RANKING, config_, 2000);
  ASSERT_TRUE(created) << created.error().message;
  auto& rt = **created;
  std::optional<storage::Table> effects;
  ASSERT_FALSE(rt.transact([&](Context& ctx) -> std::error_code {
    auto t = storage::Table::open(ctx.txn(), "effects");
    if (!t) return t.error();
    effects = *t;
    return {};
  }));
  // Adds one to `id`'s durable count inside the transaction.
  auto bump = [&](Context& ctx, std::uint64_t id) {
    const auto k = storage::Key{}.u64(id);
    const auto n = effects->get_pod<std::uint32_t>(ctx.txn(), k.view()).value_or(0);
    return effects->put_pod<std::uint32_t>(ctx.txn(), k.view(), n + 1);
  };
  std::atomic<int> poison_runs{0}, failing_task_runs{0};
  rt.on_message([&](Context& ctx, msg::Envelope::Reader m) -> std::error_code {
    const auto id = m.getPayload().getReply().getId();
    if (auto ec = bump(ctx, id)) return ec;
    if (id == kPoison) {
      ++poison_runs;
      return std::make_error_code(std::errc::invalid_argument);
    }
    return {};
  });
  for (std::uint64_t id : {1ull, kPoison, 3ull}) push(id);
  constexpr unsigned long long kTaskA = 100, kFailingTask = 101, kTaskC = 102;
  std::atomic<int> task_hooks{0};
  for (std::uint64_t id : {kTaskA, kFailingTask, kTaskC}) {
    rt.post([&, id](Context& ctx) -> std::error_code {
      if (auto ec = bump(ctx, id)) return ec;
      if (id == kFailingTask) {
        ++failing_task_runs;
        return std::make_error_code(std::errc::io_error);
      }
      ctx.after_commit([&] { ++task_hooks; });
      return {};
    });
  }
  std::thread loop([&] { rt.run(); });
  ASSERT_TRUE(wait_drained(5000));
  const auto deadline = ipc::monotonic_ms() + 5000;
  while (task_hooks < 2 && ipc::monotonic_ms() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  rt.stop();
  loop.join();

  // Once in the optimistic batch, then quarantine_after (3) times alone.
  EXPECT_EQ(poison_runs, 1 + 3);
  // Once in the optimistic batch, once alone; then dropped (tasks are not retried).
  EXPECT_EQ(failing_task_runs, 2);
  EXPECT_EQ(task_hooks, 2);
  auto rows = quarantined(&rt.env());
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].seq, 2u);
  EXPECT_EQ(rows[0].attempts, 3u);
  EXPECT_NE(rows[0].error.find("Invalid argument"), std::string::npos) << rows[0].error;
  EXPECT_EQ(status_.slot(index(DaemonId::RANKING)).errors.load(), 2u);  // quarantine + task

  auto txn = storage::Txn::begin_read(rt.env());
  ASSERT_TRUE(txn);
  for (std::uint64_t id : {1ull, 3ull, kTaskA, kTaskC}) {
    EXPECT_EQ(effects->get_pod<std::uint32_t>(*txn, storage::Key{}.u64(id).view()).value_or(0), 1u)
        << "id " << id;
  }
  for (std::uint64_t id : {kPoison, kFailingTask}) {
    EXPECT_FALSE(effects->get_pod<std::uint32_t>(*txn, storage::Key{}.u64(id).view()))
        << "id " << id;
  }
}

TEST_F(RuntimeFailureTest, QuarantinesAMessageThatKeepsCrashingTheDaemon) {
  // Each life of the daemon is a forked child; its effects go to a table in
  // its own LMDB environment, so they can be counted after all lives ended.
  auto life = [&]() -> pid_t {
    const pid_t pid = ::fork();
    if (pid != 0) return pid;
    auto created = Runtime::create(DaemonId::RANKING, config_, 2000);
    if (!created) ::_exit(10);
    auto& rt = **created;
    std::optional<storage::Table> applied;
    rt.transact([&](Context& ctx) -> std::error_code {
      auto t = storage::Table::open(ctx.txn(), "applied");
      if (!t) return t.error();
      applied = *t;
      return {};
    });
    rt.on_message([&](Context& ctx, msg::Envelope::Reader m) -> std::error_code {
      const auto id = m.getPayload().getReply().getId();
      if (id == kPoison) std::abort();
      const auto n =
          applied->get_pod<std::uint32_t>(ctx.txn(), storage::Key{}.u64(id).view()).value_or(0);
      return applied->put_pod<std::uint32_t>(ctx.txn(), storage::Key{}.u64(id).view(), n + 1);
    });
    rt.install_signal_handlers();
    ::_exit(rt.run());
  };

  for (std::uint64_t id : {1ull, 2ull, kPoison, 4ull, 5ull}) push(id);
  int crashes = 0;
  for (int i = 0; i < 6 && ring_.acked_seq() != seq_; ++i) {
    const pid_t pid = life();
    ASSERT_GT(pid, 0);
    // A life ends by crashing, or drains the ring and is stopped.
    int status = 0;
    const auto deadline = ipc::monotonic_ms() + 10000;
    while (::waitpid(pid, &status, WNOHANG) == 0) {
      if (ring_.acked_seq() == seq_ || ipc::monotonic_ms() > deadline) {
        ::kill(pid, SIGTERM);
        ::waitpid(pid, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT) ++crashes;
  }
  EXPECT_EQ(crashes, 3);  // quarantine_after lives, then the message is set aside
  EXPECT_EQ(ring_.acked_seq(), seq_);

  auto rows = quarantined();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].seq, 3u);
  EXPECT_EQ(rows[0].attempts, 3u);
  EXPECT_NE(rows[0].error.find("died 3 times"), std::string::npos) << rows[0].error;

  // Every other message took effect exactly once.
  auto env = storage::Env::open(
      {.path = config_.env_path("ranking"), .map_size_bytes = 1ull << 26, .read_only = true});
  ASSERT_TRUE(env);
  auto txn = storage::Txn::begin_read(**env);
  auto applied = storage::Table::open(*txn, "applied");
  ASSERT_TRUE(applied);
  for (std::uint64_t id : {1ull, 2ull, 4ull, 5ull}) {
    EXPECT_EQ(applied->get_pod<std::uint32_t>(*txn, storage::Key{}.u64(id).view()).value_or(0), 1u)
        << "id " << id;
  }
  EXPECT_FALSE(applied->get_pod<std::uint32_t>(*txn, storage::Key{}.u64(kPoison).view()));
}

}  // namespace
}  // namespace ringmart::runtime
