#include "daemons/user/user_store.hpp"

#include <capnp/message.h>
#include <sodium.h>

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
Key address_key(std::uint64_t user_id, std::uint64_t address_id) {
  return Key{}.u64(user_id).u64(address_id);
}

// sessions_by_expiry: u64 expiry (big-endian), then the token hash.
std::vector<std::byte> expiry_key(std::int64_t expires_at_ms, std::span<const std::byte> hash) {
  std::vector<std::byte> k(8 + hash.size());
  const auto v = static_cast<std::uint64_t>(expires_at_ms);
  for (int i = 0; i < 8; ++i) k[i] = static_cast<std::byte>(v >> (56 - 8 * i));
  std::copy(hash.begin(), hash.end(), k.begin() + 8);
  return k;
}

std::span<const std::byte> bytes_of(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

// A crypto_pwhash_str string of Argon2id (the only algorithm the gateway
// writes); anything else stored as a hash would be a password in clear.
bool is_password_hash(std::string_view h) {
  return h.starts_with("$argon2id$") && h.size() < crypto_pwhash_STRBYTES;
}

std::optional<std::string> email_problem(std::string_view email) {
  if (email.empty() || email.size() > 254) return "email must be 1..254 bytes";
  const auto at = email.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == email.size()) {
    return "email must look like local-part@domain";
  }
  return std::nullopt;
}
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

struct UserStore::Row {
  UserView view;
  std::string password_hash;
  std::uint32_t failed_logins = 0;
  std::int64_t last_failure_ms = 0;
  std::int64_t locked_until_ms = 0;
  std::uint64_t session_epoch = 0;
  std::uint64_t last_address_id = 0;
};

std::string email_key(std::string_view email) {
  std::string k(email);
  for (auto& c : k) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return k;
}

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
  // Added with accounts: an older environment opens them empty read-only.
  for (auto [table, name] : {std::pair{&s.by_email_, "users_by_email"},
                             {&s.sessions_, "sessions"},
                             {&s.sessions_by_expiry_, "sessions_by_expiry"},
                             {&s.addresses_, "addresses"}}) {
    auto t = storage::Table::open_added(txn, name);
    if (!t) return std::unexpected(t.error());
    *table = *t;
  }
  // An environment from before the e-mail index: index every user once (the
  // first user of an address keeps it, as sign-up would have decided).
  if (txn.writable() && s.by_email_.count(txn) == 0 && s.users_.count(txn) > 0) {
    std::vector<std::pair<std::string, std::uint64_t>> rows;
    s.scan_users(txn, [&](const UserView& u) {
      rows.emplace_back(email_key(u.email), u.id);
      return true;
    });
    for (const auto& [key, id] : rows) {
      if (s.by_email_.get(txn, bytes_of(key))) continue;
      if (auto ec = s.by_email_.put_pod(txn, bytes_of(key), id)) return std::unexpected(ec);
    }
  }
  return s;
}

std::expected<Outcome, std::error_code> UserStore::register_user(Txn& txn, std::string_view name,
                                                                 std::string_view email,
                                                                 std::string_view password_hash,
                                                                 std::int64_t now_ms) const {
  const std::size_t chars = utf8_length(name);
  if (chars < 1 || chars > kMaxNameChars) {
    return fail(msg::Code::INVALID_ARGUMENT,
                "name must be 1.." + std::to_string(kMaxNameChars) + " characters");
  }
  if (auto problem = email_problem(email)) return fail(msg::Code::INVALID_ARGUMENT, *problem);
  if (!password_hash.empty() && !is_password_hash(password_hash)) {
    return fail(msg::Code::INVALID_ARGUMENT, "the password hash is not an Argon2id string");
  }
  const auto key = email_key(email);
  if (by_email_.get(txn, bytes_of(key))) {
    return fail(msg::Code::EMAIL_TAKEN, "this e-mail address is registered already");
  }
  const auto counter_key = Key{}.u8(kUserIdCounter);
  const std::uint64_t id =
      counters_.get_pod<std::uint64_t>(txn, counter_key.view()).value_or(0) + 1;
  if (auto ec = counters_.put_pod(txn, counter_key.view(), id)) return std::unexpected(ec);
  if (auto ec = by_email_.put_pod(txn, bytes_of(key), id)) return std::unexpected(ec);

  Row row{.view = {.id = id,
                   .name = std::string(name),
                   .email = std::string(email),
                   .created_at_ms = now_ms},
          .password_hash = std::string(password_hash)};
  if (auto ec = put_user(txn, row)) return std::unexpected(ec);
  return Outcome{.code = msg::Code::OK, .id = id};
}

