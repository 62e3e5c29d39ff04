// Runs one block: every GPU thread a fiber, resumed in thread-index order until it waits in a
// barrier or returns. A barrier releases its threads in index order once all have arrived, so
// the schedule is deterministic: thread 0 runs ahead of thread 1 between two barriers, which
// exposes any read of shared memory that a missing __syncthreads leaves unordered.
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "runtime.h"

extern "C" {
__thread EnamelEmuIndices enamel_emu_indices = {};
alignas(64) __thread unsigned char enamel_emu_dynamic_shared[enamel_emu::kMaxDynamicSharedBytes];
}

namespace enamel_emu {
namespace {

__thread BlockRun* current_block = nullptr;
__thread GpuThread* current_thread = nullptr;

const char* collective_name(int kind) {
    switch (kind) {
        case ENAMEL_EMU_SYNCWARP: return "__syncwarp";
        case ENAMEL_EMU_SHFL_IDX: return "__shfl_sync";
        case ENAMEL_EMU_SHFL_UP: return "__shfl_up_sync";
        case ENAMEL_EMU_SHFL_DOWN: return "__shfl_down_sync";
        case ENAMEL_EMU_SHFL_XOR: return "__shfl_xor_sync";
        case ENAMEL_EMU_BALLOT: return "__ballot_sync";
        case ENAMEL_EMU_ANY: return "__any_sync";
        case ENAMEL_EMU_ALL: return "__all_sync";
        default: return "a warp collective";
    }
}

// Paths as the compiler saw them are absolute; from `kernels/` on is enough to find the line.
const char* short_path(const char* file) {
    if (file == nullptr) return "?";
    const char* found = nullptr;
    for (const char* p = std::strstr(file, "kernels/"); p; p = std::strstr(p + 1, "kernels/")) {
        found = p;
    }
    return found ? found : file;
}

bool same_site(const char* file_a, unsigned line_a, const char* file_b, unsigned line_b) {
    return line_a == line_b && (file_a == file_b || std::strcmp(file_a, file_b) == 0);
}

unsigned thread_number(const BlockRun& block, const GpuThread& thread) {
    return static_cast<unsigned>(&thread - block.threads.data());
}

// Appends to block.error; the first call writes the prefix that names the kernel and block.
void describe(BlockRun& block, const char* format, ...) {
    std::size_t used = std::strlen(block.error);
    if (used == 0) {
        used = static_cast<std::size_t>(std::snprintf(
            block.error, sizeof block.error, "kernel `%s`, block (%u,%u,%u) of %u threads: ",
            block.kernel->name, block.block_idx.x, block.block_idx.y, block.block_idx.z,
            block.thread_count));
    }
    if (used >= sizeof block.error) return;
    va_list list;
    va_start(list, format);
    std::vsnprintf(block.error + used, sizeof block.error - used, format, list);
    va_end(list);
}

// Takes the next ready thread off the queue and makes it the current one.
GpuThread* take_ready(BlockRun& block) {
    if (block.failed || block.ready_count == 0) return nullptr;
    GpuThread& thread = block.threads[block.ready[block.ready_head]];
    block.ready_head = (block.ready_head + 1) % block.thread_count;
    --block.ready_count;
    thread.state = ThreadState::Running;
    current_thread = &thread;
    enamel_emu_indices.thread_idx = thread.index;
    return &thread;
}

// Leaves `thread` for the next ready one, straight from fiber to fiber; back to the scheduler
// only when nobody is ready. Returns when `thread` is resumed.
void switch_away(BlockRun& block, GpuThread& thread) {
    GpuThread* next = take_ready(block);
    if (next == &thread) return;
    fiber_switch(thread.fiber, next != nullptr ? next->fiber : block.scheduler);
}

// Leaves the block for good: the scheduler sees `failed` and abandons every fiber.
[[noreturn]] void fail_block(BlockRun& block, GpuThread& thread) {
    block.failed = true;
    fiber_switch(thread.fiber, block.scheduler);
    std::abort();  // a failed block is never resumed
}

void make_ready(BlockRun& block, unsigned index) {
    block.threads[index].state = ThreadState::Ready;
    block.ready[(block.ready_head + block.ready_count) % block.thread_count] = index;
    ++block.ready_count;
}

void wait_for_release(BlockRun& block, GpuThread& thread) { switch_away(block, thread); }

unsigned existing_lanes(const BlockRun& block, unsigned warp) {
    const unsigned first = warp * 32;
    const unsigned count = block.thread_count - first < 32 ? block.thread_count - first : 32;
    return count == 32 ? 0xffffffffu : (1u << count) - 1;
}

// What lane `lane` of a completed collective gets back.
void deliver(BlockRun& block, unsigned warp, unsigned lane, unsigned ballot) {
    GpuThread& thread = block.threads[warp * 32 + lane];
    const int width = thread.width;
    const int segment_start = static_cast<int>(lane) & ~(width - 1);
    const int segment_end = segment_start + width;
    int source = static_cast<int>(lane);
    switch (thread.kind) {
        case ENAMEL_EMU_BALLOT: thread.result = ballot; return;
        case ENAMEL_EMU_ANY: thread.result = ballot != 0; return;
        case ENAMEL_EMU_ALL: thread.result = ballot == thread.effective_mask; return;
        case ENAMEL_EMU_SYNCWARP: thread.result = 0; return;
        case ENAMEL_EMU_SHFL_IDX: source = segment_start + (thread.param & (width - 1)); break;
        case ENAMEL_EMU_SHFL_UP: source = static_cast<int>(lane) - thread.param; break;
        case ENAMEL_EMU_SHFL_DOWN: source = static_cast<int>(lane) + thread.param; break;
        case ENAMEL_EMU_SHFL_XOR: source = static_cast<int>(lane) ^ thread.param; break;
    }
    if (thread.kind == ENAMEL_EMU_SHFL_UP && source < segment_start) {
        source = static_cast<int>(lane);
    }
    if (source >= segment_end) source = static_cast<int>(lane);
    thread.undefined = source < 0 || ((thread.effective_mask >> source) & 1u) == 0;
    thread.result = thread.undefined ? 0 : block.threads[warp * 32 + source].value;
}

}  // namespace

bool run_block(BlockRun& block, StackArena& stacks) {
    const unsigned n = block.thread_count;
    const unsigned warps = (n + 31) / 32;
    block.threads.resize(n);
    block.ready.resize(n);
    block.ready_head = 0;
    block.ready_count = 0;
    block.barrier_arrived = 0;
    block.exited = 0;
    block.warp_waiting.assign(warps, 0);
    block.warp_exited.assign(warps, 0);
    block.failed = false;
    block.error[0] = '\0';

    for (unsigned i = 0; i < n; ++i) {
        GpuThread& thread = block.threads[i];
        thread.index = uint3{i % block.block_dim.x, (i / block.block_dim.x) % block.block_dim.y,
                             i / (block.block_dim.x * block.block_dim.y)};
        fiber_init(thread.fiber, stacks.stack_top(i), block.scheduler);
        make_ready(block, i);
    }

    enamel_emu_indices.block_idx = block.block_idx;
    enamel_emu_indices.block_dim = block.block_dim;
    enamel_emu_indices.grid_dim = block.grid_dim;
    current_block = &block;
    while (GpuThread* thread = take_ready(block)) fiber_switch(block.scheduler, thread->fiber);
    current_block = nullptr;
    current_thread = nullptr;
    if (block.failed) return false;
    if (block.exited == n) return true;

    // Nobody can run, yet not everyone returned: say who waits where.
    describe(block, "deadlock, %u of %u threads returned;", block.exited, n);
    unsigned reported = 0;
    for (unsigned i = 0; i < n && reported < 4; ++i) {
        const GpuThread& t = block.threads[i];
        if (t.state == ThreadState::AtBlockBarrier) {
            describe(block, " thread (%u,%u,%u) waits in __syncthreads at %s:%u;", t.index.x,
                     t.index.y, t.index.z, short_path(t.file), t.line);
            ++reported;
        } else if (t.state == ThreadState::AtWarpCollective) {
            describe(block, " thread (%u,%u,%u) waits in %s(mask 0x%08x) at %s:%u;", t.index.x,
                     t.index.y, t.index.z, collective_name(t.kind), t.mask, short_path(t.file),
                     t.line);
            ++reported;
        }
    }
    return false;
}

}  // namespace enamel_emu

