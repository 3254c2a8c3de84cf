//! Keras 3 optimizers, written out by hand so that defaults and update
//! formulas are Keras's own (keras/src/optimizers/*.py): candle-nn has only
//! plain SGD and an AdamW with other defaults.
//!
//! One step does what Keras's `BaseOptimizer.apply` does: clip the gradients
//! (`clipnorm` per variable, else `global_clipnorm`, else `clipvalue`), apply
//! decoupled weight decay (`var -= var * wd * lr`), then the update rule with
//! the learning rate evaluated at the current `iterations`, then count the step.

use crate::diag::{Diagnostic, suggestion};
use crate::kernels::optim::{self as kernels, Pass};
use crate::kernels::sink::Sink;
use crate::spec::args::{ArgDoc, Args};
use crate::spec::yaml::{Node, Value};
use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

#[derive(Clone, Debug, PartialEq)]
pub enum Rule {
    Sgd {
        momentum: f64,
        nesterov: bool,
    },
    RmsProp {
        rho: f64,
        momentum: f64,
        epsilon: f64,
        centered: bool,
    },
    /// Adam and AdamW (AdamW is Adam with a default weight decay, as in Keras).
    Adam {
        beta_1: f64,
        beta_2: f64,
        epsilon: f64,
        amsgrad: bool,
    },
    Adagrad {
        initial_accumulator_value: f64,
        epsilon: f64,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    Constant(f64),
    ExponentialDecay { initial_learning_rate: f64, decay_steps: f64, decay_rate: f64, staircase: bool },
    CosineDecay { initial_learning_rate: f64, decay_steps: f64, alpha: f64, warmup_target: Option<f64>, warmup_steps: f64 },
    PiecewiseConstantDecay { boundaries: Vec<f64>, values: Vec<f64> },
}

impl Schedule {
    /// The learning rate at optimizer step `step` (Keras `schedule(iterations)`).
    pub fn at(&self, step: u64) -> f64 {
        let s = step as f64;
        match self {
            Schedule::Constant(lr) => *lr,
            Schedule::ExponentialDecay { initial_learning_rate, decay_steps, decay_rate, staircase } => {
                let p = s / decay_steps;
                initial_learning_rate * decay_rate.powf(if *staircase { p.floor() } else { p })
            }
            Schedule::CosineDecay { initial_learning_rate: lr0, decay_steps, alpha, warmup_target, warmup_steps } => {
                let cosine = |step: f64, from: f64| {
                    let c = 0.5 * (1.0 + (std::f64::consts::PI * step / decay_steps).cos());
                    from * ((1.0 - alpha) * c + alpha)
                };
                match warmup_target {
                    None => cosine(s.min(*decay_steps), *lr0),
                    Some(target) => {
                        let s = s.min(decay_steps + warmup_steps);
                        if s < *warmup_steps { (target - lr0) * (s / warmup_steps) + lr0 } else { cosine(s - warmup_steps, *target) }
                    }
                }
            }
            // values[i] while step <= boundaries[i]; the last value after all boundaries.
            Schedule::PiecewiseConstantDecay { boundaries, values } => {
                let i = boundaries.iter().position(|b| s <= *b).unwrap_or(boundaries.len());
                values[i]
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Clip {
    None,
    Norm(f64),
    GlobalNorm(f64),
    Value(f64),
}

/// A parsed `training.optimizer`.
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerSpec {
    /// Keras name: sgd, rmsprop, adam, adamw, adagrad.
    pub name: &'static str,
    pub rule: Rule,
    pub learning_rate: Schedule,
    pub weight_decay: Option<f64>,
    pub clip: Clip,
}

impl Default for OptimizerSpec {
    /// Keras `compile()`'s default optimizer: rmsprop.
    fn default() -> Self {
        OptimizerSpec::named("rmsprop").expect("known optimizer")
    }
}

impl OptimizerSpec {
    /// An optimizer with all Keras defaults.
    pub fn named(name: &str) -> Option<OptimizerSpec> {
        let name = canonical(name)?;
        let mut args = Args::for_docs();
        Some(read(name, &mut args))
    }
}

pub const OPTIMIZERS: &[&str] = &["sgd", "rmsprop", "adam", "adamw", "adagrad"];

fn canonical(name: &str) -> Option<&'static str> {
    OPTIMIZERS.iter().copied().find(|o| o.eq_ignore_ascii_case(name))
}

/// Keras optimizer arguments nnrun does not implement.
const UNSUPPORTED: &[&str] = &["use_ema", "ema_momentum", "ema_overwrite_frequency", "loss_scale_factor", "gradient_accumulation_steps"];

/// `node` is the `training.optimizer` value: a name (`adam`) or a mapping
/// `{type: adam, learning_rate: ..., ...}`. Names match case-insensitively
/// (`Adam`, `SGD`), as Keras's `optimizers.get` does.
pub fn parse(node: &Node, path: &str, diags: &mut Vec<Diagnostic>) -> Option<OptimizerSpec> {
    let (name_node, map) = match &node.value {
        Value::Str(_) => (node, None),
        Value::Map(_) => match node.get("type") {
            Some(t) => (t, Some(node)),
            None => {
                let hint = format!("add `type: <name>`, one of {}", OPTIMIZERS.join(", "));
                diags.push(Diagnostic::error("optimizer: missing `type`", node.pos, path).with_hint(hint));
                return None;
            }
        },
        _ => {
            let msg = format!("the optimizer must be a name or a mapping with `type`, received {}", node.describe());
            diags.push(Diagnostic::error(msg, node.pos, path).with_hint(format!("for example `{path}: adam`")));
            return None;
        }
    };
    let type_path = if map.is_some() { format!("{path}.type") } else { path.to_string() };
    let Some(raw) = name_node.as_str() else {
        let msg = format!("the optimizer type must be a name, received {}", name_node.describe());
        diags.push(Diagnostic::error(msg, name_node.pos, type_path));
        return None;
    };
    let Some(name) = canonical(raw) else {
        diags.push(Diagnostic::error(format!("unknown optimizer \"{raw}\""), name_node.pos, type_path).with_hint_opt(suggestion(raw, OPTIMIZERS)));
        return None;
    };
    let Some(map) = map else { return OptimizerSpec::named(name) };
    let mut args = Args::new(map, path, format!("optimizer '{name}'"), &["type", "name"]);
    let spec = read(name, &mut args);
    let unsupported: Vec<String> = UNSUPPORTED.iter().filter(|k| map.get(k).is_some()).map(|k| args.arg_path(k)).collect();
    args.finish();
    args.diags.retain(|d| !unsupported.contains(&d.path));
    for key in UNSUPPORTED {
        if let Some((k, _)) = map.entry(key) {
            let msg = format!("optimizer '{name}': Keras argument `{key}` is not supported by nnrun");
            args.diags.push(Diagnostic::error(msg, k.pos, args.arg_path(key)).with_hint("remove it"));
        }
    }
    let ok = !args.has_errors();
    diags.append(&mut args.diags);
    ok.then_some(spec)
}

/// The arguments of each optimizer, for the spec reference.
pub fn reference_docs() -> Vec<(&'static str, Vec<ArgDoc>)> {
    OPTIMIZERS
        .iter()
        .map(|&name| {
            let mut args = Args::for_docs();
            read(name, &mut args);
            (name, args.docs)
        })
        .collect()
}

/// Reads one optimizer's arguments with Keras's defaults.
fn read(name: &'static str, a: &mut Args) -> OptimizerSpec {
    let default_lr = if name == "sgd" { 0.01 } else { 0.001 };
    let learning_rate = read_schedule(a, default_lr);
    let unit = |a: &mut Args, key, default| a.float(key, Some(default), 0.0, 1.0, false);
    let beta = |a: &mut Args, key, default| a.float(key, Some(default), 0.0, 1.0, true);
    let eps = |a: &mut Args| a.float("epsilon", Some(1e-7), 0.0, f64::INFINITY, false);
    let rule = match name {
        "sgd" => Rule::Sgd { momentum: unit(a, "momentum", 0.0), nesterov: a.bool("nesterov", false) },
        "rmsprop" => Rule::RmsProp { rho: unit(a, "rho", 0.9), momentum: unit(a, "momentum", 0.0), epsilon: eps(a), centered: a.bool("centered", false) },
        "adam" | "adamw" => Rule::Adam { beta_1: beta(a, "beta_1", 0.9), beta_2: beta(a, "beta_2", 0.999), epsilon: eps(a), amsgrad: a.bool("amsgrad", false) },
        "adagrad" => Rule::Adagrad { initial_accumulator_value: a.float("initial_accumulator_value", Some(0.1), 0.0, f64::INFINITY, false), epsilon: eps(a) },
        _ => unreachable!("canonical optimizer name"),
    };
    let weight_decay =
        if name == "adamw" { Some(a.float("weight_decay", Some(0.004), 0.0, f64::INFINITY, false)) } else { opt_positive(a, "weight_decay", true) };
    let clips = [
        ("clipnorm", opt_positive(a, "clipnorm", false).map(Clip::Norm)),
        ("clipvalue", opt_positive(a, "clipvalue", false).map(Clip::Value)),
        ("global_clipnorm", opt_positive(a, "global_clipnorm", false).map(Clip::GlobalNorm)),
    ];
    let set: Vec<_> = clips.iter().filter(|(_, c)| c.is_some()).collect();
    if set.len() > 1 {
        let node = a.node(set[1].0).cloned().unwrap_or_else(|| Node::new(Value::Null, a.pos()));
        let what = format!("cannot be combined with `{}`: Keras allows one of clipnorm, clipvalue, global_clipnorm", set[0].0);
        a.error(set[1].0, &node, what, Some("keep one of them".into()));
    }
    let clip = set.first().and_then(|(_, c)| *c).unwrap_or(Clip::None);
    OptimizerSpec { name, rule, learning_rate, weight_decay, clip }
}

/// An optional number (Keras default `None`); `> 0`, or `>= 0` with `zero_ok`.
fn opt_positive(a: &mut Args, key: &'static str, zero_ok: bool) -> Option<f64> {
    let kind = if zero_ok { "a number >= 0" } else { "a number > 0" };
    let node = a.raw(key, kind, Some("None".into()))?;
    match node.as_f64() {
        Some(f) if f > 0.0 || (zero_ok && f == 0.0) => Some(f),
        _ => {
            a.error(key, node, format!("must be {kind}, received {}", node.describe()), None);
            None
        }
    }
}

const SCHEDULES: &[&str] = &["ExponentialDecay", "CosineDecay", "PiecewiseConstantDecay"];

/// `learning_rate`: a number, or a mapping `{type: ExponentialDecay, ...}`.
fn read_schedule(a: &mut Args, default: f64) -> Schedule {
    let kind = "a number >= 0 or a schedule mapping";
    let Some(node) = a.raw("learning_rate", kind, Some(default.to_string())) else { return Schedule::Constant(default) };
    if let Some(lr) = node.as_f64() {
        if lr >= 0.0 && lr.is_finite() {
            return Schedule::Constant(lr);
        }
    } else if node.as_map().is_some() {
        return read_schedule_map(a, node).unwrap_or(Schedule::Constant(default));
    }
    a.error("learning_rate", node, format!("must be {kind}, received {}", node.describe()), None);
    Schedule::Constant(default)
}

fn read_schedule_map(a: &mut Args, node: &Node) -> Option<Schedule> {
    let path = a.arg_path("learning_rate");
    let fail = |a: &mut Args, d: Diagnostic| {
        a.diags.push(d);
        None
    };
    let Some(ty) = node.get("type") else {
        let hint = format!("add `type:`, one of {}", SCHEDULES.join(", "));
        let d = Diagnostic::error(format!("{}: learning-rate schedule without `type`", a.owner()), node.pos, path);
        return fail(a, d.with_hint(hint));
    };
    let raw = ty.as_str().unwrap_or_default();
    // Keras class names; snake_case is accepted too.
    let squash = |s: &str| s.replace('_', "").to_ascii_lowercase();
    let Some(name) = SCHEDULES.iter().copied().find(|s| squash(s) == squash(raw)) else {
        let msg = format!("{}: unknown learning-rate schedule {}", a.owner(), ty.describe());
        return fail(a, Diagnostic::error(msg, ty.pos, format!("{path}.type")).with_hint_opt(suggestion(raw, SCHEDULES)));
    };
    let mut s = Args::new(node, path, format!("schedule '{name}'"), &["type", "name"]);
    let lr0 = |s: &mut Args| s.float("initial_learning_rate", None, 0.0, f64::INFINITY, false);
    let steps = |s: &mut Args, key| s.usize(key, None, 1) as f64;
    let out = match name {
        "ExponentialDecay" => Schedule::ExponentialDecay {
            initial_learning_rate: lr0(&mut s),
            decay_steps: steps(&mut s, "decay_steps"),
            decay_rate: s.float("decay_rate", None, 0.0, f64::INFINITY, false),
            staircase: s.bool("staircase", false),
        },
        "CosineDecay" => {
            let (lr, decay_steps, alpha) = (lr0(&mut s), steps(&mut s, "decay_steps"), s.float("alpha", Some(0.0), 0.0, 1.0, false));
            let warmup_target = opt_positive(&mut s, "warmup_target", true);
            // Keras warms up (and decays from warmup_target) only when warmup_target is given.
            let warmup_steps = s.usize("warmup_steps", Some(0), 0) as f64;
            Schedule::CosineDecay { initial_learning_rate: lr, decay_steps, alpha, warmup_target, warmup_steps }
        }
        _ => {
            let nums = |s: &mut Args, key: &'static str| -> Vec<f64> {
                let Some(n) = s.raw(key, "list of numbers", None) else { return Vec::new() };
                match n.as_seq().map(|v| v.iter().map(Node::as_f64).collect::<Option<Vec<f64>>>()) {
                    Some(Some(v)) if !v.is_empty() => v,
                    _ => {
                        s.error(key, n, format!("must be a non-empty list of numbers, received {}", n.describe()), None);
                        Vec::new()
                    }
                }
            };
            let (boundaries, values) = (nums(&mut s, "boundaries"), nums(&mut s, "values"));
            if !boundaries.is_empty() && !values.is_empty() {
                if let Some(n) = s.node("boundaries").filter(|_| boundaries.windows(2).any(|w| w[0] >= w[1])) {
                    s.error("boundaries", n, "must be strictly increasing", None);
                }
                if let Some(n) = s.node("values").filter(|_| values.len() != boundaries.len() + 1) {
                    let what = format!("needs one more entry than `boundaries` ({}), received {}", boundaries.len(), values.len());
                    s.error("values", n, what, None);
                }
            }
            Schedule::PiecewiseConstantDecay { boundaries, values }
        }
    };
    s.finish();
    let ok = !s.has_errors();
    a.diags.append(&mut s.diags);
    ok.then_some(out)
}

/// The optimizer's scalar state, f64 values kept as exact bit patterns.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OptimizerScalars {
    pub iterations: u64,
    #[serde(with = "crate::train::callbacks::bits")]
    pub lr_scale: f64,
    #[serde(with = "crate::train::callbacks::bits")]
    pub lr_floor: f64,
    #[serde(with = "crate::train::callbacks::opt_bits")]
    pub constant_lr: Option<f64>,
}

/// Updates a fixed list of variables. State tensors are plain (detached)
/// tensors, so no autograd graph survives a step.
pub struct Optimizer {
    spec: OptimizerSpec,
    vars: Vec<Var>,
    /// Per variable, in the rule's order: sgd [momentum], rmsprop [velocity,
    /// momentum?, average_grad?], adam [m, v, v_hat?], adagrad [accumulator].
    state: Vec<Vec<Tensor>>,
    iterations: u64,
    /// ReduceLROnPlateau on a schedule: multiplier and floor.
    lr_scale: f64,
    lr_floor: f64,
    /// In-place kernels where they apply; off only to test them against the ops.
    fused: bool,
}

impl Optimizer {
    pub fn new(spec: &OptimizerSpec, vars: Vec<Var>) -> Result<Optimizer> {
        let slots = match spec.rule {
            Rule::Sgd { momentum, .. } => usize::from(momentum != 0.0),
            Rule::RmsProp { momentum, centered, .. } => 1 + usize::from(momentum > 0.0) + usize::from(centered),
            Rule::Adam { amsgrad, .. } => 2 + usize::from(amsgrad),
            Rule::Adagrad { .. } => 1,
        };
        let init = match spec.rule {
            Rule::Adagrad { initial_accumulator_value, .. } => initial_accumulator_value,
            _ => 0.0,
        };
        let state = vars.iter().map(|v| (0..slots).map(|_| v.as_tensor().ones_like()?.affine(0.0, init)).collect::<Result<Vec<_>>>()).collect::<Result<_>>()?;
        Ok(Optimizer { spec: spec.clone(), vars, state, iterations: 0, lr_scale: 1.0, lr_floor: 0.0, fused: true })
    }

