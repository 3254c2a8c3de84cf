//! The fit loop: Keras's `model.fit` and `model.evaluate` over prepared data.
//!
//! The loop trains; everything else plugs in as a `Callback` (events.rs):
//! Keras's callbacks, and in a data-parallel run the averaging of the
//! gradients over processes. It names none of them.

use super::callbacks::{self, CallbackState};
use super::config::TrainConfig;
use super::events::{Callback, Control, EpochEnd, Step};
use super::log::EpochLog;
use super::losses::Loss;
use super::metrics::{self, Metric};
use super::optim::{Optimizer, OptimizerScalars};
use super::progress::Progress;
use crate::data::{Array, Split};
use crate::kernels::sink::Sink;
use crate::layers::{Activation, BatchPart, Ctx};
use crate::model::Net;
use candle_core::{Device, Tensor};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};

pub use super::events::{Hooks, NoHooks, Snapshot, TrainError};

/// Which rows of every batch this process computes in a data-parallel run:
/// the `rank`-th of `size` contiguous parts. Part sizes differ by at most
/// one row: the first `batch % size` parts have the extra one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub rank: usize,
    pub size: usize,
}

impl Default for Shard {
    fn default() -> Self {
        Shard { rank: 0, size: 1 }
    }
}

impl Shard {
    /// This process's rows of a batch of `n`.
    pub fn rows(&self, n: usize) -> Range<usize> {
        let size = self.size.max(1);
        let (base, extra) = (n / size, n % size);
        let start = self.rank * base + self.rank.min(extra);
        start..start + base + usize::from(self.rank < extra)
    }
}

#[derive(Default)]
pub struct FitOptions<'a> {
    /// Stop after this many optimizer steps in all (smoke runs); 0 trains
    /// nothing and leaves the initial weights.
    pub max_steps: Option<usize>,
    /// Checked after every step: when set, fit returns at once (Ctrl-C).
    pub interrupt: Option<&'a AtomicBool>,
    /// This process's part of every batch (all of it unless data-parallel).
    pub shard: Shard,
    /// Callbacks beside the spec's, called before them (the gradient
    /// averaging of a data-parallel run).
    pub callbacks: Vec<Box<dyn Callback + 'a>>,
}

/// Rows `idx` of an array, batch first.
fn gather(a: &Array, idx: &[usize], device: &Device) -> candle_core::Result<Tensor> {
    let width: usize = a.shape.iter().product();
    let mut buf = Vec::with_capacity(idx.len() * width);
    for &i in idx {
        buf.extend_from_slice(&a.data[i * width..(i + 1) * width]);
    }
    let mut dims = vec![idx.len()];
    dims.extend(&a.shape);
    Tensor::from_vec(buf, dims, device)
}

/// Output names for logs: none for a single output (`loss`), else `digit_loss`.
fn prefixes(net: &Net) -> Vec<String> {
    let g = &net.graph;
    if g.outputs.len() == 1 { vec![String::new()] } else { g.outputs.iter().map(|&o| format!("{}_", g.layers[o].name)).collect() }
}

struct Evaluator {
    losses: Vec<Loss>,
    weights: Vec<f64>,
    fused: Vec<bool>,
    activations: Vec<Option<Activation>>,
    metrics: Vec<Vec<Box<dyn Metric>>>,
    loss_sums: Vec<f64>,
    total: f64,
    seen: usize,
}

impl Evaluator {
    fn new(net: &Net, cfg: &TrainConfig) -> Self {
        let activations = net.output_activations();
        // Fuse softmax/sigmoid into the crossentropy: stable for large logits.
        // CTC takes a linear output as logits as they are.
        let logits = |l: &Loss, a: &Option<Activation>| matches!(l, Loss::Ctc { .. }) && matches!(a, None | Some(Activation::Linear));
        // Only a layer that can hand over its pre-activation values is fused.
        let capable = net.outputs_return_logits();
        let fused =
            cfg.losses.iter().zip(&activations).zip(capable).map(|((l, a), can)| (can && l.fusable().is_some() && l.fusable() == *a) || logits(l, a)).collect();
        let metrics = cfg
            .losses
            .iter()
            .zip(&cfg.metrics)
            .map(|(loss, names)| names.iter().map(|n| metrics::resolve(n, loss).expect("checked by config")).collect())
            .collect();
        let n = cfg.losses.len();
        Evaluator { losses: cfg.losses.clone(), weights: cfg.loss_weights.clone(), fused, activations, metrics, loss_sums: vec![0.0; n], total: 0.0, seen: 0 }
    }

