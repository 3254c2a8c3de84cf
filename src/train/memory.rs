//! What a training step needs before anything is allocated: the bytes of
//! weights, gradients, optimizer slots, activations and data (checked
//! against the memory available), and the stack for candle's backward pass,
//! which recurses once per operation along the graph's longest path.
//!
//! Pure functions over the graph and the training config; the caller reads
//! the machine's numbers (`available`) and decides.

use super::config::TrainConfig;
use super::optim::Rule;
use crate::graph::{Model, Src};

/// float32 everywhere.
const F32: u64 = 4;
/// Forward values, their gradients, and the temporaries of the backward
/// pass: each activation element is held about this many times in a step.
pub const ACTIVATION_FACTOR: u64 = 3;
/// `fit::evaluate` runs inference batches of at least this many samples.
pub const EVAL_BATCH: usize = 256;
/// An inference forward pass (predict, evaluate) keeps every layer's output
/// of the batch until the outputs are read, and no gradients: each element
/// is held once. Measured (peak RSS of `predict` in the debug build, per
/// sample added to the batch): 1.0x for a 200,000-unit Dense, 0.9x for a
/// large UpSampling2D followed by a Conv2D.
pub const INFERENCE_FACTOR: u64 = 1;

/// Bytes, by what holds them. Saturating: an absurd spec gives `u64::MAX`,
/// never a wrapped small number.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Estimate {
    pub weights: u64,
    pub gradients: u64,
    /// Optimizer state tensors: `slots` per trainable weight.
    pub optimizer: u64,
    pub slots: u64,
    /// Per training step (or inference batch), at `batch` samples.
    pub activations: u64,
    pub batch: u64,
    /// Activation bytes of one sample (as `activations` counts them, so
    /// with the same factor): what one more sample in the batch costs.
    pub per_sample: u64,
    /// The loaded splits' inputs and targets.
    pub data: u64,
    /// The layer holding the most (weights and activations), for the hint.
    pub largest: Option<(String, u64)>,
}

impl Estimate {
    /// What the model needs beyond the data.
    pub fn model(&self) -> u64 {
        self.weights.saturating_add(self.gradients).saturating_add(self.optimizer).saturating_add(self.activations)
    }
    pub fn total(&self) -> u64 {
        self.model().saturating_add(self.data)
    }
}

/// Optimizer state tensors per trainable weight, as `Optimizer::new` allocates them.
pub fn slots(rule: &Rule) -> u64 {
    match *rule {
        Rule::Sgd { momentum, .. } => u64::from(momentum != 0.0),
        Rule::RmsProp { momentum, centered, .. } => 1 + u64::from(momentum > 0.0) + u64::from(centered),
        Rule::Adam { amsgrad, .. } => 2 + u64::from(amsgrad),
        Rule::Adagrad { .. } => 1,
    }
}

fn elements(shape: &[usize]) -> u64 {
    shape.iter().fold(1u64, |n, &d| n.saturating_mul(d as u64))
}

/// Elements per sample of every value a forward pass produces: the inputs
/// and each layer's output. The one count of activations train and
/// inference share.
fn values_per_sample(model: &Model) -> u64 {
    let inputs = model.inputs.iter().map(|i| elements(&i.shape));
    let outputs = model.layers.iter().map(|l| l.output_shape.as_deref().map_or(0, elements));
    inputs.chain(outputs).fold(0, u64::saturating_add)
}

/// Weight elements (all, trainable) and the layer holding the most bytes
/// (weights plus `held` samples of its output), for the hint.
fn weights_and_largest(model: &Model, held: u64) -> (u64, u64, Option<(String, u64)>) {
    let (mut weights, mut trainable) = (0u64, 0u64);
    let mut largest: Option<(String, u64)> = None;
    for l in &model.layers {
        let w = l.weights.iter().map(|w| elements(&w.shape)).fold(0, u64::saturating_add);
        let t = l.weights.iter().filter(|w| w.trainable).map(|w| elements(&w.shape)).fold(0, u64::saturating_add);
        weights = weights.saturating_add(w);
        trainable = trainable.saturating_add(t);
        let a = l.output_shape.as_deref().map_or(0, elements);
        let bytes = w.saturating_add(a.saturating_mul(held)).saturating_mul(F32);
        if largest.as_ref().is_none_or(|(_, b)| bytes > *b) {
            largest = Some((l.display(), bytes));
        }
    }
    (weights, trainable, largest)
}

