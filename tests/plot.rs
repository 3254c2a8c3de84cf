//! `nnrun plot` through the binary: two runs on one chart, the default output
//! names, and errors that name the history file.

use assert_cmd::Command;
use std::path::{Path, PathBuf};

fn run_dir(name: &str, history: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nnrun-plot-{}", std::process::id())).join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("history.csv"), history).unwrap();
    d
}

/// Runs `nnrun plot` in `cwd` and returns (exit code, stderr).
fn plot(cwd: &Path, args: &[&Path]) -> (i32, String) {
    let out = Command::cargo_bin("nnrun").unwrap().current_dir(cwd).arg("plot").args(args).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

const MLP: &str = "epoch,loss,accuracy,val_loss,val_accuracy,learning_rate\n1,0.9,0.5,1.0,0.45,0.001\n2,0.6,0.7,0.8,0.6,0.001\n3,0.4,0.8,0.7,0.65,0.0005\n";
const CNN: &str = "epoch,loss,accuracy,val_loss,val_accuracy,learning_rate\n1,0.8,0.6,0.9,0.5,0.001\n2,0.5,0.8,0.7,0.7,0.001\n";

#[test]
fn two_runs_on_one_chart() {
    let (a, b) = (run_dir("mlp", MLP), run_dir("cnn", CNN));
    let out = a.parent().unwrap().join("compare.svg");
    let (code, stderr) = plot(a.parent().unwrap(), &[&a, &b, Path::new("--output"), &out]);
    assert_eq!(code, 0, "{stderr}");
    let svg = std::fs::read_to_string(&out).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    for label in ["mlp: loss", "cnn: val_loss", "mlp: val_accuracy", "cnn: learning_rate"] {
        assert!(svg.contains(label), "no legend entry {label}");
    }
    // Without --output: plot.svg in the current directory.
    let (code, stderr) = plot(a.parent().unwrap(), &[&a, &b]);
    assert_eq!(code, 0, "{stderr}");
    assert!(a.parent().unwrap().join("plot.svg").is_file());
}

#[test]
fn one_run_defaults_to_history_svg_inside_it() {
    let a = run_dir("single", MLP);
    let (code, stderr) = plot(&std::env::temp_dir(), &[&a]);
    assert_eq!(code, 0, "{stderr}");
    assert!(std::fs::read_to_string(a.join("history.svg")).unwrap().starts_with("<svg"));
}

#[test]
fn missing_history_is_an_io_error() {
    let d = run_dir("missing", "");
    std::fs::remove_file(d.join("history.csv")).unwrap();
    let (code, stderr) = plot(&d, &[&d]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains(&d.join("history.csv").display().to_string()), "{stderr}");
}

#[test]
fn malformed_history_is_invalid() {
    let d = run_dir("ragged", "epoch,loss\n1,0.5\n2\n");
    let (code, stderr) = plot(&d, &[&d]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("history.csv: line 3"), "{stderr}");
    assert!(!d.join("history.svg").exists());
}
