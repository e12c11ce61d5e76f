#include "tests/integration/system.hpp"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "daemons/common/runtime.hpp"
#include "daemons/common/topology.hpp"
#include "daemons/supervisor/process_manager.hpp"

namespace ringmart::test {

std::string System::bin_dir() {
  return std::filesystem::read_symlink("/proc/self/exe").parent_path().string();
}

std::string System::daemon_dir() { return supervisor::ProcessManager::default_daemon_dir(); }

System::System(std::string extra_config, std::string durability)
    : durability_(std::move(durability)) {
  state_dir_ = base_ / "state";
  run_dir_ = base_ / "run";
  config_path_ = base_ / "ringmart.toml";
  log_path_ = base_ / "ringmart.log";
  std::filesystem::create_directories(state_dir_);
  std::filesystem::create_directories(run_dir_);
  rewrite_config(extra_config);
}

void System::rewrite_config(const std::string& extra_config) {
  // A payment timeout short enough for tok_timeout tests, long enough for
  // sanitizer builds under a burst of 200 orders. Keys of `extra_config`'s
  // [runtime] / [saga] tables join the defaults (TOML forbids a table twice).
  std::string extra = extra_config;
  using Defaults = std::vector<std::pair<std::string, std::string>>;  // key, value
  auto merge = [&](const std::string& header, const Defaults& defaults) {
    std::string lines;
    for (const auto& [key, value] : defaults) {
      if (extra.find(key + " =") == std::string::npos) lines += key + " = " + value + "\n";
    }
    const auto at = extra.find(header + "\n");
    if (at == std::string::npos) return header + "\n" + lines;
    extra.insert(at + header.size() + 1, lines);
    return std::string();
  };
  const auto runtime_table =
      merge("[runtime]", {{"log_level", "\"warn\""}, {"durability", "\"" + durability_ + "\""}});
  const auto saga_table = merge("[saga]", {{"compensation_timeout_ms", "1000"}});
  // Tests act as the storefront's server (user ids in requests) unless they
  // ask for customer_auth = "token"; passwords hash at libsodium's minimum
  // cost unless a test sets its own.
  const auto gateway_table = merge("[gateway]", {{"customer_auth", "\"trusted\""}});
  const auto accounts_table =
      merge("[accounts]", {{"password_opslimit", "1"}, {"password_memlimit_kib", "8"}});
  std::ofstream cfg(config_path_, std::ios::trunc);
  cfg << runtime_table << saga_table << gateway_table << accounts_table
      << "[saga.start_payment]\ntimeout_ms = 1000\nmax_attempts = 2\n"
      << extra << "\n";
}

System::CtlResult System::ctl(const std::string& args) const {
  return testkit::run_command(bin_dir() + "/ringmartctl --runtime-dir " + run_dir_ +
                              " --state-dir " + state_dir_ + " " + args + " 2>&1");
}

System::~System() {
  if (supervisor_) {
    ::kill(supervisor_, SIGKILL);
    ::waitpid(supervisor_, nullptr, 0);
  }
  // Children die with the supervisor (PDEATHSIG); remove what a crash left in
  // /dev/shm. base_ (the state) goes after this body.
  runtime::remove_transport(run_dir_);
}

bool System::start(bool wait) {
  const std::string exe = bin_dir() + "/ringmart-supervisor";
  supervisor_ = ::fork();
  if (supervisor_ == 0) {
    int fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    if (open_files_limit_ > 0) {
      const rlimit limit{open_files_limit_, open_files_limit_};
      if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) ::_exit(126);
    }
    ::execl(exe.c_str(), exe.c_str(), "--state-dir", state_dir_.c_str(), "--runtime-dir",
            run_dir_.c_str(), "--config", config_path_.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  api_.emplace(api_socket(), std::chrono::seconds(35));
  admin_.emplace(admin_socket(), std::chrono::seconds(35));
  if (!wait || wait_healthy(30000)) return true;
  std::ifstream log(log_path_);
  std::cerr << "ringmart did not become healthy; log:\n" << log.rdbuf() << "\n";
  return false;
}

bool System::wait_healthy(int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = api("GET", "/v1/health");
    if (r.status == 200) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

bool System::stop() {
  if (!supervisor_) return true;
  ::kill(supervisor_, SIGTERM);
  int status = 0;
  ::waitpid(supervisor_, &status, 0);
  supervisor_ = 0;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int System::wait_exit(int timeout_ms) {
  if (!supervisor_) return -1;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  int status = 0;
  while (::waitpid(supervisor_, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  supervisor_ = 0;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string System::log() const {
  std::ifstream in(log_path_);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void System::kill_supervisor() {
  if (!supervisor_) return;
  std::vector<pid_t> children;
  for (auto id : runtime::all_daemons()) {
    if (id == runtime::DaemonId::SUPERVISOR) continue;
    if (auto pid = daemon_pid(runtime::daemon_name(id))) children.push_back(pid);
  }
  ::kill(supervisor_, SIGKILL);
  ::waitpid(supervisor_, nullptr, 0);
  supervisor_ = 0;
  // Its children follow through PDEATHSIG; wait until they are gone so a dying
  // gateway cannot answer for the next generation.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (auto pid : children) {
    // A zombie (exited, not yet reaped by init) has an empty cmdline.
    auto alive = [](pid_t p) {
      std::ifstream cmdline("/proc/" + std::to_string(p) + "/cmdline");
      return cmdline && cmdline.peek() != std::ifstream::traits_type::eof();
    };
    while (alive(pid) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
}

pid_t System::daemon_pid(const std::string& name) const {
  auto transport = runtime::read_shm_transport(run_dir_);
  if (!transport) return 0;
  auto status = ipc::StatusRegion::open(runtime::status_name(transport->prefix), transport->access);
  auto id = runtime::parse_daemon(name);
  if (!status || !id) return 0;
  return status->slot(runtime::index(*id)).pid.load();
}

HttpResult System::call(http::UnixClient& client, const std::string& method,
                        const std::string& target, const json& body,
                        const std::map<std::string, std::string>& headers) {
  HttpResult out;
  const std::string payload = body.is_null() ? "" : body.dump();
  auto r = client.request(method, target, payload, headers);
  if (!r) return out;
  out.status = r->status;
  out.headers = r->headers;
  out.body = json::parse(r->body, nullptr, false);
  out.text = r->body;
  return out;
}

HttpResult System::api(const std::string& method, const std::string& target, const json& body,
                       const std::map<std::string, std::string>& headers) {
  return call(*api_, method, target, body, headers);
}

HttpResult System::admin(const std::string& method, const std::string& target, const json& body,
                         const std::map<std::string, std::string>& headers) {
  return call(*admin_, method, target, body, headers);
}

std::int64_t System::create_product(const std::string& name, std::int64_t price, std::int64_t stock,
                                    const std::string& category) {
  auto r = admin("POST", "/v1/products",
                 {{"name", name}, {"category", category}, {"price", price}, {"stock", stock}});
  return r.status == 201 ? r.body["id"].get<std::int64_t>() : -1;
}

std::int64_t System::create_user(const std::string& name) {
  // E-mail addresses are unique: the same name twice is two customers.
  auto r = api(
      "POST", "/v1/users",
      {{"name", name}, {"email", name + "." + std::to_string(++users_created_) + "@example.com"}});
  return r.status == 201 ? r.body["id"].get<std::int64_t>() : -1;
}

std::int64_t System::stock(std::int64_t product_id) {
  auto r = api("GET", "/v1/products/" + std::to_string(product_id));
  return r.status == 200 ? r.body["stock"].get<std::int64_t>() : -1;
}

std::int64_t System::points(std::int64_t user_id) {
  auto r = api("GET", "/v1/users/" + std::to_string(user_id) + "/points");
  return r.status == 200 ? r.body["balance"].get<std::int64_t>() : -1;
}

json System::wait_order(std::int64_t order_id, int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  json last;
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = api("GET", "/v1/orders/" + std::to_string(order_id) + "?wait_ms=2000");
    if (r.status == 200) {
      last = r.body;
      if (last.value("status", "") != "PENDING") return last;
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  return last;
}

json System::wait_saga(std::int64_t order_id, int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  json last;
  for (;;) {
    auto r = admin("GET", "/v1/sagas/" + std::to_string(order_id));
    if (r.status == 200) {
      last = r.body;
      const auto state = last.value("state", "");
      if (state != "RUNNING" && state != "COMPENSATING") return last;
    }
    if (std::chrono::steady_clock::now() >= deadline) return last;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace ringmart::test
