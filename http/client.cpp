// ringmart::http — blocking Unix-socket client. Each request runs Asio
// asynchronous operations on a private io_context with run_until(deadline),
// which gives one timeout for connect + write + read.
#include "http/client.hpp"

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <optional>
#include <utility>

#include "http/client_detail.hpp"

namespace ringmart::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace bsys = boost::system;
using local = asio::local::stream_protocol;

using detail::kMaxResponseBody;
using detail::stale_connection;
using detail::to_std;

struct UnixClient::Impl {
  Impl(std::string p, std::chrono::milliseconds t) : path(std::move(p)), timeout(t) {}

  std::string path;
  std::chrono::milliseconds timeout;
  asio::io_context io;
  local::socket sock{io};
  beast::flat_buffer buf;
  std::chrono::steady_clock::time_point deadline;

  // Starts one asynchronous operation via `init(handler)` and runs the
  // io_context until it completes or the deadline passes. On timeout the
  // socket is closed and asio::error::timed_out returned.
  template <class Init>
  bsys::error_code run(Init&& init) {
    std::optional<bsys::error_code> result;
    io.restart();
    init([&result](bsys::error_code ec, auto&&...) { result = ec; });
    io.run_until(deadline);
    if (!result) {
      close();
      io.restart();
      io.run();  // let the aborted operation finish before `result` dies
      return asio::error::timed_out;
    }
    return *result;
  }

  void close() {
    bsys::error_code ignored;
    sock.close(ignored);
    buf.consume(buf.size());
  }

  struct Attempt {
    bsys::error_code ec;
    std::optional<ClientResponse> response;
  };

  Attempt attempt(bhttp::request<bhttp::string_body>& req) {
    Attempt out;
    if (!sock.is_open()) {
      buf.consume(buf.size());
      local::endpoint ep;
      try {
        ep = local::endpoint(path);
      } catch (const bsys::system_error&) {
        out.ec = asio::error::name_too_long;
        return out;
      }
      out.ec = run([&](auto h) { sock.async_connect(ep, std::move(h)); });
      if (out.ec) {
        close();
        return out;
      }
    }

    bsys::error_code write_ec = run([&](auto h) { bhttp::async_write(sock, req, std::move(h)); });
    if (write_ec == asio::error::timed_out) {
      out.ec = write_ec;
      return out;
    }

    std::optional<bhttp::response_parser<bhttp::string_body>> parser;
    for (;;) {
      parser.emplace();
      parser->body_limit(kMaxResponseBody);
      bsys::error_code read_ec =
          run([&](auto h) { bhttp::async_read(sock, buf, *parser, std::move(h)); });
      if (read_ec) {
        close();
        // A failed write wins unless the server answered anyway (e.g. an early
        // 413 before it closed while we were still sending the body).
        out.ec = write_ec ? write_ec : read_ec;
        return out;
      }
      // Skip interim responses ("100 Continue" after Expect: 100-continue).
      unsigned status = parser->get().result_int();
      if (status < 100 || status >= 200 || status == 101) break;
    }

    auto& msg = parser->get();
    const bool keep_alive = msg.keep_alive();
    ClientResponse res = detail::to_client_response(msg);
    if (write_ec || !keep_alive) close();
    out.response = std::move(res);
    return out;
  }
};

UnixClient::UnixClient(std::string socket_path, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>(std::move(socket_path), timeout)) {}

UnixClient::~UnixClient() = default;
UnixClient::UnixClient(UnixClient&&) noexcept = default;
UnixClient& UnixClient::operator=(UnixClient&&) noexcept = default;

std::expected<ClientResponse, std::error_code> UnixClient::request(
    std::string_view method, std::string_view target, std::string_view body,
    const std::map<std::string, std::string>& headers) {
  if (!impl_) return std::unexpected(std::make_error_code(std::errc::bad_file_descriptor));
  auto req = detail::build_request(method, target, body, headers);
  if (!req) return std::unexpected(req.error());

  Impl& c = *impl_;
  c.deadline = std::chrono::steady_clock::now() + c.timeout;
  bool reused = c.sock.is_open();
  Impl::Attempt a = c.attempt(*req);
  if (!a.response && reused && stale_connection(a.ec)) a = c.attempt(*req);
  if (!a.response) return std::unexpected(to_std(a.ec));
  return std::move(*a.response);
}

}  // namespace ringmart::http
