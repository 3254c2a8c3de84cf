//! From spec to model graph: names, connections, DAG order and shapes.
//!
//! Pure: no tensors and no device. Every problem becomes a diagnostic and the
//! stage carries on, so one run reports all of them.

pub mod checks;

use crate::diag::{Diagnostic, Pos, did_you_mean};
use crate::layers::{self, Layer, MAX_ELEMENTS, MAX_TOTAL_PARAMS, Shape, Weight, fmt_values, numel_wide, thousands};
use crate::spec::args::Args;
use crate::spec::{InputSpec, LAYER_KEYS, LayerSpec, MAX_RANK, Named, Spec};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

/// Where a layer's input comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Src {
    Input(usize),
    Layer(usize),
}

#[derive(Debug)]
pub struct LayerNode {
    pub name: String,
    pub type_name: String,
    /// `None` when the type is unknown or its arguments are invalid.
    pub layer: Option<Box<dyn Layer>>,
    pub inputs: Vec<Src>,
    /// `None` when it could not be inferred (an error was reported).
    pub output_shape: Option<Shape>,
    pub weights: Vec<Weight>,
    pub spec: LayerSpec,
}

impl LayerNode {
    /// Saturating: the graph refuses a model whose counts pass `MAX_TOTAL_PARAMS`.
    pub fn params(&self) -> usize {
        self.weights.iter().map(Weight::numel).fold(0, usize::saturating_add)
    }
    pub fn trainable_params(&self) -> usize {
        self.weights.iter().filter(|w| w.trainable).map(Weight::numel).fold(0, usize::saturating_add)
    }
    /// `layer 'dense_1' (Dense)`, as messages name a layer.
    pub fn display(&self) -> String {
        format!("layer '{}' ({})", self.name, self.type_name)
    }
}

#[derive(Debug)]
pub struct Model {
    pub name: String,
    pub functional: bool,
    pub inputs: Vec<InputSpec>,
    /// In spec order.
    pub layers: Vec<LayerNode>,
    /// Layer indices in topological order (empty if there is a cycle).
    pub order: Vec<usize>,
    /// Output layer indices.
    pub outputs: Vec<usize>,
}

impl Model {
    pub fn src_name(&self, s: Src) -> &str {
        match s {
            Src::Input(i) => &self.inputs[i].name,
            Src::Layer(l) => &self.layers[l].name,
        }
    }

    pub fn src_shape(&self, s: Src) -> Option<&Shape> {
        match s {
            Src::Input(i) => Some(&self.inputs[i].shape),
            Src::Layer(l) => self.layers[l].output_shape.as_ref(),
        }
    }

    /// Saturating, like `LayerNode::params`.
    pub fn total_params(&self) -> usize {
        self.layers.iter().map(LayerNode::params).fold(0, usize::saturating_add)
    }

    pub fn trainable_params(&self) -> usize {
        self.layers.iter().map(LayerNode::trainable_params).fold(0, usize::saturating_add)
    }
}

/// Builds the model graph. Problems go to `diags`; the model is returned
/// regardless, with `None` shapes where inference was not possible.
pub fn build(spec: &Spec, diags: &mut Vec<Diagnostic>) -> Model {
    let m = &spec.model;
    let names = assign_names(&m.layers, &m.inputs, diags);

    let mut layers: Vec<LayerNode> = m
        .layers
        .iter()
        .zip(names)
        .map(|(ls, name)| {
            let (type_name, layer) = build_layer(ls, &name, diags);
            LayerNode { name, type_name, layer, inputs: Vec::new(), output_shape: None, weights: Vec::new(), spec: ls.clone() }
        })
        .collect();

    let mut hints = HintBudget::default();
    resolve_inputs(&mut layers, &m.inputs, &mut hints, diags);
    let outputs = resolve_outputs(&layers, &m.inputs, m.outputs.as_deref(), &mut hints, diags);
    let order = topo_order(&layers, diags);
    let mut model = Model { name: spec.name.clone(), functional: m.functional, inputs: m.inputs.clone(), layers, order, outputs };
    check_input_sizes(&model.inputs, diags);
    infer_shapes(&mut model, diags);
    check_totals(&model, m.pos, diags);
    check_connectivity(&model, m.dropped_layers > 0, diags);
    checks::run(&model, spec, diags);
    model
}

