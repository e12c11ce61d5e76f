// ringmart::msg — names of the message codes, as the API and logs show them.
#pragma once

#include "schemas/envelope.capnp.h"

namespace ringmart::msg {

/// "OK", "OUT_OF_STOCK", ... for every msg::Code; "UNKNOWN" for a value this
/// build does not know (a newer peer). Thread-safe (static strings).
const char* code_name(Code code);

/// The schema's name of a payload type ("createOrder", "inventoryDeducted"),
/// from the envelope's compiled schema (no list to keep in step); "unknown"
/// for a type this build does not know. Thread-safe.
const char* payload_name(Envelope::Payload::Which which);

}  // namespace ringmart::msg
