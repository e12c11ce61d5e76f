// Operating the real system through failures an operator must see and fix:
// a full LMDB map, a state directory a daemon cannot use, a hung daemon, a
// saga whose compensation exhausted its budget. Each is refused or reported
// with a clear reason, changes nothing it should not, and recovers through
// ringmartctl after the fix.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "daemons/common/runtime.hpp"
#include "daemons/common/topology.hpp"
#include "testkit/eventually.hpp"
#include "tests/integration/system.hpp"

namespace ringmart::test {
namespace {

json status_of(System& sys, const std::string& daemon) {
  auto r = sys.ctl("-o json status");
  auto j = json::parse(r.out, nullptr, false);
  if (j.is_discarded()) return {};
  for (const auto& d : j["daemons"]) {
    if (d["name"] == daemon) return d;
  }
  return {};
}

using testkit::eventually;

TEST(Operations, FullStorageRefusesWritesAndRecoversAfterTheOperatorEnlargesIt) {
  // A product environment of 256 KiB fills after a few hundred products.
  System sys("[product]\nmap_size_bytes = 262144\n[gateway]\ncommand_timeout_ms = 1000\n");
  ASSERT_TRUE(sys.start());
  // Fill it until writes stay refused across several storage retries (one a
  // second): pages freed by older snapshots let a few more writes through
  // at first, so a single refusal does not yet mean full for good.
  std::vector<std::int64_t> created;
  std::optional<std::chrono::steady_clock::time_point> refused_since;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  int i = 0;
  while (std::chrono::steady_clock::now() < give_up) {
    auto r = sys.admin("POST", "/v1/products",
                       {{"name", "filler product with a long enough name " + std::to_string(i++)},
                        {"category", "bulk"},
                        {"price", 100 + i},
                        {"stock", 10}});
    if (r.status == 201) {
      created.push_back(r.body["id"].get<std::int64_t>());
      refused_since.reset();
      continue;
    }
    if (r.status == 504) continue;  // met the full map; waits in the ring
    ASSERT_EQ(r.status, 503) << r.body.dump();
    ASSERT_EQ(r.body["error"]["code"], "STORAGE_FULL");
    if (!refused_since) refused_since = std::chrono::steady_clock::now();
    if (std::chrono::steady_clock::now() - *refused_since > std::chrono::milliseconds(3500)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(refused_since) << "the map never filled";
  ASSERT_GT(created.size(), 10u);

  auto product = status_of(sys, "product");
  EXPECT_TRUE(product["storage_full"].get<bool>()) << product.dump();
  EXPECT_NE(product["reason"].get<std::string>().find("map_size_bytes"), std::string::npos)
      << product.dump();
  EXPECT_EQ(sys.ctl("status").exit_code, 1);  // degraded
  // Reads still work, and what was committed is intact.
  EXPECT_EQ(sys.stock(created.front()), 10);
  EXPECT_EQ(sys.stock(created.back()), 10);
  // Other daemons still take writes.
  EXPECT_GT(sys.create_user("still-open"), 0);

  // The operator's fix: a bigger map, then a restart of that daemon.
  sys.rewrite_config(
      "[product]\nmap_size_bytes = 67108864\n[gateway]\ncommand_timeout_ms = 1000\n");
  auto restart = sys.ctl("restart product");
  EXPECT_EQ(restart.exit_code, 0) << restart.out;
  ASSERT_TRUE(eventually(
      [&] {
        auto p = status_of(sys, "product");
        return !p.is_null() && p["state"] == "running" && !p["storage_full"].get<bool>();
      },
      10000));
  ASSERT_TRUE(sys.wait_healthy(10000));
  const auto after = sys.create_product("after the fix", 500, 3);
  ASSERT_GT(after, 0);
  EXPECT_EQ(sys.stock(after), 3);
  for (auto id : created) ASSERT_EQ(sys.stock(id), 10) << "product " << id;
  EXPECT_EQ(sys.ctl("status").exit_code, 0);
}

TEST(Operations, DaemonThatCannotStartIsReportedNotRetriedAndStartsAfterTheFix) {
  System sys;
  // The coupon daemon's environment path is a file: LMDB cannot open it.
  std::filesystem::create_directories(sys.state_dir());
  const std::string blocker = sys.state_dir() + "/coupon";
  std::ofstream(blocker) << "not a directory\n";
  ASSERT_TRUE(sys.start(false));
  ASSERT_TRUE(eventually(
      [&] {
        auto c = status_of(sys, "coupon");
        return !c.is_null() && c["state"] == "failed";
      },
      15000));
  auto coupon = status_of(sys, "coupon");
  EXPECT_NE(coupon["reason"].get<std::string>().find("cannot open LMDB environment"),
            std::string::npos)
      << coupon.dump();
  // Not retried: still failed a while later, restart count unchanged.
  const auto restarts = coupon["restarts"].get<unsigned>();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  coupon = status_of(sys, "coupon");
  EXPECT_EQ(coupon["state"], "failed");
  EXPECT_EQ(coupon["restarts"].get<unsigned>(), restarts);

  // The others serve; writes for the coupon daemon are refused with the reason.
  ASSERT_TRUE(eventually([&] { return sys.create_product("p", 100, 1) > 0; }, 15000));
  auto refused = sys.admin(
      "POST", "/v1/coupons",
      {{"name", "c"}, {"discount_type", "fixed"}, {"discount_value", 100}, {"total_quantity", 1}});
  EXPECT_EQ(refused.status, 503) << refused.body.dump();
  EXPECT_EQ(refused.body["error"]["code"], "UNAVAILABLE");
  EXPECT_NE(refused.body["error"]["message"].get<std::string>().find("cannot open"),
            std::string::npos);

  std::filesystem::remove(blocker);
  auto start = sys.ctl("start coupon");
  EXPECT_EQ(start.exit_code, 0) << start.out;
  ASSERT_TRUE(sys.wait_healthy(15000));
  auto created = sys.admin(
      "POST", "/v1/coupons",
      {{"name", "c"}, {"discount_type", "fixed"}, {"discount_value", 100}, {"total_quantity", 1}});
  EXPECT_EQ(created.status, 201) << created.body.dump();
  EXPECT_EQ(sys.ctl("start coupon").exit_code, 0);  // already running: idempotent
}

TEST(Operations, ReadOnlyStateIsReportedReadableAndRecoversAfterTheFix) {
  System sys;
  ASSERT_TRUE(sys.start());
  const auto product = sys.create_product("kept", 700, 9);
  ASSERT_GT(product, 0);
  ASSERT_TRUE(sys.stop());
  // Root ignores permission bits; the immutable attribute stops root too.
  const std::string data = sys.state_dir() + "/product/data.mdb";
  if (std::system(("chattr +i " + data + " 2>/dev/null").c_str()) != 0) {
    GTEST_SKIP() << "chattr +i is not supported on this file system";
  }
  struct Unlock {
    std::string path;
    ~Unlock() { std::system(("chattr -i " + path + " 2>/dev/null").c_str()); }
  } unlock{data};

  ASSERT_TRUE(sys.start(false));
  ASSERT_TRUE(eventually(
      [&] {
        auto p = status_of(sys, "product");
        return !p.is_null() && p["state"] == "failed";
      },
      15000));
  EXPECT_NE(status_of(sys, "product")["reason"].get<std::string>().find("not permitted"),
            std::string::npos)
      << status_of(sys, "product").dump();
  // Reads are served from the read-only environment; writes are refused.
  ASSERT_TRUE(eventually([&] { return sys.stock(product) == 9; }, 15000));
  auto refused =
      sys.admin("PATCH", "/v1/products/" + std::to_string(product) + "/stock", {{"delta", 1}});
  EXPECT_EQ(refused.status, 503) << refused.body.dump();

  std::system(("chattr -i " + data).c_str());
  EXPECT_EQ(sys.ctl("start product").exit_code, 0);
  ASSERT_TRUE(sys.wait_healthy(15000));
  auto adjusted =
      sys.admin("PATCH", "/v1/products/" + std::to_string(product) + "/stock", {{"delta", 1}});
  EXPECT_EQ(adjusted.status, 200) << adjusted.body.dump();
  EXPECT_EQ(sys.stock(product), 10);
}

TEST(Operations, HungDaemonIsKilledAndRestartedBySupervisor) {
  System sys("[runtime]\nheartbeat_timeout_ms = 500\n");
  ASSERT_TRUE(sys.start());
  const pid_t hung = sys.daemon_pid("payment");
  ASSERT_GT(hung, 0);
  ASSERT_EQ(::kill(hung, SIGSTOP), 0);
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(eventually(
      [&] {
        const auto p = sys.daemon_pid("payment");
        return p != 0 && p != hung && status_of(sys, "payment")["state"] == "running";
      },
      10000));
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  std::printf("hung payment daemon replaced after %lld ms (heartbeat timeout 500 ms)\n",
              static_cast<long long>(ms));
  EXPECT_GE(status_of(sys, "payment")["restarts"].get<unsigned>(), 1u);
  // The replacement serves a whole saga.
  const auto product = sys.create_product("p", 1000, 5);
  const auto user = sys.create_user("hang");
  auto r = sys.api("POST", "/v1/orders",
                   {{"user_id", user},
                    {"items", {{{"product_id", product}, {"quantity", 1}}}},
                    {"payment", {{"token", "tok_ok"}}}});
  ASSERT_EQ(r.status, 202) << r.body.dump();
  EXPECT_EQ(sys.wait_order(r.body["order_id"].get<std::int64_t>())["status"], "COMPLETED");
}

TEST(Operations, StoppedDaemonStaysStoppedItsMessagesWaitAndApplyAfterStart) {
  System sys;
  ASSERT_TRUE(sys.start());
  const auto product = sys.create_product("p", 1000, 5);
  const auto user = sys.create_user("stop");
  ASSERT_GT(product, 0);
  ASSERT_GT(user, 0);
  const auto stop = sys.ctl("stop ranking");
  ASSERT_EQ(stop.exit_code, 0) << stop.out;
  ASSERT_TRUE(eventually([&] { return sys.daemon_pid("ranking") == 0; }, 10000));
  // Not restarted: still stopped a while later, and not counted as a restart.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  auto ranking = status_of(sys, "ranking");
  EXPECT_EQ(ranking["state"], "stopped") << ranking.dump();
  EXPECT_EQ(ranking["restarts"].get<unsigned>(), 0u);
  EXPECT_EQ(sys.daemon_pid("ranking"), 0);
  EXPECT_EQ(sys.ctl("stop ranking").exit_code, 0);  // already stopped: idempotent

  // The saga does not need the ranking: the order completes; its
  // orderCompleted waits in the order -> ranking ring.
  auto r = sys.api("POST", "/v1/orders",
                   {{"user_id", user},
                    {"items", {{{"product_id", product}, {"quantity", 3}}}},
                    {"payment", {{"token", "tok_ok"}}}});
  ASSERT_EQ(r.status, 202) << r.body.dump();
  EXPECT_EQ(sys.wait_order(r.body["order_id"].get<std::int64_t>())["status"], "COMPLETED");
  auto units = [&] {
    auto best = sys.api("GET", "/v1/rankings/bestsellers?days=1&limit=10");
    std::int64_t n = 0;
    for (const auto& row : best.body) {
      if (row["product_id"] == product) n = row["units"];
    }
    return n;
  };
  EXPECT_EQ(units(), 0) << "a stopped ranking applied nothing";

  const auto start = sys.ctl("start ranking");
  ASSERT_EQ(start.exit_code, 0) << start.out;
  EXPECT_TRUE(eventually([&] { return units() == 3; }, 10000)) << "units " << units();
  // The supervisor marks it running on its next turn after the first heartbeat.
  EXPECT_TRUE(eventually([&] { return status_of(sys, "ranking")["state"] == "running"; }, 5000));
}

TEST(Operations, ASecondSupervisorOnTheSameRuntimeDirectoryLeavesTheRunningOneAlone) {
  System sys;
  ASSERT_TRUE(sys.start());
  const auto before = runtime::read_shm_transport(sys.runtime_dir());
  ASSERT_TRUE(before);
  // Started by mistake (a duplicate unit, a script): it must not replace the
  // running system's shared memory.
  const std::string cmd = System::bin_dir() + "/ringmart-supervisor --state-dir " +
                          sys.state_dir() + " --runtime-dir " + sys.runtime_dir() + " --config " +
                          sys.config_path() + " 2>&1";
  const auto second = testkit::run_command(cmd);
  EXPECT_EQ(second.exit_code, 1) << second.out;
  EXPECT_NE(second.out.find("another supervisor runs on " + sys.runtime_dir()), std::string::npos)
      << second.out;
  const auto after = runtime::read_shm_transport(sys.runtime_dir());
  ASSERT_TRUE(after);
  EXPECT_EQ(after->prefix, before->prefix);
  // The running system still works, and a daemon it restarts still finds it.
  const pid_t user = sys.daemon_pid("user");
  ASSERT_GT(user, 0);
  ASSERT_EQ(::kill(user, SIGKILL), 0);
  EXPECT_TRUE(eventually(
      [&] { return sys.daemon_pid("user") > 0 && sys.daemon_pid("user") != user; }, 10000));
  EXPECT_TRUE(sys.wait_healthy(10000));
  EXPECT_GT(sys.create_user("after-the-second-supervisor"), 0);
}

// One storefront connection: connect to `path`, GET /v1/health, read the
// answer to EOF. Counts it as refused (connect failed: the listening socket
// was gone), served (an HTTP status line came back) or dropped (accepted,
// then closed without an answer: the gateway that held it was killed).
struct ConnectionCounts {
  std::atomic<int> refused{0}, served{0}, dropped{0};
  std::mutex mu;
  std::string first_refusal;
};
void one_connection(const std::string& path, ConnectionCounts& counts) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int err = errno;
    if (counts.refused++ == 0) {
      std::lock_guard lock(counts.mu);
      counts.first_refusal = std::strerror(err);
    }
    ::close(fd);
    return;
  }
  timeval timeout{30, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  const std::string request =
      "GET /v1/health HTTP/1.1\r\nHost: ringmart\r\nConnection: close\r\n\r\n";
  std::string answer;
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
      static_cast<ssize_t>(request.size())) {
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof(buf))) > 0) answer.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  (answer.starts_with("HTTP/1.1 ") ? counts.served : counts.dropped)++;
}

