// The saga engine on the real supervisor runtime (real rings, real LMDB); the
// test process plays the participant daemons on their rings so it can choose
// each reply, drop one (timeout) or send a stale one.
#include "daemons/supervisor/saga_engine.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <thread>

#include "storage/capnp_value.hpp"
#include "testkit/temp_dir.hpp"

namespace ringmart::supervisor {
namespace {

using msg::Code;
using msg::DaemonId;
using Payload = msg::Envelope::Payload;

/// A received command, copied out of the ring.
struct Received {
  kj::Array<capnp::word> words;
  std::optional<capnp::FlatArrayMessageReader> reader;
  msg::Envelope::Reader envelope() { return reader->getRoot<msg::Envelope>(); }
};

class SagaEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(base_ / "cfg.toml")
        << "[saga.start_payment]\ntimeout_ms = 200\nmax_attempts = 2\n"
        << "[saga]\ncompensation_timeout_ms = 300\ncompensation_max_attempts = 2\n"
        << "retry_backoff_max_ms = 300\n";
    auto cfg = runtime::Config::load(base_ / "state", base_ / "run", base_ / "cfg.toml");
    ASSERT_TRUE(cfg) << cfg.error();
    config_ = *cfg;
    std::filesystem::create_directories(config_.runtime_dir);
    auto transport = runtime::create_transport(config_);
    ASSERT_TRUE(transport) << transport.error();
    start_supervisor();
    const auto& prefix = transport->prefix;
    for (auto d : {DaemonId::USER, DaemonId::PRODUCT, DaemonId::COUPON, DaemonId::ORDER,
                   DaemonId::PAYMENT}) {
      in_[d] = std::move(*ipc::Ring::open(runtime::ring_name(prefix, DaemonId::SUPERVISOR, d)));
      out_[d] = std::move(*ipc::Ring::open(runtime::ring_name(prefix, d, DaemonId::SUPERVISOR)));
    }
  }

  void TearDown() override {
    stop_supervisor();
    runtime::remove_transport(config_.runtime_dir);
  }

  void start_supervisor() {
    auto def = SagaDefinition::from_config(config_);
    ASSERT_TRUE(def) << def.error();
    auto rt = runtime::Runtime::create(DaemonId::SUPERVISOR, config_, 2000);
    ASSERT_TRUE(rt) << rt.error().message;
    rt_ = std::move(*rt);
    ASSERT_FALSE(rt_->transact([&](runtime::Context& ctx) -> std::error_code {
      auto store = SagaStore::open(ctx.txn());
      if (!store) return store.error();
      store_ = *store;
      engine_.emplace(*def, *store, rt_->log());
      engine_->recover(ctx.txn());
      return {};
    }));
    rt_->on_message([this](runtime::Context& ctx, msg::Envelope::Reader m) {
      return engine_->on_message(ctx, m);
    });
    rt_->on_control([this](ipc::ControlOp op, std::uint64_t arg) -> ipc::ControlReply {
      if (op == ipc::ControlOp::redrive_saga) return engine_->redrive(*rt_, arg);
      if (op == ipc::ControlOp::abandon_saga) return engine_->abandon(*rt_, arg);
      return {ipc::ControlResult::bad_request, "not in this test"};
    });
    rt_->on_tick([this](std::int64_t) {
      timespec ts{};
      clock_gettime(CLOCK_REALTIME, &ts);
      engine_->on_tick(*rt_, ts.tv_sec * 1000 + ts.tv_nsec / 1'000'000);
    });
    loop_ = std::thread([this] { rt_->run(); });
  }

  void stop_supervisor() {
    if (!rt_) return;
    rt_->stop();
    loop_.join();
    engine_.reset();
    rt_.reset();
  }

  /// Sends a message from `from` to the supervisor.
  void send(DaemonId from, std::uint64_t saga, std::uint64_t correlation,
            const std::function<void(Payload::Builder)>& fill) {
    capnp::MallocMessageBuilder b;
    auto e = b.initRoot<msg::Envelope>();
    const auto seq = ++seq_[from];
    e.setMessageId((1ull << 61) | seq);
    e.setSagaId(saga);
    e.setSender(from);
    e.setReceiver(DaemonId::SUPERVISOR);
    e.setSeq(seq);
    e.setCorrelationId(correlation);
    fill(e.initPayload());
    auto words = storage::to_words(b);
    ASSERT_TRUE(out_[from].try_push(storage::as_bytes(words), seq));
    rt_->status().doorbell(runtime::index(DaemonId::SUPERVISOR)).ring();
  }

