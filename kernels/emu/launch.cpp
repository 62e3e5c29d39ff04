// The C entry points Rust calls: find a kernel by name, check the launch against the kernel's
// parameters and the device limits, and run its blocks on worker threads.
#include <algorithm>
#include <cstdarg>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "runtime.h"

namespace enamel_emu {
namespace {

enum Status : int {
    kOk = 0,
    kUnknownKernel = 1,
    kInvalidConfig = 2,
    kArgumentMismatch = 3,
    kKernelFault = 4,
    kResources = 5,
};

const KernelEntry* find_kernel(const char* name) {
    std::size_t table_count = 0;
    const KernelTable* tables = enamel_emu_kernel_tables(&table_count);
    for (std::size_t t = 0; t < table_count; ++t) {
        for (std::size_t k = 0; k < tables[t].count; ++k) {
            if (std::strcmp(tables[t].entries[k].name, name) == 0) return &tables[t].entries[k];
        }
    }
    return nullptr;
}

int report(char* error, std::size_t error_len, int status, const char* format, ...)
    __attribute__((format(printf, 4, 5)));

int report(char* error, std::size_t error_len, int status, const char* format, ...) {
    if (error != nullptr && error_len > 0) {
        va_list list;
        va_start(list, format);
        std::vsnprintf(error, error_len, format, list);
        va_end(list);
    }
    return status;
}

unsigned worker_count(unsigned long long blocks) {
    unsigned workers = std::thread::hardware_concurrency();
    if (const char* text = std::getenv("ENAMEL_EMU_WORKERS")) {
        const long requested = std::strtol(text, nullptr, 10);
        if (requested > 0 && requested <= 256) workers = static_cast<unsigned>(requested);
    }
    workers = std::max(workers, 1u);
    return static_cast<unsigned>(std::min<unsigned long long>(workers, blocks));
}

struct Launch {
    const KernelEntry* kernel;
    void** args;
    uint3 grid;
    uint3 block;
    unsigned shared_bytes;
    unsigned long long block_total;
    std::atomic<unsigned long long> next_block{0};
    std::atomic<bool> failed{false};
    int status = kOk;
    std::mutex error_lock;
    char error[1024] = {};

    void fail(int code, const char* message) {
        std::lock_guard<std::mutex> guard(error_lock);
        if (!failed.exchange(true)) {
            status = code;
            std::snprintf(error, sizeof error, "%s", message);
        }
    }
};

// Takes blocks from the launch's counter until none is left or one of them failed.
void work(Launch& launch) {
    StackArena* stacks =
        StackArena::acquire(static_cast<std::size_t>(launch.block.x) * launch.block.y *
                            launch.block.z);
    if (stacks == nullptr) {
        launch.fail(kResources, "the emulator could not map fiber stacks (mmap failed)");
        return;
    }
    BlockRun run;
    run.kernel = launch.kernel;
    run.args = launch.args;
    run.block_dim = launch.block;
    run.grid_dim = launch.grid;
    run.thread_count = launch.block.x * launch.block.y * launch.block.z;

    while (!launch.failed.load(std::memory_order_relaxed)) {
        const unsigned long long linear = launch.next_block.fetch_add(1);
        if (linear >= launch.block_total) break;
        run.block_idx = uint3{static_cast<unsigned>(linear % launch.grid.x),
                              static_cast<unsigned>((linear / launch.grid.x) % launch.grid.y),
                              static_cast<unsigned>(linear / (static_cast<unsigned long long>(
                                                                  launch.grid.x) *
                                                              launch.grid.y))};
        std::memset(enamel_emu_dynamic_shared, 0xff, launch.shared_bytes);
        if (!run_block(run, *stacks)) launch.fail(kKernelFault, run.error);
    }
    StackArena::release(stacks);
}

}  // namespace
}  // namespace enamel_emu

using namespace enamel_emu;

extern "C" std::size_t enamel_emu_kernel_count(void) {
    std::size_t table_count = 0;
    const KernelTable* tables = enamel_emu_kernel_tables(&table_count);
    std::size_t count = 0;
    for (std::size_t t = 0; t < table_count; ++t) count += tables[t].count;
    return count;
}

