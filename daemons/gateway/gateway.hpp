// ringmart::gateway — the storefront/admin API (docs/api.md) over the daemons.
//
// Two threads (see README.md):
//
//   io thread (main)                          runtime thread
//   ─────────────────                         ──────────────
//   http::Server api.sock / admin.sock
//   handler ──validate, read query libs──►
//           ──rt.post(task)──────────────────► task in the batch txn: outbox append
//   pending[message id] = responder, 5 s timer        (+ gateway tables for orders)
//                                                      commit ──► relay ──► ring
//   on_reply / on_order_finalized ◄──asio::post── on_message: reply, orderFinalized
//   responder->send(...)
//
// Only the runtime thread writes LMDB; the io thread reads (query libraries,
// the gateway's accepted-orders table) in short read transactions. The
// pending-command map and the order waiters live on the io thread only.
//
// Thread-safety: construct, register routes and call shutdown() on the io
// thread; on_message() runs on the runtime thread (installed by attach()).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "daemons/common/retention.hpp"
#include "daemons/common/runtime.hpp"
#include "daemons/gateway/credentials.hpp"
#include "daemons/gateway/intake_store.hpp"
#include "daemons/gateway/reads.hpp"
#include "daemons/gateway/requests.hpp"
#include "daemons/gateway/status_report.hpp"
#include "http/server.hpp"

namespace ringmart::gateway {

/// Who may call the customer-scoped routes of api.sock (orders, points,
/// coupons, addresses, profile): `[gateway] customer_auth`.
enum class CustomerAuth {
  /// `Authorization: Bearer <session token>` (POST /v1/sessions); a customer
  /// sees and acts on only its own resources, another's are 404. The default.
  token,
  /// The storefront's own server vouches for the user ids it sends (it
  /// authenticated its customers itself). admin.sock always works this way.
  trusted,
};

/// Tunables, from the `[gateway]` and `[accounts]` tables of the configuration file.
struct GatewayOptions {
  std::int64_t command_timeout_ms = 5000;               ///< reply wait before 504 TIMEOUT
  std::int64_t fresh_heartbeat_ms = kFreshHeartbeatMs;  ///< older = daemon down (503)
  std::int64_t order_poll_ms = 50;         ///< long-poll re-check period (a lost notification)
  std::size_t max_order_waiters = 10'000;  ///< more parked long-polls answer at once
  /// An Idempotency-Key is forgotten this long after its first request, once
  /// its order is final (0 = kept forever; 24 h as Stripe's API does).
  std::int64_t idempotency_key_ttl_ms = 24 * 3600 * 1000;
  CustomerAuth customer_auth = CustomerAuth::token;
  std::int64_t session_ttl_ms = 7 * 24 * 3600 * 1000ll;  ///< a login lasts this long
  PasswordCost password_cost{};
  unsigned hash_threads = 1;           ///< threads hashing passwords
  std::size_t max_queued_hashes = 64;  ///< more at once: 503 BUSY

  /// Reads `[gateway] command_timeout_ms, fresh_heartbeat_ms, order_poll_ms,
  /// max_order_waiters, idempotency_key_ttl_hours, customer_auth` and
  /// `[accounts] session_ttl_hours, password_opslimit, password_memlimit_kib,
  /// hash_threads, max_queued_hashes` over the defaults. Errors: a message
  /// naming a customer_auth that is neither "token" nor "trusted".
  static std::expected<GatewayOptions, std::string> from(const runtime::Config& config);
};

/// Descriptors the gateway keeps out of the connection budget: LMDB
/// environments (two each, every domain's), listeners, logs, the servers'
/// spare descriptors.
inline constexpr std::uint64_t kReservedFds = 128;

/// How the gateway listens: a connection cap per socket and the timeouts of
/// http::ServerOptions. api.sock and admin.sock have caps of their own, and
/// within() keeps their sum inside the process's descriptor limit, so a
/// storefront that fills api.sock never takes admin.sock (or the gateway's
/// own files) down with it.
struct ListenOptions {
  std::size_t api_max_connections = 1024;  ///< [gateway] max_connections
  std::size_t admin_max_connections = 64;  ///< [gateway] max_admin_connections
  unsigned header_timeout_ms = 10'000;     ///< [gateway] header_timeout_ms
  unsigned idle_timeout_ms = 60'000;       ///< [gateway] idle_timeout_ms