/// How many names a hint lists before "... (N more)".
const HINT_NAMES: usize = 10;
/// How many misspelled references get a did-you-mean: each compares the word
/// with every name, so an unbounded number would make a huge broken spec
/// quadratic. Later ones get the list of names.
const SUGGESTIONS: usize = 100;

/// `a, b, c, ... (99,998 more)`
pub fn fmt_names<'a>(names: impl ExactSizeIterator<Item = &'a str>) -> String {
    let n = names.len();
    // Each name cut too: a hint repeats for every broken reference.
    let shown: Vec<String> = names.take(HINT_NAMES).map(crate::spec::yaml::shown).collect();
    let mut out = shown.join(", ");
    if n > shown.len() {
        out.push_str(&format!(", ... ({} more)", thousands((n - shown.len()) as u128)));
    }
    out
}

/// Suggestions given so far (see `SUGGESTIONS`).
#[derive(Default)]
struct HintBudget {
    used: usize,
}

/// Names longer than this get no did-you-mean: comparing two long strings
/// costs the product of their lengths, and typos are in short names.
const SUGGEST_LEN: usize = 100;

impl HintBudget {
    fn did_you_mean<'a>(&mut self, word: &str, names: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
        if self.used >= SUGGESTIONS || word.len() > SUGGEST_LEN {
            return None;
        }
        self.used += 1;
        did_you_mean(word, names.into_iter().filter(|n| n.len() <= SUGGEST_LEN))
    }
}

/// An input shape past `MAX_ELEMENTS` can't be fed to anything.
fn check_input_sizes(inputs: &[InputSpec], diags: &mut Vec<Diagnostic>) {
    for inp in inputs.iter().filter(|i| i.known()) {
        let n = numel_wide(&inp.shape);
        if n.is_none_or(|n| n > MAX_ELEMENTS as u128) {
            diags.push(
                Diagnostic::error(
                    format!("input '{}' of shape {} would hold, per sample, {}, {}", inp.name, layers::fmt_shape(&inp.shape), fmt_values(n), limit_text()),
                    inp.pos,
                    inp.path.clone(),
                )
                .with_hint("check the input shape: it excludes the batch axis, e.g. [28, 28, 1] for an image"),
            );
        }
    }
}

/// "more than the 274,877,906,944 values (1 TiB of float32) one tensor may hold"
fn limit_text() -> String {
    format!("more than the {} one tensor may hold", fmt_values(Some(MAX_ELEMENTS as u128)))
}

/// One layer's output and weights against `MAX_ELEMENTS`; `None` if they fit.
fn size_problem(out: &Shape, weights: &[Weight]) -> Option<String> {
    if out.len() > MAX_RANK {
        return Some(format!("its output would have {} axes, more than the {MAX_RANK} a tensor may have", out.len()));
    }
    let n = numel_wide(out);
    if n.is_none_or(|n| n > MAX_ELEMENTS as u128) {
        return Some(format!("its output {} would hold, per sample, {}, {}", layers::fmt_shape(out), fmt_values(n), limit_text()));
    }
    for w in weights {
        let n = numel_wide(&w.shape);
        if n.is_none_or(|n| n > MAX_ELEMENTS as u128) {
            let dims: Vec<String> = w.shape.iter().map(usize::to_string).collect();
            return Some(format!("its {} of shape ({}) would hold {}, {}", w.name, dims.join(", "), fmt_values(n), limit_text()));
        }
    }
    None
}

/// The whole model's weights, and one sample's outputs of all layers, against
/// the limits (each layer's are checked by `infer_shapes`, so these sums fit).
fn check_totals(model: &Model, pos: Pos, diags: &mut Vec<Diagnostic>) {
    let weights: u128 = model.layers.iter().flat_map(|l| &l.weights).map(|w| numel_wide(&w.shape).unwrap_or(u128::MAX)).fold(0, u128::saturating_add);
    if weights > MAX_TOTAL_PARAMS as u128 {
        diags.push(
            Diagnostic::error(
                format!(
                    "the model's weights would hold {} in all, more than the {} a model may have",
                    fmt_values(Some(weights)),
                    fmt_values(Some(MAX_TOTAL_PARAMS as u128))
                ),
                pos,
                "model",
            )
            .with_hint("use fewer or smaller layers (a Dense after a large Flatten is the usual culprit)"),
        );
    }
    let acts: u128 = model.layers.iter().filter_map(|l| l.output_shape.as_deref()).map(|s| numel_wide(s).unwrap_or(u128::MAX)).fold(0, u128::saturating_add);
    if acts > MAX_ELEMENTS as u128 {
        diags.push(
            Diagnostic::error(
                format!(
                    "the layers' outputs would hold {} per sample in all, more than the {} one sample's outputs may hold",
                    fmt_values(Some(acts)),
                    fmt_values(Some(MAX_ELEMENTS as u128))
                ),
                pos,
                "model",
            )
            .with_hint("use fewer or smaller layers"),
        );
    }
}

