// Two-process tests of the SPSC ring and the doorbell: the other side is
// always ringmart-mp-peer, a separate program started with fork + exec.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "ipc/ring.hpp"
#include "ipc/status_region.hpp"
#include "tests/multiprocess/harness.hpp"
#include "tests/multiprocess/mp_common.hpp"
#include "tests/multiprocess/mp_fixture.hpp"

namespace ringmart::mp {
namespace {

using ipc::RecordView;
using ipc::Ring;
using ipc::RingError;

class RingMp : public SharedMemoryTest<::testing::Test> {
 protected:
  static void print_waits(const char* who, const WaitStats& ws) {
    std::printf(
        "[ multiproc ] %s: sleeps=%llu woken=%llu timeouts=%llu stalls(lost wake-ups)=%llu "
        "cancelled=%llu\n",
        who, (unsigned long long)ws.sleeps, (unsigned long long)ws.woken,
        (unsigned long long)ws.timeouts, (unsigned long long)ws.stalls,
        (unsigned long long)ws.cancels);
  }
};

struct OrderedRun {
  WaitStats waits;
  std::uint64_t received = 0;
  std::uint64_t sum = 0;
  std::int64_t elapsed_us = 0;
  int status = -1;
  std::string done_line;
};

// The test process consumes seq 1..n in strict order from a producer peer,
// sleeping on its doorbell (100 ms timeouts) whenever the ring is empty.
// Gives up early once more than `max_stalls` sleeps ended by timeout with data waiting.
void consume_in_order(Ring& ring, ipc::DoorbellWord& word, Peer& producer, std::uint64_t n,
                      PayloadSpec spec, std::uint64_t max_stalls, OrderedRun& out) {
  const std::int64_t t0 = now_us();
  const std::int64_t deadline = t0 + 120'000'000;
  std::uint64_t expected = 1;
  RecordView r;
  while (expected <= n) {
    auto got = ring.next(r);
    ASSERT_TRUE(got) << "next() reported a corrupt record before seq " << expected;
    if (*got) {
      ASSERT_EQ(r.seq, expected) << "records out of order";
      ASSERT_EQ(reinterpret_cast<std::uintptr_t>(r.payload.data()) % 8, 0u);
      const char* why = verify_payload(r.seq, spec, r.payload);
      ASSERT_EQ(why, nullptr) << "seq " << r.seq << ": " << why;
      out.sum += payload_checksum(r.payload);
      ring.commit(r.end_pos, r.seq);
      ++expected;
      continue;
    }
    ASSERT_LT(now_us(), deadline) << "no progress; stuck at seq " << expected;
    if (auto st = producer.try_wait(); st && !ring.readable()) {
      FAIL() << "producer " << describe_status(*st) << " after only " << expected - 1 << " of " << n
             << " records";
    }
    sleep_until_readable(ring, word, 100, out.waits);
    ASSERT_LE(out.waits.stalls, max_stalls)
        << "sleeps ended by their 100 ms timeout although the producer had published: lost "
           "wake-ups (at seq "
        << expected << ")";
  }
  out.received = expected - 1;
  out.status = producer.wait();
  out.elapsed_us = now_us() - t0;
  std::string rest = producer.read_rest();
  out.done_line = done_line(rest);
}

// 1. Ordering across processes, one million records, doorbell sleeps.
TEST_F(RingMp, MillionRecordsArriveInOrderAndNoWakeUpIsLost) {
  constexpr std::uint64_t kN = 1'000'000;
  constexpr std::uint64_t kMaxStalls = 5;
  const PayloadSpec spec{16, 16};
  Ring ring = make_ring("order", 1 << 16);
  ASSERT_TRUE(ring.valid());
  // The producer pauses 200 us every 4096 records and busy-waits 0..30 us
  // after ~1/32 of its pushes, so that the consumer drains the ring and goes
  // to sleep on the doorbell often, at varying moments relative to the pushes.
  Peer producer = Peer::spawn({"produce", arg("ring", ring.name()), arg("status", status_name_),
                               arg("slot", kTestSlot), arg("first", 1), arg("last", kN),
                               arg("min", 16), arg("max", 16), arg("pause_every", 4096),
                               arg("pause_us", 200), arg("burst", 32), arg("spin_us", 30)});
  OrderedRun run;
  consume_in_order(ring, status_.slot(kTestSlot).doorbell, producer, kN, spec, kMaxStalls, run);
  if (HasFatalFailure()) return;
  print_waits("consumer", run.waits);
  std::printf("[ multiproc ] %llu records in %.3f s\n", (unsigned long long)run.received,
              run.elapsed_us / 1e6);
  EXPECT_TRUE(exited_ok(run.status)) << describe_status(run.status);
  EXPECT_EQ(run.received, kN);
  EXPECT_EQ(field(run.done_line, "sum"), run.sum) << "stream checksum differs: " << run.done_line;
  EXPECT_EQ(ring.acked_seq(), kN);
  EXPECT_EQ(ring.fill_bytes(), 0u);
  // The consumer really slept and was woken by the producer...
  EXPECT_GT(run.waits.woken, 10u);
  // ...and never timed out while a record was waiting. A correct eventcount
  // only appears to, if a process is descheduled for ~100 ms at the wrong
  // moment (tolerated a few times); a lost wake-up does it on every sleep.
  EXPECT_LE(run.waits.stalls, kMaxStalls) << "records waited for a timeout instead of a wake-up";
}

// Negative control for the stall counter above: a producer that publishes but
// never rings the doorbell must be detected.
TEST_F(RingMp, StallCounterDetectsProducerThatNeverRings) {
  constexpr std::uint64_t kN = 5000;
  Ring ring = make_ring("noring", 1 << 16);
  ASSERT_TRUE(ring.valid());
  Peer producer = Peer::spawn({"produce", arg("ring", ring.name()), arg("status", status_name_),
                               arg("first", 1), arg("last", kN), arg("ring_bell", 0),
                               arg("pause_every", 1000), arg("pause_us", 200)});
  OrderedRun run;
  consume_in_order(ring, status_.slot(kTestSlot).doorbell, producer, kN, {16, 16}, kN, run);
  if (HasFatalFailure()) return;
  print_waits("consumer of a silent producer", run.waits);
  EXPECT_EQ(run.received, kN);
  EXPECT_GE(run.waits.stalls, 1u);
}

// 2. Wrap-around with variable sizes (8..900 bytes) across processes.
TEST_F(RingMp, VariableSizeRecordsWrapAroundIntact) {
  constexpr std::uint64_t kN = 200'000;
  const PayloadSpec spec{8, 900};
  constexpr std::size_t kCapacity = 8192;
  Ring ring = make_ring("wrap", kCapacity);
  ASSERT_TRUE(ring.valid());
  Peer producer =
      Peer::spawn({"produce", arg("ring", ring.name()), arg("status", status_name_),
                   arg("first", 1), arg("last", kN), arg("min", spec.min), arg("max", spec.max)});
  // Same loop as consume_in_order, plus accounting of the wrap padding.
  const std::int64_t t0 = now_us();
  std::uint64_t expected = 1, sum = 0, pads = 0, pads8 = 0, exact_end = 0, prev_end = 0;
  WaitStats ws;
  RecordView r;
  while (expected <= kN) {
    auto got = ring.next(r);
    ASSERT_TRUE(got) << "next() reported a corrupt record before seq " << expected;
    if (!*got) {
      ASSERT_LT(now_us() - t0, 120'000'000) << "stuck at seq " << expected;
      if (auto st = producer.try_wait(); st && !ring.readable()) {
        FAIL() << "producer " << describe_status(*st) << " at seq " << expected;
      }
      sleep_until_readable(ring, status_.slot(kTestSlot).doorbell, 100, ws);
      continue;
    }
    ASSERT_EQ(r.seq, expected);
    ASSERT_EQ(reinterpret_cast<std::uintptr_t>(r.payload.data()) % 8, 0u);
    const char* why = verify_payload(r.seq, spec, r.payload);
    ASSERT_EQ(why, nullptr) << "seq " << r.seq << ": " << why;
    const std::uint64_t size = 16 + ((r.payload.size() + 7) & ~std::uint64_t{7});
    ASSERT_GE(r.end_pos - prev_end, size);
    if (const std::uint64_t pad = r.end_pos - prev_end - size; pad != 0) {
      ++pads;
      if (pad == 8) ++pads8;
      ASSERT_EQ((r.end_pos - size) % kCapacity, 0u) << "padding must end at the buffer's end";
    } else if (r.end_pos % kCapacity == 0) {
      ++exact_end;
    }
    prev_end = r.end_pos;
    sum += payload_checksum(r.payload);
    ring.commit(r.end_pos, r.seq);
    ++expected;
  }
  const int st = producer.wait();
  EXPECT_TRUE(exited_ok(st)) << describe_status(st);
  const std::string done = producer.read_rest();
  EXPECT_EQ(field(done_line(done), "sum"), sum) << "stream checksum differs: " << done;
  std::printf(
      "[ multiproc ] %llu records, %llu wraps with padding (%llu of 8 bytes), %llu "
      "records ending exactly at the end, %.3f s\n",
      (unsigned long long)kN, (unsigned long long)pads, (unsigned long long)pads8,
      (unsigned long long)exact_end, (now_us() - t0) / 1e6);
  print_waits("consumer", ws);
  EXPECT_GT(pads, 1000u);
  EXPECT_GT(pads8, 0u) << "the 8-byte tail (smaller than a record header) was never exercised";
  EXPECT_EQ(ring.fill_bytes(), 0u);
}

// 3. Back-pressure: the consumer process is SIGSTOPped, the producer fills the
// 4096-byte ring, sees `full`, and nothing is lost or overwritten.
TEST_F(RingMp, StoppedConsumerMakesRingFullWithoutLossOrOverwrite) {
  constexpr std::uint64_t kN = 30'000;
  constexpr int kCycles = 5;
  const PayloadSpec spec{8, 120};
  constexpr std::size_t kCapacity = 4096;
  constexpr std::size_t kMaxRecord = 16 + 120;
  Ring ring = make_ring("full", kCapacity);
  ASSERT_TRUE(ring.valid());
  Peer consumer = Peer::spawn({"consume", arg("ring", ring.name()), arg("status", status_name_),
                               arg("slot", kPeerSlot), arg("last", kN), arg("min", spec.min),
                               arg("max", spec.max)});
  ipc::Doorbell bell = status_.doorbell(kPeerSlot);
  std::vector<std::byte> buf;
  std::uint64_t seq = 1, sum = 0, fulls = 0;
  auto push_one = [&]() -> bool {
    make_payload(seq, spec, buf);
    auto r = ring.try_push(buf, seq);
    if (!r) {
      EXPECT_EQ(r.error(), RingError::full);
      ++fulls;
      return false;
    }
    sum += payload_checksum(buf);
    ++seq;
    bell.ring();
    return true;
  };
  auto push_until = [&](std::uint64_t last) {
    Backoff b;
    while (seq <= last) {
      if (push_one()) {
        b.reset();
      } else {
        ASSERT_FALSE(consumer.try_wait())
            << "consumer died: " << describe_status(*consumer.try_wait());
        b.pause();
      }
    }
  };

  for (int c = 0; c < kCycles; ++c) {
    push_until((c + 1) * kN / (kCycles + 1));
    if (HasFatalFailure()) return;
    consumer.signal(SIGSTOP);
    ASSERT_TRUE(consumer.wait_stopped()) << describe_status(consumer.wait());

    // Fill: bounded number of successful pushes, then `full`.
    std::uint64_t pushed_while_stopped = 0;
    while (push_one()) {
      ++pushed_while_stopped;
      ASSERT_LE(pushed_while_stopped, kCapacity / 24) << "pushes never became `full`";
    }
    const std::uint64_t fill = ring.fill_bytes();
    const std::uint64_t last_pushed = ring.pushed_seq();
    EXPECT_EQ(last_pushed, seq - 1);
    EXPECT_LE(fill, kCapacity);
    EXPECT_GE(fill, kCapacity - 2 * kMaxRecord) << "`full` reported with room left";

    // Stays full while the consumer is stopped: every retry is refused.
    for (int i = 0; i < 100; ++i) {
      make_payload(seq, spec, buf);
      auto r = ring.try_push(buf, seq);
      ASSERT_FALSE(r) << "a push succeeded while the consumer was stopped and the ring full";
      ASSERT_EQ(r.error(), RingError::full);
      ::usleep(200);
    }
    EXPECT_EQ(ring.fill_bytes(), fill);
    EXPECT_EQ(ring.pushed_seq(), last_pushed);

    // Peek (read-only, private cursor) at every record still in the ring:
    // consecutive, intact, up to the last pushed one.
    {
      auto view = Ring::open(ring.name());
      ASSERT_TRUE(view) << view.error().message();
      RecordView r;
      std::uint64_t first = 0, prev = 0, count = 0;
      for (;;) {
        auto got = view->next(r);
        ASSERT_TRUE(got) << "corrupt record in the full ring";
        if (!*got) break;
        if (count == 0) {
          first = r.seq;
        } else {
          ASSERT_EQ(r.seq, prev + 1) << "records in the full ring are not consecutive";
        }
        const char* why = verify_payload(r.seq, spec, r.payload);
        ASSERT_EQ(why, nullptr) << "seq " << r.seq << ": " << why;
        prev = r.seq;
        ++count;
      }
      ASSERT_GT(count, 0u);
      EXPECT_EQ(prev, last_pushed);
      EXPECT_LE(first, ring.acked_seq() + 1) << "records between the ack and the ring's start lost";
      std::printf(
          "[ multiproc ] cycle %d: consumer stopped; %llu pushes, then full; the ring "
          "holds seq %llu..%llu intact (%llu bytes)\n",
          c, (unsigned long long)pushed_while_stopped, (unsigned long long)first,
          (unsigned long long)prev, (unsigned long long)fill);
    }
    consumer.signal(SIGCONT);
  }
  push_until(kN);
  if (HasFatalFailure()) return;
  const int st = consumer.wait();
  const std::string out = consumer.read_rest();
  ASSERT_TRUE(exited_ok(st)) << describe_status(st) << ": " << out;
  EXPECT_EQ(field(done_line(out), "count"), kN) << out;
  EXPECT_EQ(field(done_line(out), "sum"), sum) << "the consumer's stream checksum differs: " << out;
  EXPECT_GE(fulls, static_cast<std::uint64_t>(kCycles));
  std::printf("[ multiproc ] producer saw full %llu times; consumer: %s\n",
              (unsigned long long)fulls, out.c_str());
}

// 4. Producer SIGKILLed at random moments while writing: the consumer never
// sees a torn record, and restarted producers (resuming from pushed_seq()+1)
// leave no gap; a duplicate of the last record is allowed.
TEST_F(RingMp, ProducerKilledMidWriteLeavesNoTornRecordAndNoGap) {
  constexpr int kRounds = 30;
  constexpr std::uint64_t kTail = 20'000;  // records of the final, unkilled producer
  const PayloadSpec spec{8, 900};
  Ring ring = make_ring("kill", 1 << 20);  // large: the producer does not block while left alone
  ASSERT_TRUE(ring.valid());
  ipc::DoorbellWord& word = status_.slot(kTestSlot).doorbell;
  std::uint64_t last = 0, received = 0, duplicates = 0, kills_while_running = 0;
  WaitStats ws;
  RecordView r;
  // Drains until `until_us`, or (until_us == 0) until seq `target` was seen.
  auto consume = [&](std::int64_t until_us, std::uint64_t target, Peer& producer) {
    const std::int64_t give_up = now_us() + 60'000'000;
    for (;;) {
      if (until_us != 0 ? now_us() >= until_us : last >= target) return;
      auto got = ring.next(r);
      ASSERT_TRUE(got) << "corrupt record after seq " << last;
      if (!*got) {
        ASSERT_LT(now_us(), give_up) << "stuck after seq " << last;
        if (until_us == 0) {
          if (auto st = producer.try_wait(); st && !ring.readable()) {
            FAIL() << "final producer " << describe_status(*st) << " at seq " << last;
          }
        }
        sleep_until_readable(ring, word, 1, ws);
        continue;
      }
      const char* why = verify_payload(r.seq, spec, r.payload);
      ASSERT_EQ(why, nullptr) << "torn/corrupt record seq " << r.seq << ": " << why;
      ASSERT_TRUE(r.seq == last + 1 || (r.seq == last && last != 0))
          << "seq " << r.seq << " after " << last << (r.seq > last ? " (gap)" : " (went back)");
      if (r.seq == last) ++duplicates;
      last = r.seq;
      ++received;
      ring.commit(r.end_pos, r.seq);
    }
  };
  for (int round = 0; round < kRounds; ++round) {
    const std::uint64_t pushed_before = ring.pushed_seq();
    Peer producer = Peer::spawn({"produce", arg("ring", ring.name()), arg("status", status_name_),
                                 arg("first", "resume"), arg("last", 0), arg("min", spec.min),
                                 arg("max", spec.max)});
    ASSERT_TRUE(producer.read_line(20'000).value_or("").starts_with("START"))
        << describe_status(producer.wait());
    // Consume, then leave the producer alone for a random "quiet" moment before
    // the kill: a consumer woken by the doorbell would kill the producer right
    // after its FUTEX_WAKE syscall (often preempted there, on the same core)
    // instead of at a random instruction such as in the middle of a record.
    const std::int64_t kill_at = now_us() + static_cast<std::int64_t>(uniform(3'000, 30'000));
    consume(kill_at - static_cast<std::int64_t>(uniform(100, 1'500)), 0, producer);
    if (HasFatalFailure()) return;
    sleep_until_us(kill_at);
    producer.signal(SIGKILL);
    const int st = producer.wait();
    ASSERT_TRUE(killed_by(st, SIGKILL))
        << "producer ended before the kill: " << describe_status(st);
    if (ring.pushed_seq() > pushed_before) ++kills_while_running;
  }
  const std::uint64_t target = ring.pushed_seq() + kTail;
  Peer producer = Peer::spawn({"produce", arg("ring", ring.name()), arg("status", status_name_),
                               arg("first", "resume"), arg("last", target), arg("min", spec.min),
                               arg("max", spec.max)});
  consume(0, target, producer);
  if (HasFatalFailure()) return;
  const int st = producer.wait();
  EXPECT_TRUE(exited_ok(st)) << describe_status(st);
  EXPECT_EQ(last, target);
  EXPECT_EQ(received, target + duplicates);
  EXPECT_FALSE(ring.readable());
  EXPECT_GT(kills_while_running, kRounds / 2);
  std::printf(
      "[ multiproc ] %d producer kills, %llu records, %llu duplicates (re-pushed after a "
      "kill between publish and pushed_seq)\n",
      kRounds, (unsigned long long)target, (unsigned long long)duplicates);
}

}  // namespace
}  // namespace ringmart::mp
