#include "daemons/common/config.hpp"

#include <fmt/format.h>
#include <grp.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "telemetry/log.hpp"

namespace ringmart::runtime {

std::expected<Config, std::string> Config::load(std::string state_dir, std::string runtime_dir,
                                                std::string config_file) {
  Config c;
  c.state_dir = std::move(state_dir);
  c.runtime_dir = std::move(runtime_dir);
  c.config_file = std::move(config_file);
  if (c.config_file.empty()) return c;
  try {
    c.file = toml::parse_file(c.config_file);
  } catch (const toml::parse_error& e) {
    return std::unexpected(fmt::format("{}:{}:{}: {}", c.config_file, e.source().begin.line,
                                       e.source().begin.column, e.description()));
  }
  const auto rt = c.file["runtime"];
  if (auto d = rt["durability"].value<std::string>()) {
    auto parsed = storage::parse_durability(*d);
    if (!parsed) {
      return std::unexpected(
          fmt::format("{}: [runtime] durability must be \"fsync\" or \"process\", not \"{}\"",
                      c.config_file, *d));
    }
    c.durability = *parsed;
  }
  c.ring_capacity_bytes = rt["ring_capacity_bytes"].value_or<std::int64_t>(c.ring_capacity_bytes);
  if (c.ring_capacity_bytes < 4096 || (c.ring_capacity_bytes & (c.ring_capacity_bytes - 1)) != 0) {
    return std::unexpected(fmt::format(
        "{}: [runtime] ring_capacity_bytes must be a power of two >= 4096", c.config_file));
  }
  c.map_size_bytes = rt["map_size_bytes"].value_or<std::int64_t>(c.map_size_bytes);
  c.batch_max = rt["batch_max"].value_or(c.batch_max);
  c.sync_interval_ms = rt["sync_interval_ms"].value_or(c.sync_interval_ms);
  c.spin_us = rt["spin_us"].value_or(c.spin_us);
  c.heartbeat_timeout_ms = rt["heartbeat_timeout_ms"].value_or(c.heartbeat_timeout_ms);
  c.log_level = rt["log_level"].value_or(c.log_level);
  c.log_format = rt["log_format"].value_or(c.log_format);
  if (auto f = telemetry::parse_log_format(c.log_format); !f) {
    return std::unexpected(c.config_file + ": [runtime] " + f.error());
  }
  c.quarantine_after = rt["quarantine_after"].value_or(c.quarantine_after);
  if (c.quarantine_after < 1)
    return std::unexpected(c.config_file + ": [runtime] quarantine_after must be >= 1");
  if (c.batch_max < 0)
    return std::unexpected(c.config_file +
                           ": [runtime] batch_max must be >= 1 (0 = by durability)");
  c.operator_group = rt["operator_group"].value_or(c.operator_group);
  c.resolve_operator_group();
  return c;
}

void Config::resolve_operator_group() {
  operator_gid = static_cast<gid_t>(-1);
  operator_group_problem.clear();
  if (operator_group.empty()) return;
  gid_t gid;
  if (operator_group.find_first_not_of("0123456789") == std::string::npos &&
      operator_group.size() < 10) {
    gid = static_cast<gid_t>(std::stoul(operator_group));  // a gid, as chown(1) takes
  } else {
    group entry{};
    group* found = nullptr;
    std::vector<char> buf(16384);
    if (::getgrnam_r(operator_group.c_str(), &entry, buf.data(), buf.size(), &found) != 0 ||
        !found) {
      operator_group_problem =
          fmt::format("[runtime] operator_group {} does not exist", operator_group);
      return;
    }
    gid = found->gr_gid;
  }
  // Only root or a member may give a file to a group (chown(2)).
  bool member = ::geteuid() == 0 || ::getegid() == gid;
  if (!member) {
    std::vector<gid_t> groups(static_cast<std::size_t>(std::max(::getgroups(0, nullptr), 0)));
    const int n = ::getgroups(static_cast<int>(groups.size()), groups.data());
    member = n > 0 && std::find(groups.begin(), groups.begin() + n, gid) != groups.begin() + n;
  }
  if (!member) {
    operator_group_problem = fmt::format(
        "[runtime] operator_group {}: uid {} is not a member (systemd: SupplementaryGroups=)",
        operator_group, ::geteuid());
    return;
  }
  operator_gid = gid;
}

std::int64_t Config::get_int(std::string_view table, std::string_view key,
                             std::int64_t fallback) const {
  return file[table][key].value_or(fallback);
}

std::string Config::get_string(std::string_view table, std::string_view key,
                               std::string fallback) const {
  return file[table][key].value_or(std::move(fallback));
}

}  // namespace ringmart::runtime
