#include "http/listener.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
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

void check_unix_listener(int fd, const std::string& what) {
  auto option = [&](int name) {
    int value = 0;
    socklen_t len = sizeof(value);
    if (::getsockopt(fd, SOL_SOCKET, name, &value, &len) != 0) {
      throw_errno(errno == ENOTSOCK || errno == EBADF ? errno : ENOTSOCK, what + ": not a socket");
    }
    return value;
  };
  if (option(SO_DOMAIN) != AF_UNIX) throw_errno(EAFNOSUPPORT, what + ": not an AF_UNIX socket");
  if (option(SO_TYPE) != SOCK_STREAM) throw_errno(EPROTOTYPE, what + ": not a stream socket");
  if (option(SO_ACCEPTCONN) == 0) throw_errno(EINVAL, what + ": not listening");
}

}  // namespace ringmart::http
