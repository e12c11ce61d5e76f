#include "daemons/gateway/gateway.hpp"

#include <time.h>

#include <boost/asio/post.hpp>
#include <chrono>
#include <limits>
#include <set>
#include <thread>
#include <utility>

#include "daemons/order/order_feed.hpp"
#include "daemons/ranking/ranking_store.hpp"
#include "storage/text.hpp"
#include "telemetry/log.hpp"
#include "telemetry/trace_context.hpp"

namespace ringmart::gateway {
namespace {

namespace asio = boost::asio;
using nlohmann::json;
using runtime::DaemonId;
using Payload = msg::Envelope::Payload;

// Message ids of gateway commands: bit 62 set, bit 63 clear. Saga command ids
// are below 2^56 and runtime auto-ids set bit 63, so the spaces are disjoint.
constexpr std::uint64_t kCommandIdBit = 1ull << 62;
constexpr std::uint64_t kCommandIdMask = kCommandIdBit - 1;
// Command ids: bit 62, then 24 bits of the start count, then a 38-bit counter.
constexpr unsigned kStartEpochShift = 38;
constexpr std::uint64_t kStartEpochMask = (1ull << 24) - 1;

std::int64_t realtime_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::int64_t realtime_ms() { return realtime_ns() / 1'000'000; }

capnp::Text::Reader text(const std::string& s) { return capnp::Text::Reader(s.data(), s.size()); }

http::Response respond(std::expected<json, ApiError> result) {
  if (!result) return result.error().response();
  return http::json_response(200, *result);
}

http::Response accepted_response(std::uint64_t order_id) {
  auto r = http::json_response(202, json{{"order_id", order_id}, {"status", "PENDING"}});
  r.headers["Location"] = "/v1/orders/" + std::to_string(order_id);
  return r;
}

// GET /v1/orders/{id} while the order daemon has not stored the order yet.
json pending_order_json(const AcceptedOrder& o) {
  json items = json::array();
  for (const auto& l : o.lines) {
    items.push_back({{"product_id", l.product_id},
                     {"quantity", l.quantity},
                     {"unit_price", l.unit_price_cents}});
  }
  return json{
      {"order_id", o.order_id},
      {"status", "PENDING"},
      {"user_id", o.user_id},
      {"subtotal", o.subtotal_cents},
      {"shipping", o.shipping_cents},
      {"discount", 0},
      {"points_used", 0},
      {"paid", 0},
      {"items", std::move(items)},
      {"shipping_address", o.shipping_address ? address_json(*o.shipping_address) : json(nullptr)},
      {"shipment", nullptr}};
}

ApiError idempotency_conflict(std::uint64_t order_id) {
  return ApiError{409, "IDEMPOTENCY_KEY_REUSED",
                  "this Idempotency-Key was used for order " + std::to_string(order_id) +
                      " with a different request body"};
}

// Adds the W3C `traceresponse` header (Trace Context Level 2) to whatever
// answer the request gets, so the client learns the trace its order runs in.
class TracedResponder final : public http::Responder {
 public:
  TracedResponder(http::ResponderPtr inner, std::string traceresponse)
      : inner_(std::move(inner)), traceresponse_(std::move(traceresponse)) {}
  void send(http::Response response) override {
    response.headers["traceresponse"] = traceresponse_;
    inner_->send(std::move(response));
  }

 private:
  http::ResponderPtr inner_;
  std::string traceresponse_;
};

// 401 with the challenge of RFC 6750 §3: error="invalid_token" when a token
// was presented but does not authenticate.
http::Response unauthenticated(bool token_presented, std::string_view message) {
  auto r = http::error_response(401, "UNAUTHENTICATED", message);
  r.headers["WWW-Authenticate"] = token_presented
                                      ? R"(Bearer realm="ringmart", error="invalid_token")"
                                      : R"(Bearer realm="ringmart")";
  return r;
}

// The same answer as for an unknown user: another customer's id is no oracle.
http::Response user_not_found(std::uint64_t user_id) {
  return http::error_response(404, "USER_NOT_FOUND",
                              "user " + std::to_string(user_id) + " not found");
}

http::Response invalid_credentials() {
  return http::error_response(401, "INVALID_CREDENTIALS",
                              "the e-mail address or the password is wrong");
}

// 429 (RFC 6585 §4) with Retry-After in whole seconds, at least 1.
http::Response too_many_attempts(std::int64_t retry_after_ms) {
  auto r = http::error_response(
      429, "TOO_MANY_ATTEMPTS",
      "too many wrong passwords for this account; logins are refused for a while");
  r.headers["Retry-After"] =
      std::to_string(std::max<std::int64_t>(1, (retry_after_ms + 999) / 1000));
  return r;
}

http::Response hashing_busy() {
  auto r = http::error_response(503, "BUSY",
                                "too many passwords are being checked at once; retry shortly");
  r.headers["Retry-After"] = "1";
  return r;
}

// Releases what a request holds once it is answered, however (a reply, an
// error, a timeout, the gateway shutting down). Not on destruction: a
// responder dropped unanswered only happens as the gateway goes away.
class ReleasingResponder final : public http::Responder {
 public:
  ReleasingResponder(http::ResponderPtr inner, std::function<void()> release)
      : inner_(std::move(inner)), release_(std::move(release)) {}
  void send(http::Response response) override {
    if (release_) std::exchange(release_, nullptr)();
    inner_->send(std::move(response));
  }

