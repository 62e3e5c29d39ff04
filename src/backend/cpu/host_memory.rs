//! How the host allocator treats the CPU backend's tensors. A training step allocates and frees
//! the same large buffers (tens of MB each) every iteration; glibc's malloc serves blocks that
//! large with mmap and unmaps them on free, so every step faults all of its pages in again
//! (measured on net A's step: about a quarter of the process's CPU time in the kernel).
//! Raising the mmap threshold and the trim threshold keeps freed blocks in the heap, where the
//! next step reuses them; the price is a larger resident set between steps.

/// Asks glibc's malloc to keep freed memory for reuse. Returns whether it took both settings
/// (false on other C libraries, where nothing changes). Process-wide: the CLI calls it once at
/// start, `ENAMEL_RETURN_FREED_MEMORY=1` opts out.
pub fn retain_freed_memory() -> bool {
    if std::env::var_os("ENAMEL_RETURN_FREED_MEMORY").is_some_and(|v| v == "1") {
        return false;
    }
    set_thresholds()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_thresholds() -> bool {
    // glibc refuses an mmap threshold above half its largest heap (32 MiB on 64-bit), so
    // blocks above it would still be mapped; turning mmap off for malloc (M_MMAP_MAX = 0)
    // puts every block in the heap.
    // SAFETY: mallopt only sets malloc's tuning parameters; it is safe to call at any time.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX) == 1
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_thresholds() -> bool {
    false
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    #[test]
    fn glibc_takes_both_settings() {
        assert!(super::set_thresholds());
    }
}
