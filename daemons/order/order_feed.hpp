// ringmart::order — the change feed's wire formats, shared by the gateway
// (GET /v1/feeds/orders) and ringmartctl (export orders), so both write the
// same fields with the same names.
//
// NDJSON (https://github.com/ndjson/ndjson-spec): one JSON object per line,
// `{"seq","type","order_id","user_id","status","at_ms","total","paid",
// "item_count"}` plus "failure_reason" (failed) and "carrier",
// "tracking_number" (shipped). CSV (RFC 4180): the header row of
// feed_csv_header(), then one row per event, empty cells where a member is
// absent; fields with a comma, a quote or a line break are quoted.
//
// Thread-safety: pure functions.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "daemons/order/order_store.hpp"

namespace ringmart::order {

/// Where a consumer's cursor (the last seq it had) stands in the feed.
enum class FeedCursor {
  ok,       ///< the events after it are all there (possibly none yet)
  ahead,    ///< beyond the newest seq ever written: not a cursor of this feed
  expired,  ///< events after it were pruned: reading on would skip them
};
FeedCursor feed_cursor(std::uint64_t after, const FeedBounds& bounds);

/// The event as one NDJSON object.
nlohmann::json feed_event_json(const FeedEvent& e);
/// "seq,type,order_id,user_id,status,at_ms,total,paid,item_count,failure_reason,carrier,tracking_number"
std::string feed_csv_header();
/// The event as one CSV row (no line break).
std::string feed_event_csv(const FeedEvent& e);

}  // namespace ringmart::order