std::expected<Outcome, std::error_code> UserStore::update_user(Txn& txn, const UserUpdate& u,
                                                               std::int64_t now_ms) const {
  (void)now_ms;
  auto row = load(txn, u.user_id);
  if (!row) {
    return fail(msg::Code::USER_NOT_FOUND, "user " + std::to_string(u.user_id) + " not found");
  }
  if (!u.name && !u.email && !u.password_hash) {
    return fail(msg::Code::INVALID_ARGUMENT, "nothing to change");
  }
  if (u.name) {
    const std::size_t chars = utf8_length(*u.name);
    if (chars < 1 || chars > kMaxNameChars) {
      return fail(msg::Code::INVALID_ARGUMENT,
                  "name must be 1.." + std::to_string(kMaxNameChars) + " characters");
    }
  }
  if (u.email) {
    if (auto problem = email_problem(*u.email)) return fail(msg::Code::INVALID_ARGUMENT, *problem);
  }
  if (u.password_hash && !is_password_hash(*u.password_hash)) {
    return fail(msg::Code::INVALID_ARGUMENT, "the password hash is not an Argon2id string");
  }
  if (!u.expected_password_hash.empty() &&
      (row->password_hash.size() != u.expected_password_hash.size() ||
       sodium_memcmp(row->password_hash.data(), u.expected_password_hash.data(),
                     row->password_hash.size()) != 0)) {
    return fail(msg::Code::INVALID_CREDENTIALS,
                "the password changed since it was verified; try again");
  }
  if (u.email) {
    const auto old_key = email_key(row->view.email);
    const auto new_key = email_key(*u.email);
    if (new_key != old_key) {
      if (by_email_.get(txn, bytes_of(new_key))) {
        return fail(msg::Code::EMAIL_TAKEN, "this e-mail address is registered already");
      }
      // Only the user's own entry is removed (an old environment's duplicate
      // address may be indexed to another user).
      if (auto owner = by_email_.get_pod<std::uint64_t>(txn, bytes_of(old_key));
          owner && *owner == row->view.id) {
        if (auto r = by_email_.erase(txn, bytes_of(old_key)); !r) return std::unexpected(r.error());
      }
      if (auto ec = by_email_.put_pod(txn, bytes_of(new_key), row->view.id)) {
        return std::unexpected(ec);
      }
    }
    row->view.email = *u.email;
  }
  if (u.name) row->view.name = *u.name;
  if (u.password_hash) {
    row->password_hash = *u.password_hash;
    ++row->session_epoch;  // signs every session out
    row->failed_logins = 0;
    row->locked_until_ms = 0;
  }
  if (auto ec = put_user(txn, *row)) return std::unexpected(ec);
  return Outcome{.code = msg::Code::OK, .id = row->view.id};
}

