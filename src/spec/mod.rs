//! The spec file: YAML with positions, read into the model structure.
//!
//! This stage checks structure only (which keys exist, what type they have);
//! layer arguments are read by the layers themselves and names and shapes by
//! the graph stage.

pub mod args;
pub mod columns;
pub mod data;
pub mod overrides;
pub mod training;
pub mod yaml;

use crate::diag::{Diagnostic, Pos, did_you_mean};
use std::path::Path;
use yaml::{Node, Value};

/// A spec file as loaded from disk.
#[derive(Clone, Debug)]
pub struct Source {
    /// The path as the user gave it, for messages.
    pub path: String,
    pub text: String,
}

impl Source {
    /// Reads a spec file: a regular file of at most `io::MAX_SPEC_BYTES`, as UTF-8.
    /// The error names the path.
    pub fn read(path: &Path) -> Result<Source, crate::io::ReadError> {
        let text = crate::io::read_text_bounded(path, crate::io::MAX_SPEC_BYTES, "spec")?;
        Ok(Source { path: path.display().to_string(), text })
    }

    /// The file stem, the default model name.
    pub fn stem(&self) -> String {
        Path::new(&self.path).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into())
    }
}

/// A name with the position it was written at.
#[derive(Clone, Debug, PartialEq)]
pub struct Named {
    pub name: String,
    pub pos: Pos,
}

#[derive(Clone, Debug)]
pub struct Spec {
    pub name: String,
    pub model: ModelSpec,
    pub training: Option<training::TrainingSpec>,
    pub data: Option<data::DataSpec>,
}

#[derive(Clone, Debug)]
pub struct InputSpec {
    pub name: String,
    /// Empty until resolved when the spec leaves it to the data.
    pub shape: Vec<usize>,
    pub pos: Pos,
    pub path: String,
    /// The spec writes the shape; otherwise the data's columns give it
    /// (`crate::data::resolve_inputs`).
    pub written: bool,
    /// Where the width comes from, per column, for the summary
    /// (`island: 3 + 1 oov`); empty for a written shape of numbers.
    pub origin: Vec<String>,
}

impl InputSpec {
    fn new(name: &str, shape: Vec<usize>, pos: Pos, path: String) -> InputSpec {
        let written = !shape.is_empty();
        InputSpec { name: name.to_string(), shape, pos, path, written, origin: Vec::new() }
    }

    /// Whether the shape is known (written, or resolved from the data).
    pub fn known(&self) -> bool {
        !self.shape.is_empty()
    }
}

#[derive(Clone, Debug)]
pub struct ModelSpec {
    pub inputs: Vec<InputSpec>,
    /// Written as a functional (DAG) model: `model.inputs`, layer `inputs` or `outputs`.
    pub functional: bool,
    pub layers: Vec<LayerSpec>,
    pub outputs: Option<Vec<Named>>,
    pub pos: Pos,
    /// Layers left out of `layers` because they could not be read (an error says why).
    pub dropped_layers: usize,
}

#[derive(Clone, Debug)]
pub struct LayerSpec {
    pub type_name: String,
    pub type_pos: Pos,
    pub name: Option<Named>,
    /// `None`: takes the previous layer (or the only input).
    pub inputs: Option<Vec<Named>>,
    pub trainable: bool,
    /// The whole mapping; the layer reads its arguments from it.
    pub node: Node,
    /// `model.layers[3]`
    pub path: String,
}

/// Keys of a layer mapping that the graph reads rather than the layer.
pub const LAYER_KEYS: &[&str] = &["type", "name", "inputs", "input_shape", "trainable"];
const TOP_KEYS: &[&str] = &["name", "model", "data", "training"];
const MODEL_KEYS: &[&str] = &["input_shape", "inputs", "layers", "outputs"];

/// Default name of the single input of a sequential spec.
pub const DEFAULT_INPUT: &str = "input";

/// Reads the spec structure. Returns `None` when it is too broken to go on.
pub fn parse(source: &Source, diags: &mut Vec<Diagnostic>) -> Option<Spec> {
    match yaml::parse(&source.text) {
        Ok(root) => parse_root(&root, source, diags),
        Err(d) => {
            diags.push(d);
            None
        }
    }
}

