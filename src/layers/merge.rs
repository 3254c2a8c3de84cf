//! Merge layers: the element-wise Add, Subtract, Multiply, Average, Maximum,
//! Minimum, and Concatenate. None has weights.

use super::{Arity, Ctx, Layer, LayerType, Shape, ShapeError, fmt_shapes, resolve_axis};
use candle_core::{Tensor, Var};
type CResult<T> = candle_core::Result<T>;

// ---- element-wise merges ------------------------------------------------------------

macro_rules! elementwise {
    ($static:ident, $name:literal, $kind:ident, $summary:literal) => {
        pub static $static: LayerType = LayerType { name: $name, family: "merge", summary: $summary, build: |_| Box::new(ElementWise { kind: Kind::$kind }) };
    };
}

elementwise!(ADD, "Add", Add, "Adds its inputs element-wise; shapes must match or broadcast.");
elementwise!(SUBTRACT, "Subtract", Subtract, "Subtracts the second of exactly two inputs from the first, element-wise.");
elementwise!(MULTIPLY, "Multiply", Multiply, "Multiplies its inputs element-wise; shapes must match or broadcast.");
elementwise!(AVERAGE, "Average", Average, "Averages its inputs element-wise; shapes must match or broadcast.");
elementwise!(MAXIMUM, "Maximum", Maximum, "Element-wise maximum of its inputs; shapes must match or broadcast.");
elementwise!(MINIMUM, "Minimum", Minimum, "Element-wise minimum of its inputs; shapes must match or broadcast.");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Add,
    Subtract,
    Multiply,
    Average,
    Maximum,
    Minimum,
}

/// The six element-wise merges differ only in arithmetic, which shape inference never sees.
#[derive(Clone, Debug, PartialEq)]
pub struct ElementWise {
    pub kind: Kind,
}

impl Layer for ElementWise {
    fn arity(&self) -> Arity {
        match self.kind {
            Kind::Subtract => Arity::Exactly(2),
            _ => Arity::AtLeast(2),
        }
    }

    /// Keras's `_compute_elemwise_op_output_shape`, folded over the inputs:
    /// right-aligned, each pair of sizes equal or one of them 1.
    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape, ShapeError> {
        let mut out = inputs[0].clone();
        for s in &inputs[1..] {
            let (long, short) = if out.len() >= s.len() { (&out, s) } else { (s, &out) };
            let lead = long.len() - short.len();
            let mut next = long[..lead].to_vec();
            for (&i, &j) in long[lead..].iter().zip(short) {
                next.push(match (i, j) {
                    (1, j) => j,
                    (i, 1) => i,
                    (i, j) if i == j => i,
                    _ => {
                        return Err(ShapeError::new(format!("inputs have incompatible shapes: {}", fmt_shapes(inputs)))
                            .hint("make the branches end in the same shape, for example with a Dense of the same units on each branch, or use Concatenate to stack them side by side"));
                    }
                });
            }
            out = next;
        }
        Ok(out)
    }

    /// Keras's `_Merge.call`: lower-rank inputs get unit axes after the batch
    /// axis, then the op folds left with broadcasting.
    fn forward(&self, inputs: &[Tensor], _w: &[Var], _ctx: &mut Ctx) -> CResult<Tensor> {
        let rank = inputs.iter().map(Tensor::rank).max().unwrap_or(0);
        let aligned = inputs
            .iter()
            .map(|x| {
                let mut dims = vec![x.dim(0)?];
                dims.resize(1 + rank - x.rank(), 1);
                dims.extend_from_slice(&x.dims()[1..]);
                x.reshape(dims)
            })
            .collect::<CResult<Vec<_>>>()?;
        let mut y = aligned[0].clone();
        for x in &aligned[1..] {
            y = match self.kind {
                Kind::Add | Kind::Average => y.broadcast_add(x)?,
                Kind::Subtract => y.broadcast_sub(x)?,
                Kind::Multiply => y.broadcast_mul(x)?,
                Kind::Maximum => y.broadcast_maximum(x)?,
                Kind::Minimum => y.broadcast_minimum(x)?,
            };
        }
        if self.kind == Kind::Average {
            y = y.affine(1.0 / inputs.len() as f64, 0.0)?;
        }
        Ok(y)
    }
}

