@0xfcbf945c4f0e52c7;
# ringmart payment daemon — the values of its LMDB tables (storage format).

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("ringmart::payment::records");

enum PaymentStatus {
  authorizing @0;     # authorization asked, no answer yet
  authorized @1;
  captured @2;
  voided @3;          # also the tombstone of a cancel before any start
  refunded @4;
  declined @5;
  captureFailed @6;   # the authorization is still held
}

# Table "payments": order id (u64 BE) -> Payment, also the per-order
# idempotency record of start/complete/cancel.
struct Payment {
  orderId @0 :UInt64;
  amountCents @1 :Int64;
  token @2 :Text;
  installments @3 :UInt32;
  status @4 :PaymentStatus;
  pgTransactionId @5 :Text;  # from the payment gateway's authorization
  attempts @6 :UInt32;       # payment-gateway calls made for this payment
  createdAtMs @7 :Int64;
  updatedAtMs @8 :Int64;
  detail @9 :Text;           # the gateway's last decline/failure text
}
