#include "ipc/shm_segment.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <utility>

namespace ringmart::ipc {
namespace {
std::error_code last_error() { return {errno, std::generic_category()}; }

class ShmCategory : public std::error_category {
 public:
  const char* name() const noexcept override { return "ringmart.shm"; }
  std::string message(int c) const override {
    switch (static_cast<ShmError>(c)) {
      case ShmError::foreign_owner:
        return "owned by another user (refused)";
      case ShmError::unsafe_mode:
        return "accessible to group or others (refused)";
      case ShmError::empty:
        return "empty or not a regular file (refused)";
    }
    return "unknown shared-memory error";
  }
};

/// Closes the descriptor on every path: the mapping outlives it (mmap(2)).
struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

std::expected<void*, std::error_code> map(int fd, std::size_t size) {
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return std::unexpected(last_error());
  return p;
}
}  // namespace

const std::error_category& shm_category() {
  static const ShmCategory c;
  return c;
}
std::error_code make_error_code(ShmError e) { return {static_cast<int>(e), shm_category()}; }

std::expected<ShmSegment, std::error_code> ShmSegment::create(const std::string& name,
                                                              std::size_t size_bytes, gid_t group) {
  if (size_bytes == 0) return std::unexpected(std::make_error_code(std::errc::invalid_argument));
  // glibc's shm_open adds O_NOFOLLOW and O_CLOEXEC. Created 0600: the group
  // bits come only after the group is set.
  Fd fd{::shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600)};
  if (fd.fd < 0) return std::unexpected(last_error());
  if (group != kNoGroup &&
      (::fchown(fd.fd, static_cast<uid_t>(-1), group) != 0 || ::fchmod(fd.fd, 0660) != 0)) {
    auto ec = last_error();
    ::shm_unlink(name.c_str());
    return std::unexpected(ec);
  }
  if (::ftruncate(fd.fd, static_cast<off_t>(size_bytes)) != 0) {
    auto ec = last_error();
    ::shm_unlink(name.c_str());
    return std::unexpected(ec);
  }
  auto p = map(fd.fd, size_bytes);
  if (!p) {
    ::shm_unlink(name.c_str());
    return std::unexpected(p.error());
  }
  ShmSegment s;
  s.name_ = name;
  s.data_ = *p;
  s.size_ = size_bytes;
  return s;
}

std::expected<ShmSegment, std::error_code> ShmSegment::open(const std::string& name,
                                                            ShmAccess access) {
  Fd fd{::shm_open(name.c_str(), O_RDWR, 0)};
  if (fd.fd < 0) return std::unexpected(last_error());
  struct stat st {};
  if (::fstat(fd.fd, &st) != 0) return std::unexpected(last_error());
  if (st.st_uid != access.owner) return std::unexpected(make_error_code(ShmError::foreign_owner));
  const bool operators = access.group != kNoGroup && st.st_gid == access.group;
  if ((st.st_mode & (operators ? 017 : 077)) != 0) {
    return std::unexpected(make_error_code(ShmError::unsafe_mode));
  }
  if (!S_ISREG(st.st_mode) || st.st_size <= 0) {
    return std::unexpected(make_error_code(ShmError::empty));
  }
  const auto size = static_cast<std::size_t>(st.st_size);
  auto p = map(fd.fd, size);
  if (!p) return std::unexpected(p.error());
  ShmSegment s;
  s.name_ = name;
  s.data_ = *p;
  s.size_ = size;
  return s;
}

void ShmSegment::unlink(const std::string& name) { ::shm_unlink(name.c_str()); }

ShmSegment::ShmSegment(ShmSegment&& other) noexcept
    : name_(std::move(other.name_)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

ShmSegment& ShmSegment::operator=(ShmSegment&& other) noexcept {
  if (this != &other) {
    if (data_) ::munmap(data_, size_);
    name_ = std::move(other.name_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

ShmSegment::~ShmSegment() {
  if (data_) ::munmap(data_, size_);
}

}  // namespace ringmart::ipc