/// Like `parse`, on a tree already read (and perhaps changed by `--set`).
pub fn parse_root(root: &Node, source: &Source, diags: &mut Vec<Diagnostic>) -> Option<Spec> {
    if root.as_map().is_none() {
        diags.push(
            Diagnostic::error(format!("a spec must be a mapping with a `model` section, received {}", root.describe()), root.pos, "")
                .with_hint("start the file with `model:`; see specs/ for examples"),
        );
        return None;
    }
    unknown_keys(root, TOP_KEYS, "", "the spec", diags);
    let name = match root.get("name") {
        Some(n) => match n.as_str() {
            Some(s) => match model_name_problem(s) {
                None => s.to_string(),
                Some(why) => {
                    diags.push(
                        Diagnostic::error(format!("`name` {why}, received {}", n.describe()), n.pos, "name")
                            .with_hint("the name labels the model and its run folder (runs/<name>); to choose where a run goes, use `nnrun train --out DIR`"),
                    );
                    source.stem()
                }
            },
            _ => {
                diags.push(Diagnostic::error(format!("`name` must be a string, received {}", n.describe()), n.pos, "name"));
                source.stem()
            }
        },
        None => source.stem(),
    };
    let Some(model_node) = root.get("model") else {
        diags.push(
            Diagnostic::error("the spec has no `model` section", root.pos, "model")
                .with_hint("add `model:` with `input_shape` and `layers`; see specs/ for examples"),
        );
        return None;
    };
    let model = parse_model(model_node, diags)?;
    let training = root.get("training").and_then(|t| training::parse(t, diags));
    let data = root.get("data").and_then(|d| data::parse(d, diags));
    // An input without a shape takes its width from CSV columns.
    let from_columns = data.as_ref().is_some_and(|d| d.train.is_csv() && d.window.is_none());
    if !from_columns && let Some(inp) = model.inputs.iter().find(|i| !i.written) {
        let msg = if inp.path == "model" { "the model has no input shape".to_string() } else { format!("input '{}' has no shape", inp.name) };
        diags.push(Diagnostic::error(msg, inp.pos, inp.path.clone()).with_hint(
            "add `input_shape: [...]` to `model` or to the first layer (batch axis excluded, e.g. [784] or [28, 28, 1]); only CSV data with `target` can give it from its columns",
        ));
    }
    Some(Spec { name, model, training, data })
}

