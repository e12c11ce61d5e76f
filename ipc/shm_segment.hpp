// ringmart::ipc — a named POSIX shared-memory segment (shm_open + mmap), RAII.
//
// Caveats (read first):
// - Names are POSIX shm names ("/rm-1a2b3c4d-order-supervisor"); they live in
//   /dev/shm until unlink() or reboot. Deleting them while processes run is a
//   "reboot" of the transport: producers re-send their outboxes.
// - A segment's contents are only meaningful after its owner wrote the header
//   magic and version (last); see Ring and StatusRegion.
// - Not thread-safe to move/destroy while another thread uses the mapping.
#pragma once

#include <cstddef>
#include <expected>
#include <string>
#include <system_error>

namespace ringmart::ipc {

class ShmSegment {
 public:
  /// Opens `name` or creates it with `size_bytes` (zero-filled) and `mode`
  /// (0600 by default). `created` tells which happened. An existing segment of
  /// another size is an error (std::errc::invalid_argument): the caller decides
  /// whether to unlink and recreate.
  /// Errors: errno values of shm_open/ftruncate/mmap (permission_denied, ...).
  static std::expected<ShmSegment, std::error_code> open_or_create(const std::string& name,
                                                                   std::size_t size_bytes,
                                                                   unsigned mode = 0600);
  /// Opens an existing segment with its current size.
  /// Errors: no_such_file_or_directory when absent; errno of shm_open/mmap.
  static std::expected<ShmSegment, std::error_code> open(const std::string& name);
  /// Removes the name (existing mappings stay valid). Absent name is not an error.
  static void unlink(const std::string& name);

  ShmSegment() = default;
  ShmSegment(ShmSegment&& other) noexcept;
  ShmSegment& operator=(ShmSegment&& other) noexcept;
  ShmSegment(const ShmSegment&) = delete;
  ShmSegment& operator=(const ShmSegment&) = delete;
  ~ShmSegment();

  void* data() const { return data_; }
  std::size_t size() const { return size_; }
  bool created() const { return created_; }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  void* data_ = nullptr;
  std::size_t size_ = 0;
  bool created_ = false;
};

}  // namespace ringmart::ipc
