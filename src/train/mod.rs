//! Training: Keras losses, optimizers (with schedules and clipping),
//! streaming metrics, the training section, and the fit loop.

pub mod callbacks;
pub mod config;
pub mod ctc;
pub mod fit;
pub mod losses;
pub mod metrics;
pub mod optim;
pub mod progress;
