// ringmart::http — server implementation (Boost.Beast over
// boost::asio::generic::stream_protocol: AF_UNIX, or TCP for allow_tcp). See
// server.hpp and README.md.
#include "http/server.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <stdexcept>
#include <system_error>
#include <unordered_map>
#include <utility>

#include "http/listener.hpp"
#include "http/request_parsing.hpp"
#include "http/text.hpp"

namespace ringmart::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace bsys = boost::system;
// Generic: a listening AF_UNIX socket, or TCP for ServerOptions::allow_tcp.
using stream = asio::generic::stream_protocol;
using stream_acceptor = asio::basic_socket_acceptor<stream>;

// ---------------------------------------------------------------------------
// Response helpers

Response json_response(int status, const nlohmann::json& body) {
  Response r;
  r.status = status;
  // Never throws on invalid UTF-8: bad sequences become U+FFFD.
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  r.headers["Content-Type"] = "application/json";
  return r;
}

Response error_response(int status, std::string_view code, std::string_view message) {
  nlohmann::json body = {
      {"error", {{"code", std::string(code)}, {"message", std::string(message)}}}};
  return json_response(status, body);
}

namespace {

using detail::has_ctl;
using detail::lower;
using detail::to_string;

// ---------------------------------------------------------------------------
// Connection state

class Session;

// Shared between Server::Impl and its sessions/pending handlers, so the
// asynchronous operations never touch a destroyed Server.
struct State {
  State(asio::io_context& io_, ServerOptions opts)
      : io(io_), options(std::move(opts)), retry_timer(io_) {}

  asio::io_context& io;
  ServerOptions options;
  detail::RouteTable routes;
  std::optional<stream_acceptor> acceptor;
  asio::steady_timer retry_timer;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;
  bool started = false;
  bool stopped = false;
  // Identity of the socket file we created, so stop() never unlinks a file a
  // later server put at the same path.
  dev_t sock_dev = 0;
  ino_t sock_ino = 0;
  bool own_file = false;
  // A spare descriptor (/dev/null), given up when accept(2) fails with
  // EMFILE/ENFILE so that one pending connection can be accepted, answered
  // 503 and closed instead of waiting in the backlog (libev's documented
  // remedy for EMFILE).
  int reserve_fd = -1;
  bool overloaded = false;  // inside a burst of refusals (reported once)
  std::atomic<std::size_t> accepted{0};
  std::atomic<std::size_t> refused{0};
  std::atomic<std::size_t> open{0};
};

constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(std::shared_ptr<State> st, stream::socket sock)
      : st_(std::move(st)), sock_(std::move(sock)), timer_(sock_.get_executor()) {}

