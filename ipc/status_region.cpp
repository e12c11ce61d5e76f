#include "ipc/status_region.hpp"

#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <new>
#include <thread>

namespace ringmart::ipc {

const char* to_string(DaemonState s) {
  switch (s) {
    case DaemonState::stopped:
      return "stopped";
    case DaemonState::starting:
      return "starting";
    case DaemonState::running:
      return "running";
    case DaemonState::backoff:
      return "backoff";
    case DaemonState::failed:
      return "failed";
  }
  return "unknown";
}

std::expected<StatusRegion, std::error_code> StatusRegion::create(const std::string& name,
                                                                  gid_t group) {
  auto seg = ShmSegment::create(name, sizeof(StatusLayout), group);
  if (!seg) return std::unexpected(seg.error());
  auto* l = static_cast<StatusLayout*>(seg->data());
  new (l) StatusLayout{};
  l->magic = kStatusMagic;
  // SYNC: publish layout; pairs with the acquire in open().
  l->version.store(kStatusVersion, std::memory_order_release);
  return StatusRegion(std::move(*seg));
}

std::expected<StatusRegion, std::error_code> StatusRegion::open(const std::string& name,
                                                                ShmAccess access) {
  auto seg = ShmSegment::open(name, access);
  if (!seg) return std::unexpected(seg.error());
  auto* l = static_cast<StatusLayout*>(seg->data());
  if (seg->size() != sizeof(StatusLayout) || l->magic != kStatusMagic ||
      l->version.load(std::memory_order_acquire) != kStatusVersion) {
    return std::unexpected(std::make_error_code(std::errc::protocol_error));
  }
  return StatusRegion(std::move(*seg));
}

namespace {
void copy_text(char* dst, std::size_t cap, std::string_view text) {
  const auto n = std::min(cap - 1, text.size());
  std::memcpy(dst, text.data(), n);
  dst[n] = '\0';
}
}  // namespace

void set_reason(DaemonSlot& slot, std::string_view text) {
  slot.reason_len.store(0, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  copy_text(slot.reason, sizeof slot.reason, text);
  // SYNC: publish reason; pairs with the acquire in reason().
  slot.reason_len.store(static_cast<std::uint32_t>(std::min(text.size(), sizeof slot.reason - 1)),
                        std::memory_order_release);
}

std::string reason(const DaemonSlot& slot) {
  // SYNC: observe reason; pairs with the release in set_reason().
  const auto n = slot.reason_len.load(std::memory_order_acquire);
  return std::string(slot.reason, std::min<std::size_t>(n, sizeof slot.reason - 1));
}

std::expected<ControlReply, std::error_code> control_call(const StatusRegion& region,
                                                          std::size_t daemon, ControlOp op,
                                                          std::uint64_t arg, int timeout_ms) {
  auto& slot = region.slot(daemon);
  const auto deadline = monotonic_ms() + timeout_ms;
  const std::int32_t me = ::getpid();
  for (;;) {
    std::int32_t owner = 0;
    if (slot.control_owner.compare_exchange_strong(owner, me, std::memory_order_acquire)) break;
    // A client that died while holding the channel must not block it forever.
    if (owner > 0 && ::kill(owner, 0) != 0 && errno == ESRCH) {
      slot.control_owner.compare_exchange_strong(owner, me, std::memory_order_acquire);
      if (slot.control_owner.load(std::memory_order_relaxed) == me) break;
    }
    if (monotonic_ms() > deadline)
      return std::unexpected(std::make_error_code(std::errc::device_or_resource_busy));
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  // A request a dead client left unanswered is superseded by ours.
  const auto request = std::max(slot.control_request.load(std::memory_order_relaxed),
                                slot.control_done.load(std::memory_order_acquire)) +
                       1;
  slot.control_op.store(static_cast<std::uint32_t>(op), std::memory_order_relaxed);
  slot.control_arg.store(arg, std::memory_order_relaxed);
  // SYNC: publish request; pairs with the acquire in control_pending().
  slot.control_request.store(request, std::memory_order_release);
  region.doorbell(daemon).ring();
  std::expected<ControlReply, std::error_code> out =
      std::unexpected(std::make_error_code(std::errc::timed_out));
  while (monotonic_ms() <= deadline) {
    // SYNC: observe answer; pairs with the release in control_answer().
    if (slot.control_done.load(std::memory_order_acquire) >= request) {
      out = ControlReply{
          static_cast<ControlResult>(slot.control_result.load(std::memory_order_relaxed)),
          std::string(slot.control_message,
                      ::strnlen(slot.control_message, sizeof slot.control_message))};
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  slot.control_owner.store(0, std::memory_order_release);
  return out;
}

bool control_pending(const DaemonSlot& slot, ControlOp& op, std::uint64_t& arg) {
  // SYNC: observe request; pairs with the release in control_call().
  const auto request = slot.control_request.load(std::memory_order_acquire);
  if (request <= slot.control_done.load(std::memory_order_relaxed)) return false;
  op = static_cast<ControlOp>(slot.control_op.load(std::memory_order_relaxed));
  arg = slot.control_arg.load(std::memory_order_relaxed);
  return true;
}

void control_answer(DaemonSlot& slot, ControlResult result, std::string_view message) {
  copy_text(slot.control_message, sizeof slot.control_message, message);
  slot.control_result.store(static_cast<std::int32_t>(result), std::memory_order_relaxed);
  // SYNC: publish answer; pairs with the acquire in control_call().
  slot.control_done.store(slot.control_request.load(std::memory_order_relaxed),
                          std::memory_order_release);
}

std::int64_t monotonic_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

}  // namespace ringmart::ipc
