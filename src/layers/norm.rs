//! STUB: to be written (see layers/core.rs for the pattern).
use super::{Layer, LayerType, Shape, ShapeError};

#[derive(Debug)]
pub struct Todo;
impl Layer for Todo {
    fn output_shape(&self, _inputs: &[Shape]) -> Result<Shape, ShapeError> {
        Err(ShapeError::new("not implemented yet"))
    }
}

pub static BATCH_NORMALIZATION: LayerType = LayerType { name: "BatchNormalization", family: "norm", summary: "", build: |_| Box::new(Todo) };
pub static LAYER_NORMALIZATION: LayerType = LayerType { name: "LayerNormalization", family: "norm", summary: "", build: |_| Box::new(Todo) };
