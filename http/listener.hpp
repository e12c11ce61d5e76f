// Listening AF_UNIX stream sockets, bound by path or received from another
// process. A server that binds its own socket refuses connections from the
// moment it dies until it binds again; a socket bound once and handed to each
// new server process (systemd socket activation, sd_listen_fds(3), and the
// supervisor's hand-over to the gateway) keeps accepting into its listen
// backlog meanwhile, so a restart refuses nobody.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

namespace ringmart::http {

/// A socket bound at a path by bind_unix_socket(): its descriptor (owned by
/// the caller) and the identity of the socket file it created, so that only
/// that file is ever unlinked.
struct BoundSocket {
  int fd = -1;
  dev_t dev = 0;
  ino_t ino = 0;
};

/// Creates an AF_UNIX SOCK_STREAM socket (close-on-exec) bound at `path`,
/// chmod `mode` (so the directory's group/mode rules and this one decide who
/// may connect), listening with the kernel's maximum backlog (SOMAXCONN).
/// A socket file no server listens on (left by a crash) is unlinked first.
/// Throws std::system_error: EADDRINUSE when a server listens on `path`,
/// EEXIST when `path` is not a socket, ENAMETOOLONG for a path longer than
/// sun_path (108 bytes), or the errno of socket/bind/chmod/listen(2)
/// (nothing is left at `path` then). Not thread-safe against another binder
/// of the same path (the caller holds a lock, e.g. the runtime directory's).
BoundSocket bind_unix_socket(const std::string& path, unsigned mode);

/// Unlinks `path` if it still is the socket file `bound` created (a later
/// server's file at the same path is left alone). Never throws.
void unlink_bound_socket(const std::string& path, const BoundSocket& bound);

/// Checks that `fd` is a listening AF_UNIX SOCK_STREAM socket (getsockopt
/// SO_DOMAIN / SO_TYPE / SO_ACCEPTCONN), as a received descriptor must be
/// before it is served. Throws std::system_error: EBADF (not open), ENOTSOCK,
/// EAFNOSUPPORT (another family), EPROTOTYPE (not a stream), EINVAL (not
/// listening). `what` names the descriptor in the message.
void check_unix_listener(int fd, const std::string& what);

/// The same check, also accepting a listening AF_INET/AF_INET6 stream socket
/// when `allow_tcp` (the optional /metrics listener). Throws as
/// check_unix_listener.
void check_stream_listener(int fd, const std::string& what, bool allow_tcp);

/// A TCP listening address, parsed.
struct TcpAddress {
  std::string host;  ///< the IP address, normalised ("127.0.0.1", "::1")
  std::uint16_t port = 0;
  bool loopback = false;  ///< 127.0.0.0/8 or ::1
};
/// Parses "IPV4:PORT" or "[IPV6]:PORT" (literal addresses only: no host
/// names, so nothing depends on a resolver at start). Throws
/// std::invalid_argument naming what is wrong (no port, port outside
/// 1..65535, not an IP address). Pure; thread-safe.
TcpAddress parse_tcp_address(const std::string& address);
/// Creates a TCP socket (close-on-exec, SO_REUSEADDR) bound at `address`
/// (parse_tcp_address) and listening with backlog SOMAXCONN; returns its
/// descriptor, owned by the caller. Throws std::invalid_argument for a
/// malformed address, std::system_error with the errno of socket, bind or
/// listen(2) (EADDRINUSE, EACCES, EAFNOSUPPORT under a seccomp filter that
/// allows AF_UNIX only, ...).
int bind_tcp_listener(const std::string& address);

}  // namespace ringmart::http
