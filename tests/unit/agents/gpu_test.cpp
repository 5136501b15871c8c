#include "agents/gpu.hpp"

#include <gtest/gtest.h>

namespace sluice::agents {
namespace {

constexpr std::int64_t GiB = 1LL << 30;

GpuInventory inventory(std::string_view spec) {
  auto inv = parse_gpu_inventory(spec);
  EXPECT_TRUE(inv) << inv.error().to_string();
  return inv ? inv.value() : GpuInventory{};
}

GpuRequest whole(std::string id, int n, std::vector<std::string> classes = {}, int priority = 0) {
  return GpuRequest{std::move(id), n, 0, std::move(classes), priority};
}

GpuRequest share(std::string id, std::int64_t bytes, std::vector<std::string> classes = {},
                 int priority = 0) {
  return GpuRequest{std::move(id), 0, bytes, std::move(classes), priority};
}

TEST(GpuInventory, ParsesFlag) {
  auto inv = parse_gpu_inventory("A100:80Gi, A100:80Gi,T4:16Gi");
  ASSERT_TRUE(inv) << inv.error().to_string();
  ASSERT_EQ(inv.value().gpus.size(), 3u);
  EXPECT_EQ(inv.value().gpus[2], (Gpu{2, "T4", "T4", 16 * GiB}));
  EXPECT_EQ(inv.value().to_string(), "A100:80Gi,A100:80Gi,T4:16Gi");
  EXPECT_TRUE(parse_gpu_inventory("").value().empty());
}

TEST(GpuInventory, FlagErrorsNameTheEntry) {
  for (const char* bad : {"A100", "A100:lots", ":80Gi", "A100:80Gi,,T4:16Gi", "A100:0"}) {
    auto inv = parse_gpu_inventory(bad);
    ASSERT_FALSE(inv) << bad;
    EXPECT_EQ(inv.error().subject, "--gpus");
    EXPECT_NE(inv.error().message.find("entry"), std::string::npos) << inv.error().message;
  }
}

TEST(GpuInventory, ParsesNvidiaSmi) {
  auto inv = parse_nvidia_smi(
      "1, NVIDIA H100 80GB HBM3, 81559\n0, NVIDIA A100-SXM4-80GB, 81920\n2, Tesla T4, 15360\n"
      "3, NVIDIA L4, 23034\n4, NVIDIA GeForce RTX 4090, 24564\n");
  ASSERT_TRUE(inv) << inv.error().to_string();
  ASSERT_EQ(inv.value().gpus.size(), 5u);
  EXPECT_EQ(inv.value().gpus[0].index, 0);
  EXPECT_EQ(inv.value().gpus[0].gpu_class, "A100");
  EXPECT_EQ(inv.value().gpus[0].name, "NVIDIA A100-SXM4-80GB");
  EXPECT_EQ(inv.value().gpus[0].memory_bytes, 81920LL << 20);
  EXPECT_EQ(inv.value().gpus[1].gpu_class, "H100");
  EXPECT_EQ(inv.value().gpus[2].gpu_class, "T4");
  EXPECT_EQ(inv.value().gpus[3].gpu_class, "L4");
  EXPECT_EQ(inv.value().gpus[4].gpu_class, "RTX4090");
  EXPECT_FALSE(parse_nvidia_smi("0, A100\n"));
  EXPECT_TRUE(parse_nvidia_smi("").value().empty());
}

TEST(GpuInventory, DetectWithoutNvidiaSmiIsEmptyNotAnError) {
  auto inv = detect_gpus();
  ASSERT_TRUE(inv) << inv.error().to_string();  // on a GPU machine, the real inventory
}

TEST(GpuAllocator, WholeGpusAreExclusive) {
  GpuAllocator alloc(inventory("A100:80Gi,A100:80Gi,T4:16Gi"));
  auto a = alloc.place(whole("a", 1, {"A100"}));
  ASSERT_TRUE(a) << a.error().to_string();
  EXPECT_EQ(a.value().gpu_indices, (std::vector<int>{0}));
  EXPECT_EQ(a.value().gpu_class, "A100");
  auto b = alloc.place(whole("b", 1, {"A100"}));
  ASSERT_TRUE(b);
  EXPECT_EQ(b.value().gpu_indices, (std::vector<int>{1}));
  auto c = alloc.place(whole("c", 1, {"A100"}));
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, kUnschedulable);
  EXPECT_EQ(c.error().subject, "c");
  EXPECT_EQ(c.error().message, "needs 1 whole GPU of class A100; 0 free, 0 preemptible");
  // Placing the same replica again is idempotent.
  EXPECT_EQ(alloc.place(whole("a", 1, {"A100"})).value(), a.value());
  EXPECT_TRUE(alloc.release("a"));
  EXPECT_FALSE(alloc.release("a"));
  auto c2 = alloc.place(whole("c", 1, {"A100"}));
  ASSERT_TRUE(c2);
  EXPECT_EQ(c2.value().gpu_indices, (std::vector<int>{0}));
}

TEST(GpuAllocator, MultiGpuRequestsTakeOneClass) {
  GpuAllocator alloc(inventory("A100:80Gi,T4:16Gi,A100:80Gi,T4:16Gi"));
  auto a = alloc.place(whole("a", 2));
  ASSERT_TRUE(a);
  EXPECT_EQ(a.value().gpu_indices, (std::vector<int>{0, 2}));
  auto b = alloc.place(whole("b", 2));
  ASSERT_TRUE(b);
  EXPECT_EQ(b.value().gpu_indices, (std::vector<int>{1, 3}));
  EXPECT_EQ(b.value().gpu_class, "T4");
  auto c = alloc.place(whole("c", 2, {"A100"}));
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message, "needs 2 whole GPUs of class A100; 0 free, 0 preemptible");
}

