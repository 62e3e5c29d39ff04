// Fiber stacks and the context switch. The x86-64 switch saves only what the SysV ABI says a
// callee keeps: rbx, rbp, r12-r15, the stack pointer, and the MXCSR and x87 control words.
#include "fiber.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <mutex>
#include <vector>

namespace enamel_emu {
namespace {

constexpr std::size_t kMaxThreadsPerBlock = 1024;

std::mutex arena_pool_lock;
std::vector<StackArena*> arena_pool;

}  // namespace

StackArena* StackArena::acquire(std::size_t capacity) {
    if (capacity > kMaxThreadsPerBlock) return nullptr;
    {
        std::lock_guard<std::mutex> guard(arena_pool_lock);
        if (!arena_pool.empty()) {
            StackArena* arena = arena_pool.back();
            arena_pool.pop_back();
            return arena;
        }
    }

    const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    const std::size_t slot = kFiberStackBytes + page;
    const std::size_t total = slot * kMaxThreadsPerBlock;
    void* base = mmap(nullptr, total, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) return nullptr;

    // The lowest page of every slot is a guard page: a stack that grows past it faults.
    for (std::size_t i = 0; i < kMaxThreadsPerBlock; ++i) {
        if (mprotect(static_cast<char*>(base) + i * slot, page, PROT_NONE) != 0) {
            munmap(base, total);
            return nullptr;
        }
    }
    auto* arena = new StackArena();
    arena->base_ = static_cast<char*>(base);
    arena->capacity_ = kMaxThreadsPerBlock;
    arena->slot_bytes_ = slot;
    return arena;
}

void StackArena::release(StackArena* arena) {
    if (arena == nullptr) return;
    std::lock_guard<std::mutex> guard(arena_pool_lock);
    arena_pool.push_back(arena);
}

char* StackArena::stack_top(std::size_t index) const {
    // Stacks are a whole number of pages apart; without an offset, every fiber's saved frame
    // would fall into the same few L1 cache sets.
    const std::size_t colour = (index * 64) % 4096;
    return base_ + (index + 1) * slot_bytes_ - colour;
}

}  // namespace enamel_emu

#ifdef ENAMEL_EMU_USE_UCONTEXT

namespace enamel_emu {

void fiber_init(FiberContext& fiber, char* stack_top, FiberContext& return_to) {
    getcontext(&fiber.context);
    fiber.context.uc_stack.ss_sp = stack_top - kFiberStackBytes;
    fiber.context.uc_stack.ss_size = kFiberStackBytes;
    fiber.context.uc_link = &return_to.context;
    makecontext(&fiber.context, reinterpret_cast<void (*)()>(&enamel_emu_fiber_main), 0);
}

void fiber_switch(FiberContext& from, FiberContext& to) { swapcontext(&from.context, &to.context); }

}  // namespace enamel_emu

#else

extern "C" void enamel_emu_switch_context(void** save_stack_pointer, void* load_stack_pointer);
extern "C" void enamel_emu_fiber_start();

asm(R"(
    .text
    .p2align 4
    .globl enamel_emu_switch_context
    .hidden enamel_emu_switch_context
    .type enamel_emu_switch_context, @function
enamel_emu_switch_context:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, %rdx
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    # Loading a control word is slow, and it rarely differs between fibers.
    movl (%rdx), %eax
    cmpl (%rsp), %eax
    je 1f
    ldmxcsr (%rsp)
1:
    movw 4(%rdx), %ax
    cmpw 4(%rsp), %ax
    je 2f
    fldcw 4(%rsp)
2:
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size enamel_emu_switch_context, .-enamel_emu_switch_context

    .p2align 4
    .globl enamel_emu_fiber_start
    .hidden enamel_emu_fiber_start
    .type enamel_emu_fiber_start, @function
enamel_emu_fiber_start:
    call enamel_emu_fiber_main@PLT
    ud2
    .size enamel_emu_fiber_start, .-enamel_emu_fiber_start
)");

namespace enamel_emu {

void fiber_init(FiberContext& fiber, char* stack_top, FiberContext&) {
    // The frame enamel_emu_switch_context pops: control words, r15..rbp, return address.
    // It is placed so that the stack is 16-byte aligned at enamel_emu_fiber_start's call.
    auto* frame = reinterpret_cast<std::uint64_t*>(stack_top - 80);
    std::uint32_t mxcsr;
    std::uint16_t x87_control;
    asm volatile("stmxcsr %0" : "=m"(mxcsr));
    asm volatile("fnstcw %0" : "=m"(x87_control));
    frame[0] = mxcsr | (static_cast<std::uint64_t>(x87_control) << 32);
    for (int i = 1; i <= 6; ++i) frame[i] = 0;
    frame[7] = reinterpret_cast<std::uint64_t>(&enamel_emu_fiber_start);
    fiber.stack_pointer = frame;
}

void fiber_switch(FiberContext& from, FiberContext& to) {
    enamel_emu_switch_context(&from.stack_pointer, to.stack_pointer);
}

}  // namespace enamel_emu

#endif
