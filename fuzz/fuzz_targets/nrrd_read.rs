//! Feeds arbitrary bytes to the NRRD reader: it must return a value or an error, never panic,
//! hang or allocate past its limit.
#![no_main]

use enamel::io::nrrd::{read_from_bytes_with, ReadOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // 64 MiB keeps every accepted payload well inside libFuzzer's 2 GiB memory limit.
    let options = ReadOptions {
        max_bytes: 64 << 20,
    };
    if let Ok(nrrd) = read_from_bytes_with(data, None, &options) {
        let v = &nrrd.volume;
        assert_eq!(
            v.voxels.len(),
            v.sizes.iter().product::<usize>() * v.channels
        );
    }
});