  void start() {
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (::getsockopt(sock_.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
      uid_ = static_cast<int>(cred.uid);
      pid_ = static_cast<int>(cred.pid);
    }
    st_->sessions.emplace(this, weak_from_this());
    st_->open.fetch_add(1, std::memory_order_relaxed);
    do_read();
  }

  stream::socket::executor_type executor() { return sock_.get_executor(); }

  // Closes the socket; every pending operation completes with
  // operation_aborted and every later deliver() is a no-op.
  void close() {
    if (closed_) return;
    closed_ = true;
    disarm_timer();
    bsys::error_code ec;
    sock_.close(ec);
    if (st_->sessions.erase(this) != 0) st_->open.fetch_sub(1, std::memory_order_relaxed);
  }

  // Completes request number `seq`. No-op when the session closed, the
  // request was already answered or `seq` is stale.
  void deliver(std::uint64_t seq, Response r) {
    if (closed_ || !awaiting_ || seq != seq_) return;
    awaiting_ = false;
    if (st_->options.on_response) {
      const auto elapsed = std::chrono::steady_clock::now() - received_at_;
      st_->options.on_response(
          Served{method_, route_, (r.status >= 200 && r.status <= 999) ? r.status : 500,
                 std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count()});
    }
    bool keep = keep_alive_ && !st_->stopped;
    write(build(std::move(r), keep), keep);
  }

 private:
  // Two deadlines: until the next request's first byte, the idle timeout (a
  // new connection gets the header timeout: it has not sent anything yet);
  // from that byte on, the header timeout until the header is complete.
  void do_read() {
    parser_.emplace();
    detail::configure_parser(*parser_, st_->options.max_body_bytes);
    if (buf_.size() > 0) return read_header();  // pipelined: already here
    arm_timer(served_ == 0 ? header_timeout_ms() : st_->options.idle_timeout_ms);
    sock_.async_wait(stream::socket::wait_read, [self = shared_from_this()](bsys::error_code ec) {
      if (self->closed_) return;
      if (ec) return self->on_read_error(ec);
      self->read_header();
    });
  }

  // The header timeout, or the idle timeout where it is 0 (disabled), so a
  // silent connection never lives without a deadline unless both are 0.
  unsigned header_timeout_ms() const {
    return st_->options.header_timeout_ms ? st_->options.header_timeout_ms
                                          : st_->options.idle_timeout_ms;
  }

  void read_header() {
    arm_timer(header_timeout_ms());
    bhttp::async_read_header(
        sock_, buf_, *parser_,
        [self = shared_from_this()](bsys::error_code ec, std::size_t) { self->on_header(ec); });
  }

  void on_header(bsys::error_code ec) {
    if (closed_) return;
    if (ec) return on_read_error(ec);
    auto& msg = parser_->get();
    if (auto refusal = detail::check_framing(msg)) {
      disarm_timer();
      return reply_and_close(std::move(*refusal));
    }
    if (!parser_->is_done() && msg.version() >= 11 &&
        lower(to_string(msg[bhttp::field::expect])) == "100-continue") {
      asio::async_write(sock_, asio::buffer(kContinue.data(), kContinue.size()),
                        [self = shared_from_this()](bsys::error_code ec, std::size_t) {
                          if (self->closed_) return;
                          if (ec) return self->close();
                          self->read_body();
                        });
      return;
    }
    read_body();
  }

  void read_body() {
    if (parser_->is_done()) return on_request();
    arm_timer(st_->options.idle_timeout_ms);
    bhttp::async_read(sock_, buf_, *parser_,
                      [self = shared_from_this()](bsys::error_code ec, std::size_t) {
                        if (self->closed_) return;
                        if (ec) return self->on_read_error(ec);
                        self->on_request();
                      });
  }

  void on_read_error(bsys::error_code ec) {
    disarm_timer();
    if (ec == bhttp::error::body_limit) {
      return reply_and_close(error_response(
          413, "BODY_TOO_LARGE",
          "request body exceeds " + std::to_string(st_->options.max_body_bytes) + " bytes"));
    }
    // The peer went away (or we closed): nothing to answer.
    if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message ||
        ec.category() != bhttp::make_error_code(bhttp::error::end_of_stream).category() ||
        ec == asio::error::operation_aborted) {
      return close();
    }
    // Any other Beast parse error: the bytes are not HTTP we understand.
    reply_and_close(error_response(400, "BAD_REQUEST", "malformed HTTP request: " + ec.message()));
  }

  void reply_and_close(Response r) {
    version_ = 11;
    bool keep = false;
    write(build(std::move(r), keep), false);
  }

  void on_request() {
    disarm_timer();
    auto& msg = parser_->get();
    version_ = msg.version();
    keep_alive_ = msg.keep_alive();

    Request req = detail::to_request(msg);
    req.peer_uid = uid_;
    req.peer_pid = pid_;
    parser_.reset();

    ++seq_;
    ++served_;
    awaiting_ = true;
    auto responder = std::make_shared<ResponderImpl>(shared_from_this(), seq_);

    auto handler = st_->routes.find(req);
    received_at_ = std::chrono::steady_clock::now();
    method_ = req.method;
    route_ = req.route;
    if (!handler) return responder->send(std::move(handler.error()));
    try {
      (**handler)(req, responder);
    } catch (const std::exception& e) {
      responder->send(error_response(500, "INTERNAL", e.what()));
    } catch (...) {
      responder->send(error_response(500, "INTERNAL", "handler failed"));
    }
    // If the handler neither answered nor kept `responder`, its destructor
    // answers 500 right here.
  }

  bhttp::response<bhttp::string_body> build(Response r, bool& keep) {
    bhttp::response<bhttp::string_body> res;
    res.version(version_);
    unsigned status = (r.status >= 200 && r.status <= 999) ? static_cast<unsigned>(r.status) : 500;
    res.result(status);
    res.set(bhttp::field::server, "ringmart");
    bool has_content_type = false;
    for (const auto& [name, value] : r.headers) {
      std::string lname = lower(name);
      if (lname.empty() || has_ctl(name) || has_ctl(value)) continue;
      if (lname == "content-length" || lname == "transfer-encoding") continue;
      if (lname == "connection") {
        if (lower(value) == "close") keep = false;
        continue;
      }
      if (lname == "content-type") has_content_type = true;
      res.set(name, value);
    }
    if (!has_content_type) res.set(bhttp::field::content_type, "application/json");
    if (status == 204 || status == 304) r.body.clear();
    res.body() = std::move(r.body);
    res.keep_alive(keep);
    res.prepare_payload();
    return res;
  }

