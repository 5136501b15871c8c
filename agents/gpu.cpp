#include "agents/gpu.hpp"

#include <sys/wait.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <set>

#include "core/log.hpp"
#include "core/quantity.hpp"
#include "core/text.hpp"

namespace sluice::agents {

namespace {

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (true) {
    auto pos = s.find(sep, start);
    if (pos == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, pos - start));
    start = pos + 1;
  }
}

std::string join_ints(const std::vector<int>& v) {
  std::string out;
  for (int i : v) {
    if (!out.empty()) out += ',';
    out += std::to_string(i);
  }
  return out;
}

std::string plural(int n, std::string_view one, std::string_view many) {
  return std::to_string(n) + " " + std::string(n == 1 ? one : many);
}

}  // namespace

std::string GpuInventory::to_string() const {
  std::string out;
  for (const auto& g : gpus) {
    if (!out.empty()) out += ',';
    out += g.gpu_class + ":" + format_bytes(g.memory_bytes);
  }
  return out;
}

Result<GpuInventory> parse_gpu_inventory(std::string_view spec) {
  GpuInventory inv;
  if (trim_space(spec).empty()) return inv;
  auto entries = split(spec, ',');
  for (std::size_t i = 0; i < entries.size(); ++i) {
    std::string entry(trim_space(entries[i]));
    auto where = "entry " + std::to_string(i + 1) + " \"" + entry + "\"";
    auto colon = entry.find(':');
    if (colon == std::string::npos) {
      return make_error("--gpus", where + ": expected CLASS:MEMORY, e.g. A100:80Gi");
    }
    std::string cls = std::string(trim_space(std::string_view(entry).substr(0, colon)));
    std::string mem = std::string(trim_space(std::string_view(entry).substr(colon + 1)));
    bool valid_class = !cls.empty() && std::all_of(cls.begin(), cls.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
    });
    if (!valid_class) {
      return make_error("--gpus", where + ": the class must be a name such as A100, H100, L4 or T4");
    }
    auto bytes = parse_quantity_bytes(mem);
    if (!bytes)
      return make_error("--gpus", where + ": " + bytes.error().message + "; expected memory such as 80Gi");
    if (bytes.value() <= 0) return make_error("--gpus", where + ": memory must be more than 0");
    inv.gpus.push_back(Gpu{static_cast<int>(i), cls, cls, bytes.value()});
  }
  return inv;
}

std::string gpu_class_from_name(std::string_view name) {
  std::vector<std::string> words;
  const std::string trimmed = std::string(trim_space(name));
  for (auto w : split(trimmed, ' ')) {
    if (w.empty()) continue;
    if (iequals(w, "NVIDIA") || iequals(w, "Tesla") || iequals(w, "GeForce") || iequals(w, "Quadro"))
      continue;
    words.emplace_back(w);
  }
  if (words.empty()) return std::string(trim_space(name));
  std::string cls = words[0];
  if ((iequals(cls, "RTX") || iequals(cls, "GTX")) && words.size() > 1) cls += words[1];
  auto dash = cls.find('-');
  if (dash != std::string::npos && dash > 0) cls.resize(dash);
  return cls;
}

Result<GpuInventory> parse_nvidia_smi(std::string_view csv) {
  GpuInventory inv;
  std::size_t line_no = 0;
  for (auto line : split(csv, '\n')) {
    ++line_no;
    std::string text = std::string(trim_space(line));
    if (text.empty()) continue;
    auto first = text.find(',');
    auto last = text.rfind(',');
    if (first == std::string::npos || first == last) {
      return make_error("nvidia-smi", "line " + std::to_string(line_no) + " \"" + text +
                                          "\": expected index, name, memory.total");
    }
    std::string idx = std::string(trim_space(std::string_view(text).substr(0, first)));
    std::string name = std::string(trim_space(std::string_view(text).substr(first + 1, last - first - 1)));
    std::string mem = std::string(trim_space(std::string_view(text).substr(last + 1)));
    int index = 0;
    std::int64_t mib = 0;
    auto r1 = std::from_chars(idx.data(), idx.data() + idx.size(), index);
    auto r2 = std::from_chars(mem.data(), mem.data() + mem.size(), mib);
    if (r1.ec != std::errc() || r2.ec != std::errc() || r1.ptr != idx.data() + idx.size() ||
        r2.ptr != mem.data() + mem.size()) {
      return make_error("nvidia-smi", "line " + std::to_string(line_no) + " \"" + text +
                                          "\": index and memory.total (MiB) must be integers");
    }
    inv.gpus.push_back(Gpu{index, gpu_class_from_name(name), name, mib * 1024 * 1024});
  }
  std::sort(inv.gpus.begin(), inv.gpus.end(), [](const Gpu& a, const Gpu& b) { return a.index < b.index; });
  return inv;
}