std::expected<Outcome, std::error_code> UserStore::open_session(
    Txn& txn, std::uint64_t user_id, std::span<const std::byte> token_hash,
    std::int64_t expires_at_ms, std::string_view verified_password_hash,
    std::int64_t now_ms) const {
  if (token_hash.size() != kTokenHashBytes) {
    return fail(msg::Code::INVALID_ARGUMENT, "a token hash is 32 bytes");
  }
  if (expires_at_ms <= now_ms) return fail(msg::Code::INVALID_ARGUMENT, "the expiry has passed");
  auto row = load(txn, user_id);
  if (!row)
    return fail(msg::Code::USER_NOT_FOUND, "user " + std::to_string(user_id) + " not found");
  if (row->password_hash.empty() || row->password_hash.size() != verified_password_hash.size() ||
      sodium_memcmp(row->password_hash.data(), verified_password_hash.data(),
                    row->password_hash.size()) != 0) {
    return fail(msg::Code::INVALID_CREDENTIALS,
                "the password changed since it was verified; log in again");
  }
  if (sessions_.get(txn, token_hash)) return Outcome{.code = msg::Code::OK, .id = user_id};
  // A failure recorded since the gateway checked locks the account: the
  // right password does not open it before the lock ends.
  if (row->locked_until_ms > now_ms) {
    return fail(msg::Code::INVALID_CREDENTIALS, "logins are refused for a while");
  }
  capnp::MallocMessageBuilder b(storage::kRecordBuilderWords);
  auto r = b.initRoot<records::Session>();
  r.setUserId(user_id);
  r.setExpiresAtMs(expires_at_ms);
  r.setCreatedAtMs(now_ms);
  r.setSessionEpoch(row->session_epoch);
  r.setTokenHash(capnp::Data::Reader(reinterpret_cast<const capnp::byte*>(token_hash.data()),
                                     token_hash.size()));
  if (auto ec = storage::put_message(sessions_, txn, token_hash, b)) return std::unexpected(ec);
  const auto by_expiry = expiry_key(expires_at_ms, token_hash);
  if (auto ec = sessions_by_expiry_.put(txn, by_expiry, {})) return std::unexpected(ec);
  if (row->failed_logins != 0 || row->locked_until_ms != 0) {
    row->failed_logins = 0;
    row->locked_until_ms = 0;
    if (auto ec = put_user(txn, *row)) return std::unexpected(ec);
  }
  return Outcome{.code = msg::Code::OK, .id = user_id};
}

std::expected<Outcome, std::error_code> UserStore::close_session(
    Txn& txn, std::span<const std::byte> token_hash) const {
  auto m = storage::get_message(sessions_, txn, token_hash);
  if (!m) return Outcome{.code = msg::Code::OK, .detail = "no such session"};
  const auto s = m->root<records::Session>();
  const auto user_id = s.getUserId();
  const auto by_expiry = expiry_key(s.getExpiresAtMs(), token_hash);
  if (auto r = sessions_by_expiry_.erase(txn, by_expiry); !r) return std::unexpected(r.error());
  if (auto r = sessions_.erase(txn, token_hash); !r) return std::unexpected(r.error());
  return Outcome{.code = msg::Code::OK, .id = user_id};
}

std::expected<Outcome, std::error_code> UserStore::record_login_failure(Txn& txn,
                                                                        std::uint64_t user_id,
                                                                        const LoginPolicy& policy,
                                                                        std::int64_t now_ms) const {
  auto row = load(txn, user_id);
  if (!row)
    return fail(msg::Code::USER_NOT_FOUND, "user " + std::to_string(user_id) + " not found");
  if (row->last_failure_ms != 0 && now_ms - row->last_failure_ms > policy.window_ms &&
      row->locked_until_ms <= now_ms) {
    row->failed_logins = 0;  // a quiet spell: the count starts again
  }
  if (row->failed_logins < std::numeric_limits<std::uint32_t>::max()) ++row->failed_logins;
  row->last_failure_ms = now_ms;
  if (policy.max_failures > 0 && row->failed_logins >= policy.max_failures) {
    const std::uint32_t extra =
        std::min<std::uint32_t>(row->failed_logins - policy.max_failures, 30);
    std::int64_t lock = policy.lockout_base_ms;
    for (std::uint32_t i = 0; i < extra && lock < policy.lockout_max_ms; ++i) lock *= 2;
    row->locked_until_ms = now_ms + std::min(lock, policy.lockout_max_ms);
  }
  if (auto ec = put_user(txn, *row)) return std::unexpected(ec);
  return Outcome{.code = msg::Code::OK,
                 .id = user_id,
                 .value = row->locked_until_ms > now_ms ? row->locked_until_ms : 0};
}