// ---- Concatenate --------------------------------------------------------------------

pub static CONCATENATE: LayerType = LayerType {
    name: "Concatenate",
    family: "merge",
    summary: "Joins its inputs along `axis`; they must match on every other axis.",
    build: |a| Box::new(Concatenate { axis: a.int("axis", -1) }),
};

#[derive(Clone, Debug, PartialEq)]
pub struct Concatenate {
    pub axis: i64,
}

impl Layer for Concatenate {
    fn arity(&self) -> Arity {
        Arity::AtLeast(2)
    }

    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape, ShapeError> {
        let first = &inputs[0];
        // Keras's build tolerates some mismatches that ops.concatenate then rejects
        // at call time; we report what the call would.
        if inputs.iter().any(|s| s.len() != first.len()) {
            return Err(ShapeError::new(format!("inputs must all have the same rank, received {}", fmt_shapes(inputs)))
                .hint("Flatten the branches (or Reshape one of them) so they have the same rank before concatenating them"));
        }
        let ax = resolve_axis(self.axis, first)?;
        let off_axis = |s: &Shape| s.iter().enumerate().filter(|&(i, _)| i != ax).map(|(_, &d)| d).collect::<Vec<_>>();
        if inputs.iter().any(|s| off_axis(s) != off_axis(first)) {
            return Err(ShapeError::new(format!("inputs must match on every axis except axis {}: received {}", self.axis, fmt_shapes(inputs)))
                .hint("Flatten the branches before concatenating them, or crop/pad them to the same size"));
        }
        let mut out = first.clone();
        out[ax] = inputs.iter().try_fold(0usize, |n, s| n.checked_add(s[ax])).ok_or_else(|| super::overflow("the concatenated axis"))?;
        Ok(out)
    }

    fn forward(&self, inputs: &[Tensor], _w: &[Var], _ctx: &mut Ctx) -> CResult<Tensor> {
        let ax = resolve_axis(self.axis, &inputs[0].dims()[1..].to_vec()).map_err(|e| candle_core::Error::Msg(e.message))?;
        Tensor::cat(inputs, ax + 1)
    }
}

#[cfg(test)]
mod tests {
    use crate::layers::testutil::{arg_error, build, infer};

    const ELEMENTWISE: [&str; 6] = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"];

    #[test]
    fn elementwise_same_shapes() {
        for ty in ELEMENTWISE {
            assert_eq!(infer(ty, "{}", &[&[4], &[4]]).unwrap(), (vec![4], 0, 0), "{ty}");
            assert_eq!(infer(ty, "{}", &[&[3, 8, 8], &[3, 8, 8]]).unwrap().0, vec![3, 8, 8], "{ty}");
        }
        assert_eq!(infer("Add", "{}", &[&[4], &[4], &[4]]).unwrap().0, vec![4]);
        assert_eq!(infer("Average", "{}", &[&[2, 4], &[2, 4], &[2, 4], &[2, 4]]).unwrap().0, vec![2, 4]);
    }

    #[test]
    fn elementwise_broadcasts_like_keras() {
        assert_eq!(infer("Add", "{}", &[&[4], &[1]]).unwrap().0, vec![4]);
        assert_eq!(infer("Add", "{}", &[&[1], &[4]]).unwrap().0, vec![4]);
        // Right-aligned: (3, 4) with (4,) and the other way round.
        assert_eq!(infer("Multiply", "{}", &[&[3, 4], &[4]]).unwrap().0, vec![3, 4]);
        assert_eq!(infer("Multiply", "{}", &[&[4], &[3, 4]]).unwrap().0, vec![3, 4]);
        assert_eq!(infer("Maximum", "{}", &[&[3, 1], &[1, 5]]).unwrap().0, vec![3, 5]);
        assert_eq!(infer("Minimum", "{}", &[&[2, 1, 4], &[6, 1], &[1]]).unwrap().0, vec![2, 6, 4]);
        assert_eq!(infer("Subtract", "{}", &[&[8, 8, 3], &[1, 1, 3]]).unwrap().0, vec![8, 8, 3]);
    }

