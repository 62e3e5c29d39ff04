// The kernel table: build.rs generates one table per kernel file (listing every
// `extern "C" __global__` function in it) and one index of all tables.
#pragma once

#include <cstddef>
#include <utility>

namespace enamel_emu {

struct KernelEntry {
    const char* name;
    // Unpacks cuLaunchKernel-style `void** args` (args[i] points at parameter i) and runs the
    // kernel body for the calling GPU thread.
    void (*invoke)(void** args);
    const std::size_t* param_sizes;
    std::size_t param_count;
};

struct KernelTable {
    const KernelEntry* entries;
    std::size_t count;
};

template <typename T>
using Stored = std::remove_cv_t<T>;

template <typename F>
struct Params;

template <typename... A>
struct Params<void (*)(A...)> {
    static constexpr std::size_t count = sizeof...(A);
    // One extra slot keeps the array non-empty for kernels without parameters.
    static constexpr std::size_t sizes[sizeof...(A) + 1] = {sizeof(A)..., 0};

    template <void (*Kernel)(A...), std::size_t... I>
    static void call(void** args, std::index_sequence<I...>) {
        Kernel(*static_cast<Stored<A>*>(args[I])...);
    }
};

template <auto Kernel>
void invoke(void** args) {
    using P = Params<decltype(Kernel)>;
    P::template call<Kernel>(args, std::make_index_sequence<P::count>{});
}

template <auto Kernel>
constexpr KernelEntry entry(const char* name) {
    using P = Params<decltype(Kernel)>;
    return KernelEntry{name, &invoke<Kernel>, P::sizes, P::count};
}

}  // namespace enamel_emu

// Defined by the generated index (build.rs).
extern "C" const enamel_emu::KernelTable* enamel_emu_kernel_tables(std::size_t* count);
