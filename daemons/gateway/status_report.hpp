// ringmart::gateway — liveness, GET /v1/health and GET /metrics from the
// status region (pure functions of a StatusLayout and the time).
//
// A daemon is alive when its slot says `running` and its heartbeat (written
// by its runtime every loop turn, at least every 100 ms) is younger than
// `fresh_ms`. The supervisor manages the other slots but not its own state, so
// it is also alive when `supervisor_pid` is set and `supervisor_heartbeat_ms`
// is fresh. Heartbeats are CLOCK_MONOTONIC ms, comparable across processes.
//
// Thread-safety: reads atomics only (relaxed: monitoring needs no snapshot
// consistency); safe from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "daemons/common/topology.hpp"
#include "http/server.hpp"
#include "ipc/histogram.hpp"
#include "ipc/status_region.hpp"

namespace ringmart::gateway {

/// Heartbeat age above which a daemon counts as down for the API.
inline constexpr std::int64_t kFreshHeartbeatMs = 2000;

/// Whether `id` runs and heart-beats (see above). `now_ms`: ipc::monotonic_ms().
bool daemon_alive(const ipc::StatusLayout& status, runtime::DaemonId id, std::int64_t now_ms,
                  std::int64_t fresh_ms = kFreshHeartbeatMs);

/// "up", or why not: "stopped", "starting", "backoff", "failed", "stale"
/// (running but the heartbeat is old).
std::string daemon_condition(const ipc::StatusLayout& status, runtime::DaemonId id,
                             std::int64_t now_ms, std::int64_t fresh_ms = kFreshHeartbeatMs);

/// GET /v1/health: 200 {"status":"ok","daemons":{name:"up"}} when every daemon
/// of runtime::all_daemons() is alive, else 503
/// {"status":"degraded","missing":[names],"daemons":{name:condition}}.
struct Health {
  int status = 200;
  nlohmann::json body;
};
Health health(const ipc::StatusLayout& status, std::int64_t now_ms,
              std::int64_t fresh_ms = kFreshHeartbeatMs);

/// Fill level of one ring (optional part of /metrics).
struct RingFill {
  runtime::DaemonId from;
  runtime::DaemonId to;
  std::uint64_t fill_bytes = 0;
  std::uint64_t capacity_bytes = 0;
};

/// The gateway's own gauges for /metrics.
struct GatewayGauges {
  std::uint64_t pending_commands = 0;   ///< commands waiting for a reply
  std::uint64_t order_waiters = 0;      ///< parked GET /v1/orders/{id}?wait_ms long-polls
  std::uint64_t accepted_orders = 0;    ///< accepted, not yet reported final
  std::uint64_t api_connections = 0;    ///< accepted since start, api.sock
  std::uint64_t admin_connections = 0;  ///< accepted since start, admin.sock
  std::uint64_t api_refused = 0;        ///< answered 503 and closed since start, api.sock
  std::uint64_t admin_refused = 0;      ///< answered 503 and closed since start, admin.sock
  std::uint64_t api_open = 0;           ///< open now, api.sock
  std::uint64_t admin_open = 0;         ///< open now, admin.sock
};

/// HTTP request durations for /metrics, by socket ("api", "admin"), method,
/// route pattern and status class ("2xx" .. "5xx"); fed by
/// http::ServerOptions::on_response. Not thread-safe: observe and render on
/// the gateway's io thread.
class RequestMetrics {
 public:
  void observe(std::string_view socket, const http::Served& served);
  /// Appends the family ringmart_http_request_duration_seconds (a histogram).
  void render(std::string& out) const;

 private:
  // socket, method, route ("unmatched" when none), status class
  using Key = std::tuple<std::string, std::string, std::string, std::string>;
  std::map<Key, ipc::Histogram> by_key_;
};

/// Appends one histogram series in the text format: cumulative
/// `<name>_bucket{<labels>,le="..."}` lines in seconds, `_sum` (seconds) and
/// `_count`. `labels` is "" or `a="x",b="y"` (already escaped).
void append_histogram(std::string& out, std::string_view name, std::string_view labels,
                      const ipc::Histogram& h);

/// GET /metrics: Prometheus text exposition format 0.0.4
/// (https://prometheus.io/docs/instrumenting/exposition_formats/) with, per
/// daemon: ringmart_daemon_up, _restarts_total, _heartbeat_age_seconds,
/// _messages_in_total, _messages_out_total, _duplicates_total, _commits_total,
/// _errors_total, _outbox_pending; per ring: ringmart_ring_fill_bytes and
/// ringmart_ring_capacity_bytes; per channel ringmart_outbox_pending{from,to};
/// per daemon ringmart_daemon_quarantined_total, ringmart_lmdb_map_used_bytes
/// and _map_size_bytes; ringmart_sagas{state}; the saga histograms
/// ringmart_saga_duration_seconds{outcome} and
/// ringmart_saga_step_round_trip_seconds{step,phase};
/// ringmart_orders_failed_total{reason}; and the gateway gauges. Label values
/// are fixed names (daemons, steps, codes), never user input.
std::string render_metrics(const ipc::StatusLayout& status, std::int64_t now_ms,
                           const std::vector<RingFill>& rings, const GatewayGauges& gateway,
                           std::int64_t fresh_ms = kFreshHeartbeatMs);

}  // namespace ringmart::gateway
