//! Typed CSV columns: the cell rules, fitting (vocabularies, bins, idf
//! weights on the training split) and encoding into model values, with
//! Keras's semantics (StringLookup, IntegerLookup, TextVectorization,
//! Discretization, Hashing). Training and predict both encode through
//! `Coder`, so there is one copy of the arithmetic.
//!
//! What Keras does, checked value by value: bench/keras_checks/preprocessing.py
//! and its notes; the test at the bottom replays its fixture.

use super::farmhash::fingerprint64;
use crate::spec::columns::{ColumnKind, ColumnSpec, LookupMode, SplitMode, Standardize, TextMode, TextSpec};
use crate::spec::data::Missing;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A fitted column: all that encoding its cells needs, saved in the model file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ColumnPrep {
    pub column: String,
    pub missing: Missing,
    #[serde(flatten)]
    pub encoder: Encoder,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NumberKind {
    /// Not listed in `columns`: `data.scale` and `data.normalize` apply.
    Number,
    Float,
    FloatNormalized,
    FloatRescaled,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Encoder {
    /// One value; its scaling is the input's per-slot `scales`/`shift`/`div`.
    Number {
        kind: NumberKind,
    },
    FloatDiscretized {
        bin_boundaries: Vec<f32>,
        fill: Option<f32>,
    },
    /// `vocabulary`: the learned values, index `num_oov_indices + k`.
    StringCategorical {
        vocabulary: Vec<String>,
        num_oov_indices: usize,
        output_mode: LookupMode,
    },
    IntegerCategorical {
        vocabulary: Vec<i64>,
        num_oov_indices: usize,
        output_mode: LookupMode,
    },
    StringHashed {
        num_bins: usize,
    },
    IntegerHashed {
        num_bins: usize,
    },
    /// `vocabulary`: the learned tokens (after the reserved indices);
    /// `idf_weights` (tf_idf): one per index, the out-of-vocabulary one first.
    Text {
        vocabulary: Vec<String>,
        standardize: Standardize,
        split: SplitMode,
        ngrams: Vec<usize>,
        output_mode: TextMode,
        output_sequence_length: Option<usize>,
        idf_weights: Option<Vec<f32>>,
    },
}

/// A cell as read: a number (NaN: missing) or text ("" : missing).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cell<'a> {
    Num(f32),
    Text(&'a str),
}

/// How a column's cells are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellType {
    Number,
    Integer,
    Text,
}

impl CellType {
    pub fn of(kind: &ColumnKind) -> CellType {
        match kind {
            k if k.numeric() => CellType::Number,
            ColumnKind::Categorical { integer: true, .. } | ColumnKind::Hashed { integer: true, .. } => CellType::Integer,
            _ => CellType::Text,
        }
    }
}

/// A cell after the missing-value rule: `None` when missing.
#[derive(Debug)]
pub enum Read {
    Missing,
    Num(f32),
    /// For integer columns, the canonical decimal form.
    Text(String),
}

impl Read {
    /// The cell to encode: a missing number is NaN (the mean fills it
    /// later), a missing category or text "" (the out-of-vocabulary slot,
    /// no tokens).
    pub fn cell(&self, ty: CellType) -> Cell<'_> {
        match self {
            Read::Missing if ty == CellType::Number => Cell::Num(f32::NAN),
            Read::Missing => Cell::Text(""),
            Read::Num(x) => Cell::Num(*x),
            Read::Text(t) => Cell::Text(t),
        }
    }
}

/// Reads one CSV cell of a column of type `ty`; `markers` are the cells
/// that count as missing. Text in a number column is an error, as is an
/// infinite number.
pub fn read_cell(s: &str, ty: CellType, markers: &[String]) -> Result<Read, String> {
    if s.is_empty() || markers.iter().any(|m| m == s) {
        return Ok(Read::Missing);
    }
    match ty {
        CellType::Text => Ok(Read::Text(s.to_string())),
        CellType::Number => match s.parse::<f32>() {
            Ok(x) if x.is_finite() => Ok(Read::Num(x)),
            Ok(x) if x.is_nan() => Ok(Read::Missing),
            Ok(_) => Err(super::csv::not_finite(s, "a missing value is left empty")),
            Err(_) => Err(format!(
                "'{s}' is not a number; if this column holds categories, declare it in `data.columns` (e.g. `{{column}}: string_categorical`), or list '{s}' in `missing_values` if it marks a missing value"
            )),
        },
        CellType::Integer => match integer(s) {
            Some(i) => Ok(Read::Text(i.to_string())),
            None => Err(format!("'{s}' is not an integer; integer_categorical and integer_hashed take integer codes (use string_categorical for text)")),
        },
    }
}

/// An integer code: `3`, or `3.0` as spreadsheets write it.
fn integer(s: &str) -> Option<i64> {
    if let Ok(i) = s.parse::<i64>() {
        return Some(i);
    }
    let f = s.parse::<f64>().ok()?;
    (f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64)
}

