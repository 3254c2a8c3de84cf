//! The model summary, as Keras's `model.summary()` prints it, and its JSON form.

use crate::diag::{Diagnostic, DiagnosticJson, Severity};
use crate::graph::{Model, Src};
use crate::layers::{Shape, fmt_shape};
use serde::Serialize;
use std::fmt::Write as _;

/// f32 weights.
const BYTES_PER_PARAM: usize = crate::layers::BYTES_PER_VALUE;

/// The widest a table cell gets: a long layer name, or a merge of thousands
/// of layers, would otherwise widen every row of the table.
const MAX_CELL: usize = 60;
/// Inputs a "Connected to" cell names before "... (N more)".
const MAX_CONNECTIONS: usize = 4;

/// `text` cut to `MAX_CELL` characters, ending in `...` when cut.
fn cell(text: String) -> String {
    if text.chars().count() <= MAX_CELL { text } else { format!("{}...", text.chars().take(MAX_CELL - 3).collect::<String>()) }
}

/// The Keras-style table: one row per layer, then the parameter totals.
/// Functional models also list model inputs and what each layer connects to.
/// Linear in the number of layers, and each row at most a few hundred bytes.
pub fn text(model: &Model) -> String {
    let mut header = vec!["Layer (type)", "Output Shape", "Param #"];
    if model.functional {
        header.push("Connected to");
    }
    let mut rows: Vec<Vec<String>> = Vec::new();
    if model.functional {
        for inp in &model.inputs {
            rows.push(vec![cell(format!("{} (InputLayer)", inp.name)), cell(fmt_shape(&inp.shape)), "0".into(), "-".into()]);
        }
    }
    for l in &model.layers {
        let shape = l.output_shape.as_ref().map_or("?".to_string(), |s| fmt_shape(s));
        let params = if l.output_shape.is_some() { thousands(l.params()) } else { "?".into() };
        let mut cells = vec![cell(format!("{} ({})", l.name, l.type_name)), cell(shape), params];
        if model.functional {
            let from: Vec<&str> = l.inputs.iter().take(MAX_CONNECTIONS).map(|&s| model.src_name(s)).collect();
            let more = l.inputs.len().saturating_sub(MAX_CONNECTIONS);
            let more = if more > 0 { format!(", ... ({} more)", thousands(more)) } else { String::new() };
            // The names are cut first, so the count of the others stays visible.
            let names = cell(from.join(", "));
            cells.push(format!("{names}{more}"));
        }
        rows.push(cells);
    }

    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let rule = |l: &str, m: &str, r: &str, fill: &str| {
        let parts: Vec<String> = width.iter().map(|w| fill.repeat(w + 2)).collect();
        format!("{l}{}{r}\n", parts.join(m))
    };
    // Param # is right-aligned, the rest left-aligned.
    let line = |out: &mut String, cells: &[String], bar: &str| {
        out.push_str(bar);
        for (i, &w) in width.iter().enumerate() {
            let c = cells.get(i).map_or("", String::as_str);
            let _ = if i == 2 { write!(out, " {c:>w$} {bar}") } else { write!(out, " {c:<w$} {bar}") };
        }
        out.push('\n');
    };

    let mut out = format!("Model: \"{}\"\n", cell(model.name.clone()));
    out += &rule("┏", "┳", "┓", "━");
    line(&mut out, &header.iter().map(|h| h.to_string()).collect::<Vec<_>>(), "┃");
    out += &rule("┡", "╇", "┩", "━");
    let between = rule("├", "┼", "┤", "─");
    for (i, r) in rows.iter().enumerate() {
        line(&mut out, r, "│");
        if i + 1 < rows.len() {
            out += &between;
        }
    }
    out += &rule("└", "┴", "┘", "─");
    let total = model.total_params();
    let trainable = model.trainable_params();
    for (label, n) in [("Total", total), ("Trainable", trainable), ("Non-trainable", total.saturating_sub(trainable))] {
        out += &format!(" {label} params: {} ({})\n", thousands(n), memory_size(n.saturating_mul(BYTES_PER_PARAM)));
    }
    // Widths the data's columns give, and where each part comes from.
    for inp in model.inputs.iter().filter(|i| !i.origin.is_empty()) {
        let how = if inp.written { "written" } else { "from the data" };
        out += &format!(" Input '{}': {} values ({how})\n", cell(inp.name.clone()), thousands(inp.shape.iter().product()));
        for o in inp.origin.iter().take(MAX_ORIGIN) {
            // Wider than a table cell: these lines stand alone.
            let line: String =
                if o.chars().count() > 3 * MAX_CELL { format!("{}...", o.chars().take(3 * MAX_CELL - 3).collect::<String>()) } else { o.clone() };
            out += &format!("   {line}\n");
        }
        if inp.origin.len() > MAX_ORIGIN {
            out += &format!("   ... ({} more columns)\n", thousands(inp.origin.len() - MAX_ORIGIN));
        }
    }
    out
}