TEST(GpuAllocator, SharesAreBinPackedBestFit) {
  GpuAllocator alloc(inventory("L4:24Gi,L4:24Gi,L4:24Gi"));
  ASSERT_EQ(alloc.place(share("a", 16 * GiB)).value().gpu_indices, (std::vector<int>{0}));
  ASSERT_EQ(alloc.place(share("b", 12 * GiB)).value().gpu_indices, (std::vector<int>{1}));
  // 8Gi fits on GPU 0 (8 free, exactly) and GPU 1 (12 free): best fit takes GPU 0.
  auto c = alloc.place(share("c", 8 * GiB));
  ASSERT_TRUE(c);
  EXPECT_EQ(c.value().gpu_indices, (std::vector<int>{0}));
  EXPECT_EQ(c.value().memory_bytes, 8 * GiB);
  // 10Gi: only GPU 1 (12 free) and GPU 2 (24 free) fit; best fit is GPU 1.
  EXPECT_EQ(alloc.place(share("d", 10 * GiB)).value().gpu_indices, (std::vector<int>{1}));
  // A GPU with any share is not handed out whole: only GPU 2 is whole-free.
  EXPECT_EQ(alloc.place(whole("e", 1)).value().gpu_indices, (std::vector<int>{2}));
  auto f = alloc.place(share("f", 4 * GiB));
  ASSERT_FALSE(f);
  EXPECT_EQ(f.error().message, "needs 4Gi of GPU memory on one GPU; largest free 2Gi, 0 preemptible");
  auto usage = alloc.usage();
  EXPECT_EQ(usage[0].free_bytes, 0);
  EXPECT_EQ(usage[1].free_bytes, 2 * GiB);
  EXPECT_EQ(usage[2].whole_owner, "e");
  EXPECT_EQ(usage[1].shares.size(), 2u);
}

