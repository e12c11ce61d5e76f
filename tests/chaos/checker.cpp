#include "tests/chaos/checker.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <thread>
#include <utility>

#include "daemons/common/config.hpp"
#include "daemons/common/topology.hpp"
#include "daemons/coupon/coupon_store.hpp"
#include "daemons/order/order_store.hpp"
#include "daemons/payment/payment_store.hpp"
#include "daemons/product/product_store.hpp"
#include "daemons/ranking/ranking_store.hpp"
#include "daemons/supervisor/saga_store.hpp"
#include "daemons/user/user_store.hpp"
#include "ipc/ring.hpp"
#include "schemas/codes.hpp"
#include "storage/lmdb.hpp"
#include "storage/outbox.hpp"

namespace ringmart::checker {
namespace {

using msg::DaemonId;
using order::OrderStatus;
using runtime::daemon_name;
using ChannelKey = std::pair<DaemonId, DaemonId>;  // (from, to)

// What the environments say about delivery on each channel.
struct Delivery {
  std::map<ChannelKey, std::uint64_t> produced;  // producer's last outbox seq for the receiver
  std::map<ChannelKey, std::uint64_t> applied;   // consumer's inbox mark for the sender
};

// Opens `daemon`'s environment read-only and runs `fn` in one read
// transaction, then records its outbox seqs and inbox marks in `delivery`.
// Returns false when the environment does not exist and `optional` is set.
std::expected<bool, std::string> read_env(
    const runtime::Config& config, DaemonId daemon, bool optional, Delivery& delivery,
    const std::function<std::expected<void, std::string>(storage::Txn&)>& fn) {
  const std::string path = config.env_path(daemon_name(daemon));
  auto env = storage::Env::open(
      {.path = path, .map_size_bytes = config.map_size_bytes, .read_only = true});
  if (!env) {
    if (optional && env.error().value() == ENOENT) return false;
    return std::unexpected(
        fmt::format("cannot open LMDB environment {}: {}", path, env.error().message()));
  }
  auto txn = storage::Txn::begin_read(**env);
  if (!txn) {
    return std::unexpected(fmt::format("cannot read {}: {}", path, txn.error().message()));
  }
  if (fn) {
    if (auto r = fn(*txn); !r) return std::unexpected(fmt::format("{}: {}", path, r.error()));
  }
  // A daemon that never started its runtime has no outbox/inbox tables: nothing to deliver.
  if (auto outbox = storage::Outbox::open(*txn)) {
    for (auto peer : runtime::outbound_peers(daemon)) {
      delivery.produced[{daemon, peer}] = outbox->last_seq(*txn, runtime::index(peer));
    }
  }
  if (auto inbox = storage::Inbox::open(*txn)) {
    for (auto peer : runtime::inbound_peers(daemon)) {
      delivery.applied[{peer, daemon}] = inbox->mark(*txn, runtime::index(peer));
    }
  }
  return true;
}

// Opens a domain's store tables inside `txn` (a read txn: they must exist).
template <class Store>
std::expected<Store, std::string> open_store(storage::Txn& txn) {
  auto store = Store::open(txn);
  if (!store) return std::unexpected("cannot open tables: " + store.error().message());
  return *store;
}

struct SagaInfo {
  supervisor::SagaState state = supervisor::SagaState::RUNNING;
  std::string failure_reason;
};

// Everything the checks need, read once.
struct Snapshot {
  std::map<std::uint64_t, order::Order> orders;
  std::map<std::uint64_t, SagaInfo> sagas;
  std::vector<product::ProductView> products;
  std::map<std::uint64_t, product::ReservationView> reservations;
  std::map<std::uint64_t, user::UserView> users;
  std::vector<std::pair<std::uint64_t, user::HistoryEntry>> history;  // (user id, entry)
  std::map<std::uint64_t, user::DeductionView> deductions;
  std::vector<coupon::CouponTemplate> coupons;
  std::map<std::uint64_t, coupon::UserCoupon> user_coupons;
  std::map<std::uint64_t, coupon::CouponUsage> usages;
  std::map<std::uint64_t, payment::Payment> payments;
  std::map<std::uint64_t, std::int64_t> ranked_units;  // product -> units of all days
  std::set<std::uint64_t> ranked_orders;
  Delivery delivery;
};

std::expected<void, std::string> read_sagas(storage::Txn& txn, Snapshot& s) {
  auto store = open_store<supervisor::SagaStore>(txn);
  if (!store) return std::unexpected(store.error());
  store->scan(txn, [&](std::uint64_t id, supervisor::SagaRecord::Reader r) {
    s.sagas[id] =
        SagaInfo{.state = r.getState(),
                 .failure_reason = msg::code_name(static_cast<msg::Code>(r.getFailureReason()))};
    return true;
  });
  return {};
}

std::expected<Snapshot, std::string> load(const runtime::Config& config) {
  Snapshot s;
  auto& d = s.delivery;
  auto read = [&](DaemonId daemon, auto&& fn) -> std::expected<void, std::string> {
    auto r = read_env(config, daemon, false, d, fn);
    if (!r) return std::unexpected(r.error());
    return {};
  };
  // The supervisor first, then the domains: a saga seen terminal has sent its
  // last command before the domain snapshots are taken.
  if (auto r = read(DaemonId::SUPERVISOR, [&](storage::Txn& t) { return read_sagas(t, s); }); !r) {
    return std::unexpected(r.error());
  }
  std::vector<std::pair<DaemonId, std::function<std::expected<void, std::string>(storage::Txn&)>>>
      domains;
  domains.emplace_back(DaemonId::ORDER, [&](storage::Txn& t) -> std::expected<void, std::string> {
    auto st = open_store<order::OrderStore>(t);
    if (!st) return std::unexpected(st.error());
    st->scan(t, [&](const order::Order& o) {
      s.orders[o.order_id] = o;
      // Fulfilment moves a paid order on; for money, stock, points and
      // coupons it stays what its saga made it: COMPLETED.
      if (order::is_paid(o.status)) s.orders[o.order_id].status = order::OrderStatus::completed;
      return true;
    });
    return {};
  });
  domains.emplace_back(DaemonId::PRODUCT, [&](storage::Txn& t) -> std::expected<void, std::string> {
    auto st = open_store<product::ProductStore>(t);
    if (!st) return std::unexpected(st.error());
    st->scan_products(t, [&](const product::ProductView& p) {
      s.products.push_back(p);
      return true;
    });
    st->scan_reservations(t, [&](std::uint64_t id, const product::ReservationView& r) {
      s.reservations[id] = r;
      return true;
    });
    return {};
  });
  domains.emplace_back(DaemonId::USER, [&](storage::Txn& t) -> std::expected<void, std::string> {
    auto st = open_store<user::UserStore>(t);
    if (!st) return std::unexpected(st.error());
    st->scan_users(t, [&](const user::UserView& u) {
      s.users[u.id] = u;
      return true;
    });
    st->scan_history(t, [&](std::uint64_t user_id, const user::HistoryEntry& e) {
      s.history.emplace_back(user_id, e);
      return true;
    });
    st->scan_deductions(t, [&](std::uint64_t id, const user::DeductionView& v) {
      s.deductions[id] = v;
      return true;
    });
    return {};
  });
  domains.emplace_back(DaemonId::COUPON, [&](storage::Txn& t) -> std::expected<void, std::string> {
    auto st = open_store<coupon::CouponStore>(t);
    if (!st) return std::unexpected(st.error());
    st->scan_coupons(t, [&](const coupon::CouponTemplate& c) {
      s.coupons.push_back(c);
      return true;
    });
    st->scan_user_coupons(t, [&](const coupon::UserCoupon& uc) {
      s.user_coupons[uc.id] = uc;
      return true;
    });
    st->scan_usages(t, [&](const coupon::CouponUsage& u) {
      s.usages[u.order_id] = u;
      return true;
    });
    return {};
  });
  domains.emplace_back(DaemonId::PAYMENT, [&](storage::Txn& t) -> std::expected<void, std::string> {
    auto st = open_store<payment::PaymentStore>(t);
    if (!st) return std::unexpected(st.error());
    st->scan(t, [&](const payment::Payment& p) {
      s.payments[p.order_id] = p;
      return true;
    });
    return {};
  });
  domains.emplace_back(DaemonId::RANKING, [&](storage::Txn& t) -> std::expected<void, std::string> {
    auto st = open_store<ranking::RankingStore>(t);
    if (!st) return std::unexpected(st.error());
    st->scan_units(t, [&](std::uint64_t, std::uint64_t product_id, std::int64_t units) {
      s.ranked_units[product_id] += units;
      return true;
    });
    st->scan_processed(t, [&](std::uint64_t id, const ranking::ProcessedOrder&) {
      s.ranked_orders.insert(id);
      return true;
    });
    return {};
  });
  for (auto& [daemon, fn] : domains) {
    if (auto r = read(daemon, fn); !r) return std::unexpected(r.error());
  }
  // The gateway only produces into outboxes and consumes replies; its
  // environment is optional (a system checked before its gateway ever ran).
  if (auto r = read_env(config, DaemonId::GATEWAY, true, d, nullptr); !r) {
    return std::unexpected(r.error());
  }
  return s;
}

// --- backlog ----------------------------------------------------------------

struct Backlog {
  std::uint64_t outbox_pending = 0;
  std::uint64_t ring_backlog = 0;
  bool rings_checked = false;
  std::vector<Violation> violations;
};

std::string channel_name(const runtime::Channel& c) {
  return fmt::format("{}->{}", daemon_name(c.from), daemon_name(c.to));
}

Backlog measure_backlog(const Delivery& d, const std::string& runtime_dir) {
  Backlog b;
  for (const auto& c : runtime::channels()) {
    const ChannelKey key{c.from, c.to};
    const auto produced = d.produced.contains(key) ? d.produced.at(key) : 0;
    const auto applied = d.applied.contains(key) ? d.applied.at(key) : 0;
    if (produced > applied) {
      b.outbox_pending += produced - applied;
      b.violations.push_back(
          {"backlog",
           fmt::format("channel {}: {} message(s) in the outbox not applied (last seq {}, "
                       "applied up to {})",
                       channel_name(c), produced - applied, produced, applied),
           {}});
    }
  }
  // Rings exist only while the system runs (the supervisor creates them).
  auto transport = runtime::read_shm_transport(runtime_dir);
  if (!transport) return b;  // rings_checked stays false
  std::vector<std::pair<runtime::Channel, ipc::Ring>> rings;
  for (const auto& c : runtime::channels()) {
    auto ring =
        ipc::Ring::open(runtime::ring_name(transport->prefix, c.from, c.to), transport->access);
    if (!ring) return b;  // rings_checked stays false
    rings.emplace_back(c, std::move(*ring));
  }
  b.rings_checked = true;
  for (const auto& [c, ring] : rings) {
    const auto pushed = ring.pushed_seq(), acked = ring.acked_seq();
    if (pushed == acked) continue;
    b.ring_backlog += pushed > acked ? pushed - acked : 0;
    b.violations.push_back({"backlog",
                            fmt::format("ring {}: pushed seq {} but acknowledged seq {}",
                                        channel_name(c), pushed, acked),
                            {}});
  }
  return b;
}

// --- invariants -------------------------------------------------------------

class Checker {
 public:
  Checker(const Snapshot& s, Report& r) : s_(s), r_(r) {
    for (const auto& [id, o] : s_.orders) {
      if (o.status != OrderStatus::completed) continue;
      for (const auto& l : o.lines) sold_[l.product_id] += l.quantity;
    }
  }

