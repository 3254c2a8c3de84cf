//! A YAML tree that remembers where every node came from.
//!
//! serde_yaml drops positions, and every nnrun error must point at a line and
//! column, so specs are read through yaml-rust2's event parser into `Node`s.

use crate::diag::{Diagnostic, Pos};
use std::collections::{HashMap, HashSet};
use yaml_rust2::Event;
use yaml_rust2::parser::Parser;
use yaml_rust2::scanner::{Marker, ScanError, TScalarStyle};

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
            Value::Str(s) if s.chars().count() > 60 => format!("\"{}...\" ({} characters)", escape(s.chars().take(40)), s.chars().count()),
            Value::Str(s) => format!("\"{}\"", escape(s.chars())),
            Value::Seq(items) if items.len() > 20 || items.iter().any(|n| matches!(n.value, Value::Map(_) | Value::Seq(_))) => "a list".into(),
            Value::Seq(items) => {
                let inner: Vec<String> = items.iter().map(|n| n.describe()).collect();
                let text = format!("[{}]", inner.join(", "));
                if text.len() <= 40 { text } else { "a list".into() }
            }
            Value::Map(_) => "a mapping".into(),
        }
    }
}

/// A string from the spec (a key, a name) as a message shows it: control
/// characters escaped (a newline would break the message), and a long one
/// by its start and length.
pub fn shown(s: &str) -> String {
    let n = s.chars().count();
    if n > 60 { format!("{}... ({n} characters)", escape(s.chars().take(40))) } else { escape(s.chars()) }
}

/// `\n`, `\0`, `\u{1b}` for control characters; the rest as is.
fn escape(chars: impl Iterator<Item = char>) -> String {
    chars.flat_map(|c| if c.is_control() { c.escape_debug().collect::<Vec<_>>() } else { vec![c] }).collect()
}

/// The deepest nesting of mappings and lists a spec may have. The deepest
/// spec nnrun reads needs about 6 (`model.layers[i].layer.<arg>: [..]`);
/// 64 leaves ample room while keeping every recursion over a `Node`
/// (clone, drop, comparison, `overrides::to_yaml`) a few kilobytes of stack.
/// yaml-rust2 limits flow nesting (`[[[`) to 255 but not block nesting, and
/// its `Parser::load` recurses once per level, so `parse` drives the parser
/// itself, without recursion, and stops at this depth.
pub const MAX_DEPTH: usize = 64;
/// The nodes that YAML aliases may add to a spec, in all (each alias adds a
/// copy of its anchor's node). libyaml-based parsers refuse exponential
/// "billion laughs" documents the same way.
pub const MAX_ALIAS_NODES: u64 = 1_000_000;
/// The bytes of scalar text that aliases may add to a spec, in all.
pub const MAX_ALIAS_BYTES: u64 = crate::io::MAX_SPEC_BYTES;

/// Parses one YAML document. An empty document is `Null`.
///
/// Refuses, with the position where the limit is crossed: text longer than
/// `io::MAX_SPEC_BYTES` (model files embed their spec as a string), nesting
/// deeper than `MAX_DEPTH`, and aliases that would copy more than
/// `MAX_ALIAS_NODES` nodes or `MAX_ALIAS_BYTES` bytes of text.
pub fn parse(source: &str) -> Result<Node, Diagnostic> {
    let limit = crate::io::MAX_SPEC_BYTES;
    if source.len() as u64 > limit {
        return Err(Diagnostic::error(
            format!("the spec is {} bytes long, more than the limit of {} bytes ({})", thousands(source.len() as u64), thousands(limit), mib(limit)),
            Pos::default(),
            "",
        )
        .with_hint("a spec describes a model, not its data: keep data in the files that `data` names"));
    }
    let mut builder = Builder { source_lines: source.lines().collect(), used: used_anchors(source), ..Default::default() };
    let mut parser = Parser::new_from_str(source);
    loop {
        let (ev, mark) = parser.next_token().map_err(|e| syntax_error(source, &e))?;
        match ev {
            // One document, as `Parser::load(_, false)` reads it.
            Event::StreamEnd | Event::DocumentEnd => break,
            ev => builder.on_event(ev, mark)?,
        }
    }
    Ok(builder.root.unwrap_or(Node::new(Value::Null, Pos::new(1, 1, 1))))
}

fn syntax_error(source: &str, e: &ScanError) -> Diagnostic {
    let m = e.marker();
    let (line, col) = (m.line(), m.col() + 1);
    let hint = unclosed_bracket(source, line).map(|(c, l, k)| format!("the '{c}' at line {l}, column {k} is never closed"));
    Diagnostic::error(format!("invalid YAML: {}", e.info()), Pos::new(line, col, 1), "").with_hint_opt(hint)
}