/// Keras-style names for unnamed layers (`dense`, `dense_1`, ...), numbered
/// within the spec and never clashing with a name the spec gives.
fn assign_names(layers: &[LayerSpec], inputs: &[InputSpec], diags: &mut Vec<Diagnostic>) -> Vec<String> {
    let mut first_seen: HashMap<&str, Pos> = inputs.iter().map(|i| (i.name.as_str(), i.pos)).collect();
    let input_names: HashSet<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
    for l in layers {
        let Some(n) = &l.name else { continue };
        if let Some(prev) = first_seen.get(n.name.as_str()) {
            let what = if input_names.contains(n.name.as_str()) { "an input" } else { "another layer" };
            diags.push(
                Diagnostic::error(format!("duplicate name '{}': {what} already uses it (line {})", n.name, prev.line), n.pos, format!("{}.name", l.path))
                    .with_hint("every layer and input needs a unique name"),
            );
        } else {
            first_seen.insert(&n.name, n.pos);
        }
    }
    // Sets, not lists: a 100,000-layer spec must name its layers in linear time.
    let taken: HashSet<&str> = first_seen.into_keys().collect();
    let mut counters: HashMap<String, usize> = HashMap::new();
    let mut auto: HashSet<String> = HashSet::new();
    layers
        .iter()
        .map(|l| {
            if let Some(n) = &l.name {
                return n.name.clone();
            }
            let base = layers::snake_case(&l.type_name);
            let k = counters.entry(base.clone()).or_insert(0);
            loop {
                let candidate = if *k == 0 { base.clone() } else { format!("{base}_{k}") };
                *k += 1;
                if !taken.contains(candidate.as_str()) && !auto.contains(&candidate) {
                    auto.insert(candidate.clone());
                    return candidate;
                }
            }
        })
        .collect()
}

fn build_layer(ls: &LayerSpec, name: &str, diags: &mut Vec<Diagnostic>) -> (String, Option<Box<dyn Layer>>) {
    let Some(t) = layers::lookup(&ls.type_name) else {
        let hint = if matches!(ls.type_name.as_str(), "Input" | "InputLayer") {
            Some("declare inputs with `model.input_shape` or `model.inputs: {name: shape}` instead of a layer".into())
        } else {
            did_you_mean(&ls.type_name, layers::type_names()).map(|m| format!("did you mean '{m}'?"))
        };
        let hint = hint.or_else(|| Some("see docs/spec-reference.md for the supported layers".into()));
        diags.push(
            Diagnostic::error(format!("layer '{name}': unknown layer type '{}'", ls.type_name), ls.type_pos, format!("{}.type", ls.path)).with_hint_opt(hint),
        );
        return (ls.type_name.clone(), None);
    };
    let mut args = Args::new(&ls.node, ls.path.clone(), format!("layer '{name}' ({})", t.name), LAYER_KEYS);
    args.trainable = ls.trainable;
    let layer = (t.build)(&mut args);
    args.finish();
    let ok = !args.has_errors();
    diags.append(&mut args.diags);
    (t.name.to_string(), ok.then_some(layer))
}