Result<GpuInventory> detect_gpus() {
  FILE* pipe = ::popen(
      "nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader,nounits 2>/dev/null", "r");
  if (!pipe) return GpuInventory{};
  std::string out;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  int status = ::pclose(pipe);
  if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    SLUICE_LOG(agents, info,
               "no GPU inventory from nvidia-smi (absent or no driver); give --gpus to configure one");
    return GpuInventory{};
  }
  auto inv = parse_nvidia_smi(out);
  if (inv) SLUICE_LOG(agents, info, "detected GPUs: {}", inv.value().to_string());
  return inv;
}

std::map<std::string, std::string> gpu_environment(const GpuPlacement& placement) {
  std::map<std::string, std::string> env;
  if (placement.gpu_indices.empty()) return env;
  // nvidia-smi numbers GPUs in PCI bus order; CUDA's default order is fastest first. Make them agree.
  env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID";
  env["CUDA_VISIBLE_DEVICES"] = join_ints(placement.gpu_indices);
  if (placement.memory_bytes > 0) env["SLUICE_GPU_MEMORY"] = std::to_string(placement.memory_bytes);
  return env;
}

GpuAllocator::GpuAllocator(GpuInventory inventory)
    : inventory_(std::move(inventory)), state_(inventory_.gpus.size()) {}

std::vector<std::vector<std::size_t>> GpuAllocator::class_groups(const GpuRequest& request) const {
  std::vector<std::vector<std::size_t>> groups;
  if (request.classes.empty()) {
    std::vector<std::size_t> all;
    for (std::size_t i = 0; i < inventory_.gpus.size(); ++i) all.push_back(i);
    groups.push_back(std::move(all));
    return groups;
  }
  for (const auto& cls : request.classes) {
    std::vector<std::size_t> group;
    for (std::size_t i = 0; i < inventory_.gpus.size(); ++i) {
      if (iequals(inventory_.gpus[i].gpu_class, cls)) group.push_back(i);
    }
    groups.push_back(std::move(group));
  }
  return groups;
}

std::optional<std::vector<std::size_t>> GpuAllocator::fit(const GpuRequest& request,
                                                          const std::vector<GpuState>& state) const {
  for (const auto& group : class_groups(request)) {
    if (request.whole_gpus > 0) {
      // A whole request takes GPUs of one class; with no class list, of the first class that has enough.
      std::map<std::string, std::vector<std::size_t>> free_by_class;
      std::vector<std::string> class_order;
      for (auto i : group) {
        const auto& s = state[i];
        if (!s.whole_owner.empty() || !s.shares.empty()) continue;
        const auto& cls = inventory_.gpus[i].gpu_class;
        if (!free_by_class.count(cls)) class_order.push_back(cls);
        free_by_class[cls].push_back(i);
      }
      for (const auto& cls : class_order) {
        auto& free = free_by_class[cls];
        if (static_cast<int>(free.size()) >= request.whole_gpus) {
          free.resize(request.whole_gpus);
          return free;
        }
      }
    } else {
      std::optional<std::size_t> best;
      std::int64_t best_left = 0;
      for (auto i : group) {
        const auto& s = state[i];
        if (!s.whole_owner.empty()) continue;
        std::int64_t left = inventory_.gpus[i].memory_bytes - s.used - request.memory_bytes;
        if (left < 0) continue;
        if (!best || left < best_left) {
          best = i;
          best_left = left;
        }
      }
      if (best) return std::vector<std::size_t>{*best};
    }
  }
  return std::nullopt;
}

GpuPlacement GpuAllocator::placement_from(const Holder& holder) const {
  GpuPlacement p;
  for (auto i : holder.gpus) p.gpu_indices.push_back(inventory_.gpus[i].index);
  p.memory_bytes = holder.memory_bytes;
  p.gpu_class = holder.gpu_class;
  return p;
}

