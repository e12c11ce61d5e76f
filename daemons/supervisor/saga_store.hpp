// ringmart::supervisor — the saga store: saga instances in the supervisor's
// LMDB environment, and the read-only query library over it (the gateway's
// GET /v1/sagas/{id}, ringmartctl).
//
// A saga's id is its order id. Thread-safety: like the Txn used.
#pragma once

#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "daemons/supervisor/saga_records.capnp.h"
#include "storage/capnp_value.hpp"
#include "storage/lmdb.hpp"

namespace ringmart::supervisor {

/// One entry of a saga's timeline.
struct SagaEvent {
  std::string step;   ///< "deduct_inventory", "fail_order", ...
  std::string event;  ///< "sent", "ok", "failed OUT_OF_STOCK", "timeout", "retry", "compensated"
  std::int64_t at_ms = 0;  ///< realtime ms
};

/// A saga as operators and the API see it.
struct SagaView {
  std::uint64_t saga_id = 0;
  std::uint64_t order_id = 0;
  std::string state;  ///< "RUNNING", "COMPENSATING", "COMPLETED", "FAILED", "STUCK", "ABANDONED"
  std::string step;   ///< current step name ("" when terminal)
  std::string failure_reason;  ///< "" unless FAILED/STUCK
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
  std::vector<SagaEvent> history;
};

const char* state_name(SagaState s);

/// The table of saga instances.
class SagaStore {
 public:
  /// Opens (creating in a write txn) the table "sagas". Errors: LMDB codes.
  static std::expected<SagaStore, std::error_code> open(storage::Txn& txn);
  SagaStore() = default;

  std::optional<storage::StoredMessage> get(storage::Txn& txn, std::uint64_t saga_id) const;
  /// Errors: LMDB codes (MDB_MAP_FULL).
  std::error_code put(storage::Txn& txn, std::uint64_t saga_id,
                      capnp::MessageBuilder& record) const;
  /// Visits every saga in id order.
  void scan(storage::Txn& txn,
            const std::function<bool(std::uint64_t saga_id, SagaRecord::Reader)>& fn) const;
  /// The API/operator view of a stored record.
  static SagaView view(SagaRecord::Reader r);

 private:
  storage::Table sagas_;
};

/// Read-only access to the supervisor's environment from another process.
class SagaQueries {
 public:
  /// Opens `state_dir/supervisor` read-only. Errors: ENOENT before the
  /// supervisor first ran; LMDB codes.
  static std::expected<SagaQueries, std::error_code> open(const std::string& env_path,
                                                          std::size_t map_size_bytes);
  /// The saga of `order_id`, or nullopt.
  std::optional<SagaView> get(std::uint64_t order_id) const;
  /// Sagas whose state is `state` (all when empty), at most `limit`, id order.
  std::vector<SagaView> list(const std::string& state, std::size_t limit) const;

 private:
  std::shared_ptr<storage::Env> env_;
  SagaStore store_;
};

}  // namespace ringmart::supervisor