/// The anchors some alias refers to: only those need a copy kept. A quick
/// pass of the parser alone, skipped when the text has no `*` at all.
fn used_anchors(source: &str) -> HashSet<usize> {
    let mut used = HashSet::new();
    if !source.contains('*') {
        return used;
    }
    let mut parser = Parser::new_from_str(source);
    while let Ok((ev, _)) = parser.next_token() {
        match ev {
            Event::Alias(id) => {
                used.insert(id);
            }
            Event::StreamEnd | Event::DocumentEnd => break,
            _ => {}
        }
    }
    used
}

/// `1234567` -> `1,234,567`
fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes >> 20)
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

/// How much a node holds: nodes, bytes of scalar text, and nesting height
/// (0 for a scalar, 1 + the deepest child for a mapping or list).
#[derive(Clone, Copy, Debug, Default)]
struct Size {
    nodes: u64,
    bytes: u64,
    height: usize,
}

impl Size {
    fn scalar(text: &str) -> Size {
        Size { nodes: 1, bytes: text.len() as u64, height: 0 }
    }
    fn container() -> Size {
        Size { nodes: 1, bytes: 0, height: 1 }
    }
    fn add_child(&mut self, c: Size) {
        self.nodes = self.nodes.saturating_add(c.nodes);
        self.bytes = self.bytes.saturating_add(c.bytes);
        self.height = self.height.max(c.height + 1);
    }
}

enum Open {
    Seq { items: Vec<Node>, pos: Pos, anchor: usize, size: Size },
    Map { entries: Vec<(Node, Node)>, key: Option<Node>, seen: HashSet<String>, pos: Pos, anchor: usize, size: Size },
}

impl Open {
    fn size_mut(&mut self) -> &mut Size {
        match self {
            Open::Seq { size, .. } | Open::Map { size, .. } => size,
        }
    }
}

