//! `loss: ctc` through the binary: IDX images paired with a labels CSV of
//! token sequences, training, predict's decoded strings, evaluate's
//! sequence metrics, and the errors and warnings validate and train give.
//!
//! The data is synthetic so that a debug build learns it in seconds: each
//! token is a 2-column stroke in its own rows of a 6 x 24 image, with gaps
//! between tokens (so repeated tokens stay apart, as CTC needs).

use std::path::{Path, PathBuf};
mod common;
use common::{nnrun, temp};

const H: usize = 6;
const W: usize = 24;
const TOKENS: [&str; 3] = ["1", "2", "3"];

/// A tiny generator, deterministic across platforms.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

fn idx3(n: usize, pixels: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 0x08, 3];
    for d in [n, H, W] {
        v.extend((d as u32).to_be_bytes());
    }
    v.extend(pixels);
    v
}

/// Writes `images.idx` and `labels.csv` (column `text`) with `n` samples of
/// 1-4 tokens; returns the label strings.
fn write_data(dir: &Path, stem: &str, n: usize, seed: u64) -> Vec<String> {
    let mut rng = Lcg(seed);
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let len = 1 + rng.next(4);
        let toks: Vec<usize> = (0..len).map(|_| rng.next(3)).collect();
        let mut img = vec![0u8; H * W];
        let mut x = 1 + rng.next(2);
        for &t in &toks {
            for c in x..x + 2 {
                for r in 2 * t..2 * t + 2 {
                    img[r * W + c] = 255;
                }
            }
            x += 2 + 2 + rng.next(2);
        }
        pixels.extend(img);
        labels.push(toks.iter().map(|&t| TOKENS[t]).collect::<Vec<_>>().join(" "));
    }
    std::fs::write(dir.join(format!("{stem}-images.idx")), idx3(n, &pixels)).unwrap();
    std::fs::write(
        dir.join(format!("{stem}-labels.csv")),
        format!("id,text\n{}", labels.iter().enumerate().map(|(i, l)| format!("{i},{l}\n")).collect::<String>()),
    )
    .unwrap();
    labels
}

