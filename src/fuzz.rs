//! Entry points for fuzzing nnrun's loaders of untrusted files: the model
//! file (and checkpoints), IDX and CSV. Each takes raw bytes, runs them
//! through the same path-based code `predict`, `evaluate`, `train --resume`
//! and `train` use, and returns the user-facing error, if any. A panic,
//! hang or huge allocation is the bug a fuzzer looks for.
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
const CSV_SPECS: [&str; 3] = [
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
    let built = crate::graph::from_source(&source, &mut diags);
    let cfg = built.as_ref().and_then(|(spec, model)| crate::train::config::read(spec, model, &mut diags));
    let (Some((spec, model)), Some(cfg)) = (built, cfg) else {
        // The specs above are fixed and valid: failing here is a harness bug.
        return Err(format!("fuzz harness: spec does not validate: {diags:?}"));
    };
    let data = spec.data.as_ref().ok_or("fuzz harness: no data section")?;
    crate::data::load(data, dir, &cfg.io(&model), 1, None).map(|_| ()).map_err(|e| e.to_string())
}
