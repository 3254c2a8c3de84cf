//! checkpoint.safetensors: everything `nnrun train --resume` needs to go on
//! exactly where a run stopped, written at the end of every epoch.
//!
//! Tensors: every weight as `<layer>.<weight>` (non-trainable ones too, such
//! as BatchNormalization's moving statistics), the optimizer's state as
//! `optimizer.<variable>.<slot>`, and EarlyStopping's best weights as
//! `best.<layer>.<weight>`. Metadata (`nnrun.checkpoint.*`): the resolved
//! spec with `training.epochs` left out, the epoch completed, and JSON for
//! the optimizer scalars, callback state and history, with every float kept
//! as its exact bit pattern. The training randomness is reseeded from
//! (seed, epoch) at each epoch, so no generator state is needed.

use crate::artifact::{self, ArtifactError, Container};
use crate::model::Net;
use crate::train::callbacks::CallbackState;
use crate::train::fit::{Resume, Snapshot};
use crate::train::log::EpochLog;
use crate::train::optim::OptimizerScalars;
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub const FILE: &str = "checkpoint.safetensors";

#[derive(Clone, Debug, Serialize, Deserialize)]
struct State {
    optimizer: OptimizerScalars,
    callbacks: CallbackState,
    /// Per epoch: (epoch, [(name, f64 bits)]).
    history: Vec<(usize, Vec<(String, u64)>)>,
    limit: Option<usize>,
    has_best_weights: bool,
}

/// A checkpoint's metadata (see the module comment).
#[derive(Serialize, Deserialize)]
struct Metadata {
    #[serde(rename = "nnrun.format_version")]
    format_version: String,
    #[serde(rename = "nnrun.version")]
    version: String,
    /// The resolved spec without `training.epochs` (see `train::resume_key`).
    #[serde(rename = "nnrun.checkpoint.spec")]
    spec: String,
    /// Epochs completed.
    #[serde(rename = "nnrun.checkpoint.epoch", with = "text::epoch")]
    epoch: usize,
    #[serde(rename = "nnrun.checkpoint.state", with = "text::state")]
    state: State,
}

mod text {
    fn json<T: serde::Serialize>(v: &T) -> Result<String, String> {
        serde_json::to_string(v).map_err(|e| e.to_string())
    }
    crate::artifact::as_text!(epoch, "nnrun.checkpoint.epoch", usize, |v| Ok(v.to_string()), |s| s.parse().map_err(|e| format!("'{s}': {e}")));
    crate::artifact::as_text!(state, "nnrun.checkpoint.state", crate::checkpoint::State, json, |s| serde_json::from_str(s).map_err(|e| e.to_string()));
}

/// The checkpoint's bytes. `spec` is the resolved spec without
/// `training.epochs` (see `train::resume_key`).
pub fn to_bytes(snap: &Snapshot, spec: &str, limit: Option<usize>) -> candle_core::Result<Vec<u8>> {
    let mut tensors = snap.net.named_tensors();
    tensors.extend(snap.optimizer.state_tensors());
    if let Some(best) = snap.best_weights {
        let names: Vec<String> = snap.net.named_tensors().into_iter().map(|(n, _)| format!("best.{n}")).collect();
        tensors.extend(names.into_iter().zip(best.iter().cloned()));
    }
    let state = State {
        optimizer: snap.optimizer.scalars(),
        callbacks: snap.callbacks.clone(),
        history: snap.history.iter().map(|h| (h.epoch, h.values.iter().map(|(k, v)| (k.clone(), v.to_bits())).collect())).collect(),
        limit,
        has_best_weights: snap.best_weights.is_some(),
    };
    let meta = Metadata {
        format_version: artifact::FORMAT_VERSION.to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        spec: spec.to_string(),
        epoch: snap.epoch,
        state,
    };
    artifact::safetensors_bytes(&tensors, &meta)
}

/// Why a checkpoint can't be resumed from. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Missing, unreadable, or not a regular file.
    #[error("cannot read {file}: {source}")]
    Io { file: String, source: std::io::Error },
    /// Read, and not a checkpoint this nnrun wrote (truncated, edited, or
    /// another kind of file).
    #[error("{file} is not a valid checkpoint: {why}")]
    Malformed { file: String, why: String },
    #[error("{file} was written by a newer nnrun (checkpoint format {found}); this nnrun reads format {} and older: upgrade nnrun", artifact::FORMAT_VERSION)]
    TooNew { file: String, found: String },
}

impl CheckpointError {
    /// The file could not be opened or read at all (exit code 2), as opposed
    /// to one that was read and is not acceptable (exit code 1).
    pub fn is_io(&self) -> bool {
        matches!(self, CheckpointError::Io { .. })
    }
}