/// The hint for a missing value in a column read with `missing: error`.
pub fn missing_hint(column_type: &str) -> &'static str {
    if column_type == "number" {
        "set `missing: drop` or `missing: mean` to skip or fill such values"
    } else {
        "set `missing: drop` to skip such rows, or `missing: mean` to map them to the out-of-vocabulary slot (per column: `{type: ..., missing: mean}`)"
    }
}

/// Keras's vocabulary order: by count, the larger token first on a tie
/// (`np.lexsort((tokens, counts))[::-1]`), at most `keep` of them.
fn by_frequency<T: Ord + Clone + std::hash::Hash>(counts: HashMap<T, usize>, keep: Option<usize>) -> Vec<T> {
    let mut v: Vec<(usize, T)> = counts.into_iter().map(|(t, c)| (c, t)).collect();
    v.sort_by(|a, b| b.cmp(a));
    v.into_iter().take(keep.unwrap_or(usize::MAX)).map(|(_, t)| t).collect()
}

/// Python's `string.punctuation`, which Keras's standardize strips.
fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation()
}

/// Keras standardize: ASCII lower-casing (`tf.strings.lower`) and/or the
/// removal of ASCII punctuation.
pub fn standardize(s: &str, mode: Standardize) -> std::borrow::Cow<'_, str> {
    let lower = matches!(mode, Standardize::Lower | Standardize::LowerAndStripPunctuation);
    let strip = matches!(mode, Standardize::StripPunctuation | Standardize::LowerAndStripPunctuation);
    if (!lower || !s.bytes().any(|b| b.is_ascii_uppercase())) && (!strip || !s.chars().any(is_punctuation)) {
        return s.into();
    }
    s.chars().filter(|&c| !(strip && is_punctuation(c))).map(|c| if lower { c.to_ascii_lowercase() } else { c }).collect::<String>().into()
}

/// At most how many tokens (n-grams included) `tokens` gives for `s`,
/// counted without allocating them.
pub fn token_bound(s: &str, split: SplitMode, ngrams: &[usize]) -> usize {
    let words = match split {
        SplitMode::Whitespace => s.split([' ', '\t', '\n', '\x0B', '\x0C', '\r']).filter(|w| !w.is_empty()).count(),
        SplitMode::Character => s.chars().count(),
        SplitMode::None => 1,
    };
    words.saturating_mul(ngrams.len().max(1))
}

/// Tokens of one text (standardized already), then its n-grams joined by
/// a space: every size in `ngrams` order, each in text order.
pub fn tokens(s: &str, split: SplitMode, ngrams: &[usize]) -> Vec<String> {
    let words: Vec<&str> = match split {
        SplitMode::Whitespace => s.split([' ', '\t', '\n', '\x0B', '\x0C', '\r']).filter(|w| !w.is_empty()).collect(),
        SplitMode::Character => s.char_indices().map(|(i, c)| &s[i..i + c.len_utf8()]).collect(),
        SplitMode::None if s.is_empty() => Vec::new(),
        SplitMode::None => vec![s],
    };
    if ngrams == [1] {
        return words.into_iter().map(String::from).collect();
    }
    let mut out = Vec::new();
    for &n in ngrams {
        if n == 0 || n > words.len() {
            continue;
        }
        for w in words.windows(n) {
            out.push(w.join(" "));
        }
    }
    out
}

impl ColumnPrep {
    /// Values per row.
    pub fn width(&self) -> usize {
        match &self.encoder {
            Encoder::Number { .. } => 1,
            Encoder::FloatDiscretized { bin_boundaries, .. } => bin_boundaries.len() + 1,
            Encoder::StringCategorical { output_mode: LookupMode::Int, .. } | Encoder::IntegerCategorical { output_mode: LookupMode::Int, .. } => 1,
            Encoder::StringCategorical { vocabulary, num_oov_indices, .. } => num_oov_indices + vocabulary.len(),
            Encoder::IntegerCategorical { vocabulary, num_oov_indices, .. } => num_oov_indices + vocabulary.len(),
            Encoder::StringHashed { num_bins } | Encoder::IntegerHashed { num_bins } => *num_bins,
            Encoder::Text { output_mode: TextMode::Int, output_sequence_length, .. } => output_sequence_length.unwrap_or(1),
            Encoder::Text { vocabulary, .. } => 1 + vocabulary.len(),
        }
    }

