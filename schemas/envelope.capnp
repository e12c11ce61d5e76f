@0xc9a4c1e07d2f4a11;
# ringmart messages: one envelope for every ring record, and the commands and
# events of every domain. The union tag of `payload` is the message type.
# Money is integer minor units (cents). Ids are assigned by their owning daemon
# (users, products, coupons) or by the gateway (orders); the order id is also
# the saga id.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("ringmart::msg");

enum DaemonId {
  supervisor @0;
  gateway @1;
  user @2;
  product @3;
  coupon @4;
  order @5;
  payment @6;
  ranking @7;
}

# Outcome of a command. `ok` or a business failure; failures are values,
# never exceptions. The saga failure reasons are the first six after ok.
enum Code {
  ok @0;
  couponInvalid @1;
  outOfStock @2;
  paymentDeclined @3;
  insufficientPoints @4;
  paymentCaptureFailed @5;
  paymentTimeout @6;
  userNotFound @7;
  productNotFound @8;
  couponNotFound @9;
  couponSoldOut @10;
  couponExpired @11;
  invalidArgument @12;
  stockNegative @13;
  orderNotFound @14;
  internal @15;
  stepTimeout @16;   # a saga step other than payment never answered within its retry budget
  couponUserLimit @17;  # the user already holds as many of this coupon as one user may
  productUnavailable @18;  # the product was unlisted: it can no longer be ordered
  emailTaken @19;          # another user has this e-mail address (compared case-insensitively)
  invalidCredentials @20;  # the password the gateway verified is no longer the user's
  addressNotFound @21;     # no such address in the user's address book
  orderStateConflict @22;  # the order's status does not allow it (shipping an unpaid order, ...)
}

enum DiscountType {
  fixed @0;
  percent @1;
}

struct Envelope {
  messageId @0 :UInt64;     # unique per logical message; a retried command keeps it
  sagaId @1 :UInt64;        # order id for saga traffic, 0 otherwise
  sender @2 :DaemonId;
  receiver @3 :DaemonId;
  seq @4 :UInt64;           # per directed channel (sender -> receiver), from 1, gap-free
  sentAtNs @5 :Int64;       # CLOCK_REALTIME when appended to the outbox
  traceId @6 :UInt64;       # W3C trace id, low 64 bits (0 with traceIdHigh 0: none)
  correlationId @7 :UInt64; # for replies: the messageId of the command answered

  payload :union {
    # --- gateway commands and their generic reply -------------------------
    registerUser @8 :RegisterUser;
    chargePoints @9 :ChargePoints;
    createProduct @10 :CreateProduct;
    adjustStock @11 :AdjustStock;
    createCoupon @12 :CreateCoupon;
    issueCoupon @13 :IssueCoupon;
    reply @14 :Reply;
    createOrder @15 :CreateOrder;
    orderFinalized @16 :OrderFinalized;

    # --- saga: step commands (supervisor -> domain) and replies ------------
    orderCreated @17 :OrderCreated;        # order -> supervisor: starts the saga
    useCoupon @18 :UseCoupon;
    couponUsed @19 :CouponUsed;
    restoreCoupon @20 :OrderRef;
    couponRestored @21 :StepOutcome;
    applyCoupon @22 :ApplyCoupon;
    couponApplied @23 :CouponApplied;
    deductInventory @24 :DeductInventory;
    inventoryDeducted @25 :StepOutcome;
    restoreInventory @26 :OrderRef;
    inventoryRestored @27 :StepOutcome;
    startPayment @28 :StartPayment;
    paymentStarted @29 :StepOutcome;
    cancelPayment @30 :OrderRef;
    paymentCancelled @31 :StepOutcome;
    deductPoints @32 :DeductPoints;
    pointsDeducted @33 :StepOutcome;
    restorePoints @34 :OrderRef;
    pointsRestored @35 :StepOutcome;
    completePayment @36 :OrderRef;
    paymentCompleted @37 :StepOutcome;
    completeOrder @38 :CompleteOrder;
    orderCompleted @39 :OrderCompleted;    # order -> supervisor and -> ranking
    failOrder @40 :FailOrder;
    orderFailed @41 :StepOutcome;
    updateProduct @43 :UpdateProduct;      # gateway -> product (admin)
    unlistProduct @44 :UnlistProduct;      # gateway -> product (admin)
    # --- accounts (gateway -> user) ------------------------------------------
    updateUser @45 :UpdateUser;
    openSession @46 :OpenSession;
    closeSession @47 :CloseSession;
    recordLoginFailure @48 :RecordLoginFailure;
    addAddress @49 :AddAddress;
    updateAddress @50 :UpdateAddress;
    deleteAddress @51 :DeleteAddress;
    # --- fulfilment (gateway -> order, admin) ------------------------------
    shipOrder @52 :ShipOrder;
    markDelivered @53 :OrderRef;
  }

  traceIdHigh @42 :UInt64;  # W3C trace id, high 64 bits: the trace of the request that began
                            # this work (POST /v1/orders' traceparent, or a new one)
}

