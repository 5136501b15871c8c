#include "trigger/dispatcher.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <map>
#include <set>
#include <mutex>
#include <thread>

#include "broker/cursor_store.hpp"
#include "broker/file_log.hpp"
#include "core/base64.hpp"
#include "core/fs.hpp"
#include "core/json_format.hpp"
#include "core/protobuf_format.hpp"
#include "tests/support/http_sink.hpp"
#include "tests/support/process.hpp"
#include "tests/support/wait.hpp"

namespace sluice {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using testing::HttpSink;
using testing::ReceivedRequest;
using testing::SinkResponse;
using testing::TempDir;
using testing::wait_until;

CloudEvent make_event(std::string id, std::string type = "com.example.order") {
  CloudEvent e;
  e.id = std::move(id);
  e.source = "/tests";
  e.type = std::move(type);
  e.datacontenttype = "application/json";
  e.data = R"({"n":1})";
  return e;
}

CloudEvent keyed_event(std::string id, std::string key) {
  auto e = make_event(std::move(id));
  e.extensions["partitionkey"] = AttributeValue::of_string(std::move(key));
  return e;
}

SinkResponse answer(int status, std::string body = "") {
  SinkResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

// Tracks how many requests a sink is answering at once.
struct Concurrency {
  std::atomic<int> now{0};
  std::atomic<int> max{0};
  void enter() {
    int n = ++now;
    int m = max.load();
    while (n > m && !max.compare_exchange_weak(m, n)) {
    }
  }
  void leave() { --now; }
};

// Blocks a sink's answer until released (bounded, so that a failing test cannot hang).
struct Gate {
  std::atomic<bool> open{false};
  void wait() const {
    wait_until([this] { return open.load(); }, std::chrono::seconds(10), milliseconds(2));
  }
};

// The fixture's FileLog with faults to order: reads that fail (as for a record that fails its CRC check),
// or a start_offset() that lags (as when retention moves the start between the dispatcher's look and its
// read).
class FaultyLog final : public EventLog {
 public:
  explicit FaultyLog(EventLog& inner) : inner_(inner) {}
  void append(std::vector<std::string> payloads, AppendCallback done) override {
    inner_.append(std::move(payloads), std::move(done));
  }
  Result<std::vector<LogRecord>> read(std::uint64_t from, std::size_t max_records,
                                      std::size_t max_bytes) const override {
    if (fail_reads) return make_error("offset " + std::to_string(from), "record fails its CRC32C check", 500);
    auto records = inner_.read(from, max_records, max_bytes);
    if (records && !records.value().empty())
      read_to = std::max(read_to.load(), records.value().back().offset + 1);
    return records;
  }
  std::uint64_t start_offset() const override {
    const std::int64_t stale = stale_start;
    return stale >= 0 ? static_cast<std::uint64_t>(stale) : inner_.start_offset();
  }
  std::uint64_t end_offset() const override { return inner_.end_offset(); }
  std::uint64_t subscribe(std::function<void(std::uint64_t)> on_durable) override {
    return inner_.subscribe(std::move(on_durable));
  }
  void unsubscribe(std::uint64_t id) override { inner_.unsubscribe(id); }
  Status flush() override { return inner_.flush(); }
  void close() override {}

  std::atomic<bool> fail_reads{false};
  std::atomic<std::int64_t> stale_start{-1};
  mutable std::atomic<std::uint64_t> read_to{0};  // one past the last offset a read returned

 private:
  EventLog& inner_;
};

class DispatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FileLogOptions options;
    options.fsync = false;
    options.name = "default";
    auto log = FileLog::open(dir_.path() + "/log", options, RealClock::instance());
    ASSERT_TRUE(log) << log.error().to_string();
    log_ = std::move(log.value());
    open_cursors();
    io_thread_ = std::thread([this] { io_.run(); });
    // No keep-alive pool: a test's HttpSink then shuts down at once instead of waiting for idle
    // connections to time out.
    HttpClientOptions client_options;
    client_options.max_idle_per_host = 0;
    client_ = std::make_unique<HttpClient>(io_.get_executor(), client_options);
  }

  void TearDown() override {
    for (auto& d : dispatchers_) d->stop(milliseconds(2000));
    dispatchers_.clear();
    work_.reset();
    io_.stop();
    io_thread_.join();
    client_.reset();
    log_->close();
  }

  void open_cursors() {
    cursors_.reset();
    auto cursors = CursorStore::open(dir_.path() + "/cursors");
    ASSERT_TRUE(cursors) << cursors.error().to_string();
    cursors_ = std::move(cursors.value());
  }

  std::uint64_t publish(const CloudEvent& event) {
    std::promise<Result<std::uint64_t>> appended;
    log_->append({to_protobuf(event)}, [&](Result<std::uint64_t> r) { appended.set_value(std::move(r)); });
    auto r = appended.get_future().get();
    EXPECT_TRUE(r) << r.error().to_string();
    return r ? r.value() : 0;
  }

  json manifest(const std::string& name, const std::string& uri, json spec_extra = json::object(),
                json annotations = json::object()) {
    json m = {{"apiVersion", "eventing.knative.dev/v1"},
              {"kind", "Trigger"},
              {"metadata", {{"name", name}, {"annotations", annotations}}},
              {"spec", {{"broker", "default"}, {"subscriber", {{"uri", uri}}}}}};
    if (!spec_extra.contains("delivery")) spec_extra["delivery"] = json::object();
    if (!spec_extra["delivery"].contains("backoffDelay")) spec_extra["delivery"]["backoffDelay"] = "PT0.01S";
    for (auto it = spec_extra.begin(); it != spec_extra.end(); ++it) m["spec"][it.key()] = it.value();
    return m;
  }

  TriggerSpec spec(const json& m) {
    auto r = parse_trigger(m);
    EXPECT_TRUE(r) << r.error().to_string();
    return r.value();
  }

  TriggerDispatcher& make(TriggerSpec s, SubscriberResolver resolver = {},
                          StartPosition first_start = StartPosition::End) {
    DispatcherOptions options;
    options.start = first_start;
    options.metrics = &metrics_;
    options.commit_interval = milliseconds(20);
    options.read_error_backoff = milliseconds(20);
    dispatchers_.push_back(std::make_unique<TriggerDispatcher>(
        std::move(s), "default", dispatch_log_ != nullptr ? *dispatch_log_ : *log_, *cursors_, *client_,
        RealClock::instance(), io_.get_executor(), std::move(resolver),
        [this](CloudEvent reply, std::function<void(Status)> done) { on_reply(reply, done); }, options));
    return *dispatchers_.back();
  }