    #[test]
    fn elementwise_incompatible_shapes() {
        let e = infer("Add", "{}", &[&[4], &[5]]).unwrap_err();
        assert_eq!(e.message, "inputs have incompatible shapes: (batch, 4) and (batch, 5)");
        assert!(e.hint.unwrap().contains("use Concatenate to stack them side by side"));
        assert_eq!(e.arg, None);
        // Every received shape is listed, even when the clash is later.
        let e = infer("Average", "{}", &[&[4], &[4], &[2, 5]]).unwrap_err();
        assert_eq!(e.message, "inputs have incompatible shapes: (batch, 4) and (batch, 4) and (batch, 2, 5)");
        assert!(infer("Subtract", "{}", &[&[3, 4], &[4, 4]]).is_err());
        assert!(infer("Multiply", "{}", &[&[4, 3], &[4]]).is_err());
    }

    #[test]
    fn merge_arity() {
        let sub = build("Subtract", "{}").unwrap().arity();
        assert!(sub.accepts(2));
        assert!(!sub.accepts(3));
        assert!(!sub.accepts(1));
        for ty in ["Add", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"] {
            let a = build(ty, "{}").unwrap().arity();
            assert!(!a.accepts(1) && a.accepts(2) && a.accepts(5), "{ty}");
        }
        assert!(arg_error("Add", "{axis: 1}").contains("unknown argument `axis`"));
    }

    #[test]
    fn concatenate_on_several_axes() {
        assert_eq!(infer("Concatenate", "{}", &[&[64], &[8], &[3]]).unwrap(), (vec![75], 0, 0));
        assert_eq!(infer("Concatenate", "{}", &[&[13, 13, 8], &[13, 13, 16], &[13, 13, 1]]).unwrap().0, vec![13, 13, 25]);
        assert_eq!(infer("Concatenate", "{axis: 1}", &[&[2, 5], &[3, 5], &[4, 5]]).unwrap().0, vec![9, 5]);
        assert_eq!(infer("Concatenate", "{axis: -2}", &[&[2, 5], &[3, 5], &[4, 5]]).unwrap().0, vec![9, 5]);
        assert_eq!(infer("Concatenate", "{axis: 2}", &[&[6, 2, 3], &[6, 1, 3], &[6, 7, 3]]).unwrap().0, vec![6, 10, 3]);
    }

    #[test]
    fn concatenate_mismatches() {
        let e = infer("Concatenate", "{}", &[&[13, 13, 8], &[12, 12, 8]]).unwrap_err();
        assert_eq!(e.message, "inputs must match on every axis except axis -1: received (batch, 13, 13, 8) and (batch, 12, 12, 8)");
        assert_eq!(e.hint.as_deref(), Some("Flatten the branches before concatenating them, or crop/pad them to the same size"));
        let e = infer("Concatenate", "{axis: 1}", &[&[2, 5], &[3, 5], &[4, 6]]).unwrap_err();
        assert_eq!(e.message, "inputs must match on every axis except axis 1: received (batch, 2, 5) and (batch, 3, 5) and (batch, 4, 6)");
        let e = infer("Concatenate", "{}", &[&[64], &[4, 4]]).unwrap_err();
        assert_eq!(e.message, "inputs must all have the same rank, received (batch, 64) and (batch, 4, 4)");
        assert!(e.hint.unwrap().contains("Flatten"));
    }

