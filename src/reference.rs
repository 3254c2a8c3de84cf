//! The layer section of docs/spec-reference.md, generated from the registry:
//! each layer documents exactly the arguments its reader reads, so the
//! reference can't drift from the code (a test compares the two).

use crate::layers::{Activation, REGISTRY};
use crate::spec::args::Args;
use crate::spec::training::LOSSES;
use std::fmt::Write as _;

const FAMILIES: &[(&str, &str)] =
    &[("core", "Core"), ("conv", "Convolution"), ("pooling", "Pooling"), ("norm", "Normalization"), ("rnn", "Recurrent"), ("merge", "Merging")];

/// Markdown listing every layer with its arguments and Keras defaults.
pub fn layers_markdown() -> String {
    let mut out = String::new();
    for (family, title) in FAMILIES {
        let _ = writeln!(out, "### {title}\n");
        for t in REGISTRY.iter().filter(|t| t.family == *family) {
            let mut args = Args::for_docs();
            (t.build)(&mut args);
            let _ = writeln!(out, "#### {}\n\n{}\n", t.name, t.summary);
            if args.docs.is_empty() {
                let _ = writeln!(out, "No arguments.\n");
                continue;
            }
            let _ = writeln!(out, "| argument | type | default |\n|---|---|---|");
            for d in &args.docs {
                let default = d.default.as_deref().map_or("**required**".to_string(), |v| format!("`{v}`"));
                let _ = writeln!(out, "| `{}` | {} | {default} |", d.name, d.kind.replace('|', "\\|"));
            }
            let _ = writeln!(out);
        }
    }
    let _ = writeln!(out, "### Activations\n\n{}\n", names(&Activation::names()));
    let _ = writeln!(out, "### Losses\n\n{}\n", names(LOSSES));
    let _ = writeln!(out, "### Metrics\n\n{}\n", names(crate::train::metrics::METRICS));
    let _ = writeln!(out, "### Column types\n\nThe types of `data.columns` (Keras FeatureSpace names); a column not listed is a number.\n");
    for (name, doc, args) in crate::spec::columns::docs() {
        let _ = writeln!(out, "#### `{name}`\n\n{doc}\n\n| argument | type | default |\n|---|---|---|");
        for d in &args {
            let default = d.default.as_deref().map_or("**required**".to_string(), |v| format!("`{v}`"));
            let _ = writeln!(out, "| `{}` | {} | {default} |", d.name, d.kind.replace('|', "\\|"));
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(out, "### Optimizers\n");
    for (name, docs) in crate::train::optim::reference_docs() {
        let _ = writeln!(out, "#### {name}\n\n| argument | type | default |\n|---|---|---|");
        for d in &docs {
            let default = d.default.as_deref().map_or("**required**".to_string(), |v| format!("`{v}`"));
            let _ = writeln!(out, "| `{}` | {} | {default} |", d.name, d.kind.replace('|', "\\|"));
        }
        let _ = writeln!(out);
    }
    out.pop();
    out
}

fn names(list: &[&str]) -> String {
    list.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

/// Marker lines in docs/spec-reference.md between which the generated part goes.
pub const BEGIN: &str = "<!-- BEGIN GENERATED: layers -->";
pub const END: &str = "<!-- END GENERATED: layers -->";

/// `doc` with its generated section replaced by the current one.
pub fn refresh(doc: &str) -> Option<String> {
    let start = doc.find(BEGIN)? + BEGIN.len();
    let end = doc.find(END)?;
    Some(format!("{}\n\n{}\n{}", &doc[..start], layers_markdown(), &doc[end..]))
}