    fn reset(&mut self) {
        self.loss_sums.iter_mut().for_each(|s| *s = 0.0);
        self.total = 0.0;
        self.seen = 0;
        self.metrics.iter_mut().flatten().for_each(|m| m.reset());
    }

    /// Forward one batch; returns the weighted total loss (a graph node).
    /// `weights` (one per sample of the split, `train::weights`) weigh each
    /// sample's loss, Keras's `sample_weight`: training passes them, the
    /// evaluation of a split never does.
    fn batch(&mut self, net: &Net, split: &Split, idx: &[usize], ctx: &mut Ctx, weights: Option<&[f32]>) -> candle_core::Result<(Tensor, f64)> {
        let dev = &net.device;
        let xs = split.inputs.iter().map(|a| gather(a, idx, dev)).collect::<candle_core::Result<Vec<_>>>()?;
        let ys = split.targets.iter().map(|a| gather(a, idx, dev)).collect::<candle_core::Result<Vec<_>>>()?;
        let outs = net.forward(&xs, ctx, &self.fused)?;
        let w = weights.map(|w| Tensor::from_vec(idx.iter().map(|&i| w[i]).collect(), idx.len(), dev)).transpose()?;
        let mut total: Option<Tensor> = None;
        let mut total_value = 0.0;
        for (k, (out, y)) in outs.iter().zip(&ys).enumerate() {
            let l = match &w {
                // The fused kernels' mean, the fast path.
                None => self.losses[k].compute(out, y, self.fused[k])?,
                Some(w) => weighted_loss(&self.losses[k], out, y, self.fused[k], w)?,
            };
            let value = l.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
            self.loss_sums[k] += value * idx.len() as f64;
            // Weight 1 (the usual single output) is exact: skip the op.
            let (l, value) = if self.weights[k] == 1.0 { (l, value) } else { ((l * self.weights[k])?, value * self.weights[k]) };
            total_value += value;
            total = Some(match total {
                Some(t) => (t + l)?,
                None => l,
            });
            if !self.metrics[k].is_empty() {
                let p = out.flatten_all()?.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?;
                let classes = out.dims().last().copied().unwrap_or(1).max(1);
                // The fused activation, applied on the host: metrics need no graph.
                let ctc = matches!(self.losses[k], Loss::Ctc { .. });
                let p = match (self.fused[k], self.activations[k]) {
                    // CTC's fused output is logits, from a softmax or a linear layer.
                    (true, _) if ctc => crate::kernels::loss::probabilities(&p, classes, true),
                    (true, Some(Activation::Softmax)) => crate::kernels::loss::probabilities(&p, classes, true),
                    (true, Some(Activation::Sigmoid)) => crate::kernels::loss::probabilities(&p, classes, false),
                    (true, Some(a)) => a.apply(out)?.flatten_all()?.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?,
                    _ => p,
                };
                let t = y.flatten_all()?.to_vec1::<f32>()?;
                // Rows are class vectors: per-timestep outputs have batch x time
                // of them. CTC metrics decode whole sequences: a row per sample.
                let rows = if ctc { idx.len() } else { out.elem_count() / classes };
                self.metrics[k].iter_mut().for_each(|m| m.update(&p, &t, rows));
            }
        }
        let total = total.expect("a model has at least one output");
        // The f64 sum of the outputs' values: what the graph's total holds, without reading it back.
        let sum = if outs.len() == 1 { total_value } else { total.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()? } * idx.len() as f64;
        self.total += sum;
        self.seen += idx.len();
        Ok((total, sum))
    }

