// Two-process tests of the delivery protocol on top of LMDB: inbox dedup with
// consume-after-commit, LMDB transactions killed mid-way, and the outbox relay.
// Every test runs with both durability modes.
#include <gtest/gtest.h>
#include <lmdb.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ostream>
#include <string>
#include <vector>

#include "ipc/ring.hpp"
#include "ipc/status_region.hpp"
#include "storage/lmdb.hpp"
#include "storage/outbox.hpp"
#include "testkit/temp_dir.hpp"
#include "tests/multiprocess/harness.hpp"
#include "tests/multiprocess/mp_common.hpp"
#include "tests/multiprocess/mp_fixture.hpp"

namespace ringmart::storage {
// Names the parameter in test listings ("GetParam() = fsync").
void PrintTo(Durability d, std::ostream* os) {
  *os << (d == Durability::fsync ? "fsync" : "process");
}
}  // namespace ringmart::storage

namespace ringmart::mp {
namespace {

using ipc::RecordView;
using ipc::Ring;
using storage::Durability;

const char* name(Durability d) { return d == Durability::fsync ? "fsync" : "process"; }

std::span<const std::byte> as_bytes(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}
std::string as_string(std::span<const std::byte> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

class StorageMp : public SharedMemoryTest<::testing::TestWithParam<Durability>> {
 protected:
  std::unique_ptr<storage::Env> open_env(const std::string& dir) {
    auto env = storage::Env::open({.path = dir, .durability = GetParam()});
    EXPECT_TRUE(env) << env.error().message();
    return env ? std::move(*env) : nullptr;
  }
};

// 5. Consumer killed before acknowledging: a consumer peer applies records in
// LMDB (inbox mark + "applied" row + effect counter in one write transaction),
// then ring.commit(). SIGKILLed at random points and restarted, it re-reads the
// unacknowledged records and the inbox mark skips them: exactly-once effects.
TEST_P(StorageMp, ConsumerKilledBeforeAckAppliesEveryMessageExactlyOnce) {
  const std::uint64_t kN = GetParam() == Durability::process ? 30'000 : 6'000;
  constexpr int kMinRounds = 20, kMaxRounds = 45;
  const std::uint64_t kBudget = kN / 50;  // records pushed per kill round
  const PayloadSpec spec{8, 200};
  testkit::TempDir dir(kMpPrefix);
  Ring ring = make_ring("inbox", 4096);
  ASSERT_TRUE(ring.valid());
  ipc::Doorbell bell = status_.doorbell(kPeerSlot);
  const ipc::DaemonSlot& peer_slot = status_.slot(kPeerSlot);
  auto spawn_consumer = [&] {
    return Peer::spawn({"inbox-consume", arg("ring", ring.name()), arg("status", status_name_),
                        arg("slot", kPeerSlot), arg("dir", dir.path()),
                        arg("durability", name(GetParam())), arg("last", kN), arg("max_batch", 16),
                        arg("ack_delay_us", 300), arg("min", spec.min), arg("max", spec.max)});
  };
  std::vector<std::byte> buf;
  std::uint64_t seq = 1;
  auto pump = [&](std::uint64_t limit) {  // the test process is the producer: push what fits
    bool any = false;
    while (seq <= limit) {
      make_payload(seq, spec, buf);
      if (!ring.try_push(buf, seq)) break;
      ++seq;
      any = true;
    }
    if (any) bell.ring();
    return any;
  };

  // Kill rounds: each pushes a budget of records (the consumer never runs
  // out of the whole stream early) and kills the consumer at a random moment.
  int rounds = 0;
  for (; rounds < kMaxRounds; ++rounds) {
    if (rounds >= kMinRounds && peer_slot.duplicates.load() > 0) break;
    const std::uint64_t limit = std::min<std::uint64_t>((rounds + 1) * kBudget, kN - kBudget);
    Peer consumer = spawn_consumer();
    ASSERT_TRUE(consumer.read_line(20'000).value_or("").starts_with("START"))
        << describe_status(consumer.wait()) << " " << consumer.read_rest();
    const std::int64_t kill_at = now_us() + static_cast<std::int64_t>(uniform(1'000, 25'000));
    while (now_us() < kill_at) {
      if (!pump(limit)) ::usleep(50);
      ASSERT_FALSE(consumer.try_wait())
          << "consumer ended on its own: " << describe_status(consumer.wait()) << " "
          << consumer.read_rest();
    }
    consumer.signal(SIGKILL);
    const int st = consumer.wait();
    ASSERT_TRUE(killed_by(st, SIGKILL)) << describe_status(st) << " " << consumer.read_rest();
  }
  Peer consumer = spawn_consumer();
  const std::int64_t give_up = now_us() + 120'000'000;
  while (!consumer.try_wait()) {
    ASSERT_LT(now_us(), give_up) << "final consumer did not finish; acked " << ring.acked_seq();
    if (!pump(kN)) ::usleep(100);
  }
  const int st = consumer.wait();
  const std::string out = consumer.read_rest();
  ASSERT_TRUE(exited_ok(st)) << describe_status(st) << ": " << out;
  EXPECT_EQ(seq, kN + 1);
  EXPECT_EQ(ring.acked_seq(), kN);
  EXPECT_EQ(ring.fill_bytes(), 0u);

  auto env = open_env(dir.path());
  ASSERT_TRUE(env);
  auto txn = storage::Txn::begin_read(*env);
  ASSERT_TRUE(txn);
  auto inbox = storage::Inbox::open(*txn);
  auto effects = storage::Table::open(*txn, "effects");
  auto applied = storage::Table::open(*txn, "applied");
  ASSERT_TRUE(inbox && effects && applied);
  const auto count = effects->get_pod<std::uint64_t>(*txn, storage::Key{}.u8(1).view());
  const auto dups = effects->get_pod<std::uint64_t>(*txn, storage::Key{}.u8(2).view());
  EXPECT_EQ(count, kN) << "effects applied != distinct messages";
  EXPECT_EQ(applied->count(*txn), kN);
  EXPECT_EQ(inbox->mark(*txn, kChannel), kN);
  std::printf(
      "[ multiproc ] %s: %d consumer kills; %llu redelivered records skipped by the "
      "inbox mark (LMDB counter %llu); %llu LMDB commits\n",
      name(GetParam()), rounds, (unsigned long long)peer_slot.duplicates.load(),
      (unsigned long long)dups.value_or(0), (unsigned long long)peer_slot.commits.load());
  EXPECT_GT(dups.value_or(0) + peer_slot.duplicates.load(), 0u)
      << "no kill landed between LMDB commit and ack: redelivery was not exercised";
}

// Counts the reader slots in use in an environment's lock table, with raw LMDB
// (mdb_env_open does not clear stale slots; storage::Env::open does).
int live_readers(MDB_env* env) {
  int lines = 0;
  mdb_reader_list(
      env,
      [](const char* msg, void* ctx) -> int {
        if (std::strstr(msg, "pid") == nullptr && std::strstr(msg, "no active") == nullptr) {
          ++*static_cast<int*>(ctx);
        }
        return 0;
      },
      &lines);
  return lines;
}

int raw_live_readers(const std::string& dir) {
  MDB_env* env = nullptr;
  if (mdb_env_create(&env) != 0) return -1;
  mdb_env_set_maxdbs(env, 32);
  mdb_env_set_maxreaders(env, 256);
  int n = -1;
  if (mdb_env_open(env, dir.c_str(), MDB_NOTLS | MDB_RDONLY, 0600) == 0) n = live_readers(env);
  mdb_env_close(env);
  return n;
}

// 6. A child SIGKILLed inside a write transaction (after many puts, a delete
// and an overwrite, before commit) leaves no partial state; its committed
// transaction before that is intact and visible to a new process (in `process`
// mode too, where the commit was not fsync'ed). The next writer gets the
// write lock although the killed one held it, and the stale reader slot of the
// killed child is cleared by Env::open.
TEST_P(StorageMp, WriterKilledInsideTransactionLeavesNoPartialState) {
  constexpr int kRounds = 3;
  testkit::TempDir dir(kMpPrefix);
  const std::string pad(200, 'x');
  // Keeps the environment open throughout (as the gateway's query library
  // would), so LMDB's lock table survives the kills instead of being reset.
  Peer holder =
      Peer::spawn({"lmdb-hold", arg("dir", dir.path()), arg("durability", name(GetParam()))});
  ASSERT_EQ(holder.read_line(20'000), "READY") << describe_status(holder.wait());
  for (int round = 0; round < kRounds; ++round) {
    Peer writer = Peer::spawn({"lmdb-txn", arg("dir", dir.path()),
                               arg("durability", name(GetParam())), arg("round", round)});
    const auto line = writer.read_line(20'000);
    ASSERT_EQ(line, "READY") << "writer of round " << round
                             << " did not get inside its second transaction (write lock of the "
                                "killed writer never released?): "
                             << (writer.try_wait() ? describe_status(*writer.try_wait())
                                                   : "running");
    writer.signal(SIGKILL);
    const int st = writer.wait();
    ASSERT_TRUE(killed_by(st, SIGKILL)) << describe_status(st);

    EXPECT_EQ(raw_live_readers(dir.path()), 1) << "the killed writer's read slot should be stale";
    auto env = open_env(dir.path());
    ASSERT_TRUE(env);
    EXPECT_EQ(live_readers(env->raw()), 0) << "Env::open did not clear the stale reader slot";
    auto txn = storage::Txn::begin_read(*env);
    ASSERT_TRUE(txn);
    auto kv = storage::Table::open(*txn, "kv");
    ASSERT_TRUE(kv);
    EXPECT_EQ(kv->get_pod<std::uint64_t>(*txn, as_bytes("meta/round")),
              static_cast<std::uint64_t>(round));
    for (int r = 0; r <= round; ++r) {
      for (int i = 0; i < 100; ++i) {
        const std::string k = "c/" + std::to_string(r) + "/" + std::to_string(i);
        const auto v = kv->get(*txn, as_bytes(k));
        ASSERT_TRUE(v) << "committed row " << k << " lost";
        ASSERT_EQ(as_string(*v), "v-" + std::to_string(r) + "-" + std::to_string(i) + pad) << k;
      }
    }
    int partial = 0;
    kv->scan(*txn, as_bytes("p/"), [&](std::span<const std::byte> k, std::span<const std::byte>) {
      if (!as_string(k).starts_with("p/")) return false;
      ++partial;
      return true;
    });
    EXPECT_EQ(partial, 0) << "rows of the uncommitted transaction are visible";
    EXPECT_EQ(kv->count(*txn), 1u + 100u * (round + 1));
  }
  holder.signal(SIGKILL);
  EXPECT_TRUE(killed_by(holder.wait(), SIGKILL));
}

// 7. Outbox relay across processes: a relay peer appends to its LMDB outbox,
// relays from pushed_seq()+1 and prunes up to acked_seq(); it is SIGKILLed and
// restarted repeatedly. The consumer (this process) sees every seq once after
// dedup by its mark, in order, and finally the outbox is empty.
TEST_P(StorageMp, RelayKilledRepeatedlyDeliversEverySeqAndPrunesOutbox) {
  const std::uint64_t kN = GetParam() == Durability::process ? 20'000 : 4'000;
  constexpr int kRounds = 30;
  const PayloadSpec spec{8, 300};
  testkit::TempDir dir(kMpPrefix);
  Ring ring = make_ring("relay", 8192);
  ASSERT_TRUE(ring.valid());
  ipc::DoorbellWord& word = status_.slot(kTestSlot).doorbell;
  // append_limit: during kill rounds the relay appends at most a budget per
  // round, so the stream never completes before the final run.
  auto spawn_relay = [&](std::uint64_t append_limit) {
    return Peer::spawn({"relay", arg("ring", ring.name()), arg("status", status_name_),
                        arg("slot", kTestSlot), arg("dir", dir.path()),
                        arg("durability", name(GetParam())), arg("last", kN),
                        arg("append_limit", append_limit), arg("batch", 32), arg("pace_us", 300),
                        arg("min", spec.min), arg("max", spec.max)});
  };
  std::uint64_t mark = 0, received = 0, duplicates = 0;
  WaitStats ws;
  RecordView r;
  // Consumes until `until_us` passed, or (until_us == 0) until mark == kN.
  auto consume = [&](std::int64_t until_us, Peer& relay) {
    const std::int64_t give_up = now_us() + 120'000'000;
    for (;;) {
      if (until_us != 0 ? now_us() >= until_us : mark >= kN) return;
      auto got = ring.next(r);
      ASSERT_TRUE(got) << "corrupt record after seq " << mark;
      if (!*got) {
        ASSERT_LT(now_us(), give_up) << "stuck at seq " << mark;
        if (auto st = relay.try_wait(); st && !ring.readable()) {
          FAIL() << "relay " << describe_status(*st) << " at seq " << mark;
        }
        sleep_until_readable(ring, word, 1, ws);
        continue;
      }
      ++received;
      if (r.seq <= mark) {
        ++duplicates;
      } else {
        ASSERT_EQ(r.seq, mark + 1) << "gap in the delivered sequence";
        const char* why = verify_payload(r.seq, spec, r.payload);
        ASSERT_EQ(why, nullptr) << "seq " << r.seq << ": " << why;
        mark = r.seq;
      }
      ring.commit(r.end_pos, r.seq);  // consume after "commit" (the mark)
    }
  };
  int kills = 0;
  for (; kills < kRounds; ++kills) {
    Peer relay = spawn_relay((kills + 1) * kN / (kRounds + 10));
    ASSERT_TRUE(relay.read_line(20'000).value_or("").starts_with("START"))
        << describe_status(relay.wait()) << " " << relay.read_rest();
    // A quiet moment before the kill, so that it is not synchronised with the
    // relay's FUTEX_WAKE (see ProducerKilledMidWrite...).
    const std::int64_t kill_at = now_us() + static_cast<std::int64_t>(uniform(2'000, 30'000));
    consume(kill_at - static_cast<std::int64_t>(uniform(100, 1'500)), relay);
    if (HasFatalFailure()) return;
    sleep_until_us(kill_at);
    relay.signal(SIGKILL);
    const int st = relay.wait();
    ASSERT_TRUE(killed_by(st, SIGKILL)) << describe_status(st) << " " << relay.read_rest();
  }
  Peer relay = spawn_relay(kN);
  consume(0, relay);
  if (HasFatalFailure()) return;
  // The relay exits by itself once everything is acknowledged and pruned.
  const std::int64_t give_up = now_us() + 60'000'000;
  while (!relay.try_wait()) {
    ASSERT_LT(now_us(), give_up) << "relay did not finish after the last acknowledgement";
    ::usleep(1000);
  }
  const int st = relay.wait();
  ASSERT_TRUE(exited_ok(st)) << describe_status(st) << " " << relay.read_rest();
  EXPECT_EQ(mark, kN);
  EXPECT_EQ(received, kN + duplicates);
  EXPECT_FALSE(ring.readable());
  EXPECT_EQ(ring.acked_seq(), kN);

  auto env = open_env(dir.path());
  ASSERT_TRUE(env);
  auto txn = storage::Txn::begin_read(*env);
  ASSERT_TRUE(txn);
  auto outbox = storage::Outbox::open(*txn);
  ASSERT_TRUE(outbox);
  EXPECT_EQ(outbox->last_seq(*txn, kChannel), kN) << "sequence numbers are not gap-free";
  std::uint64_t left = 0;
  outbox->scan(*txn, kChannel, 0, [&](std::uint64_t, std::span<const std::byte>) {
    ++left;
    return true;
  });
  EXPECT_EQ(left, 0u) << "outbox entries left after everything was acknowledged";
  auto entries = storage::Table::open(*txn, "outbox");
  ASSERT_TRUE(entries);
  EXPECT_EQ(entries->count(*txn), 0u);
  std::printf(
      "[ multiproc ] %s: %d relay kills, %llu messages, %llu duplicates skipped, "
      "%llu consumer sleeps\n",
      name(GetParam()), kills, (unsigned long long)kN, (unsigned long long)duplicates,
      (unsigned long long)ws.sleeps);
}

INSTANTIATE_TEST_SUITE_P(Durability, StorageMp,
                         ::testing::Values(Durability::fsync, Durability::process),
                         [](const auto& info) { return std::string(name(info.param)); });

}  // namespace
}  // namespace ringmart::mp
