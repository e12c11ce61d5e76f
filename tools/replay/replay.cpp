#include "tools/replay/replay.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <ostream>
#include <thread>
#include <unordered_map>
#include <utility>

#include "tools/replay/api.hpp"

namespace ringmart::replay {

namespace asio = boost::asio;
using nlohmann::json;
using Clock = std::chrono::steady_clock;
using olist::Dataset;
using olist::Order;

std::filesystem::path api_socket(const Options& options) {
  return options.runtime_dir / "api.sock";
}
std::filesystem::path admin_socket(const Options& options) {
  return options.runtime_dir / "admin.sock";
}

namespace {

constexpr std::chrono::milliseconds kSetupTimeout{30000};

std::string fixed(double value, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
  return buf;
}

/// Runs work(state, i) for i in [0, n) on `threads` threads; each thread makes
/// its own state with make_state() (e.g. its own connections).
template <class MakeState, class Work>
void parallel_for(size_t n, unsigned threads, MakeState make_state, Work work) {
  std::atomic<size_t> next{0};
  const unsigned count =
      static_cast<unsigned>(std::clamp<size_t>(n, 1, std::max<unsigned>(threads, 1)));
  std::vector<std::jthread> pool;
  pool.reserve(count);
  for (unsigned t = 0; t < count; ++t) {
    pool.emplace_back([&] {
      auto state = make_state();
      for (size_t i; (i = next.fetch_add(1)) < n;) work(state, i);
    });
  }
}

/// Calls, retrying while `retry(reply)` holds, up to `attempts` times with a
/// growing pause (100 ms, 200 ms, ...).
template <class Retry>
Reply call_with_retry(Api& api, std::string_view method, const std::string& target,
                      const json& body, const std::map<std::string, std::string>& headers,
                      int attempts, Retry retry) {
  Reply reply;
  for (int attempt = 1;; ++attempt) {
    reply = api.call(method, target, body, headers);
    if (!retry(reply) || attempt >= attempts) return reply;
    std::this_thread::sleep_for(std::chrono::milliseconds(100 * attempt));
  }
}

/// call_with_retry as a coroutine: the pauses are timers, so the other
/// clients on the thread go on meanwhile.
template <class Retry>
asio::awaitable<Reply> call_with_retry(AsyncApi& api, std::string method, std::string target,
                                       json body, std::map<std::string, std::string> headers,
                                       int attempts, Retry retry) {
  asio::steady_timer pause(co_await asio::this_coro::executor);
  for (int attempt = 1;; ++attempt) {
    Reply reply = co_await api.call(method, target, body, headers);
    if (!retry(reply) || attempt >= attempts) co_return reply;
    pause.expires_after(std::chrono::milliseconds(100 * attempt));
    co_await pause.async_wait(asio::use_awaitable);
  }
}

bool is_503(const Reply& r) { return !r.transport && r.status == 503; }
bool any_retryable(const Reply& r) { return r.retryable(); }

/// A once-per-second progress line on stderr while alive.
class Progress {
 public:
  Progress(bool enabled, std::string label, size_t total, const std::atomic<size_t>& done,
           const std::atomic<size_t>& failed)
      : enabled_(enabled),
        label_(std::move(label)),
        total_(total),
        done_(done),
        failed_(failed),
        tty_(isatty(STDERR_FILENO) == 1),
        start_(Clock::now()) {
    if (enabled_) thread_ = std::jthread([this] { loop(); });
  }
  ~Progress() {
    if (!enabled_) return;
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
    print(true);
  }
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

 private:
  void loop() {
    std::unique_lock lock(mutex_);
    while (!cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_; })) print(false);
  }
  void print(bool final) {
    const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
    const size_t done = done_.load();
    const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0;
    const double pct =
        total_ ? 100.0 * static_cast<double>(done) / static_cast<double>(total_) : 100.0;
    std::string line = label_ + ": " + std::to_string(done) + "/" + std::to_string(total_) + " (" +
                       fixed(pct, 1) + "%)  " + fixed(rate, 1) + "/s  " +
                       std::to_string(failed_.load()) + " failed";
    if (tty_) {
      std::cerr << "\r" << line << "\x1b[K" << (final ? "\n" : "") << std::flush;
    } else {
      std::cerr << line << "\n" << std::flush;
    }
  }

  bool enabled_;
  std::string label_;
  size_t total_;
  const std::atomic<size_t>& done_;
  const std::atomic<size_t>& failed_;
  bool tty_;
  Clock::time_point start_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::jthread thread_;
};

/// "a1b2c3d4" of a source id, for names.
std::string short_id(const std::string& id) { return id.substr(0, 8); }

}  // namespace

