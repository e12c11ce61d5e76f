// ringmart-bench-micro: Google Benchmark's main, plus the peer roles the
// two-process benchmarks re-execute this binary with (`--peer <role> ...`).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <string>
#include <vector>

#include "bench/micro.hpp"

int main(int argc, char** argv) {
  if (argc >= 3 && std::string(argv[1]) == "--peer") {
    const std::string role = argv[2];
    const std::vector<std::string> args(argv + 3, argv + argc);
    if (role == "ring-echo") return ringmart::bench::run_ring_echo_peer(args);
    if (role == "uds-echo") return ringmart::bench::run_uds_echo_peer(args);
    std::fprintf(stderr, "ringmart-bench-micro: unknown peer role %s\n", role.c_str());
    return 2;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
