#include "daemons/user/address.hpp"

#include <algorithm>
#include <array>

#include "storage/text.hpp"

namespace ringmart::user {
namespace {

// ISO 3166-1 alpha-2, officially assigned codes, sorted (generated from
// iso-codes 4.15.0's iso_3166-1.json; user_store_test compares it with the
// installed file when there is one).
constexpr std::array<std::string_view, 249> kCountries = {
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
};

bool text_ok(const std::string& s, std::size_t min, std::size_t max) {
  const auto n = storage::utf8_length(s);
  return n >= min && n <= max;
}

bool only(const std::string& s, std::string_view extra) {
  return std::all_of(s.begin(), s.end(), [&](char c) {
    return (c >= '0' && c <= '9') || extra.find(c) != std::string_view::npos;
  });
}

}  // namespace

bool is_country_code(std::string_view code) {
  return code.size() == 2 && std::binary_search(kCountries.begin(), kCountries.end(), code);
}

std::optional<std::string> address_problem(const Address& a) {
  const auto line = std::to_string(kMaxAddressLineChars);
  if (!text_ok(a.recipient, 1, kMaxAddressLineChars))
    return "recipient must be 1.." + line + " characters";
  if (a.phone.size() > kMaxPhoneBytes || !only(a.phone, " +-().")) {
    return "phone must be at most " + std::to_string(kMaxPhoneBytes) + " digits, spaces and +-().";
  }
  if (!text_ok(a.line1, 1, kMaxAddressLineChars)) return "line1 must be 1.." + line + " characters";
  if (!text_ok(a.line2, 0, kMaxAddressLineChars))
    return "line2 must be at most " + line + " characters";
  if (!text_ok(a.city, 1, kMaxCityChars))
    return "city must be 1.." + std::to_string(kMaxCityChars) + " characters";
  if (!text_ok(a.region, 0, kMaxCityChars))
    return "region must be at most " + std::to_string(kMaxCityChars) + " characters";
  if (a.postal_code.size() > kMaxPostalCodeBytes ||
      !std::all_of(a.postal_code.begin(), a.postal_code.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
               c == ' ' || c == '-';
      })) {
    return "postal_code must be at most " + std::to_string(kMaxPostalCodeBytes) +
           " letters, digits, spaces and hyphens";
  }
  if (!is_country_code(a.country)) {
    return "country must be an ISO 3166-1 alpha-2 code in upper case (\"BR\", \"DE\")";
  }
  return std::nullopt;
}

Address merged(Address base, const Address& patch, std::uint32_t mask) {
  if (mask & kRecipient) base.recipient = patch.recipient;
  if (mask & kPhone) base.phone = patch.phone;
  if (mask & kLine1) base.line1 = patch.line1;
  if (mask & kLine2) base.line2 = patch.line2;
  if (mask & kCity) base.city = patch.city;
  if (mask & kRegion) base.region = patch.region;
  if (mask & kPostalCode) base.postal_code = patch.postal_code;
  if (mask & kCountry) base.country = patch.country;
  return base;
}

Address from_message(msg::Address::Reader r) {
  using storage::to_string;
  return Address{.recipient = to_string(r.getRecipient()),
                 .phone = to_string(r.getPhone()),
                 .line1 = to_string(r.getLine1()),
                 .line2 = to_string(r.getLine2()),
                 .city = to_string(r.getCity()),
                 .region = to_string(r.getRegion()),
                 .postal_code = to_string(r.getPostalCode()),
                 .country = to_string(r.getCountry())};
}

void to_message(const Address& a, msg::Address::Builder b) {
  using storage::set_text;
  set_text(b.initRecipient(a.recipient.size()), a.recipient);
  set_text(b.initPhone(a.phone.size()), a.phone);
  set_text(b.initLine1(a.line1.size()), a.line1);
  set_text(b.initLine2(a.line2.size()), a.line2);
  set_text(b.initCity(a.city.size()), a.city);
  set_text(b.initRegion(a.region.size()), a.region);
  set_text(b.initPostalCode(a.postal_code.size()), a.postal_code);
  set_text(b.initCountry(a.country.size()), a.country);
}

}  // namespace ringmart::user
