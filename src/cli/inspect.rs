//! `nnrun inspect`: what a model file holds, from the file alone: summary,
//! embedded spec, preprocessing, final metrics and provenance.

use super::{CliError, print_out};
use crate::artifact::{self, Restored};
use crate::summary;
use std::fmt::Write;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The trained model file (runs/<name>/model.safetensors)
    #[arg(value_name = "MODEL")]
    pub model: std::path::PathBuf,
}

pub fn run(args: &Args) -> Result<(), CliError> {
    let r = artifact::restore(&args.model, &candle_core::Device::Cpu)?;
    print_out(&text(&r))
}

/// Long column lists as "first … last (N columns)".
fn columns(names: &[String]) -> String {
    match names {
        [first, .., last] if names.len() > 8 => format!("{first} … {last} ({} columns)", names.len()),
        _ => names.join(", "),
    }
}

/// serde's name of a unit enum value (`standard`, `csv`).
fn name_of(v: &impl serde::Serialize) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// Training values first, then validation, then test; names sorted within.
fn metric_order(key: &str) -> (u8, &str) {
    let group = if key.starts_with("val_") {
        1
    } else if key.starts_with("test_") {
        2
    } else if key == "learning_rate" {
        3
    } else {
        0
    };
    (group, key)
}

pub fn text(r: &Restored) -> String {
    let meta = &r.file.meta;
    let mut s = format!("Model file: {}\n\n", r.file.file);
    s.push_str(&summary::text(&r.net.graph));

    s.push_str("\nSpec (embedded):\n");
    for line in meta.spec.lines() {
        let _ = writeln!(s, "  {line}");
    }

    let p = &r.prep;
    let _ = writeln!(
        s,
        "\nPreprocessing:\n  source: {}, scale: {}, normalize: {}, missing: {}",
        name_of(&p.source),
        p.scale,
        name_of(&p.normalize),
        name_of(&p.missing)
    );
    if let Some(w) = &p.window {
        let _ = writeln!(s, "  window: {} values of column '{}'", w.size, w.column);
    }
    for i in &p.inputs {
        let features = if i.features.is_empty() { "IDX image pixels".to_string() } else { columns(&i.features) };
        let _ = writeln!(s, "  input '{}' {:?}: {features}", i.name, i.shape);
        // Typed columns: what each encodes, and its vocabulary's first entries.
        for c in &i.columns {
            let (n, first) = c.entries();
            let more = if n > first.len() { format!(", ... ({n} in all)") } else { String::new() };
            let entries =
                if first.is_empty() { String::new() } else { format!(": {}{more}", first.iter().map(|e| format!("'{e}'")).collect::<Vec<_>>().join(", ")) };
            let missing = if c.missing == r.prep.missing { String::new() } else { format!(", missing: {}", name_of(&c.missing)) };
            let _ = writeln!(s, "    {}{missing}{entries}", c.origin());
        }
    }
    for o in &p.outputs {
        let classes = match &o.classes {
            Some(c) if o.loss == "ctc" => format!(", tokens: {}", c.join(", ")),
            Some(c) => format!(", classes: {}", c.join(", ")),
            None if o.loss.ends_with("crossentropy") => ", classes: numeric labels".to_string(),
            None => String::new(),
        };
        let _ = writeln!(s, "  output '{}' ({}): target '{}'{classes}", o.name, o.loss, o.target);
    }

    s.push_str("\nFinal metrics:\n");
    let mut keys: Vec<&String> = meta.metrics.keys().collect();
    keys.sort_by_key(|k| metric_order(k));
    for k in keys {
        let v = meta.metrics[k];
        let _ = if k == "learning_rate" { writeln!(s, "  {k}: {v}") } else { writeln!(s, "  {k}: {v:.4}") };
    }

    let _ = writeln!(s, "\nSeed: {}", meta.seed);
    if let Some(n) = meta.limit {
        let _ = writeln!(s, "Trained on the first {n} samples (--limit)");
    }
    let _ = writeln!(s, "Data paths relative to: {}", meta.spec_dir);
    // Empty in files from before it was recorded.
    for (file, sha) in &meta.data_sha256 {
        let _ = writeln!(s, "  {file}: sha256 {sha}");
    }
    let _ = writeln!(s, "nnrun version: {}", meta.version);
    let _ = writeln!(s, "Format version: {}", meta.format_version);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_column_lists_are_abbreviated() {
        let p: Vec<String> = (0..784).map(|i| format!("p{i}")).collect();
        assert_eq!(columns(&p), "p0 … p783 (784 columns)");
        assert_eq!(columns(&p[..3]), "p0, p1, p2");
    }
}
