//! The scalar type of the CPU kernels. The engine runs them in f32; gradient checks by finite
//! differences and the float64 fixture comparisons run the very same code in f64.

use num_traits::{Float, FromPrimitive, NumAssign};
use std::fmt::Debug;
use std::iter::Sum;

pub trait Real:
    Float + FromPrimitive + NumAssign + Sum + Default + Debug + Send + Sync + 'static
{
    fn of(v: f64) -> Self;
    fn f64(self) -> f64;
}

impl Real for f32 {
    fn of(v: f64) -> Self {
        v as f32
    }

    fn f64(self) -> f64 {
        self as f64
    }
}

impl Real for f64 {
    fn of(v: f64) -> Self {
        v
    }

    fn f64(self) -> f64 {
        self
    }
}
