// ringmart::gateway — passwords and session tokens (libsodium).
//
// Passwords are hashed with Argon2id through crypto_pwhash_str(3) and checked
// with crypto_pwhash_str_verify (libsodium's "Password hashing" API,
// https://doc.libsodium.org/password_hashing/default_phf; RFC 9106 for
// Argon2). Both cost tens of milliseconds and tens of MiB by design, so they
// run on PasswordHasher's own threads, never on the gateway's io thread: a
// burst of logins slows logins, not orders.
//
// A session token is 256 bits from randombytes_buf, given to the client in
// base64url without padding (RFC 4648 §5, 43 characters); the user daemon
// stores only its BLAKE2b-256 hash (crypto_generichash), so its LMDB file
// grants nothing to whoever reads it.
#pragma once

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "daemons/common/config.hpp"
#include "daemons/user/user_store.hpp"

namespace ringmart::gateway {

/// The cost of one password hash: `[accounts] password_opslimit` (passes,
/// default crypto_pwhash_OPSLIMIT_INTERACTIVE = 2) and `password_memlimit_kib`
/// (default crypto_pwhash_MEMLIMIT_INTERACTIVE = 64 MiB), clamped to
/// libsodium's minimum and maximum. A hash stores its own cost, so a change
/// applies to new passwords and old ones still verify.
struct PasswordCost {
  unsigned long long opslimit = 2;
  std::size_t memlimit_bytes = 64u << 20;

  static PasswordCost from(const runtime::Config& config);
};

using TokenHash = std::array<std::byte, user::kTokenHashBytes>;

/// A new session token and its hash.
struct SessionToken {
  std::string token;  ///< base64url, 43 characters
  TokenHash hash;
};

/// Draws a token (randombytes_buf: getrandom(2)). Thread-safe.
SessionToken new_session_token();

/// The hash of a token a client presents; nullopt when it is not 43
/// base64url characters (so it cannot be one of ours). Thread-safe, pure.
std::optional<TokenHash> session_token_hash(std::string_view token);

/// The token of an `Authorization: Bearer <token>` header value (RFC 6750
/// §2.1; the scheme's case does not matter), or nullopt.
std::optional<std::string_view> bearer_token(std::string_view authorization);

/// Runs password hashing and verification on `threads` threads of its own and
/// delivers each result on `io` (the caller's thread). At most `max_queued`
/// jobs wait or run at once: hash() and verify() return false beyond that
/// (the caller answers 503), which bounds memory to threads × memlimit and
/// the queue to max_queued passwords.
///
/// Thread-safety: call hash(), verify() and queued() from the io thread only.
/// The destructor drops queued jobs and waits for running ones (their results
/// are dropped).
class PasswordHasher {
 public:
  PasswordHasher(boost::asio::io_context& io, PasswordCost cost, unsigned threads,
                 std::size_t max_queued);
  ~PasswordHasher();
  PasswordHasher(const PasswordHasher&) = delete;
  PasswordHasher& operator=(const PasswordHasher&) = delete;

  /// crypto_pwhash_str of `password` at the configured cost; `done` gets the
  /// string, or nullopt when libsodium could not allocate the memory.
  bool hash(std::string password, std::function<void(std::optional<std::string>)> done);
  /// crypto_pwhash_str_verify of `password` against `stored`; an empty
  /// `stored` (no account, or a guest) verifies against a hash of the same
  /// cost that matches nothing, so an unknown e-mail takes as long as a
  /// wrong password and does not reveal the account's absence.
  bool verify(std::string stored, std::string password, std::function<void(bool)> done);
  /// Jobs waiting or running.
  std::size_t queued() const { return queued_; }
  unsigned threads() const { return threads_; }

 private:
  boost::asio::io_context& io_;
  PasswordCost cost_;
  unsigned threads_;
  std::size_t max_queued_;
  std::size_t queued_ = 0;
  std::string decoy_;  ///< a hash no password is checked against successfully
  boost::asio::thread_pool pool_;
};

}  // namespace ringmart::gateway
