#include "tools/replay/api.hpp"

#include <utility>

namespace ringmart::replay {

using nlohmann::json;

std::string Reply::error_code() const {
  if (body.is_object()) {
    if (auto e = body.find("error"); e != body.end() && e->is_object()) {
      if (auto code = get_string(*e, "code")) return *code;
    }
  }
  return {};
}

std::string Reply::kind() const {
  if (transport) return "transport: " + transport.message();
  std::string out = "HTTP " + std::to_string(status);
  if (bad_json) return out + " invalid JSON";
  if (auto code = error_code(); !code.empty()) out += " " + code;
  return out;
}

std::string Reply::describe() const {
  std::string out = kind();
  if (!transport && body.is_object()) {
    if (auto e = body.find("error"); e != body.end() && e->is_object()) {
      if (auto message = get_string(*e, "message"); message && !message->empty()) {
        out += ": " + *message;
      }
    }
  }
  return out;
}

Api::Api(std::string socket_path, std::chrono::milliseconds timeout)
    : path_(socket_path), client_(std::move(socket_path), timeout) {}

Reply to_reply(std::expected<http::ClientResponse, std::error_code> response) {
  Reply reply;
  if (!response) {
    reply.transport = response.error();
    return reply;
  }
  reply.status = response->status;
  reply.headers = std::move(response->headers);
  if (!response->body.empty()) {
    reply.body = json::parse(response->body, nullptr, /*allow_exceptions=*/false);
    if (reply.body.is_discarded()) {
      reply.body = nullptr;
      reply.bad_json = true;
    }
  }
  return reply;
}

Reply Api::call(std::string_view method, std::string_view target, const json& body,
                const std::map<std::string, std::string>& headers) {
  const std::string payload = body.is_null() ? std::string() : body.dump();
  return to_reply(client_.request(method, target, payload, headers));
}

AsyncApi::AsyncApi(boost::asio::any_io_executor executor, std::string socket_path,
                   std::chrono::milliseconds timeout)
    : client_(std::move(executor), std::move(socket_path), timeout) {}

boost::asio::awaitable<Reply> AsyncApi::call(std::string method, std::string target, json body,
                                             std::map<std::string, std::string> headers) {
  std::string payload = body.is_null() ? std::string() : body.dump();
  auto response = co_await client_.request(std::move(method), std::move(target), std::move(payload),
                                           std::move(headers));
  co_return to_reply(std::move(response));
}

std::optional<uint64_t> get_u64(const json& object, std::string_view key) {
  if (!object.is_object()) return std::nullopt;
  auto it = object.find(key);
  if (it == object.end() || !it->is_number_unsigned()) return std::nullopt;
  return it->get<uint64_t>();
}

std::optional<int64_t> get_i64(const json& object, std::string_view key) {
  if (!object.is_object()) return std::nullopt;
  auto it = object.find(key);
  if (it == object.end() || !it->is_number_integer()) return std::nullopt;
  if (it->is_number_unsigned() && it->get<uint64_t>() > INT64_MAX) return std::nullopt;
  return it->get<int64_t>();
}

std::optional<std::string> get_string(const json& object, std::string_view key) {
  if (!object.is_object()) return std::nullopt;
  auto it = object.find(key);
  if (it == object.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

}  // namespace ringmart::replay
