#include "telemetry/trace_context.hpp"

#include <fmt/format.h>
#include <sys/random.h>

#include <random>

namespace ringmart::telemetry {
namespace {

// Lower-case hex only (the recommendation's HEXDIGLC); `out` gets the value.
bool parse_hex(std::string_view digits, std::uint64_t& out) {
  out = 0;
  for (char c : digits) {
    std::uint64_t v;
    if (c >= '0' && c <= '9') {
      v = static_cast<std::uint64_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      v = static_cast<std::uint64_t>(c - 'a' + 10);
    } else {
      return false;
    }
    out = (out << 4) | v;
  }
  return true;
}

std::mt19937_64& generator() {
  thread_local std::mt19937_64 gen = [] {
    std::uint64_t seed = 0;
    if (::getrandom(&seed, sizeof seed, 0) != static_cast<ssize_t>(sizeof seed)) {
      seed = std::random_device{}();
    }
    return std::mt19937_64(seed);
  }();
  return gen;
}

}  // namespace

std::string TraceId::hex() const {
  if (!valid()) return "";
  return fmt::format("{:016x}{:016x}", high, low);
}

std::optional<TraceParent> parse_traceparent(std::string_view value) {
  // version "-" trace-id "-" parent-id "-" trace-flags: 2+1+32+1+16+1+2 = 55.
  constexpr std::size_t kLength = 55;
  if (value.size() < kLength) return std::nullopt;
  if (value[2] != '-' || value[35] != '-' || value[52] != '-') return std::nullopt;
  std::uint64_t version = 0, flags = 0;
  TraceParent out;
  if (!parse_hex(value.substr(0, 2), version) || version == 0xff) return std::nullopt;
  if (version == 0 && value.size() != kLength) return std::nullopt;
  if (version != 0 && value.size() > kLength && value[kLength] != '-') return std::nullopt;
  if (!parse_hex(value.substr(3, 16), out.trace_id.high) ||
      !parse_hex(value.substr(19, 16), out.trace_id.low) ||
      !parse_hex(value.substr(36, 16), out.parent_id) || !parse_hex(value.substr(53, 2), flags)) {
    return std::nullopt;
  }
  if (!out.trace_id.valid() || out.parent_id == 0) return std::nullopt;
  out.flags = static_cast<std::uint8_t>(flags);
  return out;
}

std::string format_traceparent(TraceId trace_id, std::uint64_t span_id, std::uint8_t flags) {
  return fmt::format("00-{:016x}{:016x}-{:016x}-{:02x}", trace_id.high, trace_id.low, span_id,
                     flags);
}

TraceId new_trace_id() {
  TraceId id;
  while (!id.valid()) id = TraceId{generator()(), generator()()};
  return id;
}

std::uint64_t new_span_id() {
  std::uint64_t id = 0;
  while (id == 0) id = generator()();
  return id;
}

}  // namespace ringmart::telemetry
