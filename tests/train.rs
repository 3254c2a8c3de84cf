//! `nnrun train` through the binary, on tiny versions of the workloads:
//! the loss falls, the run directory is complete, runs reproduce, and bad
//! input gets a clear error.

use std::path::{Path, PathBuf};
mod common;
use common::{nnrun, temp as out_dir, train};

/// history.csv as (header, rows).
fn history(dir: &Path) -> (Vec<String>, Vec<Vec<f64>>) {
    let text = std::fs::read_to_string(dir.join("history.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().split(',').map(str::to_string).collect();
    let rows = lines.map(|l| l.split(',').map(|v| v.parse().unwrap()).collect()).collect();
    (header, rows)
}

fn column(dir: &Path, name: &str) -> Vec<f64> {
    let (header, rows) = history(dir);
    let i = header.iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name} in {header:?}"));
    rows.iter().map(|r| r[i]).collect()
}

fn assert_run_dir(dir: &Path) {
    for f in ["model.safetensors", "spec.yaml", "history.csv", "history.svg"] {
        assert!(dir.join(f).is_file(), "{} missing", f);
    }
}

fn tiny(spec: &str, name: &str, extra: &[&str]) -> PathBuf {
    let dir = out_dir(name);
    let mut args = vec![spec, "--out", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    let (code, stdout, stderr) = train(&args);
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("Epoch 1/"), "{stdout}");
    assert_run_dir(&dir);
    dir
}

fn falls(losses: &[f64]) {
    assert!(losses.len() >= 2 && losses.last() < losses.first(), "loss did not fall: {losses:?}");
}

#[test]
fn mnist_mlp_tiny() {
    let dir = tiny("specs/mnist_mlp.yaml", "mlp", &["--limit", "512", "--epochs", "3"]);
    falls(&column(&dir, "loss"));
    assert!(column(&dir, "accuracy").last().unwrap() > &0.5);
}

#[test]
fn mnist_cnn_tiny() {
    let dir = tiny("specs/mnist_cnn.yaml", "cnn", &["--limit", "256", "--epochs", "2"]);
    falls(&column(&dir, "loss"));
}

#[test]
fn breast_cancer_tiny() {
    let dir = tiny("specs/breast_cancer.yaml", "bc", &["--epochs", "3"]);
    falls(&column(&dir, "loss"));
    assert_eq!(history(&dir).0, ["epoch", "loss", "accuracy", "auc", "learning_rate"]);
}

#[test]
fn iris_named_string_classes() {
    let dir = tiny("specs/iris_named.yaml", "iris", &["--epochs", "5"]);
    falls(&column(&dir, "loss"));
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let prep = &meta.metadata().as_ref().unwrap()["nnrun.preprocessing"];
    assert!(prep.contains("setosa") && prep.contains("virginica"), "class names are kept: {prep}");
}

#[test]
fn sunspots_lstm_tiny() {
    let dir = tiny("specs/sunspots_lstm.yaml", "sun", &["--epochs", "3"]);
    falls(&column(&dir, "loss"));
}

#[test]
fn dag_two_inputs_two_outputs() {
    let dir = tiny("specs/digits_dag.yaml", "dag", &["--epochs", "3", "--limit", "600"]);
    falls(&column(&dir, "digit_loss"));
    falls(&column(&dir, "odd_loss"));
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = st.names().into_iter().map(str::to_string).collect();
    names.sort();
    assert!(names.contains(&"c1.kernel".to_string()) && names.contains(&"odd.bias".to_string()), "{names:?}");
    assert_eq!(st.tensor("c1.kernel").unwrap().shape(), &[3, 3, 1, 16], "Keras layout");
}

#[test]
fn same_seed_same_weights_bit_for_bit() {
    let a = tiny("specs/breast_cancer.yaml", "seed-a", &["--epochs", "2", "--seed", "7"]);
    let b = tiny("specs/breast_cancer.yaml", "seed-b", &["--epochs", "2", "--seed", "7"]);
    let c = tiny("specs/breast_cancer.yaml", "seed-c", &["--epochs", "2", "--seed", "8"]);
    let read = |d: &Path| std::fs::read(d.join("model.safetensors")).unwrap();
    assert!(read(&a) == read(&b), "same seed, same model file");
    assert!(read(&a) != read(&c), "another seed, another model");
    assert_eq!(std::fs::read(a.join("history.csv")).unwrap(), std::fs::read(b.join("history.csv")).unwrap());
}

#[test]
fn overrides_reach_the_saved_spec() {
    let dir = tiny("specs/breast_cancer.yaml", "set", &["--epochs", "1", "--set", "training.optimizer.learning_rate=0.01"]);
    let spec = std::fs::read_to_string(dir.join("spec.yaml")).unwrap();
    assert!(spec.contains("learning_rate: 0.01") && spec.contains("epochs: 1"), "{spec}");
}

#[test]
fn max_steps_stops_early() {
    let dir = tiny("specs/mnist_mlp.yaml", "steps", &["--limit", "1000", "--max-steps", "2"]);
    assert_eq!(history(&dir).1.len(), 1);
}

#[test]
fn json_log_lines() {
    let dir = out_dir("json");
    let (code, stdout, _) = train(&["specs/breast_cancer.yaml", "--epochs", "2", "--log-format", "json", "--out", dir.to_str().unwrap()]);
    assert_eq!(code, 0);
    let events: Vec<serde_json::Value> = stdout.lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).unwrap()).collect();
    let epochs: Vec<_> = events.iter().filter(|e| e["event"] == "epoch").collect();
    assert_eq!(epochs.len(), 2);
    assert!(epochs[0]["loss"].as_f64().is_some() && epochs[0]["samples_per_second"].as_f64().is_some());
    assert!(events.iter().any(|e| e["event"] == "test" && e["test_accuracy"].as_f64().is_some()));
}

