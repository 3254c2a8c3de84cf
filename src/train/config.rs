//! The `training` section as the engine needs it, with Keras's compile/fit
//! names and defaults. validate reads it through here too, so a typo in an
//! optimizer argument is found before any data is loaded.

use super::losses::Loss;
use super::optim::{self, OptimizerSpec};
use crate::diag::{Diagnostic, Pos};
use crate::graph::Model;
use crate::spec::Spec;
use crate::spec::args::Args;
use crate::spec::training::{ClassKey, ClassWeight, ClassWeightKind};
use crate::spec::yaml::{Node, Value};

/// Keys read by `spec::training` or below, not through `Args`.
const KEYS: &[&str] = &["loss", "optimizer", "loss_weights", "metrics", "callbacks", "class_weight"];

#[derive(Clone, Debug)]
pub struct TrainConfig {
    /// One per model output, in output order.
    pub losses: Vec<Loss>,
    pub loss_weights: Vec<f64>,
    pub optimizer: OptimizerSpec,
    /// Metric names per output.
    pub metrics: Vec<Vec<String>>,
    pub epochs: usize,
    pub batch_size: usize,
    pub shuffle: bool,
    pub seed: u64,
    /// `training.callbacks`, in the spec's order (the order Keras calls them in).
    pub callbacks: Vec<CallbackConfig>,
    /// Monitors `read` warned are never logged: fit doesn't warn again.
    pub unlogged_monitors: Vec<String>,
    /// `training.class_weight`, checked against the model (one output, a
    /// classification loss, indices within its classes); resolved against
    /// the training data by `train::weights::resolve`.
    pub class_weight: Option<ClassWeight>,
    /// `training.mixed_precision: mixed_bfloat16` (Keras's policy name):
    /// matrix products in bf16 with f32 accumulation, weights in f32.
    pub mixed_bfloat16: bool,
}

/// One entry of `training.callbacks`.
#[derive(Clone, Debug, PartialEq)]
pub enum CallbackConfig {
    ReduceLrOnPlateau(ReduceLrOnPlateau),
    EarlyStopping(EarlyStopping),
    ModelCheckpoint(ModelCheckpoint),
}

/// Whether a smaller or a larger monitored value is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Min,
    Max,
}

impl Mode {
    /// Keras `mode`: `auto` is max for accuracy-like names, else min.
    pub fn resolve(mode: &str, monitor: &str) -> Mode {
        match mode {
            "min" => Mode::Min,
            "max" => Mode::Max,
            _ if ["accuracy", "auc", "precision", "recall"].iter().any(|n| monitor.contains(n)) => Mode::Max,
            _ => Mode::Min,
        }
    }
}

/// Keras `EarlyStopping` with its defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct EarlyStopping {
    pub monitor: String,
    pub min_delta: f64,
    pub patience: usize,
    pub mode: Mode,
    pub restore_best_weights: bool,
    /// Patience restarts only when the value also beats this.
    pub baseline: Option<f64>,
    /// Epochs of warm-up before anything is watched.
    pub start_from_epoch: usize,
}

/// Keras `ModelCheckpoint`: saves a model file into the run directory.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelCheckpoint {
    pub monitor: String,
    pub save_best_only: bool,
    /// Save every this many epochs (Keras `save_freq: epoch` is 1).
    pub every: usize,
    pub mode: Mode,
    /// File name inside the run directory.
    pub filepath: String,
}

/// Keras `ReduceLROnPlateau` with its defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct ReduceLrOnPlateau {
    pub monitor: String,
    pub factor: f64,
    pub patience: usize,
    pub min_delta: f64,
    pub min_lr: f64,
    pub cooldown: usize,
}

