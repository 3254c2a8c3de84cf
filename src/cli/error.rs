//! The one error path of the binary. Every subcommand returns
//! `Result<(), CliError>`; `cli::main` renders the error once, in the
//! uv/ruff style of `diag::render`, and exits with its code.
//!
//! anyhow is not used: the exit code is part of the error's type, and a
//! context chain would have to be downcast to find it again.

use crate::artifact::ArtifactError;
use crate::checkpoint::CheckpointError;
use crate::data::DataError;
use crate::diag::{Diagnostic, Pos, SourceLines, Style, render};
use crate::io::ReadError;
use crate::train::fit::TrainError;

/// Exit codes: 0 ok, 1 invalid spec or data, 2 usage or I/O, 130 interrupted.
pub const EXIT_OK: u8 = 0;
pub const EXIT_INVALID: u8 = 1;
pub const EXIT_IO: u8 = 2;
/// After Ctrl-C (128 + SIGINT), as shells report it.
pub const EXIT_INTERRUPTED: u8 = 130;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A spec's errors (and warnings), shown against its text with carets.
    #[error("{file}: invalid")]
    Spec { file: String, text: String, diags: Vec<Diagnostic>, flags: Vec<Flag> },
    /// Input that was read and is not acceptable: a spec, data, a model
    /// file, a checkpoint, or a training that diverged. Exit 1.
    #[error("{message}")]
    Invalid { message: String, hint: Option<String> },
    /// A file that cannot be read or written, or a device that cannot be
    /// opened. The message names the path. Exit 2.
    #[error("{message}")]
    Io { message: String, hint: Option<String> },
    /// A command line that cannot work as given. Exit 2.
    #[error("{message}")]
    Usage { message: String, hint: Option<String> },
    /// Stopped by Ctrl-C; the message says what can be resumed. Exit 130.
    #[error("{0}")]
    Interrupted(String),
    /// The command's own report already said what failed (validate's
    /// verdict per spec): only the exit code is left to give.
    #[error("failed (exit {0})")]
    Reported(u8),
}

impl CliError {
    pub fn invalid(message: impl Into<String>) -> Self {
        CliError::Invalid { message: message.into(), hint: None }
    }
    pub fn io(message: impl Into<String>) -> Self {
        CliError::Io { message: message.into(), hint: None }
    }
    pub fn usage(message: impl Into<String>) -> Self {
        CliError::Usage { message: message.into(), hint: None }
    }

    /// `cannot read PATH: why` / `cannot write PATH: why`, exit 2.
    pub fn read(path: &std::path::Path, e: impl std::fmt::Display) -> Self {
        CliError::io(format!("cannot read {}: {e}", path.display()))
    }
    pub fn write(path: &std::path::Path, e: impl std::fmt::Display) -> Self {
        CliError::io(format!("cannot write {}: {e}", path.display()))
    }

    /// Puts `prefix` before the message (kinds with one): "cannot resume: ...".
    pub fn prefixed(mut self, prefix: &str) -> Self {
        if let CliError::Invalid { message, .. } | CliError::Io { message, .. } | CliError::Usage { message, .. } = &mut self {
            message.insert_str(0, prefix);
        }
        self
    }