    /// The epoch's running totals, for adding up processes: the loss total,
    /// rows seen, each output's loss total, then each metric's sums.
    fn sums(&mut self) -> Vec<f64> {
        let mut out = vec![self.total, self.seen as f64];
        out.extend(&self.loss_sums);
        out.extend(self.metrics.iter_mut().flatten().flat_map(|m| m.sums().into_iter().map(|v| *v)));
        out
    }

    /// Sets the totals `sums` gave, added up.
    fn set_sums(&mut self, sums: &[f64]) {
        let mut it = sums.iter().copied();
        let mut next = || it.next().expect("as many as sums gave");
        self.total = next();
        self.seen = next() as usize;
        for s in &mut self.loss_sums {
            *s = next();
        }
        for m in self.metrics.iter_mut().flatten() {
            for v in m.sums() {
                *v = next();
            }
        }
    }

    fn mean_loss(&self) -> f64 {
        self.total / self.seen.max(1) as f64
    }

    /// Keras-named values; `prefix` is "" or "val_" or "test_".
    fn results(&self, net: &Net, prefix: &str) -> Vec<(String, f64)> {
        let mut out = vec![(format!("{prefix}loss"), self.mean_loss())];
        let names = prefixes(net);
        for (k, p) in names.iter().enumerate() {
            if names.len() > 1 {
                out.push((format!("{prefix}{p}loss"), self.loss_sums[k] / self.seen.max(1) as f64));
            }
            for m in &self.metrics[k] {
                out.push((format!("{prefix}{p}{}", m.name()), m.result()));
            }
        }
        out
    }
}

/// Keras's weighted `sum_over_batch_size`: each row's loss times its
/// sample's weight, summed, over the number of rows (not over the sum of the
/// weights). A sample with several rows (time steps) weighs each of them.
fn weighted_loss(loss: &Loss, out: &Tensor, y: &Tensor, logits: bool, w: &Tensor) -> candle_core::Result<Tensor> {
    let rows = loss.per_row(out, y, logits)?;
    let mut dims = vec![1; rows.rank()];
    if let Some(b) = dims.first_mut() {
        *b = w.elem_count();
    }
    rows.broadcast_mul(&w.to_dtype(rows.dtype())?.reshape(dims)?)?.mean_all()
}

/// Loss and metrics over a whole split, in inference mode, `batch` samples
/// at a time (training uses `memory::eval_batch`).
pub fn evaluate(net: &Net, cfg: &TrainConfig, split: &Split, prefix: &str, batch: usize, rng: &mut StdRng) -> Result<Vec<(String, f64)>, TrainError> {
    let mut ev = Evaluator::new(net, cfg);
    let idx: Vec<usize> = (0..split.n).collect();
    let mut ctx = Ctx { train: false, rng, logits: false, grads: None, part: None };
    for chunk in idx.chunks(batch.max(1)) {
        ev.batch(net, split, chunk, &mut ctx, None)?;
    }
    Ok(ev.results(net, prefix))
}

