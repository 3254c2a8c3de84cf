//! The command line's edge under hostile or careless use, as users see it:
//! every error rendered once with its documented exit code (1 invalid spec
//! or data, 2 usage or I/O naming the path), nonsense numbers refused before
//! any work, `--max-steps 0`, extreme history files, very deep models, the
//! warnings train shares with validate, and models larger than the memory.
//!
//! Commands run inside a fresh folder of this test, so the paths they print
//! are relative and the snapshots hold no temp paths.

use assert_cmd::Command;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A fresh folder holding the iris data and a spec training on it (as
/// `iris.yaml`, `spec` replacing its model if given).
fn workdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nnrun-hostile-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::copy("data/tabular/iris_named.csv", d.join("iris.csv")).unwrap();
    std::fs::write(d.join("iris.yaml"), iris_spec()).unwrap();
    d
}

fn iris_spec() -> String {
    std::fs::read_to_string("specs/iris_named.yaml").unwrap().replace("../data/tabular/iris_named.csv", "iris.csv")
}

/// Runs nnrun in `dir` (at most `secs` seconds) and renders what a user sees.
fn run_for(dir: &Path, args: &[&str], secs: u64) -> (i32, String, String, String) {
    let out = Command::cargo_bin("nnrun").unwrap().current_dir(dir).args(args).env("NO_COLOR", "1").timeout(Duration::from_secs(secs)).output().unwrap();
    let code = out.status.code().unwrap_or(-1);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    let mut shown = format!("$ nnrun {}\nexit: {code}\n", args.join(" "));
    if !stderr.is_empty() {
        shown += &format!("--- stderr\n{stderr}");
    }
    (code, shown, stdout, stderr)
}

fn run(dir: &Path, args: &[&str]) -> (i32, String, String, String) {
    run_for(dir, args, 120)
}

/// The shown text of several commands, one after another.
fn transcript(dir: &Path, cases: &[(&[&str], i32)]) -> String {
    let mut all = String::new();
    for (args, want) in cases {
        let (code, shown, _, _) = run(dir, args);
        assert_eq!(code, *want, "{shown}");
        all += &shown;
        all += "\n";
    }
    all
}

#[test]
fn every_error_is_rendered_once_with_its_exit_code() {
    let d = workdir("codes");
    std::fs::write(d.join("text.safetensors"), "not a model\n").unwrap();
    std::fs::write(d.join("typo.yaml"), iris_spec().replace("units: 16", "unit: 16")).unwrap();
    let cases: &[(&[&str], i32)] = &[
        (&["train", "no-such.yaml"], 2),
        (&["train", "typo.yaml"], 1),
        (&["predict", "none.safetensors", "--input", "iris.csv"], 2),
        (&["predict", "text.safetensors", "--input", "iris.csv"], 1),
        (&["evaluate", "none.safetensors"], 2),
        (&["evaluate", "text.safetensors"], 1),
        (&["inspect", "none.safetensors"], 2),
        (&["inspect", "text.safetensors"], 1),
        (&["plot", "no-such-run"], 2),
    ];
    let shown = transcript(&d, cases);
    // Each failure rendered once (the typo spec has two errors), never a panic.
    assert_eq!(shown.matches("error:").count(), cases.len() + 1, "{shown}");
    assert!(!shown.contains("panicked"), "{shown}");
    insta::assert_snapshot!("errors_and_codes", shown);
}

#[test]
fn nonsense_numbers_on_the_command_line_are_usage_errors() {
    let d = workdir("numbers");
    let cases: &[(&[&str], i32)] = &[
        (&["train", "iris.yaml", "--batch-size", "0"], 2),
        (&["train", "iris.yaml", "--epochs", "0"], 2),
        (&["train", "iris.yaml", "--limit", "0"], 2),
        (&["train", "iris.yaml", "--threads", "0"], 2),
        (&["train", "iris.yaml", "--threads", "100000"], 2),
        (&["train", "iris.yaml", "--max-steps", "-1"], 2),
        (&["train", "iris.yaml", "--epochs", "99999999999999999999999"], 2),
        // A value set through --set is checked with the spec, and shown as the flag's.
        (&["train", "iris.yaml", "--set", "training.batch_size=0"], 1),
        (&["train", "iris.yaml", "--set", "training.batch_size"], 2),
    ];
    let shown = transcript(&d, cases);
    assert!(!shown.contains("--> iris.yaml"), "no flag is blamed on the spec file:\n{shown}");
    assert!(!d.join("runs").exists(), "nothing was started");
    insta::assert_snapshot!("command_line_numbers", shown);
}