    /// The FeatureSpace type name.
    pub fn type_name(&self) -> &'static str {
        match &self.encoder {
            Encoder::Number { kind: NumberKind::Number } => "number",
            Encoder::Number { kind: NumberKind::Float } => "float",
            Encoder::Number { kind: NumberKind::FloatNormalized } => "float_normalized",
            Encoder::Number { kind: NumberKind::FloatRescaled } => "float_rescaled",
            Encoder::FloatDiscretized { .. } => "float_discretized",
            Encoder::StringCategorical { .. } => "string_categorical",
            Encoder::IntegerCategorical { .. } => "integer_categorical",
            Encoder::StringHashed { .. } => "string_hashed",
            Encoder::IntegerHashed { .. } => "integer_hashed",
            Encoder::Text { .. } => "text",
        }
    }

    pub fn cell_type(&self) -> CellType {
        match &self.encoder {
            Encoder::Number { .. } | Encoder::FloatDiscretized { .. } => CellType::Number,
            Encoder::IntegerCategorical { .. } | Encoder::IntegerHashed { .. } => CellType::Integer,
            _ => CellType::Text,
        }
    }

    /// Whether the values are indices (for an Embedding).
    pub fn is_index(&self) -> bool {
        matches!(
            &self.encoder,
            Encoder::StringCategorical { output_mode: LookupMode::Int, .. }
                | Encoder::IntegerCategorical { output_mode: LookupMode::Int, .. }
                | Encoder::Text { output_mode: TextMode::Int, .. }
        )
    }

    /// For the summary: `island: 3 + 1 oov (string_categorical)`.
    pub fn origin(&self) -> String {
        let c = &self.column;
        let t = self.type_name();
        match &self.encoder {
            Encoder::Number { .. } => format!("{c}: 1 ({t})"),
            Encoder::FloatDiscretized { bin_boundaries, .. } => format!("{c}: {} bins ({t})", bin_boundaries.len() + 1),
            Encoder::StringCategorical { vocabulary, num_oov_indices, output_mode, .. } => {
                lookup_origin(c, t, vocabulary.len(), *num_oov_indices, *output_mode)
            }
            Encoder::IntegerCategorical { vocabulary, num_oov_indices, output_mode, .. } => {
                lookup_origin(c, t, vocabulary.len(), *num_oov_indices, *output_mode)
            }
            Encoder::StringHashed { num_bins } | Encoder::IntegerHashed { num_bins } => format!("{c}: {num_bins} bins ({t})"),
            Encoder::Text { vocabulary, output_mode: TextMode::Int, output_sequence_length, .. } => {
                format!("{c}: {} token indices, vocabulary {} + padding + 1 oov ({t}, int)", output_sequence_length.unwrap_or(1), vocabulary.len())
            }
            Encoder::Text { vocabulary, output_mode, .. } => {
                let mode = match output_mode {
                    TextMode::MultiHot => "multi_hot",
                    TextMode::Count => "count",
                    _ => "tf_idf",
                };
                format!("{c}: {} + 1 oov ({t}, {mode})", vocabulary.len())
            }
        }
    }

    /// The number of distinct indices the values may take, for an index column.
    pub fn index_count(&self) -> Option<usize> {
        match &self.encoder {
            Encoder::StringCategorical { vocabulary, num_oov_indices, output_mode: LookupMode::Int } => Some(num_oov_indices + vocabulary.len()),
            Encoder::IntegerCategorical { vocabulary, num_oov_indices, output_mode: LookupMode::Int } => Some(num_oov_indices + vocabulary.len()),
            Encoder::Text { vocabulary, output_mode: TextMode::Int, .. } => Some(2 + vocabulary.len()),
            _ => None,
        }
    }

    /// The first entries of the vocabulary (or the bins), for `inspect`.
    pub fn entries(&self) -> (usize, Vec<String>) {
        match &self.encoder {
            Encoder::StringCategorical { vocabulary, .. } | Encoder::Text { vocabulary, .. } => {
                (vocabulary.len(), vocabulary.iter().take(8).cloned().collect())
            }
            Encoder::IntegerCategorical { vocabulary, .. } => (vocabulary.len(), vocabulary.iter().take(8).map(|i| i.to_string()).collect()),
            Encoder::FloatDiscretized { bin_boundaries, .. } => (bin_boundaries.len(), bin_boundaries.iter().take(8).map(|b| b.to_string()).collect()),
            _ => (0, Vec::new()),
        }
    }

    /// Checks a saved prep (untrusted) for what encoding relies on.
    pub fn check(&self) -> Result<(), String> {
        let c = &self.column;
        let bad = |why: String| Err(format!("column '{c}': {why}"));
        let max = crate::spec::columns::MAX_TOKENS;
        match &self.encoder {
            Encoder::Number { .. } => {}
            Encoder::FloatDiscretized { bin_boundaries, fill } => {
                if bin_boundaries.len() > max || bin_boundaries.iter().chain(fill).any(|b| !b.is_finite()) || !bin_boundaries.windows(2).all(|w| w[0] <= w[1]) {
                    return bad("the bin boundaries must be finite and in increasing order".into());
                }
            }
            Encoder::StringCategorical { vocabulary, num_oov_indices, .. } => {
                if vocabulary.len() > max || *num_oov_indices > 1024 {
                    return bad("the vocabulary or its out-of-vocabulary indices are too many".into());
                }
            }
            Encoder::IntegerCategorical { vocabulary, num_oov_indices, .. } => {
                if vocabulary.len() > max || *num_oov_indices > 1024 {
                    return bad("the vocabulary or its out-of-vocabulary indices are too many".into());
                }
            }
            Encoder::StringHashed { num_bins } | Encoder::IntegerHashed { num_bins } => {
                if *num_bins == 0 || *num_bins > max {
                    return bad(format!("{num_bins} hash bins; it takes 1 to {max}"));
                }
            }
            Encoder::Text { vocabulary, ngrams, output_mode, output_sequence_length, idf_weights, .. } => {
                if vocabulary.len() > max || ngrams.is_empty() || ngrams.iter().any(|&n| n == 0 || n > 16) {
                    return bad("the vocabulary is too large or the n-gram sizes are not 1 to 16".into());
                }
                let len_ok = match output_mode {
                    TextMode::Int => output_sequence_length.is_some_and(|l| (1..=crate::spec::columns::MAX_SEQUENCE).contains(&l)),
                    _ => output_sequence_length.is_none(),
                };
                if !len_ok {
                    return bad("the output_sequence_length does not fit the output_mode".into());
                }
                let idf_ok = match (output_mode, idf_weights) {
                    (TextMode::TfIdf, Some(w)) => w.len() == vocabulary.len() + 1 && w.iter().all(|x| x.is_finite()),
                    (TextMode::TfIdf, None) => false,
                    (_, w) => w.is_none(),
                };
                if !idf_ok {
                    return bad("its idf weights must be one finite number per vocabulary index, for tf_idf only".into());
                }
            }
        }
        Ok(())
    }

    /// An encoder over (a copy of) this prep, with its lookup tables.
    pub fn coder(&self) -> Coder {
        let index = match &self.encoder {
            Encoder::StringCategorical { vocabulary, .. } | Encoder::Text { vocabulary, .. } => {
                vocabulary.iter().enumerate().map(|(k, t)| (t.clone(), k)).collect()
            }
            Encoder::IntegerCategorical { vocabulary, .. } => vocabulary.iter().enumerate().map(|(k, t)| (t.to_string(), k)).collect(),
            _ => HashMap::new(),
        };
        Coder { prep: self.clone(), index }
    }
}

