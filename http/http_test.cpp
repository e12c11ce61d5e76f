// Tests for ringmart::http: a real Server on a real Unix socket in a temp dir,
// driven by UnixClient, AsyncUnixClient (and raw POSIX sockets where the
// clients are too polite).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "http/async_client.hpp"
#include "http/client.hpp"
#include "http/listener.hpp"
#include "http/server.hpp"
#include "testkit/temp_dir.hpp"

namespace rh = ringmart::http;
namespace asio = boost::asio;
namespace testkit = ringmart::testkit;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

json body_of(const rh::ClientResponse& r) { return json::parse(r.body); }

// --- raw POSIX helpers, for bytes UnixClient would never send --------------

// Leaves a socket file at `path` that nobody listens on (connect: refused).
bool bind_dead_socket(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  const bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return bound;
}

int raw_connect(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

void raw_send(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    ASSERT_GT(n, 0);
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

// Reads until the peer closes (returns true) or `limit` passes (false).
bool raw_read_to_eof(int fd, std::string& out, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  char buf[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left <= 0ms) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return true;  // EOF (or reset after close)
    out.append(buf, static_cast<std::size_t>(n));
  }
}

std::size_t count(std::string_view hay, std::string_view needle) {
  std::size_t n = 0;
  for (auto pos = hay.find(needle); pos != hay.npos; pos = hay.find(needle, pos + 1)) ++n;
  return n;
}

// --- fixture -----------------------------------------------------------------

class HttpTest : public ::testing::Test {
 protected:
  void SetUp() override { path_ = dir_ / "api.sock"; }

  void TearDown() override { shutdown(); }

  rh::Server& make_server(rh::ServerOptions opts = {}) {
    opts.socket_path = path_;
    server_ = std::make_unique<rh::Server>(io_, std::move(opts));
    return *server_;
  }

  // start() on this thread, then serve on a background thread.
  void run() {
    server_->start();
    thread_ = std::thread([this] { io_.run(); });
  }

  void shutdown() {
    if (thread_.joinable()) {
      asio::post(io_, [this] { server_->stop(); });
      work_.reset();
      thread_.join();
    }
    server_.reset();
  }

  // Serves POST /v1/hit, answering {"n": how many hits so far}, and closes a
  // connection idle for `idle`.
  void serve_hits_closing_idle_after(std::chrono::milliseconds idle) {
    rh::ServerOptions opts;
    opts.idle_timeout_ms = static_cast<unsigned>(idle.count());
    auto& s = make_server(opts);
    s.route("POST", "/v1/hit", [this](auto&, rh::ResponderPtr r) {
      r->send(rh::json_response(200, {{"n", ++hits_}}));
    });
    run();
  }

  rh::UnixClient client(std::chrono::milliseconds timeout = 5s) {
    return rh::UnixClient(path_, timeout);
  }

  testkit::TempDir dir_{"ringmart-http"};  // first: removed after everything in it
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
  std::unique_ptr<rh::Server> server_;
  std::thread thread_;
  std::atomic<int> hits_{0};
  std::string path_;
};

// Replies after `ms` from a timer on the server's io_context (long-poll style).
void reply_later(asio::io_context& io, rh::ResponderPtr responder, int ms, rh::Response r) {
  auto timer = std::make_shared<asio::steady_timer>(io, std::chrono::milliseconds(ms));
  timer->async_wait([timer, responder, r = std::move(r)](boost::system::error_code) mutable {
    responder->send(std::move(r));
  });
}

TEST_F(HttpTest, RouteParamsQueryHeadersAndPeerCredentials) {
  auto& s = make_server();
  s.route("POST", "/v1/users/{id}/points/charge", [](const rh::Request& req, rh::ResponderPtr r) {
    r->send(rh::json_response(
        200, {{"id", req.params.at("id")},
              {"query", req.query},
              {"trace", req.headers.count("x-trace-id") ? req.headers.at("x-trace-id") : "missing"},
              {"path", req.path},
              {"body", req.body},
              {"uid", req.peer_uid},
              {"pid", req.peer_pid}}));
  });
  run();

  auto c = client();
  auto res =
      c.request("POST", "/v1/users/a%20b/points/charge?amount=10&note=J%C3%BCrgen+Doe&flag&bad=%zz",
                R"({"x":1})", {{"X-Trace-Id", "t-1"}});
  ASSERT_TRUE(res) << res.error().message();
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->headers.at("content-type"), "application/json");
  auto j = body_of(*res);
  EXPECT_EQ(j["id"], "a b");
  EXPECT_EQ(j["path"], "/v1/users/a%20b/points/charge");
  EXPECT_EQ(j["query"]["amount"], "10");
  EXPECT_EQ(j["query"]["note"], "J\xC3\xBCrgen Doe");
  EXPECT_EQ(j["query"]["flag"], "");
  EXPECT_EQ(j["query"]["bad"], "%zz");
  EXPECT_EQ(j["trace"], "t-1");
  EXPECT_EQ(j["body"], R"({"x":1})");
  EXPECT_EQ(j["uid"], static_cast<int>(::getuid()));
  EXPECT_EQ(j["pid"], static_cast<int>(::getpid()));
}

