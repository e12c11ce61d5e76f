// LMDB group commit: one write transaction carrying 1, 10 or 100 messages the
// way a daemon's batch does (inbox mark + a state row + an outbox row per
// message, storage::Outbox and a plain table), in both durability modes, on
// the disk under /var/tmp (not tmpfs: the fsync figure is the disk's).
// Units: µs per transaction; items/s = messages/s.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <vector>

#include "bench/bench_util.hpp"
#include "storage/lmdb.hpp"
#include "storage/outbox.hpp"
#include "testkit/temp_dir.hpp"

namespace ringmart::bench {
namespace {

void BM_LmdbCommit(benchmark::State& state, storage::Durability durability) {
  const auto per_txn = static_cast<int>(state.range(0));
  testkit::TempDir dir(kBenchPrefix, "/var/tmp");
  auto env = storage::Env::open({.path = dir.path(), .durability = durability});
  if (!env) {
    state.SkipWithError(("env open: " + env.error().message()).c_str());
    return;
  }
  storage::Table rows;
  storage::Outbox outbox;
  {
    auto txn = storage::Txn::begin_write(**env);
    auto t = storage::Table::open(*txn, "rows");
    auto o = storage::Outbox::open(*txn);
    if (!t || !o || txn->commit()) {
      state.SkipWithError("table open failed");
      return;
    }
    rows = *t;
    outbox = std::move(*o);
  }
  // A 200-byte row and a 240-byte outbox record: the size of an order row and
  // of a saga envelope (micro_capnp's msg_bytes).
  const std::vector<std::byte> row(200, std::byte{0x11});
  const std::vector<std::byte> record(240, std::byte{0x22});
  std::uint64_t n = 0;
  for (auto _ : state) {
    auto txn = storage::Txn::begin_write(**env);
    for (int i = 0; i < per_txn; ++i) {
      ++n;
      storage::Key k;
      k.u64(n);
      if (rows.put(*txn, k.view(), row)) state.SkipWithError("put failed");
      auto seq = outbox.next_seq(*txn, 1);
      if (!seq || outbox.put(*txn, 1, *seq, record)) state.SkipWithError("outbox put failed");
    }
    if (auto ec = txn->commit()) {
      state.SkipWithError(("commit: " + ec.message()).c_str());
      break;
    }
    // Keep the files bounded as the daemons do (outbox pruned once acknowledged).
    if (n % 4096 < static_cast<std::uint64_t>(per_txn)) {
      auto prune = storage::Txn::begin_write(**env);
      outbox.prune(*prune, 1, n);
      (void)prune->commit();
    }
  }
  state.SetItemsProcessed(state.iterations() * per_txn);
  state.SetLabel(durability == storage::Durability::fsync ? "fsync" : "process");
}

void commit_args(benchmark::internal::Benchmark* b) {
  b->ArgName("msgs_per_txn")
      ->Arg(1)
      ->Arg(10)
      ->Arg(100)
      ->Unit(benchmark::kMicrosecond)
      ->UseRealTime();
}
BENCHMARK_CAPTURE(BM_LmdbCommit, process, storage::Durability::process)
    ->Apply(commit_args)
    ->MinTime(0.3);
BENCHMARK_CAPTURE(BM_LmdbCommit, fsync, storage::Durability::fsync)
    ->Apply(commit_args)
    ->MinTime(0.5);

}  // namespace
}  // namespace ringmart::bench
