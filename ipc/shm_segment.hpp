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
  unsafe_mode,        ///< others may use it, or a group other than ShmAccess::group (see there)
  empty,              ///< size 0: its creator died before ftruncate, or not a segment of ours
};
const std::error_category& shm_category();
std::error_code make_error_code(ShmError e);

/// No operators' group: a segment is its owner's only (mode 0600).
inline constexpr gid_t kNoGroup = static_cast<gid_t>(-1);

/// Whose a segment must be for open() to map it: `owner`'s, and either
/// nobody else's (no group or other permission bit) or, when `group` is set,
/// also read-write for the members of that one group (mode 0660, st_gid ==
/// group): the operators' group of the runtime (`[runtime] operator_group`),
/// whose members run ringmartctl. Other bits are refused either way.
struct ShmAccess {
  ShmAccess(uid_t owner_uid = ::geteuid(),
            gid_t operators = kNoGroup)  // NOLINT: a uid is an access
      : owner(owner_uid), group(operators) {}
  uid_t owner;
  gid_t group;
  /// The mode segments are created with: 0600, or 0660 with a group.
  unsigned mode() const { return group == kNoGroup ? 0600 : 0660; }
};

class ShmSegment {
 public:
  /// Creates `name` afresh (shm_open O_CREAT|O_EXCL, see shm_open(3)) with
  /// `size_bytes` zero-filled bytes, owned by this process's euid: mode 0600,
  /// or with `group` set, group `group` and mode 0660 (fchown/fchmod on the
  /// descriptor, so the umask does not matter). Never opens an existing
  /// segment: a stale one must be unlink()ed by its owner first.
  /// Errors: file_exists when the name exists (ours or anyone's);
  /// invalid_argument for size 0; errno of shm_open/fchown (permission_denied:
  /// not a member of `group`)/ftruncate/mmap (no_space_on_device, ...).
  static std::expected<ShmSegment, std::error_code> create(const std::string& name,
                                                           std::size_t size_bytes,
                                                           gid_t group = kNoGroup);
  /// Opens an existing segment with its current size, read-write, after
  /// checking (fstat(2) on the open descriptor, so a name swapped between the
  /// check and the mapping cannot slip through) that it is `access.owner`'s
  /// with no other permission bit and no group bit, unless its group is
  /// `access.group` (ShmAccess).
  /// Errors: no_such_file_or_directory when absent; ShmError::foreign_owner,
  /// ShmError::unsafe_mode, ShmError::empty; errno of shm_open/mmap
  /// (permission_denied for another user's 0600 segment).
  static std::expected<ShmSegment, std::error_code> open(const std::string& name,
                                                         ShmAccess access = {});
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
