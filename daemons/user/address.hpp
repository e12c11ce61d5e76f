// ringmart::user — postal addresses: the fields of an address-book entry
// and of an order's shipping snapshot, and their validation (pure).
//
// Thread-safety: pure functions and constant data, safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "schemas/envelope.capnp.h"

namespace ringmart::user {

/// A postal address; strings are UTF-8. `country` is an ISO 3166-1 alpha-2
/// code in upper case ("BR", "DE").
struct Address {
  std::string recipient{};    ///< 1..kMaxAddressLineChars characters
  std::string phone{};        ///< 0..kMaxPhoneBytes of digits, spaces and "+-()."
  std::string line1{};        ///< 1..kMaxAddressLineChars characters
  std::string line2{};        ///< 0..kMaxAddressLineChars characters
  std::string city{};         ///< 1..kMaxCityChars characters
  std::string region{};       ///< 0..kMaxCityChars characters (state, province)
  std::string postal_code{};  ///< 0..kMaxPostalCodeBytes of letters, digits, spaces and '-'
  std::string country{};      ///< ISO 3166-1 alpha-2

  bool operator==(const Address&) const = default;
};

/// One bit per Address member, in declaration order (= the Cap'n Proto
/// field numbers of msg::Address): the fieldMask of an updateAddress.
enum AddressField : std::uint32_t {
  kRecipient = 1u << 0,
  kPhone = 1u << 1,
  kLine1 = 1u << 2,
  kLine2 = 1u << 3,
  kCity = 1u << 4,
  kRegion = 1u << 5,
  kPostalCode = 1u << 6,
  kCountry = 1u << 7,
  kAllAddressFields = (1u << 8) - 1,
};

inline constexpr std::size_t kMaxAddressLineChars = 200;
inline constexpr std::size_t kMaxCityChars = 100;
inline constexpr std::size_t kMaxPhoneBytes = 32;
inline constexpr std::size_t kMaxPostalCodeBytes = 20;
/// Addresses one user may keep (a bound on what one account can store).
inline constexpr std::size_t kMaxAddressesPerUser = 20;

/// Whether `code` is an officially assigned ISO 3166-1 alpha-2 code (the 249
/// of the ISO 3166 Maintenance Agency's list, as Debian's iso-codes 4.15
/// ships it in /usr/share/iso-codes/json/iso_3166-1.json). Upper case only.
bool is_country_code(std::string_view code);

/// The first problem of `a` as a message naming the member ("country must
/// be an ISO 3166-1 alpha-2 code"), or nullopt when it is valid.
std::optional<std::string> address_problem(const Address& a);

/// `base` with the members whose AddressField bit is in `mask` taken from `patch`.
Address merged(Address base, const Address& patch, std::uint32_t mask);

/// Cap'n Proto conversions (the envelope's Address).
Address from_message(msg::Address::Reader r);
void to_message(const Address& a, msg::Address::Builder b);

}  // namespace ringmart::user
