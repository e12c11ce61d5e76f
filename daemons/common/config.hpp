// ringmart::runtime — configuration: command line + an optional TOML file.
//
// Every daemon takes `--state-dir DIR --runtime-dir DIR [--config FILE]`.
// The TOML file (see config/ringmart.toml) has a [runtime] table for all
// daemons and one table per daemon ([payment], [supervisor], [saga]...).
#pragma once

#include <sys/types.h>
#include <toml++/toml.h>

#include <cstddef>
#include <expected>
#include <string>

#include "storage/lmdb.hpp"

namespace ringmart::runtime {

struct Config {
  std::string state_dir;    ///< LMDB environments live in state_dir/<daemon>/
  std::string runtime_dir;  ///< sockets and lock files; shm names derive from it
  std::string config_file;  ///< "" = defaults only
  storage::Durability durability = storage::Durability::process;
  std::size_t ring_capacity_bytes = 1u << 20;  ///< per channel, power of two
  std::size_t map_size_bytes = 1ull << 30;     ///< LMDB map size per environment
  /// Messages applied per write transaction (group commit); 0 = by
  /// durability, see batch_limit().
  int batch_max = 0;
  int sync_interval_ms = 1000;      ///< `process` durability: mdb_env_sync period
  int spin_us = 50;                 ///< busy-poll before sleeping on the doorbell (0 = never)
  int heartbeat_timeout_ms = 5000;  ///< supervisor kills a daemon silent for this long
  int quarantine_after = 3;         ///< handler failures / crashes before a message is quarantined
  std::string log_level = "info";
  /// `[runtime] log_format`: "auto" (journald when stderr is the journal,
  /// else text), "text", "json" or "journal" (telemetry/log.hpp). Checked by
  /// load().
  std::string log_format = "auto";
  /// `[runtime] operator_group`: the group (a name or a numeric gid) whose
  /// members may run ringmartctl without root ("" = none: only root and the
  /// service user). The service
  /// then gives that group read-write access to its shared memory (0660),
  /// read access to the transport record (0640), and read-only LMDB access
  /// (state and environment directories 0750, data.mdb 0640, lock.mdb 0660);
  /// nobody else gets anything. Members are operators: they may read every
  /// record and act through the status region's control channel, as through
  /// admin.sock.
  std::string operator_group;
  /// operator_group's gid when it is usable (it exists, and this process is
  /// root or a member), else (gid_t)-1 — the owner-only modes.
  gid_t operator_gid = static_cast<gid_t>(-1);
  /// Why a named operator_group is not used ("" when it is, or none is
  /// named); the supervisor logs it as a warning and runs without.
  std::string operator_group_problem;
  toml::table file;  ///< the whole parsed file, for daemon-specific tables

  /// Default batch_max in `process` durability. A commit there makes no
  /// syscall, and a large batch only holds the next daemon back: with 256 in
  /// flight, 256-message batches moved the orders in one wave through the
  /// saga's hops, one daemon busy at a time (saga core 20k orders/s against
  /// 32k with 32; ringmart-bench --process-only, docs/benchmarks.md).
  static constexpr int kBatchMaxProcess = 32;
  /// Default batch_max in `fsync` durability, where each commit is an
  /// fdatasync (~165 µs) to share: 64-message batches cut api.sock orders/s
  /// from 5.8k to 3.9k.
  static constexpr int kBatchMaxFsync = 256;
  /// batch_max, or the durability's default when it is 0.
  int batch_limit() const {
    if (batch_max > 0) return batch_max;
    return durability == storage::Durability::fsync ? kBatchMaxFsync : kBatchMaxProcess;
  }

  /// Reads `config_file` (when not empty) over the defaults.
  /// Errors: a message naming the file, line and key (unreadable file, TOML
  /// syntax error, unknown durability, capacity not a power of two).
  static std::expected<Config, std::string> load(std::string state_dir, std::string runtime_dir,
                                                 std::string config_file);
  /// Sets operator_gid / operator_group_problem from operator_group (getgrnam_r(3),
  /// getgroups(2)); load() calls it.
  void resolve_operator_group();
  /// Daemon-specific integer setting `[table] key`, or `fallback`.
  std::int64_t get_int(std::string_view table, std::string_view key, std::int64_t fallback) const;
  std::string get_string(std::string_view table, std::string_view key, std::string fallback) const;

  /// LMDB map size of one daemon: `[<daemon>] map_size_bytes`, else the
  /// [runtime] value.
  std::size_t map_size_for(std::string_view daemon) const {
    return static_cast<std::size_t>(
        get_int(daemon, "map_size_bytes", static_cast<std::int64_t>(map_size_bytes)));
  }

  std::string env_path(std::string_view daemon) const {
    return state_dir + "/" + std::string(daemon);
  }
};

}  // namespace ringmart::runtime
