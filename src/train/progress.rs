//! Progress reporting: an indicatif bar on a terminal, one plain line per
//! epoch otherwise, or JSON lines for tools.

use super::log::EpochLog;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Write};

pub trait Progress {
    fn epoch_start(&mut self, epoch: usize, epochs: usize, steps: usize);
    /// After each step: running values of the epoch so far, and samples seen.
    fn step(&mut self, step: usize, running: &[(String, f64)], samples: usize);
    fn epoch_end(&mut self, log: &EpochLog, seconds: f64, samples: usize);
    fn message(&mut self, text: &str);
    /// Something the user should fix (a callback that does nothing, ...).
    fn warning(&mut self, text: &str);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

fn fmt_values(values: &[(String, f64)]) -> String {
    values.iter().map(|(k, v)| format!("{k}: {}", fmt_value(*v))).collect::<Vec<_>>().join(" - ")
}

fn fmt_value(v: f64) -> String {
    if v != 0.0 && v.abs() < 1e-3 { format!("{v:.3e}") } else { format!("{v:.4}") }
}

/// The bar (terminal) or plain lines (logs, CI).
pub struct Console {
    bar: Option<ProgressBar>,
    interactive: bool,
    epochs: usize,
    started: std::time::Instant,
}

impl Console {
    pub fn new(interactive: bool) -> Self {
        Console { bar: None, interactive, epochs: 0, started: std::time::Instant::now() }
    }
}

impl Progress for Console {
    fn epoch_start(&mut self, epoch: usize, epochs: usize, steps: usize) {
        self.epochs = epochs;
        self.started = std::time::Instant::now();
        if self.interactive {
            let bar = ProgressBar::new(steps as u64);
            bar.set_style(ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} ETA {eta} {msg}").expect("valid template").progress_chars("=> "));
            bar.set_prefix(format!("Epoch {epoch}/{epochs}"));
            self.bar = Some(bar);
        }
    }

    fn step(&mut self, step: usize, running: &[(String, f64)], samples: usize) {
        if let Some(bar) = &self.bar {
            let rate = samples as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
            bar.set_position(step as u64);
            bar.set_message(format!("{:.0} samples/s - {}", rate, fmt_values(running)));
        }
    }

    fn epoch_end(&mut self, log: &EpochLog, seconds: f64, samples: usize) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        let rate = samples as f64 / seconds.max(1e-9);
        // A closed stdout does not stop a training: write errors are dropped.
        let _ = writeln!(std::io::stdout(), "Epoch {}/{} - {:.1}s - {:.0} samples/s - {}", log.epoch, self.epochs, seconds, rate, fmt_values(&log.values));
    }

    fn message(&mut self, text: &str) {
        let _ = writeln!(std::io::stdout(), "{text}");
    }

    /// On stderr, rendered as every warning is (`diag::render`).
    fn warning(&mut self, text: &str) {
        let style = crate::diag::Style { color: std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) };
        let d = crate::diag::Diagnostic::warning(text, Default::default(), "");
        eprint!("{}", crate::diag::render(&d, "", "", style));
    }
}

/// When this process's first epoch started: `fit_seconds` counts from here.
/// A static, not a field, so `JsonLines` stays a unit struct for its callers.
static FIT_STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// One JSON object per line: `{"event": "epoch", "epoch": 1, "loss": ...}`.
///
/// `seconds` times the epoch's steps and its end-of-epoch metrics (and
/// validation, if any); `samples` is how many training samples it saw;
/// `fit_seconds` is the wall time from the start of this process's first
/// epoch to the end of this one, so it also holds what runs between epochs
/// (the checkpoint written after each epoch, callbacks, the shuffle).
pub struct JsonLines;

impl Progress for JsonLines {
    fn epoch_start(&mut self, _: usize, _: usize, _: usize) {
        FIT_STARTED.get_or_init(std::time::Instant::now);
    }
    fn step(&mut self, _: usize, _: &[(String, f64)], _: usize) {}
    fn epoch_end(&mut self, log: &EpochLog, seconds: f64, samples: usize) {
        let mut obj = serde_json::Map::new();
        obj.insert("event".into(), "epoch".into());
        obj.insert("epoch".into(), log.epoch.into());
        obj.insert("seconds".into(), seconds.into());
        obj.insert("samples_per_second".into(), (samples as f64 / seconds.max(1e-9)).into());
        obj.insert("samples".into(), samples.into());
        let fit = FIT_STARTED.get().map_or(seconds, |t| t.elapsed().as_secs_f64());
        obj.insert("fit_seconds".into(), fit.max(seconds).into());
        for (k, v) in &log.values {
            obj.insert(k.clone(), (*v).into());
        }
        let _ = writeln!(std::io::stdout(), "{}", serde_json::Value::Object(obj));
    }
    fn message(&mut self, text: &str) {
        let _ = writeln!(std::io::stdout(), "{}", serde_json::json!({"event": "message", "text": text}));
    }
    fn warning(&mut self, text: &str) {
        let _ = writeln!(std::io::stdout(), "{}", serde_json::json!({"event": "warning", "text": text}));
    }
}

/// Shows nothing: the processes of a data-parallel run other than the
/// first, whose progress is the first's.
pub struct Silent;

impl Progress for Silent {
    fn epoch_start(&mut self, _: usize, _: usize, _: usize) {}
    fn step(&mut self, _: usize, _: &[(String, f64)], _: usize) {}
    fn epoch_end(&mut self, _: &EpochLog, _: f64, _: usize) {}
    fn message(&mut self, _: &str) {}
    fn warning(&mut self, _: &str) {}
}
