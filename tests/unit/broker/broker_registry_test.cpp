#include "broker/broker_registry.hpp"

#include <gtest/gtest.h>

namespace sluice {
namespace {

/// A log whose appends stay pending until the test completes them.
class PendingLog final : public EventLog {
 public:
  void append(std::vector<std::string> payloads, AppendCallback done) override {
    pending.push_back({std::move(payloads), std::move(done)});
  }
  Result<std::vector<LogRecord>> read(std::uint64_t, std::size_t, std::size_t) const override {
    return std::vector<LogRecord>{};
  }
  std::uint64_t start_offset() const override { return 0; }
  std::uint64_t end_offset() const override { return end; }
  std::uint64_t subscribe(std::function<void(std::uint64_t)>) override { return 1; }
  void unsubscribe(std::uint64_t) override {}
  Status flush() override { return ok(); }
  void close() override {}

  /// Completes the oldest pending append: durable at the end offset, or failed with `error`.
  void complete(std::optional<Error> error = std::nullopt) {
    auto [payloads, done] = std::move(pending.front());
    pending.erase(pending.begin());
    if (error) return done(*error);
    const auto first = end;
    end += payloads.size();
    done(first);
  }

  std::vector<std::pair<std::vector<std::string>, AppendCallback>> pending;
  std::uint64_t end = 0;
};

CloudEvent event(std::string id) {
  CloudEvent e;
  e.id = std::move(id);
  e.source = "/s";
  e.type = "t";
  return e;
}

struct Fixture {
  Fixture(std::string name) {
    auto b = std::make_shared<Broker>();
    b->spec.name = std::move(name);
    b->spec.idempotency_window = std::chrono::minutes(10);
    b->idempotency = std::make_unique<IdempotencyCache>(b->spec.idempotency_window);
    b->log = log;
    broker = b;
    registry.put(b);
  }

  /// Publishes and returns where the answer lands (unset until the log completes the append).
  std::shared_ptr<std::optional<Result<std::uint64_t>>> publish(std::vector<CloudEvent> events) {
    auto answer = std::make_shared<std::optional<Result<std::uint64_t>>>();
    registry.publish(broker->spec.name, std::move(events),
                     [answer](Result<std::uint64_t> result) { *answer = std::move(result); });
    return answer;
  }

  double duplicates() {
    return MetricsRegistry::global()
        .counter("sluice_broker_duplicates_total", "", {{"broker", broker->spec.name}})
        .value();
  }

  ManualClock clock;
  BrokerRegistry registry{clock};
  std::shared_ptr<PendingLog> log = std::make_shared<PendingLog>();
  std::shared_ptr<Broker> broker;
};

TEST(IdempotencyCache, AKeyIsStoringUntilConfirmed) {
  IdempotencyCache cache(std::chrono::minutes(1));
  EXPECT_EQ(cache.claim("/s", "1", 0), IdempotencyCache::Claim::claimed);
  EXPECT_EQ(cache.claim("/s", "1", 1), IdempotencyCache::Claim::storing);
  cache.confirm("/s", "1");
  EXPECT_EQ(cache.claim("/s", "1", 2), IdempotencyCache::Claim::stored);
  EXPECT_EQ(cache.claim("/s", "2", 3), IdempotencyCache::Claim::claimed);
  cache.release("/s", "2");
  EXPECT_EQ(cache.claim("/s", "2", 4), IdempotencyCache::Claim::claimed);
  EXPECT_EQ(cache.claim("/s", "1", 60'001), IdempotencyCache::Claim::claimed);  // the window passed
}

TEST(BrokerRegistryIdempotency, ADuplicateOfAnEventStillBeingStoredIsNotAcknowledged) {
  Fixture f("idem-pending");
  auto first = f.publish({event("1")});
  ASSERT_FALSE(*first);
  auto second = f.publish({event("1")});
  ASSERT_TRUE(*second);  // answered at once, but not with an acknowledgement
  ASSERT_FALSE(second->value());
  EXPECT_EQ(second->value().error().code, 503);
  EXPECT_NE(second->value().error().message.find("is being stored; retry"), std::string::npos);

  f.log->complete(make_error("log", "disk full", 503));  // the first copy is lost
  ASSERT_TRUE(*first);
  EXPECT_FALSE(first->value());

  auto retry = f.publish({event("1")});  // the retry stores it
  ASSERT_EQ(f.log->pending.size(), 1u);
  f.log->complete();
  ASSERT_TRUE(*retry);
  EXPECT_TRUE(retry->value());

  auto duplicate = f.publish({event("1")});  // now durable: acknowledged as a duplicate
  ASSERT_TRUE(*duplicate);
  EXPECT_TRUE(duplicate->value());
  EXPECT_TRUE(f.log->pending.empty());
}

TEST(BrokerRegistryIdempotency, EveryDuplicateEventIsCounted) {
  Fixture f("idem-count");
  f.publish({event("1"), event("2")});
  f.log->complete();
  const double before = f.duplicates();
  auto mixed = f.publish({event("1"), event("2"), event("3")});
  f.log->complete();
  ASSERT_TRUE(*mixed);
  EXPECT_TRUE(mixed->value());
  EXPECT_EQ(f.duplicates() - before, 2);
  auto all = f.publish({event("3")});
  ASSERT_TRUE(*all);
  EXPECT_EQ(f.duplicates() - before, 3);
}

TEST(BrokerRegistryIdempotency, AnIdRepeatedInOneBatchIsStoredOnce) {
  Fixture f("idem-batch");
  auto answer = f.publish({event("1"), event("1")});
  ASSERT_EQ(f.log->pending.size(), 1u);
  EXPECT_EQ(f.log->pending.front().first.size(), 1u);
  f.log->complete();
  ASSERT_TRUE(*answer);
  EXPECT_TRUE(answer->value());
}

}  // namespace
}  // namespace sluice