  /// Reads the keys above over the defaults (caps at least 1).
  static ListenOptions from(const runtime::Config& config);
  /// The caps fitted into `open_files` (RLIMIT_NOFILE, soft): kReservedFds
  /// stay free, admin.sock keeps its cap (at most half of the rest), api.sock
  /// gets at most what is left. Pure.
  ListenOptions within(std::uint64_t open_files) const;
};

// CommandReply (the answer a domain daemon gave to a gateway command,
// msg::Reply) is in intake_store.hpp: keyed commands store it.

class Gateway {
 public:
  /// Opens (creates) the gateway's own tables in the runtime's environment.
  /// Call on the thread that will run the runtime, before run().
  /// Errors: LMDB codes.
  static std::expected<IntakeStore, std::error_code> open_tables(runtime::Runtime& rt);

  /// `io` runs the HTTP servers (this thread); `rt` is not running yet or runs
  /// on its own thread. Both outlive the Gateway.
  Gateway(boost::asio::io_context& io, runtime::Runtime& rt, IntakeStore intake,
          GatewayOptions options);
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  /// Installs the runtime's message handler and its tick, which expires
  /// idempotency keys (runtime::Retention; call before rt.run()).
  void attach();
  /// Keys expired per transaction (looked at, at most).
  static constexpr std::size_t kExpireBatch = 1024;

  /// Registers the storefront routes: api.sock with options' customer_auth,
  /// admin.sock with CustomerAuth::trusted and `back_office` (an operator may
  /// reset a password or e-mail without the current password).
  void add_storefront_routes(http::Server& server, CustomerAuth auth, bool back_office = false);
  /// Registers the admin-only routes (catalogue, coupons and their issuance,
  /// points charges, sagas, payments, /metrics): whatever grants value to an
  /// arbitrary user is on admin.sock only.
  void add_admin_routes(http::Server& server);
  /// Servers whose connection counts /metrics reports (may be null).
  void set_servers(const http::Server* api, const http::Server* admin);
  /// The http::ServerOptions::on_response of the server on `socket` ("api",
  /// "admin", "metrics"): request durations for /metrics. io thread.
  std::function<void(const http::Served&)> request_observer(std::string socket);
  /// GET /metrics (the Prometheus text format of render_metrics and the
  /// request durations). io thread.
  http::Response metrics();

  /// io thread: answers every pending command and parked long-poll with 503
  /// UNAVAILABLE ("shutting down") — a POST /v1/orders waiting on `Prefer:
  /// wait` after its acceptance with 202 —, cancels all timers and drops every
  /// responder, so the io_context can run out of work. Idempotent.
  void shutdown();

  /// The runtime thread's handler: `reply` and `orderFinalized` are handed to
  /// the io thread after the batch commits; anything else is ignored.
  std::error_code on_message(runtime::Context& ctx, msg::Envelope::Reader m);

 private:
  using Fill = std::function<void(msg::Envelope::Payload::Builder)>;
  using ReplyHandler = std::function<http::Response(const CommandReply&)>;

  struct Pending {
    http::ResponderPtr responder;
    ReplyHandler on_reply;  ///< builds the success response; empty for order intake
    std::unique_ptr<boost::asio::steady_timer> timer;
  };
  struct Waiter {
    std::uint64_t token = 0;
    http::ResponderPtr responder;
    std::unique_ptr<boost::asio::steady_timer> deadline;
    bool post = false;  ///< a POST /v1/orders with `Prefer: wait` (else a GET with wait_ms)
    std::int64_t wait_ms = 0;
  };

