// One saga step end to end: the real supervisor (its runtime loop and the
// SagaEngine, on a thread of this process) over the real rings and LMDB
// (state under /var/tmp), with this thread playing the participant daemons.
// A step = a message pushed on a participant -> supervisor ring, the
// doorbell rung, the supervisor's batch (apply, LMDB commit, outbox), its
// relay, and the next command read off the supervisor -> participant ring.
// One iteration is one order of five steps (OrderCreated, then the replies
// to DeductInventory, StartPayment, CompletePayment, CompleteOrder; no
// coupon, no points), one after another. This side busy-polls; the supervisor
// waits as a daemon does (adaptive spin, then its doorbell). Units: µs per
// order, wall clock; items/s = orders/s; s_per_step = time / 5, in s (printed with an SI prefix:
// 40u = 40 µs).
#include <benchmark/benchmark.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <thread>

#include "bench/bench_util.hpp"
#include "daemons/supervisor/saga_engine.hpp"
#include "storage/capnp_value.hpp"
#include "testkit/temp_dir.hpp"

namespace ringmart::bench {
namespace {

using msg::DaemonId;
using Payload = msg::Envelope::Payload;

constexpr int kStepsPerOrder = 5;
constexpr DaemonId kPeers[] = {DaemonId::USER, DaemonId::PRODUCT, DaemonId::COUPON, DaemonId::ORDER,
                               DaemonId::PAYMENT};

/// The supervisor on its own thread, and this side's ends of its rings.
class Supervisor {
 public:
  /// Empty error = running.
  std::string start(const std::string& base, const std::string& durability) {
    std::ofstream(base + "/cfg.toml") << "[runtime]\ndurability = \"" << durability << "\"\n";
    auto cfg = runtime::Config::load(base + "/state", base + "/run", base + "/cfg.toml");
    if (!cfg) return cfg.error();
    config_ = *cfg;
    std::filesystem::create_directories(config_.runtime_dir);
    auto transport = runtime::create_transport(config_);
    if (!transport) return transport.error();
    transport_ = true;
    auto def = supervisor::SagaDefinition::from_config(config_);
    if (!def) return def.error();
    auto rt = runtime::Runtime::create(DaemonId::SUPERVISOR, config_, 2000);
    if (!rt) return rt.error().message;
    rt_ = std::move(*rt);
    rt_->log()->set_level(spdlog::level::warn);
    if (auto ec = rt_->transact([&](runtime::Context& ctx) -> std::error_code {
          auto store = supervisor::SagaStore::open(ctx.txn());
          if (!store) return store.error();
          engine_.emplace(*def, *store, rt_->log());
          engine_->recover(ctx.txn());
          return {};
        })) {
      return "saga store: " + ec.message();
    }
    rt_->on_message([this](runtime::Context& ctx, msg::Envelope::Reader m) {
      return engine_->on_message(ctx, m);
    });
    const auto& prefix = transport->prefix;
    for (auto d : kPeers) {
      auto in = ipc::Ring::open(runtime::ring_name(prefix, DaemonId::SUPERVISOR, d));
      auto out = ipc::Ring::open(runtime::ring_name(prefix, d, DaemonId::SUPERVISOR));
      if (!in || !out) return "cannot open the supervisor's rings";
      in_.emplace(d, std::move(*in));
      out_.emplace(d, std::move(*out));
    }
    loop_ = std::thread([this] { rt_->run(); });
    return {};
  }

  ~Supervisor() {
    if (loop_.joinable()) {
      rt_->stop();
      loop_.join();
    }
    engine_.reset();
    rt_.reset();
    if (transport_) runtime::remove_transport(config_.runtime_dir);
  }

  /// Pushes a message from `from` and rings the supervisor's doorbell.
  bool send(DaemonId from, std::uint64_t saga, std::uint64_t correlation,
            const std::function<void(Payload::Builder)>& fill) {
    capnp::MallocMessageBuilder b(128);
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
    if (!out_.at(from).try_push(storage::as_bytes(words), seq)) return false;
    rt_->status().doorbell(runtime::index(DaemonId::SUPERVISOR)).ring();
    return true;
  }

