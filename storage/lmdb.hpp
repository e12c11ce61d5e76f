// ringmart::storage — RAII over LMDB: environment, transaction, table.
//
// Caveats (from lmdb.h, read first):
// - One write transaction at a time per environment (LMDB serialises writers
//   with a lock; across processes too).
// - Never use an Env across fork(): the supervisor closes inherited fds in the
//   child before exec.
// - Keep read transactions short: a long reader pins old pages and the file grows.
// - After a crash, stale reader slots are cleared by mdb_reader_check (done in open()).
// - Values returned by get() point into the map and are valid until the
//   transaction ends; they are NOT 8-byte aligned in general (copy before
//   reading Cap'n Proto in place — see get_message()).
//
// Errors are std::error_code in lmdb_category() with LMDB's codes
// (MDB_MAP_FULL, MDB_NOTFOUND, ...) or errno values (EACCES, ENOSPC, ...).
// Thread-safety: an Env may be shared by threads (MDB_NOTLS); a Txn belongs to
// one thread at a time.
#pragma once

#include <lmdb.h>

#include <cstdint>
#include <cstring>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

namespace ringmart::storage {

const std::error_category& lmdb_category();
inline std::error_code lmdb_error(int rc) { return {rc, lmdb_category()}; }

/// How durable a committed write transaction is. Like Redis appendfsync.
enum class Durability {
  fsync,    ///< every commit is fdatasync'ed: survives power loss
  process,  ///< MDB_NOSYNC: survives any process crash; the OS flushes, plus periodic sync()
};
std::optional<Durability> parse_durability(std::string_view s);

struct EnvOptions {
  std::string path;  ///< a directory; created 0700 if missing (0750, see operator_group)
  std::size_t map_size_bytes = 1ull << 30;  ///< maximum database size (sparse file)
  unsigned max_tables = 32;
  Durability durability = Durability::process;
  bool read_only = false;  ///< query libraries open other daemons' envs so
  /// `process` durability, writers: MDB_WRITEMAP — a commit writes its pages
  /// into the shared file mapping instead of one pwrite(2) each (a commit
  /// becomes syscall-free). Same crash safety: the kernel owns the pages, so a
  /// killed process loses nothing committed. lmdb.h: "Incompatible with nested
  /// transactions" (begin_nested then fails with EINVAL) and "processes with
  /// and without MDB_WRITEMAP on the same environment do not cooperate well"
  /// (only one process ever writes an env here; readers are unaffected). Not
  /// in `fsync` durability: there LMDB would msync(2) the whole map per commit
  /// (measured: api.sock fsync orders/s halved).
  bool write_map = true;
  /// Writers: a group whose members may open the environment read-only (the
  /// operators' group, for ringmartctl): the directory becomes 0750,
  /// data.mdb 0640 and lock.mdb 0660 (a read-only LMDB reader registers in
  /// the lock file's reader table, so it must write there; lmdb.h,
  /// MDB_RDONLY), all of that group; (gid_t)-1: the owner's only (0700 /
  /// 0600 for an env made with none; an existing env's group bits are
  /// removed). Set with chown/chmod at every open, so the umask plays no part.
  gid_t operator_group = static_cast<gid_t>(-1);
};

class Env {
 public:
  /// Opens (creating the directory for writers) an environment and clears
  /// stale readers. Errors: errno (EACCES for an unreadable directory, ENOENT
  /// for a read-only open of a missing env), LMDB codes (MDB_VERSION_MISMATCH, MDB_INVALID).
  static std::expected<std::unique_ptr<Env>, std::error_code> open(const EnvOptions& options);
  ~Env();
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;

