// The saga store on a real LMDB environment: the index of sagas that are not
// final, the retention index of final ones and the persisted totals follow
// every put, retention deletes only final sagas past the cut-off, an
// environment written before the indexes existed is indexed on open, and
// view() renders both record layouts.
#include "daemons/supervisor/saga_store.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <set>
#include <string>

#include "schemas/codes.hpp"
#include "testkit/temp_dir.hpp"

namespace ringmart::supervisor {
namespace {

class SagaStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { reopen(); }
  void reopen() {
    env_.reset();
    auto env = storage::Env::open({.path = dir_.path(), .map_size_bytes = 16u << 20});
    ASSERT_TRUE(env) << env.error().message();
    env_ = std::move(*env);
    write([&](storage::Txn& t) {
      auto s = SagaStore::open(t);
      ASSERT_TRUE(s) << s.error().message();
      store_ = *s;
    });
  }
  void write(const std::function<void(storage::Txn&)>& fn) {
    auto txn = storage::Txn::begin_write(*env_);
    ASSERT_TRUE(txn);
    fn(*txn);
    ASSERT_FALSE(txn->commit());
  }
  /// Stores saga `id` in `state` as of `at_ms` (updatedAtMs), moving it from
  /// whatever state it had.
  void put(std::uint64_t id, SagaState state, std::int64_t at_ms = 0) {
    write([&](storage::Txn& t) {
      std::optional<SagaState> previous;
      if (auto old = store_.get(t, id)) previous = old->root<SagaRecord>().getState();
      capnp::MallocMessageBuilder b;
      auto r = b.initRoot<SagaRecord>();
      r.setOrderId(id);
      r.setState(state);
      r.setUpdatedAtMs(at_ms);
      ASSERT_FALSE(store_.put(t, id, b, previous));
    });
  }
  /// prune_final in a committed transaction.
  std::size_t prune(std::int64_t ended_before_ms, std::size_t limit) {
    std::size_t n = 0;
    write([&](storage::Txn& t) {
      auto pruned = store_.prune_final(t, ended_before_ms, limit);
      ASSERT_TRUE(pruned) << pruned.error().message();
      n = pruned->deleted;
      oldest_kept_ = pruned->oldest_kept_ms;
    });
    return n;
  }
  std::set<std::uint64_t> stored() {
    std::set<std::uint64_t> ids;
    auto txn = storage::Txn::begin_read(*env_);
    store_.scan(*txn, [&](std::uint64_t id, SagaRecord::Reader) { return ids.insert(id), true; });
    return ids;
  }
  std::set<std::uint64_t> active() {
    std::set<std::uint64_t> ids;
    auto txn = storage::Txn::begin_read(*env_);
    store_.scan_active(*txn, [&](std::uint64_t id, SagaRecord::Reader r) {
      EXPECT_FALSE(is_final(r.getState())) << id;
      ids.insert(id);
      return true;
    });
    return ids;
  }
  SagaTotals totals() {
    auto txn = storage::Txn::begin_read(*env_);
    return store_.totals(*txn);
  }