std::expected<storage::PruneResult, std::error_code> UserStore::expire_sessions(
    Txn& txn, std::int64_t cutoff_ms, std::size_t limit) const {
  storage::PruneResult result;
  std::vector<std::vector<std::byte>> due;
  sessions_by_expiry_.scan(
      txn, {}, [&](std::span<const std::byte> row, std::span<const std::byte>) {
        if (due.size() >= limit || row.size() != 8 + kTokenHashBytes) return false;
        const auto expires = static_cast<std::int64_t>(storage::read_u64_be(row));
        if (expires >= cutoff_ms) {
          result.oldest_kept_ms = expires;
          return false;
        }
        due.emplace_back(row.begin(), row.end());
        return true;
      });
  for (const auto& row : due) {
    const auto hash = std::span<const std::byte>(row).subspan(8);
    if (auto r = sessions_.erase(txn, hash); !r) return std::unexpected(r.error());
    if (auto r = sessions_by_expiry_.erase(txn, row); !r) return std::unexpected(r.error());
    ++result.deleted;
  }
  return result;
}

std::expected<Outcome, std::error_code> UserStore::add_address(Txn& txn, std::uint64_t user_id,
                                                               const Address& address,
                                                               bool make_default,
                                                               std::int64_t now_ms) const {
  auto row = load(txn, user_id);
  if (!row)
    return fail(msg::Code::USER_NOT_FOUND, "user " + std::to_string(user_id) + " not found");
  if (auto problem = address_problem(address)) return fail(msg::Code::INVALID_ARGUMENT, *problem);
  std::size_t count = 0;
  addresses_.scan(txn, user_key(user_id).view(), [&](std::span<const std::byte> key, auto) {
    if (key.size() != 16 || storage::read_u64_be(key) != user_id) return false;
    ++count;
    return true;
  });
  if (count >= kMaxAddressesPerUser) {
    return fail(msg::Code::INVALID_ARGUMENT, "the address book is full (" +
                                                 std::to_string(kMaxAddressesPerUser) +
                                                 " addresses); delete one first");
  }
  const std::uint64_t id = ++row->last_address_id;
  capnp::MallocMessageBuilder b(storage::kRecordBuilderWords);
  auto r = b.initRoot<records::StoredAddress>();
  to_message(address, r.initAddress());
  r.setCreatedAtMs(now_ms);
  r.setUpdatedAtMs(now_ms);
  if (auto ec = storage::put_message(addresses_, txn, address_key(user_id, id).view(), b)) {
    return std::unexpected(ec);
  }
  if (make_default || row->view.default_address_id == 0) row->view.default_address_id = id;
  if (auto ec = put_user(txn, *row)) return std::unexpected(ec);
  return Outcome{.code = msg::Code::OK, .id = id};
}

std::expected<Outcome, std::error_code> UserStore::update_address(
    Txn& txn, std::uint64_t user_id, std::uint64_t address_id, std::uint32_t field_mask,
    const Address& patch, bool make_default, std::int64_t now_ms) const {
  auto row = load(txn, user_id);
  if (!row)
    return fail(msg::Code::USER_NOT_FOUND, "user " + std::to_string(user_id) + " not found");
  auto current = address(txn, user_id, address_id);
  if (!current) {
    return fail(msg::Code::ADDRESS_NOT_FOUND,
                "address " + std::to_string(address_id) + " not found");
  }
  const Address next = merged(current->address, patch, field_mask);
  if (auto problem = address_problem(next)) return fail(msg::Code::INVALID_ARGUMENT, *problem);
  capnp::MallocMessageBuilder b(storage::kRecordBuilderWords);
  auto r = b.initRoot<records::StoredAddress>();
  to_message(next, r.initAddress());
  r.setCreatedAtMs(current->created_at_ms);
  r.setUpdatedAtMs(now_ms);
  if (auto ec = storage::put_message(addresses_, txn, address_key(user_id, address_id).view(), b)) {
    return std::unexpected(ec);
  }
  if (make_default && row->view.default_address_id != address_id) {
    row->view.default_address_id = address_id;
    if (auto ec = put_user(txn, *row)) return std::unexpected(ec);
  }
  return Outcome{.code = msg::Code::OK, .id = address_id};
}