/// The estimate for a model trained with `cfg` on `samples` loaded samples
/// (0 before the data is loaded: then data counts nothing and the batch is
/// `batch_size`).
pub fn estimate(model: &Model, cfg: &TrainConfig, samples: u64) -> Estimate {
    let batch = if samples == 0 { cfg.batch_size as u64 } else { (cfg.batch_size as u64).min(samples) };
    // Samples' worth of activations held at once: a training step's batch
    // (with gradients and temporaries), or an evaluation batch (values only).
    let eval = eval_batch(cfg.batch_size) as u64;
    let eval = if samples == 0 { eval } else { eval.min(samples) };
    let held = batch.saturating_mul(ACTIVATION_FACTOR).max(eval);
    let (weights, trainable, largest) = weights_and_largest(model, held);
    let per_sample = values_per_sample(model);
    let slots = slots(&cfg.optimizer.rule);
    let io: u64 = model
        .inputs
        .iter()
        .map(|i| elements(&i.shape))
        .chain(model.outputs.iter().map(|&o| model.layers[o].output_shape.as_deref().map_or(0, elements)))
        .fold(0, u64::saturating_add);
    Estimate {
        weights: weights.saturating_mul(F32),
        gradients: trainable.saturating_mul(F32),
        optimizer: trainable.saturating_mul(slots).saturating_mul(F32),
        slots,
        activations: per_sample.saturating_mul(held).saturating_mul(F32),
        batch,
        per_sample: per_sample.saturating_mul(ACTIVATION_FACTOR).saturating_mul(F32),
        data: io.saturating_mul(samples).saturating_mul(F32),
        largest,
    }
}

/// The samples `fit::evaluate` runs at once for a training `batch_size`.
pub fn eval_batch(batch_size: usize) -> usize {
    batch_size.max(EVAL_BATCH)
}

/// What an inference forward pass of `batch` samples holds (predict,
/// evaluate): the weights, and every value of the pass at
/// `INFERENCE_FACTOR`. No gradients, optimizer state or data.
pub fn inference(model: &Model, batch: u64) -> Estimate {
    let held = batch.saturating_mul(INFERENCE_FACTOR);
    let (weights, _, largest) = weights_and_largest(model, held);
    let per_sample = values_per_sample(model).saturating_mul(INFERENCE_FACTOR).saturating_mul(F32);
    Estimate { weights: weights.saturating_mul(F32), activations: per_sample.saturating_mul(batch), batch, per_sample, largest, ..Estimate::default() }
}

/// The largest batch whose activations fit in `available` bytes beside
/// `fixed` ones (weights already counted elsewhere pass 0); 0 when not even
/// one sample fits.
pub fn batch_that_fits(per_sample: u64, fixed: u64, available: u64) -> u64 {
    available.saturating_sub(fixed).checked_div(per_sample).unwrap_or(u64::MAX)
}

/// Bytes of memory this process may still use: MemAvailable from
/// /proc/meminfo, lowered to the cgroup (v2) limit's headroom when there is
/// one. `None` where unknown (not Linux, no /proc): the check is skipped.
pub fn available() -> Option<u64> {
    let read = |p: &str| crate::io::read_text_bounded(std::path::Path::new(p), 1 << 20, "system file").ok();
    let meminfo = parse_meminfo(&read("/proc/meminfo")?)?;
    let cgroup = read("/proc/self/cgroup").and_then(|c| cgroup_dir(&c)).and_then(|dir| {
        let max = read(&format!("/sys/fs/cgroup{dir}/memory.max"))?;
        let current = read(&format!("/sys/fs/cgroup{dir}/memory.current"))?;
        cgroup_headroom(&max, &current)
    });
    Some(cgroup.map_or(meminfo, |c| c.min(meminfo)))
}

