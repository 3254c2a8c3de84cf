//! Specs written to hurt: alias bombs, deep nesting, huge files, 100,000
//! layers. Each is generated here, run through the binary, and what the user
//! sees (exit code included) is snapshotted. None may panic, hang, or take
//! more than a moment.

use assert_cmd::Command;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A folder of its own for each test's files, so messages show short paths.
fn dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nnrun-hostile-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs nnrun in `dir` and renders what a user sees, with the time it took.
fn run(dir: &PathBuf, args: &[&str]) -> (i32, String, Duration) {
    let t = Instant::now();
    let out = Command::cargo_bin("nnrun").unwrap().args(args).current_dir(dir).env("NO_COLOR", "1").output().unwrap();
    let took = t.elapsed();
    let code = out.status.code().unwrap_or(-1);
    let mut shown = format!("$ nnrun {}\nexit: {code}\n", args.join(" "));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !stdout.is_empty() {
        shown += &format!("--- stdout\n{stdout}");
    }
    if !stderr.is_empty() {
        shown += &format!("--- stderr\n{stderr}");
    }
    (code, shown, took)
}

/// Text and JSON snapshots of `validate FILE`, which must fail with exit 1.
fn snapshot_invalid(test: &str, file: &str, text: &str) {
    let d = dir(test);
    std::fs::write(d.join(file), text).unwrap();
    let (code, shown, took) = run(&d, &["validate", file]);
    assert_eq!(code, 1, "{shown}");
    assert!(took < Duration::from_secs(20), "{test} took {took:?}");
    insta::assert_snapshot!(format!("{test}_text"), shown);
    let (code, shown, _) = run(&d, &["validate", "--format", "json", file]);
    assert_eq!(code, 1, "{shown}");
    insta::assert_snapshot!(format!("{test}_json"), shown);
    let _ = std::fs::remove_dir_all(&d);
}

/// Nine anchors, each aliasing the one before nine times: 9^9 = 387,420,489
/// nodes in 560 bytes. Took 6 GB and aborted before.
#[test]
fn alias_bomb() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
    for i in 1..9 {
        text += &format!("a{i}: &a{i} [{}]\n", vec![format!("*a{}", i - 1); 9].join(", "));
    }
    text += "model:\n  input_shape: [4]\n  layers: *a8\n";
    assert!(text.len() < 600, "{}", text.len());
    snapshot_invalid("alias_bomb", "bomb.yaml", &text);
}

/// The same through merge keys (`<<: *x`) and tags: they must not bypass the budget.
#[test]
fn merge_key_and_tag_bomb() {
    let mut text = String::from("a0: &a0 !!map {k0: x, k1: x, k2: x, k3: x, k4: x, k5: x, k6: x, k7: x, k8: x}\n");
    for i in 1..9 {
        let entries: Vec<String> = (0..9).map(|j| format!("m{j}: *a{}", i - 1)).collect();
        text += &format!("a{i}: &a{i} !!map {{<<: *a{}, {}}}\n", i - 1, entries.join(", "));
    }
    text += "model:\n  <<: *a8\n  input_shape: [4]\n  layers: [{type: Dense, units: 1}]\n";
    snapshot_invalid("merge_key_and_tag_bomb", "merge.yaml", &text);
}

/// Deep block nesting: yaml-rust2's own loader recurses once per level.
#[test]
fn deep_nesting() {
    let mut text = String::from("model:\n");
    for i in 1..2000 {
        text += &format!("{}k{i}:\n", " ".repeat(i));
    }
    snapshot_invalid("deep_nesting", "deep.yaml", &text);
    // 200,000 levels of block lists on one line: the error, and quickly.
    let d = dir("deep_nesting_lists");
    std::fs::write(d.join("lists.yaml"), format!("model:\n  {}x\n", "- ".repeat(200_000))).unwrap();
    let (code, shown, took) = run(&d, &["validate", "lists.yaml"]);
    assert_eq!(code, 1, "{shown}");
    assert!(
        shown.contains("error: this is nested 65 levels deep: a spec may nest mappings and lists at most 64 deep\n --> lists.yaml:2:129\n"),
        "{shown:.600}"
    );
    assert!(took < Duration::from_secs(20), "{took:?}");
    let _ = std::fs::remove_dir_all(&d);
}

