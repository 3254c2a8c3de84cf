//! `nnrun inspect` through the binary on a tiny trained model.

use assert_cmd::Command;

fn nnrun(args: &[&str]) -> (i32, String, String) {
    let out = Command::cargo_bin("nnrun").unwrap().args(args).env("NO_COLOR", "1").output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Metric values depend on the platform's float arithmetic: keep the names only.
fn redact_metrics(text: &str) -> String {
    let mut in_metrics = false;
    let mut out = String::new();
    for line in text.lines() {
        in_metrics = line == "Final metrics:" || (in_metrics && !line.is_empty());
        match line.split_once(": ") {
            Some((name, _)) if in_metrics => out.push_str(&format!("{name}: [value]\n")),
            _ => out.push_str(&format!("{line}\n")),
        }
    }
    out
}

#[test]
fn iris_model() {
    let dir = std::env::temp_dir().join(format!("nnrun-inspect-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (code, _, stderr) = nnrun(&["train", "specs/iris_named.yaml", "--epochs", "2", "--out", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let model = dir.join("model.safetensors");
    let (code, stdout, stderr) = nnrun(&["inspect", model.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    for name in ["  loss: ", "  accuracy: ", "  test_loss: ", "  test_accuracy: ", "  learning_rate: 0.01\n"] {
        assert!(stdout.contains(name), "{name:?} missing:\n{stdout}");
    }
    let text = redact_metrics(&stdout).replace(&model.display().to_string(), "[model]").replace(env!("CARGO_PKG_VERSION"), "[version]");
    insta::assert_snapshot!("iris", text);

    let (code, _, stderr) = nnrun(&["inspect", "no/such/model.safetensors"]);
    assert_eq!(code, 2);
    assert!(stderr.starts_with("error: cannot read no/such/model.safetensors"), "{stderr}");
}
