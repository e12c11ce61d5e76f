// ringmart::ipc — single-producer single-consumer ring of length-prefixed
// records in POSIX shared memory, one per directed channel (sender -> receiver).
//
// Caveats (read first):
// - Exactly one producer process and one consumer process per ring; the
//   daemon runtime guarantees it with a per-daemon lock file. No mutex is ever
//   held across processes.
// - Records are 8-byte aligned and contiguous (never split at the wrap), so a
//   Cap'n Proto message can be read in place. A record larger than
//   capacity/4 is rejected (RingError::too_large).
// - The consumer reads ahead with next() and acknowledges with commit() only
//   after its LMDB transaction committed (consume after commit). A crash before
//   commit() re-reads the same records after restart.
// - A producer killed mid-write leaves an unpublished record (write_pos not
//   advanced): invisible to the consumer and overwritten on restart.
//
// Layout (little-endian, offsets in bytes):
//
//   0    RingHeader: magic, version (written last = "ready"), capacity,
//        producer line: write_pos, pushed_seq; consumer line: read_pos,
//        acked_seq, resend_requested
//   256  data[capacity]   capacity is a power of two
//
//   record at (pos % capacity): | u32 length | u32 kind | u64 seq | payload… pad to 8 |
//   kind 1 = data, 2 = padding to the end of the buffer (wrap marker; only its
//   first 8 bytes, length and kind, are written: it may be the last word).
//
// Positions are monotonically increasing byte counts (never wrapped), so
// write_pos - read_pos is the fill level.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <span>
#include <string>
#include <system_error>

#include "ipc/shm_segment.hpp"

namespace ringmart::ipc {

inline constexpr std::uint32_t kRingMagic = 0x52494e47;  // "RING"
inline constexpr std::uint32_t kRingVersion = 1;         // bump on layout change

struct alignas(64) RingHeader {
  std::uint32_t magic;
  std::atomic<std::uint32_t> version;  // 0 until the creator finished initialising
  std::uint64_t capacity;
  alignas(64) std::atomic<std::uint64_t> write_pos;  // producer-owned
  std::atomic<std::uint64_t> pushed_seq;             // producer: highest seq published
  alignas(64) std::atomic<std::uint64_t> read_pos;   // consumer-owned
  std::atomic<std::uint64_t> acked_seq;              // consumer: highest seq committed
  std::atomic<std::uint32_t> resend_requested;       // consumer -> producer (corruption)
};
static_assert(sizeof(RingHeader) <= 256);

enum class RingError {
  full = 1,    ///< not enough free space now: back-pressure, retry later
  too_large,   ///< record can never fit (> capacity / 4)
  corrupt,     ///< a record header is impossible (length/kind/alignment)
  bad_layout,  ///< segment magic/version/capacity unusable
};
const std::error_category& ring_category();
std::error_code make_error_code(RingError e);

/// One record seen by the consumer; `payload` points into shared memory and is
/// valid until the consumer commits past it.
struct RecordView {
  std::uint64_t seq = 0;
  std::span<const std::byte> payload;  ///< 8-byte aligned start
  std::uint64_t end_pos = 0;           ///< position just after this record
};

class Ring {
 public:
  /// Total segment size for a data capacity.
  static std::size_t segment_size(std::size_t capacity_bytes) { return 256 + capacity_bytes; }

  /// Creates a new ring segment (ShmSegment::create: never an existing name;
  /// mode 0600, or 0660 for `group`)
  /// and initialises its header. `capacity_bytes` must be a power of two >= 4096.
  /// Errors: file_exists when the name exists (unlink a stale ring first);
  /// invalid_argument for a bad capacity; errno values from shm.
  static std::expected<Ring, std::error_code> create(const std::string& name,
                                                     std::size_t capacity_bytes,
                                                     gid_t group = kNoGroup);
  /// Opens an existing ring that `access` allows (see ShmSegment::open).
  /// Errors: no_such_file_or_directory; ShmError::foreign_owner / unsafe_mode /
  /// empty; RingError::bad_layout when not (yet) initialised, of another major
  /// version, or with a capacity that does not match its size.
  static std::expected<Ring, std::error_code> open(const std::string& name, ShmAccess access = {});

  Ring() = default;

  // ---- producer ----
  /// Appends one record with channel sequence `seq` and publishes it.
  /// Errors: RingError::full (nothing written), RingError::too_large.
  std::expected<void, RingError> try_push(std::span<const std::byte> payload, std::uint64_t seq);
  /// Highest seq published (persisted in the header across producer restarts).
  std::uint64_t pushed_seq() const;
  /// Highest seq the consumer acknowledged (committed).
  std::uint64_t acked_seq() const;
  /// Consumer asked for a re-send from acked_seq()+1 (it discarded a corrupt
  /// ring); returns true once and resets the request.
  bool take_resend_request();

  // ---- consumer ----
  /// Reads the record after the consumer's private cursor without consuming.
  /// Returns false when none is published. Errors: RingError::corrupt.
  std::expected<bool, RingError> next(RecordView& out);
  /// True when a record is published beyond the private cursor (cheap poll).
  bool readable() const { return header_->write_pos.load(std::memory_order_acquire) != cursor_; }
  /// Acknowledges everything up to `end_pos` (from a RecordView) with highest
  /// seq `seq`: the producer may reuse the space and prune its outbox.
  void commit(std::uint64_t end_pos, std::uint64_t seq);
  /// Moves the private cursor back to the last commit (the batch was not applied).
  void rewind();
  /// Drops everything published (after corruption) and asks the producer to
  /// re-send from acked_seq()+1.
  void discard_and_request_resend();

  // ---- both / observers ----
  std::size_t capacity() const { return capacity_; }
  std::uint64_t fill_bytes() const;
  const std::string& name() const { return segment_.name(); }
  bool valid() const { return header_ != nullptr; }

 private:
  explicit Ring(ShmSegment segment);
  ShmSegment segment_;
  RingHeader* header_ = nullptr;
  std::byte* data_ = nullptr;
  std::size_t capacity_ = 0;
  std::uint64_t cursor_ = 0;  // consumer's read-ahead position (process-local)
};

}  // namespace ringmart::ipc

template <>
struct std::is_error_code_enum<ringmart::ipc::RingError> : std::true_type {};
