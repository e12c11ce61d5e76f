// ringmart::http — blocking Unix-socket client: each request runs
// AsyncUnixClient::request to completion on a private io_context, so the two
// clients share one implementation of connect, write, read, timeout and the
// stale-connection retry.
#include "http/client.hpp"

// clang-format off
#include <utility>  // std::exchange: boost/asio/awaitable.hpp (1.74) uses it without the include
// clang-format on
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <exception>
#include <optional>

#include "http/async_client.hpp"

namespace ringmart::http {

namespace asio = boost::asio;

struct UnixClient::Impl {
  Impl(std::string path, std::chrono::milliseconds timeout)
      : client(io.get_executor(), std::move(path), timeout) {}

  asio::io_context io;  // declared first: the client holds its executor
  AsyncUnixClient client;
};

UnixClient::UnixClient(std::string socket_path, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>(std::move(socket_path), timeout)) {}

UnixClient::~UnixClient() = default;
UnixClient::UnixClient(UnixClient&&) noexcept = default;
UnixClient& UnixClient::operator=(UnixClient&&) noexcept = default;

std::expected<ClientResponse, std::error_code> UnixClient::request(
    std::string_view method, std::string_view target, std::string_view body,
    const std::map<std::string, std::string>& headers) {
  if (!impl_) return std::unexpected(std::make_error_code(std::errc::bad_file_descriptor));
  std::optional<std::expected<ClientResponse, std::error_code>> result;
  std::exception_ptr failure;
  asio::co_spawn(
      impl_->io,
      impl_->client.request(std::string(method), std::string(target), std::string(body), headers),
      [&](std::exception_ptr e, std::expected<ClientResponse, std::error_code> r) {
        failure = e;
        if (!e) result = std::move(r);
      });
  impl_->io.restart();
  impl_->io.run();
  if (failure) std::rethrow_exception(failure);
  return std::move(*result);
}

}  // namespace ringmart::http
