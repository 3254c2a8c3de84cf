//! `--set path=value` overrides on the YAML tree, and writing the tree back
//! out (the run directory keeps the spec as it was resolved).

use super::yaml::{Node, Value, parse};
use crate::diag::{Diagnostic, Pos};

/// Applies `training.optimizer.learning_rate=0.01`-style overrides. The value
/// is read as YAML (`0.01`, `adam`, `[1, 2]`); list items are addressed by
/// index (`model.layers.0.units=64`); missing mapping keys are created.
pub fn apply(root: &mut Node, sets: &[String]) -> Result<(), Diagnostic> {
    for set in sets {
        let bad = |why: &str| {
            Diagnostic::error(format!("--set {set}: {why}"), Pos::default(), "")
                .with_hint("write --set path.to.key=value, e.g. --set training.optimizer.learning_rate=0.01")
        };
        let (path, value) = set.split_once('=').ok_or_else(|| bad("expected path=value"))?;
        if path.is_empty() {
            return Err(bad("the path is empty"));
        }
        let mut value = parse(value).map_err(|d| bad(&d.message))?;
        forget_positions(&mut value);
        let mut node = &mut *root;
        let keys: Vec<&str> = path.split('.').collect();
        for (depth, key) in keys.iter().enumerate() {
            let last = depth + 1 == keys.len();
            if node.value == Value::Null {
                node.value = Value::Map(Vec::new());
            }
            node = match &mut node.value {
                Value::Map(entries) => {
                    let i = match entries.iter().position(|(k, _)| k.as_str() == Some(key)) {
                        Some(i) => i,
                        None => {
                            let k = Node::new(Value::Str(key.to_string()), Pos::default());
                            entries.push((k, Node::new(Value::Null, Pos::default())));
                            entries.len() - 1
                        }
                    };
                    &mut entries[i].1
                }
                Value::Seq(items) => {
                    let i: usize = key.parse().map_err(|_| bad(&format!("'{key}' indexes a list: use a number")))?;
                    let len = items.len();
                    items.get_mut(i).ok_or_else(|| bad(&format!("index {i} is past the end of a list of {len}")))?
                }
                _ => return Err(bad(&format!("'{}' is not a mapping or a list", keys[..depth].join(".")))),
            };
            if last {
                *node = value.clone();
            }
        }
    }
    Ok(())
}

/// Values from the command line have no place in the file.
fn forget_positions(node: &mut Node) {
    node.pos = Pos::default();
    match &mut node.value {
        Value::Seq(items) => items.iter_mut().for_each(forget_positions),
        Value::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
            forget_positions(k);
            forget_positions(v);
        }),
        _ => {}
    }
}

/// The tree as YAML: block mappings, flow lists of scalars.
pub fn to_yaml(node: &Node) -> String {
    let mut out = String::new();
    emit(node, 0, &mut out);
    out
}

fn scalar(node: &Node) -> Option<String> {
    Some(match &node.value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => format!("{f:?}"),
        Value::Str(s) => {
            let plain = !s.is_empty()
                && !s.contains([':', '#', '{', '}', '[', ']', ',', '"', '\'', '\n'])
                && !matches!(super::yaml::parse(s).map(|n| n.value), Ok(Value::Int(_) | Value::Float(_) | Value::Bool(_) | Value::Null))
                && !s.starts_with([' ', '-', '&', '*', '!', '|', '>', '%', '@']);
            if plain { s.clone() } else { format!("{s:?}") }
        }
        Value::Seq(items) if items.iter().all(|i| scalar(i).is_some() && !matches!(i.value, Value::Seq(_))) => {
            format!("[{}]", items.iter().filter_map(scalar).collect::<Vec<_>>().join(", "))
        }
        _ => return None,
    })
}

fn emit(node: &Node, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match &node.value {
        Value::Map(entries) => {
            for (k, v) in entries {
                let key = scalar(k).unwrap_or_default();
                match scalar(v) {
                    Some(s) => out.push_str(&format!("{pad}{key}: {s}\n")),
                    None => {
                        out.push_str(&format!("{pad}{key}:\n"));
                        emit(v, indent + 2, out);
                    }
                }
            }
        }
        Value::Seq(items) => {
            for item in items {
                match scalar(item) {
                    Some(s) => out.push_str(&format!("{pad}- {s}\n")),
                    None => {
                        let mut inner = String::new();
                        emit(item, indent + 2, &mut inner);
                        // "- " takes the place of the first line's indentation.
                        out.push_str(&format!("{pad}- {}", &inner[indent + 2..]));
                    }
                }
            }
        }
        _ => out.push_str(&format!("{pad}{}\n", scalar(node).unwrap_or_default())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_nested_values_and_list_items() {
        let mut root = parse("model:\n  layers:\n    - {type: Dense, units: 4}\ntraining:\n  optimizer: adam\n").unwrap();
        apply(&mut root, &["model.layers.0.units=64".into(), "training.optimizer={type: adam, learning_rate: 0.01}".into(), "training.epochs=3".into()])
            .unwrap();
        let layer = &root.get("model").unwrap().get("layers").unwrap().as_seq().unwrap()[0];
        assert_eq!(layer.get("units").unwrap().as_int(), Some(64));
        let t = root.get("training").unwrap();
        assert_eq!(t.get("optimizer").unwrap().get("learning_rate").unwrap().as_f64(), Some(0.01));
        assert_eq!(t.get("epochs").unwrap().as_int(), Some(3));
    }

    #[test]
    fn bad_overrides_say_why() {
        let mut root = parse("model:\n  layers: [1]\n").unwrap();
        assert!(apply(&mut root, &["model.layers.5=1".into()]).unwrap_err().message.contains("past the end"));
        assert!(apply(&mut root, &["novalue".into()]).unwrap_err().message.contains("path=value"));
        assert!(apply(&mut root, &["model.layers.x=1".into()]).unwrap_err().message.contains("use a number"));
    }

    #[test]
    fn yaml_round_trips() {
        let src = "name: x\nmodel:\n  input_shape: [4]\n  layers:\n    - type: Dense\n      units: 3\n      activation: \"null\"\n    - {type: Reshape, target_shape: [3, 1]}\ntraining:\n  loss: mse\n  lr: 0.001\n";
        let root = parse(src).unwrap();
        let text = to_yaml(&root);
        let again = parse(&text).unwrap();
        assert_eq!(to_yaml(&again), text);
        assert!(text.contains("target_shape: [3, 1]"), "{text}");
        assert!(text.contains("activation: \"null\""), "{text}");
    }
}
