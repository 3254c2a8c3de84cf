//! A YAML tree that remembers where every node came from.
//!
//! serde_yaml drops positions, and every nnrun error must point at a line and
//! column, so specs are read through yaml-rust2's event parser into `Node`s.

use crate::diag::{Diagnostic, Pos};
use std::collections::HashMap;
use yaml_rust2::Event;
use yaml_rust2::parser::{MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
}

impl Node {
    pub fn new(value: Value, pos: Pos) -> Self {
        Node { value, pos }
    }

    /// Value of `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|(_, v)| v)
    }

    /// Key and value nodes of `key` in a mapping.
    pub fn entry(&self, key: &str) -> Option<(&Node, &Node)> {
        match &self.value {
            Value::Map(m) => m.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(k, v)| (k, v)),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// Integer value; floats with no fractional part count (`3.0`).
    pub fn as_int(&self) -> Option<i64> {
        match self.value {
            Value::Int(i) => Some(i),
            Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(f as i64),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self.value {
            Value::Int(i) => Some(i as f64),
            Value::Float(f) => Some(f),
            _ => None,
        }
    }

    /// How the value reads in a message: `0`, `"ten"`, `a list`.
    pub fn describe(&self) -> String {
        match &self.value {
            Value::Null => "null".into(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => format!("{f:?}"),
            Value::Str(s) => format!("\"{s}\""),
            Value::Seq(items) if items.iter().any(|n| matches!(n.value, Value::Map(_) | Value::Seq(_))) => "a list".into(),
            Value::Seq(items) => {
                let inner: Vec<String> = items.iter().map(|n| n.describe()).collect();
                let text = format!("[{}]", inner.join(", "));
                if text.len() <= 40 { text } else { "a list".into() }
            }
            Value::Map(_) => "a mapping".into(),
        }
    }
}

/// Parses one YAML document. An empty document is `Null`.
pub fn parse(source: &str) -> Result<Node, Diagnostic> {
    let mut builder = Builder { source_lines: source.lines().collect(), ..Default::default() };
    let mut parser = Parser::new_from_str(source);
    if let Err(e) = parser.load(&mut builder, false) {
        let m = e.marker();
        let (line, col) = (m.line(), m.col() + 1);
        let hint = unclosed_bracket(source, line).map(|(c, l, k)| format!("the '{c}' at line {l}, column {k} is never closed"));
        return Err(Diagnostic::error(format!("invalid YAML: {}", e.info()), Pos::new(line, col, 1), "").with_hint_opt(hint));
    }
    if let Some(err) = builder.error {
        return Err(err);
    }
    Ok(builder.root.unwrap_or(Node::new(Value::Null, Pos::new(1, 1, 1))))
}

/// The innermost `[` or `{` still open before `line`, skipping quotes and
/// comments: the usual cause of a confusing YAML error further down.
fn unclosed_bracket(source: &str, line: usize) -> Option<(char, usize, usize)> {
    let mut open: Vec<(char, usize, usize)> = Vec::new();
    for (i, text) in source.lines().enumerate().take(line.saturating_sub(1)) {
        let mut quote: Option<char> = None;
        for (j, c) in text.chars().enumerate() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '\'' | '"') => quote = Some(c),
                (None, '#') => break,
                (None, '[' | '{') => open.push((c, i + 1, j + 1)),
                (None, ']' | '}') => {
                    open.pop();
                }
                _ => {}
            }
        }
    }
    open.pop()
}

enum Open {
    Seq(Vec<Node>, Pos, usize),
    Map(Vec<(Node, Node)>, Option<Node>, Pos, usize),
}

#[derive(Default)]
struct Builder<'a> {
    source_lines: Vec<&'a str>,
    stack: Vec<Open>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
    error: Option<Diagnostic>,
}

impl Builder<'_> {
    fn pos(&self, mark: &Marker, style: Option<TScalarStyle>, text: &str) -> Pos {
        let (line, col) = (mark.line(), mark.col() + 1);
        let len = match style {
            Some(TScalarStyle::Plain) if !text.contains('\n') => text.chars().count(),
            Some(TScalarStyle::SingleQuoted | TScalarStyle::DoubleQuoted) if !text.contains('\n') => text.chars().count() + 2,
            _ => {
                // A collection or block scalar: underline to the end of the line.
                let rest = self.source_lines.get(line.wrapping_sub(1)).map_or(0, |l| l.chars().count().saturating_sub(col - 1));
                rest.max(1)
            }
        };
        Pos::new(line, col, len)
    }

    fn char_at(&self, pos: Pos) -> Option<char> {
        self.source_lines.get(pos.line.wrapping_sub(1))?.chars().nth(pos.col - 1)
    }

    fn push(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Open::Seq(items, _, _)) => items.push(node),
            Some(Open::Map(entries, key, _, _)) => match key.take() {
                None => *key = Some(node),
                Some(k) => {
                    let dup = k.as_str().is_some() && entries.iter().any(|(e, _)| e.value == k.value);
                    if dup && self.error.is_none() {
                        self.error = Some(
                            Diagnostic::error(format!("duplicate key {} in a mapping", k.describe()), k.pos, "")
                                .with_hint("each key may appear once; remove or rename one of them"),
                        );
                    }
                    entries.push((k, node));
                }
            },
        }
    }
}

