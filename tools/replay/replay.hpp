// ringmart-replay — replays a Dataset (tools/olist) against a running ringmart
// through its HTTP API: set-up (catalogue, users, points, coupons), the timed
// replay of the orders, a summary and an optional consistency check.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <filesystem>
#include <iosfwd>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "tools/olist/dataset.hpp"

namespace ringmart::replay {

/// Process exit codes of ringmart-replay.
enum ExitCode : int {
  kExitOk = 0,
  kExitVerifyFailed = 1,  ///< --verify found violations
  kExitBadInput = 2,      ///< bad arguments, unreadable data, data the system rejected
  kExitUnreachable = 3,   ///< sockets missing/unhealthy, transport failures
};

struct Options {
  std::filesystem::path runtime_dir;  ///< holds api.sock and admin.sock
  unsigned concurrency = 16;  ///< connections: threads for set-up and verify, coroutines on one
                              ///< thread for the replay (>= 1)
  std::chrono::milliseconds wait{5000};  ///< wait_ms of each long poll (1 .. 30000)
  /// POST each order with `Prefer: wait=<wait in s>` (RFC 7240), so the POST
  /// itself answers with the outcome (201) and one request serves an order;
  /// false: the POST answers 202 at once and the client long-polls GET
  /// /v1/orders/{id}?wait_ms. Either way a 202 is followed by long polls.
  bool prefer_wait = true;
  std::chrono::milliseconds startup_timeout{30000};  ///< how long to wait for /v1/health
  std::chrono::milliseconds order_timeout{120000};   ///< give up on an order still PENDING
  std::string key_prefix;  ///< prepended to each Idempotency-Key (for re-runs)
  bool progress = true;    ///< print a progress line on stderr once per second
  /// Payment mix, in percent of the orders (each 0..100, sum <= 100; 0 = off):
  /// such orders pay with tok_decline / tok_timeout / tok_capture_fail instead
  /// of their data set token, chosen by payment_token() from the source id, so
  /// a re-run (any key_prefix) gives every order the same token.
  unsigned decline_percent = 0;
  unsigned timeout_percent = 0;
  unsigned capture_fail_percent = 0;
  /// Open loop: order i is sent at start + i / arrival_rate_per_s (by
  /// whichever of the `concurrency` clients is free), and its latency runs
  /// from that scheduled time, so a slow system is charged for the queueing
  /// it causes (no coordinated omission). 0 = closed loop: each client sends
  /// its next order as soon as the last one ended.
  double arrival_rate_per_s = 0;
};

/// The card token order `o` pays with under `options`' payment mix: bucket =
/// FNV-1a 64 of o.source_id mod 100; buckets [0, d) give "tok_decline",
/// [d, d+t) "tok_timeout", [d+t, d+t+c) "tok_capture_fail" (d, t, c = the
/// three percentages), every other bucket o.payment_token. With the default
/// options it is always o.payment_token. Pure; thread-safe.
std::string payment_token(const olist::Order& o, const Options& options);

std::filesystem::path api_socket(const Options& options);    ///< RUNDIR/api.sock
std::filesystem::path admin_socket(const Options& options);  ///< RUNDIR/admin.sock

/// A failure of set-up or of the health wait, with the exit code it maps to.
struct Failure {
  int exit_code = kExitUnreachable;
  std::string message;
};

/// Waits until GET /v1/health answers 200 on both sockets, polling every
/// 200 ms for up to options.startup_timeout. Fails at once when the runtime
/// directory does not exist. Errors: kExitUnreachable with a message naming
/// the socket and the last problem (missing socket, refused, degraded + missing daemons).
std::expected<void, Failure> wait_healthy(const Options& options, std::ostream& log);

/// The ringmart ids assigned during set-up, indexed like the Dataset.
struct Ids {
  std::vector<uint64_t> product_ids;                ///< per product
  std::vector<uint64_t> user_ids;                   ///< per order
  std::vector<std::optional<uint64_t>> coupon_ids;  ///< per order, when it has a voucher
  std::vector<std::optional<uint64_t>> user_coupon_ids;
};

/// Creates the catalogue (admin.sock), one user per order, the points charge of
/// users who spend points, and a fixed coupon (total_quantity 1, value = the
/// voucher) issued to the user of each voucher order, with options.concurrency
/// threads. 503 answers are retried for a few seconds. Errors: every failed
/// request is listed (up to 20) in the message; kExitBadInput when the system
/// rejected data with a 4xx, else kExitUnreachable.
std::expected<Ids, Failure> set_up(const olist::Dataset& data, const Options& options,
                                   std::ostream& log);

/// What became of one order.
struct OrderOutcome {
  std::optional<uint64_t> order_id;  ///< absent when POST /v1/orders never succeeded
  std::string status;                ///< "COMPLETED" / "FAILED" / "" when not terminal
  std::string failure_reason;        ///< when FAILED ("(none)" when the field was missing)
  std::string error_kind;            ///< non-empty when an HTTP error or unexpected status ended it
  std::string error;                 ///< the detailed message of that error
  /// Just before POST (open loop: the scheduled send time) -> terminal
  /// status seen; -1 if none.
  int64_t latency_us = -1;
};

struct ReplayResult {
  std::vector<OrderOutcome> outcomes;  ///< per order
  double wall_seconds = 0;
};

/// Replays the orders with options.concurrency clients, each with its own
/// connection to api.sock, all on one thread (coroutines on a private
/// io_context that the calling thread runs), taking orders in sequence from a
/// shared index: POST /v1/orders with Idempotency-Key = key_prefix + source_id (retried with the
/// same key on transport errors, 503 and 504), then long-polls GET
/// /v1/orders/{id}?wait_ms= until the status is not PENDING. With
/// options.arrival_rate_per_s > 0 the orders are paced (open loop). Never
/// throws for API errors: they are recorded in the outcome.
ReplayResult run_replay(const olist::Dataset& data, const Ids& ids, const Options& options);

/// One best-seller row as shown in the summary.
struct BestSeller {
  uint64_t product_id = 0;
  int64_t units = 0;
  std::string category;  ///< from GET /v1/products/{id}; "" if that failed
  std::string name;
  std::string source_id;  ///< "" when not a product of this replay
};

/// The figures of a replay.
struct Summary {
  std::string origin;       ///< "olist" / "generated"
  std::string attribution;  ///< credit line, may be empty
  size_t total = 0;
  size_t completed = 0;
  size_t failed = 0;
  std::map<std::string, size_t> failed_by_reason;
  size_t errors = 0;  ///< orders ended by an HTTP error or an unexpected status
  std::map<std::string, size_t> errors_by_kind;
  std::vector<std::string> error_examples;  ///< first example of each kind, with the order id
  size_t transport_errors = 0;              ///< of which transport-level
  double wall_seconds = 0;
  double orders_per_second = 0;                           ///< terminal orders / wall time
  double p50_ms = 0, p90_ms = 0, p99_ms = 0, max_ms = 0;  ///< over terminal orders
  std::vector<BestSeller> bestsellers;                    ///< top 10, last day
  std::string bestsellers_error;                          ///< why the list is missing, if it is
};

/// Nearest-rank percentile (p in 0..100) of an ascending sorted vector; 0 if empty.
int64_t percentile(const std::vector<int64_t>& sorted, double p);

/// Counts the outcomes and computes rates and latencies (no I/O).
Summary summarize(const olist::Dataset& data, const ReplayResult& result);

/// Fills summary.bestsellers from GET /v1/rankings/bestsellers?days=1&limit=10
/// and GET /v1/products/{id}; on failure sets summary.bestsellers_error.
void fetch_bestsellers(const olist::Dataset& data, const Ids& ids, const Options& options,
                       Summary& summary);

/// Writes the human-readable summary.
void print_summary(const Summary& summary, std::ostream& out);

/// The summary as JSON (same figures as print_summary).
nlohmann::json summary_json(const Summary& summary);

struct VerifyResult {
  std::vector<std::string> violations;  ///< one line each, with ids
  size_t orders = 0;
  size_t products = 0;
  bool ok() const { return violations.empty(); }
};

/// Checks the end state through the API (options.concurrency threads):
/// every order accepted and terminal; a COMPLETED order's items, shipping,
/// points_used, discount (= min(voucher, total)) and paid = subtotal + shipping
/// - discount - points_used, a FAILED order's paid = 0; per product initial
/// stock == current stock + units in COMPLETED orders; per user charged points
/// == balance + points_used of its COMPLETED order; the coupon of a COMPLETED
/// order is USED, that of a FAILED order ISSUED; best-seller units (days=1, a
/// limit as large as the catalogue) == units in COMPLETED orders.
VerifyResult verify(const olist::Dataset& data, const Ids& ids, const ReplayResult& result,
                    const Options& options);

}  // namespace ringmart::replay
