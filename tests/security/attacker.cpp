// ringmart-attacker — what another local user can try against a running
// ringmart, for tests/security. The test runs it under a second uid
// (setpriv --reuid=65534 --regid=65534 --clear-groups); it never runs as part
// of the product.
//
//   squat NAME SIZE            create NAME in /dev/shm, mode 0666, SIZE bytes of 0xA5
//   plant-ring NAME CAPACITY SEQ USER AMOUNT
//                              create NAME (mode 0600) as a valid ring holding one
//                              forged gateway -> user chargePoints record
//   probe NAME...              try to read, write and unlink each segment
//   read-file PATH             try to read a file
//
// Exit codes: 0 the attack was refused everywhere (probe, read-file) or the
// segment was made (squat, plant-ring); 10 an attack succeeded (a segment or
// file was opened, or a name removed); 2 usage; 1 another error.
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "ipc/ring.hpp"
#include "schemas/envelope.capnp.h"

using namespace ringmart;

namespace {

int squat(const std::string& name, std::size_t size) {
  const int fd = ::shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL, 0666);
  if (fd < 0) {
    std::printf("squat %s: %s\n", name.c_str(), std::strerror(errno));
    return 1;
  }
  ::fchmod(fd, 0666);  // past the umask: anyone may use it
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) return 1;
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) return 1;
  std::memset(p, 0xA5, size);
  ::munmap(p, size);
  std::printf("squat %s: created\n", name.c_str());
  return 0;
}

int plant_ring(const std::string& name, std::size_t capacity, std::uint64_t seq, std::uint64_t user,
               std::int64_t amount) {
  // Mode 0600, as the service's own segments: only the owner check tells
  // them apart.
  auto ring = ipc::Ring::create(name, capacity);
  if (!ring) {
    std::printf("plant-ring %s: %s\n", name.c_str(), ring.error().message().c_str());
    return 1;
  }
  capnp::MallocMessageBuilder b;
  auto e = b.initRoot<msg::Envelope>();
  e.setMessageId((1ull << 62) | seq);
  e.setSender(msg::DaemonId::GATEWAY);
  e.setReceiver(msg::DaemonId::USER);
  e.setSeq(seq);
  auto charge = e.initPayload().initChargePoints();
  charge.setUserId(user);
  charge.setAmount(amount);
  auto words = capnp::messageToFlatArray(b);
  auto bytes = words.asBytes();
  if (!ring->try_push({reinterpret_cast<const std::byte*>(bytes.begin()), bytes.size()}, seq)) {
    std::printf("plant-ring %s: push failed\n", name.c_str());
    return 1;
  }
  std::printf("plant-ring %s: forged chargePoints user %llu amount %lld seq %llu\n", name.c_str(),
              static_cast<unsigned long long>(user), static_cast<long long>(amount),
              static_cast<unsigned long long>(seq));
  return 0;
}

/// One line per attempt: "<what> <name>: refused (<errno>)" or "... OPENED".
bool attempt(const char* what, const std::string& name, bool ok, int err) {
  std::printf("%s %s: %s%s%s\n", what, name.c_str(), ok ? "SUCCEEDED" : "refused (",
              ok ? "" : std::strerror(err), ok ? "" : ")");
  return ok;
}

int probe(const std::vector<std::string>& names) {
  bool any = false;
  for (const auto& name : names) {
    int fd = ::shm_open(name.c_str(), O_RDONLY, 0);
    any |= attempt("read", name, fd >= 0, errno);
    if (fd >= 0) ::close(fd);
    fd = ::shm_open(name.c_str(), O_RDWR, 0);
    any |= attempt("write", name, fd >= 0, errno);
    if (fd >= 0) ::close(fd);
    const int rc = ::shm_unlink(name.c_str());
    any |= attempt("unlink", name, rc == 0, errno);
    // Replacing needs the name gone; O_EXCL on the live name must fail too.
    fd = ::shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL, 0666);
    any |= attempt("replace", name, fd >= 0, errno);
    if (fd >= 0) ::close(fd);
  }
  return any ? 10 : 0;
}

int read_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  const bool ok = fd >= 0;
  attempt("read-file", path, ok, errno);
  if (fd >= 0) ::close(fd);
  return ok ? 10 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> a(argv + 1, argv + argc);
  if (a.size() == 3 && a[0] == "squat") return squat(a[1], std::stoul(a[2]));
  if (a.size() == 6 && a[0] == "plant-ring") {
    return plant_ring(a[1], std::stoul(a[2]), std::stoull(a[3]), std::stoull(a[4]),
                      std::stoll(a[5]));
  }
  if (a.size() >= 2 && a[0] == "probe") return probe({a.begin() + 1, a.end()});
  if (a.size() == 2 && a[0] == "read-file") return read_file(a[1]);
  std::fprintf(stderr,
               "usage: ringmart-attacker squat NAME SIZE | plant-ring NAME CAPACITY SEQ USER "
               "AMOUNT | probe NAME... | read-file PATH\n");
  return 2;
}