    pub fn spec(&self) -> &OptimizerSpec {
        &self.spec
    }

    pub fn iterations(&self) -> u64 {
        self.iterations
    }

    /// The learning rate the next step uses: schedule at `iterations`, after
    /// any `scale_learning_rate`.
    pub fn learning_rate(&self) -> f64 {
        let lr = self.spec.learning_rate.at(self.iterations);
        if self.lr_scale == 1.0 { lr } else { (lr * self.lr_scale).max(lr.min(self.lr_floor)) }
    }

    /// ReduceLROnPlateau: `lr = max(lr * factor, min_lr)`. Keras refuses this
    /// for schedules; here a schedule keeps its shape, scaled, and is held at
    /// `min_lr` (or its own value, if lower).
    pub fn scale_learning_rate(&mut self, factor: f64, min_lr: f64) {
        match &mut self.spec.learning_rate {
            Schedule::Constant(lr) => *lr = (*lr * factor).max(min_lr),
            _ => {
                self.lr_scale *= factor;
                self.lr_floor = min_lr;
            }
        }
    }

    /// Everything a resumed run needs besides the state tensors.
    pub fn scalars(&self) -> OptimizerScalars {
        let constant_lr = match self.spec.learning_rate {
            Schedule::Constant(lr) => Some(lr),
            _ => None,
        };
        OptimizerScalars { iterations: self.iterations, lr_scale: self.lr_scale, lr_floor: self.lr_floor, constant_lr }
    }