  void run(const std::vector<std::uint64_t>& accepted) {
    terminal(accepted);
    stock();
    points();
    coupons();
    payments();
    ranking();
  }

 private:
  void add(const char* invariant, std::vector<std::uint64_t> ids, std::string detail) {
    r_.violations.push_back({invariant, std::move(detail), std::move(ids)});
  }
  const order::Order* find_order(std::uint64_t id) const {
    auto it = s_.orders.find(id);
    return it == s_.orders.end() ? nullptr : &it->second;
  }
  static const char* status(const order::Order* o) {
    return o ? order::order_status_name(o->status) : "missing";
  }
  // Lines summed per product (an order may name a product twice).
  static std::map<std::uint64_t, std::int64_t> per_product(const order::Order& o) {
    std::map<std::uint64_t, std::int64_t> out;
    for (const auto& l : o.lines) out[l.product_id] += l.quantity;
    return out;
  }

  // 1. Orders terminal, sagas terminal and agreeing with their orders.
  void terminal(const std::vector<std::uint64_t>& accepted) {
    r_.orders = s_.orders.size();
    for (const auto& [id, o] : s_.orders) {
      switch (o.status) {
        case OrderStatus::completed:
        case OrderStatus::shipped:  // normalised to completed on load
        case OrderStatus::delivered:
          ++r_.completed;
          break;
        case OrderStatus::failed:
          ++r_.failed;
          break;
        case OrderStatus::pending:
          ++r_.pending;
          add("order_terminal", {id}, fmt::format("order {} is PENDING", id));
          break;
      }
    }
    for (auto id : std::set<std::uint64_t>(accepted.begin(), accepted.end())) {
      if (!s_.orders.contains(id)) {
        add("accepted_unknown", {id},
            fmt::format("order {} was accepted (202) but the order store does not know it", id));
      }
    }
    using supervisor::SagaState;
    r_.sagas = s_.sagas.size();
    for (const auto& [id, saga] : s_.sagas) {
      const auto* o = find_order(id);
      switch (saga.state) {
        case SagaState::RUNNING:
        case SagaState::COMPENSATING:
          ++r_.sagas_nonterminal;
          add("saga_terminal", {id},
              fmt::format("saga {} is {} (order {})", id, supervisor::state_name(saga.state),
                          status(o)));
          break;
        case SagaState::STUCK:
          ++r_.sagas_stuck;
          add("saga_terminal", {id},
              fmt::format("saga {} is STUCK ({}), order {}", id, saga.failure_reason, status(o)));
          break;
        case SagaState::ABANDONED:
          // Terminal, but only because an operator gave up on its compensation.
          ++r_.sagas_abandoned;
          add("saga_terminal", {id},
              fmt::format("saga {} was ABANDONED after STUCK ({}), order {}", id,
                          saga.failure_reason, status(o)));
          break;
        case SagaState::COMPLETED:
        case SagaState::FAILED: {
          // A PENDING order is reported above; its final command is in flight.
          if (o && o->status == OrderStatus::pending) break;
          const auto want =
              saga.state == SagaState::COMPLETED ? OrderStatus::completed : OrderStatus::failed;
          if (!o || o->status != want) {
            add("saga_terminal", {id},
                fmt::format("saga {} is {} but order {} is {}", id,
                            supervisor::state_name(saga.state), id, status(o)));
          }
          break;
        }
        default:  // a state newer than this build: not known to be terminal
          ++r_.sagas_nonterminal;
          add("saga_terminal", {id},
              fmt::format("saga {} is in unknown state {}", id, static_cast<int>(saga.state)));
          break;
      }
    }
    for (const auto& [id, o] : s_.orders) {
      if (o.status != OrderStatus::pending && !s_.sagas.contains(id)) {
        add("saga_terminal", {id},
            fmt::format("order {} is {} but has no saga", id, order::order_status_name(o.status)));
      }
    }
  }

