#include "daemons/order/order_feed.hpp"

#include <string_view>

namespace ringmart::order {
namespace {

// RFC 4180 §2: a field with a comma, a quote or a line break is quoted, and
// its quotes doubled.
std::string csv_field(std::string_view s) {
  if (s.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(s);
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace

FeedCursor feed_cursor(std::uint64_t after, const FeedBounds& bounds) {
  if (after > bounds.last) return FeedCursor::ahead;
  if (after < bounds.last && (bounds.first == 0 || after + 1 < bounds.first)) {
    return FeedCursor::expired;
  }
  return FeedCursor::ok;
}

nlohmann::json feed_event_json(const FeedEvent& e) {
  nlohmann::json j = {{"seq", e.seq},
                      {"type", feed_event_name(e.kind)},
                      {"order_id", e.order_id},
                      {"user_id", e.user_id},
                      {"status", order_status_name(e.status)},
                      {"at_ms", e.at_ms},
                      {"total", e.total_cents},
                      {"paid", e.paid_cents},
                      {"item_count", e.item_count}};
  if (e.kind == FeedEventKind::failed) j["failure_reason"] = failure_reason_name(e.failure_reason);
  if (e.kind == FeedEventKind::shipped) {
    j["carrier"] = e.carrier;
    j["tracking_number"] = e.tracking_number;
  }
  return j;
}

std::string feed_csv_header() {
  return "seq,type,order_id,user_id,status,at_ms,total,paid,item_count,failure_reason,carrier,"
         "tracking_number";
}

std::string feed_event_csv(const FeedEvent& e) {
  std::string row = std::to_string(e.seq) + "," + feed_event_name(e.kind) + "," +
                    std::to_string(e.order_id) + "," + std::to_string(e.user_id) + "," +
                    order_status_name(e.status) + "," + std::to_string(e.at_ms) + "," +
                    std::to_string(e.total_cents) + "," + std::to_string(e.paid_cents) + "," +
                    std::to_string(e.item_count) + ",";
  if (e.kind == FeedEventKind::failed) row += failure_reason_name(e.failure_reason);
  row += ",";
  if (e.kind == FeedEventKind::shipped) {
    row += csv_field(e.carrier) + "," + csv_field(e.tracking_number);
  } else {
    row += ",";
  }
  return row;
}

}  // namespace ringmart::order
