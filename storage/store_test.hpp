// ringmart::storage — the GoogleTest fixture of the domain store tests: a
// real LMDB environment in a fresh temporary directory with one store's
// tables opened in it. Test-only (includes gtest; link ringmart::testkit);
// not part of the library.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "storage/lmdb.hpp"
#include "testkit/temp_dir.hpp"

namespace ringmart::storage::testing {

/// The directory is TMPDIR/ringmart-store-XXXXXX (testkit::TempDir), removed
/// with the fixture. SetUp: opens an Env there (map kMapSizeBytes, durability
/// `process`) and `Store::open(txn)` in one committed write transaction; a
/// failure of any step fails the test. TearDown: closes the Env. `Store` is a
/// domain store (default-constructible, `static std::expected<Store,
/// std::error_code> open(Txn&)`). Single-threaded, like the tests.
template <class Store>
class StoreTest : public ::testing::Test {
 protected:
  static constexpr std::uint64_t kMapSizeBytes = 64ull << 20;

  void SetUp() override {
    auto env = Env::open({.path = dir_.path(), .map_size_bytes = kMapSizeBytes});
    ASSERT_TRUE(env) << env.error().message();
    env_ = std::move(*env);
    auto txn = Txn::begin_write(*env_);
    ASSERT_TRUE(txn) << txn.error().message();
    auto store = Store::open(*txn);
    ASSERT_TRUE(store) << store.error().message();
    store_ = std::move(*store);
    ASSERT_FALSE(txn->commit());
  }

  /// Runs `fn` in a write transaction and commits it (a failed begin or
  /// commit fails the test).
  void write(const std::function<void(Txn&)>& fn) {
    auto txn = Txn::begin_write(*env_);
    ASSERT_TRUE(txn) << txn.error().message();
    fn(*txn);
    ASSERT_FALSE(txn->commit());
  }

  void TearDown() override { env_.reset(); }

  testkit::TempDir dir_{"ringmart-store"};  ///< the environment's; first: removed last
  std::unique_ptr<Env> env_;                ///< open from SetUp to TearDown
  Store store_;                             ///< its tables, opened in env_
};

}  // namespace ringmart::storage::testing
