//! Streaming Keras metrics over an epoch, on host values.
//!
//! `update` gets one batch: `y_pred` holds probabilities (the activation
//! already applied), `batch` rows of `y_pred.len() / batch` values each. A row
//! is one vector along the last axis, so for per-timestep outputs pass
//! `batch * timesteps`. Sparse targets hold one class index per row.

use super::losses::Loss;
use crate::diag::suggestion;

pub trait Metric {
    fn name(&self) -> String;
    fn update(&mut self, y_pred: &[f32], y_true: &[f32], batch: usize);
    fn result(&self) -> f64;
    fn reset(&mut self);
    /// The running totals `result` is made of, when adding several
    /// processes' totals gives the whole epoch's (the data-parallel log);
    /// empty when it doesn't (auc keeps every score).
    fn sums(&mut self) -> Vec<&mut f64> {
        Vec::new()
    }
}

/// Metric names `resolve` knows.
pub const METRICS: &[&str] = &[
    "accuracy",
    "acc",
    "binary_accuracy",
    "categorical_accuracy",
    "sparse_categorical_accuracy",
    "mse",
    "mean_squared_error",
    "mae",
    "mean_absolute_error",
    "precision",
    "recall",
    "auc",
    "sequence_accuracy",
    "cer",
];

/// A Keras metric for an output trained with `loss`. `accuracy` becomes the
/// binary, categorical or sparse form that fits the loss; for regression
/// losses it is chosen from the shapes, as Keras 3 does (one column: binary;
/// fewer targets than predictions: sparse; else categorical).
pub fn resolve(name: &str, loss: &Loss) -> Result<Box<dyn Metric>, String> {
    let acc = |kind| -> Box<dyn Metric> { Box::new(Accuracy { name: name.to_string(), kind, correct: 0.0, total: 0.0 }) };
    let err = |kind| -> Box<dyn Metric> { Box::new(MeanError { name: name.to_string(), squared: kind, sum: 0.0, count: 0.0 }) };
    let binary_only = || -> Result<(), String> {
        if *loss == Loss::BinaryCrossentropy {
            return Ok(());
        }
        Err(format!("metric \"{name}\" needs a binary_crossentropy output (sigmoid probabilities), but this output's loss is {}", loss.name()))
    };
    if let Loss::Ctc { classes, blank, beam, .. } = *loss {
        let seq = |cer| -> Box<dyn Metric> { Box::new(Sequence { name: name.to_string(), cer, classes, blank, beam, errors: 0.0, total: 0.0 }) };
        return match name {
            "accuracy" | "acc" | "sequence_accuracy" => Ok(seq(false)),
            "cer" => Ok(seq(true)),
            _ if METRICS.contains(&name) => Err(format!("metric \"{name}\" does not apply to a ctc output; use sequence_accuracy or cer")),
            _ => Err(format!("unknown metric \"{name}\"; {}", suggestion(name, METRICS).unwrap_or_default())),
        };
    }
    Ok(match name {
        "sequence_accuracy" | "cer" => {
            return Err(format!("metric \"{name}\" needs a ctc output (label sequences), but this output's loss is {}", loss.name()));
        }
        "accuracy" | "acc" => acc(match loss {
            Loss::BinaryCrossentropy => AccKind::Binary,
            Loss::CategoricalCrossentropy => AccKind::Categorical,
            Loss::SparseCategoricalCrossentropy => AccKind::Sparse,
            _ => AccKind::ByShape,
        }),
        "binary_accuracy" => acc(AccKind::Binary),
        "categorical_accuracy" => acc(AccKind::Categorical),
        "sparse_categorical_accuracy" => acc(AccKind::Sparse),
        "mse" | "mean_squared_error" => err(true),
        "mae" | "mean_absolute_error" => err(false),
        "precision" | "recall" => {
            binary_only()?;
            Box::new(Confusion { precision: name == "precision", tp: 0.0, fp: 0.0, fn_: 0.0 })
        }
        "auc" => {
            binary_only()?;
            Box::new(Auc { scores: Vec::new() })
        }
        _ => {
            let hint = suggestion(name, METRICS).unwrap_or_default();
            return Err(format!("unknown metric \"{name}\"; {hint}"));
        }
    })
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum AccKind {
    Binary,
    Categorical,
    Sparse,
    ByShape,
}

struct Accuracy {
    name: String,
    kind: AccKind,
    correct: f64,
    total: f64,
}

/// Index of the first maximum, as numpy's argmax.
fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in row.iter().enumerate() {
        if *v > row[best] {
            best = i;
        }
    }
    best
}