/// The container checks are shared with model files; only the wording differs.
impl From<ArtifactError> for CheckpointError {
    fn from(e: ArtifactError) -> Self {
        match e {
            ArtifactError::Io { file, source } => CheckpointError::Io { file, source },
            ArtifactError::Malformed { file, why } => CheckpointError::Malformed { file, why },
            ArtifactError::TooNew { file, found } => CheckpointError::TooNew { file, found },
            // Containers embed no spec to validate; kept total all the same.
            ArtifactError::Spec { file, errors } => CheckpointError::Malformed { file, why: format!("its spec: {errors}") },
        }
    }
}

/// For callers whose errors are text (the fuzz harness's `?`).
impl From<CheckpointError> for String {
    fn from(e: CheckpointError) -> String {
        e.to_string()
    }
}

/// A checkpoint read back.
pub struct Checkpoint {
    pub file: String,
    pub spec: String,
    pub epoch: usize,
    pub limit: Option<usize>,
    state: State,
    tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
}

impl Checkpoint {
    /// Reads a checkpoint: the file checked as a model file is (see
    /// `artifact::Container`), its metadata, and a history of one entry per
    /// completed epoch.
    pub fn read(path: &Path) -> Result<Checkpoint, CheckpointError> {
        let c = Container::read(path, crate::io::MAX_CHECKPOINT_BYTES, "checkpoint")?;
        let meta: Metadata = c.metadata()?;
        let bad = |why: String| CheckpointError::Malformed { file: c.file.clone(), why };
        let epochs: Vec<usize> = meta.state.history.iter().map(|(e, _)| *e).collect();
        if !epochs.iter().copied().eq(1..=meta.epoch) {
            return Err(bad(format!("it records {} completed epoch(s) but a history of {} (one row per epoch, 1 to {0})", meta.epoch, epochs.len())));
        }
        let cb = &meta.state.callbacks;
        let counters = [
            cb.plateau.as_ref().map(|p| p.wait),
            cb.early_stopping.as_ref().map(|e| e.wait),
            cb.early_stopping.as_ref().map(|e| e.best_epoch),
            cb.early_stopping.as_ref().map(|e| e.stopped_epoch),
        ];
        if counters.into_iter().flatten().any(|n| n > meta.epoch) {
            return Err(bad(format!("a callback's epoch count is past the {} epochs completed", meta.epoch)));
        }
        let o = &meta.state.optimizer;
        // More steps than a float counts exactly can't have been taken.
        let steps_ok = o.iterations < 1 << 53;
        let lr_ok = o.lr_scale.is_finite() && o.lr_scale > 0.0 && o.lr_floor.is_finite() && o.lr_floor >= 0.0;
        if !steps_ok || !lr_ok || o.constant_lr.is_some_and(|lr| !(lr.is_finite() && lr > 0.0)) {
            return Err(bad("the optimizer's step count or learning rate is not a sane value".into()));
        }
        Ok(Checkpoint { file: c.file, spec: meta.spec, epoch: meta.epoch, limit: meta.state.limit, state: meta.state, tensors: c.tensors })
    }

    fn tensor(&self, name: &str, device: &Device) -> Option<Tensor> {
        let (shape, values) = self.tensors.get(name)?;
        Tensor::from_vec(values.clone(), shape.as_slice(), device).ok()
    }