    /// Adds a `hint:` line (kept for kinds that have one).
    pub fn with_hint(mut self, h: impl Into<String>) -> Self {
        if let CliError::Invalid { hint, .. } | CliError::Io { hint, .. } | CliError::Usage { hint, .. } = &mut self {
            *hint = Some(h.into());
        }
        self
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Spec { .. } | CliError::Invalid { .. } => EXIT_INVALID,
            CliError::Io { .. } | CliError::Usage { .. } => EXIT_IO,
            CliError::Interrupted(_) => EXIT_INTERRUPTED,
            CliError::Reported(code) => *code,
        }
    }

    /// What stderr shows; empty for `Reported`.
    pub fn render(&self, style: Style) -> String {
        match self {
            CliError::Spec { file, text, diags, flags } => {
                let mut diags: Vec<&Diagnostic> = diags.iter().collect();
                // As validate orders them: errors first, each group in file order.
                diags.sort_by_key(|d| (!d.is_error(), d.pos.line, d.pos.col));
                // Split once: thousands of errors in a large spec each need their line.
                let lines = SourceLines::new(text);
                let mut out: String = diags.iter().take(super::MAX_SHOWN).map(|d| render_in(d, file, &lines, flags, style)).collect();
                out.extend(super::not_shown(diags.len()));
                let errors = diags.iter().filter(|d| d.is_error()).count();
                out.push_str(&super::verdict(file, errors, diags.len() - errors));
                out.push('\n');
                out
            }
            CliError::Invalid { message, hint } | CliError::Io { message, hint } | CliError::Usage { message, hint } => {
                render(&Diagnostic::error(message.clone(), Pos::default(), "").with_hint_opt(hint.clone()), "", "", style)
            }
            CliError::Interrupted(message) => format!("{message}\n"),
            CliError::Reported(_) => String::new(),
        }
    }
}

/// A spec value set on the command line (`--set`, or a shorthand such as
/// `--batch-size`), so that a problem with it is shown as coming from the flag.
#[derive(Clone, Debug, PartialEq)]
pub struct Flag {
    /// The spec path it sets, `training.batch_size`.
    pub path: String,
    /// The `PATH=VALUE` handed to `overrides::apply`.
    pub set: String,
    /// As the user typed it: `--batch-size 0`.
    pub shown: String,
}

/// `model.layers[2].units` -> `model.layers.2.units`, as `--set` spells it.
fn dotted(path: &str) -> String {
    path.replace('[', ".").replace(']', "")
}

impl Flag {
    /// The flag a diagnostic is about: values set on the command line have no
    /// position in the file, so only such diagnostics qualify; the last flag
    /// setting the path (or a part of it, or a parent of it) wins.
    pub fn find<'a>(flags: &'a [Flag], d: &Diagnostic) -> Option<&'a Flag> {
        if d.pos.is_known() || d.path.is_empty() {
            return None;
        }
        let path = dotted(&d.path);
        let within = |outer: &str, inner: &str| inner == outer || inner.strip_prefix(outer).is_some_and(|rest| rest.starts_with('.'));
        flags.iter().rev().find(|f| within(&f.path, &path) || within(&path, &f.path))
    }
}

/// Renders a diagnostic of a spec whose values `flags` may have set:
/// against the file and its text, or as coming from the command line.
pub fn render_in(d: &Diagnostic, file: &str, lines: &SourceLines, flags: &[Flag], style: Style) -> String {
    match Flag::find(flags, d) {
        Some(f) => render(d, &format!("{} (command line)", f.shown), "", style),
        None => lines.render(d, file, style),
    }
}

impl From<ReadError> for CliError {
    fn from(e: ReadError) -> Self {
        if e.is_io() { CliError::io(e.to_string()) } else { CliError::invalid(e.to_string()) }
    }
}

impl From<ArtifactError> for CliError {
    fn from(e: ArtifactError) -> Self {
        match e {
            ArtifactError::Io { .. } => CliError::io(e.to_string()),
            e => CliError::invalid(e.to_string()),
        }
    }
}

impl From<CheckpointError> for CliError {
    fn from(e: CheckpointError) -> Self {
        if e.is_io() { CliError::io(e.to_string()) } else { CliError::invalid(e.to_string()) }
    }
}

impl From<DataError> for CliError {
    /// A data file that is not there is an I/O error; one that is there
    /// and holds something else is invalid data.
    fn from(e: DataError) -> Self {
        match e {
            DataError::Open { .. } => CliError::io(e.to_string()).with_hint("data paths in a spec are relative to the spec file's folder"),
            e if e.is_io() => CliError::io(e.to_string()),
            e => CliError::invalid(e.to_string()),
        }
    }
}

