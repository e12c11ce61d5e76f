#include "telemetry/log.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>
#include <vector>

namespace ringmart::telemetry {
namespace {

thread_local Fields g_fields;

// syslog(3) priorities, as journald's PRIORITY field expects.
int priority(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug:
      return 7;  // LOG_DEBUG
    case spdlog::level::info:
      return 6;  // LOG_INFO
    case spdlog::level::warn:
      return 4;  // LOG_WARNING
    case spdlog::level::err:
      return 3;  // LOG_ERR
    case spdlog::level::critical:
      return 2;  // LOG_CRIT
    default:
      return 6;
  }
}

// Journal fields through sd_journal_sendv(3): one "NAME=value" iovec each;
// journald takes the values as bytes (no quoting needed, newlines allowed).
class JournalSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit JournalSink(std::string daemon)
      : daemon_(std::move(daemon)), identifier_("SYSLOG_IDENTIFIER=ringmart-" + daemon_) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    const Fields& f = current_fields();
    std::vector<std::string> fields;
    fields.reserve(8);
    fields.push_back(
        fmt::format("MESSAGE={}", std::string_view(msg.payload.data(), msg.payload.size())));
    fields.push_back(fmt::format("PRIORITY={}", priority(msg.level)));
    fields.push_back(identifier_);
    fields.push_back("DAEMON=" + daemon_);
    if (f.order_id) fields.push_back(fmt::format("ORDER_ID={}", f.order_id));
    if (f.saga_id) fields.push_back(fmt::format("SAGA_ID={}", f.saga_id));
    if (f.trace_id.valid()) fields.push_back("TRACE_ID=" + f.trace_id.hex());
    std::vector<iovec> iov;
    iov.reserve(fields.size());
    for (auto& s : fields) iov.push_back({s.data(), s.size()});
    // A journal that is gone cannot be told; the line is lost, the daemon goes on.
    (void)sd_journal_sendv(iov.data(), static_cast<int>(iov.size()));
  }
  void flush_() override {}

 private:
  std::string daemon_;
  std::string identifier_;
};

// "2026-12-07T10:00:00.123456Z" (RFC 3339, UTC, microseconds).
std::string rfc3339_utc(std::chrono::system_clock::time_point t) {
  const auto us =
      std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  const std::time_t seconds = static_cast<std::time_t>(us / 1'000'000);
  std::tm tm{};
  ::gmtime_r(&seconds, &tm);
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:06}Z", tm, us % 1'000'000);
}

class JsonSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  JsonSink(std::FILE* out, std::string daemon) : out_(out), daemon_(std::move(daemon)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    const Fields& f = current_fields();
    nlohmann::json line = {
        {"TIMESTAMP", rfc3339_utc(msg.time)},
        {"PRIORITY", priority(msg.level)},
        {"LEVEL", std::string_view(spdlog::level::to_string_view(msg.level).data(),
                                   spdlog::level::to_string_view(msg.level).size())},
        {"DAEMON", daemon_},
        {"PID", ::getpid()},
        {"MESSAGE", std::string(msg.payload.data(), msg.payload.size())}};
    if (f.order_id) line["ORDER_ID"] = f.order_id;
    if (f.saga_id) line["SAGA_ID"] = f.saga_id;
    if (f.trace_id.valid()) line["TRACE_ID"] = f.trace_id.hex();
    // Invalid UTF-8 in a message is replaced, never thrown.
    auto text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    text += '\n';
    std::fwrite(text.data(), 1, text.size(), out_);
  }
  void flush_() override { std::fflush(out_); }

 private:
  std::FILE* out_;
  std::string daemon_;
};

}  // namespace

std::expected<LogFormat, std::string> parse_log_format(std::string_view name) {
  if (name == "text") return LogFormat::text;
  if (name == "json") return LogFormat::json;
  if (name == "journal") return LogFormat::journal;
  if (name == "auto") return stderr_is_journal() ? LogFormat::journal : LogFormat::text;
  return std::unexpected(fmt::format(
      "log_format must be \"auto\", \"text\", \"json\" or \"journal\", not \"{}\"", name));
}

bool stderr_is_journal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  if (!stream) return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(stream, "%llu:%llu", &dev, &ino) != 2) return false;
  struct stat st {};
  if (::fstat(STDERR_FILENO, &st) != 0) return false;
  return st.st_dev == dev && st.st_ino == ino;
}

const Fields& current_fields() { return g_fields; }

ScopedFields::ScopedFields(const Fields& fields) : previous_(g_fields) { g_fields = fields; }

ScopedFields::~ScopedFields() { g_fields = previous_; }

std::shared_ptr<spdlog::sinks::sink> json_sink(std::FILE* out, std::string daemon) {
  return std::make_shared<JsonSink>(out, std::move(daemon));
}

std::shared_ptr<spdlog::logger> make_logger(const std::string& daemon, const std::string& level,
                                            LogFormat format) {
  if (auto existing = spdlog::get(daemon)) return existing;
  std::shared_ptr<spdlog::logger> logger;
  switch (format) {
    case LogFormat::journal:
      logger = std::make_shared<spdlog::logger>(daemon, std::make_shared<JournalSink>(daemon));
      break;
    case LogFormat::json:
      logger = std::make_shared<spdlog::logger>(daemon, json_sink(stderr, daemon));
      break;
    case LogFormat::text:
      logger = std::make_shared<spdlog::logger>(
          daemon, std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
      logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %n[%P] %v");
      break;
  }
  spdlog::register_logger(logger);
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::warn);
  return logger;
}

}  // namespace ringmart::telemetry
