//! The benchmark harness still works: `bench/run.sh --smoke` with this build's
//! binary trains two workloads for one epoch on a few samples and prints the
//! documented JSON lines (bench/README.md). Not a timing test: it checks the
//! pipeline and the keys, and that every figure is a positive number; and
//! that bench/flops.py gives the FLOPs per sample checked by hand in its
//! docstring.

use serde_json::Value;
use std::process::Command;

const RUN_KEYS: &[&str] = &[
    "workload",
    "spec",
    "rep",
    "seed",
    "threads",
    "epochs",
    "batch_size",
    "n_train",
    "train_seconds",
    "fit_seconds",
    "between_epochs_seconds",
    "train_samples_per_s",
    "fit_samples_per_s",
    "steady_samples_per_s",
    "first_epoch_seconds",
    "metric",
    "metric_value",
    "final_train_loss",
    "peak_rss_mb",
    "process_wall_seconds",
    "cpu_seconds",
    "cpu_util",
    "rss_source",
    "flops_per_sample",
    "gflops",
    "steady_gflops",
    "ceiling_share",
    "steady_ceiling_share",
];
const POSITIVE_RUN_KEYS: &[&str] = &[
    "n_train",
    "train_seconds",
    "fit_seconds",
    "train_samples_per_s",
    "fit_samples_per_s",
    "first_epoch_seconds",
    "peak_rss_mb",
    "process_wall_seconds",
    "flops_per_sample",
    "gflops",
];
const SUMMARY_KEYS: &[&str] = &[
    "workload",
    "runs",
    "train_samples_per_s",
    "steady_samples_per_s",
    "metric",
    "metric_value",
    "peak_rss_mb",
    "process_wall_seconds",
    "peers",
    "best_peer",
    "best_peer_train_samples_per_s",
    "ratio_train_vs_best_peer",
    "ratio_steady_vs_best_peer",
    "least_peer_rss_mb",
    "ratio_rss_vs_least_peer",
    "flops_per_sample",
    "forward_flops_per_sample",
    "gflops",
    "steady_gflops",
    "ceiling_gflops",
    "ceiling_lib",
    "ceiling_share",
    "steady_ceiling_share",
];
/// Training FLOPs per sample (bench/flops.py's docstring, by hand).
const MLP_TRAIN_FLOPS: u64 = 1_636_352;
const CNN_TRAIN_FLOPS: u64 = 14_256_384;
const TABULAR_TRAIN_FLOPS: u64 = 2_016;
const STARTUP_KEYS: &[&str] = &["validate_ms_median", "validate_ms_min", "help_ms_median", "help_ms_min"];

fn positive(obj: &Value, key: &str, line: &str) {
    let v = obj[key].as_f64().unwrap_or_else(|| panic!("`{key}` is not a number in {line}"));
    assert!(v > 0.0 && v.is_finite(), "`{key}` = {v} is not positive in {line}");
}

#[test]
fn smoke_run_prints_the_documented_json_lines() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("bash")
        .arg(format!("{root}/bench/run.sh"))
        .args(["--smoke", "--bin", env!("CARGO_BIN_EXE_nnrun"), "mlp", "tabular"])
        .current_dir(root)
        .output()
        .expect("bash runs bench/run.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench/run.sh --smoke failed\nstdout:\n{stdout}\nstderr:\n{stderr}");

    let mut kinds: Vec<(String, Value, String)> = Vec::new();
    for line in stdout.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}\nstderr:\n{stderr}"));
        let kind = v["kind"].as_str().unwrap_or_else(|| panic!("no `kind` in {line}")).to_string();
        kinds.push((kind, v, line.to_string()));
    }
    let of = |k: &str| kinds.iter().filter(|(kind, _, _)| kind == k).map(|(_, v, l)| (v, l.as_str())).collect::<Vec<_>>();

    let meta = of("meta");
    assert_eq!(meta.len(), 1, "one meta line\n{stdout}");
    assert_eq!(meta[0].0["smoke"], true);
    // --smoke measures no ceiling: the keys are there, empty.
    assert_eq!(meta[0].0["roofline"], serde_json::json!([]), "{}", meta[0].1);
    assert!(meta[0].0["ceiling_gflops"].is_null(), "{}", meta[0].1);
    assert_eq!(meta[0].0["flops_per_sample"], serde_json::json!({"mlp": MLP_TRAIN_FLOPS, "tabular": TABULAR_TRAIN_FLOPS}), "{}", meta[0].1);

    let runs = of("run");
    assert_eq!(runs.len(), 2, "one run line per workload\n{stdout}");
    for ((run, line), wl) in runs.iter().zip(["mlp", "tabular"]) {
        assert_eq!(run["workload"], wl, "{line}");
        for key in RUN_KEYS {
            assert!(run.get(key).is_some(), "run line lacks `{key}`: {line}");
        }
        for key in POSITIVE_RUN_KEYS {
            positive(run, key, line);
        }
        assert_eq!(run["epochs"], 1, "{line}");
        let metric = run["metric"].as_str().unwrap();
        assert_eq!(metric, "test_accuracy", "{line}");
        let value = run["metric_value"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&value) && run[metric].as_f64() == Some(value), "{line}");
        // One epoch: the training time is that epoch, and the process outlives it.
        let (train, first, wall) =
            (run["train_seconds"].as_f64().unwrap(), run["first_epoch_seconds"].as_f64().unwrap(), run["process_wall_seconds"].as_f64().unwrap());
        assert!((train - first).abs() < 1e-3 && train < wall, "{line}");
    }

    let summaries = of("summary");
    assert_eq!(summaries.len(), 2, "one summary line per workload\n{stdout}");
    for (s, line) in &summaries {
        for key in SUMMARY_KEYS {
            assert!(s.get(key).is_some(), "summary line lacks `{key}`: {line}");
        }
        for key in ["train_samples_per_s", "peak_rss_mb", "process_wall_seconds", "flops_per_sample", "forward_flops_per_sample", "gflops"] {
            positive(s, key, line);
        }
        let want = if s["workload"] == "mlp" { MLP_TRAIN_FLOPS } else { TABULAR_TRAIN_FLOPS };
        assert_eq!(s["flops_per_sample"].as_u64(), Some(want), "{line}");
        // gflops = samples/s x FLOPs per sample / 1e9, to 4 significant digits.
        let gflops = s["train_samples_per_s"].as_f64().unwrap() * want as f64 / 1e9;
        assert!((s["gflops"].as_f64().unwrap() / gflops - 1.0).abs() < 1e-3, "{line}");
        for key in ["ceiling_share", "steady_ceiling_share", "ceiling_gflops", "steady_gflops"] {
            assert!(s[key].is_null(), "`{key}` without a ceiling or a second epoch: {line}");
        }
        // The peers' figures come from shared/peers/results.jsonl when it is there.
        if s["peers"].as_object().is_some_and(|p| !p.is_empty()) {
            for key in ["best_peer_train_samples_per_s", "ratio_train_vs_best_peer", "least_peer_rss_mb", "ratio_rss_vs_least_peer"] {
                positive(s, key, line);
            }
        }
    }

    let startup = of("startup");
    assert_eq!(startup.len(), 1, "one startup line\n{stdout}");
    for key in STARTUP_KEYS {
        positive(startup[0].0, key, startup[0].1);
    }
}

