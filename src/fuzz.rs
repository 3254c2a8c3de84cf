//! Entry points for fuzzing everything nnrun reads that it did not write
//! itself: specs (`validate`), model files (and checkpoints), IDX and CSV,
//! and the whole `predict` / `evaluate` / `inspect` path. Each takes raw
//! bytes, runs them through the same path-based code the commands use, and
//! returns the user-facing error, if any. A panic, hang or huge allocation
//! is the bug a fuzzer looks for; an error that is empty or does not name
//! the file comes back starting with `fuzz property:`.
//!
//! Driven by `fuzz/` (cargo fuzz, nightly) and by tests/fuzz.rs, which runs
//! the corpus seeds and seeded mutations of them as ordinary tests.

use std::path::{Path, PathBuf};

/// A scratch folder per process and thread, so parallel tests don't collide.
fn scratch() -> PathBuf {
    let d = std::env::temp_dir().join(format!("nnrun-fuzz-{}-{:?}", std::process::id(), std::thread::current().id()).replace(['(', ')'], ""));
    let _ = std::fs::create_dir_all(&d);
    d
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, String> {
    let p = dir.join(name);
    std::fs::write(&p, bytes).map_err(|e| format!("fuzz harness: cannot write {}: {e}", p.display()))?;
    Ok(p)
}

/// Reads `bytes` as a model file, restoring the network from its embedded
/// spec and weights, as `predict`, `evaluate` and `inspect` do.
pub fn model_file(bytes: &[u8]) -> Result<(), String> {
    let path = write(&scratch(), "model.safetensors", bytes)?;
    crate::artifact::restore(&path, &candle_core::Device::Cpu).map(|_| ()).map_err(|e| e.to_string())
}

/// Reads `bytes` as a checkpoint and restores it into a network, as
/// `train --resume` does. The network comes from a fixed spec (resume builds
/// it from the user's spec, never from the checkpoint's).
pub fn checkpoint(bytes: &[u8]) -> Result<(), String> {
    use rand::SeedableRng;
    let path = write(&scratch(), "checkpoint.safetensors", bytes)?;
    let ck = crate::checkpoint::Checkpoint::read(&path)?;
    let source = crate::spec::Source { path: "spec.yaml".into(), text: CHECKPOINT_SPEC.into() };
    let mut diags = Vec::new();
    let (_, model) = crate::graph::from_source(&source, &mut diags).ok_or_else(|| format!("fuzz harness: spec does not validate: {diags:?}"))?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let net = crate::model::Net::new(model, &candle_core::Device::Cpu, candle_core::DType::F32, &mut rng).map_err(|e| e.to_string())?;
    ck.restore(&net).map(|_| ())
}

/// The model of the checkpoint seeds (specs/iris_named.yaml's).
const CHECKPOINT_SPEC: &str =
    "model: {input_shape: [4], layers: [{type: Dense, units: 16, activation: relu}, {type: Dropout, rate: 0.1}, {type: Dense, units: 3, activation: softmax}]}";

/// Model specs whose data files the fuzzer replaces: `{file}` is the name.
const CSV_SPECS: [&str; 4] = [
    // String classes, missing values filled, standardized features.
    "model: {input_shape: [2], layers: [{type: Dense, units: 3, activation: softmax}]}
data: {train: '{file}', target: species, features: [x, y], normalize: standard, missing: mean, test_split: 0.25}
training: {loss: categorical_crossentropy}",
    // Binary target, rows with missing values dropped, min-max scaling.
    "model: {input_shape: [2], layers: [{type: Dense, units: 1, activation: sigmoid}]}
data: {train: '{file}', target: species, normalize: minmax, missing: drop, validation_split: 0.5}
training: {loss: binary_crossentropy}",
    // Sliding windows over one column.
    "model: {input_shape: [3, 1], layers: [{type: Flatten}, {type: Dense, units: 1}]}
data: {train: '{file}', window: {column: x, size: 3}, test_split: 0.2, shuffle_split: false}
training: {loss: mse}",
    // Typed columns (the width from the data): categories, text, hashing, bins.
    "model: {layers: [{type: Dense, units: 3, activation: softmax}]}
data: {train: '{file}', target: species, features: [x, y], missing: mean, test_split: 0.25, stratify: true,
       columns: {x: {type: string_categorical, max_tokens: 5}, y: {type: text, output_mode: tf_idf, ngrams: 2}}}
training: {loss: categorical_crossentropy, class_weight: balanced}",
];

/// Loads `bytes` as the CSV training file of each spec in CSV_SPECS; fine
/// when one of them can use it.
pub fn csv(bytes: &[u8]) -> Result<(), String> {
    let dir = scratch();
    write(&dir, "data.csv", bytes)?;
    let mut errors = Vec::new();
    for spec in CSV_SPECS {
        if let Err(e) = load(&dir, &spec.replace("{file}", "data.csv")) {
            errors.push(e);
        }
    }
    if errors.len() < CSV_SPECS.len() { Ok(()) } else { Err(errors.join("\n")) }
}

/// Reads `bytes` as an IDX file (raw or gzip), then loads it as the images of
/// a 2x2 image model with valid labels, and as the labels for valid images;
/// fine when either works.
pub fn idx(bytes: &[u8]) -> Result<(), String> {
    let dir = scratch();
    let path = write(&dir, "fuzz.idx", bytes)?;
    let parsed = crate::data::idx::read(&path, "fuzz.idx").map(|_| ()).map_err(|e| e.to_string());
    // Three 2x2 images and their labels, as the other half of each pair.
    let images = [&[0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2][..], &[0, 255, 7, 9, 1, 2, 3, 4, 250, 200, 100, 0][..]].concat();
    let labels = [0u8, 0, 8, 1, 0, 0, 0, 3, 0, 1, 2];
    write(&dir, "images.idx", &images)?;
    write(&dir, "labels.idx", &labels)?;
    let spec = "model: {input_shape: [2, 2, 1], layers: [{type: Flatten}, {type: Dense, units: 3, activation: softmax}]}
data: {train: {images: '{images}', labels: '{labels}'}, scale: 1/255}
training: {loss: sparse_categorical_crossentropy}";
    let as_images = load(&dir, &spec.replace("{images}", "fuzz.idx").replace("{labels}", "labels.idx"));
    let as_labels = load(&dir, &spec.replace("{images}", "images.idx").replace("{labels}", "fuzz.idx"));
    parsed?;
    // A seed is one or the other, so one of the two loads must work.
    match (as_images, as_labels) {
        (Err(a), Err(b)) => Err(format!("{a}\n{b}")),
        _ => Ok(()),
    }
}

/// Validates `text` as a spec in `dir` and loads its data as `train` would.
fn load(dir: &Path, text: &str) -> Result<(), String> {
    let source = crate::spec::Source { path: dir.join("spec.yaml").display().to_string(), text: text.to_string() };
    let mut diags = Vec::new();
    let root = crate::spec::yaml::parse(text).map_err(|d| format!("fuzz harness: {}", d.message))?;
    // Widths from the data's columns, as validate and train find them.
    let built = crate::data::build(&root, &source, dir, None, &mut diags);
    let cfg = built.as_ref().and_then(|(spec, model)| crate::train::config::read(spec, model, &mut diags));
    let (Some((spec, model)), Some(cfg)) = (built, cfg) else {
        // The specs above are fixed and valid: failing here is a harness bug.
        return Err(format!("fuzz harness: spec does not validate: {diags:?}"));
    };
    // Data the columns can't be fitted to is reported as resolve_inputs says.
    if let Some(d) = diags.iter().find(|d| d.is_error()) {
        return Err(d.message.clone());
    }
    let data = spec.data.as_ref().ok_or("fuzz harness: no data section")?;
    crate::data::load(data, dir, &cfg.io(&model), cfg.seed, None).map(|_| ()).map_err(|e| e.to_string())
}

/// Reads `bytes` as a spec file and checks it as `nnrun validate` does: the
/// model (graph::from_source), then the training section when there is one
/// and the model is valid. Not the data-file checks, which look at paths the
/// spec names anywhere on the filesystem. The error is the rendered error
/// diagnostics, as validate prints them.
pub fn spec(bytes: &[u8]) -> Result<(), String> {
    let path = write(&scratch(), "spec.yaml", bytes)?;
    let shown = path.display().to_string();
    let source = crate::spec::Source::read(&path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let mut diags = Vec::new();
    if let Some((spec, model)) = crate::graph::from_source(&source, &mut diags)
        && spec.training.is_some()
        && !diags.iter().any(crate::diag::Diagnostic::is_error)
    {
        crate::train::config::read(&spec, &model, &mut diags);
    }
    let errors: Vec<String> =
        diags.iter().filter(|d| d.is_error()).map(|d| crate::diag::render(d, &source.path, &source.text, crate::diag::Style::default())).collect();
    if let Some(e) = errors.iter().find(|e| e.trim().is_empty() || !e.contains(&shown)) {
        return Err(format!("fuzz property: an error does not name {shown}:\n{e}"));
    }
    if errors.is_empty() { Ok(()) } else { Err(errors.concat()) }
}

/// Where `run`'s input splits into the model file and the CSV file.
pub const RUN_SEPARATOR: &[u8] = b"\xff\x00\xff";

/// Model-file bytes, then RUN_SEPARATOR, then a CSV file (header and a row
/// or a few): the model is run on the CSV by `predict` (into a scratch
/// `--output`), scored on it by `evaluate --data`, and shown by `inspect`,
/// through the subcommands' own `run` functions. Fine when all three are.
pub fn run(bytes: &[u8]) -> Result<(), String> {
    let at = bytes.windows(RUN_SEPARATOR.len()).position(|w| w == RUN_SEPARATOR);
    let (model, csv) = match at {
        Some(i) => (&bytes[..i], &bytes[i + RUN_SEPARATOR.len()..]),
        None => (bytes, &[][..]),
    };
    let dir = scratch();
    let model = write(&dir, "model.safetensors", model)?;
    let csv = write(&dir, "input.csv", csv)?;
    let (shown_model, shown_csv) = (model.display().to_string(), csv.display().to_string());
    let mut errors = Vec::new();
    for (command, outcome) in commands(&model, &csv, &dir.join("predictions.csv")) {
        let Err(m) = outcome else { continue };
        if m.trim().is_empty() || !(m.contains(&shown_model) || m.contains(&shown_csv)) {
            return Err(format!("fuzz property: {command}'s error names neither {shown_model} nor {shown_csv}:\n{m}"));
        }
        errors.push(format!("{command}: {m}"));
    }
    if errors.is_empty() { Ok(()) } else { Err(errors.join("\n")) }
}

/// What each subcommand did with the files: Ok, or Err with what `main`
/// shows the user on stderr.
type Outcome = Result<(), String>;

/// The three subcommands, called with their clap `Args` as `main` calls them:
/// the one place to adapt when their signatures change.
fn commands(model: &Path, csv: &Path, output: &Path) -> [(&'static str, Outcome); 3] {
    use crate::cli::{DeviceArg, evaluate, inspect, predict};
    let outcome = |r: Result<(), crate::cli::CliError>| r.map_err(|e| e.render(crate::diag::Style::default()));
    let predict = predict::Args { model: model.into(), input: csv.into(), output: Some(output.into()), batch_size: 256, beam_width: 1, device: DeviceArg::Cpu };
    let evaluate = evaluate::Args {
        model: model.into(),
        data: Some(csv.into()),
        labels: None,
        batch_size: None,
        beam_width: 1,
        format: evaluate::Format::Json,
        device: DeviceArg::Cpu,
    };
    let inspect = inspect::Args { model: model.into() };
    [("predict", outcome(predict::run(&predict))), ("evaluate", outcome(evaluate::run(&evaluate))), ("inspect", outcome(inspect::run(&inspect)))]
}
