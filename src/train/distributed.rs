//! Synchronous data-parallel training, Horovod's design: every process
//! starts from rank 0's weights, computes the gradient of its contiguous
//! part of every batch (`fit::Shard`), and the parts' gradients are added
//! up in one fused allreduce per step, so every process applies the same
//! step. Only rank 0 writes files or shows progress (the caller's choice
//! of hooks and progress).
//!
//! The transport is the `Collective` trait: MPI (`mpi.rs`, cargo feature
//! `mpi`) is one backend; a NCCL one would sit beside it. `Threads` below
//! runs the processes as threads of one program, for tests.
//!
//! What is exact: the loss is the mean over the whole batch, so each part's
//! gradient (of its own mean) is weighed by its share of the rows before the
//! sum; the result equals a single process's up to the order of the float
//! additions. Dropout masks are the single process's (`layers::BatchPart`).
//! BatchNormalization normalizes with each process's own batch statistics,
//! as Horovod and PyTorch DDP do by default, and each keeps its own moving
//! statistics (rank 0's are saved).

use super::events::{Callback, Step, TrainError};
use super::log::EpochLog;
use super::progress::Progress;
use crate::model::Net;
use candle_core::{DType, Tensor};
use std::time::Instant;

/// What the processes of a data-parallel run do together. Every process
/// calls the same methods in the same order with buffers of the same length.
pub trait Collective {
    fn rank(&self) -> usize;
    fn size(&self) -> usize;
    /// `recv` = the sum of every process's `send`, the same on every process.
    fn sum_f32(&self, send: &[f32], recv: &mut [f32]) -> Result<(), String>;
    fn sum_f64(&self, send: &[f64], recv: &mut [f64]) -> Result<(), String>;
    /// Rank 0's `buf` into every process's.
    fn broadcast_f32(&self, buf: &mut [f32]) -> Result<(), String>;
    fn broadcast_f64(&self, buf: &mut [f64]) -> Result<(), String>;
}

/// A count a process launcher put in the environment, if any of `keys` holds one.
fn env_count(keys: &[&str]) -> Option<usize> {
    keys.iter().find_map(|k| std::env::var(k).ok()?.trim().parse::<usize>().ok()).filter(|&n| n >= 1)
}

/// The number of processes `mpirun` (Open MPI), `mpiexec` (MPICH's Hydra)
/// or `srun` (Slurm's PMI) started this one among, read from the
/// environment they set, without initializing MPI. `None` when no launcher
/// started it, or one (PMIx) that leaves the count to MPI_Init.
pub fn launched_processes() -> Option<usize> {
    env_count(&["OMPI_COMM_WORLD_SIZE", "PMI_SIZE"])
}

/// Whether a process launcher started this process: then MPI is
/// initialized and tells the number of processes. A plain `nnrun train`
/// never initializes MPI (it costs start-up time and may probe the network).
pub fn launched() -> bool {
    launched_processes().is_some() || ["PMI_RANK", "PMIX_RANK"].iter().any(|k| std::env::var_os(k).is_some())
}

/// The processes of this job on this machine, from the same launchers:
/// each takes its share of the cores.
pub fn local_processes() -> Option<usize> {
    env_count(&["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE"])
}

fn failed(e: String) -> TrainError {
    TrainError::Distributed(format!("data-parallel training: {e}"))
}

/// The gradient averaging of a data-parallel run, as a fit callback.
pub struct DataParallel<'a> {
    comm: &'a dyn Collective,
    send: Vec<f32>,
    recv: Vec<f32>,
    /// Allreduces of the gradients done, and the seconds spent in them.
    pub allreduces: usize,
    pub seconds: f64,
}

impl<'a> DataParallel<'a> {
    pub fn new(comm: &'a dyn Collective) -> Self {
        DataParallel { comm, send: Vec::new(), recv: Vec::new(), allreduces: 0, seconds: 0.0 }
    }
}

/// Host f32 values of a tensor.
fn values(t: &Tensor) -> candle_core::Result<Vec<f32>> {
    t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()
}

