// ringmartctl — operator CLI. Reads the status region and rings in shared
// memory directly (works while the gateway or any daemon is down) and the
// supervisor's saga table read-only.
//
// Operator actions go over the control channel of the status region (see
// ipc::ControlOp): re-drive / abandon a quarantined message (the daemon that
// quarantined it applies it again), re-drive / abandon a STUCK saga (the
// supervisor), start / restart a daemon (the supervisor).
//
// Exit codes: 0 ok (an action already done counts as ok: re-drive is
// idempotent); 1 degraded (a daemon not running, stuck sagas, quarantined
// messages waiting, saga or message not found, an action that failed);
// 2 usage error; 3 system not running (no shared memory) or the daemon did
// not answer.
#include <capnp/serialize.h>
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "daemons/common/runtime.hpp"
#include "daemons/order/order_feed.hpp"
#include "daemons/supervisor/saga_store.hpp"
#include "ipc/ring.hpp"
#include "ipc/status_region.hpp"
#include "storage/quarantine.hpp"
#include "tools/ctl/backup.hpp"

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
  std::string daemon;
  std::uint64_t message_id = 0;
  bool all = false;                ///< quarantine list: include re-driven / abandoned rows
  std::uint64_t after = 0;         ///< export orders: the last seq already had
  std::string format = "ndjson";   ///< export orders: ndjson | csv
  std::uint64_t export_limit = 0;  ///< export orders: at most this many (0 = all)
};

std::optional<runtime::DaemonId> parse_daemon(const std::string& name) {
  for (auto id : runtime::all_daemons()) {
    if (name == runtime::daemon_name(id)) return id;
  }
  std::fprintf(stderr, "ringmartctl: unknown daemon '%s'\n", name.c_str());
  return std::nullopt;
}

/// The running system's shared memory: the published transport (owner and
/// mode checked, so ringmartctl never trusts another user's segments) and
/// its status region.
struct Attached {
  runtime::ShmTransport transport;
  ipc::StatusRegion status;
};

std::optional<Attached> attach(const Options& o) {
  auto transport = runtime::read_shm_transport(o.runtime_dir, runtime::Viewer::operator_tool);
  if (!transport) {
    std::fprintf(stderr, "ringmartctl: no ringmart system at runtime dir %s (%s: %s)%s\n",
                 o.runtime_dir.c_str(), runtime::shm_transport_path(o.runtime_dir).c_str(),
                 transport.error().message().c_str(),
                 transport.error() == std::errc::permission_denied
                     ? "; run it as root, as the service's user, or as a member of the "
                       "operators' group ([runtime] operator_group)"
                     : "");
    return std::nullopt;
  }
  auto status = ipc::StatusRegion::open(runtime::status_name(transport->prefix), transport->access);
  if (!status) {
    std::fprintf(stderr, "ringmartctl: no ringmart system at runtime dir %s (%s)\n",
                 o.runtime_dir.c_str(), status.error().message().c_str());
    return std::nullopt;
  }
  return Attached{*transport, std::move(*status)};
}

json channel_json(const runtime::ShmTransport& t, const runtime::Channel& c) {
  auto ring = ipc::Ring::open(runtime::ring_name(t.prefix, c.from, c.to), t.access);
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
  auto attached = attach(o);
  if (!attached) return 3;
  auto* status = &attached->status;
  const auto& transport = attached->transport;
  const auto now = ipc::monotonic_ms();
  auto& l = status->layout();
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
      if (auto r =
              ipc::Ring::open(runtime::ring_name(transport.prefix, c.from, c.to), transport.access))
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
         {"quarantined", s.quarantined.load()},
         {"storage_full", (s.flags.load() & ipc::kFlagStorageFull) != 0},
         {"reason", ipc::reason(s)},
         {"inbound_ring_fill_bytes", fill}});
    healthy &= (s.flags.load() & ipc::kFlagStorageFull) == 0;
  }
  out["daemons"] = daemons;
  out["sagas"] = {
      {"running", l.sagas.running.load()},     {"compensating", l.sagas.compensating.load()},
      {"completed", l.sagas.completed.load()}, {"failed", l.sagas.failed.load()},
      {"stuck", l.sagas.stuck.load()},         {"abandoned", l.sagas.abandoned.load()}};
  healthy &= l.sagas.stuck.load() == 0;
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
      const auto reason = d["reason"].get<std::string>();
      if (d["storage_full"].get<bool>()) std::printf("  ! storage full\n");
      if (!reason.empty()) std::printf("  ! %s\n", reason.c_str());
      if (const auto q = d["quarantined"].get<std::uint64_t>())
        std::printf("  ! %llu message(s) quarantined since start (ringmartctl quarantine)\n",
                    static_cast<unsigned long long>(q));
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
  auto attached = attach(o);
  if (!attached) return 3;
  json rows = json::array();
  for (const auto& c : runtime::channels()) rows.push_back(channel_json(attached->transport, c));
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
            {"trace_id", v.trace_id.empty() ? json(nullptr) : json(v.trace_id)},
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

