//! The fit loop: Keras's `model.fit` and `model.evaluate` over prepared data.

use super::config::TrainConfig;
use super::losses::Loss;
use super::metrics::{self, Metric};
use super::optim::Optimizer;
use super::progress::Progress;
use crate::data::{Array, Split};
use crate::layers::{Activation, Ctx};
use crate::model::Net;
use candle_core::{Device, Tensor};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("training diverged: the loss became {value} at epoch {epoch}, step {step}")]
    Diverged { epoch: usize, step: usize, value: f64 },
    #[error("{0}")]
    Candle(#[from] candle_core::Error),
}

/// One epoch's logged values, Keras-named: `loss`, `accuracy`, `val_loss`, ...
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EpochLog {
    pub epoch: usize,
    pub values: Vec<(String, f64)>,
}

impl EpochLog {
    pub fn get(&self, key: &str) -> Option<f64> {
        self.values.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }
}

pub struct FitOptions {
    /// Stop after this many optimizer steps in all (smoke runs).
    pub max_steps: Option<usize>,
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
    if g.outputs.len() == 1 {
        vec![String::new()]
    } else {
        g.outputs.iter().map(|&o| format!("{}_", g.layers[o].name)).collect()
    }
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
        let fused = cfg.losses.iter().zip(&activations).map(|(l, a)| l.fusable().is_some() && l.fusable() == *a).collect();
        let metrics = cfg
            .losses
            .iter()
            .zip(&cfg.metrics)
            .map(|(loss, names)| names.iter().map(|n| metrics::resolve(n, loss).expect("checked by config")).collect())
            .collect();
        let n = cfg.losses.len();
        Evaluator {
            losses: cfg.losses.clone(),
            weights: cfg.loss_weights.clone(),
            fused,
            activations,
            metrics,
            loss_sums: vec![0.0; n],
            total: 0.0,
            seen: 0,
        }
    }

    fn reset(&mut self) {
        self.loss_sums.iter_mut().for_each(|s| *s = 0.0);
        self.total = 0.0;
        self.seen = 0;
        self.metrics.iter_mut().flatten().for_each(|m| m.reset());
    }

    /// Forward one batch; returns the weighted total loss (a graph node).
    fn batch(&mut self, net: &Net, split: &Split, idx: &[usize], ctx: &mut Ctx) -> candle_core::Result<Tensor> {
        let dev = &net.device;
        let xs = split.inputs.iter().map(|a| gather(a, idx, dev)).collect::<candle_core::Result<Vec<_>>>()?;
        let ys = split.targets.iter().map(|a| gather(a, idx, dev)).collect::<candle_core::Result<Vec<_>>>()?;
        let outs = net.forward(&xs, ctx, &self.fused)?;
        let mut total: Option<Tensor> = None;
        for (k, (out, y)) in outs.iter().zip(&ys).enumerate() {
            let l = self.losses[k].compute(out, y, self.fused[k])?;
            self.loss_sums[k] += l.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()? * idx.len() as f64;
            let l = (l * self.weights[k])?;
            total = Some(match total {
                Some(t) => (t + l)?,
                None => l,
            });
            if !self.metrics[k].is_empty() {
                let probs = match (self.fused[k], self.activations[k]) {
                    (true, Some(a)) => a.apply(out)?,
                    _ => out.clone(),
                };
                let p = probs.flatten_all()?.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?;
                let t = y.flatten_all()?.to_vec1::<f32>()?;
                // Rows are class vectors: per-timestep outputs have batch x time of them.
                let rows = out.elem_count() / out.dims().last().copied().unwrap_or(1).max(1);
                self.metrics[k].iter_mut().for_each(|m| m.update(&p, &t, rows));
            }
        }
        let total = total.expect("a model has at least one output");
        self.total += total.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()? * idx.len() as f64;
        self.seen += idx.len();
        Ok(total)
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

/// Loss and metrics over a whole split, in inference mode.
pub fn evaluate(net: &Net, cfg: &TrainConfig, split: &Split, prefix: &str, rng: &mut StdRng) -> Result<Vec<(String, f64)>, TrainError> {
    let mut ev = Evaluator::new(net, cfg);
    let idx: Vec<usize> = (0..split.n).collect();
    let mut ctx = Ctx { train: false, rng, logits: false };
    for chunk in idx.chunks(cfg.batch_size.max(256)) {
        ev.batch(net, split, chunk, &mut ctx)?;
    }
    Ok(ev.results(net, prefix))
}

/// Trains `net` in place; returns one log per epoch.
pub fn fit(
    net: &Net,
    cfg: &TrainConfig,
    train: &Split,
    validation: Option<&Split>,
    opts: &FitOptions,
    rng: &mut StdRng,
    progress: &mut dyn Progress,
) -> Result<Vec<EpochLog>, TrainError> {
    let mut opt = Optimizer::new(&cfg.optimizer, net.trainable_vars())?;
    let mut ev = Evaluator::new(net, cfg);
    let mut history = Vec::new();
    let mut order: Vec<usize> = (0..train.n).collect();
    let steps_per_epoch = train.n.div_ceil(cfg.batch_size);
    let mut plateau = cfg.reduce_lr.clone().map(super::callbacks::Plateau::new);
    let mut steps = 0usize;
    'epochs: for epoch in 1..=cfg.epochs {
        if cfg.shuffle {
            order.shuffle(rng);
        }
        ev.reset();
        progress.epoch_start(epoch, cfg.epochs, steps_per_epoch);
        let started = std::time::Instant::now();
        for (step, idx) in order.chunks(cfg.batch_size).enumerate() {
            let mut ctx = Ctx { train: true, rng, logits: false };
            let loss = ev.batch(net, train, idx, &mut ctx)?;
            let value = ev.mean_loss();
            if !value.is_finite() {
                return Err(TrainError::Diverged { epoch, step: step + 1, value });
            }
            let grads = loss.backward()?;
            opt.step(&grads)?;
            steps += 1;
            progress.step(step + 1, &ev.results(net, ""), ev.seen);
            if opts.max_steps.is_some_and(|m| steps >= m) {
                history.push(end_epoch(net, cfg, &ev, validation, epoch, &opt, rng)?);
                progress.epoch_end(history.last().unwrap(), started.elapsed().as_secs_f64(), ev.seen);
                break 'epochs;
            }
        }
        let log = end_epoch(net, cfg, &ev, validation, epoch, &opt, rng)?;
        progress.epoch_end(&log, started.elapsed().as_secs_f64(), ev.seen);
        if let Some(p) = plateau.as_mut()
            && let Some(msg) = p.on_epoch_end(&log, &mut opt) {
                progress.message(&msg);
            }
        history.push(log);
    }
    Ok(history)
}

fn end_epoch(
    net: &Net,
    cfg: &TrainConfig,
    ev: &Evaluator,
    validation: Option<&Split>,
    epoch: usize,
    opt: &Optimizer,
    rng: &mut StdRng,
) -> Result<EpochLog, TrainError> {
    let mut values = ev.results(net, "");
    if let Some(v) = validation {
        values.extend(evaluate(net, cfg, v, "val_", rng)?);
    }
    values.push(("learning_rate".into(), opt.learning_rate()));
    Ok(EpochLog { epoch, values })
}
