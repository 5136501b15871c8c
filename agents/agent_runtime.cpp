#include "agents/agent_runtime.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>

#include "agents/readiness.hpp"
#include "core/log.hpp"

namespace sluice::agents {

using std::chrono::milliseconds;

struct AgentRuntime::Replica {
  std::string id;   // "3", or "r4" for a reserve replica
  std::string key;  // "REV/ID": the GPU holder id
  bool reserve = false;
  std::unique_ptr<ReplicaProcess> process;
  std::optional<GpuPlacement> gpu;
  bool draining = false;
  bool stop_sent = false;
  std::string drain_reason;
  SteadyTime drain_started{};
};

struct AgentRuntime::Revision {
  RevisionRecord record;
  const std::string& name() const { return record.name; }
  const AgentTemplate& tmpl() const { return record.revision_template; }
  std::vector<std::unique_ptr<Replica>> replicas;
  int next_replica = 1;
  int desired = 0;
  bool ever_ready = false;      // a replica has passed its readiness probe
  bool starts_at_zero = false;  // initial-scale and min-scale 0: ready to be activated without a replica
  bool routed = false;
  std::string unschedulable;  // the placement failure, while one lasts
  std::string start_error;    // why replicas cannot be configured (a missing Secret), while it lasts
  std::string config_error;   // autoscaler annotations the autoscaler refused
  /// Ready for traffic: as Knative's, a revision created at zero counts as ready without a replica.
  bool ready() const { return ever_ready || starts_at_zero; }
};

struct AgentRuntime::Agent {
  AgentSpec spec;
  RevisionHistory history;
  std::vector<std::unique_ptr<Revision>> revisions;  // oldest first
  RolloutState rollout;
  std::vector<ResolvedTarget> effective;
  bool has_table = false;
  std::string route_error;
  double backlog = 0;
};

struct AgentRuntime::Route {
  TrafficTable table;
  std::map<std::string, milliseconds, std::less<>> timeouts;
  AgentProtocol protocol = AgentProtocol::Http;
  std::string error;
};

struct AgentRuntime::Pass {
  std::vector<std::pair<std::string, std::string>> became_ready;
};

namespace {

std::string replica_state_name(const ReplicaProcess& p) {
  return std::string(to_string(p.state()));
}

}  // namespace

AgentRuntime::AgentRuntime(AgentRuntimeOptions options, Clock& clock)
    : options_(std::move(options)),
      clock_(clock),
      activator_(
          options_.activator, [this](const std::string& revision) { poke(revision); },
          [this](const std::string& revision, const std::string& replica) { recheck(revision, replica); }),
      autoscaler_(clock, options_.autoscaler,
                  options_.data_dir.empty() ? "" : options_.data_dir + "/autoscaler"),
      gpus_(options_.gpus),
      metrics_(options_.metrics ? std::make_unique<AgentMetrics>(*options_.metrics) : nullptr) {}

AgentRuntime::~AgentRuntime() {
  stop();
}

void AgentRuntime::set_revision_listener(RevisionListener listener) {
  listener_ = std::move(listener);
}
void AgentRuntime::set_backlog_source(BacklogSource source) {
  backlog_source_ = std::move(source);
}

void AgentRuntime::start() {
  // Replicas of a server that was killed (or crashed) before it could stop them still hold their ports,
  // GPUs and memory: stop them before starting new ones.
  if (!options_.data_dir.empty())
    if (const auto n = kill_leftover_replicas(options_.data_dir + "/replicas"); n > 0)
      SLUICE_LOG(agents, warn, "stopped {} replica process(es) left running by an earlier server", n);
  next_tick_ = clock_.now() + options_.autoscaler_tick;
  next_metrics_ = clock_.now() + options_.metrics_interval;
  thread_ = std::thread([this] { run(); });
}

void AgentRuntime::wake() {
  {
    std::lock_guard lock(wake_mu_);
    woken_ = true;
  }
  wake_cv_.notify_one();
}

void AgentRuntime::poke(const std::string& revision) {
  {
    std::lock_guard lock(wake_mu_);
    pokes_.insert(revision);
    woken_ = true;
  }
  wake_cv_.notify_one();
}

void AgentRuntime::recheck(const std::string& revision, const std::string& replica) {
  {
    std::lock_guard lock(wake_mu_);
    rechecks_.emplace(revision, replica);
    woken_ = true;
  }
  wake_cv_.notify_one();
}

void AgentRuntime::run() {
  for (;;) {
    {
      std::unique_lock lock(wake_mu_);
      wake_cv_.wait_for(lock, milliseconds(50), [&] { return woken_ || stopping_; });
      if (stopping_) return;
      woken_ = false;
    }
    pass();
    if (const auto now = clock_.now(); now >= next_profile_save_) {
      next_profile_save_ = now + options_.profile_save_interval;
      save_profiles();
    }
  }
}

void AgentRuntime::save_profiles() {
  if (auto st = autoscaler_.save_profiles(); !st)
    SLUICE_LOG(agents, warn, "predictive profiles not saved: {}", st.error().to_string());
}

void AgentRuntime::stop() {
  {
    std::lock_guard lock(wake_mu_);
    if (stopped_) return;
    stopped_ = true;
    stopping_ = true;
  }
  wake_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  save_profiles();

  // Close everything, let requests in flight finish, then stop the processes. Each replica gets its own
  // revision's grace (timeoutSeconds × 1.2) from now, as in any drain, not the longest of all.
  struct Closing {
    std::string revision;
    Replica* replica;
    std::chrono::steady_clock::time_point deadline;
  };
  std::vector<Closing> all;
  milliseconds grace{0};
  const auto began = std::chrono::steady_clock::now();
  std::unique_lock lock(mu_);
  for (auto& [name, agent] : agents_)
    for (auto& revision : agent->revisions) {
      const milliseconds revision_grace = drain_grace(revision->tmpl());
      grace = std::max(grace, revision_grace);
      for (auto& replica : revision->replicas) {
        activator_.close_replica(revision->name(), replica->id);
        replica->process->begin_drain();
        all.push_back({revision->name(), replica.get(), began + revision_grace});
      }
    }
  for (auto& [revision, replica, deadline] : all) {
    while (activator_.in_flight(revision, replica->id) > 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(milliseconds(5));
    replica->process->stop(std::chrono::duration_cast<milliseconds>(
        std::max(deadline - std::chrono::steady_clock::now(),
                 std::chrono::steady_clock::duration(milliseconds(100)))));
  }
  for (auto& closing : all) closing.replica->process->wait_stopped(grace + milliseconds(2000));
  agents_.clear();
  graveyard_.clear();
}

Status AgentRuntime::validate(const nlohmann::json& manifest) const {
  auto spec = parse_agent(manifest);
  if (!spec) return spec.error();
  autoscaler::Autoscaler probe(clock_, options_.autoscaler);
  if (auto st = probe.add_revision("probe", spec.value().revision_template.annotations,
                                   spec.value().revision_template.container_concurrency);
      !st)
    return make_error("spec.template.metadata.annotations[" + st.error().subject + "]", st.error().message,
                      400);
  if (spec.value().revision_template.container.gpu.any() && gpus_.inventory().empty())
    SLUICE_LOG(agents, warn, "[agent={}] asks for GPUs but this server has none (--gpus or nvidia-smi)",
               spec.value().name);
  return ok();
}

AgentRuntime::Revision* AgentRuntime::add_revision_locked(Agent& agent, const RevisionRecord& record) {
  for (auto& r : agent.revisions)
    if (r->name() == record.name) return r.get();
  auto revision = std::make_unique<Revision>();
  revision->record = record;
  revision->ever_ready = record.ever_ready;
  const auto& tmpl = revision->tmpl();
  if (auto st = autoscaler_.add_revision(record.name, tmpl.annotations, tmpl.container_concurrency); !st)
    revision->config_error = st.error().to_string();
  if (auto spec = autoscaler_.revision_spec(record.name)) {
    revision->desired = std::max(spec->initial_scale, spec->min_scale);
    revision->starts_at_zero = revision->config_error.empty() && revision->desired == 0;
  }
  activator_.add_revision(record.name, tmpl.container_concurrency, tmpl.max_buffered);
  agent.revisions.push_back(std::move(revision));
  return agent.revisions.back().get();
}

Status AgentRuntime::apply(const nlohmann::json& manifest) {
  auto parsed = parse_agent(manifest);
  if (!parsed) return parsed.error();
  AgentSpec spec = std::move(parsed).value();
  std::unique_lock lock(mu_);
  auto it = agents_.find(spec.name);
  if (it == agents_.end()) {
    auto history = RevisionHistory::load(options_.data_dir, spec.name);
    if (!history) return history.error();
    auto agent = std::make_unique<Agent>();
    agent->history = std::move(history).value();
    // A deleted namesake whose replicas still drain keeps its revisions' names until they stop.
    if (auto draining = agents_.find(std::string("\x01") + spec.name); draining != agents_.end())
      for (const auto& r : draining->second->revisions) agent->history.number_after(r->record.generation);
    it = agents_.emplace(spec.name, std::move(agent)).first;
    // Earlier revisions run again when traffic names them.
    for (const auto& record : it->second->history.revisions()) add_revision_locked(*it->second, record);
  }
  Agent& agent = *it->second;
  bool created = false;
  auto record = agent.history.record(spec, manifest, &created);
  if (!record) return record.error();
  Revision* revision = add_revision_locked(agent, *record.value());
  if (created) SLUICE_LOG(agents, info, "[agent={} rev={}] created", spec.name, revision->name());
  agent.spec = std::move(spec);
  agent.has_table = false;  // spec.traffic may have changed
  lock.unlock();
  wake();
  return ok();
}

void AgentRuntime::remove(const std::string& name) {
  std::unique_lock lock(mu_);
  auto it = agents_.find(name);
  if (it == agents_.end()) return;
  auto agent = std::move(it->second);
  agents_.erase(it);
  {
    std::unique_lock routes(route_mu_);
    routes_.erase(name);
  }
  const auto now = clock_.now();
  for (auto& revision : agent->revisions) {
    for (auto& replica : revision->replicas)
      if (!replica->draining) drain(*revision, *replica, "agent deleted", now);
  }
  // The replicas finish draining on the reconciler thread, from a holder agent kept aside.
  auto holder = std::make_unique<Agent>();
  holder->spec.name = "";
  for (auto& revision : agent->revisions) {
    autoscaler_.remove_revision(revision->name());
    removed_revisions_.emplace_back(name, revision->name());
    holder->revisions.push_back(std::move(revision));
  }
  // Deleted again before an earlier deletion finished draining: one holder keeps both.
  auto& draining = agents_[std::string("\x01") + name];
  if (draining) {
    for (auto& revision : holder->revisions) draining->revisions.push_back(std::move(revision));
  } else {
    draining = std::move(holder);
  }
  RevisionHistory::erase(options_.data_dir, name);
  lock.unlock();
  wake();
}

void AgentRuntime::drain(Revision& revision, Replica& replica, std::string why, SteadyTime now) {
  if (replica.draining) return;
  replica.draining = true;
  replica.drain_reason = std::move(why);
  replica.drain_started = now;
  activator_.close_replica(revision.name(), replica.id);
  replica.process->begin_drain();
  SLUICE_LOG(agents, info, "[rev={} replica={}] draining: {}", revision.name(), replica.id,
             replica.drain_reason);
}

void AgentRuntime::preempt(const std::string& replica_key, SteadyTime now) {
  for (auto& [name, agent] : agents_)
    for (auto& revision : agent->revisions)
      for (auto& replica : revision->replicas)
        if (replica->key == replica_key) drain(*revision, *replica, "preempted by a higher priority", now);
}

bool AgentRuntime::start_replica(Agent& agent, Revision& revision, bool reserve, Pass&) {
  const Container& container = reserve ? *revision.tmpl().reserve : revision.tmpl().container;
  const int number = revision.next_replica;
  auto replica = std::make_unique<Replica>();
  replica->id = (reserve ? "r" : "") + std::to_string(number);
  replica->key = revision.name() + "/" + replica->id;
  replica->reserve = reserve;
  // Secrets are looked up at each start, so that a replica gets the value the Secret has now.
  std::map<std::string, std::string> secret_env;
  for (const auto& var : container.env) {
    if (!var.secret) continue;
    auto value = options_.resolve_secret
                     ? options_.resolve_secret(var.secret->name, var.secret->key)
                     : Result<std::string>(make_error("secretKeyRef", "secrets are not available", 500));
    if (!value) {
      const std::string why = "env " + var.name + ": " + value.error().to_string();
      if (revision.start_error != why)
        SLUICE_LOG(agents, warn, "[rev={}] cannot start a replica: {}", revision.name(), why);
      revision.start_error = why;
      return false;
    }
    secret_env[var.name] = std::move(value).value();
  }
  revision.start_error.clear();
  std::map<std::string, std::string> env;
  if (container.gpu.any()) {
    GpuRequest request;
    request.replica_id = replica->key;
    request.whole_gpus = container.gpu.whole_gpus;
    request.memory_bytes = container.gpu.memory_bytes;
    request.classes = container.gpu.classes;
    request.priority = revision.tmpl().priority;
    auto placed = gpus_.place(request);
    if (!placed) {
      auto plan = gpus_.plan_preemption(request);
      if (plan.feasible && !plan.victims.empty()) {
        const auto now = clock_.now();
        std::string names;
        for (const auto& victim : plan.victims) {
          preempt(victim, now);
          names += (names.empty() ? "" : ", ") + victim;
        }
        revision.unschedulable = "waiting for preempted replicas to drain: " + names;
      } else {
        if (revision.unschedulable != placed.error().message)
          SLUICE_LOG(agents, warn, "[rev={}] unschedulable: {}", revision.name(), placed.error().message);
        revision.unschedulable = placed.error().message;
      }
      return false;
    }
    replica->gpu = placed.value();
    env = gpu_environment(placed.value());
  } else if (!gpus_.inventory().empty()) {
    env["CUDA_VISIBLE_DEVICES"] = "";  // hide the GPUs from a replica that asked for none
  }
  revision.unschedulable.clear();
  auto port = pick_free_port(options_.host);
  if (!port) {
    if (replica->gpu) gpus_.release(replica->key);
    revision.unschedulable = "no free port: " + port.error().to_string();
    return false;
  }
  ++revision.next_replica;
  for (auto& [name, value] : secret_env) env[name] = std::move(value);
  ReplicaConfig config;
  config.agent = agent.spec.name;
  config.revision = revision.name();
  config.replica = replica->id;
  config.container = container;
  config.extra_env = std::move(env);
  config.host = options_.host;
  config.port = port.value();
  config.log_path = replica_log_path(options_.data_dir, agent.spec.name, revision.name(), replica->id);
  if (!options_.data_dir.empty())
    config.pid_file = replica_pid_path(options_.data_dir, revision.name(), replica->id);
  config.progress_deadline = progress_deadline(revision.tmpl());
  config.restart = options_.restart;
  const std::string revision_name = revision.name();
  const std::string id = replica->id;
  const std::string address = options_.host + ":" + std::to_string(port.value());
  replica->process = std::make_unique<ReplicaProcess>(
      std::move(config), clock_,
      [this, revision_name, id, address, reserve](ReplicaState state, const std::string& reason) {
        activator_.set_routable(revision_name, id, address, reserve, state == ReplicaState::Ready);
        SLUICE_LOG(agents, debug, "[rev={} replica={}] {}: {}", revision_name, id, to_string(state), reason);
        wake();
      });
  replica->process->start();
  SLUICE_LOG(agents, info, "[agent={} rev={} replica={}] starting on port {}{}{}", agent.spec.name,
             revision_name, id, port.value(), reserve ? " (reserve)" : "",
             replica->gpu ? " gpus " + gpu_environment(*replica->gpu)["CUDA_VISIBLE_DEVICES"] : "");
  revision.replicas.push_back(std::move(replica));
  return true;
}

void AgentRuntime::reconcile_revision(Agent& agent, Revision& revision, bool routed, SteadyTime now,
                                      Pass& out) {
  // A revision that lost its traffic (a new one took over) keeps serving the requests already waiting
  // in its buffer: they were routed to it and would otherwise end with a 504. Not so once the agent is
  // deleted.
  const auto counters = activator_.counters(revision.name());
  const bool has_waiting = !agent.spec.name.empty() && counters && counters->waiting > 0;
  const int desired = routed ? revision.desired : has_waiting ? std::max(revision.desired, 1) : 0;
  auto is_ready = [](const Replica& r) { return r.process->state() == ReplicaState::Ready; };
  auto count = [&](bool reserve, bool ready_only) {
    int n = 0;
    for (const auto& r : revision.replicas)
      if (r->reserve == reserve && !r->draining && (!ready_only || is_ready(*r))) ++n;
    return n;
  };

  // Scale up.
  int standard = count(false, false);
  while (standard < desired) {
    if (!start_replica(agent, revision, false, out)) break;
    ++standard;
  }
  if (standard >= desired && desired > 0) revision.unschedulable.clear();
  if (desired == 0) revision.unschedulable.clear();

  // Reserve: one while the revision is at zero, drained once a standard replica is ready.
  const bool reserve_enabled = revision.tmpl().reserve.has_value();
  const bool reserve_wanted = reserve_enabled && routed && desired == 0 && revision.ever_ready;
  const int ready_standard = count(false, true);
  if (reserve_wanted && count(true, false) == 0) start_replica(agent, revision, true, out);
  if (!reserve_wanted && (ready_standard > 0 || !routed || !reserve_enabled)) {
    for (auto& r : revision.replicas)
      if (r->reserve && !r->draining) drain(revision, *r, "a standard replica is ready", now);
  }
  const bool reserve_ready = [&] {
    for (const auto& r : revision.replicas)
      if (r->reserve && !r->draining && is_ready(*r)) return true;
    return false;
  }();

  // Scale down: not-ready replicas first, then the newest; keep one until the reserve is ready.
  int excess = standard - desired;
  if (reserve_wanted && !reserve_ready && excess == standard && excess > 0) --excess;
  if (excess > 0) {
    std::vector<Replica*> candidates;
    for (auto& r : revision.replicas)
      if (!r->reserve && !r->draining) candidates.push_back(r.get());
    std::stable_sort(candidates.begin(), candidates.end(), [&](Replica* a, Replica* b) {
      if (is_ready(*a) != is_ready(*b)) return !is_ready(*a);
      return a->id.size() != b->id.size() ? a->id.size() > b->id.size() : a->id > b->id;
    });
    for (int i = 0; i < excess && i < static_cast<int>(candidates.size()); ++i)
      drain(revision, *candidates[i], "scale down", now);
  }

  // Draining replicas: SIGTERM once idle (or when the grace is over), SIGKILL when the grace, counted from
  // the start of the drain, is over; gone once exited.
  const milliseconds grace = drain_grace(revision.tmpl());
  for (auto it = revision.replicas.begin(); it != revision.replicas.end();) {
    Replica& r = **it;
    if (!r.draining) {
      ++it;
      continue;
    }
    if (!r.stop_sent &&
        (activator_.in_flight(revision.name(), r.id) == 0 || now - r.drain_started >= grace)) {
      const auto drained_for = std::chrono::duration_cast<milliseconds>(now - r.drain_started);
      r.process->stop(std::max(milliseconds(0), grace - drained_for));
      r.stop_sent = true;
    }
    if (r.stop_sent && r.process->wait_stopped(milliseconds(0))) {
      if (r.gpu) gpus_.release(r.key);
      activator_.forget_replica(revision.name(), r.id);
      SLUICE_LOG(agents, info, "[rev={} replica={}] stopped ({})", revision.name(), r.id, r.drain_reason);
      graveyard_.push_back(std::move(*it));
      it = revision.replicas.erase(it);
      continue;
    }
    ++it;
  }

  const int ready_now = count(false, true);
  autoscaler_.set_ready_pods(revision.name(), ready_now);
  if (ready_now > 0 && !revision.ever_ready) {
    revision.ever_ready = true;
    out.became_ready.emplace_back(agent.spec.name, revision.name());
    SLUICE_LOG(agents, info, "[agent={} rev={}] ready", agent.spec.name, revision.name());
    if (auto st = agent.history.mark_ready(revision.name()); !st)
      SLUICE_LOG(agents, warn, "[agent={} rev={}] cannot record that it is ready: {}", agent.spec.name,
                 revision.name(), st.error().to_string());
  }
}

void AgentRuntime::collect_revisions_locked(Agent& agent) {
  if (agent.revisions.empty()) return;
  const Revision* newest = agent.revisions.back().get();
  auto inactive = [&](const Revision& r) {
    if (&r == newest || r.routed || !r.replicas.empty()) return false;
    for (const auto& t : agent.spec.traffic)
      if (t.revision_name == r.name()) return false;
    return true;
  };
  auto count = std::count_if(agent.revisions.begin(), agent.revisions.end(),
                             [&](const auto& r) { return inactive(*r); });
  for (auto it = agent.revisions.begin();
       it != agent.revisions.end() && count > options_.max_inactive_revisions;) {
    if (!inactive(**it)) {
      ++it;
      continue;
    }
    const std::string name = (*it)->name();
    if (auto st = agent.history.forget(name); !st) {
      SLUICE_LOG(agents, warn, "[agent={} rev={}] cannot remove from the history: {}", agent.spec.name, name,
                 st.error().to_string());
      return;
    }
    activator_.remove_revision(name);
    autoscaler_.remove_revision(name);
    removed_revisions_.emplace_back(agent.spec.name, name);
    SLUICE_LOG(agents, info, "[agent={} rev={}] removed: more than {} inactive revisions", agent.spec.name,
               name, options_.max_inactive_revisions);
    it = agent.revisions.erase(it);
    --count;
  }
}

void AgentRuntime::publish_route_locked(Agent& agent) {
  auto route = std::make_shared<Route>();
  std::vector<RevisionInfo> infos;
  for (const auto& r : agent.revisions) {
    infos.push_back({r->name(), r->ready()});
    route->timeouts[r->name()] = milliseconds(r->tmpl().timeout_seconds * 1000LL);
  }
  route->protocol = agent.spec.revision_template.protocol;
  auto table = TrafficTable::from_resolved(agent.effective, infos);
  if (table) {
    route->table = std::move(table).value();
    agent.route_error.clear();
  } else {
    agent.route_error = table.error().to_string();
    route->error = agent.route_error;
  }
  std::unique_lock lock(route_mu_);
  routes_[agent.spec.name] = std::move(route);
}

void AgentRuntime::reconcile_agent(Agent& agent, SteadyTime now, Pass&) {
  std::vector<RevisionInfo> infos;
  for (const auto& r : agent.revisions) infos.push_back({r->name(), r->ready()});
  const std::string latest = latest_ready_revision(infos);
  if (latest != agent.rollout.latest) {
    agent.rollout = begin_rollout(agent.rollout, latest, agent.spec.rollout_duration, now);
    SLUICE_LOG(agents, info, "[agent={}] latest revision {}", agent.spec.name, latest);
  }
  auto effective = effective_traffic(agent.spec.traffic, agent.rollout, now);
  if (!agent.has_table || effective != agent.effective) {
    // spec.traffic naming a revision that does not exist is reported by build().
    auto check = TrafficTable::build(agent.spec.traffic, infos);
    agent.effective = std::move(effective);
    if (check) {
      publish_route_locked(agent);
    } else {
      agent.route_error = check.error().to_string();
      // As Knative's route reconciler, which leaves the ingress as it was while a traffic target is
      // missing: the last traffic that could be routed keeps being served, the agent is not ready.
      std::unique_lock lock(route_mu_);
      auto it = routes_.find(agent.spec.name);
      if (it == routes_.end() || !it->second->error.empty() || it->second->table.empty()) {
        routes_[agent.spec.name] =
            std::make_shared<Route>(Route{{}, {}, AgentProtocol::Http, agent.route_error});
      }
    }
    agent.has_table = true;
  }
}

void AgentRuntime::pass() {
  const auto now = clock_.now();
  const bool do_metrics = now >= next_metrics_;
  const bool do_tick = now >= next_tick_;
  std::map<std::string, std::size_t> waiting;
  if (do_metrics) {
    next_metrics_ = now + options_.metrics_interval;
    for (const auto& load : activator_.collect()) {
      autoscaler_.record(load.revision, {load.concurrency, load.requests});
      waiting[load.revision] = load.waiting;
    }
  }
  std::map<std::string, double> backlog;
  if (do_metrics && backlog_source_) backlog = backlog_source_();
  std::set<std::string> pokes;
  std::set<std::pair<std::string, std::string>> rechecks;
  {
    std::lock_guard lock(wake_mu_);
    pokes.swap(pokes_);
    rechecks.swap(rechecks_);
  }

  Pass out;
  std::vector<std::unique_ptr<Replica>> dead;
  std::vector<std::pair<std::string, std::string>> removed;
  {
    std::lock_guard lock(mu_);
    std::map<std::string, Revision*> by_name;
    for (auto& [name, agent] : agents_)
      for (auto& r : agent->revisions) by_name[r->name()] = r.get();

    // Replicas that cut a request off: the activator passes them over until they are reported again.
    for (const auto& [revision, replica] : rechecks) {
      auto it = by_name.find(revision);
      if (it == by_name.end()) continue;
      for (auto& r : it->second->replicas)
        if (r->id == replica && !r->draining) r->process->recheck();
    }

    if (do_metrics) {
      for (auto& [name, agent] : agents_) {
        if (agent->spec.name.empty()) continue;
        auto b = backlog.find(name);
        agent->backlog = b == backlog.end() ? 0 : b->second;
        // Split the backlog over the revisions by traffic share.
        std::map<std::string, int> share;
        for (const auto& t : agent->effective) share[t.revision] += t.percent;
        for (auto& r : agent->revisions) {
          const double part = agent->backlog * share[r->name()] / 100.0;
          autoscaler_.set_backlog(r->name(), part);
          if (part > 0 && r->desired == 0) pokes.insert(r->name());
        }
      }
    }
    if (do_tick) {
      next_tick_ = now + options_.autoscaler_tick;
      for (const auto& d : autoscaler_.tick()) {
        auto it = by_name.find(d.revision);
        if (it != by_name.end()) it->second->desired = d.desired_replicas;
      }
    }
    for (const auto& name : pokes) {
      auto it = by_name.find(name);
      if (it == by_name.end()) continue;
      // Like the stat Knative's activator sends for the first request of an idle revision: only when
      // scaling from zero. A busy revision's waiting requests are in the activator's reports already; a
      // phantom request per poke would inflate its load many times a second.
      if (it->second->desired == 0) autoscaler_.record(name, {1, 0});
      auto d = autoscaler_.poke(name);
      it->second->desired = std::max({it->second->desired, d ? d->desired_replicas : 0, 1});
    }
    for (const auto& [name, n] : waiting) {
      auto it = by_name.find(name);
      if (it != by_name.end() && n > 0) it->second->desired = std::max(it->second->desired, 1);
    }

    // Traffic first (which revisions are routed), then replicas, highest priority first.
    std::vector<std::pair<Agent*, Revision*>> order;
    for (auto& [name, agent] : agents_) {
      if (!agent->spec.name.empty()) reconcile_agent(*agent, now, out);
      std::shared_ptr<const Route> route;
      {
        std::shared_lock routes(route_mu_);
        auto it = routes_.find(agent->spec.name);
        if (it != routes_.end()) route = it->second;
      }
      const std::string newest = agent->revisions.empty() ? "" : agent->revisions.back()->name();
      for (auto& r : agent->revisions) {
        r->routed = !agent->spec.name.empty() &&
                    (r->name() == newest || (route && route->table.routes_to(r->name())));
        autoscaler_.set_reachable(r->name(), r->routed);
        order.emplace_back(agent.get(), r.get());
      }
    }
    std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
      return a.second->tmpl().priority > b.second->tmpl().priority;
    });
    for (auto& [agent, revision] : order) reconcile_revision(*agent, *revision, revision->routed, now, out);
    // A revision that just became ready takes its traffic in this pass, not the next.
    if (!out.became_ready.empty())
      for (auto& [name, agent] : agents_)
        if (!agent->spec.name.empty()) reconcile_agent(*agent, now, out);

    // Once a second, like the metrics: nothing about it is urgent.
    if (do_metrics && options_.max_inactive_revisions >= 0)
      for (auto& [name, agent] : agents_)
        if (!agent->spec.name.empty()) collect_revisions_locked(*agent);

    if (do_metrics && metrics_) {
      for (auto& [name, agent] : agents_) {
        if (agent->spec.name.empty()) continue;
        for (const auto& r : agent->revisions) metrics_->update(name, r->name(), sample_locked(*r));
      }
    }

    // Deleted agents whose replicas all stopped are gone.
    for (auto it = agents_.begin(); it != agents_.end();) {
      bool empty = it->second->spec.name.empty();
      if (empty)
        for (const auto& r : it->second->revisions)
          if (!r->replicas.empty()) empty = false;
      if (empty) {
        for (const auto& r : it->second->revisions) activator_.remove_revision(r->name());
        it = agents_.erase(it);
      } else {
        ++it;
      }
    }
    dead.swap(graveyard_);
    removed.swap(removed_revisions_);
  }
  dead.clear();
  if (metrics_)
    for (const auto& [agent, revision] : removed) metrics_->remove(agent, revision);
  if (listener_) {
    for (const auto& [agent, revision] : out.became_ready) listener_(agent, revision, true);
    for (const auto& [agent, revision] : removed) listener_(agent, revision, false);
  }
}

