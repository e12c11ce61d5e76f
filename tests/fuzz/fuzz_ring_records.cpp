// libFuzzer target: a ring segment whose header positions and data area hold
// arbitrary bytes (a corrupted segment, or a producer gone mad), read by the
// consumer side of ipc::Ring exactly as the runtime reads it: next() until it
// reports nothing more or corruption, commit(), discard_and_request_resend().
// Findings: any read outside the mapping (ASan), UB, a record handed out that
// does not lie inside the data area, or a reader that loops forever.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "ipc/ring.hpp"

namespace {

volatile std::uint64_t sink = 0;

using namespace ringmart::ipc;

constexpr std::size_t kCapacity = 4096;

struct Fixture {
  std::string name = "/rm-fuzz-" + std::to_string(::getpid()) + "-ring";
  Ring ring;
  ShmSegment view;               // a second mapping to corrupt the segment through
  const std::byte* ring_area{};  // the data area in the ring's own mapping
  Fixture() {
    ShmSegment::unlink(name);
    auto r = Ring::create(name, kCapacity);
    if (!r) std::abort();
    ring = std::move(*r);
    auto v = ShmSegment::open(name);
    if (!v) std::abort();
    view = std::move(*v);
    // The ring's mapping is the other one of this name (/proc/self/maps).
    std::ifstream maps("/proc/self/maps");
    std::string line;
    while (std::getline(maps, line)) {
      if (line.find("/dev/shm" + name) == std::string::npos) continue;
      const auto start = std::stoull(line.substr(0, line.find('-')), nullptr, 16);
      if (start != reinterpret_cast<std::uintptr_t>(view.data())) {
        ring_area = reinterpret_cast<const std::byte*>(start) + 256;
      }
    }
    if (!ring_area) std::abort();
    ShmSegment::unlink(name);  // the mappings stay; nothing is left in /dev/shm
  }
};

void require(bool ok) {
  if (!ok) std::abort();
}

template <class T>
T take(const std::uint8_t*& p, std::size_t& left) {
  T v{};
  const auto n = left < sizeof v ? left : sizeof v;
  std::memcpy(&v, p, n);
  p += n;
  left -= n;
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Fixture f;
  auto* base = static_cast<std::byte*>(f.view.data());
  auto* header = static_cast<RingHeader*>(f.view.data());
  std::byte* area = base + 256;
  // Layout of the input: read_pos (u32), write_pos as a signed 16-bit offset
  // from it (positions near each other, so records get parsed), then the
  // data area.
  const std::uint8_t* p = data;
  std::size_t left = size;
  const std::uint64_t read_pos = take<std::uint32_t>(p, left);
  // Signed: a write position behind the read position is corruption too.
  const std::uint64_t write_pos =
      read_pos + static_cast<std::uint64_t>(static_cast<std::int64_t>(take<std::int16_t>(p, left)));
  std::memset(area, 0, kCapacity);
  std::memcpy(area, p, left < kCapacity ? left : kCapacity);
  header->read_pos.store(read_pos);
  header->write_pos.store(write_pos);
  header->acked_seq.store(0);
  f.ring.rewind();  // the consumer's cursor restarts at read_pos

  RecordView r;
  std::uint64_t sum = 0;
  for (int records = 0; records < 1024; ++records) {
    auto more = f.ring.next(r);
    if (!more) {
      require(more.error() == RingError::corrupt);
      f.ring.discard_and_request_resend();
      require(f.ring.fill_bytes() == 0);
      break;
    }
    if (!*more) break;
    const auto* start = reinterpret_cast<const std::byte*>(r.payload.data());
    // Shared memory is not ASan's: the bounds are checked here.
    require(start >= f.ring_area && start + r.payload.size() <= f.ring_area + kCapacity);
    require(reinterpret_cast<std::uintptr_t>(start) % 8 == 0);
    for (auto b : r.payload) sum += static_cast<std::uint8_t>(b);
    f.ring.commit(r.end_pos, r.seq);
  }
  sink = sum;  // keeps the reads
  return 0;
}