fn resolve_inputs(layers: &mut [LayerNode], inputs: &[InputSpec], hints: &mut HintBudget, diags: &mut Vec<Diagnostic>) {
    let mut by_name: HashMap<&str, Src> = HashMap::new();
    for (i, inp) in inputs.iter().enumerate() {
        by_name.entry(&inp.name).or_insert(Src::Input(i));
    }
    for (i, l) in layers.iter().enumerate() {
        by_name.entry(&l.name).or_insert(Src::Layer(i));
    }
    let all_names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).chain(layers.iter().map(|l| l.name.as_str())).collect();
    let mut resolved = Vec::with_capacity(layers.len());
    for (i, layer) in layers.iter().enumerate() {
        let srcs = match &layer.spec.inputs {
            Some(refs) => refs
                .iter()
                .filter_map(|r: &Named| match by_name.get(r.name.as_str()) {
                    Some(&s) => Some(s),
                    None => {
                        let hint = hints
                            .did_you_mean(&r.name, all_names.iter().copied())
                            .map(|m| format!("did you mean '{m}'?"))
                            .unwrap_or_else(|| format!("known names: {}", fmt_names(all_names.iter().copied())));
                        diags.push(
                            Diagnostic::error(
                                format!("{}: input '{}' names no layer or model input", layer.display(), r.name),
                                r.pos,
                                format!("{}.inputs", layer.spec.path),
                            )
                            .with_hint(hint),
                        );
                        None
                    }
                })
                .collect(),
            None if i > 0 => vec![Src::Layer(i - 1)],
            None if inputs.len() == 1 => vec![Src::Input(0)],
            None if inputs.is_empty() => vec![],
            None => {
                let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
                diags.push(
                    Diagnostic::error(
                        format!("{} has no `inputs`, and the model has {} inputs", layer.display(), inputs.len()),
                        layer.spec.type_pos,
                        layer.spec.path.clone(),
                    )
                    .with_hint(format!("say which one it takes, e.g. `inputs: {}`", names[0])),
                );
                vec![]
            }
        };
        resolved.push(srcs);
    }
    for (layer, srcs) in layers.iter_mut().zip(resolved) {
        layer.inputs = srcs;
    }
}

fn resolve_outputs(layers: &[LayerNode], inputs: &[InputSpec], outputs: Option<&[Named]>, hints: &mut HintBudget, diags: &mut Vec<Diagnostic>) -> Vec<usize> {
    // No layers: each one failed to parse, and said why.
    let Some(outputs) = outputs else { return layers.len().checked_sub(1).into_iter().collect() };
    let mut by_name: HashMap<&str, usize> = HashMap::new();
    for (i, l) in layers.iter().enumerate() {
        by_name.entry(&l.name).or_insert(i);
    }
    let input_names: HashSet<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
    let mut out = Vec::new();
    let mut listed = HashSet::new();
    for o in outputs {
        if let Some(&i) = by_name.get(o.name.as_str()) {
            if !listed.insert(i) {
                diags.push(Diagnostic::error(format!("output '{}' is listed twice", o.name), o.pos, "model.outputs"));
            } else {
                out.push(i);
            }
            continue;
        }
        let hint = if input_names.contains(o.name.as_str()) {
            "an output must be a layer, not a model input".to_string()
        } else {
            hints.did_you_mean(&o.name, layers.iter().map(|l| l.name.as_str())).map(|m| format!("did you mean '{m}'?")).unwrap_or_else(|| {
                let mut names: Vec<&str> = layers.iter().map(|l| l.name.as_str()).collect();
                names.dedup();
                format!("layers: {}", fmt_names(names.into_iter()))
            })
        };
        diags.push(Diagnostic::error(format!("output '{}' names no layer", o.name), o.pos, "model.outputs").with_hint(hint));
    }
    out
}

/// Kahn's algorithm in spec order; a cycle is reported with its path.
fn topo_order(layers: &[LayerNode], diags: &mut Vec<Diagnostic>) -> Vec<usize> {
    let n = layers.len();
    let mut indeg = vec![0usize; n];
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, l) in layers.iter().enumerate() {
        for s in &l.inputs {
            if let Src::Layer(j) = *s {
                indeg[i] += 1;
                users[j].push(i);
            }
        }
    }
    let mut order = Vec::with_capacity(n);
    // The earliest ready layer first (spec order), from a heap: O(n log n).
    let mut ready: BinaryHeap<Reverse<usize>> = (0..n).filter(|&i| indeg[i] == 0).map(Reverse).collect();
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for &u in &users[i] {
            indeg[u] -= 1;
            if indeg[u] == 0 {
                ready.push(Reverse(u));
            }
        }
    }
    if order.len() == n {
        return order;
    }
    // Walk back through unresolved inputs until a layer repeats: that is a cycle.
    let Some(start) = (0..n).find(|&i| indeg[i] > 0) else { return Vec::new() };
    let mut path = vec![start];
    // Where each layer sits in `path`, so a long cycle is found in linear time.
    let mut at_step: Vec<Option<usize>> = vec![None; n];
    at_step[start] = Some(0);
    let mut cur = start;
    loop {
        let next = layers[cur].inputs.iter().find_map(|s| match *s {
            Src::Layer(j) if indeg[j] > 0 => Some(j),
            _ => None,
        });
        let Some(next) = next else { break };
        if let Some(at) = at_step[next] {
            // `path` runs against the data flow (each entry takes the next one).
            let mut cycle: Vec<String> = vec![crate::spec::yaml::shown(&layers[next].name)];
            cycle.extend(path[at..].iter().rev().map(|&p| crate::spec::yaml::shown(&layers[p].name)));
            // A cycle through thousands of layers is shown by its ends.
            let len = cycle.len();
            let shown = if len > 2 * HINT_NAMES {
                let skipped = thousands((len - 2 * HINT_NAMES) as u128);
                format!("{} -> ... ({skipped} more) -> {}", cycle[..HINT_NAMES].join(" -> "), cycle[len - HINT_NAMES..].join(" -> "))
            } else {
                cycle.join(" -> ")
            };
            let l = &layers[next];
            let closing = &layers[*path.get(at + 1).unwrap_or(&next)].name;
            let refs = l.spec.inputs.as_deref().unwrap_or(&[]);
            let pos = refs.iter().find(|r| &r.name == closing).map_or(l.spec.type_pos, |r| r.pos);
            diags.push(
                Diagnostic::error(format!("the layers form a cycle: {shown}"), pos, format!("{}.inputs", l.spec.path))
                    .with_hint("a model must be a DAG: make one of these layers take an earlier layer or a model input"),
            );
            break;
        }
        at_step[next] = Some(path.len());
        path.push(next);
        cur = next;
    }
    Vec::new()
}