#[test]
fn an_unwritable_run_folder_fails_before_any_data_is_read() {
    let d = workdir("unwritable");
    std::fs::write(d.join("a-file"), "").unwrap();
    let (code, shown, stdout, _) = run(&d, &["train", "iris.yaml", "--out", "a-file/run"]);
    assert_eq!(code, 2, "{shown}");
    assert!(!stdout.contains("Training"), "refused before loading data:\n{stdout}");
    insta::assert_snapshot!("run_folder_not_creatable", shown);

    // A read-only folder (root writes anywhere, so only checked for others).
    let ro = d.join("read-only");
    std::fs::create_dir(&ro).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    if std::fs::write(ro.join("probe"), "").is_err() {
        let (code, shown, stdout, stderr) = run(&d, &["train", "iris.yaml", "--out", "read-only"]);
        assert_eq!(code, 2, "{shown}");
        assert!(stderr.starts_with("error: cannot write to the run folder read-only: Permission denied"), "{stderr}");
        assert!(!stdout.contains("Epoch"), "{stdout}");
    }
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn missing_files_are_io_errors_naming_the_path() {
    let d = workdir("missing");
    std::fs::write(d.join("gone.yaml"), iris_spec().replace("iris.csv", "gone.csv")).unwrap();
    let cases: &[(&[&str], i32)] = &[(&["train", "gone.yaml", "--out", "run"], 2), (&["train", "iris.yaml", "--resume", "no-run"], 2)];
    let shown = transcript(&d, cases);
    assert!(!d.join("run").exists() && !d.join("no-run").exists(), "no empty run folder is left behind");
    insta::assert_snapshot!("missing_files", shown);
}

#[test]
fn max_steps_zero_saves_the_initial_weights() {
    let d = workdir("zero-steps");
    let (code, shown, stdout, _) = run(&d, &["train", "iris.yaml", "--max-steps", "0", "--out", "run"]);
    assert_eq!(code, 0, "{shown}{stdout}");
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.starts_with("Test - ")).collect();
    insta::assert_snapshot!("max_steps_zero", format!("{shown}--- stdout (without the test metrics)\n{}\n", lines.join("\n")));
    assert_eq!(std::fs::read_to_string(d.join("run/history.csv")).unwrap(), "epoch\n", "no epoch ran");
    assert!(!d.join("run/checkpoint.safetensors").exists(), "no epoch completed");

    // The weights are those the spec's seed initializes, bit for bit.
    let source = nnrun::spec::Source { path: "iris.yaml".into(), text: iris_spec() };
    let (_, model) = nnrun::graph::from_source(&source, &mut Vec::new()).unwrap();
    use rand::SeedableRng;
    let net = nnrun::model::Net::new(model, &candle_core::Device::Cpu, candle_core::DType::F32, &mut rand::rngs::StdRng::seed_from_u64(1234)).unwrap();
    let bytes = std::fs::read(d.join("run/model.safetensors")).unwrap();
    let saved = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let initial = net.named_tensors();
    assert!(!initial.is_empty());
    for (name, t) in initial {
        let want: Vec<u8> = t.flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().flat_map(|v| v.to_le_bytes()).collect();
        assert!(saved.tensor(&name).unwrap().data() == want.as_slice(), "{name} moved");
    }
    // One step does move them.
    let (code, _, _, _) = run(&d, &["train", "iris.yaml", "--max-steps", "1", "--out", "one"]);
    assert_eq!(code, 0);
    assert!(std::fs::read(d.join("one/model.safetensors")).unwrap() != bytes);
}

