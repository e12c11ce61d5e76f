#include "daemons/gateway/status_report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <functional>

#include "daemons/supervisor/saga_store.hpp"
#include "schemas/codes.hpp"

namespace ringmart::gateway {
namespace {

using runtime::DaemonId;

// Relaxed loads: each field is a monitoring sample, no ordering with others needed.
template <class T>
auto load(const std::atomic<T>& a) {
  return a.load(std::memory_order_relaxed);
}

const ipc::DaemonSlot& slot_of(const ipc::StatusLayout& s, DaemonId id) {
  return s.slots.at(runtime::index(id));
}

bool supervisor_self_reported(const ipc::StatusLayout& s, std::int64_t now_ms,
                              std::int64_t fresh_ms) {
  return load(s.supervisor_pid) != 0 && now_ms - load(s.supervisor_heartbeat_ms) < fresh_ms;
}

void family(std::string& out, const char* name, const char* type, const char* help) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

// A label value in the text format: backslash, double quote and line feed escaped.
std::string escape_label(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

// A method as a label: the standard ones, else "other" (a hostile client
// must not create series at will).
std::string_view method_label(std::string_view m) {
  for (std::string_view known : {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}) {
    if (m == known) return known;
  }
  return "other";
}

std::string status_class(int status) { return fmt::format("{}xx", status / 100); }

}  // namespace

void append_histogram(std::string& out, std::string_view name, std::string_view labels,
                      const ipc::Histogram& h) {
  const std::string sep = labels.empty() ? "" : ",";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < ipc::kLatencyBoundsUs.size(); ++i) {
    cumulative += load(h.buckets[i]);
    fmt::format_to(std::back_inserter(out), "{}_bucket{{{}{}le=\"{}\"}} {}\n", name, labels, sep,
                   static_cast<double>(ipc::kLatencyBoundsUs[i]) / 1e6, cumulative);
  }
  cumulative += load(h.buckets.back());
  fmt::format_to(std::back_inserter(out), "{}_bucket{{{}{}le=\"+Inf\"}} {}\n", name, labels, sep,
                 cumulative);
  const std::string braces = labels.empty() ? "" : fmt::format("{{{}}}", labels);
  fmt::format_to(std::back_inserter(out), "{}_sum{} {}\n{}_count{} {}\n", name, braces,
                 static_cast<double>(load(h.sum_us)) / 1e6, name, braces, cumulative);
}

void RequestMetrics::observe(std::string_view socket, const http::Served& served) {
  Key key{std::string(socket), std::string(method_label(served.method)),
          served.route.empty() ? std::string("unmatched") : std::string(served.route),
          status_class(served.status)};
  by_key_[key].observe_us(
      static_cast<std::uint64_t>(std::max<std::int64_t>(served.duration_ns, 0)) / 1000);
}

void RequestMetrics::render(std::string& out) const {
  family(out, "ringmart_http_request_duration_seconds", "histogram",
         "HTTP requests answered, by socket, method, route and status class: from the complete "
         "request header to the response handed to the socket.");
  for (const auto& [key, h] : by_key_) {
    const auto& [socket, method, route, code] = key;
    append_histogram(
        out, "ringmart_http_request_duration_seconds",
        fmt::format("socket=\"{}\",method=\"{}\",route=\"{}\",code=\"{}\"", escape_label(socket),
                    escape_label(method), escape_label(route), escape_label(code)),
        h);
  }
}

bool daemon_alive(const ipc::StatusLayout& status, DaemonId id, std::int64_t now_ms,
                  std::int64_t fresh_ms) {
  const auto& slot = slot_of(status, id);
  const bool running = load(slot.state) == static_cast<std::uint32_t>(ipc::DaemonState::running);
  if (running && now_ms - load(slot.heartbeat_ms) < fresh_ms) return true;
  return id == DaemonId::SUPERVISOR && supervisor_self_reported(status, now_ms, fresh_ms);
}

std::string daemon_condition(const ipc::StatusLayout& status, DaemonId id, std::int64_t now_ms,
                             std::int64_t fresh_ms) {
  if (daemon_alive(status, id, now_ms, fresh_ms)) return "up";
  const auto state = static_cast<ipc::DaemonState>(load(slot_of(status, id).state));
  if (state == ipc::DaemonState::running) return "stale";
  return ipc::to_string(state);
}

Health health(const ipc::StatusLayout& status, std::int64_t now_ms, std::int64_t fresh_ms) {
  nlohmann::json daemons = nlohmann::json::object();
  nlohmann::json missing = nlohmann::json::array();
  for (auto id : runtime::all_daemons()) {
    auto condition = daemon_condition(status, id, now_ms, fresh_ms);
    if (condition != "up") missing.push_back(runtime::daemon_name(id));
    daemons[runtime::daemon_name(id)] = std::move(condition);
  }
  if (missing.empty()) return Health{200, {{"status", "ok"}, {"daemons", std::move(daemons)}}};
  return Health{
      503,
      {{"status", "degraded"}, {"missing", std::move(missing)}, {"daemons", std::move(daemons)}}};
}

std::string render_metrics(const ipc::StatusLayout& status, std::int64_t now_ms,
                           const std::vector<RingFill>& rings, const GatewayGauges& gateway,
                           std::int64_t fresh_ms) {
  std::string out;
  out.reserve(8192);
  auto per_daemon = [&](const char* name, const char* type, const char* help,
                        const std::function<double(DaemonId, const ipc::DaemonSlot&)>& value) {
    family(out, name, type, help);
    for (auto id : runtime::all_daemons()) {
      fmt::format_to(std::back_inserter(out), "{}{{daemon=\"{}\"}} {}\n", name,
                     runtime::daemon_name(id), value(id, slot_of(status, id)));
    }
  };
  per_daemon("ringmart_daemon_up", "gauge", "1 when the daemon runs and heart-beats.",
             [&](DaemonId id, const ipc::DaemonSlot&) {
               return daemon_alive(status, id, now_ms, fresh_ms) ? 1.0 : 0.0;
             });
  per_daemon("ringmart_daemon_restarts_total", "counter", "Restarts by the supervisor.",
             [](DaemonId, const ipc::DaemonSlot& s) { return double(load(s.restarts)); });
  per_daemon("ringmart_daemon_heartbeat_age_seconds", "gauge",
             "Seconds since the daemon's last loop turn (-1 = never).",
             [&](DaemonId, const ipc::DaemonSlot& s) {
               const auto hb = load(s.heartbeat_ms);
               return hb == 0 ? -1.0 : double(now_ms - hb) / 1000.0;
             });
  per_daemon("ringmart_daemon_messages_in_total", "counter",
             "Inbound messages applied (duplicates excluded).",
             [](DaemonId, const ipc::DaemonSlot& s) { return double(load(s.messages_in)); });
  per_daemon("ringmart_daemon_messages_out_total", "counter", "Records pushed to rings.",
             [](DaemonId, const ipc::DaemonSlot& s) { return double(load(s.messages_out)); });
  per_daemon("ringmart_daemon_duplicates_total", "counter",
             "Redelivered messages skipped by the inbox.",
             [](DaemonId, const ipc::DaemonSlot& s) { return double(load(s.duplicates)); });
  per_daemon("ringmart_daemon_commits_total", "counter", "LMDB write transactions committed.",
             [](DaemonId, const ipc::DaemonSlot& s) { return double(load(s.commits)); });
  per_daemon("ringmart_daemon_errors_total", "counter",
             "Failed transactions, skipped messages and corrupt records.",
             [](DaemonId, const ipc::DaemonSlot& s) { return double(load(s.errors)); });
  per_daemon("ringmart_daemon_outbox_pending", "gauge", "Outbox entries not yet acknowledged.",
             [](DaemonId, const ipc::DaemonSlot& s) { return double(load(s.outbox_pending)); });

  per_daemon("ringmart_daemon_quarantined_total", "counter",
             "Messages moved to the daemon's quarantine (ringmartctl quarantine).",
             [](DaemonId, const ipc::DaemonSlot& s) { return double(load(s.quarantined)); });
  per_daemon("ringmart_lmdb_map_used_bytes", "gauge",
             "Bytes of the daemon's LMDB map in use (pages in use x page size).",
             [](DaemonId, const ipc::DaemonSlot& s) { return double(load(s.map_used_bytes)); });
  per_daemon("ringmart_lmdb_map_size_bytes", "gauge",
             "Size of the daemon's LMDB map: commits fail once it is used up.",
             [](DaemonId, const ipc::DaemonSlot& s) { return double(load(s.map_size_bytes)); });

  family(out, "ringmart_outbox_pending", "gauge",
         "Outbox entries of a channel not yet acknowledged by its consumer.");
  for (const auto& c : runtime::channels()) {
    fmt::format_to(std::back_inserter(out), "ringmart_outbox_pending{{from=\"{}\",to=\"{}\"}} {}\n",
                   runtime::daemon_name(c.from), runtime::daemon_name(c.to),
                   load(slot_of(status, c.from).outbox_pending_to.at(runtime::index(c.to))));
  }

  if (!rings.empty()) {
    family(out, "ringmart_ring_fill_bytes", "gauge", "Bytes published and not yet consumed.");
    for (const auto& r : rings) {
      fmt::format_to(std::back_inserter(out),
                     "ringmart_ring_fill_bytes{{from=\"{}\",to=\"{}\"}} {}\n",
                     runtime::daemon_name(r.from), runtime::daemon_name(r.to), r.fill_bytes);
    }
    family(out, "ringmart_ring_capacity_bytes", "gauge", "Data capacity of the ring.");
    for (const auto& r : rings) {
      fmt::format_to(std::back_inserter(out),
                     "ringmart_ring_capacity_bytes{{from=\"{}\",to=\"{}\"}} {}\n",
                     runtime::daemon_name(r.from), runtime::daemon_name(r.to), r.capacity_bytes);
    }
  }

  family(out, "ringmart_sagas", "gauge", "Sagas by state, as counted by the supervisor.");
  const auto& sagas = status.sagas;
  const std::pair<const char*, std::uint64_t> states[] = {
      {"running", load(sagas.running)},
      {"compensating", load(sagas.compensating)},
      {"completed", load(sagas.completed)},
      {"failed", load(sagas.failed)},
      {"stuck", load(sagas.stuck)}};
  for (const auto& [name, n] : states) {
    fmt::format_to(std::back_inserter(out), "ringmart_sagas{{state=\"{}\"}} {}\n", name, n);
  }

  const auto& sm = status.saga_metrics;
  family(out, "ringmart_saga_duration_seconds", "histogram",
         "Sagas from their start to their final state, by outcome (since the supervisor "
         "started).");
  const char* outcomes[ipc::kSagaOutcomes] = {"completed", "failed", "stuck", "abandoned"};
  for (std::size_t i = 0; i < ipc::kSagaOutcomes; ++i) {
    append_histogram(out, "ringmart_saga_duration_seconds",
                     fmt::format("outcome=\"{}\"", outcomes[i]), sm.duration[i]);
  }
  family(out, "ringmart_saga_step_round_trip_seconds", "histogram",
         "A saga step's command sent by the supervisor to its reply applied, by step and phase.");
  for (std::size_t slot = 0; slot < sm.step_round_trip.size(); ++slot) {
    const auto labels = supervisor::step_metric_labels(slot);
    if (!labels) continue;
    append_histogram(out, "ringmart_saga_step_round_trip_seconds",
                     fmt::format("step=\"{}\",phase=\"{}\"", labels->first, labels->second),
                     sm.step_round_trip[slot]);
  }
  family(out, "ringmart_orders_completed_total", "counter",
         "Orders whose saga completed (since the supervisor started).");
  fmt::format_to(std::back_inserter(out), "ringmart_orders_completed_total {}\n",
                 sm.duration[static_cast<std::size_t>(ipc::SagaOutcome::completed)].count());
  family(out, "ringmart_orders_failed_total", "counter",
         "Orders whose saga ended FAILED, by failure reason (since the supervisor started).");
  for (std::size_t code = 1; code < sm.failed_by_reason.size(); ++code) {
    const char* name = msg::code_name(static_cast<msg::Code>(code));
    if (std::string_view(name) == "UNKNOWN") continue;
    fmt::format_to(std::back_inserter(out), "ringmart_orders_failed_total{{reason=\"{}\"}} {}\n",
                   name, load(sm.failed_by_reason[code]));
  }

  family(out, "ringmart_gateway_pending_commands", "gauge", "Commands waiting for a reply.");
  fmt::format_to(std::back_inserter(out), "ringmart_gateway_pending_commands {}\n",
                 gateway.pending_commands);
  family(out, "ringmart_gateway_order_waiters", "gauge", "Parked order long-polls.");
  fmt::format_to(std::back_inserter(out), "ringmart_gateway_order_waiters {}\n",
                 gateway.order_waiters);
  family(out, "ringmart_gateway_accepted_orders", "gauge",
         "Orders accepted by the gateway and not yet reported final.");
  fmt::format_to(std::back_inserter(out), "ringmart_gateway_accepted_orders {}\n",
                 gateway.accepted_orders);
  family(out, "ringmart_gateway_connections_total", "counter", "Connections accepted per socket.");
  fmt::format_to(std::back_inserter(out),
                 "ringmart_gateway_connections_total{{socket=\"api\"}} {}\n"
                 "ringmart_gateway_connections_total{{socket=\"admin\"}} {}\n",
                 gateway.api_connections, gateway.admin_connections);
  family(out, "ringmart_gateway_connections_refused_total", "counter",
         "Connections answered 503 and closed per socket (connection limit or no descriptors).");
  fmt::format_to(std::back_inserter(out),
                 "ringmart_gateway_connections_refused_total{{socket=\"api\"}} {}\n"
                 "ringmart_gateway_connections_refused_total{{socket=\"admin\"}} {}\n",
                 gateway.api_refused, gateway.admin_refused);
  family(out, "ringmart_gateway_open_connections", "gauge", "Connections open now per socket.");
  fmt::format_to(std::back_inserter(out),
                 "ringmart_gateway_open_connections{{socket=\"api\"}} {}\n"
                 "ringmart_gateway_open_connections{{socket=\"admin\"}} {}\n",
                 gateway.api_open, gateway.admin_open);
  return out;
}

}  // namespace ringmart::gateway
