//! A caching allocator over a device's raw buffers, with a byte budget.
//!
//! Freed buffers go back to a cache keyed by their exact size, since a training step asks for
//! the same sizes every iteration; the next request of that size takes one from the cache
//! instead of calling the device. The budget (`--mem-limit`; unlimited by default) bounds
//! the bytes held from the device, in use plus cached: a request that would cross it first
//! empties the cache, and if it still does not fit, fails with an error naming the budget and
//! the request. The high-water mark of bytes in use is kept as the peak.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::{DeviceApi, RawBuffer};
use crate::launch::{DevicePtr, LaunchError};

/// Byte counts of the allocator, as [`super::Device::memory_stats`] reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Bytes handed out and not yet freed.
    pub in_use: usize,
    /// Bytes freed but kept for reuse.
    pub cached: usize,
    /// The largest `in_use` seen.
    pub peak: usize,
    /// The most bytes that may be held from the device (in use plus cached), if limited.
    pub budget: Option<usize>,
}

#[derive(Default)]
struct Pool {
    free: HashMap<usize, Vec<Box<dyn RawBuffer>>>,
    stats: MemoryStats,
}

/// The allocator, shared by every clone of a device.
#[derive(Clone, Default)]
pub struct CachingAllocator {
    pool: Arc<Mutex<Pool>>,
}

/// Why an allocation failed.
#[derive(Debug)]
pub enum AllocError {
    Budget {
        budget: usize,
        requested: usize,
        in_use: usize,
    },
    Device(LaunchError),
}

impl std::fmt::Display for AllocError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AllocError::Budget {
                budget,
                requested,
                in_use,
            } => write!(
                f,
                "device memory budget of {budget} bytes ({}) exceeded: {requested} bytes \
                 ({}) requested with {in_use} bytes in use; raise --mem-limit or use a smaller \
                 patch",
                human(*budget),
                human(*requested)
            ),
            AllocError::Device(e) => write!(f, "{e}"),
        }
    }
}

/// `bytes` in MiB or GiB for messages.
fn human(bytes: usize) -> String {
    let mib = bytes as f64 / (1024.0 * 1024.0);
    if mib >= 1024.0 {
        format!("{:.2} GiB", mib / 1024.0)
    } else {
        format!("{mib:.2} MiB")
    }
}

impl CachingAllocator {
    pub fn new(budget: Option<usize>) -> Self {
        let allocator = CachingAllocator::default();
        allocator.lock().stats.budget = budget;
        allocator
    }

    fn lock(&self) -> MutexGuard<'_, Pool> {
        // A panic while the lock was held leaves only counters behind; they stay usable.
        self.pool
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn stats(&self) -> MemoryStats {
        self.lock().stats
    }

    /// Returns every cached buffer to the device.
    pub fn release_cached(&self) {
        let mut pool = self.lock();
        pool.free.clear();
        pool.stats.cached = 0;
    }

    /// A buffer of exactly `bytes`, from the cache or from `api`.
    pub fn alloc(
        &self,
        api: &dyn DeviceApi,
        bytes: usize,
    ) -> Result<Box<dyn RawBuffer>, AllocError> {
        let mut pool = self.lock();
        if let Some(buffer) = pool.free.get_mut(&bytes).and_then(Vec::pop) {
            pool.stats.cached -= bytes;
            pool.stats.in_use += bytes;
            pool.stats.peak = pool.stats.peak.max(pool.stats.in_use);
            return Ok(self.wrap(buffer, bytes));
        }

        if let Some(budget) = pool.stats.budget {
            let in_use = pool.stats.in_use;
            if in_use + pool.stats.cached + bytes > budget {
                pool.free.clear();
                pool.stats.cached = 0;
            }
            if in_use + bytes > budget {
                return Err(AllocError::Budget {
                    budget,
                    requested: bytes,
                    in_use,
                });
            }
        }
        let buffer = api.alloc(bytes).map_err(AllocError::Device)?;
        pool.stats.in_use += bytes;
        pool.stats.peak = pool.stats.peak.max(pool.stats.in_use);
        Ok(self.wrap(buffer, bytes))
    }

    fn wrap(&self, buffer: Box<dyn RawBuffer>, bytes: usize) -> Box<dyn RawBuffer> {
        Box::new(PooledBuffer {
            buffer: Some(buffer),
            bytes,
            allocator: self.clone(),
        })
    }

    fn give_back(&self, buffer: Box<dyn RawBuffer>, bytes: usize) {
        let mut pool = self.lock();
        pool.stats.in_use -= bytes;
        pool.stats.cached += bytes;
        pool.free.entry(bytes).or_default().push(buffer);
    }
}

/// A buffer on loan from the allocator; dropping it returns it to the cache.
struct PooledBuffer {
    buffer: Option<Box<dyn RawBuffer>>,
    bytes: usize,
    allocator: CachingAllocator,
}

impl PooledBuffer {
    fn inner(&self) -> &dyn RawBuffer {
        // Some from construction until drop.
        self.buffer
            .as_deref()
            .expect("pooled buffer used after drop")
    }
}

impl RawBuffer for PooledBuffer {
    fn ptr(&self) -> DevicePtr {
        self.inner().ptr()
    }

    fn len_bytes(&self) -> usize {
        self.bytes
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), LaunchError> {
        match self.buffer.as_deref_mut() {
            Some(buffer) => buffer.write(bytes),
            None => Err(LaunchError::CopySize {
                buffer: 0,
                host: bytes.len(),
            }),
        }
    }

    fn read(&self, out: &mut [u8]) -> Result<(), LaunchError> {
        self.inner().read(out)
    }
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        if let Some(buffer) = self.buffer.take() {
            self.allocator.give_back(buffer, self.bytes);
        }
    }
}
