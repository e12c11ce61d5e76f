#include "storage/lmdb.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <utility>

namespace ringmart::storage {
namespace {
class LmdbCategory : public std::error_category {
 public:
  const char* name() const noexcept override { return "lmdb"; }
  std::string message(int c) const override { return mdb_strerror(c); }
};

MDB_val to_val(std::span<const std::byte> s) {
  return MDB_val{s.size(), const_cast<std::byte*>(s.data())};
}
std::span<const std::byte> to_span(const MDB_val& v) {
  return {static_cast<const std::byte*>(v.mv_data), v.mv_size};
}
[[noreturn]] void fatal(const char* what, int rc) {
  std::fprintf(stderr, "ringmart storage: %s failed: %s\n", what, mdb_strerror(rc));
  std::abort();
}
}  // namespace

const std::error_category& lmdb_category() {
  static const LmdbCategory c;
  return c;
}

std::optional<Durability> parse_durability(std::string_view s) {
  if (s == "fsync") return Durability::fsync;
  if (s == "process") return Durability::process;
  return std::nullopt;
}

namespace {
// EnvOptions::operator_group applied to an environment's directory and files.
std::error_code share_with_operators(const std::string& dir, gid_t group) {
  const bool shared = group != static_cast<gid_t>(-1);
  const struct {
    std::string path;
    mode_t shared_mode, private_mode;
  } entries[] = {
      {dir, 0750, 0700}, {dir + "/data.mdb", 0640, 0600}, {dir + "/lock.mdb", 0660, 0600}};
  for (const auto& e : entries) {
    if (shared && ::chown(e.path.c_str(), static_cast<uid_t>(-1), group) != 0) {
      return {errno, std::generic_category()};
    }
    if (::chmod(e.path.c_str(), shared ? e.shared_mode : e.private_mode) != 0) {
      return {errno, std::generic_category()};
    }
  }
  return {};
}
}  // namespace

std::expected<std::unique_ptr<Env>, std::error_code> Env::open(const EnvOptions& options) {
  if (!options.read_only) {
    // The environment's own directory is the owner's only (0700): it holds
    // customers' data. Parents are created as the umask says.
    std::error_code ec;
    const auto parent = std::filesystem::path(options.path).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    if (ec) return std::unexpected(ec);
    if (::mkdir(options.path.c_str(), 0700) != 0 && errno != EEXIST) {
      return std::unexpected(std::error_code(errno, std::generic_category()));
    }
  }
  MDB_env* env = nullptr;
  int rc = mdb_env_create(&env);
  if (rc) return std::unexpected(lmdb_error(rc));
  mdb_env_set_mapsize(env, options.map_size_bytes);
  mdb_env_set_maxdbs(env, options.max_tables);
  mdb_env_set_maxreaders(env, 256);
  unsigned flags = MDB_NOTLS;
  if (options.read_only) flags |= MDB_RDONLY;
  if (options.durability == Durability::process) flags |= MDB_NOSYNC;
  const bool write_map =
      options.durability == Durability::process && options.write_map && !options.read_only;
  if (write_map) flags |= MDB_WRITEMAP;
  rc = mdb_env_open(env, options.path.c_str(), flags, 0600);
  if (rc) {
    mdb_env_close(env);
    return std::unexpected(lmdb_error(rc));
  }
  if (!options.read_only) {
    if (auto ec = share_with_operators(options.path, options.operator_group)) {
      mdb_env_close(env);
      return std::unexpected(ec);
    }
  }
  int dead = 0;
  mdb_reader_check(env, &dead);
  return std::unique_ptr<Env>(new Env(env, options, write_map));
}

std::error_code Env::copy_compact_to(int fd) const {
  if (int rc = mdb_env_copyfd2(env_, fd, MDB_CP_COMPACT)) return lmdb_error(rc);
  return {};
}

std::error_code Env::reserve_ahead() {
  if (!write_map_ || reserve_unsupported_) return {};
  const std::uint64_t want = used_bytes() + kReserveAheadBytes;
  if (want <= reserved_bytes_) return {};
  mdb_filehandle_t fd;
  if (int rc = mdb_env_get_fd(env_, &fd)) return lmdb_error(rc);
  MDB_envinfo info;
  mdb_env_info(env_, &info);
  // Whole chunks, never past the map (the file's size with MDB_WRITEMAP).
  const std::uint64_t end = std::min<std::uint64_t>(
      (want + kReserveChunkBytes - 1) / kReserveChunkBytes * kReserveChunkBytes, info.me_mapsize);
  if (end <= reserved_bytes_) return {};
  // Mode 0: allocates the holes in [offset, end); allocated ranges are kept.
  if (::fallocate(fd, 0, static_cast<off_t>(reserved_bytes_),
                  static_cast<off_t>(end - reserved_bytes_)) != 0) {
    const int err = errno;
    if (err == EOPNOTSUPP) {
      reserve_unsupported_ = true;
      return {};
    }
    return lmdb_error(err);
  }
  reserved_bytes_ = end;
  return {};
}

Env::~Env() { mdb_env_close(env_); }

std::error_code Env::sync() {
  int rc = mdb_env_sync(env_, 1);
  return rc ? lmdb_error(rc) : std::error_code{};
}

std::uint64_t Env::map_size_bytes() const {
  MDB_envinfo info;
  mdb_env_info(env_, &info);
  return info.me_mapsize;
}

std::uint64_t Env::used_bytes() const {
  MDB_envinfo info;
  MDB_stat st;
  mdb_env_info(env_, &info);
  mdb_env_stat(env_, &st);
  return static_cast<std::uint64_t>(info.me_last_pgno + 1) * st.ms_psize;
}

std::expected<Txn, std::error_code> Txn::begin_write(Env& env) {
  MDB_txn* t = nullptr;
  int rc = mdb_txn_begin(env.raw(), nullptr, 0, &t);
  if (rc) return std::unexpected(lmdb_error(rc));
  Txn txn(t, true);
  if (auto ec = env.reserve_ahead()) return std::unexpected(ec);  // aborts txn
  return txn;
}

std::expected<Txn, std::error_code> Txn::begin_read(Env& env) {
  MDB_txn* t = nullptr;
  int rc = mdb_txn_begin(env.raw(), nullptr, MDB_RDONLY, &t);
  if (rc) return std::unexpected(lmdb_error(rc));
  return Txn(t, false);
}

std::expected<Txn, std::error_code> Txn::begin_nested(Txn& parent) {
  MDB_txn* t = nullptr;
  int rc = mdb_txn_begin(mdb_txn_env(parent.raw()), parent.raw(), 0, &t);
  if (rc) return std::unexpected(lmdb_error(rc));
  return Txn(t, true);
}

Txn& Txn::operator=(Txn&& other) noexcept {
  if (this != &other) {
    abort();
    txn_ = std::exchange(other.txn_, nullptr);
    write_ = other.write_;
  }
  return *this;
}

Txn::~Txn() { abort(); }

std::error_code Txn::commit() {
  if (!txn_) return lmdb_error(EINVAL);
  int rc = mdb_txn_commit(std::exchange(txn_, nullptr));
  return rc ? lmdb_error(rc) : std::error_code{};
}

void Txn::abort() {
  if (txn_) mdb_txn_abort(std::exchange(txn_, nullptr));
}

std::uint64_t read_u64_be(std::span<const std::byte> b, std::size_t offset) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8; ++i) v = (v << 8) | static_cast<std::uint8_t>(b[offset + i]);
  return v;
}