  MDB_env* raw() const { return env_; }
  /// Writes a compacted copy of the environment as it is when the copy's
  /// read transaction begins (free pages left out) to `fd`, a file or a pipe,
  /// sequentially (mdb_env_copyfd2 with MDB_CP_COMPACT; lmdb.h). LMDB begins
  /// that transaction before it writes the first byte, so a reader of a pipe
  /// that has seen a byte knows the snapshot is fixed. Safe while other
  /// processes write (readers never block the writer). Blocks until the copy
  /// is written. Errors: errno (ENOSPC, EPIPE when the reader went away),
  /// MDB_INCOMPATIBLE for a corrupt environment.
  std::error_code copy_compact_to(int fd) const;
  const EnvOptions& options() const { return options_; }
  /// Flushes to disk (mdb_env_sync force). Used periodically in `process` mode.
  std::error_code sync();
  /// Bytes used by the data file (pages in use x page size).
  std::uint64_t used_bytes() const;
  /// The map size (mdb_env_info me_mapsize): the most the environment can
  /// hold before commits fail with MDB_MAP_FULL. Thread-safe.
  std::uint64_t map_size_bytes() const;
  /// True when commits write through the map (MDB_WRITEMAP, see EnvOptions).
  bool write_map() const { return write_map_; }
  /// Write map only: makes sure the disk blocks under the next
  /// kReserveAheadBytes beyond the used pages are allocated (fallocate(2), in
  /// kReserveChunkBytes steps), so a transaction's stores into the map never
  /// meet a hole the file system cannot fill — that would be SIGBUS instead
  /// of ENOSPC. Called by Txn::begin_write under LMDB's writer lock.
  /// Errors: ENOSPC, EIO (file systems without fallocate are not reserved).
  std::error_code reserve_ahead();
  static constexpr std::uint64_t kReserveAheadBytes = 16ull << 20;
  static constexpr std::uint64_t kReserveChunkBytes = 16ull << 20;

 private:
  Env(MDB_env* env, EnvOptions options, bool write_map)
      : env_(env), options_(std::move(options)), write_map_(write_map) {}
  MDB_env* env_;
  EnvOptions options_;
  bool write_map_ = false;
  std::uint64_t reserved_bytes_ = 0;  // allocated from offset 0 (guarded by the writer lock)
  bool reserve_unsupported_ = false;
};

/// A transaction; aborted on destruction unless committed.
class Txn {
 public:
  /// Errors: MDB_READERS_FULL, MDB_MAP_RESIZED, EACCES (write on read-only
  /// env); with the write map, ENOSPC when the disk cannot hold
  /// Env::reserve_ahead (nothing was written).
  static std::expected<Txn, std::error_code> begin_write(Env& env);
  static std::expected<Txn, std::error_code> begin_read(Env& env);
  /// A nested write transaction inside `parent` (LMDB child txn): committing it
  /// folds its changes into the parent, aborting it undoes only its own.
  /// Errors: EINVAL in an environment opened with MDB_WRITEMAP
  /// (EnvOptions::write_map in `process` durability).
  static std::expected<Txn, std::error_code> begin_nested(Txn& parent);
  Txn(Txn&& other) noexcept : txn_(std::exchange(other.txn_, nullptr)), write_(other.write_) {}
  Txn& operator=(Txn&& other) noexcept;
  Txn(const Txn&) = delete;
  ~Txn();

  /// Commits; the Txn is finished either way. Errors: MDB_MAP_FULL, ENOSPC, EIO.
  std::error_code commit();
  void abort();
  MDB_txn* raw() const { return txn_; }
  bool writable() const { return write_; }

 private:
  Txn(MDB_txn* t, bool write) : txn_(t), write_(write) {}
  MDB_txn* txn_ = nullptr;
  bool write_ = false;
};

/// What a bounded delete of time-ordered rows did (a retention pass).
struct PruneResult {
  std::size_t deleted = 0;                     ///< rows deleted
  std::optional<std::int64_t> oldest_kept_ms;  ///< time of the oldest row left (realtime ms)
};

/// Key helpers: fixed-width big-endian so byte order = numeric order.
struct Key {
  unsigned char bytes[24];
  std::size_t size = 0;
  Key& u8(std::uint8_t v) {
    bytes[size++] = v;
    return *this;
  }
  Key& u64(std::uint64_t v) {
    for (int i = 7; i >= 0; --i) bytes[size++] = static_cast<unsigned char>(v >> (i * 8));
    return *this;
  }
  std::span<const std::byte> view() const {
    return {reinterpret_cast<const std::byte*>(bytes), size};
  }
};
std::uint64_t read_u64_be(std::span<const std::byte> b, std::size_t offset = 0);

/// A named table (LMDB "database") within an environment.
class Table {
 public:
  /// Opens (and for writable txns creates) the table. Call once per Env and
  /// keep the Table: handles stay valid for the Env's life.
  /// Errors: MDB_NOTFOUND (read-only and absent), MDB_DBS_FULL.
  static std::expected<Table, std::error_code> open(Txn& txn, const char* name);
  /// Opens a table that a later version of its store added (an index): like
  /// open(), but in a read-only transaction of an environment its writer has
  /// not upgraded yet, the absent table opens as empty: reads find nothing,
  /// writes fail with EACCES. Errors: MDB_DBS_FULL.
  static std::expected<Table, std::error_code> open_added(Txn& txn, const char* name);
  Table() = default;

