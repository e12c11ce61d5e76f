#include "ipc/doorbell.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <climits>

namespace ringmart::ipc {
namespace {
long futex(std::atomic<std::uint32_t>* addr, int op, std::uint32_t val, const timespec* ts) {
  // Shared (non-private) futex: the word lives in memory mapped by several processes.
  return ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(addr), op, val, ts, nullptr, 0);
}
}  // namespace

void Doorbell::ring() {
  // SYNC: bump after the record was published; pairs with the load in prepare().
  word_->counter.fetch_add(1, std::memory_order_seq_cst);
  if (word_->waiters.load(std::memory_order_seq_cst) > 0) {
    futex(&word_->counter, FUTEX_WAKE, INT_MAX, nullptr);
  }
}

std::uint32_t Doorbell::prepare() {
  word_->waiters.fetch_add(1, std::memory_order_seq_cst);
  return word_->counter.load(std::memory_order_seq_cst);
}

void Doorbell::cancel() { word_->waiters.fetch_sub(1, std::memory_order_seq_cst); }

void Doorbell::wait(std::uint32_t token, int timeout_ms) {
  timespec ts{};
  const timespec* tsp = nullptr;
  if (timeout_ms >= 0) {
    ts.tv_sec = timeout_ms / 1000;
    ts.tv_nsec = static_cast<long>(timeout_ms % 1000) * 1'000'000L;
    tsp = &ts;
  }
  // Returns at once (EAGAIN) if a producer already bumped the counter.
  futex(&word_->counter, FUTEX_WAIT, token, tsp);
  word_->waiters.fetch_sub(1, std::memory_order_seq_cst);
}

}  // namespace ringmart::ipc