impl Metric for Accuracy {
    fn sums(&mut self) -> Vec<&mut f64> {
        vec![&mut self.correct, &mut self.total]
    }

    fn name(&self) -> String {
        self.name.clone()
    }

    fn update(&mut self, y_pred: &[f32], y_true: &[f32], batch: usize) {
        if y_pred.is_empty() || batch == 0 {
            return;
        }
        let width = y_pred.len() / batch;
        let kind = match self.kind {
            AccKind::ByShape if width == 1 => AccKind::Binary,
            AccKind::ByShape if y_true.len() < y_pred.len() => AccKind::Sparse,
            AccKind::ByShape => AccKind::Categorical,
            k => k,
        };
        let (hits, n) = match kind {
            AccKind::Binary => {
                let hits = y_pred.iter().zip(y_true).filter(|(p, t)| f32::from(u8::from(**p > 0.5)) == **t).count();
                (hits, y_pred.len())
            }
            AccKind::Sparse => {
                // One index per row; the row width follows from the lengths.
                let classes = (y_pred.len() / y_true.len().max(1)).max(1);
                let hits = y_pred.chunks(classes).zip(y_true).filter(|(row, t)| argmax(row) as f32 == t.trunc()).count();
                (hits, y_true.len())
            }
            _ => {
                let rows = y_pred.chunks(width).zip(y_true.chunks(width));
                (rows.filter(|(p, t)| argmax(p) == argmax(t)).count(), batch)
            }
        };
        self.correct += hits as f64;
        self.total += n as f64;
    }

    fn result(&self) -> f64 {
        if self.total == 0.0 { 0.0 } else { self.correct / self.total }
    }

    fn reset(&mut self) {
        self.correct = 0.0;
        self.total = 0.0;
    }
}

/// Mean squared or absolute error over every value.
struct MeanError {
    name: String,
    squared: bool,
    sum: f64,
    count: f64,
}

impl Metric for MeanError {
    fn sums(&mut self) -> Vec<&mut f64> {
        vec![&mut self.sum, &mut self.count]
    }

    fn name(&self) -> String {
        self.name.clone()
    }

    fn update(&mut self, y_pred: &[f32], y_true: &[f32], _batch: usize) {
        for (p, t) in y_pred.iter().zip(y_true) {
            let e = f64::from(*p) - f64::from(*t);
            self.sum += if self.squared { e * e } else { e.abs() };
        }
        self.count += y_pred.len().min(y_true.len()) as f64;
    }

    fn result(&self) -> f64 {
        if self.count == 0.0 { 0.0 } else { self.sum / self.count }
    }

    fn reset(&mut self) {
        self.sum = 0.0;
        self.count = 0.0;
    }
}

/// Precision or recall at threshold 0.5; a target counts as positive when
/// non-zero (Keras casts labels to bool). 0 when undefined (Keras divide_no_nan).
struct Confusion {
    precision: bool,
    tp: f64,
    fp: f64,
    fn_: f64,
}

impl Metric for Confusion {
    fn sums(&mut self) -> Vec<&mut f64> {
        vec![&mut self.tp, &mut self.fp, &mut self.fn_]
    }

    fn name(&self) -> String {
        if self.precision { "precision" } else { "recall" }.into()
    }

    fn update(&mut self, y_pred: &[f32], y_true: &[f32], _batch: usize) {
        for (p, t) in y_pred.iter().zip(y_true) {
            match (*p > 0.5, *t != 0.0) {
                (true, true) => self.tp += 1.0,
                (true, false) => self.fp += 1.0,
                (false, true) => self.fn_ += 1.0,
                (false, false) => {}
            }
        }
    }

    fn result(&self) -> f64 {
        let denom = self.tp + if self.precision { self.fp } else { self.fn_ };
        if denom == 0.0 { 0.0 } else { self.tp / denom }
    }

    fn reset(&mut self) {
        (self.tp, self.fp, self.fn_) = (0.0, 0.0, 0.0);
    }
}

/// Sequence accuracy (the whole decoded sequence right) or the token error
/// rate (edit distances over target lengths, summed over the epoch) of a
/// ctc output. `update` gets one sample per `batch` row: (time, classes)
/// probabilities and the -1-padded target tokens.
struct Sequence {
    name: String,
    cer: bool,
    classes: usize,
    blank: usize,
    beam: usize,
    errors: f64,
    total: f64,
}

impl Metric for Sequence {
    fn sums(&mut self) -> Vec<&mut f64> {
        vec![&mut self.errors, &mut self.total]
    }

    fn name(&self) -> String {
        self.name.clone()
    }

