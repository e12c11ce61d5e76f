// ringmart::http — a small blocking HTTP/1.1 client over a Unix domain socket
// (AsyncUnixClient driven on a private io_context),
// for tools (replay, load generators) and integration tests.
//
// Threading: one UnixClient per thread; it keeps one keep-alive connection and
// reconnects transparently when the server closed it.
#pragma once

#include <chrono>
#include <expected>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

namespace ringmart::http {

struct ClientResponse {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  ///< lower-case names
};

class UnixClient {
 public:
  /// Does not connect yet; the first request does. `timeout` bounds each
  /// request() as a whole (connect + send + receive).
  explicit UnixClient(std::string socket_path,
                      std::chrono::milliseconds timeout = std::chrono::seconds(30));
  ~UnixClient();
  UnixClient(UnixClient&&) noexcept;
  UnixClient& operator=(UnixClient&&) noexcept;

  /// Sends one request ("GET", "/v1/health") with an optional JSON body and
  /// extra headers; waits for the whole response.
  /// Errors (as values): connection refused / socket missing
  /// (std::errc::connection_refused, no_such_file_or_directory), timeout
  /// (std::errc::timed_out), a malformed response (std::errc::protocol_error).
  /// A request that failed on a reused connection that the server had closed is
  /// retried once on a new connection. Also: connection_aborted (server closed
  /// without answering), invalid_argument (method/target/header with spaces or
  /// CR/LF), bad_file_descriptor (moved-from client). Content-Type defaults to
  /// application/json when `body` is not empty. Never throws for I/O errors.
  std::expected<ClientResponse, std::error_code> request(
      std::string_view method, std::string_view target, std::string_view body = {},
      const std::map<std::string, std::string>& headers = {});

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ringmart::http
