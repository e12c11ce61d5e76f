// ringmart::storage — Cap'n Proto values in LMDB tables.
//
// Records (put_message) are stored in Cap'n Proto's packed encoding behind a
// one-byte tag: zero bytes cost ~nothing, so a record takes ~40-50% of its
// flat size (saga 427 → 196 bytes, order 225 → 92 on the Olist replay), and
// fewer pages are touched per commit, synced per interval and resident.
// Reading unpacks into an owned, aligned word array. Records written flat
// (before the packed encoding; outbox entries, which go on rings as they
// are) are read as they are: see kPackedTag.
// Encoding: https://capnproto.org/encoding.html#packing
// Thread-safety: none needed (pure functions; the scratch buffer of
// put_message is thread_local).
#pragma once

#include <capnp/message.h>
#include <capnp/serialize-packed.h>
#include <capnp/serialize.h>
#include <kj/io.h>

#include <cstring>
#include <optional>
#include <span>
#include <vector>

#include "storage/lmdb.hpp"

namespace ringmart::storage {

/// First byte of a packed record. A flat message starts with its segment
/// count − 1 as a little-endian uint32, so its first byte is 0x00 for the
/// single-segment records ringmart writes (< 8 KiB: MallocMessageBuilder's
/// first segment); 0x50 would need 81 segments.
inline constexpr std::byte kPackedTag{0x50};

/// First segment size, in words, for a MallocMessageBuilder of one record on a
/// hot path: 1 KiB holds every fixed-size record; a longer one (long names)
/// grows a second segment. The default (1024 words) callocs 8 KiB per record.
inline constexpr unsigned kRecordBuilderWords = 128;

/// An owned, aligned copy of a stored message, readable as a Cap'n Proto struct.
class StoredMessage {
 public:
  /// Reads a packed record (first byte kPackedTag) or a flat message.
  /// Throws kj::Exception when the bytes are not a Cap'n Proto message (a
  /// truncated packed stream, a segment table beyond the bytes), like
  /// capnp's own readers.
  explicit StoredMessage(std::span<const std::byte> bytes) {
    std::size_t used = (bytes.size() + 7) / 8;
    if (!bytes.empty() && bytes.front() == kPackedTag) {
      used = unpack(bytes.subspan(1), words_);
    } else {
      words_ = kj::heapArray<capnp::word>(used);
      if (!bytes.empty()) std::memcpy(words_.begin(), bytes.data(), bytes.size());
    }
    reader_.emplace(words_.slice(0, used), reader_options());
  }
  template <class T>
  typename T::Reader root() {
    return reader_->getRoot<T>();
  }
  static capnp::ReaderOptions reader_options() {
    capnp::ReaderOptions o;
    o.traversalLimitInWords = 1 << 20;
    return o;
  }

 private:
  /// Unpacks a packed stream into `words`: the segment table first (the
  /// stream never says where it ends), then exactly the segments it lists.
  /// Returns how many words `words` holds.
  static std::size_t unpack(std::span<const std::byte> packed, kj::Array<capnp::word>& words) {
    kj::ArrayInputStream raw(
        kj::arrayPtr(reinterpret_cast<const kj::byte*>(packed.data()), packed.size()));
    capnp::_::PackedInputStream in(raw);
    // Segment count − 1, then each segment's size in words; little-endian
    // hosts. On the stack: a read is on every daemon's hot path.
    constexpr std::size_t kMaxSegments = 512;
    std::uint32_t table[2 * (kMaxSegments / 2 + 1)];
    in.read(table, sizeof(capnp::word));
    const std::size_t segments = std::size_t{table[0]} + 1;
    KJ_REQUIRE(segments <= kMaxSegments, "packed record with too many segments", segments);
    const std::size_t table_words = segments / 2 + 1;
    if (table_words > 1) in.read(table + 2, (table_words - 1) * sizeof(capnp::word));
    std::size_t total = table_words;
    for (std::size_t i = 0; i < segments; ++i) total += table[1 + i];
    KJ_REQUIRE(total <= reader_options().traversalLimitInWords, "packed record too large", total);
    words = kj::heapArray<capnp::word>(total);
    std::memcpy(reinterpret_cast<kj::byte*>(words.begin()), table,
                table_words * sizeof(capnp::word));
    in.read(words.begin() + table_words, (total - table_words) * sizeof(capnp::word));
    return total;
  }

  kj::Array<capnp::word> words_;
  std::optional<capnp::FlatArrayMessageReader> reader_;
};

/// Serializes a builder to flat bytes (the form stored and put on rings).
inline kj::Array<capnp::word> to_words(capnp::MessageBuilder& b) {
  return capnp::messageToFlatArray(b);
}
inline std::span<const std::byte> as_bytes(const kj::Array<capnp::word>& w) {
  return {reinterpret_cast<const std::byte*>(w.begin()), w.size() * sizeof(capnp::word)};
}

/// Reads a Cap'n Proto value from `table` at `key`, or nullopt.
inline std::optional<StoredMessage> get_message(const Table& table, Txn& txn,
                                                std::span<const std::byte> key) {
  auto v = table.get(txn, key);
  if (!v) return std::nullopt;
  return StoredMessage(*v);
}

/// Stores `builder` at `key` flat (capnp::writeMessage, the same bytes as
/// to_words()) straight into the page LMDB reserves: for values that leave
/// the table as they are (outbox entries go on rings). Errors: as Table::put.
inline std::error_code put_flat_message(const Table& table, Txn& txn,
                                        std::span<const std::byte> key,
                                        capnp::MessageBuilder& builder) {
  const auto words = capnp::computeSerializedSizeInWords(builder);
  auto out = table.put_reserved(txn, key, words * sizeof(capnp::word));
  if (!out) return out.error();
  kj::ArrayOutputStream stream(kj::arrayPtr(reinterpret_cast<kj::byte*>(out->data()), out->size()));
  capnp::writeMessage(stream, builder);
  return {};
}

/// Stores `builder` at `key` as a packed record: kPackedTag, then
/// capnp::writePackedMessage's bytes. Read it with get_message/StoredMessage.
/// Errors: as Table::put.
inline std::error_code put_message(const Table& table, Txn& txn, std::span<const std::byte> key,
                                   capnp::MessageBuilder& builder) {
  // Packing never grows a word by more than its tag and a run count: 10 bytes.
  const auto words = capnp::computeSerializedSizeInWords(builder);
  // Grown, never shrunk: resize() would zero the bytes it adds on every put.
  thread_local std::vector<kj::byte> scratch;
  if (const std::size_t need = 1 + words * 10 + 8; scratch.size() < need) scratch.resize(need);
  scratch[0] = static_cast<kj::byte>(kPackedTag);
  kj::ArrayOutputStream stream(kj::arrayPtr(scratch.data() + 1, scratch.size() - 1));
  capnp::writePackedMessage(stream, builder);
  const std::size_t size = 1 + stream.getArray().size();
  return table.put(txn, key, std::as_bytes(std::span(scratch.data(), size)));
}

}  // namespace ringmart::storage
