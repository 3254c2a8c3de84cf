//! STUB: to be written (see layers/core.rs for the pattern).
use super::{Layer, LayerType, Shape, ShapeError};

#[derive(Debug)]
pub struct Todo;
impl Layer for Todo {
    fn output_shape(&self, _inputs: &[Shape]) -> Result<Shape, ShapeError> {
        Err(ShapeError::new("not implemented yet"))
    }
}

pub static MAX_POOLING1D: LayerType = LayerType { name: "MaxPooling1D", family: "pooling", summary: "", build: |_| Box::new(Todo) };
pub static MAX_POOLING2D: LayerType = LayerType { name: "MaxPooling2D", family: "pooling", summary: "", build: |_| Box::new(Todo) };
pub static AVERAGE_POOLING1D: LayerType = LayerType { name: "AveragePooling1D", family: "pooling", summary: "", build: |_| Box::new(Todo) };
pub static AVERAGE_POOLING2D: LayerType = LayerType { name: "AveragePooling2D", family: "pooling", summary: "", build: |_| Box::new(Todo) };
pub static GLOBAL_AVERAGE_POOLING1D: LayerType = LayerType { name: "GlobalAveragePooling1D", family: "pooling", summary: "", build: |_| Box::new(Todo) };
pub static GLOBAL_AVERAGE_POOLING2D: LayerType = LayerType { name: "GlobalAveragePooling2D", family: "pooling", summary: "", build: |_| Box::new(Todo) };
pub static GLOBAL_MAX_POOLING1D: LayerType = LayerType { name: "GlobalMaxPooling1D", family: "pooling", summary: "", build: |_| Box::new(Todo) };
pub static GLOBAL_MAX_POOLING2D: LayerType = LayerType { name: "GlobalMaxPooling2D", family: "pooling", summary: "", build: |_| Box::new(Todo) };
