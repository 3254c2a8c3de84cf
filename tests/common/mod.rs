//! Helpers shared by the tests that drive the binary.
#![allow(dead_code)] // each test file uses a different subset

use assert_cmd::Command;
use std::path::PathBuf;

/// Runs nnrun without colour; returns (exit code, stdout, stderr).
pub fn nnrun(args: &[&str]) -> (i32, String, String) {
    let out = Command::cargo_bin("nnrun").unwrap().args(args).env("NO_COLOR", "1").output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// `nnrun train ARGS...`
pub fn train(args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["train"];
    all.extend_from_slice(args);
    nnrun(&all)
}

/// A fresh, empty directory of this test process.
pub fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nnrun-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Trains `spec` into a fresh directory; returns its model file.
pub fn trained(spec: &str, name: &str, extra: &[&str]) -> PathBuf {
    let dir = temp(name);
    let mut args = vec![spec, "--out", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    let (code, stdout, stderr) = train(&args);
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    dir.join("model.safetensors")
}
