//! STUB: to be written (see layers/core.rs for the pattern).
use super::{Layer, LayerType, Shape, ShapeError};

#[derive(Debug)]
pub struct Todo;
impl Layer for Todo {
    fn output_shape(&self, _inputs: &[Shape]) -> Result<Shape, ShapeError> {
        Err(ShapeError::new("not implemented yet"))
    }
}

pub static ADD: LayerType = LayerType { name: "Add", family: "merge", summary: "", build: |_| Box::new(Todo) };
pub static SUBTRACT: LayerType = LayerType { name: "Subtract", family: "merge", summary: "", build: |_| Box::new(Todo) };
pub static MULTIPLY: LayerType = LayerType { name: "Multiply", family: "merge", summary: "", build: |_| Box::new(Todo) };
pub static AVERAGE: LayerType = LayerType { name: "Average", family: "merge", summary: "", build: |_| Box::new(Todo) };
pub static MAXIMUM: LayerType = LayerType { name: "Maximum", family: "merge", summary: "", build: |_| Box::new(Todo) };
pub static MINIMUM: LayerType = LayerType { name: "Minimum", family: "merge", summary: "", build: |_| Box::new(Todo) };
pub static CONCATENATE: LayerType = LayerType { name: "Concatenate", family: "merge", summary: "", build: |_| Box::new(Todo) };
