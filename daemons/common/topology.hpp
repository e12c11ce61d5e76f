// ringmart::runtime — who talks to whom, and the names of the shared memory.
//
// One SPSC ring per directed channel below. Shared-memory names derive from
// the runtime directory (a hash of its absolute path), so two systems on one
// host never collide: "/rm-<8 hex>-<from>-<to>", "/rm-<8 hex>-status".
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "schemas/envelope.capnp.h"

namespace ringmart::runtime {

using msg::DaemonId;
inline constexpr std::size_t kDaemonCount = 8;

/// "supervisor", "gateway", "user", ... (the executable is "ringmart-<name>").
const char* daemon_name(DaemonId id);
std::optional<DaemonId> parse_daemon(std::string_view name);
inline std::uint8_t index(DaemonId id) { return static_cast<std::uint8_t>(id); }
/// Every daemon, in start order (supervisor first; gateway last).
const std::array<DaemonId, kDaemonCount>& all_daemons();

struct Channel {
  DaemonId from;
  DaemonId to;
};
/// The fixed channel list: supervisor <-> each saga participant, gateway <->
/// each domain it writes to, order -> ranking.
const std::vector<Channel>& channels();
std::vector<DaemonId> inbound_peers(DaemonId self);
std::vector<DaemonId> outbound_peers(DaemonId self);

/// "/rm-1a2b3c4d" for a runtime directory (absolute path hashed with FNV-1a).
std::string shm_prefix(const std::string& runtime_dir);
std::string ring_name(const std::string& prefix, DaemonId from, DaemonId to);
std::string status_name(const std::string& prefix);

}  // namespace ringmart::runtime
