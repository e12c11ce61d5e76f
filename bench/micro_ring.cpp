// Ring benchmarks: push/pop throughput in one process, and the round trip
// between two real processes (ping-pong over two rings) per wait mode.
//
//   client (benchmark)                        peer (--peer ring-echo)
//   push req ─► ring "req" ─► wait, next ──► push resp ─► ring "resp" ─► wait, next
//   ring peer's doorbell                      ring client's doorbell
//
// One iteration = one round trip of one record each way, same size both ways.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "bench/bench_util.hpp"
#include "bench/micro.hpp"
#include "ipc/doorbell.hpp"
#include "ipc/ring.hpp"
#include "ipc/shm_segment.hpp"
#include "testkit/shm_names.hpp"

namespace ringmart::bench {
namespace {

constexpr std::size_t kRingBytes = 1 << 16;  // the daemons' default order of magnitude
constexpr std::uint64_t kStopSeq = std::numeric_limits<std::uint64_t>::max();

/// The two doorbells of a ping-pong, one per consumer, on separate cache lines
/// so a ring() on one does not bounce the line the other side sleeps on.
struct Bells {
  alignas(64) ipc::DoorbellWord client;
  alignas(64) ipc::DoorbellWord peer;
};

const char* mode_name(WaitMode m) {
  switch (m) {
    case WaitMode::spin:
      return "spin";
    case WaitMode::futex:
      return "futex";
    case WaitMode::adaptive:
      return "adaptive";
  }
  return "?";
}

std::optional<WaitMode> parse_mode(const std::string& s) {
  if (s == "spin") return WaitMode::spin;
  if (s == "futex") return WaitMode::futex;
  if (s == "adaptive") return WaitMode::adaptive;
  return std::nullopt;
}

/// Returns once `ring` has a published record, waiting as `mode` says. The
/// futex path is the eventcount protocol of ipc/doorbell.hpp: announce, re-check,
/// sleep; the 100 ms timeout only bounds a lost wake-up (there should be none).
void wait_readable(const ipc::Ring& ring, ipc::Doorbell& bell, WaitMode mode) {
  if (ring.readable()) return;
  if (mode == WaitMode::spin) {
    while (!ring.readable()) cpu_relax();
    return;
  }
  if (mode == WaitMode::adaptive) {
    // Same shape as Runtime::run(): poll until the deadline, reading the clock each turn.
    const auto until =
        std::chrono::steady_clock::now() + std::chrono::microseconds(kAdaptiveSpinUs);
    while (std::chrono::steady_clock::now() < until) {
      if (ring.readable()) return;
    }
  }
  for (;;) {
    const auto token = bell.prepare();
    if (ring.readable()) {
      bell.cancel();
      return;
    }
    bell.wait(token, 100);
    if (ring.readable()) return;
  }
}

/// Push/pop in one process: `batch` records pushed, then read and acknowledged
/// with one commit (how the runtime drains a ring). Measures the ring's own
/// cost (copies, atomics) without any cross-core traffic. Units: ns per
/// iteration; items/s = records/s.
void BM_RingPushPop(benchmark::State& state) {
  const auto bytes = static_cast<std::size_t>(state.range(0));
  const auto batch = static_cast<int>(state.range(1));
  testkit::ShmNames names(kBenchPrefix);
  auto ring = ipc::Ring::create(names.add("pp"), 1 << 20);
  if (!ring) {
    state.SkipWithError(("ring create: " + ring.error().message()).c_str());
    return;
  }
  std::vector<std::byte> payload(bytes, std::byte{0x5a});
  std::uint64_t seq = 0;
  for (auto _ : state) {
    for (int i = 0; i < batch; ++i) {
      if (!ring->try_push(payload, ++seq)) {
        state.SkipWithError("ring full");
        return;
      }
    }
    ipc::RecordView v;
    for (int i = 0; i < batch; ++i) {
      auto got = ring->next(v);
      if (!got || !*got) {
        state.SkipWithError("record missing");
        return;
      }
      benchmark::DoNotOptimize(v.payload.data());
    }
    ring->commit(v.end_pos, v.seq);
  }
  state.SetItemsProcessed(state.iterations() * batch);
  state.SetBytesProcessed(state.iterations() * batch * static_cast<std::int64_t>(bytes));
}

/// Round trip between two processes over two rings, both consumers waiting as
/// `mode` says (spin: both busy-poll; futex: both sleep whenever nothing is
/// readable; adaptive: poll 50 µs, then sleep). Units: µs per round trip
/// (wall clock). The first round trip (peer exec + attach) is not timed.
void BM_RingRoundTrip(benchmark::State& state, WaitMode mode) {
  const auto bytes = static_cast<std::size_t>(state.range(0));
  testkit::ShmNames names(kBenchPrefix);
  const std::string req_name = names.add("req");
  const std::string resp_name = names.add("resp");
  const std::string bells_name = names.add("bells");
  auto req = ipc::Ring::create(req_name, kRingBytes);
  auto resp = ipc::Ring::create(resp_name, kRingBytes);
  auto seg = ipc::ShmSegment::create(bells_name, 4096);
  if (!req || !resp || !seg) {
    state.SkipWithError("cannot create rings/doorbells in /dev/shm");
    return;
  }
  auto* bells = new (seg->data()) Bells{};
  ipc::Doorbell my_bell(&bells->client);
  ipc::Doorbell peer_bell(&bells->peer);
  Child peer =
      Child::spawn({"--peer", "ring-echo", req_name, resp_name, bells_name, mode_name(mode)});

  std::vector<std::byte> payload(bytes, std::byte{0x5a});
  std::uint64_t seq = 0;
  auto round_trip = [&]() -> bool {
    if (!req->try_push(payload, ++seq)) return false;
    peer_bell.ring();
    wait_readable(*resp, my_bell, mode);
    ipc::RecordView v;
    auto got = resp->next(v);
    if (!got || !*got || v.seq != seq || v.payload.size() != bytes) return false;
    resp->commit(v.end_pos, v.seq);
    return true;
  };
  if (!round_trip()) {
    state.SkipWithError("warm-up round trip failed");
    return;
  }
  for (auto _ : state) {
    if (!round_trip()) {
      state.SkipWithError("round trip failed (lost, reordered or resized record)");
      break;
    }
  }
  const std::byte none[8]{};
  (void)req->try_push({none, 0}, kStopSeq);
  peer_bell.ring();
  peer.wait();
  state.SetLabel(mode_name(mode));
  state.counters["msg_bytes"] = static_cast<double>(bytes);
}

}  // namespace

int run_ring_echo_peer(const std::vector<std::string>& args) {
  if (args.size() != 4) return 2;
  auto mode = parse_mode(args[3]);
  auto req = ipc::Ring::open(args[0]);
  auto resp = ipc::Ring::open(args[1]);
  auto seg = ipc::ShmSegment::open(args[2]);
  if (!mode || !req || !resp || !seg) return 3;
  auto* bells = static_cast<Bells*>(seg->data());
  ipc::Doorbell my_bell(&bells->peer);
  ipc::Doorbell client_bell(&bells->client);
  for (;;) {
    wait_readable(*req, my_bell, *mode);
    ipc::RecordView v;
    auto got = req->next(v);
    if (!got) return 4;
    if (!*got) continue;
    if (v.seq == kStopSeq) {
      req->commit(v.end_pos, 0);
      return 0;
    }
    // The payload lives in req's shared memory until commit: push first.
    while (!resp->try_push(v.payload, v.seq)) cpu_relax();
    req->commit(v.end_pos, v.seq);
    client_bell.ring();
  }
}

BENCHMARK(BM_RingPushPop)
    ->ArgNames({"bytes", "batch"})
    ->Args({64, 1})
    ->Args({256, 1})
    ->Args({1024, 1})
    ->Args({256, 64})
    ->MinTime(0.2);

BENCHMARK_CAPTURE(BM_RingRoundTrip, spin, WaitMode::spin)->Apply(round_trip_args);
BENCHMARK_CAPTURE(BM_RingRoundTrip, futex, WaitMode::futex)->Apply(round_trip_args);
BENCHMARK_CAPTURE(BM_RingRoundTrip, adaptive, WaitMode::adaptive)->Apply(round_trip_args);

}  // namespace ringmart::bench