  TriggerDispatcher& start(TriggerSpec s, SubscriberResolver resolver = {},
                           StartPosition first_start = StartPosition::End) {
    auto& d = make(std::move(s), std::move(resolver), first_start);
    d.start();
    return d;
  }

  void on_reply(const CloudEvent& reply, const std::function<void(Status)>& done) {
    std::lock_guard lock(replies_mu_);
    if (reply_failures_ > 0) {
      --reply_failures_;
      done(make_error("default", reply_failure_code_ == 503 ? "log full" : "refused", reply_failure_code_));
      return;
    }
    replies_.push_back(reply);
    done(ok());
  }

  std::vector<CloudEvent> replies() {
    std::lock_guard lock(replies_mu_);
    return replies_;
  }

  double counter(const std::string& name, const std::string& trigger) {
    return metrics_.counter(name, "", {{"broker", "default"}, {"trigger", trigger}}).value();
  }

  TempDir dir_;
  std::unique_ptr<FileLog> log_;
  std::unique_ptr<FaultyLog> faulty_;  // outlives the dispatchers (stopped in TearDown)
  EventLog* dispatch_log_ = nullptr;   // what dispatchers read, when not log_
  std::unique_ptr<CursorStore> cursors_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  std::thread io_thread_;
  std::unique_ptr<HttpClient> client_;
  MetricsRegistry metrics_;
  std::vector<std::unique_ptr<TriggerDispatcher>> dispatchers_;
  std::mutex replies_mu_;
  std::vector<CloudEvent> replies_;
  int reply_failures_ = 0;
  int reply_failure_code_ = 503;
};

TEST_F(DispatcherTest, DeliversMatchingEventsInBinaryModeWithPreferReply) {
  HttpSink sink;
  auto& d = start(spec(manifest("orders", sink.url() + "/events",
                                {{"filter", {{"attributes", {{"type", "com.example.order"}}}}}})));
  const auto first = publish(make_event("e1"));
  publish(make_event("e2", "com.example.other"));
  publish(make_event("e3"));
  ASSERT_TRUE(sink.wait_for(2));
  ASSERT_TRUE(wait_until([&] { return d.stats().committed_offset == first + 3; }));
  auto requests = sink.requests();
  ASSERT_EQ(requests.size(), 2u);
  std::set<std::string> ids;
  for (const auto& r : requests) {
    EXPECT_EQ(r.path, "/events");
    EXPECT_EQ(r.header("ce-specversion"), "1.0");
    EXPECT_EQ(r.header("ce-type"), "com.example.order");
    EXPECT_EQ(r.header("ce-source"), "/tests");
    EXPECT_EQ(r.header("prefer"), "reply");
    EXPECT_EQ(r.header("content-type"), "application/json");
    EXPECT_EQ(r.body, R"({"n":1})");
    ids.insert(r.header("ce-id"));
  }
  EXPECT_EQ(ids, (std::set<std::string>{"e1", "e3"}));
  auto stats = d.stats();
  EXPECT_EQ(stats.delivered, 2u);
  EXPECT_EQ(stats.filtered, 1u);
  EXPECT_EQ(stats.failed, 0u);
  EXPECT_EQ(stats.backlog, 0u);
  EXPECT_EQ(cursors_->load(TriggerDispatcher::cursor_key("default", "orders")), first + 3);
  EXPECT_EQ(counter("sluice_trigger_events_delivered_total", "orders"), 2);
  EXPECT_EQ(counter("sluice_trigger_events_filtered_total", "orders"), 1);
}

TEST_F(DispatcherTest, StructuredModeWhenTheTriggerAsks) {
  HttpSink sink;
  start(spec(manifest("structured", sink.url(), {{"delivery", {{"format", "json"}}}})));
  publish(make_event("s1"));
  ASSERT_TRUE(sink.wait_for(1));
  auto r = sink.requests().front();
  EXPECT_NE(r.header("content-type").find("application/cloudevents+json"), std::string::npos);
  EXPECT_EQ(r.header("ce-id"), "");
  auto event = parse_json_event(r.body);
  ASSERT_TRUE(event) << event.error().to_string();
  EXPECT_EQ(event.value().id, "s1");
}

TEST_F(DispatcherTest, NewTriggerStartsAtTheLogEnd) {
  HttpSink sink;
  publish(make_event("before"));
  auto& d = start(spec(manifest("late", sink.url())));
  const auto offset = publish(make_event("after"));
  ASSERT_TRUE(sink.wait_for(1));
  ASSERT_TRUE(wait_until([&] { return d.stats().committed_offset == offset + 1; }));
  ASSERT_EQ(sink.count(), 1u);
  EXPECT_EQ(sink.requests().front().header("ce-id"), "after");
}

TEST_F(DispatcherTest, ANewTriggerCommitsItsStartingCursorWhenConstructed) {
  publish(make_event("before"));
  const auto end = publish(make_event("also-before")) + 1;
  make(spec(manifest("idle", "http://127.0.0.1:9/")));  // not started: nothing runs on the executor
  EXPECT_EQ(cursors_->load(TriggerDispatcher::cursor_key("default", "idle")), end);
  ASSERT_TRUE(cursors_->sync());
  auto reopened = CursorStore::open(cursors_->path());  // what a restart finds
  ASSERT_TRUE(reopened) << reopened.error().to_string();
  EXPECT_EQ(reopened.value()->load(TriggerDispatcher::cursor_key("default", "idle")), end);
}

TEST_F(DispatcherTest, ATriggerThatLostItsCursorStartsAtTheLogStart) {
  HttpSink sink;
  publish(make_event("first"));
  publish(make_event("second"));
  auto& d = make(spec(manifest("lost", sink.url())), {}, StartPosition::Beginning);
  EXPECT_EQ(cursors_->load(TriggerDispatcher::cursor_key("default", "lost")), 0u);
  d.start();
  ASSERT_TRUE(sink.wait_for(2));  // not skipped: at least once
  std::set<std::string> ids;
  for (const auto& request : sink.requests()) ids.insert(request.header("ce-id"));
  EXPECT_EQ(ids, (std::set<std::string>{"first", "second"}));
}