fn infer_shapes(model: &mut Model, diags: &mut Vec<Diagnostic>) {
    // An input past the size limit was reported; what it feeds is not inferred.
    // So is an input whose width the data could not give (reported too).
    let input_fits: Vec<bool> = model.inputs.iter().map(|i| i.known() && numel_wide(&i.shape).is_some_and(|n| n <= MAX_ELEMENTS as u128)).collect();
    for k in 0..model.order.len() {
        let i = model.order[k];
        let in_shapes: Option<Vec<Shape>> = model.layers[i]
            .inputs
            .iter()
            .map(|&s| match s {
                Src::Input(j) if !input_fits[j] => None,
                s => model.src_shape(s).cloned(),
            })
            .collect();
        let node = &model.layers[i];
        let (Some(layer), Some(in_shapes)) = (&node.layer, in_shapes) else { continue };
        if node.inputs.is_empty() {
            continue; // reported already
        }
        let arity = layer.arity();
        if !arity.accepts(in_shapes.len()) {
            let from: Vec<String> = node.inputs.iter().map(|&s| format!("'{}'", model.src_name(s))).collect();
            let from = fmt_names(from.iter().map(String::as_str));
            let pos = node.spec.inputs.as_ref().and_then(|v| v.first()).map_or(node.spec.type_pos, |r| r.pos);
            let hint = if in_shapes.len() < 2 {
                "list the layers to combine, e.g. `inputs: [branch_a, branch_b]`".to_string()
            } else {
                "give it one input, or merge the branches first (Concatenate, Add, ...)".to_string()
            };
            diags.push(
                Diagnostic::error(
                    format!("{} takes {}, received {} (from {from})", node.display(), arity.describe(), in_shapes.len()),
                    pos,
                    node.spec.path.clone(),
                )
                .with_hint(hint),
            );
            continue;
        }
        match layer.output_shape(&in_shapes) {
            Ok(out) => {
                let mut weights = layer.weights(&in_shapes);
                if let Some(why) = size_problem(&out, &weights) {
                    diags.push(
                        Diagnostic::error(format!("{}: {why}", node.display()), node.spec.type_pos, node.spec.path.clone())
                            .with_hint("use smaller sizes, or shrink the input first (pooling, strides); see \"Limits\" in docs/spec-reference.md"),
                    );
                    continue;
                }
                if !node.spec.trainable {
                    weights.iter_mut().for_each(|w| w.trainable = false);
                }
                let node = &mut model.layers[i];
                node.output_shape = Some(out);
                node.weights = weights;
            }
            Err(e) => {
                let (pos, path) = match e.arg.and_then(|a| node.spec.node.get(a).map(|n| (n.pos, a))) {
                    Some((pos, a)) => (pos, format!("{}.{a}", node.spec.path)),
                    None => (node.spec.type_pos, node.spec.path.clone()),
                };
                let mut msg = format!("{}: {}", node.display(), e.message);
                if node.inputs.len() == 1
                    && let Src::Layer(j) = node.inputs[0]
                    && !msg.contains(&format!("'{}'", model.layers[j].name))
                {
                    msg.push_str(&format!(" from '{}'", model.layers[j].name));
                }
                let hint = e.hint.map(|h| h.replace("{name}", &node.name));
                diags.push(Diagnostic::error(msg, pos, path).with_hint_opt(hint));
            }
        }
    }
}

