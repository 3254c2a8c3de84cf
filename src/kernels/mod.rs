//! nnrun's own CPU kernels, wrapped as candle CustomOps with hand-written
//! backward passes (candle 0.11's conv backward, pooling and per-op
//! allocations are the training bottlenecks).
//! Every kernel is tested against the plain candle-op version it replaces,
//! and falls back to plain ops on devices other than the CPU.
//!
//! Imports go one way. Leaves: `mat` (the matrix view), `window` (sliding-
//! window geometry and `Padding`), `par` (the thread pool), `cpu` (the ISA
//! level), `stats` (NNRUN_PROFILE=gemm). Then `gemm` (with `sgemm`, its
//! AVX2 / AVX-512 / bf16 kernel), then `host` (the
//! element trait `Real` and host access to tensor data), which every kernel
//! imports; `sink` (weight-gradient buffers) for `dense`; `pool` for `conv`'s
//! fused conv+pool op.

pub mod conv;
pub mod cpu;
pub mod dense;
pub mod gemm;
pub mod host;
pub mod loss;
pub mod mat;
pub mod optim;
pub mod par;
pub mod pool;
pub mod rnn;
pub mod sgemm;
pub mod sink;
pub mod stats;
#[cfg(test)]
pub mod testing;
pub mod vmath;
pub mod window;
