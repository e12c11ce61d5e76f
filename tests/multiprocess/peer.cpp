// ringmart-mp-peer — the other process of the multi-process tests.
//
//   ringmart-mp-peer ROLE key=value...
//
// Roles (see multiprocess tests for who plays what):
//   produce        push records first..last (first=resume: pushed_seq()+1; last=0: forever)
//   consume        strict-order consumer of 1..last, commits per record
//   inbox-consume  consumer applying records into LMDB with the inbox pattern
//   lmdb-txn       commits a transaction, then stops inside a second one (killed there)
//   lmdb-hold      keeps an environment open until killed
//   relay          outbox producer: append to the LMDB outbox, relay to the ring, prune
//
// Output goes to stdout with write(2) (unbuffered, so lines written before a
// SIGKILL are not lost): "READY", "DONE key=value..." or "FAIL reason".
// Exit codes: 0 done, 2 usage, 3 verification failure, 4 setup/IO error.
#include <signal.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "ipc/doorbell.hpp"
#include "ipc/ring.hpp"
#include "ipc/status_region.hpp"
#include "storage/lmdb.hpp"
#include "storage/outbox.hpp"
#include "tests/multiprocess/mp_common.hpp"

namespace {

using namespace ringmart;
using ringmart::mp::PayloadSpec;

void say(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void say(const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  const int n = std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n > 0) {
    [[maybe_unused]] auto w = ::write(1, buf, std::min<std::size_t>(n, sizeof buf - 1));
  }
}

[[noreturn]] void fail(int code, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
[[noreturn]] void fail(int code, const char* fmt, ...) {
  char buf[400];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  say("FAIL %s\n", buf);
  std::fprintf(stderr, "ringmart-mp-peer[%d]: FAIL %s\n", ::getpid(), buf);
  std::_Exit(code);
}

class Args {
 public:
  Args(int argc, char** argv) {
    for (int i = 2; i < argc; ++i) {
      std::string a = argv[i];
      const auto eq = a.find('=');
      if (eq == std::string::npos) fail(2, "bad argument '%s' (want key=value)", a.c_str());
      kv_[a.substr(0, eq)] = a.substr(eq + 1);
    }
  }
  std::string str(const char* key) const {
    auto it = kv_.find(key);
    if (it == kv_.end()) fail(2, "missing argument %s=", key);
    return it->second;
  }
  std::string str(const char* key, const char* def) const {
    auto it = kv_.find(key);
    return it == kv_.end() ? def : it->second;
  }
  std::uint64_t u64(const char* key, std::uint64_t def) const {
    auto it = kv_.find(key);
    return it == kv_.end() ? def : std::strtoull(it->second.c_str(), nullptr, 10);
  }
  std::uint64_t u64(const char* key) const { return std::strtoull(str(key).c_str(), nullptr, 10); }
  PayloadSpec spec() const { return {u64("min", 16), u64("max", 16)}; }
  storage::Durability durability() const {
    auto d = storage::parse_durability(str("durability", "process"));
    if (!d) fail(2, "bad durability");
    return *d;
  }

 private:
  std::map<std::string, std::string> kv_;
};

ipc::Ring open_ring(const Args& a) {
  auto r = ipc::Ring::open(a.str("ring"));
  if (!r) fail(4, "Ring::open(%s): %s", a.str("ring").c_str(), r.error().message().c_str());
  return std::move(*r);
}

ipc::StatusRegion open_status(const Args& a) {
  auto s = ipc::StatusRegion::open(a.str("status"));
  if (!s) fail(4, "StatusRegion::open: %s", s.error().message().c_str());
  return std::move(*s);
}

std::unique_ptr<storage::Env> open_env(const Args& a) {
  auto env = storage::Env::open({.path = a.str("dir"), .durability = a.durability()});
  if (!env) fail(4, "Env::open(%s): %s", a.str("dir").c_str(), env.error().message().c_str());
  return std::move(*env);
}

storage::Txn begin_write(storage::Env& env) {
  auto t = storage::Txn::begin_write(env);
  if (!t) fail(4, "begin_write: %s", t.error().message().c_str());
  return std::move(*t);
}

std::span<const std::byte> as_bytes(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

// ---- produce ---------------------------------------------------------------
int produce(const Args& a) {
  auto ring = open_ring(a);
  auto status = open_status(a);
  ipc::Doorbell bell = status.doorbell(a.u64("slot", mp::kTestSlot));
  const std::string first_arg = a.str("first", "1");
  const std::uint64_t first =
      first_arg == "resume" ? ring.pushed_seq() + 1 : std::strtoull(first_arg.c_str(), nullptr, 10);
  const std::uint64_t last = a.u64("last", 0);
  const std::uint64_t pause_every = a.u64("pause_every", 0);
  const std::uint64_t pause_us = a.u64("pause_us", 0);
  const bool ring_bell = a.u64("ring_bell", 1) != 0;
  // burst=B: after a push, with probability 1/B, busy-wait 0..spin_us microseconds
  // so that the consumer catches up and goes to sleep at varying moments.
  const std::uint64_t burst = a.u64("burst", 0);
  const std::uint64_t spin_us = a.u64("spin_us", 30);
  const PayloadSpec spec = a.spec();
  say("START first=%llu\n", static_cast<unsigned long long>(first));
  std::vector<std::byte> buf;
  std::uint64_t sum = 0;
  mp::Backoff backoff;
  for (std::uint64_t seq = first; last == 0 || seq <= last; ++seq) {
    mp::make_payload(seq, spec, buf);
    backoff.reset();
    for (;;) {
      auto r = ring.try_push(buf, seq);
      if (r) break;
      if (r.error() != ipc::RingError::full) {
        fail(3, "try_push(seq %llu): error %d", static_cast<unsigned long long>(seq),
             static_cast<int>(r.error()));
      }
      if (ring_bell) bell.ring();
      backoff.pause();
    }
    sum += mp::payload_checksum(buf);
    if (ring_bell) bell.ring();
    if (pause_every != 0 && seq % pause_every == 0) ::usleep(static_cast<useconds_t>(pause_us));
    if (burst != 0) {
      const std::uint64_t h = mp::mix64(seq ^ 0xb0057);
      if (h % burst == 0) {
        const std::int64_t until =
            mp::monotonic_us() + static_cast<std::int64_t>((h >> 32) % (spin_us + 1));
        while (mp::monotonic_us() < until) {
        }
      }
    }
  }
  say("DONE last=%llu sum=%llu\n", static_cast<unsigned long long>(last),
      static_cast<unsigned long long>(sum));
  return 0;
}

// ---- consume ---------------------------------------------------------------
int consume(const Args& a) {
  auto ring = open_ring(a);
  auto status = open_status(a);
  ipc::DoorbellWord& word = status.slot(a.u64("slot", mp::kPeerSlot)).doorbell;
  const std::uint64_t last = a.u64("last");
  const PayloadSpec spec = a.spec();
  mp::WaitStats ws;
  std::uint64_t expected = 1, sum = 0;
  ipc::RecordView r;
  while (expected <= last) {
    auto got = ring.next(r);
    if (!got) fail(3, "next() returned corrupt before seq %llu", (unsigned long long)expected);
    if (!*got) {
      mp::sleep_until_readable(ring, word, 100, ws);
      continue;
    }
    if (r.seq != expected) {
      fail(3, "order: got seq %llu, expected %llu", (unsigned long long)r.seq,
           (unsigned long long)expected);
    }
    if (const char* why = mp::verify_payload(r.seq, spec, r.payload)) {
      fail(3, "seq %llu: %s", (unsigned long long)r.seq, why);
    }
    sum += mp::payload_checksum(r.payload);
    ring.commit(r.end_pos, r.seq);
    ++expected;
  }
  say("DONE count=%llu sum=%llu sleeps=%llu woken=%llu timeouts=%llu stalls=%llu\n",
      (unsigned long long)(expected - 1), (unsigned long long)sum, (unsigned long long)ws.sleeps,
      (unsigned long long)ws.woken, (unsigned long long)ws.timeouts, (unsigned long long)ws.stalls);
  return 0;
}

// ---- inbox-consume ---------------------------------------------------------
// Applies each new record in one LMDB write transaction per batch: inbox mark,
// "applied" row per seq, effect counter, duplicate counter; ring.commit() only
// after the LMDB commit.
int inbox_consume(const Args& a) {
  auto ring = open_ring(a);
  auto status = open_status(a);
  ipc::DaemonSlot& me = status.slot(a.u64("slot", mp::kPeerSlot));
  me.pid.store(::getpid());
  const std::uint64_t last = a.u64("last");
  const std::uint64_t max_batch = std::max<std::uint64_t>(1, a.u64("max_batch", 16));
  const std::uint64_t ack_delay_us = a.u64("ack_delay_us", 0);
  const PayloadSpec spec = a.spec();
  auto env = open_env(a);
  storage::Inbox inbox;
  storage::Table effects, applied;
  {
    auto txn = begin_write(*env);
    auto i = storage::Inbox::open(txn);
    auto e = storage::Table::open(txn, "effects");
    auto ap = storage::Table::open(txn, "applied");
    if (!i || !e || !ap) fail(4, "opening tables");
    inbox = *i;
    effects = *e;
    applied = *ap;
    if (auto ec = txn.commit()) fail(4, "commit: %s", ec.message().c_str());
  }
  const auto kCount = storage::Key{}.u8(1);
  const auto kDups = storage::Key{}.u8(2);
  std::mt19937_64 rng(::getpid());
  mp::WaitStats ws;
  std::uint64_t mark;
  {
    auto txn = storage::Txn::begin_read(*env);
    if (!txn) fail(4, "begin_read: %s", txn.error().message().c_str());
    mark = inbox.mark(*txn, mp::kChannel);
  }
  std::vector<ipc::RecordView> batch;
  say("START mark=%llu\n", (unsigned long long)mark);
  for (;;) {
    batch.clear();
    const std::uint64_t want = 1 + rng() % max_batch;
    ipc::RecordView r;
    while (batch.size() < want) {
      auto got = ring.next(r);
      if (!got) fail(3, "next() returned corrupt after mark %llu", (unsigned long long)mark);
      if (!*got) break;
      batch.push_back(r);
    }
    if (batch.empty()) {
      if (mark >= last) break;
      mp::sleep_until_readable(ring, me.doorbell, 100, ws);
      continue;
    }
    auto txn = begin_write(*env);
    std::uint64_t count = effects.get_pod<std::uint64_t>(txn, kCount.view()).value_or(0);
    std::uint64_t dups_total = effects.get_pod<std::uint64_t>(txn, kDups.view()).value_or(0);
    std::uint64_t new_mark = inbox.mark(txn, mp::kChannel), dups = 0, n = 0;
    for (const auto& rec : batch) {
      if (rec.seq <= new_mark) {
        ++dups;  // redelivered: acknowledged and skipped
        continue;
      }
      if (rec.seq != new_mark + 1) {
        fail(3, "gap: got seq %llu after mark %llu", (unsigned long long)rec.seq,
             (unsigned long long)new_mark);
      }
      if (const char* why = mp::verify_payload(rec.seq, spec, rec.payload)) {
        fail(3, "seq %llu: %s", (unsigned long long)rec.seq, why);
      }
      const auto key = storage::Key{}.u64(rec.seq);
      if (applied.get(txn, key.view())) {
        fail(3, "seq %llu applied twice", (unsigned long long)rec.seq);
      }
      const std::uint8_t one = 1;
      if (auto ec = applied.put_pod(txn, key.view(), one)) fail(4, "put: %s", ec.message().c_str());
      ++count;
      ++n;
      new_mark = rec.seq;
    }
    std::error_code ec = inbox.set_mark(txn, mp::kChannel, new_mark);
    if (!ec) ec = effects.put_pod(txn, kCount.view(), count);
    if (!ec) ec = effects.put_pod(txn, kDups.view(), dups_total + dups);
    if (!ec) ec = txn.commit();
    if (ec) fail(4, "apply transaction: %s", ec.message().c_str());
    mark = new_mark;
    me.messages_in.fetch_add(n);
    me.duplicates.fetch_add(dups);
    me.commits.fetch_add(1);
    // Widens the window "committed in LMDB, not yet acknowledged in the ring"
    // so that the test's SIGKILLs land in it regularly.
    if (ack_delay_us != 0) ::usleep(static_cast<useconds_t>(rng() % ack_delay_us));
    ring.commit(batch.back().end_pos, batch.back().seq);
    if (mark >= last && !ring.readable()) break;
  }
  say("DONE mark=%llu sleeps=%llu woken=%llu timeouts=%llu\n", (unsigned long long)mark,
      (unsigned long long)ws.sleeps, (unsigned long long)ws.woken, (unsigned long long)ws.timeouts);
  return 0;
}

// ---- lmdb-txn --------------------------------------------------------------
// Commits round R's rows, then holds a read transaction (a reader slot that
// becomes stale) and stops inside a write transaction that would damage them.
int lmdb_txn(const Args& a) {
  const std::uint64_t round = a.u64("round");
  auto env = open_env(a);
  storage::Table kv;
  {
    auto txn = begin_write(*env);
    auto t = storage::Table::open(txn, "kv");
    if (!t) fail(4, "Table::open");
    kv = *t;
    if (auto ec = txn.commit()) fail(4, "commit: %s", ec.message().c_str());
  }
  const std::string pad(200, 'x');
  {
    auto txn = begin_write(*env);
    for (int i = 0; i < 100; ++i) {
      const std::string k = "c/" + std::to_string(round) + "/" + std::to_string(i);
      const std::string v = "v-" + std::to_string(round) + "-" + std::to_string(i) + pad;
      if (auto ec = kv.put(txn, as_bytes(k), as_bytes(v))) fail(4, "put: %s", ec.message().c_str());
    }
    if (auto ec = kv.put_pod(txn, as_bytes("meta/round"), round)) fail(4, "put meta");
    if (auto ec = txn.commit()) fail(4, "commit A: %s", ec.message().c_str());
  }
  auto reader = storage::Txn::begin_read(*env);
  if (!reader) fail(4, "begin_read: %s", reader.error().message().c_str());
  auto txn = begin_write(*env);
  const std::string big(1000, 'p');
  for (int i = 0; i < 1000; ++i) {
    const std::string k = "p/" + std::to_string(round) + "/" + std::to_string(i);
    if (auto ec = kv.put(txn, as_bytes(k), as_bytes(big))) fail(4, "put: %s", ec.message().c_str());
  }
  const std::string r = std::to_string(round);
  if (kv.put(txn, as_bytes("c/" + r + "/0"), as_bytes("garbage"))) fail(4, "put garbage");
  if (!kv.del(txn, as_bytes("c/" + r + "/1"))) fail(4, "del found nothing");
  if (round > 0 && !kv.del(txn, as_bytes("c/" + std::to_string(round - 1) + "/5"))) {
    fail(4, "del of the previous round found nothing");
  }
  const std::uint64_t bogus = 999;
  if (kv.put_pod(txn, as_bytes("meta/round"), bogus)) fail(4, "put meta");
  say("READY\n");
  for (;;) ::pause();  // killed here, inside the write transaction
}

// ---- lmdb-hold -------------------------------------------------------------
// Keeps the environment open (like a query library in the gateway), so that
// LMDB's lock file is not re-initialised when a killed writer's successor opens it.
int lmdb_hold(const Args& a) {
  auto env = open_env(a);
  say("READY\n");
  for (;;) ::pause();
}

// ---- relay -----------------------------------------------------------------
// Appends messages 1..min(last, append_limit) to the outbox (batch per committed transaction),
// relays the outbox to the ring from pushed_seq()+1, prunes what the consumer
// acknowledged; exits once everything is acknowledged and pruned.
int relay(const Args& a) {
  auto ring = open_ring(a);
  auto status = open_status(a);
  ipc::Doorbell bell = status.doorbell(a.u64("slot", mp::kTestSlot));
  ipc::DaemonSlot& me = status.slot(mp::kPeerSlot);
  me.pid.store(::getpid());
  const std::uint64_t last = a.u64("last");
  const std::uint64_t append_limit = std::min(last, a.u64("append_limit", last));
  const std::uint64_t batch = std::max<std::uint64_t>(1, a.u64("batch", 32));
  const std::uint64_t pace_us = a.u64("pace_us", 0);  // business rate: pause after each append
  const PayloadSpec spec = a.spec();
  auto env = open_env(a);
  storage::Outbox outbox;
  {
    auto txn = begin_write(*env);
    auto o = storage::Outbox::open(txn);
    if (!o) fail(4, "Outbox::open");
    outbox = *o;
    if (auto ec = txn.commit()) fail(4, "commit: %s", ec.message().c_str());
  }
  std::vector<std::byte> buf;
  std::uint64_t pruned_to = 0;
  mp::Backoff backoff;
  say("START\n");
  for (;;) {
    bool progress = false;
    std::uint64_t appended;
    {  // 1. business transaction: append to the outbox
      auto txn = begin_write(*env);
      appended = outbox.last_seq(txn, mp::kChannel);
      if (appended < append_limit) {
        for (std::uint64_t k = 0; k < batch && appended < append_limit; ++k) {
          auto seq = outbox.next_seq(txn, mp::kChannel);
          if (!seq) fail(4, "next_seq: %s", seq.error().message().c_str());
          if (*seq != appended + 1)
            fail(3, "next_seq gave %llu after %llu", (unsigned long long)*seq,
                 (unsigned long long)appended);
          mp::make_payload(*seq, spec, buf);
          if (auto ec = outbox.put(txn, mp::kChannel, *seq, buf)) fail(4, "outbox put");
          appended = *seq;
        }
        if (auto ec = txn.commit()) fail(4, "commit: %s", ec.message().c_str());
        progress = true;
        if (pace_us != 0) ::usleep(static_cast<useconds_t>(pace_us));
      }
    }
    {  // 2. relay: outbox -> ring, from pushed_seq()+1
      const std::uint64_t pushed = ring.pushed_seq();
      if (pushed < appended) {
        auto txn = storage::Txn::begin_read(*env);
        if (!txn) fail(4, "begin_read: %s", txn.error().message().c_str());
        std::uint64_t n = 0;
        outbox.scan(*txn, mp::kChannel, pushed,
                    [&](std::uint64_t seq, std::span<const std::byte> m) {
                      if (!ring.try_push(m, seq)) return false;  // full: retry later
                      ++n;
                      return true;
                    });
        if (n != 0) {
          bell.ring();
          me.messages_out.fetch_add(n);
          progress = true;
        }
      }
    }
    const std::uint64_t acked = ring.acked_seq();
    if (acked > pruned_to) {  // 3. prune what the consumer committed
      auto txn = begin_write(*env);
      outbox.prune(txn, mp::kChannel, acked);
      if (auto ec = txn.commit()) fail(4, "commit: %s", ec.message().c_str());
      pruned_to = acked;
      progress = true;
    }
    if (appended == last && acked == last) break;
    if (progress) {
      backoff.reset();
    } else {
      backoff.pause();
    }
  }
  say("DONE last=%llu\n", (unsigned long long)last);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s produce|consume|inbox-consume|lmdb-txn|relay key=value...\n",
                 argv[0]);
    return 2;
  }
  const std::string role = argv[1];
  const Args args(argc, argv);
  if (role == "produce") return produce(args);
  if (role == "consume") return consume(args);
  if (role == "inbox-consume") return inbox_consume(args);
  if (role == "lmdb-txn") return lmdb_txn(args);
  if (role == "lmdb-hold") return lmdb_hold(args);
  if (role == "relay") return relay(args);
  fail(2, "unknown role %s", role.c_str());
}
