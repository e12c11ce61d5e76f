@0xafb9d2369af98823;
# ringmart gateway — the values of its own LMDB tables (storage format, not
# wire format). The gateway owns idempotency keys and the orders it accepted
# but the order daemon may not have stored yet.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("ringmart::gateway::records");
using Msg = import "/schemas/envelope.capnp";

# Table "gw_idempotency": scoped Idempotency-Key bytes -> IdempotencyRecord:
# an order's key (orderId), or a command's (commandId, then its reply).
struct IdempotencyRecord {
  orderId @0 :UInt64;        # 0 for a command's key
  requestHash @1 :UInt64;    # FNV-1a 64 of the normalised request
  createdAtMs @2 :Int64;     # Unix ms
  commandId @3 :UInt64;      # a command's message id (gw_commands maps it back until answered)
  answered @4 :Bool;         # the command's reply arrived: the fields below are the answer
  replyCode @5 :UInt16;      # msg::Code
  replyId @6 :UInt64;
  replyValue @7 :Int64;
  replyMessage @8 :Text;
}

struct AcceptedLine {
  productId @0 :UInt64;
  quantity @1 :Int64;
  unitPriceCents @2 :Int64;  # snapshot taken when the order was accepted
}

# Table "gw_orders": order id (u64 BE) -> AcceptedOrder. Removed once the
# order daemon reported the order final (it then answers GETs itself).
struct AcceptedOrder {
  orderId @0 :UInt64;
  userId @1 :UInt64;
  lines @2 :List(AcceptedLine);
  userCouponId @3 :UInt64;   # 0 = none
  points @4 :Int64;
  shippingCents @5 :Int64;
  installments @6 :UInt32;
  subtotalCents @7 :Int64;
  acceptedAtMs @8 :Int64;    # Unix ms
  shippingAddress @9 :Msg.Address;  # the snapshot the order keeps; absent = none
}