std::expected<Table, std::error_code> Table::open(Txn& txn, const char* name) {
  MDB_dbi dbi;
  int rc = mdb_dbi_open(txn.raw(), name, txn.writable() ? MDB_CREATE : 0, &dbi);
  if (rc) return std::unexpected(lmdb_error(rc));
  return Table(dbi);
}

std::expected<Table, std::error_code> Table::open_added(Txn& txn, const char* name) {
  auto t = open(txn, name);
  if (!t && !txn.writable() && t.error() == std::error_code(MDB_NOTFOUND, lmdb_category())) {
    return Table(0, /*absent=*/true);
  }
  return t;
}

std::optional<std::span<const std::byte>> Table::get(Txn& txn,
                                                     std::span<const std::byte> key) const {
  if (absent_) return std::nullopt;
  MDB_val k = to_val(key), v;
  int rc = mdb_get(txn.raw(), dbi_, &k, &v);
  if (rc == MDB_NOTFOUND) return std::nullopt;
  if (rc) fatal("mdb_get", rc);
  return to_span(v);
}

std::error_code Table::put(Txn& txn, std::span<const std::byte> key,
                           std::span<const std::byte> value) const {
  if (absent_) return lmdb_error(EACCES);
  MDB_val k = to_val(key), v = to_val(value);
  int rc = mdb_put(txn.raw(), dbi_, &k, &v, 0);
  return rc ? lmdb_error(rc) : std::error_code{};
}

