#include "testkit/shm_names.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>

namespace ringmart::testkit {

std::string unique_shm_name(std::string_view prefix, std::string_view tag) {
  static std::atomic<unsigned> counter{0};
  return "/" + std::string(prefix) + "-" + std::to_string(::getpid()) + "-" + std::string(tag) +
         "-" + std::to_string(counter.fetch_add(1, std::memory_order_relaxed));
}

ShmNames::~ShmNames() {
  for (const auto& name : names_) ::shm_unlink(name.c_str());
}

const std::string& ShmNames::add(std::string_view tag) {
  names_.push_back(unique_shm_name(prefix_, tag));
  return names_.back();
}

}  // namespace ringmart::testkit