  // 2. Stock per product, and reservations against orders.
  void stock() {
    r_.products = s_.products.size();
    std::set<std::uint64_t> known;
    for (const auto& p : s_.products) {
      known.insert(p.id);
      const std::int64_t sold = sold_.contains(p.id) ? sold_.at(p.id) : 0;
      if (p.stock < 0) {
        add("stock", {p.id}, fmt::format("product {}: stock {} is negative", p.id, p.stock));
      }
      if (p.received_units != p.stock + sold) {
        add("stock", {p.id},
            fmt::format("product {}: received {} != stock {} + {} unit(s) of COMPLETED orders "
                        "(off by {})",
                        p.id, p.received_units, p.stock, sold, p.received_units - p.stock - sold));
      }
    }
    for (const auto& [product_id, units] : sold_) {
      if (!known.contains(product_id)) {
        add("stock", {product_id},
            fmt::format("product {}: {} unit(s) sold by COMPLETED orders but no such product",
                        product_id, units));
      }
    }
    for (const auto& [id, o] : s_.orders) {
      if (o.status == OrderStatus::pending) continue;
      auto it = s_.reservations.find(id);
      const bool deducted =
          it != s_.reservations.end() && it->second.state == product::ReservationState::deducted;
      if (o.status == OrderStatus::completed && !deducted) {
        add("stock", {id},
            fmt::format("order {} is COMPLETED but its stock reservation is {}", id,
                        it == s_.reservations.end() ? "missing" : "not deducted"));
      } else if (o.status == OrderStatus::failed && deducted) {
        add("stock", {id},
            fmt::format("order {} is FAILED but its stock reservation is still deducted", id));
      }
      if (deducted) {
        std::map<std::uint64_t, std::int64_t> reserved;
        for (const auto& l : it->second.lines) reserved[l.product_id] += l.quantity;
        if (reserved != per_product(o)) {
          add("stock", {id},
              fmt::format("order {}: reserved lines {} != order lines {}", id, reserved,
                          per_product(o)));
        }
      }
    }
    for (const auto& [id, res] : s_.reservations) {
      if (res.state == product::ReservationState::deducted && !s_.orders.contains(id)) {
        add("stock", {id}, fmt::format("stock deducted for order {} which does not exist", id));
      }
    }
  }

