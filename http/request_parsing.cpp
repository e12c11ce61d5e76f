// ringmart::http — request parsing and routing. See request_parsing.hpp.
#include "http/request_parsing.hpp"

#include <set>
#include <stdexcept>

#include "http/text.hpp"

namespace ringmart::http::detail {

namespace bhttp = boost::beast::http;

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes `in`. Malformed escapes ("%zz", a trailing "%") are kept
// literally. With `plus_as_space`, '+' decodes to ' ' (form/query encoding).
std::string percent_decode(std::string_view in, bool plus_as_space) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%' && i + 2 < in.size()) {
      int hi = hex_value(in[i + 1]);
      int lo = hex_value(in[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_as_space && c == '+' ? ' ' : c);
  }
  return out;
}

// "a=1&b=x%20y&flag" -> {a:1, b:"x y", flag:""}; the last duplicate wins.
std::map<std::string, std::string> parse_query(std::string_view q) {
  std::map<std::string, std::string> out;
  while (!q.empty()) {
    auto amp = q.find('&');
    std::string_view pair = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    std::string key = percent_decode(pair.substr(0, eq), true);
    std::string value =
        eq == std::string_view::npos ? std::string{} : percent_decode(pair.substr(eq + 1), true);
    out[std::move(key)] = std::move(value);
  }
  return out;
}

// "/a/b/" -> {"a", "b", ""}; "/" -> {""}. `path` must start with '/'.
std::vector<std::string_view> split_segments(std::string_view path) {
  std::vector<std::string_view> out;
  std::size_t start = 1;
  for (;;) {
    auto slash = path.find('/', start);
    if (slash == std::string_view::npos) {
      out.push_back(path.substr(start));
      return out;
    }
    out.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
}

}  // namespace

void configure_parser(BeastParser& parser, std::size_t max_body_bytes) {
  parser.body_limit(static_cast<std::uint64_t>(max_body_bytes));
}

std::optional<Response> check_framing(const BeastRequest& msg) {
  std::string codings;
  for (const auto& field : msg) {
    if (field.name() != bhttp::field::transfer_encoding) continue;
    if (!codings.empty()) codings += ",";
    codings += to_string(field.value());
  }
  if (!codings.empty()) {
    std::string normalized;
    for (char c : lower(codings)) {
      if (c != ' ' && c != '\t') normalized.push_back(c);
    }
    if (normalized != "chunked") {
      return error_response(501, "NOT_IMPLEMENTED",
                            "transfer coding \"" + codings + "\" is not supported (only chunked)");
    }
  }
  if (msg.version() >= 11) {
    if (msg.count(bhttp::field::host) != 1) {
      return error_response(400, "BAD_REQUEST",
                            "an HTTP/1.1 request needs exactly one Host header (RFC 9112 3.2)");
    }
  }
  return std::nullopt;
}

Request to_request(BeastRequest& msg) {
  Request req;
  req.method = to_string(msg.method_string());
  std::string_view target(msg.target().data(), msg.target().size());
  auto qmark = target.find('?');
  req.path = std::string(target.substr(0, qmark));
  if (qmark != std::string_view::npos) req.query = parse_query(target.substr(qmark + 1));
  for (const auto& field : msg) {
    std::string name = lower(to_string(field.name_string()));
    std::string value = to_string(field.value());
    auto [it, inserted] = req.headers.emplace(std::move(name), value);
    if (!inserted) it->second += ", " + value;
  }
  req.body = std::move(msg.body());
  return req;
}

// ---------------------------------------------------------------------------
// Routing

std::vector<RouteTable::Segment> RouteTable::parse_pattern(std::string_view pattern) {
  if (pattern.empty() || pattern.front() != '/') {
    throw std::invalid_argument("route pattern must start with '/': " + std::string(pattern));
  }
  std::vector<Segment> out;
  std::set<std::string> names;
  for (auto seg : split_segments(pattern)) {
    if (seg.size() > 2 && seg.front() == '{' && seg.back() == '}') {
      std::string name(seg.substr(1, seg.size() - 2));
      if (name.find_first_of("{}") != std::string::npos || !names.insert(name).second) {
        throw std::invalid_argument("bad route parameter in pattern: " + std::string(pattern));
      }
      out.push_back({std::move(name), true});
    } else {
      if (seg.find_first_of("{}") != std::string_view::npos) {
        throw std::invalid_argument("route parameters must span a whole segment: " +
                                    std::string(pattern));
      }
      out.push_back({std::string(seg), false});
    }
  }
  return out;
}

bool RouteTable::same_shape(const std::vector<Segment>& a, const std::vector<Segment>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].param != b[i].param) return false;
    if (!a[i].param && a[i].text != b[i].text) return false;
  }
  return true;
}

// Both match the same path: the first position where one has a literal and
// the other a parameter decides (literal wins).
bool RouteTable::more_specific(const std::vector<Segment>& a, const std::vector<Segment>& b) {
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
    if (a[i].param != b[i].param) return !a[i].param;
  }
  return false;
}

bool RouteTable::matches(const Route& r, const std::vector<std::string_view>& segs) {
  if (r.segments.size() != segs.size()) return false;
  for (std::size_t i = 0; i < segs.size(); ++i) {
    const Segment& s = r.segments[i];
    if (s.param ? segs[i].empty() : s.text != segs[i]) return false;
  }
  return true;
}

void RouteTable::add(std::string method, std::string pattern, Handler handler) {
  if (!handler) throw std::invalid_argument("route handler is empty");
  std::transform(method.begin(), method.end(), method.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  Route r{std::move(method), std::move(pattern), {}, std::move(handler)};
  r.segments = parse_pattern(r.pattern);
  for (const Route& other : routes_) {
    if (other.method == r.method && same_shape(other.segments, r.segments)) {
      throw std::invalid_argument("duplicate route " + r.method + " " + r.pattern +
                                  " (conflicts with " + other.pattern + ")");
    }
  }
  routes_.push_back(std::move(r));
}

std::expected<const Handler*, Response> RouteTable::find(Request& req) const {
  const Route* found = nullptr;
  std::set<std::string> allowed;
  if (!req.path.empty() && req.path.front() == '/') {
    const auto segs = split_segments(req.path);
    for (const Route& r : routes_) {
      if (!matches(r, segs)) continue;
      allowed.insert(r.method);
      if (r.method != req.method) continue;
      if (!found || more_specific(r.segments, found->segments)) found = &r;
    }
    if (found) {
      for (std::size_t i = 0; i < segs.size(); ++i) {
        const Segment& seg = found->segments[i];
        if (seg.param) req.params[seg.text] = percent_decode(segs[i], false);
      }
      req.route = found->pattern;
      return &found->handler;
    }
  }
  if (allowed.empty()) {
    return std::unexpected(error_response(404, "NOT_FOUND", "no route for " + req.path));
  }
  std::string allow;
  for (const auto& m : allowed) {
    if (!allow.empty()) allow += ", ";
    allow += m;
  }
  Response r =
      error_response(405, "METHOD_NOT_ALLOWED", req.method + " is not allowed on " + req.path);
  r.headers["Allow"] = std::move(allow);
  return std::unexpected(std::move(r));
}

}  // namespace ringmart::http::detail
