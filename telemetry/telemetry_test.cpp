// W3C traceparent parsing against the recommendation's rules, and the JSON
// log lines with the thread's fields.
#include <gtest/gtest.h>
#include <spdlog/logger.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "telemetry/log.hpp"
#include "telemetry/trace_context.hpp"

namespace ringmart::telemetry {
namespace {

// The example of the recommendation, section 3.2.
constexpr const char* kExample = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

TEST(TraceParent, ParsesTheRecommendationsExample) {
  const auto p = parse_traceparent(kExample);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->trace_id.high, 0x4bf92f3577b34da6u);
  EXPECT_EQ(p->trace_id.low, 0xa3ce929d0e0e4736u);
  EXPECT_EQ(p->parent_id, 0x00f067aa0ba902b7u);
  EXPECT_EQ(p->flags, 1);
  EXPECT_EQ(p->trace_id.hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(format_traceparent(p->trace_id, p->parent_id, p->flags), kExample);
}

TEST(TraceParent, RefusesWhatTheRecommendationCallsInvalid) {
  const std::string good = kExample;
  const std::vector<std::string> bad = {
      "",
      "00",
      good.substr(0, 54),                                         // one digit short
      good + "-extra",                                            // version 00 has exactly 55
      "ff" + good.substr(2),                                      // version ff is invalid
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  // all-zero trace id
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  // all-zero parent id
      "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  // upper-case hex
      "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",  // wrong separator
      "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",  // not hex
      "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
      "cc" + good.substr(2) + "x",  // a future version's extra fields start with '-'
  };
  for (const auto& v : bad) EXPECT_FALSE(parse_traceparent(v)) << v;
  // A future version is parsed as far as version 00 goes; its extra fields are ignored.
  const auto future = parse_traceparent("cc" + good.substr(2) + "-what-comes-next");
  ASSERT_TRUE(future);
  EXPECT_EQ(future->trace_id.hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
}

TEST(TraceParent, NewIdsAreValidDistinctAndRoundTrip) {
  const auto a = new_trace_id();
  const auto b = new_trace_id();
  EXPECT_TRUE(a.valid());
  EXPECT_NE(a, b);
  EXPECT_EQ(a.hex().size(), 32u);
  const auto span = new_span_id();
  EXPECT_NE(span, 0u);
  const auto parsed = parse_traceparent(format_traceparent(a, span, 0));
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->trace_id, a);
  EXPECT_EQ(parsed->parent_id, span);
}

class JsonLog : public ::testing::Test {
 protected:
  void SetUp() override {
    file_ = std::tmpfile();
    ASSERT_NE(file_, nullptr);
    logger_ = std::make_shared<spdlog::logger>("order", json_sink(file_, "order"));
    logger_->set_level(spdlog::level::debug);
  }
  void TearDown() override { std::fclose(file_); }
  std::vector<nlohmann::json> lines() {
    logger_->flush();
    std::rewind(file_);
    std::vector<nlohmann::json> out;
    char buf[4096];
    while (std::fgets(buf, sizeof buf, file_)) out.push_back(nlohmann::json::parse(buf));
    return out;
  }
  std::FILE* file_ = nullptr;
  std::shared_ptr<spdlog::logger> logger_;
};

TEST_F(JsonLog, EachLineIsOneObjectWithTheThreadsFieldsWhileTheyAreSet) {
  const auto trace = new_trace_id();
  logger_->info("before");
  {
    ScopedFields outer({42, 42, trace});
    logger_->warn("inside \"quoted\"\nand a second line");
    {
      ScopedFields inner({7, 8, {}});
      logger_->debug("nested");
    }
    logger_->error("outer again");
  }
  logger_->info("after");
  const auto l = lines();
  ASSERT_EQ(l.size(), 5u);
  EXPECT_EQ(l[0]["MESSAGE"], "before");
  EXPECT_EQ(l[0]["DAEMON"], "order");
  EXPECT_EQ(l[0]["PRIORITY"], 6);
  EXPECT_EQ(l[0]["LEVEL"], "info");
  EXPECT_EQ(l[0]["PID"], ::getpid());
  EXPECT_FALSE(l[0].contains("ORDER_ID"));
  EXPECT_FALSE(l[0].contains("TRACE_ID"));
  EXPECT_EQ(l[0]["TIMESTAMP"].get<std::string>().size(), 27u);  // 2026-12-07T10:00:00.123456Z
  EXPECT_EQ(l[1]["MESSAGE"], "inside \"quoted\"\nand a second line");
  EXPECT_EQ(l[1]["PRIORITY"], 4);
  EXPECT_EQ(l[1]["ORDER_ID"], 42);
  EXPECT_EQ(l[1]["SAGA_ID"], 42);
  EXPECT_EQ(l[1]["TRACE_ID"], trace.hex());
  EXPECT_EQ(l[2]["ORDER_ID"], 7);
  EXPECT_EQ(l[2]["SAGA_ID"], 8);
  EXPECT_FALSE(l[2].contains("TRACE_ID"));
  EXPECT_EQ(l[2]["PRIORITY"], 7);
  EXPECT_EQ(l[3]["ORDER_ID"], 42);  // the inner scope restored the outer fields
  EXPECT_EQ(l[3]["PRIORITY"], 3);
  EXPECT_FALSE(l[4].contains("ORDER_ID"));
}

TEST_F(JsonLog, InvalidUtf8IsReplacedNotThrown) {
  logger_->info("bad \xff\xfe bytes");
  const auto l = lines();
  ASSERT_EQ(l.size(), 1u);
  EXPECT_NE(l[0]["MESSAGE"].get<std::string>().find("bad "), std::string::npos);
}

TEST(LogFormat, NamesAndTheAutomaticChoice) {
  EXPECT_EQ(parse_log_format("json"), LogFormat::json);
  EXPECT_EQ(parse_log_format("journal"), LogFormat::journal);
  EXPECT_EQ(parse_log_format("text"), LogFormat::text);
  EXPECT_FALSE(parse_log_format("xml"));
  EXPECT_NE(parse_log_format("xml").error().find("\"xml\""), std::string::npos);
  const char* saved = std::getenv("JOURNAL_STREAM");
  const std::string previous = saved ? saved : "";
  ::unsetenv("JOURNAL_STREAM");
  EXPECT_EQ(parse_log_format("auto"), LogFormat::text);
  struct stat st {};
  ASSERT_EQ(::fstat(STDERR_FILENO, &st), 0);
  // stderr's own device and inode: systemd connected it to the journal.
  ::setenv("JOURNAL_STREAM", (std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino)).c_str(),
           1);
  EXPECT_EQ(parse_log_format("auto"), LogFormat::journal);
  // Inherited by a child whose stderr was redirected elsewhere: not the journal.
  ::setenv("JOURNAL_STREAM",
           (std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino + 1)).c_str(), 1);
  EXPECT_EQ(parse_log_format("auto"), LogFormat::text);
  if (saved) {
    ::setenv("JOURNAL_STREAM", previous.c_str(), 1);
  } else {
    ::unsetenv("JOURNAL_STREAM");
  }
}

}  // namespace
}  // namespace ringmart::telemetry
