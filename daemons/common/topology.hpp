// ringmart::runtime — who talks to whom, and the names of the shared memory.
//
// One SPSC ring per directed channel below. The supervisor creates every
// segment afresh at each start under a new prefix, "/rm-<8 hex>-<16 hex>": a
// hash of the runtime directory (two systems on one host never collide) and
// 64 random bits (another local user cannot guess, so cannot squat, the
// names). It records the prefix in RUNDIR/transport (0600, written last);
// every other process reads it there. Segments: "<prefix>-<from>-<to>",
// "<prefix>-status".
#pragma once

#include <sys/types.h>

#include <array>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "ipc/shm_segment.hpp"
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

/// The shared memory of one supervisor start: every segment name starts with
/// `prefix`, and every segment must be as `access` says (ShmSegment::open).
struct ShmTransport {
  std::string prefix;  ///< "/rm-1a2b3c4d-0123456789abcdef"
  /// owner: the service's uid (the owner of the runtime directory); group:
  /// the operators' group ([runtime] operator_group, recorded as the
  /// transport record's group) or ipc::kNoGroup.
  ipc::ShmAccess access;
};

/// Who looks at a runtime directory: the service itself (supervisor, daemons,
/// tests), which must own it, or an operator's tool (ringmartctl: root, or a
/// member of the operators' group) that inspects a directory the service
/// user owns.
enum class Viewer { service, operator_tool };

/// Checks that `runtime_dir` is a directory (not a symlink) nobody but its
/// owner may write (mode & 022 == 0), owned by this process's effective uid
/// (or by anyone when `viewer` is operator_tool: the tool then trusts the
/// directory's owner as the service's uid),
/// and that every ancestor is owned by root or that owner and writable by
/// others only when sticky (no one else can swap a directory on the path).
/// Returns the owner. Errors: errno of lstat(2)/stat(2); not_a_directory;
/// ShmError::foreign_owner (it or an ancestor owned by another uid);
/// ShmError::unsafe_mode (group- or world-writable).
std::expected<uid_t, std::error_code> check_runtime_dir(const std::string& runtime_dir,
                                                        Viewer viewer = Viewer::service);

/// Which record of a runtime directory: the transport in force
/// (RUNDIR/transport, what every process attaches to) or the one a supervisor
/// is creating (RUNDIR/transport.pending, written before its first segment,
/// so a supervisor killed half-way leaves names the next start can remove).
enum class TransportFile { published, pending };

/// A new, unpublished transport for `runtime_dir`: its prefix takes 64 bits of
/// getrandom(2); `operator_group` (ipc::kNoGroup for none) becomes its
/// access.group. Errors: those of check_runtime_dir, errno of getrandom.
std::expected<ShmTransport, std::error_code> new_shm_transport(
    const std::string& runtime_dir, gid_t operator_group = ipc::kNoGroup);
/// Records `t.prefix` in RUNDIR/transport (or .pending) (a temporary file,
/// 0600, or 0640 of group t.access.group, renamed over the old one, so
/// readers see the old or the new prefix, never a mix). Supervisor only;
/// `published` once every segment exists. Errors: errno of the file calls.
std::error_code publish_shm_transport(const std::string& runtime_dir, const ShmTransport& t,
                                      TransportFile file = TransportFile::published);
/// The transport the supervisor published for `runtime_dir`, after
/// check_runtime_dir and the same owner and mode checks on the file (fstat on
/// the open descriptor, O_NOFOLLOW; a group may only read it, and is then
/// access.group: only the owner can have given the file that group, and the
/// segments must be of it). Errors: no_such_file_or_directory when
/// none is published (no supervisor ran, or it stopped cleanly); those of
/// check_runtime_dir; ShmError::foreign_owner / unsafe_mode for the file;
/// protocol_error for a file that does not hold a prefix of this form.
std::expected<ShmTransport, std::error_code> read_shm_transport(
    const std::string& runtime_dir, Viewer viewer = Viewer::service,
    TransportFile file = TransportFile::published);
/// Removes RUNDIR/transport (or .pending). Absent is not an error.
void unpublish_shm_transport(const std::string& runtime_dir,
                             TransportFile file = TransportFile::published);
/// "RUNDIR/transport" (or "RUNDIR/transport.pending").
std::string shm_transport_path(const std::string& runtime_dir,
                               TransportFile file = TransportFile::published);

std::string ring_name(const std::string& prefix, DaemonId from, DaemonId to);
std::string status_name(const std::string& prefix);

}  // namespace ringmart::runtime
