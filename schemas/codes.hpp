// ringmart::msg — names of the message codes, as the API and logs show them.
#pragma once

#include "schemas/envelope.capnp.h"

namespace ringmart::msg {

/// "OK", "OUT_OF_STOCK", ... for every msg::Code; "UNKNOWN" for a value this
/// build does not know (a newer peer). Thread-safe (static strings).
const char* code_name(Code code);

}  // namespace ringmart::msg
