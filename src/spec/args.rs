//! Typed reading of a YAML mapping's arguments, with positions in every error.
//!
//! A layer reads each argument it knows through `Args`, which records the
//! name, type and default as it goes. That single record serves three
//! purposes: unknown keys are found by what was *not* read (with a
//! did-you-mean over what was), the spec reference is generated from it, and
//! every error points at the offending node. Getters never fail: on a bad
//! value they record an error and return the default, so all problems in a
//! spec are reported in one run.

use super::yaml::{Node, Value};
use crate::diag::{Diagnostic, Pos, did_you_mean};

/// One argument as the spec reference documents it.
#[derive(Clone, Debug, PartialEq)]
pub struct ArgDoc {
    pub name: &'static str,
    pub kind: String,
    /// `None` for a required argument.
    pub default: Option<String>,
}

/// Keras arguments nnrun recognises but does not implement yet: these get
/// "not supported" rather than "unknown argument".
const KERAS_UNSUPPORTED: &[&str] = &[
    "kernel_regularizer",
    "bias_regularizer",
    "activity_regularizer",
    "recurrent_regularizer",
    "beta_regularizer",
    "gamma_regularizer",
    "embeddings_regularizer",
    "kernel_constraint",
    "bias_constraint",
    "recurrent_constraint",
    "beta_constraint",
    "gamma_constraint",
    "embeddings_constraint",
    "return_state",
    "stateful",
    "unroll",
    "backward_layer",
    "noise_shape",
    "lora_rank",
    "dtype",
    "synchronized",
    "renorm",
    "sparse",
    "input_length",
    "use_cudnn",
];

pub struct Args<'a> {
    node: Option<&'a Node>,
    path: String,
    owner: String,
    /// Keys read by someone else (`type`, `name`, `inputs`, ...).
    reserved: &'static [&'static str],
    pub docs: Vec<ArgDoc>,
    pub diags: Vec<Diagnostic>,
    /// The layer's `trainable` flag (`LayerSpec::trainable`), set by the
    /// graph, for layers that compute differently when frozen
    /// (BatchNormalization runs in inference mode, as in Keras).
    pub trainable: bool,
}

