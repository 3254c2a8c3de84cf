//! Keras callbacks that act during fit.

use super::config::ReduceLrOnPlateau;
use super::fit::EpochLog;
use super::optim::Optimizer;

/// Keras `ReduceLROnPlateau` (mode min): after `patience` epochs without an
/// improvement of at least `min_delta`, multiply the learning rate by `factor`.
pub struct Plateau {
    cfg: ReduceLrOnPlateau,
    best: f64,
    wait: usize,
    cooldown: usize,
}

impl Plateau {
    pub fn new(cfg: ReduceLrOnPlateau) -> Self {
        Plateau { cfg, best: f64::INFINITY, wait: 0, cooldown: 0 }
    }

    /// Returns a message when the learning rate was reduced.
    pub fn on_epoch_end(&mut self, log: &EpochLog, opt: &mut Optimizer) -> Option<String> {
        let current = log.get(&self.cfg.monitor)?;
        if self.cooldown > 0 {
            self.cooldown -= 1;
            self.wait = 0;
        }
        if current < self.best - self.cfg.min_delta {
            self.best = current;
            self.wait = 0;
            return None;
        }
        if self.cooldown > 0 {
            return None;
        }
        self.wait += 1;
        if self.wait < self.cfg.patience.max(1) {
            return None;
        }
        let old = opt.learning_rate();
        if old <= self.cfg.min_lr {
            return None;
        }
        opt.scale_learning_rate(self.cfg.factor, self.cfg.min_lr);
        self.cooldown = self.cfg.cooldown;
        self.wait = 0;
        Some(format!(
            "epoch {}: ReduceLROnPlateau reducing learning rate from {old:.3e} to {:.3e}",
            log.epoch,
            opt.learning_rate()
        ))
    }
}
