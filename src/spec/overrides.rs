//! `--set path=value` overrides on the YAML tree, and writing the tree back
//! out (the run directory keeps the spec as it was resolved).

use super::yaml::{MAX_DEPTH, Node, Value, parse};
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
        // The tree stays within the parser's depth limit, so nothing that
        // recurses over it (to_yaml, clone, drop) can overflow the stack.
        if keys.len() + height(&value) > MAX_DEPTH {
            return Err(bad(&format!("it nests the value more than {MAX_DEPTH} levels deep, the limit for a spec")));
        }
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

/// Levels of mappings and lists in `node` (0 for a scalar), without recursion.
fn height(node: &Node) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(node, 0)];
    while let Some((n, depth)) = stack.pop() {
        let children: Vec<&Node> = match &n.value {
            Value::Seq(items) => items.iter().collect(),
            Value::Map(entries) => entries.iter().flat_map(|(k, v)| [k, v]).collect(),
            _ => continue,
        };
        deepest = deepest.max(depth + 1);
        stack.extend(children.into_iter().map(|c| (c, depth + 1)));
    }
    deepest
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
            if plain { s.clone() } else { quoted(s) }
        }
        // Empty collections in flow style: block style would write nothing.
        Value::Map(entries) if entries.is_empty() => "{}".into(),
        Value::Seq(items) if items.iter().all(|i| scalar(i).is_some() && !matches!(i.value, Value::Seq(_))) => {
            format!("[{}]", items.iter().filter_map(scalar).collect::<Vec<_>>().join(", "))
        }
        _ => return None,
    })
}

/// A YAML double-quoted scalar (Rust's `{:?}` writes `\u{1b}`, which YAML reads differently).
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
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
                        out.push_str(&format!("{pad}- {}", inner.get(indent + 2..).unwrap_or_default()));
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
    fn empty_collections_and_control_characters_round_trip() {
        let root = parse("a: [{}, []]\nb: {}\nc: \"tab\\tbell\\x07quote\\\"\"\nd: [[]]\n").unwrap();
        let text = to_yaml(&root);
        let again = parse(&text).unwrap_or_else(|d| panic!("{text}: {}", d.message));
        assert_eq!(to_yaml(&again), text);
        assert_eq!(again.get("b").unwrap().as_map().map(<[_]>::len), Some(0), "{text}");
        assert_eq!(again.get("c").unwrap().as_str(), Some("tab\tbell\x07quote\""));
        assert_eq!(again.get("a").unwrap().as_seq().unwrap()[0].as_map().map(<[_]>::len), Some(0));
    }

    #[test]
    fn overrides_cannot_nest_past_the_depth_limit() {
        let mut root = parse("model: {}\n").unwrap();
        let deep = vec!["k"; MAX_DEPTH + 1].join(".");
        let e = apply(&mut root, &[format!("{deep}=1")]).unwrap_err();
        assert!(e.message.ends_with("it nests the value more than 64 levels deep, the limit for a spec"), "{}", e.message);
        let e = apply(&mut root, &[format!("a.b={}{}", "[".repeat(63), "]".repeat(63))]).unwrap_err();
        assert!(e.message.contains("more than 64 levels deep"), "{}", e.message);
        apply(&mut root, &[format!("{}=1", vec!["k"; MAX_DEPTH].join("."))]).unwrap();
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
