#include "daemons/gateway/status_report.hpp"

#include <fmt/format.h>

#include <functional>

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

}  // namespace

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
