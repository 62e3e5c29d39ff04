use thiserror::Error;

/// What can go wrong when tensors are built or combined.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TensorError {
    #[error("shape {shape:?} holds {expected} values but {got} were given")]
    DataLength {
        shape: Vec<usize>,
        expected: usize,
        got: usize,
    },

    #[error("shape {shape:?} is too large to address")]
    TooLarge { shape: Vec<usize> },

    #[error("{op}: expected a {expected}-D tensor, got shape {shape:?}")]
    Rank {
        op: &'static str,
        expected: usize,
        shape: Vec<usize>,
    },

    #[error("{op}: shapes {left:?} and {right:?} do not match")]
    ShapeMismatch {
        op: &'static str,
        left: Vec<usize>,
        right: Vec<usize>,
    },

    #[error("cannot reshape {from:?} into {to:?}: the element counts differ")]
    Reshape { from: Vec<usize>, to: Vec<usize> },

    #[error("{op}: {message}")]
    Invalid { op: &'static str, message: String },
}

/// [`TensorError::Invalid`] for `op`.
pub fn invalid(op: &'static str, message: String) -> TensorError {
    TensorError::Invalid { op, message }
}

/// `shape` as `[N, C, D, H, W]`, or an error naming the op when it is not 5-D.
pub fn dims5(op: &'static str, shape: &[usize]) -> Result<[usize; 5], TensorError> {
    shape.try_into().map_err(|_| TensorError::Rank {
        op,
        expected: 5,
        shape: shape.to_vec(),
    })
}
