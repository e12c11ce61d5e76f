#include "ipc/shm_segment.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <utility>

namespace ringmart::ipc {
namespace {
std::error_code last_error() { return {errno, std::generic_category()}; }

std::expected<void*, std::error_code> map(int fd, std::size_t size) {
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return std::unexpected(last_error());
  return p;
}
}  // namespace

std::expected<ShmSegment, std::error_code> ShmSegment::open_or_create(const std::string& name,
                                                                      std::size_t size_bytes,
                                                                      unsigned mode) {
  bool created = true;
  int fd = ::shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL, mode);
  if (fd < 0 && errno == EEXIST) {
    created = false;
    fd = ::shm_open(name.c_str(), O_RDWR, mode);
  }
  if (fd < 0) return std::unexpected(last_error());
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    auto ec = last_error();
    ::close(fd);
    return std::unexpected(ec);
  }
  // A creator that died between O_CREAT and ftruncate leaves size 0: finish its job.
  if (st.st_size == 0) {
    if (::ftruncate(fd, static_cast<off_t>(size_bytes)) != 0) {
      auto ec = last_error();
      ::close(fd);
      return std::unexpected(ec);
    }
    created = true;
  } else if (static_cast<std::size_t>(st.st_size) != size_bytes) {
    ::close(fd);
    return std::unexpected(std::make_error_code(std::errc::invalid_argument));
  }
  auto p = map(fd, size_bytes);
  ::close(fd);
  if (!p) return std::unexpected(p.error());
  ShmSegment s;
  s.name_ = name;
  s.data_ = *p;
  s.size_ = size_bytes;
  s.created_ = created;
  return s;
}

std::expected<ShmSegment, std::error_code> ShmSegment::open(const std::string& name) {
  int fd = ::shm_open(name.c_str(), O_RDWR, 0);
  if (fd < 0) return std::unexpected(last_error());
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_size == 0) {
    ::close(fd);
    return std::unexpected(std::make_error_code(std::errc::no_such_file_or_directory));
  }
  auto p = map(fd, static_cast<std::size_t>(st.st_size));
  ::close(fd);
  if (!p) return std::unexpected(p.error());
  ShmSegment s;
  s.name_ = name;
  s.data_ = *p;
  s.size_ = static_cast<std::size_t>(st.st_size);
  return s;
}

void ShmSegment::unlink(const std::string& name) { ::shm_unlink(name.c_str()); }

ShmSegment::ShmSegment(ShmSegment&& other) noexcept
    : name_(std::move(other.name_)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      created_(other.created_) {}

ShmSegment& ShmSegment::operator=(ShmSegment&& other) noexcept {
  if (this != &other) {
    if (data_) ::munmap(data_, size_);
    name_ = std::move(other.name_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    created_ = other.created_;
  }
  return *this;
}

ShmSegment::~ShmSegment() {
  if (data_) ::munmap(data_, size_);
}

}  // namespace ringmart::ipc