# passwordHash: a libsodium crypto_pwhash_str string (Argon2id, "$argon2id$..."),
# computed by the gateway; empty = a guest customer, who cannot log in.
struct RegisterUser { name @0 :Text; email @1 :Text; passwordHash @2 :Text; }
# Changes only the fields whose set* flag is true. With setPasswordHash (or
# setEmail) and a non-empty expectedPasswordHash, the change applies only if
# the user's hash is still that one (the password the gateway verified).
struct UpdateUser {
  userId @0 :UInt64;
  setName @1 :Bool;
  name @2 :Text;
  setEmail @3 :Bool;
  email @4 :Text;
  setPasswordHash @5 :Bool;
  passwordHash @6 :Text;
  expectedPasswordHash @7 :Text;
}
# A login the gateway verified against verifiedPasswordHash: stores the
# session under tokenHash (BLAKE2b-256 of the token; the token itself never
# leaves the gateway) and clears the account's failed logins.
struct OpenSession {
  userId @0 :UInt64;
  tokenHash @1 :Data;
  expiresAtMs @2 :Int64;
  verifiedPasswordHash @3 :Text;
}
struct CloseSession { tokenHash @0 :Data; }
# A wrong password for userId: counts it and, past the limit, locks the
# account's logins; the reply's value is the lock's end (Unix ms, 0 = none).
struct RecordLoginFailure { userId @0 :UInt64; }
# A postal address (country: ISO 3166-1 alpha-2, upper case).
struct Address {
  recipient @0 :Text;
  phone @1 :Text;
  line1 @2 :Text;
  line2 @3 :Text;
  city @4 :Text;
  region @5 :Text;
  postalCode @6 :Text;
  country @7 :Text;
}
struct AddAddress { userId @0 :UInt64; address @1 :Address; makeDefault @2 :Bool; }
# Replaces the fields whose bit is set in fieldMask (bit i = Address field @i).
struct UpdateAddress {
  userId @0 :UInt64;
  addressId @1 :UInt64;
  fieldMask @2 :UInt32;
  address @3 :Address;
  makeDefault @4 :Bool;
}
struct DeleteAddress { userId @0 :UInt64; addressId @1 :UInt64; }
# A paid (COMPLETED) order leaves the warehouse: -> SHIPPED.
struct ShipOrder { orderId @0 :UInt64; carrier @1 :Text; trackingNumber @2 :Text; }
struct ChargePoints { userId @0 :UInt64; amount @1 :Int64; }
struct CreateProduct { name @0 :Text; category @1 :Text; priceCents @2 :Int64; stock @3 :Int64; }
struct AdjustStock { productId @0 :UInt64; delta @1 :Int64; }
# Changes only the fields whose set* flag is true.
struct UpdateProduct {
  productId @0 :UInt64;
  setName @1 :Bool;
  name @2 :Text;
  setCategory @3 :Bool;
  category @4 :Text;
  setPrice @5 :Bool;
  priceCents @6 :Int64;
}
struct UnlistProduct { productId @0 :UInt64; }
struct CreateCoupon {
  name @0 :Text;
  discountType @1 :DiscountType;
  discountValue @2 :Int64;      # cents for fixed, whole percent 1..100 for percent
  totalQuantity @3 :Int64;
  minOrderCents @4 :Int64;      # 0 = none
  expiresAtS @5 :Int64;         # Unix seconds, 0 = never
  perUserLimit @6 :Int64;       # issues per user at most, >= 1 (0 from an older sender: 1)
}
struct IssueCoupon { couponId @0 :UInt64; userId @1 :UInt64; }

# Generic reply to a gateway command: `id` is the created/affected entity,
# `value` a resulting figure (balance, stock), `message` a human-readable detail.
struct Reply { code @0 :Code; id @1 :UInt64; value @2 :Int64; message @3 :Text; }

struct OrderLine { productId @0 :UInt64; quantity @1 :Int64; unitPriceCents @2 :Int64; }

struct CreateOrder {
  orderId @0 :UInt64;
  userId @1 :UInt64;
  lines @2 :List(OrderLine);
  userCouponId @3 :UInt64;      # 0 = none
  points @4 :Int64;
  shippingCents @5 :Int64;
  paymentToken @6 :Text;
  installments @7 :UInt32;
  shippingAddress @8 :Address;  # a snapshot taken at intake; absent = none given
}

# The order as the saga sees it: CreateOrder plus the computed subtotal.
struct OrderCreated { order @0 :CreateOrder; subtotalCents @1 :Int64; }

struct OrderFinalized { orderId @0 :UInt64; completed @1 :Bool; reason @2 :Code; }

struct OrderRef { orderId @0 :UInt64; }
struct StepOutcome { code @0 :Code; detail @1 :Text; }

struct UseCoupon { orderId @0 :UInt64; userId @1 :UInt64; userCouponId @2 :UInt64; }
struct CouponUsed {
  code @0 :Code;
  couponId @1 :UInt64;
  discountType @2 :DiscountType;
  discountValue @3 :Int64;
  minOrderCents @4 :Int64;
  detail @5 :Text;
}
struct ApplyCoupon {
  orderId @0 :UInt64;
  discountType @1 :DiscountType;
  discountValue @2 :Int64;
  minOrderCents @3 :Int64;
}
struct CouponApplied { code @0 :Code; discountCents @1 :Int64; detail @2 :Text; }
struct DeductInventory { orderId @0 :UInt64; lines @1 :List(OrderLine); }
struct StartPayment {
  orderId @0 :UInt64;
  amountCents @1 :Int64;
  paymentToken @2 :Text;
  installments @3 :UInt32;
}
struct DeductPoints { orderId @0 :UInt64; userId @1 :UInt64; points @2 :Int64; }
struct CompleteOrder {
  orderId @0 :UInt64;
  discountCents @1 :Int64;
  pointsUsed @2 :Int64;
  paidCents @3 :Int64;
}
struct OrderCompleted { orderId @0 :UInt64; lines @1 :List(OrderLine); completedAtMs @2 :Int64; }
struct FailOrder { orderId @0 :UInt64; reason @1 :Code; }