  /// Busy-polls every supervisor -> participant ring for the next command:
  /// its receiver, message id and payload kind. nullopt after 5 s.
  struct Command {
    DaemonId to;
    std::uint64_t message_id;
    Payload::Which which;
  };
  std::optional<Command> receive() {
    const auto deadline = ipc::monotonic_ms() + 5000;
    for (unsigned polls = 0;; ++polls) {
      for (auto& [d, ring] : in_) {
        ipc::RecordView r;
        auto got = ring.next(r);
        if (!got || !*got) continue;
        capnp::FlatArrayMessageReader reader(kj::arrayPtr(
            reinterpret_cast<const capnp::word*>(r.payload.data()), r.payload.size() / 8));
        auto e = reader.getRoot<msg::Envelope>();
        Command c{d, e.getMessageId(), e.getPayload().which()};
        ring.commit(r.end_pos, r.seq);
        return c;
      }
      if ((polls & 1023) == 0 && ipc::monotonic_ms() > deadline) return std::nullopt;
    }
  }

 private:
  runtime::Config config_;
  bool transport_ = false;
  std::unique_ptr<runtime::Runtime> rt_;
  std::optional<supervisor::SagaEngine> engine_;
  std::thread loop_;
  std::map<DaemonId, ipc::Ring> in_, out_;
  std::map<DaemonId, std::uint64_t> seq_;
};

void BM_SagaStep(benchmark::State& state, const char* durability) {
  testkit::TempDir dir(kBenchPrefix, "/var/tmp");
  Supervisor sup;
  if (auto err = sup.start(dir.path(), durability); !err.empty()) {
    state.SkipWithError(("supervisor: " + err).c_str());
    return;
  }
  std::uint64_t order = 0;
  // One order: OrderCreated, then the reply to each command until
  // CompleteOrder (whose reply ends the saga and brings no command back).
  auto one_order = [&]() -> bool {
    ++order;
    bool sent = sup.send(DaemonId::ORDER, order, 0, [&](Payload::Builder p) {
      auto c = p.initOrderCreated();
      auto o = c.initOrder();
      o.setOrderId(order);
      o.setUserId(7);
      auto lines = o.initLines(1);
      lines[0].setProductId(3);
      lines[0].setQuantity(1);
      lines[0].setUnitPriceCents(1000);
      o.setShippingCents(100);
      o.setPaymentToken("tok_ok");
      o.setInstallments(1);
      c.setSubtotalCents(1000);
    });
    while (sent) {
      const auto c = sup.receive();
      if (!c) return false;
      sent = sup.send(c->to, order, c->message_id, [&](Payload::Builder p) {
        switch (c->which) {
          case Payload::DEDUCT_INVENTORY:
            p.initInventoryDeducted();
            break;
          case Payload::START_PAYMENT:
            p.initPaymentStarted();
            break;
          case Payload::COMPLETE_PAYMENT:
            p.initPaymentCompleted();
            break;
          default:  // CompleteOrder
            p.initOrderCompleted().setOrderId(order);
            break;
        }
      });
      if (c->which == Payload::COMPLETE_ORDER) return sent;
    }
    return false;
  };
  for (int i = 0; i < 20; ++i) {  // warm-up
    if (!one_order()) {
      state.SkipWithError("warm-up order failed");
      return;
    }
  }
  for (auto _ : state) {
    if (!one_order()) {
      state.SkipWithError("no command from the supervisor within 5 s, or a ring full");
      return;
    }
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["s_per_step"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * kStepsPerOrder,
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert, benchmark::Counter::kIs1000);
}

BENCHMARK_CAPTURE(BM_SagaStep, process, "process")
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond)
    ->MinTime(0.5);
BENCHMARK_CAPTURE(BM_SagaStep, fsync, "fsync")
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond)
    ->MinTime(0.5);

}  // namespace
}  // namespace ringmart::bench
