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