/// Reads the training section; problems go to `diags`. `None` when the spec
/// has no usable training section.
impl TrainConfig {
    /// The model's inputs and outputs with their losses: what the data must feed.
    pub fn io(&self, model: &Model) -> crate::data::ModelIo {
        crate::data::ModelIo {
            inputs: model.inputs.iter().map(|i| (i.name.clone(), i.shape.clone())).collect(),
            indices: (0..model.inputs.len()).map(|k| index_input(model, k)).collect(),
            outputs: model
                .outputs
                .iter()
                .zip(&self.losses)
                .map(|(&o, loss)| crate::data::OutputIo {
                    name: model.layers[o].name.clone(),
                    shape: model.layers[o].output_shape.clone().unwrap_or_default(),
                    loss: loss.name().to_string(),
                })
                .collect(),
        }
    }
}

/// The Embedding that reads model input `k` directly, if any (the one with
/// the fewest indices when several do): the input's values must be indices.
fn index_input(model: &Model, k: usize) -> Option<crate::data::IndexInput> {
    model
        .layers
        .iter()
        .filter(|n| n.type_name == "Embedding" && n.inputs.contains(&crate::graph::Src::Input(k)))
        .filter_map(|n| Some(crate::data::IndexInput { layer: n.name.clone(), input_dim: *n.weights.first()?.shape.first()? }))
        .min_by_key(|ix| ix.input_dim)
}

/// The model and training config of a spec given as YAML text (tests).
#[cfg(test)]
pub(crate) fn from_yaml(yaml: &str) -> (Model, TrainConfig) {
    let source = crate::spec::Source { path: "t.yaml".into(), text: yaml.into() };
    let mut diags = Vec::new();
    let (spec, model) = crate::graph::from_source(&source, &mut diags).expect("builds");
    let cfg = read(&spec, &model, &mut diags).expect("config");
    (model, cfg)
}

pub fn read(spec: &Spec, model: &Model, diags: &mut Vec<Diagnostic>) -> Option<TrainConfig> {
    let Some(t) = &spec.training else {
        diags.push(
            Diagnostic::error("the spec has no `training` section", Pos::default(), "training")
                .with_hint("add `training:` with at least `loss` (and usually `optimizer`, `epochs`, `batch_size`)"),
        );
        return None;
    };
    let node = &t.node;
    let mut a = Args::new(node, "training", "training", KEYS);
    let epochs = a.usize("epochs", Some(1), 1);
    let batch_size = a.usize("batch_size", Some(32), 1);
    let shuffle = a.bool("shuffle", true);
    let seed = a.usize("seed", Some(0), 0) as u64;
    let blank_index = a.opt_usize("blank_index", 0);
    let zero_infinity = a.bool("zero_infinity", false);
    let mixed_bfloat16 = a.choice("mixed_precision", Some("float32"), &["float32", "mixed_bfloat16"]) == "mixed_bfloat16";
    a.finish();
    let mut errors = a.diags;

    let mut losses = losses_per_output(spec, model, node, &mut errors);
    if let Some(losses) = &mut losses {
        ctc_options(model, node, losses, blank_index, zero_infinity, &mut errors);
    }
    let n_out = model.outputs.len();
    let loss_weights = per_output_numbers(node.get("loss_weights"), model, "training.loss_weights", &mut errors).unwrap_or(vec![1.0; n_out]);
    let optimizer = match node.get("optimizer") {
        Some(o) => optim::parse(o, "training.optimizer", &mut errors),
        None => Some(OptimizerSpec::default()), // Keras compile's default: rmsprop
    };
    let class_weight = t.class_weight.clone();
    if let Some(cw) = &class_weight {
        check_class_weight(cw, model, losses.as_deref(), &mut errors);
    }
    let metrics = metric_names(node.get("metrics"), model, &mut errors);
    let (callbacks, watches) = read_callbacks(node.get("callbacks"), &mut errors);
    let validation = spec.data.as_ref().map(|d| d.validation.is_some() || d.validation_split > 0.0);
    let unlogged_monitors = check_monitors(&watches, model, &metrics, validation, &mut errors);
    if let (Some(losses), Some(optimizer)) = (&losses, &optimizer) {
        for (k, (loss, names)) in losses.iter().zip(&metrics).enumerate() {
            for name in names {
                if let Err(e) = super::metrics::resolve(name, loss) {
                    let pos = node.get("metrics").map_or(node.pos, |m| m.pos);
                    let out = &model.layers[model.outputs[k]].name;
                    errors.push(Diagnostic::error(format!("metric '{name}' for output '{out}': {e}"), pos, "training.metrics"));
                }
            }
        }
        let ok = !errors.iter().any(Diagnostic::is_error);
        diags.append(&mut errors);
        return ok.then(|| TrainConfig {
            losses: losses.clone(),
            loss_weights,
            optimizer: optimizer.clone(),
            metrics,
            epochs,
            batch_size,
            shuffle,
            seed,
            callbacks,
            unlogged_monitors,
            class_weight,
            mixed_bfloat16,
        });
    }
    diags.append(&mut errors);
    None
}

