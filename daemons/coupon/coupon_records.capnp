@0x958712bc528cc977;
# ringmart coupon daemon — the values of its LMDB tables (storage format, not
# wire format: enums are this file's own so the envelope can evolve freely).

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("ringmart::coupon::records");

enum DiscountType {
  fixed @0;
  percent @1;
}

# Table "coupon_templates": coupon id (u64 BE) -> CouponTemplate.
struct CouponTemplate {
  id @0 :UInt64;
  name @1 :Text;
  discountType @2 :DiscountType;
  discountValue @3 :Int64;   # cents (fixed) or whole percent (percent)
  totalQuantity @4 :Int64;
  issued @5 :Int64;          # never exceeds totalQuantity
  minOrderCents @6 :Int64;   # 0 = none
  expiresAtS @7 :Int64;      # Unix seconds, 0 = never
  perUserLimit @8 :Int64;    # issues per user at most; 0 (templates from before the limit) = none
}

enum UserCouponStatus {
  issued @0;
  used @1;
}

# Table "user_coupons": user coupon id (u64 BE) -> UserCoupon.
struct UserCoupon {
  id @0 :UInt64;
  couponId @1 :UInt64;
  userId @2 :UInt64;
  status @3 :UserCouponStatus;
  usedByOrder @4 :UInt64;    # 0 unless USED
  issuedAtS @5 :Int64;
}

enum UsageState {
  used @0;       # the order holds the coupon
  restored @1;   # compensated (or a tombstone when userCouponId = 0)
  rejected @2;   # useCoupon failed; `rejectCode` is the answer it got
}

# Table "coupon_usage": order id (u64 BE) -> CouponUsage, the per-order
# idempotency record of useCoupon / restoreCoupon.
struct CouponUsage {
  orderId @0 :UInt64;
  userCouponId @1 :UInt64;   # 0 = tombstone (restore before any use)
  state @2 :UsageState;
  rejectCode @3 :UInt16;     # msg::Code when state = rejected
  rejectDetail @4 :Text;
}