fn lookup_origin(c: &str, t: &str, vocab: usize, oov: usize, mode: LookupMode) -> String {
    match mode {
        LookupMode::OneHot => format!("{c}: {vocab} + {oov} oov ({t})"),
        LookupMode::Int => format!("{c}: 1 index of {} ({vocab} + {oov} oov, {t}, int)", vocab + oov),
    }
}

/// Encodes cells of one fitted column.
pub struct Coder {
    prep: ColumnPrep,
    index: HashMap<String, usize>,
}

impl Coder {
    pub fn width(&self) -> usize {
        self.prep.width()
    }

    pub fn prep(&self) -> &ColumnPrep {
        &self.prep
    }

    /// Writes the values of one cell into `out` (`width()` zeros on entry).
    /// Returns whether the value was never seen in training (mapped to the
    /// out-of-vocabulary slot). A missing number stays NaN (filled later
    /// with the training mean); other missing values were ruled on by
    /// `missing` when read, so here they are the out-of-vocabulary slot,
    /// no tokens or no bin.
    pub fn encode(&self, cell: Cell, out: &mut [f32]) -> Result<bool, String> {
        let text = |c: Cell| match c {
            Cell::Text(s) => s.to_string(),
            Cell::Num(x) => x.to_string(),
        };
        match &self.prep.encoder {
            Encoder::Number { .. } => {
                out[0] = match cell {
                    Cell::Num(x) => x,
                    Cell::Text(_) => f32::NAN,
                };
                Ok(false)
            }
            Encoder::FloatDiscretized { bin_boundaries, fill } => {
                let x = match cell {
                    Cell::Num(x) if !x.is_nan() => Some(x),
                    _ => *fill,
                };
                if let Some(x) = x {
                    out[bin_boundaries.partition_point(|&b| b <= x)] = 1.0;
                }
                Ok(false)
            }
            Encoder::StringCategorical { num_oov_indices, output_mode, .. } | Encoder::IntegerCategorical { num_oov_indices, output_mode, .. } => {
                let s = text(cell);
                let (k, unseen) = match self.index.get(&s) {
                    _ if s.is_empty() && *num_oov_indices > 0 => (0, false),
                    Some(&k) => (num_oov_indices + k, false),
                    None if *num_oov_indices == 0 => {
                        return Err(format!("'{s}' never occurs in the training data, and the column has no out-of-vocabulary index (num_oov_indices: 0)"));
                    }
                    None => (self.oov_slot(&s, *num_oov_indices), !s.is_empty()),
                };
                match output_mode {
                    LookupMode::Int => out[0] = k as f32,
                    LookupMode::OneHot => out[k] = 1.0,
                }
                Ok(unseen)
            }
            Encoder::StringHashed { num_bins } | Encoder::IntegerHashed { num_bins } => {
                let s = text(cell);
                if !s.is_empty() {
                    out[(fingerprint64(s.as_bytes()) % *num_bins as u64) as usize] = 1.0;
                }
                Ok(false)
            }
            Encoder::Text { standardize: st, split, ngrams, output_mode, idf_weights, .. } => {
                let s = text(cell);
                let max = crate::spec::columns::MAX_CELL_TOKENS;
                if token_bound(&s, *split, ngrams) > max {
                    return Err(format!("the text gives more than {max} tokens (n-grams included), more than one cell may give"));
                }
                let toks = tokens(&standardize(&s, *st), *split, ngrams);
                let mut unseen = false;
                let offset = if *output_mode == TextMode::Int { 2 } else { 1 };
                let mut pos = 0;
                for t in &toks {
                    let id = match self.index.get(t) {
                        Some(&k) => k + offset,
                        None => {
                            unseen = true;
                            offset - 1
                        }
                    };
                    match output_mode {
                        TextMode::Int => {
                            if pos < out.len() {
                                out[pos] = id as f32;
                                pos += 1;
                            }
                        }
                        TextMode::MultiHot => out[id] = 1.0,
                        TextMode::Count | TextMode::TfIdf => out[id] += 1.0,
                    }
                }
                if let (TextMode::TfIdf, Some(w)) = (output_mode, idf_weights) {
                    out.iter_mut().zip(w).for_each(|(x, w)| *x *= w);
                }
                Ok(unseen)
            }
        }
    }