  testkit::TempDir dir_{"saga_store_test"};  // first: removed after env_ closed
  std::unique_ptr<storage::Env> env_;
  SagaStore store_;
  std::optional<std::int64_t> oldest_kept_;  // of the last prune()
};

TEST_F(SagaStoreTest, IndexAndTotalsFollowEveryStateChange) {
  put(1, SagaState::RUNNING);
  put(2, SagaState::RUNNING);
  put(3, SagaState::RUNNING);
  EXPECT_EQ(active(), (std::set<std::uint64_t>{1, 2, 3}));
  EXPECT_EQ(totals(), (SagaTotals{.running = 3}));

  put(1, SagaState::COMPLETED);
  put(2, SagaState::COMPENSATING);
  put(2, SagaState::STUCK);    // needs an operator: still active
  put(3, SagaState::RUNNING);  // a step, same state: nothing moves
  EXPECT_EQ(active(), (std::set<std::uint64_t>{2, 3}));
  EXPECT_EQ(totals(), (SagaTotals{.running = 1, .completed = 1, .stuck = 1}));

  put(2, SagaState::ABANDONED);
  put(3, SagaState::COMPENSATING);
  put(3, SagaState::FAILED);
  EXPECT_TRUE(active().empty());
  EXPECT_EQ(totals(), (SagaTotals{.completed = 1, .failed = 1, .abandoned = 1}));

  reopen();  // persisted, not rebuilt
  EXPECT_EQ(totals(), (SagaTotals{.completed = 1, .failed = 1, .abandoned = 1}));
}

TEST_F(SagaStoreTest, RetentionDeletesOnlyFinalSagasThatEndedBeforeTheCutOffOldestFirst) {
  put(1, SagaState::RUNNING, 100);
  put(1, SagaState::COMPLETED, 1000);  // ended at 1000
  put(2, SagaState::RUNNING, 50);      // old, but not final
  put(3, SagaState::COMPENSATING, 200);
  put(3, SagaState::FAILED, 3000);
  put(4, SagaState::STUCK, 10);  // needs an operator: never pruned
  put(5, SagaState::COMPLETED, 500);
  put(6, SagaState::STUCK, 20);
  put(6, SagaState::ABANDONED, 2000);
  put(7, SagaState::COMPLETED, 9000);  // recent

  EXPECT_EQ(prune(500, 10), 0u) << "ended at 500 is not before 500";
  EXPECT_EQ(oldest_kept_, 500);
  EXPECT_EQ(prune(2500, 2), 2u);  // the limit; oldest first: 5 (500), 1 (1000)
  EXPECT_EQ(stored(), (std::set<std::uint64_t>{2, 3, 4, 6, 7}));
  EXPECT_EQ(prune(2500, 10), 1u);  // 6 (2000)
  EXPECT_EQ(prune(5000, 10), 1u);  // 3 (3000)
  EXPECT_EQ(stored(), (std::set<std::uint64_t>{2, 4, 7}));
  EXPECT_EQ(prune(5000, 10), 0u);
  EXPECT_EQ(oldest_kept_, 9000) << "the oldest final saga left: 7";
  EXPECT_EQ(active(), (std::set<std::uint64_t>{2, 4}));
  // The totals count every saga run, pruned ones too.
  EXPECT_EQ(totals(),
            (SagaTotals{.running = 1, .completed = 3, .failed = 1, .stuck = 1, .abandoned = 1}));
  reopen();
  EXPECT_EQ(prune(10000, 10), 1u);  // 7: the index survived the reopen
  EXPECT_EQ(oldest_kept_, std::nullopt) << "no final saga left";
  EXPECT_EQ(stored(), (std::set<std::uint64_t>{2, 4}));
}

TEST_F(SagaStoreTest, AnEnvironmentOfVersionOneGetsTheRetentionIndexOnOpen) {
  put(1, SagaState::COMPLETED, 1000);
  put(2, SagaState::RUNNING, 1000);
  // What a version-1 supervisor left: no sagas_final rows, version 1.
  write([&](storage::Txn& t) {
    auto final_rows = storage::Table::open(t, "sagas_final");
    auto meta = storage::Table::open(t, "saga_meta");
    ASSERT_TRUE(final_rows && meta);
    std::vector<std::vector<std::byte>> keys;
    final_rows->scan(t, {}, [&](std::span<const std::byte> k, std::span<const std::byte>) {
      keys.emplace_back(k.begin(), k.end());
      return true;
    });
    ASSERT_EQ(keys.size(), 1u);
    for (const auto& k : keys) EXPECT_TRUE(final_rows->del(t, k));
    const std::string_view version = "version";
    ASSERT_FALSE(meta->put_pod(t, std::as_bytes(std::span(version)), std::uint32_t{1}));
  });
  EXPECT_EQ(prune(2000, 10), 0u) << "nothing indexed";
  reopen();
  EXPECT_EQ(prune(2000, 10), 1u);
  EXPECT_EQ(stored(), (std::set<std::uint64_t>{2}));
  EXPECT_EQ(active(), (std::set<std::uint64_t>{2}));
}

TEST_F(SagaStoreTest, QueriesReadAnEnvironmentFromBeforeTheRetentionIndex) {
  // A version-1 supervisor's tables (no sagas_final), opened read-only by
  // the gateway or ringmartctl before the new supervisor ran.
  env_.reset();
  std::filesystem::remove_all(dir_.path());
  {
    auto env = storage::Env::open({.path = dir_.path(), .map_size_bytes = 16u << 20});
    ASSERT_TRUE(env);
    auto txn = storage::Txn::begin_write(**env);
    for (const char* name : {"sagas_active", "saga_meta"}) {
      ASSERT_TRUE(storage::Table::open(*txn, name));
    }
    auto sagas = storage::Table::open(*txn, "sagas");
    ASSERT_TRUE(sagas);
    capnp::MallocMessageBuilder b;
    auto r = b.initRoot<SagaRecord>();
    r.setOrderId(5);
    r.setState(SagaState::COMPLETED);
    ASSERT_FALSE(storage::put_message(*sagas, *txn, storage::Key{}.u64(5).view(), b));
    ASSERT_FALSE(txn->commit());
  }
  auto q = SagaQueries::open(dir_.path(), 16u << 20);
  ASSERT_TRUE(q) << q.error().message();
  auto v = q->get(5);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->state, "COMPLETED");
  reopen();  // the fixture's write open (the next supervisor) then indexes it
  EXPECT_EQ(prune(1, 10), 1u);
}