TEST_F(HttpTest, LiteralSegmentsBeatParameters) {
  auto& s = make_server();
  // Registered parameter-first on purpose: order must not matter.
  s.route("GET", "/v1/users/{id}", [](const rh::Request& req, rh::ResponderPtr r) {
    r->send(rh::json_response(200, {{"route", "param"}, {"id", req.params.at("id")}}));
  });
  s.route("GET", "/v1/users/me", [](const rh::Request&, rh::ResponderPtr r) {
    r->send(rh::json_response(200, {{"route", "me"}}));
  });
  s.route("GET", "/v1/{kind}/{id}/orders", [](const rh::Request&, rh::ResponderPtr r) {
    r->send(rh::json_response(200, {{"route", "generic"}}));
  });
  s.route("GET", "/v1/users/{id}/orders", [](const rh::Request&, rh::ResponderPtr r) {
    r->send(rh::json_response(200, {{"route", "users"}}));
  });
  EXPECT_THROW(s.route("GET", "/v1/users/{other}", [](auto&, auto) {}), std::invalid_argument);
  EXPECT_THROW(s.route("GET", "no-slash", [](auto&, auto) {}), std::invalid_argument);
  EXPECT_THROW(s.route("GET", "/v1/x{id}", [](auto&, auto) {}), std::invalid_argument);
  run();

  auto c = client();
  auto me = c.request("GET", "/v1/users/me");
  ASSERT_TRUE(me);
  EXPECT_EQ(body_of(*me)["route"], "me");
  auto other = c.request("GET", "/v1/users/42");
  ASSERT_TRUE(other);
  EXPECT_EQ(body_of(*other)["route"], "param");
  EXPECT_EQ(body_of(*other)["id"], "42");
  auto users = c.request("GET", "/v1/users/7/orders");
  ASSERT_TRUE(users);
  EXPECT_EQ(body_of(*users)["route"], "users");
  auto generic = c.request("GET", "/v1/shops/7/orders");
  ASSERT_TRUE(generic);
  EXPECT_EQ(body_of(*generic)["route"], "generic");
  // An empty segment never binds a parameter.
  auto empty = c.request("GET", "/v1/users//orders");
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->status, 404);
}

TEST_F(HttpTest, NotFoundAndMethodNotAllowed) {
  auto& s = make_server();
  auto ok = [](const rh::Request&, rh::ResponderPtr r) { r->send(rh::json_response(200, {})); };
  s.route("GET", "/v1/orders/{id}", ok);
  s.route("PUT", "/v1/orders/{id}", ok);
  run();

  auto c = client();
  auto nf = c.request("GET", "/v1/nope");
  ASSERT_TRUE(nf);
  EXPECT_EQ(nf->status, 404);
  EXPECT_EQ(nf->headers.at("content-type"), "application/json");
  auto nfj = body_of(*nf);
  EXPECT_EQ(nfj["error"]["code"], "NOT_FOUND");
  EXPECT_TRUE(nfj["error"]["message"].is_string());
  EXPECT_EQ(nfj.size(), 1u);
  EXPECT_EQ(nfj["error"].size(), 2u);

  auto na = c.request("DELETE", "/v1/orders/9");
  ASSERT_TRUE(na);
  EXPECT_EQ(na->status, 405);
  EXPECT_EQ(body_of(*na)["error"]["code"], "METHOD_NOT_ALLOWED");
  EXPECT_EQ(na->headers.at("allow"), "GET, PUT");

  auto fine = c.request("PUT", "/v1/orders/9", "{}");
  ASSERT_TRUE(fine);
  EXPECT_EQ(fine->status, 200);
  EXPECT_EQ(server_->accepted_connections(), 1u);  // errors keep the connection
}

TEST_F(HttpTest, ErrorResponseShapeIsExact) {
  auto r = rh::error_response(409, "CONFLICT", "already \"there\"");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(json::parse(r.body),
            json::parse(R"({"error":{"code":"CONFLICT","message":"already \"there\""}})"));
  auto j = rh::json_response(201, {{"a", 1}});
  EXPECT_EQ(j.status, 201);
  EXPECT_EQ(j.body, R"({"a":1})");
}

TEST_F(HttpTest, BodyTooLargeGives413) {
  rh::ServerOptions opts;
  opts.max_body_bytes = 1024;
  auto& s = make_server(opts);
  s.route("POST", "/v1/echo", [](const rh::Request& req, rh::ResponderPtr r) {
    r->send(rh::json_response(200, {{"size", req.body.size()}}));
  });
  run();

  auto c = client();
  auto fits = c.request("POST", "/v1/echo", std::string(1024, 'a'));
  ASSERT_TRUE(fits) << fits.error().message();
  EXPECT_EQ(fits->status, 200);
  EXPECT_EQ(body_of(*fits)["size"], 1024);

  auto big = c.request("POST", "/v1/echo", std::string(1025, 'a'));
  ASSERT_TRUE(big) << big.error().message();
  EXPECT_EQ(big->status, 413);
  EXPECT_EQ(body_of(*big)["error"]["code"], "BODY_TOO_LARGE");

  // Much larger than the socket buffers: the server answers while the client
  // is still sending, then closes; the client must still report the 413.
  auto huge = c.request("POST", "/v1/echo", std::string(4 << 20, 'a'));
  ASSERT_TRUE(huge) << huge.error().message();
  EXPECT_EQ(huge->status, 413);

  // Chunked bodies are limited too (no Content-Length to check up front).
  int fd = raw_connect(path_);
  ASSERT_GE(fd, 0);
  std::string chunk(800, 'b');
  raw_send(fd, "POST /v1/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n320\r\n" +
                   chunk + "\r\n320\r\n" + chunk + "\r\n0\r\n\r\n");
  std::string out;
  EXPECT_TRUE(raw_read_to_eof(fd, out, 5s));
  ::close(fd);
  EXPECT_NE(out.find("HTTP/1.1 413"), std::string::npos) << out;
  EXPECT_NE(out.find("BODY_TOO_LARGE"), std::string::npos);

  // The server is still healthy.
  auto again = c.request("POST", "/v1/echo", "{}");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200);
}