std::expected<std::span<std::byte>, std::error_code> Table::put_reserved(
    Txn& txn, std::span<const std::byte> key, std::size_t size) const {
  if (absent_) return std::unexpected(lmdb_error(EACCES));
  MDB_val k = to_val(key), v{size, nullptr};
  int rc = mdb_put(txn.raw(), dbi_, &k, &v, MDB_RESERVE);
  if (rc) return std::unexpected(lmdb_error(rc));
  return std::span<std::byte>(static_cast<std::byte*>(v.mv_data), size);
}

bool Table::del(Txn& txn, std::span<const std::byte> key) const {
  if (absent_) fatal("mdb_del", EACCES);
  MDB_val k = to_val(key);
  int rc = mdb_del(txn.raw(), dbi_, &k, nullptr);
  if (rc == MDB_NOTFOUND) return false;
  if (rc) fatal("mdb_del", rc);
  return true;
}

std::expected<bool, std::error_code> Table::erase(Txn& txn, std::span<const std::byte> key) const {
  if (absent_) return std::unexpected(lmdb_error(EACCES));
  MDB_val k = to_val(key);
  const int rc = mdb_del(txn.raw(), dbi_, &k, nullptr);
  if (rc == MDB_NOTFOUND) return false;
  if (rc) return std::unexpected(std::error_code(rc, lmdb_category()));
  return true;
}

void Table::scan(
    Txn& txn, std::span<const std::byte> from,
    const std::function<bool(std::span<const std::byte>, std::span<const std::byte>)>& fn) const {
  if (absent_) return;
  MDB_cursor* c = nullptr;
  int rc = mdb_cursor_open(txn.raw(), dbi_, &c);
  if (rc) fatal("mdb_cursor_open", rc);
  MDB_val k = to_val(from), v;
  rc = from.empty() ? mdb_cursor_get(c, &k, &v, MDB_FIRST)
                    : mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
  while (rc == 0) {
    if (!fn(to_span(k), to_span(v))) break;
    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
  }
  mdb_cursor_close(c);
}

std::optional<std::pair<std::span<const std::byte>, std::span<const std::byte>>>
Table::last_with_prefix(Txn& txn, std::span<const std::byte> prefix) const {
  if (absent_) return std::nullopt;
  // Seek to the first key after the prefix range, then step back once.
  std::string upper(reinterpret_cast<const char*>(prefix.data()), prefix.size());
  while (!upper.empty() && static_cast<unsigned char>(upper.back()) == 0xff) upper.pop_back();
  MDB_cursor* c = nullptr;
  int rc = mdb_cursor_open(txn.raw(), dbi_, &c);
  if (rc) fatal("mdb_cursor_open", rc);
  MDB_val k, v;
  if (upper.empty()) {
    rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
  } else {
    upper.back() = static_cast<char>(static_cast<unsigned char>(upper.back()) + 1);
    k = MDB_val{upper.size(), upper.data()};
    rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    rc = rc == 0 ? mdb_cursor_get(c, &k, &v, MDB_PREV) : mdb_cursor_get(c, &k, &v, MDB_LAST);
  }
  std::optional<std::pair<std::span<const std::byte>, std::span<const std::byte>>> out;
  if (rc == 0 && k.mv_size >= prefix.size() &&
      std::memcmp(k.mv_data, prefix.data(), prefix.size()) == 0) {
    out.emplace(to_span(k), to_span(v));
  }
  mdb_cursor_close(c);
  return out;
}

std::uint64_t Table::count(Txn& txn) const {
  if (absent_) return 0;
  MDB_stat st;
  mdb_stat(txn.raw(), dbi_, &st);
  return st.ms_entries;
}

}  // namespace ringmart::storage
