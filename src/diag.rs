//! Diagnostics: what went wrong, where in the YAML, and how to fix it.
//!
//! Every stage (YAML parsing, spec structure, layer arguments, graph and
//! shapes) pushes `Diagnostic`s instead of stopping, so one run reports all
//! problems. They are rendered once, at the edge, in the uv/ruff style.

use serde::Serialize;
use std::fmt::Write as _;

/// A position in the spec file, 1-based. `line == 0` means "no position"
/// (for example a value that came from the command line).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
    /// Width of the offending token in characters, for the caret (at least 1).
    pub len: usize,
}

impl Pos {
    pub fn new(line: usize, col: usize, len: usize) -> Self {
        Pos { line, col, len: len.max(1) }
    }
    pub fn is_known(&self) -> bool {
        self.line > 0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    pub pos: Pos,
    /// Path of the YAML node, like `model.layers[2].units`.
    pub path: String,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>, pos: Pos, path: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Error, message: message.into(), pos, path: path.into(), hint: None }
    }
    pub fn warning(message: impl Into<String>, pos: Pos, path: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(message, pos, path) }
    }
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
    pub fn with_hint_opt(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// The JSON form: `{message, line, column, path, hint}`.
#[derive(Serialize)]
pub struct DiagnosticJson<'a> {
    pub message: &'a str,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub path: &'a str,
    pub hint: Option<&'a str>,
}

impl<'a> From<&'a Diagnostic> for DiagnosticJson<'a> {
    fn from(d: &'a Diagnostic) -> Self {
        let known = d.pos.is_known();
        DiagnosticJson { message: &d.message, line: known.then_some(d.pos.line), column: known.then_some(d.pos.col), path: &d.path, hint: d.hint.as_deref() }
    }
}

/// ANSI styling, only when writing to a terminal that wants colour.
#[derive(Clone, Copy, Debug, Default)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
    }
}

/// Renders a diagnostic as
///
/// ```text
/// error: layer 'dense' (Dense): `units` must be a positive integer, received 0
///  --> spec.yaml:7:14
///   |
/// 7 |       units: 0
///   |              ^
/// hint: ...
/// ```
pub fn render(d: &Diagnostic, file: &str, source: &str, style: Style) -> String {
    let line = if d.pos.is_known() { source.lines().nth(d.pos.line - 1) } else { None };
    render_line(d, file, line, style)
}

/// A source split into lines once, for rendering many diagnostics of one
/// file: `render` finds the line by scanning the text, which for thousands of
/// errors in a large spec is quadratic.
pub struct SourceLines<'a> {
    lines: Vec<&'a str>,
}

impl<'a> SourceLines<'a> {
    pub fn new(source: &'a str) -> Self {
        SourceLines { lines: source.lines().collect() }
    }

    /// `render`, with the line looked up in the index.
    pub fn render(&self, d: &Diagnostic, file: &str, style: Style) -> String {
        let line = if d.pos.is_known() { self.lines.get(d.pos.line - 1).copied() } else { None };
        render_line(d, file, line, style)
    }
}

/// Source lines longer than this are shown as a window around the caret,
/// so an error on a one-line spec of megabytes is not megabytes long.
const SHOWN_LINE: usize = 120;

/// `render`, given the text of the diagnostic's line.
pub fn render_line(d: &Diagnostic, file: &str, line: Option<&str>, style: Style) -> String {
    let mut out = String::new();
    let (label, code) = match d.severity {
        Severity::Error => ("error", "1;31"),
        Severity::Warning => ("warning", "1;33"),
    };
    let _ = writeln!(out, "{}{} {}", style.paint(code, label), style.paint("1", ":"), d.message);
    if d.pos.is_known() {
        let gutter = d.pos.line.to_string().len();
        let pad = " ".repeat(gutter);
        let arrow = style.paint("1;34", "-->");
        let _ = writeln!(out, "{pad}{arrow} {file}:{}:{}", d.pos.line, d.pos.col);
        if let Some(text) = line {
            let bar = style.paint("1;34", "|");
            let text = text.trim_end();
            let n = text.chars().count();
            let col = d.pos.col.saturating_sub(1).min(n);
            // A window of SHOWN_LINE characters starting a little before the caret.
            let (start, end) = if n <= SHOWN_LINE { (0, n) } else { (col.saturating_sub(40), (col.saturating_sub(40) + SHOWN_LINE).min(n)) };
            let shown: String = text.chars().skip(start).take(end - start).collect();
            let (before, after) = (if start > 0 { "..." } else { "" }, if end < n { "..." } else { "" });
            let avail = end.saturating_sub(col).max(1);
            let carets = "^".repeat(d.pos.len.min(avail));
            let _ = writeln!(out, "{pad} {bar}");
            let _ = writeln!(out, "{} {bar} {before}{shown}{after}", style.paint("1;34", &d.pos.line.to_string()));
            let under = format!("{}{}", " ".repeat(col - start + before.len()), style.paint(code, &carets));
            let _ = writeln!(out, "{pad} {bar} {under}");
        }
    } else if !d.message.contains(file) {
        let _ = writeln!(out, " {} {file}", style.paint("1;34", "-->"));
    }
    if let Some(h) = &d.hint {
        let _ = writeln!(out, "{} {h}", style.paint("1;36", "hint:"));
    }
    out
}

/// Closest candidate to `word`, if one is close enough to be a plausible typo.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = word.to_lowercase();
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        if c.to_lowercase() == lower {
            return Some(c);
        }
        let score = strsim::jaro_winkler(&lower, &c.to_lowercase());
        if score > 0.8 && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| c)
}

/// `did you mean 'x'?` or, with few candidates, the list of valid ones.
pub fn suggestion(word: &str, candidates: &[&str]) -> Option<String> {
    if let Some(m) = did_you_mean(word, candidates.iter().copied()) {
        return Some(format!("did you mean '{m}'?"));
    }
    (candidates.len() <= 16 && !candidates.is_empty()).then(|| format!("expected one of: {}", candidates.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_caret_under_token() {
        let src = "model:\n  layers:\n    - type: Dense\n      units: 0\n";
        let d = Diagnostic::error("bad units", Pos::new(4, 14, 1), "model.layers[0].units").with_hint("use a positive number");
        let text = render(&d, "s.yaml", src, Style::default());
        assert_eq!(text, "error: bad units\n --> s.yaml:4:14\n  |\n4 |       units: 0\n  |              ^\nhint: use a positive number\n");
    }

    #[test]
    fn long_lines_are_shown_around_the_caret() {
        let src = format!("model: {{layers: [{}{{type: Dense}}]}}\n", "{type: Flatten}, ".repeat(10_000));
        let col = src.find("{type: Dense}").unwrap() + 1;
        let d = Diagnostic::error("bad", Pos::new(1, col, 13), "");
        let text = render(&d, "s.yaml", &src, Style::default());
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[3].starts_with("1 | ...") && lines[3].len() < 140, "{}", lines[3]);
        let caret = lines[4].find('^').unwrap();
        assert_eq!(&lines[3][caret..caret + 13], "{type: Dense}", "{text}");
        assert_eq!(SourceLines::new(&src).render(&d, "s.yaml", Style::default()), text);
    }

    #[test]
    fn suggests_close_names() {
        assert_eq!(did_you_mean("Dens", ["Dense", "Conv2D"]), Some("Dense"));
        assert_eq!(did_you_mean("dense", ["Dense", "Conv2D"]), Some("Dense"));
        assert_eq!(did_you_mean("xyz", ["Dense", "Conv2D"]), None);
    }
}