Result<RouteChoice> AgentRuntime::route(std::string_view agent, std::string_view tag,
                                        std::optional<std::uint64_t> key_hash) const {
  std::shared_ptr<const Route> route;
  {
    std::shared_lock lock(route_mu_);
    auto it = routes_.find(agent);
    if (it != routes_.end()) route = it->second;
  }
  if (!route) return make_error("agent " + std::string(agent), "no such agent", kUnknownAgent);
  if (!route->error.empty())
    return make_error("agent " + std::string(agent), "no routable revision: " + route->error, 503);
  const std::string* revision = nullptr;
  if (!tag.empty()) {
    revision = route->table.by_tag(tag);
    if (!revision)
      return make_error("agent " + std::string(agent),
                        "no traffic target has tag \"" + std::string(tag) + "\"", kUnknownAgent);
  } else {
    thread_local std::mt19937_64 random(std::random_device{}());
    revision = route->table.pick(key_hash ? *key_hash : random());
    if (!revision) return make_error("agent " + std::string(agent), "no revision yet", 503);
  }
  RouteChoice choice;
  choice.revision = *revision;
  choice.protocol = route->protocol;
  auto timeout = route->timeouts.find(*revision);
  if (timeout != route->timeouts.end()) choice.timeout = timeout->second;
  return choice;
}