impl Callback for DataParallel<'_> {
    /// Every weight, trainable or not, from rank 0: the processes start alike
    /// even if their initializations or checkpoints differed.
    fn on_train_begin(&mut self, net: &Net) -> Result<(), TrainError> {
        for v in net.vars.iter().flatten() {
            let mut buf = values(v.as_tensor())?;
            self.comm.broadcast_f32(&mut buf).map_err(failed)?;
            v.set(&Tensor::from_vec(buf, v.shape(), v.device())?.to_dtype(v.dtype())?)?;
        }
        Ok(())
    }

    /// One buffer: every variable's gradient weighed by this process's
    /// share of the rows, one presence flag per variable, the loss total and
    /// the stop flag; summed over processes, then unpacked.
    fn on_step(&mut self, s: &mut Step) -> Result<(), TrainError> {
        let sizes: Vec<usize> = s.vars.iter().map(|v| v.elem_count()).collect();
        let total: usize = sizes.iter().sum();
        let n = s.vars.len();
        self.send.clear();
        self.send.resize(total + n + 2, 0.0);
        let mut offsets = Vec::with_capacity(n);
        let mut at = 0;
        for &len in &sizes {
            offsets.push(at);
            at += len;
        }
        let share = if s.rows == s.batch { 1.0 } else { s.rows as f32 / s.batch.max(1) as f32 };
        for (i, g) in s.grads.iter() {
            let g = values(g)?;
            if g.len() != sizes[*i] {
                return Err(failed(format!("a gradient of {} values for a weight of {}", g.len(), sizes[*i])));
            }
            for (d, x) in self.send[offsets[*i]..offsets[*i] + sizes[*i]].iter_mut().zip(&g) {
                *d = x * share;
            }
            self.send[total + i] = 1.0;
        }
        self.send[total + n] = s.loss_sum as f32;
        self.send[total + n + 1] = f32::from(u8::from(s.stop));
        self.recv.resize(self.send.len(), 0.0);
        let started = Instant::now();
        self.comm.sum_f32(&self.send, &mut self.recv).map_err(failed)?;
        self.seconds += started.elapsed().as_secs_f64();
        self.allreduces += 1;
        s.grads.clear();
        for (i, v) in s.vars.iter().enumerate() {
            if self.recv[total + i] > 0.0 {
                let g = Tensor::from_slice(&self.recv[offsets[i]..offsets[i] + sizes[i]], v.shape(), v.device())?.to_dtype(v.dtype())?;
                s.grads.push((i, g));
            }
        }
        s.loss_sum = f64::from(self.recv[total + n]);
        s.stop = self.recv[total + n + 1] > 0.0;
        Ok(())
    }

    fn on_epoch_sums(&mut self, sums: &mut [f64]) -> Result<(), TrainError> {
        let send = sums.to_vec();
        self.comm.sum_f64(&send, sums).map_err(failed)
    }

    /// Rank 0's log on every process, so that all callbacks decide alike
    /// (the training auc is rank 0's rows': it keeps scores, not sums).
    fn on_epoch_log(&mut self, log: &mut EpochLog) -> Result<(), TrainError> {
        let mut buf: Vec<f64> = log.values.iter().map(|(_, v)| *v).collect();
        self.comm.broadcast_f64(&mut buf).map_err(failed)?;
        for ((_, v), b) in log.values.iter_mut().zip(buf) {
            *v = b;
        }
        Ok(())
    }

    fn on_train_end(&mut self, _net: &Net, progress: &mut dyn Progress) -> Result<(), TrainError> {
        if self.allreduces > 0 {
            let bytes = crate::summary::memory_size(self.send.len().saturating_mul(4));
            progress.message(&format!(
                "data-parallel over {} processes: {} allreduces of {bytes}, {:.3} ms each on average",
                self.comm.size(),
                self.allreduces,
                self.seconds * 1e3 / self.allreduces as f64
            ));
        }
        Ok(())
    }
}

/// Processes as threads of one program, for tests: each thread holds one
/// `Threads`, all made by `Threads::group`. Sums add the processes' buffers
/// in rank order, so every thread gets the same bits.
pub struct Threads {
    rank: usize,
    shared: std::sync::Arc<Shared>,
}

