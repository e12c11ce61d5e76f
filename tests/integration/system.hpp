// A real ringmart system for integration tests: the supervisor (and through
// it every daemon) started from the build's bin/ directory in a temporary
// state and runtime directory, so its shared-memory names are its own.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "http/client.hpp"
#include "ipc/status_region.hpp"
#include "testkit/command.hpp"
#include "testkit/temp_dir.hpp"

namespace ringmart::test {

using nlohmann::json;

struct HttpResult {
  int status = 0;    ///< 0 when the request failed at the transport level
  json body;         ///< the body parsed as JSON (discarded when it is not JSON)
  std::string text;  ///< the body as received
  std::map<std::string, std::string> headers;
};

/// The `error.code` of an error answer ("" when the body is not one).
inline std::string error_code(const HttpResult& r) {
  return r.body.is_object() && r.body.contains("error") && r.body["error"].is_object()
             ? r.body["error"].value("code", "")
             : "";
}

class System {
 public:
  /// `extra_config` is appended to the generated TOML config; `durability`
  /// is "process" or "fsync".
  explicit System(std::string extra_config = "", std::string durability = "process");
  ~System();
  System(const System&) = delete;

  /// Starts the supervisor and waits until GET /v1/health is 200 (30 s max).
  /// Returns false (with the log tail on stderr) when it did not come up.
  /// `wait_healthy` false: returns once the supervisor is spawned.
  bool start(bool wait_healthy = true);
  /// Starts the system (at the next start()) with RLIMIT_NOFILE soft = hard =
  /// `n` (0: inherited), as on a host whose limit is that low.
  void set_open_files_limit(std::uint64_t n) { open_files_limit_ = n; }
  /// Rewrites the config file with the base settings plus `extra_config`
  /// (daemons read it when they start).
  void rewrite_config(const std::string& extra_config);
  /// Runs ringmartctl with --runtime-dir/--state-dir and `args`.
  using CtlResult = testkit::CommandResult;
  CtlResult ctl(const std::string& args) const;
  /// SIGTERM and wait; true when it exited 0.
  bool stop();
  /// Waits for the supervisor to exit on its own: its exit code, or -1 when
  /// it died by a signal or still runs after `timeout_ms`.
  int wait_exit(int timeout_ms);
  /// The supervisor's log (stdout + stderr of every process) so far.
  std::string log() const;
  /// SIGKILL the supervisor (its children follow through PDEATHSIG).
  void kill_supervisor();
  pid_t supervisor_pid() const { return supervisor_; }
  /// pid of a daemon from the status region (0 when not running).
  pid_t daemon_pid(const std::string& name) const;
  bool wait_healthy(int timeout_ms);

  HttpResult api(const std::string& method, const std::string& target, const json& body = nullptr,
                 const std::map<std::string, std::string>& headers = {});
  HttpResult admin(const std::string& method, const std::string& target, const json& body = nullptr,
                   const std::map<std::string, std::string>& headers = {});

  // Convenience wrappers (assert-free; return ids or -1).
  std::int64_t create_product(const std::string& name, std::int64_t price, std::int64_t stock,
                              const std::string& category = "test");
  std::int64_t create_user(const std::string& name);
  std::int64_t stock(std::int64_t product_id);
  std::int64_t points(std::int64_t user_id);
  /// Polls GET /v1/orders/{id}?wait_ms until terminal or `timeout_ms`.
  json wait_order(std::int64_t order_id, int timeout_ms = 20000);
  /// Polls the admin GET /v1/sagas/{id} until the saga left RUNNING and
  /// COMPENSATING, or `timeout_ms`: its last answer (null if none was 200).
  /// The saga ends after its order: the supervisor marks it final only once
  /// the order daemon's orderCompleted/orderFailed reply arrives.
  json wait_saga(std::int64_t order_id, int timeout_ms = 20000);

  const std::string& runtime_dir() const { return run_dir_; }
  const std::string& state_dir() const { return state_dir_; }
  const std::string& config_path() const { return config_path_; }
  std::string api_socket() const { return run_dir_ + "/api.sock"; }
  std::string admin_socket() const { return run_dir_ + "/admin.sock"; }
  static std::string bin_dir();
  /// Where the supervisor of this build finds the daemons
  /// (ProcessManager::default_daemon_dir: libexec/ringmart beside bin/).
  static std::string daemon_dir();

 private:
  HttpResult call(http::UnixClient& client, const std::string& method, const std::string& target,
                  const json& body, const std::map<std::string, std::string>& headers);
  std::string durability_;
  testkit::TempDir base_{"ringmart-it"};  // state, runtime, config, log
  std::string state_dir_;
  std::string run_dir_;
  std::string config_path_;
  std::string log_path_;
  pid_t supervisor_ = 0;
  std::uint64_t open_files_limit_ = 0;
  std::uint64_t users_created_ = 0;  ///< by create_user
  std::optional<http::UnixClient> api_;
  std::optional<http::UnixClient> admin_;
};

}  // namespace ringmart::test