TEST(Operations, AGatewayKilledOrRestartedUnderLoadRefusesNoConnection) {
  System sys;
  ASSERT_TRUE(sys.start());
  ConnectionCounts counts;
  std::atomic<bool> done{false};
  std::vector<std::thread> clients;
  for (int i = 0; i < 8; ++i) {
    clients.emplace_back([&] {
      while (!done) one_connection(sys.api_socket(), counts);
    });
  }
  auto served_more = [&](int n) {
    const int from = counts.served;
    return eventually([&] { return counts.served >= from + n; }, 20000);
  };
  // Three SIGKILLs (a crash) and one operator restart (SIGTERM: the gateway
  // closes its acceptor), each while eight clients keep connecting.
  for (int round = 0; round < 4; ++round) {
    ASSERT_TRUE(served_more(100)) << "round " << round;
    const pid_t gateway = sys.daemon_pid("gateway");
    ASSERT_GT(gateway, 0);
    if (round < 3) {
      ASSERT_EQ(::kill(gateway, SIGKILL), 0);
    } else {
      const auto restart = sys.ctl("restart gateway");
      ASSERT_EQ(restart.exit_code, 0) << restart.out;
    }
    ASSERT_TRUE(eventually(
        [&] { return sys.daemon_pid("gateway") > 0 && sys.daemon_pid("gateway") != gateway; },
        10000));
  }
  ASSERT_TRUE(served_more(100));
  done = true;
  for (auto& t : clients) t.join();
  std::printf("connections: %d served, %d dropped by a killed gateway, %d refused\n",
              counts.served.load(), counts.dropped.load(), counts.refused.load());
  EXPECT_EQ(counts.refused, 0) << "first refusal: " << counts.first_refusal;
}

