use std::path::PathBuf;

use thiserror::Error;

/// What can go wrong when a volume file is read or written. Every message names the file; the
/// header variants also name the field and the value that was wrong.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum IoError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error(
        "{path}: not a NRRD file (the first line is {first_line:?}, expected NRRD0001..NRRD0005)"
    )]
    NotNrrd { path: PathBuf, first_line: String },

    #[error("{path}: the header has no blank line ending it, so there is no attached data")]
    NoHeaderEnd { path: PathBuf },

    #[error("{path}: field `{field}`: {message} (value {value:?})")]
    Field {
        path: PathBuf,
        field: String,
        value: String,
        message: String,
    },

    #[error("{path}: required field `{field}` is missing")]
    MissingField { path: PathBuf, field: &'static str },

    #[error("{path}: unknown field `{field}` (value {value:?}); key/value pairs use `key:=value`")]
    UnknownField {
        path: PathBuf,
        field: String,
        value: String,
    },

    #[error("{path}: field `{field}` is given twice")]
    DuplicateField { path: PathBuf, field: String },

    #[error("{path}: header line {line} has no `: ` or `:=` separator: {text:?}")]
    BadLine {
        path: PathBuf,
        line: usize,
        text: String,
    },

    #[error("{path}: the data hold {got} bytes; `sizes` {sizes:?} of {type_name} need {expected}")]
    DataLength {
        path: PathBuf,
        sizes: Vec<usize>,
        type_name: String,
        expected: u64,
        got: u64,
    },

    #[error("{path}: `sizes` {sizes:?} of {type_name} need {bytes} bytes, over the limit {limit}")]
    TooLarge {
        path: PathBuf,
        sizes: Vec<usize>,
        type_name: String,
        bytes: u128,
        limit: u64,
    },

    #[error("{path}: {encoding} data could not be decoded: {message}")]
    Decode {
        path: PathBuf,
        encoding: &'static str,
        message: String,
    },

    #[error("{path}: {message}")]
    Geometry { path: PathBuf, message: String },

    #[error("{path}: NIfTI: {message}")]
    Nifti { path: PathBuf, message: String },

    #[error("{path}: unsupported file name; expected .nrrd, .nhdr, .nii or .nii.gz")]
    UnknownFormat { path: PathBuf },

    #[error("{path}: cannot write this volume: {message}")]
    Write { path: PathBuf, message: String },
}

impl IoError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        IoError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
