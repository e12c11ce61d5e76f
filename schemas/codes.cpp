#include "schemas/codes.hpp"

#include <capnp/schema.h>

#include <cstdint>

namespace ringmart::msg {

const char* code_name(Code code) {
  switch (code) {
    case Code::OK:
      return "OK";
    case Code::COUPON_INVALID:
      return "COUPON_INVALID";
    case Code::OUT_OF_STOCK:
      return "OUT_OF_STOCK";
    case Code::PAYMENT_DECLINED:
      return "PAYMENT_DECLINED";
    case Code::INSUFFICIENT_POINTS:
      return "INSUFFICIENT_POINTS";
    case Code::PAYMENT_CAPTURE_FAILED:
      return "PAYMENT_CAPTURE_FAILED";
    case Code::PAYMENT_TIMEOUT:
      return "PAYMENT_TIMEOUT";
    case Code::USER_NOT_FOUND:
      return "USER_NOT_FOUND";
    case Code::PRODUCT_NOT_FOUND:
      return "PRODUCT_NOT_FOUND";
    case Code::COUPON_NOT_FOUND:
      return "COUPON_NOT_FOUND";
    case Code::COUPON_SOLD_OUT:
      return "COUPON_SOLD_OUT";
    case Code::COUPON_EXPIRED:
      return "COUPON_EXPIRED";
    case Code::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case Code::STOCK_NEGATIVE:
      return "STOCK_NEGATIVE";
    case Code::ORDER_NOT_FOUND:
      return "ORDER_NOT_FOUND";
    case Code::INTERNAL:
      return "INTERNAL";
    case Code::STEP_TIMEOUT:
      return "STEP_TIMEOUT";
    case Code::COUPON_USER_LIMIT:
      return "COUPON_USER_LIMIT";
    case Code::PRODUCT_UNAVAILABLE:
      return "PRODUCT_UNAVAILABLE";
    case Code::EMAIL_TAKEN:
      return "EMAIL_TAKEN";
    case Code::INVALID_CREDENTIALS:
      return "INVALID_CREDENTIALS";
    case Code::ADDRESS_NOT_FOUND:
      return "ADDRESS_NOT_FOUND";
    case Code::ORDER_STATE_CONFLICT:
      return "ORDER_STATE_CONFLICT";
  }
  return "UNKNOWN";
}

const char* payload_name(Envelope::Payload::Which which) {
  static const capnp::StructSchema schema = capnp::Schema::from<Envelope::Payload>();
  KJ_IF_MAYBE (field, schema.getFieldByDiscriminant(static_cast<std::uint16_t>(which))) {
    return field->getProto().getName().cStr();
  }
  return "unknown";
}

}  // namespace ringmart::msg