fn parse_model(node: &Node, diags: &mut Vec<Diagnostic>) -> Option<ModelSpec> {
    if node.as_map().is_none() {
        diags.push(Diagnostic::error(format!("`model` must be a mapping with `layers`, received {}", node.describe()), node.pos, "model"));
        return None;
    }
    unknown_keys(node, MODEL_KEYS, "model", "the model section", diags);

    let Some(layers_node) = node.get("layers") else {
        diags.push(
            Diagnostic::error("the model has no `layers`", node.pos, "model")
                .with_hint("add `layers:` with a list of layers, e.g. `- {type: Dense, units: 10}`"),
        );
        return None;
    };
    let Some(items) = layers_node.as_seq().filter(|s| !s.is_empty()) else {
        diags.push(Diagnostic::error(
            format!("`model.layers` must be a non-empty list of layers, received {}", layers_node.describe()),
            layers_node.pos,
            "model.layers",
        ));
        return None;
    };
    let layers: Vec<LayerSpec> = items.iter().enumerate().filter_map(|(i, item)| parse_layer(item, i, diags)).collect();

    let mut inputs = Vec::new();
    let input_shape = node.entry("input_shape");
    let named_inputs = node.entry("inputs");
    if let (Some((k, _)), Some(_)) = (input_shape, named_inputs) {
        diags.push(
            Diagnostic::error("`model.input_shape` and `model.inputs` are both given", k.pos, "model.input_shape")
                .with_hint("use `input_shape` for one input, or `inputs: {name: shape, ...}` for several"),
        );
    }
    if let Some((_, v)) = named_inputs {
        match (v.as_map(), v.as_seq()) {
            (Some(entries), _) if !entries.is_empty() => {
                for (k, shape) in entries {
                    let Some(name) = k.as_str() else {
                        diags.push(Diagnostic::error(format!("input names must be strings, received {}", k.describe()), k.pos, "model.inputs"));
                        continue;
                    };
                    let path = format!("model.inputs.{name}");
                    // `name: null`: the data's columns give the shape.
                    if shape.value == Value::Null {
                        inputs.push(InputSpec::new(name, Vec::new(), k.pos, path));
                    } else if let Some(s) = parse_shape(shape, &path, diags) {
                        inputs.push(InputSpec::new(name, s, k.pos, path));
                    }
                }
            }
            // `inputs: [text, meta]`: names only, shapes from the data.
            (_, Some(items)) if !items.is_empty() && items.iter().all(|i| i.as_str().is_some_and(|s| !s.is_empty())) => {
                for (i, item) in items.iter().enumerate() {
                    inputs.push(InputSpec::new(item.as_str().unwrap_or_default(), Vec::new(), item.pos, format!("model.inputs[{i}]")));
                }
            }
            _ => diags.push(
                Diagnostic::error(format!("`model.inputs` must map input names to shapes, received {}", v.describe()), v.pos, "model.inputs")
                    .with_hint("for example `inputs: {image: [28, 28, 1], meta: [4]}`, or `inputs: [text, meta]` when the data's columns give the shapes"),
            ),
        }
    }
    if let Some((k, v)) = input_shape
        && let Some(s) = parse_shape(v, "model.input_shape", diags)
    {
        inputs.push(InputSpec::new(DEFAULT_INPUT, s, k.pos, "model.input_shape".into()));
    }
    // Keras style: `input_shape` on the first layer.
    for (i, item) in items.iter().enumerate() {
        let Some((k, v)) = item.entry("input_shape") else { continue };
        let path = format!("model.layers[{i}].input_shape");
        if i > 0 {
            diags.push(
                Diagnostic::error("`input_shape` is only allowed on the first layer", k.pos, path)
                    .with_hint("remove it: each later layer's input shape is inferred from the layer before"),
            );
        } else if input_shape.is_some() || named_inputs.is_some() {
            diags.push(Diagnostic::error("the input shape is given both on the model and on the first layer", k.pos, path).with_hint("keep one of them"));
        } else if let Some(s) = parse_shape(v, &path, diags) {
            inputs.push(InputSpec::new(DEFAULT_INPUT, s, k.pos, path));
        }
    }
    if inputs.is_empty() && input_shape.is_none() && named_inputs.is_none() && items[0].get("input_shape").is_none() {
        // The data's columns may give it; `parse_root` checks that they can.
        inputs.push(InputSpec::new(DEFAULT_INPUT, Vec::new(), node.pos, "model".into()));
    }

    let outputs = node.get("outputs").and_then(|o| {
        let names = names_list(o, "model.outputs", diags);
        if names.as_ref().is_some_and(Vec::is_empty) {
            diags.push(
                Diagnostic::error("`model.outputs` is empty", o.pos, "model.outputs")
                    .with_hint("name at least one layer, or remove `outputs` to use the last layer"),
            );
        }
        names
    });
    let functional = named_inputs.is_some() || outputs.is_some() || layers.iter().any(|l| l.inputs.is_some());
    let dropped_layers = items.len() - layers.len();
    Some(ModelSpec { inputs, functional, layers, outputs, pos: node.pos, dropped_layers })
}

fn parse_layer(node: &Node, index: usize, diags: &mut Vec<Diagnostic>) -> Option<LayerSpec> {
    let path = format!("model.layers[{index}]");
    if node.as_map().is_none() {
        diags.push(
            Diagnostic::error(format!("a layer must be a mapping with a `type`, received {}", node.describe()), node.pos, path)
                .with_hint("for example `- {type: Dense, units: 10}`"),
        );
        return None;
    }
    let Some(ty) = node.get("type") else {
        diags.push(Diagnostic::error("this layer has no `type`", node.pos, path).with_hint("add `type: <Keras class name>`, e.g. `type: Dense`"));
        return None;
    };
    let Some(type_name) = ty.as_str() else {
        diags.push(Diagnostic::error(format!("`type` must be a layer class name, received {}", ty.describe()), ty.pos, format!("{path}.type")));
        return None;
    };
    let name = node.get("name").and_then(|n| match n.as_str() {
        Some(s) if valid_name(s) => Some(Named { name: s.to_string(), pos: n.pos }),
        _ => {
            diags.push(
                Diagnostic::error(
                    format!("layer names must be non-empty strings without spaces or dots, received {}", n.describe()),
                    n.pos,
                    format!("{path}.name"),
                )
                .with_hint("use letters, digits, '_' and '-', e.g. `name: dense_out`"),
            );
            None
        }
    });
    let inputs = node.get("inputs").and_then(|i| names_list(i, &format!("{path}.inputs"), diags));
    let trainable = match node.get("trainable") {
        None => true,
        Some(t) => match t.value {
            Value::Bool(b) => b,
            _ => {
                diags.push(Diagnostic::error(format!("`trainable` must be true or false, received {}", t.describe()), t.pos, format!("{path}.trainable")));
                true
            }
        },
    };
    Some(LayerSpec { type_name: type_name.to_string(), type_pos: ty.pos, name, inputs, trainable, node: node.clone(), path })
}