    /// Sets every weight of `net` to the checkpoint's, and returns the rest
    /// of the training state for `fit`. Every tensor must belong to `net`:
    /// a weight of its shape, the best copy of one, or an optimizer slot of
    /// a trainable one, of that weight's shape.
    pub fn restore(&self, net: &Net) -> Result<Resume, String> {
        let names: Vec<String> = net.named_tensors().into_iter().map(|(n, _)| n).collect();
        let trainable = net.trainable_vars();
        for (name, (shape, _)) in &self.tensors {
            let expected = if let Some(w) = name.strip_prefix("best.").filter(|_| self.state.has_best_weights) {
                names.iter().position(|n| n == w).map(|i| net.vars.iter().flatten().nth(i).map(|v| v.dims().to_vec()))
            } else if let Some(slot) = name.strip_prefix("optimizer.") {
                let var = slot.split_once('.').and_then(|(i, k)| Some((i.parse::<usize>().ok()?, k.parse::<usize>().ok()?))).map(|(i, _)| i);
                var.map(|i| trainable.get(i).map(|v| v.dims().to_vec()))
            } else {
                names.iter().position(|n| n == name).map(|i| net.vars.iter().flatten().nth(i).map(|v| v.dims().to_vec()))
            };
            match expected.flatten() {
                None => return Err(format!("{} holds tensor '{name}', which belongs to no weight of the spec's model", self.file)),
                Some(dims) if dims != *shape => {
                    return Err(format!("tensor '{name}' has shape {shape:?} in the checkpoint, the spec needs {dims:?}"));
                }
                Some(_) => {}
            }
        }
        let mut best = Vec::new();
        for (name, var) in names.iter().zip(net.vars.iter().flatten()) {
            let t = self.tensor(name, &net.device).ok_or_else(|| format!("the checkpoint lacks weight '{name}'"))?;
            var.set(&t.to_dtype(var.dtype()).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
            if self.state.has_best_weights {
                let b = self.tensor(&format!("best.{name}"), &net.device).ok_or_else(|| format!("the checkpoint lacks best weight '{name}'"))?;
                best.push(b.to_dtype(var.dtype()).map_err(|e| e.to_string())?);
            }
        }
        let optimizer: BTreeMap<String, Tensor> =
            self.tensors.keys().filter(|k| k.starts_with("optimizer.")).filter_map(|k| Some((k.clone(), self.tensor(k, &net.device)?))).collect();
        let history = self
            .state
            .history
            .iter()
            .map(|(epoch, values)| EpochLog { epoch: *epoch, values: values.iter().map(|(k, b)| (k.clone(), f64::from_bits(*b))).collect() })
            .collect();
        Ok(Resume {
            epoch: self.epoch,
            history,
            optimizer: Some((self.state.optimizer.clone(), optimizer)),
            callbacks: self.state.callbacks.clone(),
            best_weights: self.state.has_best_weights.then_some(best),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// The corpus seed's parts: metadata (as strings) and tensors.
    fn seed() -> (BTreeMap<String, String>, Vec<(String, Tensor)>) {
        let c = Container::read(Path::new("fuzz/corpus/checkpoint/iris_named-checkpoint.safetensors"), 1 << 30, "checkpoint").unwrap();
        let meta = c.metadata::<BTreeMap<String, String>>().unwrap();
        let tensors = c.tensors.into_iter().map(|(n, (shape, v))| (n, Tensor::from_vec(v, shape, &Device::Cpu).unwrap())).collect();
        (meta, tensors)
    }

    fn write(name: &str, meta: &BTreeMap<String, String>, tensors: &[(String, Tensor)]) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("nnrun-ck-{}-{name}", std::process::id()));
        std::fs::write(&p, artifact::safetensors_bytes(tensors, meta).unwrap()).unwrap();
        p
    }

    fn net() -> Net {
        let text = "model: {input_shape: [4], layers: [{type: Dense, units: 16, activation: relu}, {type: Dropout, rate: 0.1}, {type: Dense, units: 3, activation: softmax}]}";
        let (_, model) = crate::graph::from_source(&crate::spec::Source { path: "s.yaml".into(), text: text.into() }, &mut Vec::new()).unwrap();
        Net::new(model, &Device::Cpu, candle_core::DType::F32, &mut rand::rngs::StdRng::seed_from_u64(1)).unwrap()
    }

    #[test]
    fn what_a_checkpoint_claims_is_checked() {
        let (meta, tensors) = seed();
        let ck = Checkpoint::read(&write("good", &meta, &tensors)).unwrap();
        let r = ck.restore(&net()).unwrap();
        assert_eq!((r.epoch, r.history.len()), (ck.epoch, ck.epoch));

        let mut m = meta.clone();
        m.insert("nnrun.checkpoint.epoch".into(), (ck.epoch + 1).to_string());
        let e = Checkpoint::read(&write("epoch", &m, &tensors)).err().unwrap();
        assert!(!e.is_io());
        let e = e.to_string();
        assert!(e.contains(&format!("is not a valid checkpoint: it records {} completed epoch(s) but a history of {}", ck.epoch + 1, ck.epoch)), "{e}");
        m.insert("nnrun.checkpoint.epoch".into(), "18446744073709551616".into());
        let e = Checkpoint::read(&write("epoch", &m, &tensors)).err().unwrap().to_string();
        assert!(e.contains("nnrun.checkpoint.epoch is not valid: '18446744073709551616': number too large"), "{e}");

        let gone = Checkpoint::read(Path::new("/no/such/checkpoint.safetensors")).err().unwrap();
        assert!(gone.is_io(), "{gone}");
        let p = std::env::temp_dir().join(format!("nnrun-ck-{}-torn", std::process::id()));
        std::fs::write(&p, b"xxxxxxxxxxxx").unwrap();
        let torn = Checkpoint::read(&p).err().unwrap();
        assert!(matches!(torn, CheckpointError::Malformed { .. }) && !torn.is_io(), "{torn}");

        let mut extra = tensors.clone();
        extra.push(("optimizer.99.0".into(), Tensor::new(&[1f32], &Device::Cpu).unwrap()));
        let e = Checkpoint::read(&write("extra", &meta, &extra)).unwrap().restore(&net()).err().unwrap();
        assert!(e.ends_with("holds tensor 'optimizer.99.0', which belongs to no weight of the spec's model"), "{e}");
        let mut wrong = tensors.clone();
        let slot = wrong.iter_mut().find(|(n, _)| n == "optimizer.0.0").unwrap();
        slot.1 = Tensor::new(&[1f32], &Device::Cpu).unwrap();
        let e = Checkpoint::read(&write("slot", &meta, &wrong)).unwrap().restore(&net()).err().unwrap();
        assert_eq!(e, "tensor 'optimizer.0.0' has shape [1] in the checkpoint, the spec needs [4, 16]");
    }
}