    fn update(&mut self, y_pred: &[f32], y_true: &[f32], batch: usize) {
        if batch == 0 {
            return;
        }
        let (w, l) = (y_pred.len() / batch, y_true.len() / batch);
        for (p, t) in y_pred.chunks(w).zip(y_true.chunks(l.max(1))) {
            let decoded = super::ctc::decode(p, self.classes, self.blank, self.beam, true);
            let target: Vec<usize> = t.iter().take_while(|&&v| v >= 0.0).map(|&v| v as usize).collect();
            if self.cer {
                self.errors += super::ctc::edit_distance(&decoded, &target) as f64;
                self.total += target.len() as f64;
            } else {
                self.errors += f64::from(u8::from(decoded != target));
                self.total += 1.0;
            }
        }
    }

    fn result(&self) -> f64 {
        match (self.total == 0.0, self.cer) {
            (true, _) => 0.0,
            (false, true) => self.errors / self.total,
            (false, false) => 1.0 - self.errors / self.total,
        }
    }

    fn reset(&mut self) {
        (self.errors, self.total) = (0.0, 0.0);
    }
}

/// Exact ROC AUC over the epoch (Mann-Whitney U, tied scores share their
/// average rank). Keras's `AUC` approximates the curve with 200 thresholds,
/// so its values differ slightly. 0 when the epoch has only one class, as
/// Keras's divide_no_nan gives.
struct Auc {
    scores: Vec<(f32, bool)>,
}

impl Metric for Auc {
    fn name(&self) -> String {
        "auc".into()
    }

    fn update(&mut self, y_pred: &[f32], y_true: &[f32], _batch: usize) {
        self.scores.extend(y_pred.iter().zip(y_true).map(|(p, t)| (*p, *t != 0.0)));
    }

