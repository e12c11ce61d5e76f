// Shared by the multi-process tests and their peer program (ringmart-mp-peer):
// deterministic payloads that encode their sequence number and a checksum, and
// the consumer's doorbell sleep with wake/timeout accounting.
#pragma once

#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "ipc/doorbell.hpp"
#include "ipc/ring.hpp"

namespace ringmart::mp {

/// Status-region slots used by the tests: whose doorbell / counters.
inline constexpr std::size_t kTestSlot = 0;  ///< doorbell of the test process when it consumes
inline constexpr std::size_t kPeerSlot = 1;  ///< doorbell and counters of a consuming peer
/// Sender / receiver id used for inbox marks and outbox keys.
inline constexpr std::uint8_t kChannel = 7;

inline std::uint64_t mix64(std::uint64_t x) {  // splitmix64 finaliser
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/// Payload sizes are chosen per seq in [min, max]; min >= 8.
struct PayloadSpec {
  std::size_t min = 16;
  std::size_t max = 16;
};

inline std::size_t payload_size(std::uint64_t seq, PayloadSpec s) {
  if (s.max <= s.min) return s.min;
  return s.min + mix64(seq ^ 0x5bd1e995u) % (s.max - s.min + 1);
}

/// FNV-1a over the seq (little-endian) and the body.
inline std::uint64_t checksum(std::uint64_t seq, std::span<const std::byte> body) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (int i = 0; i < 8; ++i) h = (h ^ ((seq >> (8 * i)) & 0xff)) * 0x100000001b3ull;
  for (std::byte b : body) h = (h ^ static_cast<std::uint8_t>(b)) * 0x100000001b3ull;
  return h;
}

inline std::uint64_t body_word(std::uint64_t seq, std::size_t i) {
  return mix64(seq * 0x9e3779b97f4a7c15ull + i);
}

/// Layout: | u64 checksum(seq, body) | body: words derived from seq, cut to size |
inline void make_payload(std::uint64_t seq, PayloadSpec s, std::vector<std::byte>& out) {
  const std::size_t n = payload_size(seq, s);
  out.resize(n);
  for (std::size_t i = 8; i < n; i += 8) {
    const std::uint64_t w = body_word(seq, i / 8);
    std::memcpy(out.data() + i, &w, std::min<std::size_t>(8, n - i));
  }
  const std::uint64_t sum = checksum(seq, std::span<const std::byte>(out).subspan(8));
  std::memcpy(out.data(), &sum, 8);
}

/// nullptr when `p` is exactly the payload of `seq`, else what is wrong.
inline const char* verify_payload(std::uint64_t seq, PayloadSpec s, std::span<const std::byte> p) {
  if (p.size() != payload_size(seq, s)) return "wrong size";
  std::uint64_t stored;
  std::memcpy(&stored, p.data(), 8);
  if (stored != checksum(seq, p.subspan(8))) return "checksum mismatch";
  for (std::size_t i = 8; i < p.size(); i += 8) {
    const std::uint64_t w = body_word(seq, i / 8);
    if (std::memcmp(p.data() + i, &w, std::min<std::size_t>(8, p.size() - i)) != 0) {
      return "body differs from the one encoded for this seq";
    }
  }
  return nullptr;
}

/// Stored checksum of a verified payload (summed to compare whole streams).
inline std::uint64_t payload_checksum(std::span<const std::byte> p) {
  std::uint64_t v;
  std::memcpy(&v, p.data(), 8);
  return v;
}

struct WaitStats {
  std::uint64_t sleeps = 0;    ///< FUTEX_WAITs entered
  std::uint64_t cancels = 0;   ///< prepare() found data: no sleep
  std::uint64_t woken = 0;     ///< the wait ended before its timeout (rung, or spurious)
  std::uint64_t timeouts = 0;  ///< the wait lasted its whole timeout
  /// Timeouts although the producer had published (a record was readable) or
  /// rung (the counter moved) meanwhile: lost wake-ups.
  std::uint64_t stalls = 0;
};

inline std::int64_t monotonic_us() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
}

/// One consumer sleep on `word`: prepare, re-check the ring, wait (timeout_ms).
inline void sleep_until_readable(ipc::Ring& ring, ipc::DoorbellWord& word, int timeout_ms,
                                 WaitStats& st) {
  ipc::Doorbell bell(&word);
  const std::uint32_t token = bell.prepare();
  if (ring.readable()) {
    bell.cancel();
    ++st.cancels;
    return;
  }
  ++st.sleeps;
  const std::int64_t t0 = monotonic_us();
  bell.wait(token, timeout_ms);
  // FUTEX_WAIT sleeps at least its timeout; allow for clock granularity.
  if (monotonic_us() - t0 < std::int64_t{timeout_ms} * 1000 * 95 / 100) {
    ++st.woken;
    return;
  }
  ++st.timeouts;
  if (word.counter.load(std::memory_order_seq_cst) != token || ring.readable()) ++st.stalls;
}

/// Producer back-off while the ring is full: yield first, then short sleeps.
class Backoff {
 public:
  void pause() {
    if (n_ < 64) {
      ::sched_yield();
    } else {
      ::usleep(n_ < 256 ? 20 : 200);
    }
    ++n_;
  }
  void reset() { n_ = 0; }

 private:
  unsigned n_ = 0;
};

}  // namespace ringmart::mp
