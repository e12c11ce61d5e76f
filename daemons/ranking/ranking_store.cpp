#include "daemons/ranking/ranking_store.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>

namespace ringmart::ranking {
namespace {

using storage::Key;
using storage::Txn;

Key units_key(std::uint64_t day, std::uint64_t product_id) {
  return Key{}.u64(day).u64(product_id);
}

}  // namespace

std::uint64_t utc_day(std::int64_t unix_ms) {
  return unix_ms < 0 ? 0 : static_cast<std::uint64_t>(unix_ms / kMsPerDay);
}

std::expected<RankingStore, std::error_code> RankingStore::open(Txn& txn) {
  RankingStore s;
  auto units = storage::Table::open(txn, "daily_units");
  if (!units) return std::unexpected(units.error());
  auto processed = storage::Table::open(txn, "processed_orders");
  if (!processed) return std::unexpected(processed.error());
  s.daily_units_ = *units;
  s.processed_ = *processed;
  return s;
}

std::expected<bool, std::error_code> RankingStore::record_completed(
    Txn& txn, std::uint64_t order_id, std::span<const LineQuantity> lines,
    std::int64_t completed_at_ms) const {
  const auto order_key = Key{}.u64(order_id);
  if (processed_.get(txn, order_key.view())) return false;
  const std::uint64_t day = utc_day(completed_at_ms);
  for (const auto& line : lines) {
    if (line.quantity <= 0) continue;
    const auto key = units_key(day, line.product_id);
    const std::int64_t before = daily_units_.get_pod<std::int64_t>(txn, key.view()).value_or(0);
    // Saturates rather than wraps: an int64 of units per day is unreachable in practice.
    const std::int64_t after = before > std::numeric_limits<std::int64_t>::max() - line.quantity
                                   ? std::numeric_limits<std::int64_t>::max()
                                   : before + line.quantity;
    if (auto ec = daily_units_.put_pod(txn, key.view(), after)) return std::unexpected(ec);
  }
  const ProcessedOrder record{.completed_at_ms = completed_at_ms, .day = day};
  if (auto ec = processed_.put_pod(txn, order_key.view(), record)) return std::unexpected(ec);
  return true;
}

std::vector<BestSeller> RankingStore::bestsellers(Txn& txn, std::int64_t now_ms, int days,
                                                  std::size_t limit) const {
  days = std::clamp(days, 1, kMaxDays);
  limit = std::clamp<std::size_t>(limit, 1, kMaxLimit);
  const std::uint64_t last_day = utc_day(now_ms);
  const std::uint64_t span = static_cast<std::uint64_t>(days) - 1;
  const std::uint64_t first_day = last_day > span ? last_day - span : 0;

  std::map<std::uint64_t, std::int64_t> totals;
  daily_units_.scan(txn, Key{}.u64(first_day).view(),
                    [&](std::span<const std::byte> key, std::span<const std::byte> value) {
                      if (storage::read_u64_be(key) > last_day) return false;
                      std::int64_t units = 0;
                      if (value.size() != sizeof units) {
                        std::fprintf(stderr, "ringmart ranking: daily_units value of %zu bytes\n",
                                     value.size());
                        std::abort();
                      }
                      std::memcpy(&units, value.data(), sizeof units);
                      auto& total = totals[storage::read_u64_be(key, 8)];
                      total = total > std::numeric_limits<std::int64_t>::max() - units
                                  ? std::numeric_limits<std::int64_t>::max()
                                  : total + units;
                      return true;
                    });

  std::vector<BestSeller> out;
  out.reserve(totals.size());
  for (auto [product_id, units] : totals) out.push_back({.product_id = product_id, .units = units});
  const auto better = [](const BestSeller& a, const BestSeller& b) {
    return a.units != b.units ? a.units > b.units : a.product_id < b.product_id;
  };
  const std::size_t n = std::min(limit, out.size());
  std::partial_sort(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n), out.end(), better);
  out.resize(n);
  return out;
}

std::int64_t RankingStore::units(Txn& txn, std::uint64_t day, std::uint64_t product_id) const {
  return daily_units_.get_pod<std::int64_t>(txn, units_key(day, product_id).view()).value_or(0);
}

std::optional<ProcessedOrder> RankingStore::processed(Txn& txn, std::uint64_t order_id) const {
  return processed_.get_pod<ProcessedOrder>(txn, Key{}.u64(order_id).view());
}

void RankingStore::scan_units(
    Txn& txn, const std::function<bool(std::uint64_t, std::uint64_t, std::int64_t)>& fn) const {
  daily_units_.scan(txn, {}, [&](std::span<const std::byte> key, std::span<const std::byte> value) {
    std::int64_t units = 0;
    if (key.size() != 16 || value.size() != sizeof units) {
      std::fprintf(stderr, "ringmart ranking: daily_units row of %zu/%zu bytes\n", key.size(),
                   value.size());
      std::abort();
    }
    std::memcpy(&units, value.data(), sizeof units);
    return fn(storage::read_u64_be(key), storage::read_u64_be(key, 8), units);
  });
}

void RankingStore::scan_processed(
    Txn& txn, const std::function<bool(std::uint64_t, const ProcessedOrder&)>& fn) const {
  processed_.scan(txn, {}, [&](std::span<const std::byte> key, std::span<const std::byte> value) {
    ProcessedOrder record;
    if (key.size() != 8 || value.size() != sizeof record) {
      std::fprintf(stderr, "ringmart ranking: processed_orders row of %zu/%zu bytes\n", key.size(),
                   value.size());
      std::abort();
    }
    std::memcpy(&record, value.data(), sizeof record);
    return fn(storage::read_u64_be(key), record);
  });
}

// --- RankingQueries ----------------------------------------------------------

std::expected<RankingQueries, std::error_code> RankingQueries::open(const std::string& env_path,
                                                                    std::size_t map_size_bytes) {
  auto ro = storage::open_read_only<RankingStore>(env_path, map_size_bytes);
  if (!ro) return std::unexpected(ro.error());
  return RankingQueries(std::move(ro->env), ro->store);
}

std::expected<std::vector<BestSeller>, std::error_code> RankingQueries::bestsellers(
    std::int64_t now_ms, int days, std::size_t limit) const {
  auto txn = storage::Txn::begin_read(*env_);
  if (!txn) return std::unexpected(txn.error());
  return store_.bestsellers(*txn, now_ms, days, limit);
}

}  // namespace ringmart::ranking
