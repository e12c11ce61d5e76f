// libFuzzer target: arbitrary bytes as one HTTP/1.1 request, through the
// server's own steps (http/request_parsing.hpp): Beast's parser with the
// server's limits, the RFC 9112 framing checks, the Request handlers see and
// the route table with parameters. Crashes, ASan/UBSan reports and leaks are
// findings; any answer (a Request, 400, 404, 405, 413, 501) is fine.
#include <boost/asio/buffer.hpp>
#include <cstddef>
#include <cstdint>
#include <string>

#include "http/request_parsing.hpp"

namespace {

volatile std::uint64_t sink = 0;

using namespace ringmart::http;

const detail::RouteTable& routes() {
  static const detail::RouteTable table = [] {
    detail::RouteTable t;
    auto ok = [](const Request&, ResponderPtr) {};
    // The gateway's shapes: literals, parameters, both at one position.
    for (const char* pattern :
         {"/v1/health", "/v1/users", "/v1/users/{id}", "/v1/users/{id}/points",
          "/v1/users/{id}/points/charge", "/v1/orders", "/v1/orders/{id}", "/v1/coupons/{id}/issue",
          "/v1/products/{id}/stock", "/v1/rankings/bestsellers"}) {
      t.add("GET", pattern, ok);
      t.add("POST", pattern, ok);
    }
    t.add("PATCH", "/v1/products/{id}/stock", ok);
    return t;
  }();
  return table;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  detail::BeastParser parser;
  detail::configure_parser(parser, 64 * 1024);
  parser.eager(true);
  boost::system::error_code ec;
  // Fed in two pieces, as a socket may deliver it: what put() did not
  // consume is offered again with the next piece, as the server's read does.
  std::size_t offset = 0;
  auto feed = [&](std::size_t end) {
    while (offset < end && !parser.is_done()) {
      const auto n = parser.put(boost::asio::buffer(data + offset, end - offset), ec);
      offset += n;
      if (ec == boost::beast::http::error::need_more) {
        ec = {};
        return;
      }
      if (ec || n == 0) return;
    }
  };
  feed(size > 0 ? data[0] % (size + 1) : 0);
  if (!ec) feed(size);
  if (ec) return 0;
  if (!parser.is_header_done()) return 0;
  auto& msg = parser.get();
  if (detail::check_framing(msg)) return 0;
  if (!parser.is_done()) return 0;
  Request req = detail::to_request(msg);
  auto found = routes().find(req);
  // Touch what a handler reads.
  std::size_t total = req.body.size();
  for (const auto& [k, v] : req.params) total += k.size() + v.size();
  for (const auto& [k, v] : req.query) total += k.size() + v.size();
  if (!found) total += found.error().body.size();
  sink = total;  // keeps the reads
  return 0;
}
