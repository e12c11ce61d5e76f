#include "ipc/crash_point.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cstdio>
#include <cstdlib>

namespace ringmart::ipc {
namespace {

struct Armed {
  std::string point;
  std::string marker;  // path of the ".fired" file
  long nth = 1;
};
// Written once by set_crash_identity before other threads exist; relaxed is
// enough for the flag because the string fields are not changed afterwards.
Armed g_armed;
std::atomic<bool> g_enabled{false};
std::atomic<long> g_hits{0};

}  // namespace

void set_crash_identity(std::string_view process, const std::string& marker_dir) {
  const char* spec = std::getenv("RINGMART_CRASH_POINT");
  if (!spec || !*spec) return;
  std::string_view s(spec);
  const auto c1 = s.find(':');
  if (c1 == std::string_view::npos) {
    std::fprintf(stderr, "RINGMART_CRASH_POINT=%s: expected <point>:<process>[:<nth>]\n", spec);
    return;
  }
  const auto point = s.substr(0, c1);
  auto rest = s.substr(c1 + 1);
  long nth = 1;
  if (const auto c2 = rest.find(':'); c2 != std::string_view::npos) {
    const auto n = rest.substr(c2 + 1);
    auto [p, ec] = std::from_chars(n.data(), n.data() + n.size(), nth);
    if (ec != std::errc{} || p != n.data() + n.size() || nth < 1) {
      std::fprintf(stderr, "RINGMART_CRASH_POINT=%s: nth must be a positive integer\n", spec);
      return;
    }
    rest = rest.substr(0, c2);
  }
  if (rest != process) return;
  g_armed.point = std::string(point);
  g_armed.nth = nth;
  g_armed.marker =
      marker_dir + "/crash-" + std::string(point) + "-" + std::string(process) + ".fired";
  if (::access(g_armed.marker.c_str(), F_OK) == 0) return;  // fired in an earlier life
  g_enabled.store(true, std::memory_order_relaxed);
}

void crash_point(std::string_view point) {
  if (!g_enabled.load(std::memory_order_relaxed)) return;
  if (point != g_armed.point) return;
  if (g_hits.fetch_add(1, std::memory_order_relaxed) + 1 != g_armed.nth) return;
  const int fd = ::open(g_armed.marker.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0) return;  // another process of the same name fired it already
  ::close(fd);
  ::kill(::getpid(), SIGKILL);
}

}  // namespace ringmart::ipc
