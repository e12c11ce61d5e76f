@0xa251f2100945e830;
# Values stored by the user daemon in its LMDB environment (state_dir/user).
# Keys are big-endian integers (see user_store.hpp); these are the values.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("ringmart::user::records");
using Msg = import "/schemas/envelope.capnp";

# users: id -> User
struct User {
  id @0 :UInt64;
  name @1 :Text;
  email @2 :Text;
  pointsBalance @3 :Int64;   # points are whole units, never negative
  createdAtMs @4 :Int64;     # Unix ms (realtime clock of the daemon)
  passwordHash @5 :Text;     # crypto_pwhash_str (Argon2id) string; empty = guest, no login
  failedLogins @6 :UInt32;   # consecutive wrong passwords (reset by a login)
  lastFailureMs @7 :Int64;   # when the last one came (failures older than the window restart)
  lockedUntilMs @8 :Int64;   # logins refused until then (Unix ms), 0 = not locked
  sessionEpoch @9 :UInt64;   # bumped by a password change: older sessions no longer count
  defaultAddressId @10 :UInt64;  # 0 = none
  lastAddressId @11 :UInt64;     # address ids are per user, from 1
}

# sessions: BLAKE2b-256 of the token (32 bytes) -> Session
struct Session {
  userId @0 :UInt64;
  expiresAtMs @1 :Int64;
  createdAtMs @2 :Int64;
  sessionEpoch @3 :UInt64;   # the user's epoch when it opened
  tokenHash @4 :Data;        # the key again, compared in constant time after the lookup
}

# addresses: (user id, address id) -> StoredAddress
struct StoredAddress {
  address @0 :Msg.Address;
  createdAtMs @1 :Int64;
  updatedAtMs @2 :Int64;
}

enum HistoryReason {
  charge @0;    # chargePoints from the gateway
  order @1;     # deductPoints by an order saga
  restore @2;   # restorePoints (saga compensation)
}

# points_history: (user id, seq) -> HistoryEntry
struct HistoryEntry {
  delta @0 :Int64;           # signed change of the balance
  reason @1 :HistoryReason;
  orderId @2 :UInt64;        # 0 for charges
  atMs @3 :Int64;
}

enum DeductionState {
  deducted @0;  # the points were taken from the balance
  restored @1;  # given back, or a tombstone written by a restore that found nothing
  rejected @2;  # the command failed (code says why); nothing was taken
}

# point_deductions: order id -> Deduction (idempotency record of deductPoints)
struct Deduction {
  userId @0 :UInt64;         # 0 for a tombstone
  points @1 :Int64;          # points taken (0 unless the command succeeded)
  state @2 :DeductionState;
  code @3 :Msg.Code;         # the answer deductPoints gave (ok for a tombstone)
  atMs @4 :Int64;            # when the state last changed
}
