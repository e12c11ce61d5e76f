// ringmart::http — small string helpers shared by the server and the clients.
// Internal to the library. Pure; thread-safe.
#pragma once

#include <algorithm>
#include <boost/beast/core/string.hpp>
#include <string>
#include <string_view>

namespace ringmart::http::detail {

/// A Beast string view as a std::string.
inline std::string to_string(boost::beast::string_view sv) {
  return std::string(sv.data(), sv.size());
}

/// ASCII lower case (header names, "close", "100-continue").
inline std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) {
    return static_cast<char>((c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c);
  });
  return out;
}

/// True when `s` holds CR, LF or NUL (not allowed in a header name or value).
inline bool has_ctl(std::string_view s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) != s.npos;
}

}  // namespace ringmart::http::detail
