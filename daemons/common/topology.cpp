#include "daemons/common/topology.hpp"

#include <fmt/format.h>

#include <filesystem>

namespace ringmart::runtime {
namespace {
constexpr std::array<const char*, kDaemonCount> kNames = {
    "supervisor", "gateway", "user", "product", "coupon", "order", "payment", "ranking"};
}

const char* daemon_name(DaemonId id) { return kNames.at(index(id)); }

std::optional<DaemonId> parse_daemon(std::string_view name) {
  for (std::size_t i = 0; i < kNames.size(); ++i) {
    if (name == kNames[i]) return static_cast<DaemonId>(i);
  }
  return std::nullopt;
}

const std::array<DaemonId, kDaemonCount>& all_daemons() {
  static const std::array<DaemonId, kDaemonCount> all = {
      DaemonId::SUPERVISOR, DaemonId::USER,    DaemonId::PRODUCT, DaemonId::COUPON,
      DaemonId::ORDER,      DaemonId::PAYMENT, DaemonId::RANKING, DaemonId::GATEWAY};
  return all;
}

const std::vector<Channel>& channels() {
  static const std::vector<Channel> list = [] {
    std::vector<Channel> c;
    for (auto d : {DaemonId::USER, DaemonId::PRODUCT, DaemonId::COUPON, DaemonId::ORDER,
                   DaemonId::PAYMENT}) {
      c.push_back({DaemonId::SUPERVISOR, d});
      c.push_back({d, DaemonId::SUPERVISOR});
    }
    for (auto d : {DaemonId::USER, DaemonId::PRODUCT, DaemonId::COUPON, DaemonId::ORDER}) {
      c.push_back({DaemonId::GATEWAY, d});
      c.push_back({d, DaemonId::GATEWAY});
    }
    c.push_back({DaemonId::ORDER, DaemonId::RANKING});
    return c;
  }();
  return list;
}

std::vector<DaemonId> inbound_peers(DaemonId self) {
  std::vector<DaemonId> out;
  for (const auto& c : channels()) {
    if (c.to == self) out.push_back(c.from);
  }
  return out;
}

std::vector<DaemonId> outbound_peers(DaemonId self) {
  std::vector<DaemonId> out;
  for (const auto& c : channels()) {
    if (c.from == self) out.push_back(c.to);
  }
  return out;
}

std::string shm_prefix(const std::string& runtime_dir) {
  std::error_code ec;
  auto abs = std::filesystem::weakly_canonical(runtime_dir, ec).string();
  if (ec) abs = runtime_dir;
  // FNV-1a 32-bit (http://www.isthe.com/chongo/tech/comp/fnv/).
  std::uint32_t h = 2166136261u;
  for (unsigned char ch : abs) {
    h ^= ch;
    h *= 16777619u;
  }
  return fmt::format("/rm-{:08x}", h);
}

std::string ring_name(const std::string& prefix, DaemonId from, DaemonId to) {
  return fmt::format("{}-{}-{}", prefix, daemon_name(from), daemon_name(to));
}

std::string status_name(const std::string& prefix) { return prefix + "-status"; }

}  // namespace ringmart::runtime