std::expected<Outcome, std::error_code> UserStore::delete_address(Txn& txn, std::uint64_t user_id,
                                                                  std::uint64_t address_id) const {
  auto row = load(txn, user_id);
  if (!row)
    return fail(msg::Code::USER_NOT_FOUND, "user " + std::to_string(user_id) + " not found");
  auto erased = addresses_.erase(txn, address_key(user_id, address_id).view());
  if (!erased) return std::unexpected(erased.error());
  if (!*erased) {
    return fail(msg::Code::ADDRESS_NOT_FOUND,
                "address " + std::to_string(address_id) + " not found");
  }
  if (row->view.default_address_id == address_id) {
    row->view.default_address_id = 0;
    addresses_.scan(txn, user_key(user_id).view(), [&](std::span<const std::byte> key, auto) {
      if (key.size() == 16 && storage::read_u64_be(key) == user_id) {
        row->view.default_address_id = storage::read_u64_be(key, 8);
      }
      return false;  // the oldest left (lowest id) or none
    });
    if (auto ec = put_user(txn, *row)) return std::unexpected(ec);
  }
  return Outcome{.code = msg::Code::OK, .id = address_id};
}

std::expected<Outcome, std::error_code> UserStore::charge_points(Txn& txn, std::uint64_t user_id,
                                                                 std::int64_t amount,
                                                                 std::int64_t now_ms) const {
  if (amount <= 0) return fail(msg::Code::INVALID_ARGUMENT, "amount must be > 0");
  auto user = load(txn, user_id);
  if (!user)
    return fail(msg::Code::USER_NOT_FOUND, "user " + std::to_string(user_id) + " not found");
  if (user->view.points > std::numeric_limits<std::int64_t>::max() - amount) {
    return fail(msg::Code::INVALID_ARGUMENT, "balance would overflow");
  }
  user->view.points += amount;
  if (auto ec = put_user(txn, *user)) return std::unexpected(ec);
  const HistoryEntry e{.delta = amount, .reason = HistoryReason::charge, .at_ms = now_ms};
  if (auto ec = put_history(txn, user_id, e)) return std::unexpected(ec);
  return Outcome{.code = msg::Code::OK, .id = user_id, .value = user->view.points};
}

