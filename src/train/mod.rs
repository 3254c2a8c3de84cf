//! Training: Keras losses, optimizers (with schedules and clipping),
//! streaming metrics, the training section, per-sample weights, the fit
//! loop, and what a step needs (memory, stack) checked before it runs.

pub mod callbacks;
pub mod config;
pub mod ctc;
pub mod distributed;
pub mod events;
pub mod fit;
pub mod log;
pub mod losses;
pub mod memory;
pub mod metrics;
#[cfg(feature = "mpi")]
pub mod mpi;
pub mod optim;
pub mod progress;
pub mod weights;