TEST_F(DispatcherTest, ACommittedCursorWinsOverTheStartPosition) {
  HttpSink sink;
  publish(make_event("done"));
  ASSERT_TRUE(cursors_->commit(TriggerDispatcher::cursor_key("default", "kept"), 1));
  publish(make_event("pending"));
  start(spec(manifest("kept", sink.url())), {}, StartPosition::Beginning);
  ASSERT_TRUE(sink.wait_for(1));
  ASSERT_TRUE(
      wait_until([&] { return cursors_->load(TriggerDispatcher::cursor_key("default", "kept")) == 2u; }));
  ASSERT_EQ(sink.count(), 1u);
  EXPECT_EQ(sink.requests().front().header("ce-id"), "pending");
}

class RetryCodeTest : public DispatcherTest, public ::testing::WithParamInterface<int> {};

TEST_P(RetryCodeTest, RetriesThenDelivers) {
  const int code = GetParam();
  HttpSink sink;
  sink.respond([code](const ReceivedRequest&, std::size_t i) { return answer(i < 2 ? code : 202); });
  auto& d = start(spec(manifest("retry", sink.url(), {{"delivery", {{"retry", 3}}}})));
  publish(make_event("r1"));
  ASSERT_TRUE(wait_until([&] { return d.stats().delivered == 1; }));
  EXPECT_EQ(sink.count(), 3u);
  auto stats = d.stats();
  EXPECT_EQ(stats.failed, 2u);
  EXPECT_EQ(stats.retried, 2u);
  EXPECT_EQ(stats.dead_lettered, 0u);
  EXPECT_EQ(counter("sluice_trigger_events_retried_total", "retry"), 2);
  EXPECT_EQ(counter("sluice_trigger_events_failed_total", "retry"), 2);
}

INSTANTIATE_TEST_SUITE_P(RetryableCodes, RetryCodeTest,
                         ::testing::Values(404, 408, 409, 429, 500, 502, 503, 504));

TEST_F(DispatcherTest, TransportErrorsAreRetried) {
  HttpSink dlq;
  // Nothing listens on this port: connection refused on every attempt.
  const std::string dead = "http://127.0.0.1:" + std::to_string(testing::free_port()) + "/";
  auto& d = start(spec(manifest(
      "refused", dead, {{"delivery", {{"retry", 2}, {"deadLetterSink", {{"uri", dlq.url() + "/dlq"}}}}}})));
  publish(make_event("t1"));
  ASSERT_TRUE(dlq.wait_for(1));
  ASSERT_TRUE(wait_until([&] { return d.stats().dead_lettered == 1; }));
  EXPECT_EQ(d.stats().failed, 3u);
  EXPECT_EQ(d.stats().retried, 2u);
  auto r = dlq.requests().front();
  EXPECT_EQ(r.header("ce-knativeerrordest"), dead);
  EXPECT_EQ(r.header("ce-knativeerrorcode"), "");  // no HTTP response to report
}

TEST_F(DispatcherTest, BadRequestIsNotRetriedAndGoesToTheDeadLetterSink) {
  HttpSink sink;
  HttpSink dlq;
  sink.respond([](const ReceivedRequest&, std::size_t) { return answer(400, "missing field: order"); });
  auto& d = start(
      spec(manifest("bad", sink.url() + "/in",
                    {{"delivery", {{"retry", 5}, {"deadLetterSink", {{"uri", dlq.url() + "/dlq"}}}}}})));
  const auto offset = publish(make_event("b1"));
  ASSERT_TRUE(dlq.wait_for(1));
  ASSERT_TRUE(wait_until([&] { return d.stats().committed_offset == offset + 1; }));
  EXPECT_EQ(sink.count(), 1u);
  auto stats = d.stats();
  EXPECT_EQ(stats.retried, 0u);
  EXPECT_EQ(stats.dead_lettered, 1u);
  auto r = dlq.requests().front();
  EXPECT_EQ(r.path, "/dlq");
  EXPECT_EQ(r.header("ce-id"), "b1");
  EXPECT_EQ(r.header("ce-knativeerrordest"), sink.url() + "/in");
  EXPECT_EQ(r.header("ce-knativeerrorcode"), "400");
  EXPECT_EQ(base64_decode(r.header("ce-knativeerrordata")), "missing field: order");
  EXPECT_EQ(r.header("prefer"), "");
  EXPECT_EQ(r.body, R"({"n":1})");
  EXPECT_EQ(counter("sluice_trigger_events_dead_lettered_total", "bad"), 1);
}

TEST_F(DispatcherTest, FinalStatusWithABodyOverTheClientLimitIsNotATransportError) {
  HttpSink sink;
  HttpSink dlq;
  std::string body = "bad order: " + std::string(1200, 'e');
  body.resize(17600000, 'x');  // over the client's 16 MiB response limit
  sink.respond([body](const ReceivedRequest&, std::size_t) { return answer(400, body); });
  auto& d = start(spec(manifest("hugebad", sink.url(),
                                {{"delivery", {{"retry", 3}, {"deadLetterSink", {{"uri", dlq.url()}}}}}})));
  const auto offset = publish(make_event("h1"));
  ASSERT_TRUE(dlq.wait_for(1));
  ASSERT_TRUE(wait_until([&] { return d.stats().committed_offset == offset + 1; }));
  EXPECT_EQ(sink.count(), 1u);  // 400 is final: no retry
  EXPECT_EQ(d.stats().retried, 0u);
  auto r = dlq.requests().front();
  EXPECT_EQ(r.header("ce-knativeerrorcode"), "400");
  EXPECT_EQ(base64_decode(r.header("ce-knativeerrordata")), body.substr(0, 1024));
}

TEST_F(DispatcherTest, DeadLetterAfterRetriesRunOutWithAtMostOneKiBOfBody) {
  HttpSink sink;
  HttpSink dlq;
  sink.respond([](const ReceivedRequest&, std::size_t) { return answer(500, std::string(3000, 'x')); });
  auto& d = start(spec(manifest("exhaust", sink.url(),
                                {{"delivery", {{"retry", 2}, {"deadLetterSink", {{"uri", dlq.url()}}}}}})));
  publish(make_event("x1"));
  ASSERT_TRUE(dlq.wait_for(1));
  EXPECT_EQ(sink.count(), 3u);
  auto r = dlq.requests().front();
  EXPECT_EQ(r.header("ce-knativeerrorcode"), "500");
  EXPECT_EQ(base64_decode(r.header("ce-knativeerrordata")), std::string(1024, 'x'));
  ASSERT_TRUE(wait_until([&] { return d.stats().dead_lettered == 1; }));
  EXPECT_EQ(d.stats().failed, 3u);
}

