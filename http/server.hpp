// ringmart::http — HTTP/1.1 server on a Unix domain socket (Boost.Beast), or
// on a TCP socket for a read-only endpoint (ServerOptions::allow_tcp).
//
// Domain-agnostic: knows nothing of orders or daemons. The gateway daemon
// registers routes; a handler answers now or later (long-poll, a reply that
// arrives on a ring) through the Responder it is given.
//
// Threading: everything runs on the io_context passed in; the server is not
// thread-safe. Call Responder::send on the io_context thread only (use
// boost::asio::post from other threads).
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace ringmart::http {

/// One parsed request. `path` excludes the query; `query` is decoded
/// (percent-decoding, '+' as space); header names are lower-case.
struct Request {
  std::string method;                          ///< "GET", "POST", ...
  std::string path;                            ///< "/v1/orders/42"
  std::map<std::string, std::string> query;    ///< "?wait_ms=100" -> {"wait_ms","100"}
  std::map<std::string, std::string> headers;  ///< lower-case names
  std::map<std::string, std::string> params;   ///< route parameters, "{id}" -> value
  std::string route;  ///< the matched route's pattern ("/v1/orders/{id}"), "" when none matched
  std::string body;
  int peer_uid = -1;  ///< SO_PEERCRED of the connection (-1 when unknown)
  int peer_pid = -1;
};

/// One response. `headers` may add e.g. "Location"; Content-Type defaults to
/// application/json and Content-Length is set by the server.
struct Response {
  int status = 200;
  std::string body;
  std::map<std::string, std::string> headers;
};

/// Builds a JSON response with `status` and `body.dump()` (invalid UTF-8 is
/// replaced, never thrown). Pure function; thread-safe.
Response json_response(int status, const nlohmann::json& body);
/// Builds the error shape of the API: {"error": {"code": code, "message": message}}.
/// Pure function; thread-safe.
Response error_response(int status, std::string_view code, std::string_view message);

/// Completes one request exactly once; copies share the same request.
/// Calling send twice, or after the connection closed, is a harmless no-op.
/// Destroying the last ResponderPtr without send answers 500 INTERNAL.
/// Statuses outside 200..999 are sent as 500. Not thread-safe: send and drop
/// it on the server's io_context thread.
class Responder {
 public:
  virtual ~Responder() = default;
  virtual void send(Response response) = 0;
};
using ResponderPtr = std::shared_ptr<Responder>;
using Handler = std::function<void(const Request&, ResponderPtr)>;

/// What the server reports of each answered request (ServerOptions::on_response).
struct Served {
  std::string_view method;  ///< as received ("GET")
  std::string_view route;   ///< Request::route: the pattern, "" when no route matched
  int status = 0;           ///< the status sent
  /// From the complete request header to the response handed to the socket
  /// (its write then proceeds asynchronously), steady clock, ns.
  std::int64_t duration_ns = 0;
};

struct ServerOptions {
  std::string socket_path;      ///< created (stale file unlinked first), removed on stop
  unsigned socket_mode = 0660;  ///< chmod applied after bind
  /// A listening AF_UNIX stream socket to serve instead of binding
  /// socket_path (received: systemd socket activation, the supervisor's
  /// hand-over; listener.hpp). Once start() succeeds the server owns it and
  /// closes it on stop (a failed start() leaves it the caller's), but
  /// never unlinks its file, which belongs to whoever bound it;
  /// socket_path then only names it in messages. -1: bind socket_path.
  int listen_fd = -1;
  /// listen_fd may also be a listening TCP socket (AF_INET/AF_INET6,
  /// listener.hpp bind_tcp_listener): for a read-only endpoint such as
  /// /metrics that a scraper reaches over TCP. Requests over TCP have no
  /// peer credentials (Request::peer_uid -1).
  bool allow_tcp = false;
  std::size_t max_body_bytes =
      64 * 1024;                      ///< larger bodies -> 413 {"error":{"code":"BODY_TOO_LARGE"}}
  unsigned idle_timeout_ms = 60'000;  ///< keep-alive connections idle longer between requests are
                                      ///< closed; also bounds each body read and response write
  /// A request's header must be complete this long after its first byte
  /// arrived, and a new connection must send its first byte within it (so a
  /// new connection has at most twice this for its first header); slowloris:
  /// connections that never finish a request. 0: the idle timeout instead.
  unsigned header_timeout_ms = 10'000;
  /// Open connections at most; one more is answered 503 TOO_MANY_CONNECTIONS
  /// (Connection: close, Retry-After: 1) and closed at once, never left to
  /// wait. Must be >= 1.
  std::size_t max_connections = 1024;
  /// Called (on the io_context thread) once at the start of each burst of
  /// refusals: the limit reached, or accept(2) failing for want of file
  /// descriptors (EMFILE/ENFILE). The burst ends with the next connection
  /// accepted normally. Empty: not reported.
  std::function<void(const std::string&)> on_overload;
  /// Called (on the io_context thread) once per answered request, for
  /// metrics; not for requests that get no answer (the connection closed
  /// first), nor for those refused while being read (400 malformed, 413,
  /// 431: no method or route is known then), nor for refused connections.
  /// Empty: not reported.
  std::function<void(const Served&)> on_response{};
};

/// Routes "METHOD /v1/path/{param}/rest" patterns to handlers; serves
/// HTTP/1.1 keep-alive connections. Unknown path -> 404 NOT_FOUND; known path
/// with another method -> 405 METHOD_NOT_ALLOWED; unparsable request -> 400.
class Server {
 public:
  /// Throws std::invalid_argument for max_connections 0.
  Server(boost::asio::io_context& io, ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Registers `handler` for `method` and `pattern` ("/v1/orders/{id}").
  /// Literal segments win over parameters. Call before start().
  /// Throws std::invalid_argument for a malformed pattern (no leading '/',
  /// '{' inside a segment), an empty handler, or a route with the same
  /// method and shape as an existing one.
  void route(std::string method, std::string pattern, Handler handler);

  /// Binds and listens (bind_unix_socket), or serves options.listen_fd after
  /// check_unix_listener. Throws std::system_error when the socket cannot be
  /// created (directory missing, permission denied), when another server
  /// listens on the path, when the path is a non-socket file, or when
  /// listen_fd is not a listening AF_UNIX stream socket; a stale socket file
  /// is unlinked first. Throws std::logic_error when called twice.
  void start();
  /// Stops accepting, closes connections, unlinks the socket file it bound
  /// (not a listen_fd's).
  /// Idempotent; pending Responders become no-ops. Call on the io_context
  /// thread (or while it is not running).
  void stop();

  /// Number of connections accepted and served since start() (monotonic; for
  /// metrics and tests; refused ones are not counted). Thread-safe.
  std::size_t accepted_connections() const;
  /// Connections answered 503 and closed since start(): over max_connections,
  /// or shed while accept(2) failed with EMFILE/ENFILE (monotonic). Thread-safe.
  std::size_t refused_connections() const;
  /// Connections open now. Thread-safe.
  std::size_t open_connections() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ringmart::http