impl MarkedEventReceiver for Builder<'_> {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(text, style, anchor, _tag) => {
                let pos = self.pos(&mark, Some(style), &text);
                let value = if style == TScalarStyle::Plain { resolve_plain(&text) } else { Value::Str(text) };
                self.push(Node::new(value, pos), anchor);
            }
            Event::SequenceStart(anchor, _) => {
                let pos = self.pos(&mark, None, "");
                self.stack.push(Open::Seq(Vec::new(), pos, anchor));
            }
            Event::MappingStart(anchor, _) => {
                let pos = self.pos(&mark, None, "");
                self.stack.push(Open::Map(Vec::new(), None, pos, anchor));
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Open::Seq(items, pos, a)) => (Node::new(Value::Seq(items), pos), a),
                    Some(Open::Map(entries, _, pos, a)) => {
                        // A block mapping's event mark sits after its first key;
                        // point at the key instead (flow mappings keep their `{`).
                        let flow = self.char_at(pos) == Some('{');
                        let pos = match entries.first() {
                            Some((k, _)) if !flow => Pos::new(k.pos.line, k.pos.col, k.pos.len),
                            _ => pos,
                        };
                        (Node::new(Value::Map(entries), pos), a)
                    }
                    None => return,
                };
                self.push(node, anchor);
            }
            Event::Alias(id) => {
                let node = self.anchors.get(&id).cloned().unwrap_or(Node::new(Value::Null, Pos::default()));
                self.push(node, 0);
            }
            _ => {}
        }
    }
}

/// YAML 1.2 core schema for plain scalars.
fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" => return Value::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    if let Ok(i) = text.parse::<i64>() {
        return Value::Int(i);
    }
    let looks_numeric = text.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+' || c == '.');
    if looks_numeric
        && !text.contains(['_', 'x', 'o'])
        && let Ok(f) = text.parse::<f64>()
        && f.is_finite()
    {
        return Value::Float(f);
    }
    Value::Str(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_positions_of_scalars() {
        let src = "model:\n  layers:\n    - type: Dense\n      units: 10\n";
        let root = parse(src).unwrap();
        let layer = &root.get("model").unwrap().get("layers").unwrap().as_seq().unwrap()[0];
        let units = layer.get("units").unwrap();
        assert_eq!(units.as_int(), Some(10));
        assert_eq!((units.pos.line, units.pos.col, units.pos.len), (4, 14, 2));
        let ty = layer.get("type").unwrap();
        assert_eq!((ty.pos.line, ty.pos.col, ty.pos.len), (3, 13, 5));
    }

    #[test]
    fn resolves_scalar_types() {
        let root = parse("a: 1\nb: 1.5e-3\nc: yes\nd: '3'\ne: null\nf: true\ng: [1, 2]").unwrap();
        assert_eq!(root.get("a").unwrap().value, Value::Int(1));
        assert_eq!(root.get("b").unwrap().value, Value::Float(1.5e-3));
        assert_eq!(root.get("c").unwrap().value, Value::Str("yes".into()));
        assert_eq!(root.get("d").unwrap().value, Value::Str("3".into()));
        assert_eq!(root.get("e").unwrap().value, Value::Null);
        assert_eq!(root.get("f").unwrap().value, Value::Bool(true));
        assert_eq!(root.get("g").unwrap().as_seq().unwrap().len(), 2);
    }

    #[test]
    fn flow_mapping_positions() {
        let root = parse("layers:\n  - {type: Dense, units: 4}\n").unwrap();
        let l = &root.get("layers").unwrap().as_seq().unwrap()[0];
        let u = l.get("units").unwrap();
        assert_eq!((u.pos.line, u.pos.col), (2, 26));
    }

    #[test]
    fn syntax_error_has_position() {
        let err = parse("model:\n  layers: [1, 2\n").unwrap_err();
        assert!(err.message.starts_with("invalid YAML"), "{}", err.message);
        assert!(err.pos.line >= 2);
        assert_eq!(err.hint.as_deref(), Some("the '[' at line 2, column 11 is never closed"));
    }

    #[test]
    fn block_mappings_point_at_their_first_key() {
        let root = parse("model:\n  layers:\n    - type: Dense\n      units: 3\n").unwrap();
        let l = &root.get("model").unwrap().get("layers").unwrap().as_seq().unwrap()[0];
        assert_eq!((l.pos.line, l.pos.col), (3, 7));
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let err = parse("a: 1\na: 2\n").unwrap_err();
        assert_eq!(err.pos.line, 2);
        assert!(err.message.contains("duplicate key"));
    }

    #[test]
    fn aliases_copy_the_anchor() {
        let root = parse("a: &x [1, 2]\nb: *x\n").unwrap();
        assert_eq!(root.get("b").unwrap().as_seq().unwrap().len(), 2);
    }
}
