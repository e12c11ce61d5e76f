// ringmart::ipc — named crash points for fault-injection tests.
//
// In the spirit of SQLite's crash tests: the code marks the places where a
// crash is most interesting (before a commit, between commit and ack, in the
// middle of a ring write, ...) with crash_point("name"). When the environment
// variable RINGMART_CRASH_POINT names that point and this process, the process
// SIGKILLs itself there — an honest crash, no destructor or flush runs.
//
//   RINGMART_CRASH_POINT="<point>:<process>[:<nth>]"
//     point    before_commit | after_commit | mid_ring_write | mid_relay | mid_compensation
//     process  the name given to set_crash_identity() ("product", "supervisor", ...)
//     nth      crash on the nth time the point is reached (default 1)
//
// Every point fires at most once per marker directory: just before the kill
// the process creates "<marker_dir>/crash-<point>-<process>.fired" (O_EXCL), so
// the restarted process — which inherits the same environment — runs on. The
// harness checks that file to know the crash happened.
//
// Unset (production), crash_point() costs one relaxed atomic load.
// Thread-safety: set_crash_identity() once at start-up, before other threads;
// crash_point() from any thread.
#pragma once

#include <string>
#include <string_view>

namespace ringmart::ipc {

/// Names this process for RINGMART_CRASH_POINT and sets where the ".fired"
/// markers go (normally the runtime directory). Reads the variable once.
/// A malformed variable is reported on stderr and ignored.
void set_crash_identity(std::string_view process, const std::string& marker_dir);

/// Kills this process with SIGKILL if RINGMART_CRASH_POINT selects `point`
/// for this process, this is the nth hit, and it has not fired before.
void crash_point(std::string_view point);

/// The points the code defines, for harnesses that enumerate them.
inline constexpr std::string_view kCrashPoints[] = {
    "before_commit", "after_commit", "mid_ring_write", "mid_relay", "mid_compensation"};

}  // namespace ringmart::ipc
