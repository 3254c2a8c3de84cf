//! `nnrun validate` as users see it: output, exit codes, every example spec.

use assert_cmd::Command;
use std::path::Path;

/// Runs nnrun and renders what a user sees: the command, exit code, stdout, stderr.
fn run(args: &[&str]) -> (i32, String) {
    let out = Command::cargo_bin("nnrun").unwrap().args(args).env("NO_COLOR", "1").output().unwrap();
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
    (code, shown)
}

fn yaml_files(dir: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn every_example_spec_is_valid_without_warnings() {
    let specs = yaml_files("specs");
    assert!(specs.len() >= 10, "specs/ has the examples");
    for spec in &specs {
        let (code, shown) = run(&["validate", "--strict", spec]);
        assert_eq!(code, 0, "{shown}");
        assert!(shown.contains(&format!("{spec}: valid\n")), "{shown}");
    }
}

#[test]
fn example_specs_cover_every_layer_type() {
    let all: String = yaml_files("specs").iter().map(|f| std::fs::read_to_string(f).unwrap()).collect();
    for name in nnrun::layers::type_names() {
        assert!(all.contains(&format!("type: {name}")), "no example spec uses {name}");
    }
}

/// One snapshot per case spec, text and JSON.
#[test]
fn case_specs_snapshots() {
    for spec in yaml_files("tests/specs") {
        let stem = Path::new(&spec).file_stem().unwrap().to_string_lossy().into_owned();
        let (code, text) = run(&["validate", &spec]);
        insta::assert_snapshot!(format!("{stem}_text"), text);
        let (json_code, json) = run(&["validate", "--format", "json", &spec]);
        assert_eq!(code, json_code, "text and JSON agree on the exit code for {spec}");
        insta::assert_snapshot!(format!("{stem}_json"), json);
    }
}

#[test]
fn summaries_of_examples() {
    for spec in ["specs/mnist_mlp.yaml", "specs/mnist_cnn.yaml", "specs/digits_dag.yaml", "specs/residual_cnn.yaml"] {
        let stem = Path::new(spec).file_stem().unwrap().to_string_lossy().into_owned();
        insta::assert_snapshot!(format!("summary_{stem}"), run(&["validate", spec]).1);
    }
    insta::assert_snapshot!("summary_digits_dag_json", run(&["validate", "--format", "json", "specs/digits_dag.yaml"]).1);
}

#[test]
fn keras_parameter_counts() {
    // Figures from Keras 3 model.summary() for the same models.
    let total = |spec: &str| -> u64 {
        let (_, out) = run(&["validate", "--format", "json", spec]);
        let line = out.lines().find(|l| l.starts_with('{')).unwrap();
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        v["total_params"].as_u64().unwrap()
    };
    assert_eq!(total("specs/mnist_mlp.yaml"), 407_050);
    assert_eq!(total("specs/mnist_cnn.yaml"), 34_826);
    assert_eq!(total("specs/sunspots_lstm.yaml"), 4_385);
    assert_eq!(total("specs/breast_cancer.yaml"), 513);
}

#[test]
fn json_has_the_documented_keys() {
    let (code, out) = run(&["validate", "--format", "json", "specs/mnist_cnn.yaml", "tests/specs/typos.yaml"]);
    assert_eq!(code, 1);
    let lines: Vec<serde_json::Value> = out.lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "one JSON object per spec file, one per line");
    for v in &lines {
        for key in ["valid", "layers", "total_params", "trainable_params", "non_trainable_params", "errors", "warnings"] {
            assert!(v.get(key).is_some(), "missing key {key}");
        }
    }
    assert_eq!(lines[0]["valid"], true);
    assert_eq!(lines[0]["layers"][0]["output_shape"], serde_json::json!([26, 26, 32]));
    assert_eq!(lines[0]["layers"][0]["inputs"], serde_json::json!(["input"]));
    // Each layer's weights in Keras order, as bench/flops.py reads them.
    assert_eq!(
        lines[0]["layers"][0]["weights"],
        serde_json::json!([{"name": "kernel", "shape": [3, 3, 1, 32], "trainable": true}, {"name": "bias", "shape": [32], "trainable": true}])
    );
    assert_eq!(lines[0]["layers"][1]["weights"], serde_json::json!([]), "pooling has none");
    assert_eq!(lines[1]["valid"], false);
    let e = &lines[1]["errors"][0];
    for key in ["message", "line", "column", "path", "hint"] {
        assert!(e.get(key).is_some(), "error lacks {key}");
    }
}

#[test]
fn exit_codes() {
    assert_eq!(run(&["validate", "specs/mnist_mlp.yaml"]).0, 0);
    assert_eq!(run(&["validate", "specs/mnist_mlp.yaml", "tests/specs/typos.yaml"]).0, 1);
    // Warnings pass, unless --strict.
    assert_eq!(run(&["validate", "tests/specs/loss_mismatch.yaml"]).0, 0);
    assert_eq!(run(&["validate", "--strict", "tests/specs/loss_mismatch.yaml"]).0, 1);
    // I/O and usage errors are 2, even beside an invalid spec.
    let (code, shown) = run(&["validate", "tests/specs/typos.yaml", "no/such/spec.yaml"]);
    assert_eq!(code, 2);
    assert!(shown.contains("error: cannot read no/such/spec.yaml"), "{shown}");
    assert_eq!(run(&["validate"]).0, 2);
    assert_eq!(run(&["validate", "--format", "xml", "specs/mnist_mlp.yaml"]).0, 2);
}

#[test]
fn missing_file_snapshot() {
    insta::assert_snapshot!("missing_file", run(&["validate", "no/such/spec.yaml"]).1);
    insta::assert_snapshot!("missing_file_json", run(&["validate", "--format", "json", "no/such/spec.yaml"]).1);
}