TEST(GpuAllocator, ClassPreferenceWithFallback) {
  GpuAllocator alloc(inventory("T4:16Gi,A100:80Gi,L4:24Gi"));
  auto a = alloc.place(whole("a", 1, {"a100", "L4"}));  // class names match case-insensitively
  ASSERT_TRUE(a);
  EXPECT_EQ(a.value().gpu_indices, (std::vector<int>{1}));
  auto b = alloc.place(whole("b", 1, {"A100", "L4"}));
  ASSERT_TRUE(b);
  EXPECT_EQ(b.value().gpu_indices, (std::vector<int>{2}));
  EXPECT_EQ(b.value().gpu_class, "L4");
  auto c = alloc.place(whole("c", 1, {"A100", "L4", "H100"}));
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message,
            "needs 1 whole GPU of class A100 or L4 or H100; A100: 0 free, 0 preemptible; L4: 0 free, 0 "
            "preemptible; "
            "H100: none in the inventory");
  // A share prefers its first class even when another class would be a tighter fit.
  auto d = alloc.place(share("d", 8 * GiB, {"T4"}));
  ASSERT_TRUE(d);
  EXPECT_EQ(d.value().gpu_indices, (std::vector<int>{0}));
}

TEST(GpuAllocator, FreeGpusAreCountedPerClassWhenTheRequestNamesNone) {
  // One free A100 and one free L4 make no pair of one class: the reason must not say "2 free".
  GpuAllocator alloc(inventory("A100:80Gi,L4:24Gi,A100:80Gi"));
  ASSERT_TRUE(alloc.place(whole("a", 1, {"A100"})));
  auto pair = alloc.place(whole("pair", 2));
  ASSERT_FALSE(pair);
  EXPECT_EQ(pair.error().message,
            "needs 2 whole GPUs; A100: 1 free, 0 preemptible; L4: 1 free, 0 preemptible");
}

TEST(GpuAllocator, NoInventoryAndTooSmallGpus) {
  GpuAllocator none(GpuInventory{});
  auto r = none.place(whole("a", 1));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message,
            "needs 1 whole GPU; this machine has no GPUs (configure --gpus or install nvidia-smi)");
  EXPECT_TRUE(none.place(GpuRequest{"cpu-only", 0, 0, {}, 0}));
  GpuAllocator small(inventory("T4:16Gi"));
  auto big = small.place(share("big", 40 * GiB));
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().message, "needs 40Gi of GPU memory on one GPU; GPUs have at most 16Gi, too small");
}

TEST(GpuAllocator, PreemptionPlanByPriority) {
  GpuAllocator alloc(inventory("A100:80Gi,A100:80Gi"));
  ASSERT_TRUE(alloc.place(whole("low", 1, {}, 0)));
  ASSERT_TRUE(alloc.place(whole("mid", 1, {}, 5)));
  // Same priority as nobody below it: nothing preemptible.
  auto equal = alloc.plan_preemption(whole("zero", 1, {}, 0));
  EXPECT_FALSE(equal.feasible);
  EXPECT_EQ(equal.reason, "needs 1 whole GPU; 0 free, 0 preemptible");
  // Priority 10 needs one GPU: the lowest-priority replica goes.
  auto one = alloc.plan_preemption(whole("high", 1, {}, 10));
  ASSERT_TRUE(one.feasible);
  EXPECT_EQ(one.victims, (std::vector<std::string>{"low"}));
  EXPECT_EQ(one.gpu_indices, (std::vector<int>{0}));
  // place() itself does not preempt; its reason counts what could be preempted.
  auto placed = alloc.place(whole("high", 1, {}, 10));
  ASSERT_FALSE(placed);
  EXPECT_EQ(placed.error().message, "needs 1 whole GPU; 0 free, 2 preemptible");
  // Needs both: both go, lowest priority first.
  auto two = alloc.plan_preemption(whole("high2", 2, {}, 10));
  ASSERT_TRUE(two.feasible);
  EXPECT_EQ(two.victims, (std::vector<std::string>{"low", "mid"}));
  // Priority 3 can only take "low"'s GPU: 2 GPUs are out of reach.
  auto partial = alloc.plan_preemption(whole("p3", 2, {}, 3));
  EXPECT_FALSE(partial.feasible);
  EXPECT_EQ(partial.reason, "needs 2 whole GPUs; 0 free, 1 preemptible");
  // After the runtime drains and releases the victim, the request fits.
  alloc.release("low");
  EXPECT_TRUE(alloc.place(whole("high", 1, {}, 10)));
}