TEST_F(HttpTest, UnparsableRequestGives400AndClose) {
  auto& s = make_server();
  s.route("GET", "/v1/health", [](auto&, rh::ResponderPtr r) { r->send({}); });
  run();

  int fd = raw_connect(path_);
  ASSERT_GE(fd, 0);
  raw_send(fd, "this is not http\r\n\r\n");
  std::string out;
  EXPECT_TRUE(raw_read_to_eof(fd, out, 5s));  // server closes after the 400
  ::close(fd);
  EXPECT_EQ(out.rfind("HTTP/1.1 400", 0), 0u) << out;
  auto body = out.substr(out.find("\r\n\r\n") + 4);
  EXPECT_EQ(json::parse(body)["error"]["code"], "BAD_REQUEST");
}

TEST_F(HttpTest, TransferCodingsOtherThanChunkedGive501AndClose) {
  auto& s = make_server();
  int calls = 0;
  s.route("POST", "/v1/echo", [&](const rh::Request& req, rh::ResponderPtr r) {
    ++calls;
    r->send({200, req.body, {}});
  });
  run();
  // 501 for a coding we do not implement (RFC 9112 6.1); 400 where chunked
  // is not the final coding, so the body's length is unknown (6.3).
  const std::pair<std::string, std::string> cases[] = {
      {"gzip, chunked", "HTTP/1.1 501"},
      {"chunked, chunked", "HTTP/1.1 501"},
      {"identity", "HTTP/1.1 501"},
      {"gzip", "HTTP/1.1 501"},
      {"chunked\r\nTransfer-Encoding: gzip", "HTTP/1.1 400"}};
  for (const auto& [te, status] : cases) {
    int fd = raw_connect(path_);
    ASSERT_GE(fd, 0);
    raw_send(fd, "POST /v1/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " + te +
                     "\r\n\r\n2\r\nhi\r\n0\r\n\r\n");
    std::string out;
    EXPECT_TRUE(raw_read_to_eof(fd, out, 5s)) << te;
    ::close(fd);
    EXPECT_EQ(out.rfind(status, 0), 0u) << te << ": " << out;
  }
  EXPECT_EQ(calls, 0);
  // Plain chunked (any case) is read.
  int fd = raw_connect(path_);
  ASSERT_GE(fd, 0);
  raw_send(fd,
           "POST /v1/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n"
           "Connection: close\r\n\r\n2\r\nhi\r\n0\r\n\r\n");
  std::string out;
  EXPECT_TRUE(raw_read_to_eof(fd, out, 5s));
  ::close(fd);
  EXPECT_EQ(out.rfind("HTTP/1.1 200", 0), 0u) << out;
  EXPECT_EQ(out.substr(out.find("\r\n\r\n") + 4), "hi");
  EXPECT_EQ(calls, 1);
}