// A record stored under earlier, laxer rules (a control character in subject, a `data` extension, a
// datacontenttype that is no media type) is still delivered, not dropped as undecodable: events are
// checked when they are published, and what a broker stored stays deliverable.
TEST_F(DispatcherTest, ARecordStoredUnderEarlierRulesIsStillDelivered) {
  HttpSink sink;
  auto& d = start(spec(manifest("legacy", sink.url())));
  CloudEvent e = make_event("old");
  e.subject = "line\nbreak";
  e.extensions["data"] = AttributeValue::of_string("x");
  e.datacontenttype = "not a media type";
  ASSERT_FALSE(validate(e).empty());
  publish(e);
  ASSERT_TRUE(sink.wait_for(1));
  EXPECT_EQ(sink.requests().front().header("ce-id"), "old");
  EXPECT_EQ(sink.requests().front().header("ce-subject"), "line\nbreak");
  EXPECT_EQ(d.stats().dropped, 0u);
}

TEST_F(DispatcherTest, WithoutDeadLetterSinkTheEventIsDroppedAndCounted) {
  HttpSink sink;
  sink.respond([](const ReceivedRequest&, std::size_t) { return answer(500); });
  auto& d = start(spec(manifest("nodlq", sink.url(), {{"delivery", {{"retry", 1}}}})));
  const auto offset = publish(make_event("n1"));
  ASSERT_TRUE(wait_until([&] { return d.stats().committed_offset == offset + 1; }));
  EXPECT_EQ(sink.count(), 2u);
  EXPECT_EQ(d.stats().dropped, 1u);
  EXPECT_EQ(metrics_
                .counter("sluice_trigger_events_dropped_total", "",
                         {{"broker", "default"}, {"trigger", "nodlq"}, {"reason", "retries_exhausted"}})
                .value(),
            1);
}

// A 400 is never retried: without a dead-letter sink the event is dropped at once, and counted as such
// rather than as retries that ran out.
TEST_F(DispatcherTest, AStatusThatIsNotRetriedDropsTheEventUnderItsOwnReason) {
  HttpSink sink;
  sink.respond([](const ReceivedRequest&, std::size_t) { return answer(400, "no"); });
  auto& d = start(spec(manifest("final", sink.url(), {{"delivery", {{"retry", 3}}}})));
  const auto offset = publish(make_event("f1"));
  ASSERT_TRUE(wait_until([&] { return d.stats().committed_offset == offset + 1; }));
  EXPECT_EQ(sink.count(), 1u);
  EXPECT_EQ(d.stats().dropped, 1u);
  auto dropped = [&](const char* reason) {
    return metrics_
        .counter("sluice_trigger_events_dropped_total", "",
                 {{"broker", "default"}, {"trigger", "final"}, {"reason", reason}})
        .value();
  };
  EXPECT_EQ(dropped("not_retryable"), 1);
  EXPECT_EQ(dropped("retries_exhausted"), 0);
}

TEST_F(DispatcherTest, DeadLetterSinkFailureKeepsTheEventUntilTheSinkRecovers) {
  std::atomic<bool> dlq_up{false};
  HttpSink sink;
  HttpSink dlq;
  sink.respond([](const ReceivedRequest&, std::size_t) { return answer(503); });
  dlq.respond([&](const ReceivedRequest&, std::size_t) { return answer(dlq_up ? 200 : 500); });
  auto& d = start(spec(manifest(
      "dlqdown", sink.url(),
      {{"delivery", {{"retry", 1}, {"backoffMax", "PT0.03S"}, {"deadLetterSink", {{"uri", dlq.url()}}}}}})));
  const auto offset = publish(make_event("keep"));
  const auto next = publish(make_event("next"));
  ASSERT_TRUE(dlq.wait_for(4));  // both events reached the failing sink and keep trying
  ASSERT_TRUE(wait_until([&] { return d.stats().dlq_pending == 2; }));
  auto stats = d.stats();
  EXPECT_EQ(stats.low_water_mark, offset);
  EXPECT_EQ(stats.committed_offset, offset);
  EXPECT_EQ(stats.dead_lettered, 0u);
  EXPECT_EQ(stats.in_flight, 2u);
  EXPECT_EQ(metrics_
                .gauge("sluice_trigger_dead_letter_pending_events", "",
                       {{"broker", "default"}, {"trigger", "dlqdown"}})
                .value(),
            2);
  dlq_up = true;
  ASSERT_TRUE(wait_until([&] { return d.stats().committed_offset == next + 1; }));
  stats = d.stats();
  EXPECT_EQ(stats.dead_lettered, 2u);
  EXPECT_EQ(stats.dlq_pending, 0u);
  EXPECT_EQ(stats.dropped, 0u);
}

TEST_F(DispatcherTest, RetryAfterIsHonoured) {
  HttpSink sink;
  sink.respond([](const ReceivedRequest&, std::size_t i) {
    SinkResponse r = answer(i == 0 ? 429 : 200);
    if (i == 0) r.headers["Retry-After"] = "1";
    return r;
  });
  auto& d = start(spec(manifest("retryafter", sink.url())));
  publish(make_event("ra"));
  ASSERT_TRUE(wait_until([&] { return d.stats().delivered == 1; }));
  auto requests = sink.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_GE(requests[1].at - requests[0].at, milliseconds(950));
}

TEST_F(DispatcherTest, RetryAfterIsCappedByRetryAfterMax) {
  HttpSink sink;
  sink.respond([](const ReceivedRequest&, std::size_t i) {
    SinkResponse r = answer(i == 0 ? 503 : 200);
    if (i == 0) r.headers["Retry-After"] = "30";
    return r;
  });
  auto& d = start(spec(manifest("retryaftermax", sink.url(), {{"delivery", {{"retryAfterMax", "PT0.2S"}}}})));
  publish(make_event("ra"));
  ASSERT_TRUE(wait_until([&] { return d.stats().delivered == 1; }));
  auto requests = sink.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_GE(requests[1].at - requests[0].at, milliseconds(190));
  EXPECT_LT(requests[1].at - requests[0].at, milliseconds(5000));
}

