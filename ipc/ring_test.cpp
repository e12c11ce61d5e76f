#include "ipc/ring.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
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
  auto seg = ShmSegment::create(name, Ring::segment_size(4096));
  ASSERT_TRUE(seg);
  auto ring = Ring::open(name);
  ASSERT_FALSE(ring);
  EXPECT_EQ(ring.error(), make_error_code(RingError::bad_layout));
  ShmSegment::unlink(name);
}

TEST(Ring, OpenRefusesCapacityThatDoesNotMatchTheSegment) {
  const auto name = unique_name("capacity");
  auto ring = Ring::create(name, 4096);
  ASSERT_TRUE(ring);
  auto seg = ShmSegment::open(name);
  ASSERT_TRUE(seg);
  static_cast<RingHeader*>(seg->data())->capacity = 1u << 20;  // would read past the mapping
  auto again = Ring::open(name);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error(), make_error_code(RingError::bad_layout));
  ShmSegment::unlink(name);
}

TEST(Ring, CreateNeverAdoptsAnExistingName) {
  const auto name = unique_name("exists");
  {
    auto ring = Ring::create(name, 4096);
    ASSERT_TRUE(ring);
    ASSERT_TRUE(ring->try_push(bytes("old"), 7));
  }
  auto again = Ring::create(name, 4096);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error(), std::errc::file_exists);
  ShmSegment::unlink(name);
  auto fresh = Ring::create(name, 4096);
  ASSERT_TRUE(fresh) << fresh.error().message();
  EXPECT_EQ(fresh->pushed_seq(), 0u);
  RecordView r;
  EXPECT_FALSE(*fresh->next(r));
  ShmSegment::unlink(name);
}

TEST(ShmSegment, OpenRefusesSegmentOfAnotherOwner) {
  const auto name = unique_name("owner");
  ASSERT_TRUE(Ring::create(name, 4096));
  auto seg = ShmSegment::open(name, ::geteuid() + 1);
  ASSERT_FALSE(seg);
  EXPECT_EQ(seg.error(), make_error_code(ShmError::foreign_owner));
  auto ring = Ring::open(name, ::geteuid() + 1);
  ASSERT_FALSE(ring);
  EXPECT_EQ(ring.error(), make_error_code(ShmError::foreign_owner));
  EXPECT_TRUE(Ring::open(name, ::geteuid()));
  ShmSegment::unlink(name);
}

TEST(ShmSegment, OpenRefusesSegmentOthersCanWrite) {
  const auto name = unique_name("mode");
  {
    // What a squatter leaves behind: a world-writable segment of the right size.
    const int fd = ::shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::fchmod(fd, 0666), 0);
    ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(Ring::segment_size(4096))), 0);
    ::close(fd);
  }
  auto seg = ShmSegment::open(name);
  ASSERT_FALSE(seg);
  EXPECT_EQ(seg.error(), make_error_code(ShmError::unsafe_mode));
  ShmSegment::unlink(name);
}

TEST(ShmSegment, OpenRefusesEmptySegment) {
  const auto name = unique_name("empty");
  const int fd = ::shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  ASSERT_GE(fd, 0);
  ::close(fd);
  auto seg = ShmSegment::open(name);
  ASSERT_FALSE(seg);
  EXPECT_EQ(seg.error(), make_error_code(ShmError::empty));
  ShmSegment::unlink(name);
}

TEST(ShmSegment, TheOperatorsGroupMayShareASegmentNoOtherGroupAndNobodyElse) {
  // Root (CI) may give a segment any group; a member may give its own.
  const gid_t operators = ::geteuid() == 0 ? 4242 : ::getegid();
  const auto name = unique_name("group");
  auto seg = ShmSegment::create(name, 4096, operators);
  ASSERT_TRUE(seg) << seg.error().message();
  struct stat st {};
  const int fd = ::shm_open(name.c_str(), O_RDONLY, 0);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::fstat(fd, &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0660u);
  EXPECT_EQ(st.st_gid, operators);
  // Opened by whoever expects that group; refused by a process that expects
  // none (a segment of the service's shared with nobody), or another group.
  EXPECT_TRUE(ShmSegment::open(name, ShmAccess(::geteuid(), operators)));
  auto none = ShmSegment::open(name, ShmAccess(::geteuid()));
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error(), make_error_code(ShmError::unsafe_mode));
  auto other = ShmSegment::open(name, ShmAccess(::geteuid(), operators + 1));
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error(), make_error_code(ShmError::unsafe_mode));
  // The operators' group with a bit for others too (a squatter's chmod): refused.
  ASSERT_EQ(::fchmod(fd, 0664), 0);
  auto wide = ShmSegment::open(name, ShmAccess(::geteuid(), operators));
  ASSERT_FALSE(wide);
  EXPECT_EQ(wide.error(), make_error_code(ShmError::unsafe_mode));
  ::close(fd);
  ShmSegment::unlink(name);
}

}  // namespace
}  // namespace ringmart::ipc
