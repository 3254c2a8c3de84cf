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

use crate::artifact::{self, ModelFile};
use crate::model::Net;
use crate::train::callbacks::CallbackState;
use crate::train::fit::{EpochLog, Resume, Snapshot};
use crate::train::optim::OptimizerScalars;
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub const FILE: &str = "checkpoint.safetensors";

/// The metadata key of the resolved spec a checkpoint belongs to.
const SPEC: &str = "nnrun.checkpoint.spec";
const EPOCH: &str = "nnrun.checkpoint.epoch";
const STATE: &str = "nnrun.checkpoint.state";

#[derive(Serialize, Deserialize)]
struct State {
    optimizer: OptimizerScalars,
    callbacks: CallbackState,
    /// Per epoch: (epoch, [(name, f64 bits)]).
    history: Vec<(usize, Vec<(String, u64)>)>,
    limit: Option<usize>,
    has_best_weights: bool,
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
    let meta = BTreeMap::from([
        ("nnrun.format_version".to_string(), artifact::FORMAT_VERSION.to_string()),
        ("nnrun.version".to_string(), env!("CARGO_PKG_VERSION").to_string()),
        (SPEC.to_string(), spec.to_string()),
        (EPOCH.to_string(), snap.epoch.to_string()),
        (STATE.to_string(), serde_json::to_string(&state).map_err(|e| candle_core::Error::Msg(e.to_string()))?),
    ]);
    artifact::safetensors_bytes(&tensors, meta)
}

/// A checkpoint read back.
pub struct Checkpoint {
    pub file: ModelFile,
    pub spec: String,
    pub epoch: usize,
    pub limit: Option<usize>,
    state: State,
}

impl Checkpoint {
    pub fn read(path: &Path) -> Result<Checkpoint, String> {
        let file = ModelFile::read(path).map_err(|e| e.to_string())?;
        let bad = |why: String| format!("{} is not a valid checkpoint: {why}", path.display());
        let spec = file.meta(SPEC).map_err(|_| bad(format!("no {SPEC} in its metadata")))?.to_string();
        let epoch = file.meta(EPOCH).ok().and_then(|e| e.parse().ok()).ok_or_else(|| bad(format!("no valid {EPOCH}")))?;
        let state: State = serde_json::from_str(file.meta(STATE).map_err(|e| e.to_string())?).map_err(|e| bad(e.to_string()))?;
        Ok(Checkpoint { file, spec, epoch, limit: state.limit, state })
    }

    fn tensor(&self, name: &str, device: &Device) -> Option<Tensor> {
        let (shape, values) = self.file.tensors.get(name)?;
        Tensor::from_vec(values.clone(), shape.as_slice(), device).ok()
    }

    /// Sets every weight of `net` to the checkpoint's, and returns the rest
    /// of the training state for `fit`.
    pub fn restore(&self, net: &Net) -> Result<Resume, String> {
        let names: Vec<String> = net.named_tensors().into_iter().map(|(n, _)| n).collect();
        let mut best = Vec::new();
        for (name, var) in names.iter().zip(net.vars.iter().flatten()) {
            let t = self.tensor(name, &net.device).ok_or_else(|| format!("the checkpoint lacks weight '{name}'"))?;
            if t.dims() != var.dims() {
                return Err(format!("weight '{name}' has shape {:?} in the checkpoint, the spec needs {:?}", t.dims(), var.dims()));
            }
            var.set(&t.to_dtype(var.dtype()).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
            if self.state.has_best_weights {
                let b = self.tensor(&format!("best.{name}"), &net.device).ok_or_else(|| format!("the checkpoint lacks best weight '{name}'"))?;
                best.push(b.to_dtype(var.dtype()).map_err(|e| e.to_string())?);
            }
        }
        let optimizer: BTreeMap<String, Tensor> =
            self.file.tensors.keys().filter(|k| k.starts_with("optimizer.")).filter_map(|k| Some((k.clone(), self.tensor(k, &net.device)?))).collect();
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