TEST(Operations, ASocketPassedUnderAnotherNameIsRefused) {
  System sys;
  const std::string run = sys.runtime_dir();
  // systemd-socket-activate passes sockets as a socket unit would
  // (sd_listen_fds(3)), after the first connection arrives.
  const std::string cmd = "systemd-socket-activate -l " + run + "/api.sock -l " + run +
                          "/stats.sock --fdname=api:stats " + System::bin_dir() +
                          "/ringmart-supervisor --state-dir " + sys.state_dir() +
                          " --runtime-dir " + run + " --config " + sys.config_path() + " 2>&1";
  auto result = std::async(std::launch::async, [&] { return testkit::run_command(cmd); });
  while (result.wait_for(std::chrono::milliseconds(20)) != std::future_status::ready) {
    ConnectionCounts ignored;
    one_connection(run + "/api.sock", ignored);
  }
  const auto out = result.get();
  EXPECT_EQ(out.exit_code, 1) << out.out;
  EXPECT_NE(out.out.find("systemd passed a socket named \"stats\""), std::string::npos) << out.out;
}

TEST(Operations, AGatewayStartedWithoutHandedOverSocketsExits78) {
  System sys;
  const auto out =
      testkit::run_command(System::daemon_dir() + "/ringmart-gateway --state-dir " +
                           sys.state_dir() + " --runtime-dir " + sys.runtime_dir() + " 2>&1");
  EXPECT_EQ(out.exit_code, runtime::kExitCannotStart) << out.out;
  EXPECT_NE(out.out.find("no listening sockets named api and admin were handed over"),
            std::string::npos)
      << out.out;
}