Result<GpuPlacement> GpuAllocator::place(const GpuRequest& request) {
  std::lock_guard lock(mu_);
  if (auto it = holders_.find(request.replica_id); it != holders_.end()) return placement_from(it->second);
  if (request.whole_gpus <= 0 && request.memory_bytes <= 0) return GpuPlacement{};
  auto gpus = fit(request, state_);
  if (!gpus) return make_error(request.replica_id, plan_locked(request).reason, kUnschedulable);
  Holder h;
  h.gpus = *gpus;
  h.priority = request.priority;
  h.gpu_class = inventory_.gpus[gpus->front()].gpu_class;
  if (request.whole_gpus > 0) {
    for (auto i : h.gpus) state_[i].whole_owner = request.replica_id;
  } else {
    h.memory_bytes = request.memory_bytes;
    auto& s = state_[gpus->front()];
    s.shares[request.replica_id] = request.memory_bytes;
    s.used += request.memory_bytes;
  }
  auto placement = placement_from(h);
  holders_.emplace(request.replica_id, std::move(h));
  return placement;
}

bool GpuAllocator::release(std::string_view replica_id) {
  std::lock_guard lock(mu_);
  auto it = holders_.find(replica_id);
  if (it == holders_.end()) return false;
  for (auto i : it->second.gpus) {
    auto& s = state_[i];
    if (s.whole_owner == replica_id) s.whole_owner.clear();
    if (auto sh = s.shares.find(std::string(replica_id)); sh != s.shares.end()) {
      s.used -= sh->second;
      s.shares.erase(sh);
    }
  }
  holders_.erase(it);
  return true;
}

std::optional<GpuPlacement> GpuAllocator::placement_of(std::string_view replica_id) const {
  std::lock_guard lock(mu_);
  auto it = holders_.find(replica_id);
  if (it == holders_.end()) return std::nullopt;
  return placement_from(it->second);
}

PreemptionPlan GpuAllocator::plan_preemption(const GpuRequest& request) const {
  std::lock_guard lock(mu_);
  return plan_locked(request);
}

std::string GpuAllocator::describe(const GpuRequest& request) const {
  std::string what = request.whole_gpus > 0
                         ? "needs " + plural(request.whole_gpus, "whole GPU", "whole GPUs")
                         : "needs " + format_bytes(request.memory_bytes) + " of GPU memory on one GPU";
  if (!request.classes.empty()) {
    what += " of class ";
    for (std::size_t i = 0; i < request.classes.size(); ++i) {
      if (i > 0) what += " or ";
      what += request.classes[i];
    }
  }
  return what;
}

