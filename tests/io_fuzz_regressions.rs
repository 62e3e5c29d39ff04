//! Inputs that once crashed (or could have crashed) the NRRD reader: each must now give an
//! error, and never a panic. Files live in tests/fuzz_regressions/ (see fuzz/README.md).

use std::path::Path;

use enamel::io::nrrd::{read_from_bytes_with, ReadOptions};

#[test]
fn every_regression_input_is_answered_with_an_error() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let options = ReadOptions {
            max_bytes: 64 << 20,
        };
        let result = read_from_bytes_with(&bytes, None, &options);
        assert!(result.is_err(), "{} was accepted", path.display());
        count += 1;
    }
    assert!(
        count >= 2,
        "the regression inputs are missing from {}",
        dir.display()
    );
}
