// ringmart::gateway — the gateway's own tables: idempotency keys, the order-id
// counter and the orders it accepted (POST /v1/orders).
//
// Tables in the gateway's LMDB environment (state_dir/gateway, next to the
// runtime's outbox and inbox marks; integers big-endian):
//   gw_idempotency  Idempotency-Key bytes -> records::IdempotencyRecord
//   gw_keys_by_time u64 created ms, key bytes -> (empty): what expiry prunes
//   gw_orders       u64 order id          -> records::AcceptedOrder
//   gw_commands     u64 message id        -> key bytes: a command sent under a
//                                            key whose reply has not come yet
//   gw_meta         u8 0                  -> u64 last order id (ids start at 1)
//                   u8 1                  -> u32 1: gw_keys_by_time is complete
//                   u8 2                  -> u64 gateway starts (command id epoch)
//
// Invariants: an order id is allocated once (the counter only grows, in the
// same write transaction that stores the accepted order and appends its
// createOrder to the outbox); an idempotency key maps to exactly one order id
// until it expires (expire_keys: older than the TTL and its order final); an
// accepted order stays until the order daemon reported it final (from then
// on the order daemon's query library answers for it). A command's key is
// written in the transaction that appends the command to the outbox, so the
// command is delivered exactly once however often the client retries; its
// reply is stored under the key in the transaction that applies the reply,
// and a retry is answered from it. A key waiting for its reply never expires.
//
// Errors: std::error_code is an LMDB failure (MDB_MAP_FULL, MDB_TXN_FULL),
// after which the caller aborts the transaction.
// Thread-safety: holds only table handles; use with one Txn per thread. Write
// transactions run on the runtime thread only; read transactions may run on
// any thread.
#pragma once

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "daemons/common/runtime.hpp"
#include "daemons/gateway/requests.hpp"
#include "storage/lmdb.hpp"

namespace ringmart::gateway {

/// What an Idempotency-Key refers to.
struct IdempotencyEntry {
  std::uint64_t order_id = 0;
  std::uint64_t request_hash = 0;  ///< order_request_hash() of the first request
  std::int64_t created_at_ms = 0;  ///< Unix ms
};

struct AcceptedLine {
  std::uint64_t product_id = 0;
  std::int64_t quantity = 0;
  std::int64_t unit_price_cents = 0;
};

/// An order as the gateway accepted it (before the order daemon stored it).
struct AcceptedOrder {
  std::uint64_t order_id = 0;
  std::uint64_t user_id = 0;
  std::vector<AcceptedLine> lines;
  std::uint64_t user_coupon_id = 0;
  std::int64_t points = 0;
  std::int64_t shipping_cents = 0;
  std::uint32_t installments = 1;
  std::int64_t subtotal_cents = 0;
  std::int64_t accepted_at_ms = 0;  ///< Unix ms
  std::optional<user::Address> shipping_address;
};

/// The reply to a command, as the gateway answers from it.
struct CommandReply {
  msg::Code code = msg::Code::OK;
  std::uint64_t id = 0;
  std::int64_t value = 0;
  std::string message;
};

/// What a command's Idempotency-Key refers to.
struct CommandKeyEntry {
  std::uint64_t request_hash = 0;
  std::uint64_t command_id = 0;  ///< the command's message id (its reply's correlation id)
  std::int64_t created_at_ms = 0;
  std::optional<CommandReply> reply;  ///< nullopt while the reply has not come
};

/// Result of IntakeStore::begin_command.
struct CommandKeyOutcome {
  enum class Kind {
    send,      ///< new: recorded as waiting for `command_id`; append the command now
    waiting,   ///< known, same request, its reply has not come yet
    answered,  ///< known, same request: answer with entry.reply
    conflict,  ///< known with another request (or an order's key): nothing stored
  };
  Kind kind = Kind::send;
  CommandKeyEntry entry;
};

/// Result of IntakeStore::accept.
struct AcceptOutcome {
  enum class Kind {
    accepted,  ///< a new order id was allocated and the order stored
    replayed,  ///< the key was known with the same request: its order id
    conflict,  ///< the key was known with another request: nothing stored
  };
  Kind kind = Kind::accepted;
  std::uint64_t order_id = 0;
};

class IntakeStore {
 public:
  /// Opens the tables; a write txn creates them, and indexes the keys of an
  /// environment from before gw_keys_by_time once (a full scan). Errors:
  /// MDB_NOTFOUND (read txn, tables absent), MDB_DBS_FULL. Commit `txn` to
  /// keep the handles.
  static std::expected<IntakeStore, std::error_code> open(storage::Txn& txn);
  IntakeStore() = default;

