// What the launcher (launch.cpp) and the block scheduler (scheduler.cpp) share.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "fiber.h"
#include "registry.h"
#include "shim.h"

namespace enamel_emu {

enum class ThreadState : std::uint8_t { Ready, Running, AtBlockBarrier, AtWarpCollective, Exited };

struct GpuThread {
    FiberContext fiber;
    uint3 index;
    ThreadState state = ThreadState::Ready;

    // The barrier or warp collective this thread waits in, and what it brought.
    int kind = 0;
    unsigned mask = 0;
    unsigned effective_mask = 0;
    int param = 0;
    int width = 0;
    unsigned long long value = 0;
    unsigned long long result = 0;
    int undefined = 0;
    const char* file = nullptr;
    unsigned line = 0;
};

// One block in flight on a worker thread.
struct BlockRun {
    const KernelEntry* kernel = nullptr;
    void** args = nullptr;
    uint3 block_idx{};
    uint3 block_dim{};
    uint3 grid_dim{};
    unsigned thread_count = 0;

    std::vector<GpuThread> threads;
    std::vector<unsigned> ready;  // ring of thread indices
    std::size_t ready_head = 0;
    std::size_t ready_count = 0;

    // __syncthreads: how many wait, where, and the predicate count handed back.
    unsigned barrier_arrived = 0;
    int barrier_predicates = 0;
    int barrier_result = 0;
    const char* barrier_file = nullptr;
    unsigned barrier_line = 0;
    unsigned exited = 0;

    std::vector<unsigned> warp_waiting;  // lanes waiting in a warp collective, per warp
    std::vector<unsigned> warp_exited;   // lanes that returned, per warp

    bool failed = false;
    char error[1024] = {};
    FiberContext scheduler;
};

// Runs every GPU thread of `block` to completion on the calling thread. Returns false with
// `block.error` filled when the block breaks a barrier rule or deadlocks.
bool run_block(BlockRun& block, StackArena& stacks);

// The buffer `extern __shared__` arrays are bound to (see build.rs), per worker thread.
constexpr std::size_t kMaxDynamicSharedBytes = 48 * 1024;

}  // namespace enamel_emu

extern "C" __thread unsigned char enamel_emu_dynamic_shared[enamel_emu::kMaxDynamicSharedBytes];
