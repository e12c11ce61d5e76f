// ringmart::ipc — the doorbell: an eventcount on a futex word in shared memory.
//
// One doorbell per consuming daemon, shared by all its inbound rings. The
// consumer sleeps with FUTEX_WAIT on the very counter producers bump
// (value-compare), so a wake-up between "rings looked empty" and "sleep" can
// never be lost; producers only pay the FUTEX_WAKE syscall when a waiter
// announced itself. Protocol (seq_cst on both words; source: the eventcount
// pattern, e.g. Dmitry Vyukov's and folly::EventCount):
//
//   consumer                           producer
//   waiters += 1                       publish record (release)
//   v = counter                        counter += 1
//   if rings non-empty: waiters -= 1   if waiters > 0: FUTEX_WAKE(counter)
//   else FUTEX_WAIT(counter, v); waiters -= 1
//
// Process-safe (the words live in shared memory; futexes are not
// FUTEX_PRIVATE). Async-signal-safe: ring() may be called from a signal handler.
#pragma once

#include <atomic>
#include <cstdint>

namespace ringmart::ipc {

struct DoorbellWord {
  std::atomic<std::uint32_t> counter{0};
  std::atomic<std::uint32_t> waiters{0};
};
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);

class Doorbell {
 public:
  explicit Doorbell(DoorbellWord* word) : word_(word) {}

  /// Producer side: wakes the consumer if it sleeps. Call after publishing.
  void ring();

  /// Consumer side, step 1: announce intent to sleep; returns the token to
  /// pass to wait(). Re-check your rings after prepare(); if they have data,
  /// call cancel() instead of wait().
  std::uint32_t prepare();
  void cancel();
  /// Sleeps until ring() changes the counter from `token` or `timeout_ms`
  /// passes (negative = forever). Spurious returns are possible.
  void wait(std::uint32_t token, int timeout_ms);

 private:
  DoorbellWord* word_;
};

}  // namespace ringmart::ipc