// ---------------------------------------------------------------- health

std::expected<void, Failure> wait_healthy(const Options& options, std::ostream& log) {
  std::error_code ec;
  if (!std::filesystem::is_directory(options.runtime_dir, ec)) {
    return std::unexpected(Failure{kExitUnreachable, "runtime directory " +
                                                         options.runtime_dir.string() +
                                                         " does not exist (is ringmart running?)"});
  }
  const auto deadline = Clock::now() + options.startup_timeout;
  bool announced = false;
  std::vector<std::filesystem::path> sockets = {api_socket(options), admin_socket(options)};
  for (const auto& path : sockets) {
    Api api(path.string(), std::chrono::seconds(2));
    for (;;) {
      const Reply r = api.call("GET", "/v1/health");
      if (r.ok() && r.status == 200) break;
      std::string problem;
      if (r.transport == std::errc::no_such_file_or_directory) {
        problem = "no such socket";
      } else if (r.transport == std::errc::connection_refused) {
        problem = "connection refused";
      } else if (r.transport) {
        problem = r.transport.message();
      } else if (r.status == 503 && r.body.is_object() && r.body.contains("missing")) {
        problem = "degraded, missing daemons " + r.body["missing"].dump();
      } else {
        problem = "GET /v1/health: " + r.describe();
      }
      if (Clock::now() >= deadline) {
        return std::unexpected(
            Failure{kExitUnreachable, path.string() + ": " + problem + " (waited " +
                                          fixed(options.startup_timeout.count() / 1000.0, 1) +
                                          " s; is ringmart running?)"});
      }
      if (!announced) {
        log << "waiting for ringmart: " << path.string() << ": " << problem << "\n" << std::flush;
        announced = true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
  return {};
}

// ---------------------------------------------------------------- set-up

std::expected<Ids, Failure> set_up(const Dataset& data, const Options& options, std::ostream& log) {
  const size_t n_products = data.products.size();
  const size_t n_orders = data.orders.size();
  Ids ids;
  ids.product_ids.assign(n_products, 0);
  ids.user_ids.assign(n_orders, 0);
  ids.coupon_ids.assign(n_orders, std::nullopt);
  ids.user_coupon_ids.assign(n_orders, std::nullopt);

  size_t n_coupons = 0, n_points = 0;
  for (const auto& o : data.orders) {
    n_coupons += o.voucher_cents > 0;
    n_points += o.user_points > 0;
  }
  log << "set-up: " << n_products << " products, " << n_orders << " users, " << n_points
      << " points charges, " << n_coupons << " coupons\n"
      << std::flush;

  std::mutex mutex;
  std::vector<std::string> errors;
  bool only_4xx = true;
  std::atomic<bool> abort{false};
  std::atomic<size_t> done{0}, failed{0};
  const auto start = Clock::now();

  // Records a failed request; returns false so callers can `return fail(...)`.
  auto fail = [&](const std::string& what, const Reply& r) {
    std::lock_guard lock(mutex);
    if (r.transport || r.status < 400 || r.status >= 500) only_4xx = false;
    errors.push_back(what + ": " + r.describe());
    failed.fetch_add(1);
    if (errors.size() >= 20) abort = true;
    return false;
  };
  auto id_of = [&](const std::string& what, const Reply& r,
                   const char* key) -> std::optional<uint64_t> {
    if (!r.ok()) {
      fail(what, r);
      return std::nullopt;
    }
    auto id = get_u64(r.body, key);
    if (!id) {
      Reply bad = r;
      bad.bad_json = true;  // a 2xx without the id
      fail(what + " (no \"" + key + "\" in " + r.body.dump() + ")", bad);
    }
    return id;
  };

  struct Conns {
    Api api, admin;
  };
  {
    Progress progress(options.progress, "set-up", n_products + n_orders, done, failed);
    parallel_for(
        n_products + n_orders, options.concurrency,
        [&] {
          return Conns{Api(api_socket(options).string(), kSetupTimeout),
                       Api(admin_socket(options).string(), kSetupTimeout)};
        },
        [&](Conns& c, size_t task) {
          if (abort) return;
          if (task < n_products) {
            const auto& p = data.products[task];
            const json body = {{"name", p.name},
                               {"category", p.category},
                               {"price", p.price_cents},
                               {"stock", p.stock}};
            const std::string what = "product " + p.source_id + ": POST /v1/products";
            auto r = call_with_retry(c.admin, "POST", "/v1/products", body, {}, 30, is_503);
            if (auto id = id_of(what, r, "id")) ids.product_ids[task] = *id;
            done.fetch_add(1);
            return;
          }
          const size_t i = task - n_products;
          const Order& o = data.orders[i];
          const std::string who = "order " + o.source_id;
          auto user = call_with_retry(
              c.api, "POST", "/v1/users",
              json{{"name", "customer " + short_id(o.source_id)},
                   {"email", options.key_prefix + o.source_id + "@replay.ringmart.invalid"}},
              // A sign-up answered 503 while in flight (a gateway shutting
              // down) may have been applied: its retry must not be EMAIL_TAKEN.
              {{"Idempotency-Key", options.key_prefix + "user-" + o.source_id}}, 30, is_503);
          const auto user_id = id_of(who + ": POST /v1/users", user, "id");
          if (!user_id) return;
          ids.user_ids[i] = *user_id;
          const std::string user_path = "/v1/users/" + std::to_string(*user_id);
          if (o.user_points > 0) {
            auto r = call_with_retry(c.admin, "POST", user_path + "/points/charge",
                                     json{{"amount", o.user_points}}, {}, 30, is_503);
            if (!r.ok()) {
              fail(who + ": POST " + user_path + "/points/charge", r);
              return;
            }
          }
          if (o.voucher_cents > 0) {
            auto r = call_with_retry(c.admin, "POST", "/v1/coupons",
                                     json{{"name", "voucher " + short_id(o.source_id)},
                                          {"discount_type", "fixed"},
                                          {"discount_value", o.voucher_cents},
                                          {"total_quantity", 1}},
                                     {}, 30, is_503);
            const auto coupon_id = id_of(who + ": POST /v1/coupons", r, "id");
            if (!coupon_id) return;
            ids.coupon_ids[i] = *coupon_id;
            const std::string issue = "/v1/coupons/" + std::to_string(*coupon_id) + "/issue";
            r = call_with_retry(c.admin, "POST", issue, json{{"user_id", *user_id}}, {}, 30,
                                is_503);
            const auto uc = id_of(who + ": POST " + issue, r, "user_coupon_id");
            if (!uc) return;
            ids.user_coupon_ids[i] = *uc;
          }
          done.fetch_add(1);
        });
  }

  if (!errors.empty()) {
    std::string message = "set-up failed (" + std::to_string(errors.size()) +
                          (abort ? "+ requests, stopped early):" : " requests):");
    for (const auto& e : errors) message += "\n  " + e;
    return std::unexpected(Failure{only_4xx ? kExitBadInput : kExitUnreachable, message});
  }
  log << "set-up: done in " << fixed(std::chrono::duration<double>(Clock::now() - start).count(), 1)
      << " s\n"
      << std::flush;
  return ids;
}

// ---------------------------------------------------------------- replay

std::string payment_token(const Order& o, const Options& options) {
  if (options.decline_percent + options.timeout_percent + options.capture_fail_percent == 0) {
    return o.payment_token;
  }
  // FNV-1a 64 (http://www.isthe.com/chongo/tech/comp/fnv/): stable across
  // platforms and runs, unlike std::hash.
  uint64_t h = 0xcbf29ce484222325ull;
  for (const unsigned char c : o.source_id) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  const uint64_t bucket = h % 100;
  uint64_t edge = options.decline_percent;
  if (bucket < edge) return "tok_decline";
  edge += options.timeout_percent;
  if (bucket < edge) return "tok_timeout";
  edge += options.capture_fail_percent;
  if (bucket < edge) return "tok_capture_fail";
  return o.payment_token;
}

namespace {

json order_request(const Dataset& data, const Ids& ids, const Options& options, size_t i) {
  const Order& o = data.orders[i];
  json items = json::array();
  for (const auto& line : o.lines) {
    items.push_back(
        {{"product_id", ids.product_ids[line.product_index]}, {"quantity", line.quantity}});
  }
  json body = {
      {"user_id", ids.user_ids[i]},
      {"items", std::move(items)},
      {"shipping", o.shipping_cents},
      {"payment", {{"token", payment_token(o, options)}, {"installments", o.installments}}}};
  if (ids.user_coupon_ids[i]) body["user_coupon_id"] = *ids.user_coupon_ids[i];
  if (o.points > 0) body["points"] = o.points;
  return body;
}

bool terminal(const std::string& status) { return status == "COMPLETED" || status == "FAILED"; }

/// Places and follows one order; fills `out`. The references must outlive
/// the coroutine (run_replay's frame holds them).
asio::awaitable<void> replay_one(AsyncApi& api, const Dataset& data, const Ids& ids,
                                 const Options& options, size_t i, Clock::time_point t0,
                                 OrderOutcome& out) {
  const Order& o = data.orders[i];
  const json body = order_request(data, ids, options, i);
  std::map<std::string, std::string> headers = {
      {"Idempotency-Key", options.key_prefix + o.source_id}};
  if (options.prefer_wait) {
    headers["Prefer"] =
        "wait=" + std::to_string(std::max<std::int64_t>(
                      1, std::chrono::ceil<std::chrono::seconds>(options.wait).count()));
  }
  auto set_error = [&](std::string kind, std::string detail) {
    out.error_kind = std::move(kind);
    out.error = "order " + o.source_id +
                (out.order_id ? " (id " + std::to_string(*out.order_id) + ")" : std::string()) +
                ": " + std::move(detail);
  };

  const auto deadline = Clock::now() + options.order_timeout;
  Reply r = co_await call_with_retry(api, "POST", "/v1/orders", body, headers, 5, any_retryable);
  if (!r.ok()) {
    set_error("POST /v1/orders " + r.kind(), "POST /v1/orders: " + r.describe());
    co_return;
  }
  out.order_id = get_u64(r.body, "order_id");
  // Only a 202 (accepted, PENDING) or, when waiting, a 201 (the outcome) with
  // its own Location is an answer to this POST (a 200 order body here would
  // be another request's response).
  const bool answered = r.status == 202 || (options.prefer_wait && r.status == 201);
  if (!answered || !out.order_id || r.headers.find("location") == r.headers.end() ||
      r.headers.at("location") != "/v1/orders/" + std::to_string(*out.order_id)) {
    set_error("POST /v1/orders: not a 201/202 with a matching Location",
              "POST /v1/orders: HTTP " + std::to_string(r.status) + " " + r.body.dump());
    out.order_id.reset();
    co_return;
  }
  if (!out.order_id) {
    set_error("POST /v1/orders: reply without order_id",
              "POST /v1/orders: HTTP " + std::to_string(r.status) + " " + r.body.dump());
    co_return;
  }
  json order = r.body;
  std::string status = get_string(order, "status").value_or("");
  const std::string target = "/v1/orders/" + std::to_string(*out.order_id) +
                             "?wait_ms=" + std::to_string(options.wait.count());
  while (status == "PENDING") {
    if (Clock::now() >= deadline) {
      set_error("still PENDING after order timeout",
                "still PENDING after " + fixed(options.order_timeout.count() / 1000.0, 1) + " s");
      co_return;
    }
    r = co_await call_with_retry(api, "GET", target, nullptr, {}, 5, any_retryable);
    if (!r.ok()) {
      set_error("GET /v1/orders/{id} " + r.kind(), "GET " + target + ": " + r.describe());
      co_return;
    }
    order = r.body;
    status = get_string(order, "status").value_or("");
    if (get_u64(order, "order_id") != out.order_id) {
      set_error("response for another order", "GET " + target + " answered " + order.dump());
      co_return;
    }
  }
  const auto t1 = Clock::now();
  if (!terminal(status)) {
    set_error("unexpected order status", "unexpected order " + order.dump());
    co_return;
  }
  out.status = status;
  out.latency_us = std::chrono::duration_cast<std::chrono::microseconds>(t1 - t0).count();
  if (status == "FAILED")
    out.failure_reason = get_string(order, "failure_reason").value_or("(none)");
}

}  // namespace

ReplayResult run_replay(const Dataset& data, const Ids& ids, const Options& options) {
  ReplayResult result;
  const size_t n = data.orders.size();
  result.outcomes.resize(n);
  std::atomic<size_t> done{0}, failed{0};
  const auto client_timeout = options.wait + std::chrono::seconds(10);
  const auto start = Clock::now();
  {
    Progress progress(options.progress, "replay", n, done, failed);
    // One thread runs every client: a coroutine per connection takes the next
    // order when its last one ended (the load generator should cost the
    // machine it measures as little as it can).
    asio::io_context io(1);
    size_t next = 0;
    auto client = [&]() -> asio::awaitable<void> {
      AsyncApi api(io.get_executor(), api_socket(options).string(), client_timeout);
      asio::steady_timer pace(io);
      for (size_t i; (i = next++) < n;) {
        OrderOutcome& out = result.outcomes[i];
        auto t0 = Clock::now();
        if (options.arrival_rate_per_s > 0) {
          t0 = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                           static_cast<double>(i) / options.arrival_rate_per_s));
          pace.expires_at(t0);
          co_await pace.async_wait(asio::use_awaitable);
        }
        co_await replay_one(api, data, ids, options, i, t0, out);
        if (out.status != "COMPLETED") failed.fetch_add(1);
        done.fetch_add(1);
      }
    };
    std::exception_ptr failure;
    const size_t clients = std::clamp<size_t>(n, 1, std::max<unsigned>(options.concurrency, 1));
    for (size_t c = 0; c < clients; ++c) {
      asio::co_spawn(io, client(), [&failure](std::exception_ptr e) {
        if (e && !failure) failure = e;
      });
    }
    io.run();
    if (failure) std::rethrow_exception(failure);
  }
  result.wall_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return result;
}

// ---------------------------------------------------------------- summary

int64_t percentile(const std::vector<int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  p = std::clamp(p, 0.0, 100.0);
  // Nearest rank: the smallest value with at least p% of the values <= it.
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

Summary summarize(const Dataset& data, const ReplayResult& result) {
  Summary s;
  s.origin = data.origin;
  s.attribution = data.attribution;
  s.total = result.outcomes.size();
  s.wall_seconds = result.wall_seconds;
  std::vector<int64_t> latencies;
  latencies.reserve(s.total);
  for (size_t i = 0; i < result.outcomes.size(); ++i) {
    const auto& o = result.outcomes[i];
    if (!o.error_kind.empty()) {
      ++s.errors;
      if (o.error_kind.find("transport:") != std::string::npos) ++s.transport_errors;
      if (s.errors_by_kind[o.error_kind]++ == 0) s.error_examples.push_back(o.error);
      continue;
    }
    if (o.status == "COMPLETED") {
      ++s.completed;
    } else {
      ++s.failed;
      ++s.failed_by_reason[o.failure_reason];
    }
    if (o.latency_us >= 0) latencies.push_back(o.latency_us);
  }
  std::ranges::sort(latencies);
  s.orders_per_second =
      s.wall_seconds > 0 ? static_cast<double>(s.completed + s.failed) / s.wall_seconds : 0.0;
  s.p50_ms = percentile(latencies, 50) / 1000.0;
  s.p90_ms = percentile(latencies, 90) / 1000.0;
  s.p99_ms = percentile(latencies, 99) / 1000.0;
  s.max_ms = latencies.empty() ? 0.0 : latencies.back() / 1000.0;
  return s;
}

void fetch_bestsellers(const Dataset& data, const Ids& ids, const Options& options,
                       Summary& summary) {
  Api api(api_socket(options).string(), std::chrono::seconds(10));
  const Reply r = call_with_retry(api, "GET", "/v1/rankings/bestsellers?days=1&limit=10", nullptr,
                                  {}, 3, any_retryable);
  if (!r.ok() || !r.body.is_array()) {
    summary.bestsellers_error = "GET /v1/rankings/bestsellers: " +
                                (r.ok() ? "not an array: " + r.body.dump() : r.describe());
    return;
  }
  std::unordered_map<uint64_t, size_t> ours;
  for (size_t p = 0; p < ids.product_ids.size(); ++p) ours[ids.product_ids[p]] = p;
  for (const auto& row : r.body) {
    BestSeller b;
    const auto id = get_u64(row, "product_id");
    const auto units = get_i64(row, "units");
    if (!id || !units) {
      summary.bestsellers_error = "GET /v1/rankings/bestsellers: bad row " + row.dump();
      return;
    }
    b.product_id = *id;
    b.units = *units;
    if (auto it = ours.find(*id); it != ours.end()) {
      b.source_id = data.products[it->second].source_id;
    }
    const Reply p = call_with_retry(api, "GET", "/v1/products/" + std::to_string(*id), nullptr, {},
                                    3, any_retryable);
    if (p.ok()) {
      b.category = get_string(p.body, "category").value_or("");
      b.name = get_string(p.body, "name").value_or("");
    } else {
      b.category = "?";
      summary.bestsellers_error = "GET /v1/products/" + std::to_string(*id) + ": " + p.describe();
    }
    summary.bestsellers.push_back(std::move(b));
  }
}

void print_summary(const Summary& s, std::ostream& out) {
  auto row = [&](const std::string& label, size_t value) {
    std::string padded = label;
    if (padded.size() < 28) padded.resize(28, ' ');
    out << "  " << padded << " " << value << "\n";
  };
  out << "replay of " << s.total << " orders (" << s.origin << ")\n";
  row("completed", s.completed);
  row("failed", s.failed);
  for (const auto& [reason, n] : s.failed_by_reason) row("  " + reason, n);
  row("errors", s.errors);
  for (const auto& [kind, n] : s.errors_by_kind) row("  " + kind, n);
  row("total", s.total);
  for (const auto& e : s.error_examples) out << "  e.g. " << e << "\n";
  out << "wall time " << fixed(s.wall_seconds, 3) << " s, " << fixed(s.orders_per_second, 1)
      << " orders/s\n";
  out << "latency ms: p50 " << fixed(s.p50_ms, 2) << "  p90 " << fixed(s.p90_ms, 2) << "  p99 "
      << fixed(s.p99_ms, 2) << "  max " << fixed(s.max_ms, 2) << "\n";
  out << "top " << s.bestsellers.size() << " best sellers (last day):\n";
  for (size_t i = 0; i < s.bestsellers.size(); ++i) {
    const auto& b = s.bestsellers[i];
    char line[128];
    std::snprintf(line, sizeof line, "  %2zu. product %-8llu %6lld units  ", i + 1,
                  static_cast<unsigned long long>(b.product_id), static_cast<long long>(b.units));
    std::string category = b.category.empty() ? "-" : b.category;
    if (category.size() < 24) category.resize(24, ' ');
    out << line << category << " source " << (b.source_id.empty() ? "-" : b.source_id) << "\n";
  }
  if (!s.bestsellers_error.empty()) out << "  (" << s.bestsellers_error << ")\n";
  if (!s.attribution.empty()) out << "Data: " << s.attribution << "\n";
}

json summary_json(const Summary& s) {
  json best = json::array();
  for (size_t i = 0; i < s.bestsellers.size(); ++i) {
    const auto& b = s.bestsellers[i];
    best.push_back({{"rank", i + 1},
                    {"product_id", b.product_id},
                    {"units", b.units},
                    {"category", b.category},
                    {"name", b.name},
                    {"source_id", b.source_id}});
  }
  json j = {
      {"data", s.origin},
      {"orders",
       {{"total", s.total},
        {"completed", s.completed},
        {"failed", s.failed},
        {"failed_by_reason", s.failed_by_reason},
        {"errors", s.errors},
        {"errors_by_kind", s.errors_by_kind},
        {"error_examples", s.error_examples}}},
      {"wall_time_s", s.wall_seconds},
      {"orders_per_s", s.orders_per_second},
      {"latency_ms", {{"p50", s.p50_ms}, {"p90", s.p90_ms}, {"p99", s.p99_ms}, {"max", s.max_ms}}},
      {"bestsellers", std::move(best)},
  };
  if (!s.bestsellers_error.empty()) j["bestsellers_error"] = s.bestsellers_error;
  if (!s.attribution.empty()) j["attribution"] = s.attribution;
  return j;
}

// ---------------------------------------------------------------- verify

VerifyResult verify(const Dataset& data, const Ids& ids, const ReplayResult& result,
                    const Options& options) {
  VerifyResult v;
  v.orders = data.orders.size();
  v.products = data.products.size();
  const size_t n_orders = data.orders.size();

  // (phase, index) keeps the report in a stable order.
  std::mutex mutex;
  std::vector<std::pair<std::pair<int, size_t>, std::string>> found;
  auto violation = [&](int phase, size_t index, std::string text) {
    std::lock_guard lock(mutex);
    found.push_back({{phase, index}, std::move(text)});
  };
  auto make_api = [&] { return Api(api_socket(options).string(), std::chrono::seconds(30)); };

  // 1. Orders: fetch each; terminal; amounts.
  // One byte per order, not std::vector<bool>: parallel_for's threads write
  // neighbouring entries, and vector<bool> packs them into shared words.
  std::vector<std::uint8_t> completed(n_orders, 0);
  std::vector<int64_t> points_used(n_orders, 0);
  std::vector<std::string> final_status(n_orders);
  parallel_for(n_orders, options.concurrency, make_api, [&](Api& api, size_t i) {
    const Order& o = data.orders[i];
    const auto& out = result.outcomes.at(i);
    const std::string who = "order " + o.source_id;
    if (!out.order_id) {
      violation(1, i, "not accepted: " + (out.error.empty() ? who : out.error));
      return;
    }
    const std::string id = std::to_string(*out.order_id);
    const std::string label = who + " (id " + id + ")";
    const Reply r = call_with_retry(api, "GET", "/v1/orders/" + id, nullptr, {}, 5, any_retryable);
    if (!r.ok()) {
      violation(1, i, label + ": GET /v1/orders/" + id + ": " + r.describe());
      return;
    }
    const json& b = r.body;
    const std::string status = get_string(b, "status").value_or("");
    final_status[i] = status;
    if (get_u64(b, "order_id") != out.order_id) {
      violation(1, i, label + ": GET answered another order: " + b.dump());
      return;
    }
    if (!terminal(status)) {
      violation(1, i, label + ": not terminal: status '" + status + "'");
      return;
    }
    if (!out.status.empty() && out.status != status) {
      violation(1, i, label + ": status changed from " + out.status + " to " + status);
    }
    const auto paid = get_i64(b, "paid");
    if (status == "FAILED") {
      if (paid.value_or(-1) != 0) {
        violation(1, i, label + ": FAILED but paid " + (paid ? std::to_string(*paid) : "missing"));
      }
      return;
    }
    completed[i] = 1;
    const auto subtotal = get_i64(b, "subtotal");
    const auto shipping = get_i64(b, "shipping");
    const auto discount = get_i64(b, "discount");
    const auto used = get_i64(b, "points_used");
    if (!subtotal || !shipping || !discount || !used || !paid) {
      violation(1, i, label + ": COMPLETED order lacks an amount: " + b.dump());
      return;
    }
    points_used[i] = *used;
    if (*paid != *subtotal + *shipping - *discount - *used) {
      violation(1, i,
                label + ": paid " + std::to_string(*paid) + " != subtotal " +
                    std::to_string(*subtotal) + " + shipping " + std::to_string(*shipping) +
                    " - discount " + std::to_string(*discount) + " - points_used " +
                    std::to_string(*used));
    }
    if (*shipping != o.shipping_cents) {
      violation(1, i,
                label + ": shipping " + std::to_string(*shipping) + ", sent " +
                    std::to_string(o.shipping_cents));
    }
    if (*used != o.points) {
      violation(1, i,
                label + ": points_used " + std::to_string(*used) + ", requested " +
                    std::to_string(o.points));
    }
    const int64_t expected_discount = std::min(o.voucher_cents, *subtotal + *shipping);
    if (*discount != expected_discount) {
      violation(1, i,
                label + ": discount " + std::to_string(*discount) + ", expected " +
                    std::to_string(expected_discount) + " (voucher " +
                    std::to_string(o.voucher_cents) + ")");
    }
    // Items: the lines sent, at a unit price whose sum is the subtotal.
    std::map<uint64_t, int64_t> sent;
    for (const auto& line : o.lines) sent[ids.product_ids[line.product_index]] += line.quantity;
    std::map<uint64_t, int64_t> got;
    int64_t sum = 0;
    if (b.contains("items") && b["items"].is_array()) {
      for (const auto& item : b["items"]) {
        const auto pid = get_u64(item, "product_id");
        const auto q = get_i64(item, "quantity");
        const auto price = get_i64(item, "unit_price");
        if (!pid || !q || !price) {
          violation(1, i, label + ": bad item " + item.dump());
          continue;
        }
        got[*pid] += *q;
        sum += *q * *price;
      }
    }
    if (got != sent)
      violation(1, i, label + ": items " + json(got).dump() + ", sent " + json(sent).dump());
    if (sum != *subtotal) {
      violation(1, i,
                label + ": subtotal " + std::to_string(*subtotal) +
                    " != sum of quantity x unit_price " + std::to_string(sum));
    }
  });

  std::vector<int64_t> completed_units(data.products.size(), 0);
  for (size_t i = 0; i < n_orders; ++i) {
    if (!completed[i]) continue;
    for (const auto& line : data.orders[i].lines) {
      completed_units[line.product_index] += line.quantity;
    }
  }

  // 2. Products: initial stock == current stock + units in COMPLETED orders.
  parallel_for(data.products.size(), options.concurrency, make_api, [&](Api& api, size_t p) {
    const auto& product = data.products[p];
    const std::string id = std::to_string(ids.product_ids[p]);
    const std::string label = "product " + product.source_id + " (id " + id + ")";
    const Reply r =
        call_with_retry(api, "GET", "/v1/products/" + id, nullptr, {}, 5, any_retryable);
    const auto stock = r.ok() ? get_i64(r.body, "stock") : std::nullopt;
    if (!stock) {
      violation(2, p,
                label + ": GET /v1/products/" + id + ": " +
                    (r.ok() ? "no stock in " + r.body.dump() : r.describe()));
      return;
    }
    if (product.stock != *stock + completed_units[p]) {
      // Name the orders involved, so a mismatch can be traced to one of them.
      std::string involved;
      for (size_t i = 0; i < n_orders; ++i) {
        for (const auto& line : data.orders[i].lines) {
          if (line.product_index != p) continue;
          const auto& out = result.outcomes.at(i);
          involved += " " + data.orders[i].source_id + "=" +
                      (out.order_id ? std::to_string(*out.order_id) : std::string("?")) + ":" +
                      (final_status[i].empty() ? out.status : final_status[i]);
        }
      }
      violation(2, p, label + ": orders with it:" + involved);
      violation(2, p,
                label + ": initial stock " + std::to_string(product.stock) + " != current " +
                    std::to_string(*stock) + " + completed units " +
                    std::to_string(completed_units[p]));
    }
  });

  // 3. Users: points balance; coupon state.
  parallel_for(n_orders, options.concurrency, make_api, [&](Api& api, size_t i) {
    const Order& o = data.orders[i];
    const std::string uid = std::to_string(ids.user_ids[i]);
    const std::string label = "user " + uid + " (order " + o.source_id + ")";
    const Reply r =
        call_with_retry(api, "GET", "/v1/users/" + uid + "/points", nullptr, {}, 5, any_retryable);
    const auto balance = r.ok() ? get_i64(r.body, "balance") : std::nullopt;
    if (!balance) {
      violation(3, i,
                label + ": GET /v1/users/" + uid +
                    "/points: " + (r.ok() ? "no balance in " + r.body.dump() : r.describe()));
    } else if (o.user_points != *balance + points_used[i]) {
      violation(3, i,
                label + ": charged " + std::to_string(o.user_points) + " != balance " +
                    std::to_string(*balance) + " + points_used of COMPLETED order " +
                    std::to_string(points_used[i]));
    }
    if (!ids.user_coupon_ids[i] || !terminal(final_status[i])) return;
    const uint64_t ucid = *ids.user_coupon_ids[i];
    const Reply c =
        call_with_retry(api, "GET", "/v1/users/" + uid + "/coupons", nullptr, {}, 5, any_retryable);
    if (!c.ok() || !c.body.is_array()) {
      violation(3, i,
                label + ": GET /v1/users/" + uid +
                    "/coupons: " + (c.ok() ? "not an array: " + c.body.dump() : c.describe()));
      return;
    }
    const std::string want = completed[i] ? "USED" : "ISSUED";
    std::string state = "(absent)";
    for (const auto& row : c.body) {
      if (get_u64(row, "user_coupon_id") == ucid) state = get_string(row, "status").value_or("?");
    }
    if (state != want) {
      violation(3, i,
                label + ": user coupon " + std::to_string(ucid) + " of a " + final_status[i] +
                    " order is " + state + ", expected " + want);
    }
  });

  // 4. Best sellers (days=1) == units in COMPLETED orders. Other products
  // (earlier runs) may rank too: raise the limit until the list is not full.
  {
    Api api = make_api();
    size_t limit = data.products.size() + 1000;
    std::unordered_map<uint64_t, int64_t> ranked;
    bool full = true;
    int64_t last_units = 0;
    std::string problem;
    bool answered = false;
    for (;;) {
      const std::string target = "/v1/rankings/bestsellers?days=1&limit=" + std::to_string(limit);
      const Reply r = call_with_retry(api, "GET", target, nullptr, {}, 5, any_retryable);
      if (!r.ok() || !r.body.is_array()) {
        problem =
            "GET " + target + ": " + (r.ok() ? "not an array: " + r.body.dump() : r.describe());
        break;
      }
      std::unordered_map<uint64_t, int64_t> rows;
      int64_t last = 0;
      for (const auto& row : r.body) {
        const auto pid = get_u64(row, "product_id");
        const auto units = get_i64(row, "units");
        if (!pid || !units) {
          problem = "GET " + target + ": bad row " + row.dump();
          break;
        }
        rows[*pid] = *units;
        last = *units;
      }
      if (!problem.empty()) break;
      ranked = std::move(rows);
      last_units = last;
      full = r.body.size() >= limit;
      answered = true;
      if (!full || limit >= 1'000'000) break;
      limit *= 4;
    }
    if (!answered) {
      violation(4, 0, problem);
    } else {
      for (size_t p = 0; p < data.products.size(); ++p) {
        const auto it = ranked.find(ids.product_ids[p]);
        const std::string label = "product " + data.products[p].source_id + " (id " +
                                  std::to_string(ids.product_ids[p]) + ")";
        if (it == ranked.end() && full) {
          // Cut off by the limit: it can only have no more units than the last row.
          if (completed_units[p] > last_units) {
            violation(4, p,
                      label + ": not among the best sellers although " +
                          std::to_string(completed_units[p]) + " units were completed");
          }
          continue;
        }
        const int64_t units = it == ranked.end() ? 0 : it->second;
        if (units != completed_units[p]) {
          violation(4, p,
                    label + ": best-seller units " + std::to_string(units) +
                        " != completed units " + std::to_string(completed_units[p]));
        }
      }
    }
  }

  std::ranges::stable_sort(found, {}, &decltype(found)::value_type::first);
  for (auto& f : found) v.violations.push_back(std::move(f.second));
  return v;
}

}  // namespace ringmart::replay