TEST_F(SagaStoreTest, AnAbortedTransactionMovesNothing) {
  put(1, SagaState::RUNNING);
  {
    auto txn = storage::Txn::begin_write(*env_);
    ASSERT_TRUE(txn);
    capnp::MallocMessageBuilder b;
    auto r = b.initRoot<SagaRecord>();
    r.setOrderId(1);
    r.setState(SagaState::COMPLETED);
    ASSERT_FALSE(store_.put(*txn, 1, b, SagaState::RUNNING));
    txn->abort();
  }
  EXPECT_EQ(active(), (std::set<std::uint64_t>{1}));
  EXPECT_EQ(totals(), (SagaTotals{.running = 1}));
}

TEST_F(SagaStoreTest, AnEnvironmentFromBeforeTheIndexIsIndexedOnOpen) {
  // What an older supervisor left: the "sagas" table only, records with the
  // text history and step names.
  env_.reset();
  std::filesystem::remove_all(dir_.path());
  {
    auto env = storage::Env::open({.path = dir_.path(), .map_size_bytes = 16u << 20});
    ASSERT_TRUE(env);
    auto txn = storage::Txn::begin_write(**env);
    auto sagas = storage::Table::open(*txn, "sagas");
    ASSERT_TRUE(sagas);
    const SagaState states[] = {SagaState::RUNNING, SagaState::COMPLETED, SagaState::STUCK,
                                SagaState::FAILED};
    for (std::uint64_t id = 1; id <= 4; ++id) {
      capnp::MallocMessageBuilder b;
      auto r = b.initRoot<SagaRecord>();
      r.setOrderId(id);
      r.setState(states[id - 1]);
      r.setStep(1);
      auto names = r.initStepNames(2);
      names.set(0, "deduct_inventory");
      names.set(1, "complete_order");
      auto h = r.initHistory(1);
      h[0].setStep("deduct_inventory");
      h[0].setEvent("sent");
      h[0].setAtMs(42);
      ASSERT_FALSE(storage::put_message(*sagas, *txn, storage::Key{}.u64(id).view(), b));
    }
    ASSERT_FALSE(txn->commit());
  }
  reopen();
  EXPECT_EQ(active(), (std::set<std::uint64_t>{1, 3}));
  EXPECT_EQ(totals(), (SagaTotals{.running = 1, .completed = 1, .failed = 1, .stuck = 1}));
  // The final ones (no updatedAtMs: ended at 0) are indexed for retention too.
  EXPECT_EQ(prune(1, 10), 2u);
  EXPECT_EQ(stored(), (std::set<std::uint64_t>{1, 3}));
  EXPECT_EQ(active(), (std::set<std::uint64_t>{1, 3}));

  auto txn = storage::Txn::begin_read(*env_);
  auto m = store_.get(*txn, 1);
  ASSERT_TRUE(m);
  const auto v = SagaStore::view(m->root<SagaRecord>());
  EXPECT_EQ(v.step, "complete_order");
  ASSERT_EQ(v.history.size(), 1u);
  EXPECT_EQ(v.history[0].step, "deduct_inventory");
  EXPECT_EQ(v.history[0].event, "sent");
  EXPECT_EQ(v.history[0].at_ms, 42);
}