impl From<TrainError> for CliError {
    fn from(e: TrainError) -> Self {
        match e {
            TrainError::Io(_) => CliError::io(e.to_string()),
            e => CliError::invalid(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_the_documented_codes_and_render_once() {
        let e = CliError::io("cannot read x.csv: No such file or directory (os error 2)").with_hint("check the path");
        assert_eq!(e.exit_code(), EXIT_IO);
        assert_eq!(e.render(Style::default()), "error: cannot read x.csv: No such file or directory (os error 2)\nhint: check the path\n");
        assert_eq!(CliError::invalid("bad").exit_code(), EXIT_INVALID);
        assert_eq!(CliError::usage("bad").exit_code(), EXIT_IO);
        assert_eq!(CliError::Interrupted("interrupted".into()).exit_code(), EXIT_INTERRUPTED);
        assert_eq!(CliError::Reported(1).render(Style::default()), "");
        let spec = CliError::Spec {
            file: "s.yaml".into(),
            text: "a: 1\n".into(),
            diags: vec![Diagnostic::warning("w", Pos::new(1, 1, 1), ""), Diagnostic::error("e", Pos::new(1, 4, 1), "a")],
            flags: vec![],
        };
        let text = spec.render(Style::default());
        assert!(text.starts_with("error: e\n --> s.yaml:1:4\n"), "{text}");
        assert!(text.ends_with("s.yaml: invalid, 1 error and 1 warning\n"), "{text}");
        assert_eq!(spec.exit_code(), EXIT_INVALID);
    }

    #[test]
    fn values_from_the_command_line_are_shown_as_the_flag() {
        let flags = vec![
            Flag { path: "training.batch_size".into(), set: "training.batch_size=0".into(), shown: "--batch-size 0".into() },
            Flag { path: "model.layers.0".into(), set: "model.layers.0={type: Dense}".into(), shown: "--set model.layers.0={type: Dense}".into() },
        ];
        let bs = Diagnostic::error("training: `batch_size` must be a positive integer, received 0", Pos::default(), "training.batch_size");
        assert_eq!(
            render_in(&bs, "s.yaml", &SourceLines::new(""), &flags, Style::default()),
            "error: training: `batch_size` must be a positive integer, received 0\n --> --batch-size 0 (command line)\n"
        );
        let units = Diagnostic::error("missing units", Pos::default(), "model.layers[0].units");
        assert_eq!(Flag::find(&flags, &units).map(|f| f.shown.as_str()), Some("--set model.layers.0={type: Dense}"));
        // Positioned diagnostics, and paths no flag set, stay the file's.
        assert_eq!(Flag::find(&flags, &Diagnostic::error("x", Pos::new(3, 1, 1), "training.batch_size")), None);
        assert_eq!(Flag::find(&flags, &Diagnostic::error("x", Pos::default(), "training.batch_sizes")), None);
        assert_eq!(Flag::find(&flags, &Diagnostic::error("x", Pos::default(), "data")), None);
    }

    #[test]
    fn module_errors_keep_their_io_or_invalid_nature() {
        let missing = DataError::Open { file: "d.csv".into(), line: 3, msg: "no such file".into() };
        assert_eq!(CliError::from(missing).exit_code(), EXIT_IO);
        let cell = DataError::Cell { file: "d.csv".into(), row: 2, column: "x".into(), msg: "'a' is not a number".into() };
        assert_eq!(CliError::from(cell).exit_code(), EXIT_INVALID);
        let bad = ArtifactError::Malformed { file: "m".into(), why: "short".into() };
        assert_eq!(CliError::from(bad).exit_code(), EXIT_INVALID);
        let gone = ArtifactError::Io { file: "m".into(), source: std::io::Error::from(std::io::ErrorKind::NotFound) };
        assert_eq!(CliError::from(gone).exit_code(), EXIT_IO);
        let torn = CheckpointError::Malformed { file: "c".into(), why: "short".into() };
        assert_eq!(CliError::from(torn).prefixed("cannot resume: ").render(Style::default()), "error: cannot resume: c is not a valid checkpoint: short\n");
        let gone = CheckpointError::Io { file: "c".into(), source: std::io::Error::from(std::io::ErrorKind::NotFound) };
        assert_eq!(CliError::from(gone).exit_code(), EXIT_IO);
    }
}
