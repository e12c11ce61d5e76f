// ringmartctl — operator CLI. Reads the status region and rings in shared
// memory directly (works while the gateway or any daemon is down) and the
// supervisor's saga table read-only.
//
// Exit codes: 0 ok; 1 degraded (a daemon not running, stuck sagas, saga not
// found); 2 usage error; 3 system not running (no shared memory).
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "daemons/common/runtime.hpp"
#include "daemons/supervisor/saga_store.hpp"
#include "ipc/ring.hpp"
#include "ipc/status_region.hpp"

using namespace ringmart;
using nlohmann::json;

namespace {

struct Options {
  std::string runtime_dir = "/run/ringmart";
  std::string state_dir = "/var/lib/ringmart";
  std::string output = "text";
  std::string saga_state;
  std::uint64_t saga_id = 0;
  std::size_t limit = 100;
};

std::optional<ipc::StatusRegion> attach(const Options& o) {
  auto status = ipc::StatusRegion::open(runtime::status_name(runtime::shm_prefix(o.runtime_dir)));
  if (!status) {
    std::fprintf(stderr, "ringmartctl: no ringmart system at runtime dir %s (%s)\n",
                 o.runtime_dir.c_str(), status.error().message().c_str());
    return std::nullopt;
  }
  return std::move(*status);
}

json channel_json(const std::string& prefix, const runtime::Channel& c) {
  auto ring = ipc::Ring::open(runtime::ring_name(prefix, c.from, c.to));
  json j = {{"from", runtime::daemon_name(c.from)}, {"to", runtime::daemon_name(c.to)}};
  if (!ring) {
    j["error"] = ring.error().message();
    return j;
  }
  const auto pushed = ring->pushed_seq(), acked = ring->acked_seq();
  j["pushed_seq"] = pushed;
  j["acked_seq"] = acked;
  j["lag"] = pushed > acked ? pushed - acked : 0;
  j["fill_bytes"] = ring->fill_bytes();
  j["capacity_bytes"] = ring->capacity();
  return j;
}

int cmd_status(const Options& o) {
  auto status = attach(o);
  if (!status) return 3;
  const auto now = ipc::monotonic_ms();
  auto& l = status->layout();
  const auto prefix = runtime::shm_prefix(o.runtime_dir);
  json out;
  out["supervisor_pid"] = l.supervisor_pid.load();
  bool healthy = l.supervisor_pid.load() != 0;
  json daemons = json::array();
  for (auto id : runtime::all_daemons()) {
    auto& s = status->slot(runtime::index(id));
    const auto hb = s.heartbeat_ms.load();
    auto state = static_cast<ipc::DaemonState>(s.state.load());
    if (id == msg::DaemonId::SUPERVISOR) {
      state = l.supervisor_pid.load() ? ipc::DaemonState::running : ipc::DaemonState::stopped;
    }
    healthy &= state == ipc::DaemonState::running;
    std::uint64_t fill = 0;
    for (const auto& c : runtime::channels()) {
      if (c.to != id) continue;
      if (auto r = ipc::Ring::open(runtime::ring_name(prefix, c.from, c.to)))
        fill += r->fill_bytes();
    }
    daemons.push_back(
        {{"name", runtime::daemon_name(id)},
         {"pid", id == msg::DaemonId::SUPERVISOR ? l.supervisor_pid.load() : s.pid.load()},
         {"state", ipc::to_string(state)},
         {"restarts", s.restarts.load()},
         {"heartbeat_age_ms", hb ? now - hb : -1},
         {"messages_in", s.messages_in.load()},
         {"messages_out", s.messages_out.load()},
         {"duplicates", s.duplicates.load()},
         {"commits", s.commits.load()},
         {"errors", s.errors.load()},
         {"outbox_pending", s.outbox_pending.load()},
         {"inbound_ring_fill_bytes", fill}});
  }
  out["daemons"] = daemons;
  out["sagas"] = {{"running", l.sagas.running.load()},
                  {"compensating", l.sagas.compensating.load()},
                  {"completed", l.sagas.completed.load()},
                  {"failed", l.sagas.failed.load()},
                  {"stuck", l.sagas.stuck.load()}};
  out["healthy"] = healthy;
  if (o.output == "json") {
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    std::printf("%-11s %8s %-9s %8s %9s %10s %10s %6s %7s %9s\n", "DAEMON", "PID", "STATE",
                "RESTARTS", "HB_AGE_MS", "MSGS_IN", "MSGS_OUT", "DUPS", "ERRORS", "RING_FILL");
    for (const auto& d : daemons) {
      std::printf(
          "%-11s %8d %-9s %8u %9lld %10llu %10llu %6llu %7llu %9llu\n",
          d["name"].get<std::string>().c_str(), d["pid"].get<int>(),
          d["state"].get<std::string>().c_str(), d["restarts"].get<unsigned>(),
          static_cast<long long>(d["heartbeat_age_ms"].get<std::int64_t>()),
          static_cast<unsigned long long>(d["messages_in"].get<std::uint64_t>()),
          static_cast<unsigned long long>(d["messages_out"].get<std::uint64_t>()),
          static_cast<unsigned long long>(d["duplicates"].get<std::uint64_t>()),
          static_cast<unsigned long long>(d["errors"].get<std::uint64_t>()),
          static_cast<unsigned long long>(d["inbound_ring_fill_bytes"].get<std::uint64_t>()));
    }
    const auto& s = out["sagas"];
    std::printf("sagas: %llu running, %llu compensating, %llu completed, %llu failed, %llu stuck\n",
                static_cast<unsigned long long>(s["running"].get<std::uint64_t>()),
                static_cast<unsigned long long>(s["compensating"].get<std::uint64_t>()),
                static_cast<unsigned long long>(s["completed"].get<std::uint64_t>()),
                static_cast<unsigned long long>(s["failed"].get<std::uint64_t>()),
                static_cast<unsigned long long>(s["stuck"].get<std::uint64_t>()));
  }
  return healthy ? 0 : 1;
}

int cmd_outbox(const Options& o) {
  if (!attach(o)) return 3;
  const auto prefix = runtime::shm_prefix(o.runtime_dir);
  json rows = json::array();
  for (const auto& c : runtime::channels()) rows.push_back(channel_json(prefix, c));
  if (o.output == "json") {
    std::printf("%s\n", rows.dump(2).c_str());
    return 0;
  }
  std::printf("%-11s %-11s %10s %10s %8s %10s\n", "FROM", "TO", "PUSHED", "ACKED", "LAG", "FILL");
  for (const auto& r : rows) {
    if (r.contains("error")) {
      std::printf("%-11s %-11s %s\n", r["from"].get<std::string>().c_str(),
                  r["to"].get<std::string>().c_str(), r["error"].get<std::string>().c_str());
      continue;
    }
    std::printf("%-11s %-11s %10llu %10llu %8llu %10llu\n", r["from"].get<std::string>().c_str(),
                r["to"].get<std::string>().c_str(),
                static_cast<unsigned long long>(r["pushed_seq"].get<std::uint64_t>()),
                static_cast<unsigned long long>(r["acked_seq"].get<std::uint64_t>()),
                static_cast<unsigned long long>(r["lag"].get<std::uint64_t>()),
                static_cast<unsigned long long>(r["fill_bytes"].get<std::uint64_t>()));
  }
  return 0;
}

json saga_json(const supervisor::SagaView& v) {
  json h = json::array();
  for (const auto& e : v.history)
    h.push_back({{"step", e.step}, {"event", e.event}, {"at_ms", e.at_ms}});
  json j = {{"saga_id", v.saga_id},
            {"order_id", v.order_id},
            {"state", v.state},
            {"step", v.step},
            {"created_at_ms", v.created_at_ms},
            {"updated_at_ms", v.updated_at_ms},
            {"history", h}};
  j["failure_reason"] = v.failure_reason.empty() ? json(nullptr) : json(v.failure_reason);
  return j;
}

std::optional<supervisor::SagaQueries> open_sagas(const Options& o) {
  auto q = supervisor::SagaQueries::open(o.state_dir + "/supervisor", 1ull << 30);
  if (!q) {
    std::fprintf(stderr, "ringmartctl: cannot open saga store in %s/supervisor: %s\n",
                 o.state_dir.c_str(), q.error().message().c_str());
    return std::nullopt;
  }
  return std::move(*q);
}

int cmd_sagas(const Options& o) {
  auto q = open_sagas(o);
  if (!q) return 3;
  auto list = q->list(o.saga_state, o.limit);
  if (o.output == "json") {
    json rows = json::array();
    for (const auto& v : list) rows.push_back(saga_json(v));
    std::printf("%s\n", rows.dump(2).c_str());
    return 0;
  }
  std::printf("%-12s %-13s %-17s %s\n", "SAGA", "STATE", "STEP", "REASON");
  for (const auto& v : list) {
    std::printf("%-12llu %-13s %-17s %s\n", static_cast<unsigned long long>(v.saga_id),
                v.state.c_str(), v.step.c_str(), v.failure_reason.c_str());
  }
  return 0;
}

int cmd_saga_show(const Options& o) {
  auto q = open_sagas(o);
  if (!q) return 3;
  auto v = q->get(o.saga_id);
  if (!v) {
    std::fprintf(stderr, "ringmartctl: saga %llu not found\n",
                 static_cast<unsigned long long>(o.saga_id));
    return 1;
  }
  if (o.output == "json") {
    std::printf("%s\n", saga_json(*v).dump(2).c_str());
    return 0;
  }
  std::printf("saga %llu (order %llu): %s%s%s\n", static_cast<unsigned long long>(v->saga_id),
              static_cast<unsigned long long>(v->order_id), v->state.c_str(),
              v->failure_reason.empty() ? "" : " reason ", v->failure_reason.c_str());
  const auto t0 = v->history.empty() ? 0 : v->history.front().at_ms;
  for (const auto& e : v->history) {
    std::printf("  +%6lld ms  %-17s %s\n", static_cast<long long>(e.at_ms - t0), e.step.c_str(),
                e.event.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app("ringmartctl — inspect a running ringmart system");
  app.add_option("--runtime-dir", o.runtime_dir, "the system's runtime directory")
      ->capture_default_str();
  app.add_option("--state-dir", o.state_dir, "the system's state directory")->capture_default_str();
  app.add_option("-o,--output", o.output, "text or json")->check(CLI::IsMember({"text", "json"}));
  auto* status =
      app.add_subcommand("status", "daemons, restarts, heartbeats, ring fill, saga counts");
  auto* outbox =
      app.add_subcommand("outbox", "per channel: pushed / acknowledged seq, lag, ring fill");
  auto* sagas = app.add_subcommand("sagas", "list sagas");
  sagas->add_option("--state", o.saga_state, "RUNNING, COMPENSATING, COMPLETED, FAILED or STUCK")
      ->check(CLI::IsMember({"RUNNING", "COMPENSATING", "COMPLETED", "FAILED", "STUCK"}));
  sagas->add_option("--limit", o.limit, "at most this many")->capture_default_str();
  auto* saga = app.add_subcommand("saga", "one saga");
  auto* show = saga->add_subcommand("show", "a saga's timeline");
  show->add_option("ID", o.saga_id, "saga (= order) id")->required();
  saga->require_subcommand(1);
  app.require_subcommand(1);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (*status) return cmd_status(o);
  if (*outbox) return cmd_outbox(o);
  if (*sagas) return cmd_sagas(o);
  if (*show) return cmd_saga_show(o);
  return 2;
}
