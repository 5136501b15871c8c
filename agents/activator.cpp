#include "agents/activator.hpp"

#include <algorithm>
#include <random>

namespace sluice::agents {
namespace detail {

using SteadyClock = std::chrono::steady_clock;

struct ActivatorEndpoint {
  std::string id;
  std::string address;
  bool reserve = false;
  bool routable = false;
  bool closed = false;
  std::size_t in_flight = 0;
};

struct ActivatorWaiter {
  std::shared_ptr<ActivatorEndpoint> assigned;  // set under the revision's mutex
  bool gone = false;                            // the revision was removed
  std::function<void()> wake;                   // posts to the waiter's executor
};

struct ActivatorRevision {
  std::mutex mu;
  std::string name;
  int container_concurrency = 0;
  std::size_t max_buffer = 0;  // 0: ActivatorOptions::max_buffer
  bool removed = false;
  std::vector<std::shared_ptr<ActivatorEndpoint>> endpoints;
  std::deque<std::shared_ptr<ActivatorWaiter>> queue;
  std::size_t leased = 0;
  // Time-weighted load since the last collect().
  double area = 0;  // (requests in flight + waiting) × seconds
  SteadyClock::time_point last_change = SteadyClock::now();
  SteadyClock::time_point period_start = SteadyClock::now();
  double arrivals = 0;
  // Totals since the revision was added, for status and `sluice top`.
  std::uint64_t completed = 0;
  std::uint64_t rejected = 0;
  std::uint64_t timed_out = 0;
  double service_seconds = 0;  // leases held, summed

  std::size_t load() const { return leased + queue.size(); }

  void account_locked(SteadyClock::time_point now) {
    area += static_cast<double>(load()) * std::chrono::duration<double>(now - last_change).count();
    last_change = now;
  }

  bool has_room(const ActivatorEndpoint& e) const {
    return e.routable && !e.closed &&
           (container_concurrency <= 0 || e.in_flight < static_cast<std::size_t>(container_concurrency));
  }

  bool any_standard_routable() const {
    for (const auto& e : endpoints)
      if (!e->reserve && e->routable && !e->closed) return true;
    return false;
  }

  /// Power of two choices among the replicas with room; reserve replicas only when no standard one
  /// is routable.
  std::shared_ptr<ActivatorEndpoint> pick_locked() {
    thread_local std::minstd_rand random(std::random_device{}());
    const bool standard = any_standard_routable();
    std::shared_ptr<ActivatorEndpoint> candidates[2];
    std::size_t seen = 0;
    // Reservoir sampling of two candidates in one pass, without allocating.
    for (const auto& e : endpoints) {
      if (e->reserve == standard || !has_room(*e)) continue;
      ++seen;
      if (seen <= 2) {
        candidates[seen - 1] = e;
      } else {
        const std::size_t slot = random() % seen;
        if (slot < 2) candidates[slot] = e;
      }
    }
    if (seen == 0) return nullptr;
    if (seen == 1) return candidates[0];
    // A tie goes either way: the sampling keeps its first slot biased (of three idle replicas, one
    // would never be picked for one-at-a-time requests).
    if (candidates[0]->in_flight == candidates[1]->in_flight) return candidates[random() & 1];
    return candidates[1]->in_flight < candidates[0]->in_flight ? candidates[1] : candidates[0];
  }

  /// Hands free slots to waiting requests in arrival order.
  void dispatch_locked() {
    while (!queue.empty()) {
      auto endpoint = pick_locked();
      if (!endpoint) return;
      auto waiter = std::move(queue.front());
      queue.pop_front();
      ++endpoint->in_flight;
      ++leased;  // load unchanged: one fewer waiting, one more in flight
      waiter->assigned = std::move(endpoint);
      waiter->wake();
    }
  }

