#include "storage/quarantine.hpp"

#include <cstring>

namespace ringmart::storage {
namespace {

// Fixed part of a row; little-endian like every POD in our tables (one host).
struct QuarantineRow {
  std::uint64_t seq;
  std::int64_t quarantined_at_ms;
  std::int64_t resolved_at_ms;
  std::uint32_t state;
  std::uint32_t attempts;
  std::uint32_t error_len;
  std::uint32_t message_len;
  std::uint8_t sender;
  std::uint8_t pad[7];
};
static_assert(sizeof(QuarantineRow) == 48);

std::optional<QuarantinedMessage> decode(std::uint64_t id, std::span<const std::byte> v) {
  QuarantineRow row;
  if (v.size() < sizeof row) return std::nullopt;
  std::memcpy(&row, v.data(), sizeof row);
  if (v.size() != sizeof row + row.error_len + row.message_len) return std::nullopt;
  QuarantinedMessage m;
  m.id = id;
  m.sender = row.sender;
  m.seq = row.seq;
  m.state = static_cast<QuarantineState>(row.state);
  m.attempts = row.attempts;
  m.quarantined_at_ms = row.quarantined_at_ms;
  m.resolved_at_ms = row.resolved_at_ms;
  m.error.assign(reinterpret_cast<const char*>(v.data() + sizeof row), row.error_len);
  const auto* msg = v.data() + sizeof row + row.error_len;
  m.message.assign(msg, msg + row.message_len);
  return m;
}

}  // namespace

const char* to_string(QuarantineState s) {
  switch (s) {
    case QuarantineState::quarantined:
      return "quarantined";
    case QuarantineState::redriven:
      return "redriven";
    case QuarantineState::abandoned:
      return "abandoned";
  }
  return "unknown";
}

std::expected<Quarantine, std::error_code> Quarantine::open(Txn& txn) {
  auto t = Table::open(txn, "quarantine");
  if (!t) return std::unexpected(t.error());
  Quarantine q;
  q.rows_ = *t;
  return q;
}

std::error_code Quarantine::write(Txn& txn, const QuarantinedMessage& m) const {
  QuarantineRow row{};
  row.seq = m.seq;
  row.quarantined_at_ms = m.quarantined_at_ms;
  row.resolved_at_ms = m.resolved_at_ms;
  row.state = static_cast<std::uint32_t>(m.state);
  row.attempts = m.attempts;
  row.error_len = static_cast<std::uint32_t>(m.error.size());
  row.message_len = static_cast<std::uint32_t>(m.message.size());
  row.sender = m.sender;
  std::vector<std::byte> value(sizeof row + m.error.size() + m.message.size());
  std::memcpy(value.data(), &row, sizeof row);
  std::memcpy(value.data() + sizeof row, m.error.data(), m.error.size());
  if (!m.message.empty()) {
    std::memcpy(value.data() + sizeof row + m.error.size(), m.message.data(), m.message.size());
  }
  return rows_.put(txn, Key{}.u64(m.id).view(), value);
}

std::expected<std::uint64_t, std::error_code> Quarantine::add(
    Txn& txn, std::uint8_t sender, std::uint64_t seq, std::span<const std::byte> message,
    std::string_view error, std::uint32_t attempts, std::int64_t now_ms) const {
  std::uint64_t id = 1;
  if (auto last = rows_.last_with_prefix(txn, {})) id = read_u64_be(last->first, 0) + 1;
  QuarantinedMessage m;
  m.id = id;
  m.sender = sender;
  m.seq = seq;
  m.attempts = attempts;
  m.quarantined_at_ms = now_ms;
  m.error = std::string(error);
  m.message.assign(message.begin(), message.end());
  if (auto ec = write(txn, m)) return std::unexpected(ec);
  return id;
}

std::optional<QuarantinedMessage> Quarantine::get(Txn& txn, std::uint64_t id) const {
  auto v = rows_.get(txn, Key{}.u64(id).view());
  if (!v) return std::nullopt;
  return decode(id, *v);
}

std::error_code Quarantine::resolve(Txn& txn, std::uint64_t id, QuarantineState state,
                                    std::int64_t now_ms) const {
  auto m = get(txn, id);
  if (!m) return lmdb_error(MDB_NOTFOUND);
  m->state = state;
  m->resolved_at_ms = now_ms;
  return write(txn, *m);
}

std::error_code Quarantine::record_failure(Txn& txn, std::uint64_t id,
                                           std::string_view error) const {
  auto m = get(txn, id);
  if (!m) return lmdb_error(MDB_NOTFOUND);
  ++m->attempts;
  m->error = std::string(error);
  return write(txn, *m);
}

void Quarantine::scan(Txn& txn, const std::function<bool(const QuarantinedMessage&)>& fn) const {
  rows_.scan(txn, {}, [&](std::span<const std::byte> k, std::span<const std::byte> v) {
    if (k.size() != 8) return true;
    auto m = decode(read_u64_be(k, 0), v);
    return m ? fn(*m) : true;
  });
}

}  // namespace ringmart::storage
