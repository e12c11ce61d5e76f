// ringmart::http — the request building, response conversion and error mapping
// shared by UnixClient (blocking) and AsyncUnixClient. Internal to the
// library: not part of its public API.
#pragma once

#include <boost/beast/http.hpp>
#include <boost/system/error_code.hpp>
#include <cstdint>
#include <expected>
#include <map>
#include <string>
#include <string_view>
#include <system_error>

#include "http/client.hpp"

namespace ringmart::http::detail {

/// Largest response body either client accepts (bytes).
inline constexpr std::uint64_t kMaxResponseBody = 64ull * 1024 * 1024;

using ClientRequest = boost::beast::http::request<boost::beast::http::string_body>;
using ClientParsed = boost::beast::http::response<boost::beast::http::string_body>;

/// Checks method, target and headers (no spaces, CR/LF or control characters
/// where HTTP forbids them) and builds the HTTP/1.1 request with Host,
/// User-Agent, Content-Type (application/json when `body` is not empty) and
/// Content-Length. Errors: std::errc::invalid_argument.
std::expected<ClientRequest, std::error_code> build_request(
    std::string_view method, std::string_view target, std::string_view body,
    const std::map<std::string, std::string>& headers);

/// The status, lower-case headers (duplicates joined with ", ") and body of
/// a parsed response; moves the body out of `msg`.
ClientResponse to_client_response(ClientParsed& msg);

/// Maps Boost/Asio/Beast errors onto the std::errc values client.hpp promises
/// (system errors keep their value; eof → connection_aborted; a Beast parse
/// error → protocol_error; anything else → io_error).
std::error_code to_std(const boost::system::error_code& ec);

/// True for errors that mean "the server closed this keep-alive connection
/// before it saw our request" (worth one retry on a fresh connection).
bool stale_connection(const boost::system::error_code& ec);

}  // namespace ringmart::http::detail
