@0xe1c3a5f0d2b47a61;
# The supervisor's own records: one SagaRecord per order (saga id = order id),
# rewritten on every step, so it holds scalars and short scalar lists only:
# ~430 bytes flat, stored packed (storage::put_message) in ~200, about
# twenty per LMDB page.
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

# Legacy (records written before the timeline): a text entry per event.
struct SagaEventRecord { step @0 :Text; event @1 :Text; atMs @2 :Int64; }

# What happened to a step (rendered as text by SagaStore::view).
enum SagaEventKind {
  started @0;      # the saga began (step = sagaStep)
  sent @1;         # the step's command was sent (first attempt)
  retried @2;      # sent again after a timeout; attempt = the send's number
  ok @3;           # the step succeeded
  failed @4;       # the step failed with `code`
  compensated @5;  # the step's compensation succeeded
  timedOut @6;     # no reply before the deadline
  stuck @7;        # the compensation exhausted its retry budget
  completed @8;    # the saga completed (step = sagaStep)
  sagaFailed @9;   # the saga ended FAILED (step = sagaStep)
  redriven @10;    # an operator re-drove the STUCK saga
  abandoned @11;   # an operator abandoned the STUCK saga
}

# One timeline entry: 16 bytes of data, no pointers.
struct SagaTimelineEntry {
  step @0 :UInt8;          # index into stepKinds; = their count for fail_order; 255 = the saga
  kind @1 :SagaEventKind;
  code @2 :UInt16;         # msg::Code of `failed`
  attempt @3 :UInt16;      # send number of `retried`
  atMs @4 :Int64;          # realtime ms
}

const sagaStep :UInt8 = 255;

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
  stepNames @24 :List(Text);         # legacy: superseded by stepKinds
  history @25 :List(SagaEventRecord);  # legacy: superseded by timeline
  stepKinds @26 :List(UInt8);  # the definition this saga runs (StepKind; config may change later)
  timeline @27 :List(SagaTimelineEntry);  # the most recent 64 events, oldest first
  sentAtNs @28 :Int64;      # realtime ns the current command was last sent (step round trip)
  traceIdHigh @29 :UInt64;  # W3C trace id of the order's request (both 0: none)
  traceIdLow @30 :UInt64;
}

