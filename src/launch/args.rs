//! Kernel argument lists packed for `cuLaunchKernel`.

use std::ffi::c_void;

/// A device address as the driver sees it (`CUdeviceptr`). On `emu` it is a host address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DevicePtr(pub u64);

impl DevicePtr {
    /// The address `bytes` further on.
    pub fn offset_bytes(self, bytes: u64) -> Self {
        Self(self.0 + bytes)
    }
}

/// One argument's value, stored in its own 8-byte aligned slot so that the slot's address can
/// serve as the parameter pointer `cuLaunchKernel` reads the value from.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(8))]
struct Slot([u8; 8]);

/// The arguments of one launch, in parameter order.
///
/// ```
/// use enamel::launch::{DevicePtr, KernelArgs};
/// let args = KernelArgs::new().ptr(DevicePtr(0x1000)).i32(-3).f32(0.5);
/// assert_eq!(args.sizes(), &[8, 4, 4]);
/// ```
#[derive(Clone, Debug, Default)]
pub struct KernelArgs {
    slots: Vec<Slot>,
    sizes: Vec<usize>,
}

impl KernelArgs {
    pub fn new() -> Self {
        Self::default()
    }

    fn push(mut self, bytes: &[u8]) -> Self {
        let mut slot = Slot([0; 8]);
        slot.0[..bytes.len()].copy_from_slice(bytes);
        self.slots.push(slot);
        self.sizes.push(bytes.len());
        self
    }

    /// A pointer parameter (`float*`, `const __half*`, ...).
    pub fn ptr(self, address: DevicePtr) -> Self {
        self.push(&address.0.to_ne_bytes())
    }

    pub fn i32(self, value: i32) -> Self {
        self.push(&value.to_ne_bytes())
    }

    pub fn u32(self, value: u32) -> Self {
        self.push(&value.to_ne_bytes())
    }

    pub fn f32(self, value: f32) -> Self {
        self.push(&value.to_ne_bytes())
    }

    pub fn u64(self, value: u64) -> Self {
        self.push(&value.to_ne_bytes())
    }

    pub fn i64(self, value: i64) -> Self {
        self.push(&value.to_ne_bytes())
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The size in bytes of each argument, in order.
    pub fn sizes(&self) -> &[usize] {
        &self.sizes
    }

    /// The `void** kernelParams` array: entry `i` points at argument `i`'s value. The pointers
    /// stay valid while `self` is alive and unchanged; the callee only reads through them.
    pub fn param_pointers(&self) -> Vec<*mut c_void> {
        self.slots
            .iter()
            .map(|slot| slot.0.as_ptr() as *mut c_void)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_parameter_pointer_reads_back_its_value() {
        let args = KernelArgs::new()
            .ptr(DevicePtr(0xdead_beef_0000))
            .i32(-7)
            .u32(7)
            .f32(1.25)
            .u64(u64::MAX - 1);
        let pointers = args.param_pointers();
        assert_eq!(args.len(), 5);
        assert_eq!(args.sizes(), &[8, 4, 4, 4, 8]);

        // SAFETY: each pointer addresses an 8-byte slot owned by `args`, which is alive.
        unsafe {
            assert_eq!(*(pointers[0] as *const u64), 0xdead_beef_0000);
            assert_eq!(*(pointers[1] as *const i32), -7);
            assert_eq!(*(pointers[2] as *const u32), 7);
            assert_eq!(*(pointers[3] as *const f32), 1.25);
            assert_eq!(*(pointers[4] as *const u64), u64::MAX - 1);
        }
        for pointer in pointers {
            assert_eq!(pointer as usize % 8, 0);
        }
    }
}
