// ringmart::ipc — a named POSIX shared-memory segment (shm_open + mmap), RAII.
//
// Caveats (read first):
// - Names are POSIX shm names ("/rm-1a2b3c4d-<random>-order-supervisor"); they
//   live in /dev/shm until unlink() or reboot. Deleting them while processes
//   run is a "reboot" of the transport: producers re-send their outboxes.
// - /dev/shm is one directory for every user of the host. A segment is only
//   trusted when this process made it (create(): O_CREAT|O_EXCL, never an
//   existing one) or when open() verified with fstat(2) that it belongs to the
//   expected owner and that no group or other permission bit is set. A name
//   another user created first is never adopted: create() fails with
//   file_exists and open() with ShmError::foreign_owner.
// - A segment's contents are only meaningful after its owner wrote the header
//   magic and version (last); see Ring and StatusRegion.
// - Not thread-safe to move/destroy while another thread uses the mapping.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <cstddef>
#include <expected>
#include <string>
#include <system_error>

namespace ringmart::ipc {

/// Why an existing segment (or, in the runtime, a file or directory of the
/// transport) was refused. Messages name no object: callers prefix the path.
enum class ShmError {
  foreign_owner = 1,  ///< st_uid is not the expected owner (squatted or swapped name)
  unsafe_mode,        ///< group or other may read/write it (mode & 077 != 0)
  empty,              ///< size 0: its creator died before ftruncate, or not a segment of ours
};
const std::error_category& shm_category();
std::error_code make_error_code(ShmError e);

class ShmSegment {
 public:
  /// Creates `name` afresh (shm_open O_CREAT|O_EXCL, see shm_open(3)) with
  /// `size_bytes` zero-filled bytes and `mode` (0600 by default; the process
  /// umask may only remove bits). Never opens an existing segment: a stale one
  /// must be unlink()ed by its owner first.
  /// Errors: file_exists when the name exists (ours or anyone's);
  /// invalid_argument for size 0 or a mode with group/other bits; errno of
  /// shm_open/ftruncate/mmap (permission_denied, no_space_on_device, ...).
  static std::expected<ShmSegment, std::error_code> create(const std::string& name,
                                                           std::size_t size_bytes,
                                                           unsigned mode = 0600);
  /// Opens an existing segment with its current size, read-write, after
  /// checking (fstat(2) on the open descriptor, so a name swapped between the
  /// check and the mapping cannot slip through) that it belongs to `owner`
  /// and has no group or other permission bit.
  /// Errors: no_such_file_or_directory when absent; ShmError::foreign_owner,
  /// ShmError::unsafe_mode, ShmError::empty; errno of shm_open/mmap
  /// (permission_denied for another user's 0600 segment).
  static std::expected<ShmSegment, std::error_code> open(const std::string& name,
                                                         uid_t owner = ::geteuid());
  /// Removes the name (existing mappings stay valid). Absent name is not an
  /// error; another user's name in the sticky /dev/shm is not removed (EPERM).
  static void unlink(const std::string& name);

  ShmSegment() = default;
  ShmSegment(ShmSegment&& other) noexcept;
  ShmSegment& operator=(ShmSegment&& other) noexcept;
  ShmSegment(const ShmSegment&) = delete;
  ShmSegment& operator=(const ShmSegment&) = delete;
  ~ShmSegment();

  void* data() const { return data_; }
  std::size_t size() const { return size_; }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  void* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace ringmart::ipc

template <>
struct std::is_error_code_enum<ringmart::ipc::ShmError> : std::true_type {};