TEST(Operations, ADaemonDirWithoutTheDaemonsIsRefusedBeforeAnythingIsCreated) {
  System sys("[supervisor]\ndaemon_dir = \"" + System::bin_dir() + "\"\n");
  const std::string cmd = System::bin_dir() + "/ringmart-supervisor --state-dir " +
                          sys.state_dir() + " --runtime-dir " + sys.runtime_dir() + " --config " +
                          sys.config_path() + " 2>&1";
  const auto run = testkit::run_command(cmd);
  EXPECT_EQ(run.exit_code, runtime::kExitCannotStart) << run.out;
  EXPECT_NE(run.out.find("daemon_dir " + System::bin_dir() + " lacks ringmart-user, "),
            std::string::npos)
      << run.out;
  // Exits before the transport: no segment, nothing published.
  EXPECT_FALSE(runtime::read_shm_transport(sys.runtime_dir()));
  EXPECT_FALSE(std::filesystem::exists(sys.runtime_dir() + "/transport.pending"));
}

TEST(Operations, HungDaemonOfACrashedSupervisorDoesNotHoldUpTheNextOne) {
  System sys;
  ASSERT_TRUE(sys.start());
  // A daemon hangs (SIGSTOP: it never acts on the SIGTERM its dying parent
  // sends), then the supervisor crashes; systemd starts a new supervisor.
  const pid_t hung = sys.daemon_pid("product");
  ASSERT_GT(hung, 0);
  ASSERT_EQ(::kill(hung, SIGSTOP), 0);
  // Not System::kill_supervisor(): that waits for the children to go.
  const pid_t old_supervisor = sys.supervisor_pid();
  const pid_t old_gateway = sys.daemon_pid("gateway");
  ASSERT_GT(old_gateway, 0);
  ASSERT_EQ(::kill(old_supervisor, SIGKILL), 0);
  ::waitpid(old_supervisor, nullptr, 0);
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(sys.start(false));
  // The new supervisor gives its predecessor's daemons 1 s, then SIGKILLs
  // the hung one, so the whole system serves again well within the 5 s the
  // old per-daemon SIGTERM grace took for this daemon alone. Until the new
  // generation runs, the dying old gateway may still answer the health
  // check, so wait for new daemons first.
  ASSERT_TRUE(eventually(
      [&] {
        const pid_t product = sys.daemon_pid("product");
        const pid_t gateway = sys.daemon_pid("gateway");
        return product > 0 && product != hung && gateway > 0 && gateway != old_gateway;
      },
      4000))
      << sys.log();
  ASSERT_TRUE(sys.wait_healthy(4000)) << sys.log();
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  std::printf("healthy again %lld ms after the supervisor restart\n", static_cast<long long>(ms));
  EXPECT_NE(sys.daemon_pid("product"), hung);
  {
    // Gone, or a zombie waiting for init to reap it (an empty cmdline).
    std::ifstream cmdline("/proc/" + std::to_string(hung) + "/cmdline");
    EXPECT_TRUE(!cmdline || cmdline.peek() == std::ifstream::traits_type::eof())
        << "the hung predecessor still runs";
  }
  EXPECT_NE(sys.log().find("did not stop within"), std::string::npos);
  const auto product = sys.create_product("after", 100, 2);
  EXPECT_GT(product, 0);
}