using namespace enamel_emu;

extern "C" [[noreturn]] void enamel_emu_fiber_main() {
    BlockRun& block = *current_block;
    block.kernel->invoke(block.args);

    GpuThread& thread = *current_thread;
    const unsigned number = thread_number(block, thread);
    const unsigned warp = number / 32;
    const unsigned lane = number % 32;
    thread.state = ThreadState::Exited;
    ++block.exited;
    block.warp_exited[warp] |= 1u << lane;

    if (block.barrier_arrived > 0) {
        describe(block,
                 "barrier divergence: thread (%u,%u,%u) returned while %u threads wait in "
                 "__syncthreads at %s:%u; every thread of a block must reach each barrier",
                 thread.index.x, thread.index.y, thread.index.z, block.barrier_arrived,
                 short_path(block.barrier_file), block.barrier_line);
        fail_block(block, thread);
    }
    for (unsigned waiting = block.warp_waiting[warp]; waiting != 0; waiting &= waiting - 1) {
        const GpuThread& other = block.threads[warp * 32 + __builtin_ctz(waiting)];
        if ((other.effective_mask >> lane) & 1u) {
            describe(block,
                     "warp divergence: thread (%u,%u,%u) returned while thread (%u,%u,%u) waits "
                     "for it in %s(mask 0x%08x) at %s:%u",
                     thread.index.x, thread.index.y, thread.index.z, other.index.x,
                     other.index.y, other.index.z, collective_name(other.kind), other.mask,
                     short_path(other.file), other.line);
            fail_block(block, thread);
        }
    }
    switch_away(block, thread);
    std::abort();  // a returned thread is never resumed
}

