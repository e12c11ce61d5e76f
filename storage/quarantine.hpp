// ringmart::storage — the quarantine (dead letters) of one daemon.
//
// A message whose handler keeps failing, or that keeps crashing the daemon,
// is moved here instead of blocking its ring or crash-looping the daemon: the
// envelope is kept byte-exact, with the sender, its ring seq, the error and
// the number of attempts. An operator lists the table (ringmartctl reads it
// read-only) and re-drives the message (the daemon applies it again) or
// abandons it. Rows are never deleted, only marked, so a second re-drive of the
// same id is recognised (idempotent) and the history stays auditable.
//
// Table "quarantine": key = id (u64 big-endian, 1, 2, ...), value = a fixed
// little-endian header (QuarantineRow) followed by the error text and the
// message bytes.
//
// Thread-safety: like the Txn it is used with. Errors: LMDB codes
// (MDB_MAP_FULL, ...) from writes; reads of a missing table give nothing.
#pragma once

#include <cstdint>
#include <expected>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "storage/lmdb.hpp"

namespace ringmart::storage {

enum class QuarantineState : std::uint32_t {
  quarantined = 0,  ///< waiting for an operator
  redriven = 1,     ///< applied again successfully
  abandoned = 2,    ///< the operator gave up on it
};
const char* to_string(QuarantineState s);

/// One quarantined message, as read back.
struct QuarantinedMessage {
  std::uint64_t id = 0;
  std::uint8_t sender = 0;  ///< daemon index of the producer
  std::uint64_t seq = 0;    ///< its ring/outbox sequence number
  QuarantineState state = QuarantineState::quarantined;
  std::uint32_t attempts = 0;          ///< handler runs or crashes so far
  std::int64_t quarantined_at_ms = 0;  ///< Unix ms
  std::int64_t resolved_at_ms = 0;     ///< Unix ms of re-drive/abandon, 0 while quarantined
  std::string error;                   ///< the last failure
  std::vector<std::byte> message;      ///< the envelope, byte-exact as it arrived
};

class Quarantine {
 public:
  /// Opens (creates, in a write txn) the table "quarantine".
  /// Errors: MDB_NOTFOUND in a read txn when no message was ever quarantined.
  static std::expected<Quarantine, std::error_code> open(Txn& txn);
  Quarantine() = default;

  /// Stores a message; returns its new id. Errors: LMDB write codes.
  std::expected<std::uint64_t, std::error_code> add(Txn& txn, std::uint8_t sender,
                                                    std::uint64_t seq,
                                                    std::span<const std::byte> message,
                                                    std::string_view error, std::uint32_t attempts,
                                                    std::int64_t now_ms) const;
  std::optional<QuarantinedMessage> get(Txn& txn, std::uint64_t id) const;
  /// Marks a row re-driven or abandoned. Errors: MDB_NOTFOUND for an unknown id.
  std::error_code resolve(Txn& txn, std::uint64_t id, QuarantineState state,
                          std::int64_t now_ms) const;
  /// Records one more failed attempt (a failed re-drive) with its error.
  std::error_code record_failure(Txn& txn, std::uint64_t id, std::string_view error) const;
  /// Visits rows in id order while fn returns true.
  void scan(Txn& txn, const std::function<bool(const QuarantinedMessage&)>& fn) const;

 private:
  std::error_code write(Txn& txn, const QuarantinedMessage& m) const;
  Table rows_;
};

}  // namespace ringmart::storage
