#include "http/client_detail.hpp"

#include <algorithm>
#include <boost/asio/error.hpp>
#include <utility>

#include "http/text.hpp"

namespace ringmart::http::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace bsys = boost::system;

namespace {

bool bad_token(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](unsigned char c) { return c <= ' ' || c == 0x7f; });
}

}  // namespace

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

bool stale_connection(const bsys::error_code& ec) {
  return ec == asio::error::eof || ec == bhttp::error::end_of_stream ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == asio::error::not_connected || ec == asio::error::connection_aborted;
}

}  // namespace ringmart::http::detail