fn losses_per_output(spec: &Spec, model: &Model, node: &Node, diags: &mut Vec<Diagnostic>) -> Option<Vec<Loss>> {
    let Some(losses) = spec.training.as_ref().and_then(|t| t.loss.as_ref()) else {
        if node.get("loss").is_none() {
            diags.push(
                Diagnostic::error("`training` has no `loss`", node.pos, "training.loss")
                    .with_hint("binary_crossentropy for two classes, categorical_crossentropy for many, mse for regression"),
            );
        }
        return None;
    };
    // Pairing errors were reported when the graph was checked.
    let pairs = crate::graph::checks::pair_losses(model, losses, &mut Vec::new());
    if pairs.len() != model.outputs.len() {
        return None;
    }
    let mut by_output: Vec<(usize, Loss)> = pairs.iter().filter_map(|(o, n)| Loss::from_name(&n.name).map(|l| (*o, l))).collect();
    by_output.sort_by_key(|(o, _)| model.outputs.iter().position(|x| x == o));
    Some(by_output.into_iter().map(|(_, l)| l).collect())
}

/// The classes `class_weight` can weigh for output `k` under `loss`: its
/// units, 2 for a one-unit binary output; an error when the loss or the
/// output has no class per sample.
pub fn weighable_classes(model: &Model, k: usize, loss: &Loss) -> Result<usize, String> {
    let l = &model.layers[model.outputs[k]];
    if !matches!(loss, Loss::BinaryCrossentropy | Loss::CategoricalCrossentropy | Loss::SparseCategoricalCrossentropy) {
        return Err(format!(
            "`class_weight` needs a classification loss (binary_crossentropy, categorical_crossentropy or sparse_categorical_crossentropy), but output '{}' is trained with {}",
            l.name,
            loss.name()
        ));
    }
    let shape = l.output_shape.as_deref().unwrap_or(&[]);
    match shape {
        [1] if *loss == Loss::BinaryCrossentropy => Ok(2),
        [units] => Ok(*units),
        _ => Err(format!(
            "`class_weight` needs one class per sample, but output '{}' has shape {shape:?} (Keras: class_weight is not supported for 3+ dimensional targets)",
            l.name
        )),
    }
}

/// `training.class_weight` against the model, as Keras checks it at `fit`:
/// a single output, trained with a classification loss, and every class
/// index one of its classes. Class names are checked against the data.
fn check_class_weight(cw: &ClassWeight, model: &Model, losses: Option<&[Loss]>, diags: &mut Vec<Diagnostic>) {
    const PATH: &str = "training.class_weight";
    let alternative = "weigh the samples with a `data.sample_weight` column instead, or remove `class_weight`";
    if model.outputs.len() > 1 {
        let names: Vec<&str> = model.outputs.iter().map(|&o| model.layers[o].name.as_str()).collect();
        diags.push(
            Diagnostic::error(
                format!("class_weight applies to a single-output model, as in Keras; this model has {} outputs ({})", names.len(), names.join(", ")),
                cw.pos,
                PATH,
            )
            .with_hint(alternative),
        );
        return;
    }
    // A missing or unknown loss was reported already; an output whose shape
    // is unknown (an error above, or a width the data could not give) can't
    // be checked.
    let Some(loss) = losses.and_then(|l| l.first()) else { return };
    if model.outputs.first().is_none_or(|&o| model.layers[o].output_shape.is_none()) {
        return;
    }
    let classes = match weighable_classes(model, 0, loss) {
        Ok(c) => c,
        Err(e) => {
            diags.push(Diagnostic::error(e, cw.pos, PATH).with_hint(alternative));
            return;
        }
    };
    let ClassWeightKind::Map(entries) = &cw.kind else { return };
    let out = &model.layers[model.outputs[0]].name;
    for e in entries {
        if let ClassKey::Index(i) = e.class
            && i >= classes
        {
            let hint = if *loss == Loss::BinaryCrossentropy && classes == 2 {
                "a one-unit binary_crossentropy output has the classes 0 and 1".to_string()
            } else {
                format!("class indices run from 0 to {}; key a text label by its name", classes - 1)
            };
            diags.push(
                Diagnostic::error(
                    format!("`class_weight` has the class index {i}, but output '{out}' has {classes} classes (0..{})", classes - 1),
                    e.pos,
                    format!("{PATH}.{i}"),
                )
                .with_hint(hint),
            );
        }
    }
}