    /// The state tensors, named `optimizer.<variable index>.<slot>`.
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        self.state.iter().enumerate().flat_map(|(i, slots)| slots.iter().enumerate().map(move |(k, t)| (format!("optimizer.{i}.{k}"), t.clone()))).collect()
    }

    /// Restores what `scalars` and `state_tensors` saved; `get` looks a
    /// tensor up by name.
    pub fn restore(&mut self, s: &OptimizerScalars, mut get: impl FnMut(&str) -> Option<Tensor>) -> std::result::Result<(), String> {
        for (i, slots) in self.state.iter_mut().enumerate() {
            for (k, t) in slots.iter_mut().enumerate() {
                let name = format!("optimizer.{i}.{k}");
                let new = get(&name).ok_or_else(|| format!("the checkpoint lacks optimizer state '{name}'"))?;
                if new.dims() != t.dims() {
                    return Err(format!("optimizer state '{name}' has shape {:?}, expected {:?}", new.dims(), t.dims()));
                }
                // A copy: steps rewrite state in place, and must not reach into the caller's tensor.
                *t = new.to_dtype(t.dtype()).and_then(|n| n.copy()).map_err(|e| e.to_string())?;
            }
        }
        self.iterations = s.iterations;
        self.lr_scale = s.lr_scale;
        self.lr_floor = s.lr_floor;
        if let (Some(lr), Schedule::Constant(c)) = (s.constant_lr, &mut self.spec.learning_rate) {
            *c = lr;
        }
        Ok(())
    }

