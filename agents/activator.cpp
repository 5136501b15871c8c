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
  // Set when a request could not connect to it, or was cut off by it (its process may have died
  // before the runtime noticed): no request is handed to it until the runtime reports its state
  // again, or until this time passes.
  SteadyClock::time_point unreachable_until{};

  bool unreachable(SteadyClock::time_point now) const { return unreachable_until > now; }
};

struct ActivatorWaiter {
  std::shared_ptr<ActivatorEndpoint> assigned;  // set under the revision's mutex
  bool gone = false;                            // the revision was removed
  std::function<void()> wake;                   // posts to the waiter's executor
};

struct ActivatorRevision {
  std::mutex mu;
  std::string name;
  std::function<void(const std::string&, const std::string&)> on_cut_off;  // set before it is shared
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
  std::uint64_t retried = 0;
  double service_seconds = 0;  // leases held, summed

  std::size_t load() const { return leased + queue.size(); }

  void account_locked(SteadyClock::time_point now) {
    area += static_cast<double>(load()) * std::chrono::duration<double>(now - last_change).count();
    last_change = now;
  }

  // The clock is read only for a replica marked unreachable (rare), not on every pick.
  static bool usable(const ActivatorEndpoint& e) {
    return e.routable && !e.closed &&
           (e.unreachable_until == SteadyClock::time_point{} || !e.unreachable(SteadyClock::now()));
  }

  bool has_room(const ActivatorEndpoint& e) const {
    return usable(e) &&
           (container_concurrency <= 0 || e.in_flight < static_cast<std::size_t>(container_concurrency));
  }

  bool any_standard_routable() const {
    for (const auto& e : endpoints)
      if (!e->reserve && usable(*e)) return true;
    return false;
  }

  /// The earliest time a replica marked unreachable may take requests again (max(): none marked).
  SteadyClock::time_point unreachable_ends_locked(SteadyClock::time_point now) const {
    auto earliest = SteadyClock::time_point::max();
    for (const auto& e : endpoints)
      if (e->unreachable(now)) earliest = std::min(earliest, e->unreachable_until);
    return earliest;
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

  /// `reached`: the request reached the replica (counted as completed); `pass_over` > 0: the replica
  /// takes no new request for that long unless the runtime reports its state first.
  void release(const std::shared_ptr<ActivatorEndpoint>& endpoint, SteadyClock::time_point acquired_at,
               bool reached, std::chrono::milliseconds pass_over) {
    std::lock_guard lock(mu);
    const auto now = SteadyClock::now();
    account_locked(now);
    if (reached) {
      ++completed;
      service_seconds += std::chrono::duration<double>(now - acquired_at).count();
    }
    if (pass_over.count() > 0 && now + pass_over > endpoint->unreachable_until) {
      endpoint->unreachable_until = now + pass_over;
      // Waiting requests learn when the mark ends (see acquire): should the runtime say nothing
      // until then, one of them hands the replica's slots out again.
      for (const auto& waiter : queue) waiter->wake();
    }
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
  give_back(true, {});
}

void ReplicaLease::release_unreachable() {
  give_back(false, kReplicaUnreachableFor);
}

void ReplicaLease::release_cut_off() {
  auto revision = revision_;
  auto endpoint = endpoint_;
  give_back(true, kReplicaCutOffFor);
  // The pass-over lasts until the runtime has checked the replica: a live one that reset one
  // connection takes requests again at once, instead of a single-replica revision stalling for
  // kReplicaCutOffFor.
  if (revision && endpoint && revision->on_cut_off) revision->on_cut_off(revision->name, endpoint->id);
}

void ReplicaLease::give_back(bool reached, std::chrono::milliseconds pass_over) {
  if (endpoint_ && revision_) revision_->release(endpoint_, acquired_at_, reached, pass_over);
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

Activator::Activator(ActivatorOptions options, std::function<void(const std::string&)> on_demand,
                     std::function<void(const std::string&, const std::string&)> on_cut_off)
    : options_(options), on_demand_(std::move(on_demand)), on_cut_off_(std::move(on_cut_off)) {}

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
      slot->on_cut_off = on_cut_off_;
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
  (*it)->unreachable_until = {};  // the runtime's report is newer than a failed connect
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
                                                         std::shared_ptr<CancelSignal> cancel, bool retry) {
  auto r = find(revision);
  if (!r) co_return make_error(revision, "no such revision", kActivatorUnknownRevision);
  auto executor = co_await asio::this_coro::executor;
  auto timer = std::make_shared<asio::steady_timer>(executor);
  auto waiter = std::make_shared<ActivatorWaiter>();
  std::shared_ptr<ActivatorEndpoint> immediate;
  bool removed = false;
  bool full = false;
  std::size_t max_buffer = 0;
  // Wakes up early when a replica marked unreachable may take requests again (nothing else would
  // hand out its slots then).
  auto wake_at = deadline;
  {
    std::lock_guard lock(r->mu);
    removed = r->removed;
    if (!removed) {
      r->account_locked(detail::SteadyClock::now());
      // A retried request arrived before every waiting one: it is not a new arrival, it takes a free
      // slot at once and otherwise waits at the head of the queue, whatever the bound.
      if (retry) {
        ++r->retried;
      } else {
        r->arrivals += 1;
      }
      max_buffer = r->max_buffer ? r->max_buffer : options_.max_buffer;
      if (retry || r->queue.empty()) immediate = r->pick_locked();
      if (immediate) {
        ++immediate->in_flight;
        ++r->leased;
      } else if (!retry && r->queue.size() >= max_buffer) {
        full = true;
        ++r->rejected;
      } else {
        waiter->wake = [timer, executor] { asio::post(executor, [timer] { timer->cancel(); }); };
        if (retry) {
          r->queue.push_front(waiter);
        } else {
          r->queue.push_back(waiter);
        }
        wake_at = std::min(deadline, r->unreachable_ends_locked(detail::SteadyClock::now()));
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
    timer->expires_at(wake_at);
    boost::system::error_code ec;
    co_await timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
    std::lock_guard lock(r->mu);
    const auto woke = detail::SteadyClock::now();
    if (!waiter->assigned && !waiter->gone && wake_at < deadline && woke >= wake_at) r->dispatch_locked();
    wake_at = std::min(deadline, r->unreachable_ends_locked(woke));
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
  RevisionCounters c;
  c.in_flight = r->leased;
  c.waiting = r->queue.size();
  c.completed = r->completed;
  c.rejected = r->rejected;
  c.timed_out = r->timed_out;
  c.retried = r->retried;
  c.service_seconds = r->service_seconds;
  return c;
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
