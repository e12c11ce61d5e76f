#include "ipc/ring.hpp"

#include <cstring>
#include <new>

#include "ipc/crash_point.hpp"

namespace ringmart::ipc {
namespace {
constexpr std::uint32_t kKindData = 1;
constexpr std::uint32_t kKindPad = 2;
constexpr std::size_t kRecordHeader = 16;

struct RecordHeader {
  std::uint32_t length;
  std::uint32_t kind;
  std::uint64_t seq;
};
static_assert(sizeof(RecordHeader) == kRecordHeader);

constexpr std::size_t align8(std::size_t n) { return (n + 7) & ~std::size_t{7}; }

class RingCategory : public std::error_category {
 public:
  const char* name() const noexcept override { return "ringmart.ring"; }
  std::string message(int c) const override {
    switch (static_cast<RingError>(c)) {
      case RingError::full:
        return "ring full";
      case RingError::too_large:
        return "record larger than a quarter of the ring";
      case RingError::corrupt:
        return "corrupt ring record";
      case RingError::bad_layout:
        return "ring segment not initialised or of another version";
    }
    return "unknown ring error";
  }
};
}  // namespace

const std::error_category& ring_category() {
  static const RingCategory c;
  return c;
}
std::error_code make_error_code(RingError e) { return {static_cast<int>(e), ring_category()}; }

Ring::Ring(ShmSegment segment) : segment_(std::move(segment)) {
  header_ = static_cast<RingHeader*>(segment_.data());
  data_ = static_cast<std::byte*>(segment_.data()) + 256;
  capacity_ = header_->capacity;
  cursor_ = header_->read_pos.load(std::memory_order_acquire);
}

std::expected<Ring, std::error_code> Ring::create(const std::string& name,
                                                  std::size_t capacity_bytes, gid_t group) {
  if (capacity_bytes < 4096 || (capacity_bytes & (capacity_bytes - 1)) != 0) {
    return std::unexpected(std::make_error_code(std::errc::invalid_argument));
  }
  auto seg = ShmSegment::create(name, segment_size(capacity_bytes), group);
  if (!seg) return std::unexpected(seg.error());
  auto* h = static_cast<RingHeader*>(seg->data());
  new (h) RingHeader{};
  h->magic = kRingMagic;
  h->capacity = capacity_bytes;
  // SYNC: publish layout; pairs with the acquire load in open().
  h->version.store(kRingVersion, std::memory_order_release);
  return Ring(std::move(*seg));
}

std::expected<Ring, std::error_code> Ring::open(const std::string& name, ShmAccess access) {
  auto seg = ShmSegment::open(name, access);
  if (!seg) return std::unexpected(seg.error());
  if (seg->size() < 256) return std::unexpected(make_error_code(RingError::bad_layout));
  auto* h = static_cast<RingHeader*>(seg->data());
  // SYNC: observe layout.
  if (h->version.load(std::memory_order_acquire) != kRingVersion || h->magic != kRingMagic ||
      h->capacity < 4096 || (h->capacity & (h->capacity - 1)) != 0 ||
      Ring::segment_size(h->capacity) != seg->size()) {
    return std::unexpected(make_error_code(RingError::bad_layout));
  }
  return Ring(std::move(*seg));
}

std::expected<void, RingError> Ring::try_push(std::span<const std::byte> payload,
                                              std::uint64_t seq) {
  const std::size_t need = kRecordHeader + align8(payload.size());
  if (need > capacity_ / 4) return std::unexpected(RingError::too_large);
  // Relaxed: only this process writes write_pos.
  const std::uint64_t wpos = header_->write_pos.load(std::memory_order_relaxed);
  // SYNC: observe consumer's release of space (pairs with commit()).
  const std::uint64_t rpos = header_->read_pos.load(std::memory_order_acquire);
  const std::size_t offset = wpos & (capacity_ - 1);
  const std::size_t to_end = capacity_ - offset;
  const std::size_t pad = need > to_end ? to_end : 0;
  if (wpos + pad + need - rpos > capacity_) return std::unexpected(RingError::full);
  std::uint64_t pos = wpos;
  if (pad) {
    // A padding record may be only 8 bytes long (the last word of the buffer):
    // write just its length and kind, never past the end of the data area.
    const std::uint32_t pad_prefix[2] = {static_cast<std::uint32_t>(pad), kKindPad};
    std::memcpy(data_ + offset, pad_prefix, sizeof pad_prefix);
    pos += pad;
  }
  std::byte* rec = data_ + (pos & (capacity_ - 1));
  RecordHeader rh{static_cast<std::uint32_t>(payload.size()), kKindData, seq};
  std::memcpy(rec, &rh, sizeof rh);
  std::memcpy(rec + kRecordHeader, payload.data(), payload.size());
  crash_point("mid_ring_write");  // written, not yet published: the consumer must not see it
  // SYNC: publish record; pairs with the acquire load of write_pos in next().
  header_->write_pos.store(pos + need, std::memory_order_release);
  // Relaxed: pushed_seq is a restart hint for this producer only; a crash
  // before this store re-pushes one record, which the inbox deduplicates.
  if (seq > header_->pushed_seq.load(std::memory_order_relaxed)) {
    header_->pushed_seq.store(seq, std::memory_order_relaxed);
  }
  return {};
}

std::uint64_t Ring::pushed_seq() const {
  return header_->pushed_seq.load(std::memory_order_relaxed);
}
std::uint64_t Ring::acked_seq() const { return header_->acked_seq.load(std::memory_order_acquire); }

bool Ring::take_resend_request() {
  if (header_->resend_requested.load(std::memory_order_acquire) == 0) return false;
  header_->resend_requested.store(0, std::memory_order_relaxed);
  header_->pushed_seq.store(acked_seq(), std::memory_order_relaxed);
  return true;
}

std::expected<bool, RingError> Ring::next(RecordView& out) {
  // SYNC: observe record; pairs with the release store in try_push().
  const std::uint64_t wpos = header_->write_pos.load(std::memory_order_acquire);
  for (;;) {
    if (cursor_ == wpos) return false;
    if (wpos - cursor_ > capacity_ || (cursor_ & 7) != 0)
      return std::unexpected(RingError::corrupt);
    const std::size_t offset = cursor_ & (capacity_ - 1);
    // Length and kind first: a padding record may be the buffer's last 8 bytes.
    std::uint32_t prefix[2];
    std::memcpy(prefix, data_ + offset, sizeof prefix);
    if (prefix[1] == kKindPad) {
      if (prefix[0] != capacity_ - offset) return std::unexpected(RingError::corrupt);
      cursor_ += prefix[0];
      continue;
    }
    if (capacity_ - offset < kRecordHeader) return std::unexpected(RingError::corrupt);
    RecordHeader rh;
    std::memcpy(&rh, data_ + offset, sizeof rh);
    const std::size_t total = kRecordHeader + align8(rh.length);
    if (rh.kind != kKindData || total > capacity_ - offset || cursor_ + total > wpos) {
      return std::unexpected(RingError::corrupt);
    }
    out.seq = rh.seq;
    out.payload = {data_ + offset + kRecordHeader, rh.length};
    cursor_ += total;
    out.end_pos = cursor_;
    return true;
  }
}

void Ring::commit(std::uint64_t end_pos, std::uint64_t seq) {
  if (seq > header_->acked_seq.load(std::memory_order_relaxed)) {
    header_->acked_seq.store(seq, std::memory_order_release);
  }
  // SYNC: release space to the producer; pairs with the acquire in try_push().
  header_->read_pos.store(end_pos, std::memory_order_release);
}

void Ring::rewind() { cursor_ = header_->read_pos.load(std::memory_order_relaxed); }

void Ring::discard_and_request_resend() {
  const std::uint64_t wpos = header_->write_pos.load(std::memory_order_acquire);
  header_->read_pos.store(wpos, std::memory_order_release);
  cursor_ = wpos;
  header_->resend_requested.store(1, std::memory_order_release);
}

std::uint64_t Ring::fill_bytes() const {
  return header_->write_pos.load(std::memory_order_acquire) -
         header_->read_pos.load(std::memory_order_acquire);
}

}  // namespace ringmart::ipc
