#include "daemons/gateway/credentials.hpp"

#include <sodium.h>
#include <strings.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cstdio>
#include <cstdlib>
#include <utility>

namespace ringmart::gateway {
namespace {

namespace asio = boost::asio;

constexpr std::size_t kTokenBytes = 32;
constexpr std::size_t kTokenChars = 43;  // base64 of 32 bytes, no padding
constexpr int kBase64 = sodium_base64_VARIANT_URLSAFE_NO_PADDING;

void ensure_sodium() {
  // Idempotent and thread-safe (sodium_init(3)); -1 only when the system's
  // random source is unusable, and then no token can be drawn.
  if (sodium_init() < 0) {
    std::fprintf(stderr, "ringmart-gateway: libsodium cannot initialise\n");
    std::abort();
  }
}

TokenHash hash_of(const unsigned char* token, std::size_t n) {
  TokenHash out;
  crypto_generichash(reinterpret_cast<unsigned char*>(out.data()), out.size(), token, n, nullptr,
                     0);
  return out;
}

}  // namespace

PasswordCost PasswordCost::from(const runtime::Config& config) {
  PasswordCost c;
  c.opslimit = static_cast<unsigned long long>(std::clamp<std::int64_t>(
      config.get_int("accounts", "password_opslimit", static_cast<std::int64_t>(c.opslimit)),
      crypto_pwhash_OPSLIMIT_MIN, 64));
  const auto kib = std::clamp<std::int64_t>(
      config.get_int("accounts", "password_memlimit_kib",
                     static_cast<std::int64_t>(c.memlimit_bytes / 1024)),
      crypto_pwhash_MEMLIMIT_MIN / 1024, std::int64_t{4} << 20);  // 8 KiB .. 4 GiB
  c.memlimit_bytes = static_cast<std::size_t>(kib) * 1024;
  return c;
}

SessionToken new_session_token() {
  ensure_sodium();
  unsigned char raw[kTokenBytes];
  randombytes_buf(raw, sizeof raw);
  char text[kTokenChars + 1];
  sodium_bin2base64(text, sizeof text, raw, sizeof raw, kBase64);
  SessionToken t{std::string(text, kTokenChars), hash_of(raw, sizeof raw)};
  sodium_memzero(raw, sizeof raw);
  return t;
}

std::optional<TokenHash> session_token_hash(std::string_view token) {
  if (token.size() != kTokenChars) return std::nullopt;
  unsigned char raw[kTokenBytes];
  std::size_t n = 0;
  if (sodium_base642bin(raw, sizeof raw, token.data(), token.size(), nullptr, &n, nullptr,
                        kBase64) != 0 ||
      n != kTokenBytes) {
    return std::nullopt;
  }
  auto h = hash_of(raw, n);
  sodium_memzero(raw, sizeof raw);
  return h;
}

std::optional<std::string_view> bearer_token(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  if (v.size() < 7 || ::strncasecmp(v.data(), "bearer ", 7) != 0) return std::nullopt;
  v.remove_prefix(7);
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  if (v.empty()) return std::nullopt;
  return v;
}

PasswordHasher::PasswordHasher(asio::io_context& io, PasswordCost cost, unsigned threads,
                               std::size_t max_queued)
    : io_(io),
      cost_(cost),
      threads_(std::max(1u, threads)),
      max_queued_(std::max<std::size_t>(1, max_queued)),
      pool_(threads_) {
  ensure_sodium();
  // A decoy of the configured cost, from a random password nobody knows.
  unsigned char secret[32];
  randombytes_buf(secret, sizeof secret);
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(out, reinterpret_cast<const char*>(secret), sizeof secret,
                            cost_.opslimit, cost_.memlimit_bytes,
                            crypto_pwhash_ALG_ARGON2ID13) == 0) {
    decoy_ = out;
  }
  sodium_memzero(secret, sizeof secret);
}

PasswordHasher::~PasswordHasher() {
  // Queued jobs are dropped (their callers are being shut down); a hash
  // already running finishes, then the threads end.
  pool_.stop();
  pool_.join();
}

bool PasswordHasher::hash(std::string password,
                          std::function<void(std::optional<std::string>)> done) {
  if (queued_ >= max_queued_) return false;
  ++queued_;
  asio::post(pool_, [this, password = std::move(password), done = std::move(done)]() mutable {
    char out[crypto_pwhash_STRBYTES];
    std::optional<std::string> result;
    if (crypto_pwhash_str_alg(out, password.data(), password.size(), cost_.opslimit,
                              cost_.memlimit_bytes, crypto_pwhash_ALG_ARGON2ID13) == 0) {
      result = out;
    }
    sodium_memzero(password.data(), password.size());
    asio::post(io_, [this, result = std::move(result), done = std::move(done)] {
      --queued_;
      done(result);
    });
  });
  return true;
}

bool PasswordHasher::verify(std::string stored, std::string password,
                            std::function<void(bool)> done) {
  if (queued_ >= max_queued_) return false;
  ++queued_;
  const bool real = !stored.empty();
  if (!real) stored = decoy_;
  asio::post(pool_, [this, real, stored = std::move(stored), password = std::move(password),
                     done = std::move(done)]() mutable {
    const bool ok = !stored.empty() &&
                    crypto_pwhash_str_verify(stored.c_str(), password.data(), password.size()) == 0;
    sodium_memzero(password.data(), password.size());
    asio::post(io_, [this, ok = ok && real, done = std::move(done)] {
      --queued_;
      done(ok);
    });
  });
  return true;
}

}  // namespace ringmart::gateway