extern "C" int enamel_emu_syncthreads(int predicate, const char* file, unsigned line) {
    BlockRun& block = *current_block;
    GpuThread& thread = *current_thread;

    if (block.exited > 0) {
        describe(block,
                 "barrier divergence: thread (%u,%u,%u) reached __syncthreads at %s:%u after %u "
                 "threads of its block returned; every thread of a block must reach each barrier",
                 thread.index.x, thread.index.y, thread.index.z, short_path(file), line,
                 block.exited);
        fail_block(block, thread);
    }
    if (block.barrier_arrived > 0 &&
        !same_site(file, line, block.barrier_file, block.barrier_line)) {
        describe(block,
                 "barrier divergence: thread (%u,%u,%u) reached __syncthreads at %s:%u while %u "
                 "threads wait in the __syncthreads at %s:%u",
                 thread.index.x, thread.index.y, thread.index.z, short_path(file), line,
                 block.barrier_arrived, short_path(block.barrier_file), block.barrier_line);
        fail_block(block, thread);
    }
    if (block.barrier_arrived == 0) {
        block.barrier_file = file;
        block.barrier_line = line;
        block.barrier_predicates = 0;
    }
    thread.state = ThreadState::AtBlockBarrier;
    thread.file = file;
    thread.line = line;
    ++block.barrier_arrived;
    block.barrier_predicates += predicate;

    if (block.barrier_arrived == block.thread_count) {
        block.barrier_arrived = 0;
        block.barrier_result = block.barrier_predicates;
        for (unsigned i = 0; i < block.thread_count; ++i) make_ready(block, i);
    }
    wait_for_release(block, thread);
    return block.barrier_result;
}