TEST(Operations, RestartIntensityExceededStopsEverythingWithAnErrorExit) {
  System sys("[supervisor]\nmax_restarts = 2\nrestart_period_ms = 60000\n");
  ASSERT_TRUE(sys.start());
  for (int kill = 1; kill <= 3; ++kill) {
    const pid_t pid = sys.daemon_pid("ranking");
    ASSERT_GT(pid, 0) << "kill " << kill;
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    if (kill == 3) break;
    ASSERT_TRUE(eventually(
        [&] {
          const auto p = sys.daemon_pid("ranking");
          return p != 0 && p != pid;
        },
        10000))
        << "kill " << kill;
  }
  // The third exit within the period is one too many: give up, exit non-zero
  // so systemd (Restart=on-failure) escalates.
  EXPECT_EQ(sys.wait_exit(20000), 1);
  EXPECT_NE(sys.log().find("giving up"), std::string::npos);
  for (const char* d : {"gateway", "user", "product", "coupon", "order", "payment"}) {
    EXPECT_EQ(sys.daemon_pid(d), 0) << d << " still recorded as running";
  }
}

TEST(Operations, StuckSagaIsListedAndRedrivenByTheOperator) {
  // Heartbeats are not checked here: the product daemon is stopped on purpose.
  System sys(
      "[runtime]\nheartbeat_timeout_ms = 600000\n"
      "[saga.deduct_inventory]\ntimeout_ms = 200\nmax_attempts = 2\n"
      "[saga]\ncompensation_timeout_ms = 200\ncompensation_max_attempts = 2\n"
      "retry_backoff_max_ms = 200\n");
  ASSERT_TRUE(sys.start());
  const auto product = sys.create_product("p", 1000, 5);
  const auto user = sys.create_user("stuck");
  ASSERT_GT(product, 0);
  const pid_t stopped = sys.daemon_pid("product");
  ASSERT_EQ(::kill(stopped, SIGSTOP), 0);
  auto r = sys.api("POST", "/v1/orders",
                   {{"user_id", user},
                    {"items", {{{"product_id", product}, {"quantity", 2}}}},
                    {"payment", {{"token", "tok_ok"}}}});
  ASSERT_EQ(r.status, 202) << r.body.dump();
  const auto order = r.body["order_id"].get<std::int64_t>();
  ASSERT_TRUE(eventually(
      [&] {
        auto l = sys.ctl("-o json sagas --state STUCK");
        auto j = json::parse(l.out, nullptr, false);
        return !j.is_discarded() && j.size() == 1 && j[0]["order_id"] == order;
      },
      15000));
  EXPECT_EQ(sys.api("GET", "/v1/orders/" + std::to_string(order)).body["status"], "PENDING");
  EXPECT_EQ(sys.ctl("status").exit_code, 1);  // stuck sagas make the system degraded

  ASSERT_EQ(::kill(stopped, SIGCONT), 0);
  auto redrive = sys.ctl("saga redrive " + std::to_string(order));
  EXPECT_EQ(redrive.exit_code, 0) << redrive.out;
  auto done = sys.wait_order(order);
  EXPECT_EQ(done["status"], "FAILED") << done.dump();
  EXPECT_EQ(done["failure_reason"], "STEP_TIMEOUT");
  EXPECT_EQ(sys.stock(product), 5);  // the unknown-outcome deduction was undone
  // Re-driving again changes nothing and is not an error.
  EXPECT_EQ(sys.ctl("saga redrive " + std::to_string(order)).exit_code, 0);
  EXPECT_EQ(sys.stock(product), 5);
  auto show = sys.ctl("saga show " + std::to_string(order));
  EXPECT_NE(show.out.find("re-driven by the operator"), std::string::npos) << show.out;
  EXPECT_EQ(sys.ctl("-o json quarantine list").exit_code, 0);
}

}  // namespace
}  // namespace ringmart::test