nlohmann::json AgentRuntime::status_locked(const Agent& agent) const {
  nlohmann::json out;
  out["url"] = "/agents/" + agent.spec.name;
  out["protocol"] = std::string(to_string(agent.spec.revision_template.protocol));
  std::string latest_ready;
  for (const auto& r : agent.revisions)
    if (r->ready()) latest_ready = r->name();
  out["latestCreatedRevisionName"] = agent.revisions.empty() ? "" : agent.revisions.back()->name();
  out["latestReadyRevisionName"] = latest_ready;
  auto traffic = nlohmann::json::array();
  std::map<std::string, int> share;
  // The traffic being served: while spec.traffic cannot be routed, the last that could, or none
  // when nothing was routed before (every request gets 503), as Knative's Route status.traffic.
  static const std::vector<ResolvedTarget> kNothingServed;
  const std::vector<ResolvedTarget>* served = &agent.effective;
  std::shared_ptr<const Route> route;
  if (!agent.route_error.empty()) {
    std::shared_lock lock(route_mu_);
    auto it = routes_.find(agent.spec.name);
    if (it != routes_.end()) route = it->second;
    served = route && route->error.empty() ? &route->table.targets() : &kNothingServed;
  }
  for (const auto& t : *served) {
    nlohmann::json entry = {
        {"revisionName", t.revision}, {"percent", t.percent}, {"latestRevision", t.latest}};
    if (!t.tag.empty()) entry["tag"] = t.tag;
    traffic.push_back(entry);
    share[t.revision] += t.percent;
  }
  out["traffic"] = traffic;
  auto revisions = nlohmann::json::array();
  std::string newest_reason;
  std::string_view newest_status = kReadyUnknown;  // no revision yet: Unknown
  std::string_view newest_ready_reason;
  for (const auto& r : agent.revisions) {
    const auto sample = sample_locked(*r);
    auto details = nlohmann::json::array();
    std::string replica_reason;
    bool crash_loop = false;         // a replica failed twice in a row, or for good
    bool deadline_exceeded = false;  // a replica missed the progress deadline
    for (const auto& rep : r->replicas) {
      const auto state = rep->process->state();
      if (!rep->draining && !rep->reserve) {
        crash_loop = crash_loop || rep->process->consecutive_failures() >= 2 ||
                     (state == ReplicaState::Failed && !rep->process->next_restart_at());
        deadline_exceeded = deadline_exceeded || rep->process->progress_deadline_exceeded();
      }
      nlohmann::json d = {
          {"id", rep->id},
          {"state",
           rep->draining && state != ReplicaState::Stopped ? "Draining" : replica_state_name(*rep->process)},
          {"reason", rep->draining ? rep->drain_reason : rep->process->reason()},
          {"pid", rep->process->pid()},
          {"address", rep->process->address()},
          {"restarts", rep->process->restarts()},
          {"reserve", rep->reserve}};
      const std::string last_failure = rep->process->last_failure();
      if (!last_failure.empty()) d["lastFailure"] = last_failure;
      if (rep->gpu) {
        d["gpus"] = rep->gpu->gpu_indices;
        d["gpuClass"] = rep->gpu->gpu_class;
        if (rep->gpu->memory_bytes > 0) d["gpuMemory"] = rep->gpu->memory_bytes;
      }
      if (!rep->draining && state != ReplicaState::Ready && replica_reason.empty()) {
        replica_reason = std::string(to_string(state)) + ": " + rep->process->reason();
        // A replica starting again after a crash: say how the last attempt ended (CrashLoopBackOff).
        if (state == ReplicaState::Starting && !last_failure.empty())
          replica_reason +=
              " (restart " + std::to_string(rep->process->restarts()) + ", last " + last_failure + ")";
      }
      details.push_back(d);
    }
    // Tri-state readiness (agents/readiness.hpp): once ready, a revision stays True (as Knative's,
    // also while scaled to zero); before that, False only for a failure, Unknown while it starts. One
    // created at zero is True until a replica that a request woke fails.
    std::string_view ready_status = kReadyFalse;
    std::string_view ready_reason;
    if (r->ever_ready) {
      ready_status = kReadyTrue;
    } else if (!r->config_error.empty()) {
      ready_reason = kReasonInvalidAutoscaling;
    } else if (!r->start_error.empty()) {
      ready_reason = kReasonCreateContainerConfigError;
    } else if (!r->unschedulable.empty()) {
      ready_reason = kReasonUnschedulable;
    } else if (deadline_exceeded) {
      ready_reason = kReasonProgressDeadlineExceeded;
    } else if (crash_loop) {
      ready_reason = kReasonRevisionFailed;
    } else if (r->starts_at_zero) {
      ready_status = kReadyTrue;
    } else {
      ready_status = kReadyUnknown;
      ready_reason = kReasonDeploying;
    }
    nlohmann::json rev = {{"name", r->name()},
                          {"generation", r->record.generation},
                          {"ready", ready_status == kReadyTrue},
                          {"readyStatus", ready_status},
                          {"replicas", sample.replicas},
                          {"readyReplicas", sample.ready},
                          {"reserveReplicas", sample.reserve},
                          {"desiredReplicas", sample.desired},
                          {"traffic", share[r->name()]},
                          {"priority", r->tmpl().priority},
                          {"replicaStatus", details}};
    const auto& c = sample.requests;
    rev["requests"] = {{"inFlight", c.in_flight},
                       {"waiting", c.waiting},
                       {"completed", c.completed},
                       {"rejected", c.rejected},
                       {"timedOut", c.timed_out},
                       {"retried", c.retried},
                       {"serviceSecondsTotal", c.service_seconds}};
    if (const auto& d = sample.decision) {
      rev["autoscaler"] = {{"observedStableConcurrency", d->observed_stable},
                           {"observedPanicConcurrency", d->observed_panic},
                           {"panic", d->in_panic},
                           {"concurrencyDesired", d->kpa_desired},
                           {"backlogDesired", d->backlog_desired}};
    }
    std::string reason;
    if (!r->config_error.empty()) {
      reason = "InvalidAutoscaling: " + r->config_error;
    } else if (!r->start_error.empty()) {
      reason = std::string(kReasonCreateContainerConfigError) + ": " + r->start_error;
    } else if (!r->unschedulable.empty()) {
      reason = std::string(kReasonUnschedulable) + ": " + r->unschedulable;
    } else if (sample.ready < sample.desired && !replica_reason.empty()) {
      reason = replica_reason;
    }
    if (!reason.empty()) rev["reason"] = reason;
    if (!ready_reason.empty()) rev["readyReason"] = ready_reason;
    if (!r->unschedulable.empty()) rev["unschedulable"] = true;
    if (r.get() == agent.revisions.back().get()) {
      newest_reason = reason;
      newest_status = ready_status;
      newest_ready_reason = ready_reason;
    }
    revisions.push_back(rev);
  }
  out["revisions"] = revisions;
  // The agent's Ready condition follows its newest revision: Unknown while that one starts (Knative's
  // RevisionMissing before any revision is ready, Deploying during a rollout), False when it failed.
  const auto not_ready = [&](std::string_view starting_reason, std::string message) {
    const bool failed = newest_status == kReadyFalse;
    return nlohmann::json{{"status", failed ? kReadyFalse : kReadyUnknown},
                          {"reason", failed ? newest_ready_reason : starting_reason},
                          {"message", std::move(message)}};
  };
  const std::string newest = agent.revisions.empty() ? "" : agent.revisions.back()->name();
  if (!agent.route_error.empty()) {
    out["notReady"] = {
        {"status", kReadyFalse}, {"reason", "TrafficNotRoutable"}, {"message", agent.route_error}};
  } else if (latest_ready.empty()) {
    out["notReady"] =
        not_ready(kReasonRevisionMissing,
                  newest_reason.empty() ? "waiting for the first replica to become ready" : newest_reason);
  } else if (latest_ready == newest && newest_status == kReadyFalse) {
    // Created at zero and counted ready, until the replica that a request woke failed.
    out["notReady"] =
        not_ready(kReasonRevisionMissing,
                  "revision " + newest + " failed (" +
                      (newest_reason.empty() ? std::string(newest_ready_reason) : newest_reason) + ")");
  } else if (latest_ready != newest && !newest_reason.empty()) {
    // As Knative's Configuration: the latest created revision not (yet) ready makes the agent not ready,
    // while the traffic stays on the revisions that are.
    out["notReady"] = not_ready(kReasonDeploying, "revision " + newest + " is not ready (" + newest_reason +
                                                      "); the traffic stays on the revisions that are ready");
  }
  return out;
}