extern "C" unsigned long long enamel_emu_warp_collective(int kind, unsigned mask,
                                                         unsigned long long value, int param,
                                                         int width, const char* file,
                                                         unsigned line, int* undefined) {
    BlockRun& block = *current_block;
    GpuThread& thread = *current_thread;
    const unsigned number = thread_number(block, thread);
    const unsigned warp = number / 32;
    const unsigned lane = number % 32;
    const unsigned bit = 1u << lane;
    const unsigned effective = mask & existing_lanes(block, warp);

    if ((effective & bit) == 0) {
        describe(block, "thread (%u,%u,%u) (lane %u) called %s at %s:%u with mask 0x%08x, "
                        "which does not include its own lane",
                 thread.index.x, thread.index.y, thread.index.z, lane, collective_name(kind),
                 short_path(file), line, mask);
        fail_block(block, thread);
    }
    if (width < 1 || width > 32 || (width & (width - 1)) != 0) {
        describe(block, "thread (%u,%u,%u) called %s at %s:%u with width %d; it must be a power "
                        "of two from 1 to 32",
                 thread.index.x, thread.index.y, thread.index.z, collective_name(kind),
                 short_path(file), line, width);
        fail_block(block, thread);
    }
    if (const unsigned gone = effective & block.warp_exited[warp]; gone != 0) {
        describe(block,
                 "warp divergence: thread (%u,%u,%u) called %s(mask 0x%08x) at %s:%u but lane "
                 "%d of that mask has returned",
                 thread.index.x, thread.index.y, thread.index.z, collective_name(kind), mask,
                 short_path(file), line, __builtin_ctz(gone));
        fail_block(block, thread);
    }

    // Every lane waiting in an overlapping collective must be in this same one.
    for (unsigned waiting = block.warp_waiting[warp]; waiting != 0; waiting &= waiting - 1) {
        const GpuThread& other = block.threads[warp * 32 + __builtin_ctz(waiting)];
        if ((other.effective_mask & effective) != 0 && (other.kind != kind || other.mask != mask)) {
            describe(block,
                     "warp divergence: thread (%u,%u,%u) called %s(mask 0x%08x) at %s:%u while "
                     "thread (%u,%u,%u) waits in %s(mask 0x%08x) at %s:%u",
                     thread.index.x, thread.index.y, thread.index.z, collective_name(kind), mask,
                     short_path(file), line, other.index.x, other.index.y, other.index.z,
                     collective_name(other.kind), other.mask, short_path(other.file),
                     other.line);
            fail_block(block, thread);
        }
    }

    thread.state = ThreadState::AtWarpCollective;
    thread.kind = kind;
    thread.mask = mask;
    thread.effective_mask = effective;
    thread.value = value;
    thread.param = param;
    thread.width = width;
    thread.file = file;
    thread.line = line;
    block.warp_waiting[warp] |= bit;

    if ((block.warp_waiting[warp] & effective) == effective) {
        unsigned ballot = 0;
        for (unsigned lanes = effective; lanes != 0; lanes &= lanes - 1) {
            const unsigned l = static_cast<unsigned>(__builtin_ctz(lanes));
            if (block.threads[warp * 32 + l].value != 0) ballot |= 1u << l;
        }
        for (unsigned lanes = effective; lanes != 0; lanes &= lanes - 1) {
            const unsigned l = static_cast<unsigned>(__builtin_ctz(lanes));
            deliver(block, warp, l, ballot);
            make_ready(block, warp * 32 + l);
        }
        block.warp_waiting[warp] &= ~effective;
    }
    wait_for_release(block, thread);
    if (undefined != nullptr) *undefined = thread.undefined;
    return thread.result;
}

extern "C" unsigned enamel_emu_activemask(void) {
    const BlockRun& block = *current_block;
    const unsigned warp = thread_number(block, *current_thread) / 32;
    return existing_lanes(block, warp) & ~block.warp_exited[warp];
}