/// Model inputs nobody reads are errors; layers that reach no output are warnings.
/// With layers left out (`dropped`), whatever they would have read looks unused:
/// only their own errors are reported.
fn check_connectivity(model: &Model, dropped: bool, diags: &mut Vec<Diagnostic>) {
    let mut read = vec![false; model.inputs.len()];
    for s in model.layers.iter().flat_map(|l| &l.inputs) {
        if let Src::Input(i) = *s {
            read[i] = true;
        }
    }
    for (i, inp) in model.inputs.iter().enumerate() {
        if !read[i] && !dropped {
            diags.push(
                Diagnostic::error(format!("input '{}' is not used by any layer", inp.name), inp.pos, inp.path.clone())
                    .with_hint(format!("connect it with `inputs: {}` on a layer, or remove it", inp.name)),
            );
        }
    }
    let mut live = vec![false; model.layers.len()];
    let mut stack: Vec<usize> = model.outputs.clone();
    while let Some(i) = stack.pop() {
        if std::mem::replace(&mut live[i], true) {
            continue;
        }
        stack.extend(model.layers[i].inputs.iter().filter_map(|s| match *s {
            Src::Layer(j) => Some(j),
            Src::Input(_) => None,
        }));
    }
    // With a dangling reference, "unused" would only repeat that error.
    let broken = dropped || model.layers.iter().any(|l| l.spec.inputs.as_ref().is_some_and(|r| r.len() != l.inputs.len()));
    for (i, l) in model.layers.iter().enumerate() {
        if !live[i] && !model.outputs.is_empty() && !broken {
            diags.push(
                Diagnostic::warning(format!("{} does not lead to any model output, so it is never used", l.display()), l.spec.type_pos, l.spec.path.clone())
                    .with_hint("connect it to a later layer, list it in `model.outputs`, or remove it".to_string()),
            );
        }
    }
}

/// The one path from spec text to model graph, shared by every command.
/// Returns `None` when the spec is too broken to build a graph; the reasons
/// are in `diags` either way.
pub fn from_source(source: &crate::spec::Source, diags: &mut Vec<Diagnostic>) -> Option<(Spec, Model)> {
    let spec = crate::spec::parse(source, diags)?;
    let model = build(&spec, diags);
    Some((spec, model))
}

/// Like `from_root`, with `resolve` filling in what the spec leaves to the
/// data (input shapes) between parsing and building.
pub fn from_root_with(
    root: &crate::spec::yaml::Node,
    source: &crate::spec::Source,
    diags: &mut Vec<Diagnostic>,
    resolve: impl FnOnce(&mut Spec, &mut Vec<Diagnostic>),
) -> Option<(Spec, Model)> {
    let mut spec = crate::spec::parse_root(root, source, diags)?;
    resolve(&mut spec, diags);
    let model = build(&spec, diags);
    Some((spec, model))
}

