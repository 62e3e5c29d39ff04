// Fibers: one per GPU thread of a block, each on its own small stack, switched by hand-written
// x86-64 assembly (ucontext on other targets, or when ENAMEL_EMU_UCONTEXT is defined).
#pragma once

#include <cstddef>

#if !defined(__x86_64__) || defined(ENAMEL_EMU_UCONTEXT)
#define ENAMEL_EMU_USE_UCONTEXT 1
#include <ucontext.h>
#endif

namespace enamel_emu {

struct FiberContext {
#ifdef ENAMEL_EMU_USE_UCONTEXT
    ucontext_t context;
#else
    void* stack_pointer = nullptr;
#endif
};

// Bytes of stack per GPU thread; each stack sits above a guard page, so an overflow faults.
constexpr std::size_t kFiberStackBytes = 64 * 1024;

// Stacks for up to `capacity` fibers, reused across blocks and launches.
class StackArena {
  public:
    static StackArena* acquire(std::size_t capacity);  // nullptr when mmap fails
    static void release(StackArena* arena);
    char* stack_top(std::size_t index) const;
    std::size_t capacity() const { return capacity_; }

  private:
    char* base_ = nullptr;
    std::size_t capacity_ = 0;
    std::size_t slot_bytes_ = 0;
};

// Prepares `fiber` so that switching to it calls enamel_emu_fiber_main() on the given stack.
void fiber_init(FiberContext& fiber, char* stack_top, FiberContext& return_to);
void fiber_switch(FiberContext& from, FiberContext& to);

}  // namespace enamel_emu

// Runs the current GPU thread's kernel body; defined by the scheduler, never returns.
extern "C" [[noreturn]] void enamel_emu_fiber_main();
