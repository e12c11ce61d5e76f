#include "daemons/coupon/coupon_store.hpp"

#include <capnp/message.h>

#include "daemons/coupon/coupon_records.capnp.h"
#include "storage/capnp_value.hpp"

namespace ringmart::coupon {
namespace {

namespace rec = records;

constexpr std::uint8_t kNextCouponId = 1;
constexpr std::uint8_t kNextUserCouponId = 2;
constexpr std::size_t kMaxNameBytes = 200;

storage::Key id_key(std::uint64_t id) { return storage::Key{}.u64(id); }

rec::DiscountType to_record(msg::DiscountType t) {
  return t == msg::DiscountType::PERCENT ? rec::DiscountType::PERCENT : rec::DiscountType::FIXED;
}
msg::DiscountType from_record(rec::DiscountType t) {
  return t == rec::DiscountType::PERCENT ? msg::DiscountType::PERCENT : msg::DiscountType::FIXED;
}

CouponTemplate decode(rec::CouponTemplate::Reader r) {
  return {.id = r.getId(),
          .name = r.getName(),
          .discount_type = from_record(r.getDiscountType()),
          .discount_value = r.getDiscountValue(),
          .total_quantity = r.getTotalQuantity(),
          .issued = r.getIssued(),
          .min_order_cents = r.getMinOrderCents(),
          .expires_at_s = r.getExpiresAtS(),
          .per_user_limit = r.getPerUserLimit()};
}

UserCoupon decode(rec::UserCoupon::Reader r) {
  return {.id = r.getId(),
          .coupon_id = r.getCouponId(),
          .user_id = r.getUserId(),
          .status = r.getStatus() == rec::UserCouponStatus::USED ? UserCouponStatus::used
                                                                 : UserCouponStatus::issued,
          .used_by_order = r.getUsedByOrder(),
          .issued_at_s = r.getIssuedAtS()};
}

CouponUsage decode(rec::CouponUsage::Reader r) {
  UsageState state = UsageState::used;
  switch (r.getState()) {
    case rec::UsageState::USED:
      state = UsageState::used;
      break;
    case rec::UsageState::RESTORED:
      state = UsageState::restored;
      break;
    case rec::UsageState::REJECTED:
      state = UsageState::rejected;
      break;
  }
  return {.order_id = r.getOrderId(),
          .user_coupon_id = r.getUserCouponId(),
          .state = state,
          .reject_code = static_cast<msg::Code>(r.getRejectCode()),
          .reject_detail = r.getRejectDetail()};
}

bool expired(const CouponTemplate& t, std::int64_t now_s) {
  return t.expires_at_s != 0 && now_s >= t.expires_at_s;
}

UseCouponResult terms_of(const CouponTemplate& t, bool first_time) {
  return {.code = msg::Code::OK,
          .coupon_id = t.id,
          .discount_type = t.discount_type,
          .discount_value = t.discount_value,
          .min_order_cents = t.min_order_cents,
          .detail = {},
          .first_time = first_time};
}

UseCouponResult invalid(std::string detail, bool first_time) {
  return {.code = msg::Code::COUPON_INVALID, .detail = std::move(detail), .first_time = first_time};
}

}  // namespace

const char* user_coupon_status_name(UserCouponStatus status) {
  return status == UserCouponStatus::used ? "USED" : "ISSUED";
}

const char* discount_type_name(msg::DiscountType type) {
  return type == msg::DiscountType::PERCENT ? "percent" : "fixed";
}

std::expected<CouponStore, std::error_code> CouponStore::open(storage::Txn& txn) {
  CouponStore s;
  struct Named {
    storage::Table* table;
    const char* name;
  };
  for (auto [table, name] :
       {Named{&s.templates_, "coupon_templates"}, Named{&s.user_coupons_, "user_coupons"},
        Named{&s.by_user_, "user_coupons_by_user"}, Named{&s.per_user_, "coupon_issued_per_user"},
        Named{&s.usage_, "coupon_usage"}, Named{&s.meta_, "coupon_meta"}}) {
    auto t = storage::Table::open(txn, name);
    if (!t) return std::unexpected(t.error());
    *table = *t;
  }
  return s;
}

std::expected<std::uint64_t, std::error_code> CouponStore::next_id(storage::Txn& txn,
                                                                   std::uint8_t counter) const {
  auto key = storage::Key{}.u8(counter);
  const std::uint64_t id = meta_.get_pod<std::uint64_t>(txn, key.view()).value_or(0) + 1;
  if (auto ec = meta_.put_pod(txn, key.view(), id)) return std::unexpected(ec);
  return id;
}

std::error_code CouponStore::put_template(storage::Txn& txn, const CouponTemplate& t) const {
  capnp::MallocMessageBuilder b(128);
  auto r = b.initRoot<rec::CouponTemplate>();
  r.setId(t.id);
  r.setName(t.name);
  r.setDiscountType(to_record(t.discount_type));
  r.setDiscountValue(t.discount_value);
  r.setTotalQuantity(t.total_quantity);
  r.setIssued(t.issued);
  r.setMinOrderCents(t.min_order_cents);
  r.setExpiresAtS(t.expires_at_s);
  r.setPerUserLimit(t.per_user_limit);
  return storage::put_message(templates_, txn, id_key(t.id).view(), b);
}

std::error_code CouponStore::put_user_coupon(storage::Txn& txn, const UserCoupon& uc) const {
  capnp::MallocMessageBuilder b(64);
  auto r = b.initRoot<rec::UserCoupon>();
  r.setId(uc.id);
  r.setCouponId(uc.coupon_id);
  r.setUserId(uc.user_id);
  r.setStatus(uc.status == UserCouponStatus::used ? rec::UserCouponStatus::USED
                                                  : rec::UserCouponStatus::ISSUED);
  r.setUsedByOrder(uc.used_by_order);
  r.setIssuedAtS(uc.issued_at_s);
  return storage::put_message(user_coupons_, txn, id_key(uc.id).view(), b);
}

std::error_code CouponStore::put_usage(storage::Txn& txn, const CouponUsage& u) const {
  capnp::MallocMessageBuilder b(64);
  auto r = b.initRoot<rec::CouponUsage>();
  r.setOrderId(u.order_id);
  r.setUserCouponId(u.user_coupon_id);
  switch (u.state) {
    case UsageState::used:
      r.setState(rec::UsageState::USED);
      break;
    case UsageState::restored:
      r.setState(rec::UsageState::RESTORED);
      break;
    case UsageState::rejected:
      r.setState(rec::UsageState::REJECTED);
      break;
  }
  r.setRejectCode(static_cast<std::uint16_t>(u.reject_code));
  r.setRejectDetail(u.reject_detail);
  return storage::put_message(usage_, txn, id_key(u.order_id).view(), b);
}

std::expected<CreateCouponResult, std::error_code> CouponStore::create_coupon(
    storage::Txn& txn, const NewCoupon& c) const {
  auto reject = [](std::string detail) {
    return CreateCouponResult{.code = msg::Code::INVALID_ARGUMENT, .detail = std::move(detail)};
  };
  if (c.name.empty() || c.name.size() > kMaxNameBytes) return reject("name must be 1..200 bytes");
  if (c.discount_type == msg::DiscountType::FIXED && c.discount_value <= 0) {
    return reject("fixed discount_value must be > 0 cents");
  }
  if (c.discount_type == msg::DiscountType::PERCENT &&
      (c.discount_value < 1 || c.discount_value > 100)) {
    return reject("percent discount_value must be 1..100");
  }
  if (c.total_quantity < 1) return reject("total_quantity must be >= 1");
  if (c.min_order_cents < 0) return reject("min_order must be >= 0");
  if (c.expires_at_s < 0) return reject("expires_at must be >= 0");
  if (c.per_user_limit < 1) return reject("per_user_limit must be >= 1");

  auto id = next_id(txn, kNextCouponId);
  if (!id) return std::unexpected(id.error());
  CouponTemplate t{.id = *id,
                   .name = c.name,
                   .discount_type = c.discount_type,
                   .discount_value = c.discount_value,
                   .total_quantity = c.total_quantity,
                   .issued = 0,
                   .min_order_cents = c.min_order_cents,
                   .expires_at_s = c.expires_at_s,
                   .per_user_limit = c.per_user_limit};
  if (auto ec = put_template(txn, t)) return std::unexpected(ec);
  return CreateCouponResult{.code = msg::Code::OK, .coupon_id = *id, .detail = {}};
}

std::expected<IssueCouponResult, std::error_code> CouponStore::issue_coupon(
    storage::Txn& txn, std::uint64_t coupon_id, std::uint64_t user_id, std::int64_t now_s) const {
  auto t = coupon(txn, coupon_id);
  if (!t) return IssueCouponResult{.code = msg::Code::COUPON_NOT_FOUND, .detail = "no such coupon"};
  // Expired first: an expired coupon can never be issued again, whatever is left.
  if (expired(*t, now_s)) {
    return IssueCouponResult{.code = msg::Code::COUPON_EXPIRED, .detail = "coupon expired"};
  }
  if (t->issued >= t->total_quantity) {
    return IssueCouponResult{.code = msg::Code::COUPON_SOLD_OUT, .detail = "all coupons issued"};
  }
  const auto per_user_key = storage::Key{}.u64(coupon_id).u64(user_id);
  if (t->per_user_limit > 0) {
    const auto held = issued_to_user(txn, coupon_id, user_id);
    if (held >= t->per_user_limit) {
      return IssueCouponResult{.code = msg::Code::COUPON_USER_LIMIT,
                               .detail = "user " + std::to_string(user_id) + " already holds " +
                                         std::to_string(held) + " of coupon " +
                                         std::to_string(coupon_id) + " (per_user_limit " +
                                         std::to_string(t->per_user_limit) + ")"};
    }
    if (auto ec = per_user_.put_pod(txn, per_user_key.view(), static_cast<std::uint64_t>(held + 1)))
      return std::unexpected(ec);
  }
  auto id = next_id(txn, kNextUserCouponId);
  if (!id) return std::unexpected(id.error());
  ++t->issued;
  if (auto ec = put_template(txn, *t)) return std::unexpected(ec);
  UserCoupon uc{.id = *id, .coupon_id = coupon_id, .user_id = user_id, .issued_at_s = now_s};
  if (auto ec = put_user_coupon(txn, uc)) return std::unexpected(ec);
  auto index_key = storage::Key{}.u64(user_id).u64(*id);
  if (auto ec = by_user_.put(txn, index_key.view(), {})) return std::unexpected(ec);
  return IssueCouponResult{.code = msg::Code::OK, .user_coupon_id = *id, .detail = {}};
}

std::expected<UseCouponResult, std::error_code> CouponStore::use_coupon(
    storage::Txn& txn, std::uint64_t order_id, std::uint64_t user_id, std::uint64_t user_coupon_id,
    std::int64_t now_s) const {
  if (auto u = usage(txn, order_id)) {
    switch (u->state) {
      case UsageState::rejected:
        return UseCouponResult{
            .code = u->reject_code, .detail = u->reject_detail, .first_time = false};
      case UsageState::restored:
        if (u->user_coupon_id == 0)
          return invalid("order was compensated before its coupon step", false);
        [[fallthrough]];  // the original answer, without a second effect
      case UsageState::used: {
        auto uc = user_coupon(txn, u->user_coupon_id);
        auto t = uc ? coupon(txn, uc->coupon_id) : std::nullopt;
        if (!t) return invalid("coupon record missing", false);
        return terms_of(*t, false);
      }
    }
  }

  auto reject = [&](std::string detail) -> std::expected<UseCouponResult, std::error_code> {
    CouponUsage u{.order_id = order_id,
                  .user_coupon_id = user_coupon_id,
                  .state = UsageState::rejected,
                  .reject_code = msg::Code::COUPON_INVALID,
                  .reject_detail = detail};
    if (auto ec = put_usage(txn, u)) return std::unexpected(ec);
    return invalid(std::move(detail), true);
  };
  auto uc = user_coupon(txn, user_coupon_id);
  if (!uc) return reject("no such user coupon");
  if (uc->user_id != user_id) return reject("user coupon belongs to another user");
  if (uc->status == UserCouponStatus::used) return reject("user coupon already used");
  auto t = coupon(txn, uc->coupon_id);
  if (!t) return reject("coupon template missing");
  if (expired(*t, now_s)) return reject("coupon expired");

  uc->status = UserCouponStatus::used;
  uc->used_by_order = order_id;
  if (auto ec = put_user_coupon(txn, *uc)) return std::unexpected(ec);
  CouponUsage u{.order_id = order_id,
                .user_coupon_id = user_coupon_id,
                .state = UsageState::used,
                .reject_code = msg::Code::OK,
                .reject_detail = {}};
  if (auto ec = put_usage(txn, u)) return std::unexpected(ec);
  return terms_of(*t, true);
}

std::expected<RestoreCouponResult, std::error_code> CouponStore::restore_coupon(
    storage::Txn& txn, std::uint64_t order_id) const {
  auto u = usage(txn, order_id);
  if (!u) {
    CouponUsage tombstone{.order_id = order_id,
                          .user_coupon_id = 0,
                          .state = UsageState::restored,
                          .reject_code = msg::Code::OK,
                          .reject_detail = {}};
    if (auto ec = put_usage(txn, tombstone)) return std::unexpected(ec);
    return RestoreCouponResult{.restored = false, .tombstone = true};
  }
  if (u->state != UsageState::used) return RestoreCouponResult{};

  auto uc = user_coupon(txn, u->user_coupon_id);
  if (uc && uc->status == UserCouponStatus::used && uc->used_by_order == order_id) {
    uc->status = UserCouponStatus::issued;
    uc->used_by_order = 0;
    if (auto ec = put_user_coupon(txn, *uc)) return std::unexpected(ec);
  }
  u->state = UsageState::restored;
  if (auto ec = put_usage(txn, *u)) return std::unexpected(ec);
  return RestoreCouponResult{.restored = true, .tombstone = false};
}

std::optional<CouponTemplate> CouponStore::coupon(storage::Txn& txn,
                                                  std::uint64_t coupon_id) const {
  auto m = storage::get_message(templates_, txn, id_key(coupon_id).view());
  if (!m) return std::nullopt;
  return decode(m->root<rec::CouponTemplate>());
}

std::int64_t CouponStore::issued_to_user(storage::Txn& txn, std::uint64_t coupon_id,
                                         std::uint64_t user_id) const {
  const auto key = storage::Key{}.u64(coupon_id).u64(user_id);
  return static_cast<std::int64_t>(per_user_.get_pod<std::uint64_t>(txn, key.view()).value_or(0));
}

std::optional<UserCoupon> CouponStore::user_coupon(storage::Txn& txn,
                                                   std::uint64_t user_coupon_id) const {
  auto m = storage::get_message(user_coupons_, txn, id_key(user_coupon_id).view());
  if (!m) return std::nullopt;
  return decode(m->root<rec::UserCoupon>());
}

std::vector<UserCouponListItem> CouponStore::user_coupons(storage::Txn& txn,
                                                          std::uint64_t user_id) const {
  std::vector<std::uint64_t> ids;
  auto from = storage::Key{}.u64(user_id);
  by_user_.scan(txn, from.view(), [&](std::span<const std::byte> key, auto) {
    if (key.size() != 16 || storage::read_u64_be(key) != user_id) return false;
    ids.push_back(storage::read_u64_be(key, 8));
    return true;
  });
  std::vector<UserCouponListItem> out;
  out.reserve(ids.size());
  for (auto id : ids) {
    auto uc = user_coupon(txn, id);
    if (!uc) continue;
    auto t = coupon(txn, uc->coupon_id);
    out.push_back({.user_coupon_id = uc->id,
                   .coupon_id = uc->coupon_id,
                   .name = t ? t->name : std::string{},
                   .status = uc->status});
  }
  return out;
}

std::optional<CouponUsage> CouponStore::usage(storage::Txn& txn, std::uint64_t order_id) const {
  auto m = storage::get_message(usage_, txn, id_key(order_id).view());
  if (!m) return std::nullopt;
  return decode(m->root<rec::CouponUsage>());
}

void CouponStore::scan_coupons(storage::Txn& txn,
                               const std::function<bool(const CouponTemplate&)>& fn) const {
  templates_.scan(txn, {}, [&](std::span<const std::byte>, std::span<const std::byte> value) {
    storage::StoredMessage m(value);
    return fn(decode(m.root<rec::CouponTemplate>()));
  });
}

void CouponStore::scan_user_coupons(storage::Txn& txn,
                                    const std::function<bool(const UserCoupon&)>& fn) const {
  user_coupons_.scan(txn, {}, [&](std::span<const std::byte>, std::span<const std::byte> value) {
    storage::StoredMessage m(value);
    return fn(decode(m.root<rec::UserCoupon>()));
  });
}

void CouponStore::scan_usages(storage::Txn& txn,
                              const std::function<bool(const CouponUsage&)>& fn) const {
  usage_.scan(txn, {}, [&](std::span<const std::byte>, std::span<const std::byte> value) {
    storage::StoredMessage m(value);
    return fn(decode(m.root<rec::CouponUsage>()));
  });
}

// ------------------------------------------------------------------ queries

std::expected<CouponQueries, std::error_code> CouponQueries::open(const std::string& env_path,
                                                                  std::size_t map_size_bytes) {
  auto ro = storage::open_read_only<CouponStore>(env_path, map_size_bytes);
  if (!ro) return std::unexpected(ro.error());
  return CouponQueries(std::move(ro->env), ro->store);
}

std::expected<std::optional<CouponTemplate>, std::error_code> CouponQueries::coupon(
    std::uint64_t id) const {
  auto txn = storage::Txn::begin_read(*env_);
  if (!txn) return std::unexpected(txn.error());
  return store_.coupon(*txn, id);
}

std::expected<std::vector<UserCouponListItem>, std::error_code> CouponQueries::user_coupons(
    std::uint64_t user_id) const {
  auto txn = storage::Txn::begin_read(*env_);
  if (!txn) return std::unexpected(txn.error());
  return store_.user_coupons(*txn, user_id);
}

std::expected<std::optional<UserCoupon>, std::error_code> CouponQueries::user_coupon(
    std::uint64_t id) const {
  auto txn = storage::Txn::begin_read(*env_);
  if (!txn) return std::unexpected(txn.error());
  return store_.user_coupon(*txn, id);
}

}  // namespace ringmart::coupon