  void write(bhttp::response<bhttp::string_body> res, bool keep) {
    res_ = std::make_unique<bhttp::response<bhttp::string_body>>(std::move(res));
    arm_timer(st_->options.idle_timeout_ms);
    bhttp::async_write(sock_, *res_,
                       [self = shared_from_this(), keep](bsys::error_code ec, std::size_t) {
                         self->on_write(ec, keep);
                       });
  }

  void on_write(bsys::error_code ec, bool keep) {
    disarm_timer();
    res_.reset();
    if (closed_) return;
    if (ec || !keep) {
      bsys::error_code ignored;
      sock_.shutdown(stream::socket::shutdown_send, ignored);
      return close();
    }
    do_read();
  }

  // One deadline covers each wait, read or write; none runs while a handler
  // owns the request (long-poll). 0 = none.
  void arm_timer(unsigned timeout_ms) {
    ++timer_gen_;
    if (timeout_ms == 0) return;
    timer_.expires_after(std::chrono::milliseconds(timeout_ms));
    timer_.async_wait([self = shared_from_this(), gen = timer_gen_](bsys::error_code ec) {
      if (ec || self->closed_ || gen != self->timer_gen_) return;
      self->close();
    });
  }

  void disarm_timer() {
    ++timer_gen_;
    timer_.cancel();
  }

  class ResponderImpl final : public Responder {
   public:
    ResponderImpl(std::shared_ptr<Session> s, std::uint64_t seq) : s_(std::move(s)), seq_(seq) {}

    ~ResponderImpl() override {
      if (sent_) return;
      // Dropped without an answer: reply 500 so the connection is not stuck.
      auto s = std::move(s_);
      auto seq = seq_;
      asio::dispatch(s->executor(), [s, seq] {
        s->deliver(seq, error_response(500, "INTERNAL", "request dropped without a response"));
      });
    }

    void send(Response response) override {
      if (sent_) return;
      sent_ = true;
      s_->deliver(seq_, std::move(response));
    }

   private:
    std::shared_ptr<Session> s_;
    std::uint64_t seq_;
    bool sent_ = false;
  };

  std::shared_ptr<State> st_;
  stream::socket sock_;
  asio::steady_timer timer_;
  beast::flat_buffer buf_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::unique_ptr<bhttp::response<bhttp::string_body>> res_;
  std::uint64_t seq_ = 0;     // number of the current request
  std::uint64_t served_ = 0;  // requests read on this connection
  bool awaiting_ = false;     // current request not answered yet
  unsigned version_ = 11;     // HTTP version of the current request
  bool keep_alive_ = true;    // current request allows keep-alive
  bool closed_ = false;
  std::uint64_t timer_gen_ = 0;
  int uid_ = -1;
  int pid_ = -1;
  // The current request, for ServerOptions::on_response.
  std::chrono::steady_clock::time_point received_at_;
  std::string method_;
  std::string route_;
};

// Reports the start of a burst of refusals once (ServerOptions::on_overload).
void overload(State& st, const std::string& what) {
  if (st.overloaded) return;
  st.overloaded = true;
  if (st.options.on_overload) st.options.on_overload(what);
}

// Answers 503 on a connection we will not serve and closes it, without
// waiting: one non-blocking send of a response that fits any socket buffer.
void refuse(State& st, int fd) {
  static const std::string response = [] {
    const std::string body =
        R"({"error":{"code":"TOO_MANY_CONNECTIONS","message":"the server is at its connection )"
        R"(limit; retry shortly"}})";
    return "HTTP/1.1 503 Service Unavailable\r\nServer: ringmart\r\n"
           "Content-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\n"
           "Content-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
  }();
  // Counted first: a client that saw the close may read the counter at once.
  st.refused.fetch_add(1, std::memory_order_relaxed);
  [[maybe_unused]] const auto sent =
      ::send(fd, response.data(), response.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  ::shutdown(fd, SHUT_WR);
  // What the client already sent stays unread: drop it, so closing is a
  // plain end of stream for the client rather than a reset.
  char sink[4096];
  for (int i = 0; i < 16 && ::recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0; ++i) {
  }
  ::close(fd);
}

