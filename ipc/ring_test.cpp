#include "ipc/ring.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

namespace ringmart::ipc {
namespace {

std::string unique_name(const char* tag) {
  return "/rm-test-" + std::to_string(::getpid()) + "-" + tag;
}

std::vector<std::byte> bytes(const std::string& s) {
  std::vector<std::byte> v(s.size());
  std::memcpy(v.data(), s.data(), s.size());
  return v;
}

std::string text(std::span<const std::byte> p) {
  return std::string(reinterpret_cast<const char*>(p.data()), p.size());
}

TEST(Ring, DeliversInOrderAndAcknowledges) {
  const auto name = unique_name("order");
  auto producer = Ring::create(name, 4096);
  ASSERT_TRUE(producer);
  auto consumer = Ring::open(name);
  ASSERT_TRUE(consumer);
  for (std::uint64_t i = 1; i <= 10; ++i) {
    ASSERT_TRUE(producer->try_push(bytes("msg" + std::to_string(i)), i));
  }
  RecordView r;
  for (std::uint64_t i = 1; i <= 10; ++i) {
    auto got = consumer->next(r);
    ASSERT_TRUE(got && *got);
    EXPECT_EQ(r.seq, i);
    EXPECT_EQ(text(r.payload), "msg" + std::to_string(i));
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(r.payload.data()) % 8, 0u);
  }
  auto none = consumer->next(r);
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none);
  EXPECT_EQ(producer->acked_seq(), 0u);
  consumer->commit(r.end_pos, 10);
  EXPECT_EQ(producer->acked_seq(), 10u);
  EXPECT_EQ(producer->fill_bytes(), 0u);
  ShmSegment::unlink(name);
}

TEST(Ring, RejectsWriteWhenFullAndAcceptsAfterCommit) {
  const auto name = unique_name("full");
  auto ring = Ring::create(name, 4096);
  ASSERT_TRUE(ring);
  const std::vector<std::byte> payload(1000 - 16);
  int pushed = 0;
  while (ring->try_push(payload, pushed + 1)) ++pushed;
  EXPECT_EQ(pushed, 4);
  auto err = ring->try_push(payload, 99);
  ASSERT_FALSE(err);
  EXPECT_EQ(err.error(), RingError::full);
  RecordView r;
  ASSERT_TRUE(*ring->next(r));
  ring->commit(r.end_pos, r.seq);
  EXPECT_TRUE(ring->try_push(payload, 5));
  ShmSegment::unlink(name);
}

TEST(Ring, RejectsRecordLargerThanQuarter) {
  const auto name = unique_name("large");
  auto ring = Ring::create(name, 4096);
  ASSERT_TRUE(ring);
  const std::vector<std::byte> payload(2000);
  auto err = ring->try_push(payload, 1);
  ASSERT_FALSE(err);
  EXPECT_EQ(err.error(), RingError::too_large);
  EXPECT_EQ(ring->fill_bytes(), 0u);
  ShmSegment::unlink(name);
}

TEST(Ring, WrapsAroundKeepingRecordsContiguous) {
  const auto name = unique_name("wrap");
  auto ring = Ring::create(name, 4096);
  ASSERT_TRUE(ring);
  RecordView r;
  // 700-byte records do not divide 4096: every few records a padding record wraps.
  for (std::uint64_t i = 1; i <= 100; ++i) {
    std::string s(700, static_cast<char>('a' + i % 26));
    ASSERT_TRUE(ring->try_push(bytes(s), i)) << i;
    auto got = ring->next(r);
    ASSERT_TRUE(got && *got);
    EXPECT_EQ(r.seq, i);
    EXPECT_EQ(text(r.payload), s);
    ring->commit(r.end_pos, r.seq);
  }
  ShmSegment::unlink(name);
}

