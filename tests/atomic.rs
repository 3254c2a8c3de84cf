//! Killing nnrun while it writes a model file must leave the previous good
//! file untouched (temp file, fsync, rename).

mod common;
use common::{nnrun, temp, trained};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A model whose file (~36 MB) takes long enough to write to catch mid-save.
fn big_spec(dir: &Path) -> std::path::PathBuf {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/tabular/breast_cancer.csv");
    let spec = format!(
        "name: big
model:
  input_shape: [30]
  layers:
    - {{type: Dense, units: 3000, activation: relu}}
    - {{type: Dense, units: 3000, activation: relu}}
    - {{type: Dense, units: 1, activation: sigmoid}}
data: {{train: '{}', target: target, test_split: 0.2}}
training: {{loss: binary_crossentropy, optimizer: sgd, epochs: 1, batch_size: 32}}
",
        data.display()
    );
    let p = dir.join("big.yaml");
    std::fs::write(&p, spec).unwrap();
    p
}

/// The temp file write_atomic creates next to `model.safetensors`, if any.
fn model_temp(dir: &Path) -> Option<std::path::PathBuf> {
    std::fs::read_dir(dir).ok()?.flatten().map(|e| e.path()).find(|p| p.file_name().unwrap().to_string_lossy().starts_with(".model.safetensors.tmp"))
}

#[test]
fn kill_during_model_save_keeps_the_old_model() {
    let model = trained("specs/breast_cancer.yaml", "atomic-run", &["--epochs", "1"]);
    let run = model.parent().unwrap().to_path_buf();
    let good = std::fs::read(&model).unwrap();
    let spec = big_spec(&temp("atomic-spec"));

    let mut caught = None;
    for attempt in 0..3 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_nnrun"))
            .args(["train", spec.to_str().unwrap(), "--out", run.to_str().unwrap(), "--max-steps", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        // Poll until bytes of the new model are on their way to disk, then SIGKILL.
        let seen = loop {
            let written = model_temp(&run).and_then(|t| std::fs::metadata(t).ok()).map_or(0, |m| m.len());
            if written > 0 {
                child.kill().unwrap();
                break Some(written);
            }
            if child.try_wait().unwrap().is_some() || start.elapsed() > Duration::from_secs(300) {
                let _ = child.kill();
                break None;
            }
            std::thread::sleep(Duration::from_micros(200));
        };
        child.wait().unwrap();
        if seen.is_some() {
            caught = seen;
            break;
        }
        // The process finished before we saw the save: put the old model back and retry.
        assert!(attempt < 2, "never caught nnrun in the middle of writing model.safetensors");
        std::fs::write(&model, &good).unwrap();
    }
    eprintln!("killed with {} bytes of the new model written", caught.unwrap());

    // The previous model is byte for byte what it was, and still loads.
    assert_eq!(std::fs::read(&model).unwrap(), good, "model.safetensors changed although the save was killed");
    let (code, stdout, stderr) = nnrun(&["inspect", model.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("breast_cancer"), "{stdout}");

    // The next save into the run cleans up the killed writer's temp file.
    assert!(model_temp(&run).is_some());
    let (code, _, stderr) = common::train(&["specs/breast_cancer.yaml", "--out", run.to_str().unwrap(), "--epochs", "1"]);
    assert_eq!(code, 0, "{stderr}");
    let left: Vec<_> = std::fs::read_dir(&run).unwrap().flatten().map(|e| e.file_name()).filter(|n| n.to_string_lossy().contains(".tmp")).collect();
    assert!(left.is_empty(), "temp files left in the run directory: {left:?}");
}