void do_accept(const std::shared_ptr<State>& st) {
  // A spare lost to a race (the descriptor freed for accept4 taken again) is
  // taken back as soon as one is free.
  if (st->reserve_fd < 0) st->reserve_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  st->acceptor->async_accept([st](bsys::error_code ec, stream::socket sock) {
    if (st->stopped || ec == asio::error::operation_aborted) return;
    if (ec == asio::error::no_descriptors || ec.value() == ENFILE) {
      // Out of descriptors: the connection waits in the backlog, and so would
      // every later one (and the epoll loop would spin on it). Give up the
      // spare descriptor, take one connection, refuse it, take the spare back.
      overload(*st, "accept failed (" + ec.message() +
                        "): answering new connections 503 until descriptors are free");
      if (st->reserve_fd >= 0) {
        ::close(st->reserve_fd);
        st->reserve_fd = -1;
        const int fd = ::accept4(st->acceptor->native_handle(), nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) refuse(*st, fd);
        st->reserve_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd >= 0 && st->reserve_fd >= 0) return do_accept(st);
      }
    }
    if (ec) {
      // Other errors, or no spare descriptor: back off instead of spinning.
      st->retry_timer.expires_after(std::chrono::milliseconds(100));
      st->retry_timer.async_wait([st](bsys::error_code ec) {
        if (!ec && !st->stopped) do_accept(st);
      });
      return;
    }
    if (st->sessions.size() >= st->options.max_connections) {
      overload(*st, "connection limit " + std::to_string(st->options.max_connections) +
                        " reached: answering new connections 503");
      refuse(*st, sock.release());
      return do_accept(st);
    }
    st->overloaded = false;
    st->accepted.fetch_add(1, std::memory_order_relaxed);
    std::make_shared<Session>(st, std::move(sock))->start();
    do_accept(st);
  });
}

[[noreturn]] void throw_errno(int err, const std::string& what) {
  throw std::system_error(err, std::generic_category(), what);
}

}  // namespace

// ---------------------------------------------------------------------------
// Server

struct Server::Impl {
  std::shared_ptr<State> st;
};

Server::Server(boost::asio::io_context& io, ServerOptions options)
    : impl_(std::make_unique<Impl>()) {
  if (options.max_connections == 0) {
    throw std::invalid_argument("ringmart::http::Server: max_connections must be >= 1");
  }
  impl_->st = std::make_shared<State>(io, std::move(options));
}

Server::~Server() { stop(); }

void Server::route(std::string method, std::string pattern, Handler handler) {
  impl_->st->routes.add(std::move(method), std::move(pattern), std::move(handler));
}

void Server::start() {
  State& st = *impl_->st;
  if (st.started) throw std::logic_error("ringmart::http::Server::start called twice");
  const std::string& path = st.options.socket_path;
  int fd = st.options.listen_fd;
  if (fd >= 0) {
    check_stream_listener(fd, path.empty() ? "listen_fd " + std::to_string(fd) : path,
                          st.options.allow_tcp);
  } else {
    const BoundSocket bound = bind_unix_socket(path, st.options.socket_mode);
    fd = bound.fd;
    st.own_file = true;
    st.sock_dev = bound.dev;
    st.sock_ino = bound.ino;
  }
  stream_acceptor acc(st.io);
  bsys::error_code ec;
  int family = AF_UNIX;
  socklen_t family_len = sizeof family;
  ::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &family, &family_len);
  acc.assign(stream(family, 0), fd, ec);
  if (ec) {
    if (st.own_file) {  // ours: bound above; a listen_fd stays the caller's
      ::unlink(path.c_str());
      st.own_file = false;
      ::close(fd);
    }
    throw_errno(ec.value(), "listen " + path);
  }
  st.acceptor.emplace(std::move(acc));
  st.reserve_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  st.started = true;
  do_accept(impl_->st);
}

void Server::stop() {
  if (!impl_ || !impl_->st) return;
  State& st = *impl_->st;
  if (st.stopped) return;
  st.stopped = true;
  bsys::error_code ec;
  if (st.acceptor) st.acceptor->close(ec);
  st.retry_timer.cancel();
  if (st.reserve_fd >= 0) {
    ::close(st.reserve_fd);
    st.reserve_fd = -1;
  }
  // Unlink before closing connections: a client that sees its connection
  // closed must not find the stale path any more.
  if (st.own_file) {
    unlink_bound_socket(st.options.socket_path, BoundSocket{-1, st.sock_dev, st.sock_ino});
    st.own_file = false;
  }
  std::vector<std::shared_ptr<Session>> live;
  for (auto& [ptr, weak] : st.sessions) {
    if (auto s = weak.lock()) live.push_back(std::move(s));
  }
  for (auto& s : live) s->close();
  st.sessions.clear();
}

std::size_t Server::accepted_connections() const {
  return impl_->st->accepted.load(std::memory_order_relaxed);
}

std::size_t Server::refused_connections() const {
  return impl_->st->refused.load(std::memory_order_relaxed);
}

std::size_t Server::open_connections() const {
  return impl_->st->open.load(std::memory_order_relaxed);
}

}  // namespace ringmart::http
