// ringmart-gateway — the storefront/admin API daemon.
//
// main() wires the parts: the runtime (its loop on a dedicated thread), the
// Gateway, and the two HTTP servers on the io_context that runs on this
// thread: RUNDIR/api.sock (storefront routes) and RUNDIR/admin.sock (all
// routes). The gateway does not bind them: the supervisor holds both
// listening sockets (from systemd's socket units, or bound itself) and hands
// them over at every start by sd_listen_fds(3)'s protocol, names "api" and
// "admin", so connections wait in the backlog while a gateway restarts.
// SIGTERM/SIGINT stop the servers first, then the runtime, in reverse order
// of start.
#include <signal.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <expected>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <utility>

#include "daemons/common/runtime.hpp"
#include "daemons/gateway/gateway.hpp"
#include "http/server.hpp"

namespace {

namespace asio = boost::asio;
namespace runtime = ringmart::runtime;
namespace gateway = ringmart::gateway;
namespace http = ringmart::http;

// After the loop stopped, how long the io thread may take to flush its last
// answers before it is stopped hard.
constexpr auto kIoDrain = std::chrono::seconds(3);

// Raises the soft RLIMIT_NOFILE to the hard limit (getrlimit(2)): every
// storefront connection is a descriptor, and the common soft default of 1,024
// is a ceiling an attacker reaches with idle connections. Returns the soft
// limit now in force.
std::uint64_t raise_open_file_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 1024;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  return limit.rlim_cur == RLIM_INFINITY ? std::uint64_t{1} << 20 : limit.rlim_cur;
}

// The listening sockets handed over (sd_listen_fds_with_names(3), which
// unsets LISTEN_FDS).
struct ReceivedSockets {
  int api = -1;
  int admin = -1;
  int metrics = -1;  ///< optional: GET /metrics only, TCP or AF_UNIX
};

// The sockets, or a message naming what is missing.
std::expected<ReceivedSockets, std::string> received_sockets() {
  char** names = nullptr;
  const int n = sd_listen_fds_with_names(1, &names);
  if (n < 0) return std::unexpected("LISTEN_FDS: " + std::system_category().message(-n));
  ReceivedSockets got;
  for (int i = 0; i < n; ++i) {
    const std::string_view name = names[i];
    if (name == "api") got.api = SD_LISTEN_FDS_START + i;
    if (name == "admin") got.admin = SD_LISTEN_FDS_START + i;
    if (name == "metrics") got.metrics = SD_LISTEN_FDS_START + i;
    std::free(names[i]);
  }
  std::free(names);
  if (got.api < 0 || got.admin < 0) {
    return std::unexpected(
        "no listening sockets named api and admin were handed over (LISTEN_FDS/LISTEN_FDNAMES; "
        "ringmart-gateway is started by ringmart-supervisor)");
  }
  return got;
}

}  // namespace

int main(int argc, char** argv) {
  // Before anything else can read or clear the environment; without them
  // there is nothing to serve, and no restart can help.
  const auto sockets = received_sockets();
  if (!sockets) {
    std::fprintf(stderr, "ringmart-gateway: %s\n", sockets.error().c_str());
    return runtime::kExitCannotStart;
  }
  auto started = runtime::start_daemon(argc, argv, ringmart::msg::DaemonId::GATEWAY,
                                       gateway::Gateway::open_tables);
  if (!started) return started.error();
  runtime::Runtime& rt = *started->runtime;
  const auto& config = rt.config();
  auto log = rt.log();

  auto options = gateway::GatewayOptions::from(config);
  if (!options) {
    runtime::report_start_failure(ringmart::msg::DaemonId::GATEWAY, config, options.error());
    return runtime::kExitCannotStart;
  }
  asio::io_context io(1);
  gateway::Gateway gw(io, rt, std::move(started->store), *options);
  gw.attach();

  const auto open_files = raise_open_file_limit();
  const auto listen = gateway::ListenOptions::from(config).within(open_files);
  log->info("connections: api.sock at most {}, admin.sock at most {} (open files {})",
            listen.api_max_connections, listen.admin_max_connections, open_files);
  const auto server_options = [&](const char* name, int fd, std::size_t max_connections) {
    return http::ServerOptions{
        .socket_path = config.runtime_dir + "/" + name + ".sock",
        .listen_fd = fd,
        .idle_timeout_ms = listen.idle_timeout_ms,
        .header_timeout_ms = listen.header_timeout_ms,
        .max_connections = max_connections,
        .on_overload = [log,
                        name](const std::string& what) { log->warn("{}.sock: {}", name, what); },
        .on_response = gw.request_observer(name)};
  };
  http::Server api(io, server_options("api", sockets->api, listen.api_max_connections));
  http::Server admin(io, server_options("admin", sockets->admin, listen.admin_max_connections));
  gw.add_storefront_routes(api, options->customer_auth);
  gw.add_storefront_routes(admin, gateway::CustomerAuth::trusted, /*back_office=*/true);
  log->info("api.sock customers: {}; passwords hashed on {} threads",
            options->customer_auth == gateway::CustomerAuth::token
                ? "bearer session tokens"
                : "trusted (the storefront's server vouches for user ids)",
            options->hash_threads);
  gw.add_admin_routes(admin);
  gw.set_servers(&api, &admin);
  // GET /metrics alone, for a scraper that cannot reach a Unix socket.
  std::optional<http::Server> metrics;
  if (sockets->metrics >= 0) {
    auto options = server_options("metrics", sockets->metrics, listen.admin_max_connections);
    options.allow_tcp = true;
    metrics.emplace(io, std::move(options));
    metrics->route("GET", "/metrics",
                   [&gw](const http::Request&, http::ResponderPtr r) { r->send(gw.metrics()); });
  }
  try {
    api.start();
    admin.start();
    if (metrics) metrics->start();
  } catch (const std::exception& e) {
    log->error("cannot listen on {}/{{api,admin}}.sock or the metrics socket: {}",
               config.runtime_dir, e.what());
    return 1;
  }

  ::signal(SIGPIPE, SIG_IGN);
  asio::signal_set signals(io, SIGTERM, SIGINT);
  bool stopping = false;
  auto stop_all = [&] {
    if (stopping) return;
    stopping = true;
    gw.shutdown();
    if (metrics) metrics->stop();
    admin.stop();
    api.stop();
    signals.cancel();
    rt.stop();
  };
  signals.async_wait([&](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    log->info("signal {}: stopping", signo);
    stop_all();
  });

  int exit_code = 0;
  std::mutex io_mu;
  std::condition_variable io_cv;
  bool io_done = false;
  std::thread loop([&] {
    const int rc = rt.run();
    asio::post(io, [&, rc] {
      if (rc != 0 && !stopping) {
        log->error("message loop failed ({}): stopping", rc);
        exit_code = rc;
      }
      stop_all();
    });
    std::unique_lock lock(io_mu);
    if (!io_cv.wait_for(lock, kIoDrain, [&] { return io_done; })) io.stop();
  });

  log->info("listening on {}/api.sock and {}/admin.sock", config.runtime_dir, config.runtime_dir);
  io.run();
  {
    std::lock_guard lock(io_mu);
    io_done = true;
  }
  io_cv.notify_all();
  rt.stop();
  loop.join();
  gw.shutdown();  // drop any responder left, before the servers and the io_context go
  return exit_code;
}
