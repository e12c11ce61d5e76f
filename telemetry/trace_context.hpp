// ringmart::telemetry — W3C Trace Context (https://www.w3.org/TR/trace-context/):
// the `traceparent` header a storefront may send with POST /v1/orders, the
// trace id that then travels in every envelope of the order's saga, and the
// `traceresponse` header (Trace Context Level 2) the gateway answers with.
//
// Pure functions and values; thread-safe (new_trace_id/new_span_id keep a
// per-thread generator).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ringmart::telemetry {

/// A 128-bit trace id; all zeros is the invalid (absent) id.
struct TraceId {
  std::uint64_t high = 0;
  std::uint64_t low = 0;

  bool valid() const { return high != 0 || low != 0; }
  /// 32 lower-case hex digits (the trace-id of the header), "" when invalid.
  std::string hex() const;
  bool operator==(const TraceId&) const = default;
};

/// A parsed `traceparent` header.
struct TraceParent {
  TraceId trace_id;
  std::uint64_t parent_id = 0;  ///< the caller's span id (never 0)
  std::uint8_t flags = 0;       ///< trace-flags; bit 0 = sampled
};

/// Parses a `traceparent` value as section 3.2 (and 4.3, "versioning") of the
/// W3C recommendation says: `version-traceid-parentid-flags` in lower-case
/// hex, 2-32-16-2 digits; version ff, an all-zero trace id or parent id, or
/// upper-case hex make it invalid; version 00 has exactly 55 characters; a
/// higher version may append "-..." fields, which are ignored. nullopt when
/// invalid: the caller then starts a new trace (never an error to the client).
std::optional<TraceParent> parse_traceparent(std::string_view value);

/// `00-<trace id>-<span id>-<flags>` (the traceparent/traceresponse format).
std::string format_traceparent(TraceId trace_id, std::uint64_t span_id, std::uint8_t flags);

/// A fresh random trace id (never invalid) and span id (never 0), from a
/// per-thread generator seeded by getrandom(2). Not for security.
TraceId new_trace_id();
std::uint64_t new_span_id();

}  // namespace ringmart::telemetry
