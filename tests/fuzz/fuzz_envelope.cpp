// libFuzzer target: arbitrary bytes as a ring record, decoded the way the
// runtime's loop decodes every inbound message (runtime::with_envelope: Cap'n
// Proto flat array, the runtime's reader limits), then dispatched on the
// payload's union tag with every field of the active member read — what any
// daemon's handler may read. A malformed message must surface as a
// kj::Exception (the loop quarantines it), never as a crash or an
// out-of-bounds read. The domains' handlers still live in their daemons'
// main(); once they are services (issue 18) this target should call them.
#include <capnp/dynamic.h>
#include <capnp/schema.h>
#include <kj/array.h>
#include <kj/exception.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "daemons/common/runtime.hpp"

namespace {

volatile std::uint64_t sink = 0;
constexpr unsigned kMaxListElements = 1024;

using namespace ringmart;

std::uint64_t visit(capnp::DynamicValue::Reader value, int depth);

std::uint64_t visit_struct(capnp::DynamicStruct::Reader s, int depth) {
  std::uint64_t n = 1;
  KJ_IF_MAYBE (active, s.which()) {
    n += visit(s.get(*active), depth + 1);
  }
  for (auto field : s.getSchema().getNonUnionFields()) {
    if (s.has(field)) n += visit(s.get(field), depth + 1);
  }
  return n;
}

std::uint64_t visit(capnp::DynamicValue::Reader value, int depth) {
  if (depth > 64) return 0;  // the reader's nesting limit (64) stops deeper messages first
  switch (value.getType()) {
    case capnp::DynamicValue::TEXT:
      return value.as<capnp::Text>().size();
    case capnp::DynamicValue::DATA:
      return value.as<capnp::Data>().size();
    case capnp::DynamicValue::LIST: {
      // The first kMaxListElements: a few bytes can encode a list of a
      // million empty structs (the traversal limit bounds it, at 2^20), and
      // walking all of them would only slow the fuzzer down.
      std::uint64_t n = 0;
      const auto list = value.as<capnp::DynamicList>();
      for (unsigned i = 0; i < list.size() && i < kMaxListElements; ++i) {
        n += visit(list[i], depth + 1);
      }
      return n;
    }
    case capnp::DynamicValue::STRUCT:
      return visit_struct(value.as<capnp::DynamicStruct>(), depth);
    case capnp::DynamicValue::ENUM:
      return value.as<capnp::DynamicEnum>().getRaw();
    case capnp::DynamicValue::INT:
      return static_cast<std::uint64_t>(value.as<std::int64_t>());
    case capnp::DynamicValue::UINT:
      return value.as<std::uint64_t>();
    default:
      return 1;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Ring records are 8-byte aligned; so is this copy.
  auto words = kj::heapArray<capnp::word>((size + 7) / 8);
  std::memset(words.begin(), 0, words.size() * sizeof(capnp::word));
  std::memcpy(words.begin(), data, size);
  const std::span<const std::byte> record(reinterpret_cast<const std::byte*>(words.begin()), size);
  try {
    const auto n = runtime::with_envelope(record, [](msg::Envelope::Reader envelope) {
      // The runtime's own reads (inbox: sender and seq; compensation check)...
      std::uint64_t total = static_cast<std::uint64_t>(envelope.getSender()) + envelope.getSeq();
      total += static_cast<std::uint64_t>(envelope.getPayload().which());
      // ...then whatever a handler of the active payload may read.
      return total + visit_struct(capnp::toDynamic(envelope), 0);
    });
    sink = n;  // keeps the reads
    return 0;
  } catch (const kj::Exception&) {
    return 0;  // malformed: the loop quarantines it
  }
}