#[test]
fn plot_survives_extreme_and_broken_histories() {
    let d = workdir("plot");
    let history = |name: &str, text: &str| {
        std::fs::create_dir_all(d.join(name)).unwrap();
        std::fs::write(d.join(name).join("history.csv"), text).unwrap();
    };
    history("huge", "epoch,loss,val_loss\n1,1e308,-1e308\n2,-1e308,1e308\n");
    history("nan", "epoch,loss\n1,NaN\n2,inf\n3,0.5\ninf,0.4\n");
    history("empty", "");
    history("header", "epoch,loss\n");
    std::fs::create_dir_all(d.join("big")).unwrap();
    // Sparse: refused from its size alone, before a byte is read.
    std::fs::File::create(d.join("big/history.csv")).unwrap().set_len(65 << 20).unwrap();
    let cases: &[(&[&str], i32)] = &[(&["plot", "huge"], 0), (&["plot", "nan"], 0), (&["plot", "empty"], 1), (&["plot", "header"], 1), (&["plot", "big"], 1)];
    let mut shown = String::new();
    for (args, want) in cases {
        // 1e308 used to loop forever at 100% CPU.
        let (code, s, stdout, _) = run_for(&d, args, 30);
        assert_eq!(code, *want, "{s}");
        shown += &format!("{s}{}\n", if stdout.is_empty() { String::new() } else { format!("--- stdout\n{stdout}") });
    }
    let svg = std::fs::read_to_string(d.join("huge/history.svg")).unwrap();
    assert!(svg.trim_end().ends_with("</svg>") && svg.contains("1.0e300") && svg.contains("values beyond ±1e300 drawn at ±1e300"), "{svg}");
    insta::assert_snapshot!("plot_extremes", shown);
}

#[test]
fn deep_models_train_or_are_refused_cleanly() {
    let d = workdir("deep");
    // 20,000 layers: candle's backward walk needs more than the 8 MiB main
    // thread stack (it aborted with a stack overflow).
    let layers = "    - {type: Dense, units: 2}\n".repeat(20_000);
    let spec = iris_spec().replace("    - {type: Dense, units: 16, activation: relu}\n", &layers);
    std::fs::write(d.join("deep.yaml"), spec).unwrap();
    let (code, shown, stdout, _) = run_for(&d, &["train", "deep.yaml", "--max-steps", "1", "--out", "run"], 300);
    assert_eq!(code, 0, "{shown}{stdout}");
    assert!(stdout.contains("Saved run"), "{stdout}");

    // Past the limit: refused before any data is read or weight allocated.
    let long = "name: long\nmodel:\n  input_shape: [100001, 1]\n  layers:\n    - {type: GRU, units: 1}\n    - {type: Dense, units: 3, activation: softmax}\n\
                data: {train: iris.csv, target: species}\ntraining: {loss: categorical_crossentropy, optimizer: sgd}\n";
    std::fs::write(d.join("long.yaml"), long).unwrap();
    let (code, shown, stdout, _) = run(&d, &["train", "long.yaml", "--out", "long"]);
    assert_eq!(code, 1, "{shown}");
    assert!(stdout.is_empty(), "{stdout}");
    insta::assert_snapshot!("too_deep", shown);
}

#[test]
fn train_shows_the_warnings_validate_shows() {
    let d = workdir("warnings");
    let spec = iris_spec().replace("  seed: 1234\n", "  seed: 1234\n  zero_infinity: true\n");
    std::fs::write(d.join("warn.yaml"), spec).unwrap();
    let (code, _, validated, _) = run(&d, &["validate", "warn.yaml"]);
    assert_eq!(code, 0);
    let (code, shown, stdout, stderr) = run(&d, &["train", "warn.yaml", "--max-steps", "1", "--out", "run"]);
    assert_eq!(code, 0, "{shown}");
    // The same rendering as validate's, with file:line:col, before training.
    assert!(validated.contains(stderr.trim_end()), "validate:\n{validated}\ntrain:\n{stderr}");
    assert!(stdout.starts_with("Training"), "{stdout}");
    // A warning about a value from the command line names the flag.
    let (code, from_flag, _, _) = run(&d, &["train", "iris.yaml", "--max-steps", "1", "--out", "run2", "--set", "training.zero_infinity=true"]);
    assert_eq!(code, 0, "{from_flag}");
    // A callback watching a value that is never logged is found before the
    // training, and not warned about again at the end of an epoch.
    let callback = "training.callbacks=[{type: EarlyStopping, monitor: val_loss}]";
    let (code, during, stdout, stderr) = run(&d, &["train", "iris.yaml", "--epochs", "2", "--out", "run3", "--set", callback]);
    assert_eq!(code, 0, "{during}");
    assert!(!stdout.contains("warning"), "{stdout}");
    assert_eq!(stderr.matches("warning:").count(), 1, "{stderr}");
    insta::assert_snapshot!("train_warnings", format!("{shown}\n{from_flag}\n{during}"));
}