TEST_F(HttpTest, Http11WithoutExactlyOneHostGives400) {
  auto& s = make_server();
  int calls = 0;
  s.route("GET", "/v1/health", [&](auto&, rh::ResponderPtr r) {
    ++calls;
    r->send({});
  });
  run();
  auto send = [&](const std::string& request) {
    int fd = raw_connect(path_);
    EXPECT_GE(fd, 0);
    raw_send(fd, request);
    std::string out;
    EXPECT_TRUE(raw_read_to_eof(fd, out, 5s));
    ::close(fd);
    return out;
  };
  auto none = send("GET /v1/health HTTP/1.1\r\n\r\n");
  EXPECT_EQ(none.rfind("HTTP/1.1 400", 0), 0u) << none;
  EXPECT_NE(none.find("Host"), std::string::npos) << none;
  auto two = send("GET /v1/health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
  EXPECT_EQ(two.rfind("HTTP/1.1 400", 0), 0u) << two;
  EXPECT_EQ(calls, 0);
  // HTTP/1.0 has no Host requirement.
  auto old = send("GET /v1/health HTTP/1.0\r\n\r\n");
  EXPECT_EQ(old.rfind("HTTP/1.0 200", 0), 0u) << old;
  EXPECT_EQ(calls, 1);
}

TEST_F(HttpTest, KeepAliveReusesOneConnection) {
  auto& s = make_server();
  std::atomic<int> hits{0};
  s.route("GET", "/v1/count", [&hits](auto&, rh::ResponderPtr r) {
    r->send(rh::json_response(200, {{"n", ++hits}}));
  });
  run();

  auto c = client();
  for (int i = 1; i <= 200; ++i) {
    auto res = c.request("GET", "/v1/count");
    ASSERT_TRUE(res) << res.error().message();
    ASSERT_EQ(body_of(*res)["n"], i);
  }
  EXPECT_EQ(server_->accepted_connections(), 1u);

  // Connection: close is honoured: the next request needs a new connection.
  auto closing = c.request("GET", "/v1/count", {}, {{"Connection", "close"}});
  ASSERT_TRUE(closing);
  EXPECT_EQ(closing->headers.at("connection"), "close");
  auto after = c.request("GET", "/v1/count");
  ASSERT_TRUE(after);
  EXPECT_EQ(server_->accepted_connections(), 2u);
}

TEST_F(HttpTest, PipelinedRequestsAnsweredInOrder) {
  auto& s = make_server();
  s.route("GET", "/v1/slow", [this](auto&, rh::ResponderPtr r) {
    reply_later(io_, r, 100, rh::json_response(200, {{"which", "slow-first"}}));
  });
  s.route("GET", "/v1/fast", [](auto&, rh::ResponderPtr r) {
    r->send(rh::json_response(200, {{"which", "fast-second"}}));
  });
  run();

  int fd = raw_connect(path_);
  ASSERT_GE(fd, 0);
  raw_send(fd,
           "GET /v1/slow HTTP/1.1\r\nHost: x\r\n\r\n"
           "GET /v1/fast HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  std::string out;
  EXPECT_TRUE(raw_read_to_eof(fd, out, 5s));
  ::close(fd);
  EXPECT_EQ(count(out, "HTTP/1.1 200"), 2u) << out;
  auto first = out.find("slow-first");
  auto second = out.find("fast-second");
  ASSERT_NE(first, std::string::npos);
  ASSERT_NE(second, std::string::npos);
  EXPECT_LT(first, second);
}

TEST_F(HttpTest, DeferredResponseFromTimer) {
  auto& s = make_server();
  s.route("GET", "/v1/poll", [this](const rh::Request& req, rh::ResponderPtr r) {
    int wait = std::stoi(req.query.at("wait_ms"));
    reply_later(io_, r, wait, rh::json_response(200, {{"waited", wait}}));
  });
  s.route("GET", "/v1/health", [](auto&, rh::ResponderPtr r) {
    r->send(rh::json_response(200, {{"ok", true}}));
  });
  run();

  auto started = std::chrono::steady_clock::now();
  auto poll = std::async(std::launch::async, [this] {
    auto c = client();
    return c.request("GET", "/v1/poll?wait_ms=300");
  });
  // While the long-poll is parked, other connections are served.
  std::this_thread::sleep_for(50ms);
  auto c = client();
  auto health = c.request("GET", "/v1/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(poll.wait_for(0ms), std::future_status::timeout);

  auto res = poll.get();
  auto elapsed = std::chrono::steady_clock::now() - started;
  ASSERT_TRUE(res) << res.error().message();
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(body_of(*res)["waited"], 300);
  EXPECT_GE(elapsed, 300ms);
}

TEST_F(HttpTest, ResponderSendsOnceAndDroppedResponderGives500) {
  auto& s = make_server();
  s.route("GET", "/v1/drop", [](auto&, rh::ResponderPtr) {});  // never answers
  s.route("GET", "/v1/drop-later", [this](auto&, rh::ResponderPtr r) {
    auto timer = std::make_shared<asio::steady_timer>(io_, 50ms);
    timer->async_wait([timer, r](boost::system::error_code) mutable { r.reset(); });
  });
  s.route("GET", "/v1/twice", [](auto&, rh::ResponderPtr r) {
    r->send(rh::json_response(201, {{"n", 1}}));
    r->send(rh::json_response(202, {{"n", 2}}));  // no-op
  });
  s.route("GET", "/v1/throw",
          [](auto&, rh::ResponderPtr) -> void { throw std::runtime_error("boom"); });
  s.route("GET", "/v1/headers", [](auto&, rh::ResponderPtr r) {
    rh::Response res;
    res.status = 201;
    res.body = "plain";
    res.headers["Content-Type"] = "text/plain";
    res.headers["Location"] = "/v1/orders/1";
    r->send(std::move(res));
  });
  run();

  auto c = client();
  for (const char* target : {"/v1/drop", "/v1/drop-later", "/v1/throw"}) {
    auto res = c.request("GET", target);
    ASSERT_TRUE(res) << target << ": " << res.error().message();
    EXPECT_EQ(res->status, 500) << target;
    EXPECT_EQ(body_of(*res)["error"]["code"], "INTERNAL") << target;
  }
  auto twice = c.request("GET", "/v1/twice");
  ASSERT_TRUE(twice);
  EXPECT_EQ(twice->status, 201);
  EXPECT_EQ(body_of(*twice)["n"], 1);
  auto hdrs = c.request("GET", "/v1/headers");
  ASSERT_TRUE(hdrs);
  EXPECT_EQ(hdrs->status, 201);
  EXPECT_EQ(hdrs->body, "plain");
  EXPECT_EQ(hdrs->headers.at("content-type"), "text/plain");
  EXPECT_EQ(hdrs->headers.at("location"), "/v1/orders/1");
  // None of this broke the connection.
  EXPECT_EQ(server_->accepted_connections(), 1u);
}

TEST_F(HttpTest, ClientTimeoutAndLateSendIsHarmless) {
  auto& s = make_server();
  std::promise<void> late_sent;
  s.route("GET", "/v1/slow", [this, &late_sent](auto&, rh::ResponderPtr r) {
    auto timer = std::make_shared<asio::steady_timer>(io_, 400ms);
    timer->async_wait([timer, r, &late_sent](boost::system::error_code) {
      r->send(rh::json_response(200, {}));  // the client is gone by now
      late_sent.set_value();
    });
  });
  s.route("GET", "/v1/health", [](auto&, rh::ResponderPtr r) { r->send({}); });
  run();

  auto c = client(100ms);
  auto started = std::chrono::steady_clock::now();
  auto res = c.request("GET", "/v1/slow");
  auto elapsed = std::chrono::steady_clock::now() - started;
  ASSERT_FALSE(res);
  EXPECT_EQ(res.error(), std::errc::timed_out);
  EXPECT_GE(elapsed, 100ms);
  EXPECT_LT(elapsed, 2s);

  late_sent.get_future().wait();
  auto ok = c.request("GET", "/v1/health");  // new connection after the timeout
  ASSERT_TRUE(ok) << ok.error().message();
  EXPECT_EQ(ok->status, 200);
}

TEST_F(HttpTest, IdleTimeoutClosesAndClientRetriesOnce) {
  serve_hits_closing_idle_after(100ms);

  // A kept-alive connection idle past the idle timeout is closed.
  int fd = raw_connect(path_);
  ASSERT_GE(fd, 0);
  raw_send(fd, "POST /v1/hit HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}");
  std::string out;
  EXPECT_TRUE(raw_read_to_eof(fd, out, 5s));
  EXPECT_EQ(out.rfind("HTTP/1.1 200", 0), 0u) << out;
  ::close(fd);

  auto c = client();
  auto first = c.request("POST", "/v1/hit", "{}");
  ASSERT_TRUE(first);
  std::this_thread::sleep_for(300ms);  // the server drops the kept-alive connection
  auto second = c.request("POST", "/v1/hit", "{}");
  ASSERT_TRUE(second) << second.error().message();
  EXPECT_EQ(body_of(*second)["n"], 3);  // executed exactly once more
  EXPECT_EQ(server_->accepted_connections(), 3u);
}

TEST_F(HttpTest, HeaderTimeoutClosesSilentAndSlowConnectionsButNotIdleKeepAlive) {
  rh::ServerOptions opts;
  opts.header_timeout_ms = 150;
  opts.idle_timeout_ms = 60'000;
  auto& s = make_server(opts);
  s.route("GET", "/v1/health", [](auto&, rh::ResponderPtr r) { r->send({}); });
  run();

  // A new connection that never sends: closed after the header timeout,
  // not the (long) idle timeout.
  int silent = raw_connect(path_);
  ASSERT_GE(silent, 0);
  // A slowloris: a header that is never finished.
  int slow = raw_connect(path_);
  ASSERT_GE(slow, 0);
  raw_send(slow, "GET /v1/health HTTP/1.1\r\nHo");
  // A kept-alive connection that served a request and now idles.
  int idle = raw_connect(path_);
  ASSERT_GE(idle, 0);
  raw_send(idle, "GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n");

  std::string out;
  EXPECT_TRUE(raw_read_to_eof(silent, out, 5s));
  EXPECT_TRUE(out.empty()) << out;
  EXPECT_TRUE(raw_read_to_eof(slow, out, 5s));
  EXPECT_TRUE(out.empty()) << out;
  ::close(silent);
  ::close(slow);
  // The idle one answered its request and is still open well past 150 ms.
  std::string idle_out;
  EXPECT_FALSE(raw_read_to_eof(idle, idle_out, 600ms));
  EXPECT_EQ(idle_out.rfind("HTTP/1.1 200", 0), 0u) << idle_out;
  raw_send(idle, "GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  idle_out.clear();
  EXPECT_TRUE(raw_read_to_eof(idle, idle_out, 5s));
  EXPECT_EQ(idle_out.rfind("HTTP/1.1 200", 0), 0u) << idle_out;
  ::close(idle);
}

TEST_F(HttpTest, ConnectionsOverTheCapAre503AndClosedAtOnce) {
  rh::ServerOptions opts;
  opts.max_connections = 3;
  std::vector<std::string> reports;
  opts.on_overload = [&](const std::string& what) { reports.push_back(what); };
  auto& s = make_server(opts);
  s.route("GET", "/v1/health", [](auto&, rh::ResponderPtr r) { r->send({}); });
  run();

  std::vector<int> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(raw_connect(path_));
    ASSERT_GE(held.back(), 0);
  }
  // Let the server accept the three before the extra ones arrive.
  for (int i = 0; i < 200 && server_->open_connections() < 3; ++i) std::this_thread::sleep_for(5ms);
  ASSERT_EQ(server_->open_connections(), 3u);
  for (int i = 0; i < 5; ++i) {
    int extra = raw_connect(path_);
    ASSERT_GE(extra, 0);
    std::string out;
    EXPECT_TRUE(raw_read_to_eof(extra, out, 5s));  // closed, not left waiting
    ::close(extra);
    EXPECT_EQ(out.rfind("HTTP/1.1 503", 0), 0u) << out;
    EXPECT_NE(out.find("TOO_MANY_CONNECTIONS"), std::string::npos) << out;
    EXPECT_NE(out.find("Retry-After: 1"), std::string::npos) << out;
  }
  EXPECT_EQ(server_->refused_connections(), 5u);
  // The held ones still work; closing one makes room again.
  raw_send(held[0], "GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  std::string out;
  EXPECT_TRUE(raw_read_to_eof(held[0], out, 5s));
  EXPECT_EQ(out.rfind("HTTP/1.1 200", 0), 0u) << out;
  for (int fd : held) ::close(fd);
  for (int i = 0; i < 200 && server_->open_connections() > 0; ++i) std::this_thread::sleep_for(5ms);
  auto ok = client().request("GET", "/v1/health");
  ASSERT_TRUE(ok) << ok.error().message();
  EXPECT_EQ(ok->status, 200);
  shutdown();
  EXPECT_EQ(reports.size(), 1u) << "one report per burst";
}

TEST_F(HttpTest, OutOfDescriptorsConnectionsAre503AndClosedNotLeftWaiting) {
  rh::ServerOptions opts;
  std::vector<std::string> reports;
  opts.on_overload = [&](const std::string& what) { reports.push_back(what); };
  auto& s = make_server(opts);
  s.route("GET", "/v1/health", [](auto&, rh::ResponderPtr r) { r->send({}); });
  run();
  // Client sockets first: in this one process they count against the same
  // limit as the server's accepted ones.
  constexpr int kClients = 24;
  std::vector<int> clients;
  for (int i = 0; i < kClients; ++i)
    clients.push_back(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  int open_now = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd"))
    ++open_now;
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlimit low = saved;
  low.rlim_cur = static_cast<rlim_t>(open_now + 4);  // room for about 4 accepted connections
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path_.c_str());
  for (int fd : clients) {
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  }
  // Every connection is taken by now: served, or refused and closed.
  for (int i = 0; i < 1000 && server_->refused_connections() + server_->open_connections() <
                                  static_cast<std::size_t>(kClients);
       ++i) {
    std::this_thread::sleep_for(5ms);
  }
  int refused = 0, silent = 0;
  for (int fd : clients) {
    std::string out;
    // Either served and kept open (no answer: it sent nothing), or refused.
    const bool closed = raw_read_to_eof(fd, out, 300ms);
    if (closed && out.rfind("HTTP/1.1 503", 0) == 0) ++refused;
    if (!closed && out.empty()) ++silent;
  }
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &saved), 0);
  EXPECT_GT(refused, kClients / 2) << "silent " << silent;
  EXPECT_EQ(refused + silent, kClients);
  EXPECT_EQ(server_->refused_connections(), static_cast<std::size_t>(refused));
  for (int fd : clients) ::close(fd);
  // Descriptors back: served again.
  auto ok = client().request("GET", "/v1/health");
  ASSERT_TRUE(ok) << ok.error().message();
  EXPECT_EQ(ok->status, 200);
  shutdown();
  ASSERT_FALSE(reports.empty());
  EXPECT_NE(reports.front().find("accept failed"), std::string::npos) << reports.front();
}

TEST_F(HttpTest, ExpectContinueIsAnswered) {
  auto& s = make_server();
  s.route("POST", "/v1/echo", [](const rh::Request& req, rh::ResponderPtr r) {
    r->send(rh::json_response(200, {{"body", req.body}}));
  });
  run();
  auto c = client();
  auto res = c.request("POST", "/v1/echo", R"({"k":"v"})", {{"Expect", "100-continue"}});
  ASSERT_TRUE(res) << res.error().message();
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(body_of(*res)["body"], R"({"k":"v"})");
}

TEST_F(HttpTest, SocketFileModeStaleFileAndUnlinkOnStop) {
  // Leave a stale socket file behind, as a crashed server would.
  {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path_.c_str());
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ::close(fd);
  }
  auto& s = make_server();
  s.route("GET", "/v1/health", [](auto&, rh::ResponderPtr r) { r->send({}); });
  run();

  struct stat sb {};
  ASSERT_EQ(::stat(path_.c_str(), &sb), 0);
  EXPECT_TRUE(S_ISSOCK(sb.st_mode));
  EXPECT_EQ(sb.st_mode & 07777, 0660u);

  // A second server on the same path refuses to steal a live socket.
  asio::io_context other_io;
  rh::Server other(other_io, rh::ServerOptions{.socket_path = path_});
  EXPECT_THROW(other.start(), std::system_error);

  auto c = client();
  ASSERT_TRUE(c.request("GET", "/v1/health"));
  shutdown();
  EXPECT_NE(::access(path_.c_str(), F_OK), 0);
  EXPECT_EQ(errno, ENOENT);
}

// A server process of its own: serves GET /v1/who -> {"server": name} on a
// received listening socket, on its own thread, until stopped.
class HandedOverServer {
 public:
  HandedOverServer(const std::string& path, int listen_fd, std::string name)
      : server_(io_, rh::ServerOptions{.socket_path = path, .listen_fd = listen_fd}) {
    server_.route("GET", "/v1/who", [name](auto&, rh::ResponderPtr r) {
      r->send(rh::json_response(200, {{"server", name}}));
    });
    server_.start();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~HandedOverServer() { stop(); }
  void stop() {
    if (!thread_.joinable()) return;
    asio::post(io_, [this] { server_.stop(); });
    work_.reset();
    thread_.join();
  }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
  rh::Server server_;
  std::thread thread_;
};

TEST_F(HttpTest, AHandedOverSocketQueuesConnectionsWhileNoServerRunsAndIsNeverUnlinked) {
  const rh::BoundSocket bound = rh::bind_unix_socket(path_, 0660);
  std::optional<HandedOverServer> first;
  first.emplace(path_, ::dup(bound.fd), "first");
  auto c = client();
  auto res = c.request("GET", "/v1/who");
  ASSERT_TRUE(res) << res.error().message();
  EXPECT_EQ(body_of(*res)["server"], "first");
  first.reset();  // the server goes (a restart); whoever bound the socket keeps it
  ASSERT_EQ(::access(path_.c_str(), F_OK), 0) << "a received socket's file was unlinked";

  // No server runs: a new client connects (queued in the backlog, not
  // refused) and waits for the next server, which is handed the same socket.
  auto waiting = std::async(std::launch::async, [this] {
    auto c = client(10s);
    return c.request("GET", "/v1/who");
  });
  EXPECT_EQ(waiting.wait_for(200ms), std::future_status::timeout) << "answered with no server";
  HandedOverServer second(path_, ::dup(bound.fd), "second");
  auto late = waiting.get();
  ASSERT_TRUE(late) << "refused or dropped while no server ran: " << late.error().message();
  EXPECT_EQ(body_of(*late)["server"], "second");
  second.stop();
  ::close(bound.fd);
  rh::unlink_bound_socket(path_, bound);
  EXPECT_NE(::access(path_.c_str(), F_OK), 0);
}

TEST_F(HttpTest, OnlyAListeningUnixStreamSocketIsServed) {
  auto code_of = [](int fd) {
    try {
      rh::check_unix_listener(fd, "fd");
      return std::error_code();
    } catch (const std::system_error& e) {
      return e.code();
    }
  };
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  EXPECT_EQ(code_of(pipe_fds[0]), std::errc::not_a_socket);
  const int tcp = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(::listen(tcp, 1), 0);
  EXPECT_EQ(code_of(tcp), std::errc::address_family_not_supported);
  const int datagram = ::socket(AF_UNIX, SOCK_DGRAM, 0);
  EXPECT_EQ(code_of(datagram), std::errc::wrong_protocol_type);
  const int unbound = ::socket(AF_UNIX, SOCK_STREAM, 0);
  EXPECT_EQ(code_of(unbound), std::errc::invalid_argument);
  // A server given such a descriptor refuses to start and leaves it open.
  asio::io_context io;
  rh::Server s(io, rh::ServerOptions{.socket_path = path_, .listen_fd = unbound});
  EXPECT_THROW(s.start(), std::system_error);
  EXPECT_EQ(::fcntl(unbound, F_GETFD), 0);
  for (int fd : {pipe_fds[0], pipe_fds[1], tcp, datagram, unbound}) ::close(fd);
}

TEST_F(HttpTest, StartFailsWhenDirectoryMissing) {
  asio::io_context io;
  rh::Server s(io, rh::ServerOptions{.socket_path = dir_ / "missing/api.sock"});
  try {
    s.start();
    FAIL() << "start() should throw";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::no_such_file_or_directory);
  }
}

TEST_F(HttpTest, ClientErrorsWhenNoServer) {
  auto missing = client().request("GET", "/v1/health");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error(), std::errc::no_such_file_or_directory);

  ASSERT_TRUE(bind_dead_socket(path_));  // a socket file nobody listens on
  auto refused = client().request("GET", "/v1/health");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), std::errc::connection_refused);

  auto bad = client().request("GET", "/v1/has space");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error(), std::errc::invalid_argument);
}