    /// Out-of-vocabulary slot of `s`: Keras hashes strings
    /// (Fingerprint64 % n) and takes integers modulo n.
    fn oov_slot(&self, s: &str, n: usize) -> usize {
        if n <= 1 {
            return 0;
        }
        match &self.prep.encoder {
            Encoder::IntegerCategorical { .. } => s.parse::<i64>().map_or(0, |i| i.rem_euclid(n as i64) as usize),
            _ => (fingerprint64(s.as_bytes()) % n as u64) as usize,
        }
    }
}

/// Fits column `spec` on its training cells (numbers: NaN missing; text:
/// "" missing).
pub fn fit(spec: &ColumnSpec, missing: Missing, cells: &super::prep::Values) -> ColumnPrep {
    use super::prep::Values;
    let column = spec.name.name.clone();
    let nums = |v: &Values| match v {
        Values::Num(v) => v.iter().copied().filter(|x| !x.is_nan()).collect::<Vec<f32>>(),
        Values::Str(_) => Vec::new(),
    };
    let strs = |v: &'_ Values| -> Vec<String> {
        match v {
            Values::Str(v) => v.clone(),
            Values::Num(_) => Vec::new(),
        }
    };
    let encoder = match &spec.kind {
        ColumnKind::Number => Encoder::Number { kind: NumberKind::Number },
        ColumnKind::Float => Encoder::Number { kind: NumberKind::Float },
        ColumnKind::FloatNormalized => Encoder::Number { kind: NumberKind::FloatNormalized },
        ColumnKind::FloatRescaled { .. } => Encoder::Number { kind: NumberKind::FloatRescaled },
        ColumnKind::FloatDiscretized { num_bins, bin_boundaries } => {
            let v = nums(cells);
            let fill = (missing == Missing::Mean && !v.is_empty()).then(|| (v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64) as f32);
            let bin_boundaries = match (bin_boundaries, num_bins) {
                (Some(b), _) => b.iter().map(|&x| x as f32).collect(),
                (None, Some(n)) => quantile_boundaries(v, *n),
                (None, None) => Vec::new(),
            };
            Encoder::FloatDiscretized { bin_boundaries, fill }
        }
        ColumnKind::Categorical { integer, max_tokens, num_oov_indices, output_mode } => {
            let keep = max_tokens.map(|m| m.saturating_sub(*num_oov_indices));
            let mut counts: HashMap<String, usize> = HashMap::new();
            for s in strs(cells).into_iter().filter(|s| !s.is_empty()) {
                *counts.entry(s).or_default() += 1;
            }
            if *integer {
                // IntegerLookup's oov_token, -1, never becomes a token.
                let counts: HashMap<i64, usize> = counts.into_iter().filter_map(|(s, c)| s.parse::<i64>().ok().filter(|&i| i != -1).map(|i| (i, c))).collect();
                Encoder::IntegerCategorical { vocabulary: by_frequency(counts, keep), num_oov_indices: *num_oov_indices, output_mode: *output_mode }
            } else {
                counts.remove("[UNK]");
                Encoder::StringCategorical { vocabulary: by_frequency(counts, keep), num_oov_indices: *num_oov_indices, output_mode: *output_mode }
            }
        }
        ColumnKind::Hashed { integer: false, num_bins } => Encoder::StringHashed { num_bins: *num_bins },
        ColumnKind::Hashed { integer: true, num_bins } => Encoder::IntegerHashed { num_bins: *num_bins },
        ColumnKind::Text(t) => fit_text(t, &strs(cells)),
    };
    ColumnPrep { column, missing, encoder }
}

