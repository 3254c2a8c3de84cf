//! `data.columns`: the type of each CSV column (Keras FeatureSpace names and
//! arguments) and how it is encoded. Only the spec side lives here: what
//! the user wrote, checked with positions. Fitting vocabularies and
//! encoding values is `crate::data::columns`.
//!
//! `TYPES` is the one table of column types: the parser reads through it
//! and the reference in docs/spec-reference.md is generated from it.

use super::Named;
use super::args::{ArgDoc, Args};
use super::data::Missing;
use super::yaml::{Node, Value};
use crate::diag::{Diagnostic, Pos, suggestion};
use serde::{Deserialize, Serialize};

/// Keras's largest `max_tokens` that still fits a one-hot input; past this
/// a vocabulary is a mistake (a free-text column read as categories).
pub const MAX_TOKENS: usize = 1 << 24;
/// The longest `output_sequence_length`.
pub const MAX_SEQUENCE: usize = 1 << 20;
/// Tokens (n-grams included) one text cell may give: a single cell of a
/// 16 MiB line split into every n-gram size would otherwise take gigabytes.
pub const MAX_CELL_TOKENS: usize = 1 << 20;
/// Entries of `data.missing_values` (each cell is compared with all of them).
pub const MAX_MISSING_VALUES: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LookupMode {
    OneHot,
    Int,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextMode {
    Int,
    MultiHot,
    Count,
    TfIdf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Standardize {
    None,
    Lower,
    StripPunctuation,
    LowerAndStripPunctuation,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitMode {
    None,
    Whitespace,
    Character,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TextSpec {
    pub max_tokens: Option<usize>,
    pub standardize: Standardize,
    pub split: SplitMode,
    /// The n-gram sizes, e.g. [1, 2] for Keras `ngrams=2`.
    pub ngrams: Vec<usize>,
    pub output_mode: TextMode,
    pub output_sequence_length: Option<usize>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ColumnKind {
    /// A column `columns` does not list: a number, scaled and normalized by
    /// `data.scale` and `data.normalize`.
    Number,
    /// A number as it is (FeatureSpace `float`).
    Float,
    /// Standardized with the training mean and variance (Keras `Normalization`).
    FloatNormalized,
    /// `x * scale + offset` (Keras `Rescaling`).
    FloatRescaled { scale: f64, offset: f64 },
    /// One-hot bins (Keras `Discretization`).
    FloatDiscretized { num_bins: Option<usize>, bin_boundaries: Option<Vec<f64>> },
    /// A vocabulary (Keras `StringLookup` / `IntegerLookup`).
    Categorical { integer: bool, max_tokens: Option<usize>, num_oov_indices: usize, output_mode: LookupMode },
    /// One-hot hash bins (Keras `Hashing`).
    Hashed { integer: bool, num_bins: usize },
    /// Keras `TextVectorization`.
    Text(TextSpec),
}

impl ColumnKind {
    /// Whether the cells are numbers (else text, typed by the encoder).
    pub fn numeric(&self) -> bool {
        matches!(
            self,
            ColumnKind::Number | ColumnKind::Float | ColumnKind::FloatNormalized | ColumnKind::FloatRescaled { .. } | ColumnKind::FloatDiscretized { .. }
        )
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ColumnSpec {
    pub name: Named,
    /// The FeatureSpace type name, as written.
    pub type_name: &'static str,
    pub kind: ColumnKind,
    /// Overrides `data.missing` for this column.
    pub missing: Option<Missing>,
    /// Where the type is written (the value of the entry).
    pub pos: Pos,
}

/// One column type: its name, what it is, and the reader of its arguments.
pub struct TypeDef {
    pub name: &'static str,
    pub doc: &'static str,
    read: fn(&mut Args) -> ColumnKind,
}

pub const TYPES: &[TypeDef] = &[
    TypeDef { name: "float", doc: "A number as it is (no scaling or normalization).", read: |_| ColumnKind::Float },
    TypeDef {
        name: "float_normalized",
        doc: "A number standardized with the training split's mean and variance: (x - mean) / max(sqrt(var), 1e-7), as Keras `Normalization`.",
        read: |_| ColumnKind::FloatNormalized,
    },
    TypeDef { name: "float_rescaled", doc: "A number mapped to x * scale + offset, as Keras `Rescaling`.", read: read_rescaled },
    TypeDef {
        name: "float_discretized",
        doc: "A number one-hot encoded by bin, as Keras `Discretization`: `bin_boundaries` as given, or `num_bins` bins at the training split's quantiles. Bin i holds boundaries[i-1] <= x < boundaries[i].",
        read: read_discretized,
    },
    TypeDef {
        name: "string_categorical",
        doc: "A category, as Keras `StringLookup`: a vocabulary of the training split's values by frequency (ties: the later string first, as Keras), after `num_oov_indices` out-of-vocabulary indices for values never seen and for missing ones. `one_hot`: one unit per index; `int`: the index itself, for an Embedding.",
        read: |a| read_categorical(a, false),
    },
    TypeDef {
        name: "integer_categorical",
        doc: "Like `string_categorical` for integer codes, as Keras `IntegerLookup`; every value must be an integer.",
        read: |a| read_categorical(a, true),
    },
    TypeDef {
        name: "string_hashed",
        doc: "A category hashed into `num_bins` one-hot bins, as Keras `Hashing` (FarmHash Fingerprint64 of the UTF-8 text, modulo num_bins).",
        read: |a| read_hashed(a, false),
    },
    TypeDef { name: "integer_hashed", doc: "Like `string_hashed` for integer codes (hashed as their decimal text, as Keras).", read: |a| read_hashed(a, true) },
    TypeDef {
        name: "text",
        doc: "Free text, as Keras `TextVectorization`: standardized, split into tokens (and n-grams), with a vocabulary of the training split by frequency. `int`: token indices (0 padding, 1 out-of-vocabulary), padded or cut to `output_sequence_length`; `multi_hot`, `count`, `tf_idf`: one unit per vocabulary entry, index 0 out-of-vocabulary. `standardize: null` or `split: null` turns that step off (split null: the whole text is one token).",
        read: read_text,
    },
];

/// Arguments every type takes.
const COMMON: &[&str] = &["type", "missing"];

fn read_rescaled(a: &mut Args) -> ColumnKind {
    let num = |a: &mut Args, name: &'static str, default: f64| {
        let Some(n) = a.raw(name, "a number", Some(format!("{default:?}"))) else { return default };
        n.as_f64().filter(|f| f.is_finite()).unwrap_or_else(|| {
            a.error(name, n, format!("must be a number, received {}", n.describe()), None);
            default
        })
    };
    let scale = num(a, "scale", 1.0);
    let offset = num(a, "offset", 0.0);
    ColumnKind::FloatRescaled { scale, offset }
}

fn read_discretized(a: &mut Args) -> ColumnKind {
    let num_bins = a.opt_usize("num_bins", 1);
    let bounds = a.raw("bin_boundaries", "a list of increasing numbers", Some("None".into()));
    let bin_boundaries = bounds.and_then(|n| {
        let v: Option<Vec<f64>> = n.as_seq().and_then(|s| s.iter().map(|x| x.as_f64().filter(|f| f.is_finite())).collect());
        match v {
            Some(v) if !v.is_empty() && v.windows(2).all(|w| w[0] < w[1]) => Some(v),
            _ => {
                a.error("bin_boundaries", n, format!("must be a non-empty list of increasing numbers, received {}", n.describe()), None);
                None
            }
        }
    });
    match (num_bins, &bin_boundaries, bounds) {
        (Some(_), _, Some(n)) => {
            a.error(
                "bin_boundaries",
                n,
                "cannot be given with `num_bins`",
                Some("keep one: fixed `bin_boundaries`, or `num_bins` fitted on the training split".into()),
            );
        }
        (None, None, None) => {
            let pos = a.pos();
            let path = a.path().to_string();
            a.diags.push(
                Diagnostic::error(format!("{}: needs `num_bins` or `bin_boundaries`", a.owner()), pos, path)
                    .with_hint("for example `{type: float_discretized, num_bins: 4}`"),
            );
        }
        _ => {}
    }
    if let Some(n) = num_bins
        && n > MAX_TOKENS
        && let Some(node) = a.node("num_bins")
    {
        a.too_large("num_bins", node, MAX_TOKENS);
    }
    ColumnKind::FloatDiscretized { num_bins, bin_boundaries }
}

fn read_max_tokens(a: &mut Args, reserved: usize) -> Option<usize> {
    let v = a.opt_usize("max_tokens", 1)?;
    let node = a.node("max_tokens")?;
    if v > MAX_TOKENS {
        a.too_large("max_tokens", node, MAX_TOKENS);
        return None;
    }
    if v <= reserved {
        let what = format!("must be more than {reserved}, the indices reserved for padding and out-of-vocabulary values, received {v}");
        a.error("max_tokens", node, what, None);
        return None;
    }
    Some(v)
}

fn read_categorical(a: &mut Args, integer: bool) -> ColumnKind {
    let num_oov_indices = a.usize_max("num_oov_indices", Some(1), 0, 1024);
    let max_tokens = read_max_tokens(a, num_oov_indices);
    let output_mode = match a.choice("output_mode", Some("one_hot"), &["one_hot", "int"]) {
        "int" => LookupMode::Int,
        _ => LookupMode::OneHot,
    };
    ColumnKind::Categorical { integer, max_tokens, num_oov_indices, output_mode }
}

fn read_hashed(a: &mut Args, integer: bool) -> ColumnKind {
    let num_bins = a.usize_max("num_bins", None, 1, MAX_TOKENS);
    ColumnKind::Hashed { integer, num_bins }
}

fn read_text(a: &mut Args) -> ColumnKind {
    let output_mode = match a.choice("output_mode", Some("int"), &["int", "multi_hot", "count", "tf_idf"]) {
        "multi_hot" => TextMode::MultiHot,
        "count" => TextMode::Count,
        "tf_idf" => TextMode::TfIdf,
        _ => TextMode::Int,
    };
    let reserved = if output_mode == TextMode::Int { 2 } else { 1 };
    let max_tokens = read_max_tokens(a, reserved);
    let options = ["lower_and_strip_punctuation", "lower", "strip_punctuation"];
    let standardize = match a.explicit_null("standardize") {
        Some(_) => Standardize::None,
        None => match a.choice("standardize", Some("lower_and_strip_punctuation"), &options) {
            "lower" => Standardize::Lower,
            "strip_punctuation" => Standardize::StripPunctuation,
            _ => Standardize::LowerAndStripPunctuation,
        },
    };
    let split = match a.explicit_null("split") {
        Some(_) => SplitMode::None,
        None => match a.choice("split", Some("whitespace"), &["whitespace", "character"]) {
            "character" => SplitMode::Character,
            _ => SplitMode::Whitespace,
        },
    };
    let ngrams = match a.raw("ngrams", "a positive integer or a list of them", Some("None".into())) {
        None => vec![1],
        Some(n) => match (&n.value, n.as_int()) {
            (_, Some(k)) if (1..=16).contains(&k) => (1..=k as usize).collect(),
            (Value::Seq(items), _) => {
                let v: Option<Vec<usize>> = items.iter().map(|x| x.as_int().filter(|k| (1..=16).contains(k)).map(|k| k as usize)).collect();
                match v {
                    Some(v) if !v.is_empty() => v,
                    _ => {
                        a.error("ngrams", n, format!("must be integers from 1 to 16, received {}", n.describe()), None);
                        vec![1]
                    }
                }
            }
            _ => {
                a.error("ngrams", n, format!("must be an integer from 1 to 16 or a list of them, received {}", n.describe()), None);
                vec![1]
            }
        },
    };
    let output_sequence_length = a.opt_usize("output_sequence_length", 1);
    if let Some(l) = output_sequence_length
        && l > MAX_SEQUENCE
        && let Some(node) = a.node("output_sequence_length")
    {
        a.too_large("output_sequence_length", node, MAX_SEQUENCE);
    }
    if let (Some(_), TextMode::MultiHot | TextMode::Count | TextMode::TfIdf, Some(node)) =
        (output_sequence_length, output_mode, a.node("output_sequence_length"))
    {
        a.error(
            "output_sequence_length",
            node,
            "applies to `output_mode: int` only",
            Some("remove it: the other modes give one unit per vocabulary entry".into()),
        );
    }
    if output_mode == TextMode::Int && output_sequence_length.is_none() && !a.has_errors() {
        let pos = a.pos();
        let path = a.path().to_string();
        a.diags.push(
            Diagnostic::error(format!("{}: `output_mode: int` needs `output_sequence_length`", a.owner()), pos, path).with_hint(
                "a model input has a fixed length: give the number of tokens per row, e.g. `output_sequence_length: 32` (shorter rows are padded with 0, longer ones cut)",
            ),
        );
    }
    ColumnKind::Text(TextSpec {
        max_tokens,
        standardize,
        split,
        ngrams,
        output_mode,
        output_sequence_length: output_sequence_length.filter(|&l| l <= MAX_SEQUENCE),
    })
}

/// Reads `data.columns`: a mapping from column name to a type name or to
/// `{type: ..., <arguments>}`.
pub fn parse(node: &Node, diags: &mut Vec<Diagnostic>) -> Vec<ColumnSpec> {
    let Some(entries) = node.as_map() else {
        diags.push(
            Diagnostic::error(format!("`data.columns` must map column names to types, received {}", node.describe()), node.pos, "data.columns")
                .with_hint("for example `columns: {island: string_categorical, sex: {type: string_categorical, max_tokens: 4}}`"),
        );
        return Vec::new();
    };
    let names: Vec<&str> = TYPES.iter().map(|t| t.name).collect();
    let mut out: Vec<ColumnSpec> = Vec::new();
    for (k, v) in entries {
        let Some(col) = k.as_str() else {
            diags.push(Diagnostic::error(format!("column names must be strings, received {}", k.describe()), k.pos, "data.columns"));
            continue;
        };
        let path = format!("data.columns.{col}");
        let (ty, ty_node) = match &v.value {
            Value::Str(s) => (s.as_str(), v),
            Value::Map(_) => match v.get("type") {
                Some(t) => match t.as_str() {
                    Some(s) => (s, t),
                    None => {
                        diags.push(Diagnostic::error(
                            format!("column '{col}': `type` must be a column type, received {}", t.describe()),
                            t.pos,
                            format!("{path}.type"),
                        ));
                        continue;
                    }
                },
                None => {
                    diags.push(
                        Diagnostic::error(format!("column '{col}' has no `type`"), v.pos, path.clone())
                            .with_hint(format!("add `type: <{}>`", names.join(" | "))),
                    );
                    continue;
                }
            },
            _ => {
                diags.push(
                    Diagnostic::error(format!("column '{col}' must be a type name or {{type: ..., ...}}, received {}", v.describe()), v.pos, path)
                        .with_hint("for example `island: string_categorical`"),
                );
                continue;
            }
        };
        let Some(def) = TYPES.iter().find(|t| t.name == ty) else {
            let hint = if ty == "number" || ty == "numeric" {
                Some("leave a number column out of `columns` (it is scaled and normalized by `data.scale` and `data.normalize`), or use `float`".into())
            } else {
                suggestion(ty, &names)
            };
            diags.push(Diagnostic::error(format!("column '{col}': unknown column type \"{ty}\""), ty_node.pos, path).with_hint_opt(hint));
            continue;
        };
        let owner = format!("column '{col}' ({})", def.name);
        let empty = Node { value: Value::Map(Vec::new()), pos: v.pos };
        let args_node = if v.as_map().is_some() { v } else { &empty };
        let mut a = Args::new(args_node, path.clone(), owner, COMMON);
        let kind = (def.read)(&mut a);
        let missing = args_node.get("missing").and_then(|m| match m.as_str() {
            Some("error") => Some(Missing::Error),
            Some("drop") => Some(Missing::Drop),
            Some("mean") => Some(Missing::Mean),
            _ => {
                a.error("missing", m, format!("must be one of error, drop, mean, received {}", m.describe()), None);
                None
            }
        });
        a.finish();
        diags.append(&mut a.diags);
        if out.iter().any(|c| c.name.name == col) {
            diags.push(Diagnostic::error(format!("column '{col}' is listed twice in `data.columns`"), k.pos, path));
            continue;
        }
        out.push(ColumnSpec { name: Named { name: col.to_string(), pos: k.pos }, type_name: def.name, kind, missing, pos: ty_node.pos });
    }
    out
}

/// Every type with its arguments, for the reference.
pub fn docs() -> Vec<(&'static str, &'static str, Vec<ArgDoc>)> {
    TYPES
        .iter()
        .map(|t| {
            let mut a = Args::for_docs();
            (t.read)(&mut a);
            a.docs.push(ArgDoc { name: "missing", kind: "\"error\" | \"drop\" | \"mean\"".into(), default: Some("data.missing".into()) });
            (t.name, t.doc, a.docs)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::yaml::parse as yaml;

    fn cols(src: &str) -> (Vec<ColumnSpec>, Vec<Diagnostic>) {
        let mut d = Vec::new();
        let c = parse(&yaml(src).unwrap(), &mut d);
        (c, d)
    }

    #[test]
    fn reads_types_and_keras_defaults() {
        let (c, d) = cols(
            "island: string_categorical\nsex: {type: string_categorical, max_tokens: 4, missing: mean}\n\
             code: {type: integer_categorical, output_mode: int, num_oov_indices: 2}\n\
             text: {type: text, max_tokens: 100, output_mode: multi_hot, ngrams: 2}\n\
             seq: {type: text, output_sequence_length: 8}\nh: {type: string_hashed, num_bins: 7}\n\
             b: {type: float_discretized, bin_boundaries: [0, 1.5]}\nr: {type: float_rescaled, scale: 0.5, offset: -1}\n",
        );
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(c[0].kind, ColumnKind::Categorical { integer: false, max_tokens: None, num_oov_indices: 1, output_mode: LookupMode::OneHot });
        assert_eq!(
            (c[1].missing, &c[1].kind),
            (Some(Missing::Mean), &ColumnKind::Categorical { integer: false, max_tokens: Some(4), num_oov_indices: 1, output_mode: LookupMode::OneHot })
        );
        assert_eq!(c[2].kind, ColumnKind::Categorical { integer: true, max_tokens: None, num_oov_indices: 2, output_mode: LookupMode::Int });
        let ColumnKind::Text(t) = &c[3].kind else { panic!() };
        assert_eq!(
            (t.ngrams.clone(), t.output_mode, t.standardize, t.split),
            (vec![1, 2], TextMode::MultiHot, Standardize::LowerAndStripPunctuation, SplitMode::Whitespace)
        );
        let ColumnKind::Text(t) = &c[4].kind else { panic!() };
        assert_eq!((t.output_mode, t.output_sequence_length), (TextMode::Int, Some(8)));
        assert_eq!(c[5].kind, ColumnKind::Hashed { integer: false, num_bins: 7 });
        assert_eq!(c[6].kind, ColumnKind::FloatDiscretized { num_bins: None, bin_boundaries: Some(vec![0.0, 1.5]) });
        assert_eq!(c[7].kind, ColumnKind::FloatRescaled { scale: 0.5, offset: -1.0 });
    }

    #[test]
    fn errors_have_positions_and_hints() {
        let (_, d) = cols("island: string_categorial\n");
        assert_eq!(d[0].message, "column 'island': unknown column type \"string_categorial\"");
        assert_eq!(d[0].hint.as_deref(), Some("did you mean 'string_categorical'?"));
        assert_eq!((d[0].pos.line, d[0].pos.col), (1, 9));
        let (_, d) = cols("sex: {type: string_categorical, max_token: 4}\n");
        assert_eq!(d[0].message, "column 'sex' (string_categorical): unknown argument `max_token`");
        assert_eq!(d[0].hint.as_deref(), Some("did you mean `max_tokens`?"));
        let (_, d) = cols("t: {type: text}\n");
        assert_eq!(d[0].message, "column 't' (text): `output_mode: int` needs `output_sequence_length`");
        let (_, d) = cols("t: {type: text, output_mode: multi_hot, output_sequence_length: 4}\n");
        assert_eq!(d[0].message, "column 't' (text): `output_sequence_length` applies to `output_mode: int` only");
        let (_, d) = cols(
            "b: {type: float_discretized}\nc: {type: float_discretized, num_bins: 3, bin_boundaries: [1]}\ne: {type: float_discretized, bin_boundaries: [2, 1]}\n",
        );
        let m: Vec<_> = d.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            m,
            [
                "column 'b' (float_discretized): needs `num_bins` or `bin_boundaries`",
                "column 'c' (float_discretized): `bin_boundaries` cannot be given with `num_bins`",
                "column 'e' (float_discretized): `bin_boundaries` must be a non-empty list of increasing numbers, received [2, 1]"
            ]
        );
        let (_, d) = cols("h: string_hashed\ns: {type: string_categorical, max_tokens: 1}\nx: number\n");
        let m: Vec<_> = d.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(m[0], "column 'h' (string_hashed): missing required argument `num_bins` (a positive integer)");
        assert_eq!(
            m[1],
            "column 's' (string_categorical): `max_tokens` must be more than 1, the indices reserved for padding and out-of-vocabulary values, received 1"
        );
        assert_eq!(m[2], "column 'x': unknown column type \"number\"");
        let (_, d) = cols("s: {type: string_categorical, missing: fill}\n");
        assert_eq!(d[0].message, "column 's' (string_categorical): `missing` must be one of error, drop, mean, received \"fill\"");
    }

    #[test]
    fn every_type_documents_its_arguments() {
        let docs = docs();
        assert_eq!(docs.len(), TYPES.len());
        let text = docs.iter().find(|d| d.0 == "text").unwrap();
        let names: Vec<_> = text.2.iter().map(|a| a.name).collect();
        assert_eq!(names, ["output_mode", "max_tokens", "standardize", "split", "ngrams", "output_sequence_length", "missing"]);
    }
}
