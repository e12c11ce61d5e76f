// ringmart::http — the coroutine client. The timeout is a steady_timer armed
// for the whole request: when it fires it closes the socket, which ends the
// pending connect/write/read with an error that request() reports as
// timed_out.
#include "http/async_client.hpp"

#include <algorithm>
#include <boost/asio/error.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <utility>

#include "http/text.hpp"

namespace ringmart::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace bsys = boost::system;
using local = asio::local::stream_protocol;

namespace detail {
namespace {

/// Largest response body the client accepts (bytes).
constexpr std::uint64_t kMaxResponseBody = 64ull * 1024 * 1024;

using ClientRequest = bhttp::request<bhttp::string_body>;
using ClientParsed = bhttp::response<bhttp::string_body>;

bool bad_token(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](unsigned char c) { return c <= ' ' || c == 0x7f; });
}

// Checks method, target and headers (no spaces, CR/LF or control characters
// where HTTP forbids them) and builds the HTTP/1.1 request with Host,
// User-Agent, Content-Type (application/json when `body` is not empty) and
// Content-Length. Errors: std::errc::invalid_argument.
std::expected<ClientRequest, std::error_code> build_request(
    std::string_view method, std::string_view target, std::string_view body,
    const std::map<std::string, std::string>& headers) {
  if (method.empty() || bad_token(method) || target.empty() || bad_token(target)) {
    return std::unexpected(std::make_error_code(std::errc::invalid_argument));
  }
  for (const auto& [name, value] : headers) {
    if (name.empty() || bad_token(name) || name.find(':') != std::string::npos || has_ctl(value)) {
      return std::unexpected(std::make_error_code(std::errc::invalid_argument));
    }
  }
  ClientRequest req;
  bhttp::verb verb = bhttp::string_to_verb(beast::string_view(method.data(), method.size()));
  if (verb == bhttp::verb::unknown) {
    req.method_string(beast::string_view(method.data(), method.size()));
  } else {
    req.method(verb);
  }
  req.target(beast::string_view(target.data(), target.size()));
  req.version(11);
  req.set(bhttp::field::host, "localhost");
  req.set(bhttp::field::user_agent, "ringmart-http");
  if (!body.empty()) req.set(bhttp::field::content_type, "application/json");
  for (const auto& [name, value] : headers) req.set(name, value);
  req.body() = std::string(body);
  req.prepare_payload();
  return req;
}

// The status, lower-case headers (duplicates joined with ", ") and body of a
// parsed response; moves the body out of `msg`.
ClientResponse to_client_response(ClientParsed& msg) {
  ClientResponse res;
  res.status = static_cast<int>(msg.result_int());
  for (const auto& field : msg) {
    std::string name = lower(to_string(field.name_string()));
    std::string value = to_string(field.value());
    auto [it, inserted] = res.headers.emplace(std::move(name), value);
    if (!inserted) it->second += ", " + value;
  }
  res.body = std::move(msg.body());
  return res;
}

// Maps Boost/Asio/Beast errors onto the std::errc values client.hpp promises
// (system errors keep their value; eof -> connection_aborted; a Beast parse
// error -> protocol_error; anything else -> io_error).
std::error_code to_std(const bsys::error_code& ec) {
  if (!ec) return {};
  if (ec.category() == bsys::system_category() || ec.category() == bsys::generic_category()) {
    return {ec.value(), std::generic_category()};
  }
  if (ec == asio::error::eof || ec == bhttp::error::end_of_stream) {
    return std::make_error_code(std::errc::connection_aborted);
  }
  if (ec.category() == bhttp::make_error_code(bhttp::error::end_of_stream).category()) {
    return std::make_error_code(std::errc::protocol_error);
  }
  return std::make_error_code(std::errc::io_error);
}

// True for errors that mean "the server closed this keep-alive connection
// before it saw our request" (worth one retry on a fresh connection).
bool stale_connection(const bsys::error_code& ec) {
  return ec == asio::error::eof || ec == bhttp::error::end_of_stream ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == asio::error::not_connected || ec == asio::error::connection_aborted;
}

}  // namespace
}  // namespace detail

struct AsyncUnixClient::State {
  State(asio::any_io_executor ex, std::string p, std::chrono::milliseconds t)
      : path(std::move(p)), timeout(t), sock(ex), timer(ex) {}

