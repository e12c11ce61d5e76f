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

namespace ringmart::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace bsys = boost::system;
using local = asio::local::stream_protocol;

namespace {

constexpr std::uint64_t kMaxResponseBody = 64ull * 1024 * 1024;

std::string to_string(beast::string_view sv) { return std::string(sv.data(), sv.size()); }

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) {
    return static_cast<char>((c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c);
  });
  return out;
}

bool bad_token(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](unsigned char c) { return c <= ' ' || c == 0x7f; });
}

bool has_ctl(std::string_view s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) != s.npos;
}

// Maps Boost/Asio/Beast errors onto the std::errc values promised by client.hpp.
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

// Errors that mean "the server closed this keep-alive connection before it
// saw our request" (worth one retry on a fresh connection).
bool stale_connection(const bsys::error_code& ec) {
  return ec == asio::error::eof || ec == bhttp::error::end_of_stream ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == asio::error::not_connected || ec == asio::error::connection_aborted;
}

}  // namespace

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
    ClientResponse res;
    res.status = static_cast<int>(msg.result_int());
    for (const auto& field : msg) {
      std::string name = lower(to_string(field.name_string()));
      std::string value = to_string(field.value());
      auto [it, inserted] = res.headers.emplace(std::move(name), value);
      if (!inserted) it->second += ", " + value;
    }
    res.body = std::move(msg.body());
    if (write_ec || !msg.keep_alive()) close();
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
  if (method.empty() || bad_token(method) || target.empty() || bad_token(target)) {
    return std::unexpected(std::make_error_code(std::errc::invalid_argument));
  }
  for (const auto& [name, value] : headers) {
    if (name.empty() || bad_token(name) || name.find(':') != std::string::npos || has_ctl(value)) {
      return std::unexpected(std::make_error_code(std::errc::invalid_argument));
    }
  }

  bhttp::request<bhttp::string_body> req;
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

  Impl& c = *impl_;
  c.deadline = std::chrono::steady_clock::now() + c.timeout;
  bool reused = c.sock.is_open();
  Impl::Attempt a = c.attempt(req);
  if (!a.response && reused && stale_connection(a.ec)) a = c.attempt(req);
  if (!a.response) return std::unexpected(to_std(a.ec));
  return std::move(*a.response);
}

}  // namespace ringmart::http
