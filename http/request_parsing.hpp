// ringmart::http — from bytes to a routed Request: the parser settings, the
// RFC 9112 framing checks, the Request handlers see, and the route table.
// Internal to the library (server.cpp) and its fuzz target
// (tests/fuzz/fuzz_http_request.cpp), which drives exactly these functions on
// arbitrary bytes. Pure; not thread-safe to add() while find() runs.
#pragma once

#include <boost/beast/http.hpp>
#include <cstddef>
#include <expected>
#include <optional>
#include <string>
#include <vector>

#include "http/server.hpp"

namespace ringmart::http::detail {

using BeastRequest = boost::beast::http::request<boost::beast::http::string_body>;
using BeastParser = boost::beast::http::request_parser<boost::beast::http::string_body>;

/// The limits the server reads every request with: a body of at most
/// `max_body_bytes` (Beast then fails with http::error::body_limit), Beast's
/// default 8 KiB for the start line and headers.
void configure_parser(BeastParser& parser, std::size_t max_body_bytes);

/// What RFC 9112 requires a server to refuse before reading a body: a
/// transfer coding other than a lone "chunked" (§6.1: 501 NOT_IMPLEMENTED;
/// Beast would read "gzip, chunked" as plain chunked and hand a still-coded
/// body to the handler), an HTTP/1.1 request without exactly one Host field
/// (§3.2: 400 BAD_REQUEST). nullopt when the request may proceed.
std::optional<Response> check_framing(const BeastRequest& msg);

/// The Request handlers see (server.hpp): method, raw path, percent-decoded
/// query ('+' as space, malformed escapes kept, last duplicate wins),
/// lower-case header names (duplicates joined with ", "), the body moved out
/// of `msg`. peer_uid/peer_pid and params are left for the caller.
Request to_request(BeastRequest& msg);

/// Routes "METHOD /v1/path/{param}" patterns (see Server::route).
class RouteTable {
 public:
  /// Throws std::invalid_argument for a malformed pattern, an empty handler
  /// or a duplicate (same method and shape).
  void add(std::string method, std::string pattern, Handler handler);
  /// The handler for req.method and req.path, with req.params filled
  /// (percent-decoded); or the answer when there is none: 404 NOT_FOUND, or
  /// 405 METHOD_NOT_ALLOWED with Allow. The pointer stays valid until the
  /// next add().
  std::expected<const Handler*, Response> find(Request& req) const;

 private:
  struct Segment {
    std::string text;  // literal text, or the parameter name
    bool param = false;
  };
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<Segment> segments;
    Handler handler;
  };
  static std::vector<Segment> parse_pattern(std::string_view pattern);
  static bool same_shape(const std::vector<Segment>& a, const std::vector<Segment>& b);
  static bool more_specific(const std::vector<Segment>& a, const std::vector<Segment>& b);
  static bool matches(const Route& r, const std::vector<std::string_view>& segs);
  std::vector<Route> routes_;
};

}  // namespace ringmart::http::detail
