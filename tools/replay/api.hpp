// ringmart-replay — a thin JSON layer over ringmart::http::UnixClient (Api,
// one per thread) and ringmart::http::AsyncUnixClient (AsyncApi, many per
// thread, from coroutines) for the storefront/admin API (docs/api.md).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "http/async_client.hpp"
#include "http/client.hpp"

namespace ringmart::replay {

/// The outcome of one API call. Exactly one of: a transport error
/// (`transport` set, status 0), or an HTTP status with the parsed body
/// (`body` is null when the body was empty or not JSON; `bad_json` tells).
struct Reply {
  int status = 0;
  nlohmann::json body;
  std::map<std::string, std::string> headers;  ///< lower-case names
  std::error_code transport;
  bool bad_json = false;

  bool ok() const { return !transport && status >= 200 && status < 300 && !bad_json; }
  /// True for errors a retry may fix: transport errors, 503 UNAVAILABLE, 504 TIMEOUT.
  bool retryable() const { return transport || status == 503 || status == 504; }
  /// The API error code ("OUT_OF_STOCK") of an error body, or "".
  std::string error_code() const;
  /// A short stable description for grouping: "transport: Connection refused",
  /// "HTTP 409 IDEMPOTENCY_KEY_REUSED", "HTTP 200 invalid JSON".
  std::string kind() const;
  /// kind() plus the error message of the body when there is one.
  std::string describe() const;
};

/// One keep-alive connection to one socket.
class Api {
 public:
  /// `timeout` bounds each request (connect + write + read).
  explicit Api(std::string socket_path,
               std::chrono::milliseconds timeout = std::chrono::seconds(30));

  /// Sends `method target` with an optional JSON body (null = no body).
  Reply call(std::string_view method, std::string_view target, const nlohmann::json& body = nullptr,
             const std::map<std::string, std::string>& headers = {});

  const std::string& socket_path() const { return path_; }

 private:
  std::string path_;
  http::UnixClient client_;
};

/// One keep-alive connection to one socket, used from coroutines on the
/// executor it was made with, one call at a time.
class AsyncApi {
 public:
  /// `timeout` bounds each request (connect + write + read).
  AsyncApi(boost::asio::any_io_executor executor, std::string socket_path,
           std::chrono::milliseconds timeout = std::chrono::seconds(30));

  /// Same as Api::call, as a coroutine. Parameters are taken by value: they
  /// live in the coroutine frame.
  boost::asio::awaitable<Reply> call(std::string method, std::string target,
                                     nlohmann::json body = nullptr,
                                     std::map<std::string, std::string> headers = {});

 private:
  http::AsyncUnixClient client_;
};

/// The Reply of a client result: a transport error, or the status, headers and
/// body parsed as JSON (`bad_json` when a non-empty body is not JSON).
Reply to_reply(std::expected<http::ClientResponse, std::error_code> response);

/// Reads a non-negative integer member (an id, cents, units) of a JSON object;
/// nullopt when absent or of another type.
std::optional<uint64_t> get_u64(const nlohmann::json& object, std::string_view key);
/// Same for a signed integer member.
std::optional<int64_t> get_i64(const nlohmann::json& object, std::string_view key);
/// Reads a string member; nullopt when absent or not a string.
std::optional<std::string> get_string(const nlohmann::json& object, std::string_view key);

}  // namespace ringmart::replay