    #[test]
    fn concatenate_axis_range() {
        let e = infer("Concatenate", "{axis: 0}", &[&[4], &[4]]).unwrap_err();
        assert_eq!(e.message, "`axis` 0 is out of range for input (batch, 4) (axis 0 is the batch axis)");
        assert_eq!(e.arg, Some("axis"));
        assert!(infer("Concatenate", "{axis: 2}", &[&[4], &[4]]).is_err());
        assert!(infer("Concatenate", "{axis: -3}", &[&[4], &[4]]).is_err());
        assert!(arg_error("Concatenate", "{axis: last}").contains("`axis` must be an integer"));
    }

    #[test]
    fn merge_forward_shapes_and_gradients() {
        use crate::layers::testutil::{forward, grad_check};
        let mut cases: Vec<(&str, &str, Vec<&[usize]>)> = Vec::new();
        for ty in ELEMENTWISE {
            cases.push((ty, "{}", vec![&[3, 4], &[3, 4]]));
            cases.push((ty, "{}", vec![&[3, 4], &[4]]));
            cases.push((ty, "{}", vec![&[3, 1], &[1, 5]]));
            if ty != "Subtract" {
                cases.push((ty, "{}", vec![&[4], &[4], &[4]]));
                cases.push((ty, "{}", vec![&[2, 1, 4], &[3, 1], &[1]]));
            }
        }
        cases.push(("Concatenate", "{}", vec![&[3], &[2]]));
        cases.push(("Concatenate", "{}", vec![&[2, 3], &[2, 1], &[2, 2]]));
        cases.push(("Concatenate", "{axis: 1}", vec![&[2, 3], &[1, 3], &[3, 3]]));
        cases.push(("Concatenate", "{axis: -2}", vec![&[2, 3, 2], &[2, 1, 2]]));
        for (ty, yaml, inputs) in cases {
            forward(ty, yaml, &inputs, true);
            grad_check(ty, yaml, &inputs, true);
        }
    }

    fn apply(ty: &str, yaml: &str, inputs: &[Vec<f64>], dims: &[usize]) -> (Vec<usize>, Vec<f64>) {
        use crate::layers::Ctx;
        use candle_core::{Device, Tensor};
        use rand::SeedableRng;
        let l = build(ty, yaml).unwrap();
        let xs: Vec<Tensor> = inputs.iter().map(|v| Tensor::from_vec(v.clone(), dims, &Device::Cpu).unwrap()).collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let y = l.forward(&xs, &[], &mut Ctx { train: false, rng: &mut rng, logits: false, grads: None, part: None }).unwrap();
        (y.dims().to_vec(), y.flatten_all().unwrap().to_vec1().unwrap())
    }

    #[test]
    fn merge_values() {
        let ab = [vec![1.0, 2.0], vec![3.0, 4.0]];
        assert_eq!(apply("Average", "{}", &ab, &[1, 2]).1, [2.0, 3.0]);
        assert_eq!(apply("Add", "{}", &ab, &[1, 2]).1, [4.0, 6.0]);
        assert_eq!(apply("Subtract", "{}", &ab, &[1, 2]).1, [-2.0, -2.0]);
        assert_eq!(apply("Multiply", "{}", &ab, &[1, 2]).1, [3.0, 8.0]);
        let mixed = [vec![1.0, 5.0, -2.0], vec![4.0, 0.0, -3.0], vec![2.0, 6.0, -1.0]];
        assert_eq!(apply("Maximum", "{}", &mixed, &[1, 3]).1, [4.0, 6.0, -1.0]);
        assert_eq!(apply("Minimum", "{}", &mixed, &[1, 3]).1, [1.0, 0.0, -3.0]);
        assert_eq!(apply("Concatenate", "{}", &ab, &[1, 2]), (vec![1, 4], vec![1.0, 2.0, 3.0, 4.0]));
        assert_eq!(apply("Concatenate", "{axis: 1}", &ab, &[1, 2, 1]), (vec![1, 4, 1], vec![1.0, 2.0, 3.0, 4.0]));
    }
}
