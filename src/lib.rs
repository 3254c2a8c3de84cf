#![deny(clippy::undocumented_unsafe_blocks)]
//! nnrun: Keras-style YAML model specs, validated statically and trained with candle.
//!
//! Data flows one way: `spec` (YAML with positions) -> `layers` (per-layer
//! rules and lowering) -> `graph` (names, DAG, shapes) -> `model` (candle
//! variables and forward) -> `train` (losses, optimizers, fit) -> `artifact`
//! (the run directory); `data` loads what the spec names; `cli` is the edge.

pub mod artifact;
pub mod checkpoint;
pub mod cli;
pub mod data;
pub mod diag;
#[doc(hidden)]
pub mod fuzz;
pub mod graph;
pub mod io;
pub mod kernels;
pub mod layers;
pub mod model;
pub mod plot;
pub mod reference;
pub mod spec;
pub mod summary;
pub mod train;