TEST(SagaStoreView, RendersTheTimelineAsText) {
  capnp::MallocMessageBuilder b;
  auto r = b.initRoot<SagaRecord>();
  r.setOrderId(9);
  r.setState(SagaState::COMPENSATING);
  r.setStep(0);
  r.setFailureReason(static_cast<std::uint16_t>(msg::Code::PAYMENT_DECLINED));
  auto kinds = r.initStepKinds(2);
  kinds.set(0, static_cast<std::uint8_t>(StepKind::deduct_inventory));
  kinds.set(1, static_cast<std::uint8_t>(StepKind::start_payment));
  struct In {
    std::uint8_t step;
    SagaEventKind kind;
    msg::Code code;
    std::uint16_t attempt;
  };
  const In in[] = {{SAGA_STEP, SagaEventKind::STARTED, msg::Code::OK, 0},
                   {1, SagaEventKind::RETRIED, msg::Code::OK, 3},
                   {1, SagaEventKind::FAILED, msg::Code::PAYMENT_DECLINED, 0},
                   {0, SagaEventKind::COMPENSATED, msg::Code::OK, 0},
                   {2, SagaEventKind::SENT, msg::Code::OK, 0}};
  auto t = r.initTimeline(5);
  for (unsigned i = 0; i < 5; ++i) {
    t[i].setStep(in[i].step);
    t[i].setKind(in[i].kind);
    t[i].setCode(static_cast<std::uint16_t>(in[i].code));
    t[i].setAttempt(in[i].attempt);
    t[i].setAtMs(100 + i);
  }
  const auto v = SagaStore::view(r.asReader());
  EXPECT_EQ(v.state, "COMPENSATING");
  EXPECT_EQ(v.step, "deduct_inventory");
  EXPECT_EQ(v.failure_reason, "PAYMENT_DECLINED");
  ASSERT_EQ(v.history.size(), 5u);
  const std::pair<const char*, const char*> want[] = {{"saga", "started"},
                                                      {"start_payment", "retry 3"},
                                                      {"start_payment", "failed PAYMENT_DECLINED"},
                                                      {"deduct_inventory", "compensated"},
                                                      {"fail_order", "sent"}};
  for (unsigned i = 0; i < 5; ++i) {
    EXPECT_EQ(v.history[i].step, want[i].first) << i;
    EXPECT_EQ(v.history[i].event, want[i].second) << i;
    EXPECT_EQ(v.history[i].at_ms, 100 + i) << i;
  }
}

TEST(SagaTimeline, GrowsInPlaceAndKeepsTheMostRecentEntries) {
  capnp::MallocMessageBuilder b;
  auto r = b.initRoot<SagaRecord>();
  r.initLines(1)[0].setQuantity(2);
  constexpr unsigned kCap = 8;
  for (unsigned i = 0; i < 20; ++i) {
    append_timeline(r, static_cast<std::uint8_t>(i % 3), SagaEventKind::RETRIED, 1000 + i, 0,
                    i == 19 ? 100000u : i, kCap);
    const auto t = r.asReader().getTimeline();
    ASSERT_EQ(t.size(), std::min(i + 1, kCap)) << i;
    EXPECT_EQ(t[t.size() - 1].getAtMs(), 1000 + i);
    EXPECT_EQ(t[0].getAtMs(), 1000 + (i + 1 > kCap ? i + 1 - kCap : 0)) << "oldest dropped first";
  }
  const auto t = r.asReader().getTimeline();
  for (unsigned i = 0; i < kCap; ++i) EXPECT_EQ(t[i].getAtMs(), 1000 + 12 + i);
  EXPECT_EQ(t[kCap - 1].getAttempt(), 0xFFFF) << "clamped";
  // In place: one segment, no hole of an abandoned copy.
  const auto segments = b.getSegmentsForOutput();
  ASSERT_EQ(segments.size(), 1u);
  capnp::MallocMessageBuilder compact;
  compact.setRoot(r.asReader());
  EXPECT_EQ(segments[0].size(), compact.getSegmentsForOutput()[0].size());
}

}  // namespace
}  // namespace ringmart::supervisor