  /// Waits up to `timeout_ms` for the next command on supervisor -> `to`.
  std::unique_ptr<Received> receive(DaemonId to, int timeout_ms = 3000) {
    const auto deadline = ipc::monotonic_ms() + timeout_ms;
    auto& ring = in_[to];
    while (ipc::monotonic_ms() < deadline) {
      ipc::RecordView r;
      auto got = ring.next(r);
      if (got && *got) {
        auto rec = std::make_unique<Received>();
        rec->words = kj::heapArray<capnp::word>(r.payload.size() / 8);
        std::memcpy(rec->words.begin(), r.payload.data(), r.payload.size());
        rec->reader.emplace(rec->words.asPtr());
        ring.commit(r.end_pos, r.seq);
        return rec;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return nullptr;
  }

  bool nothing_for(DaemonId to, int ms) { return receive(to, ms) == nullptr; }

  void create_order(std::uint64_t id, std::uint64_t user_coupon, std::int64_t points) {
    send(DaemonId::ORDER, id, 0, [&](Payload::Builder p) {
      auto c = p.initOrderCreated();
      auto o = c.initOrder();
      o.setOrderId(id);
      o.setUserId(7);
      auto lines = o.initLines(1);
      lines[0].setProductId(3);
      lines[0].setQuantity(2);
      lines[0].setUnitPriceCents(1000);
      o.setUserCouponId(user_coupon);
      o.setPoints(points);
      o.setShippingCents(100);
      o.setPaymentToken("tok_ok");
      o.setInstallments(1);
      c.setSubtotalCents(2000);
    });
  }

  // Reads go through the supervisor's own environment: LMDB must not be
  // opened twice in one process (lmdb.h, caveats) — a second open of the
  // lock file in this process can reset the running writer's reader table,
  // and the reads then miss commits. (ringmartctl and the gateway open it
  // from other processes with SagaQueries.)
  std::optional<SagaView> saga(std::uint64_t id) {
    auto txn = storage::Txn::begin_read(rt_->env());
    if (!txn) return std::nullopt;
    auto m = store_.get(*txn, id);
    if (!m) return std::nullopt;
    return SagaStore::view(m->root<SagaRecord>());
  }

  std::size_t count(const std::string& state) {
    auto txn = storage::Txn::begin_read(rt_->env());
    if (!txn) return 0;
    std::size_t n = 0;
    store_.scan(*txn, [&](std::uint64_t, SagaRecord::Reader r) {
      n += state == state_name(r.getState());
      return true;
    });
    return n;
  }

  /// The engine's totals, read on the loop thread: it changes them after each
  /// commit, so a read from the test's thread would race with it, and could
  /// come before the update for a state the store already shows.
  SagaTotals totals() {
    struct Answer {
      std::promise<SagaTotals> promise;
      bool given = false;  // touched on the loop thread only
    };
    auto answer = std::make_shared<Answer>();
    auto got = answer->promise.get_future();
    rt_->post([this, answer](runtime::Context&) -> std::error_code {
      // A posted task runs again when its batch is undone: answer once.
      if (!answer->given) answer->promise.set_value(engine_->totals());
      answer->given = true;
      return {};
    });
    return got.get();
  }

  /// Waits until the saga reaches `state`.
  bool wait_state(std::uint64_t id, const std::string& state) {
    for (int i = 0; i < 300; ++i) {
      if (auto v = saga(id); v && v->state == state) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  testkit::TempDir base_{"rm-saga"};  // first: removed after the rest
  runtime::Config config_;
  std::unique_ptr<runtime::Runtime> rt_;
  std::optional<SagaEngine> engine_;
  SagaStore store_;  // table handle of rt_'s environment, for the test's reads
  std::thread loop_;
  std::map<DaemonId, ipc::Ring> in_, out_;
  std::map<DaemonId, std::uint64_t> seq_;
};

TEST_F(SagaEngineTest, RunsEveryStepInOrderAndComputesAmounts) {
  create_order(1, 55, 300);
  auto use = receive(DaemonId::COUPON);
  ASSERT_TRUE(use);
  ASSERT_TRUE(use->envelope().getPayload().isUseCoupon());
  EXPECT_EQ(use->envelope().getPayload().getUseCoupon().getUserCouponId(), 55u);
  send(DaemonId::COUPON, 1, use->envelope().getMessageId(), [](Payload::Builder p) {
    auto u = p.initCouponUsed();
    u.setCouponId(9);
    u.setDiscountType(msg::DiscountType::PERCENT);
    u.setDiscountValue(10);
  });
  auto apply = receive(DaemonId::ORDER);
  ASSERT_TRUE(apply && apply->envelope().getPayload().isApplyCoupon());
  EXPECT_EQ(apply->envelope().getPayload().getApplyCoupon().getDiscountValue(), 10);
  send(DaemonId::ORDER, 1, apply->envelope().getMessageId(),
       [](Payload::Builder p) { p.initCouponApplied().setDiscountCents(210); });
  auto deduct = receive(DaemonId::PRODUCT);
  ASSERT_TRUE(deduct && deduct->envelope().getPayload().isDeductInventory());
  EXPECT_EQ(deduct->envelope().getPayload().getDeductInventory().getLines()[0].getQuantity(), 2);
  send(DaemonId::PRODUCT, 1, deduct->envelope().getMessageId(),
       [](Payload::Builder p) { p.initInventoryDeducted(); });
  auto pay = receive(DaemonId::PAYMENT);
  ASSERT_TRUE(pay && pay->envelope().getPayload().isStartPayment());
  // total 2100 - discount 210 - points 300
  EXPECT_EQ(pay->envelope().getPayload().getStartPayment().getAmountCents(), 1590);
  send(DaemonId::PAYMENT, 1, pay->envelope().getMessageId(),
       [](Payload::Builder p) { p.initPaymentStarted(); });
  auto points = receive(DaemonId::USER);
  ASSERT_TRUE(points && points->envelope().getPayload().isDeductPoints());
  EXPECT_EQ(points->envelope().getPayload().getDeductPoints().getPoints(), 300);
  send(DaemonId::USER, 1, points->envelope().getMessageId(),
       [](Payload::Builder p) { p.initPointsDeducted(); });
  auto capture = receive(DaemonId::PAYMENT);
  ASSERT_TRUE(capture && capture->envelope().getPayload().isCompletePayment());
  send(DaemonId::PAYMENT, 1, capture->envelope().getMessageId(),
       [](Payload::Builder p) { p.initPaymentCompleted(); });
  auto complete = receive(DaemonId::ORDER);
  ASSERT_TRUE(complete && complete->envelope().getPayload().isCompleteOrder());
  EXPECT_EQ(complete->envelope().getPayload().getCompleteOrder().getPaidCents(), 1590);
  EXPECT_EQ(complete->envelope().getPayload().getCompleteOrder().getDiscountCents(), 210);
  send(DaemonId::ORDER, 1, complete->envelope().getMessageId(),
       [](Payload::Builder p) { p.initOrderCompleted().setOrderId(1); });
  ASSERT_TRUE(wait_state(1, "COMPLETED"));
  EXPECT_EQ(totals().completed, 1u);
  // The timeline: every step sent then ok, in order, between start and end.
  const auto v = saga(1);
  std::vector<std::string> timeline;
  for (const auto& e : v->history) timeline.push_back(e.step + " " + e.event);
  std::vector<std::string> want = {"saga started"};
  for (const char* step : {"use_coupon", "apply_coupon", "deduct_inventory", "start_payment",
                           "deduct_points", "complete_payment", "complete_order"}) {
    want.push_back(std::string(step) + " sent");
    want.push_back(std::string(step) + " ok");
  }
  want.push_back("saga completed");
  EXPECT_EQ(timeline, want);
  EXPECT_EQ(v->step, "");
  EXPECT_GE(v->updated_at_ms, v->created_at_ms);
}

TEST_F(SagaEngineTest, AStepUndoneByAStorageFailureIsAppliedOnceWhenStorageWorksAgain) {
  // A batch that handles a reply and then fails to store (here: a posted
  // task reports ENOSPC twice) is undone: the engine's step and its cached
  // saga state must vanish with it, so the retried batch applies the reply
  // again from the committed record — one next command, one timeline entry.
  create_order(40, 0, 0);
  auto deduct = receive(DaemonId::PRODUCT);
  ASSERT_TRUE(deduct && deduct->envelope().getPayload().isDeductInventory());
  std::atomic<int> storage_failures{2};
  rt_->post([&](runtime::Context&) -> std::error_code {
    return storage_failures.fetch_sub(1) > 0 ? storage::lmdb_error(ENOSPC) : std::error_code{};
  });
  send(DaemonId::PRODUCT, 40, deduct->envelope().getMessageId(),
       [](Payload::Builder p) { p.initInventoryDeducted(); });
  // The runtime retries storage once a second.
  auto pay = receive(DaemonId::PAYMENT, 6000);
  ASSERT_TRUE(pay && pay->envelope().getPayload().isStartPayment());
  EXPECT_LE(storage_failures.load(), 0) << "the batch never failed";
  EXPECT_GE(rt_->status().slot(runtime::index(DaemonId::SUPERVISOR)).errors.load(), 2u);
  send(DaemonId::PAYMENT, 40, pay->envelope().getMessageId(),
       [](Payload::Builder p) { p.initPaymentStarted(); });
  // A timeout retry of StartPayment (200 ms here) carries the same message id.
  auto capture = receive(DaemonId::PAYMENT);
  while (capture && capture->envelope().getPayload().isStartPayment()) {
    EXPECT_EQ(capture->envelope().getMessageId(), pay->envelope().getMessageId());
    capture = receive(DaemonId::PAYMENT);
  }
  ASSERT_TRUE(capture && capture->envelope().getPayload().isCompletePayment());
  send(DaemonId::PAYMENT, 40, capture->envelope().getMessageId(),
       [](Payload::Builder p) { p.initPaymentCompleted(); });
  auto complete = receive(DaemonId::ORDER);
  ASSERT_TRUE(complete && complete->envelope().getPayload().isCompleteOrder());
  send(DaemonId::ORDER, 40, complete->envelope().getMessageId(),
       [](Payload::Builder p) { p.initOrderCompleted().setOrderId(40); });
  ASSERT_TRUE(wait_state(40, "COMPLETED"));
  // Each step sent and ok exactly once, in order. (Timers keep running in
  // their own transactions while the batches fail — only the batches fail
  // here — so timeouts and retries may show up in between.)
  const auto v = saga(40);
  ASSERT_TRUE(v);
  std::vector<std::string> timeline;
  for (const auto& e : v->history) {
    if (e.event == "sent" || e.event == "ok" || e.step == "saga")
      timeline.push_back(e.step + " " + e.event);
  }
  std::vector<std::string> want = {"saga started"};
  for (const char* step :
       {"deduct_inventory", "start_payment", "complete_payment", "complete_order"}) {
    want.push_back(std::string(step) + " sent");
    want.push_back(std::string(step) + " ok");
  }
  want.push_back("saga completed");
  EXPECT_EQ(timeline, want);
  EXPECT_EQ(totals().completed, 1u);
  EXPECT_EQ(totals().running, 0u);
}

TEST_F(SagaEngineTest, SkipsCouponAndPointsStepsWhenUnused) {
  create_order(2, 0, 0);
  auto deduct = receive(DaemonId::PRODUCT);
  ASSERT_TRUE(deduct && deduct->envelope().getPayload().isDeductInventory());
  EXPECT_TRUE(nothing_for(DaemonId::COUPON, 50));
  send(DaemonId::PRODUCT, 2, deduct->envelope().getMessageId(),
       [](Payload::Builder p) { p.initInventoryDeducted(); });
  auto pay = receive(DaemonId::PAYMENT);
  ASSERT_TRUE(pay && pay->envelope().getPayload().isStartPayment());
  EXPECT_EQ(pay->envelope().getPayload().getStartPayment().getAmountCents(), 2100);
  send(DaemonId::PAYMENT, 2, pay->envelope().getMessageId(),
       [](Payload::Builder p) { p.initPaymentStarted(); });
  auto capture = receive(DaemonId::PAYMENT);
  ASSERT_TRUE(capture && capture->envelope().getPayload().isCompletePayment());
  EXPECT_TRUE(nothing_for(DaemonId::USER, 50));
}

TEST_F(SagaEngineTest, FailureCompensatesCompletedStepsInReverse) {
  create_order(3, 55, 300);
  auto use = receive(DaemonId::COUPON);
  send(DaemonId::COUPON, 3, use->envelope().getMessageId(),
       [](Payload::Builder p) { p.initCouponUsed().setDiscountValue(100); });
  auto apply = receive(DaemonId::ORDER);
  send(DaemonId::ORDER, 3, apply->envelope().getMessageId(),
       [](Payload::Builder p) { p.initCouponApplied().setDiscountCents(100); });
  auto deduct = receive(DaemonId::PRODUCT);
  send(DaemonId::PRODUCT, 3, deduct->envelope().getMessageId(),
       [](Payload::Builder p) { p.initInventoryDeducted(); });
  auto pay = receive(DaemonId::PAYMENT);
  send(DaemonId::PAYMENT, 3, pay->envelope().getMessageId(),
       [](Payload::Builder p) { p.initPaymentStarted(); });
  auto points = receive(DaemonId::USER);
  send(DaemonId::USER, 3, points->envelope().getMessageId(),
       [](Payload::Builder p) { p.initPointsDeducted().setCode(Code::INSUFFICIENT_POINTS); });
  // Reverse order: payment, inventory, coupon; then the order is failed.
  auto cancel = receive(DaemonId::PAYMENT);
  ASSERT_TRUE(cancel && cancel->envelope().getPayload().isCancelPayment());
  EXPECT_TRUE(nothing_for(DaemonId::PRODUCT, 50)) << "one compensation at a time";
  send(DaemonId::PAYMENT, 3, cancel->envelope().getMessageId(),
       [](Payload::Builder p) { p.initPaymentCancelled(); });
  auto restock = receive(DaemonId::PRODUCT);
  ASSERT_TRUE(restock && restock->envelope().getPayload().isRestoreInventory());
  send(DaemonId::PRODUCT, 3, restock->envelope().getMessageId(),
       [](Payload::Builder p) { p.initInventoryRestored(); });
  auto recoupon = receive(DaemonId::COUPON);
  ASSERT_TRUE(recoupon && recoupon->envelope().getPayload().isRestoreCoupon());
  send(DaemonId::COUPON, 3, recoupon->envelope().getMessageId(),
       [](Payload::Builder p) { p.initCouponRestored(); });
  auto fail = receive(DaemonId::ORDER);
  ASSERT_TRUE(fail && fail->envelope().getPayload().isFailOrder());
  EXPECT_EQ(fail->envelope().getPayload().getFailOrder().getReason(), Code::INSUFFICIENT_POINTS);
  EXPECT_TRUE(nothing_for(DaemonId::USER, 50)) << "failed step had no effect: nothing to restore";
  send(DaemonId::ORDER, 3, fail->envelope().getMessageId(),
       [](Payload::Builder p) { p.initOrderFailed(); });
  ASSERT_TRUE(wait_state(3, "FAILED"));
  EXPECT_EQ(saga(3)->failure_reason, "INSUFFICIENT_POINTS");
}

TEST_F(SagaEngineTest, AFinalSagaIsDeletedOnceItsRetentionPassedAndARunningOneIsKept) {
  stop_supervisor();
  std::ofstream(base_ / "cfg.toml", std::ios::app) << "final_retention_hours = 0.0003\n";  // 1.08 s
  auto cfg = runtime::Config::load(base_ / "state", base_ / "run", base_ / "cfg.toml");
  ASSERT_TRUE(cfg) << cfg.error();
  config_ = *cfg;
  start_supervisor();

  create_order(8, 0, 0);
  auto deduct = receive(DaemonId::PRODUCT);
  ASSERT_TRUE(deduct && deduct->envelope().getPayload().isDeductInventory());
  send(DaemonId::PRODUCT, 8, deduct->envelope().getMessageId(),
       [](Payload::Builder p) { p.initInventoryDeducted().setCode(Code::OUT_OF_STOCK); });
  auto fail = receive(DaemonId::ORDER);
  ASSERT_TRUE(fail && fail->envelope().getPayload().isFailOrder());
  create_order(9, 0, 0);  // stays RUNNING: its command is never answered
  ASSERT_TRUE(receive(DaemonId::PRODUCT));
  send(DaemonId::ORDER, 8, fail->envelope().getMessageId(),
       [](Payload::Builder p) { p.initOrderFailed(); });
  ASSERT_TRUE(wait_state(8, "FAILED"));
  const auto ended = saga(8)->updated_at_ms;

  // Polled every 50 ms: kept until 1.08 s after it ended, then deleted.
  std::int64_t gone_at = 0;
  for (int i = 0; i < 100 && !gone_at; ++i) {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    const std::int64_t now = ts.tv_sec * 1000 + ts.tv_nsec / 1'000'000;
    if (!saga(8)) gone_at = now;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_NE(gone_at, 0) << "the FAILED saga outlived its retention by seconds";
  EXPECT_GE(gone_at - ended, 1080);
  ASSERT_TRUE(saga(9));
  EXPECT_EQ(saga(9)->state, "RUNNING");
  EXPECT_EQ(totals().failed, 1u) << "totals count pruned sagas";
}

TEST_F(SagaEngineTest, TimeoutRetriesWithTheSameMessageIdThenVoids) {
  create_order(4, 0, 0);
  auto deduct = receive(DaemonId::PRODUCT);
  send(DaemonId::PRODUCT, 4, deduct->envelope().getMessageId(),
       [](Payload::Builder p) { p.initInventoryDeducted(); });
  auto first = receive(DaemonId::PAYMENT);
  ASSERT_TRUE(first && first->envelope().getPayload().isStartPayment());
  auto retry = receive(DaemonId::PAYMENT, 1000);
  ASSERT_TRUE(retry && retry->envelope().getPayload().isStartPayment());
  EXPECT_EQ(retry->envelope().getMessageId(), first->envelope().getMessageId());
  EXPECT_GT(retry->envelope().getSeq(), first->envelope().getSeq());
  // Budget exhausted: unknown outcome -> void it, restore stock, fail the order.
  auto cancel = receive(DaemonId::PAYMENT, 1000);
  ASSERT_TRUE(cancel && cancel->envelope().getPayload().isCancelPayment());
  send(DaemonId::PAYMENT, 4, cancel->envelope().getMessageId(),
       [](Payload::Builder p) { p.initPaymentCancelled(); });
  auto restock = receive(DaemonId::PRODUCT);
  ASSERT_TRUE(restock && restock->envelope().getPayload().isRestoreInventory());
  send(DaemonId::PRODUCT, 4, restock->envelope().getMessageId(),
       [](Payload::Builder p) { p.initInventoryRestored(); });
  auto fail = receive(DaemonId::ORDER);
  ASSERT_TRUE(fail && fail->envelope().getPayload().isFailOrder());
  EXPECT_EQ(fail->envelope().getPayload().getFailOrder().getReason(), Code::PAYMENT_TIMEOUT);
  const auto v = saga(4);
  ASSERT_TRUE(v);
  std::vector<std::string> timeline;
  for (const auto& e : v->history) timeline.push_back(e.step + " " + e.event);
  const std::vector<std::string> want = {
      "saga started",          "deduct_inventory sent",        "deduct_inventory ok",
      "start_payment sent",    "start_payment timeout",        "start_payment retry 2",
      "start_payment timeout", "start_payment sent",           "start_payment compensated",
      "deduct_inventory sent", "deduct_inventory compensated", "fail_order sent"};
  EXPECT_EQ(timeline, want);
}

TEST(RetryWait, DoublesPerAttemptUpToTheCap) {
  EXPECT_EQ(retry_wait_ms(200, 1, 8000), 200);
  EXPECT_EQ(retry_wait_ms(200, 2, 8000), 400);
  EXPECT_EQ(retry_wait_ms(200, 3, 8000), 800);
  EXPECT_EQ(retry_wait_ms(200, 7, 8000), 8000);
  EXPECT_EQ(retry_wait_ms(200, 1000, 8000), 8000);
  EXPECT_EQ(retry_wait_ms(5000, 3, 1000), 5000);  // the cap never shortens the timeout
  EXPECT_EQ(retry_wait_ms(200, 0, 8000), 200);
}

TEST_F(SagaEngineTest, UnansweredCompensationIsStuckThenRedrivenOrAbandoned) {
  auto control = [&](ipc::ControlOp op, std::uint64_t order) {
    auto r =
        ipc::control_call(rt_->status(), runtime::index(DaemonId::SUPERVISOR), op, order, 5000);
    EXPECT_TRUE(r);
    return r ? r->result : ipc::ControlResult::failed;
  };
  for (std::uint64_t order : {5ull, 6ull}) {
    create_order(order, 0, 0);
    auto deduct = receive(DaemonId::PRODUCT);
    ASSERT_TRUE(deduct);
    send(DaemonId::PRODUCT, order, deduct->envelope().getMessageId(),
         [](Payload::Builder p) { p.initInventoryDeducted(); });
    auto pay = receive(DaemonId::PAYMENT);
    ASSERT_TRUE(pay);
    send(DaemonId::PAYMENT, order, pay->envelope().getMessageId(),
         [](Payload::Builder p) { p.initPaymentStarted().setCode(Code::PAYMENT_DECLINED); });
    // The restock is never answered: two sends (the budget), then STUCK.
    auto restock = receive(DaemonId::PRODUCT);
    ASSERT_TRUE(restock && restock->envelope().getPayload().isRestoreInventory());
    auto again = receive(DaemonId::PRODUCT, 2000);
    ASSERT_TRUE(again && again->envelope().getPayload().isRestoreInventory());
    ASSERT_TRUE(wait_state(order, "STUCK"));
  }
  EXPECT_EQ(count("STUCK"), 2u);

  // Re-drive: the compensation resumes with the same message id.
  auto first = receive(DaemonId::PRODUCT, 50);  // nothing else is pending
  EXPECT_FALSE(first);
  EXPECT_EQ(control(ipc::ControlOp::redrive_saga, 5), ipc::ControlResult::ok);
  auto resumed = receive(DaemonId::PRODUCT);
  ASSERT_TRUE(resumed && resumed->envelope().getPayload().isRestoreInventory());
  EXPECT_EQ(resumed->envelope().getMessageId(), saga_message_id(5, 2, true));
  send(DaemonId::PRODUCT, 5, resumed->envelope().getMessageId(),
       [](Payload::Builder p) { p.initInventoryRestored(); });
  auto fail = receive(DaemonId::ORDER);
  ASSERT_TRUE(fail && fail->envelope().getPayload().isFailOrder());
  send(DaemonId::ORDER, 5, fail->envelope().getMessageId(),
       [](Payload::Builder p) { p.initOrderFailed(); });
  ASSERT_TRUE(wait_state(5, "FAILED"));
  EXPECT_EQ(saga(5)->failure_reason, "PAYMENT_DECLINED");
  EXPECT_EQ(control(ipc::ControlOp::redrive_saga, 5), ipc::ControlResult::already_done);

  // Abandon: terminal, nothing more is sent; a second abandon is a no-op.
  EXPECT_EQ(control(ipc::ControlOp::abandon_saga, 6), ipc::ControlResult::ok);
  ASSERT_TRUE(wait_state(6, "ABANDONED"));
  EXPECT_TRUE(nothing_for(DaemonId::PRODUCT, 400));
  EXPECT_EQ(control(ipc::ControlOp::abandon_saga, 6), ipc::ControlResult::already_done);
  EXPECT_EQ(control(ipc::ControlOp::redrive_saga, 6), ipc::ControlResult::bad_request);
  EXPECT_EQ(control(ipc::ControlOp::redrive_saga, 999), ipc::ControlResult::not_found);
  EXPECT_EQ(count("STUCK"), 0u);
  EXPECT_EQ(count("ABANDONED"), 1u);
}

TEST_F(SagaEngineTest, StaleAndDuplicateRepliesAreIgnored) {
  create_order(5, 0, 0);
  auto deduct = receive(DaemonId::PRODUCT);
  ASSERT_TRUE(deduct);
  // A reply to a command that is not in flight changes nothing.
  send(DaemonId::PAYMENT, 5, saga_message_id(5, 3, false),
       [](Payload::Builder p) { p.initPaymentStarted(); });
  EXPECT_TRUE(nothing_for(DaemonId::PAYMENT, 100));
  send(DaemonId::PRODUCT, 5, deduct->envelope().getMessageId(),
       [](Payload::Builder p) { p.initInventoryDeducted(); });
  send(DaemonId::PRODUCT, 5, deduct->envelope().getMessageId(),
       [](Payload::Builder p) { p.initInventoryDeducted(); });
  auto pay = receive(DaemonId::PAYMENT);
  ASSERT_TRUE(pay && pay->envelope().getPayload().isStartPayment());
  EXPECT_TRUE(nothing_for(DaemonId::PAYMENT, 100)) << "the duplicate reply did not advance twice";
}

TEST_F(SagaEngineTest, ContinuesWhereItWasAfterARestart) {
  // One saga ends FAILED before the restart; the totals come back from the store.
  create_order(7, 0, 0);
  auto first = receive(DaemonId::PRODUCT);
  ASSERT_TRUE(first);
  send(DaemonId::PRODUCT, 7, first->envelope().getMessageId(),
       [](Payload::Builder p) { p.initInventoryDeducted().setCode(Code::OUT_OF_STOCK); });
  auto fail = receive(DaemonId::ORDER);
  ASSERT_TRUE(fail && fail->envelope().getPayload().isFailOrder());
  send(DaemonId::ORDER, 7, fail->envelope().getMessageId(),
       [](Payload::Builder p) { p.initOrderFailed(); });
  ASSERT_TRUE(wait_state(7, "FAILED"));

  create_order(6, 0, 0);
  auto deduct = receive(DaemonId::PRODUCT);
  ASSERT_TRUE(deduct);
  stop_supervisor();
  start_supervisor();
  EXPECT_EQ(totals().failed, 1u);
  EXPECT_EQ(totals().running, 1u);
  // The reply to the pre-restart command still completes the step.
  send(DaemonId::PRODUCT, 6, deduct->envelope().getMessageId(),
       [](Payload::Builder p) { p.initInventoryDeducted(); });
  auto pay = receive(DaemonId::PAYMENT);
  ASSERT_TRUE(pay && pay->envelope().getPayload().isStartPayment());
  EXPECT_EQ(totals().running, 1u);
}

TEST(SagaDefinition, RejectsInvalidStepLists) {
  auto load = [](const std::string& toml) {
    const std::string path = "/tmp/rm-saga-def-" + std::to_string(::getpid()) + ".toml";
    std::ofstream(path) << toml;
    auto cfg = runtime::Config::load("/tmp", "/tmp", path);
    std::filesystem::remove(path);
    return SagaDefinition::from_config(*cfg);
  };
  EXPECT_TRUE(load(""));
  EXPECT_TRUE(
      load("[saga]\nsteps=[\"deduct_inventory\",\"use_coupon\",\"apply_coupon\",\"start_payment\","
           "\"deduct_points\",\"complete_payment\",\"complete_order\"]\n"));
  EXPECT_FALSE(load("[saga]\nsteps=[\"use_coupon\",\"complete_order\",\"apply_coupon\"]\n"));
  EXPECT_FALSE(load("[saga]\nsteps=[\"use_coupon\",\"nonsense\",\"complete_order\"]\n"));
  EXPECT_FALSE(
      load("[saga]\nsteps=[\"apply_coupon\",\"use_coupon\",\"deduct_inventory\",\"start_payment\","
           "\"complete_payment\",\"complete_order\"]\n"));
  EXPECT_FALSE(load("[saga.start_payment]\ntimeout_ms = 0\n"));
  EXPECT_FALSE(load("[saga]\nfinal_retention_hours = -1\n"));
  auto kept = load("[saga]\nfinal_retention_hours = 0\n");
  ASSERT_TRUE(kept);
  EXPECT_EQ(kept->final_retention_ms, 0);
  auto day = load("[saga]\nfinal_retention_hours = 24\n");
  ASSERT_TRUE(day);
  EXPECT_EQ(day->final_retention_ms, 24 * 3600 * 1000);
  EXPECT_EQ(load("")->final_retention_ms, std::int64_t{168} * 3600 * 1000);
}

}  // namespace
}  // namespace ringmart::supervisor