/// The CTC blank of each ctc output: `blank_index`, or its last class.
fn ctc_options(model: &Model, node: &Node, losses: &mut [Loss], blank_index: Option<usize>, zero_infinity: bool, diags: &mut Vec<Diagnostic>) {
    let mut any = false;
    for (k, loss) in losses.iter_mut().enumerate() {
        let Loss::Ctc { classes: c, blank, zero_infinity: z, .. } = loss else { continue };
        any = true;
        *z = zero_infinity;
        let l = &model.layers[model.outputs[k]];
        // A missing or wrong shape was reported by the graph checks.
        let classes = l.output_shape.as_ref().and_then(|s| s.last().copied()).unwrap_or(2).max(2);
        *c = classes;
        *blank = blank_index.unwrap_or(classes - 1);
        if *blank >= classes {
            let pos = node.get("blank_index").map_or(node.pos, |n| n.pos);
            diags.push(
                Diagnostic::error(
                    format!("`blank_index` is {}, but output '{}' has {classes} classes (0..{})", *blank, l.name, classes - 1),
                    pos,
                    "training.blank_index",
                )
                .with_hint(format!("leave it out to use the last class ({}) as the blank", classes - 1)),
            );
        }
    }
    for key in ["blank_index", "zero_infinity"] {
        if let Some(n) = node.get(key).filter(|_| !any) {
            diags.push(
                Diagnostic::warning(format!("`{key}` applies to `loss: ctc` only; no output here is trained with ctc"), n.pos, format!("training.{key}"))
                    .with_hint(format!("remove `{key}`")),
            );
        }
    }
}

/// A number for every output, or a list / mapping with one per output.
fn per_output_numbers(node: Option<&Node>, model: &Model, path: &str, diags: &mut Vec<Diagnostic>) -> Option<Vec<f64>> {
    let node = node?;
    let outs: Vec<&str> = model.outputs.iter().map(|&o| model.layers[o].name.as_str()).collect();
    let v: Option<Vec<f64>> = match &node.value {
        Value::Seq(items) if items.len() == outs.len() => items.iter().map(Node::as_f64).collect(),
        Value::Map(_) => outs.iter().map(|o| node.get(o).and_then(Node::as_f64)).collect(),
        _ => node.as_f64().map(|x| vec![x; outs.len()]),
    };
    if v.is_none() {
        diags.push(
            Diagnostic::error(format!("`{path}` must give one number per output ({}), received {}", outs.join(", "), node.describe()), node.pos, path)
                .with_hint("a list in output order, or a mapping from output name to weight"),
        );
    }
    v
}