TEST_F(HttpTest, ServerStopClosesConnections) {
  auto& s = make_server();
  auto held = std::make_shared<std::vector<rh::ResponderPtr>>();
  s.route("GET", "/v1/park", [held](auto&, rh::ResponderPtr r) { held->push_back(r); });
  run();
  auto parked = std::async(std::launch::async, [this] {
    auto c = client();
    return c.request("GET", "/v1/park");
  });
  while (server_->accepted_connections() == 0) std::this_thread::sleep_for(5ms);
  std::this_thread::sleep_for(50ms);
  ASSERT_EQ(parked.wait_for(0ms), std::future_status::timeout);
  asio::post(io_, [this, held] {
    server_->stop();
    for (auto& r : *held) r->send(rh::json_response(200, {}));  // no-op: connection closed
    held->clear();
  });
  auto res = parked.get();
  ASSERT_FALSE(res);  // closed without an answer (fresh connection: no retry)
  EXPECT_EQ(res.error(), std::errc::connection_aborted) << res.error().message();
  EXPECT_NE(::access(path_.c_str(), F_OK), 0);
}

// --- AsyncUnixClient ---------------------------------------------------------

using AsyncResult = std::expected<rh::ClientResponse, std::error_code>;

// Runs `body(executor)` (a coroutine) to completion on a private io_context:
// the client side, on this thread, apart from the server's.
template <class Body>
void run_client(Body body) {
  asio::io_context cio;
  std::exception_ptr failure;
  asio::co_spawn(cio, body(cio.get_executor()), [&](std::exception_ptr e) { failure = e; });
  cio.run();
  if (failure) std::rethrow_exception(failure);
}

