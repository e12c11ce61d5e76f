// Polling for a condition that another process makes true.
#pragma once

#include <chrono>
#include <thread>

namespace ringmart::testkit {

/// Calls `pred` every 20 ms until it returns true or `timeout_ms` passed;
/// returns its last answer. For conditions another process makes true (a
/// daemon restarted, a saga finished), not for timing anything.
template <class Pred>
bool eventually(Pred pred, int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

}  // namespace ringmart::testkit
