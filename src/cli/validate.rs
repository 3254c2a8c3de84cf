//! `nnrun validate`: static checks and the model summary, in milliseconds.

use super::{EXIT_INVALID, EXIT_IO, EXIT_OK, color_for};
use crate::diag::{Diagnostic, Style, render};
use crate::graph;
use crate::spec::Source;
use crate::summary::{self, JsonReport};
use crate::train::config;
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Spec files to check
    #[arg(required = true, value_name = "SPEC")]
    pub files: Vec<PathBuf>,
    /// Output format: a summary table, or one JSON object per spec per line
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Treat warnings as errors (exit 1)
    #[arg(long)]
    pub strict: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

pub fn run(args: &Args) -> u8 {
    let stdout = std::io::stdout();
    let style = Style { color: args.format == Format::Text && color_for(&stdout) };
    let mut out = stdout.lock();
    let mut code = EXIT_OK;
    for (i, path) in args.files.iter().enumerate() {
        let file_code = match Source::read(path) {
            Ok(source) => check_one(&source, args, style, i > 0, &mut out),
            Err(e) => {
                let shown = path.display().to_string();
                let d = Diagnostic::error(format!("cannot read {shown}: {e}"), Default::default(), "");
                match args.format {
                    Format::Json => print_json(&mut out, &JsonReport::new(&shown, None, std::slice::from_ref(&d))),
                    Format::Text => {
                        let _ = write!(std::io::stderr(), "{}", render(&d, &shown, "", Style { color: color_for(&std::io::stderr()) }));
                    }
                }
                EXIT_IO
            }
        };
        code = code.max(file_code);
    }
    let _ = out.flush();
    code
}

fn check_one(source: &Source, args: &Args, style: Style, separate: bool, out: &mut impl Write) -> u8 {
    let mut diags = Vec::new();
    let built = graph::from_source(source, &mut diags);
    if let Some((spec, model)) = &built {
        // The training and data sections are checked here too, so CI's validate
        // catches an optimizer typo or a missing data file before any training.
        if spec.training.is_some() && !diags.iter().any(Diagnostic::is_error) {
            config::read(spec, model, &mut diags);
        }
        if let Some(data) = &spec.data {
            let dir = std::path::Path::new(&source.path).parent().unwrap_or(std::path::Path::new(""));
            data.check_files(dir, &mut diags);
        }
    }
    // Read top to bottom: errors first, each group in file order.
    diags.sort_by_key(|d| (!d.is_error(), d.pos.line, d.pos.col));
    let model = built.as_ref().map(|(_, m)| m);
    let errors = diags.iter().filter(|d| d.is_error()).count();
    let warnings = diags.len() - errors;
    match args.format {
        Format::Json => print_json(out, &JsonReport::new(&source.path, model, &diags)),
        Format::Text => {
            if separate {
                let _ = writeln!(out);
            }
            if let (0, Some(m)) = (errors, model) {
                let _ = write!(out, "{}", summary::text(m));
            }
            for d in &diags {
                let _ = write!(out, "\n{}", render(d, &source.path, &source.text, style));
            }
            let _ = writeln!(out, "{}", verdict(&source.path, errors, warnings));
        }
    }
    if errors > 0 || (args.strict && warnings > 0) { EXIT_INVALID } else { EXIT_OK }
}

fn verdict(path: &str, errors: usize, warnings: usize) -> String {
    let plural = |n: usize, w: &str| if n == 1 { format!("1 {w}") } else { format!("{n} {w}s") };
    match (errors, warnings) {
        (0, 0) => format!("{path}: valid"),
        (0, w) => format!("\n{path}: valid, with {}", plural(w, "warning")),
        (e, 0) => format!("\n{path}: invalid, {}", plural(e, "error")),
        (e, w) => format!("\n{path}: invalid, {} and {}", plural(e, "error"), plural(w, "warning")),
    }
}

fn print_json(out: &mut impl Write, report: &JsonReport) {
    let _ = serde_json::to_writer(&mut *out, report);
    let _ = writeln!(out);
}
