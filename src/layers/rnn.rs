//! STUB: to be written (see layers/core.rs for the pattern).
use super::{Layer, LayerType, Shape, ShapeError};

#[derive(Debug)]
pub struct Todo;
impl Layer for Todo {
    fn output_shape(&self, _inputs: &[Shape]) -> Result<Shape, ShapeError> {
        Err(ShapeError::new("not implemented yet"))
    }
}

pub static SIMPLE_RNN: LayerType = LayerType { name: "SimpleRNN", family: "rnn", summary: "", build: |_| Box::new(Todo) };
pub static LSTM: LayerType = LayerType { name: "LSTM", family: "rnn", summary: "", build: |_| Box::new(Todo) };
pub static GRU: LayerType = LayerType { name: "GRU", family: "rnn", summary: "", build: |_| Box::new(Todo) };
pub static BIDIRECTIONAL: LayerType = LayerType { name: "Bidirectional", family: "rnn", summary: "", build: |_| Box::new(Todo) };
