// The gateway's listening sockets, held by the supervisor for as long as it
// runs and handed to every gateway it starts, so a gateway that dies or
// restarts refuses no connection: clients wait in the listen backlog until
// the next gateway accepts (http/listener.hpp).
#pragma once

#include <expected>
#include <string>
#include <vector>

#include "http/listener.hpp"

namespace ringmart::supervisor {

/// One descriptor handed to a child, by the protocol of sd_listen_fds(3):
/// the child finds it at fd 3 + its position, named in LISTEN_FDNAMES.
struct HandedSocket {
  int fd = -1;
  std::string name;  ///< "api", "admin" or "metrics" (systemd's FileDescriptorName=)
};

class GatewaySockets {
 public:
  /// The file names in the runtime directory and the names the sockets are
  /// handed over by (and received from systemd by: FileDescriptorName=).
  static constexpr const char* kApiName = "api";
  static constexpr const char* kAdminName = "admin";
  /// The optional TCP listener for GET /metrics only (`[metrics] listen`, or
  /// a socket unit with FileDescriptorName=metrics).
  static constexpr const char* kMetricsName = "metrics";

  /// Takes the sockets systemd passed (sd_listen_fds_with_names(3), which
  /// also unsets LISTEN_FDS so no other child inherits them): a descriptor
  /// named "api" or "admin" must be a listening AF_UNIX stream socket. A
  /// name systemd did not pass is bound here at RUNDIR/api.sock or
  /// RUNDIR/admin.sock, mode 0660 (http::bind_unix_socket; run without
  /// systemd). Errors, as text: a passed descriptor with another name or not
  /// a listening AF_UNIX stream socket, or a bind failure (another server
  /// listens there, permission). Call once, with the runtime directory's
  /// transport lock held and the previous generation retired (its gateway
  /// could still listen on a socket file the previous supervisor bound).
  /// "metrics" is optional: a listening TCP (or AF_UNIX) stream socket when
  /// systemd passes one, else bound at `metrics_listen` ("HOST:PORT",
  /// http::bind_tcp_listener) when that is not empty, else none. Errors also:
  /// a malformed `metrics_listen`, or its bind failing (address in use; the
  /// hardened unit's RestrictAddressFamilies=AF_UNIX: pass it from a socket
  /// unit instead, systemd/README.md).
  static std::expected<GatewaySockets, std::string> acquire(const std::string& runtime_dir,
                                                            const std::string& metrics_listen = "");

  GatewaySockets(GatewaySockets&& other) noexcept;
  GatewaySockets& operator=(GatewaySockets&&) = delete;
  GatewaySockets(const GatewaySockets&) = delete;
  /// Closes the sockets; unlinks the files it bound (never systemd's).
  ~GatewaySockets();

  /// {api, admin[, metrics]}, for ProcessManager::hand_sockets.
  std::vector<HandedSocket> handover() const;
  /// "systemd" when every socket came from systemd, else "bound".
  const char* origin() const { return from_systemd_ >= 2 ? "systemd" : "bound"; }

 private:
  struct Socket {
    std::string name;
    std::string path;
    http::BoundSocket bound;  ///< fd always; dev/ino only when bound here
    bool bound_here = false;
  };
  GatewaySockets() = default;
  std::vector<Socket> sockets_;
  int from_systemd_ = 0;
};

}  // namespace ringmart::supervisor
