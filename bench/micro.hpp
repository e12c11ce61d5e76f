// ringmart bench — the peer-process entry points of ringmart-bench-micro.
//
// The two-process benchmarks re-execute the benchmark binary as
// `ringmart-bench-micro --peer <role> ARGS...`; main() dispatches here before
// Google Benchmark sees the command line.
#pragma once

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

namespace ringmart::bench {

/// How a consumer waits for the next record (see micro_ring.cpp).
enum class WaitMode {
  spin,      ///< busy-polls the ring: lowest latency, burns a core
  futex,     ///< sleeps on the doorbell every time nothing is readable
  adaptive,  ///< polls for kAdaptiveSpinUs, then sleeps (the daemon runtime's policy)
};

/// Spin budget of the adaptive mode; Config::spin_us defaults to the same 50 µs.
inline constexpr int kAdaptiveSpinUs = 50;

/// The message sizes and settings every round-trip benchmark (ring and
/// socket) runs with, so their figures line up: 64/256/1024 bytes, wall
/// clock, µs. Use as `->Apply(round_trip_args)`.
inline void round_trip_args(benchmark::internal::Benchmark* b) {
  b->Arg(64)->Arg(256)->Arg(1024)->UseRealTime()->Unit(benchmark::kMicrosecond)->MinTime(0.3);
}

/// Role "ring-echo": REQ_RING RESP_RING BELLS MODE — echoes every record of
/// REQ_RING onto RESP_RING until a record with seq kStopSeq arrives.
int run_ring_echo_peer(const std::vector<std::string>& args);
/// Role "uds-echo": FD BYTES — reads BYTES-sized messages from the socket FD
/// and writes each back, until EOF.
int run_uds_echo_peer(const std::vector<std::string>& args);

}  // namespace ringmart::bench
