#include "daemons/supervisor/saga_store.hpp"

#include "schemas/codes.hpp"

namespace ringmart::supervisor {

const char* state_name(SagaState s) {
  switch (s) {
    case SagaState::RUNNING:
      return "RUNNING";
    case SagaState::COMPENSATING:
      return "COMPENSATING";
    case SagaState::COMPLETED:
      return "COMPLETED";
    case SagaState::FAILED:
      return "FAILED";
    case SagaState::STUCK:
      return "STUCK";
    case SagaState::ABANDONED:
      return "ABANDONED";
  }
  return "UNKNOWN";
}

std::expected<SagaStore, std::error_code> SagaStore::open(storage::Txn& txn) {
  auto t = storage::Table::open(txn, "sagas");
  if (!t) return std::unexpected(t.error());
  SagaStore s;
  s.sagas_ = *t;
  return s;
}

std::optional<storage::StoredMessage> SagaStore::get(storage::Txn& txn, std::uint64_t id) const {
  return storage::get_message(sagas_, txn, storage::Key{}.u64(id).view());
}

std::error_code SagaStore::put(storage::Txn& txn, std::uint64_t id,
                               capnp::MessageBuilder& record) const {
  return storage::put_message(sagas_, txn, storage::Key{}.u64(id).view(), record);
}

void SagaStore::scan(storage::Txn& txn,
                     const std::function<bool(std::uint64_t, SagaRecord::Reader)>& fn) const {
  sagas_.scan(txn, {}, [&](std::span<const std::byte> k, std::span<const std::byte> v) {
    storage::StoredMessage m(v);
    return fn(storage::read_u64_be(k), m.root<SagaRecord>());
  });
}

SagaView SagaStore::view(SagaRecord::Reader r) {
  SagaView v;
  v.saga_id = v.order_id = r.getOrderId();
  v.state = state_name(r.getState());
  const auto names = r.getStepNames();
  const bool terminal = r.getState() == SagaState::COMPLETED || r.getState() == SagaState::FAILED;
  if (!terminal) v.step = r.getStep() < names.size() ? names[r.getStep()].cStr() : "fail_order";
  if (r.getState() == SagaState::FAILED || r.getState() == SagaState::STUCK ||
      r.getState() == SagaState::ABANDONED || r.getState() == SagaState::COMPENSATING) {
    v.failure_reason = msg::code_name(static_cast<msg::Code>(r.getFailureReason()));
  }
  v.created_at_ms = r.getCreatedAtMs();
  v.updated_at_ms = r.getUpdatedAtMs();
  for (auto e : r.getHistory()) v.history.push_back({e.getStep(), e.getEvent(), e.getAtMs()});
  return v;
}

std::expected<SagaQueries, std::error_code> SagaQueries::open(const std::string& env_path,
                                                              std::size_t map_size_bytes) {
  auto ro = storage::open_read_only<SagaStore>(env_path, map_size_bytes);
  if (!ro) return std::unexpected(ro.error());
  SagaQueries q;
  q.env_ = std::move(ro->env);
  q.store_ = ro->store;
  return q;
}

std::optional<SagaView> SagaQueries::get(std::uint64_t order_id) const {
  auto txn = storage::Txn::begin_read(*env_);
  if (!txn) return std::nullopt;
  auto m = store_.get(*txn, order_id);
  if (!m) return std::nullopt;
  return SagaStore::view(m->root<SagaRecord>());
}

std::vector<SagaView> SagaQueries::list(const std::string& state, std::size_t limit) const {
  std::vector<SagaView> out;
  auto txn = storage::Txn::begin_read(*env_);
  if (!txn) return out;
  store_.scan(*txn, [&](std::uint64_t, SagaRecord::Reader r) {
    if (state.empty() || state == state_name(r.getState())) out.push_back(SagaStore::view(r));
    return out.size() < limit;
  });
  return out;
}

}  // namespace ringmart::supervisor