#[test]
fn a_model_larger_than_memory_is_refused_before_allocating() {
    let d = workdir("memory");
    let data = format!("{}/data/", std::env::current_dir().unwrap().display());
    let spec = std::fs::read_to_string("specs/mnist_mlp.yaml").unwrap().replace("units: 512", "units: 200000000").replace("../data/", &data);
    std::fs::write(d.join("huge.yaml"), spec).unwrap();
    let (code, validated, _, _) = run(&d, &["validate", "huge.yaml"]);
    assert_eq!(code, 0, "it passes validate:\n{validated}");
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    if !meminfo.contains("MemAvailable:") {
        return; // the check is skipped where the available memory is unknown
    }
    let started = std::time::Instant::now();
    let (code, shown, stdout, _) = run_for(&d, &["train", "huge.yaml", "--out", "run"], 60);
    assert_eq!(code, 1, "{shown}");
    assert!(started.elapsed() < Duration::from_secs(30), "refused without loading data: {:?}", started.elapsed());
    assert!(stdout.is_empty(), "no data was loaded: {stdout}");
    // The available amount differs between machines.
    let (before, after) = shown.split_once(", and ").unwrap();
    let (_, after) = after.split_once(" is available").unwrap();
    insta::assert_snapshot!("larger_than_memory", format!("{before}, and [AVAILABLE] is available{after}"));
}

/// Rewrites a model file's metadata (safetensors: header length, JSON
/// header, data; the tensors' offsets count from the data, so they stay).
fn edit_metadata(bytes: &[u8], edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    edit(header["__metadata__"].as_object_mut().unwrap());
    let mut text = serde_json::to_vec(&header).unwrap();
    while !text.len().is_multiple_of(8) {
        text.push(b' ');
    }
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend(text);
    out.extend(&bytes[8 + n..]);
    out
}