TEST_F(DispatcherTest, RetryAfterOnlyOn429And503) {
  HttpSink sink;
  sink.respond([](const ReceivedRequest&, std::size_t i) {
    SinkResponse r = answer(i == 0 ? 500 : 200);
    if (i == 0) r.headers["Retry-After"] = "30";
    return r;
  });
  auto& d = start(spec(manifest("retryafter500", sink.url())));
  publish(make_event("ra"));
  ASSERT_TRUE(wait_until([&] { return d.stats().delivered == 1; }, std::chrono::seconds(5)));
  auto requests = sink.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_LT(requests[1].at - requests[0].at, milliseconds(1000));
}

TEST_F(DispatcherTest, BinaryReplyIsPublishedWithTtlDecremented) {
  HttpSink sink;
  sink.respond([](const ReceivedRequest&, std::size_t) {
    SinkResponse r = answer(200, R"({"summary":"ok"})");
    r.headers = {{"ce-specversion", "1.0"},
                 {"ce-id", "reply-1"},
                 {"ce-source", "/agents/summarizer"},
                 {"ce-type", "com.example.summary"},
                 {"Content-Type", "application/json"}};
    return r;
  });
  auto& d = start(spec(manifest("replies", sink.url())));
  auto event = make_event("q1");
  event.extensions["knativebrokerttl"] = AttributeValue::of_int(5);
  publish(event);
  ASSERT_TRUE(wait_until([&] { return replies().size() == 1; }));
  EXPECT_EQ(sink.requests().front().header("ce-knativebrokerttl"), "");  // internal to the broker
  auto reply = replies().front();
  EXPECT_EQ(reply.id, "reply-1");
  EXPECT_EQ(reply.type, "com.example.summary");
  EXPECT_EQ(reply.data, R"({"summary":"ok"})");
  ASSERT_TRUE(reply.extensions.contains("knativebrokerttl"));
  EXPECT_EQ(reply.extensions.at("knativebrokerttl"), AttributeValue::of_int(4));
  ASSERT_TRUE(wait_until([&] { return d.stats().delivered == 1; }));
  EXPECT_EQ(d.stats().replies, 1u);
}

TEST_F(DispatcherTest, StructuredReplyIsPublishedAndDefaultTtlApplies) {
  HttpSink sink;
  sink.respond([](const ReceivedRequest&, std::size_t) {
    SinkResponse r =
        answer(200, R"({"specversion":"1.0","id":"r2","source":"/a","type":"t.reply","data":{"x":1}})");
    r.headers = {{"Content-Type", "application/cloudevents+json"}};
    return r;
  });
  start(spec(manifest("structreply", sink.url())));
  publish(make_event("q2"));
  ASSERT_TRUE(wait_until([&] { return replies().size() == 1; }));
  auto reply = replies().front();
  EXPECT_EQ(reply.id, "r2");
  EXPECT_EQ(reply.extensions.at("knativebrokerttl"), AttributeValue::of_int(254));
}

TEST_F(DispatcherTest, FailedReplyPublishIsRetriedWithoutRedelivering) {
  HttpSink sink;
  sink.respond([](const ReceivedRequest&, std::size_t) {
    SinkResponse r = answer(200);
    r.headers = {{"ce-specversion", "1.0"}, {"ce-id", "r3"}, {"ce-source", "/a"}, {"ce-type", "t"}};
    return r;
  });
  {
    std::lock_guard lock(replies_mu_);
    reply_failures_ = 2;
  }
  auto& d = start(spec(manifest("replyretry", sink.url())));
  publish(make_event("q3"));
  ASSERT_TRUE(wait_until([&] { return d.stats().delivered == 1; }));
  EXPECT_EQ(replies().size(), 1u);
  EXPECT_EQ(sink.count(), 1u);
}

TEST_F(DispatcherTest, ReplyRejectedByTheBrokerIsNotRetriedForeverAndTheEventIsDeadLettered) {
  HttpSink sink;
  HttpSink dlq;
  sink.respond([](const ReceivedRequest&, std::size_t) {
    SinkResponse r = answer(200, std::string(5000, 'r'));
    r.headers = {{"ce-specversion", "1.0"}, {"ce-id", "big"}, {"ce-source", "/a"}, {"ce-type", "t"}};
    return r;
  });
  {
    std::lock_guard lock(replies_mu_);
    reply_failures_ = 1000;
    reply_failure_code_ = 413;  // over the broker's maxEventSize: refused whatever the wait
  }
  auto& d = start(spec(manifest("rejected", sink.url(),
                                {{"delivery", {{"retry", 2}, {"deadLetterSink", {{"uri", dlq.url()}}}}}})));
  const auto offset = publish(make_event("q4"));
  ASSERT_TRUE(dlq.wait_for(1));
  ASSERT_TRUE(wait_until([&] { return d.stats().committed_offset == offset + 1; }));
  EXPECT_EQ(sink.count(), 3u);  // the first attempt and two retries, then the dead-letter sink
  auto stats = d.stats();
  EXPECT_EQ(stats.delivered, 0u);
  EXPECT_EQ(stats.failed, 3u);
  EXPECT_EQ(stats.dead_lettered, 1u);
  EXPECT_EQ(stats.replies, 0u);
  EXPECT_EQ(stats.replies_dropped, 3u);
  EXPECT_EQ(stats.in_flight, 0u);
  EXPECT_TRUE(replies().empty());
  EXPECT_EQ(dlq.requests().front().header("ce-id"), "q4");
  EXPECT_EQ(dlq.requests().front().header("ce-knativeerrorcode"), "200");
  EXPECT_EQ(
      metrics_
          .counter("sluice_broker_replies_dropped_total", "", {{"broker", "default"}, {"reason", "rejected"}})
          .value(),
      3);
}

TEST_F(DispatcherTest, BodyThatIsNotACloudEventIsAFailedDelivery) {
  HttpSink sink;
  sink.respond([](const ReceivedRequest&, std::size_t i) {
    if (i == 0) {
      SinkResponse r = answer(200, "hello there");
      r.headers = {{"Content-Type", "text/plain"}};
      return r;
    }
    return answer(200);
  });
  auto& d = start(spec(manifest("notce", sink.url())));
  publish(make_event("n1"));
  ASSERT_TRUE(wait_until([&] { return d.stats().delivered == 1; }));
  EXPECT_EQ(sink.count(), 2u);
  EXPECT_EQ(d.stats().failed, 1u);
  EXPECT_EQ(d.stats().retried, 1u);
  EXPECT_TRUE(replies().empty());
}

