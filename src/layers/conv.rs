//! STUB: to be written (see layers/core.rs for the pattern).
use super::{Layer, LayerType, Shape, ShapeError};

#[derive(Debug)]
pub struct Todo;
impl Layer for Todo {
    fn output_shape(&self, _inputs: &[Shape]) -> Result<Shape, ShapeError> {
        Err(ShapeError::new("not implemented yet"))
    }
}

pub static CONV1D: LayerType = LayerType { name: "Conv1D", family: "conv", summary: "", build: |_| Box::new(Todo) };
pub static CONV2D: LayerType = LayerType { name: "Conv2D", family: "conv", summary: "", build: |_| Box::new(Todo) };
pub static ZERO_PADDING2D: LayerType = LayerType { name: "ZeroPadding2D", family: "conv", summary: "", build: |_| Box::new(Todo) };
pub static UP_SAMPLING2D: LayerType = LayerType { name: "UpSampling2D", family: "conv", summary: "", build: |_| Box::new(Todo) };
