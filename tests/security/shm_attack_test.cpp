// Another local user against ringmart's shared memory (issue 14, finding 1).
// Each attack runs as a real second uid: ringmart-attacker under
// setpriv --reuid=65534 --regid=65534 --clear-groups, against a real system
// (supervisor and every daemon) run by this test's uid (root in CI).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "daemons/common/runtime.hpp"
#include "daemons/common/topology.hpp"
#include "ipc/ring.hpp"
#include "ipc/status_region.hpp"
#include "testkit/command.hpp"
#include "testkit/eventually.hpp"
#include "testkit/shm_names.hpp"
#include "tests/integration/system.hpp"

namespace ringmart::test {
namespace {

constexpr uid_t kAttacker = 65534;  // nobody

/// Runs ringmart-attacker as uid/gid 65534 with no supplementary groups.
testkit::CommandResult as_attacker(const std::string& args) {
  return testkit::run_command("setpriv --reuid=65534 --regid=65534 --clear-groups " +
                              System::bin_dir() + "/ringmart-attacker " + args + " 2>&1");
}

/// The /dev/shm names of the transport `runtime_dir` published.
std::vector<std::string> live_segments(const std::string& runtime_dir) {
  std::vector<std::string> names;
  auto t = runtime::read_shm_transport(runtime_dir);
  if (!t) return names;
  names.push_back(runtime::status_name(t->prefix));
  for (const auto& c : runtime::channels())
    names.push_back(runtime::ring_name(t->prefix, c.from, c.to));
  return names;
}

/// Every /dev/shm file mapped by `pid` (from /proc/PID/maps).
std::vector<std::string> mapped_segments(pid_t pid) {
  std::vector<std::string> out;
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  std::string line;
  while (std::getline(maps, line)) {
    const auto at = line.find("/dev/shm/");
    if (at != std::string::npos) out.push_back(line.substr(at));
  }
  return out;
}

/// The names the first version of ringmart used: "/rm-<FNV-1a of the
/// runtime directory>-…", which anyone who knows the path can compute.
std::string predictable_prefix(const std::string& runtime_dir) {
  std::uint32_t h = 2166136261u;
  for (unsigned char ch : runtime_dir) {
    h ^= ch;
    h *= 16777619u;
  }
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", h);
  return std::string("/rm-") + buf;
}

struct RingPositions {
  std::uint64_t write_pos = 0, read_pos = 0, acked_seq = 0;
};

/// The header of a ring segment, read without Ring::open's checks (which
/// refuse the attacker's segment).
RingPositions ring_header(const std::string& name) {
  RingPositions out;
  const int fd = ::shm_open(name.c_str(), O_RDONLY, 0);
  if (fd < 0) return out;
  void* p = ::mmap(nullptr, sizeof(ipc::RingHeader), PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) return out;
  const auto* h = static_cast<const ipc::RingHeader*>(p);
  out = {h->write_pos.load(), h->read_pos.load(), h->acked_seq.load()};
  ::munmap(p, sizeof(ipc::RingHeader));
  return out;
}

class ShmAttack : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to run the attacker as another uid";
    // The attacker must be able to run its binary: fail loudly, not vacuously.
    const auto r = as_attacker("read-file /nonexistent");
    ASSERT_EQ(r.exit_code, 0) << "cannot run ringmart-attacker as uid 65534: " << r.out;
  }
  void TearDown() override {
    for (const auto& n : squatted_) ipc::ShmSegment::unlink(n);
  }
  /// Squats `name` as the attacker; removed at the end of the test.
  void squat(const std::string& name, std::size_t size) {
    squatted_.push_back(name);
    const auto r = as_attacker("squat " + name + " " + std::to_string(size));
    ASSERT_EQ(r.exit_code, 0) << r.out;
  }
  std::vector<std::string> squatted_;
};