TEST_F(DispatcherTest, ReplyBeyondTheHopLimitIsDroppedAndCounted) {
  HttpSink sink;
  sink.respond([](const ReceivedRequest&, std::size_t) {
    SinkResponse r = answer(200);
    r.headers = {{"ce-specversion", "1.0"}, {"ce-id", "loop"}, {"ce-source", "/a"}, {"ce-type", "t"}};
    return r;
  });
  auto& d = start(spec(manifest("ttl", sink.url())));
  auto event = make_event("last-hop");
  event.extensions["knativebrokerttl"] = AttributeValue::of_string("1");  // as HTTP binary mode carries it
  const auto offset = publish(event);
  ASSERT_TRUE(wait_until([&] { return d.stats().committed_offset == offset + 1; }));
  EXPECT_EQ(d.stats().delivered, 1u);
  EXPECT_EQ(d.stats().replies_dropped, 1u);
  EXPECT_TRUE(replies().empty());
  EXPECT_EQ(
      metrics_.counter("sluice_broker_replies_dropped_total", "", {{"broker", "default"}, {"reason", "ttl"}})
          .value(),
      1);
}

TEST_F(DispatcherTest, UnorderedRunsUpToMaxInFlightConcurrently) {
  Concurrency c;
  HttpSink sink;
  sink.respond([&](const ReceivedRequest&, std::size_t) {
    c.enter();
    std::this_thread::sleep_for(milliseconds(60));
    c.leave();
    return answer(200);
  });
  auto& d = start(spec(manifest("unordered", sink.url(), {{"delivery", {{"maxInFlight", 4}}}})));
  for (int i = 0; i < 12; ++i) publish(make_event("u" + std::to_string(i)));
  ASSERT_TRUE(wait_until([&] { return d.stats().delivered == 12; }));
  EXPECT_EQ(c.max.load(), 4);
}

TEST_F(DispatcherTest, BigEventsBehindAStuckSubscriberAreBufferedUpToTheByteBoundNotTheEventBound) {
  faulty_ = std::make_unique<FaultyLog>(*log_);
  dispatch_log_ = faulty_.get();
  Gate gate;
  HttpSink sink;
  sink.respond([&](const ReceivedRequest&, std::size_t) {
    gate.wait();
    return answer(200);
  });
  auto& d = start(spec(manifest("big", sink.url(), {{"delivery", {{"maxInFlight", 1}}}})));
  // 64 events of 512 KiB (32 MiB) behind one that does not finish: far fewer than max_buffered_events,
  // but four times max_buffered_bytes (8 MiB).
  constexpr int kEvents = 64;
  for (int i = 0; i < kEvents; ++i) {
    auto e = make_event("big-" + std::to_string(i));
    e.data = "\"" + std::string(512 << 10, 'x') + "\"";
    publish(e);
  }
  ASSERT_TRUE(wait_until([&] { return faulty_->read_to.load() >= 16; }));
  EXPECT_EQ(d.stats().delivered, 0u);              // the first is stuck at the subscriber
  std::this_thread::sleep_for(milliseconds(200));  // time for reads the bound should not allow
  // One running, 8 MiB buffered (16 events), and reads that may pass the bound by a record or two.
  EXPECT_LE(faulty_->read_to.load(), 20u);
  gate.open = true;
  ASSERT_TRUE(wait_until([&] { return d.stats().delivered == kEvents; }, std::chrono::seconds(20)));
  EXPECT_EQ(faulty_->read_to.load(), static_cast<std::uint64_t>(kEvents));
}

TEST_F(DispatcherTest, OrderedDeliversEachKeyInOrderAndKeysInParallel) {
  Concurrency all;
  std::mutex mu;
  std::map<std::string, Concurrency> per_key;
  std::map<std::string, std::vector<std::string>> order;
  HttpSink sink;
  sink.respond([&](const ReceivedRequest& r, std::size_t) {
    const std::string key = r.header("ce-partitionkey");
    Concurrency* k;
    {
      std::lock_guard lock(mu);
      k = &per_key[key];
      order[key].push_back(r.header("ce-id"));
    }
    all.enter();
    k->enter();
    std::this_thread::sleep_for(milliseconds(30));
    k->leave();
    all.leave();
    return answer(200);
  });
  auto& d = start(spec(manifest("ordered", sink.url(), {}, {{kDeliveryOrderAnnotation, "ordered"}})));
  for (int i = 0; i < 4; ++i)
    for (const char* key : {"a", "b", "c"}) publish(keyed_event(std::string(key) + std::to_string(i), key));
  ASSERT_TRUE(wait_until([&] { return d.stats().delivered == 12; }));
  for (const char* key : {"a", "b", "c"}) {
    EXPECT_EQ(per_key[key].max.load(), 1) << key;
    std::vector<std::string> expected;
    for (int i = 0; i < 4; ++i) expected.push_back(std::string(key) + std::to_string(i));
    EXPECT_EQ(order[key], expected) << key;
  }
  EXPECT_GE(all.max.load(), 2);
  EXPECT_LE(all.max.load(), 3);
}

TEST_F(DispatcherTest, OrderedEventsWithoutKeyAreSequentialAndRetriesKeepOrder) {
  Concurrency c;
  std::mutex mu;
  std::vector<std::string> ids;
  HttpSink sink;
  sink.respond([&](const ReceivedRequest& r, std::size_t i) {
    {
      std::lock_guard lock(mu);
      ids.push_back(r.header("ce-id"));
    }
    c.enter();
    std::this_thread::sleep_for(milliseconds(5));
    c.leave();
    return answer(i < 2 ? 500 : 200);  // the first event fails twice
  });
  auto& d = start(spec(manifest("orderednokey", sink.url(), {}, {{kDeliveryOrderAnnotation, "ordered"}})));
  for (int i = 0; i < 4; ++i) publish(make_event("o" + std::to_string(i)));
  ASSERT_TRUE(wait_until([&] { return d.stats().delivered == 4; }));
  EXPECT_EQ(c.max.load(), 1);
  std::lock_guard lock(mu);
  EXPECT_EQ(ids, (std::vector<std::string>{"o0", "o0", "o0", "o1", "o2", "o3"}));
}