TEST(Ring, PaddingInTheLastWordStaysInsideTheSegment) {
  const auto name = unique_name("lastword");
  auto ring = Ring::create(name, 4096);
  ASSERT_TRUE(ring);
  auto seg = ShmSegment::open(name);
  ASSERT_TRUE(seg);
  ASSERT_EQ(seg->size(), Ring::segment_size(4096));
  // The mapping extends to the page end; mark the bytes just past the segment.
  auto* past_end = static_cast<unsigned char*>(seg->data()) + seg->size();
  std::memset(past_end, 0xAB, 8);
  RecordView r;
  for (std::uint64_t i = 1; i <= 4; ++i) {
    ASSERT_TRUE(ring->try_push(std::vector<std::byte>(1000), i));
  }
  ASSERT_TRUE(ring->try_push(std::vector<std::byte>(8), 5));  // 4 x 1016 + 24 = 4088
  while (*ring->next(r)) ring->commit(r.end_pos, r.seq);
  ASSERT_TRUE(ring->try_push(bytes(std::string(100, 'z')), 6));  // pads the last 8 bytes
  for (int i = 0; i < 8; ++i) EXPECT_EQ(past_end[i], 0xAB) << i;
  auto got = ring->next(r);
  ASSERT_TRUE(got && *got);
  EXPECT_EQ(r.seq, 6u);
  EXPECT_EQ(text(r.payload), std::string(100, 'z'));
  ShmSegment::unlink(name);
}

TEST(Ring, RewindRereadsUncommittedRecords) {
  const auto name = unique_name("rewind");
  auto ring = Ring::create(name, 4096);
  ASSERT_TRUE(ring);
  ASSERT_TRUE(ring->try_push(bytes("a"), 1));
  ASSERT_TRUE(ring->try_push(bytes("b"), 2));
  RecordView r;
  ASSERT_TRUE(*ring->next(r));
  ASSERT_TRUE(*ring->next(r));
  ring->rewind();
  ASSERT_TRUE(*ring->next(r));
  EXPECT_EQ(text(r.payload), "a");
  ShmSegment::unlink(name);
}

TEST(Ring, DetectsCorruptRecordAndRequestsResend) {
  const auto name = unique_name("corrupt");
  auto ring = Ring::create(name, 4096);
  ASSERT_TRUE(ring);
  ASSERT_TRUE(ring->try_push(bytes("hello"), 1));
  // Damage the record's kind field in shared memory.
  auto seg = ShmSegment::open(name);
  ASSERT_TRUE(seg);
  auto* data = static_cast<std::byte*>(seg->data()) + 256;
  std::uint32_t bad = 77;
  std::memcpy(data + 4, &bad, 4);
  RecordView r;
  auto got = ring->next(r);
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error(), RingError::corrupt);
  ring->discard_and_request_resend();
  EXPECT_EQ(ring->fill_bytes(), 0u);
  EXPECT_TRUE(ring->take_resend_request());
  EXPECT_FALSE(ring->take_resend_request());
  EXPECT_EQ(ring->pushed_seq(), 0u);
  ShmSegment::unlink(name);
}

TEST(Ring, OpenRefusesUninitialisedSegment) {
  const auto name = unique_name("uninit");
  auto seg = ShmSegment::open_or_create(name, Ring::segment_size(4096));
  ASSERT_TRUE(seg);
  auto ring = Ring::open(name);
  ASSERT_FALSE(ring);
  EXPECT_EQ(ring.error(), make_error_code(RingError::bad_layout));
  ShmSegment::unlink(name);
}

TEST(Ring, CreateKeepsContentsOfValidRing) {
  const auto name = unique_name("keep");
  {
    auto ring = Ring::create(name, 4096);
    ASSERT_TRUE(ring);
    ASSERT_TRUE(ring->try_push(bytes("survives"), 7));
  }
  auto again = Ring::create(name, 4096);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->pushed_seq(), 7u);
  RecordView r;
  ASSERT_TRUE(*again->next(r));
  EXPECT_EQ(text(r.payload), "survives");
  ShmSegment::unlink(name);
}

}  // namespace
}  // namespace ringmart::ipc