  /// The entry of `key`, or nullopt.
  std::optional<IdempotencyEntry> idempotency(storage::Txn& txn, std::string_view key) const;

  /// Accepts `request` (write txn): when `key` is non-empty and known, answers
  /// replayed/conflict by comparing `request_hash` and changes nothing;
  /// otherwise allocates the next order id and stores the accepted order
  /// (`unit_prices_cents[i]` for `request.items[i]`, `subtotal_cents`) and the
  /// key. The caller sends createOrder in the same transaction.
  /// Errors: LMDB codes.
  std::expected<AcceptOutcome, std::error_code> accept(
      storage::Txn& txn, std::string_view key, const OrderRequest& request,
      std::uint64_t request_hash, const std::vector<std::int64_t>& unit_prices_cents,
      std::int64_t subtotal_cents, std::int64_t now_ms) const;

  /// The accepted order, or nullopt (unknown, or already final and forgotten).
  std::optional<AcceptedOrder> accepted(storage::Txn& txn, std::uint64_t order_id) const;
  /// Drops an accepted order once the order daemon reported it final.
  /// Returns true when a row was deleted.
  bool forget(storage::Txn& txn, std::uint64_t order_id) const;
  /// Expiry: deletes idempotency keys created before `created_before_ms`
  /// (Unix ms), oldest first, looking at most at `limit` of them; a key whose
  /// order is still accepted (not final) is kept, so a retry never creates a
  /// second order for a pending one. Returns how many were deleted, and the
  /// creation time of the oldest key left. Errors: LMDB codes.
  std::expected<storage::PruneResult, std::error_code> expire_keys(storage::Txn& txn,
                                                                   std::int64_t created_before_ms,
                                                                   std::size_t limit) const;
  /// A command sent under `key` (write txn): when `key` is unknown, records it
  /// as waiting for `command_id` (the caller appends that command to the
  /// outbox in the same transaction); otherwise says what the key holds and
  /// changes nothing. Errors: LMDB codes.
  std::expected<CommandKeyOutcome, std::error_code> begin_command(storage::Txn& txn,
                                                                  std::string_view key,
                                                                  std::uint64_t request_hash,
                                                                  std::uint64_t command_id,
                                                                  std::int64_t now_ms) const;
  /// The command key `key`, if it is one (read path: a retry answered before
  /// anything is queued).
  std::optional<CommandKeyEntry> command_key(storage::Txn& txn, std::string_view key) const;
  /// The reply to message `command_id` arrived (write txn, with the reply's
  /// inbox mark): stores it under the key it was sent with. Returns false
  /// when no key waits for it (a command sent without a key). Errors: LMDB
  /// codes.
  std::expected<bool, std::error_code> answer_command(storage::Txn& txn, std::uint64_t command_id,
                                                      const CommandReply& reply) const;
  /// Counts a gateway start (write txn) and returns the count: the epoch that
  /// makes command message ids unique across the gateway's lives.
  std::expected<std::uint64_t, std::error_code> next_start(storage::Txn& txn) const;
  /// Number of accepted orders not yet final (a gauge for /metrics).
  std::uint64_t accepted_count(storage::Txn& txn) const;
  /// The last order id allocated (0 before the first order).
  std::uint64_t last_order_id(storage::Txn& txn) const;

 private:
  storage::Table keys_;
  storage::Table keys_by_time_;
  storage::Table orders_;
  storage::Table commands_;
  storage::Table meta_;
};

/// Appends the createOrder of accepted order `order_id` for the order daemon
/// to the outbox in `ctx`'s transaction (the saga starts when the order
/// daemon stored it): `unit_prices_cents[i]` for `order.items[i]`. What
/// POST /v1/orders does after IntakeStore::accept; also used by the
/// saga-core benchmark's injector (bench/inject.hpp). Errors: LMDB codes.
std::error_code send_create_order(runtime::Context& ctx, std::uint64_t order_id,
                                  const OrderRequest& order,
                                  const std::vector<std::int64_t>& unit_prices_cents);

}  // namespace ringmart::gateway