TEST_F(HttpTest, AsyncClientsShareOneThreadEachWithItsOwnConnection) {
  // The server answers nothing until all kClients requests are in: clients
  // that waited for each other would deadlock into timeouts instead.
  constexpr int kClients = 8;
  constexpr int kRounds = 5;
  auto& s = make_server();
  auto held = std::make_shared<std::vector<std::pair<rh::ResponderPtr, std::string>>>();
  s.route("POST", "/v1/echo/{n}", [held](const rh::Request& req, rh::ResponderPtr r) {
    held->emplace_back(std::move(r), req.params.at("n") + ":" + req.body);
    if (held->size() < kClients) return;
    for (auto& [responder, text] : *held) responder->send(rh::json_response(200, {{"echo", text}}));
    held->clear();
  });
  run();

  // All clients on one io_context, run by this thread; `one` and `results`
  // outlive it.
  std::vector<std::vector<AsyncResult>> results(kClients);
  asio::io_context cio;
  auto one = [&](int c) -> asio::awaitable<void> {
    rh::AsyncUnixClient client(cio.get_executor(), path_, 5s);
    std::map<std::string, std::string> headers;
    headers["X-Client"] = std::to_string(c);
    for (int round = 0; round < kRounds; ++round) {
      const std::string body = "{\"round\":" + std::to_string(round) + "}";
      results[c].push_back(
          co_await client.request("POST", "/v1/echo/" + std::to_string(c), body, headers));
    }
  };
  std::exception_ptr failure;
  for (int c = 0; c < kClients; ++c) {
    asio::co_spawn(cio, one(c), [&](std::exception_ptr e) {
      if (e) failure = e;
    });
  }
  cio.run();
  if (failure) std::rethrow_exception(failure);

  for (int c = 0; c < kClients; ++c) {
    ASSERT_EQ(results[c].size(), static_cast<std::size_t>(kRounds));
    for (int round = 0; round < kRounds; ++round) {
      const auto& r = results[c][round];
      ASSERT_TRUE(r) << "client " << c << " round " << round << ": " << r.error().message();
      EXPECT_EQ(r->status, 200);
      EXPECT_EQ(r->headers.at("content-type"), "application/json");
      EXPECT_EQ(body_of(*r)["echo"],
                std::to_string(c) + ":{\"round\":" + std::to_string(round) + "}");
    }
  }
  EXPECT_EQ(server_->accepted_connections(), static_cast<std::uint64_t>(kClients));
}