TEST_F(ShmAttack, SquattedNameIsNeverAdoptedNorOpened) {
  testkit::ShmNames names("rm-attack");
  const auto name = names.add("ring");
  squat(name, ipc::Ring::segment_size(4096));
  // The owner would create it: refused, not adopted.
  auto created = ipc::Ring::create(name, 4096);
  ASSERT_FALSE(created);
  EXPECT_EQ(created.error(), std::errc::file_exists);
  auto status = ipc::StatusRegion::create(name);
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error(), std::errc::file_exists);
  // A peer would open it: the owner check refuses it even though root could.
  auto opened = ipc::Ring::open(name);
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error(), make_error_code(ipc::ShmError::foreign_owner));
  auto region = ipc::StatusRegion::open(name);
  ASSERT_FALSE(region);
  EXPECT_EQ(region.error(), make_error_code(ipc::ShmError::foreign_owner));
  // The attacker's bytes are untouched.
  const int fd = ::shm_open(name.c_str(), O_RDONLY, 0);
  ASSERT_GE(fd, 0);
  unsigned char first = 0;
  ASSERT_EQ(::pread(fd, &first, 1, 0), 1);
  ::close(fd);
  EXPECT_EQ(first, 0xA5);
}

TEST_F(ShmAttack, SystemStartsOnItsOwnSegmentsWhenThePredictableNamesAreSquatted) {
  System sys;
  // Everything the first naming scheme would have used, squatted before start.
  const auto old_prefix = predictable_prefix(sys.runtime_dir());
  squat(runtime::status_name(old_prefix), sizeof(ipc::StatusLayout));
  for (const auto& c : runtime::channels()) {
    squat(runtime::ring_name(old_prefix, c.from, c.to), ipc::Ring::segment_size(1u << 20));
  }
  ASSERT_TRUE(sys.start());
  const auto user = sys.create_user("squatted");
  ASSERT_GT(user, 0);
  const auto product = sys.create_product("book", 1500, 5);
  ASSERT_GT(product, 0);
  auto placed = sys.api("POST", "/v1/orders",
                        {{"user_id", user},
                         {"items", {{{"product_id", product}, {"quantity", 1}}}},
                         {"payment", {{"token", "tok_ok"}}}});
  ASSERT_EQ(placed.status, 202) << placed.body.dump();
  EXPECT_EQ(sys.wait_order(placed.body["order_id"].get<std::int64_t>())["status"], "COMPLETED");

  // Every segment any process of the system maps is the system's own.
  auto live = live_segments(sys.runtime_dir());
  ASSERT_EQ(live.size(), runtime::channels().size() + 1);
  for (const char* name :
       {"supervisor", "gateway", "user", "product", "coupon", "order", "payment", "ranking"}) {
    const pid_t pid =
        name == std::string("supervisor") ? sys.supervisor_pid() : sys.daemon_pid(name);
    ASSERT_GT(pid, 0) << name;
    const auto mapped = mapped_segments(pid);
    EXPECT_FALSE(mapped.empty()) << name;
    for (const auto& path : mapped) {
      struct stat st {};
      ASSERT_EQ(::stat(path.c_str(), &st), 0) << path;
      EXPECT_EQ(st.st_uid, ::geteuid()) << name << " maps " << path;
      EXPECT_EQ(st.st_mode & 0777, 0600u) << path;
      for (const auto& n : squatted_) EXPECT_NE(path, "/dev/shm" + n) << name << " maps " << path;
    }
  }
  // The squatted segments still hold only the attacker's bytes.
  for (const auto& n : squatted_) {
    const int fd = ::shm_open(n.c_str(), O_RDONLY, 0);
    ASSERT_GE(fd, 0) << n;
    std::array<unsigned char, 64> head{};
    ASSERT_EQ(::pread(fd, head.data(), head.size(), 0), static_cast<ssize_t>(head.size()));
    ::close(fd);
    for (auto b : head) ASSERT_EQ(b, 0xA5) << n << " was written by the system";
  }
}

