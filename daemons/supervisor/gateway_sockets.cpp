#include "daemons/supervisor/gateway_sockets.hpp"

#include <fcntl.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cstdlib>
#include <system_error>

namespace ringmart::supervisor {

std::expected<GatewaySockets, std::string> GatewaySockets::acquire(
    const std::string& runtime_dir, const std::string& metrics_listen) {
  GatewaySockets sockets;
  for (const char* name : {kApiName, kAdminName}) {
    sockets.sockets_.push_back({name, runtime_dir + "/" + name + ".sock", {}, false});
  }
  sockets.sockets_.push_back({kMetricsName, metrics_listen, {}, false});
  char** names = nullptr;
  const int passed = sd_listen_fds_with_names(1, &names);
  if (passed < 0) {
    return std::unexpected(std::string("cannot read the sockets systemd passed: ") +
                           std::system_category().message(-passed));
  }
  std::string error;
  for (int i = 0; i < passed; ++i) {
    const int fd = SD_LISTEN_FDS_START + i;
    const std::string name = names[i];
    std::free(names[i]);
    Socket* target = nullptr;
    for (auto& s : sockets.sockets_) {
      if (s.name == name && s.bound.fd < 0) target = &s;
    }
    if (!target) {
      ::close(fd);
      if (error.empty()) {
        error = "systemd passed a socket named \"" + name +
                "\" (expected FileDescriptorName=api and admin, and optionally metrics, once each)";
      }
      continue;
    }
    target->bound.fd = fd;
    try {
      http::check_stream_listener(fd, "the socket systemd passed as \"" + name + "\"",
                                  name == kMetricsName);
    } catch (const std::system_error& e) {
      if (error.empty()) error = e.what();
    }
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);  // handed over explicitly, never inherited by accident
    if (name != kMetricsName) ++sockets.from_systemd_;
  }
  std::free(names);
  if (!error.empty()) return std::unexpected(error);
  for (auto& s : sockets.sockets_) {
    if (s.bound.fd >= 0) continue;
    try {
      if (s.name != kMetricsName) {
        s.bound = http::bind_unix_socket(s.path, 0660);
        s.bound_here = true;
      } else if (!s.path.empty()) {
        s.bound.fd = http::bind_tcp_listener(s.path);  // nothing to unlink
      }
    } catch (const std::exception& e) {
      return std::unexpected(s.name == kMetricsName ? "[metrics] listen: " + std::string(e.what())
                                                    : std::string(e.what()));
    }
  }
  return sockets;
}

GatewaySockets::GatewaySockets(GatewaySockets&& other) noexcept
    : sockets_(std::move(other.sockets_)), from_systemd_(other.from_systemd_) {
  other.sockets_.clear();
}

GatewaySockets::~GatewaySockets() {
  for (auto& s : sockets_) {
    if (s.bound_here) http::unlink_bound_socket(s.path, s.bound);
    if (s.bound.fd >= 0) ::close(s.bound.fd);
  }
}

std::vector<HandedSocket> GatewaySockets::handover() const {
  std::vector<HandedSocket> out;
  for (const auto& s : sockets_) {
    if (s.bound.fd >= 0) out.push_back({s.bound.fd, s.name});
  }
  return out;
}

}  // namespace ringmart::supervisor
