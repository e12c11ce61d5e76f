// ringmart::storage — Cap'n Proto values in LMDB tables.
//
// LMDB values are not 8-byte aligned, so reading copies the bytes into an
// aligned word array first (cheap for the small records ringmart stores).
// Thread-safety: none needed (pure functions).
#pragma once

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/io.h>

#include <cstring>
#include <optional>
#include <span>

#include "storage/lmdb.hpp"

namespace ringmart::storage {

/// An owned, aligned copy of a stored message, readable as a Cap'n Proto struct.
class StoredMessage {
 public:
  explicit StoredMessage(std::span<const std::byte> bytes)
      : words_(kj::heapArray<capnp::word>((bytes.size() + 7) / 8)) {
    std::memcpy(words_.begin(), bytes.data(), bytes.size());
    reader_.emplace(words_.asPtr(), reader_options());
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

/// Stores `builder` at `key`, serialised (capnp::writeMessage, the same bytes
/// as to_words()) straight into the page LMDB reserves. Errors: as Table::put.
inline std::error_code put_message(const Table& table, Txn& txn, std::span<const std::byte> key,
                                   capnp::MessageBuilder& builder) {
  const auto words = capnp::computeSerializedSizeInWords(builder);
  auto out = table.put_reserved(txn, key, words * sizeof(capnp::word));
  if (!out) return out.error();
  kj::ArrayOutputStream stream(kj::arrayPtr(reinterpret_cast<kj::byte*>(out->data()), out->size()));
  capnp::writeMessage(stream, builder);
  return {};
}

}  // namespace ringmart::storage