// export orders: the change feed after o.after, read from the order daemon's
// environment (read-only; works while the system runs or after it stopped).
// Exit 3 when the environment cannot be opened, 4 when the events after the
// cursor were pruned (the export would silently miss them), 2 for a cursor
// ahead of the feed.
int cmd_export_orders(const Options& o) {
  auto q = order::OrderQueries::open(o.state_dir + "/order", 1ull << 30);
  if (!q) {
    std::fprintf(stderr, "ringmartctl: cannot open the order store in %s/order: %s\n",
                 o.state_dir.c_str(), q.error().message().c_str());
    return 3;
  }
  if (o.format == "csv") std::printf("%s\n", order::feed_csv_header().c_str());
  std::uint64_t after = o.after;
  std::uint64_t written = 0;
  bool first_page = true;
  for (;;) {
    const std::size_t page = 1000;
    auto r = q->feed(after, page);
    if (!r) {
      std::fprintf(stderr, "ringmartctl: reading the feed failed: %s\n",
                   r.error().message().c_str());
      return 3;
    }
    const auto& [events, bounds] = *r;
    // Each page is its own snapshot: retention may prune between two pages,
    // so every page is checked, not only the first.
    const auto cursor = order::feed_cursor(after, bounds);
    if (first_page) {
      first_page = false;
      if (cursor == order::FeedCursor::ahead) {
        std::fprintf(stderr, "ringmartctl: --after %llu is ahead of the feed (last seq %llu)\n",
                     static_cast<unsigned long long>(after),
                     static_cast<unsigned long long>(bounds.last));
        return 2;
      }
    }
    if (cursor == order::FeedCursor::expired ||
        (!events.empty() && events.front().seq != after + 1)) {
      std::fprintf(
          stderr, "ringmartctl: the events after seq %llu were pruned (oldest kept: %llu)\n",
          static_cast<unsigned long long>(after), static_cast<unsigned long long>(bounds.first));
      return 4;
    }
    for (const auto& e : events) {
      if (o.export_limit != 0 && written >= o.export_limit) return 0;
      if (o.format == "csv") {
        std::printf("%s\n", order::feed_event_csv(e).c_str());
      } else {
        std::printf("%s\n", order::feed_event_json(e).dump().c_str());
      }
      after = e.seq;
      ++written;
    }
    if (events.size() < page) return 0;
  }
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
  if (!v->trace_id.empty()) std::printf("  trace %s\n", v->trace_id.c_str());
  const auto t0 = v->history.empty() ? 0 : v->history.front().at_ms;
  for (const auto& e : v->history) {
    std::printf("  +%6lld ms  %-17s %s\n", static_cast<long long>(e.at_ms - t0), e.step.c_str(),
                e.event.c_str());
  }
  return 0;
}

int report(const std::expected<ipc::ControlReply, std::error_code>& r, const Options& o) {
  if (!r) {
    std::fprintf(stderr, "ringmartctl: no answer: %s\n", r.error().message().c_str());
    return 3;
  }
  const char* result = "ok";
  switch (r->result) {
    case ipc::ControlResult::ok:
      break;
    case ipc::ControlResult::not_found:
      result = "not_found";
      break;
    case ipc::ControlResult::already_done:
      result = "already_done";
      break;
    case ipc::ControlResult::failed:
      result = "failed";
      break;
    case ipc::ControlResult::bad_request:
      result = "bad_request";
      break;
  }
  if (o.output == "json") {
    std::printf("%s\n", json{{"result", result}, {"message", r->message}}.dump(2).c_str());
  } else {
    std::printf("%s: %s\n", result, r->message.c_str());
  }
  switch (r->result) {
    case ipc::ControlResult::ok:
    case ipc::ControlResult::already_done:
      return 0;
    case ipc::ControlResult::bad_request:
      return 2;
    default:
      return 1;
  }
}

int control(const Options& o, runtime::DaemonId to, ipc::ControlOp op, std::uint64_t arg) {
  auto status = attach(o);
  if (!status) return 3;
  return report(ipc::control_call(status->status, runtime::index(to), op, arg, 10000), o);
}