TEST_F(HttpTest, AsyncClientTimeoutThenANewConnection) {
  auto& s = make_server();
  auto held = std::make_shared<std::vector<rh::ResponderPtr>>();
  s.route("GET", "/v1/slow", [held](auto&, rh::ResponderPtr r) { held->push_back(r); });
  s.route("GET", "/v1/health", [](auto&, rh::ResponderPtr r) { r->send({}); });
  run();

  AsyncResult slow, ok;
  std::chrono::steady_clock::duration elapsed{};
  run_client([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    rh::AsyncUnixClient client(ex, path_, 100ms);
    const auto started = std::chrono::steady_clock::now();
    slow = co_await client.request("GET", "/v1/slow");
    elapsed = std::chrono::steady_clock::now() - started;
    ok = co_await client.request("GET", "/v1/health");
  });
  ASSERT_FALSE(slow);
  EXPECT_EQ(slow.error(), std::errc::timed_out);
  EXPECT_GE(elapsed, 100ms);
  EXPECT_LT(elapsed, 2s);
  ASSERT_TRUE(ok) << ok.error().message();
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(server_->accepted_connections(), 2u);  // the timed-out one was closed
  asio::post(io_, [held] { held->clear(); });
}

TEST_F(HttpTest, AsyncClientRetriesOnceWhenTheServerClosedTheKeptConnection) {
  serve_hits_closing_idle_after(100ms);

  AsyncResult first, second;
  run_client([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    rh::AsyncUnixClient client(ex, path_, 5s);
    first = co_await client.request("POST", "/v1/hit", "{}");
    asio::steady_timer pause(ex, 300ms);  // the server drops the kept-alive connection
    co_await pause.async_wait(asio::use_awaitable);
    second = co_await client.request("POST", "/v1/hit", "{}");
  });
  ASSERT_TRUE(first) << first.error().message();
  ASSERT_TRUE(second) << second.error().message();
  EXPECT_EQ(body_of(*second)["n"], 2);  // executed exactly once more
  EXPECT_EQ(server_->accepted_connections(), 2u);
}

