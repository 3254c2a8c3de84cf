//! The benchmark harness still works: `bench/run.sh --smoke` with this build's
//! binary trains two workloads for one epoch on a few samples and prints the
//! documented JSON lines (bench/README.md). Not a timing test: it checks the
//! pipeline and the keys, and that every figure is a positive number.

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
];
const POSITIVE_RUN_KEYS: &[&str] =
    &["n_train", "train_seconds", "fit_seconds", "train_samples_per_s", "fit_samples_per_s", "first_epoch_seconds", "peak_rss_mb", "process_wall_seconds"];
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
];
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
        for key in ["train_samples_per_s", "peak_rss_mb", "process_wall_seconds"] {
            positive(s, key, line);
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
