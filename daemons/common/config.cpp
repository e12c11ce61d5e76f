#include "daemons/common/config.hpp"

#include <fmt/format.h>

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
  c.quarantine_after = rt["quarantine_after"].value_or(c.quarantine_after);
  if (c.quarantine_after < 1)
    return std::unexpected(c.config_file + ": [runtime] quarantine_after must be >= 1");
  if (c.batch_max < 0)
    return std::unexpected(c.config_file +
                           ": [runtime] batch_max must be >= 1 (0 = by durability)");
  return c;
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
