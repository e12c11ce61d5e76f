// Transport baseline: the round trip between two processes over a Unix-domain
// socket pair (blocking read/write), SOCK_STREAM and SOCK_SEQPACKET, with the
// same message sizes as BM_RingRoundTrip. Blocking reads sleep in the kernel,
// so this compares with the ring's futex mode; the ring's spin mode has no
// socket equivalent worth measuring (a busy-polled socket still pays two
// syscalls per message each way).
#include <benchmark/benchmark.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <string>
#include <vector>

#include "bench/bench_util.hpp"
#include "bench/micro.hpp"

namespace ringmart::bench {
namespace {

/// Reads exactly `n` bytes (a stream may split a message). Returns false on
/// EOF or error.
bool read_full(int fd, std::byte* buf, std::size_t n) {
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = ::read(fd, buf + got, n - got);
    if (r > 0) {
      got += static_cast<std::size_t>(r);
    } else if (r < 0 && errno == EINTR) {
      continue;
    } else {
      return false;
    }
  }
  return true;
}

bool write_full(int fd, const std::byte* buf, std::size_t n) {
  std::size_t put = 0;
  while (put < n) {
    const ssize_t r = ::write(fd, buf + put, n - put);
    if (r > 0) {
      put += static_cast<std::size_t>(r);
    } else if (r < 0 && errno == EINTR) {
      continue;
    } else {
      return false;
    }
  }
  return true;
}

/// One iteration = write one message, read the peer's echo of it. Units: µs
/// per round trip (wall clock). The first round trip (peer exec) is not timed.
void BM_UdsRoundTrip(benchmark::State& state, int type) {
  const auto bytes = static_cast<std::size_t>(state.range(0));
  int sv[2];
  if (::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) != 0) {
    state.SkipWithError("socketpair failed");
    return;
  }
  Child peer =
      Child::spawn({"--peer", "uds-echo", std::to_string(sv[1]), std::to_string(bytes)}, sv[1]);
  ::close(sv[1]);
  const int fd = sv[0];
  std::vector<std::byte> buf(bytes, std::byte{0x5a});
  auto round_trip = [&] {
    return write_full(fd, buf.data(), bytes) && read_full(fd, buf.data(), bytes);
  };
  if (!round_trip()) {
    state.SkipWithError("warm-up round trip failed");
    ::close(fd);
    return;
  }
  for (auto _ : state) {
    if (!round_trip()) {
      state.SkipWithError("round trip failed");
      break;
    }
  }
  ::close(fd);  // EOF stops the peer
  peer.wait();
  state.counters["msg_bytes"] = static_cast<double>(bytes);
}

}  // namespace

int run_uds_echo_peer(const std::vector<std::string>& args) {
  if (args.size() != 2) return 2;
  const int fd = std::stoi(args[0]);
  const auto bytes = static_cast<std::size_t>(std::stoul(args[1]));
  std::vector<std::byte> buf(bytes);
  while (read_full(fd, buf.data(), bytes)) {
    if (!write_full(fd, buf.data(), bytes)) return 4;
  }
  return 0;
}

BENCHMARK_CAPTURE(BM_UdsRoundTrip, stream, SOCK_STREAM)->Apply(round_trip_args);
BENCHMARK_CAPTURE(BM_UdsRoundTrip, seqpacket, SOCK_SEQPACKET)->Apply(round_trip_args);

}  // namespace ringmart::bench
