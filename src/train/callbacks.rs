//! Keras callbacks that act during fit: ReduceLROnPlateau, EarlyStopping and
//! ModelCheckpoint, each a `Callback` (events.rs). Their state is plain data
//! so a checkpoint can carry it.

use super::config::{CallbackConfig, EarlyStopping, Mode, ModelCheckpoint, ReduceLrOnPlateau};
use super::events::{Callback, Control, EpochEnd, TrainError};
use super::log::EpochLog;
use super::optim::Optimizer;
use super::progress::Progress;
use crate::model::Net;
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

/// The spec's callbacks, in its order.
pub fn from_config(list: &[CallbackConfig]) -> Vec<Box<dyn Callback>> {
    list.iter()
        .map(|c| -> Box<dyn Callback> {
            match c {
                CallbackConfig::ReduceLrOnPlateau(c) => Box::new(Plateau::new(c.clone())),
                CallbackConfig::EarlyStopping(c) => Box::new(EarlyStop::new(c.clone())),
                CallbackConfig::ModelCheckpoint(c) => Box::new(SaveModel::new(c.clone())),
            }
        })
        .collect()
}

/// serde for f64 as its exact bit pattern (JSON has no inf, and decimal text
/// could round): `#[serde(with = "bits")]`.
pub mod bits {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(x.to_bits())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        u64::deserialize(d).map(f64::from_bits)
    }
}

/// `bits` for `Option<f64>`.
pub mod opt_bits {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    pub fn serialize<S: Serializer>(x: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        x.map(f64::to_bits).serialize(s)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        Option::<u64>::deserialize(d).map(|o| o.map(f64::from_bits))
    }
}

fn initial_best(mode: Mode) -> f64 {
    match mode {
        Mode::Min => f64::INFINITY,
        Mode::Max => f64::NEG_INFINITY,
    }
}