  // --- plumbing (io thread)
  std::uint64_t next_message_id();
  bool alive(runtime::DaemonId id) const;
  http::Response unavailable(runtime::DaemonId id) const;
  void add_pending(std::uint64_t token, http::ResponderPtr responder, ReplyHandler on_reply,
                   std::string waiting_for);
  /// Removes a pending command and cancels its timeout; nullptr if it already
  /// timed out or the gateway shut down.
  http::ResponderPtr take_pending(std::uint64_t token);
  void finish(std::uint64_t token, http::Response response);
  /// An Idempotency-Key of a command route, scoped (scoped_command_key),
  /// with the request's fingerprint (command_request_hash).
  struct CommandKey {
    std::string scoped;
    std::uint64_t request_hash = 0;
  };
  /// The key `req` carries (nullopt without the header). Errors: a malformed
  /// key, 400 INVALID_ARGUMENT.
  static std::expected<std::optional<CommandKey>, ApiError> command_key_of(
      const http::Request& req);
  /// Sends the command of route request `req` to `to` and answers
  /// `responder` from its reply. Every command route goes through here, so
  /// every one honours `req`'s Idempotency-Key (a malformed key: 400): a
  /// retry whose reply is stored is answered from it at once (even while `to`
  /// is down); one still waiting for its reply gets 409
  /// IDEMPOTENCY_KEY_IN_USE (Retry-After: 1); another request under the key
  /// 409 IDEMPOTENCY_KEY_REUSED; a new key is stored in the transaction that
  /// queues the command, so the command is applied once however often it is
  /// retried (IntakeStore::begin_command).
  void send_command(const http::Request& req, runtime::DaemonId to, http::ResponderPtr responder,
                    Fill fill, ReplyHandler on_reply);
  /// The answer a request under an Idempotency-Key that was used already
  /// gets (its stored reply through `on_reply`, 409 IN_USE or REUSED; 400
  /// for a malformed key), or nullopt: not keyed, or a new key. Routes that
  /// do costly work before send_command (hashing a password) ask it first.
  /// `key_out` (optional) receives the parsed key, so a caller that goes on
  /// does not parse it again.
  std::optional<http::Response> keyed_answer(const http::Request& req, const ReplyHandler& on_reply,
                                             std::optional<CommandKey>* key_out = nullptr);
  /// The answer to a command from its reply.
  static http::Response reply_response(const ReplyHandler& on_reply, const CommandReply& reply);
  /// The answer to a command whose key was known (not `send`).
  static http::Response known_key_response(const ReplyHandler& on_reply,
                                           const CommandKeyOutcome& known);
  void on_reply(std::uint64_t correlation_id, const CommandReply& reply);
  /// Posts `fn` to the io thread (any thread).
  void to_io(std::function<void()> fn);

  // --- accounts (io thread)
  /// Who calls: trusted (any user id), or the customer a session token names.
  struct Caller {
    bool trusted = false;
    std::uint64_t user_id = 0;       ///< the session's user (0 when trusted without a token)
    std::optional<TokenHash> token;  ///< the presented token's hash
  };
  /// The session of `req`'s bearer token: nullopt without an Authorization
  /// header. Errors: 401 UNAUTHENTICATED (WWW-Authenticate, RFC 6750 §3) for
  /// a malformed, unknown, expired or revoked token; 503/500 (reads).
  std::expected<std::optional<Caller>, http::Response> session_caller(const http::Request& req);
  /// The caller of a customer-scoped route under `auth`: trusted, or the
  /// session (then required: 401 without one).
  std::expected<Caller, http::Response> caller(const http::Request& req, CustomerAuth auth);
  /// Whether `caller` may see the order of `snapshot` (trusted, or its customer).
  static bool may_see(const Caller& caller, const OrderSnapshot& snapshot);
  /// The {id} of a /v1/users/{id}... route if `req`'s caller may act for it;
  /// otherwise sends 400/401/404 (another customer's id is 404
  /// USER_NOT_FOUND, as an unknown one) and returns nullopt.
  std::optional<std::uint64_t> own_user(const http::Request& req, CustomerAuth auth,
                                        http::ResponderPtr& responder);
  void register_user(const http::Request& req, http::ResponderPtr responder);
  void login(const http::Request& req, http::ResponderPtr responder);
  void patch_user(const http::Request& req, CustomerAuth auth, bool back_office,
                  http::ResponderPtr responder);
  /// Sends updateUser once the passwords are checked and hashed.
  void send_user_update(http::Request req, http::ResponderPtr responder, UpdateUserRequest change,
                        std::uint64_t user_id, std::string expected_hash,
                        std::optional<std::string> new_hash);
  /// A wrong password of `user_id` (a login, or PATCH's current_password):
  /// recordLoginFailure, then `answer` (401) once it is recorded.
  void record_wrong_password(const http::Request& req, std::uint64_t user_id,
                             http::ResponderPtr responder, http::Response answer);
  /// `req` without its Idempotency-Key (commands that must never be
  /// replayed from a stored answer: a login's token is not stored).
  static http::Request unkeyed(const http::Request& req);
  void add_account_routes(http::Server& s, CustomerAuth auth, bool back_office);