/// Like `from_source`, on a YAML tree already read.
pub fn from_root(root: &crate::spec::yaml::Node, source: &crate::spec::Source, diags: &mut Vec<Diagnostic>) -> Option<(Spec, Model)> {
    let spec = crate::spec::parse_root(root, source, diags)?;
    let model = build(&spec, diags);
    Some((spec, model))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Source;

    fn load(text: &str) -> (Option<Model>, Vec<Diagnostic>) {
        let mut d = Vec::new();
        let m = from_source(&Source { path: "t.yaml".into(), text: text.into() }, &mut d).map(|(_, m)| m);
        (m, d)
    }

    #[test]
    fn auto_names_skip_names_the_spec_uses() {
        let (m, d) = load(
            "model:\n  input_shape: [4]\n  layers:\n    - {type: Dense, units: 3}\n    - {type: Dense, units: 3, name: dense_1}\n    - {type: Dense, units: 2}\n",
        );
        assert!(d.is_empty(), "{d:?}");
        let names: Vec<_> = m.unwrap().layers.iter().map(|l| l.name.clone()).collect();
        assert_eq!(names, ["dense", "dense_1", "dense_2"]);
    }

    #[test]
    fn topological_order_follows_references_not_spec_order() {
        let (m, d) = load(
            "model:\n  inputs: {x: [4]}\n  layers:\n    - {name: out, type: Dense, units: 1, inputs: mid}\n    - {name: mid, type: Dense, units: 3, inputs: x}\n  outputs: out\n",
        );
        assert!(d.is_empty(), "{d:?}");
        let m = m.unwrap();
        assert_eq!(m.order, vec![1, 0]);
        assert_eq!(m.layers[0].output_shape, Some(vec![1]));
    }

    #[test]
    fn cycles_are_named_in_data_flow_order() {
        let (_, d) = load(
            "model:\n  inputs: {x: [4]}\n  layers:\n    - {name: a, type: Add, inputs: [x, c]}\n    - {name: b, type: Dense, units: 4, inputs: a}\n    - {name: c, type: Dense, units: 4, inputs: b}\n",
        );
        let cycle = d.iter().find(|d| d.message.contains("cycle")).expect("a cycle error");
        assert_eq!(cycle.message, "the layers form a cycle: a -> b -> c -> a");
        assert_eq!((cycle.pos.line, cycle.pos.col), (4, 40));
        let (_, d) = load("model:\n  inputs: {x: [4]}\n  layers:\n    - {name: a, type: Add, inputs: [x, a]}\n");
        assert!(d.iter().any(|d| d.message == "the layers form a cycle: a -> a"), "{d:?}");
    }

    #[test]
    fn first_layer_must_choose_among_several_inputs() {
        let (_, d) = load("model:\n  inputs: {x: [4], y: [4]}\n  layers:\n    - {type: Dense, units: 4}\n");
        assert_eq!(d[0].message, "layer 'dense' (Dense) has no `inputs`, and the model has 2 inputs");
        assert_eq!(d[0].hint.as_deref(), Some("say which one it takes, e.g. `inputs: x`"));
    }

    #[test]
    fn merge_without_inputs_gets_an_arity_error() {
        let (_, d) = load("model:\n  input_shape: [4]\n  layers:\n    - {type: Dense, units: 4}\n    - {type: Add}\n");
        assert_eq!(d[0].message, "layer 'add' (Add) takes at least 2 inputs, received 1 (from 'dense')");
    }

    #[test]
    fn a_layer_list_where_nothing_parses_is_an_error_not_a_panic() {
        for layers in ["[Dense]", "[{units: 3}]", "[Dense, 3, [1], {type: 7}]", "[null]"] {
            let (m, d) = load(&format!("model:\n  input_shape: [4]\n  layers: {layers}\n"));
            let m = m.expect("a model, with errors");
            assert!(m.layers.is_empty() && m.outputs.is_empty(), "{layers}");
            assert!(!d.is_empty() && d.iter().all(|d| d.is_error() && d.message.contains("layer")), "{layers}: {d:?}");
            // Only the layers' own errors: not "input 'input' is not used".
            assert!(!d.iter().any(|d| d.message.contains("not used")), "{d:?}");
        }
        // The functional form too, and outputs naming a layer that did not parse.
        let (m, d) = load("model:\n  inputs: {x: [4]}\n  layers:\n    - {name: a, units: 3, inputs: x}\n  outputs: [a]\n");
        assert!(m.unwrap().outputs.is_empty());
        assert_eq!(d[0].message, "this layer has no `type`");
        assert_eq!(d[1].message, "output 'a' names no layer");
    }

    #[test]
    fn sizes_past_the_limits_are_errors_naming_the_layer() {
        let (_, d) = load("model:\n  input_shape: [784]\n  layers:\n    - {type: Dense, units: 99999999999}\n");
        assert_eq!(
            d[0].message,
            "layer 'dense' (Dense): its kernel of shape (784, 99999999999) would hold 78,399,999,999,216 values (285.2 TiB of float32), \
             more than the 274,877,906,944 values (1 TiB of float32) one tensor may hold"
        );
        assert_eq!((d[0].pos.line, d[0].path.as_str()), (4, "model.layers[0]"));
        let (_, d) = load("model:\n  input_shape: [8, 8, 1]\n  layers:\n    - {type: ZeroPadding2D, padding: 274877906944}\n    - {type: Flatten}\n");
        assert_eq!(d.len(), 1, "what follows is not inferred: {d:?}");
        assert!(
            d[0].message.starts_with("layer 'zero_padding2d' (ZeroPadding2D): its output (batch, 549755813896, 549755813896, 1) would hold"),
            "{}",
            d[0].message
        );
        let (_, d) = load("model:\n  input_shape: [100000000, 100000000]\n  layers:\n    - {type: Flatten}\n");
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(
            d[0].message.starts_with("input 'input' of shape (batch, 100000000, 100000000) would hold, per sample, 10,000,000,000,000,000 values"),
            "{}",
            d[0].message
        );
        // Each weight fits, the sum does not.
        let wide = "    - {type: Dense, units: 131072}\n".repeat(17);
        let (m, d) = load(&format!("model:\n  input_shape: [131072]\n  layers:\n{wide}"));
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(
            d[0].message.starts_with("the model's weights would hold 292,060,004,352 values (1.1 TiB of float32) in all, more than the 274,877,906,944"),
            "{}",
            d[0].message
        );
        assert_eq!(m.unwrap().total_params(), 292_060_004_352);
    }

    #[test]
    fn ranks_are_limited() {
        let (_, d) = load(&format!("model:\n  input_shape: [{}]\n  layers:\n    - {{type: Flatten}}\n", vec!["1"; 33].join(", ")));
        assert_eq!(d[0].message, "an input shape may have at most 32 axes, received 33");
        let (_, d) = load(&format!("model:\n  input_shape: [1]\n  layers:\n    - {{type: Reshape, target_shape: [{}]}}\n", vec!["1"; 40].join(", ")));
        assert_eq!(d[0].message, "layer 'reshape' (Reshape): its output would have 40 axes, more than the 32 a tensor may have");
    }

    #[test]
    fn long_names_get_no_suggestion() {
        let long = "a".repeat(5000);
        let (_, d) = load(&format!(
            "model:\n  inputs: {{x: [2]}}\n  layers:\n    - {{name: {long}, type: Dense, units: 2, inputs: x}}\n    - {{type: Dense, units: 2, inputs: {long}b}}\n"
        ));
        assert!(d[0].message.contains("names no layer or model input"), "{}", d[0].message);
        assert!(d[0].hint.as_deref().unwrap().starts_with("known names: x, aaaa"));
    }

    #[test]
    fn long_lists_in_hints_are_cut() {
        let layers: String = (0..30).map(|i| format!("    - {{name: l{i}, type: Dense, units: 2}}\n")).collect();
        let (_, d) = load(&format!("model:\n  input_shape: [2]\n  layers:\n{layers}  outputs: [zzzzzz]\n"));
        assert_eq!(d[0].hint.as_deref(), Some("layers: l0, l1, l2, l3, l4, l5, l6, l7, l8, l9, ... (20 more)"));
    }

    #[test]
    fn deep_graphs_build_in_linear_time() {
        // 100,000 layers in a chain, unnamed and then named (both were quadratic).
        for named in [false, true] {
            let layers: String = (0..100_000)
                .map(|i| if named { format!("  - {{type: Dense, units: 2, name: d{i}}}\n") } else { "  - {type: Dense, units: 2}\n".into() })
                .collect();
            let t = std::time::Instant::now();
            let (m, d) = load(&format!("model:\n input_shape: [2]\n layers:\n{layers}"));
            assert!(d.is_empty(), "{:?}", &d[..1]);
            let m = m.unwrap();
            assert_eq!((m.order.len(), m.outputs.as_slice(), m.total_params()), (100_000, &[99_999][..], 600_000));
            assert_eq!(m.layers[99_999].name, if named { "d99999" } else { "dense_99999" });
            // Debug build: generous, but a quadratic step takes minutes.
            assert!(t.elapsed().as_secs() < 60, "{:?}", t.elapsed());
        }
        // A cycle through 100,000 layers is found and shown by its ends.
        let layers: String = (0..100_000).map(|i| format!("  - {{name: l{i}, type: Dense, units: 2, inputs: l{}}}\n", (i + 1) % 100_000)).collect();
        let (_, d) = load(&format!("model:\n inputs: {{x: [2]}}\n layers:\n{layers}"));
        let cycle = d.iter().find(|d| d.message.contains("cycle")).expect("a cycle");
        assert!(cycle.message.contains(" -> ... (99,981 more) -> "), "{}", cycle.message);
    }

    #[test]
    fn frozen_layers_count_as_non_trainable() {
        let (m, _) = load("model:\n  input_shape: [4]\n  layers:\n    - {type: Dense, units: 4, trainable: false}\n    - {type: Dense, units: 1}\n");
        let m = m.unwrap();
        assert_eq!((m.total_params(), m.trainable_params()), (25, 5));
    }
}
