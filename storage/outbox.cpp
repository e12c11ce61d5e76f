#include "storage/outbox.hpp"

namespace ringmart::storage {

std::expected<Outbox, std::error_code> Outbox::open(Txn& txn) {
  auto e = Table::open(txn, "outbox");
  if (!e) return std::unexpected(e.error());
  auto s = Table::open(txn, "outbox_seq");
  if (!s) return std::unexpected(s.error());
  Outbox o;
  o.entries_ = *e;
  o.seqs_ = *s;
  return o;
}

std::uint64_t Outbox::last_seq(Txn& txn, std::uint8_t receiver) const {
  return seqs_.get_pod<std::uint64_t>(txn, Key{}.u8(receiver).view()).value_or(0);
}

std::expected<std::uint64_t, std::error_code> Outbox::next_seq(Txn& txn,
                                                               std::uint8_t receiver) const {
  const std::uint64_t seq = last_seq(txn, receiver) + 1;
  if (auto ec = seqs_.put_pod(txn, Key{}.u8(receiver).view(), seq)) return std::unexpected(ec);
  return seq;
}

std::error_code Outbox::put(Txn& txn, std::uint8_t receiver, std::uint64_t seq,
                            std::span<const std::byte> message) const {
  return entries_.put(txn, Key{}.u8(receiver).u64(seq).view(), message);
}

std::error_code Outbox::put_message(Txn& txn, std::uint8_t receiver, std::uint64_t seq,
                                    capnp::MessageBuilder& message) const {
  return storage::put_flat_message(entries_, txn, Key{}.u8(receiver).u64(seq).view(), message);
}

void Outbox::scan(Txn& txn, std::uint8_t receiver, std::uint64_t after,
                  const std::function<bool(std::uint64_t, std::span<const std::byte>)>& fn) const {
  entries_.scan(txn, Key{}.u8(receiver).u64(after + 1).view(),
                [&](std::span<const std::byte> k, std::span<const std::byte> v) {
                  if (k.size() != 9 || static_cast<std::uint8_t>(k[0]) != receiver) return false;
                  return fn(read_u64_be(k, 1), v);
                });
}

std::size_t Outbox::prune(Txn& txn, std::uint8_t receiver, std::uint64_t acked) const {
  std::vector<std::uint64_t> doomed;
  entries_.scan(txn, Key{}.u8(receiver).view(),
                [&](std::span<const std::byte> k, std::span<const std::byte>) {
                  if (k.size() != 9 || static_cast<std::uint8_t>(k[0]) != receiver) return false;
                  const std::uint64_t seq = read_u64_be(k, 1);
                  if (seq > acked) return false;
                  doomed.push_back(seq);
                  return true;
                });
  for (auto seq : doomed) entries_.del(txn, Key{}.u8(receiver).u64(seq).view());
  return doomed.size();
}

std::uint64_t Outbox::pending(Txn& txn, std::uint8_t receiver, std::uint64_t acked) const {
  const std::uint64_t last = last_seq(txn, receiver);
  return last > acked ? last - acked : 0;
}

std::expected<Inbox, std::error_code> Inbox::open(Txn& txn) {
  auto t = Table::open(txn, "inbox");
  if (!t) return std::unexpected(t.error());
  Inbox i;
  i.marks_ = *t;
  return i;
}

std::uint64_t Inbox::mark(Txn& txn, std::uint8_t sender) const {
  return marks_.get_pod<std::uint64_t>(txn, Key{}.u8(sender).view()).value_or(0);
}

std::error_code Inbox::set_mark(Txn& txn, std::uint8_t sender, std::uint64_t seq) const {
  return marks_.put_pod(txn, Key{}.u8(sender).view(), seq);
}

}  // namespace ringmart::storage
