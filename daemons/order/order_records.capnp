@0xb1d687956d9bb88b;
# ringmart order daemon — the values of its LMDB tables (storage format; the
# status enum is this file's own, failure reasons are msg::Code numbers).

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("ringmart::order::records");
using Msg = import "/schemas/envelope.capnp";

enum OrderStatus {
  pending @0;
  completed @1;
  failed @2;
  shipped @3;    # paid and handed to a carrier
  delivered @4;  # the carrier delivered it
}

struct OrderLine {
  productId @0 :UInt64;
  quantity @1 :Int64;
  unitPriceCents @2 :Int64;
}

struct StatusChange {
  status @0 :OrderStatus;
  atMs @1 :Int64;            # Unix ms
}

# Table "order_feed": sequence (u64 BE, from 1, gap-free) -> FeedEvent: the
# change feed of order events, appended in the transaction of the change.
enum FeedEventKind {
  created @0;
  completed @1;
  failed @2;
  shipped @3;
  delivered @4;
}

struct FeedEvent {
  seq @0 :UInt64;
  kind @1 :FeedEventKind;
  orderId @2 :UInt64;
  userId @3 :UInt64;
  status @4 :OrderStatus;    # the order's status after the event
  atMs @5 :Int64;            # Unix ms
  totalCents @6 :Int64;      # subtotal + shipping
  paidCents @7 :Int64;       # 0 unless paid
  failureReason @8 :UInt16;  # msg::Code when failed
  itemCount @9 :Int64;
  carrier @10 :Text;         # shipped
  trackingNumber @11 :Text;
}

# Table "order_counters": u8 0 -> u64 last feed sequence (kept when old events
# are pruned, so a sequence is never reused).

# Table "orders": order id (u64 BE) -> Order.
struct Order {
  orderId @0 :UInt64;
  userId @1 :UInt64;
  lines @2 :List(OrderLine);
  userCouponId @3 :UInt64;   # 0 = none
  pointsRequested @4 :Int64;
  shippingCents @5 :Int64;
  paymentToken @6 :Text;
  installments @7 :UInt32;
  subtotalCents @8 :Int64;
  discountCents @9 :Int64;
  pointsUsed @10 :Int64;
  paidCents @11 :Int64;
  status @12 :OrderStatus;
  failureReason @13 :UInt16; # msg::Code, meaningful when failed
  createdAtMs @14 :Int64;
  completedAtMs @15 :Int64;  # 0 unless completed
  history @16 :List(StatusChange);
  couponApplied @17 :Bool;   # applyCoupon ran: its answer is couponCode/discountCents
  couponCode @18 :UInt16;    # msg::Code answered by applyCoupon
  tombstone @19 :Bool;       # failOrder arrived before createOrder
  shippingAddress @20 :Msg.Address;  # the snapshot taken at intake; absent = none
  carrier @21 :Text;          # set when shipped
  trackingNumber @22 :Text;
  shippedAtMs @23 :Int64;     # 0 unless shipped
  deliveredAtMs @24 :Int64;   # 0 unless delivered
}
