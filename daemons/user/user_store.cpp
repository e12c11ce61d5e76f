#include "daemons/user/user_store.hpp"

#include <capnp/message.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>

#include "daemons/user/user_records.capnp.h"
#include "storage/capnp_value.hpp"
#include "storage/text.hpp"

namespace ringmart::user {
namespace {

using storage::Key;
using storage::Txn;

constexpr std::uint8_t kUserIdCounter = 0;

Key user_key(std::uint64_t id) { return Key{}.u64(id); }
Key history_key(std::uint64_t user_id, std::uint64_t seq) { return Key{}.u64(user_id).u64(seq); }

using storage::set_text;
using storage::to_string;

using storage::utf8_length;

records::HistoryReason to_record(HistoryReason r) {
  switch (r) {
    case HistoryReason::charge:
      return records::HistoryReason::CHARGE;
    case HistoryReason::order:
      return records::HistoryReason::ORDER;
    case HistoryReason::restore:
      return records::HistoryReason::RESTORE;
  }
  return records::HistoryReason::CHARGE;
}
HistoryReason from_record(records::HistoryReason r) {
  switch (r) {
    case records::HistoryReason::CHARGE:
      return HistoryReason::charge;
    case records::HistoryReason::ORDER:
      return HistoryReason::order;
    case records::HistoryReason::RESTORE:
      return HistoryReason::restore;
  }
  return HistoryReason::charge;
}
records::DeductionState to_record(DeductionState s) {
  switch (s) {
    case DeductionState::deducted:
      return records::DeductionState::DEDUCTED;
    case DeductionState::restored:
      return records::DeductionState::RESTORED;
    case DeductionState::rejected:
      return records::DeductionState::REJECTED;
  }
  return records::DeductionState::REJECTED;
}
DeductionState from_record(records::DeductionState s) {
  switch (s) {
    case records::DeductionState::DEDUCTED:
      return DeductionState::deducted;
    case records::DeductionState::RESTORED:
      return DeductionState::restored;
    case records::DeductionState::REJECTED:
      return DeductionState::rejected;
  }
  return DeductionState::rejected;
}

HistoryEntry history_entry(std::span<const std::byte> value) {
  storage::StoredMessage m(value);
  auto e = m.root<records::HistoryEntry>();
  return HistoryEntry{.delta = e.getDelta(),
                      .reason = from_record(e.getReason()),
                      .order_id = e.getOrderId(),
                      .at_ms = e.getAtMs()};
}

Outcome fail(msg::Code code, std::string detail) {
  return Outcome{.code = code, .detail = std::move(detail)};
}

// The answer a repeated deductPoints gets from the order's record.
Outcome replay(const DeductionView& d, std::uint64_t order_id) {
  if (d.state == DeductionState::restored) {
    return Outcome{.code = msg::Code::OK,
                   .id = d.user_id,
                   .detail = "order " + std::to_string(order_id) + " already restored; no effect"};
  }
  return Outcome{.code = d.code, .id = d.user_id, .value = d.points};
}

}  // namespace

const char* reason_name(HistoryReason reason) {
  switch (reason) {
    case HistoryReason::charge:
      return "charge";
    case HistoryReason::order:
      return "order";
    case HistoryReason::restore:
      return "restore";
  }
  return "charge";
}

std::expected<UserStore, std::error_code> UserStore::open(Txn& txn) {
  UserStore s;
  for (auto [table, name] : {std::pair{&s.users_, "users"},
                             {&s.history_, "points_history"},
                             {&s.deductions_, "point_deductions"},
                             {&s.counters_, "user_counters"}}) {
    auto t = storage::Table::open(txn, name);
    if (!t) return std::unexpected(t.error());
    *table = *t;
  }
  return s;
}

std::expected<Outcome, std::error_code> UserStore::register_user(Txn& txn, std::string_view name,
                                                                 std::string_view email,
                                                                 std::int64_t now_ms) const {
  const std::size_t chars = utf8_length(name);
  if (chars < 1 || chars > kMaxNameChars) {
    return fail(msg::Code::INVALID_ARGUMENT,
                "name must be 1.." + std::to_string(kMaxNameChars) + " characters");
  }
  if (email.find('@') == std::string_view::npos) {
    return fail(msg::Code::INVALID_ARGUMENT, "email must contain '@'");
  }
  const auto counter_key = Key{}.u8(kUserIdCounter);
  const std::uint64_t id =
      counters_.get_pod<std::uint64_t>(txn, counter_key.view()).value_or(0) + 1;
  if (auto ec = counters_.put_pod(txn, counter_key.view(), id)) return std::unexpected(ec);

  capnp::MallocMessageBuilder b(storage::kRecordBuilderWords);
  auto u = b.initRoot<records::User>();
  u.setId(id);
  set_text(u.initName(name.size()), name);
  set_text(u.initEmail(email.size()), email);
  u.setPointsBalance(0);
  u.setCreatedAtMs(now_ms);
  if (auto ec = storage::put_message(users_, txn, user_key(id).view(), b)) {
    return std::unexpected(ec);
  }
  return Outcome{.code = msg::Code::OK, .id = id};
}

std::expected<Outcome, std::error_code> UserStore::charge_points(Txn& txn, std::uint64_t user_id,
                                                                 std::int64_t amount,
                                                                 std::int64_t now_ms) const {
  if (amount <= 0) return fail(msg::Code::INVALID_ARGUMENT, "amount must be > 0");
  auto user = find(txn, user_id);
  if (!user)
    return fail(msg::Code::USER_NOT_FOUND, "user " + std::to_string(user_id) + " not found");
  if (user->points > std::numeric_limits<std::int64_t>::max() - amount) {
    return fail(msg::Code::INVALID_ARGUMENT, "balance would overflow");
  }
  user->points += amount;
  if (auto ec = put_balance(txn, *user)) return std::unexpected(ec);
  const HistoryEntry e{.delta = amount, .reason = HistoryReason::charge, .at_ms = now_ms};
  if (auto ec = put_history(txn, user_id, e)) return std::unexpected(ec);
  return Outcome{.code = msg::Code::OK, .id = user_id, .value = user->points};
}

std::expected<Outcome, std::error_code> UserStore::deduct_points(Txn& txn, std::uint64_t order_id,
                                                                 std::uint64_t user_id,
                                                                 std::int64_t points,
                                                                 std::int64_t now_ms) const {
  if (auto previous = deduction(txn, order_id)) return replay(*previous, order_id);

  DeductionView record{.user_id = user_id, .at_ms = now_ms};
  Outcome out{.id = user_id};
  auto user = find(txn, user_id);
  if (points < 0) {
    out = fail(msg::Code::INVALID_ARGUMENT, "points must be >= 0");
  } else if (!user) {
    out = fail(msg::Code::USER_NOT_FOUND, "user " + std::to_string(user_id) + " not found");
  } else if (user->points < points) {
    out =
        fail(msg::Code::INSUFFICIENT_POINTS,
             "user " + std::to_string(user_id) + " has " + std::to_string(user->points) +
                 " points, order " + std::to_string(order_id) + " needs " + std::to_string(points));
  }
  if (out.code != msg::Code::OK) {
    // Recorded so that a retry answers the same even if the balance changed since.
    record.state = DeductionState::rejected;
    record.code = out.code;
    if (auto ec = put_deduction(txn, order_id, record)) return std::unexpected(ec);
    return out;
  }

  if (points > 0) {
    user->points -= points;
    if (auto ec = put_balance(txn, *user)) return std::unexpected(ec);
    const HistoryEntry e{
        .delta = -points, .reason = HistoryReason::order, .order_id = order_id, .at_ms = now_ms};
    if (auto ec = put_history(txn, user_id, e)) return std::unexpected(ec);
  }
  record.state = DeductionState::deducted;
  record.points = points;
  record.code = msg::Code::OK;
  if (auto ec = put_deduction(txn, order_id, record)) return std::unexpected(ec);
  out.value = points;
  return out;
}

std::expected<Outcome, std::error_code> UserStore::restore_points(Txn& txn, std::uint64_t order_id,
                                                                  std::int64_t now_ms) const {
  auto record = deduction(txn, order_id);
  if (!record) {
    const DeductionView tombstone{
        .state = DeductionState::restored, .code = msg::Code::OK, .at_ms = now_ms};
    if (auto ec = put_deduction(txn, order_id, tombstone)) return std::unexpected(ec);
    return Outcome{.code = msg::Code::OK, .detail = "nothing deducted; tombstone written"};
  }
  if (record->state != DeductionState::deducted) {
    return Outcome{.code = msg::Code::OK, .id = record->user_id, .detail = "nothing to restore"};
  }
  if (record->points > 0) {
    auto user = find(txn, record->user_id);
    if (!user) {
      // Users are never deleted: a deduction without its user is a corrupt environment.
      std::fprintf(stderr, "ringmart user: order %llu deducted from missing user %llu\n",
                   static_cast<unsigned long long>(order_id),
                   static_cast<unsigned long long>(record->user_id));
      std::abort();
    }
    user->points += record->points;
    if (auto ec = put_balance(txn, *user)) return std::unexpected(ec);
    const HistoryEntry e{.delta = record->points,
                         .reason = HistoryReason::restore,
                         .order_id = order_id,
                         .at_ms = now_ms};
    if (auto ec = put_history(txn, record->user_id, e)) return std::unexpected(ec);
  }
  record->state = DeductionState::restored;
  record->at_ms = now_ms;
  if (auto ec = put_deduction(txn, order_id, *record)) return std::unexpected(ec);
  return Outcome{.code = msg::Code::OK, .id = record->user_id, .value = record->points};
}

std::optional<UserView> UserStore::find(Txn& txn, std::uint64_t user_id) const {
  auto m = storage::get_message(users_, txn, user_key(user_id).view());
  if (!m) return std::nullopt;
  auto u = m->root<records::User>();
  return UserView{.id = u.getId(),
                  .name = to_string(u.getName()),
                  .email = to_string(u.getEmail()),
                  .points = u.getPointsBalance(),
                  .created_at_ms = u.getCreatedAtMs()};
}

bool UserStore::exists(Txn& txn, std::uint64_t user_id) const {
  return users_.get(txn, user_key(user_id).view()).has_value();
}

std::optional<PointsView> UserStore::points(Txn& txn, std::uint64_t user_id,
                                            std::size_t max_entries) const {
  auto user = find(txn, user_id);
  if (!user) return std::nullopt;
  PointsView out{.balance = user->points};
  if (max_entries == 0) return out;
  const auto prefix = user_key(user_id);
  auto last = history_.last_with_prefix(txn, prefix.view());
  if (!last) return out;
  const std::uint64_t last_seq = storage::read_u64_be(last->first, 8);
  const std::uint64_t first_seq = last_seq > max_entries ? last_seq - max_entries + 1 : 1;
  history_.scan(txn, history_key(user_id, first_seq).view(),
                [&](std::span<const std::byte> key, std::span<const std::byte> value) {
                  if (key.size() != 16 || storage::read_u64_be(key) != user_id) return false;
                  out.history.push_back(history_entry(value));
                  return true;
                });
  return out;
}

std::optional<DeductionView> UserStore::deduction(Txn& txn, std::uint64_t order_id) const {
  auto m = storage::get_message(deductions_, txn, Key{}.u64(order_id).view());
  if (!m) return std::nullopt;
  auto d = m->root<records::Deduction>();
  return DeductionView{.user_id = d.getUserId(),
                       .points = d.getPoints(),
                       .state = from_record(d.getState()),
                       .code = d.getCode(),
                       .at_ms = d.getAtMs()};
}

std::uint64_t UserStore::user_count(Txn& txn) const { return users_.count(txn); }

void UserStore::scan_users(Txn& txn, const std::function<bool(const UserView&)>& fn) const {
  users_.scan(txn, {}, [&](std::span<const std::byte> key, std::span<const std::byte>) {
    auto u = find(txn, storage::read_u64_be(key));
    return !u || fn(*u);
  });
}

void UserStore::scan_history(
    Txn& txn, const std::function<bool(std::uint64_t, const HistoryEntry&)>& fn) const {
  history_.scan(txn, {}, [&](std::span<const std::byte> key, std::span<const std::byte> value) {
    return fn(storage::read_u64_be(key), history_entry(value));
  });
}

void UserStore::scan_deductions(
    Txn& txn, const std::function<bool(std::uint64_t, const DeductionView&)>& fn) const {
  deductions_.scan(txn, {}, [&](std::span<const std::byte> key, std::span<const std::byte>) {
    const std::uint64_t order_id = storage::read_u64_be(key);
    auto d = deduction(txn, order_id);
    return !d || fn(order_id, *d);
  });
}

std::error_code UserStore::put_history(Txn& txn, std::uint64_t user_id,
                                       const HistoryEntry& e) const {
  const auto prefix = user_key(user_id);
  auto last = history_.last_with_prefix(txn, prefix.view());
  const std::uint64_t seq = last ? storage::read_u64_be(last->first, 8) + 1 : 1;
  capnp::MallocMessageBuilder b(storage::kRecordBuilderWords);
  auto r = b.initRoot<records::HistoryEntry>();
  r.setDelta(e.delta);
  r.setReason(to_record(e.reason));
  r.setOrderId(e.order_id);
  r.setAtMs(e.at_ms);
  return storage::put_message(history_, txn, history_key(user_id, seq).view(), b);
}

std::error_code UserStore::put_balance(Txn& txn, const UserView& user) const {
  capnp::MallocMessageBuilder b(storage::kRecordBuilderWords);
  auto u = b.initRoot<records::User>();
  u.setId(user.id);
  set_text(u.initName(user.name.size()), user.name);
  set_text(u.initEmail(user.email.size()), user.email);
  u.setPointsBalance(user.points);
  u.setCreatedAtMs(user.created_at_ms);
  return storage::put_message(users_, txn, user_key(user.id).view(), b);
}

std::error_code UserStore::put_deduction(Txn& txn, std::uint64_t order_id,
                                         const DeductionView& d) const {
  capnp::MallocMessageBuilder b(storage::kRecordBuilderWords);
  auto r = b.initRoot<records::Deduction>();
  r.setUserId(d.user_id);
  r.setPoints(d.points);
  r.setState(to_record(d.state));
  r.setCode(d.code);
  r.setAtMs(d.at_ms);
  return storage::put_message(deductions_, txn, Key{}.u64(order_id).view(), b);
}

// --- UserQueries -------------------------------------------------------------

std::expected<UserQueries, std::error_code> UserQueries::open(const std::string& env_path,
                                                              std::size_t map_size_bytes) {
  auto ro = storage::open_read_only<UserStore>(env_path, map_size_bytes);
  if (!ro) return std::unexpected(ro.error());
  return UserQueries(std::move(ro->env), ro->store);
}

std::expected<std::optional<UserView>, std::error_code> UserQueries::find(
    std::uint64_t user_id) const {
  auto txn = storage::Txn::begin_read(*env_);
  if (!txn) return std::unexpected(txn.error());
  return store_.find(*txn, user_id);
}

std::expected<bool, std::error_code> UserQueries::exists(std::uint64_t user_id) const {
  auto txn = storage::Txn::begin_read(*env_);
  if (!txn) return std::unexpected(txn.error());
  return store_.exists(*txn, user_id);
}

std::expected<std::optional<PointsView>, std::error_code> UserQueries::points(
    std::uint64_t user_id, std::size_t max_entries) const {
  auto txn = storage::Txn::begin_read(*env_);
  if (!txn) return std::unexpected(txn.error());
  return store_.points(*txn, user_id, max_entries);
}

}  // namespace ringmart::user
