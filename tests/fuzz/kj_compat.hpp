// Forced into every translation unit of the `fuzz` preset (-include): Debian
// 12's Cap'n Proto 0.9 headers compare `const char*` with kj::StringPtr and
// kj::String through C++20's reversed operator== candidates, which clang >= 16
// drops when the class also declares operator!= (P2468R2), so clang 19 (the
// first Debian 12 clang with std::expected) rejects capnp/blob.h. These are
// the operators kj itself declares before C++20 (kj/string.h,
// `#if !__cpp_impl_three_way_comparison`). GCC builds do not use this file.
// The preset also sets BOOST_ASIO_HAS_CO_AWAIT / _STD_COROUTINE: Boost 1.74's
// Asio detects coroutines only for GCC or libc++, not clang with libstdc++.
#pragma once

#include <kj/string.h>

// The compiler's probe (CMake's try-compile, no -std flag) builds as C++17,
// where kj declares these itself: add them only where kj does not.
#if __cpp_impl_three_way_comparison
namespace kj {
// The conversion is spelled out: `b == a` would pick these very operators as
// reversed candidates and recurse.
inline bool operator==(const char* a, const StringPtr& b) { return b == StringPtr(a); }
inline bool operator!=(const char* a, const StringPtr& b) { return !(b == StringPtr(a)); }
inline bool operator==(const char* a, const String& b) { return b == StringPtr(a); }
inline bool operator!=(const char* a, const String& b) { return !(b == StringPtr(a)); }
}  // namespace kj
#endif
