#include "daemons/common/topology.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "ipc/shm_segment.hpp"

namespace ringmart::runtime {
namespace {
constexpr std::array<const char*, kDaemonCount> kNames = {
    "supervisor", "gateway", "user", "product", "coupon", "order", "payment", "ranking"};
}

const char* daemon_name(DaemonId id) { return kNames.at(index(id)); }

std::optional<DaemonId> parse_daemon(std::string_view name) {
  for (std::size_t i = 0; i < kNames.size(); ++i) {
    if (name == kNames[i]) return static_cast<DaemonId>(i);
  }
  return std::nullopt;
}

const std::array<DaemonId, kDaemonCount>& all_daemons() {
  static const std::array<DaemonId, kDaemonCount> all = {
      DaemonId::SUPERVISOR, DaemonId::USER,    DaemonId::PRODUCT, DaemonId::COUPON,
      DaemonId::ORDER,      DaemonId::PAYMENT, DaemonId::RANKING, DaemonId::GATEWAY};
  return all;
}

const std::vector<Channel>& channels() {
  static const std::vector<Channel> list = [] {
    std::vector<Channel> c;
    for (auto d : {DaemonId::USER, DaemonId::PRODUCT, DaemonId::COUPON, DaemonId::ORDER,
                   DaemonId::PAYMENT}) {
      c.push_back({DaemonId::SUPERVISOR, d});
      c.push_back({d, DaemonId::SUPERVISOR});
    }
    for (auto d : {DaemonId::USER, DaemonId::PRODUCT, DaemonId::COUPON, DaemonId::ORDER}) {
      c.push_back({DaemonId::GATEWAY, d});
      c.push_back({d, DaemonId::GATEWAY});
    }
    c.push_back({DaemonId::ORDER, DaemonId::RANKING});
    return c;
  }();
  return list;
}

std::vector<DaemonId> inbound_peers(DaemonId self) {
  std::vector<DaemonId> out;
  for (const auto& c : channels()) {
    if (c.to == self) out.push_back(c.from);
  }
  return out;
}

std::vector<DaemonId> outbound_peers(DaemonId self) {
  std::vector<DaemonId> out;
  for (const auto& c : channels()) {
    if (c.from == self) out.push_back(c.to);
  }
  return out;
}

namespace {
constexpr std::size_t kRandomHex = 16;

std::error_code errno_code() { return {errno, std::generic_category()}; }

std::string dir_hash(const std::string& runtime_dir) {
  std::error_code ec;
  auto abs = std::filesystem::weakly_canonical(runtime_dir, ec).string();
  if (ec) abs = runtime_dir;
  // FNV-1a 32-bit (http://www.isthe.com/chongo/tech/comp/fnv/).
  std::uint32_t h = 2166136261u;
  for (unsigned char ch : abs) {
    h ^= ch;
    h *= 16777619u;
  }
  return fmt::format("{:08x}", h);
}

/// Mode and owner rules shared by the directory and the file.
std::error_code check_stat(const struct stat& st, uid_t owner, mode_t forbidden) {
  if (st.st_uid != owner) return ipc::make_error_code(ipc::ShmError::foreign_owner);
  if ((st.st_mode & forbidden) != 0) return ipc::make_error_code(ipc::ShmError::unsafe_mode);
  return {};
}
}  // namespace

std::string shm_transport_path(const std::string& runtime_dir, TransportFile file) {
  return runtime_dir + (file == TransportFile::published ? "/transport" : "/transport.pending");
}

std::expected<uid_t, std::error_code> check_runtime_dir(const std::string& runtime_dir,
                                                        Viewer viewer) {
  // The directory itself: not a symlink (a symlink can be re-pointed by
  // whoever owns its parent), ours, writable by nobody else.
  struct stat st {};
  if (::lstat(runtime_dir.c_str(), &st) != 0) return std::unexpected(errno_code());
  if (!S_ISDIR(st.st_mode)) {
    return std::unexpected(std::make_error_code(std::errc::not_a_directory));
  }
  const uid_t self = ::geteuid();
  const bool operator_view = viewer == Viewer::operator_tool;
  if (auto ec = check_stat(st, operator_view ? st.st_uid : self, 022)) return std::unexpected(ec);
  const uid_t owner = st.st_uid;
  // Every ancestor (as written, symlinks included): owned by root or the
  // owner, and writable by others only with the sticky bit (/tmp), so nobody
  // else can rename a directory on the path and put their own in its place —
  // the rule of OpenSSH's secure_path() and sudo's sudo_secure_dir().
  std::error_code ec;
  auto path = std::filesystem::absolute(runtime_dir, ec).lexically_normal();
  if (ec) return std::unexpected(ec);
  for (auto dir = path.parent_path(); !dir.empty(); dir = dir.parent_path()) {
    for (const bool follow : {false, true}) {
      struct stat a {};
      if ((follow ? ::stat(dir.c_str(), &a) : ::lstat(dir.c_str(), &a)) != 0) {
        return std::unexpected(errno_code());
      }
      if (a.st_uid != 0 && a.st_uid != owner) {
        return std::unexpected(ipc::make_error_code(ipc::ShmError::foreign_owner));
      }
      if (!S_ISLNK(a.st_mode) && (a.st_mode & 022) != 0 && (a.st_mode & S_ISVTX) == 0) {
        return std::unexpected(ipc::make_error_code(ipc::ShmError::unsafe_mode));
      }
    }
    if (dir == dir.root_path()) break;
  }
  return owner;
}

std::expected<ShmTransport, std::error_code> new_shm_transport(const std::string& runtime_dir,
                                                               gid_t operator_group) {
  auto owner = check_runtime_dir(runtime_dir);
  if (!owner) return std::unexpected(owner.error());
  std::uint64_t random = 0;
  if (::getrandom(&random, sizeof random, 0) != sizeof random) {
    return std::unexpected(errno_code());
  }
  return ShmTransport{fmt::format("/rm-{}-{:016x}", dir_hash(runtime_dir), random),
                      ipc::ShmAccess(*owner, operator_group)};
}

std::error_code publish_shm_transport(const std::string& runtime_dir, const ShmTransport& t,
                                      TransportFile file) {
  const auto path = shm_transport_path(runtime_dir, file);
  const auto temporary = path + ".new";
  ::unlink(temporary.c_str());
  const int fd =
      ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return errno_code();
  const std::string line = t.prefix + "\n";
  std::error_code ec;
  if (t.access.group != ipc::kNoGroup &&
      (::fchown(fd, static_cast<uid_t>(-1), t.access.group) != 0 || ::fchmod(fd, 0640) != 0)) {
    ec = errno_code();
  }
  if (!ec && ::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    ec = errno_code();
  }
  ::close(fd);
  if (!ec && ::rename(temporary.c_str(), path.c_str()) == 0) return {};
  const auto failed = ec ? ec : errno_code();
  ::unlink(temporary.c_str());
  return failed;
}

std::expected<ShmTransport, std::error_code> read_shm_transport(const std::string& runtime_dir,
                                                                Viewer viewer, TransportFile file) {
  auto owner = check_runtime_dir(runtime_dir, viewer);
  if (!owner) return std::unexpected(owner.error());
  const int fd =
      ::open(shm_transport_path(runtime_dir, file).c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return std::unexpected(errno_code());
  struct stat st {};
  // A group may read the record (the operators'), nothing more.
  std::error_code ec = ::fstat(fd, &st) == 0 ? check_stat(st, *owner, 037) : errno_code();
  const gid_t group = (st.st_mode & 040) != 0 ? st.st_gid : ipc::kNoGroup;
  char buf[128];
  ssize_t n = 0;
  if (!ec && (n = ::read(fd, buf, sizeof buf)) < 0) ec = errno_code();
  ::close(fd);
  if (ec) return std::unexpected(ec);
  std::string_view text(buf, static_cast<std::size_t>(n));
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  const std::string expected_start = "/rm-" + dir_hash(runtime_dir) + "-";
  const bool well_formed =
      text.size() == expected_start.size() + kRandomHex && text.starts_with(expected_start) &&
      text.substr(expected_start.size()).find_first_not_of("0123456789abcdef") ==
          std::string_view::npos;
  if (!well_formed) return std::unexpected(std::make_error_code(std::errc::protocol_error));
  return ShmTransport{std::string(text), ipc::ShmAccess(*owner, group)};
}

void unpublish_shm_transport(const std::string& runtime_dir, TransportFile file) {
  ::unlink(shm_transport_path(runtime_dir, file).c_str());
}

std::string ring_name(const std::string& prefix, DaemonId from, DaemonId to) {
  return fmt::format("{}-{}-{}", prefix, daemon_name(from), daemon_name(to));
}

std::string status_name(const std::string& prefix) { return prefix + "-status"; }

}  // namespace ringmart::runtime
