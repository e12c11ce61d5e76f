@0xe1c3a5f0d2b47a61;
# The supervisor's own records: one SagaRecord per order (saga id = order id).
using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("ringmart::supervisor");

enum SagaState {
  running @0;       # forward steps in progress
  compensating @1;  # undoing completed steps in reverse
  completed @2;     # terminal: every step done
  failed @3;        # terminal: compensations done, order FAILED with a reason
  stuck @4;         # a compensation exhausted its retry budget: needs an operator
  abandoned @5;     # terminal: an operator gave up on a STUCK saga (ringmartctl saga abandon)
}

struct SagaLine { productId @0 :UInt64; quantity @1 :Int64; unitPriceCents @2 :Int64; }

struct SagaEventRecord { step @0 :Text; event @1 :Text; atMs @2 :Int64; }

struct SagaRecord {
  orderId @0 :UInt64;
  userId @1 :UInt64;
  lines @2 :List(SagaLine);
  userCouponId @3 :UInt64;
  pointsRequested @4 :Int64;
  shippingCents @5 :Int64;
  subtotalCents @6 :Int64;
  paymentToken @7 :Text;
  installments @8 :UInt32;

  state @9 :SagaState;
  step @10 :UInt8;          # index into the saga definition; = step count for fail_order
  attempt @11 :UInt32;      # sends of the current command so far
  deadlineMs @12 :Int64;    # realtime ms when the current command times out
  failureReason @13 :UInt16;# msg::Code
  doneMask @14 :UInt32;     # steps whose effect may exist (done or unknown outcome)

  couponId @15 :UInt64;
  discountType @16 :UInt8;  # msg::DiscountType
  discountValue @17 :Int64;
  minOrderCents @18 :Int64;
  discountCents @19 :Int64;
  pointsUsed @20 :Int64;
  amountDueCents @21 :Int64;

  createdAtMs @22 :Int64;
  updatedAtMs @23 :Int64;
  stepNames @24 :List(Text);  # the definition this saga runs (config may change later)
  history @25 :List(SagaEventRecord);
}