impl<'a> Args<'a> {
    /// `owner` prefixes messages, for example `layer 'dense' (Dense)`.
    pub fn new(node: &'a Node, path: impl Into<String>, owner: impl Into<String>, reserved: &'static [&'static str]) -> Self {
        Args { node: Some(node), path: path.into(), owner: owner.into(), reserved, docs: Vec::new(), diags: Vec::new(), trainable: true }
    }

    /// An empty argument set that only records documentation.
    pub fn for_docs() -> Self {
        Args { node: None, path: String::new(), owner: String::new(), reserved: &[], docs: Vec::new(), diags: Vec::new(), trainable: true }
    }

    fn documenting(&self) -> bool {
        self.node.is_none()
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// Position of the mapping itself (for errors about the whole layer).
    pub fn pos(&self) -> Pos {
        self.node.map(|n| n.pos).unwrap_or_default()
    }

    pub fn has_errors(&self) -> bool {
        self.diags.iter().any(Diagnostic::is_error)
    }

    pub fn arg_path(&self, name: &str) -> String {
        if self.path.is_empty() { name.to_string() } else { format!("{}.{name}", self.path) }
    }

    /// Records the argument and returns its node, if given and not null.
    pub fn raw(&mut self, name: &'static str, kind: &str, default: Option<String>) -> Option<&'a Node> {
        if !self.docs.iter().any(|d| d.name == name) {
            self.docs.push(ArgDoc { name, kind: kind.to_string(), default: default.clone() });
        }
        let node = self.node?.get(name).filter(|n| n.value != Value::Null);
        if node.is_none() && default.is_none() && !self.documenting() {
            let pos = self.pos();
            let msg = format!("{}: missing required argument `{name}` ({kind})", self.owner);
            self.diags.push(Diagnostic::error(msg, pos, self.path.clone()).with_hint(format!("add `{name}: <{kind}>` to this layer")));
        }
        node
    }

    /// The node of an argument already read, for errors that involve two arguments.
    pub fn node(&self, name: &str) -> Option<&'a Node> {
        self.node?.get(name).filter(|n| n.value != Value::Null)
    }

    /// The node of `name` when the spec writes it as an explicit `null`
    /// (Keras `None`), which some arguments give a meaning of its own.
    pub fn explicit_null(&self, name: &str) -> Option<&'a Node> {
        self.node?.get(name).filter(|n| n.value == Value::Null)
    }

    /// Records an error about argument `name` at `node`.
    pub fn error(&mut self, name: &str, node: &Node, what: impl std::fmt::Display, hint: Option<String>) {
        let msg = format!("{}: `{name}` {what}", self.owner);
        self.diags.push(Diagnostic::error(msg, node.pos, self.arg_path(name)).with_hint_opt(hint));
    }

    fn expected(&mut self, name: &str, node: &Node, kind: &str) {
        let what = format!("must be {kind}, received {}", node.describe());
        self.error(name, node, what, None);
    }

    /// An integer `>= min`; `default: None` makes it required.
    pub fn usize(&mut self, name: &'static str, default: Option<usize>, min: usize) -> usize {
        let kind = int_kind(min);
        let fallback = default.unwrap_or(min.max(1));
        let Some(node) = self.raw(name, &kind, default.map(|d| d.to_string())) else { return fallback };
        match node.as_int() {
            Some(i) if i >= min as i64 => i as usize,
            _ => {
                self.expected(name, node, &kind);
                fallback
            }
        }
    }

    /// Like `usize`, at most `max` (a size past what memory could hold).
    pub fn usize_max(&mut self, name: &'static str, default: Option<usize>, min: usize, max: usize) -> usize {
        let v = self.usize(name, default, min);
        match self.node(name) {
            Some(node) if v > max => {
                self.too_large(name, node, max);
                default.unwrap_or(min.max(1))
            }
            _ => v,
        }
    }

    /// Like `ints`, each at most `max`.
    pub fn ints_max(&mut self, name: &'static str, n: usize, default: Option<usize>, min: usize, max: usize) -> Vec<usize> {
        let v = self.ints(name, n, default, min);
        match self.node(name) {
            Some(node) if v.iter().any(|&x| x > max) => {
                self.too_large(name, node, max);
                vec![default.unwrap_or(min.max(1)); n]
            }
            _ => v,
        }
    }

    /// Reports a size argument past `max`.
    pub fn too_large(&mut self, name: &str, node: &Node, max: usize) {
        let pow = if max.is_power_of_two() { format!(" (2^{})", max.ilog2()) } else { String::new() };
        let what = format!("must be at most {}{pow}, received {}", group(max), node.describe());
        let hint = "no machine could hold a tensor of that size; see \"Limits\" in docs/spec-reference.md".to_string();
        self.error(name, node, what, Some(hint));
    }

    /// An optional integer `>= min` with no default (Keras `None`).
    pub fn opt_usize(&mut self, name: &'static str, min: usize) -> Option<usize> {
        let kind = int_kind(min);
        let node = self.raw(name, &kind, Some("None".into()))?;
        match node.as_int() {
            Some(i) if i >= min as i64 => Some(i as usize),
            _ => {
                self.expected(name, node, &kind);
                None
            }
        }
    }

    /// Any integer (an axis, for example).
    pub fn int(&mut self, name: &'static str, default: i64) -> i64 {
        let Some(node) = self.raw(name, "integer", Some(default.to_string())) else { return default };
        node.as_int().unwrap_or_else(|| {
            self.expected(name, node, "an integer");
            default
        })
    }

    /// A number in `[lo, hi]`, or `[lo, hi)` when `hi_open`.
    pub fn float(&mut self, name: &'static str, default: Option<f64>, lo: f64, hi: f64, hi_open: bool) -> f64 {
        let close = if hi_open { ")" } else { "]" };
        let kind = if hi.is_infinite() { format!("a number >= {lo}") } else { format!("a number in [{lo}, {hi}{close}") };
        let fallback = default.unwrap_or(lo);
        let Some(node) = self.raw(name, &kind, default.map(fmt_float)) else { return fallback };
        match node.as_f64() {
            Some(f) if f >= lo && (f < hi || (!hi_open && f == hi)) => f,
            _ => {
                self.expected(name, node, &kind);
                fallback
            }
        }
    }

    /// An optional number with no default (Keras `None`).
    pub fn opt_float(&mut self, name: &'static str) -> Option<f64> {
        let node = self.raw(name, "a number", Some("None".into()))?;
        let f = node.as_f64().filter(|f| f.is_finite());
        if f.is_none() {
            self.expected(name, node, "a number");
        }
        f
    }

    pub fn bool(&mut self, name: &'static str, default: bool) -> bool {
        let Some(node) = self.raw(name, "bool", Some(default.to_string())) else { return default };
        match node.value {
            Value::Bool(b) => b,
            _ => {
                self.expected(name, node, "true or false");
                default
            }
        }
    }

    /// One of `options`; `default: None` makes it required.
    pub fn choice(&mut self, name: &'static str, default: Option<&'static str>, options: &[&'static str]) -> &'static str {
        let kind = options.iter().map(|o| format!("\"{o}\"")).collect::<Vec<_>>().join(" | ");
        let fallback = default.unwrap_or(options[0]);
        let Some(node) = self.raw(name, &kind, default.map(|d| format!("\"{d}\""))) else { return fallback };
        if let Some(s) = node.as_str() {
            if let Some(o) = options.iter().find(|o| **o == s) {
                return o;
            }
            let what = format!("must be one of {}, received \"{s}\"", options.join(", "));
            let hint = did_you_mean(s, options.iter().copied()).map(|m| format!("did you mean '{m}'?"));
            self.error(name, node, what, hint);
        } else {
            self.expected(name, node, &format!("one of {}", options.join(", ")));
        }
        fallback
    }

    /// An int or a list of `n` ints, each `>= min` (Keras `kernel_size`, `strides`, ...).
    pub fn ints(&mut self, name: &'static str, n: usize, default: Option<usize>, min: usize) -> Vec<usize> {
        let kind = format!("{} or a list of {n}", int_kind(min));
        let fallback = vec![default.unwrap_or(min.max(1)); n];
        let Some(node) = self.raw(name, &kind, default.map(|d| d.to_string())) else { return fallback };
        self.parse_ints(name, node, n, min).unwrap_or(fallback)
    }

    /// Like `ints` with Keras default `None`.
    pub fn opt_ints(&mut self, name: &'static str, n: usize, min: usize) -> Option<Vec<usize>> {
        let kind = format!("{} or a list of {n}", int_kind(min));
        let node = self.raw(name, &kind, Some("None".into()))?;
        self.parse_ints(name, node, n, min)
    }

    fn parse_ints(&mut self, name: &'static str, node: &Node, n: usize, min: usize) -> Option<Vec<usize>> {
        let kind = format!("{} or a list of {n}", int_kind(min));
        if let Some(i) = node.as_int() {
            if i >= min as i64 {
                return Some(vec![i as usize; n]);
            }
        } else if let Some(items) = node.as_seq() {
            let vals: Vec<Option<usize>> = items.iter().map(|x| x.as_int().filter(|&i| i >= min as i64).map(|i| i as usize)).collect();
            if items.len() == n && vals.iter().all(Option::is_some) {
                return Some(vals.into_iter().flatten().collect());
            }
        }
        self.expected(name, node, &kind);
        None
    }

    /// A required list of integers, each `>= min` or `-1` when `allow_minus_one`.
    pub fn int_list(&mut self, name: &'static str, min: i64, allow_minus_one: bool) -> Vec<i64> {
        let kind = if allow_minus_one { "list of integers (one may be -1)" } else { "list of integers" };
        let Some(node) = self.raw(name, kind, None) else { return Vec::new() };
        let ok = |i: i64| i >= min || (allow_minus_one && i == -1);
        match node.as_seq().map(|s| s.iter().map(|x| x.as_int().filter(|&i| ok(i))).collect::<Option<Vec<_>>>()) {
            Some(Some(v)) if !v.is_empty() => v,
            _ => {
                let what = if min > 0 {
                    format!("a non-empty list of positive integers{}", if allow_minus_one { " (one may be -1)" } else { "" })
                } else {
                    "a non-empty list of integers".into()
                };
                self.expected(name, node, &what);
                Vec::new()
            }
        }
    }

    /// An integer or a list of integers (LayerNormalization `axis`).
    pub fn int_or_list(&mut self, name: &'static str, default: i64) -> Vec<i64> {
        let Some(node) = self.raw(name, "integer or list of integers", Some(default.to_string())) else {
            return vec![default];
        };
        if let Some(i) = node.as_int() {
            return vec![i];
        }
        match node.as_seq().map(|s| s.iter().map(Node::as_int).collect::<Option<Vec<_>>>()) {
            Some(Some(v)) if !v.is_empty() => v,
            _ => {
                self.expected(name, node, "an integer or a list of integers");
                vec![default]
            }
        }
    }

    /// Reports every key nobody read, with a did-you-mean.
    pub fn finish(&mut self) {
        let Some(map) = self.node.and_then(Node::as_map) else { return };
        for (k, _) in map {
            let Some(key) = k.as_str() else {
                self.diags.push(Diagnostic::error(
                    format!("{}: argument names must be strings, received {}", self.owner, k.describe()),
                    k.pos,
                    self.path.clone(),
                ));
                continue;
            };
            if self.reserved.contains(&key) || self.docs.iter().any(|d| d.name == key) {
                continue;
            }
            let known: Vec<&str> = self.docs.iter().map(|d| d.name).chain(self.reserved.iter().copied()).collect();
            let unsupported = KERAS_UNSUPPORTED.contains(&key);
            let key = &super::yaml::shown(key);
            let (msg, hint) = if unsupported {
                (
                    format!("{}: Keras argument `{key}` is not supported by nnrun yet", self.owner),
                    "remove it; see docs/spec-reference.md for the supported arguments".to_string(),
                )
            } else {
                let hint = match did_you_mean(key, known.iter().copied()) {
                    Some(m) => format!("did you mean `{m}`?"),
                    None => format!("valid arguments: {}", known.join(", ")),
                };
                (format!("{}: unknown argument `{key}`", self.owner), hint)
            };
            self.diags.push(Diagnostic::error(msg, k.pos, self.arg_path(key)).with_hint(hint));
        }
    }
}

/// `1234567` -> `1,234,567`
fn group(n: usize) -> String {
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

fn int_kind(min: usize) -> String {
    match min {
        0 => "an integer >= 0".into(),
        1 => "a positive integer".into(),
        m => format!("an integer >= {m}"),
    }
}

fn fmt_float(f: f64) -> String {
    let s = format!("{f}");
    if s.contains('.') || s.contains('e') { s } else { format!("{s}.0") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::yaml::parse;

    fn args(src: &str) -> Node {
        parse(src).unwrap()
    }

    #[test]
    fn reads_typed_values_and_defaults() {
        let n = args("units: 4\nrate: 0.5\nflag: false\nk: [3, 2]\nmode: same");
        let mut a = Args::new(&n, "l", "layer 'x' (X)", &[]);
        assert_eq!(a.usize("units", None, 1), 4);
        assert_eq!(a.usize("other", Some(7), 1), 7);
        assert_eq!(a.float("rate", Some(0.0), 0.0, 1.0, true), 0.5);
        assert!(!a.bool("flag", true));
        assert_eq!(a.ints("k", 2, Some(1), 1), vec![3, 2]);
        assert_eq!(a.choice("mode", Some("valid"), &["valid", "same"]), "same");
        a.finish();
        assert!(a.diags.is_empty(), "{:?}", a.diags);
    }

    #[test]
    fn bad_values_point_at_the_value() {
        let n = args("units: 0\nrate: 1.0\nk: [3, 2, 1]\nmode: sme");
        let mut a = Args::new(&n, "l", "layer 'x' (X)", &[]);
        a.usize("units", None, 1);
        a.float("rate", Some(0.0), 0.0, 1.0, true);
        a.ints("k", 2, Some(1), 1);
        a.choice("mode", Some("valid"), &["valid", "same"]);
        let msgs: Vec<_> = a.diags.iter().map(|d| (d.pos.line, d.message.clone(), d.hint.clone())).collect();
        assert_eq!(msgs[0], (1, "layer 'x' (X): `units` must be a positive integer, received 0".into(), None));
        assert_eq!(msgs[1].1, "layer 'x' (X): `rate` must be a number in [0, 1), received 1.0");
        assert_eq!(msgs[2].1, "layer 'x' (X): `k` must be a positive integer or a list of 2, received [3, 2, 1]");
        assert_eq!(msgs[3].2.as_deref(), Some("did you mean 'same'?"));
    }

    #[test]
    fn missing_required_and_unknown_keys() {
        let n = args("unit: 4\nkernel_regularizer: l2");
        let mut a = Args::new(&n, "model.layers[0]", "layer 'd' (Dense)", &["type"]);
        a.usize("units", None, 1);
        a.finish();
        assert_eq!(a.diags.len(), 3);
        assert!(a.diags[0].message.contains("missing required argument `units`"));
        assert_eq!(a.diags[1].hint.as_deref(), Some("did you mean `units`?"));
        assert_eq!(a.diags[1].path, "model.layers[0].unit");
        assert!(a.diags[2].message.contains("not supported by nnrun yet"));
    }

    #[test]
    fn docs_mode_records_without_errors() {
        let mut a = Args::for_docs();
        a.usize("units", None, 1);
        a.bool("use_bias", true);
        assert!(a.diags.is_empty());
        assert_eq!(a.docs[0], ArgDoc { name: "units", kind: "a positive integer".into(), default: None });
        assert_eq!(a.docs[1].default.as_deref(), Some("true"));
    }
}