    /// One Keras step over the variables that have a gradient in `grads`.
    /// `iterations` advances even when none has.
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.step_with(grads, None)
    }

    /// `step` with the gradients the kernels wrote into `sink` besides
    /// candle's (summed where a variable has both).
    pub fn step_with(&mut self, grads: &GradStore, sink: Option<&Sink>) -> Result<()> {
        let items = self.gradients(grads, sink)?;
        self.apply(items)
    }

    /// This step's gradient of each variable that has one, as (index in
    /// `vars`, gradient): candle's and the sink's, summed where both are.
    pub fn gradients(&self, grads: &GradStore, sink: Option<&Sink>) -> Result<Vec<(usize, Tensor)>> {
        let mut items: Vec<(usize, Tensor)> = Vec::with_capacity(self.vars.len());
        for (i, v) in self.vars.iter().enumerate() {
            let g = match (grads.get(v.as_tensor()), sink.and_then(|s| s.take(v.as_tensor()))) {
                (Some(a), Some(b)) => Some((a + b)?),
                (a, b) => a.cloned().or(b),
            };
            if let Some(g) = g {
                items.push((i, g.detach()));
            }
        }
        Ok(items)
    }

    /// The variables the optimizer updates, in the order `gradients` indexes.
    pub fn vars(&self) -> &[Var] {
        &self.vars
    }

    /// One Keras step with the given gradients (from `gradients`, possibly
    /// changed since: averaged over processes).
    pub fn apply(&mut self, mut items: Vec<(usize, Tensor)>) -> Result<()> {
        self.clip(&mut items)?;
        let lr = self.learning_rate();
        let t = (self.iterations + 1) as f64;
        for (i, g) in items {
            let decay = self.spec.weight_decay.filter(|wd| *wd > 0.0).map(|wd| 1.0 - wd * lr);
            if self.fused_step(i, &g, lr, t, decay)? {
                continue;
            }
            let var = &self.vars[i];
            let mut w = var.as_tensor().detach();
            if let Some(d) = decay {
                w = (&w * d)?;
            }
            let st = &mut self.state[i];
            let new = match self.spec.rule {
                Rule::Sgd { momentum, nesterov } => {
                    if momentum == 0.0 {
                        (w - (g * lr)?)?
                    } else {
                        // m = m * momentum - g * lr
                        let m = ((&st[0] * momentum)? - (&g * lr)?)?;
                        let step = if nesterov { ((&m * momentum)? - (&g * lr)?)? } else { m.clone() };
                        st[0] = m;
                        (w + step)?
                    }
                }
                Rule::RmsProp { rho, momentum, epsilon, centered } => {
                    st[0] = ((&st[0] * rho)? + (g.sqr()? * (1.0 - rho))?)?;
                    let denom = if centered {
                        let k = st.len() - 1;
                        st[k] = ((&st[k] * rho)? + (&g * (1.0 - rho))?)?;
                        ((&st[0] - st[k].sqr()?)? + epsilon)?
                    } else {
                        (&st[0] + epsilon)?
                    };
                    let inc = ((g * lr)? / denom.sqrt()?)?;
                    if momentum > 0.0 {
                        st[1] = ((&st[1] * momentum)? + inc)?;
                        (w - &st[1])?
                    } else {
                        (w - inc)?
                    }
                }
                Rule::Adam { beta_1, beta_2, epsilon, amsgrad } => {
                    let alpha = lr * (1.0 - beta_2.powf(t)).sqrt() / (1.0 - beta_1.powf(t));
                    st[0] = (&st[0] + ((&g - &st[0])? * (1.0 - beta_1))?)?;
                    st[1] = (&st[1] + ((g.sqr()? - &st[1])? * (1.0 - beta_2))?)?;
                    let v = if amsgrad {
                        st[2] = st[2].maximum(&st[1])?;
                        &st[2]
                    } else {
                        &st[1]
                    };
                    (w - ((&st[0] * alpha)? / (v.sqrt()? + epsilon)?)?)?
                }
                Rule::Adagrad { epsilon, .. } => {
                    st[0] = (&st[0] + g.sqr()?)?;
                    (w - ((g * lr)? / (&st[0] + epsilon)?.sqrt()?)?)?
                }
            };
            var.set(&new)?;
        }
        self.iterations += 1;
        Ok(())
    }