/// Metric names per output: a list for every output, or a mapping per output.
fn metric_names(node: Option<&Node>, model: &Model, diags: &mut Vec<Diagnostic>) -> Vec<Vec<String>> {
    let n = model.outputs.len();
    let Some(node) = node else { return vec![Vec::new(); n] };
    let names = |n: &Node| -> Option<Vec<String>> {
        match &n.value {
            Value::Str(s) => Some(vec![s.clone()]),
            Value::Seq(items) => items.iter().map(|i| i.as_str().map(str::to_string)).collect(),
            _ => None,
        }
    };
    let result = match &node.value {
        Value::Map(_) => model.outputs.iter().map(|&o| node.get(&model.layers[o].name).map_or(Some(Vec::new()), names)).collect(),
        _ => names(node).map(|v| vec![v; n]),
    };
    result.unwrap_or_else(|| {
        diags.push(
            Diagnostic::error(format!("`training.metrics` must be a list of metric names, received {}", node.describe()), node.pos, "training.metrics")
                .with_hint("for example `metrics: [accuracy]`, or `{digit: [accuracy], odd: [auc]}` per output"),
        );
        vec![Vec::new(); n]
    })
}

/// The names `fit` logs each epoch, in its order: the loss, each output's
/// loss (when there are several), each metric (prefixed by its output's name
/// when there are several), their `val_` twins when there is validation
/// data, and the learning rate.
pub fn logged(model: &Model, metrics: &[Vec<String>], validation: bool) -> Vec<String> {
    let outs = &model.outputs;
    let output = |k: usize| if outs.len() == 1 { String::new() } else { format!("{}_", model.layers[outs[k]].name) };
    let split = |prefix: &str| {
        let mut keys = vec![format!("{prefix}loss")];
        for (k, names) in metrics.iter().enumerate().take(outs.len()) {
            if outs.len() > 1 {
                keys.push(format!("{prefix}{}loss", output(k)));
            }
            keys.extend(names.iter().map(|m| format!("{prefix}{}{m}", output(k))));
        }
        keys
    };
    let mut keys = split("");
    if validation {
        keys.extend(split("val_"));
    }
    keys.push("learning_rate".into());
    keys
}

/// A callback's `monitor`, where the spec gives it (or the callback, for the default).
struct Watch {
    callback: &'static str,
    /// What the callback fails to do without its value.
    idle: &'static str,
    monitor: String,
    pos: Pos,
    path: String,
}

/// Warns about each monitor fit will never log, at the `monitor` value: a
/// `val_` value without validation data, or a name no loss or metric has
/// (with the closest that exists). `validation` is `None` when the spec has
/// no data section (then only names that can never be logged are flagged).
/// Returns the monitors warned about.
fn check_monitors(watches: &[Watch], model: &Model, metrics: &[Vec<String>], validation: Option<bool>, diags: &mut Vec<Diagnostic>) -> Vec<String> {
    let possible = logged(model, metrics, true);
    let now = logged(model, metrics, validation.unwrap_or(true));
    let add_validation = "set `data.validation_split: 0.2` (or a `data.validation` source)";
    let mut warned: Vec<String> = Vec::new();
    for w in watches {
        let m = &w.monitor;
        if now.contains(m) {
            continue;
        }
        let head = format!("{} monitors `{m}`", w.callback);
        let d = if possible.contains(m) {
            let train = m.strip_prefix("val_").unwrap_or(m);
            Diagnostic::warning(format!("{head}, but the spec has no validation data: it is never logged, and the callback {}", w.idle), w.pos, &w.path)
                .with_hint(format!("{add_validation}; or monitor `{train}`"))
        } else {
            let hint = match crate::diag::did_you_mean(m, possible.iter().map(String::as_str)) {
                Some(s) if !now.iter().any(|n| n == s) => format!("did you mean `{s}`? It needs validation data too: {add_validation}"),
                Some(s) => format!("did you mean `{s}`?"),
                None => "monitor a loss or one of `training.metrics`, as logged".to_string(),
            };
            Diagnostic::warning(format!("{head}, which is never logged (logged: {}), so the callback {}", now.join(", "), w.idle), w.pos, &w.path)
                .with_hint(hint)
        };
        diags.push(d);
        if !warned.contains(m) {
            warned.push(m.clone());
        }
    }
    warned
}

/// The callbacks in spec order, and what each monitors.
type Callbacks = (Vec<CallbackConfig>, Vec<Watch>);