TEST_F(HttpTest, AsyncClientErrors) {
  AsyncResult missing, refused, bad, moved_from;
  auto request = [](rh::AsyncUnixClient& c, std::string target) {
    return c.request("GET", std::move(target));
  };
  run_client([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    rh::AsyncUnixClient client(ex, path_, 5s);
    missing = co_await request(client, "/v1/health");
    co_return;
  });
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error(), std::errc::no_such_file_or_directory);

  ASSERT_TRUE(bind_dead_socket(path_));  // a socket file nobody listens on
  run_client([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    rh::AsyncUnixClient client(ex, path_, 5s);
    refused = co_await request(client, "/v1/health");
    bad = co_await request(client, "/v1/has space");
    rh::AsyncUnixClient taken = std::move(client);
    moved_from = co_await request(client, "/v1/health");
  });
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), std::errc::connection_refused);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error(), std::errc::invalid_argument);
  ASSERT_FALSE(moved_from);
  EXPECT_EQ(moved_from.error(), std::errc::bad_file_descriptor);
}

}  // namespace

TEST(TcpAddress, ParsesLiteralAddressesAndRefusesEverythingElse) {
  const auto v4 = rh::parse_tcp_address("127.0.0.1:9464");
  EXPECT_EQ(v4.host, "127.0.0.1");
  EXPECT_EQ(v4.port, 9464);
  EXPECT_TRUE(v4.loopback);
  const auto v6 = rh::parse_tcp_address("[::1]:80");
  EXPECT_EQ(v6.host, "::1");
  EXPECT_TRUE(v6.loopback);
  EXPECT_FALSE(rh::parse_tcp_address("0.0.0.0:9464").loopback);
  for (const char* bad : {"localhost:9464", "127.0.0.1", "127.0.0.1:", ":9464", "127.0.0.1:0",
                          "127.0.0.1:65536", "127.0.0.1:94x", "::1:9464", "[::1:9464", "[]:1"}) {
    EXPECT_THROW(rh::parse_tcp_address(bad), std::invalid_argument) << bad;
  }
}