TEST_F(ShmAttack, AnotherUserCannotReadWriteUnlinkOrReplaceLiveSegments) {
  System sys;
  ASSERT_TRUE(sys.start());
  // Traffic on the gateway -> user ring: a customer's e-mail address.
  ASSERT_GT(sys.create_user("secret-customer"), 0);
  const auto live = live_segments(sys.runtime_dir());
  ASSERT_EQ(live.size(), runtime::channels().size() + 1);
  std::string args = "probe";
  for (const auto& n : live) args += " " + n;
  const auto r = as_attacker(args);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out.find("SUCCEEDED"), std::string::npos) << r.out;
  // The per-start prefix is not readable either — by its own mode (0600),
  // with every directory on the way open to the attacker.
  ASSERT_EQ(::chmod(std::filesystem::path(sys.runtime_dir()).parent_path().c_str(), 0755), 0);
  const auto file = as_attacker("read-file " + runtime::shm_transport_path(sys.runtime_dir()));
  EXPECT_EQ(file.exit_code, 0) << file.out;
  // And the segments are still there, and the system still serves.
  for (const auto& n : live) EXPECT_TRUE(ipc::ShmSegment::open(n)) << n;
  EXPECT_GT(sys.create_user("after-probe"), 0);
}

TEST_F(ShmAttack, SwappedRingIsRefusedAndItsForgedRecordIsNeverApplied) {
  System sys;
  ASSERT_TRUE(sys.start());
  const auto user = sys.create_user("victim");
  ASSERT_GT(user, 0);
  auto charged =
      sys.admin("POST", "/v1/users/" + std::to_string(user) + "/points/charge", {{"amount", 700}});
  ASSERT_EQ(charged.status, 200) << charged.body.dump();
  ASSERT_EQ(sys.points(user), 700);

  // The sticky /dev/shm stops the attacker from removing the live ring (see
  // the probe test); suppose it went anyway and the attacker planted a ring
  // of the same name that holds a forged "charge 1,000,000 points".
  auto t = runtime::read_shm_transport(sys.runtime_dir());
  ASSERT_TRUE(t);
  const auto name = runtime::ring_name(t->prefix, msg::DaemonId::GATEWAY, msg::DaemonId::USER);
  ipc::ShmSegment::unlink(name);
  squatted_.push_back(name);
  const auto planted =
      as_attacker("plant-ring " + name + " 65536 1000000 " + std::to_string(user) + " 1000000");
  ASSERT_EQ(planted.exit_code, 0) << planted.out;

  // The user daemon restarts and must attach to that ring.
  const pid_t old_user = sys.daemon_pid("user");
  ASSERT_GT(old_user, 0);
  ASSERT_EQ(::kill(old_user, SIGKILL), 0);
  std::string reason;
  for (int i = 0; i < 200; ++i) {
    auto region = ipc::StatusRegion::open(runtime::status_name(t->prefix));
    ASSERT_TRUE(region);
    reason = ipc::reason(region->slot(runtime::index(msg::DaemonId::USER)));
    if (reason.find("refusing") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  EXPECT_NE(reason.find("refusing shared memory " + name), std::string::npos) << reason;
  EXPECT_NE(reason.find("another user"), std::string::npos) << reason;
  EXPECT_NE(sys.log().find("refusing shared memory " + name), std::string::npos);

  // Nothing was consumed from the forged ring and the balance is unchanged
  // (read from the user daemon's LMDB through the gateway).
  const auto forged = ring_header(name);
  EXPECT_EQ(forged.acked_seq, 0u);
  EXPECT_EQ(forged.read_pos, 0u);
  EXPECT_GT(forged.write_pos, 0u);
  EXPECT_EQ(sys.points(user), 700);
}

TEST_F(ShmAttack, SupervisorRefusesARuntimeDirectoryAnotherUserOwns) {
  System sys;
  // The attacker made the runtime directory first (as in a shared /tmp).
  std::filesystem::create_directories(sys.runtime_dir());
  ASSERT_EQ(::chown(sys.runtime_dir().c_str(), kAttacker, kAttacker), 0);
  ASSERT_TRUE(sys.start(false));
  EXPECT_EQ(sys.wait_exit(10000), 1);
  EXPECT_NE(sys.log().find("runtime directory " + sys.runtime_dir() +
                           " or a directory above it: owned by another user (refused)"),
            std::string::npos)
      << sys.log();
  EXPECT_FALSE(std::filesystem::exists(runtime::shm_transport_path(sys.runtime_dir())));
}

TEST_F(ShmAttack, SupervisorRefusesARuntimeDirectoryOthersCanWrite) {
  System sys;
  std::filesystem::create_directories(sys.runtime_dir());
  ASSERT_EQ(::chmod(sys.runtime_dir().c_str(), 0777), 0);
  ASSERT_TRUE(sys.start(false));
  EXPECT_EQ(sys.wait_exit(10000), 1);
  EXPECT_NE(sys.log().find("accessible to group or others"), std::string::npos) << sys.log();
}

TEST_F(ShmAttack, SupervisorRefusesARuntimeDirectoryUnderADirectoryAnotherUserOwns) {
  // As with /tmp/rm/run when another user made /tmp/rm first: they could
  // rename our run/ away and put their own (with their own api.sock) there.
  System sys;
  const auto parent = std::filesystem::path(sys.runtime_dir()).parent_path();
  const auto planted = parent / "theirs";
  std::filesystem::create_directories(planted / "run");
  ASSERT_EQ(::chown(planted.c_str(), kAttacker, kAttacker), 0);
  runtime::Config config = *runtime::Config::load(sys.state_dir(), (planted / "run").string(), "");
  auto refused = runtime::prepare_directories(config);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().find("owned by another user"), std::string::npos) << refused.error();
  auto owner = runtime::check_runtime_dir((planted / "run").string());
  ASSERT_FALSE(owner);
  EXPECT_EQ(owner.error(), make_error_code(ipc::ShmError::foreign_owner));
  // A symlink as the runtime directory is refused too.
  std::filesystem::create_directory_symlink(planted / "run", parent / "link");
  EXPECT_FALSE(runtime::check_runtime_dir((parent / "link").string()));
}

TEST_F(ShmAttack, StateDirectoriesAreTheServiceUsersOnly) {
  System sys;
  ASSERT_TRUE(sys.start());
  struct stat st {};
  ASSERT_EQ(::stat(sys.state_dir().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  for (const char* d :
       {"supervisor", "gateway", "user", "product", "coupon", "order", "payment", "ranking"}) {
    const auto path = sys.state_dir() + "/" + d;
    ASSERT_EQ(::stat(path.c_str(), &st), 0) << path;
    EXPECT_EQ(st.st_mode & 0777, 0700u) << path;
  }
}

/// ringmartctl as uid 65534 with `groups` as its supplementary groups ("" = none).
testkit::CommandResult ctl_as_nobody(const System& sys, const std::string& groups,
                                     const std::string& args) {
  return testkit::run_command(
      "setpriv --reuid=65534 --regid=65534 " +
      (groups.empty() ? std::string("--clear-groups") : "--groups=" + groups) + " " +
      System::bin_dir() + "/ringmartctl --runtime-dir " + sys.runtime_dir() + " --state-dir " +
      sys.state_dir() + " " + args + " 2>&1");
}

mode_t mode_of(const std::string& path, gid_t* gid = nullptr) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  if (gid) *gid = st.st_gid;
  return st.st_mode & 07777;
}

TEST_F(ShmAttack, MembersOfTheOperatorsGroupRunRingmartctlWithoutRootAndNobodyElseCan) {
  const gid_t operators = 4242;  // numeric: no group entry needed
  System sys("[runtime]\noperator_group = \"4242\"\n");
  // The test's own temporary directory is private; let uid 65534 through it.
  std::filesystem::permissions(std::filesystem::path(sys.state_dir()).parent_path(),
                               std::filesystem::perms(0711));
  ASSERT_TRUE(sys.start());
  const auto user = sys.create_user("operated");
  const auto product = sys.create_product("p", 100, 5);
  ASSERT_GT(user, 0);
  ASSERT_GT(product, 0);
  const auto order = sys.api("POST", "/v1/orders",
                             {{"user_id", user},
                              {"items", {{{"product_id", product}, {"quantity", 1}}}},
                              {"payment", {{"token", "tok_ok"}}}});
  ASSERT_EQ(order.status, 202) << order.body.dump();
  ASSERT_EQ(sys.wait_saga(order.body["order_id"].get<std::int64_t>())["state"], "COMPLETED");

  // What the operators get: the transport record to read, the segments to
  // map, every environment to open read-only.
  gid_t gid = 0;
  EXPECT_EQ(mode_of(sys.runtime_dir() + "/transport", &gid), 0640u);
  EXPECT_EQ(gid, operators);
  const auto transport = runtime::read_shm_transport(sys.runtime_dir());
  ASSERT_TRUE(transport);
  EXPECT_EQ(transport->access.group, operators);
  EXPECT_EQ(mode_of("/dev/shm" + runtime::status_name(transport->prefix), &gid), 0660u);
  EXPECT_EQ(gid, operators);
  EXPECT_EQ(mode_of(sys.state_dir(), &gid), 0750u);
  EXPECT_EQ(gid, operators);
  for (const char* d : {"supervisor", "gateway", "order"}) {
    const auto env = sys.state_dir() + "/" + d;
    EXPECT_EQ(mode_of(env), 0750u) << env;
    EXPECT_EQ(mode_of(env + "/data.mdb", &gid), 0640u) << env;
    EXPECT_EQ(gid, operators);
    EXPECT_EQ(mode_of(env + "/lock.mdb"), 0660u) << env;
  }

  // A member, not root and not the service's uid.
  const auto status = ctl_as_nobody(sys, "4242", "status");
  EXPECT_EQ(status.exit_code, 0) << status.out;
  EXPECT_NE(status.out.find("gateway"), std::string::npos) << status.out;
  const auto sagas = ctl_as_nobody(sys, "4242", "-o json sagas --state COMPLETED");
  EXPECT_EQ(sagas.exit_code, 0) << sagas.out;
  EXPECT_NE(sagas.out.find("COMPLETED"), std::string::npos) << sagas.out;
  const auto quarantine = ctl_as_nobody(sys, "4242", "quarantine");
  EXPECT_EQ(quarantine.exit_code, 0) << quarantine.out;
  const pid_t ranking = sys.daemon_pid("ranking");
  const auto restart = ctl_as_nobody(sys, "4242", "restart ranking");
  EXPECT_EQ(restart.exit_code, 0) << restart.out;
  EXPECT_TRUE(testkit::eventually(
      [&] { return sys.daemon_pid("ranking") > 0 && sys.daemon_pid("ranking") != ranking; },
      10000));

  // The same uid without the group: nothing, and a clear reason.
  const auto refused = ctl_as_nobody(sys, "", "status");
  EXPECT_EQ(refused.exit_code, 3) << refused.out;
  EXPECT_NE(refused.out.find("Permission denied"), std::string::npos) << refused.out;
  EXPECT_NE(refused.out.find("operators' group"), std::string::npos) << refused.out;
  EXPECT_NE(ctl_as_nobody(sys, "", "sagas").exit_code, 0);
  // Nor does another group help.
  EXPECT_EQ(ctl_as_nobody(sys, "4243", "status").exit_code, 3);
  // And a non-member's own tool, as in the tests above, opens nothing.
  std::string args = "probe";
  for (const auto& n : live_segments(sys.runtime_dir())) args += " " + n;
  const auto probe = as_attacker(args);
  EXPECT_EQ(probe.exit_code, 0) << probe.out;
  EXPECT_EQ(probe.out.find("SUCCEEDED"), std::string::npos) << probe.out;
  const auto file = as_attacker("read-file " + runtime::shm_transport_path(sys.runtime_dir()));
  EXPECT_EQ(file.exit_code, 0) << file.out;
}

}  // namespace
}  // namespace ringmart::test