#[test]
fn predicting_with_a_deep_model_does_not_overflow_the_stack() {
    let d = workdir("deep-predict");
    let data = format!("{}/data/", std::env::current_dir().unwrap().display());
    let spec = std::fs::read_to_string("specs/sunspots_lstm.yaml").unwrap().replace("type: LSTM, units: 32", "type: GRU, units: 2").replace("../data/", &data);
    std::fs::write(d.join("gru.yaml"), spec).unwrap();
    let (code, shown, _, _) = run(&d, &["train", "gru.yaml", "--max-steps", "1", "--out", "run"]);
    assert_eq!(code, 0, "{shown}");
    // The same weights read 99,999 steps at a time: a GRU's graph is a chain
    // of ops per step, whose drop overflowed predict's 8 MiB main stack.
    let steps = 99_999;
    let bytes = edit_metadata(&std::fs::read(d.join("run/model.safetensors")).unwrap(), |meta| {
        let spec = meta["nnrun.spec"].as_str().unwrap().replace("[12, 1]", &format!("[{steps}, 1]")).replace("size: 12", &format!("size: {steps}"));
        meta.insert("nnrun.spec".into(), spec.into());
        let mut prep: serde_json::Value = serde_json::from_str(meta["nnrun.preprocessing"].as_str().unwrap()).unwrap();
        prep["inputs"][0]["shape"] = serde_json::json!([steps, 1]);
        prep["inputs"][0]["shift"] = serde_json::json!(vec![0.0; steps]);
        prep["inputs"][0]["div"] = serde_json::json!(vec![1.0; steps]);
        prep["window"]["size"] = steps.into();
        meta.insert("nnrun.preprocessing".into(), prep.to_string().into());
    });
    std::fs::write(d.join("deep.safetensors"), bytes).unwrap();
    let series: String = (0..steps + 1).map(|i| format!("{}\n", i % 200)).collect();
    std::fs::write(d.join("series.csv"), format!("sunactivity\n{series}")).unwrap();
    let (code, shown, stdout, _) = run(&d, &["predict", "deep.safetensors", "--input", "series.csv"]);
    assert_eq!(code, 0, "{shown}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "a header and two windows: {stdout}");
    assert!(lines[0] == "line,prediction" && lines[2].starts_with(&format!("{},", steps + 2)), "{stdout}");
}

/// A model with 13 weights whose UpSampling2D makes every sample's values
/// large: `size` 2 as trained, `size` N as edited into its model file.
const UPSAMPLING: &str = "name: up
model:
  input_shape: [4]
  layers:
    - {type: Reshape, target_shape: [2, 2, 1]}
    - {type: UpSampling2D, size: 2}
    - {type: Conv2D, filters: 2, kernel_size: 1, activation: relu}
    - {type: GlobalAveragePooling2D}
    - {type: Dense, units: 3, activation: softmax}
data:
  train: iris.csv
  target: species
training:
  loss: categorical_crossentropy
  epochs: 1
";

#[test]
fn huge_activations_are_refused_before_the_first_forward_pass() {
    let d = workdir("activations");
    std::fs::write(d.join("up.yaml"), UPSAMPLING).unwrap();
    let (code, shown, _, _) = run(&d, &["train", "up.yaml", "--out", "run"]);
    assert_eq!(code, 0, "{shown}");
    // 8000 x 8000 values after the UpSampling2D, twice that after the Conv2D:
    // 732 MiB a sample, and the same 13 weights.
    let bytes = edit_metadata(&std::fs::read(d.join("run/model.safetensors")).unwrap(), |meta| {
        let spec = meta["nnrun.spec"].as_str().unwrap().replace("size: 2", "size: 4000");
        meta.insert("nnrun.spec".into(), spec.into());
    });
    std::fs::write(d.join("huge.safetensors"), bytes).unwrap();
    std::fs::write(d.join("huge.yaml"), UPSAMPLING.replace("size: 2", "size: 4000")).unwrap();
    let rows: String = std::fs::read_to_string(d.join("iris.csv")).unwrap().lines().skip(1).cycle().take(4096).map(|l| format!("{l}\n")).collect();
    std::fs::write(d.join("many.csv"), format!("sepal_length_cm,sepal_width_cm,petal_length_cm,petal_width_cm,species\n{rows}")).unwrap();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    if !meminfo.contains("MemAvailable:") {
        return; // the check is skipped where the available memory is unknown
    }
    let mut all = String::new();
    for args in [
        &["predict", "huge.safetensors", "--input", "iris.csv", "--batch-size", "4096"][..],
        &["evaluate", "huge.safetensors", "--data", "many.csv", "--batch-size", "4096"],
        // train counts the same values, three times (gradients, temporaries).
        &["train", "huge.yaml", "--batch-size", "4096", "--out", "run2"],
    ] {
        let started = std::time::Instant::now();
        let (code, shown, stdout, _) = run_for(&d, args, 60);
        assert_eq!(code, 1, "{shown}");
        assert!(started.elapsed() < Duration::from_secs(30), "refused before running: {:?}", started.elapsed());
        assert!(stdout.is_empty(), "nothing ran: {stdout}");
        // What is available, and so the batch that fits, differ between machines.
        let (before, after) = shown.split_once(", and ").unwrap();
        let (_, after) = after.split_once(" is available").unwrap();
        let after = match after.split_once("--batch-size ") {
            Some((head, tail)) if tail.starts_with(|c: char| c.is_ascii_digit()) => {
                format!("{head}--batch-size [N]{}", tail.trim_start_matches(|c: char| c.is_ascii_digit()))
            }
            _ => after.to_string(),
        };
        all += &format!("{before}, and [AVAILABLE] is available{after}\n");
    }
    insta::assert_snapshot!("huge_activations", all);
}