  // 3. Points per user and per order, deduction records against orders.
  void points() {
    r_.users = s_.users.size();
    struct Sums {
      std::int64_t charged = 0, all = 0;
    };
    std::map<std::uint64_t, Sums> per_user;
    struct PerOrder {
      int deductions = 0, restores = 0;
      std::int64_t net = 0;
      std::uint64_t user_id = 0;
    };
    std::map<std::uint64_t, PerOrder> per_order;
    for (const auto& [user_id, e] : s_.history) {
      auto& u = per_user[user_id];
      u.all += e.delta;
      if (e.reason == user::HistoryReason::charge) {
        u.charged += e.delta;
        continue;
      }
      auto& o = per_order[e.order_id];
      o.user_id = user_id;
      o.net += e.delta;
      (e.reason == user::HistoryReason::order ? o.deductions : o.restores)++;
    }
    std::map<std::uint64_t, std::int64_t> used;  // user -> points used by COMPLETED orders
    for (const auto& [id, o] : s_.orders) {
      if (o.status == OrderStatus::completed) used[o.user_id] += o.points_used;
    }
    for (const auto& [id, u] : s_.users) {
      const auto sums = per_user.contains(id) ? per_user.at(id) : Sums{};
      const std::int64_t spent = used.contains(id) ? used.at(id) : 0;
      if (u.points < 0) {
        add("points", {id}, fmt::format("user {}: balance {} is negative", id, u.points));
      }
      if (sums.all != u.points) {
        add("points", {id},
            fmt::format("user {}: history deltas sum to {} but the balance is {}", id, sums.all,
                        u.points));
      }
      if (sums.charged != u.points + spent) {
        add("points", {id},
            fmt::format("user {}: charged {} != balance {} + {} used by COMPLETED orders", id,
                        sums.charged, u.points, spent));
      }
    }
    for (const auto& [id, po] : per_order) {
      if (po.deductions > 1 || po.restores > 1) {
        add("duplicate_effect", {id, po.user_id},
            fmt::format("order {}: {} points deduction(s) and {} restore(s) in user {}'s history",
                        id, po.deductions, po.restores, po.user_id));
      }
      const auto* o = find_order(id);
      if (o && o->status == OrderStatus::pending) continue;
      const std::int64_t want = o && o->status == OrderStatus::completed ? -o->points_used : 0;
      if (po.net != want) {
        add("points", {id, po.user_id},
            fmt::format("order {} ({}): user {}'s history changed points by {}, expected {}", id,
                        status(o), po.user_id, po.net, want));
      }
    }
    for (const auto& [id, o] : s_.orders) {
      if (o.status == OrderStatus::pending) continue;
      auto it = s_.deductions.find(id);
      const bool deducted =
          it != s_.deductions.end() && it->second.state == user::DeductionState::deducted;
      const bool want = o.status == OrderStatus::completed && o.points_used > 0;
      if (want &&
          (!deducted || it->second.points != o.points_used || it->second.user_id != o.user_id)) {
        add("points", {id, o.user_id},
            fmt::format("order {} is COMPLETED with {} points used but its deduction is {}", id,
                        o.points_used,
                        it == s_.deductions.end()
                            ? std::string("missing")
                            : fmt::format("{} points from user {}{}", it->second.points,
                                          it->second.user_id, deducted ? "" : ", not deducted")));
      } else if (!want && deducted && it->second.points > 0) {
        add("points", {id, it->second.user_id},
            fmt::format("order {} is {} (points used {}) but {} points are deducted from user {}",
                        id, order::order_status_name(o.status), o.points_used, it->second.points,
                        it->second.user_id));
      }
    }
    for (const auto& [id, d] : s_.deductions) {
      if (d.state == user::DeductionState::deducted && d.points > 0 && !s_.orders.contains(id)) {
        add("points", {id, d.user_id},
            fmt::format("{} points deducted from user {} for order {} which does not exist",
                        d.points, d.user_id, id));
      }
    }
  }

