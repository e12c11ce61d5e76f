// ringmart::ipc — a latency histogram of fixed buckets made of atomics, so it
// can live in shared memory (one process observes, others read) as well as
// in a process's own memory.
//
// Buckets are per-bucket counts (not cumulative): bucket i counts
// observations v with kLatencyBoundsUs[i-1] < v <= kLatencyBoundsUs[i]; the
// last one counts those above every bound (+Inf). A Prometheus exposition
// renders cumulative `le` buckets from them (the "histogram" type of the text
// format, https://prometheus.io/docs/concepts/metric_types/#histogram).
//
// Thread- and process-safety: observe() is lock-free (relaxed atomic adds)
// and may run in several threads or processes at once; readers see each
// field individually atomic but not a snapshot of all of them (a scrape may
// count an observation in its bucket and not yet in the sum) — fine for
// monitoring, and every field is monotonic.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <type_traits>

namespace ringmart::ipc {

/// Upper bounds in microseconds: 50 µs .. 10 s, roughly 1-2.5-5 per decade
/// (the spacing of Prometheus' client defaults, extended below 5 ms because a
/// ring round trip takes microseconds).
inline constexpr std::array<std::uint64_t, 18> kLatencyBoundsUs = {
    50,     100,     250,     500,     1'000,     2'500,     5'000,     10'000,     25'000,
    50'000, 100'000, 250'000, 500'000, 1'000'000, 2'500'000, 5'000'000, 10'000'000, 30'000'000};

struct Histogram {
  /// Per-bucket counts; the last one is +Inf.
  std::array<std::atomic<std::uint64_t>, kLatencyBoundsUs.size() + 1> buckets{};
  /// Sum of every observation, µs.
  std::atomic<std::uint64_t> sum_us{0};

  /// Adds one observation of `us` microseconds. Relaxed: each field is an
  /// independent monotonic counter; nothing is published through them.
  void observe_us(std::uint64_t us) {
    const auto it = std::lower_bound(kLatencyBoundsUs.begin(), kLatencyBoundsUs.end(), us);
    buckets[static_cast<std::size_t>(it - kLatencyBoundsUs.begin())].fetch_add(
        1, std::memory_order_relaxed);
    sum_us.fetch_add(us, std::memory_order_relaxed);
  }
  /// Observations so far (the sum of the buckets).
  std::uint64_t count() const {
    std::uint64_t n = 0;
    for (const auto& b : buckets) n += b.load(std::memory_order_relaxed);
    return n;
  }
};
static_assert(std::is_standard_layout_v<Histogram>);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

}  // namespace ringmart::ipc