fn fit_text(t: &TextSpec, docs: &[String]) -> Encoder {
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut df: HashMap<String, usize> = HashMap::new();
    for d in docs {
        let toks = tokens(&standardize(d, t.standardize), t.split, &t.ngrams);
        for tok in &toks {
            *counts.entry(tok.clone()).or_default() += 1;
        }
        if t.output_mode == TextMode::TfIdf {
            let mut seen: Vec<&String> = toks.iter().collect();
            seen.sort();
            seen.dedup();
            for tok in seen {
                *df.entry(tok.clone()).or_default() += 1;
            }
        }
    }
    counts.remove("[UNK]");
    counts.remove("");
    let reserved = if t.output_mode == TextMode::Int { 2 } else { 1 };
    let vocabulary = by_frequency(counts, t.max_tokens.map(|m| m.saturating_sub(reserved)));
    let idf_weights = (t.output_mode == TextMode::TfIdf).then(|| {
        let n = docs.len() as f64;
        let w: Vec<f64> = vocabulary.iter().map(|tok| (1.0 + n / (1.0 + df.get(tok).copied().unwrap_or(0) as f64)).ln()).collect();
        // The out-of-vocabulary index gets the mean idf (Keras).
        let oov = if w.is_empty() { 0.0 } else { w.iter().sum::<f64>() / w.len() as f64 };
        std::iter::once(oov).chain(w).map(|x| x as f32).collect()
    });
    Encoder::Text {
        vocabulary,
        standardize: t.standardize,
        split: t.split,
        ngrams: t.ngrams.clone(),
        output_mode: t.output_mode,
        output_sequence_length: t.output_sequence_length,
        idf_weights,
    }
}