  // 4. Coupons: use by orders, issuance counters, usage records.
  void coupons() {
    r_.user_coupons = s_.user_coupons.size();
    std::map<std::uint64_t, std::int64_t> issued;  // template -> user coupons
    for (const auto& [id, uc] : s_.user_coupons) {
      ++issued[uc.coupon_id];
      if (uc.status != coupon::UserCouponStatus::used) continue;
      const auto* o = find_order(uc.used_by_order);
      if (o && o->status == OrderStatus::pending) continue;
      if (!o || o->status != OrderStatus::completed || o->user_coupon_id != id) {
        add("coupon", {uc.used_by_order, id},
            fmt::format("user coupon {} is USED by order {} which is {}{}", id, uc.used_by_order,
                        status(o),
                        o && o->user_coupon_id != id
                            ? fmt::format(" and names user coupon {}", o->user_coupon_id)
                            : ""));
      }
    }
    for (const auto& [id, o] : s_.orders) {
      if (o.user_coupon_id == 0 || o.status == OrderStatus::pending) continue;
      auto it = s_.user_coupons.find(o.user_coupon_id);
      const bool held = it != s_.user_coupons.end() &&
                        it->second.status == coupon::UserCouponStatus::used &&
                        it->second.used_by_order == id;
      if (o.status == OrderStatus::completed && !held) {
        add("coupon", {id, o.user_coupon_id},
            fmt::format("order {} is COMPLETED but user coupon {} is {}", id, o.user_coupon_id,
                        it == s_.user_coupons.end()
                            ? std::string("missing")
                            : fmt::format("{} (used by order {})",
                                          coupon::user_coupon_status_name(it->second.status),
                                          it->second.used_by_order)));
      }
      // (A FAILED order still holding its coupon is reported by the loop above.)
      auto u = s_.usages.find(id);
      const bool used = u != s_.usages.end() && u->second.state == coupon::UsageState::used;
      if (o.status == OrderStatus::completed &&
          (!used || u->second.user_coupon_id != o.user_coupon_id)) {
        add("coupon", {id, o.user_coupon_id},
            fmt::format("order {} is COMPLETED but its coupon usage record is {}", id,
                        u == s_.usages.end() ? "missing" : "not used"));
      }
    }
    for (const auto& [id, u] : s_.usages) {
      if (u.state != coupon::UsageState::used) continue;
      const auto* o = find_order(id);
      if (o && o->status == OrderStatus::pending) continue;
      if (!o || o->status != OrderStatus::completed) {
        add("coupon", {id, u.user_coupon_id},
            fmt::format("coupon usage of order {} is 'used' (user coupon {}) but the order is {}",
                        id, u.user_coupon_id, status(o)));
      }
    }
    for (const auto& t : s_.coupons) {
      const std::int64_t n = issued.contains(t.id) ? issued.at(t.id) : 0;
      if (t.issued > t.total_quantity) {
        add("coupon", {t.id},
            fmt::format("coupon {}: issued {} > total quantity {}", t.id, t.issued,
                        t.total_quantity));
      }
      if (t.issued != n) {
        add("coupon", {t.id},
            fmt::format("coupon {}: counter says {} issued but {} user coupon(s) exist", t.id,
                        t.issued, n));
      }
    }
  }