    fn result(&self) -> f64 {
        let mut s = self.scores.clone();
        s.sort_by(|a, b| a.0.total_cmp(&b.0));
        let pos = s.iter().filter(|x| x.1).count() as f64;
        let neg = s.len() as f64 - pos;
        if pos == 0.0 || neg == 0.0 {
            return 0.0;
        }
        // Sum of the positives' 1-based ranks, ties averaged.
        let (mut rank_sum, mut i) = (0.0, 0);
        while i < s.len() {
            let j = i + s[i..].iter().take_while(|x| x.0 == s[i].0).count();
            let avg_rank = (i + 1 + j) as f64 / 2.0;
            rank_sum += avg_rank * s[i..j].iter().filter(|x| x.1).count() as f64;
            i = j;
        }
        (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
    }

    fn reset(&mut self) {
        self.scores.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(name: &str, loss: Loss) -> Box<dyn Metric> {
        resolve(name, &loss).unwrap()
    }

    #[test]
    fn accuracy_follows_the_loss() {
        let mut m = metric("accuracy", Loss::BinaryCrossentropy);
        m.update(&[0.9, 0.4, 0.6, 0.5], &[1.0, 0.0, 0.0, 1.0], 4);
        assert_eq!(m.result(), 0.5);
        m.update(&[0.1, 0.7], &[0.0, 1.0], 2);
        assert!((m.result() - 4.0 / 6.0).abs() < 1e-12);
        m.reset();
        assert_eq!(m.result(), 0.0);
        assert_eq!(m.name(), "accuracy");

        let mut m = metric("acc", Loss::CategoricalCrossentropy);
        // Rows 0 and 2 right; ties pick the first maximum.
        m.update(&[0.1, 0.8, 0.1, 0.6, 0.3, 0.1, 0.4, 0.4, 0.2], &[0., 1., 0., 0., 0., 1., 1., 0., 0.], 3);
        assert!((m.result() - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(m.name(), "acc");

        let mut m = metric("accuracy", Loss::SparseCategoricalCrossentropy);
        m.update(&[0.1, 0.8, 0.1, 0.6, 0.3, 0.1], &[1.0, 2.0], 2);
        assert_eq!(m.result(), 0.5);
        // Per-timestep: (B=1, T=2, C=3) with two indices.
        m.reset();
        m.update(&[0.1, 0.8, 0.1, 0.6, 0.3, 0.1], &[1.0, 0.0], 1);
        assert_eq!(m.result(), 1.0);

        // Regression losses: chosen from the shapes.
        let mut m = metric("accuracy", Loss::MeanSquaredError);
        m.update(&[0.7, 0.2], &[1.0, 1.0], 2);
        assert_eq!(m.result(), 0.5);
        m.reset();
        m.update(&[0.7, 0.2, 0.1, 0.9], &[0.0, 1.0], 2);
        assert_eq!(m.result(), 1.0);
        m.reset();
        m.update(&[0.7, 0.3, 0.1, 0.9], &[1.0, 0.0, 1.0, 0.0], 2);
        assert_eq!(m.result(), 0.5);
    }

    #[test]
    fn mean_errors() {
        let mut m = metric("mse", Loss::MeanSquaredError);
        m.update(&[1.0, 2.0], &[0.0, 0.0], 2);
        m.update(&[3.0], &[1.0], 1);
        assert!((m.result() - 9.0 / 3.0).abs() < 1e-12);
        let mut m = metric("mae", Loss::Huber { delta: 1.0 });
        m.update(&[1.0, -2.0, 0.5, 0.5], &[0.0, 0.0, 0.0, 1.0], 2);
        assert!((m.result() - 4.0 / 4.0).abs() < 1e-12);
        assert_eq!(m.name(), "mae");
    }

    #[test]
    fn precision_recall() {
        // tp: 0.9/1, 0.6/1; fp: 0.7/0; fn: 0.2/1, 0.5/1 (0.5 is not > 0.5).
        let (p, t) = ([0.9, 0.6, 0.7, 0.2, 0.5, 0.1], [1.0, 1.0, 0.0, 1.0, 1.0, 0.0]);
        let mut pr = metric("precision", Loss::BinaryCrossentropy);
        let mut re = metric("recall", Loss::BinaryCrossentropy);
        pr.update(&p, &t, 6);
        re.update(&p, &t, 6);
        assert!((pr.result() - 2.0 / 3.0).abs() < 1e-12);
        assert!((re.result() - 2.0 / 4.0).abs() < 1e-12);
        pr.reset();
        pr.update(&[0.1], &[1.0], 1);
        assert_eq!(pr.result(), 0.0);
    }

    #[test]
    fn auc_is_exact_with_ties() {
        let mut m = metric("auc", Loss::BinaryCrossentropy);
        // Pairs (pos, neg): positives 0.8, 0.4; negatives 0.4, 0.1.
        // 0.8 beats both, 0.4 ties 0.4 (1/2) and beats 0.1: (2 + 1.5) / 4.
        m.update(&[0.8, 0.4], &[1.0, 1.0], 2);
        m.update(&[0.4, 0.1], &[0.0, 0.0], 2);
        assert!((m.result() - 3.5 / 4.0).abs() < 1e-12);
        m.reset();
        m.update(&[0.1, 0.9, 0.3], &[1.0, 0.0, 1.0], 3);
        assert_eq!(m.result(), 0.0);
        m.reset();
        m.update(&[0.3, 0.2], &[1.0, 1.0], 2);
        assert_eq!(m.result(), 0.0);
    }

    #[test]
    fn sequence_metrics_decode_greedily() {
        // 3 classes (tokens 0, 1; blank 2), 4 steps per sample.
        let ctc = Loss::Ctc { classes: 3, blank: 2, zero_infinity: false, beam: 1 };
        let one_hot = |steps: &[usize]| -> Vec<f32> { steps.iter().flat_map(|&k| (0..3).map(move |j| if j == k { 0.9 } else { 0.05 })).collect() };
        // Sample 1 decodes "0 1" (right), sample 2 "1" for target "1 1" (one deletion).
        let p = [one_hot(&[0, 0, 2, 1]), one_hot(&[1, 1, 2, 2])].concat();
        let t = [0.0, 1.0, 1.0, 1.0];
        let mut acc = metric("accuracy", ctc);
        let mut cer = metric("cer", ctc);
        acc.update(&p, &t, 2);
        cer.update(&p, &t, 2);
        assert_eq!((acc.name().as_str(), acc.result()), ("accuracy", 0.5));
        assert_eq!(cer.result(), 1.0 / 4.0);
        // Padding (-1) ends a target.
        cer.reset();
        cer.update(&one_hot(&[1, 2, 2, 2]), &[1.0, -1.0], 1);
        assert_eq!(cer.result(), 0.0);
        assert!(resolve("mse", &ctc).err().unwrap().contains("does not apply to a ctc output"));
        assert!(resolve("cer", &Loss::MeanSquaredError).err().unwrap().contains("needs a ctc output"));
    }

    #[test]
    fn resolve_errors() {
        let e = resolve("accuarcy", &Loss::BinaryCrossentropy).err().unwrap();
        assert_eq!(e, "unknown metric \"accuarcy\"; did you mean 'accuracy'?");
        let e = resolve("auc", &Loss::CategoricalCrossentropy).err().unwrap();
        assert!(e.contains("needs a binary_crossentropy output") && e.contains("categorical_crossentropy"), "{e}");
        assert!(resolve("precision", &Loss::MeanSquaredError).is_err());
    }
}
