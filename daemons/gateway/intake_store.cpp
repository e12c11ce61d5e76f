#include "daemons/gateway/intake_store.hpp"

#include <capnp/message.h>

#include <cstring>

#include "daemons/gateway/gateway_records.capnp.h"
#include "storage/capnp_value.hpp"

namespace ringmart::gateway {
namespace {

using storage::Key;
using storage::Txn;

constexpr std::uint8_t kOrderIdCounter = 0;
constexpr std::uint8_t kKeysIndexed = 1;  // u32 1 once gw_keys_by_time holds every key
constexpr std::uint8_t kStarts = 2;       // u64 gateway starts

Key order_key(std::uint64_t id) { return Key{}.u64(id); }

std::span<const std::byte> key_bytes(std::string_view key) {
  return {reinterpret_cast<const std::byte*>(key.data()), key.size()};
}

/// gw_keys_by_time row: u64 created ms (BE), then the key's bytes.
std::vector<std::byte> time_key(std::int64_t created_ms, std::span<const std::byte> key) {
  const auto prefix = Key{}.u64(static_cast<std::uint64_t>(std::max<std::int64_t>(0, created_ms)));
  std::vector<std::byte> out(8 + key.size());
  std::memcpy(out.data(), prefix.bytes, 8);
  if (!key.empty()) std::memcpy(out.data() + 8, key.data(), key.size());
  return out;
}

}  // namespace

std::expected<IntakeStore, std::error_code> IntakeStore::open(Txn& txn) {
  IntakeStore s;
  auto keys = storage::Table::open(txn, "gw_idempotency");
  if (!keys) return std::unexpected(keys.error());
  auto orders = storage::Table::open(txn, "gw_orders");
  if (!orders) return std::unexpected(orders.error());
  auto meta = storage::Table::open(txn, "gw_meta");
  if (!meta) return std::unexpected(meta.error());
  // The key-time index came later: an older environment opened read-only has none yet.
  auto by_time = storage::Table::open_added(txn, "gw_keys_by_time");
  if (!by_time) return std::unexpected(by_time.error());
  auto commands = storage::Table::open_added(txn, "gw_commands");
  if (!commands) return std::unexpected(commands.error());
  s.commands_ = *commands;
  s.keys_ = *keys;
  s.orders_ = *orders;
  s.meta_ = *meta;
  s.keys_by_time_ = *by_time;
  const auto indexed = Key{}.u8(kKeysIndexed);
  if (txn.writable() && s.meta_.get_pod<std::uint32_t>(txn, indexed.view()) != 1u) {
    std::vector<std::vector<std::byte>> rows;
    s.keys_.scan(txn, {}, [&](std::span<const std::byte> k, std::span<const std::byte> v) {
      storage::StoredMessage m(v);
      rows.push_back(time_key(m.root<records::IdempotencyRecord>().getCreatedAtMs(), k));
      return true;
    });
    for (const auto& row : rows) {
      if (auto ec = s.keys_by_time_.put(txn, row, {})) return std::unexpected(ec);
    }
    if (auto ec = s.meta_.put_pod(txn, indexed.view(), std::uint32_t{1})) {
      return std::unexpected(ec);
    }
  }
  return s;
}

std::optional<IdempotencyEntry> IntakeStore::idempotency(Txn& txn, std::string_view key) const {
  if (key.empty()) return std::nullopt;
  auto stored = storage::get_message(keys_, txn, key_bytes(key));
  if (!stored) return std::nullopt;
  auto r = stored->root<records::IdempotencyRecord>();
  return IdempotencyEntry{r.getOrderId(), r.getRequestHash(), r.getCreatedAtMs()};
}

std::optional<CommandKeyEntry> IntakeStore::command_key(Txn& txn, std::string_view key) const {
  if (key.empty()) return std::nullopt;
  auto stored = storage::get_message(keys_, txn, key_bytes(key));
  if (!stored) return std::nullopt;
  auto r = stored->root<records::IdempotencyRecord>();
  if (r.getCommandId() == 0) return std::nullopt;  // an order's key
  CommandKeyEntry e{r.getRequestHash(), r.getCommandId(), r.getCreatedAtMs(), std::nullopt};
  if (r.getAnswered()) {
    e.reply = CommandReply{static_cast<msg::Code>(r.getReplyCode()), r.getReplyId(),
                           r.getReplyValue(), r.getReplyMessage()};
  }
  return e;
}

std::expected<CommandKeyOutcome, std::error_code> IntakeStore::begin_command(
    Txn& txn, std::string_view key, std::uint64_t request_hash, std::uint64_t command_id,
    std::int64_t now_ms) const {
  if (storage::get_message(keys_, txn, key_bytes(key))) {
    auto known = command_key(txn, key);
    if (!known || known->request_hash != request_hash) {
      return CommandKeyOutcome{CommandKeyOutcome::Kind::conflict,
                               known.value_or(CommandKeyEntry{})};
    }
    const auto kind =
        known->reply ? CommandKeyOutcome::Kind::answered : CommandKeyOutcome::Kind::waiting;
    return CommandKeyOutcome{kind, *known};
  }
  capnp::MallocMessageBuilder kb(storage::kRecordBuilderWords);
  auto k = kb.initRoot<records::IdempotencyRecord>();
  k.setRequestHash(request_hash);
  k.setCreatedAtMs(now_ms);
  k.setCommandId(command_id);
  if (auto ec = storage::put_message(keys_, txn, key_bytes(key), kb)) return std::unexpected(ec);
  if (auto ec = keys_by_time_.put(txn, time_key(now_ms, key_bytes(key)), {})) {
    return std::unexpected(ec);
  }
  if (auto ec = commands_.put(txn, Key{}.u64(command_id).view(), key_bytes(key))) {
    return std::unexpected(ec);
  }
  return CommandKeyOutcome{CommandKeyOutcome::Kind::send,
                           CommandKeyEntry{request_hash, command_id, now_ms, std::nullopt}};
}

std::expected<bool, std::error_code> IntakeStore::answer_command(Txn& txn, std::uint64_t command_id,
                                                                 const CommandReply& reply) const {
  const auto id_key = Key{}.u64(command_id);
  auto key = commands_.get(txn, id_key.view());
  if (!key) return false;
  const std::vector<std::byte> key_copy(key->begin(), key->end());
  auto stored = storage::get_message(keys_, txn, key_copy);
  if (stored) {
    capnp::MallocMessageBuilder kb(storage::kRecordBuilderWords);
    kb.setRoot(stored->root<records::IdempotencyRecord>());
    auto k = kb.getRoot<records::IdempotencyRecord>();
    k.setAnswered(true);
    k.setReplyCode(static_cast<std::uint16_t>(reply.code));
    k.setReplyId(reply.id);
    k.setReplyValue(reply.value);
    k.setReplyMessage(reply.message);
    if (auto ec = storage::put_message(keys_, txn, key_copy, kb)) return std::unexpected(ec);
  }
  if (auto r = commands_.erase(txn, id_key.view()); !r) return std::unexpected(r.error());
  return stored.has_value();
}

std::expected<std::uint64_t, std::error_code> IntakeStore::next_start(Txn& txn) const {
  const auto key = Key{}.u8(kStarts);
  const std::uint64_t n = meta_.get_pod<std::uint64_t>(txn, key.view()).value_or(0) + 1;
  if (auto ec = meta_.put_pod(txn, key.view(), n)) return std::unexpected(ec);
  return n;
}

std::expected<AcceptOutcome, std::error_code> IntakeStore::accept(
    Txn& txn, std::string_view key, const OrderRequest& request, std::uint64_t request_hash,
    const std::vector<std::int64_t>& unit_prices_cents, std::int64_t subtotal_cents,
    std::int64_t now_ms) const {
  if (auto known = idempotency(txn, key)) {
    return AcceptOutcome{known->request_hash == request_hash ? AcceptOutcome::Kind::replayed
                                                             : AcceptOutcome::Kind::conflict,
                         known->order_id};
  }
  const auto counter_key = Key{}.u8(kOrderIdCounter);
  const std::uint64_t order_id =
      meta_.get_pod<std::uint64_t>(txn, counter_key.view()).value_or(0) + 1;
  if (auto ec = meta_.put_pod(txn, counter_key.view(), order_id)) return std::unexpected(ec);

  capnp::MallocMessageBuilder builder(storage::kRecordBuilderWords);
  auto o = builder.initRoot<records::AcceptedOrder>();
  o.setOrderId(order_id);
  o.setUserId(request.user_id);
  auto lines = o.initLines(static_cast<unsigned>(request.items.size()));
  for (std::size_t i = 0; i < request.items.size(); ++i) {
    lines[i].setProductId(request.items[i].product_id);
    lines[i].setQuantity(request.items[i].quantity);
    lines[i].setUnitPriceCents(i < unit_prices_cents.size() ? unit_prices_cents[i] : 0);
  }
  o.setUserCouponId(request.user_coupon_id);
  o.setPoints(request.points);
  o.setShippingCents(request.shipping_cents);
  o.setInstallments(request.installments);
  o.setSubtotalCents(subtotal_cents);
  o.setAcceptedAtMs(now_ms);
  if (request.shipping_address)
    user::to_message(*request.shipping_address, o.initShippingAddress());
  if (auto ec = storage::put_message(orders_, txn, order_key(order_id).view(), builder)) {
    return std::unexpected(ec);
  }

  if (!key.empty()) {
    capnp::MallocMessageBuilder kb(storage::kRecordBuilderWords);
    auto k = kb.initRoot<records::IdempotencyRecord>();
    k.setOrderId(order_id);
    k.setRequestHash(request_hash);
    k.setCreatedAtMs(now_ms);
    if (auto ec = storage::put_message(keys_, txn, key_bytes(key), kb)) return std::unexpected(ec);
    if (auto ec = keys_by_time_.put(txn, time_key(now_ms, key_bytes(key)), {})) {
      return std::unexpected(ec);
    }
  }
  return AcceptOutcome{AcceptOutcome::Kind::accepted, order_id};
}

std::optional<AcceptedOrder> IntakeStore::accepted(Txn& txn, std::uint64_t order_id) const {
  auto stored = storage::get_message(orders_, txn, order_key(order_id).view());
  if (!stored) return std::nullopt;
  auto r = stored->root<records::AcceptedOrder>();
  AcceptedOrder o;
  o.order_id = r.getOrderId();
  o.user_id = r.getUserId();
  for (auto l : r.getLines()) {
    o.lines.push_back({l.getProductId(), l.getQuantity(), l.getUnitPriceCents()});
  }
  o.user_coupon_id = r.getUserCouponId();
  o.points = r.getPoints();
  o.shipping_cents = r.getShippingCents();
  o.installments = r.getInstallments();
  o.subtotal_cents = r.getSubtotalCents();
  o.accepted_at_ms = r.getAcceptedAtMs();
  if (r.hasShippingAddress()) o.shipping_address = user::from_message(r.getShippingAddress());
  return o;
}

bool IntakeStore::forget(Txn& txn, std::uint64_t order_id) const {
  return orders_.del(txn, order_key(order_id).view());
}

std::expected<storage::PruneResult, std::error_code> IntakeStore::expire_keys(
    Txn& txn, std::int64_t created_before_ms, std::size_t limit) const {
  storage::PruneResult result;
  std::vector<std::vector<std::byte>> due;  // gw_keys_by_time rows
  keys_by_time_.scan(txn, {}, [&](std::span<const std::byte> row, std::span<const std::byte>) {
    if (due.size() >= limit || row.size() < 8) return false;
    const auto created = static_cast<std::int64_t>(storage::read_u64_be(row));
    if (created >= created_before_ms) {
      result.oldest_kept_ms = created;
      return false;
    }
    due.emplace_back(row.begin(), row.end());
    return true;
  });
  for (const auto& row : due) {
    const auto key = std::span<const std::byte>(row).subspan(8);
    if (auto stored = storage::get_message(keys_, txn, key)) {
      const auto rec = stored->root<records::IdempotencyRecord>();
      const bool command_waiting = rec.getCommandId() != 0 && !rec.getAnswered();
      const bool order_pending =
          rec.getCommandId() == 0 && orders_.get(txn, order_key(rec.getOrderId()).view());
      if (command_waiting || order_pending) {  // still pending: kept
        const auto created = static_cast<std::int64_t>(storage::read_u64_be(row));
        if (!result.oldest_kept_ms || created < *result.oldest_kept_ms) {
          result.oldest_kept_ms = created;
        }
        continue;
      }
      if (auto r = keys_.erase(txn, key); !r) return std::unexpected(r.error());
      ++result.deleted;
    }
    if (auto r = keys_by_time_.erase(txn, row); !r) return std::unexpected(r.error());
  }
  return result;
}

std::uint64_t IntakeStore::accepted_count(Txn& txn) const { return orders_.count(txn); }

std::uint64_t IntakeStore::last_order_id(Txn& txn) const {
  return meta_.get_pod<std::uint64_t>(txn, Key{}.u8(kOrderIdCounter).view()).value_or(0);
}

std::error_code send_create_order(runtime::Context& ctx, std::uint64_t order_id,
                                  const OrderRequest& order,
                                  const std::vector<std::int64_t>& unit_prices_cents) {
  return ctx.send(msg::DaemonId::ORDER, order_id, 0, 0, [&](msg::Envelope::Payload::Builder p) {
    auto m = p.initCreateOrder();
    m.setOrderId(order_id);
    m.setUserId(order.user_id);
    auto lines = m.initLines(static_cast<unsigned>(order.items.size()));
    for (std::size_t i = 0; i < order.items.size(); ++i) {
      lines[i].setProductId(order.items[i].product_id);
      lines[i].setQuantity(order.items[i].quantity);
      lines[i].setUnitPriceCents(unit_prices_cents[i]);
    }
    m.setUserCouponId(order.user_coupon_id);
    m.setPoints(order.points);
    m.setShippingCents(order.shipping_cents);
    m.setPaymentToken(capnp::Text::Reader(order.payment_token.data(), order.payment_token.size()));
    m.setInstallments(order.installments);
    if (order.shipping_address) user::to_message(*order.shipping_address, m.initShippingAddress());
  });
}

}  // namespace ringmart::gateway