    /// The step of variable `i` as in-place passes (`kernels::optim`), same
    /// bits as the candle ops in `step`. False where they don't apply (other
    /// devices and dtypes, centered RMSprop): then `step` runs the ops.
    fn fused_step(&mut self, i: usize, g: &Tensor, lr: f64, t: f64, decay: Option<f64>) -> Result<bool> {
        if !self.fused {
            return Ok(false);
        }
        let w = self.vars[i].as_tensor();
        let g = g.contiguous()?;
        let st = &self.state[i];
        let mut all = vec![w, &g];
        all.extend(st.iter());
        if !kernels::supported(&all) {
            return Ok(false);
        }
        match self.spec.rule {
            Rule::Sgd { momentum: 0.0, .. } => kernels::apply(Pass::Sgd { lr, decay }, w, &[&g])?,
            Rule::Sgd { momentum, nesterov } => {
                kernels::apply(Pass::Momentum { lr, momentum }, &st[0], &[&g])?;
                kernels::apply(Pass::SgdApply { lr, momentum, nesterov, decay }, w, &[&st[0], &g])?;
            }
            Rule::RmsProp { centered: true, .. } => return Ok(false),
            Rule::RmsProp { rho, momentum, epsilon: eps, centered: false } => {
                kernels::apply(Pass::Velocity { rho }, &st[0], &[&g])?;
                if momentum > 0.0 {
                    kernels::apply(Pass::ScaledMomentum { lr, eps, momentum }, &st[1], &[&g, &st[0]])?;
                    kernels::apply(Pass::Subtract { decay }, w, &[&st[1]])?;
                } else {
                    kernels::apply(Pass::ScaledStep { lr, eps, decay }, w, &[&g, &st[0]])?;
                }
            }
            Rule::Adam { beta_1, beta_2, epsilon: eps, amsgrad } => {
                let alpha = lr * (1.0 - beta_2.powf(t)).sqrt() / (1.0 - beta_1.powf(t));
                kernels::apply(Pass::Ema { c: 1.0 - beta_1 }, &st[0], &[&g])?;
                kernels::apply(Pass::EmaSq { c: 1.0 - beta_2 }, &st[1], &[&g])?;
                if amsgrad {
                    kernels::apply(Pass::Max, &st[2], &[&st[1]])?;
                }
                let v = if amsgrad { &st[2] } else { &st[1] };
                kernels::apply(Pass::AdamStep { alpha, eps, decay }, w, &[&st[0], v])?;
            }
            Rule::Adagrad { epsilon: eps, .. } => {
                kernels::apply(Pass::Accumulate, &st[0], &[&g])?;
                kernels::apply(Pass::ScaledStep { lr, eps, decay }, w, &[&g, &st[0]])?;
            }
        }
        Ok(true)
    }

