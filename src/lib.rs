//! nnrun: Keras-style YAML model specs, validated statically and trained with candle.
//!
//! Data flows one way: `spec` (YAML with positions) -> `layers` (per-layer
//! rules) -> `graph` (names, DAG, shapes) -> `summary` / `cli`.

pub mod cli;
pub mod diag;
pub mod graph;
pub mod layers;
pub mod reference;
pub mod spec;
pub mod summary;