int cmd_quarantine_list(const Options& o, const runtime::Config& config) {
  json rows = json::array();
  std::size_t waiting = 0;
  for (auto id : runtime::all_daemons()) {
    const std::string name = runtime::daemon_name(id);
    auto env = storage::Env::open({.path = config.env_path(name),
                                   .map_size_bytes = config.map_size_for(name),
                                   .read_only = true});
    if (!env) continue;  // never started: nothing quarantined
    auto txn = storage::Txn::begin_read(**env);
    if (!txn) continue;
    auto q = storage::Quarantine::open(*txn);
    if (!q) continue;
    q->scan(*txn, [&](const storage::QuarantinedMessage& m) {
      if (m.state == storage::QuarantineState::quarantined) ++waiting;
      if (!o.all && m.state != storage::QuarantineState::quarantined) return true;
      json j = {{"daemon", name},
                {"id", m.id},
                {"from", runtime::daemon_name(static_cast<runtime::DaemonId>(m.sender))},
                {"seq", m.seq},
                {"state", storage::to_string(m.state)},
                {"attempts", m.attempts},
                {"quarantined_at_ms", m.quarantined_at_ms},
                {"resolved_at_ms", m.resolved_at_ms},
                {"error", m.error},
                {"bytes", m.message.size()}};
      // Name the payload when the bytes still parse; the row keeps them either way.
      try {
        kj::Array<capnp::word> words = kj::heapArray<capnp::word>(m.message.size() / 8);
        std::memcpy(words.begin(), m.message.data(), words.size() * 8);
        capnp::FlatArrayMessageReader reader(words);
        auto e = reader.getRoot<msg::Envelope>();
        j["message_id"] = e.getMessageId();
        j["saga_id"] = e.getSagaId();
        j["payload"] = static_cast<unsigned>(e.getPayload().which());
      } catch (const kj::Exception&) {
        j["payload"] = nullptr;
      }
      rows.push_back(std::move(j));
      return rows.size() < o.limit;
    });
  }
  if (o.output == "json") {
    std::printf("%s\n", rows.dump(2).c_str());
  } else {
    std::printf("%-10s %6s %-10s %10s %-11s %8s  %s\n", "DAEMON", "ID", "FROM", "SEQ", "STATE",
                "ATTEMPTS", "ERROR");
    for (const auto& r : rows) {
      std::printf("%-10s %6llu %-10s %10llu %-11s %8u  %s\n",
                  r["daemon"].get<std::string>().c_str(),
                  static_cast<unsigned long long>(r["id"].get<std::uint64_t>()),
                  r["from"].get<std::string>().c_str(),
                  static_cast<unsigned long long>(r["seq"].get<std::uint64_t>()),
                  r["state"].get<std::string>().c_str(), r["attempts"].get<unsigned>(),
                  r["error"].get<std::string>().c_str());
    }
  }
  return waiting ? 1 : 0;
}

