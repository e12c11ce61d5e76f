// ringmart::storage — text in stored Cap'n Proto records.
// Pure functions; thread-safe.
#pragma once

#include <capnp/blob.h>

#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>

namespace ringmart::storage {

/// Copies a Cap'n Proto Text into a std::string (embedded NULs kept).
inline std::string to_string(capnp::Text::Reader t) { return {t.cStr(), t.size()}; }

/// Fills a Text field initialised with `s.size()` bytes (`initName(s.size())`).
inline void set_text(capnp::Text::Builder out, std::string_view s) {
  std::memcpy(out.begin(), s.data(), s.size());
}

/// Number of code points in UTF-8 text: the bytes that are not continuation
/// bytes (10xxxxxx). Length limits on names count characters, not bytes.
inline std::size_t utf8_length(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

}  // namespace ringmart::storage
