@0xab72fa3e8a52335d;
# Values stored by the product daemon in its LMDB environment (state_dir/product).
# Keys are described in product_store.hpp; these are the values.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("ringmart::product::records");
using Msg = import "/schemas/envelope.capnp";

# products: id -> Product
struct Product {
  id @0 :UInt64;
  name @1 :Text;
  category @2 :Text;
  priceCents @3 :Int64;
  stock @4 :Int64;           # units on hand, never negative
  createdAtMs @5 :Int64;     # Unix ms
  receivedUnits @6 :Int64;   # initial stock + every adjustStock delta: what stock would be
                             # had nothing been sold (the invariant checker's ledger)
  unlisted @7 :Bool;         # DELETE /v1/products/{id}: not orderable, not listed, still readable
}

enum ReservationState {
  deducted @0;  # the lines were taken from stock
  restored @1;  # given back, or a tombstone written by a restore that found nothing
  rejected @2;  # the command failed (code/detail say why); nothing was taken
}

struct ReservedLine {
  productId @0 :UInt64;
  quantity @1 :Int64;
}

# reservations: order id -> Reservation (idempotency record of deductInventory)
struct Reservation {
  state @0 :ReservationState;
  code @1 :Msg.Code;         # the answer deductInventory gave (ok for a tombstone)
  detail @2 :Text;
  lines @3 :List(ReservedLine);  # one per product, quantities summed; empty unless deducted
  atMs @4 :Int64;            # when the state last changed
}