/// The per-epoch generator: shuffling and dropout of epoch `epoch` draw from
/// it, so a run resumed at an epoch boundary needs no saved RNG bytes.
pub fn epoch_rng(seed: u64, epoch: usize) -> StdRng {
    StdRng::seed_from_u64(seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Where a fit starts: fresh (`Default`) or from a checkpoint. The weights
/// themselves are restored into the net by the caller.
#[derive(Default)]
pub struct Resume {
    /// Epochs completed.
    pub epoch: usize,
    pub history: Vec<EpochLog>,
    pub optimizer: Option<(OptimizerScalars, BTreeMap<String, Tensor>)>,
    pub callbacks: CallbackState,
    /// EarlyStopping's best weights, one per variable in `Net::vars` order.
    pub best_weights: Option<Vec<Tensor>>,
}

pub struct FitOutcome {
    pub history: Vec<EpochLog>,
    /// Stopped by the interrupt flag; the last checkpoint is the last
    /// completed epoch.
    pub interrupted: bool,
}

/// Trains `net` in place from `resume`; returns one log per epoch.
/// `train.weights`, when given (`train::weights::resolve`), weigh each
/// sample's training loss; validation is never weighted.
#[allow(clippy::too_many_arguments)]
pub fn fit(
    net: &Net,
    cfg: &TrainConfig,
    train: &Split,
    validation: Option<&Split>,
    opts: FitOptions,
    resume: Resume,
    hooks: &mut dyn Hooks,
    progress: &mut dyn Progress,
) -> Result<FitOutcome, TrainError> {
    let mut opt = Optimizer::new(&cfg.optimizer, net.trainable_vars())?;
    // Kernels write the weights' gradients here, the optimizer reads them.
    let sink = Sink::new(&net.trainable_vars());
    if let Some((scalars, tensors)) = &resume.optimizer {
        opt.restore(scalars, |name| tensors.get(name).cloned()).map_err(TrainError::Resume)?;
    }
    let mut ev = Evaluator::new(net, cfg);
    let mut history = resume.history;
    let steps_per_epoch = train.n.div_ceil(cfg.batch_size);
    // The caller's (the gradient averaging) first: the spec's callbacks then
    // see the weights, gradients and logs of the whole run.
    let mut cbs = opts.callbacks;
    cbs.extend(callbacks::from_config(&cfg.callbacks));
    let mut best = resume.best_weights;
    for cb in &mut cbs {
        cb.restore(&resume.callbacks, &mut best);
    }
    for cb in &mut cbs {
        cb.on_train_begin(net)?;
    }
    // What config::read found statically was shown before the training.
    let mut warned: Vec<String> = cfg.unlogged_monitors.clone();
    let interrupted = || opts.interrupt.is_some_and(|f| f.load(Ordering::SeqCst));
    let shard = opts.shard;
    let mut steps = 0usize;
    let first = if cbs.iter().any(|c| c.stopped()) { cfg.epochs + 1 } else { resume.epoch + 1 };
    let limit_reached = |steps: usize| opts.max_steps.is_some_and(|m| steps >= m);
    'epochs: for epoch in first..=cfg.epochs {
        // Checked before any step, so `--max-steps N` takes exactly N steps
        // (0: none, the weights stay the initial ones).
        if limit_reached(steps) {
            break;
        }
        // Processes agree on stopping inside a step (`Step::stop`): one that
        // stopped here alone would leave the others waiting.
        if shard.size == 1 && interrupted() {
            return Ok(FitOutcome { history, interrupted: true });
        }
        let mut rng = epoch_rng(cfg.seed, epoch);
        let mut order: Vec<usize> = (0..train.n).collect();
        if cfg.shuffle {
            order.shuffle(&mut rng);
        }
        ev.reset();
        progress.epoch_start(epoch, cfg.epochs, steps_per_epoch);
        let started = std::time::Instant::now();
        // Running values for the progress bar, recomputed at most every 100 ms:
        // some metrics (AUC) sort every sample seen so far.
        let mut running: Vec<(String, f64)> = Vec::new();
        let mut refreshed: Option<std::time::Instant> = None;
        // The whole batches' loss total and rows, over every process.
        let (mut loss_total, mut seen) = (0.0f64, 0usize);
        for (step, batch) in order.chunks(cfg.batch_size).enumerate() {
            // Never at step 0: the epoch began below the limit.
            if limit_reached(steps) {
                // A partial epoch: logged, but not checkpointed.
                history.push(end_epoch(net, cfg, &mut ev, &mut cbs, validation, epoch, &opt, &mut rng)?);
                progress.epoch_end(history.last().unwrap(), started.elapsed().as_secs_f64(), seen);
                break 'epochs;
            }
            let rows = shard.rows(batch.len());
            let idx = &batch[rows.clone()];
            let part = (shard.size > 1).then_some(BatchPart { offset: rows.start, total: batch.len() });
            let mut ctx = Ctx { train: true, rng: &mut rng, logits: false, grads: Some(&sink), part };
            let (mut grads, loss_sum) = if idx.is_empty() {
                // A batch smaller than the number of processes: this one adds nothing.
                (Vec::new(), 0.0)
            } else {
                let (loss, sum) = ev.batch(net, train, idx, &mut ctx, train.weights.as_deref())?;
                (opt.gradients(&loss.backward()?, Some(&sink))?, sum)
            };
            let mut s = Step { grads: &mut grads, vars: opt.vars(), rows: idx.len(), batch: batch.len(), loss_sum, stop: interrupted() };
            for cb in &mut cbs {
                cb.on_step(&mut s)?;
            }
            let stop = s.stop;
            loss_total += s.loss_sum;
            seen += batch.len();
            let value = loss_total / seen as f64;
            if !value.is_finite() {
                return Err(TrainError::Diverged { epoch, step: step + 1, value });
            }
            opt.apply(grads)?;
            steps += 1;
            if refreshed.is_none_or(|t| t.elapsed().as_millis() >= 100) || step + 1 == steps_per_epoch {
                running = ev.results(net, "");
                refreshed = Some(std::time::Instant::now());
            }
            progress.step(step + 1, &running, seen);
            if stop {
                return Ok(FitOutcome { history, interrupted: true });
            }
        }
        let log = end_epoch(net, cfg, &mut ev, &mut cbs, validation, epoch, &opt, &mut rng)?;
        progress.epoch_end(&log, started.elapsed().as_secs_f64(), seen);
        for (name, monitor) in cbs.iter().filter_map(|c| c.monitor()) {
            if log.get(monitor).is_none() && !warned.iter().any(|w| w == monitor) {
                let keys: Vec<&str> = log.values.iter().map(|(k, _)| k.as_str()).collect();
                let why = if monitor.starts_with("val_") && validation.is_none() { " (the spec has no validation data)" } else { "" };
                progress.warning(&format!("{name} monitors `{monitor}`, which is not logged{why}; available: {}. It does nothing.", keys.join(", ")));
                warned.push(monitor.to_string());
            }
        }
        history.push(log);
        let mut stop = false;
        for cb in &mut cbs {
            let mut end = EpochEnd { net, history: &history, optimizer: &mut opt, progress: &mut *progress, hooks: &mut *hooks };
            stop |= cb.on_epoch_end(&mut end)? == Control::Stop;
        }
        let mut state = CallbackState::default();
        let mut best_weights = None;
        for cb in &cbs {
            cb.save(&mut state, &mut best_weights);
        }
        let snap = Snapshot { net, epoch, history: &history, optimizer: &opt, callbacks: state, best_weights };
        hooks.checkpoint(&snap).map_err(TrainError::Io)?;
        if stop {
            break;
        }
    }
    for cb in &mut cbs {
        cb.on_train_end(net, progress)?;
    }
    Ok(FitOutcome { history, interrupted: false })
}

/// The epoch's log: the training totals added up over processes (callbacks'
/// `on_epoch_sums`), the validation split, the learning rate.
#[allow(clippy::too_many_arguments)]
fn end_epoch(
    net: &Net,
    cfg: &TrainConfig,
    ev: &mut Evaluator,
    cbs: &mut [Box<dyn Callback + '_>],
    validation: Option<&Split>,
    epoch: usize,
    opt: &Optimizer,
    rng: &mut StdRng,
) -> Result<EpochLog, TrainError> {
    let mut sums = ev.sums();
    for cb in cbs.iter_mut() {
        cb.on_epoch_sums(&mut sums)?;
    }
    ev.set_sums(&sums);
    let mut values = ev.results(net, "");
    if let Some(v) = validation {
        values.extend(evaluate(net, cfg, v, "val_", super::memory::eval_batch(cfg.batch_size), rng)?);
    }
    values.push(("learning_rate".into(), opt.learning_rate()));
    let mut log = EpochLog { epoch, values };
    for cb in cbs.iter_mut() {
        cb.on_epoch_log(&mut log)?;
    }
    Ok(log)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Array;
    use crate::train::callbacks::copy_weights;

    fn net_and_split() -> (Net, TrainConfig, Split) {
        let yaml = "model:\n  input_shape: [3]\n  layers:\n    - {type: Dense, units: 4, activation: relu}\n    - {type: Dense, units: 1}\ntraining:\n  loss: mse\n  optimizer: {type: sgd, learning_rate: 0.1}\n  epochs: 3\n  batch_size: 4\n";
        let (model, cfg) = crate::train::config::from_yaml(yaml);
        let net = Net::new(model, &Device::Cpu, candle_core::DType::F32, &mut StdRng::seed_from_u64(7)).unwrap();
        let n = 10;
        let x = Array { shape: vec![3], data: (0..n * 3).map(|i| i as f32 / 10.0).collect() };
        let y = Array { shape: vec![1], data: (0..n).map(|i| i as f32).collect() };
        (net, cfg, Split { n, inputs: vec![x], targets: vec![y], weights: None })
    }

    fn weights(net: &Net) -> Vec<Vec<f32>> {
        copy_weights(net).unwrap().iter().map(|t| t.flatten_all().unwrap().to_vec1::<f32>().unwrap()).collect()
    }

    fn steps_taken(max_steps: usize) -> (Vec<EpochLog>, bool) {
        let (net, cfg, split) = net_and_split();
        let before = weights(&net);
        let opts = || FitOptions { max_steps: Some(max_steps), ..Default::default() };
        let out = fit(&net, &cfg, &split, None, opts(), Resume::default(), &mut NoHooks, &mut super::super::progress::JsonLines).unwrap();
        (out.history, weights(&net) == before)
    }

    #[test]
    fn the_log_has_the_names_config_predicts() {
        let yaml = "model:\n  inputs: {x: [3]}\n  layers:\n    - {name: a, type: Dense, units: 2, inputs: x}\n    - {name: b, type: Dense, units: 1, inputs: x}\n  outputs: [a, b]\ntraining:\n  loss: mse\n  metrics: {a: [mae], b: [mse, mae]}\n  batch_size: 4\n";
        let (model, cfg) = crate::train::config::from_yaml(yaml);
        let net = Net::new(model, &Device::Cpu, candle_core::DType::F32, &mut StdRng::seed_from_u64(7)).unwrap();
        let n = 6;
        let x = Array { shape: vec![3], data: (0..n * 3).map(|i| i as f32 / 10.0).collect() };
        let (ya, yb) = (Array { shape: vec![2], data: vec![0.5; n * 2] }, Array { shape: vec![1], data: vec![1.0; n] });
        let split = Split { n, inputs: vec![x], targets: vec![ya, yb], weights: None };
        for validation in [None, Some(&split)] {
            let opts = || FitOptions { max_steps: None, ..Default::default() };
            let out = fit(&net, &cfg, &split, validation, opts(), Resume::default(), &mut NoHooks, &mut super::super::progress::JsonLines).unwrap();
            let keys: Vec<&str> = out.history[0].values.iter().map(|(k, _)| k.as_str()).collect();
            assert_eq!(keys, crate::train::config::logged(&net.graph, &cfg.metrics, validation.is_some()));
        }
    }

    /// Records warnings only.
    #[derive(Default)]
    struct Warnings(Vec<String>);
    impl super::super::progress::Progress for Warnings {
        fn epoch_start(&mut self, _: usize, _: usize, _: usize) {}
        fn step(&mut self, _: usize, _: &[(String, f64)], _: usize) {}
        fn epoch_end(&mut self, _: &EpochLog, _: f64, _: usize) {}
        fn message(&mut self, _: &str) {}
        fn warning(&mut self, text: &str) {
            self.0.push(text.to_string());
        }
    }

    #[test]
    fn an_unlogged_monitor_is_warned_once_unless_config_did() {
        let (net, mut cfg, split) = net_and_split();
        cfg.callbacks = vec![crate::train::config::CallbackConfig::EarlyStopping(crate::train::config::EarlyStopping {
            monitor: "val_loss".into(),
            min_delta: 0.0,
            patience: 5,
            mode: crate::train::config::Mode::Min,
            restore_best_weights: false,
            baseline: None,
            start_from_epoch: 0,
        })];
        let opts = || FitOptions { max_steps: None, ..Default::default() };
        let mut seen = Warnings::default();
        fit(&net, &cfg, &split, None, opts(), Resume::default(), &mut NoHooks, &mut seen).unwrap();
        assert_eq!(
            seen.0,
            ["EarlyStopping monitors `val_loss`, which is not logged (the spec has no validation data); available: loss, learning_rate. It does nothing."]
        );
        // Shown before the training already: not again.
        cfg.unlogged_monitors = vec!["val_loss".into()];
        let mut seen = Warnings::default();
        fit(&net, &cfg, &split, None, opts(), Resume::default(), &mut NoHooks, &mut seen).unwrap();
        assert!(seen.0.is_empty(), "{:?}", seen.0);
    }

    #[test]
    fn max_steps_zero_takes_no_step_and_keeps_the_initial_weights() {
        let (history, unchanged) = steps_taken(0);
        assert!(history.is_empty(), "{history:?}");
        assert!(unchanged, "no optimizer step may move a weight");
        let (history, unchanged) = steps_taken(1);
        assert_eq!(history.len(), 1, "one partial epoch is logged");
        assert!(!unchanged, "one step moves the weights");
        // 10 samples in batches of 4: 3 steps an epoch; 3 steps end epoch 1 exactly.
        assert_eq!(steps_taken(3).0.len(), 1);
        assert_eq!(steps_taken(4).0.len(), 2);
    }

    /// The crossentropy of an output whose activation sits inside its cell
    /// is computed from its probabilities: fusing it took the sigmoid's
    /// output as logits and applied a second sigmoid.
    #[test]
    fn recurrent_sigmoid_outputs_are_not_fused() {
        let yaml = "model:\n  input_shape: [3, 2]\n  layers:\n    - {type: SimpleRNN, units: 1, activation: sigmoid}\ntraining:\n  loss: binary_crossentropy\n";
        let (model, cfg) = crate::train::config::from_yaml(yaml);
        let net = Net::new(model, &Device::Cpu, candle_core::DType::F32, &mut StdRng::seed_from_u64(3)).unwrap();
        assert_eq!(net.outputs_return_logits(), vec![false]);
        let n = 8;
        let x = Array { shape: vec![3, 2], data: (0..n * 6).map(|i| ((i * 7) % 11) as f32 / 5.0 - 1.0).collect() };
        let t: Vec<f32> = (0..n).map(|i| (i % 2) as f32).collect();
        let split = Split { n, inputs: vec![x.clone()], targets: vec![Array { shape: vec![1], data: t.clone() }], weights: None };
        let got = evaluate(&net, &cfg, &split, "", 256, &mut StdRng::seed_from_u64(0)).unwrap();
        let loss = got.iter().find(|(k, _)| k == "loss").unwrap().1;
        // Binary crossentropy of the probabilities the layer outputs.
        let xs = Tensor::from_slice(&x.data, (n, 3, 2), &Device::Cpu).unwrap();
        let mut rng = StdRng::seed_from_u64(0);
        let p = net.forward(&[xs], &mut Ctx { train: false, rng: &mut rng, logits: false, grads: None, part: None }, &[]).unwrap().remove(0);
        let p = p.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let want = p.iter().zip(&t).map(|(&p, &t)| -(t * p.ln() + (1.0 - t) * (1.0 - p).ln()) as f64).sum::<f64>() / n as f64;
        assert!((loss - want).abs() < 1e-5, "loss {loss}, from the probabilities {want}");
    }
}
