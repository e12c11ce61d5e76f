// ringmart::testkit::ShmNames — POSIX shared-memory names for one test or
// benchmark run, unlinked at the end so a run leaves nothing in /dev/shm.
#pragma once

#include <deque>
#include <string>
#include <string_view>
#include <utility>

namespace ringmart::testkit {

/// "/<prefix>-<pid>-<tag>-<n>", n counting up from 0 per process: unique per
/// process and per call, so parallel runs and repeated calls never collide.
/// A valid shm_open(3) name as long as prefix and tag hold no '/'.
/// Thread-safe.
std::string unique_shm_name(std::string_view prefix, std::string_view tag);

/// Makes unique names (unique_shm_name) and shm_unlink(3)s each of them when
/// destroyed; a name that was never created is skipped (ENOENT is ignored).
/// Thread-safety: one object on one thread.
class ShmNames {
 public:
  explicit ShmNames(std::string prefix) : prefix_(std::move(prefix)) {}
  ~ShmNames();
  ShmNames(const ShmNames&) = delete;
  ShmNames& operator=(const ShmNames&) = delete;

  /// A new name for `tag`; the reference stays valid for this object's life.
  const std::string& add(std::string_view tag);

 private:
  std::string prefix_;
  std::deque<std::string> names_;  // a deque: add()'s references stay valid
};

}  // namespace ringmart::testkit
