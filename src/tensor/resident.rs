//! The one thing a tensor needs to know about device memory: a buffer it can read back.

/// Device memory holding a tensor's values, kept alive by the tensors that share it. The
/// device backend that made it finds its own buffers again through [`ResidentBuffer::as_any`];
/// everything else only reads the values back.
pub trait ResidentBuffer: Send + Sync {
    fn len_bytes(&self) -> usize;
    /// Copies the values to the host, after the work that writes them has finished; `out`
    /// is exactly `len_bytes` long.
    fn read(&self, out: &mut [u8]) -> Result<(), String>;
    fn as_any(&self) -> &dyn std::any::Any;
}