/// Keras `_is_improvement`: better than `best` by more than `min_delta`.
fn improves(mode: Mode, current: f64, best: f64, min_delta: f64) -> bool {
    match mode {
        Mode::Min => current + min_delta.abs() < best,
        Mode::Max => current - min_delta.abs() > best,
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlateauState {
    #[serde(with = "bits")]
    pub best: f64,
    pub wait: usize,
    pub cooldown: usize,
}

/// Keras `ReduceLROnPlateau` (mode min): after `patience` epochs without an
/// improvement of at least `min_delta`, multiply the learning rate by `factor`.
pub struct Plateau {
    cfg: ReduceLrOnPlateau,
    pub state: PlateauState,
}

impl Plateau {
    pub fn new(cfg: ReduceLrOnPlateau) -> Self {
        Plateau { cfg, state: PlateauState { best: f64::INFINITY, wait: 0, cooldown: 0 } }
    }

    /// Returns a message when the learning rate was reduced.
    pub fn on_epoch_end(&mut self, log: &EpochLog, opt: &mut Optimizer) -> Option<String> {
        let current = log.get(&self.cfg.monitor)?;
        let s = &mut self.state;
        if s.cooldown > 0 {
            s.cooldown -= 1;
            s.wait = 0;
        }
        if current < s.best - self.cfg.min_delta {
            s.best = current;
            s.wait = 0;
            return None;
        }
        if s.cooldown > 0 {
            return None;
        }
        s.wait += 1;
        if s.wait < self.cfg.patience.max(1) {
            return None;
        }
        let old = opt.learning_rate();
        if old <= self.cfg.min_lr {
            return None;
        }
        opt.scale_learning_rate(self.cfg.factor, self.cfg.min_lr);
        s.cooldown = self.cfg.cooldown;
        s.wait = 0;
        Some(format!("epoch {}: ReduceLROnPlateau reducing learning rate from {old:.3e} to {:.3e}", log.epoch, opt.learning_rate()))
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EarlyStopState {
    #[serde(with = "bits")]
    pub best: f64,
    pub wait: usize,
    /// The epoch (1-based) with the best value; 0 before any.
    pub best_epoch: usize,
    /// The epoch at which training stopped; 0 while it goes on.
    pub stopped_epoch: usize,
}

/// Keras `EarlyStopping`. With `restore_best_weights`, the caller keeps a copy
/// of the weights whenever `on_epoch_end` reports an improvement.
pub struct EarlyStop {
    pub cfg: EarlyStopping,
    pub state: EarlyStopState,
    /// With `restore_best_weights`: a copy of every weight (`Net::vars`
    /// order) at the end of the best epoch so far.
    best: Option<Vec<Tensor>>,
}

/// What EarlyStopping decided at the end of an epoch.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Improved,
    Continue,
    Stop,
}

impl EarlyStop {
    pub fn new(cfg: EarlyStopping) -> Self {
        let best = initial_best(cfg.mode);
        EarlyStop { cfg, state: EarlyStopState { best, wait: 0, best_epoch: 0, stopped_epoch: 0 }, best: None }
    }

    /// `None` when the log lacks the monitored value.
    pub fn on_epoch_end(&mut self, log: &EpochLog) -> Option<Decision> {
        let current = log.get(&self.cfg.monitor)?;
        // Keras counts epochs from 0: `epoch < start_from_epoch` is warm-up.
        if log.epoch <= self.cfg.start_from_epoch {
            return Some(Decision::Continue);
        }
        let s = &mut self.state;
        s.wait += 1;
        if improves(self.cfg.mode, current, s.best, self.cfg.min_delta) {
            s.best = current;
            s.best_epoch = log.epoch;
            // Patience restarts only when the baseline is beaten too.
            if self.cfg.baseline.is_none_or(|b| improves(self.cfg.mode, current, b, self.cfg.min_delta)) {
                s.wait = 0;
            }
            return Some(Decision::Improved);
        }
        // Keras never stops after the first epoch.
        if s.wait >= self.cfg.patience && log.epoch > 1 {
            s.stopped_epoch = log.epoch;
            return Some(Decision::Stop);
        }
        Some(Decision::Continue)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SaveState {
    #[serde(with = "bits")]
    pub best: f64,
}

/// Keras `ModelCheckpoint`: decides when the model file is written.
pub struct SaveModel {
    pub cfg: ModelCheckpoint,
    pub state: SaveState,
}

impl SaveModel {
    pub fn new(cfg: ModelCheckpoint) -> Self {
        let best = initial_best(cfg.mode);
        SaveModel { cfg, state: SaveState { best } }
    }

    /// Whether to save after this epoch. With `save_best_only`, a log that
    /// lacks the monitored value saves nothing (fit warns once).
    pub fn on_epoch_end(&mut self, log: &EpochLog) -> bool {
        if !log.epoch.is_multiple_of(self.cfg.every) {
            return false;
        }
        if !self.cfg.save_best_only {
            return true;
        }
        match log.get(&self.cfg.monitor) {
            Some(current) if improves(self.cfg.mode, current, self.state.best, 0.0) => {
                self.state.best = current;
                true
            }
            _ => false,
        }
    }
}

impl Callback for Plateau {
    fn monitor(&self) -> Option<(&'static str, &str)> {
        Some(("ReduceLROnPlateau", &self.cfg.monitor))
    }
    fn on_epoch_end(&mut self, end: &mut EpochEnd) -> Result<Control, TrainError> {
        let log = end.history.last().expect("fit pushes the log first");
        if let Some(msg) = Plateau::on_epoch_end(self, log, end.optimizer) {
            end.progress.message(&msg);
        }
        Ok(Control::Continue)
    }
    fn save<'a>(&'a self, state: &mut CallbackState, _: &mut Option<&'a [Tensor]>) {
        state.plateau = Some(self.state.clone());
    }
    fn restore(&mut self, state: &CallbackState, _: &mut Option<Vec<Tensor>>) {
        if let Some(s) = &state.plateau {
            self.state = s.clone();
        }
    }
}

/// Detached copies of every weight, in `Net::vars` order.
pub fn copy_weights(net: &Net) -> candle_core::Result<Vec<Tensor>> {
    net.vars.iter().flatten().map(|v| v.as_tensor().detach().copy()).collect()
}

impl Callback for EarlyStop {
    fn monitor(&self) -> Option<(&'static str, &str)> {
        Some(("EarlyStopping", &self.cfg.monitor))
    }
    fn on_epoch_end(&mut self, end: &mut EpochEnd) -> Result<Control, TrainError> {
        match EarlyStop::on_epoch_end(self, end.log()) {
            Some(Decision::Improved) if self.cfg.restore_best_weights => self.best = Some(copy_weights(end.net)?),
            Some(Decision::Stop) => return Ok(Control::Stop),
            _ => {}
        }
        Ok(Control::Continue)
    }
    fn on_train_end(&mut self, net: &Net, progress: &mut dyn Progress) -> Result<(), TrainError> {
        if self.state.stopped_epoch > 0 {
            progress.message(&format!("Epoch {}: early stopping", self.state.stopped_epoch));
        }
        if let Some(best) = &self.best {
            progress.message(&format!("Restoring model weights from the end of the best epoch: {}.", self.state.best_epoch));
            for (v, t) in net.vars.iter().flatten().zip(best) {
                v.set(t)?;
            }
        }
        Ok(())
    }
    fn stopped(&self) -> bool {
        self.state.stopped_epoch > 0
    }
    fn save<'a>(&'a self, state: &mut CallbackState, weights: &mut Option<&'a [Tensor]>) {
        state.early_stopping = Some(self.state.clone());
        if let Some(b) = &self.best {
            *weights = Some(b);
        }
    }
    fn restore(&mut self, state: &CallbackState, weights: &mut Option<Vec<Tensor>>) {
        if let Some(s) = &state.early_stopping {
            self.state = s.clone();
        }
        if self.cfg.restore_best_weights {
            self.best = weights.take();
        }
    }
}

impl Callback for SaveModel {
    /// Without `save_best_only` it saves every `every` epochs, watching nothing.
    fn monitor(&self) -> Option<(&'static str, &str)> {
        self.cfg.save_best_only.then_some(("ModelCheckpoint", self.cfg.monitor.as_str()))
    }
    fn on_epoch_end(&mut self, end: &mut EpochEnd) -> Result<Control, TrainError> {
        if SaveModel::on_epoch_end(self, end.log()) {
            end.hooks.save_model(end.net, end.history, &self.cfg.filepath).map_err(TrainError::Io)?;
        }
        Ok(Control::Continue)
    }
    fn save<'a>(&'a self, state: &mut CallbackState, _: &mut Option<&'a [Tensor]>) {
        state.model_checkpoint = Some(self.state.clone());
    }
    fn restore(&mut self, state: &CallbackState, _: &mut Option<Vec<Tensor>>) {
        if let Some(s) = &state.model_checkpoint {
            self.state = s.clone();
        }
    }
}

/// Every callback's state, as a checkpoint stores it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CallbackState {
    pub plateau: Option<PlateauState>,
    pub early_stopping: Option<EarlyStopState>,
    pub model_checkpoint: Option<SaveState>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(epoch: usize, v: f64) -> EpochLog {
        EpochLog { epoch, values: vec![("val_loss".into(), v), ("val_accuracy".into(), v)] }
    }

    #[test]
    fn early_stopping_follows_keras() {
        let cfg = EarlyStopping {
            monitor: "val_loss".into(),
            min_delta: 0.0,
            patience: 2,
            mode: Mode::Min,
            restore_best_weights: false,
            baseline: None,
            start_from_epoch: 0,
        };
        let mut es = EarlyStop::new(cfg);
        assert_eq!(es.on_epoch_end(&log(1, 1.0)), Some(Decision::Improved));
        assert_eq!(es.on_epoch_end(&log(2, 0.5)), Some(Decision::Improved));
        assert_eq!(es.on_epoch_end(&log(3, 0.6)), Some(Decision::Continue));
        assert_eq!(es.on_epoch_end(&log(4, 0.5)), Some(Decision::Stop));
        assert_eq!(es.state.best_epoch, 2);
        assert_eq!(es.state.stopped_epoch, 4);
        assert_eq!(es.on_epoch_end(&EpochLog { epoch: 5, values: vec![] }), None);
    }

    #[test]
    fn early_stopping_baseline_and_warm_up_follow_keras() {
        // Improvements above the baseline don't restart patience: stops at epoch 3.
        let base = EarlyStopping {
            monitor: "val_loss".into(),
            min_delta: 0.0,
            patience: 2,
            mode: Mode::Min,
            restore_best_weights: false,
            baseline: Some(0.1),
            start_from_epoch: 0,
        };
        let mut es = EarlyStop::new(base.clone());
        assert_eq!(es.on_epoch_end(&log(1, 1.0)), Some(Decision::Improved));
        assert_eq!(es.on_epoch_end(&log(2, 0.5)), Some(Decision::Improved));
        assert_eq!(es.on_epoch_end(&log(3, 0.4)), Some(Decision::Improved));
        assert_eq!(es.state.wait, 3);
        assert_eq!(es.on_epoch_end(&log(4, 0.45)), Some(Decision::Stop));
        // Beating the baseline restarts it.
        let mut es = EarlyStop::new(base.clone());
        es.on_epoch_end(&log(1, 0.3));
        assert_eq!(es.on_epoch_end(&log(2, 0.05)), Some(Decision::Improved));
        assert_eq!(es.state.wait, 0);
        // start_from_epoch 2: epochs 1 and 2 are not watched (Keras epochs 0 and 1).
        let warm = EarlyStopping { baseline: None, start_from_epoch: 2, patience: 0, ..base };
        let mut es = EarlyStop::new(warm);
        assert_eq!(es.on_epoch_end(&log(1, 0.1)), Some(Decision::Continue));
        assert_eq!(es.on_epoch_end(&log(2, 0.9)), Some(Decision::Continue));
        assert_eq!(es.state.best_epoch, 0);
        assert_eq!(es.on_epoch_end(&log(3, 0.8)), Some(Decision::Improved));
        assert_eq!(es.on_epoch_end(&log(4, 0.85)), Some(Decision::Stop));
    }

    #[test]
    fn mode_auto_and_model_checkpoint() {
        assert_eq!(Mode::resolve("auto", "val_accuracy"), Mode::Max);
        assert_eq!(Mode::resolve("auto", "val_loss"), Mode::Min);
        let cfg = ModelCheckpoint { monitor: "val_accuracy".into(), save_best_only: true, every: 1, mode: Mode::Max, filepath: "b".into() };
        let mut mc = SaveModel::new(cfg);
        assert!(mc.on_epoch_end(&log(1, 0.5)));
        assert!(!mc.on_epoch_end(&log(2, 0.4)));
        assert!(mc.on_epoch_end(&log(3, 0.6)));
        let state = serde_json::to_string(&CallbackState { model_checkpoint: Some(mc.state.clone()), ..Default::default() }).unwrap();
        let back: CallbackState = serde_json::from_str(&state).unwrap();
        assert_eq!(back.model_checkpoint, Some(mc.state));
        let inf = serde_json::to_string(&PlateauState { best: f64::INFINITY, wait: 0, cooldown: 0 }).unwrap();
        assert_eq!(serde_json::from_str::<PlateauState>(&inf).unwrap().best, f64::INFINITY);
    }
}