/// A shape without the batch axis: a list of positive integers (or one integer).
fn parse_shape(node: &Node, path: &str, diags: &mut Vec<Diagnostic>) -> Option<Vec<usize>> {
    if let Some(i) = node.as_int().filter(|&i| i > 0) {
        return Some(vec![i as usize]);
    }
    if let Some(items) = node.as_seq().filter(|s| s.len() > MAX_RANK) {
        diags.push(
            Diagnostic::error(format!("an input shape may have at most {MAX_RANK} axes, received {}", items.len()), node.pos, path)
                .with_hint("leave out the batch axis: [784] for vectors, [28, 28, 1] for images (channels last)"),
        );
        return None;
    }
    if let Some(items) = node.as_seq().filter(|s| !s.is_empty()) {
        let dims: Option<Vec<usize>> = items.iter().map(|d| d.as_int().filter(|&i| i > 0).map(|i| i as usize)).collect();
        if let Some(d) = dims {
            return Some(d);
        }
        if items.iter().any(|d| d.value == Value::Null) {
            diags.push(
                Diagnostic::error(format!("input shape {} has an unknown (null) dimension", node.describe()), node.pos, path)
                    .with_hint("nnrun needs every size up front: give the length your data has, e.g. [12, 1] for 12 time steps"),
            );
            return None;
        }
    }
    diags.push(
        Diagnostic::error(format!("an input shape must be a list of positive integers, received {}", node.describe()), node.pos, path)
            .with_hint("leave out the batch axis: [784] for vectors, [28, 28, 1] for images (channels last)"),
    );
    None
}

/// A layer reference list: a single name or a list of names.
fn names_list(node: &Node, path: &str, diags: &mut Vec<Diagnostic>) -> Option<Vec<Named>> {
    let one = |n: &Node| n.as_str().map(|s| Named { name: s.to_string(), pos: n.pos });
    let names = match &node.value {
        Value::Str(_) => one(node).map(|n| vec![n]),
        Value::Seq(items) => items.iter().map(one).collect(),
        _ => None,
    };
    if names.is_none() {
        diags.push(Diagnostic::error(format!("expected a layer name or a list of names, received {}", node.describe()), node.pos, path));
    }
    names
}

/// The most axes a tensor may have, batch excluded. nnrun's layers use at
/// most 4; the limit keeps shapes (and messages quoting them) short.
pub const MAX_RANK: usize = 32;

/// The longest model name: a file name's limit on common file systems.
pub const MAX_NAME_BYTES: usize = 255;

/// Why `s` can't be a model name, if it can't. `train` makes `runs/<name>`,
/// so the name must be one path component that stays inside `runs/`.
pub fn model_name_problem(s: &str) -> Option<&'static str> {
    if s.is_empty() {
        Some("must not be empty")
    } else if s == "." || s == ".." {
        Some("must be a name, not `.` or `..`")
    } else if s.contains(['/', '\\']) {
        Some("must be a name, not a path (no `/` or `\\`)")
    } else if s.chars().any(char::is_control) {
        Some("must not contain control characters")
    } else if s.len() > MAX_NAME_BYTES {
        Some("must be at most 255 bytes long")
    } else {
        None
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && !s.contains(|c: char| c.is_whitespace() || c == '.' || c == '/')
}