  /// Returns the value or nullopt; errors other than not-found abort (they mean
  /// a corrupt environment, a violated invariant).
  std::optional<std::span<const std::byte>> get(Txn& txn, std::span<const std::byte> key) const;
  /// Errors: MDB_MAP_FULL, MDB_TXN_FULL, EACCES.
  std::error_code put(Txn& txn, std::span<const std::byte> key,
                      std::span<const std::byte> value) const;
  /// Reserves `size` bytes for the value at `key` (MDB_RESERVE) and returns
  /// them for the caller to fill before the next write in `txn`: one copy
  /// fewer than put(). Errors: as put().
  std::expected<std::span<std::byte>, std::error_code> put_reserved(Txn& txn,
                                                                    std::span<const std::byte> key,
                                                                    std::size_t size) const;
  /// Returns true when a row was deleted. Aborts the process on any other
  /// LMDB error (for deletes that cannot fail short of a corrupt environment).
  bool del(Txn& txn, std::span<const std::byte> key) const;
  /// Like del(), but an LMDB error is returned: a delete copies the pages on
  /// its path, so it can fail with MDB_MAP_FULL when the map is full.
  std::expected<bool, std::error_code> erase(Txn& txn, std::span<const std::byte> key) const;
  /// Visits rows with key >= `from` in order while `fn` returns true.
  void scan(Txn& txn, std::span<const std::byte> from,
            const std::function<bool(std::span<const std::byte> key,
                                     std::span<const std::byte> value)>& fn) const;
  /// Last row (highest key) with the given prefix, or nullopt.
  std::optional<std::pair<std::span<const std::byte>, std::span<const std::byte>>> last_with_prefix(
      Txn& txn, std::span<const std::byte> prefix) const;
  std::uint64_t count(Txn& txn) const;

  /// Trivially copyable value helpers.
  template <class T>
  std::optional<T> get_pod(Txn& txn, std::span<const std::byte> key) const {
    static_assert(std::is_trivially_copyable_v<T>);
    auto v = get(txn, key);
    if (!v || v->size() != sizeof(T)) return std::nullopt;
    T out;
    std::memcpy(&out, v->data(), sizeof(T));
    return out;
  }
  template <class T>
  std::error_code put_pod(Txn& txn, std::span<const std::byte> key, const T& value) const {
    static_assert(std::is_trivially_copyable_v<T>);
    return put(txn, key, {reinterpret_cast<const std::byte*>(&value), sizeof(T)});
  }

 private:
  explicit Table(MDB_dbi dbi, bool absent = false) : dbi_(dbi), absent_(absent) {}
  MDB_dbi dbi_ = 0;
  bool absent_ = false;  ///< open_added() of a table the environment lacks
};

/// A read-only view of another daemon's environment and the tables its
/// `Store::open(Txn&)` opens: how every query library starts.
template <class Store>
struct ReadOnlyStore {
  std::unique_ptr<Env> env;
  Store store;
};

/// Opens `path` read-only and the store's tables in one read transaction,
/// committed (not aborted) so the table handles stay open for the Env's life
/// (lmdb.h, mdb_dbi_open). Errors: ENOENT before the owning daemon created the
/// environment, MDB_NOTFOUND before it created its tables; other LMDB codes.
template <class Store>
std::expected<ReadOnlyStore<Store>, std::error_code> open_read_only(const std::string& path,
                                                                    std::size_t map_size_bytes) {
  auto env = Env::open({.path = path, .map_size_bytes = map_size_bytes, .read_only = true});
  if (!env) return std::unexpected(env.error());
  auto txn = Txn::begin_read(**env);
  if (!txn) return std::unexpected(txn.error());
  auto store = Store::open(*txn);
  if (!store) return std::unexpected(store.error());
  if (auto ec = txn->commit()) return std::unexpected(ec);
  return ReadOnlyStore<Store>{std::move(*env), std::move(*store)};
}

}  // namespace ringmart::storage
