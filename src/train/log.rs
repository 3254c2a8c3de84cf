//! One epoch's logged values: what fit makes, callbacks read, progress
//! shows, and the history and checkpoint keep. Its own module so that none
//! of those depends on another for it.

/// One epoch's logged values, Keras-named: `loss`, `accuracy`, `val_loss`, ...
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EpochLog {
    pub epoch: usize,
    pub values: Vec<(String, f64)>,
}

impl EpochLog {
    pub fn get(&self, key: &str) -> Option<f64> {
        self.values.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }
}