    /// Keras `_clip_gradients`; norms stay on the device (no host sync).
    fn clip(&self, items: &mut [(usize, Tensor)]) -> Result<()> {
        // g * c / max(norm, c): unchanged when the norm is within c.
        let scale = |g: &Tensor, norm: &Tensor, c: f64| -> Result<Tensor> {
            let factor = (norm.maximum(c)?.recip()? * c)?;
            g.broadcast_mul(&factor)
        };
        match self.spec.clip {
            Clip::None => {}
            Clip::Norm(c) => {
                for (_, g) in items.iter_mut() {
                    *g = scale(g, &g.sqr()?.sum_all()?.sqrt()?, c)?;
                }
            }
            Clip::GlobalNorm(c) => {
                let Some(first) = items.first() else { return Ok(()) };
                let mut sq = first.1.sqr()?.sum_all()?;
                for (_, g) in &items[1..] {
                    sq = (sq + g.sqr()?.sum_all()?)?;
                }
                let norm = sq.sqrt()?;
                for (_, g) in items.iter_mut() {
                    *g = scale(g, &norm, c)?;
                }
            }
            Clip::Value(c) => {
                for (_, g) in items.iter_mut() {
                    *g = g.clamp(-c, c)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::yaml::parse as yaml;
    use candle_core::Device;

    fn spec(src: &str) -> OptimizerSpec {
        let mut d = Vec::new();
        let s = parse(&yaml(src).unwrap(), "training.optimizer", &mut d);
        assert!(d.is_empty(), "{d:?}");
        s.unwrap()
    }

    fn errors(src: &str) -> Vec<Diagnostic> {
        let mut d = Vec::new();
        assert!(parse(&yaml(src).unwrap(), "training.optimizer", &mut d).is_none());
        d
    }

    /// Runs steps with a fixed gradient `g` on a variable starting at `x0`
    /// (f64, so values can be compared tightly with the hand formulas).
    fn run(spec: &OptimizerSpec, x0: &[f64], g: &[f64], steps: usize) -> Vec<Vec<f64>> {
        let var = Var::new(x0, &Device::Cpu).unwrap();
        let mut opt = Optimizer::new(spec, vec![var.clone()]).unwrap();
        let grad = Tensor::new(g, &Device::Cpu).unwrap();
        (0..steps)
            .map(|_| {
                let mut store = GradStore::default();
                store.insert(var.as_tensor(), grad.clone());
                opt.step(&store).unwrap();
                var.as_tensor().to_vec1::<f64>().unwrap()
            })
            .collect()
    }

    fn assert_close(got: &[Vec<f64>], want: &[Vec<f64>]) {
        for (a, b) in got.iter().flatten().zip(want.iter().flatten()) {
            assert!((a - b).abs() < 1e-12, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn defaults_are_keras() {
        let s = spec("adam");
        assert_eq!(s.learning_rate, Schedule::Constant(0.001));
        assert_eq!(s.rule, Rule::Adam { beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7, amsgrad: false });
        assert_eq!((s.weight_decay, s.clip), (None, Clip::None));
        assert_eq!(spec("SGD").learning_rate, Schedule::Constant(0.01));
        assert_eq!(spec("{type: adamw}").weight_decay, Some(0.004));
        assert_eq!(spec("RMSprop").rule, Rule::RmsProp { rho: 0.9, momentum: 0.0, epsilon: 1e-7, centered: false });
        assert_eq!(spec("adagrad").rule, Rule::Adagrad { initial_accumulator_value: 0.1, epsilon: 1e-7 });
        assert_eq!(OptimizerSpec::default().name, "rmsprop");
        let docs = reference_docs();
        assert_eq!(docs.len(), 5);
        assert!(docs[2].1.iter().any(|d| d.name == "beta_1" && d.default.as_deref() == Some("0.9")));
    }

    #[test]
    fn sgd_updates() {
        let (x, g) = (1.0, 0.5);
        let s = spec("{type: sgd, learning_rate: 0.1}");
        assert_close(&run(&s, &[x], &[g], 2), &[vec![x - 0.05], vec![x - 0.1]]);
        // momentum 0.9: m1 = -0.05, x1 = 0.95; m2 = -0.095, x2 = 0.855.
        let s = spec("{type: sgd, learning_rate: 0.1, momentum: 0.9}");
        assert_close(&run(&s, &[x], &[g], 2), &[vec![0.95], vec![0.855]]);
        // nesterov: x += m * 0.9 - g * lr: x1 = 1 - 0.045 - 0.05, x2 = x1 - 0.0855 - 0.05.
        let s = spec("{type: sgd, learning_rate: 0.1, momentum: 0.9, nesterov: true}");
        assert_close(&run(&s, &[x], &[g], 2), &[vec![0.905], vec![0.905 - 0.1355]]);
    }

    #[test]
    fn rmsprop_updates() {
        let (lr, g, eps) = (0.01, 2.0f64, 1e-7);
        let s = spec("{type: rmsprop, learning_rate: 0.01}");
        let v1 = 0.1 * g * g;
        let v2 = 0.9 * v1 + 0.1 * g * g;
        let x1 = 1.0 - lr * g / (v1 + eps).sqrt();
        let x2 = x1 - lr * g / (v2 + eps).sqrt();
        assert_close(&run(&s, &[1.0], &[g], 2), &[vec![x1], vec![x2]]);
        // Keras's own docstring example: lr 0.1, var 10, grad = var: 9.683772.
        let s = spec("{type: rmsprop, learning_rate: 0.1}");
        assert!((run(&s, &[10.0], &[10.0], 1)[0][0] - 9.683772).abs() < 1e-6);
        // centered + momentum.
        let s = spec("{type: rmsprop, learning_rate: 0.01, momentum: 0.5, centered: true}");
        let (a1, a2) = (0.1 * g, 0.9 * 0.1 * g + 0.1 * g);
        let i1 = lr * g / (v1 - a1 * a1 + eps).sqrt();
        let m2 = 0.5 * i1 + lr * g / (v2 - a2 * a2 + eps).sqrt();
        assert_close(&run(&s, &[1.0], &[g], 2), &[vec![1.0 - i1], vec![1.0 - i1 - m2]]);
    }

    #[test]
    fn adam_and_adamw_updates() {
        let (lr, g, b1, b2, eps) = (0.01, 0.5f64, 0.9f64, 0.999f64, 1e-7);
        let mut x = 1.0;
        let (mut m, mut v) = (0.0, 0.0);
        let mut want = Vec::new();
        for t in 1..=3 {
            let alpha = lr * (1.0 - b2.powi(t)).sqrt() / (1.0 - b1.powi(t));
            m += (g - m) * (1.0 - b1);
            v += (g * g - v) * (1.0 - b2);
            x -= alpha * m / (v.sqrt() + eps);
            want.push(vec![x]);
        }
        assert_close(&run(&spec("{type: adam, learning_rate: 0.01}"), &[1.0], &[g], 3), &want);

        // AdamW: decay first (x -= x * wd * lr), then the Adam step.
        let mut x = 1.0;
        let (mut m, mut v) = (0.0, 0.0);
        let mut want = Vec::new();
        for t in 1..=2 {
            x -= x * 0.004 * lr;
            let alpha = lr * (1.0 - b2.powi(t)).sqrt() / (1.0 - b1.powi(t));
            m += (g - m) * (1.0 - b1);
            v += (g * g - v) * (1.0 - b2);
            x -= alpha * m / (v.sqrt() + eps);
            want.push(vec![x]);
        }
        assert_close(&run(&spec("{type: adamw, learning_rate: 0.01}"), &[1.0], &[g], 2), &want);
    }

    #[test]
    fn adagrad_updates() {
        let (lr, g, eps) = (0.1, 0.5f64, 1e-7);
        let a1 = 0.1 + g * g;
        let a2 = a1 + g * g;
        let x1 = 1.0 - lr * g / (a1 + eps).sqrt();
        let x2 = x1 - lr * g / (a2 + eps).sqrt();
        assert_close(&run(&spec("{type: adagrad, learning_rate: 0.1}"), &[1.0], &[g], 2), &[vec![x1], vec![x2]]);
    }

    #[test]
    fn clipping() {
        // Gradient (3, 4) has norm 5.
        let sgd = |extra: &str| spec(&format!("{{type: sgd, learning_rate: 1.0, {extra}}}"));
        assert_close(&run(&sgd("clipnorm: 1.0"), &[0.0, 0.0], &[3.0, 4.0], 1), &[vec![-0.6, -0.8]]);
        assert_close(&run(&sgd("clipnorm: 10.0"), &[0.0, 0.0], &[3.0, 4.0], 1), &[vec![-3.0, -4.0]]);
        assert_close(&run(&sgd("global_clipnorm: 2.5"), &[0.0, 0.0], &[3.0, 4.0], 1), &[vec![-1.5, -2.0]]);
        assert_close(&run(&sgd("clipvalue: 3.5"), &[0.0, 0.0], &[3.0, 4.0], 1), &[vec![-3.0, -3.5]]);

        // Global norm spans variables; a variable without a gradient is skipped.
        let dev = &Device::Cpu;
        let (a, b, c) = (Var::new(&[0.0f64], dev).unwrap(), Var::new(&[0.0f64], dev).unwrap(), Var::new(&[7.0f64], dev).unwrap());
        let mut opt = Optimizer::new(&sgd("global_clipnorm: 1.0"), vec![a.clone(), b.clone(), c.clone()]).unwrap();
        let mut store = GradStore::default();
        store.insert(a.as_tensor(), Tensor::new(&[3.0f64], dev).unwrap());
        store.insert(b.as_tensor(), Tensor::new(&[4.0f64], dev).unwrap());
        opt.step(&store).unwrap();
        assert!((a.as_tensor().to_vec1::<f64>().unwrap()[0] + 0.6).abs() < 1e-12);
        assert!((b.as_tensor().to_vec1::<f64>().unwrap()[0] + 0.8).abs() < 1e-12);
        assert_eq!(c.as_tensor().to_vec1::<f64>().unwrap(), vec![7.0]);
        assert_eq!(opt.iterations(), 1);
    }

    #[test]
    fn schedules() {
        let lr = |src: &str| spec(&format!("{{type: sgd, learning_rate: {src}}}")).learning_rate;
        let e = lr("{type: ExponentialDecay, initial_learning_rate: 0.1, decay_steps: 10, decay_rate: 0.5}");
        assert_eq!(e.at(0), 0.1);
        assert!((e.at(5) - 0.1 * 0.5f64.sqrt()).abs() < 1e-15);
        assert!((e.at(20) - 0.025).abs() < 1e-15);
        let st = lr("{type: exponential_decay, initial_learning_rate: 0.1, decay_steps: 10, decay_rate: 0.5, staircase: true}");
        assert_eq!((st.at(9), st.at(10), st.at(25)), (0.1, 0.05, 0.025));
        let c = lr("{type: CosineDecay, initial_learning_rate: 1.0, decay_steps: 100, alpha: 0.1}");
        assert_eq!(c.at(0), 1.0);
        assert!((c.at(50) - (0.9 * 0.5 + 0.1)).abs() < 1e-12);
        assert!((c.at(100) - 0.1).abs() < 1e-12 && (c.at(1000) - 0.1).abs() < 1e-12);
        let w = lr("{type: CosineDecay, initial_learning_rate: 0.0, decay_steps: 10, warmup_target: 1.0, warmup_steps: 4}");
        assert_eq!((w.at(0), w.at(2), w.at(4)), (0.0, 0.5, 1.0));
        assert!((w.at(9) - 0.5).abs() < 1e-12 && w.at(100).abs() < 1e-12);
        let p = lr("{type: PiecewiseConstantDecay, boundaries: [10, 20], values: [1.0, 0.5, 0.1]}");
        assert_eq!((p.at(0), p.at(10), p.at(11), p.at(20), p.at(21)), (1.0, 1.0, 0.5, 0.5, 0.1));
    }

    #[test]
    fn optimizer_follows_schedule_and_plateau_scaling() {
        let s = spec("{type: sgd, learning_rate: {type: PiecewiseConstantDecay, boundaries: [0], values: [1.0, 0.5]}}");
        // Step 0 uses values[0] (iterations 0 <= 0), step 1 uses 0.5.
        assert_close(&run(&s, &[0.0], &[1.0], 2), &[vec![-1.0], vec![-1.5]]);
        let var = Var::new(&[0.0f64], &Device::Cpu).unwrap();
        let mut opt = Optimizer::new(&spec("{type: adam, learning_rate: 0.01}"), vec![var]).unwrap();
        opt.scale_learning_rate(0.1, 0.0);
        assert!((opt.learning_rate() - 0.001).abs() < 1e-15);
        opt.scale_learning_rate(0.1, 0.0005);
        assert_eq!(opt.learning_rate(), 0.0005);
        let mut opt = Optimizer::new(&s, vec![]).unwrap();
        opt.scale_learning_rate(0.5, 0.3);
        assert_eq!(opt.learning_rate(), 0.5);
        opt.step(&GradStore::default()).unwrap();
        assert_eq!(opt.learning_rate(), 0.3);
    }

    #[test]
    fn each_optimizer_minimizes_a_quadratic() {
        let target = Tensor::new(&[1.0f32, -2.0, 0.5], &Device::Cpu).unwrap();
        let cases = [
            ("{type: sgd, learning_rate: 0.1}", 100),
            ("{type: sgd, learning_rate: 0.05, momentum: 0.9, nesterov: true}", 200),
            ("{type: rmsprop, learning_rate: 0.01}", 600),
            ("{type: rmsprop, learning_rate: 0.01, momentum: 0.5, centered: true}", 600),
            ("{type: adam, learning_rate: 0.05}", 600),
            ("{type: adamw, learning_rate: 0.05, weight_decay: 0.0, amsgrad: true}", 600),
            ("{type: adagrad, learning_rate: 0.5}", 600),
            ("{type: adam, learning_rate: {type: CosineDecay, initial_learning_rate: 0.1, decay_steps: 500}, clipnorm: 1.0}", 600),
        ];
        for (src, steps) in cases {
            let x = Var::new(&[0.0f32, 0.0, 0.0], &Device::Cpu).unwrap();
            let mut opt = Optimizer::new(&spec(src), vec![x.clone()]).unwrap();
            let loss = |x: &Var| (x.as_tensor() - &target).unwrap().sqr().unwrap().sum_all().unwrap();
            for _ in 0..steps {
                opt.step(&loss(&x).backward().unwrap()).unwrap();
            }
            let l = loss(&x).to_scalar::<f32>().unwrap();
            assert!(l < 1e-3, "{src}: loss {l} after {steps} steps");
            assert_eq!(opt.iterations(), steps as u64);
        }
    }

    /// The in-place kernels give the candle ops' bits: variables and every
    /// state slot, over several steps, for each rule and option.
    #[test]
    fn fused_steps_equal_the_op_steps_bit_for_bit() {
        use crate::kernels::testing::random;
        use candle_core::DType;
        for src in [
            "{type: sgd, learning_rate: 0.1}",
            "{type: sgd, learning_rate: 0.1, weight_decay: 0.01}",
            "{type: sgd, learning_rate: 0.05, momentum: 0.9}",
            "{type: sgd, learning_rate: 0.05, momentum: 0.9, nesterov: true, weight_decay: 0.01}",
            "{type: rmsprop, learning_rate: 0.01}",
            "{type: rmsprop, learning_rate: 0.01, momentum: 0.5, weight_decay: 0.02}",
            "{type: rmsprop, learning_rate: 0.01, momentum: 0.5, centered: true}",
            "{type: adam, learning_rate: 0.01}",
            "{type: adamw, learning_rate: 0.01, amsgrad: true}",
            "{type: adagrad, learning_rate: 0.1, weight_decay: 0.01}",
            "{type: adam, learning_rate: 0.01, clipnorm: 0.5}",
        ] {
            for dt in [DType::F32, DType::F64] {
                let shapes: [&[usize]; 3] = [&[7, 5], &[5], &[1]];
                let make = |fused: bool| {
                    let vars: Vec<Var> = shapes.iter().enumerate().map(|(k, s)| Var::from_tensor(&random(s, k as u64, dt)).unwrap()).collect();
                    let mut opt = Optimizer::new(&spec(src), vars.clone()).unwrap();
                    opt.fused = fused;
                    (vars, opt)
                };
                let ((va, mut a), (vb, mut b)) = (make(true), make(false));
                for step in 0..4u64 {
                    let (mut ga, mut gb) = (GradStore::default(), GradStore::default());
                    for (k, s) in shapes.iter().enumerate() {
                        let g = random(s, 100 + 10 * step + k as u64, dt);
                        ga.insert(va[k].as_tensor(), g.clone());
                        gb.insert(vb[k].as_tensor(), g);
                    }
                    a.step(&ga).unwrap();
                    b.step(&gb).unwrap();
                }
                let bits = |t: &Tensor| t.flatten_all().unwrap().to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap();
                for (x, y) in va.iter().zip(&vb) {
                    assert_eq!(bits(x.as_tensor()), bits(y.as_tensor()), "{src} {dt:?}: variables");
                }
                for ((na, x), (_, y)) in a.state_tensors().iter().zip(&b.state_tensors()) {
                    assert_eq!(bits(x), bits(y), "{src} {dt:?}: state {na}");
                }
            }
        }
    }

    #[test]
    fn parse_errors_are_positioned() {
        let d = errors("adamm");
        assert_eq!(d[0].message, "unknown optimizer \"adamm\"");
        assert_eq!(d[0].hint.as_deref(), Some("did you mean 'adam'?"));
        assert_eq!((d[0].pos.line, d[0].pos.col, d[0].path.as_str()), (1, 1, "training.optimizer"));

        let d = errors("type: adam\nlearning_rate: 0.01\nbeta1: 0.8\n");
        assert_eq!(d[0].message, "optimizer 'adam': unknown argument `beta1`");
        assert_eq!(d[0].hint.as_deref(), Some("did you mean `beta_1`?"));
        assert_eq!((d[0].pos.line, d[0].pos.col), (3, 1));
        assert_eq!(d[0].path, "training.optimizer.beta1");

        let d = errors("type: sgd\nlearning_rate: fast\nmomentum: 2\n");
        assert_eq!(d.len(), 2);
        assert!(d[0].message.contains("`learning_rate` must be a number >= 0 or a schedule mapping, received \"fast\""), "{}", d[0].message);
        assert_eq!(d[0].pos.line, 2);
        assert!(d[1].message.contains("`momentum` must be a number in [0, 1]"), "{}", d[1].message);

        let d = errors("{type: adam, clipnorm: 1.0, clipvalue: 0.5}");
        assert!(d[0].message.contains("`clipvalue` cannot be combined with `clipnorm`"), "{}", d[0].message);
        let d = errors("{type: adam, use_ema: true}");
        assert_eq!(d.len(), 1);
        assert!(d[0].message.contains("`use_ema` is not supported"));
        let d = errors("{type: 3}");
        assert!(d[0].message.contains("must be a name"));
        assert_eq!(d[0].path, "training.optimizer.type");
        let d = errors("[adam]");
        assert!(d[0].message.contains("must be a name or a mapping"));
        let d = errors("{learning_rate: 0.1}");
        assert_eq!(d[0].message, "optimizer: missing `type`");

        let d = errors("type: sgd\nlearning_rate:\n  type: ExponentialDekay\n");
        assert!(d[0].message.contains("unknown learning-rate schedule \"ExponentialDekay\""), "{}", d[0].message);
        assert_eq!(d[0].hint.as_deref(), Some("did you mean 'ExponentialDecay'?"));
        assert_eq!((d[0].pos.line, d[0].path.as_str()), (3, "training.optimizer.learning_rate.type"));
        let d = errors("type: sgd\nlearning_rate:\n  type: ExponentialDecay\n  initial_learning_rate: 0.1\n  decay_step: 10\n  decay_rate: 0.9\n");
        let msgs: Vec<&str> = d.iter().map(|d| d.message.as_str()).collect();
        assert!(msgs.contains(&"schedule 'ExponentialDecay': missing required argument `decay_steps` (a positive integer)"), "{msgs:?}");
        let unknown = d.iter().find(|d| d.message.contains("unknown argument `decay_step`")).unwrap();
        assert_eq!(unknown.hint.as_deref(), Some("did you mean `decay_steps`?"));
        assert_eq!((unknown.pos.line, unknown.path.as_str()), (5, "training.optimizer.learning_rate.decay_step"));
        let d = errors("{type: sgd, learning_rate: {type: PiecewiseConstantDecay, boundaries: [5, 2], values: [1, 2]}}");
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d[0].message.contains("strictly increasing") && d[1].message.contains("one more entry"));
    }
}