struct Shared {
    size: usize,
    slots: std::sync::Mutex<Vec<Vec<f64>>>,
    barrier: std::sync::Barrier,
}

impl Threads {
    pub fn group(size: usize) -> Vec<Threads> {
        let shared = std::sync::Arc::new(Shared { size, slots: std::sync::Mutex::new(vec![Vec::new(); size]), barrier: std::sync::Barrier::new(size) });
        (0..size).map(|rank| Threads { rank, shared: shared.clone() }).collect()
    }

    /// Every rank's buffer, after all have put theirs.
    fn exchange(&self, mine: Vec<f64>, out: impl FnOnce(&[Vec<f64>])) {
        self.shared.slots.lock().unwrap_or_else(|p| p.into_inner())[self.rank] = mine;
        self.shared.barrier.wait();
        out(&self.shared.slots.lock().unwrap_or_else(|p| p.into_inner()));
        // Nobody writes a slot again before everyone has read them.
        self.shared.barrier.wait();
    }
}

impl Collective for Threads {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.shared.size
    }
    fn sum_f32(&self, send: &[f32], recv: &mut [f32]) -> Result<(), String> {
        self.exchange(send.iter().map(|&x| f64::from(x)).collect(), |all| {
            for (k, r) in recv.iter_mut().enumerate() {
                // f32 additions in rank order, as a reduction of f32 buffers does.
                *r = all.iter().fold(0.0f32, |acc, b| acc + b[k] as f32);
            }
        });
        Ok(())
    }
    fn sum_f64(&self, send: &[f64], recv: &mut [f64]) -> Result<(), String> {
        self.exchange(send.to_vec(), |all| {
            for (k, r) in recv.iter_mut().enumerate() {
                *r = all.iter().fold(0.0, |acc, b| acc + b[k]);
            }
        });
        Ok(())
    }
    fn broadcast_f32(&self, buf: &mut [f32]) -> Result<(), String> {
        self.exchange(buf.iter().map(|&x| f64::from(x)).collect(), |all| {
            for (d, s) in buf.iter_mut().zip(&all[0]) {
                *d = *s as f32;
            }
        });
        Ok(())
    }
    fn broadcast_f64(&self, buf: &mut [f64]) -> Result<(), String> {
        self.exchange(buf.to_vec(), |all| buf.copy_from_slice(&all[0]));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Array, Split};
    use crate::train::fit::{FitOptions, NoHooks, Resume, Shard, fit};
    use crate::train::progress::Silent;
    use candle_core::Device;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    /// A model with Dropout, trained on 10 samples in batches of 4 (the last
    /// batch has 2 rows: with 3 processes, one of them gets none).
    fn setup(yaml_extra: &str) -> (Net, crate::train::config::TrainConfig, Split) {
        let yaml = format!(
            "model:\n  input_shape: [3]\n  layers:\n    - {{type: Dense, units: 8, activation: relu}}\n    - {{type: Dropout, rate: 0.3}}\n    - {{type: Dense, units: 3, activation: softmax}}\ntraining:\n  loss: categorical_crossentropy\n  metrics: [accuracy]\n  optimizer: {{type: adam, learning_rate: 0.05}}\n  epochs: 4\n  batch_size: 4\n{yaml_extra}"
        );
        let (model, cfg) = crate::train::config::from_yaml(&yaml);
        let net = Net::new(model, &Device::Cpu, DType::F32, &mut StdRng::seed_from_u64(7)).unwrap();
        let n = 10;
        let x = Array { shape: vec![3], data: (0..n * 3).map(|i| ((i * 7) % 11) as f32 / 5.0 - 1.0).collect() };
        let y = Array { shape: vec![3], data: (0..n).flat_map(|i| (0..3).map(move |c| f32::from(u8::from(i % 3 == c)))).collect() };
        (net, cfg, Split { n, inputs: vec![x], targets: vec![y], weights: None })
    }

    fn weights(net: &Net) -> Vec<f32> {
        net.vars.iter().flatten().flat_map(|v| values(v.as_tensor()).unwrap()).collect()
    }

    /// Trains on `size` thread-processes; returns each one's logs and weights.
    fn run(size: usize) -> Vec<(Vec<EpochLog>, Vec<f32>)> {
        let group = Threads::group(size);
        std::thread::scope(|scope| {
            let handles: Vec<_> = group
                .iter()
                .map(|comm| {
                    scope.spawn(move || {
                        // Each process initializes differently: the broadcast makes them rank 0's.
                        let (net, cfg, split) = setup("");
                        if comm.rank() > 0 {
                            for v in net.vars.iter().flatten() {
                                v.set(&(v.as_tensor() * 3.0).unwrap()).unwrap();
                            }
                        }
                        let opts = FitOptions {
                            shard: Shard { rank: comm.rank(), size: comm.size() },
                            callbacks: vec![Box::new(DataParallel::new(comm))],
                            ..Default::default()
                        };
                        let out = fit(&net, &cfg, &split, None, opts, Resume::default(), &mut NoHooks, &mut Silent).unwrap();
                        (out.history, weights(&net))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    }

    #[test]
    fn parts_cover_the_batch_and_differ_by_at_most_a_row() {
        for n in 0..12 {
            for size in 1..5 {
                let parts: Vec<_> = (0..size).map(|rank| Shard { rank, size }.rows(n)).collect();
                assert_eq!(parts[0].start, 0);
                assert_eq!(parts[size - 1].end, n);
                assert!(parts.windows(2).all(|w| w[0].end == w[1].start));
                let lens: Vec<usize> = parts.iter().map(|r| r.len()).collect();
                assert!(lens.iter().max().unwrap() - lens.iter().min().unwrap() <= 1, "{lens:?}");
            }
        }
    }

    /// The promise of docs/scaling.md: 2 and 3 processes end with a single
    /// process's weights up to float summation order (1e-5 absolute, weights
    /// of order 1), and log the same losses and accuracies.
    #[test]
    fn processes_train_what_one_process_trains() {
        let (net, cfg, split) = setup("");
        let single = fit(&net, &cfg, &split, None, FitOptions::default(), Resume::default(), &mut NoHooks, &mut Silent).unwrap().history;
        let single_w = weights(&net);
        for size in [2, 3] {
            let runs = run(size);
            for (rank, (history, w)) in runs.iter().enumerate() {
                let diff = w.iter().zip(&single_w).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
                assert!(diff < 1e-5, "{size} processes, rank {rank}: weights differ by {diff}");
                assert_eq!(history.len(), single.len());
                for (a, b) in history.iter().zip(&single) {
                    for ((ka, va), (kb, vb)) in a.values.iter().zip(&b.values) {
                        assert_eq!(ka, kb);
                        assert!((va - vb).abs() <= 1e-5 * vb.abs().max(1.0), "{size} processes, rank {rank}, epoch {}: {ka} {va} vs {vb}", a.epoch);
                    }
                }
            }
            // Every process holds the same weights, bit for bit.
            assert!(runs.iter().all(|(_, w)| w == &runs[0].1), "{size} processes disagree");
        }
    }

    /// Without the part offset, a process would draw the first rows' masks.
    #[test]
    fn dropout_masks_are_the_single_process_ones() {
        let mut rng = StdRng::seed_from_u64(5);
        let mut ctx = crate::layers::Ctx { train: true, rng: &mut rng, logits: false, grads: None, part: None };
        let whole = ctx.dropout_mask(5, 3, 0.5);
        let mut parts = Vec::new();
        for (offset, rows) in [(0, 2), (2, 2), (4, 1)] {
            let mut rng = StdRng::seed_from_u64(5);
            let part = Some(crate::layers::BatchPart { offset, total: 5 });
            let mut ctx = crate::layers::Ctx { train: true, rng: &mut rng, logits: false, grads: None, part };
            parts.extend(ctx.dropout_mask(rows, 3, 0.5));
            // The generator ends where the single process's does: the next layer's masks agree too.
            use rand::Rng;
            let mut single = StdRng::seed_from_u64(5);
            for _ in 0..15 {
                single.random::<f64>();
            }
            assert_eq!(rng.random::<u64>(), single.random::<u64>());
        }
        assert_eq!(parts, whole);
    }
}