/// A spec over 16 MiB, and a device, are refused before they are read.
#[test]
fn huge_spec_and_devices() {
    let d = dir("huge_spec");
    let mut text = String::from("model:\n  input_shape: [4]\n  layers:\n");
    while text.len() <= 16 << 20 {
        text += "    - {type: Dense, units: 4}\n";
    }
    std::fs::write(d.join("huge.yaml"), &text).unwrap();
    let (code, shown, took) = run(&d, &["validate", "huge.yaml"]);
    assert_ne!(code, 0, "{shown}");
    assert!(took < Duration::from_secs(20), "{took:?}");
    insta::assert_snapshot!("huge_spec", shown);
    let (code, shown, took) = run(&d, &["validate", "/dev/zero"]);
    assert_eq!(code, 2, "{shown}");
    assert!(took < Duration::from_secs(20), "{took:?}");
    insta::assert_snapshot!("dev_zero", shown);
    let _ = std::fs::remove_dir_all(&d);
}

/// 100,000 layers, unnamed and named: linear time (it took 13.9 s unnamed,
/// quadratic in the names), and no recursion over the graph.
#[test]
fn a_hundred_thousand_layers() {
    for named in [false, true] {
        let d = dir(if named { "layers_named" } else { "layers_unnamed" });
        let mut text = String::from("model:\n  input_shape: [4]\n  layers:\n");
        for i in 0..100_000 {
            text += &if named { format!("    - {{type: Dense, units: 4, name: d{i}}}\n") } else { "    - {type: Dense, units: 4}\n".to_string() };
        }
        std::fs::write(d.join("big.yaml"), &text).unwrap();
        let (code, shown, took) = run(&d, &["validate", "big.yaml"]);
        assert_eq!(code, 0, "{:.2000}", shown);
        // The debug binary takes about 4 s on a shared 2-core machine.
        assert!(took < Duration::from_secs(60), "{took:?}");
        // The summary has a row per layer: the last rows and the totals are what matter.
        let lines: Vec<&str> = shown.lines().collect();
        let tail = lines[lines.len() - 9..].join("\n");
        let head = lines[..2].join("\n");
        insta::assert_snapshot!(if named { "hundred_thousand_named" } else { "hundred_thousand_unnamed" }, format!("{head}\n...\n{tail}"));
        let _ = std::fs::remove_dir_all(&d);
    }
}

/// Thousands of broken references: each error has a bounded hint.
#[test]
fn many_dangling_references() {
    let mut text = String::from("model:\n  inputs: {x: [4]}\n  layers:\n");
    for i in 0..5_000 {
        text += &format!("    - {{name: l{i}, type: Dense, units: 2, inputs: nope{i}}}\n");
    }
    let d = dir("dangling");
    std::fs::write(d.join("dangling.yaml"), &text).unwrap();
    let (code, shown, took) = run(&d, &["validate", "--format", "json", "dangling.yaml"]);
    assert_eq!(code, 1);
    assert!(took < Duration::from_secs(20), "{took:?}");
    let v: serde_json::Value = serde_json::from_str(shown.lines().find(|l| l.starts_with('{')).unwrap()).unwrap();
    let errors = v["errors"].as_array().unwrap();
    assert!(errors.len() >= 5_000, "{}", errors.len());
    for e in errors.iter().filter(|e| e["message"].as_str().unwrap().contains("names no layer")) {
        assert!(e["hint"].as_str().unwrap().len() < 200, "{e}");
    }
    assert_eq!(errors.last().unwrap()["hint"], "known names: x, l0, l1, l2, l3, l4, l5, l6, l7, l8, ... (4,991 more)");
    let _ = std::fs::remove_dir_all(&d);
}
