#include "ipc/status_region.hpp"

#include <time.h>

#include <new>

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
                                                                  unsigned mode) {
  auto seg = ShmSegment::open_or_create(name, sizeof(StatusLayout), mode);
  if (!seg && seg.error() == std::errc::invalid_argument) {
    ShmSegment::unlink(name);
    seg = ShmSegment::open_or_create(name, sizeof(StatusLayout), mode);
  }
  if (!seg) return std::unexpected(seg.error());
  auto* l = static_cast<StatusLayout*>(seg->data());
  if (seg->created() || l->magic != kStatusMagic ||
      l->version.load(std::memory_order_acquire) != kStatusVersion) {
    new (l) StatusLayout{};
    l->magic = kStatusMagic;
    // SYNC: publish layout; pairs with the acquire in open().
    l->version.store(kStatusVersion, std::memory_order_release);
  }
  return StatusRegion(std::move(*seg));
}

std::expected<StatusRegion, std::error_code> StatusRegion::open(const std::string& name) {
  auto seg = ShmSegment::open(name);
  if (!seg) return std::unexpected(seg.error());
  auto* l = static_cast<StatusLayout*>(seg->data());
  if (seg->size() != sizeof(StatusLayout) || l->magic != kStatusMagic ||
      l->version.load(std::memory_order_acquire) != kStatusVersion) {
    return std::unexpected(std::make_error_code(std::errc::protocol_error));
  }
  return StatusRegion(std::move(*seg));
}

std::int64_t monotonic_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

}  // namespace ringmart::ipc