  // 5. Payments: one capture of the paid amount per COMPLETED order, no held
  // or taken money for a FAILED one.
  void payments() {
    using payment::PaymentStatus;
    r_.payments = s_.payments.size();
    for (const auto& [id, o] : s_.orders) {
      if (o.status == OrderStatus::pending) continue;
      auto it = s_.payments.find(id);
      if (o.status == OrderStatus::completed) {
        if (it == s_.payments.end()) {
          add("payment", {id},
              fmt::format("order {} is COMPLETED (paid {}) but has no payment", id, o.paid_cents));
        } else if (it->second.status != PaymentStatus::captured ||
                   it->second.amount_cents != o.paid_cents) {
          add("payment", {id},
              fmt::format("order {} is COMPLETED (paid {}) but its payment is {} for {}", id,
                          o.paid_cents, payment::payment_status_name(it->second.status),
                          it->second.amount_cents));
        }
      } else if (it != s_.payments.end() && holds_money(it->second.status)) {
        add("payment", {id},
            fmt::format("order {} is FAILED but its payment of {} is {}", id,
                        it->second.amount_cents, payment::payment_status_name(it->second.status)));
      }
    }
    for (const auto& [id, p] : s_.payments) {
      if (!s_.orders.contains(id) && holds_money(p.status)) {
        add("payment", {id},
            fmt::format("payment of {} for order {} is {} but the order does not exist",
                        p.amount_cents, id, payment::payment_status_name(p.status)));
      }
    }
  }
  // Money taken, held, or possibly held (an authorization whose answer is unknown).
  static bool holds_money(payment::PaymentStatus s) {
    using payment::PaymentStatus;
    return s == PaymentStatus::captured || s == PaymentStatus::authorized ||
           s == PaymentStatus::authorizing || s == PaymentStatus::capture_failed;
  }