std::expected<Outcome, std::error_code> UserStore::deduct_points(Txn& txn, std::uint64_t order_id,
                                                                 std::uint64_t user_id,
                                                                 std::int64_t points,
                                                                 std::int64_t now_ms) const {
  if (auto previous = deduction(txn, order_id)) return replay(*previous, order_id);

  DeductionView record{.user_id = user_id, .at_ms = now_ms};
  Outcome out{.id = user_id};
  auto user = load(txn, user_id);
  if (points < 0) {
    out = fail(msg::Code::INVALID_ARGUMENT, "points must be >= 0");
  } else if (!user) {
    out = fail(msg::Code::USER_NOT_FOUND, "user " + std::to_string(user_id) + " not found");
  } else if (user->view.points < points) {
    out =
        fail(msg::Code::INSUFFICIENT_POINTS,
             "user " + std::to_string(user_id) + " has " + std::to_string(user->view.points) +
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
    user->view.points -= points;
    if (auto ec = put_user(txn, *user)) return std::unexpected(ec);
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
    auto user = load(txn, record->user_id);
    if (!user) {
      // Users are never deleted: a deduction without its user is a corrupt environment.
      std::fprintf(stderr, "ringmart user: order %llu deducted from missing user %llu\n",
                   static_cast<unsigned long long>(order_id),
                   static_cast<unsigned long long>(record->user_id));
      std::abort();
    }
    user->view.points += record->points;
    if (auto ec = put_user(txn, *user)) return std::unexpected(ec);
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

std::optional<UserStore::Row> UserStore::load(Txn& txn, std::uint64_t user_id) const {
  auto m = storage::get_message(users_, txn, user_key(user_id).view());
  if (!m) return std::nullopt;
  auto u = m->root<records::User>();
  return Row{.view = {.id = u.getId(),
                      .name = to_string(u.getName()),
                      .email = to_string(u.getEmail()),
                      .points = u.getPointsBalance(),
                      .created_at_ms = u.getCreatedAtMs(),
                      .has_password = u.getPasswordHash().size() > 0,
                      .default_address_id = u.getDefaultAddressId()},
             .password_hash = to_string(u.getPasswordHash()),
             .failed_logins = u.getFailedLogins(),
             .last_failure_ms = u.getLastFailureMs(),
             .locked_until_ms = u.getLockedUntilMs(),
             .session_epoch = u.getSessionEpoch(),
             .last_address_id = u.getLastAddressId()};
}

std::optional<UserView> UserStore::find(Txn& txn, std::uint64_t user_id) const {
  auto row = load(txn, user_id);
  if (!row) return std::nullopt;
  return std::move(row->view);
}

std::optional<Credentials> UserStore::credentials(Txn& txn, std::string_view email) const {
  const auto key = email_key(email);
  auto id = by_email_.get_pod<std::uint64_t>(txn, bytes_of(key));
  if (!id) return std::nullopt;
  auto row = load(txn, *id);
  if (!row) return std::nullopt;
  return Credentials{.user_id = *id,
                     .password_hash = std::move(row->password_hash),
                     .locked_until_ms = row->locked_until_ms};
}

std::optional<Credentials> UserStore::credentials_of_user(Txn& txn, std::uint64_t user_id) const {
  auto row = load(txn, user_id);
  if (!row) return std::nullopt;
  return Credentials{.user_id = user_id,
                     .password_hash = std::move(row->password_hash),
                     .locked_until_ms = row->locked_until_ms};
}

std::optional<SessionView> UserStore::session(Txn& txn, std::span<const std::byte> token_hash,
                                              std::int64_t now_ms) const {
  if (token_hash.size() != kTokenHashBytes) return std::nullopt;
  auto m = storage::get_message(sessions_, txn, token_hash);
  if (!m) return std::nullopt;
  const auto s = m->root<records::Session>();
  const auto stored = s.getTokenHash();
  if (stored.size() != kTokenHashBytes ||
      sodium_memcmp(stored.begin(), token_hash.data(), kTokenHashBytes) != 0) {
    return std::nullopt;
  }
  if (s.getExpiresAtMs() <= now_ms) return std::nullopt;
  auto m_user = storage::get_message(users_, txn, user_key(s.getUserId()).view());
  if (!m_user || m_user->root<records::User>().getSessionEpoch() != s.getSessionEpoch()) {
    return std::nullopt;  // signed out by a password change
  }
  return SessionView{.user_id = s.getUserId(),
                     .expires_at_ms = s.getExpiresAtMs(),
                     .created_at_ms = s.getCreatedAtMs()};
}

std::optional<std::vector<AddressView>> UserStore::addresses(Txn& txn,
                                                             std::uint64_t user_id) const {
  auto user = find(txn, user_id);
  if (!user) return std::nullopt;
  std::vector<AddressView> out;
  addresses_.scan(txn, user_key(user_id).view(),
                  [&](std::span<const std::byte> key, std::span<const std::byte> value) {
                    if (key.size() != 16 || storage::read_u64_be(key) != user_id) return false;
                    storage::StoredMessage m(value);
                    const auto r = m.root<records::StoredAddress>();
                    const auto id = storage::read_u64_be(key, 8);
                    out.push_back(AddressView{.id = id,
                                              .address = from_message(r.getAddress()),
                                              .is_default = id == user->default_address_id,
                                              .created_at_ms = r.getCreatedAtMs(),
                                              .updated_at_ms = r.getUpdatedAtMs()});
                    return true;
                  });
  return out;
}

std::optional<AddressView> UserStore::address(Txn& txn, std::uint64_t user_id,
                                              std::uint64_t address_id) const {
  auto m = storage::get_message(addresses_, txn, address_key(user_id, address_id).view());
  if (!m) return std::nullopt;
  const auto r = m->root<records::StoredAddress>();
  auto user = find(txn, user_id);
  return AddressView{.id = address_id,
                     .address = from_message(r.getAddress()),
                     .is_default = user && user->default_address_id == address_id,
                     .created_at_ms = r.getCreatedAtMs(),
                     .updated_at_ms = r.getUpdatedAtMs()};
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

std::error_code UserStore::put_user(Txn& txn, const Row& row) const {
  capnp::MallocMessageBuilder b(storage::kRecordBuilderWords);
  auto u = b.initRoot<records::User>();
  const auto& v = row.view;
  u.setId(v.id);
  set_text(u.initName(v.name.size()), v.name);
  set_text(u.initEmail(v.email.size()), v.email);
  u.setPointsBalance(v.points);
  u.setCreatedAtMs(v.created_at_ms);
  set_text(u.initPasswordHash(row.password_hash.size()), row.password_hash);
  u.setFailedLogins(row.failed_logins);
  u.setLastFailureMs(row.last_failure_ms);
  u.setLockedUntilMs(row.locked_until_ms);
  u.setSessionEpoch(row.session_epoch);
  u.setDefaultAddressId(v.default_address_id);
  u.setLastAddressId(row.last_address_id);
  return storage::put_message(users_, txn, user_key(v.id).view(), b);
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

std::expected<std::optional<Credentials>, std::error_code> UserQueries::credentials(
    std::string_view email) const {
  auto txn = storage::Txn::begin_read(*env_);
  if (!txn) return std::unexpected(txn.error());
  return store_.credentials(*txn, email);
}

std::expected<std::optional<Credentials>, std::error_code> UserQueries::credentials_of_user(
    std::uint64_t user_id) const {
  auto txn = storage::Txn::begin_read(*env_);
  if (!txn) return std::unexpected(txn.error());
  return store_.credentials_of_user(*txn, user_id);
}

std::expected<std::optional<SessionView>, std::error_code> UserQueries::session(
    std::span<const std::byte> token_hash, std::int64_t now_ms) const {
  auto txn = storage::Txn::begin_read(*env_);
  if (!txn) return std::unexpected(txn.error());
  return store_.session(*txn, token_hash, now_ms);
}

std::expected<std::optional<std::vector<AddressView>>, std::error_code> UserQueries::addresses(
    std::uint64_t user_id) const {
  auto txn = storage::Txn::begin_read(*env_);
  if (!txn) return std::unexpected(txn.error());
  return store_.addresses(*txn, user_id);
}

std::expected<std::optional<AddressView>, std::error_code> UserQueries::address(
    std::uint64_t user_id, std::uint64_t address_id) const {
  auto txn = storage::Txn::begin_read(*env_);
  if (!txn) return std::unexpected(txn.error());
  return store_.address(*txn, user_id, address_id);
}

std::expected<std::optional<PointsView>, std::error_code> UserQueries::points(
    std::uint64_t user_id, std::size_t max_entries) const {
  auto txn = storage::Txn::begin_read(*env_);
  if (!txn) return std::unexpected(txn.error());
  return store_.points(*txn, user_id, max_entries);
}

}  // namespace ringmart::user