TEST(GpuAllocator, PreemptionPrefersFewestVictims) {
  GpuAllocator alloc(inventory("A100:80Gi,A100:80Gi,A100:80Gi,A100:80Gi"));
  // GPU 0: two small shares; GPU 1: one share; GPUs 2+3: one replica holding both.
  ASSERT_TRUE(alloc.place(share("s1", 10 * GiB, {}, 1)));
  ASSERT_EQ(alloc.place(share("s2", 75 * GiB, {}, 1)).value().gpu_indices, (std::vector<int>{1}));
  ASSERT_EQ(alloc.place(share("s3", 60 * GiB, {}, 1)).value().gpu_indices, (std::vector<int>{0}));
  ASSERT_EQ(alloc.place(whole("pair", 2, {}, 2)).value().gpu_indices, (std::vector<int>{2, 3}));
  // Two whole GPUs: releasing "pair" frees two at once (one victim) instead of three shares.
  auto plan = alloc.plan_preemption(whole("big", 2, {}, 9));
  ASSERT_TRUE(plan.feasible);
  EXPECT_EQ(plan.victims, (std::vector<std::string>{"pair"}));
  EXPECT_EQ(plan.gpu_indices, (std::vector<int>{2, 3}));
  // One whole GPU: GPU 1 costs one victim (s2, priority 1), the pair costs one of priority 2.
  auto one = alloc.plan_preemption(whole("one", 1, {}, 9));
  ASSERT_TRUE(one.feasible);
  EXPECT_EQ(one.victims, (std::vector<std::string>{"s2"}));
  // A 20Gi share: GPU 0 has 10Gi free; evicting s1 (10Gi) is enough, s3 stays.
  auto sh = alloc.plan_preemption(share("sh", 20 * GiB, {}, 9));
  ASSERT_TRUE(sh.feasible);
  EXPECT_EQ(sh.victims, (std::vector<std::string>{"s1"}));
  EXPECT_EQ(sh.gpu_indices, (std::vector<int>{0}));
}

TEST(GpuAllocator, PreemptionRespectsClasses) {
  GpuAllocator alloc(inventory("A100:80Gi,T4:16Gi"));
  ASSERT_TRUE(alloc.place(whole("t4-low", 1, {"T4"}, 0)));
  ASSERT_TRUE(alloc.place(whole("a100-high", 1, {"A100"}, 100)));
  auto plan = alloc.plan_preemption(whole("x", 1, {"A100"}, 50));
  EXPECT_FALSE(plan.feasible);
  EXPECT_EQ(plan.reason, "needs 1 whole GPU of class A100; 0 free, 0 preemptible");
  auto fallback = alloc.plan_preemption(whole("x", 1, {"A100", "T4"}, 50));
  ASSERT_TRUE(fallback.feasible);
  EXPECT_EQ(fallback.victims, (std::vector<std::string>{"t4-low"}));
}

TEST(GpuAllocator, Environment) {
  auto env = gpu_environment(GpuPlacement{{0, 2}, 0, "A100"});
  EXPECT_EQ(env.at("CUDA_VISIBLE_DEVICES"), "0,2");
  EXPECT_EQ(env.count("SLUICE_GPU_MEMORY"), 0u);
  EXPECT_EQ(env.at("CUDA_DEVICE_ORDER"), "PCI_BUS_ID");
  auto shared = gpu_environment(GpuPlacement{{1}, 8 * GiB, "L4"});
  EXPECT_EQ(shared.at("CUDA_VISIBLE_DEVICES"), "1");
  EXPECT_EQ(shared.at("SLUICE_GPU_MEMORY"), "8589934592");
  EXPECT_TRUE(gpu_environment(GpuPlacement{}).empty());
}

}  // namespace
}  // namespace sluice::agents