/// Ids and limits are positive decimal integers that fit 64 bits: CLI11 alone
/// would read "-1" as 18446744073709551615 and "0x10" or "+5" as numbers.
const CLI::Validator kPositiveDecimal(
    [](std::string& text) -> std::string {
      std::uint64_t v = 0;
      const auto* end = text.data() + text.size();
      const auto [ptr, ec] = std::from_chars(text.data(), end, v);
      const bool digits =
          !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
      if (!digits || ec != std::errc{} || ptr != end || v == 0) {
        return "'" + text + "' is not a positive decimal integer (1.." +
               std::to_string(std::numeric_limits<std::uint64_t>::max()) + ")";
      }
      return {};
    },
    "POSITIVE_INTEGER");

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
  sagas
      ->add_option("--state", o.saga_state,
                   "RUNNING, COMPENSATING, COMPLETED, FAILED, STUCK or ABANDONED")
      ->check(
          CLI::IsMember({"RUNNING", "COMPENSATING", "COMPLETED", "FAILED", "STUCK", "ABANDONED"}));
  sagas->add_option("--limit", o.limit, "at most this many")
      ->check(kPositiveDecimal)
      ->capture_default_str();
  auto* export_cmd = app.add_subcommand("export", "export data for a data platform");
  auto* export_orders = export_cmd->add_subcommand(
      "orders", "the order change feed after --after, oldest first (NDJSON or CSV on stdout)");
  export_orders->add_option("--after", o.after, "the last seq already exported (0: from the start)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  export_orders->add_option("--format", o.format, "ndjson or csv")
      ->check(CLI::IsMember({"ndjson", "csv"}))
      ->capture_default_str();
  export_orders->add_option("--limit", o.export_limit, "at most this many events (0: all)")
      ->capture_default_str();
  auto* saga = app.add_subcommand("saga", "one saga");
  auto* show = saga->add_subcommand("show", "a saga's timeline");
  show->add_option("ID", o.saga_id, "saga (= order) id")->required()->check(kPositiveDecimal);
  auto* saga_redrive =
      saga->add_subcommand("redrive", "resume a STUCK saga's compensation with a fresh budget");
  saga_redrive->add_option("ID", o.saga_id, "saga (= order) id")
      ->required()
      ->check(kPositiveDecimal);
  auto* saga_abandon = saga->add_subcommand(
      "abandon", "give up on a STUCK saga (ABANDONED; settle its effects by hand)");
  saga_abandon->add_option("ID", o.saga_id, "saga (= order) id")
      ->required()
      ->check(kPositiveDecimal);
  saga->require_subcommand(1);
  std::string config_file;
  auto* quarantine = app.add_subcommand("quarantine", "messages a daemon could not apply");
  quarantine->add_option("--config", config_file, "the system's TOML config (map sizes)");
  auto* q_list = quarantine->add_subcommand("list", "quarantined messages of every daemon");
  q_list->add_flag("--all", o.all, "include re-driven and abandoned ones");
  q_list->add_option("--limit", o.limit, "at most this many")
      ->check(kPositiveDecimal)
      ->capture_default_str();
  auto* q_redrive = quarantine->add_subcommand("redrive", "apply a quarantined message again");
  q_redrive->add_option("DAEMON", o.daemon, "the daemon that quarantined it")->required();
  q_redrive->add_option("ID", o.message_id, "quarantine id")->required()->check(kPositiveDecimal);
  auto* q_abandon = quarantine->add_subcommand("abandon", "give up on a quarantined message");
  q_abandon->add_option("DAEMON", o.daemon, "the daemon that quarantined it")->required();
  q_abandon->add_option("ID", o.message_id, "quarantine id")->required()->check(kPositiveDecimal);
  auto* start = app.add_subcommand("start", "start a daemon that is not running (after a fix)");
  start->add_option("DAEMON", o.daemon, "daemon name")->required();
  auto* restart = app.add_subcommand("restart", "restart a daemon (e.g. after a config change)");
  restart->add_option("DAEMON", o.daemon, "daemon name")->required();
  auto* stop = app.add_subcommand("stop", "stop a daemon and keep it stopped until `start`");
  stop->add_option("DAEMON", o.daemon, "daemon name")->required();
  std::string backup_dir;
  std::uint64_t pause_ms = 30000;
  auto* backup = app.add_subcommand(
      "backup", "copy every daemon's environment, at one cut, while the system runs");
  backup->add_option("DIR", backup_dir, "new or empty directory for the backup")->required();
  backup
      ->add_option("--pause-ms", pause_ms,
                   "the longest commits may stay paused while the copies begin")
      ->check(CLI::Range(1, 60000))
      ->capture_default_str();
  backup->add_option("--config", config_file, "the system's TOML config (map sizes)");
  auto* restore = app.add_subcommand(
      "restore", "prepare --state-dir (new or empty) from a backup; then start the system on it");
  restore->add_option("DIR", backup_dir, "a directory written by `ringmartctl backup`")->required();
  app.require_subcommand(1);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (*status) return cmd_status(o);
  if (*restore) return ctl::restore(backup_dir, o.state_dir, o.output == "json");
  if (*backup) {
    auto config = runtime::Config::load(o.state_dir, o.runtime_dir, config_file);
    if (!config) {
      std::fprintf(stderr, "ringmartctl: %s\n", config.error().c_str());
      return 2;
    }
    auto attached = attach(o);
    if (!attached) return 3;
    return ctl::backup(*config, attached->status, backup_dir, pause_ms, o.output == "json");
  }
  if (*outbox) return cmd_outbox(o);
  if (*export_orders) return cmd_export_orders(o);
  if (*sagas) return cmd_sagas(o);
  if (*show) return cmd_saga_show(o);
  if (*saga_redrive)
    return control(o, msg::DaemonId::SUPERVISOR, ipc::ControlOp::redrive_saga, o.saga_id);
  if (*saga_abandon)
    return control(o, msg::DaemonId::SUPERVISOR, ipc::ControlOp::abandon_saga, o.saga_id);
  if (*quarantine) {
    if (*q_redrive || *q_abandon) {
      auto id = parse_daemon(o.daemon);
      if (!id) return 2;
      return control(o, *id,
                     *q_redrive ? ipc::ControlOp::redrive_message : ipc::ControlOp::abandon_message,
                     o.message_id);
    }
    auto config = runtime::Config::load(o.state_dir, o.runtime_dir, config_file);
    if (!config) {
      std::fprintf(stderr, "ringmartctl: %s\n", config.error().c_str());
      return 2;
    }
    return cmd_quarantine_list(o, *config);
  }
  if (*start || *restart || *stop) {
    auto id = parse_daemon(o.daemon);
    if (!id || *id == msg::DaemonId::SUPERVISOR) return 2;
    const auto op = *start     ? ipc::ControlOp::start_daemon
                    : *restart ? ipc::ControlOp::restart_daemon
                               : ipc::ControlOp::stop_daemon;
    return control(o, msg::DaemonId::SUPERVISOR, op, runtime::index(*id));
  }
  return 2;
}