/// Keras Discretization's adapted boundaries (exact form of its summary):
/// boundary k = `np.interp(k / bins, [1/n, 2/n, ..., 1], sorted)`; with
/// fewer values than bins, every value but the largest.
fn quantile_boundaries(mut v: Vec<f32>, bins: usize) -> Vec<f32> {
    v.sort_by(f32::total_cmp);
    let n = v.len();
    if n == 0 {
        return Vec::new();
    }
    if n < bins {
        return v[..n - 1].to_vec();
    }
    (1..bins)
        .map(|k| {
            let q = k as f64 / bins as f64;
            // xp[i] = (i + 1) / n
            let pos = q * n as f64 - 1.0;
            if pos <= 0.0 {
                return v[0];
            }
            let i = pos.floor() as usize;
            if i + 1 >= n {
                return v[n - 1];
            }
            let frac = pos - i as f64;
            (v[i] as f64 + frac * (v[i + 1] as f64 - v[i] as f64)) as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Named;
    use crate::spec::columns::ColumnKind;
    use serde_json::Value as J;

    fn spec(kind: ColumnKind) -> ColumnSpec {
        ColumnSpec { name: Named { name: "c".into(), pos: Default::default() }, type_name: "x", kind, missing: None, pos: Default::default() }
    }

    fn strs(v: &[J]) -> Vec<String> {
        v.iter().map(|x| x.as_str().map(String::from).unwrap_or_else(|| x.to_string())).collect()
    }

    fn text_spec(cfg: &J) -> TextSpec {
        let mode = match cfg["output_mode"].as_str().unwrap_or("int") {
            "multi_hot" => TextMode::MultiHot,
            "count" => TextMode::Count,
            "tf_idf" => TextMode::TfIdf,
            _ => TextMode::Int,
        };
        let standardize = match cfg.get("standardize") {
            None => Standardize::LowerAndStripPunctuation,
            Some(J::Null) => Standardize::None,
            Some(s) => match s.as_str().unwrap() {
                "lower" => Standardize::Lower,
                "strip_punctuation" => Standardize::StripPunctuation,
                _ => Standardize::LowerAndStripPunctuation,
            },
        };
        let split = match cfg.get("split") {
            None => SplitMode::Whitespace,
            Some(J::Null) => SplitMode::None,
            Some(s) if s == "character" => SplitMode::Character,
            _ => SplitMode::Whitespace,
        };
        let ngrams = match cfg.get("ngrams") {
            Some(J::Number(n)) => (1..=n.as_u64().unwrap() as usize).collect(),
            Some(J::Array(a)) => a.iter().map(|x| x.as_u64().unwrap() as usize).collect(),
            _ => vec![1],
        };
        TextSpec {
            max_tokens: cfg["max_tokens"].as_u64().map(|m| m as usize),
            standardize,
            split,
            ngrams,
            output_mode: mode,
            output_sequence_length: cfg["output_sequence_length"].as_u64().map(|m| m as usize),
        }
    }

    /// Replays tests/data/keras_preprocessing.json (bench/keras_checks/preprocessing.py,
    /// Keras 3.15.1 on TensorFlow 2.21): vocabularies, indices, and values to 1e-5.
    #[test]
    fn matches_keras_preprocessing_layers() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/keras_preprocessing.json")).unwrap();
        let root: J = serde_json::from_str(&text).unwrap();
        let mut checked = 0;
        for case in root["cases"].as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            let cfg = &case["config"];
            // Keras options nnrun does not offer: mask tokens, padding to
            // max_tokens, ragged int output, sparse.
            if cfg.get("mask_token").is_some_and(|m| !m.is_null())
                || cfg.get("mask_value").is_some_and(|m| !m.is_null())
                || cfg.get("pad_to_max_tokens") == Some(&J::Bool(true))
                || case["call"] == "per_row"
                || case.get("input_dtype").is_some_and(|d| d == "float")
                // nnrun reads "" as a missing value (the out-of-vocabulary
                // slot); Keras without a mask token learns it as a word.
                || (case["layer"] == "StringLookup" && case["adapt"].as_array().is_some_and(|a| a.iter().any(|x| x == "")))
                // From 100 values on, Keras's Discretization thins its data
                // first (approximate quantiles); nnrun's are exact.
                || name.contains("250_samples")
            {
                continue;
            }
            let layer = case["layer"].as_str().unwrap();
            let oov = cfg["num_oov_indices"].as_u64().unwrap_or(1) as usize;
            let lookup_mode = if cfg["output_mode"] == "one_hot" { LookupMode::OneHot } else { LookupMode::Int };
            let max_tokens = cfg["max_tokens"].as_u64().map(|m| m as usize);
            let (kind, numeric) = match layer {
                "TextVectorization" => (ColumnKind::Text(text_spec(cfg)), false),
                "StringLookup" => (ColumnKind::Categorical { integer: false, max_tokens, num_oov_indices: oov, output_mode: lookup_mode }, false),
                "IntegerLookup" => (ColumnKind::Categorical { integer: true, max_tokens, num_oov_indices: oov, output_mode: lookup_mode }, false),
                "Hashing" => {
                    let integer = case["input_dtype"] == "int";
                    if cfg["output_mode"] == "one_hot" || cfg.get("output_mode").is_none() || cfg["output_mode"] == "int" {
                        (ColumnKind::Hashed { integer, num_bins: cfg["num_bins"].as_u64().unwrap() as usize }, false)
                    } else {
                        continue;
                    }
                }
                "Discretization" => {
                    let b = cfg["bin_boundaries"].as_array().map(|b| b.iter().map(|x| x.as_f64().unwrap()).collect());
                    (ColumnKind::FloatDiscretized { num_bins: cfg["num_bins"].as_u64().map(|n| n as usize), bin_boundaries: b }, true)
                }
                _ => continue,
            };
            let adapt = case["adapt"].as_array().map(|a| a.to_vec()).unwrap_or_default();
            let values = if numeric {
                super::super::prep::Values::Num(adapt.iter().map(|x| x.as_f64().unwrap() as f32).collect())
            } else {
                super::super::prep::Values::Str(strs(&adapt))
            };
            let prep = fit(&spec(kind), Missing::Mean, &values);
            if let Some(v) = case["vocabulary"].as_array() {
                let mut want = strs(v);
                let reserved = match (&prep.encoder, layer) {
                    (Encoder::Text { output_mode: TextMode::Int, .. }, _) => 2,
                    _ => oov,
                };
                want.drain(..reserved.min(want.len()));
                let got = match &prep.encoder {
                    Encoder::StringCategorical { vocabulary, .. } | Encoder::Text { vocabulary, .. } => vocabulary.clone(),
                    Encoder::IntegerCategorical { vocabulary, .. } => vocabulary.iter().map(|i| i.to_string()).collect(),
                    _ => want.clone(),
                };
                assert_eq!(got, want, "{name}: vocabulary");
            }
            if let (Some(b), Encoder::FloatDiscretized { bin_boundaries, .. }) = (case["bin_boundaries"].as_array(), &prep.encoder) {
                let want: Vec<f32> = b.iter().map(|x| x.as_f64().unwrap() as f32).collect();
                assert_eq!(bin_boundaries.len(), want.len(), "{name}: boundaries");
                for (g, w) in bin_boundaries.iter().zip(&want) {
                    assert!((g - w).abs() <= 1e-5 * w.abs().max(1.0), "{name}: boundaries {bin_boundaries:?} vs {want:?}");
                }
            }
            let coder = prep.coder();
            for (input, want) in case["inputs"].as_array().unwrap().iter().zip(case["outputs"].as_array().unwrap()) {
                let want: Vec<f64> = match want {
                    J::Array(a) => a
                        .iter()
                        .flat_map(|x| match x {
                            J::Array(inner) => inner.iter().map(|y| y.as_f64().unwrap()).collect::<Vec<_>>(),
                            y => vec![y.as_f64().unwrap()],
                        })
                        .collect(),
                    y => vec![y.as_f64().unwrap()],
                };
                let cell_text;
                let cell = if numeric {
                    Cell::Num(input.as_f64().unwrap() as f32)
                } else {
                    cell_text = input.as_str().map(String::from).unwrap_or_else(|| input.to_string());
                    Cell::Text(&cell_text)
                };
                let mut out = vec![0.0f32; coder.width()];
                // Int-mode Hashing and Discretization give the bin index; nnrun one-hot encodes it.
                let hashed_int = (layer == "Hashing" || layer == "Discretization") && cfg["output_mode"] != "one_hot";
                if let (Cell::Text(""), Encoder::StringCategorical { .. } | Encoder::IntegerCategorical { .. } | Encoder::StringHashed { .. }) =
                    (cell, &prep.encoder)
                {
                    // nnrun reads "" as a missing value (the OOV slot); Keras learns it.
                    continue;
                }
                coder.encode(cell, &mut out).unwrap();
                let got: Vec<f64> =
                    if hashed_int { vec![out.iter().position(|&x| x == 1.0).unwrap_or(0) as f64] } else { out.iter().map(|&x| x as f64).collect() };
                assert_eq!(got.len(), want.len(), "{name}: width for {input}");
                for (g, w) in got.iter().zip(&want) {
                    assert!((g - w).abs() <= 1e-5 * w.abs().max(1.0), "{name}: {input} gives {got:?}, Keras {want:?}");
                }
            }
            checked += 1;
        }
        assert!(checked >= 28, "only {checked} Keras cases checked");
    }

    #[test]
    fn standardize_and_split_like_keras() {
        assert_eq!(standardize("Don't STOP, C++ e.g. CAFÉ", Standardize::LowerAndStripPunctuation), "dont stop c eg cafÉ");
        assert_eq!(tokens("a  b\tc\x0Bd", SplitMode::Whitespace, &[1]), ["a", "b", "c", "d"]);
        assert_eq!(tokens("the cat sat", SplitMode::Whitespace, &[1, 2]), ["the", "cat", "sat", "the cat", "cat sat"]);
        assert_eq!(tokens("ab", SplitMode::Character, &[1]), ["a", "b"]);
        assert!(tokens("", SplitMode::None, &[1]).is_empty());
    }

    #[test]
    fn a_huge_text_cell_is_refused_not_split() {
        let kind = ColumnKind::Text(TextSpec {
            max_tokens: None,
            standardize: Standardize::None,
            split: SplitMode::Whitespace,
            ngrams: (1..=16).collect(),
            output_mode: TextMode::MultiHot,
            output_sequence_length: None,
        });
        let p = fit(&spec(kind), Missing::Error, &super::super::prep::Values::Str(vec!["a b".into()]));
        let big = "a ".repeat(70_000);
        assert_eq!(token_bound(&big, SplitMode::Whitespace, &p_ngrams(&p)), 70_000 * 16);
        let mut out = vec![0.0; p.width()];
        assert!(p.coder().encode(Cell::Text(&big), &mut out).unwrap_err().contains("more than 1048576 tokens"));
    }

    fn p_ngrams(p: &ColumnPrep) -> Vec<usize> {
        match &p.encoder {
            Encoder::Text { ngrams, .. } => ngrams.clone(),
            _ => vec![1],
        }
    }

    #[test]
    fn cells_are_read_by_type() {
        let m: Vec<String> = crate::spec::data::MISSING_VALUES.iter().map(|s| s.to_string()).collect();
        assert!(matches!(read_cell("NA", CellType::Number, &m), Ok(Read::Missing)));
        assert!(matches!(read_cell("2.5", CellType::Number, &m), Ok(Read::Num(x)) if x == 2.5));
        assert!(read_cell("Torgersen", CellType::Number, &m).unwrap_err().contains("declare it in `data.columns`"));
        assert!(matches!(read_cell("3.0", CellType::Integer, &m), Ok(Read::Text(s)) if s == "3"));
        assert!(read_cell("3.5", CellType::Integer, &m).unwrap_err().contains("not an integer"));
        assert!(matches!(read_cell("None", CellType::Text, &m), Ok(Read::Missing)));
    }

    #[test]
    fn unseen_values_take_the_oov_slot_and_are_counted() {
        let kind = ColumnKind::Categorical { integer: false, max_tokens: Some(3), num_oov_indices: 1, output_mode: LookupMode::OneHot };
        let cells = super::super::prep::Values::Str(["b", "a", "b", "c", "", "c", "c"].iter().map(|s| s.to_string()).collect());
        let p = fit(&spec(kind), Missing::Mean, &cells);
        // By count (c 3, b 2), capped at max_tokens minus the oov index.
        assert_eq!(p.encoder, Encoder::StringCategorical { vocabulary: vec!["c".into(), "b".into()], num_oov_indices: 1, output_mode: LookupMode::OneHot });
        let c = p.coder();
        let mut out = vec![0.0; 3];
        assert!(c.encode(Cell::Text("zebra"), &mut out).unwrap());
        assert_eq!(out, [1.0, 0.0, 0.0]);
        let mut out = vec![0.0; 3];
        assert!(!c.encode(Cell::Text("b"), &mut out).unwrap());
        assert_eq!(out, [0.0, 0.0, 1.0]);
        // A missing value is the oov slot too, but not "unseen".
        let mut out = vec![0.0; 3];
        assert!(!c.encode(Cell::Text(""), &mut out).unwrap());
        assert_eq!(out, [1.0, 0.0, 0.0]);
        assert_eq!(p.origin(), "c: 2 + 1 oov (string_categorical)");
    }

    #[test]
    fn a_hundred_thousand_distinct_values_are_capped() {
        let kind = ColumnKind::Categorical { integer: false, max_tokens: Some(100), num_oov_indices: 1, output_mode: LookupMode::Int };
        let cells = super::super::prep::Values::Str((0..100_000).map(|i| format!("v{i}")).collect());
        let p = fit(&spec(kind), Missing::Error, &cells);
        assert_eq!((p.width(), p.index_count()), (1, Some(100)));
        let (n, first) = p.entries();
        // All tie at 1: the larger string first, as Keras.
        assert_eq!((n, first[0].as_str()), (99, "v99999"));
    }
}
