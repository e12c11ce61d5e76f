#include "http/listener.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <stdexcept>
#include <system_error>

namespace ringmart::http {
namespace {

[[noreturn]] void throw_errno(int err, const std::string& what) {
  throw std::system_error(err, std::generic_category(), what);
}

// A close-on-exec AF_UNIX stream socket; sockaddr for `path` in `addr`.
int unix_socket(const std::string& path, sockaddr_un& addr) {
  addr = {};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    throw_errno(ENAMETOOLONG, "socket path too long: " + path);
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw_errno(errno, "socket " + path);
  return fd;
}

// True when a server accepts (or queues) connections at `path`.
bool someone_listens(const std::string& path) {
  sockaddr_un addr;
  const int fd = unix_socket(path, addr);
  ::fcntl(fd, F_SETFL, O_NONBLOCK);
  const int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  const int err = errno;
  ::close(fd);
  // EAGAIN: a listener whose backlog is full is still a live listener.
  return rc == 0 || err == EAGAIN;
}

}  // namespace

BoundSocket bind_unix_socket(const std::string& path, unsigned mode) {
  struct stat sb {};
  if (::lstat(path.c_str(), &sb) == 0) {
    if (!S_ISSOCK(sb.st_mode)) throw_errno(EEXIST, "not a socket: " + path);
    if (someone_listens(path)) throw_errno(EADDRINUSE, "another server is listening on " + path);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) throw_errno(errno, "unlink " + path);
  }
  sockaddr_un addr;
  BoundSocket bound;
  bound.fd = unix_socket(path, addr);
  auto fail = [&](const char* call, bool unlink_file) {
    const int err = errno;
    if (unlink_file) ::unlink(path.c_str());
    ::close(bound.fd);
    throw_errno(err, std::string(call) + " " + path);
  };
  if (::bind(bound.fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    fail("bind", false);
  }
  if (::stat(path.c_str(), &sb) != 0) fail("stat", true);
  bound.dev = sb.st_dev;
  bound.ino = sb.st_ino;
  if (::chmod(path.c_str(), static_cast<mode_t>(mode)) != 0) fail("chmod", true);
  if (::listen(bound.fd, SOMAXCONN) != 0) fail("listen", true);
  return bound;
}

void unlink_bound_socket(const std::string& path, const BoundSocket& bound) {
  struct stat sb {};
  if (::lstat(path.c_str(), &sb) == 0 && sb.st_dev == bound.dev && sb.st_ino == bound.ino) {
    ::unlink(path.c_str());
  }
}

TcpAddress parse_tcp_address(const std::string& address) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) {
    throw std::invalid_argument("\"" + address + "\" is not HOST:PORT");
  }
  std::string host = address.substr(0, colon);
  const std::string port_text = address.substr(colon + 1);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') {
      throw std::invalid_argument("\"" + address + "\": an IPv6 host is written [ADDRESS]:PORT");
    }
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string::npos) {
    throw std::invalid_argument("\"" + address + "\": an IPv6 host is written [ADDRESS]:PORT");
  }
  unsigned port = 0;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc{} || end != port_text.data() + port_text.size() || port == 0 ||
      port > 65535) {
    throw std::invalid_argument("\"" + address + "\": the port must be 1..65535");
  }
  boost::system::error_code bad;
  const auto ip = boost::asio::ip::make_address(host, bad);
  if (bad) {
    throw std::invalid_argument("\"" + address + "\": \"" + host +
                                "\" is not an IPv4 or IPv6 address (no host names)");
  }
  return TcpAddress{ip.to_string(), static_cast<std::uint16_t>(port), ip.is_loopback()};
}

int bind_tcp_listener(const std::string& address) {
  const TcpAddress parsed = parse_tcp_address(address);
  namespace ip = boost::asio::ip;
  boost::asio::io_context io;
  ip::tcp::acceptor acceptor(io);
  const ip::tcp::endpoint endpoint(ip::make_address(parsed.host), parsed.port);
  boost::system::error_code ec;
  auto check = [&](const char* call) {
    if (ec)
      throw std::system_error(ec.value(), std::generic_category(),
                              std::string(call) + " " + address);
  };
  acceptor.open(endpoint.protocol(), ec);
  check("socket");
  acceptor.set_option(ip::tcp::acceptor::reuse_address(true), ec);
  check("setsockopt SO_REUSEADDR");
  acceptor.bind(endpoint, ec);
  check("bind");
  acceptor.listen(SOMAXCONN, ec);
  check("listen");
  const int fd = acceptor.release(ec);
  check("release");
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  return fd;
}

void check_stream_listener(int fd, const std::string& what, bool allow_tcp) {
  auto option = [&](int name) {
    int value = 0;
    socklen_t len = sizeof(value);
    if (::getsockopt(fd, SOL_SOCKET, name, &value, &len) != 0) {
      throw_errno(errno == ENOTSOCK || errno == EBADF ? errno : ENOTSOCK, what + ": not a socket");
    }
    return value;
  };
  const int domain = option(SO_DOMAIN);
  const bool inet = domain == AF_INET || domain == AF_INET6;
  if (domain != AF_UNIX && !(allow_tcp && inet)) {
    throw_errno(EAFNOSUPPORT, what + (allow_tcp ? ": not an AF_UNIX, AF_INET or AF_INET6 socket"
                                                : ": not an AF_UNIX socket"));
  }
  if (option(SO_TYPE) != SOCK_STREAM) throw_errno(EPROTOTYPE, what + ": not a stream socket");
  if (option(SO_ACCEPTCONN) == 0) throw_errno(EINVAL, what + ": not listening");
}

void check_unix_listener(int fd, const std::string& what) {
  check_stream_listener(fd, what, false);
}

}  // namespace ringmart::http
