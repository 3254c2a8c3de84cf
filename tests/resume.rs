//! `nnrun train --resume`: a run trained in two parts equals the same run
//! trained in one go, bit for bit; a checkpoint refuses a different spec;
//! Ctrl-C stops with exit code 130 and a resumable checkpoint.

use nnrun::artifact::ModelFile;
use std::path::{Path, PathBuf};
mod common;
use common::{temp as out_dir, train};

fn ok(args: &[&str]) -> String {
    let (code, stdout, stderr) = train(args);
    assert_eq!(code, 0, "args {args:?}\nstdout:\n{stdout}\nstderr:\n{stderr}");
    stdout
}

fn assert_same_run(a: &Path, b: &Path) {
    let (ma, mb) = (ModelFile::read(&a.join("model.safetensors")).unwrap(), ModelFile::read(&b.join("model.safetensors")).unwrap());
    assert_eq!(ma.tensors.keys().collect::<Vec<_>>(), mb.tensors.keys().collect::<Vec<_>>());
    for (name, (shape, values)) in &ma.tensors {
        let (shape_b, values_b) = &mb.tensors[name];
        assert_eq!(shape, shape_b, "{name}");
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(values), bits(values_b), "weight {name} differs");
    }
    let ha = std::fs::read_to_string(a.join("history.csv")).unwrap();
    let hb = std::fs::read_to_string(b.join("history.csv")).unwrap();
    assert_eq!(ha, hb, "history differs");
    assert_eq!(ha.lines().count(), 5, "{ha}");
}

/// Trains `spec` 4 epochs in one go, and 2 + 2 with --resume.
fn resume_is_exact(spec: &str, name: &str, extra: &[&str]) -> (PathBuf, PathBuf) {
    let (a, b) = (out_dir(&format!("{name}-a")), out_dir(&format!("{name}-b")));
    let with = |v: &[&str]| -> Vec<String> { v.iter().chain(extra).map(|s| s.to_string()).collect() };
    let args = with(&[spec, "--epochs", "4", "--out", a.to_str().unwrap()]);
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(a.join("checkpoint.safetensors").is_file());
    let args = with(&[spec, "--epochs", "2", "--out", b.to_str().unwrap()]);
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let args = with(&[spec, "--epochs", "4", "--resume", b.to_str().unwrap()]);
    let stdout = ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(stdout.contains("after epoch 2") && stdout.contains("Epoch 3/4") && !stdout.contains("Epoch 2/4"), "{stdout}");
    assert_same_run(&a, &b);
    (a, b)
}

#[test]
fn breast_cancer_with_callbacks_resumes_exactly() {
    let callbacks = "training.callbacks=[{type: ReduceLROnPlateau, patience: 1, factor: 0.5, min_delta: 0.5}, \
        {type: EarlyStopping, patience: 10, restore_best_weights: true}, \
        {type: ModelCheckpoint, save_best_only: true, filepath: best.safetensors}]";
    let (a, b) = resume_is_exact("specs/breast_cancer.yaml", "bc", &["--set", "data.validation_split=0.2", "--set", callbacks]);
    let lr = std::fs::read_to_string(a.join("history.csv")).unwrap();
    assert!(lr.contains("0.0005"), "ReduceLROnPlateau acted:\n{lr}");
    for d in [&a, &b] {
        assert!(d.join("best.safetensors").is_file(), "ModelCheckpoint wrote its file");
    }
}

#[test]
fn iris_with_dropout_resumes_exactly() {
    resume_is_exact("specs/iris_named.yaml", "iris", &[]);
}

/// The class weights are recomputed from the data, nothing of them saved;
/// the shuffle keeps each with its sample.
#[test]
fn iris_with_class_weight_resumes_exactly() {
    resume_is_exact("specs/iris_named.yaml", "iris-cw", &["--set", "training.class_weight={setosa: 2.5, 2: 0.5}"]);
}

#[test]
fn a_different_spec_is_refused() {
    let dir = out_dir("refuse");
    ok(&["specs/iris_named.yaml", "--epochs", "1", "--out", dir.to_str().unwrap()]);
    let (code, _, stderr) = train(&["specs/iris_named.yaml", "--epochs", "2", "--batch-size", "8", "--resume", dir.to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("belongs to a different spec"), "{stderr}");
    let (code, _, stderr) = train(&["specs/iris_named.yaml", "--resume", "/no/such/run"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("cannot resume") && stderr.contains("/no/such/run/checkpoint.safetensors"), "{stderr}");
}

#[test]
fn early_stopping_stops_and_restores_the_best_weights() {
    let dir = out_dir("early");
    let stdout = ok(&[
        "specs/iris_named.yaml",
        "--epochs",
        "30",
        "--out",
        dir.to_str().unwrap(),
        "--set",
        "training.callbacks=[{type: EarlyStopping, monitor: loss, min_delta: 100, patience: 2, restore_best_weights: true}]",
    ]);
    // Nothing improves by 100 after epoch 1: stop at epoch 3, restore epoch 1.
    assert!(stdout.contains("Epoch 3: early stopping"), "{stdout}");
    assert!(stdout.contains("best epoch: 1."), "{stdout}");
    let history = std::fs::read_to_string(dir.join("history.csv")).unwrap();
    assert_eq!(history.lines().count(), 4, "{history}");
}

#[test]
fn a_missing_monitor_warns_once() {
    let dir = out_dir("warn");
    let args = ["specs/iris_named.yaml", "--epochs", "3", "--out", dir.to_str().unwrap(), "--set", "training.callbacks=[{type: EarlyStopping, patience: 1}]"];
    let (code, stdout, stderr) = train(&args);
    assert_eq!(code, 0, "{stdout}{stderr}");
    // Warnings go to stderr, rendered as every warning is.
    assert_eq!(stderr.matches("warning: EarlyStopping monitors `val_loss`").count(), 1, "{stderr}");
    assert!(stderr.contains("no validation data"), "{stderr}");
}

#[cfg(unix)]
#[test]
fn ctrl_c_exits_130_and_resumes() {
    use std::io::{BufRead, BufReader};
    let dir = out_dir("sigint");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("nnrun"))
        .args(["train", "specs/iris_named.yaml", "--epochs", "100000", "--out", dir.to_str().unwrap()])
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // The first epoch's line comes after its checkpoint's epoch is complete.
    for line in lines.by_ref() {
        if line.unwrap().starts_with("Epoch 1/") {
            break;
        }
    }
    let killed = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    // Drain stdout so the child never blocks on a full pipe.
    for _ in lines {}
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted: resume with nnrun train specs/iris_named.yaml --resume"), "{stderr}");
    assert!(!dir.join("model.safetensors").exists());
    let done = nnrun::checkpoint::Checkpoint::read(&dir.join("checkpoint.safetensors")).unwrap().epoch;
    assert!(done >= 1);
    let epochs = (done + 1).to_string();
    let stdout = ok(&["specs/iris_named.yaml", "--epochs", &epochs, "--resume", dir.to_str().unwrap()]);
    assert!(stdout.contains(&format!("Epoch {epochs}/{epochs}")), "{stdout}");
    let history = std::fs::read_to_string(dir.join("history.csv")).unwrap();
    assert_eq!(history.lines().count(), done + 2, "{history}");
}