TEST_F(DispatcherTest, CommitsTheLowWaterMarkWhenCompletionsAreOutOfOrder) {
  Gate gate;
  HttpSink sink;
  sink.respond([&](const ReceivedRequest& r, std::size_t) {
    if (r.header("ce-id") == "slow") gate.wait();
    return answer(200);
  });
  auto& d = start(spec(manifest("lwm", sink.url())));
  const auto first = publish(make_event("slow"));
  publish(make_event("fast1"));
  publish(make_event("fast2"));
  ASSERT_TRUE(wait_until([&] { return d.stats().delivered == 2; }));
  auto stats = d.stats();
  EXPECT_EQ(stats.low_water_mark, first);
  EXPECT_EQ(stats.committed_offset, first);
  EXPECT_EQ(stats.in_flight, 1u);
  EXPECT_EQ(cursors_->load(TriggerDispatcher::cursor_key("default", "lwm")), first);
  gate.open = true;
  ASSERT_TRUE(wait_until([&] { return d.stats().committed_offset == first + 3; }));
  EXPECT_EQ(cursors_->load(TriggerDispatcher::cursor_key("default", "lwm")), first + 3);
}

TEST_F(DispatcherTest, RestartResumesAtTheCommittedCursorWithoutReplay) {
  HttpSink sink;
  auto& first = start(spec(manifest("restart", sink.url())));
  publish(make_event("p1"));
  publish(make_event("p2"));
  const auto third = publish(make_event("p3"));
  ASSERT_TRUE(wait_until([&] { return first.stats().delivered == 3; }));
  first.stop();
  EXPECT_EQ(first.stats().committed_offset, third + 1);
  publish(make_event("p4"));
  const auto fifth = publish(make_event("p5"));

  // A fresh process: the cursor comes back from the journal.
  dispatchers_.clear();
  open_cursors();
  auto& second = start(spec(manifest("restart", sink.url())));
  ASSERT_TRUE(wait_until([&] { return second.stats().committed_offset == fifth + 1; }));
  ASSERT_EQ(sink.count(), 5u);
  std::vector<std::string> ids;
  for (const auto& r : sink.requests()) ids.push_back(r.header("ce-id"));
  // Unordered delivery: only the split between the two runs is fixed, not the order inside each.
  std::sort(ids.begin(), ids.begin() + 3);
  std::sort(ids.begin() + 3, ids.end());
  EXPECT_EQ(ids, (std::vector<std::string>{"p1", "p2", "p3", "p4", "p5"}));
}

TEST_F(DispatcherTest, StopDeadlineLeavesInFlightEventsUncommittedForRedelivery) {
  Gate gate;
  HttpSink sink;
  sink.respond([&](const ReceivedRequest&, std::size_t i) {
    if (i == 0) gate.wait();
    return answer(200);
  });
  auto& first = start(spec(manifest("stopdeadline", sink.url())));
  const auto offset = publish(make_event("stuck"));
  ASSERT_TRUE(sink.wait_for(1));
  const auto before = std::chrono::steady_clock::now();
  first.stop(milliseconds(100));
  EXPECT_LT(std::chrono::steady_clock::now() - before, std::chrono::seconds(3));
  EXPECT_EQ(first.stats().committed_offset, offset);
  gate.open = true;

  dispatchers_.clear();
  auto& second = start(spec(manifest("stopdeadline", sink.url())));
  ASSERT_TRUE(wait_until([&] { return second.stats().delivered == 1; }));
  EXPECT_EQ(sink.requests().back().header("ce-id"), "stuck");
}

TEST_F(DispatcherTest, SlowSubscriberDoesNotBlockOtherTriggers) {
  Gate gate;
  HttpSink slow;
  HttpSink fast;
  slow.respond([&](const ReceivedRequest&, std::size_t) {
    gate.wait();
    return answer(200);
  });
  auto& s = start(spec(manifest("slow", slow.url(), {{"delivery", {{"maxInFlight", 1}}}})));
  auto& f = start(spec(manifest("fast", fast.url())));
  for (int i = 0; i < 5; ++i) publish(make_event("e" + std::to_string(i)));
  ASSERT_TRUE(wait_until([&] { return f.stats().delivered == 5; }));
  EXPECT_EQ(s.stats().delivered, 0u);
  EXPECT_EQ(s.stats().backlog, 5u);
  gate.open = true;
  ASSERT_TRUE(wait_until([&] { return s.stats().delivered == 5; }));
}

TEST_F(DispatcherTest, LogReadErrorsAreCountedAndShownInTheStatusUntilTheLogReadsAgain) {
  HttpSink sink;
  faulty_ = std::make_unique<FaultyLog>(*log_);
  faulty_->fail_reads = true;
  dispatch_log_ = faulty_.get();
  auto& d = start(spec(manifest("damaged", sink.url())));
  publish(make_event("d1"));
  ASSERT_TRUE(wait_until([&] { return d.stats().log_read_errors >= 2; }));
  auto stats = d.stats();
  EXPECT_NE(stats.read_error.find("offset 0"), std::string::npos) << stats.read_error;
  EXPECT_NE(stats.read_error.find("CRC32C"), std::string::npos) << stats.read_error;
  auto status = to_status_json(stats);
  EXPECT_EQ(status["readError"], stats.read_error);
  EXPECT_GE(status["logReadErrors"].get<std::uint64_t>(), 2u);
  EXPECT_GE(counter("sluice_trigger_log_read_errors_total", "damaged"), 2);
  EXPECT_EQ(sink.count(), 0u);

  faulty_->fail_reads = false;  // the segment was restored
  ASSERT_TRUE(sink.wait_for(1));
  ASSERT_TRUE(wait_until([&] { return d.stats().delivered == 1; }));
  EXPECT_EQ(d.stats().read_error, "");
  EXPECT_FALSE(to_status_json(d.stats()).contains("readError"));
}

// A log of small segments holding `n` events, the oldest of which retention removed; the trigger's
// cursor is still at 0. Returns the log's new start.
std::uint64_t publish_then_expire(std::unique_ptr<FileLog>& log, CursorStore& cursors, const std::string& dir,
                                  const std::string& trigger, int n) {
  log->close();
  FileLogOptions options;
  options.fsync = false;
  options.name = "default";
  options.segment_bytes = 512;
  auto opened = FileLog::open(dir, options, RealClock::instance());
  EXPECT_TRUE(opened) << opened.error().to_string();
  log = std::move(opened.value());
  EXPECT_TRUE(cursors.commit(TriggerDispatcher::cursor_key("default", trigger), 0));
  for (int i = 0; i < n; ++i) {
    std::promise<Result<std::uint64_t>> appended;
    log->append({to_protobuf(make_event("x" + std::to_string(i)))},
                [&](Result<std::uint64_t> r) { appended.set_value(std::move(r)); });
    EXPECT_TRUE(appended.get_future().get());
  }
  log->set_retention(0, 1024);
  EXPECT_TRUE(log->enforce_retention());
  return log->start_offset();
}

