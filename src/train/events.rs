//! What the fit loop hands out, and to whom: the `Callback` trait and what
//! each of its calls sees, the `Hooks` that reach the outside world (files),
//! and the loop's error. The loop calls every callback at every point and
//! names none of them (burn-train's strategy traits are the model): Keras's
//! callbacks (`callbacks.rs`) and the data-parallel gradient averaging
//! (`distributed.rs`) are all callbacks.

use super::callbacks::CallbackState;
use super::log::EpochLog;
use super::optim::Optimizer;
use super::progress::Progress;
use crate::model::Net;
use candle_core::{Tensor, Var};

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("training diverged: the loss became {value} at epoch {epoch}, step {step}")]
    Diverged { epoch: usize, step: usize, value: f64 },
    #[error("{0}")]
    Candle(#[from] candle_core::Error),
    /// From the hooks, whose errors name the file.
    #[error("{0}")]
    Io(std::io::Error),
    #[error("resuming: {0}")]
    Resume(String),
    /// From the processes of a data-parallel run.
    #[error("{0}")]
    Distributed(String),
}

/// The training state at the end of a completed epoch.
pub struct Snapshot<'a> {
    pub net: &'a Net,
    pub epoch: usize,
    pub history: &'a [EpochLog],
    pub optimizer: &'a Optimizer,
    pub callbacks: CallbackState,
    pub best_weights: Option<&'a [Tensor]>,
}

/// What fit hands to the outside world: files.
pub trait Hooks {
    /// After every completed epoch: the resumable checkpoint.
    fn checkpoint(&mut self, snap: &Snapshot) -> std::io::Result<()>;
    /// ModelCheckpoint decided to save the model as it is now.
    fn save_model(&mut self, net: &Net, history: &[EpochLog], file: &str) -> std::io::Result<()>;
}

/// Hooks that write nothing (tests, and the processes of a data-parallel
/// run other than the first).
pub struct NoHooks;

impl Hooks for NoHooks {
    fn checkpoint(&mut self, _: &Snapshot) -> std::io::Result<()> {
        Ok(())
    }
    fn save_model(&mut self, _: &Net, _: &[EpochLog], _: &str) -> std::io::Result<()> {
        Ok(())
    }
}

/// One training step's gradients, after the backward pass and before the
/// optimizer applies them.
pub struct Step<'a> {
    /// (index into `vars`, gradient) of each variable this process has a
    /// gradient for: of the mean loss over its own rows of the batch.
    pub grads: &'a mut Vec<(usize, Tensor)>,
    /// The optimizer's variables.
    pub vars: &'a [Var],
    /// Rows of the batch this process computed (0 when the batch is smaller
    /// than the number of processes), and rows of the whole batch.
    pub rows: usize,
    pub batch: usize,
    /// The loss summed over this process's rows (its mean times `rows`);
    /// made the whole batch's by a callback that adds up processes.
    pub loss_sum: f64,
    /// Stop after this step (Ctrl-C here); a callback may make it every
    /// process's, so that all stop at the same step.
    pub stop: bool,
}

/// What a callback sees at the end of an epoch: the history ends with this
/// epoch's log.
pub struct EpochEnd<'a> {
    pub net: &'a Net,
    pub history: &'a [EpochLog],
    pub optimizer: &'a mut Optimizer,
    pub progress: &'a mut dyn Progress,
    pub hooks: &'a mut dyn Hooks,
}

impl EpochEnd<'_> {
    pub fn log(&self) -> &EpochLog {
        self.history.last().expect("fit pushes the epoch's log first")
    }
}

/// What a callback asks of the loop after an epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    Continue,
    Stop,
}

/// A plug-in step of the fit loop. Every method has a default that does
/// nothing; the loop calls them in this order: `on_train_begin`, `on_step` after
/// every step's backward pass, then at the end of an epoch `on_epoch_sums`,
/// `on_epoch_log` and `on_epoch_end`, and `on_train_end` once. `save` and
/// `restore` carry a callback's state through the checkpoint.
pub trait Callback {
    /// The callback's Keras name and the logged value it watches: fit warns
    /// once when that value is not logged.
    fn monitor(&self) -> Option<(&'static str, &str)> {
        None
    }
    /// Before the first step (the data-parallel run's weights from rank 0).
    fn on_train_begin(&mut self, _net: &Net) -> Result<(), TrainError> {
        Ok(())
    }
    /// May change the step's gradients (the data-parallel average) before
    /// the optimizer applies them.
    fn on_step(&mut self, _step: &mut Step) -> Result<(), TrainError> {
        Ok(())
    }
    /// The epoch's training statistics as sums (loss and metric totals, see
    /// `fit`): may add up other processes' before the log is made of them.
    fn on_epoch_sums(&mut self, _sums: &mut [f64]) -> Result<(), TrainError> {
        Ok(())
    }
    /// The epoch's log, before any callback acts on it.
    fn on_epoch_log(&mut self, _log: &mut EpochLog) -> Result<(), TrainError> {
        Ok(())
    }
    fn on_epoch_end(&mut self, _end: &mut EpochEnd) -> Result<Control, TrainError> {
        Ok(Control::Continue)
    }
    fn on_train_end(&mut self, _net: &Net, _progress: &mut dyn Progress) -> Result<(), TrainError> {
        Ok(())
    }
    /// A restored callback that had already ended the training (EarlyStopping):
    /// a resumed run trains no further epoch.
    fn stopped(&self) -> bool {
        false
    }
    /// Writes the callback's state, and any weights it keeps, for the checkpoint.
    fn save<'a>(&'a self, _state: &mut CallbackState, _weights: &mut Option<&'a [Tensor]>) {}
    /// Reads them back from a checkpoint (taking the weights it kept).
    fn restore(&mut self, _state: &CallbackState, _weights: &mut Option<Vec<Tensor>>) {}
}