extern "C" const char* enamel_emu_kernel_name(std::size_t index) {
    std::size_t table_count = 0;
    const KernelTable* tables = enamel_emu_kernel_tables(&table_count);
    for (std::size_t t = 0; t < table_count; ++t) {
        if (index < tables[t].count) return tables[t].entries[index].name;
        index -= tables[t].count;
    }
    return nullptr;
}

extern "C" int enamel_emu_launch(const char* name, const unsigned grid[3], const unsigned block[3],
                                 unsigned shared_bytes, void** args, const std::size_t* arg_sizes,
                                 std::size_t arg_count, char* error, std::size_t error_len) {
    try {
        const KernelEntry* kernel = find_kernel(name);
        if (kernel == nullptr) {
            return report(error, error_len, kUnknownKernel,
                          "no kernel named `%s` is compiled into the emulator", name);
        }

        const unsigned long long threads =
            static_cast<unsigned long long>(block[0]) * block[1] * block[2];
        if (threads == 0 || threads > 1024 || block[2] > 64) {
            return report(error, error_len, kInvalidConfig,
                          "kernel `%s`: block (%u,%u,%u) must hold 1 to 1024 threads with z <= 64",
                          name, block[0], block[1], block[2]);
        }
        if (grid[0] == 0 || grid[1] == 0 || grid[2] == 0 || grid[0] > 0x7fffffffu ||
            grid[1] > 65535 || grid[2] > 65535) {
            return report(error, error_len, kInvalidConfig,
                          "kernel `%s`: grid (%u,%u,%u) must be nonzero, x < 2^31, y and z <= "
                          "65535",
                          name, grid[0], grid[1], grid[2]);
        }
        if (shared_bytes > kMaxDynamicSharedBytes) {
            return report(error, error_len, kInvalidConfig,
                          "kernel `%s`: %u bytes of dynamic shared memory exceed the %zu a block "
                          "may have",
                          name, shared_bytes, kMaxDynamicSharedBytes);
        }
        if (arg_sizes != nullptr) {
            if (arg_count != kernel->param_count) {
                return report(error, error_len, kArgumentMismatch,
                              "kernel `%s` takes %zu parameters but %zu arguments were given",
                              name, kernel->param_count, arg_count);
            }
            for (std::size_t i = 0; i < arg_count; ++i) {
                if (arg_sizes[i] != kernel->param_sizes[i]) {
                    return report(error, error_len, kArgumentMismatch,
                                  "kernel `%s`: parameter %zu has %zu bytes but argument %zu "
                                  "has %zu",
                                  name, i, kernel->param_sizes[i], i, arg_sizes[i]);
                }
            }
        }
        if (kernel->param_count > 0 && args == nullptr) {
            return report(error, error_len, kArgumentMismatch,
                          "kernel `%s` takes %zu parameters but no argument list was given", name,
                          kernel->param_count);
        }

        Launch launch;
        launch.kernel = kernel;
        launch.args = args;
        launch.grid = uint3{grid[0], grid[1], grid[2]};
        launch.block = uint3{block[0], block[1], block[2]};
        launch.shared_bytes = shared_bytes;
        launch.block_total = static_cast<unsigned long long>(grid[0]) * grid[1] * grid[2];

        // TODO: keep a pool of worker threads. Spawning them per launch costs tens of
        // microseconds, more as kernels add static shared memory (it lives in every thread's TLS).
        std::vector<std::thread> helpers;
        const unsigned workers = worker_count(launch.block_total);
        for (unsigned w = 1; w < workers; ++w) {
            try {
                helpers.emplace_back(work, std::ref(launch));
            } catch (const std::exception&) {
                break;  // fewer workers is slower, not wrong
            }
        }
        work(launch);
        for (std::thread& helper : helpers) helper.join();

        if (launch.status != kOk) {
            return report(error, error_len, launch.status, "%s", launch.error);
        }
        return kOk;
    } catch (const std::exception& e) {
        return report(error, error_len, kResources, "kernel `%s`: emulator failure: %s", name,
                      e.what());
    }
}