  // --- orders (io thread)
  void post_order(const http::Request& req, CustomerAuth auth, http::ResponderPtr responder);
  void get_order(const http::Request& req, CustomerAuth auth, http::ResponderPtr responder);
  std::expected<std::optional<OrderSnapshot>, ApiError> order_snapshot(std::uint64_t order_id);
  /// Holds `responder` until the order is terminal or `wait_ms` passed.
  void park(std::uint64_t order_id, http::ResponderPtr responder, std::int64_t wait_ms, bool post);
  /// The answer to an accepted POST /v1/orders: at once (202 PENDING) without
  /// `Prefer: wait`, else once the order is terminal (201 with the order) or
  /// the wait ran out (202).
  void answer_accepted(std::uint64_t order_id, http::ResponderPtr responder, std::int64_t wait_ms);
  /// What a parked waiter is answered with, from the order's snapshot.
  static http::Response waiter_response(
      std::uint64_t order_id, const std::expected<std::optional<OrderSnapshot>, ApiError>& snapshot,
      bool post, std::int64_t wait_ms);
  void answer_waiters(std::uint64_t order_id, bool only_if_terminal);
  void on_order_finalized(std::uint64_t order_id);
  void poll_waiters();
  /// Runtime thread: one expiry pass of idempotency keys (from the tick).
  void expire_keys();

  // --- admin
  std::vector<RingFill> ring_fills();
  /// GET /v1/feeds/orders: answers the events after `after` (NDJSON), or,
  /// with none yet, polls every order_poll_ms until `deadline`.
  void serve_feed(std::uint64_t after, std::size_t limit,
                  std::chrono::steady_clock::time_point deadline, http::ResponderPtr responder);
  std::size_t feed_waiters_ = 0;  ///< long-polls of the feed parked (io thread)

  boost::asio::io_context& io_;
  runtime::Runtime& rt_;
  IntakeStore intake_;
  GatewayOptions options_;
  DomainReads reads_;
  std::shared_ptr<spdlog::logger> log_;
  std::uint64_t message_counter_ = 0;
  std::unordered_map<std::uint64_t, Pending> pending_;
  std::multimap<std::uint64_t, Waiter> waiters_;  ///< by order id
  std::uint64_t waiter_tokens_ = 0;
  boost::asio::steady_timer poll_timer_;
  bool polling_ = false;
  bool shut_down_ = false;
  runtime::Retention key_expiry_;  ///< runtime thread: of idempotency keys
  const http::Server* api_server_ = nullptr;
  const http::Server* admin_server_ = nullptr;
  std::vector<std::optional<ipc::Ring>> rings_;         ///< observers for /metrics, by channel
  RequestMetrics request_metrics_;                      ///< io thread
  PasswordHasher hasher_;                               ///< results on the io thread
  std::unordered_set<std::uint64_t> logins_in_flight_;  ///< accounts being verified (io thread)
};

}  // namespace ringmart::gateway