/// Columns the summary lists per input before "... (N more columns)".
const MAX_ORIGIN: usize = 20;

/// `1234567` -> `1,234,567`
pub fn thousands(n: usize) -> String {
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

/// Keras's `readable_memory_size`: 1024-based, two decimals.
pub fn memory_size(bytes: usize) -> String {
    let mut size = bytes as f64;
    for unit in ["B", "KB", "MB", "GB", "TB"] {
        if size / 1024.0 < 1.0 {
            return format!("{size:.2} {unit}");
        }
        size /= 1024.0;
    }
    format!("{size:.2} PB")
}

#[derive(Serialize)]
pub struct JsonLayer<'a> {
    pub name: &'a str,
    #[serde(rename = "type")]
    pub type_name: &'a str,
    pub inputs: Vec<&'a str>,
    pub output_shape: Option<&'a Shape>,
    pub params: usize,
    pub trainable_params: usize,
    /// The layer's weights in Keras order (empty where the shape is unknown):
    /// what `bench/flops.py` counts the multiply-adds from.
    pub weights: Vec<JsonWeight<'a>>,
}

/// One weight of a layer: `{"name": "kernel", "shape": [784, 512], "trainable": true}`.
#[derive(Serialize)]
pub struct JsonWeight<'a> {
    pub name: &'a str,
    pub shape: &'a [usize],
    pub trainable: bool,
}

#[derive(Serialize)]
pub struct JsonInput<'a> {
    pub name: &'a str,
    pub shape: &'a Shape,
    /// Where the width comes from when the data's columns give it.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub origin: &'a [String],
}

/// One line of `validate --format json`.
#[derive(Serialize)]
pub struct JsonReport<'a> {
    pub file: &'a str,
    pub name: Option<&'a str>,
    pub valid: bool,
    pub inputs: Vec<JsonInput<'a>>,
    pub outputs: Vec<&'a str>,
    pub layers: Vec<JsonLayer<'a>>,
    pub total_params: usize,
    pub trainable_params: usize,
    pub non_trainable_params: usize,
    pub weights_bytes: usize,
    pub errors: Vec<DiagnosticJson<'a>>,
    pub warnings: Vec<DiagnosticJson<'a>>,
}

impl<'a> JsonReport<'a> {
    pub fn new(file: &'a str, model: Option<&'a Model>, diags: &'a [Diagnostic]) -> Self {
        let of = |sev: Severity| diags.iter().filter(|d| d.severity == sev).map(DiagnosticJson::from).collect::<Vec<_>>();
        let errors = of(Severity::Error);
        let (total, trainable) = model.map_or((0, 0), |m| (m.total_params(), m.trainable_params()));
        JsonReport {
            file,
            name: model.map(|m| m.name.as_str()),
            valid: errors.is_empty(),
            inputs: model.map_or(Vec::new(), |m| m.inputs.iter().map(|i| JsonInput { name: &i.name, shape: &i.shape, origin: &i.origin }).collect()),
            outputs: model.map_or(Vec::new(), |m| m.outputs.iter().map(|&o| m.layers[o].name.as_str()).collect()),
            layers: model.map_or(Vec::new(), |m| {
                m.layers
                    .iter()
                    .map(|l| JsonLayer {
                        name: &l.name,
                        type_name: &l.type_name,
                        inputs: l.inputs.iter().map(|&s: &Src| m.src_name(s)).collect(),
                        output_shape: l.output_shape.as_ref(),
                        params: l.params(),
                        trainable_params: l.trainable_params(),
                        weights: l.weights.iter().map(|w| JsonWeight { name: &w.name, shape: &w.shape, trainable: w.trainable }).collect(),
                    })
                    .collect()
            }),
            total_params: total,
            trainable_params: trainable,
            non_trainable_params: total.saturating_sub(trainable),
            weights_bytes: total.saturating_mul(BYTES_PER_PARAM),
            errors,
            warnings: of(Severity::Warning),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_like_keras() {
        assert_eq!(thousands(407050), "407,050");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(memory_size(407050 * 4), "1.55 MB");
        assert_eq!(memory_size(0), "0.00 B");
        assert_eq!(memory_size(2048), "2.00 KB");
    }
}
