// libFuzzer target: arbitrary bytes as the body (or header, path segment,
// query value) of every gateway route, through the gateway's own validation
// (daemons/gateway/requests.hpp). The first byte picks the parser. Findings:
// crashes, ASan/UBSan reports, leaks, and a parser that accepts what its
// contract refuses (checked below: strings capped and free of controls).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>

#include "daemons/gateway/requests.hpp"
#include "storage/text.hpp"

namespace {

using namespace ringmart::gateway;

bool has_control(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

std::size_t storage_chars(std::string_view s) { return ringmart::storage::utf8_length(s); }

// A violated contract is a finding: abort so libFuzzer keeps the input.
void require(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 18) {
    case 0:
      if (auto r = parse_order_request(body)) {
        require(!r->items.empty() && r->items.size() <= kMaxOrderLines);
        require(!r->payment_token.empty() && r->payment_token.size() <= kMaxPaymentTokenBytes);
        require(!has_control(r->payment_token));
        for (const auto& line : r->items) {
          require(line.product_id > 0 && line.quantity >= 1 && line.quantity <= kMaxLineQuantity);
        }
        (void)order_request_hash(*r);
        std::vector<std::int64_t> prices(r->items.size(), static_cast<std::int64_t>(size) << 40);
        (void)order_subtotal(*r, prices);
      }
      break;
    case 1:
      if (auto r = parse_register_user(body)) {
        require(!r->name.empty() && storage_chars(r->name) <= kMaxNameChars &&
                !has_control(r->name));
        if (r->password) {
          require(r->password->size() >= kMinPasswordBytes &&
                  r->password->size() <= kMaxPasswordBytes);
        }
        require(r->email.size() <= kMaxEmailBytes && !has_control(r->email));
        require(r->email.find('@') != std::string::npos);
      }
      break;
    case 2:
      if (auto r = parse_charge_points(body)) require(*r > 0);
      break;
    case 3:
      if (auto r = parse_issue_coupon(body)) require(*r > 0);
      break;
    case 4:
      if (auto r = parse_create_product(body)) {
        require(storage_chars(r->name) <= kMaxNameChars &&
                storage_chars(r->category) <= kMaxCategoryChars);
        require(!has_control(r->name) && !has_control(r->category));
        require(r->price_cents >= 0 && r->stock >= 0);
      }
      break;
    case 5:
      (void)parse_adjust_stock(body);
      break;
    case 6:
      if (auto r = parse_create_coupon(body)) {
        require(storage_chars(r->name) <= kMaxNameChars && !has_control(r->name));
        require(r->discount_value >= 1 && r->total_quantity >= 1 && r->per_user_limit >= 1);
      }
      break;
    case 7:
      if (check_idempotency_key(body)) {
        require(!body.empty() && body.size() <= kMaxIdempotencyKeyBytes && !has_control(body));
        (void)scoped_idempotency_key("POST /v1/orders", size, body);
      }
      break;
    case 8:
      require(prefer_wait_ms(body) >= 0 && prefer_wait_ms(body) <= kMaxWaitMs);
      break;
    case 9:
      if (auto id = parse_id(body, "id")) require(*id > 0);
      break;
    case 10: {
      const std::map<std::string, std::string> query = {{"wait_ms", std::string(body)},
                                                        {"limit", std::string(body)}};
      if (auto w = parse_wait_ms(query)) require(*w >= 0 && *w <= kMaxWaitMs);
      if (auto l = query_int(query, "limit", 20, 1, 100)) require(*l >= 1 && *l <= 100);
      break;
    }
    case 11:
      if (auto r = parse_update_product(body)) {
        require(r->name || r->category || r->price_cents);
        require(!r->price_cents || *r->price_cents >= 0);
        if (r->name) require(!r->name->empty() && storage_chars(*r->name) <= kMaxNameChars);
        (void)command_request_hash("PATCH", "/v1/products/1", body);
      }
      break;
    case 12:
      if (auto r = parse_login(body)) {
        require(!r->password.empty() && r->password.size() <= kMaxPasswordBytes);
        require(!has_control(r->email) && !has_control(r->password));
      }
      break;
    case 13:
      if (auto r = parse_update_user(body)) {
        require(r->name || r->email || r->password);
        if (r->password) {
          require(r->password->size() >= kMinPasswordBytes &&
                  r->password->size() <= kMaxPasswordBytes);
        }
        if (r->email) require(r->email->find('@') != std::string::npos);
      }
      break;
    case 14:
      if (auto r = parse_address(body, data[0] & 0x80)) {
        const auto complete = ringmart::user::merged(
            {.recipient = "x", .line1 = "x", .city = "x", .country = "BR"}, r->address, r->mask);
        require(!ringmart::user::address_problem(complete));
        require(r->mask != 0 || r->make_default);
      }
      break;
    case 15:
      if (auto r = parse_order_request(body, true)) {
        require(!(r->shipping_address && r->shipping_address_id != 0));
        if (r->shipping_address) require(!ringmart::user::address_problem(*r->shipping_address));
      }
      break;
    case 16:
      if (auto r = parse_shipment(body)) {
        require(!r->carrier.empty() && storage_chars(r->carrier) <= 100);
        require(!r->tracking_number.empty() && storage_chars(r->tracking_number) <= 100);
      }
      break;
    default:
      // Every code the schema defines (0..orderStateConflict = 22).
      (void)command_error(static_cast<ringmart::msg::Code>(data[0] % 23), body).response();
      break;
  }
  return 0;
}