/// Reports keys of a mapping outside `allowed`, with a did-you-mean.
pub fn unknown_keys(node: &Node, allowed: &[&str], path: &str, what: &str, diags: &mut Vec<Diagnostic>) {
    for (k, _) in node.as_map().unwrap_or(&[]) {
        let key = k.as_str().unwrap_or("");
        if allowed.contains(&key) {
            continue;
        }
        let hint = match did_you_mean(key, allowed.iter().copied()) {
            Some(m) => format!("did you mean `{m}`?"),
            None => format!("valid keys: {}", allowed.join(", ")),
        };
        let key = yaml::shown(key);
        let p = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
        diags.push(Diagnostic::error(format!("unknown key `{key}` in {what}"), k.pos, p).with_hint(hint));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> (Option<Spec>, Vec<Diagnostic>) {
        let mut d = Vec::new();
        let s = parse(&Source { path: "specs/t.yaml".into(), text: text.into() }, &mut d);
        (s, d)
    }

    #[test]
    fn sequential_with_input_shape_on_first_layer() {
        let (s, d) = parse_str("model:\n  layers:\n    - {type: Dense, units: 4, input_shape: [3]}\n");
        assert!(d.is_empty(), "{d:?}");
        let s = s.unwrap();
        assert_eq!(s.name, "t");
        assert_eq!(s.model.inputs[0].shape, vec![3]);
        assert!(!s.model.functional);
    }

    #[test]
    fn functional_form() {
        let (s, d) = parse_str("model:\n  inputs: {a: [4], b: [2, 2]}\n  layers:\n    - {type: Dense, units: 4, inputs: a}\n  outputs: [dense]\n");
        assert!(d.is_empty(), "{d:?}");
        let m = s.unwrap().model;
        assert!(m.functional);
        assert_eq!(m.inputs.len(), 2);
        assert_eq!(m.outputs.unwrap()[0].name, "dense");
    }

    #[test]
    fn the_model_name_is_a_name_not_a_path() {
        for (name, why) in [
            ("../../x", "must be a name, not a path (no `/` or `\\`)"),
            ("/abs/path", "must be a name, not a path (no `/` or `\\`)"),
            ("a\\\\b", "must be a name, not a path (no `/` or `\\`)"),
            ("..", "must be a name, not `.` or `..`"),
            (".", "must be a name, not `.` or `..`"),
            ("", "must not be empty"),
            ("a\\0b", "must not contain control characters"),
            ("tab\\there", "must not contain control characters"),
        ] {
            let (s, d) = parse_str(&format!("name: \"{name}\"\nmodel:\n  input_shape: [3]\n  layers:\n    - {{type: Dense, units: 4}}\n"));
            assert_eq!(d.len(), 1, "{name}: {d:?}");
            assert!(d[0].message.starts_with(&format!("`name` {why}, received ")), "{name}: {}", d[0].message);
            assert_eq!((d[0].pos.line, d[0].pos.col), (1, 7));
            assert!(d[0].hint.as_deref().unwrap().contains("--out"));
            assert_eq!(s.unwrap().name, "t", "the file stem stands in");
        }
        let long = "x".repeat(256);
        let (_, d) = parse_str(&format!("name: {long}\nmodel:\n  input_shape: [3]\n  layers:\n    - {{type: Dense, units: 4}}\n"));
        assert!(d[0].message.starts_with("`name` must be at most 255 bytes long"), "{}", d[0].message);
        for ok in ["mnist-cnn_v2", "My model", "..x", "a.b", "模型"] {
            let (s, d) = parse_str(&format!("name: \"{ok}\"\nmodel:\n  input_shape: [3]\n  layers:\n    - {{type: Dense, units: 4}}\n"));
            assert!(d.is_empty(), "{ok}: {d:?}");
            assert_eq!(s.unwrap().name, ok);
        }
    }

    #[test]
    fn structural_errors() {
        let (_, d) = parse_str("modle:\n  layers: []\n");
        assert_eq!(d[0].message, "unknown key `modle` in the spec");
        assert_eq!(d[0].hint.as_deref(), Some("did you mean `model`?"));
        let (_, d) = parse_str("model:\n  input_shape: [null, 3]\n  layers:\n    - {type: Dense, units: 4}\n");
        assert!(d[0].message.contains("unknown (null) dimension"));
        let (_, d) = parse_str("model:\n  layers:\n    - {type: Dense, units: 4}\n");
        assert_eq!(d[0].message, "the model has no input shape");
        let (_, d) = parse_str("model:\n  input_shape: [3]\n  layers:\n    - {units: 4}\n");
        assert_eq!(d[0].message, "this layer has no `type`");
        assert_eq!(d[0].pos.line, 4);
    }
}