/// A spec over `dir`'s train/test data; `output` is the last layer.
fn spec(dir: &Path, output: &str, training: &str) -> PathBuf {
    let text = format!(
        "name: ctc_tiny\n\
         model:\n  input_shape: [{H}, {W}, 1]\n  layers:\n\
         \x20   - {{type: Permute, dims: [2, 1, 3]}}\n\
         \x20   - {{type: Reshape, target_shape: [{W}, {H}]}}\n\
         \x20   - {{type: Dense, units: 32, activation: tanh}}\n\
         \x20   - {output}\n\
         data:\n  train: {{images: train-images.idx, labels: train-labels.csv}}\n\
         \x20 test: {{images: test-images.idx, labels: test-labels.csv}}\n  target: text\n  scale: 1/255\n\
         training:\n  loss: ctc\n  optimizer: {{type: adam, learning_rate: 0.01}}\n  metrics: [sequence_accuracy, cer]\n\
         \x20 epochs: 25\n  batch_size: 16\n  seed: 3\n{training}"
    );
    let p = dir.join("spec.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

const SOFTMAX_OUT: &str = "{type: Dense, units: 4, activation: softmax}";

fn losses(stdout: &str) -> Vec<f64> {
    stdout.lines().filter(|l| l.starts_with("Epoch ")).map(|l| l.split(" - loss: ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap()).collect()
}

#[test]
fn trains_predicts_and_evaluates_token_sequences() {
    let dir = temp("ctc-e2e");
    write_data(&dir, "train", 240, 1);
    let test_labels = write_data(&dir, "test", 60, 2);
    let spec = spec(&dir, SOFTMAX_OUT, "");
    let (code, out, err) = nnrun(&["validate", spec.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let run = dir.join("run");
    let (code, out, err) = nnrun(&["train", spec.to_str().unwrap(), "--out", run.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let l = losses(&out);
    assert_eq!(l.len(), 25, "{out}");
    assert!(l[24] < l[0] / 4.0, "the loss falls: {l:?}");
    let test_acc: f64 =
        out.lines().find(|l| l.starts_with("Test")).unwrap().split("test_sequence_accuracy: ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!(test_acc >= 0.9, "{out}");

    // predict: one decoded string per image, in the labels' own form.
    let model = run.join("model.safetensors");
    let images = dir.join("test-images.idx");
    let (code, pred, err) = nnrun(&["predict", model.to_str().unwrap(), "--input", images.to_str().unwrap(), "--batch-size", "7"]);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<&str> = pred.lines().collect();
    assert_eq!(rows[0], "sequence");
    assert_eq!(rows.len(), 61);
    let right = rows[1..].iter().zip(&test_labels).filter(|(p, t)| *p == t).count();
    assert!(right as f64 >= 0.9 * 60.0, "{right} of 60 right:\n{pred}");
    assert!(rows[1..].iter().all(|r| r.split(' ').all(|t| TOKENS.contains(&t))), "{pred}");
    // The beam search agrees on data this clear.
    let (code, beam, _) = nnrun(&["predict", model.to_str().unwrap(), "--input", images.to_str().unwrap(), "--beam-width", "5"]);
    assert_eq!(code, 0);
    let same = beam.lines().zip(pred.lines()).filter(|(a, b)| a == b).count();
    assert!(same >= 58, "{same} of 61 lines agree:\n{beam}");

    let (code, info, _) = nnrun(&["inspect", model.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(info.contains("output 'dense_1' (ctc): target 'text', tokens: 1, 2, 3"), "{info}");

    // evaluate: the same accuracy as training's test pass, and CER.
    let (code, ev, err) = nnrun(&["evaluate", model.to_str().unwrap(), "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&ev).unwrap();
    assert!((v["sequence_accuracy"].as_f64().unwrap() - right as f64 / 60.0).abs() < 1e-9, "{ev}");
    assert!((v["sequence_accuracy"].as_f64().unwrap() - test_acc).abs() < 1e-4, "{ev}");
    assert!(v["cer"].as_f64().unwrap() < 0.1, "{ev}");
    let (code, ev, err) = nnrun(&[
        "evaluate",
        model.to_str().unwrap(),
        "--data",
        images.to_str().unwrap(),
        "--labels",
        dir.join("test-labels.csv").to_str().unwrap(),
        "--beam-width",
        "3",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(ev.contains("sequence_accuracy: ") && ev.contains("cer: "), "{ev}");
}

#[test]
fn ctc_needs_a_per_timestep_output() {
    let dir = temp("ctc-shape");
    write_data(&dir, "train", 4, 1);
    write_data(&dir, "test", 4, 2);
    // A regression-style output: one vector per sample.
    let spec = spec(&dir, "{type: Flatten}\n    - {type: Dense, units: 4, activation: softmax}", "");
    let (code, err, _) = nnrun(&["validate", spec.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("error: ctc needs a per-timestep output of shape (time, classes), but 'dense_1' outputs (batch, 4)"), "{err}");
    assert!(err.contains("hint: keep the time axis to the end"), "{err}");
    // blank_index outside the classes.
    let spec = spec_with(&dir, "  blank_index: 4\n");
    let (code, err, _) = nnrun(&["validate", spec.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("`blank_index` is 4, but output 'dense_1' has 4 classes (0..3)"), "{err}");
    assert!(err.contains("spec.yaml:"), "points at the spec: {err}");
}

fn spec_with(dir: &Path, training: &str) -> PathBuf {
    spec(dir, SOFTMAX_OUT, training)
}

#[test]
fn data_errors_and_the_time_axis_warning() {
    let dir = temp("ctc-data");
    write_data(&dir, "train", 20, 1);
    write_data(&dir, "test", 6, 2);
    let train = |extra: &[&str]| {
        let spec = spec_with(&dir, "");
        let run = dir.join("run");
        let mut args = vec!["train", spec.to_str().unwrap(), "--out", run.to_str().unwrap(), "--epochs", "1"];
        args.extend_from_slice(extra);
        nnrun(&args)
    };
    // A test label with a token training never saw: file, row and column.
    let labels = dir.join("test-labels.csv");
    let text = std::fs::read_to_string(&labels).unwrap().replacen("\n0,", "\n0,7 ", 1);
    std::fs::write(&labels, text).unwrap();
    let (code, _, err) = train(&[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&format!("{}: row 2, column 'text': token '7' does not occur in the training data (tokens: 1, 2, 3)", labels.display())), "{err}");
    write_data(&dir, "test", 6, 2);

    // Too many distinct tokens for the output's classes.
    let spec = spec(&dir, "{type: Dense, units: 3, activation: softmax}", "");
    let (code, _, err) = nnrun(&["train", spec.to_str().unwrap(), "--out", dir.join("r2").to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("column 'text' holds 3 distinct tokens (1, 2, 3) but output 'dense_1' has 3 classes, one of them the ctc blank; give it 4 units"),
        "{err}"
    );

    // A target longer than 24 steps allow: warned when the data is known;
    // the loss is infinite unless zero_infinity skips such samples.
    let labels = dir.join("train-labels.csv");
    let long = vec!["1"; 13].join(" ");
    let text = std::fs::read_to_string(&labels).unwrap().replacen("\n0,", &format!("\n0,{long} "), 1);
    std::fs::write(&labels, text).unwrap();
    let (code, _, err) = train(&[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("warning: 1 of 20 training targets need more time steps than output 'dense_1' has (24); the longest needs"), "{err}");
    assert!(err.contains("training diverged: the loss became inf"), "{err}");
    assert!(err.contains("zero_infinity"), "{err}");
    let (code, out, err) = train(&["--set", "training.zero_infinity=true"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("warning: 1 of 20 training targets"), "{err}");
}