  void release(const std::shared_ptr<ActivatorEndpoint>& endpoint, SteadyClock::time_point acquired_at) {
    std::lock_guard lock(mu);
    const auto now = SteadyClock::now();
    account_locked(now);
    ++completed;
    service_seconds += std::chrono::duration<double>(now - acquired_at).count();
    --endpoint->in_flight;
    --leased;
    dispatch_locked();
  }
};

}  // namespace detail

using detail::ActivatorEndpoint;
using detail::ActivatorRevision;
using detail::ActivatorWaiter;

ReplicaLease::ReplicaLease(std::shared_ptr<ActivatorRevision> revision,
                           std::shared_ptr<ActivatorEndpoint> endpoint)
    : revision_(std::move(revision)),
      endpoint_(std::move(endpoint)),
      acquired_at_(detail::SteadyClock::now()) {}

ReplicaLease::ReplicaLease(ReplicaLease&& other) noexcept
    : revision_(std::move(other.revision_)),
      endpoint_(std::move(other.endpoint_)),
      acquired_at_(other.acquired_at_) {}

ReplicaLease& ReplicaLease::operator=(ReplicaLease&& other) noexcept {
  if (this != &other) {
    release();
    revision_ = std::move(other.revision_);
    endpoint_ = std::move(other.endpoint_);
    acquired_at_ = other.acquired_at_;
  }
  return *this;
}

ReplicaLease::~ReplicaLease() {
  release();
}

void ReplicaLease::release() {
  if (endpoint_ && revision_) revision_->release(endpoint_, acquired_at_);
  endpoint_.reset();
  revision_.reset();
}

const std::string& ReplicaLease::address() const {
  return endpoint_->address;
}
const std::string& ReplicaLease::replica() const {
  return endpoint_->id;
}
bool ReplicaLease::reserve() const {
  return endpoint_->reserve;
}

Activator::Activator(ActivatorOptions options, std::function<void(const std::string&)> on_demand)
    : options_(options), on_demand_(std::move(on_demand)) {}

std::shared_ptr<ActivatorRevision> Activator::find(const std::string& revision) const {
  std::shared_lock lock(mu_);
  auto it = revisions_.find(revision);
  return it == revisions_.end() ? nullptr : it->second;
}

void Activator::add_revision(const std::string& revision, int container_concurrency, std::size_t max_buffer) {
  std::shared_ptr<ActivatorRevision> r;
  {
    std::unique_lock lock(mu_);
    auto& slot = revisions_[revision];
    if (!slot) {
      slot = std::make_shared<ActivatorRevision>();
      slot->name = revision;
    }
    r = slot;
  }
  std::lock_guard lock(r->mu);
  r->container_concurrency = container_concurrency;
  r->max_buffer = max_buffer;
  r->dispatch_locked();
}

void Activator::remove_revision(const std::string& revision) {
  std::shared_ptr<ActivatorRevision> r;
  {
    std::unique_lock lock(mu_);
    auto it = revisions_.find(revision);
    if (it == revisions_.end()) return;
    r = std::move(it->second);
    revisions_.erase(it);
  }
  std::lock_guard lock(r->mu);
  r->account_locked(detail::SteadyClock::now());
  r->removed = true;
  for (auto& waiter : r->queue) {
    waiter->gone = true;
    waiter->wake();
  }
  r->queue.clear();
}

void Activator::set_routable(const std::string& revision, const std::string& replica,
                             const std::string& address, bool reserve, bool routable) {
  auto r = find(revision);
  if (!r) return;
  std::lock_guard lock(r->mu);
  auto it =
      std::find_if(r->endpoints.begin(), r->endpoints.end(), [&](const auto& e) { return e->id == replica; });
  if (it == r->endpoints.end()) {
    if (!routable) return;
    auto e = std::make_shared<ActivatorEndpoint>();
    e->id = replica;
    e->address = address;
    e->reserve = reserve;
    r->endpoints.push_back(e);
    it = std::prev(r->endpoints.end());
  }
  (*it)->routable = routable;
  if (routable) r->dispatch_locked();
}

void Activator::close_replica(const std::string& revision, const std::string& replica) {
  auto r = find(revision);
  if (!r) return;
  std::lock_guard lock(r->mu);
  auto it =
      std::find_if(r->endpoints.begin(), r->endpoints.end(), [&](const auto& e) { return e->id == replica; });
  if (it == r->endpoints.end()) {
    auto e = std::make_shared<ActivatorEndpoint>();
    e->id = replica;
    e->closed = true;
    r->endpoints.push_back(std::move(e));
    return;
  }
  (*it)->closed = true;
  // Closing the last standard replica lets a reserve one take waiting requests.
  r->dispatch_locked();
}

void Activator::forget_replica(const std::string& revision, const std::string& replica) {
  auto r = find(revision);
  if (!r) return;
  std::lock_guard lock(r->mu);
  std::erase_if(r->endpoints, [&](const auto& e) { return e->id == replica; });
}

std::size_t Activator::in_flight(const std::string& revision, const std::string& replica) const {
  auto r = find(revision);
  if (!r) return 0;
  std::lock_guard lock(r->mu);
  for (const auto& e : r->endpoints)
    if (e->id == replica) return e->in_flight;
  return 0;
}

std::size_t Activator::routable_replicas(const std::string& revision) const {
  auto r = find(revision);
  if (!r) return 0;
  std::lock_guard lock(r->mu);
  std::size_t n = 0;
  for (const auto& e : r->endpoints)
    if (!e->reserve && e->routable && !e->closed) ++n;
  return n;
}

asio::awaitable<Result<ReplicaLease>> Activator::acquire(std::string revision,
                                                         std::chrono::steady_clock::time_point deadline,
                                                         std::shared_ptr<CancelSignal> cancel) {
  auto r = find(revision);
  if (!r) co_return make_error(revision, "no such revision", kActivatorUnknownRevision);
  auto executor = co_await asio::this_coro::executor;
  auto timer = std::make_shared<asio::steady_timer>(executor);
  auto waiter = std::make_shared<ActivatorWaiter>();
  std::shared_ptr<ActivatorEndpoint> immediate;
  bool removed = false;
  bool full = false;
  std::size_t max_buffer = 0;
  {
    std::lock_guard lock(r->mu);
    removed = r->removed;
    if (!removed) {
      r->account_locked(detail::SteadyClock::now());
      r->arrivals += 1;
      max_buffer = r->max_buffer ? r->max_buffer : options_.max_buffer;
      if (r->queue.empty()) immediate = r->pick_locked();
      if (immediate) {
        ++immediate->in_flight;
        ++r->leased;
      } else if (r->queue.size() >= max_buffer) {
        full = true;
        ++r->rejected;
      } else {
        waiter->wake = [timer, executor] { asio::post(executor, [timer] { timer->cancel(); }); };
        r->queue.push_back(waiter);
      }
    }
  }
  if (removed) co_return make_error(revision, "revision removed", kActivatorBufferFull);
  if (full)
    co_return make_error(revision,
                         "the activator's buffer for this revision is full (" + std::to_string(max_buffer) +
                             " requests waiting)",
                         kActivatorBufferFull);
  if (immediate) {
    const bool reserve = immediate->reserve;
    ReplicaLease lease(r, std::move(immediate));
    if (reserve && on_demand_) on_demand_(revision);
    co_return lease;
  }
  if (on_demand_) on_demand_(revision);
  std::uint64_t subscription = 0;
  if (cancel) {
    std::weak_ptr<ActivatorWaiter> weak = waiter;
    subscription = cancel->subscribe([weak] {
      if (auto w = weak.lock()) w->wake();
    });
  }
  Result<ReplicaLease> result = make_error(revision, "not served", kActivatorTimeout);
  for (;;) {
    timer->expires_at(deadline);
    boost::system::error_code ec;
    co_await timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
    std::lock_guard lock(r->mu);
    if (waiter->assigned) {
      result = ReplicaLease(r, std::move(waiter->assigned));
      break;
    }
    if (waiter->gone) {
      result = make_error(revision, "revision removed while the request waited", kActivatorBufferFull);
      break;
    }
    const bool cancelled = cancel && cancel->cancelled();
    const auto now = detail::SteadyClock::now();
    if (cancelled || now >= deadline) {
      r->account_locked(now);
      std::erase(r->queue, waiter);
      if (!cancelled) ++r->timed_out;
      result = cancelled ? make_error(revision, "cancelled while waiting for a replica", kActivatorCancelled)
                         : make_error(revision, "no replica became available before the request's timeout",
                                      kActivatorTimeout);
      break;
    }
  }
  if (cancel) cancel->unsubscribe(subscription);
  co_return result;
}

std::optional<RevisionCounters> Activator::counters(const std::string& revision) const {
  auto r = find(revision);
  if (!r) return std::nullopt;
  std::lock_guard lock(r->mu);
  return RevisionCounters{r->leased,   r->queue.size(), r->completed,
                          r->rejected, r->timed_out,    r->service_seconds};
}

std::vector<RevisionLoad> Activator::collect() {
  std::vector<std::shared_ptr<ActivatorRevision>> all;
  {
    std::shared_lock lock(mu_);
    all.reserve(revisions_.size());
    for (const auto& [name, r] : revisions_) all.push_back(r);
  }
  std::vector<RevisionLoad> out;
  out.reserve(all.size());
  const auto now = detail::SteadyClock::now();
  for (const auto& r : all) {
    std::lock_guard lock(r->mu);
    r->account_locked(now);
    const double seconds = std::chrono::duration<double>(now - r->period_start).count();
    RevisionLoad load;
    load.revision = r->name;
    load.concurrency = seconds > 0 ? r->area / seconds : static_cast<double>(r->load());
    load.requests = r->arrivals;
    load.waiting = r->queue.size();
    load.in_flight = r->leased;
    r->area = 0;
    r->arrivals = 0;
    r->period_start = now;
    out.push_back(std::move(load));
  }
  return out;
}

}  // namespace sluice::agents
