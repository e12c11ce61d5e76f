// ringmart::http — an asynchronous HTTP/1.1 client over a Unix domain socket,
// as a C++20 coroutine (Boost.Asio awaitable), for load generators that keep
// many connections busy from one thread (tools/replay).
//
// Same contract as UnixClient (client.hpp): one keep-alive connection, lazily
// connected; one timeout for connect + write + read of each request; errors as
// values; a request that fails on a reused connection the server had closed
// is retried once on a new one; 1xx interim responses are skipped.
//
// Threading: an AsyncUnixClient belongs to the executor it was made with; use
// it from coroutines running there, one request at a time (a second request()
// before the first completed is a programming error: std::logic_error).
#pragma once

// clang-format off
#include <utility>  // std::exchange: boost/asio/awaitable.hpp (1.74) uses it without the include
// clang-format on
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <expected>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

#include "http/client.hpp"

namespace ringmart::http {

class AsyncUnixClient {
 public:
  /// Does not connect yet; the first request does. `timeout` bounds each
  /// request() as a whole (connect + send + receive).
  AsyncUnixClient(boost::asio::any_io_executor executor, std::string socket_path,
                  std::chrono::milliseconds timeout = std::chrono::seconds(30));
  /// Closes the connection; an operation still running completes with an error.
  ~AsyncUnixClient();
  AsyncUnixClient(AsyncUnixClient&&) noexcept;
  AsyncUnixClient& operator=(AsyncUnixClient&&) noexcept;

  /// Sends one request with an optional JSON body and extra headers and
  /// completes with the whole response. Errors (as values): the same as
  /// UnixClient::request (no_such_file_or_directory, connection_refused,
  /// timed_out, protocol_error, connection_aborted, invalid_argument,
  /// bad_file_descriptor for a moved-from client). Never throws for I/O errors.
  boost::asio::awaitable<std::expected<ClientResponse, std::error_code>> request(
      std::string method, std::string target, std::string body = {},
      std::map<std::string, std::string> headers = {});

 private:
  struct State;
  std::shared_ptr<State> state_;  ///< shared with the timeout handler
};

}  // namespace ringmart::http