  // 6. Ranking counts each COMPLETED order once and nothing else.
  void ranking() {
    std::set<std::uint64_t> products;
    for (const auto& [p, n] : sold_) products.insert(p);
    for (const auto& [p, n] : s_.ranked_units) products.insert(p);
    for (auto p : products) {
      const std::int64_t sold = sold_.contains(p) ? sold_.at(p) : 0;
      const std::int64_t ranked = s_.ranked_units.contains(p) ? s_.ranked_units.at(p) : 0;
      if (sold != ranked) {
        add("ranking", {p},
            fmt::format("product {}: ranking counts {} unit(s), COMPLETED orders hold {}", p,
                        ranked, sold));
      }
    }
    for (const auto& [id, o] : s_.orders) {
      if (o.status == OrderStatus::completed && !s_.ranked_orders.contains(id)) {
        add("ranking", {id}, fmt::format("order {} is COMPLETED but ranking never counted it", id));
      }
    }
    for (auto id : s_.ranked_orders) {
      const auto* o = find_order(id);
      if (!o || o->status == OrderStatus::failed) {
        add("ranking", {id}, fmt::format("ranking counted order {} which is {}", id, status(o)));
      }
    }
  }

  const Snapshot& s_;
  Report& r_;
  std::map<std::uint64_t, std::int64_t> sold_;  // product -> units of COMPLETED orders
};

std::expected<runtime::Config, std::string> load_config(const Options& o) {
  return runtime::Config::load(o.state_dir, o.runtime_dir, o.config_file);
}

// What wait_quiet waits for, measured without reading the domains' tables.
struct Quiet {
  std::size_t sagas_nonterminal = 0;
  Backlog backlog;
};

std::expected<Quiet, std::string> measure_quiet(const runtime::Config& config,
                                                const std::string& runtime_dir) {
  Quiet q;
  Delivery d;
  auto sagas = read_env(config, DaemonId::SUPERVISOR, false, d,
                        [&](storage::Txn& t) -> std::expected<void, std::string> {
                          auto st = open_store<supervisor::SagaStore>(t);
                          if (!st) return std::unexpected(st.error());
                          st->scan(t, [&](std::uint64_t, supervisor::SagaRecord::Reader r) {
                            const auto s = r.getState();
                            q.sagas_nonterminal += s != supervisor::SagaState::COMPLETED &&
                                                   s != supervisor::SagaState::FAILED &&
                                                   s != supervisor::SagaState::STUCK &&
                                                   s != supervisor::SagaState::ABANDONED;
                            return true;
                          });
                          return {};
                        });
  if (!sagas) return std::unexpected(sagas.error());
  for (auto daemon : runtime::all_daemons()) {
    if (daemon == DaemonId::SUPERVISOR) continue;
    auto r = read_env(config, daemon, daemon == DaemonId::GATEWAY, d, nullptr);
    if (!r) return std::unexpected(r.error());
  }
  q.backlog = measure_backlog(d, runtime_dir);
  return q;
}

}  // namespace

nlohmann::json Report::to_json() const {
  nlohmann::json v = nlohmann::json::array();
  for (const auto& x : violations) {
    v.push_back({{"invariant", x.invariant}, {"detail", x.detail}, {"ids", x.ids}});
  }
  return {{"ok", ok()},
          {"violations", v},
          {"orders", orders},
          {"completed", completed},
          {"failed", failed},
          {"pending", pending},
          {"sagas", sagas},
          {"sagas_nonterminal", sagas_nonterminal},
          {"sagas_stuck", sagas_stuck},
          {"sagas_abandoned", sagas_abandoned},
          {"products", products},
          {"users", users},
          {"user_coupons", user_coupons},
          {"payments", payments},
          {"outbox_pending", outbox_pending},
          {"ring_backlog", ring_backlog},
          {"rings_checked", rings_checked}};
}

std::expected<Report, std::string> check(const Options& options) {
  auto config = load_config(options);
  if (!config) return std::unexpected(config.error());
  auto snapshot = load(*config);
  if (!snapshot) return std::unexpected(snapshot.error());
  Report report;
  Checker(*snapshot, report).run(options.accepted_order_ids);
  auto backlog = measure_backlog(snapshot->delivery, options.runtime_dir);
  report.outbox_pending = backlog.outbox_pending;
  report.ring_backlog = backlog.ring_backlog;
  report.rings_checked = backlog.rings_checked;
  for (auto& v : backlog.violations) report.violations.push_back(std::move(v));
  return report;
}

std::expected<std::int64_t, std::string> wait_quiet(const Options& options, int timeout_ms) {
  auto config = load_config(options);
  if (!config) return std::unexpected(config.error());
  // A wrong directory never becomes quiet: say so now rather than at the timeout.
  if (std::error_code ec; !std::filesystem::is_directory(options.state_dir, ec)) {
    return std::unexpected("state directory " + options.state_dir + " does not exist");
  }
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    auto q = measure_quiet(*config, options.runtime_dir);
    const auto waited =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
    if (q && q->sagas_nonterminal == 0 && q->backlog.outbox_pending == 0 &&
        q->backlog.ring_backlog == 0) {
      return waited;
    }
    if (Clock::now() >= deadline) {
      if (!q) return std::unexpected(fmt::format("not quiet after {} ms: {}", waited, q.error()));
      return std::unexpected(fmt::format(
          "not quiet after {} ms: {} saga(s) not terminal, {} outbox message(s) not applied, {} "
          "ring record(s) not acknowledged",
          waited, q->sagas_nonterminal, q->backlog.outbox_pending, q->backlog.ring_backlog));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::expected<std::vector<Violation>, std::string> check_stock_nonnegative(const Options& options) {
  auto config = load_config(options);
  if (!config) return std::unexpected(config.error());
  std::vector<Violation> out;
  Delivery unused;
  auto r = read_env(
      *config, DaemonId::PRODUCT, false, unused,
      [&](storage::Txn& t) -> std::expected<void, std::string> {
        auto st = open_store<product::ProductStore>(t);
        if (!st) return std::unexpected(st.error());
        st->scan_products(t, [&](const product::ProductView& p) {
          if (p.stock < 0) {
            out.push_back(
                {"stock", fmt::format("product {}: stock {} is negative", p.id, p.stock), {p.id}});
          }
          return true;
        });
        return {};
      });
  if (!r) return std::unexpected(r.error());
  return out;
}

}  // namespace ringmart::checker