/// `MemAvailable:   23741000 kB` -> bytes.
fn parse_meminfo(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

/// The unified (v2) hierarchy's path: the `0::/path` line.
fn cgroup_dir(text: &str) -> Option<String> {
    let path = text.lines().find_map(|l| l.strip_prefix("0::"))?.trim();
    // `/` is the namespace's root; its files sit at /sys/fs/cgroup itself.
    Some(if path == "/" { String::new() } else { path.to_string() })
}

/// `memory.max` ("max" when unlimited) minus `memory.current`.
fn cgroup_headroom(max: &str, current: &str) -> Option<u64> {
    let max: u64 = max.trim().parse().ok()?;
    let current: u64 = current.trim().parse().ok()?;
    Some(max.saturating_sub(current))
}

/// The depth (layers, or time steps of a recurrent layer) past which `train`
/// refuses: each adds frames to candle's recursive backward walk
/// (`Tensor::sorted_nodes`) and to the recursive drop of the graph's chain
/// of `Arc`ed ops, so the stack grows with the depth. At the limit the fit
/// thread reserves about 850 MiB of address space for its stack, touched
/// only as deep as the walk goes.
pub const MAX_TRAIN_DEPTH: u64 = 100_000;
/// Stack per unit of depth: four times the most measured (a chain of Dense,
/// BatchNormalization or LayerNormalization layers takes 0.5-1 KiB a layer,
/// a GRU 1-2 KiB a time step).
const STACK_PER_DEPTH: u64 = 8 << 10;
/// What the fit needs besides the graph walk.
const STACK_BASE: u64 = 64 << 20;

/// Layer types whose candle graph grows with the time steps (a chain of
/// ops per step, where no fused kernel applies).
const RECURRENT: &[&str] = &["SimpleRNN", "GRU", "LSTM", "Bidirectional"];

/// The graph's depth in layer units: the longest path of layers from an
/// input to an output, where a recurrent layer counts once per time step.
pub fn depth(model: &Model) -> u64 {
    let mut longest = vec![0u64; model.layers.len()];
    for &i in &model.order {
        let l = &model.layers[i];
        let (mut from, mut steps) = (0u64, 1u64);
        for &s in &l.inputs {
            let (d, shape) = match s {
                Src::Input(k) => (0, Some(&model.inputs[k].shape)),
                Src::Layer(j) => (longest[j], model.layers[j].output_shape.as_ref()),
            };
            from = from.max(d);
            if RECURRENT.contains(&l.type_name.as_str()) {
                steps = steps.max(shape.and_then(|s| s.first()).map_or(1, |&t| t as u64));
            }
        }
        longest[i] = from.saturating_add(steps);
    }
    model.outputs.iter().map(|&o| longest[o]).max().unwrap_or(0)
}

/// The stack a training thread needs for a model of this depth, or `None`
/// past `MAX_TRAIN_DEPTH`.
pub fn stack_bytes(depth: u64) -> Option<usize> {
    (depth <= MAX_TRAIN_DEPTH).then(|| (STACK_BASE + depth * STACK_PER_DEPTH) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Source;

    fn model(yaml: &str) -> (Model, TrainConfig) {
        let source = Source { path: "t.yaml".into(), text: yaml.into() };
        let mut diags = Vec::new();
        let (spec, m) = crate::graph::from_source(&source, &mut diags).expect("builds");
        let cfg = crate::train::config::read(&spec, &m, &mut diags).expect("config");
        assert!(!diags.iter().any(|d| d.is_error()), "{diags:?}");
        (m, cfg)
    }

    const MLP: &str = "model:\n  input_shape: [784]\n  layers:\n    - {type: Dense, units: 512, activation: relu}\n    - {type: Dense, units: 10, activation: softmax}\ntraining:\n  loss: categorical_crossentropy\n  optimizer: {type: adam}\n  batch_size: 128\n";

    #[test]
    fn counts_weights_gradients_slots_activations_and_data() {
        let (m, cfg) = model(MLP);
        let e = estimate(&m, &cfg, 0);
        let params = 784 * 512 + 512 + 512 * 10 + 10;
        assert_eq!(e.weights, params * 4);
        assert_eq!(e.gradients, params * 4);
        assert_eq!((e.slots, e.optimizer), (2, 2 * params * 4), "adam keeps m and v");
        // Input, hidden and output values per sample, 128 samples, 3 copies.
        assert_eq!(e.activations, (784 + 512 + 10) * 128 * 3 * 4);
        assert_eq!(e.data, 0);
        assert_eq!(e.largest.as_ref().map(|l| l.0.as_str()), Some("layer 'dense' (Dense)"));
        let loaded = estimate(&m, &cfg, 1000);
        assert_eq!(loaded.data, 1000 * (784 + 10) * 4);
        assert_eq!(loaded.total(), loaded.model() + loaded.data);
        // Fewer samples than a batch: the batch is what there is, but an
        // evaluation batch still holds them all.
        let few = estimate(&m, &cfg, 10);
        assert_eq!(few.batch, 10);
        assert_eq!(few.activations, (784 + 512 + 10) * 30 * 4);
    }

    #[test]
    fn inference_counts_the_same_values_once_per_sample() {
        let (m, cfg) = model(MLP);
        let e = estimate(&m, &cfg, 0);
        let i = inference(&m, 128);
        assert_eq!((i.weights, i.gradients, i.optimizer, i.data), (e.weights, 0, 0, 0));
        assert_eq!(i.activations, (784 + 512 + 10) * 128 * 4);
        // Training holds the batch 3 times (128 * 3 > the evaluation batch of 256).
        assert_eq!(e.activations, i.activations * ACTIVATION_FACTOR);
        assert_eq!(i.per_sample, (784 + 512 + 10) * 4);
        assert_eq!(e.per_sample, i.per_sample * ACTIVATION_FACTOR);
        assert_eq!(i.model(), i.weights + i.activations);
        // A layer without weights but with a huge output is the largest.
        let up = "model:\n  input_shape: [8, 8, 1]\n  layers:\n    - {type: UpSampling2D, size: 1000}\n    - {type: GlobalAveragePooling2D}\n    - {type: Dense, units: 2}\ntraining:\n  loss: mse\n";
        let (m, _) = model(up);
        let i = inference(&m, 256);
        assert_eq!(i.per_sample, (64 + 8000 * 8000 + 1 + 2) * 4);
        assert_eq!(i.activations, i.per_sample * 256);
        assert_eq!(i.largest, Some(("layer 'up_sampling2d' (UpSampling2D)".to_string(), 8000 * 8000 * 256 * 4)));
    }

    #[test]
    fn the_batch_that_fits_leaves_room_for_what_is_fixed() {
        assert_eq!(batch_that_fits(100, 0, 1000), 10);
        assert_eq!(batch_that_fits(100, 50, 1000), 9);
        assert_eq!(batch_that_fits(100, 0, 99), 0);
        assert_eq!(batch_that_fits(100, 2000, 1000), 0);
        assert_eq!(batch_that_fits(0, 0, 1000), u64::MAX);
    }

    #[test]
    fn absurd_sizes_saturate_instead_of_wrapping() {
        let (m, cfg) = model(&MLP.replace("units: 512", "units: 200000000"));
        let e = estimate(&m, &cfg, 0);
        assert_eq!(e.weights, (784 * 200_000_000u64 + 200_000_000 + 200_000_000 * 10 + 10) * 4);
        assert!(e.model() > 1 << 40, "{e:?}");
        let huge = Estimate { weights: u64::MAX, activations: 5, ..Default::default() };
        assert_eq!(huge.total(), u64::MAX);
    }

    #[test]
    fn optimizer_slots_follow_the_rule() {
        assert_eq!(slots(&Rule::Sgd { momentum: 0.0, nesterov: false }), 0);
        assert_eq!(slots(&Rule::Sgd { momentum: 0.9, nesterov: false }), 1);
        assert_eq!(slots(&Rule::RmsProp { rho: 0.9, momentum: 0.5, epsilon: 1e-7, centered: true }), 3);
        assert_eq!(slots(&Rule::Adam { beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7, amsgrad: true }), 3);
        assert_eq!(slots(&Rule::Adagrad { initial_accumulator_value: 0.1, epsilon: 1e-7 }), 1);
    }

    #[test]
    fn reads_proc_and_cgroup_numbers() {
        assert_eq!(parse_meminfo("MemTotal: 10 kB\nMemFree: 2 kB\nMemAvailable:   2048 kB\n"), Some(2 << 20));
        assert_eq!(parse_meminfo("MemTotal: 10 kB\n"), None);
        assert_eq!(cgroup_dir("0::/\n"), Some(String::new()));
        assert_eq!(cgroup_dir("12:memory:/x\n0::/user.slice/a.scope\n"), Some("/user.slice/a.scope".into()));
        assert_eq!(cgroup_dir("12:memory:/x\n"), None);
        assert_eq!(cgroup_headroom("max\n", "100\n"), None);
        assert_eq!(cgroup_headroom("1000\n", "300\n"), Some(700));
        assert_eq!(cgroup_headroom("1000\n", "3000\n"), Some(0));
    }

    #[test]
    fn depth_follows_the_longest_path_and_time_steps() {
        let (m, _) = model(MLP);
        assert_eq!(depth(&m), 2);
        let rnn =
            "model:\n  input_shape: [50, 3]\n  layers:\n    - {type: GRU, units: 4}\n    - {type: Dense, units: 1}\ntraining:\n  loss: mse\n  optimizer: sgd\n";
        let (m, _) = model(rnn);
        assert_eq!(depth(&m), 51, "50 steps of the GRU, then the Dense");
        assert!(stack_bytes(MAX_TRAIN_DEPTH).is_some());
        assert_eq!(stack_bytes(MAX_TRAIN_DEPTH + 1), None);
    }
}
