//! nnrun's own CPU kernels, wrapped as candle CustomOps with hand-written
//! backward passes (candle 0.11's conv backward, pooling and per-op
//! allocations are the training bottlenecks).
//! Every kernel is tested against the plain candle-op version it replaces,
//! and falls back to plain ops on devices other than the CPU.

pub mod conv;
pub mod cpu;
pub mod dense;
pub mod gemm;
pub mod loss;
pub mod optim;
pub mod par;
pub mod pool;
pub mod rnn;
pub mod sgemm;
pub mod sink;
pub mod stats;
