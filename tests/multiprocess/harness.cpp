#include "tests/multiprocess/harness.hpp"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <stdexcept>
#include <utility>

#ifndef RINGMART_MP_PEER
#error "RINGMART_MP_PEER must name the ringmart-mp-peer executable"
#endif

namespace ringmart::mp {

Peer Peer::spawn(const std::vector<std::string>& args) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  std::vector<std::string> argv_s;
  argv_s.push_back(RINGMART_MP_PEER);
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : argv_s) argv.push_back(s.data());
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);
    ::dup2(fds[1], 1);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  Peer p;
  p.pid_ = pid;
  p.out_fd_ = fds[0];
  return p;
}

Peer::Peer(Peer&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)),
      out_fd_(std::exchange(o.out_fd_, -1)),
      status_(std::exchange(o.status_, std::nullopt)),
      buffered_(std::move(o.buffered_)) {}

Peer& Peer::operator=(Peer&& o) noexcept {
  if (this != &o) {
    release();
    pid_ = std::exchange(o.pid_, -1);
    out_fd_ = std::exchange(o.out_fd_, -1);
    status_ = std::exchange(o.status_, std::nullopt);
    buffered_ = std::move(o.buffered_);
  }
  return *this;
}

Peer::~Peer() { release(); }

void Peer::release() {
  if (pid_ > 0 && !status_) {
    ::kill(pid_, SIGKILL);
    wait();
  }
  if (out_fd_ >= 0) ::close(out_fd_);
  pid_ = -1;
  out_fd_ = -1;
  status_.reset();
}

void Peer::signal(int sig) const {
  if (pid_ > 0 && !status_) ::kill(pid_, sig);
}

bool Peer::wait_stopped() {
  if (status_) return false;
  int st = 0;
  for (;;) {
    const pid_t r = ::waitpid(pid_, &st, WUNTRACED);
    if (r == pid_) break;
    if (r < 0 && errno != EINTR) return false;
  }
  if (WIFSTOPPED(st)) return true;
  status_ = st;
  return false;
}

int Peer::wait() {
  while (!status_) {
    int st = 0;
    const pid_t r = ::waitpid(pid_, &st, 0);
    if (r == pid_) {
      status_ = st;
    } else if (r < 0 && errno != EINTR) {
      status_ = -1;
    }
  }
  return *status_;
}

std::optional<int> Peer::try_wait() {
  if (!status_) {
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) status_ = st;
  }
  return status_;
}

std::optional<std::string> Peer::read_line(int timeout_ms) {
  const std::int64_t deadline = now_us() + std::int64_t{timeout_ms} * 1000;
  for (;;) {
    if (auto nl = buffered_.find('\n'); nl != std::string::npos) {
      std::string line = buffered_.substr(0, nl);
      buffered_.erase(0, nl + 1);
      return line;
    }
    const std::int64_t left_ms = (deadline - now_us()) / 1000;
    if (left_ms <= 0 || out_fd_ < 0) return std::nullopt;
    pollfd pfd{out_fd_, POLLIN, 0};
    const int pr = ::poll(&pfd, 1, static_cast<int>(left_ms));
    if (pr < 0 && errno == EINTR) continue;
    if (pr <= 0) return std::nullopt;
    char buf[4096];
    const ssize_t n = ::read(out_fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return std::nullopt;  // EOF
    buffered_.append(buf, static_cast<std::size_t>(n));
  }
}

std::string Peer::read_rest() {
  std::string out = std::exchange(buffered_, {});
  if (out_fd_ < 0) return out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(out_fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

std::string describe_status(int st) {
  if (st == -1) return "unknown (waitpid failed)";
  if (WIFEXITED(st)) return "exited " + std::to_string(WEXITSTATUS(st));
  if (WIFSIGNALED(st)) return "killed by signal " + std::to_string(WTERMSIG(st));
  return "status " + std::to_string(st);
}

bool exited_ok(int st) { return st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0; }
bool killed_by(int st, int sig) { return st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == sig; }

std::string done_line(const std::string& output) {
  const auto at = output.rfind("DONE");
  if (at == std::string::npos) return {};
  return output.substr(at, output.find('\n', at) - at);
}

std::optional<std::uint64_t> field(const std::string& line, const std::string& key) {
  const std::string k = " " + key + "=";
  const auto at = (" " + line).find(k);
  if (at == std::string::npos) return std::nullopt;
  return std::strtoull(line.c_str() + at + k.size() - 1, nullptr, 10);
}

std::mt19937_64& rng() {
  static std::mt19937_64 r = [] {
    std::uint64_t seed;
    if (const char* s = std::getenv("RINGMART_MP_SEED")) {
      seed = std::strtoull(s, nullptr, 10);
    } else {
      seed = static_cast<std::uint64_t>(now_us()) ^ (static_cast<std::uint64_t>(::getpid()) << 32);
    }
    std::printf("[ multiproc ] RINGMART_MP_SEED=%llu\n", static_cast<unsigned long long>(seed));
    return std::mt19937_64(seed);
  }();
  return r;
}

std::uint64_t uniform(std::uint64_t lo, std::uint64_t hi) {
  return std::uniform_int_distribution<std::uint64_t>(lo, hi)(rng());
}

std::int64_t now_us() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
}

void sleep_until_us(std::int64_t t) {
  timespec ts{};
  ts.tv_sec = t / 1'000'000;
  ts.tv_nsec = (t % 1'000'000) * 1000;
  while (::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

}  // namespace ringmart::mp
