// Online backup and restore of every daemon's LMDB environment
// (`ringmartctl backup DIR`, `ringmartctl restore DIR --state-dir NEW`).
//
// One cut across environments: copies of separate environments taken at
// different instants can disagree (a producer may have pruned an outbox entry
// whose consumer's copy had not applied it yet; a consumer's copy may have
// applied sequence numbers the producer's copy would hand out again). So the
// backup pauses every running daemon's commits (ControlOp::pause_commits, at
// a batch boundary, under a lease), starts LMDB's compacting copy of every
// environment at once (mdb_env_copyfd2, MDB_CP_COMPACT, each into a pipe from
// its own thread), and resumes the daemons as soon as every pipe has given
// its first byte: LMDB writes it only after the copy's read transaction
// began, so from then on each copy is a fixed snapshot, all taken while
// nothing committed. Every copy shows the system at the same instant, and a
// restored system starts like one after a host reboot (outboxes re-send,
// inboxes de-duplicate). The pause lasts until the copies begin (tens of
// ms), not until they end; the gateway queues orders meanwhile.
#pragma once

#include <cstdint>
#include <string>

#include "daemons/common/config.hpp"
#include "ipc/status_region.hpp"

namespace ringmart::ctl {

/// Exit codes (ringmartctl's): 0 done; 1 failed (a daemon did not pause, a
/// copy failed, a pause's lease ran out: nothing is left at DIR); 2 bad input
/// (DIR not empty, not a backup, the state directory not empty).
///
/// Backs up every environment under `config.state_dir` into `dir` (created
/// 0700; must not exist or be empty), written into `dir`.partial and renamed
/// when complete, so a failed or interrupted backup never leaves a
/// half-written `dir`. `status` is the running system's (attach first);
/// `lease_ms` bounds each daemon's pause. Prints what it did (JSON with
/// `json`).
int backup(const runtime::Config& config, ipc::StatusRegion& status, const std::string& dir,
           std::uint64_t lease_ms, bool json);

/// Prepares `state_dir` (must not exist or be empty: never over a system's
/// state) from the backup in `dir`, through `state_dir`.partial and a
/// rename. Exit codes as backup().
int restore(const std::string& dir, const std::string& state_dir, bool json);

}  // namespace ringmart::ctl
