// ringmart-check — checks the invariants of a ringmart system's state
// (tests/chaos/README.md). Exit codes: 0 no violation, 1 violations,
// 2 bad arguments or unreadable state.
#include <CLI/CLI.hpp>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

#include "tests/chaos/checker.hpp"

namespace {

constexpr int kOk = 0, kViolations = 1, kBadInput = 2;

// One order id per line; blank lines and '#' comments are ignored.
bool read_accepted(const std::string& path, std::vector<std::uint64_t>& out, std::string& error) {
  std::ifstream in(path);
  if (!in) {
    error = "cannot read " + path;
    return false;
  }
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (auto hash = line.find('#'); hash != std::string::npos) line.erase(hash);
    const auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos) continue;
    const auto last = line.find_last_not_of(" \t\r");
    std::uint64_t id = 0;
    const char* begin = line.data() + first;
    const char* end = line.data() + last + 1;
    auto [ptr, ec] = std::from_chars(begin, end, id);
    if (ec != std::errc{} || ptr != end || id == 0) {
      error = path + ":" + std::to_string(n) + ": not an order id: " + line;
      return false;
    }
    out.push_back(id);
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ringmart-check: checks the invariants of a ringmart system's LMDB state"};
  ringmart::checker::Options options;
  std::string accepted_file, output = "text";
  int wait_quiet_ms = 0;
  app.add_option("--state-dir", options.state_dir, "state directory (one LMDB env per daemon)")
      ->required();
  app.add_option("--runtime-dir", options.runtime_dir, "runtime directory (names the rings)")
      ->required();
  app.add_option("--config", options.config_file, "TOML configuration (map size)");
  app.add_option("--accepted", accepted_file, "file of accepted order ids, one per line");
  app.add_option("--wait-quiet", wait_quiet_ms,
                 "first wait up to MS for terminal sagas and drained outboxes/rings")
      ->check(CLI::NonNegativeNumber);
  app.add_option("-o,--output", output, "text or json")->check(CLI::IsMember({"text", "json"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kOk : kBadInput;
  }
  std::string error;
  if (!accepted_file.empty() && !read_accepted(accepted_file, options.accepted_order_ids, error)) {
    std::fprintf(stderr, "ringmart-check: %s\n", error.c_str());
    return kBadInput;
  }

  std::int64_t waited_ms = -1;
  std::string wait_error;
  if (wait_quiet_ms > 0) {
    // Not quiet in time: still check, the backlog shows up as violations.
    auto waited = ringmart::checker::wait_quiet(options, wait_quiet_ms);
    if (waited) {
      waited_ms = *waited;
    } else {
      wait_error = waited.error();
      std::fprintf(stderr, "ringmart-check: %s\n", wait_error.c_str());
    }
  }

  auto report = ringmart::checker::check(options);
  if (!report) {
    std::fprintf(stderr, "ringmart-check: %s\n", report.error().c_str());
    return kBadInput;
  }
  if (output == "json") {
    auto j = report->to_json();
    if (wait_quiet_ms > 0) {
      j["waited_ms"] = waited_ms;
      if (!wait_error.empty()) j["wait_error"] = wait_error;
    }
    std::cout << j.dump(2) << "\n";
  } else {
    for (const auto& v : report->violations) {
      std::cout << "VIOLATION " << v.invariant << ": " << v.detail << "\n";
    }
    const auto& r = *report;
    std::cout << (r.ok() ? "OK" : "FAILED") << ": " << r.violations.size()
              << " violation(s); orders " << r.orders << " (completed " << r.completed
              << ", failed " << r.failed << ", pending " << r.pending << "), sagas " << r.sagas
              << " (non-terminal " << r.sagas_nonterminal << ", stuck " << r.sagas_stuck
              << ", abandoned " << r.sagas_abandoned << "), products " << r.products << ", users "
              << r.users << ", user coupons " << r.user_coupons << ", payments " << r.payments
              << ", outbox pending " << r.outbox_pending << ", ring backlog "
              << (r.rings_checked ? std::to_string(r.ring_backlog) : "not checked (no rings)")
              << "\n";
  }
  return report->ok() ? kOk : kViolations;
}