RevisionSample AgentRuntime::sample_locked(const Revision& r) const {
  RevisionSample s;
  for (const auto& rep : r.replicas) {
    if (rep->draining) continue;
    if (rep->reserve) {
      ++s.reserve;
    } else {
      ++s.replicas;
      if (rep->process->state() == ReplicaState::Ready) ++s.ready;
    }
  }
  s.desired = r.routed ? r.desired : 0;
  if (auto c = activator_.counters(r.name())) s.requests = *c;
  s.decision = autoscaler_.last_decision(r.name());
  return s;
}

nlohmann::json AgentRuntime::status(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = agents_.find(name);
  if (it == agents_.end()) return nlohmann::json::object();
  return status_locked(*it->second);
}

nlohmann::json AgentRuntime::describe() const {
  std::lock_guard lock(mu_);
  auto out = nlohmann::json::array();
  for (const auto& [name, agent] : agents_) {
    if (agent->spec.name.empty()) continue;
    auto s = status_locked(*agent);
    auto revisions = nlohmann::json::array();
    for (const auto& r : s["revisions"])
      revisions.push_back({{"name", r["name"]},
                           {"ready", r["ready"]},
                           {"replicas", r["replicas"]},
                           {"readyReplicas", r["readyReplicas"]},
                           {"traffic", r["traffic"]}});
    out.push_back({{"name", name},
                   {"protocol", s["protocol"]},
                   {"revisions", revisions},
                   {"latestReadyRevision", s["latestReadyRevisionName"]}});
  }
  return out;
}

