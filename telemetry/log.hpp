// ringmart::telemetry — structured logs: one spdlog logger per daemon whose
// lines carry the order, saga and trace of the work the thread is doing.
//
// Formats (`[runtime] log_format`):
//  - "journal": every line goes to journald through sd_journal_sendv(3) with
//    the fields MESSAGE, PRIORITY (syslog(3) levels), SYSLOG_IDENTIFIER
//    (ringmart-<daemon>), DAEMON, and ORDER_ID, SAGA_ID, TRACE_ID when the
//    thread has them — so `journalctl ORDER_ID=42` shows one order's path
//    through every daemon (at log_level "debug" every message a daemon applies
//    is a line; at "info" the failures, compensations and timeouts);
//  - "json": one JSON object per line on stderr (nlohmann::json) with the
//    same keys, plus TIMESTAMP (RFC 3339, UTC, µs) and LEVEL;
//  - "text": the human pattern `2026-12-07T10:00:00.123 info order[42] ...`;
//  - "auto" (the default): "journal" when stderr is connected to the journal
//    (JOURNAL_STREAM names stderr's device and inode, as systemd.exec(5)
//    says to check), else "text".
//
// Context: ScopedFields sets the calling thread's fields for its lifetime
// (the runtime does it around each message it applies, from the envelope;
// the gateway around an order's intake; the saga engine around a saga's
// timer). Sinks read them on the logging thread (spdlog's synchronous
// loggers log on the caller's thread).
//
// Thread-safety: loggers and sinks are thread-safe (spdlog _mt); fields are
// per thread.
#pragma once

#include <spdlog/logger.h>

#include <cstdint>
#include <expected>
#include <memory>
#include <string>
#include <string_view>

#include "telemetry/trace_context.hpp"

namespace ringmart::telemetry {

enum class LogFormat { text, json, journal };

/// "text" | "json" | "journal" | "auto" (resolved now by stderr_is_journal()).
/// Errors: a message naming the accepted values.
std::expected<LogFormat, std::string> parse_log_format(std::string_view name);
/// True when JOURNAL_STREAM is "<dev>:<ino>" of this process's stderr
/// (fstat(2) of fd 2): systemd connected stderr to journald.
bool stderr_is_journal();

/// What the thread is working on; 0 / an invalid trace id = none.
struct Fields {
  std::uint64_t order_id = 0;
  std::uint64_t saga_id = 0;
  TraceId trace_id;
};

/// The calling thread's fields (all empty outside any ScopedFields).
const Fields& current_fields();

/// Sets the calling thread's fields until destroyed, then restores the
/// previous ones (scopes nest). Not movable: a scope is a block.
class ScopedFields {
 public:
  explicit ScopedFields(const Fields& fields);
  ~ScopedFields();
  ScopedFields(const ScopedFields&) = delete;
  ScopedFields& operator=(const ScopedFields&) = delete;

 private:
  Fields previous_;
};

/// The named logger `daemon` (registered with spdlog: a second call returns
/// the first one), at `level` (spdlog names: "debug", "info", ...), writing
/// in `format`; warnings and above are flushed at once.
std::shared_ptr<spdlog::logger> make_logger(const std::string& daemon, const std::string& level,
                                            LogFormat format);

/// A sink writing the "json" format to `out` (stderr for make_logger; a file
/// in tests). The caller keeps `out` open while the sink lives.
std::shared_ptr<spdlog::sinks::sink> json_sink(std::FILE* out, std::string daemon);

}  // namespace ringmart::telemetry
