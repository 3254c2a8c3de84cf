//! `nnrun evaluate` through the binary: on the spec's test data it repeats
//! the test metrics training saved; on other files it uses the saved
//! preprocessing; broken model files are errors, not panics.

use serde_json::Value;
use std::path::Path;
mod common;
use common::{nnrun, temp, trained};

fn evaluate_json(model: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["evaluate", model.to_str().unwrap(), "--format", "json"];
    args.extend_from_slice(extra);
    let (code, stdout, stderr) = nnrun(&args);
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// The model's saved `test_*` metrics, without the prefix.
fn saved_test_metrics(model: &Path) -> Vec<(String, f64)> {
    let bytes = std::fs::read(model).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let metrics: serde_json::Map<String, Value> = serde_json::from_str(&header.metadata().as_ref().unwrap()["nnrun.metrics"]).unwrap();
    metrics.iter().filter_map(|(k, v)| Some((k.strip_prefix("test_")?.to_string(), v.as_f64().unwrap()))).collect()
}

/// Every matrix counts each sample once.
fn check_matrices(report: &Value, outputs: &[(&str, usize)]) {
    let n = report["samples"].as_u64().unwrap();
    let cms = report["confusion_matrix"].as_object().unwrap();
    assert_eq!(cms.len(), outputs.len(), "{report}");
    for (name, classes) in outputs {
        let cm = &cms[*name];
        assert_eq!(cm["classes"].as_array().unwrap().len(), *classes);
        let rows = cm["matrix"].as_array().unwrap();
        assert_eq!(rows.len(), *classes);
        let total: u64 = rows.iter().flat_map(|r| r.as_array().unwrap()).map(|v| v.as_u64().unwrap()).sum();
        assert_eq!(total, n, "{name}: {cm}");
    }
}

/// evaluate without --data gives the test metrics training saved.
fn reproduces_test_metrics(model: &Path) -> Value {
    let report = evaluate_json(model, &[]);
    let saved = saved_test_metrics(model);
    assert!(!saved.is_empty());
    for (k, v) in saved {
        let got = report[&k].as_f64().unwrap_or_else(|| panic!("no '{k}' in {report}"));
        assert!((got - v).abs() < 1e-6, "{k}: evaluate {got}, training {v}");
    }
    report
}

#[test]
fn iris_test_split_and_other_data() {
    let model = trained("specs/iris_named.yaml", "iris", &["--epochs", "20"]);
    let report = reproduces_test_metrics(&model);
    assert_eq!(report["samples"], 30);
    check_matrices(&report, &[("dense_1", 3)]);
    assert_eq!(report["confusion_matrix"]["dense_1"]["classes"], serde_json::json!(["setosa", "versicolor", "virginica"]));

    let full = evaluate_json(&model, &["--data", "data/tabular/iris_named.csv"]);
    assert_eq!(full["samples"], 150);
    check_matrices(&full, &[("dense_1", 3)]);

    // Two halves add up to the whole: statistics and classes come from the
    // model, not from each file (the second half has no setosa at all).
    let text = std::fs::read_to_string("data/tabular/iris_named.csv").unwrap();
    let (header, rows) = text.split_once('\n').unwrap();
    let rows: Vec<&str> = rows.lines().collect();
    let dir = temp("iris-halves");
    let mut sum = vec![vec![0u64; 3]; 3];
    for (i, half) in [&rows[..75], &rows[75..]].iter().enumerate() {
        let f = dir.join(format!("half{i}.csv"));
        std::fs::write(&f, format!("{header}\n{}\n", half.join("\n"))).unwrap();
        let r = evaluate_json(&model, &["--data", f.to_str().unwrap()]);
        for (s, row) in sum.iter_mut().zip(r["confusion_matrix"]["dense_1"]["matrix"].as_array().unwrap()) {
            s.iter_mut().zip(row.as_array().unwrap()).for_each(|(a, b)| *a += b.as_u64().unwrap());
        }
    }
    assert_eq!(serde_json::json!(sum), full["confusion_matrix"]["dense_1"]["matrix"]);

    let (code, stdout, stderr) = nnrun(&["evaluate", model.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("30 samples from the test split") && stdout.contains("\nloss: ") && stdout.contains("\naccuracy: "), "{stdout}");
    assert!(stdout.contains("true \\ predicted  setosa  versicolor  virginica"), "{stdout}");

    // A class the model never saw is named, with the known ones.
    let f = dir.join("unseen.csv");
    std::fs::write(&f, format!("{header}\n{}\n", rows[0].replace("setosa", "daisy"))).unwrap();
    let (code, _, stderr) = nnrun(&["evaluate", model.to_str().unwrap(), "--data", f.to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("class 'daisy' does not occur in the training data (classes: setosa, versicolor, virginica)"), "{stderr}");
}

#[test]
fn dag_two_outputs_with_limit() {
    let model = trained("specs/digits_dag.yaml", "dag", &["--epochs", "2", "--limit", "400"]);
    let report = reproduces_test_metrics(&model);
    assert_eq!(report["samples"], 80, "test_split 0.2 of the first 400 rows");
    check_matrices(&report, &[("digit", 10), ("odd", 2)]);
    for key in ["loss", "digit_loss", "digit_accuracy", "odd_loss", "odd_accuracy"] {
        assert!(report[key].is_f64(), "{key}: {report}");
    }
}

#[test]
fn breast_cancer_binary() {
    let model = trained("specs/breast_cancer.yaml", "bc", &["--epochs", "3"]);
    let report = reproduces_test_metrics(&model);
    assert!(report["auc"].is_f64());
    check_matrices(&report, &[("dense_1", 2)]);
}

#[test]
fn mnist_idx_test_files() {
    let model = trained("specs/mnist_mlp.yaml", "mnist", &["--limit", "500", "--epochs", "1"]);
    let report = reproduces_test_metrics(&model);
    check_matrices(&report, &[("dense_1", 10)]);
    // The same files given explicitly.
    let m = model.to_str().unwrap();
    let again = evaluate_json(&model, &["--data", "data/mnist/t10k-images-idx3-ubyte.gz", "--labels", "data/mnist/t10k-labels-idx1-ubyte.gz"]);
    assert_eq!(again, report);
    let (code, _, stderr) = nnrun(&["evaluate", m, "--data", "data/mnist/t10k-images-idx3-ubyte.gz"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--labels"), "{stderr}");
    let (code, _, stderr) = nnrun(&["evaluate", m, "--data", "no/such.csv"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("cannot read no/such.csv"), "{stderr}");
}

#[test]
fn broken_model_files_are_errors_not_panics() {
    let model = trained("specs/iris_named.yaml", "broken", &["--epochs", "1"]);
    let bytes = std::fs::read(&model).unwrap();
    let dir = model.parent().unwrap();
    let half = dir.join("half.safetensors");
    std::fs::write(&half, &bytes[..bytes.len() / 2]).unwrap();
    let mut flipped = bytes.clone();
    flipped[0] ^= 0xff;
    flipped[7] ^= 0x01;
    let header = dir.join("header.safetensors");
    std::fs::write(&header, &flipped).unwrap();
    for f in [&half, &header] {
        let (code, stdout, stderr) = nnrun(&["evaluate", f.to_str().unwrap()]);
        assert_eq!(code, 1, "{stdout}{stderr}");
        assert!(stderr.starts_with(&format!("error: {} is not a valid model file", f.display())), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let (code, _, stderr) = nnrun(&["evaluate", "no/such/model.safetensors"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("cannot read no/such/model.safetensors"), "{stderr}");
}

#[test]
fn warns_when_the_training_data_changed() {
    let dir = temp("changed-data");
    std::fs::copy("data/tabular/iris_named.csv", dir.join("iris.csv")).unwrap();
    let spec = std::fs::read_to_string("specs/iris_named.yaml").unwrap().replace("../data/tabular/iris_named.csv", "iris.csv");
    std::fs::write(dir.join("iris.yaml"), spec).unwrap();
    let run = dir.join("run");
    let (code, _, stderr) = nnrun(&["train", dir.join("iris.yaml").to_str().unwrap(), "--epochs", "2", "--out", run.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let model = run.join("model.safetensors");
    let (code, _, stderr) = nnrun(&["evaluate", model.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("changed"), "{stderr}");

    let text = std::fs::read_to_string(dir.join("iris.csv")).unwrap().replacen("5.1,3.5", "5.2,3.5", 1);
    std::fs::write(dir.join("iris.csv"), text).unwrap();
    let (code, _, stderr) = nnrun(&["evaluate", model.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("warning: iris.csv changed since the model was trained (its sha256 differs from the one in the model file)"), "{stderr}");
}
