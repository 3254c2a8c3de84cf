//! From spec to model graph: names, connections, DAG order and shapes.
//!
//! Pure: no tensors and no device. Every problem becomes a diagnostic and the
//! stage carries on, so one run reports all of them.

pub mod checks;

use crate::diag::{did_you_mean, Diagnostic, Pos};
use crate::layers::{self, fmt_shape, Layer, Shape, Weight};
use crate::spec::args::Args;
use crate::spec::{InputSpec, LayerSpec, Named, Spec, LAYER_KEYS};
use std::collections::HashMap;

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
    pub fn params(&self) -> usize {
        self.weights.iter().map(Weight::numel).sum()
    }
    pub fn trainable_params(&self) -> usize {
        self.weights.iter().filter(|w| w.trainable).map(Weight::numel).sum()
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

    pub fn total_params(&self) -> usize {
        self.layers.iter().map(LayerNode::params).sum()
    }

    pub fn trainable_params(&self) -> usize {
        self.layers.iter().map(LayerNode::trainable_params).sum()
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

    resolve_inputs(&mut layers, &m.inputs, diags);
    let outputs = resolve_outputs(&layers, &m.inputs, m.outputs.as_deref(), diags);
    let order = topo_order(&layers, diags);
    let mut model = Model { name: spec.name.clone(), functional: m.functional, inputs: m.inputs.clone(), layers, order, outputs };
    infer_shapes(&mut model, diags);
    check_connectivity(&model, diags);
    checks::run(&model, spec, diags);
    model
}

/// Keras-style names for unnamed layers (`dense`, `dense_1`, ...), numbered
/// within the spec and never clashing with a name the spec gives.
fn assign_names(layers: &[LayerSpec], inputs: &[InputSpec], diags: &mut Vec<Diagnostic>) -> Vec<String> {
    let mut first_seen: HashMap<&str, Pos> = inputs.iter().map(|i| (i.name.as_str(), i.pos)).collect();
    for l in layers {
        let Some(n) = &l.name else { continue };
        if let Some(prev) = first_seen.get(n.name.as_str()) {
            let what = if inputs.iter().any(|i| i.name == n.name) { "an input" } else { "another layer" };
            diags.push(
                Diagnostic::error(format!("duplicate name '{}': {what} already uses it (line {})", n.name, prev.line), n.pos, format!("{}.name", l.path))
                    .with_hint("every layer and input needs a unique name"),
            );
        } else {
            first_seen.insert(&n.name, n.pos);
        }
    }
    let taken: Vec<&str> = first_seen.keys().copied().collect();
    let mut counters: HashMap<String, usize> = HashMap::new();
    let mut auto: Vec<String> = Vec::new();
    layers
        .iter()
        .map(|l| {
            if let Some(n) = &l.name {
                return n.name.clone();
            }
            let base = layers::snake_case(&l.type_name);
            loop {
                let k = counters.entry(base.clone()).or_insert(0);
                let candidate = if *k == 0 { base.clone() } else { format!("{base}_{k}") };
                *k += 1;
                if !taken.contains(&candidate.as_str()) && !auto.contains(&candidate) {
                    auto.push(candidate.clone());
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
            Diagnostic::error(format!("layer '{name}': unknown layer type '{}'", ls.type_name), ls.type_pos, format!("{}.type", ls.path))
                .with_hint_opt(hint),
        );
        return (ls.type_name.clone(), None);
    };
    let mut args = Args::new(&ls.node, ls.path.clone(), format!("layer '{name}' ({})", t.name), LAYER_KEYS);
    let layer = (t.build)(&mut args);
    args.finish();
    let ok = !args.has_errors();
    diags.append(&mut args.diags);
    (t.name.to_string(), ok.then_some(layer))
}

fn resolve_inputs(layers: &mut [LayerNode], inputs: &[InputSpec], diags: &mut Vec<Diagnostic>) {
    let mut by_name: HashMap<String, Src> = HashMap::new();
    for (i, inp) in inputs.iter().enumerate() {
        by_name.entry(inp.name.clone()).or_insert(Src::Input(i));
    }
    for (i, l) in layers.iter().enumerate() {
        by_name.entry(l.name.clone()).or_insert(Src::Layer(i));
    }
    let all_names: Vec<String> = inputs.iter().map(|i| i.name.clone()).chain(layers.iter().map(|l| l.name.clone())).collect();
    for i in 0..layers.len() {
        let srcs = match &layers[i].spec.inputs {
            Some(refs) => refs
                .iter()
                .filter_map(|r: &Named| match by_name.get(&r.name) {
                    Some(&s) => Some(s),
                    None => {
                        let hint = did_you_mean(&r.name, all_names.iter().map(String::as_str))
                            .map(|m| format!("did you mean '{m}'?"))
                            .unwrap_or_else(|| format!("known names: {}", all_names.join(", ")));
                        diags.push(
                            Diagnostic::error(
                                format!("{}: input '{}' names no layer or model input", layers[i].display(), r.name),
                                r.pos,
                                format!("{}.inputs", layers[i].spec.path),
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
                        format!("{} has no `inputs`, and the model has {} inputs", layers[i].display(), inputs.len()),
                        layers[i].spec.type_pos,
                        layers[i].spec.path.clone(),
                    )
                    .with_hint(format!("say which one it takes, e.g. `inputs: {}`", names[0])),
                );
                vec![]
            }
        };
        layers[i].inputs = srcs;
    }
}

fn resolve_outputs(layers: &[LayerNode], inputs: &[InputSpec], outputs: Option<&[Named]>, diags: &mut Vec<Diagnostic>) -> Vec<usize> {
    let Some(outputs) = outputs else { return vec![layers.len() - 1] };
    let mut out = Vec::new();
    for o in outputs {
        if let Some(i) = layers.iter().position(|l| l.name == o.name) {
            if out.contains(&i) {
                diags.push(Diagnostic::error(format!("output '{}' is listed twice", o.name), o.pos, "model.outputs"));
            } else {
                out.push(i);
            }
            continue;
        }
        let hint = if inputs.iter().any(|i| i.name == o.name) {
            "an output must be a layer, not a model input".to_string()
        } else {
            did_you_mean(&o.name, layers.iter().map(|l| l.name.as_str()))
                .map(|m| format!("did you mean '{m}'?"))
                .unwrap_or_else(|| format!("layers: {}", layers.iter().map(|l| l.name.as_str()).collect::<Vec<_>>().join(", ")))
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
    let mut ready: Vec<usize> = (0..n).rev().filter(|&i| indeg[i] == 0).collect();
    while let Some(i) = ready.pop() {
        order.push(i);
        for &u in users[i].iter().rev() {
            indeg[u] -= 1;
            if indeg[u] == 0 {
                ready.push(u);
            }
        }
        ready.sort_unstable_by(|a, b| b.cmp(a));
    }
    if order.len() == n {
        return order;
    }
    // Walk back through unresolved inputs until a layer repeats: that is a cycle.
    let start = (0..n).find(|&i| indeg[i] > 0).unwrap_or(0);
    let mut path = vec![start];
    let mut cur = start;
    loop {
        let next = layers[cur].inputs.iter().find_map(|s| match *s {
            Src::Layer(j) if indeg[j] > 0 => Some(j),
            _ => None,
        });
        let Some(next) = next else { break };
        if let Some(at) = path.iter().position(|&p| p == next) {
            let mut cycle: Vec<&str> = path[at..].iter().rev().map(|&p| layers[p].name.as_str()).collect();
            cycle.push(&layers[next].name);
            let l = &layers[next];
            let pos = l.spec.inputs.as_ref().and_then(|v| v.first()).map_or(l.spec.type_pos, |r| r.pos);
            diags.push(
                Diagnostic::error(format!("the layers form a cycle: {}", cycle.join(" -> ")), pos, format!("{}.inputs", l.spec.path))
                    .with_hint("a model must be a DAG: make one of these layers take an earlier layer or a model input"),
            );
            break;
        }
        path.push(next);
        cur = next;
    }
    Vec::new()
}

fn infer_shapes(model: &mut Model, diags: &mut Vec<Diagnostic>) {
    for k in 0..model.order.len() {
        let i = model.order[k];
        let in_shapes: Option<Vec<Shape>> = model.layers[i].inputs.iter().map(|&s| model.src_shape(s).cloned()).collect();
        let node = &model.layers[i];
        let (Some(layer), Some(in_shapes)) = (&node.layer, in_shapes) else { continue };
        if node.inputs.is_empty() {
            continue; // reported already
        }
        let arity = layer.arity();
        if !arity.accepts(in_shapes.len()) {
            let from: Vec<String> = node.inputs.iter().map(|&s| format!("'{}'", model.src_name(s))).collect();
            let pos = node.spec.inputs.as_ref().and_then(|v| v.first()).map_or(node.spec.type_pos, |r| r.pos);
            let hint = if in_shapes.len() < 2 {
                "list the layers to combine, e.g. `inputs: [branch_a, branch_b]`".to_string()
            } else {
                "give it one input, or merge the branches first (Concatenate, Add, ...)".to_string()
            };
            diags.push(
                Diagnostic::error(
                    format!("{} takes {}, received {} (from {})", node.display(), arity.describe(), in_shapes.len(), from.join(", ")),
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
                if node.inputs.len() == 1 {
                    if let Src::Layer(j) = node.inputs[0] {
                        if !msg.contains(&format!("'{}'", model.layers[j].name)) {
                            msg.push_str(&format!(" from '{}'", model.layers[j].name));
                        }
                    }
                }
                let hint = e.hint.map(|h| h.replace("{name}", &node.name));
                diags.push(Diagnostic::error(msg, pos, path).with_hint_opt(hint));
            }
        }
    }
}

/// Model inputs nobody reads are errors; layers that reach no output are warnings.
fn check_connectivity(model: &Model, diags: &mut Vec<Diagnostic>) {
    for (i, inp) in model.inputs.iter().enumerate() {
        if !model.layers.iter().any(|l| l.inputs.contains(&Src::Input(i))) {
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
    for (i, l) in model.layers.iter().enumerate() {
        if !live[i] && !model.outputs.is_empty() {
            diags.push(
                Diagnostic::warning(format!("{} does not lead to any model output, so it is never used", l.display()), l.spec.type_pos, l.spec.path.clone())
                    .with_hint(format!("connect it to a later layer, list it in `model.outputs`, or remove it")),
            );
        }
    }
}

/// Shapes of a layer's inputs, for messages: `(batch, 4) and (batch, 5)`.
pub fn fmt_shapes(shapes: &[Shape]) -> String {
    shapes.iter().map(|s| fmt_shape(s)).collect::<Vec<_>>().join(" and ")
}

/// The one path from spec text to model graph, shared by every command.
/// Returns `None` when the spec is too broken to build a graph; the reasons
/// are in `diags` either way.
pub fn from_source(source: &crate::spec::Source, diags: &mut Vec<Diagnostic>) -> Option<(Spec, Model)> {
    let spec = crate::spec::parse(source, diags)?;
    let model = build(&spec, diags);
    Some((spec, model))
}
