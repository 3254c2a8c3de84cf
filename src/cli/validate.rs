//! `nnrun validate`: static checks and the model summary, in milliseconds.

use super::{CliError, EXIT_INVALID, EXIT_IO, EXIT_OK, color_for, verdict};
use crate::diag::{Diagnostic, SourceLines, Style, render};
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

/// Each spec's report is the output; the error only carries the exit code
/// (the worst of the specs: 2 unreadable, 1 invalid).
pub fn run(args: &Args) -> Result<(), CliError> {
    let stdout = std::io::stdout();
    let style = Style { color: args.format == Format::Text && color_for(&stdout) };
    let mut out = stdout.lock();
    let mut code = EXIT_OK;
    for (i, path) in args.files.iter().enumerate() {
        let file_code = match Source::read(path) {
            Ok(source) => check_one(&source, args, style, i > 0, &mut out),
            Err(e) => {
                let shown = path.display().to_string();
                let d = Diagnostic::error(e.to_string(), Default::default(), "");
                match args.format {
                    Format::Json => print_json(&mut out, &JsonReport::new(&shown, None, std::slice::from_ref(&d))),
                    Format::Text => {
                        let _ = write!(std::io::stderr(), "{}", render(&d, &shown, "", Style { color: color_for(&std::io::stderr()) }));
                    }
                }
                // Not there or not readable: I/O. Too large or not text: an invalid spec.
                if e.is_io() { EXIT_IO } else { EXIT_INVALID }
            }
        };
        code = code.max(file_code);
    }
    let _ = out.flush();
    if code == EXIT_OK { Ok(()) } else { Err(CliError::Reported(code)) }
}

fn check_one(source: &Source, args: &Args, style: Style, separate: bool, out: &mut impl Write) -> u8 {
    let mut diags = Vec::new();
    let dir = std::path::Path::new(&source.path).parent().unwrap_or(std::path::Path::new(""));
    // Widths that typed columns give are read off the training data.
    let built = match crate::spec::yaml::parse(&source.text) {
        Ok(root) => crate::data::build(&root, source, dir, None, &mut diags),
        Err(d) => {
            diags.push(d);
            None
        }
    };
    if let Some((spec, model)) = &built {
        // The training and data sections are checked here too, so CI's validate
        // catches an optimizer typo or a missing data file before any training.
        if spec.training.is_some() && !diags.iter().any(Diagnostic::is_error) {
            config::read(spec, model, &mut diags);
        }
        if let Some(data) = &spec.data {
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
            let lines = SourceLines::new(&source.text);
            for d in diags.iter().take(super::MAX_SHOWN) {
                let _ = write!(out, "\n{}", lines.render(d, &source.path, style));
            }
            if let Some(more) = super::not_shown(diags.len()) {
                let _ = write!(out, "\n{more}");
            }
            // A blank line sets the verdict off from the diagnostics above it.
            let gap = if diags.is_empty() { "" } else { "\n" };
            let _ = writeln!(out, "{gap}{}", verdict(&source.path, errors, warnings));
        }
    }
    if errors > 0 || (args.strict && warnings > 0) { EXIT_INVALID } else { EXIT_OK }
}

fn print_json(out: &mut impl Write, report: &JsonReport) {
    let _ = serde_json::to_writer(&mut *out, report);
    let _ = writeln!(out);
}
