//! (being written)
mod graph;
pub use graph::*;