#[test]
fn divergence_stops_with_a_clear_message() {
    let dir = out_dir("nan");
    let (code, _, stderr) =
        train(&["specs/sunspots_lstm.yaml", "--epochs", "3", "--set", "training.optimizer={type: sgd, learning_rate: 1.0e30}", "--out", dir.to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("training diverged"), "{stderr}");
    assert!(stderr.contains("hint: lower the learning rate"), "{stderr}");
}

#[test]
fn invalid_spec_and_bad_data_are_errors_not_panics() {
    let (code, _, stderr) = train(&["tests/specs/typos.yaml"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("error: layer 'dense' (Dense): unknown argument `unit`"), "{stderr}");

    let (code, _, stderr) = train(&["specs/breast_cancer.yaml", "--set", "data.target=no_such_column"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("no_such_column"), "{stderr}");

    let (code, _, stderr) = train(&["specs/mnist_mlp.yaml", "--set", "model.input_shape=[780]"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("784") && stderr.contains("780"), "feature count against the input shape: {stderr}");

    let (code, _, stderr) = train(&["specs/mnist_mlp.yaml", "--set", "model.layers.1.units=5"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("class") || stderr.contains("label"), "labels out of range for 5 units: {stderr}");

    let (code, _, stderr) = train(&["no/such/spec.yaml"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("cannot read no/such/spec.yaml"), "{stderr}");
}

#[test]
fn cuda_without_the_feature_is_a_clear_error() {
    if cfg!(feature = "cuda") {
        return;
    }
    let (code, _, stderr) = train(&["specs/breast_cancer.yaml", "--device", "cuda", "--out", out_dir("cuda").to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("error: --device cuda: this nnrun was built without CUDA support; rebuild with `cargo build --release --features cuda`"),
        "{stderr}"
    );
    let (code, _, stderr) = nnrun(&["predict", "no-such-model.safetensors", "--input", "x.csv", "--device", "cuda"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("built without CUDA support"), "{stderr}");
}

#[test]
fn class_weight_changes_the_training_and_names_a_class_the_data_lacks() {
    let plain = tiny("specs/iris_named.yaml", "cw-plain", &["--epochs", "2"]);
    let weighted = tiny("specs/iris_named.yaml", "cw-weighted", &["--epochs", "2", "--set", "training.class_weight={setosa: 3.0, virginica: 0.5}"]);
    assert_ne!(column(&plain, "loss"), column(&weighted, "loss"), "the weights reach the loss");
    // All weights 1 take the unweighted path: the plain run, bit for bit.
    let ones = tiny("specs/iris_named.yaml", "cw-ones", &["--epochs", "2", "--set", "training.class_weight={0: 1, versicolor: 1}"]);
    assert_eq!(std::fs::read_to_string(plain.join("history.csv")).unwrap(), std::fs::read_to_string(ones.join("history.csv")).unwrap());
    tiny("specs/iris_named.yaml", "cw-balanced", &["--epochs", "1", "--set", "training.class_weight=balanced"]);

    let dir = out_dir("cw-typo");
    let (code, _, stderr) = train(&["specs/iris_named.yaml", "--out", dir.to_str().unwrap(), "--set", "training.class_weight={setosa: 2, virginca: 1}"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("error: `training.class_weight`: class 'virginca' does not occur in the training data (classes: setosa, versicolor, virginica)"),
        "{stderr}"
    );
    assert!(stderr.contains("hint: did you mean 'virginica'?"), "{stderr}");

    // Against the model: validate finds it, at the key.
    let spec = out_dir("cw-validate").join("regression.yaml");
    let text = "model:\n  input_shape: [3]\n  layers: [{type: Dense, units: 1}]\ntraining:\n  loss: mse\n  class_weight: balanced\n";
    std::fs::write(&spec, text).unwrap();
    let (code, stdout, stderr) = nnrun(&["validate", spec.to_str().unwrap()]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let out = format!("{stdout}{stderr}");
    assert!(out.contains("`class_weight` needs a classification loss") && out.contains("regression.yaml:6:3"), "{out}");
}

/// Whether this CPU runs the bf16 kernels (AVX-512 with AVX512_BF16).
fn cpu_has_bf16() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        has!("avx512bf16") && has!("avx512f") && has!("avx512vl") && has!("avx512bw") && has!("avx512dq")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[test]
fn mixed_bfloat16_trains_where_the_cpu_has_bf16_and_is_refused_elsewhere() {
    let mixed = "training.mixed_precision=mixed_bfloat16";
    // Refused without the bf16 kernels: forced off here with NNRUN_ISA.
    let dir = out_dir("bf16-off");
    let out = assert_cmd::Command::cargo_bin("nnrun")
        .unwrap()
        .args(["train", "specs/mnist_mlp.yaml", "--limit", "256", "--epochs", "1", "--set", mixed, "--out", dir.to_str().unwrap()])
        .env("NO_COLOR", "1")
        .env("NNRUN_ISA", "avx2")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("`training.mixed_precision: mixed_bfloat16` needs a CPU with AVX512_BF16 (vdpbf16ps)"), "{stderr}");
    assert!(stderr.contains("hint: remove `training.mixed_precision` (or set it to float32)"), "{stderr}");
    assert!(!dir.join("model.safetensors").exists());
    // Keras's other policy names are not offered.
    let (code, _, stderr) = train(&["specs/mnist_mlp.yaml", "--set", "training.mixed_precision=mixed_float16", "--out", out_dir("f16").to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("must be one of float32, mixed_bfloat16, received \"mixed_float16\""), "{stderr}");
    if !cpu_has_bf16() {
        return;
    }
    // Where the CPU has it: trains, says so, and lands near the float32 run.
    let args = ["--limit", "1024", "--epochs", "3"];
    let f32_dir = tiny("specs/mnist_mlp.yaml", "mlp-f32", &args);
    let dir = out_dir("mlp-bf16");
    let (code, stdout, stderr) = train(&["specs/mnist_mlp.yaml", "--limit", "1024", "--epochs", "3", "--set", mixed, "--out", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("mixed_bfloat16 (bf16 products, f32 weights)"), "{stdout}");
    let (a, b) = (column(&f32_dir, "loss"), column(&dir, "loss"));
    falls(&b);
    // bf16 rounding changes the numbers, not the training.
    assert_ne!(a, b);
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() < 0.05 * x.abs().max(0.1), "float32 {a:?} vs mixed_bfloat16 {b:?}");
    }
}

/// A build without the `mpi` feature started by mpirun would train N
/// separate copies into one run folder: refused, saying how to build it.
#[cfg(not(feature = "mpi"))]
#[test]
fn started_by_mpirun_without_mpi_support_is_refused() {
    let dir = common::temp("no-mpi");
    let out = assert_cmd::Command::cargo_bin("nnrun")
        .unwrap()
        .args(["train", "specs/iris_named.yaml", "--out", dir.to_str().unwrap()])
        .env("NO_COLOR", "1")
        .env("OMPI_COMM_WORLD_SIZE", "2")
        .env("OMPI_COMM_WORLD_LOCAL_SIZE", "2")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.starts_with("error: started as one of 2 processes (by mpirun or srun), but this nnrun was built without MPI support"), "{err}");
    assert!(err.contains("hint: rebuild with `cargo build --release --features mpi`"), "{err}");
    assert!(!dir.join("checkpoint.safetensors").exists());
    let (code, version, _) = common::nnrun(&["--version"]);
    assert_eq!((code, version.trim()), (0, "nnrun 0.1.0 (MPI support: not compiled in (build with --features mpi))"));
}