PreemptionPlan GpuAllocator::plan_locked(const GpuRequest& request) const {
  PreemptionPlan plan;
  if (request.whole_gpus <= 0 && request.memory_bytes <= 0) {
    plan.feasible = true;
    return plan;
  }
  if (auto gpus = fit(request, state_)) {
    plan.feasible = true;
    for (auto i : *gpus) plan.gpu_indices.push_back(inventory_.gpus[i].index);
    return plan;
  }

  auto preemptible = [&](const std::string& id) {
    auto it = holders_.find(id);
    return it != holders_.end() && it->second.priority < request.priority;
  };
  auto occupants = [&](const GpuState& s) {
    std::vector<std::string> out;
    if (!s.whole_owner.empty()) out.push_back(s.whole_owner);
    for (const auto& [id, bytes] : s.shares) out.push_back(id);
    return out;
  };
  auto release_in = [&](std::vector<GpuState>& state, const std::string& id) {
    const auto& h = holders_.find(id)->second;
    for (auto i : h.gpus) {
      auto& s = state[i];
      if (s.whole_owner == id) s.whole_owner.clear();
      if (auto sh = s.shares.find(id); sh != s.shares.end()) {
        s.used -= sh->second;
        s.shares.erase(sh);
      }
    }
  };
  auto fits_without = [&](const std::vector<std::string>& victims, const std::vector<std::size_t>& group,
                          std::vector<std::size_t>* where) {
    auto state = state_;
    for (const auto& v : victims) release_in(state, v);
    GpuRequest one_group = request;
    one_group.classes.clear();
    // Check within this group only: mask out GPUs outside it.
    std::set<std::size_t> in_group(group.begin(), group.end());
    for (std::size_t i = 0; i < state.size(); ++i) {
      if (!in_group.count(i)) state[i].whole_owner = "\x01outside";
    }
    auto f = fit(one_group, state);
    if (f && where) *where = *f;
    return f.has_value();
  };
  struct Candidate {
    std::vector<std::string> victims;
    std::vector<std::size_t> gpus;
    int max_priority = 0;
    std::size_t group = 0;
  };
  auto max_prio = [&](const std::vector<std::string>& victims) {
    int m = INT32_MIN;
    for (const auto& v : victims) m = std::max(m, holders_.find(v)->second.priority);
    return m;
  };
  // Drops victims that turn out unnecessary (highest priority first).
  auto prune = [&](std::vector<std::string>& victims, const std::vector<std::size_t>& group) {
    std::stable_sort(victims.begin(), victims.end(), [&](const std::string& a, const std::string& b) {
      return holders_.find(a)->second.priority < holders_.find(b)->second.priority;
    });
    for (std::size_t k = victims.size(); k-- > 0;) {
      auto without = victims;
      without.erase(without.begin() + static_cast<std::ptrdiff_t>(k));
      if (fits_without(without, group, nullptr)) victims = std::move(without);
    }
  };

  std::optional<Candidate> best;
  auto groups = class_groups(request);
  std::vector<std::string> stats;
  for (std::size_t gi = 0; gi < groups.size(); ++gi) {
    const auto& group = groups[gi];
    std::string label = request.classes.size() > 1 ? request.classes[gi] + ": " : "";
    if (group.empty()) {
      stats.push_back(label + "none in the inventory");
      continue;
    }
    std::optional<Candidate> cand;
    if (request.whole_gpus > 0) {
      // Counted per class: a whole request takes GPUs of one class, so free GPUs of two classes do not add
      // up (a group holds several classes only when the request names none).
      std::vector<std::pair<std::string, std::pair<int, int>>> counts;  // class → (free, preemptible)
      for (auto i : group) {
        const auto& cls = inventory_.gpus[i].gpu_class;
        auto it =
            std::find_if(counts.begin(), counts.end(), [&](const auto& c) { return iequals(c.first, cls); });
        if (it == counts.end()) it = counts.insert(counts.end(), {cls, {0, 0}});
        auto occ = occupants(state_[i]);
        if (occ.empty()) {
          ++it->second.first;
        } else if (std::all_of(occ.begin(), occ.end(), preemptible)) {
          ++it->second.second;
        }
      }
      for (const auto& [cls, n] : counts) {
        const std::string prefix = counts.size() > 1 ? cls + ": " : label;
        stats.push_back(prefix + std::to_string(n.first) + " free, " + std::to_string(n.second) +
                        " preemptible");
      }
      // Greedy: release the GPU whose occupants free the most GPUs per victim, lowest priority first.
      std::vector<std::string> victims;
      auto state = state_;
      while (true) {
        std::vector<std::size_t> where;
        if (fits_without(victims, group, &where)) {
          prune(victims, group);
          fits_without(victims, group, &where);
          cand = Candidate{victims, where, victims.empty() ? INT32_MIN : max_prio(victims), gi};
          break;
        }
        int free_now = 0;
        for (auto j : group) free_now += occupants(state[j]).empty() ? 1 : 0;
        int still_needed = std::max(1, request.whole_gpus - free_now);
        std::optional<std::size_t> pick;
        double pick_ratio = 0;
        int pick_prio = 0;
        std::vector<std::string> pick_occ;
        for (auto i : group) {
          auto occ = occupants(state[i]);
          if (occ.empty() || !std::all_of(occ.begin(), occ.end(), preemptible)) continue;
          auto trial = state;
          for (const auto& v : occ) release_in(trial, v);
          int freed = 0;
          for (auto j : group) {
            if (occupants(trial[j]).empty() && !occupants(state[j]).empty()) ++freed;
          }
          // GPUs freed beyond what is still needed earn nothing.
          double ratio = static_cast<double>(occ.size()) / std::clamp(freed, 1, still_needed);
          int prio = max_prio(occ);
          if (!pick || ratio < pick_ratio || (ratio == pick_ratio && prio < pick_prio)) {
            pick = i;
            pick_ratio = ratio;
            pick_prio = prio;
            pick_occ = occ;
          }
        }
        if (!pick) break;
        for (const auto& v : pick_occ) {
          release_in(state, v);
          victims.push_back(v);
        }
      }
    } else {
      std::int64_t largest_free = 0, largest_gpu = 0;
      int freeable = 0;
      for (auto i : group) {
        const auto& s = state_[i];
        std::int64_t mem = inventory_.gpus[i].memory_bytes;
        largest_gpu = std::max(largest_gpu, mem);
        if (s.whole_owner.empty()) largest_free = std::max(largest_free, mem - s.used);
        if (mem < request.memory_bytes) continue;
        std::vector<std::string> victims;
        if (!s.whole_owner.empty()) {
          if (!preemptible(s.whole_owner)) continue;
          victims.push_back(s.whole_owner);
        } else {
          std::vector<std::pair<std::string, std::int64_t>> shares;
          for (const auto& [id, bytes] : s.shares) {
            if (preemptible(id)) shares.push_back({id, bytes});
          }
          std::stable_sort(shares.begin(), shares.end(), [&](const auto& a, const auto& b) {
            int pa = holders_.find(a.first)->second.priority, pb = holders_.find(b.first)->second.priority;
            return pa != pb ? pa < pb : a.second > b.second;
          });
          std::int64_t free = mem - s.used;
          for (const auto& [id, bytes] : shares) {
            if (free >= request.memory_bytes) break;
            victims.push_back(id);
            free += bytes;
          }
          if (free < request.memory_bytes) continue;
          // One victim may do: the lowest-priority, then smallest, share that frees enough alone.
          const std::pair<std::string, std::int64_t>* single = nullptr;
          for (const auto& sh : shares) {
            if (mem - s.used + sh.second < request.memory_bytes) continue;
            int p = holders_.find(sh.first)->second.priority;
            if (!single || p < holders_.find(single->first)->second.priority ||
                (p == holders_.find(single->first)->second.priority && sh.second < single->second)) {
              single = &sh;
            }
          }
          if (single && holders_.find(single->first)->second.priority <= max_prio(victims)) {
            victims = {single->first};
          }
        }
        ++freeable;
        std::vector<std::size_t> only{i};
        prune(victims, only);
        Candidate c{victims, only, max_prio(victims), gi};
        if (!cand || c.victims.size() < cand->victims.size() ||
            (c.victims.size() == cand->victims.size() && c.max_priority < cand->max_priority)) {
          cand = std::move(c);
        }
      }
      if (largest_gpu < request.memory_bytes) {
        stats.push_back(label + "GPUs have at most " + format_bytes(largest_gpu) + ", too small");
      } else {
        stats.push_back(label + "largest free " + format_bytes(largest_free) + ", " +
                        std::to_string(freeable) + " preemptible");
      }
    }
    if (cand && (!best || cand->victims.size() < best->victims.size() ||
                 (cand->victims.size() == best->victims.size() && cand->max_priority < best->max_priority))) {
      best = std::move(cand);
    }
  }

  std::string reason = describe(request);
  if (inventory_.gpus.empty()) {
    reason += "; this machine has no GPUs (configure --gpus or install nvidia-smi)";
  } else {
    for (const auto& s : stats) reason += "; " + s;
  }
  plan.reason = reason;
  if (best) {
    plan.feasible = true;
    plan.victims = best->victims;
    for (auto i : best->gpus) plan.gpu_indices.push_back(inventory_.gpus[i].index);
  }
  return plan;
}

std::vector<GpuUsage> GpuAllocator::usage() const {
  std::lock_guard lock(mu_);
  std::vector<GpuUsage> out;
  for (std::size_t i = 0; i < inventory_.gpus.size(); ++i) {
    const auto& s = state_[i];
    GpuUsage u;
    u.gpu = inventory_.gpus[i];
    u.whole_owner = s.whole_owner;
    u.shares = s.shares;
    u.free_bytes = s.whole_owner.empty() ? inventory_.gpus[i].memory_bytes - s.used : 0;
    out.push_back(std::move(u));
  }
  return out;
}

}  // namespace sluice::agents
