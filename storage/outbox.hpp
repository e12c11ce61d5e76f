// ringmart::storage — the transactional outbox and the inbox marks.
//
// Outbox: a daemon never writes to a ring inside a business transaction; it
// appends the outgoing message here, keyed by (receiver, seq), in the same
// write transaction as the state change. After commit the relay copies
// entries to the ring; entries are pruned once the consumer acknowledged them
// (ring acked_seq), so the outbox is bounded by the ring window plus backlog.
// Sequence numbers are per receiver, start at 1 and are gap-free.
//
// Inbox: the consumer records, in the same transaction as the effects of a
// message, the highest seq applied per sender. A redelivered message
// (seq <= mark) is acknowledged and skipped: exactly-once effects on
// at-least-once delivery.
//
// Thread-safety: like the Txn they are used with. Errors: put() returns LMDB
// codes (MDB_MAP_FULL: the caller aborts the transaction and refuses the command).
#pragma once

#include <cstdint>
#include <expected>
#include <functional>
#include <span>
#include <vector>

#include "storage/capnp_value.hpp"
#include "storage/lmdb.hpp"

namespace ringmart::storage {

class Outbox {
 public:
  /// Opens/creates the tables "outbox" and "outbox_seq".
  static std::expected<Outbox, std::error_code> open(Txn& txn);
  Outbox() = default;

  /// Reserves the next sequence number for `receiver` (persisted in `txn`).
  std::expected<std::uint64_t, std::error_code> next_seq(Txn& txn, std::uint8_t receiver) const;
  /// Highest sequence number ever reserved for `receiver` (0 = none).
  std::uint64_t last_seq(Txn& txn, std::uint8_t receiver) const;
  /// Stores the serialized message with its reserved seq.
  std::error_code put(Txn& txn, std::uint8_t receiver, std::uint64_t seq,
                      std::span<const std::byte> message) const;
  /// Stores `message` serialised straight into the page (storage::put_message).
  std::error_code put_message(Txn& txn, std::uint8_t receiver, std::uint64_t seq,
                              capnp::MessageBuilder& message) const;
  /// Visits entries for `receiver` with seq > `after` in seq order while fn returns true.
  void scan(
      Txn& txn, std::uint8_t receiver, std::uint64_t after,
      const std::function<bool(std::uint64_t seq, std::span<const std::byte> message)>& fn) const;
  /// Deletes entries for `receiver` with seq <= `acked`; returns how many.
  std::size_t prune(Txn& txn, std::uint8_t receiver, std::uint64_t acked) const;
  /// Entries still stored for `receiver` (not yet acknowledged).
  std::uint64_t pending(Txn& txn, std::uint8_t receiver, std::uint64_t acked) const;

 private:
  Table entries_;
  Table seqs_;
};

class Inbox {
 public:
  /// Opens/creates the table "inbox".
  static std::expected<Inbox, std::error_code> open(Txn& txn);
  Inbox() = default;
  /// Highest seq applied from `sender` (0 = none).
  std::uint64_t mark(Txn& txn, std::uint8_t sender) const;
  std::error_code set_mark(Txn& txn, std::uint8_t sender, std::uint64_t seq) const;

 private:
  Table marks_;
};

}  // namespace ringmart::storage
