// The GoogleTest fixture part both two-process suites share: a status region
// and rings under names of this run, and the peer's key=value arguments.
// Test-only (includes gtest).
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "ipc/ring.hpp"
#include "ipc/status_region.hpp"
#include "testkit/shm_names.hpp"
#include "tests/multiprocess/harness.hpp"

namespace ringmart::mp {

/// "key=value", the form of ringmart-mp-peer's arguments.
inline std::string arg(const char* key, const std::string& value) {
  return std::string(key) + "=" + value;
}
inline std::string arg(const char* key, std::uint64_t value) {
  return arg(key, std::to_string(value));
}

/// `Base` (::testing::Test or a TestWithParam) with the shared memory of one
/// test: SetUp creates the status region (status_name_, status_); make_ring
/// creates rings. Every name is unlinked when the fixture is destroyed, after
/// the test body's peers are gone. Single-threaded, like the tests.
template <class Base>
class SharedMemoryTest : public Base {
 protected:
  void SetUp() override {
    status_name_ = shm_.add("status");
    auto s = ipc::StatusRegion::create(status_name_);
    ASSERT_TRUE(s) << s.error().message();
    status_ = std::move(*s);
  }

  /// A new ring of `capacity` bytes named after `tag`; a failure fails the
  /// test and returns an empty Ring.
  ipc::Ring make_ring(const std::string& tag, std::size_t capacity) {
    auto r = ipc::Ring::create(shm_.add(tag), capacity);
    EXPECT_TRUE(r) << r.error().message();
    return r ? std::move(*r) : ipc::Ring{};
  }

  testkit::ShmNames shm_{kMpPrefix};
  std::string status_name_;
  ipc::StatusRegion status_;
};

}  // namespace ringmart::mp