#[derive(Default)]
struct Builder<'a> {
    source_lines: Vec<&'a str>,
    stack: Vec<Open>,
    /// Anchors an alias refers to (`used_anchors`).
    used: HashSet<usize>,
    anchors: HashMap<usize, (Node, Size)>,
    /// What anchors and aliases copied so far.
    copied: Size,
    root: Option<Node>,
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
        self.source_lines.get(pos.line.wrapping_sub(1))?.chars().nth(pos.col.checked_sub(1)?)
    }

    /// The word at `pos` (an alias `*name` or anchor `&name`), for messages.
    fn word_at(&self, pos: Pos) -> String {
        let Some(line) = self.source_lines.get(pos.line.wrapping_sub(1)) else { return String::new() };
        let word: String = line.chars().skip(pos.col.saturating_sub(1)).take_while(|c| !c.is_whitespace() && !",[]{}".contains(*c)).take(40).collect();
        word
    }

    /// Counts a copy made for an anchor or an alias against the budget.
    fn charge(&mut self, size: Size, what: impl Fn() -> String, pos: Pos) -> Result<(), Diagnostic> {
        let nodes = self.copied.nodes.saturating_add(size.nodes);
        let bytes = self.copied.bytes.saturating_add(size.bytes);
        let hint = "aliases of aliases grow exponentially (a \"billion laughs\" document): write the repeated part out, or repeat less of it";
        if nodes > MAX_ALIAS_NODES {
            return Err(Diagnostic::error(
                format!(
                    "{} would copy {} nodes, past the limit of {} nodes that YAML aliases may add to a spec ({} copied before it)",
                    what(),
                    thousands(size.nodes),
                    thousands(MAX_ALIAS_NODES),
                    thousands(self.copied.nodes)
                ),
                pos,
                "",
            )
            .with_hint(hint));
        }
        if bytes > MAX_ALIAS_BYTES {
            return Err(Diagnostic::error(
                format!(
                    "{} would copy {} bytes of text, past the limit of {} bytes ({}) that YAML aliases may add to a spec ({} copied before it)",
                    what(),
                    thousands(size.bytes),
                    thousands(MAX_ALIAS_BYTES),
                    mib(MAX_ALIAS_BYTES),
                    thousands(self.copied.bytes)
                ),
                pos,
                "",
            )
            .with_hint(hint));
        }
        self.copied.nodes = nodes;
        self.copied.bytes = bytes;
        Ok(())
    }

    fn too_deep(&self, pos: Pos, why: String) -> Diagnostic {
        Diagnostic::error(format!("{why}: a spec may nest mappings and lists at most {MAX_DEPTH} deep"), pos, "")
            .with_hint("a spec needs only a few levels (model, layers, a layer, its arguments); check the indentation")
    }

    fn push(&mut self, node: Node, size: Size, anchor: usize) -> Result<(), Diagnostic> {
        if anchor > 0 && self.used.contains(&anchor) {
            let pos = node.pos;
            self.charge(size, || "keeping this anchored node for the aliases that repeat it".to_string(), pos)?;
            self.anchors.insert(anchor, (node.clone(), size));
        }
        let Some(top) = self.stack.last_mut() else {
            self.root = Some(node);
            return Ok(());
        };
        top.size_mut().add_child(size);
        match top {
            Open::Seq { items, .. } => items.push(node),
            Open::Map { entries, key, seen, .. } => match key.take() {
                None => *key = Some(node),
                Some(k) => {
                    if let Some(s) = k.as_str()
                        && !seen.insert(s.to_string())
                    {
                        return Err(Diagnostic::error(format!("duplicate key {} in a mapping", k.describe()), k.pos, "")
                            .with_hint("each key may appear once; remove or rename one of them"));
                    }
                    entries.push((k, node));
                }
            },
        }
        Ok(())
    }

    fn on_event(&mut self, ev: Event, mark: Marker) -> Result<(), Diagnostic> {
        match ev {
            Event::Scalar(text, style, anchor, _tag) => {
                let pos = self.pos(&mark, Some(style), &text);
                let size = Size::scalar(&text);
                let value = if style == TScalarStyle::Plain { resolve_plain(&text) } else { Value::Str(text) };
                self.push(Node::new(value, pos), size, anchor)?;
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                let pos = self.pos(&mark, None, "");
                if self.stack.len() >= MAX_DEPTH {
                    let pos = Pos::new(pos.line, pos.col, 1);
                    return Err(self.too_deep(pos, format!("this is nested {} levels deep", self.stack.len() + 1)));
                }
                let size = Size::container();
                self.stack.push(match ev {
                    Event::SequenceStart(..) => Open::Seq { items: Vec::new(), pos, anchor, size },
                    _ => Open::Map { entries: Vec::new(), key: None, seen: HashSet::new(), pos, anchor, size },
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, size, anchor) = match self.stack.pop() {
                    Some(Open::Seq { items, pos, anchor, size }) => (Node::new(Value::Seq(items), pos), size, anchor),
                    Some(Open::Map { entries, pos, anchor, size, .. }) => {
                        // A block mapping's event mark sits after its first key;
                        // point at the key instead (flow mappings keep their `{`).
                        let flow = self.char_at(pos) == Some('{');
                        let pos = match entries.first() {
                            Some((k, _)) if !flow => Pos::new(k.pos.line, k.pos.col, k.pos.len),
                            _ => pos,
                        };
                        (Node::new(Value::Map(entries), pos), size, anchor)
                    }
                    None => return Ok(()),
                };
                self.push(node, size, anchor)?;
            }
            Event::Alias(id) => {
                let pos = self.pos(&mark, Some(TScalarStyle::Plain), "");
                let name = self.word_at(pos);
                let pos = Pos::new(pos.line, pos.col, name.chars().count());
                let Some((node, size)) = self.anchors.get(&id).map(|(n, s)| (n.clone(), *s)) else {
                    // yaml-rust2 knows an anchor from its start: this alias sits inside it.
                    return Err(Diagnostic::error(format!("the alias {name} refers to the node that contains it"), pos, "")
                        .with_hint("an alias can only repeat a node that ends before it"));
                };
                if self.stack.len() + size.height > MAX_DEPTH {
                    return Err(self.too_deep(pos, format!("the alias {name} nests its anchor's node {} levels deep", self.stack.len() + size.height)));
                }
                self.charge(size, || format!("the alias {name}"), pos)?;
                self.push(node, size, 0)?;
            }
            _ => {}
        }
        Ok(())
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

    /// Nine anchors, each a collection of nine aliases of the one before:
    /// 9^9 nodes. `item(level, j)` writes entry `j`; `PREV` becomes the alias.
    fn bomb(item: impl Fn(usize, usize) -> String, open: &str, close: &str) -> String {
        let mut text = String::new();
        for i in 0..9 {
            let items: Vec<String> = (0..9).map(|j| item(i, j).replace("PREV", &format!("*a{}", i.saturating_sub(1)))).collect();
            text += &format!("a{i}: &a{i} {open}{}{close}\n", items.join(", "));
        }
        text
    }

    #[test]
    fn alias_bombs_stop_at_the_budget() {
        let list = bomb(|i, _| if i == 0 { "x".into() } else { "PREV".into() }, "[", "]");
        let err = parse(&list).unwrap_err();
        assert!(err.message.contains("past the limit of 1,000,000 nodes that YAML aliases may add to a spec"), "{}", err.message);
        assert!(err.pos.is_known());
        // Merge keys are plain keys here: their aliases count the same.
        let merge = bomb(|i, j| if i == 0 { format!("k{j}: x") } else { format!("<<{j}: PREV") }, "{", "}") + "m: {<<: *a8}\n";
        assert!(parse(&merge).unwrap_err().message.contains("nodes that YAML aliases may add"));
        // Tags change nothing.
        let tagged = bomb(|i, _| if i == 0 { "!!str x".into() } else { "PREV".into() }, "!!seq [", "]");
        assert!(parse(&tagged).unwrap_err().message.contains("nodes that YAML aliases may add"));
        // Long text copied by aliases counts in bytes.
        let text = format!("a: &a \"{}\"\nb: [{}]\n", "x".repeat(1 << 20), vec!["*a"; 20].join(", "));
        let err = parse(&text).unwrap_err();
        assert!(err.message.contains("bytes of text, past the limit of 16,777,216 bytes (16 MiB)"), "{}", err.message);
        // The anchor's own copy and 15 aliases fill the 16 MiB; the 16th alias is refused.
        assert_eq!((err.pos.line, err.pos.col, err.pos.len), (2, 65, 2), "{}", err.message);
        // A few aliases of a template are fine.
        let ok = "t: &t {type: Dense, units: 4}\nlayers: [*t, *t, *t]\n";
        assert_eq!(parse(ok).unwrap().get("layers").unwrap().as_seq().unwrap().len(), 3);
        // An anchor no alias uses costs nothing, however large.
        let big = format!("model: &m [{}]\n", vec!["1"; 1_100_000].join(","));
        assert_eq!(parse(&big).unwrap().get("model").unwrap().as_seq().unwrap().len(), 1_100_000);
    }

    #[test]
    fn nesting_is_limited_without_recursion() {
        let ok = format!("a: {}1{}", "[".repeat(MAX_DEPTH - 1), "]".repeat(MAX_DEPTH - 1));
        assert!(parse(&ok).is_ok());
        let flow = format!("a: {}1{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        let err = parse(&flow).unwrap_err();
        assert_eq!(err.message, "this is nested 65 levels deep: a spec may nest mappings and lists at most 64 deep");
        assert_eq!((err.pos.line, err.pos.col), (1, 4 + MAX_DEPTH - 1));
        // Block nesting, which yaml-rust2's own loader would follow recursively.
        let block = format!("a:\n  {}x\n", "- ".repeat(200_000));
        assert!(parse(&block).unwrap_err().message.starts_with("this is nested 65 levels deep"));
        // An alias counts the depth of what it repeats.
        let deep = format!("a: &a {}1{}\nb: [[*a]]\n", "[".repeat(62), "]".repeat(62));
        assert_eq!(
            parse(&deep).unwrap_err().message,
            "the alias *a nests its anchor's node 65 levels deep: a spec may nest mappings and lists at most 64 deep"
        );
    }

    #[test]
    fn recursive_aliases_and_oversized_text_are_errors() {
        let err = parse("a: &a [1, *a]\n").unwrap_err();
        assert_eq!(err.message, "the alias *a refers to the node that contains it");
        assert_eq!((err.pos.line, err.pos.col, err.pos.len), (1, 11, 2));
        let text = "#".repeat(crate::io::MAX_SPEC_BYTES as usize + 1);
        let err = parse(&text).unwrap_err();
        assert_eq!(err.message, "the spec is 16,777,217 bytes long, more than the limit of 16,777,216 bytes (16 MiB)");
    }

    #[test]
    fn long_values_are_described_briefly() {
        let root = parse(&format!("a: {}\nb: [{}]\n", "x".repeat(100), vec!["1"; 1000].join(", "))).unwrap();
        assert_eq!(root.get("a").unwrap().describe(), format!("\"{}...\" (100 characters)", "x".repeat(40)));
        assert_eq!(root.get("b").unwrap().describe(), "a list");
    }

    #[test]
    fn aliases_copy_the_anchor() {
        let root = parse("a: &x [1, 2]\nb: *x\n").unwrap();
        assert_eq!(root.get("b").unwrap().as_seq().unwrap().len(), 2);
    }
}