/// A string argument with a default.
fn string_arg(a: &mut Args, name: &'static str, default: &str) -> String {
    match a.raw(name, "string", Some(default.to_string())) {
        None => default.to_string(),
        Some(n) => match n.as_str() {
            Some(s) => s.to_string(),
            None => {
                a.error(name, n, format!("must be a string, received {}", n.describe()), None);
                default.to_string()
            }
        },
    }
}

fn read_callbacks(node: Option<&Node>, diags: &mut Vec<Diagnostic>) -> Callbacks {
    let Some(node) = node else { return (Vec::new(), Vec::new()) };
    let items = node.as_seq().map(<[Node]>::to_vec).unwrap_or_else(|| {
        diags.push(Diagnostic::error(format!("`training.callbacks` must be a list, received {}", node.describe()), node.pos, "training.callbacks"));
        Vec::new()
    });
    let (mut list, mut watches) = (Vec::new(), Vec::new());
    for (i, item) in items.iter().enumerate() {
        let path = format!("training.callbacks[{i}]");
        let mut watch = |callback, idle, monitor: &str| {
            let pos = item.get("monitor").map_or(item.pos, |n| n.pos);
            watches.push(Watch { callback, idle, monitor: monitor.to_string(), pos, path: format!("{path}.monitor") });
        };
        let ty = item.get("type").and_then(Node::as_str);
        let twice = |diags: &mut Vec<Diagnostic>, name: &str| {
            diags.push(Diagnostic::error(format!("callback {name} is given twice"), item.pos, path.clone()).with_hint("keep one"));
        };
        match ty {
            Some("ReduceLROnPlateau") => {
                let mut a = Args::new(item, path.clone(), "callback ReduceLROnPlateau", &["type"]);
                if list.iter().any(|c| matches!(c, CallbackConfig::ReduceLrOnPlateau(_))) {
                    twice(diags, "ReduceLROnPlateau");
                }
                let monitor = a.choice("monitor", Some("val_loss"), &["val_loss", "loss"]).to_string();
                watch("ReduceLROnPlateau", "never lowers the learning rate", &monitor);
                list.push(CallbackConfig::ReduceLrOnPlateau(ReduceLrOnPlateau {
                    monitor,
                    factor: a.float("factor", Some(0.1), 0.0, 1.0, true),
                    patience: a.usize("patience", Some(10), 0),
                    min_delta: a.float("min_delta", Some(1e-4), 0.0, f64::INFINITY, false),
                    min_lr: a.float("min_lr", Some(0.0), 0.0, f64::INFINITY, false),
                    cooldown: a.usize("cooldown", Some(0), 0),
                }));
                a.finish();
                diags.append(&mut a.diags);
            }
            Some("EarlyStopping") => {
                let mut a = Args::new(item, path.clone(), "callback EarlyStopping", &["type"]);
                if list.iter().any(|c| matches!(c, CallbackConfig::EarlyStopping(_))) {
                    twice(diags, "EarlyStopping");
                }
                let monitor = string_arg(&mut a, "monitor", "val_loss");
                watch("EarlyStopping", "never stops the training", &monitor);
                list.push(CallbackConfig::EarlyStopping(EarlyStopping {
                    min_delta: a.float("min_delta", Some(0.0), 0.0, f64::INFINITY, false),
                    patience: a.usize("patience", Some(0), 0),
                    mode: Mode::resolve(a.choice("mode", Some("auto"), &["auto", "min", "max"]), &monitor),
                    restore_best_weights: a.bool("restore_best_weights", false),
                    baseline: a.opt_float("baseline"),
                    start_from_epoch: a.usize("start_from_epoch", Some(0), 0),
                    monitor,
                }));
                a.finish();
                diags.append(&mut a.diags);
            }
            Some("ModelCheckpoint") => {
                let mut a = Args::new(item, path.clone(), "callback ModelCheckpoint", &["type"]);
                if list.iter().any(|c| matches!(c, CallbackConfig::ModelCheckpoint(_))) {
                    twice(diags, "ModelCheckpoint");
                }
                let monitor = string_arg(&mut a, "monitor", "val_loss");
                let filepath = string_arg(&mut a, "filepath", "model_checkpoint.safetensors");
                if filepath.is_empty() || filepath.contains(['/', '\\']) || filepath == "model.safetensors" || filepath == "checkpoint.safetensors" {
                    let n = a.node("filepath").unwrap_or(item);
                    a.error(
                        "filepath",
                        n,
                        format!("must be a plain file name other than model.safetensors and checkpoint.safetensors, received '{filepath}'"),
                        Some("the file is written into the run directory, e.g. `filepath: best.safetensors`".into()),
                    );
                }
                let freq = string_arg(&mut a, "save_freq", "epoch");
                if freq != "epoch" {
                    let n = a.node("save_freq").unwrap_or(item);
                    a.error("save_freq", n, format!("must be `epoch`, received '{freq}'"), Some("to save every N epochs write `every: N`".into()));
                }
                let save_best_only = a.bool("save_best_only", false);
                // Without save_best_only it saves every `every` epochs, watching nothing.
                if save_best_only {
                    watch("ModelCheckpoint", "never saves", &monitor);
                }
                list.push(CallbackConfig::ModelCheckpoint(ModelCheckpoint {
                    save_best_only,
                    every: a.usize("every", Some(1), 1),
                    mode: Mode::resolve(a.choice("mode", Some("auto"), &["auto", "min", "max"]), &monitor),
                    monitor,
                    filepath,
                }));
                a.finish();
                diags.append(&mut a.diags);
            }
            other => diags.push(
                Diagnostic::error(format!("unknown callback {}", other.map_or(item.describe(), |s| format!("'{s}'"))), item.pos, path)
                    .with_hint("supported: ReduceLROnPlateau, EarlyStopping, ModelCheckpoint"),
            ),
        }
    }
    (list, watches)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warnings(yaml: &str) -> (Vec<String>, Vec<String>) {
        let source = crate::spec::Source { path: "t.yaml".into(), text: yaml.into() };
        let mut diags = Vec::new();
        let (spec, model) = crate::graph::from_source(&source, &mut diags).expect("builds");
        let cfg = read(&spec, &model, &mut diags).expect("config");
        (diags.iter().map(|d| format!("{}: {}", d.path, d.message)).collect(), cfg.unlogged_monitors)
    }

    /// The errors `read` finds for a spec with a training section of `training`.
    fn errors(model: &str, training: &str) -> Vec<(usize, usize, String, Option<String>)> {
        let source = crate::spec::Source { path: "t.yaml".into(), text: format!("model: {model}\ntraining:\n{training}") };
        let mut diags = Vec::new();
        let (spec, model) = crate::graph::from_source(&source, &mut diags).expect("builds");
        let cfg = read(&spec, &model, &mut diags);
        let errors: Vec<_> = diags.into_iter().filter(Diagnostic::is_error).map(|d| (d.pos.line, d.pos.col, d.message, d.hint)).collect();
        assert_eq!(cfg.is_none(), !errors.is_empty());
        errors
    }

    #[test]
    fn class_weight_fits_a_single_classification_output() {
        let softmax3 = "{input_shape: [4], layers: [{type: Dense, units: 3, activation: softmax}]}";
        let sigmoid1 = "{input_shape: [4], layers: [{type: Dense, units: 1, activation: sigmoid}]}";
        for (model, loss, cw) in [
            (softmax3, "sparse_categorical_crossentropy", "{0: 1, 2: 3.5}"),
            (softmax3, "categorical_crossentropy", "balanced"),
            (softmax3, "sparse_categorical_crossentropy", "{Adelie: 2}"),
            (sigmoid1, "binary_crossentropy", "{0: 1, 1: 4}"),
        ] {
            assert_eq!(errors(model, &format!("  loss: {loss}\n  class_weight: {cw}\n")), [], "{loss} {cw}");
        }
        // An index past the output's classes, at its key.
        let e = errors(softmax3, "  loss: sparse_categorical_crossentropy\n  class_weight: {0: 1, 3: 2}\n");
        assert_eq!(
            e,
            [(
                4,
                24,
                "`class_weight` has the class index 3, but output 'dense' has 3 classes (0..2)".into(),
                Some("class indices run from 0 to 2; key a text label by its name".into())
            )]
        );
        let e = errors(sigmoid1, "  loss: binary_crossentropy\n  class_weight: {2: 1}\n");
        assert_eq!(e[0].2, "`class_weight` has the class index 2, but output 'dense' has 2 classes (0..1)");
        assert_eq!(e[0].3.as_deref(), Some("a one-unit binary_crossentropy output has the classes 0 and 1"));
        // A regression loss, at the `class_weight` key.
        let e = errors(softmax3, "  loss: mse\n  class_weight: balanced\n");
        assert_eq!((e[0].0, e[0].1), (4, 3));
        assert_eq!(
            e[0].2,
            "`class_weight` needs a classification loss (binary_crossentropy, categorical_crossentropy or sparse_categorical_crossentropy), but output 'dense' is trained with mean_squared_error"
        );
        // Several outputs.
        let two = "{inputs: {x: [4]}, layers: [{name: a, type: Dense, units: 2, activation: softmax, inputs: x}, {name: b, type: Dense, units: 2, activation: softmax, inputs: x}], outputs: [a, b]}";
        let e = errors(two, "  loss: categorical_crossentropy\n  class_weight: balanced\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!((e[0].0, e[0].1), (4, 3));
        assert_eq!(e[0].2, "class_weight applies to a single-output model, as in Keras; this model has 2 outputs (a, b)");
        assert!(e[0].3.as_deref().unwrap().contains("data.sample_weight"));
        // A class per time step is not one class per sample.
        let seq = "{input_shape: [5, 2], layers: [{type: SimpleRNN, units: 3, return_sequences: true}, {type: Dense, units: 3, activation: softmax}]}";
        let e = errors(seq, "  loss: categorical_crossentropy\n  class_weight: {0: 2}\n");
        assert!(e[0].2.starts_with("`class_weight` needs one class per sample, but output 'dense' has shape [5, 3]"), "{e:?}");
        // A typo in the key is an unknown argument, with the hint.
        let e = errors(softmax3, "  loss: sparse_categorical_crossentropy\n  class_weights: balanced\n");
        assert_eq!(e[0].3.as_deref(), Some("did you mean `class_weight`?"));
    }

    const SPEC: &str = "model: {input_shape: [2], layers: [{type: Dense, units: 1, activation: sigmoid}]}\n\
        training: {loss: binary_crossentropy, metrics: [auc], callbacks: [{type: EarlyStopping, monitor: MONITOR}]}\n";

    #[test]
    fn monitors_never_logged_are_warned_about_once_each() {
        let with_data = |data: &str, monitor: &str| warnings(&format!("{}data: {{train: t.csv, target: y{data}}}\n", SPEC.replace("MONITOR", monitor)));
        // No data section: whether validation data comes is unknown, so only
        // a name that can never be logged is flagged.
        let (w, unlogged) = warnings(&SPEC.replace("MONITOR", "val_auc"));
        assert!(w.is_empty() && unlogged.is_empty(), "{w:?}");
        let (w, unlogged) = warnings(&SPEC.replace("MONITOR", "val_acc"));
        assert_eq!(unlogged, ["val_acc"]);
        assert!(w[0].starts_with("training.callbacks[0].monitor: EarlyStopping monitors `val_acc`, which is never logged"), "{w:?}");
        let (w, unlogged) = with_data("", "val_auc");
        assert_eq!((w.len(), unlogged), (1, vec!["val_auc".to_string()]));
        assert!(w[0].contains("the spec has no validation data"), "{w:?}");
        for data in [", validation_split: 0.1", ", validation: v.csv"] {
            assert_eq!(with_data(data, "val_auc"), (vec![], vec![]), "{data}");
        }
        assert_eq!(with_data("", "auc"), (vec![], vec![]));
        assert_eq!(with_data("", "learning_rate"), (vec![], vec![]));
    }
}
