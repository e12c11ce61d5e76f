// ringmart bench — the saga core without HTTP: an injector that takes the
// gateway's place (same identity, lock, LMDB environment, rings and intake
// tables) and submits orders exactly as POST /v1/orders does after parsing
// — IntakeStore::accept + gateway::send_create_order in one write
// transaction of the gateway's outbox — then waits for each orderFinalized
// on the order -> gateway ring. Everything downstream is the real system.
//
// The gateway must be stopped first (`ringmartctl stop gateway`): the rings
// are single-producer single-consumer and the runtime's lock file refuses a
// second gateway. Start it again afterwards so the API can verify the result.
#pragma once

#include <chrono>
#include <cstddef>
#include <expected>
#include <string>
#include <vector>

#include "daemons/common/config.hpp"
#include "tools/olist/dataset.hpp"
#include "tools/replay/replay.hpp"

namespace ringmart::bench {

struct InjectOptions {
  /// Orders in flight (closed loop): each orderFinalized sends the next order
  /// in the same transaction that forgets the finished one.
  std::size_t window = 256;
  std::string key_prefix;             ///< Idempotency-Key = key_prefix + source id
  replay::Options mix;                ///< only the payment mix (payment_token()) is used
  std::chrono::seconds timeout{600};  ///< gives up (outcomes stay open) after this
};

struct InjectResult {
  /// Per order, like a replay's: order_id, status, failure_reason, latency_us
  /// (accept -> orderFinalized applied); error_kind when it never finished.
  replay::ReplayResult replay;
  std::size_t finished = 0;
};

/// Runs the injector on the calling thread until every order of `data` (with
/// the ids of `ids`) finished or options.timeout passed. `config` is the
/// system's (Config::load of its state, runtime and config file). Errors: the
/// runtime could not start as the gateway (lock held: the gateway still runs;
/// rings missing) or its tables could not be opened.
std::expected<InjectResult, std::string> inject_orders(const runtime::Config& config,
                                                       const olist::Dataset& data,
                                                       const replay::Ids& ids,
                                                       const InjectOptions& options);

}  // namespace ringmart::bench