TEST_F(DispatcherTest, EventsRemovedByRetentionBeforeDeliveryAreCounted) {
  HttpSink sink;
  const std::uint64_t first = publish_then_expire(log_, *cursors_, dir_.path() + "/small", "late", 20);
  ASSERT_GT(first, 0u);
  ASSERT_LT(first, 20u);
  auto& d = start(spec(manifest("late", sink.url())));
  ASSERT_TRUE(wait_until([&] { return d.stats().committed_offset == 20; }));
  EXPECT_EQ(sink.count(), 20 - first);
  EXPECT_EQ(d.stats().expired, first);
  EXPECT_EQ(to_status_json(d.stats())["expired"], first);
  EXPECT_EQ(counter("sluice_trigger_events_expired_total", "late"), static_cast<double>(first));
}

TEST_F(DispatcherTest, ReadStartingLaterThanAskedCountsTheExpiredEvents) {
  HttpSink sink;
  const std::uint64_t first = publish_then_expire(log_, *cursors_, dir_.path() + "/small", "racing", 20);
  ASSERT_GT(first, 0u);
  faulty_ = std::make_unique<FaultyLog>(*log_);
  faulty_->stale_start = 0;  // the dispatcher looks before retention moves the start; read() sees it
  dispatch_log_ = faulty_.get();
  auto& d = start(spec(manifest("racing", sink.url())));
  ASSERT_TRUE(wait_until([&] { return d.stats().committed_offset == 20; }));
  EXPECT_EQ(sink.count(), 20 - first);
  EXPECT_EQ(d.stats().expired, first);
  EXPECT_EQ(counter("sluice_trigger_events_expired_total", "racing"), static_cast<double>(first));
}

TEST_F(DispatcherTest, CesqlFilterErrorsAreCounted) {
  HttpSink sink;
  auto& d = start(
      spec(manifest("cesqlerr", sink.url(), {{"filters", json::parse(R"([{"cesql": "region = 'eu'"}])")}})));
  auto eu = make_event("eu");
  eu.extensions["region"] = AttributeValue::of_string("eu");
  publish(make_event("noregion"));  // missing attribute: an evaluation error, no match
  const auto offset = publish(eu);
  ASSERT_TRUE(wait_until([&] { return d.stats().committed_offset == offset + 1; }));
  EXPECT_EQ(sink.count(), 1u);
  EXPECT_EQ(d.stats().filter_errors, 1u);
  EXPECT_EQ(d.stats().filtered, 1u);
  EXPECT_EQ(counter("sluice_trigger_filter_errors_total", "cesqlerr"), 1);
}

TEST_F(DispatcherTest, RefSubscriberGoesThroughTheResolvedSendFunction) {
  std::mutex mu;
  std::vector<HttpRequest> sent;
  SubscriberResolver resolver = [&](const SubscriberRef& ref) -> Result<ResolvedDestination> {
    if (ref.name != "summarizer") return make_error(ref.name, "no such agent", 404);
    ResolvedDestination dest;
    dest.url = "http://activator/agents/summarizer";
    dest.send = [&](HttpRequest request) -> asio::awaitable<Result<HttpResponse>> {
      {
        std::lock_guard lock(mu);
        sent.push_back(request);
      }
      HttpResponse response;
      response.status = 200;
      co_return response;
    };
    return dest;
  };
  auto m = manifest("agent", "http://unused/");
  m["spec"]["subscriber"] = {{"ref", {{"kind", "Agent"}, {"name", "summarizer"}}}, {"uri", "/events"}};
  auto& d = start(spec(m), resolver);
  publish(make_event("a1"));
  ASSERT_TRUE(wait_until([&] { return d.stats().delivered == 1; }));
  std::lock_guard lock(mu);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].url, "http://activator/agents/summarizer/events");
  EXPECT_EQ(sent[0].timeout, milliseconds(30000));
}

TEST_F(DispatcherTest, UnresolvableRefIsARetryableFailure) {
  std::atomic<bool> exists{false};
  HttpSink sink;
  SubscriberResolver resolver = [&](const SubscriberRef& ref) -> Result<ResolvedDestination> {
    if (!exists) return make_error(ref.name, "agent not found", 404);
    return ResolvedDestination{sink.url(), {}};
  };
  auto m =
      manifest("lateagent", "http://unused/", {{"delivery", {{"retry", 100}, {"backoffMax", "PT0.02S"}}}});
  m["spec"]["subscriber"] = {{"ref", {{"kind", "Agent"}, {"name", "later"}}}};
  auto& d = start(spec(m), resolver);
  publish(make_event("l1"));
  ASSERT_TRUE(wait_until([&] { return d.stats().failed >= 2; }));
  exists = true;
  ASSERT_TRUE(wait_until([&] { return d.stats().delivered == 1; }));
  EXPECT_EQ(sink.count(), 1u);
}

TEST_F(DispatcherTest, UpdateChangesTheFilterForLaterEvents) {
  HttpSink sink;
  auto& d = start(spec(manifest("update", sink.url(), {{"filter", {{"attributes", {{"type", "a"}}}}}})));
  publish(make_event("1", "a"));
  ASSERT_TRUE(sink.wait_for(1));
  ASSERT_TRUE(
      d.update(spec(manifest("update", sink.url(), {{"filter", {{"attributes", {{"type", "b"}}}}}}))));
  // Once an event of type b arrives the update is in force (it applies on the strand, asynchronously).
  publish(make_event("marker", "b"));
  ASSERT_TRUE(wait_until([&] { return d.stats().delivered == 2; }));
  publish(make_event("2", "a"));
  const auto last = publish(make_event("3", "b"));
  ASSERT_TRUE(wait_until([&] { return d.stats().committed_offset == last + 1; }));
  ASSERT_EQ(sink.count(), 3u);
  EXPECT_EQ(sink.requests()[2].header("ce-id"), "3");
  EXPECT_FALSE(d.update(spec(manifest("other", sink.url()))));
}

}  // namespace
}  // namespace sluice