  std::string path;
  std::chrono::milliseconds timeout;
  local::socket sock;
  asio::steady_timer timer;
  beast::flat_buffer buf;
  bool busy = false;          ///< a request() is running
  bool timed_out = false;     ///< the timer of the running request fired
  std::uint64_t request = 0;  ///< counts requests: a late timer of an earlier one is ignored

  void close() {
    bsys::error_code ignored;
    sock.close(ignored);
    buf.consume(buf.size());
  }

  struct Attempt {
    bsys::error_code ec;
    std::optional<ClientResponse> response;
  };

  asio::awaitable<Attempt> attempt(detail::ClientRequest& req) {
    Attempt out;
    if (!sock.is_open()) {
      buf.consume(buf.size());
      local::endpoint ep;
      try {
        ep = local::endpoint(path);
      } catch (const bsys::system_error&) {
        out.ec = asio::error::name_too_long;
        co_return out;
      }
      co_await sock.async_connect(ep, asio::redirect_error(asio::use_awaitable, out.ec));
      if (out.ec) {
        close();
        co_return out;
      }
    }

    bsys::error_code write_ec;
    co_await bhttp::async_write(sock, req, asio::redirect_error(asio::use_awaitable, write_ec));
    if (timed_out) co_return out;

    std::optional<bhttp::response_parser<bhttp::string_body>> parser;
    for (;;) {
      parser.emplace();
      parser->body_limit(detail::kMaxResponseBody);
      bsys::error_code read_ec;
      co_await bhttp::async_read(sock, buf, *parser,
                                 asio::redirect_error(asio::use_awaitable, read_ec));
      if (read_ec) {
        close();
        // A failed write wins unless the server answered anyway (e.g. an early
        // 413 before it closed while we were still sending the body).
        out.ec = write_ec ? write_ec : read_ec;
        co_return out;
      }
      // Skip interim responses ("100 Continue" after Expect: 100-continue).
      unsigned status = parser->get().result_int();
      if (status < 100 || status >= 200 || status == 101) break;
    }
    auto& msg = parser->get();
    const bool keep_alive = msg.keep_alive();
    out.response = detail::to_client_response(msg);
    if (write_ec || !keep_alive) close();
    co_return out;
  }
};

AsyncUnixClient::AsyncUnixClient(asio::any_io_executor executor, std::string socket_path,
                                 std::chrono::milliseconds timeout)
    : state_(std::make_shared<State>(std::move(executor), std::move(socket_path), timeout)) {}

AsyncUnixClient::~AsyncUnixClient() {
  if (state_) {
    state_->timer.cancel();
    state_->close();
  }
}
AsyncUnixClient::AsyncUnixClient(AsyncUnixClient&&) noexcept = default;
AsyncUnixClient& AsyncUnixClient::operator=(AsyncUnixClient&&) noexcept = default;

asio::awaitable<std::expected<ClientResponse, std::error_code>> AsyncUnixClient::request(
    std::string method, std::string target, std::string body,
    std::map<std::string, std::string> headers) {
  const std::shared_ptr<State> s = state_;  // alive until this coroutine ends
  if (!s) co_return std::unexpected(std::make_error_code(std::errc::bad_file_descriptor));
  auto req = detail::build_request(method, target, body, headers);
  if (!req) co_return std::unexpected(req.error());
  if (s->busy) throw std::logic_error("AsyncUnixClient: one request at a time");
  s->busy = true;
  s->timed_out = false;
  const std::uint64_t request = ++s->request;
  s->timer.expires_after(s->timeout);
  s->timer.async_wait([weak = std::weak_ptr<State>(s), request](const bsys::error_code& ec) {
    if (ec) return;  // cancelled: the request ended first
    // An expiry already queued when its request ended is stale.
    if (auto st = weak.lock(); st && st->busy && st->request == request) {
      st->timed_out = true;
      st->close();
    }
  });
  const bool reused = s->sock.is_open();
  State::Attempt a = co_await s->attempt(*req);
  if (!a.response && !s->timed_out && reused && detail::stale_connection(a.ec)) {
    a = co_await s->attempt(*req);
  }
  s->timer.cancel();
  s->busy = false;
  if (s->timed_out) {
    s->close();
    co_return std::unexpected(std::make_error_code(std::errc::timed_out));
  }
  if (!a.response) co_return std::unexpected(detail::to_std(a.ec));
  co_return std::move(*a.response);
}

}  // namespace ringmart::http
