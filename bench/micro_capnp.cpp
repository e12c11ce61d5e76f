// Cap'n Proto encode/decode of every envelope payload the order saga sends
// (schemas/envelope.capnp), the way the runtime does it:
//  - encode: MallocMessageBuilder(256 words) + envelope header + payload +
//    messageToFlatArray (runtime.cpp Context::send);
//  - decode: FlatArrayMessageReader over the aligned bytes (in place, as from a
//    ring record) + getRoot<Envelope> + reading every field of the payload.
// Units: ns per message; the counter msg_bytes is the flat size (what a ring
// record or an outbox row carries, before the 16-byte ring header).
#include <benchmark/benchmark.h>
#include <capnp/message.h>
#include <capnp/serialize.h>

#include <cstdint>

#include "schemas/envelope.capnp.h"

namespace ringmart::bench {
namespace {

using Payload = msg::Envelope::Payload;
using Fill = void (*)(Payload::Builder);

constexpr std::uint64_t kOrder = 1'000'123;

/// Three lines: the Olist sample averages 1.1 lines per order, so this is a
/// pessimistic but plausible order.
template <class ListBuilder>
void fill_lines(ListBuilder lines) {
  for (unsigned i = 0; i < lines.size(); ++i) {
    lines[i].setProductId(4000 + i);
    lines[i].setQuantity(1 + i);
    lines[i].setUnitPriceCents(12'990 + i);
  }
}

void fill_create_order(msg::CreateOrder::Builder c) {
  c.setOrderId(kOrder);
  c.setUserId(77);
  fill_lines(c.initLines(3));
  c.setUserCouponId(5);
  c.setPoints(300);
  c.setShippingCents(1'850);
  c.setPaymentToken("tok_ok");
  c.setInstallments(3);
}

void create_order(Payload::Builder p) { fill_create_order(p.initCreateOrder()); }
void order_created(Payload::Builder p) {
  auto c = p.initOrderCreated();
  fill_create_order(c.initOrder());
  c.setSubtotalCents(39'000);
}
void use_coupon(Payload::Builder p) {
  auto c = p.initUseCoupon();
  c.setOrderId(kOrder);
  c.setUserId(77);
  c.setUserCouponId(5);
}
void coupon_used(Payload::Builder p) {
  auto c = p.initCouponUsed();
  c.setCode(msg::Code::OK);
  c.setCouponId(9);
  c.setDiscountType(msg::DiscountType::FIXED);
  c.setDiscountValue(1'000);
  c.setMinOrderCents(0);
}
void apply_coupon(Payload::Builder p) {
  auto c = p.initApplyCoupon();
  c.setOrderId(kOrder);
  c.setDiscountType(msg::DiscountType::FIXED);
  c.setDiscountValue(1'000);
}
void deduct_inventory(Payload::Builder p) {
  auto c = p.initDeductInventory();
  c.setOrderId(kOrder);
  fill_lines(c.initLines(3));
}
void start_payment(Payload::Builder p) {
  auto c = p.initStartPayment();
  c.setOrderId(kOrder);
  c.setAmountCents(39'550);
  c.setPaymentToken("tok_ok");
  c.setInstallments(3);
}
void deduct_points(Payload::Builder p) {
  auto c = p.initDeductPoints();
  c.setOrderId(kOrder);
  c.setUserId(77);
  c.setPoints(300);
}
void complete_payment(Payload::Builder p) { p.initCompletePayment().setOrderId(kOrder); }
void complete_order(Payload::Builder p) {
  auto c = p.initCompleteOrder();
  c.setOrderId(kOrder);
  c.setDiscountCents(1'000);
  c.setPointsUsed(300);
  c.setPaidCents(39'550);
}
void order_completed(Payload::Builder p) {
  auto c = p.initOrderCompleted();
  c.setOrderId(kOrder);
  fill_lines(c.initLines(3));
  c.setCompletedAtMs(1'700'000'000'000);
}
/// A step reply (inventoryDeducted, paymentStarted, ... all carry StepOutcome).
void step_outcome(Payload::Builder p) { p.initInventoryDeducted().setCode(msg::Code::OK); }
void reply(Payload::Builder p) {
  auto c = p.initReply();
  c.setCode(msg::Code::OK);
  c.setId(kOrder);
  c.setValue(42);
}

void fill_envelope(msg::Envelope::Builder e, Fill fill) {
  e.setMessageId(0x0500'0000'0000'0001);
  e.setSagaId(kOrder);
  e.setSender(msg::DaemonId::SUPERVISOR);
  e.setReceiver(msg::DaemonId::PRODUCT);
  e.setSeq(123'456);
  e.setSentAtNs(1'700'000'000'000'000'000);
  e.setTraceId(kOrder);
  e.setCorrelationId(0);
  fill(e.initPayload());
}

template <class LinesReader>
std::uint64_t sum_lines(LinesReader lines) {
  std::uint64_t s = 0;
  for (auto l : lines) s += l.getProductId() + l.getQuantity() + l.getUnitPriceCents();
  return s;
}

std::uint64_t sum_create_order(msg::CreateOrder::Reader c) {
  return c.getOrderId() + c.getUserId() + sum_lines(c.getLines()) + c.getUserCouponId() +
         c.getPoints() + c.getShippingCents() + c.getPaymentToken().size() + c.getInstallments();
}

/// Reads every field a handler would read, so decode cost is not just getRoot().
std::uint64_t read_all(msg::Envelope::Reader e) {
  std::uint64_t s = e.getMessageId() + e.getSagaId() + static_cast<std::uint64_t>(e.getSender()) +
                    static_cast<std::uint64_t>(e.getReceiver()) + e.getSeq() +
                    static_cast<std::uint64_t>(e.getSentAtNs()) + e.getTraceId() +
                    e.getCorrelationId();
  auto p = e.getPayload();
  switch (p.which()) {
    case Payload::CREATE_ORDER:
      return s + sum_create_order(p.getCreateOrder());
    case Payload::ORDER_CREATED:
      return s + sum_create_order(p.getOrderCreated().getOrder()) +
             p.getOrderCreated().getSubtotalCents();
    case Payload::USE_COUPON: {
      auto c = p.getUseCoupon();
      return s + c.getOrderId() + c.getUserId() + c.getUserCouponId();
    }
    case Payload::COUPON_USED: {
      auto c = p.getCouponUsed();
      return s + static_cast<std::uint64_t>(c.getCode()) + c.getCouponId() +
             static_cast<std::uint64_t>(c.getDiscountType()) + c.getDiscountValue() +
             c.getMinOrderCents() + c.getDetail().size();
    }
    case Payload::APPLY_COUPON: {
      auto c = p.getApplyCoupon();
      return s + c.getOrderId() + static_cast<std::uint64_t>(c.getDiscountType()) +
             c.getDiscountValue() + c.getMinOrderCents();
    }
    case Payload::DEDUCT_INVENTORY:
      return s + p.getDeductInventory().getOrderId() + sum_lines(p.getDeductInventory().getLines());
    case Payload::START_PAYMENT: {
      auto c = p.getStartPayment();
      return s + c.getOrderId() + c.getAmountCents() + c.getPaymentToken().size() +
             c.getInstallments();
    }
    case Payload::DEDUCT_POINTS: {
      auto c = p.getDeductPoints();
      return s + c.getOrderId() + c.getUserId() + c.getPoints();
    }
    case Payload::COMPLETE_PAYMENT:
      return s + p.getCompletePayment().getOrderId();
    case Payload::COMPLETE_ORDER: {
      auto c = p.getCompleteOrder();
      return s + c.getOrderId() + c.getDiscountCents() + c.getPointsUsed() + c.getPaidCents();
    }
    case Payload::ORDER_COMPLETED: {
      auto c = p.getOrderCompleted();
      return s + c.getOrderId() + sum_lines(c.getLines()) + c.getCompletedAtMs();
    }
    case Payload::INVENTORY_DEDUCTED: {
      auto c = p.getInventoryDeducted();
      return s + static_cast<std::uint64_t>(c.getCode()) + c.getDetail().size();
    }
    case Payload::REPLY: {
      auto c = p.getReply();
      return s + static_cast<std::uint64_t>(c.getCode()) + c.getId() + c.getValue() +
             c.getMessage().size();
    }
    default:
      return s;
  }
}

kj::Array<capnp::word> encode(Fill fill) {
  capnp::MallocMessageBuilder builder(256);
  fill_envelope(builder.initRoot<msg::Envelope>(), fill);
  return capnp::messageToFlatArray(builder);
}

void BM_CapnpEncode(benchmark::State& state, Fill fill) {
  std::size_t bytes = 0;
  for (auto _ : state) {
    auto words = encode(fill);
    bytes = words.size() * sizeof(capnp::word);
    benchmark::DoNotOptimize(words.begin());
  }
  state.counters["msg_bytes"] = static_cast<double>(bytes);
}

void BM_CapnpDecode(benchmark::State& state, Fill fill) {
  const auto words = encode(fill);
  capnp::ReaderOptions options;
  options.traversalLimitInWords = 1 << 20;  // as storage::StoredMessage::reader_options()
  for (auto _ : state) {
    capnp::FlatArrayMessageReader reader(words.asPtr(), options);
    benchmark::DoNotOptimize(read_all(reader.getRoot<msg::Envelope>()));
  }
  state.counters["msg_bytes"] = static_cast<double>(words.size() * sizeof(capnp::word));
}

#define RINGMART_CAPNP_BENCH(name)                              \
  BENCHMARK_CAPTURE(BM_CapnpEncode, name, &name)->MinTime(0.1); \
  BENCHMARK_CAPTURE(BM_CapnpDecode, name, &name)->MinTime(0.1)

RINGMART_CAPNP_BENCH(create_order);
RINGMART_CAPNP_BENCH(order_created);
RINGMART_CAPNP_BENCH(use_coupon);
RINGMART_CAPNP_BENCH(coupon_used);
RINGMART_CAPNP_BENCH(apply_coupon);
RINGMART_CAPNP_BENCH(deduct_inventory);
RINGMART_CAPNP_BENCH(start_payment);
RINGMART_CAPNP_BENCH(deduct_points);
RINGMART_CAPNP_BENCH(complete_payment);
RINGMART_CAPNP_BENCH(complete_order);
RINGMART_CAPNP_BENCH(order_completed);
RINGMART_CAPNP_BENCH(step_outcome);
RINGMART_CAPNP_BENCH(reply);

}  // namespace
}  // namespace ringmart::bench