 private:
  http::ResponderPtr inner_;
  std::function<void()> release_;
};

http::Response no_content() {
  http::Response r;
  r.status = 204;
  return r;
}

capnp::Data::Reader data(const TokenHash& h) {
  return capnp::Data::Reader(reinterpret_cast<const capnp::byte*>(h.data()), h.size());
}

void fill_address(msg::Address::Builder b, const user::Address& a) { user::to_message(a, b); }

}  // namespace

std::expected<GatewayOptions, std::string> GatewayOptions::from(const runtime::Config& config) {
  GatewayOptions o;
  const auto auth = config.get_string("gateway", "customer_auth", "token");
  if (auth == "token") {
    o.customer_auth = CustomerAuth::token;
  } else if (auth == "trusted") {
    o.customer_auth = CustomerAuth::trusted;
  } else {
    return std::unexpected("[gateway] customer_auth must be \"token\" or \"trusted\", not \"" +
                           auth + "\"");
  }
  if (auto hours = config.file["accounts"]["session_ttl_hours"].value<double>()) {
    o.session_ttl_ms =
        static_cast<std::int64_t>(std::clamp(*hours, 1.0 / 3600, 24.0 * 366) * 3600 * 1000);
  }
  o.password_cost = PasswordCost::from(config);
  // 0 (or absent): half the CPUs, at least one.
  const auto threads = config.get_int("accounts", "hash_threads", 0);
  o.hash_threads = threads > 0 ? static_cast<unsigned>(std::min<std::int64_t>(threads, 64))
                               : std::max(1u, std::thread::hardware_concurrency() / 2);
  o.max_queued_hashes = static_cast<std::size_t>(
      std::clamp<std::int64_t>(config.get_int("accounts", "max_queued_hashes",
                                              static_cast<std::int64_t>(o.max_queued_hashes)),
                               1, 100'000));
  o.command_timeout_ms = config.get_int("gateway", "command_timeout_ms", o.command_timeout_ms);
  o.fresh_heartbeat_ms = config.get_int("gateway", "fresh_heartbeat_ms", o.fresh_heartbeat_ms);
  o.order_poll_ms = config.get_int("gateway", "order_poll_ms", o.order_poll_ms);
  o.max_order_waiters = static_cast<std::size_t>(config.get_int(
      "gateway", "max_order_waiters", static_cast<std::int64_t>(o.max_order_waiters)));
  if (auto hours = config.file["gateway"]["idempotency_key_ttl_hours"].value<double>()) {
    o.idempotency_key_ttl_ms = static_cast<std::int64_t>(std::max(0.0, *hours) * 3600 * 1000);
  }
  return o;
}

ListenOptions ListenOptions::from(const runtime::Config& config) {
  ListenOptions o;
  const auto positive = [&](const char* key, std::int64_t fallback) {
    return std::max<std::int64_t>(1, config.get_int("gateway", key, fallback));
  };
  o.api_max_connections = static_cast<std::size_t>(
      positive("max_connections", static_cast<std::int64_t>(o.api_max_connections)));
  o.admin_max_connections = static_cast<std::size_t>(
      positive("max_admin_connections", static_cast<std::int64_t>(o.admin_max_connections)));
  o.header_timeout_ms = static_cast<unsigned>(std::clamp<std::int64_t>(
      config.get_int("gateway", "header_timeout_ms", o.header_timeout_ms), 0, 3'600'000));
  o.idle_timeout_ms = static_cast<unsigned>(std::clamp<std::int64_t>(
      config.get_int("gateway", "idle_timeout_ms", o.idle_timeout_ms), 0, 86'400'000));
  return o;
}

ListenOptions ListenOptions::within(std::uint64_t open_files) const {
  ListenOptions o = *this;
  const std::uint64_t usable = open_files > kReservedFds ? open_files - kReservedFds : 2;
  o.admin_max_connections = static_cast<std::size_t>(
      std::clamp<std::uint64_t>(admin_max_connections, 1, std::max<std::uint64_t>(1, usable / 2)));
  const std::uint64_t left =
      usable > o.admin_max_connections ? usable - o.admin_max_connections : 1;
  o.api_max_connections =
      static_cast<std::size_t>(std::clamp<std::uint64_t>(api_max_connections, 1, left));
  return o;
}

std::expected<IntakeStore, std::error_code> Gateway::open_tables(runtime::Runtime& rt) {
  std::optional<IntakeStore> store;
  if (auto ec = rt.transact([&](runtime::Context& ctx) -> std::error_code {
        auto s = IntakeStore::open(ctx.txn());
        if (!s) return s.error();
        store = *s;
        return {};
      })) {
    return std::unexpected(ec);
  }
  return *store;
}

Gateway::Gateway(asio::io_context& io, runtime::Runtime& rt, IntakeStore intake,
                 GatewayOptions options)
    : io_(io),
      rt_(rt),
      intake_(intake),
      options_(options),
      reads_(rt.config()),
      log_(rt.log()),
      // Seeded from the realtime clock so ids stay unique across restarts (a
      // restart takes longer than the ns a previous run could have used up).
      message_counter_(static_cast<std::uint64_t>(realtime_ns())),
      poll_timer_(io),
      key_expiry_(options.idempotency_key_ttl_ms, kExpireBatch, "idempotency keys"),
      hasher_(io, options.password_cost, options.hash_threads, options.max_queued_hashes) {}

Gateway::~Gateway() = default;

void Gateway::attach() {
  // Command message ids: unique across the gateway's lives (a key stored in
  // an earlier life maps its id to its reply), from the count of starts.
  if (auto ec = rt_.transact([&](runtime::Context& ctx) -> std::error_code {
        auto starts = intake_.next_start(ctx.txn());
        if (!starts) return starts.error();
        message_counter_ = (*starts & kStartEpochMask) << kStartEpochShift;
        return {};
      })) {
    log_->warn("cannot count this start ({}): command ids restart from 0", ec.message());
  }
  rt_.on_message(
      [this](runtime::Context& ctx, msg::Envelope::Reader m) { return on_message(ctx, m); });
  rt_.on_tick([this](std::int64_t) { expire_keys(); });
}

void Gateway::expire_keys() {
  // Logged by Retention; an error is retried on a later tick.
  (void)key_expiry_.run(rt_, realtime_ms(),
                        [&](storage::Txn& txn, std::int64_t cutoff, std::size_t n) {
                          return intake_.expire_keys(txn, cutoff, n);
                        });
}

void Gateway::set_servers(const http::Server* api, const http::Server* admin) {
  api_server_ = api;
  admin_server_ = admin;
}

// ---------------------------------------------------------------- runtime thread

std::error_code Gateway::on_message(runtime::Context& ctx, msg::Envelope::Reader m) {
  const auto payload = m.getPayload();
  switch (payload.which()) {
    case Payload::REPLY: {
      const auto r = payload.getReply();
      CommandReply reply{r.getCode(), r.getId(), r.getValue(), storage::to_string(r.getMessage())};
      const auto correlation = m.getCorrelationId();
      // A command sent under an Idempotency-Key: its answer is kept for retries,
      // with this reply's inbox mark.
      if (auto stored = intake_.answer_command(ctx.txn(), correlation, reply); !stored) {
        return stored.error();
      }
      // Answer only once the inbox mark is durable: a crash before the commit
      // re-reads the reply instead of having answered it.
      ctx.after_commit([this, correlation, reply = std::move(reply)] {
        to_io([this, correlation, reply] { on_reply(correlation, reply); });
      });
      return {};
    }
    case Payload::ORDER_FINALIZED: {
      const auto f = payload.getOrderFinalized();
      const auto order_id = f.getOrderId();
      // The order daemon answers for it from now on.
      intake_.forget(ctx.txn(), order_id);
      log_->debug("order={} finalized completed={} reason={}", order_id, f.getCompleted(),
                  runtime::code_name(f.getReason()));
      ctx.after_commit(
          [this, order_id] { to_io([this, order_id] { on_order_finalized(order_id); }); });
      return {};
    }
    default:
      log_->warn("unexpected message type {} from {} ignored", static_cast<int>(payload.which()),
                 runtime::daemon_name(m.getSender()));
      return {};
  }
}

void Gateway::to_io(std::function<void()> fn) { asio::post(io_, std::move(fn)); }

// ---------------------------------------------------------------- commands (io thread)

std::uint64_t Gateway::next_message_id() {
  return kCommandIdBit | (++message_counter_ & kCommandIdMask);
}

bool Gateway::alive(DaemonId id) const {
  // A daemon whose storage is full cannot apply a write: refuse it now
  // rather than let it wait in the ring behind a problem only an operator fixes.
  if (rt_.status().slot(runtime::index(id)).flags.load(std::memory_order_relaxed) &
      ipc::kFlagStorageFull)
    return false;
  return daemon_alive(rt_.status().layout(), id, ipc::monotonic_ms(), options_.fresh_heartbeat_ms);
}

http::Response Gateway::unavailable(DaemonId id) const {
  const auto& slot = rt_.status().slot(runtime::index(id));
  if (slot.flags.load(std::memory_order_relaxed) & ipc::kFlagStorageFull) {
    return http::error_response(503, "STORAGE_FULL",
                                std::string("the ") + runtime::daemon_name(id) +
                                    " daemon's storage is full; an operator must enlarge it");
  }
  const auto why = ipc::reason(slot);
  return http::error_response(503, "UNAVAILABLE",
                              std::string("the ") + runtime::daemon_name(id) +
                                  " daemon is not running; retry later" +
                                  (why.empty() ? std::string() : " (" + why + ")"));
}

void Gateway::add_pending(std::uint64_t token, http::ResponderPtr responder, ReplyHandler on_reply,
                          std::string waiting_for) {
  auto timer = std::make_unique<asio::steady_timer>(io_);
  timer->expires_after(std::chrono::milliseconds(options_.command_timeout_ms));
  timer->async_wait(
      [this, token, waiting_for = std::move(waiting_for)](const boost::system::error_code& ec) {
        if (ec) return;  // cancelled: answered in time
        finish(token, http::error_response(504, "TIMEOUT",
                                           "no answer from " + waiting_for + " within " +
                                               std::to_string(options_.command_timeout_ms) +
                                               " ms; the command stays queued"));
      });
  pending_.emplace(token, Pending{std::move(responder), std::move(on_reply), std::move(timer)});
}

http::ResponderPtr Gateway::take_pending(std::uint64_t token) {
  auto it = pending_.find(token);
  if (it == pending_.end()) return nullptr;  // timed out before, or shut down
  auto p = std::move(it->second);
  pending_.erase(it);
  p.timer->cancel();
  return std::move(p.responder);
}

void Gateway::finish(std::uint64_t token, http::Response response) {
  if (auto responder = take_pending(token)) responder->send(std::move(response));
}

std::expected<std::optional<Gateway::CommandKey>, ApiError> Gateway::command_key_of(
    const http::Request& req) {
  auto it = req.headers.find("idempotency-key");
  if (it == req.headers.end()) return std::nullopt;
  if (auto ok = check_idempotency_key(it->second); !ok) return std::unexpected(ok.error());
  return CommandKey{scoped_command_key(req.method, req.route, req.path, it->second),
                    command_request_hash(req.method, req.path, req.body)};
}

http::Response Gateway::reply_response(const ReplyHandler& on_reply, const CommandReply& reply) {
  if (reply.code != msg::Code::OK || !on_reply) {
    return command_error(reply.code, reply.message).response();
  }
  return on_reply(reply);
}

http::Response Gateway::known_key_response(const ReplyHandler& on_reply,
                                           const CommandKeyOutcome& known) {
  switch (known.kind) {
    case CommandKeyOutcome::Kind::answered:
      return reply_response(on_reply, *known.entry.reply);
    case CommandKeyOutcome::Kind::waiting: {
      auto r = http::error_response(
          409, "IDEMPOTENCY_KEY_IN_USE",
          "the request sent first with this Idempotency-Key is still being processed; retry it");
      r.headers["Retry-After"] = "1";
      return r;
    }
    case CommandKeyOutcome::Kind::conflict:
    case CommandKeyOutcome::Kind::send:
      break;
  }
  return http::error_response(409, "IDEMPOTENCY_KEY_REUSED",
                              "this Idempotency-Key was used with a different request");
}

std::optional<http::Response> Gateway::keyed_answer(const http::Request& req,
                                                    const ReplyHandler& on_reply,
                                                    std::optional<CommandKey>* key_out) {
  auto parsed_key = command_key_of(req);
  if (!parsed_key) return parsed_key.error().response();
  if (!*parsed_key) return std::nullopt;
  const auto& key = **parsed_key;
  if (key_out) *key_out = key;
  auto txn = storage::Txn::begin_read(rt_.env());
  if (!txn) {
    return http::error_response(500, "INTERNAL",
                                "cannot read idempotency keys: " + txn.error().message());
  }
  auto known = intake_.command_key(*txn, key.scoped);
  if (!known) return std::nullopt;
  const auto kind = known->request_hash != key.request_hash ? CommandKeyOutcome::Kind::conflict
                    : known->reply                          ? CommandKeyOutcome::Kind::answered
                                                            : CommandKeyOutcome::Kind::waiting;
  return known_key_response(on_reply, CommandKeyOutcome{kind, *known});
}

void Gateway::send_command(const http::Request& req, DaemonId to, http::ResponderPtr responder,
                           Fill fill, ReplyHandler on_reply) {
  // A retry is answered from its key before anything else: the daemon may
  // be down, and the command must not be queued twice.
  std::optional<CommandKey> key;
  if (auto answer = keyed_answer(req, on_reply, &key)) return responder->send(std::move(*answer));
  if (shut_down_) return responder->send(unavailable(DaemonId::GATEWAY));
  if (!alive(to)) return responder->send(unavailable(to));
  const auto id = next_message_id();
  ReplyHandler replay = key ? on_reply : ReplyHandler{};
  add_pending(id, std::move(responder), std::move(on_reply),
              std::string("the ") + runtime::daemon_name(to) + " daemon");
  rt_.post([this, to, id, fill = std::move(fill), key = std::move(key),
            replay = std::move(replay)](runtime::Context& ctx) -> std::error_code {
    if (key) {
      // Checked again in the transaction: a concurrent request with the same
      // key may have been queued since the read above.
      auto out = intake_.begin_command(ctx.txn(), key->scoped, key->request_hash, id, ctx.now_ms());
      if (!out) {
        to_io([this, id, what = out.error().message()] {
          finish(id, http::error_response(500, "INTERNAL", "cannot store the key: " + what));
        });
        return out.error();
      }
      if (out->kind != CommandKeyOutcome::Kind::send) {
        to_io([this, id, response = known_key_response(replay, *out)] { finish(id, response); });
        return {};  // nothing written
      }
    }
    if (auto ec = ctx.send(to, 0, id, 0, fill)) {
      to_io([this, id, what = ec.message()] {
        finish(id, http::error_response(500, "INTERNAL", "cannot queue the command: " + what));
      });
      return ec;
    }
    return {};
  });
}

void Gateway::on_reply(std::uint64_t correlation_id, const CommandReply& reply) {
  auto it = pending_.find(correlation_id);
  if (it == pending_.end()) {
    log_->debug("late reply to message {} ({}) dropped", correlation_id,
                runtime::code_name(reply.code));
    return;
  }
  auto response = reply_response(it->second.on_reply, reply);
  finish(correlation_id, std::move(response));
}

void Gateway::shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  poll_timer_.cancel();
  auto pending = std::move(pending_);
  pending_.clear();
  for (auto& [token, p] : pending) {
    p.timer->cancel();
    p.responder->send(http::error_response(503, "UNAVAILABLE", "the gateway is shutting down"));
  }
  auto waiters = std::move(waiters_);
  waiters_.clear();
  for (auto& [order_id, w] : waiters) {
    w.deadline->cancel();
    // A waiting POST was accepted: say so (its outcome is at Location later).
    w.responder->send(
        w.post ? accepted_response(order_id)
               : http::error_response(503, "UNAVAILABLE", "the gateway is shutting down"));
  }
}

// ---------------------------------------------------------------- routes

void Gateway::add_storefront_routes(http::Server& s, CustomerAuth auth, bool back_office) {
  s.route("GET", "/v1/health", [this](const http::Request&, http::ResponderPtr r) {
    auto h = health(rt_.status().layout(), ipc::monotonic_ms(), options_.fresh_heartbeat_ms);
    r->send(http::json_response(h.status, h.body));
  });

  add_account_routes(s, auth, back_office);

  s.route("GET", "/v1/users/{id}/points",
          [this, auth](const http::Request& req, http::ResponderPtr r) {
            auto id = own_user(req, auth, r);
            if (!id) return;
            r->send(respond(reads_.points_json(*id)));
          });

  s.route("GET", "/v1/users/{id}/coupons",
          [this, auth](const http::Request& req, http::ResponderPtr r) {
            auto id = own_user(req, auth, r);
            if (!id) return;
            r->send(respond(reads_.user_coupons_json(*id)));
          });

  s.route("GET", "/v1/users/{id}/orders",
          [this, auth](const http::Request& req, http::ResponderPtr r) {
            auto id = own_user(req, auth, r);
            if (!id) return;
            auto limit = query_int(req.query, "limit", 20, 1, 100);
            if (!limit) return r->send(limit.error().response());
            auto cursor =
                query_int(req.query, "cursor", 0, 0, std::numeric_limits<std::int64_t>::max());
            if (!cursor) return r->send(cursor.error().response());
            r->send(respond(reads_.user_orders_json(*id, static_cast<std::uint64_t>(*cursor),
                                                    static_cast<std::size_t>(*limit))));
          });

  s.route("GET", "/v1/products/{id}", [this](const http::Request& req, http::ResponderPtr r) {
    auto id = parse_id(req.params.at("id"), "product id");
    if (!id) return r->send(id.error().response());
    r->send(respond(reads_.product_json(*id)));
  });

  s.route("GET", "/v1/categories", [this](const http::Request&, http::ResponderPtr r) {
    r->send(respond(reads_.categories_json()));
  });

  s.route("GET", "/v1/products", [this](const http::Request& req, http::ResponderPtr r) {
    auto limit = query_int(req.query, "limit", 20, 1, 100);
    if (!limit) return r->send(limit.error().response());
    auto cursor = query_int(req.query, "cursor", 0, 0, std::numeric_limits<std::int64_t>::max());
    if (!cursor) return r->send(cursor.error().response());
    auto it = req.query.find("category");
    const std::string category = it == req.query.end() ? std::string() : it->second;
    r->send(respond(reads_.products_json(category, static_cast<std::uint64_t>(*cursor),
                                         static_cast<std::size_t>(*limit))));
  });

  s.route("POST", "/v1/orders", [this, auth](const http::Request& req, http::ResponderPtr r) {
    post_order(req, auth, std::move(r));
  });
  s.route("GET", "/v1/orders/{id}", [this, auth](const http::Request& req, http::ResponderPtr r) {
    get_order(req, auth, std::move(r));
  });
  s.route("GET", "/v1/orders/{id}/history",
          [this, auth](const http::Request& req, http::ResponderPtr r) {
            auto id = parse_id(req.params.at("id"), "order id");
            if (!id) return r->send(id.error().response());
            auto who = caller(req, auth);
            if (!who) return r->send(std::move(who.error()));
            const auto not_found = http::error_response(
                404, "ORDER_NOT_FOUND", "order " + std::to_string(*id) + " not found");
            // Existence and ownership as GET /v1/orders/{id} sees them.
            auto snapshot = order_snapshot(*id);
            if (!snapshot) return r->send(snapshot.error().response());
            if (!*snapshot || !may_see(*who, **snapshot)) {
              return r->send(not_found);
            }
            auto history = reads_.order_history_json(*id);
            if (!history) return r->send(history.error().response());
            // Accepted, not stored by the order daemon yet: PENDING, no transition yet.
            r->send(http::json_response(200, *history ? **history
                                                      : json{{"order_id", *id},
                                                             {"status", "PENDING"},
                                                             {"history", json::array()}}));
          });

  s.route("GET", "/v1/rankings/bestsellers",
          [this](const http::Request& req, http::ResponderPtr r) {
            auto days = query_int(req.query, "days", 7, 1, 366);
            if (!days) return r->send(days.error().response());
            // Up to the whole catalogue, so audits can compare every product's units.
            auto limit = query_int(req.query, "limit", 10, 1,
                                   static_cast<std::int64_t>(ringmart::ranking::kMaxLimit));
            if (!limit) return r->send(limit.error().response());
            r->send(respond(reads_.bestsellers_json(realtime_ms(), static_cast<int>(*days),
                                                    static_cast<std::size_t>(*limit))));
          });
}

void Gateway::add_admin_routes(http::Server& s) {
  // Routes that grant value to an arbitrary user (points, coupons) are the
  // back office's: a storefront that sells points calls them from its server
  // through admin.sock, never on a customer's behalf through api.sock.
  s.route("POST", "/v1/users/{id}/points/charge",
          [this](const http::Request& req, http::ResponderPtr r) {
            auto id = parse_id(req.params.at("id"), "user id");
            if (!id) return r->send(id.error().response());
            auto amount = parse_charge_points(req.body);
            if (!amount) return r->send(amount.error().response());
            send_command(
                req, DaemonId::USER, std::move(r),
                [user = *id, amount = *amount](Payload::Builder p) {
                  auto m = p.initChargePoints();
                  m.setUserId(user);
                  m.setAmount(amount);
                },
                [](const CommandReply& reply) {
                  return http::json_response(200, json{{"balance", reply.value}});
                });
          });

  s.route("POST", "/v1/coupons/{id}/issue", [this](const http::Request& req, http::ResponderPtr r) {
    auto coupon = parse_id(req.params.at("id"), "coupon id");
    if (!coupon) return r->send(coupon.error().response());
    auto user = parse_issue_coupon(req.body);
    if (!user) return r->send(user.error().response());
    // The coupon daemon does not know users: the gateway checks the user.
    auto exists = reads_.user_exists(*user);
    if (!exists) return r->send(exists.error().response());
    if (!*exists) {
      return r->send(http::error_response(404, "USER_NOT_FOUND",
                                          "user " + std::to_string(*user) + " not found"));
    }
    send_command(
        req, DaemonId::COUPON, std::move(r),
        [coupon = *coupon, user = *user](Payload::Builder p) {
          auto m = p.initIssueCoupon();
          m.setCouponId(coupon);
          m.setUserId(user);
        },
        [](const CommandReply& reply) {
          return http::json_response(201, json{{"user_coupon_id", reply.id}});
        });
  });

  s.route("POST", "/v1/products", [this](const http::Request& req, http::ResponderPtr r) {
    auto in = parse_create_product(req.body);
    if (!in) return r->send(in.error().response());
    send_command(
        req, DaemonId::PRODUCT, std::move(r),
        [in = *in](Payload::Builder p) {
          auto m = p.initCreateProduct();
          m.setName(text(in.name));
          m.setCategory(text(in.category));
          m.setPriceCents(in.price_cents);
          m.setStock(in.stock);
        },
        [](const CommandReply& reply) {
          return http::json_response(201, json{{"id", reply.id}});
        });
  });

  s.route("PATCH", "/v1/products/{id}/stock",
          [this](const http::Request& req, http::ResponderPtr r) {
            auto id = parse_id(req.params.at("id"), "product id");
            if (!id) return r->send(id.error().response());
            auto delta = parse_adjust_stock(req.body);
            if (!delta) return r->send(delta.error().response());
            send_command(
                req, DaemonId::PRODUCT, std::move(r),
                [product = *id, delta = *delta](Payload::Builder p) {
                  auto m = p.initAdjustStock();
                  m.setProductId(product);
                  m.setDelta(delta);
                },
                [product = *id](const CommandReply& reply) {
                  return http::json_response(
                      200, json{{"id", reply.id ? reply.id : product}, {"stock", reply.value}});
                });
          });

  s.route("PATCH", "/v1/products/{id}", [this](const http::Request& req, http::ResponderPtr r) {
    auto id = parse_id(req.params.at("id"), "product id");
    if (!id) return r->send(id.error().response());
    auto in = parse_update_product(req.body);
    if (!in) return r->send(in.error().response());
    send_command(
        req, DaemonId::PRODUCT, std::move(r),
        [product = *id, in = *in](Payload::Builder p) {
          auto m = p.initUpdateProduct();
          m.setProductId(product);
          m.setSetName(in.name.has_value());
          if (in.name) m.setName(text(*in.name));
          m.setSetCategory(in.category.has_value());
          if (in.category) m.setCategory(text(*in.category));
          m.setSetPrice(in.price_cents.has_value());
          if (in.price_cents) m.setPriceCents(*in.price_cents);
        },
        // From the reply alone, so a retry answered from its key gets the same.
        [product = *id](const CommandReply& reply) {
          return http::json_response(200, json{{"id", product}, {"price", reply.value}});
        });
  });

  s.route("DELETE", "/v1/products/{id}", [this](const http::Request& req, http::ResponderPtr r) {
    auto id = parse_id(req.params.at("id"), "product id");
    if (!id) return r->send(id.error().response());
    send_command(
        req, DaemonId::PRODUCT, std::move(r),
        [product = *id](Payload::Builder p) { p.initUnlistProduct().setProductId(product); },
        [product = *id](const CommandReply&) {
          return http::json_response(200, json{{"id", product}, {"listed", false}});
        });
  });

  s.route("POST", "/v1/coupons", [this](const http::Request& req, http::ResponderPtr r) {
    auto in = parse_create_coupon(req.body);
    if (!in) return r->send(in.error().response());
    send_command(
        req, DaemonId::COUPON, std::move(r),
        [in = *in](Payload::Builder p) {
          auto m = p.initCreateCoupon();
          m.setName(text(in.name));
          m.setDiscountType(in.discount_type);
          m.setDiscountValue(in.discount_value);
          m.setTotalQuantity(in.total_quantity);
          m.setMinOrderCents(in.min_order_cents);
          m.setExpiresAtS(in.expires_at_s);
          m.setPerUserLimit(in.per_user_limit);
        },
        [](const CommandReply& reply) {
          return http::json_response(201, json{{"id", reply.id}});
        });
  });

  s.route("GET", "/v1/coupons/{id}", [this](const http::Request& req, http::ResponderPtr r) {
    auto id = parse_id(req.params.at("id"), "coupon id");
    if (!id) return r->send(id.error().response());
    r->send(respond(reads_.coupon_json(*id)));
  });

  s.route("GET", "/v1/sagas/{id}", [this](const http::Request& req, http::ResponderPtr r) {
    auto id = parse_id(req.params.at("id"), "saga id");
    if (!id) return r->send(id.error().response());
    r->send(respond(reads_.saga_json(*id)));
  });

  s.route("GET", "/v1/payments/{order_id}", [this](const http::Request& req, http::ResponderPtr r) {
    auto id = parse_id(req.params.at("order_id"), "order id");
    if (!id) return r->send(id.error().response());
    r->send(respond(reads_.payment_json(*id)));
  });

  // The order change feed for the data platform (seed 002).
  s.route("GET", "/v1/feeds/orders", [this](const http::Request& req, http::ResponderPtr r) {
    auto after = query_int(req.query, "after", 0, 0, std::numeric_limits<std::int64_t>::max());
    if (!after) return r->send(after.error().response());
    auto limit = query_int(req.query, "limit", 100, 1, 1000);
    if (!limit) return r->send(limit.error().response());
    auto wait_ms = parse_wait_ms(req.query);
    if (!wait_ms) return r->send(wait_ms.error().response());
    serve_feed(static_cast<std::uint64_t>(*after), static_cast<std::size_t>(*limit),
               std::chrono::steady_clock::now() + std::chrono::milliseconds(*wait_ms),
               std::move(r));
  });

  // Fulfilment (the warehouse's back office).
  s.route("POST", "/v1/orders/{id}/shipments",
          [this](const http::Request& req, http::ResponderPtr r) {
            auto id = parse_id(req.params.at("id"), "order id");
            if (!id) return r->send(id.error().response());
            auto in = parse_shipment(req.body);
            if (!in) return r->send(in.error().response());
            send_command(
                req, DaemonId::ORDER, std::move(r),
                [order_id = *id, in = *in](Payload::Builder p) {
                  auto m = p.initShipOrder();
                  m.setOrderId(order_id);
                  m.setCarrier(text(in.carrier));
                  m.setTrackingNumber(text(in.tracking_number));
                },
                [in = *in](const CommandReply& reply) {
                  return http::json_response(201, json{{"order_id", reply.id},
                                                       {"status", "SHIPPED"},
                                                       {"carrier", in.carrier},
                                                       {"tracking_number", in.tracking_number}});
                });
          });
  s.route(
      "POST", "/v1/orders/{id}/delivered", [this](const http::Request& req, http::ResponderPtr r) {
        auto id = parse_id(req.params.at("id"), "order id");
        if (!id) return r->send(id.error().response());
        if (!req.body.empty() && req.body != "{}") {
          return r->send(invalid_argument("the body must be empty or {}").response());
        }
        send_command(
            req, DaemonId::ORDER, std::move(r),
            [order_id = *id](Payload::Builder p) { p.initMarkDelivered().setOrderId(order_id); },
            [](const CommandReply& reply) {
              return http::json_response(200,
                                         json{{"order_id", reply.id}, {"status", "DELIVERED"}});
            });
      });

  s.route("GET", "/metrics",
          [this](const http::Request&, http::ResponderPtr r) { r->send(metrics()); });
}

// ---------------------------------------------------------------- accounts

http::Request Gateway::unkeyed(const http::Request& req) {
  http::Request copy = req;
  copy.headers.erase("idempotency-key");
  return copy;
}

std::expected<std::optional<Gateway::Caller>, http::Response> Gateway::session_caller(
    const http::Request& req) {
  auto it = req.headers.find("authorization");
  if (it == req.headers.end()) return std::nullopt;
  auto token = bearer_token(it->second);
  if (!token) {
    return std::unexpected(
        unauthenticated(false, "the Authorization header must be \"Bearer <session token>\""));
  }
  auto hash = session_token_hash(*token);
  if (!hash) return std::unexpected(unauthenticated(true, "the session token is malformed"));
  auto session = reads_.session(*hash, realtime_ms());
  if (!session) return std::unexpected(session.error().response());
  if (!*session) {
    return std::unexpected(unauthenticated(
        true, "the session token is not valid: unknown, expired, or signed out; log in again"));
  }
  return Caller{.trusted = false, .user_id = (*session)->user_id, .token = *hash};
}

std::expected<Gateway::Caller, http::Response> Gateway::caller(const http::Request& req,
                                                               CustomerAuth auth) {
  if (auth == CustomerAuth::trusted)
    return Caller{.trusted = true, .user_id = 0, .token = std::nullopt};
  auto session = session_caller(req);
  if (!session) return std::unexpected(std::move(session.error()));
  if (!*session) {
    return std::unexpected(unauthenticated(
        false, "this route needs \"Authorization: Bearer <session token>\" (POST /v1/sessions)"));
  }
  return **session;
}

bool Gateway::may_see(const Caller& caller, const OrderSnapshot& snapshot) {
  return caller.trusted || snapshot.view.value("user_id", std::uint64_t{0}) == caller.user_id;
}

std::optional<std::uint64_t> Gateway::own_user(const http::Request& req, CustomerAuth auth,
                                               http::ResponderPtr& responder) {
  auto id = parse_id(req.params.at("id"), "user id");
  if (!id) {
    responder->send(id.error().response());
    return std::nullopt;
  }
  auto who = caller(req, auth);
  if (!who) {
    responder->send(std::move(who.error()));
    return std::nullopt;
  }
  if (!who->trusted && who->user_id != *id) {
    responder->send(user_not_found(*id));
    return std::nullopt;
  }
  return *id;
}

void Gateway::register_user(const http::Request& req, http::ResponderPtr responder) {
  auto in = parse_register_user(req.body);
  if (!in) return responder->send(in.error().response());
  const ReplyHandler created = [](const CommandReply& reply) {
    auto r = http::json_response(201, json{{"id", reply.id}});
    r.headers["Location"] = "/v1/users/" + std::to_string(reply.id);
    return r;
  };
  // A retry is answered before the password is hashed again.
  if (auto answer = keyed_answer(req, created)) return responder->send(std::move(*answer));
  auto send = [this, req, created](http::ResponderPtr r, std::string name, std::string email,
                                   std::string hash) {
    send_command(
        req, DaemonId::USER, std::move(r),
        [name = std::move(name), email = std::move(email),
         hash = std::move(hash)](Payload::Builder p) {
          auto m = p.initRegisterUser();
          m.setName(text(name));
          m.setEmail(text(email));
          m.setPasswordHash(text(hash));
        },
        created);
  };
  if (!in->password) return send(std::move(responder), in->name, in->email, "");
  // Refused before the costly hash: the daemon that would store it is down.
  if (!alive(DaemonId::USER)) return responder->send(unavailable(DaemonId::USER));
  std::string password = std::move(*in->password);
  auto on_hash = [send, responder, name = in->name,
                  email = in->email](std::optional<std::string> hash) mutable {
    if (!hash) {
      return responder->send(
          http::error_response(500, "INTERNAL", "the password could not be hashed (memory)"));
    }
    send(std::move(responder), std::move(name), std::move(email), std::move(*hash));
  };
  if (!hasher_.hash(std::move(password), std::move(on_hash))) responder->send(hashing_busy());
}

void Gateway::login(const http::Request& req, http::ResponderPtr responder) {
  auto in = parse_login(req.body);
  if (!in) return responder->send(in.error().response());
  auto account = reads_.credentials(in->email);
  if (!account) return responder->send(account.error().response());
  const std::uint64_t user_id = *account ? (*account)->user_id : 0;
  std::string stored = *account ? (*account)->password_hash : std::string();
  const auto now = realtime_ms();
  if (*account && (*account)->locked_until_ms > now) {
    return responder->send(too_many_attempts((*account)->locked_until_ms - now));
  }
  // One check per account at a time: parallel guesses cannot outrun the count.
  if (user_id != 0 && logins_in_flight_.contains(user_id)) {
    return responder->send(too_many_attempts(1000));
  }
  if (shut_down_) return responder->send(unavailable(DaemonId::GATEWAY));
  if (!alive(DaemonId::USER)) return responder->send(unavailable(DaemonId::USER));
  if (user_id != 0) {
    // Held until the answer, so the failure is counted before the next try.
    logins_in_flight_.insert(user_id);
    responder = std::make_shared<ReleasingResponder>(
        std::move(responder), [this, user_id] { logins_in_flight_.erase(user_id); });
  }
  auto on_verified = [this, request = unkeyed(req), responder, user_id, stored](bool ok) mutable {
    if (!ok) {
      // An unknown address or a guest has no count to keep.
      if (user_id == 0 || stored.empty()) return responder->send(invalid_credentials());
      return record_wrong_password(request, user_id, std::move(responder), invalid_credentials());
    }
    auto token = new_session_token();
    const auto expires_at_ms = realtime_ms() + options_.session_ttl_ms;
    send_command(
        request, DaemonId::USER, std::move(responder),
        [user_id, hash = token.hash, expires_at_ms, stored](Payload::Builder p) {
          auto m = p.initOpenSession();
          m.setUserId(user_id);
          m.setTokenHash(data(hash));
          m.setExpiresAtMs(expires_at_ms);
          m.setVerifiedPasswordHash(text(stored));
        },
        [token = std::move(token.token), user_id, expires_at_ms](const CommandReply&) {
          auto r = http::json_response(
              201,
              json{{"token", token}, {"user_id", user_id}, {"expires_at", expires_at_ms / 1000}});
          r.headers["Cache-Control"] = "no-store";  // RFC 6749 §5.1: a credential
          return r;
        });
  };
  if (!hasher_.verify(stored, std::move(in->password), std::move(on_verified))) {
    responder->send(hashing_busy());  // releases the account
  }
}

void Gateway::record_wrong_password(const http::Request& req, std::uint64_t user_id,
                                    http::ResponderPtr responder, http::Response answer) {
  send_command(
      unkeyed(req), DaemonId::USER, std::move(responder),
      [user_id](Payload::Builder p) { p.initRecordLoginFailure().setUserId(user_id); },
      [answer = std::move(answer)](const CommandReply&) { return answer; });
}

void Gateway::patch_user(const http::Request& req, CustomerAuth auth, bool back_office,
                         http::ResponderPtr responder) {
  auto id = own_user(req, auth, responder);
  if (!id) return;
  auto change = parse_update_user(req.body);
  if (!change) return responder->send(change.error().response());
  // A retry of an applied change is answered from its key: checking the old
  // current_password again would fail (and count as a failed login).
  if (auto answer = keyed_answer(req, [this, user_id = *id](const CommandReply&) {
        return respond(reads_.user_json(user_id));
      })) {
    return responder->send(std::move(*answer));
  }
  auto account = reads_.credentials_of_user(*id);
  if (!account) return responder->send(account.error().response());
  if (!*account) return responder->send(user_not_found(*id));
  std::string stored = (*account)->password_hash;
  // A password or e-mail change needs the current password of an account
  // that has one: a stolen session alone cannot take the account over. The
  // back office resets them without it.
  const bool needs_current = (change->password || change->email) && !stored.empty() && !back_office;
  if (needs_current && !change->current_password) {
    return responder->send(
        invalid_argument("current_password is required to change the password or email")
            .response());
  }
  const auto now = realtime_ms();
  if (needs_current && (*account)->locked_until_ms > now) {
    return responder->send(too_many_attempts((*account)->locked_until_ms - now));
  }
  if ((needs_current || change->password) && !alive(DaemonId::USER)) {
    return responder->send(unavailable(DaemonId::USER));
  }
  if (needs_current) {
    // One check per account at a time, held until the answer (as a login).
    if (logins_in_flight_.contains(*id)) return responder->send(too_many_attempts(1000));
    logins_in_flight_.insert(*id);
    responder = std::make_shared<ReleasingResponder>(
        std::move(responder), [this, user_id = *id] { logins_in_flight_.erase(user_id); });
  }
  std::optional<std::string> new_password = std::move(change->password);
  std::optional<std::string> current = std::move(change->current_password);
  change->password.reset();
  change->current_password.reset();
  // Step 2: hash the new password (if any), then send the change.
  auto hash_and_send = [this, req, responder, change = *change, user_id = *id, stored,
                        new_password = std::move(new_password)]() mutable {
    if (!new_password) {
      return send_user_update(std::move(req), std::move(responder), std::move(change), user_id,
                              stored, std::nullopt);
    }
    auto on_hash = [this, req, responder, change, user_id,
                    stored](std::optional<std::string> hash) mutable {
      if (!hash) {
        return responder->send(
            http::error_response(500, "INTERNAL", "the password could not be hashed (memory)"));
      }
      send_user_update(std::move(req), std::move(responder), std::move(change), user_id, stored,
                       std::move(hash));
    };
    if (!hasher_.hash(std::move(*new_password), std::move(on_hash))) {
      responder->send(hashing_busy());
    }
  };
  if (!needs_current) return hash_and_send();
  // Step 1: the current password, checked as a login would be.
  auto on_verified = [this, req, responder, user_id = *id,
                      hash_and_send = std::move(hash_and_send)](bool ok) mutable {
    if (ok) return hash_and_send();
    record_wrong_password(req, user_id, std::move(responder),
                          http::error_response(401, "INVALID_CREDENTIALS",
                                               "current_password is not the account's password"));
  };
  if (!hasher_.verify(stored, std::move(*current), std::move(on_verified))) {
    responder->send(hashing_busy());  // releases the account
  }
}

void Gateway::send_user_update(http::Request req, http::ResponderPtr responder,
                               UpdateUserRequest change, std::uint64_t user_id,
                               std::string expected_hash, std::optional<std::string> new_hash) {
  send_command(
      req, DaemonId::USER, std::move(responder),
      [user_id, change = std::move(change), expected_hash = std::move(expected_hash),
       new_hash = std::move(new_hash)](Payload::Builder p) {
        auto m = p.initUpdateUser();
        m.setUserId(user_id);
        if (change.name) {
          m.setSetName(true);
          m.setName(text(*change.name));
        }
        if (change.email) {
          m.setSetEmail(true);
          m.setEmail(text(*change.email));
        }
        if (new_hash) {
          m.setSetPasswordHash(true);
          m.setPasswordHash(text(*new_hash));
        }
        // The hash the current password was checked against: the change
        // applies only if no other change came in between.
        m.setExpectedPasswordHash(text(expected_hash));
      },
      [this, user_id](const CommandReply&) { return respond(reads_.user_json(user_id)); });
}

void Gateway::add_account_routes(http::Server& s, CustomerAuth auth, bool back_office) {
  s.route("POST", "/v1/users", [this](const http::Request& req, http::ResponderPtr r) {
    register_user(req, std::move(r));
  });

  s.route("GET", "/v1/users/{id}", [this, auth](const http::Request& req, http::ResponderPtr r) {
    auto id = own_user(req, auth, r);
    if (!id) return;
    r->send(respond(reads_.user_json(*id)));
  });

  s.route("PATCH", "/v1/users/{id}",
          [this, auth, back_office](const http::Request& req, http::ResponderPtr r) {
            patch_user(req, auth, back_office, std::move(r));
          });

  s.route("POST", "/v1/sessions",
          [this](const http::Request& req, http::ResponderPtr r) { login(req, std::move(r)); });

  s.route("DELETE", "/v1/sessions/current", [this](const http::Request& req, http::ResponderPtr r) {
    auto who = session_caller(req);
    if (!who) return r->send(std::move(who.error()));
    if (!*who) return r->send(unauthenticated(false, "no session: send its bearer token"));
    send_command(
        unkeyed(req), DaemonId::USER, std::move(r),
        [hash = *(*who)->token](Payload::Builder p) {
          p.initCloseSession().setTokenHash(data(hash));
        },
        [](const CommandReply&) { return no_content(); });
  });

  // The session's own user, whatever the socket's customer_auth.
  s.route("GET", "/v1/me", [this](const http::Request& req, http::ResponderPtr r) {
    auto who = session_caller(req);
    if (!who) return r->send(std::move(who.error()));
    if (!*who) return r->send(unauthenticated(false, "GET /v1/me needs a session's bearer token"));
    r->send(respond(reads_.user_json((*who)->user_id)));
  });

  s.route(
      "POST", "/v1/users/{id}/addresses",
      [this, auth](const http::Request& req, http::ResponderPtr r) {
        auto id = own_user(req, auth, r);
        if (!id) return;
        auto in = parse_address(req.body, false);
        if (!in) return r->send(in.error().response());
        send_command(
            req, DaemonId::USER, std::move(r),
            [user_id = *id, in = *in](Payload::Builder p) {
              auto m = p.initAddAddress();
              m.setUserId(user_id);
              fill_address(m.initAddress(), in.address);
              m.setMakeDefault(in.make_default);
            },
            [this, user_id = *id](const CommandReply& reply) {
              auto a = reads_.address(user_id, reply.id);
              auto r = http::json_response(201, a ? address_view_json(*a) : json{{"id", reply.id}});
              r.headers["Location"] =
                  "/v1/users/" + std::to_string(user_id) + "/addresses/" + std::to_string(reply.id);
              return r;
            });
      });

  s.route("GET", "/v1/users/{id}/addresses",
          [this, auth](const http::Request& req, http::ResponderPtr r) {
            auto id = own_user(req, auth, r);
            if (!id) return;
            r->send(respond(reads_.addresses_json(*id)));
          });

  s.route("GET", "/v1/users/{id}/addresses/{address_id}",
          [this, auth](const http::Request& req, http::ResponderPtr r) {
            auto id = own_user(req, auth, r);
            if (!id) return;
            auto address_id = parse_id(req.params.at("address_id"), "address id");
            if (!address_id) return r->send(address_id.error().response());
            auto a = reads_.address(*id, *address_id);
            if (!a) return r->send(a.error().response());
            r->send(http::json_response(200, address_view_json(*a)));
          });

  s.route(
      "PATCH", "/v1/users/{id}/addresses/{address_id}",
      [this, auth](const http::Request& req, http::ResponderPtr r) {
        auto id = own_user(req, auth, r);
        if (!id) return;
        auto address_id = parse_id(req.params.at("address_id"), "address id");
        if (!address_id) return r->send(address_id.error().response());
        auto in = parse_address(req.body, true);
        if (!in) return r->send(in.error().response());
        send_command(
            req, DaemonId::USER, std::move(r),
            [user_id = *id, address_id = *address_id, in = *in](Payload::Builder p) {
              auto m = p.initUpdateAddress();
              m.setUserId(user_id);
              m.setAddressId(address_id);
              m.setFieldMask(in.mask);
              fill_address(m.initAddress(), in.address);
              m.setMakeDefault(in.make_default);
            },
            [this, user_id = *id](const CommandReply& reply) {
              auto a = reads_.address(user_id, reply.id);
              return http::json_response(200, a ? address_view_json(*a) : json{{"id", reply.id}});
            });
      });

  s.route("DELETE", "/v1/users/{id}/addresses/{address_id}",
          [this, auth](const http::Request& req, http::ResponderPtr r) {
            auto id = own_user(req, auth, r);
            if (!id) return;
            auto address_id = parse_id(req.params.at("address_id"), "address id");
            if (!address_id) return r->send(address_id.error().response());
            send_command(
                req, DaemonId::USER, std::move(r),
                [user_id = *id, address_id = *address_id](Payload::Builder p) {
                  auto m = p.initDeleteAddress();
                  m.setUserId(user_id);
                  m.setAddressId(address_id);
                },
                [](const CommandReply&) { return no_content(); });
          });
}

// ---------------------------------------------------------------- orders

void Gateway::post_order(const http::Request& req, CustomerAuth auth,
                         http::ResponderPtr responder) {
  // The caller's trace, or a new one: a malformed traceparent is ignored, as
  // the W3C recommendation says (section 4.3), never an error.
  telemetry::TraceId trace = telemetry::new_trace_id();
  std::uint8_t trace_flags = 1;  // every saga is recorded (sampled)
  if (auto it = req.headers.find("traceparent"); it != req.headers.end()) {
    if (auto parent = telemetry::parse_traceparent(it->second)) {
      trace = parent->trace_id;
      trace_flags = parent->flags;
    } else {
      log_->debug("malformed traceparent \"{}\" ignored: new trace {}", it->second.substr(0, 64),
                  trace.hex());
    }
  }
  responder = std::make_shared<TracedResponder>(
      std::move(responder),
      telemetry::format_traceparent(trace, telemetry::new_span_id(), trace_flags));
  auto who = caller(req, auth);
  if (!who) return responder->send(std::move(who.error()));
  auto parsed = parse_order_request(req.body, /*user_id_optional=*/!who->trusted);
  if (!parsed) return responder->send(parsed.error().response());
  OrderRequest order = std::move(*parsed);
  // A customer orders for itself: user_id may be left out, another's is unknown.
  if (!who->trusted) {
    if (order.user_id == 0) order.user_id = who->user_id;
    if (order.user_id != who->user_id) return responder->send(user_not_found(order.user_id));
  }
  const auto hash = order_request_hash(order);
  const auto prefer = req.headers.find("prefer");
  const std::int64_t wait_ms = prefer == req.headers.end() ? 0 : prefer_wait_ms(prefer->second);

  std::string key;
  if (auto it = req.headers.find("idempotency-key"); it != req.headers.end()) {
    if (auto ok = check_idempotency_key(it->second); !ok) {
      return responder->send(ok.error().response());
    }
    key = scoped_idempotency_key("POST /v1/orders", order.user_id, it->second);
    // A retry of an accepted order answers from the key before anything else:
    // its coupon may be USED by now, its user's points spent.
    auto txn = storage::Txn::begin_read(rt_.env());
    if (!txn) {
      return responder->send(http::error_response(
          500, "INTERNAL", "cannot read idempotency keys: " + txn.error().message()));
    }
    if (auto known = intake_.idempotency(*txn, key)) {
      if (known->request_hash != hash) {
        return responder->send(idempotency_conflict(known->order_id).response());
      }
      // A retry may come after the outcome: then it is the answer at once.
      if (wait_ms > 0) {
        auto snapshot = order_snapshot(known->order_id);
        if (snapshot && *snapshot && (*snapshot)->terminal) {
          return responder->send(waiter_response(known->order_id, snapshot, true, wait_ms));
        }
      }
      return answer_accepted(known->order_id, std::move(responder), wait_ms);
    }
  }
  if (shut_down_) return responder->send(unavailable(DaemonId::GATEWAY));
  if (!alive(DaemonId::ORDER)) return responder->send(unavailable(DaemonId::ORDER));

  auto user = reads_.user_exists(order.user_id);
  if (!user) return responder->send(user.error().response());
  if (!*user) {
    return responder->send(http::error_response(
        404, "USER_NOT_FOUND", "user " + std::to_string(order.user_id) + " not found"));
  }

  // The address-book entry as it is now: the order keeps this snapshot.
  if (order.shipping_address_id != 0) {
    auto address = reads_.address(order.user_id, order.shipping_address_id);
    if (!address) return responder->send(address.error().response());
    order.shipping_address = std::move(address->address);
  }

  std::vector<std::uint64_t> product_ids;
  for (const auto& line : order.items) product_ids.push_back(line.product_id);
  auto prices = reads_.unit_prices(product_ids);
  if (!prices) return responder->send(prices.error().response());
  std::vector<std::int64_t> unit_prices;
  for (std::size_t i = 0; i < product_ids.size(); ++i) {
    if (i >= prices->size() || !(*prices)[i]) {
      return responder->send(http::error_response(
          404, "PRODUCT_NOT_FOUND", "product " + std::to_string(product_ids[i]) + " not found"));
    }
    if (!(*prices)[i]->orderable) {
      return responder->send(
          http::error_response(409, "PRODUCT_UNAVAILABLE",
                               "product " + std::to_string(product_ids[i]) + " is no longer sold"));
    }
    unit_prices.push_back((*prices)[i]->price_cents);
  }

  if (order.user_coupon_id != 0) {
    auto coupon = reads_.user_coupon(order.user_coupon_id);
    if (!coupon) return responder->send(coupon.error().response());
    if (!*coupon || (*coupon)->user_id != order.user_id) {
      return responder->send(
          http::error_response(404, "COUPON_NOT_FOUND",
                               "user coupon " + std::to_string(order.user_coupon_id) +
                                   " not found for user " + std::to_string(order.user_id)));
    }
    if (!(*coupon)->issued) {
      return responder->send(http::error_response(
          409, "COUPON_ALREADY_USED",
          "user coupon " + std::to_string(order.user_coupon_id) + " is already used"));
    }
  }

  auto subtotal = order_subtotal(order, unit_prices);
  if (!subtotal) return responder->send(subtotal.error().response());

  const auto token = next_message_id();
  add_pending(token, std::move(responder), {}, "the gateway's message loop");
  rt_.post([this, token, wait_ms, key = std::move(key), order = std::move(order), hash, trace,
            unit_prices = std::move(unit_prices),
            subtotal = *subtotal](runtime::Context& ctx) -> std::error_code {
    auto fail = [&](std::error_code ec) {
      to_io([this, token, what = ec.message()] {
        finish(token, http::error_response(500, "INTERNAL", "cannot accept the order: " + what));
      });
      return ec;
    };
    auto out = intake_.accept(ctx.txn(), key, order, hash, unit_prices, subtotal, ctx.now_ms());
    if (!out) return fail(out.error());
    const auto order_id = out->order_id;
    // The order's saga starts in this trace: createOrder carries it (Context::send).
    const telemetry::ScopedFields fields({order_id, order_id, trace});
    switch (out->kind) {
      case AcceptOutcome::Kind::conflict:
        ctx.after_commit([this, token, order_id] {
          to_io([this, token, order_id] {
            finish(token, idempotency_conflict(order_id).response());
          });
        });
        return {};
      case AcceptOutcome::Kind::replayed:
        break;
      case AcceptOutcome::Kind::accepted: {
        if (auto ec = send_create_order(ctx, order_id, order, unit_prices)) return fail(ec);
        log_->debug("order={} accepted user={} lines={} subtotal={}", order_id, order.user_id,
                    order.items.size(), subtotal);
        break;
      }
    }
    ctx.after_commit([this, token, order_id, wait_ms] {
      to_io([this, token, order_id, wait_ms] {
        if (auto responder = take_pending(token)) {
          answer_accepted(order_id, std::move(responder), wait_ms);
        }
      });
    });
    return {};
  });
}

void Gateway::answer_accepted(std::uint64_t order_id, http::ResponderPtr responder,
                              std::int64_t wait_ms) {
  if (wait_ms <= 0 || shut_down_ || waiters_.size() >= options_.max_order_waiters) {
    return responder->send(accepted_response(order_id));
  }
  // No read first: a just-accepted order cannot be final yet, and its
  // orderFinalized comes through the same io queue, after this.
  park(order_id, std::move(responder), wait_ms, true);
}

http::Response Gateway::waiter_response(
    std::uint64_t order_id, const std::expected<std::optional<OrderSnapshot>, ApiError>& snapshot,
    bool post, std::int64_t wait_ms) {
  if (post) {
    // The order was accepted: whatever the read says, the answer is about it.
    if (!snapshot || !*snapshot || !(*snapshot)->terminal) return accepted_response(order_id);
    auto r = http::json_response(201, (*snapshot)->view);
    r.headers["Location"] = "/v1/orders/" + std::to_string(order_id);
    r.headers["Preference-Applied"] = "wait=" + std::to_string(wait_ms / 1000);
    return r;
  }
  if (!snapshot) return snapshot.error().response();
  if (!*snapshot) {
    return http::error_response(404, "ORDER_NOT_FOUND",
                                "order " + std::to_string(order_id) + " not found");
  }
  return http::json_response(200, (*snapshot)->view);
}

std::expected<std::optional<OrderSnapshot>, ApiError> Gateway::order_snapshot(
    std::uint64_t order_id) {
  // Read the gateway's table BEFORE the order daemon's: an accepted order is
  // forgotten only after the order daemon stored it, so no order can slip
  // between the two reads.
  std::optional<AcceptedOrder> accepted;
  std::uint64_t last_order_id = 0;
  {
    auto txn = storage::Txn::begin_read(rt_.env());
    if (!txn) {
      return std::unexpected(
          ApiError{500, "INTERNAL", "cannot read accepted orders: " + txn.error().message()});
    }
    accepted = intake_.accepted(*txn, order_id);
    last_order_id = intake_.last_order_id(*txn);
  }
  auto stored = reads_.order(order_id);
  if (stored && *stored) return stored;
  if (accepted)
    return std::optional<OrderSnapshot>(OrderSnapshot{pending_order_json(*accepted), false});
  if (stored || order_id > last_order_id) return std::optional<OrderSnapshot>{};
  return std::unexpected(stored.error());
}

void Gateway::get_order(const http::Request& req, CustomerAuth auth, http::ResponderPtr responder) {
  auto id = parse_id(req.params.at("id"), "order id");
  if (!id) return responder->send(id.error().response());
  auto who = caller(req, auth);
  if (!who) return responder->send(std::move(who.error()));
  auto wait_ms = parse_wait_ms(req.query);
  if (!wait_ms) return responder->send(wait_ms.error().response());
  auto snapshot = order_snapshot(*id);
  if (!snapshot) return responder->send(snapshot.error().response());
  // Another customer's order is not found, as an unknown one.
  if (!*snapshot || !may_see(*who, **snapshot)) {
    return responder->send(http::error_response(404, "ORDER_NOT_FOUND",
                                                "order " + std::to_string(*id) + " not found"));
  }
  if ((*snapshot)->terminal || *wait_ms == 0 || shut_down_ ||
      waiters_.size() >= options_.max_order_waiters) {
    return responder->send(http::json_response(200, (*snapshot)->view));
  }
  park(*id, std::move(responder), *wait_ms, false);
}

void Gateway::park(std::uint64_t order_id, http::ResponderPtr responder, std::int64_t wait_ms,
                   bool post) {
  const auto token = ++waiter_tokens_;
  auto deadline = std::make_unique<asio::steady_timer>(io_);
  deadline->expires_after(std::chrono::milliseconds(wait_ms));
  deadline->async_wait([this, order_id, token](const boost::system::error_code& ec) {
    if (ec) return;  // answered earlier
    auto [first, last] = waiters_.equal_range(order_id);
    for (auto it = first; it != last; ++it) {
      if (it->second.token != token) continue;
      auto w = std::move(it->second);
      waiters_.erase(it);
      return w.responder->send(
          waiter_response(order_id, order_snapshot(order_id), w.post, w.wait_ms));
    }
  });
  waiters_.emplace(order_id,
                   Waiter{token, std::move(responder), std::move(deadline), post, wait_ms});
  if (!polling_) {
    polling_ = true;
    poll_timer_.expires_after(std::chrono::milliseconds(options_.order_poll_ms));
    poll_timer_.async_wait([this](const boost::system::error_code& ec) {
      polling_ = false;
      if (!ec) poll_waiters();
    });
  }
}

void Gateway::answer_waiters(std::uint64_t order_id, bool only_if_terminal) {
  auto [first, last] = waiters_.equal_range(order_id);
  if (first == last) return;
  auto snapshot = order_snapshot(order_id);
  if (only_if_terminal && (!snapshot || !*snapshot || !(*snapshot)->terminal)) return;
  std::vector<Waiter> answered;
  for (auto it = first; it != last; ++it) {
    it->second.deadline->cancel();
    answered.push_back(std::move(it->second));
  }
  waiters_.erase(first, last);
  for (auto& w : answered) {
    w.responder->send(waiter_response(order_id, snapshot, w.post, w.wait_ms));
  }
}

void Gateway::on_order_finalized(std::uint64_t order_id) { answer_waiters(order_id, true); }

void Gateway::poll_waiters() {
  std::set<std::uint64_t> orders;
  for (const auto& [order_id, w] : waiters_) orders.insert(order_id);
  for (auto order_id : orders) answer_waiters(order_id, true);
  if (!waiters_.empty() && !shut_down_ && !polling_) {
    polling_ = true;
    poll_timer_.expires_after(std::chrono::milliseconds(options_.order_poll_ms));
    poll_timer_.async_wait([this](const boost::system::error_code& ec) {
      polling_ = false;
      if (!ec) poll_waiters();
    });
  }
}

// ---------------------------------------------------------------- the order feed

void Gateway::serve_feed(std::uint64_t after, std::size_t limit,
                         std::chrono::steady_clock::time_point deadline,
                         http::ResponderPtr responder) {
  auto read = reads_.order_feed(after, limit);
  if (!read) return responder->send(read.error().response());
  const auto& [events, bounds] = *read;
  const auto cursor = order::feed_cursor(after, bounds);
  if (cursor == order::FeedCursor::ahead) {
    return responder->send(invalid_argument("after=" + std::to_string(after) +
                                            " is ahead of the feed (its last seq is " +
                                            std::to_string(bounds.last) + ")")
                               .response());
  }
  // Events after the cursor were pruned: a consumer must learn it lost them.
  if (cursor == order::FeedCursor::expired) {
    return responder->send(http::error_response(
        410, "FEED_EXPIRED",
        "the events after seq " + std::to_string(after) +
            " are past the feed's retention (oldest kept: " + std::to_string(bounds.first) +
            "); reconcile from GET /v1/orders and resume from there"));
  }
  const auto now = std::chrono::steady_clock::now();
  if (events.empty() && now < deadline && !shut_down_ &&
      feed_waiters_ < options_.max_order_waiters) {
    ++feed_waiters_;
    auto timer = std::make_shared<asio::steady_timer>(io_);
    timer->expires_after(std::min<std::chrono::steady_clock::duration>(
        std::chrono::milliseconds(options_.order_poll_ms), deadline - now));
    timer->async_wait([this, timer, after, limit, deadline,
                       responder = std::move(responder)](const boost::system::error_code&) mutable {
      --feed_waiters_;
      serve_feed(after, limit, shut_down_ ? std::chrono::steady_clock::time_point{} : deadline,
                 std::move(responder));
    });
    return;
  }
  http::Response r;
  r.status = 200;
  for (const auto& e : events) r.body += order::feed_event_json(e).dump() + "\n";
  r.headers["Content-Type"] = "application/x-ndjson";
  r.headers["Feed-Last-Seq"] = std::to_string(bounds.last);
  responder->send(std::move(r));
}

// ---------------------------------------------------------------- metrics

std::vector<RingFill> Gateway::ring_fills() {
  const auto& channels = runtime::channels();
  if (rings_.size() != channels.size()) {
    rings_.clear();
    rings_.resize(channels.size());
  }
  const auto& transport = rt_.transport();
  std::vector<RingFill> out;
  for (std::size_t i = 0; i < channels.size(); ++i) {
    if (!rings_[i]) {
      auto ring = ipc::Ring::open(
          runtime::ring_name(transport.prefix, channels[i].from, channels[i].to), transport.access);
      if (!ring) continue;
      rings_[i].emplace(std::move(*ring));
    }
    out.push_back(
        {channels[i].from, channels[i].to, rings_[i]->fill_bytes(), rings_[i]->capacity()});
  }
  return out;
}

std::function<void(const http::Served&)> Gateway::request_observer(std::string socket) {
  return [this, socket = std::move(socket)](const http::Served& served) {
    request_metrics_.observe(socket, served);
  };
}

http::Response Gateway::metrics() {
  GatewayGauges g;
  g.pending_commands = pending_.size();
  g.order_waiters = waiters_.size();
  if (auto txn = storage::Txn::begin_read(rt_.env()))
    g.accepted_orders = intake_.accepted_count(*txn);
  if (api_server_) {
    g.api_connections = api_server_->accepted_connections();
    g.api_refused = api_server_->refused_connections();
    g.api_open = api_server_->open_connections();
  }
  if (admin_server_) {
    g.admin_connections = admin_server_->accepted_connections();
    g.admin_refused = admin_server_->refused_connections();
    g.admin_open = admin_server_->open_connections();
  }
  http::Response r;
  r.status = 200;
  r.body = render_metrics(rt_.status().layout(), ipc::monotonic_ms(), ring_fills(), g,
                          options_.fresh_heartbeat_ms);
  request_metrics_.render(r.body);
  r.headers["Content-Type"] = "text/plain; version=0.0.4; charset=utf-8";
  return r;
}

}  // namespace ringmart::gateway