/// bench/flops.py on the bundled specs: the docstring's hand-checked totals
/// and per-layer figures for mnist_mlp and mnist_cnn, and every workload's
/// total (mlp, cnn, lstm, tabular, ctc).
#[test]
fn flops_py_gives_the_hand_checked_counts() {
    let root = env!("CARGO_MANIFEST_DIR");
    let specs = ["specs/mnist_mlp.yaml", "specs/mnist_cnn.yaml", "specs/sunspots_lstm.yaml", "specs/breast_cancer.yaml", "specs/ocr_crnn.yaml"];
    let out = Command::new("python3")
        .arg(format!("{root}/bench/flops.py"))
        .args(["--bin", env!("CARGO_BIN_EXE_nnrun")])
        .args(specs)
        .current_dir(root)
        .output()
        .expect("python3 runs bench/flops.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "bench/flops.py failed\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let res: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(res.len(), specs.len(), "{stdout}");
    // (forward, train) per sample, in spec order
    let totals = [(813_056, MLP_TRAIN_FLOPS), (4_881_920, CNN_TRAIN_FLOPS), (101_440, 301_248), (992, TABULAR_TRAIN_FLOPS), (36_062_208, 106_380_288)];
    for (r, (fwd, train)) in res.iter().zip(totals) {
        assert_eq!(r["forward_flops_per_sample"].as_u64(), Some(fwd), "{r}");
        assert_eq!(r["train_flops_per_sample"].as_u64(), Some(train), "{r}");
        assert_eq!(r["uncounted"], serde_json::json!([]), "{r}");
    }
    // (layer, forward, backward, input gradient computed)
    let layers = |r: &Value| -> Vec<(String, u64, u64, Value)> {
        r["layers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["forward_flops"].as_u64() != Some(0))
            .map(|l| {
                (l["name"].as_str().unwrap().to_string(), l["forward_flops"].as_u64().unwrap(), l["backward_flops"].as_u64().unwrap(), l["input_grad"].clone())
            })
            .collect()
    };
    let t = Value::Bool(true);
    let f = Value::Bool(false);
    assert_eq!(layers(&res[0]), vec![("dense".into(), 802_816, 802_816, f.clone()), ("dense_1".into(), 10_240, 20_480, t.clone())]);
    assert_eq!(
        layers(&res[1]),
        vec![("conv2d".into(), 389_376, 389_376, f), ("conv2d_1".into(), 4_460_544, 8_921_088, t.clone()), ("dense".into(), 32_000, 64_000, t)]
    );

    // --table prints the same totals.
    let out = Command::new("python3")
        .arg(format!("{root}/bench/flops.py"))
        .args(["--table", "--bin", env!("CARGO_BIN_EXE_nnrun"), "specs/mnist_cnn.yaml"])
        .current_dir(root)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && table.lines().last().is_some_and(|l| l.contains("4,881,920") && l.contains("14,256,384")), "{table}");
}