Result<std::string> AgentRuntime::logs(const std::string& agent, const std::string& revision,
                                       std::size_t tail_bytes) const {
  namespace fs = std::filesystem;
  const fs::path root = fs::path(options_.data_dir) / "logs" / agent;
  std::error_code ec;
  if (!fs::is_directory(root, ec))
    return make_error("agent " + agent, "no replica logs (no such agent, or never started)", 404);
  std::vector<fs::path> dirs;
  if (!revision.empty()) {
    if (!fs::is_directory(root / revision, ec))
      return make_error("revision " + revision, "no replica logs for this revision", 404);
    dirs.push_back(root / revision);
  } else {
    for (const auto& entry : fs::directory_iterator(root, ec))
      if (entry.is_directory()) dirs.push_back(entry.path());
    std::sort(dirs.begin(), dirs.end());
  }
  std::string out;
  for (const auto& dir : dirs) {
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(dir, ec))
      if (entry.path().extension() == ".log") files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
      std::ifstream in(file, std::ios::binary);
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (tail_bytes > 0 && text.size() > tail_bytes) text = text.substr(text.size() - tail_bytes);
      out += "==> " + dir.filename().string() + "/" + file.stem().string() + " <==\n" + text;
      if (!text.empty() && text.back() != '\n') out += "\n";
    }
  }
  return out;
}

}  // namespace sluice::agents
