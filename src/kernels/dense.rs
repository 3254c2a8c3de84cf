//! Dense as one CPU op: `y = x @ W (+ b) (+ relu)`, Keras kernel layout
//! (in, out), with a hand-written backward pass. candle's version costs a
//! matmul, a broadcast add and a relu, each allocating and each with its own
//! backward (zeros + add per gradient), and computes the input gradient even
//! for the data tensor, which alone is a third of an MLP's backward FLOPs.

use super::host::{Host, Real, cpu_slice, on_cpu_float, tensor_from};
use super::mat::Mat;
use super::sink::{Sink, Slot};
use candle_core::{CpuStorage, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor, bail};
use std::sync::Arc;

// ---- Dense ------------------------------------------------------------------------

/// `y = x @ w (+ b)`, relu fused when `relu`, over the last axis of `x` (any
/// rank >= 1), `w` of shape (in, out). Plain candle ops off the CPU. With a
/// `sink`, the backward pass writes the gradients of `w` and `b` there.
pub fn dense(x: &Tensor, w: &Tensor, b: Option<&Tensor>, relu: bool, sink: Option<&Sink>) -> Result<Tensor> {
    let mut all = vec![x, w];
    all.extend(b);
    let (k, n) = w.dims2()?;
    if !on_cpu_float(&all) || x.dims().last() != Some(&k) || b.is_some_and(|b| b.dims() != [n]) {
        // Also the path that reports shape errors, in candle's words.
        return dense_plain(x, w, b, relu);
    }
    let rows: usize = x.dims()[..x.rank() - 1].iter().product();
    // Decided here: a data leaf (no variable, no op) needs no gradient.
    let op = DenseOp { relu, input_grad: x.track_op(), sink_w: sink.and_then(|s| s.slot(w)), sink_b: sink.zip(b).and_then(|(s, b)| s.slot(b)) };
    let x2 = x.contiguous()?.reshape((rows, k))?;
    let w = w.contiguous()?;
    let y = match b {
        Some(b) => x2.apply_op3(&w, &b.contiguous()?, op)?,
        None => x2.apply_op2(&w, op)?,
    };
    let mut out = x.dims().to_vec();
    if let Some(last) = out.last_mut() {
        *last = n;
    }
    y.reshape(out)
}

/// The same computation from candle ops: the reference the kernel is tested
/// against, and the path for other devices.
pub fn dense_plain(x: &Tensor, w: &Tensor, b: Option<&Tensor>, relu: bool) -> Result<Tensor> {
    let mut y = x.broadcast_matmul(w)?;
    if let Some(b) = b {
        y = y.broadcast_add(b)?;
    }
    if relu { y.relu() } else { Ok(y) }
}

#[derive(Clone)]
struct DenseOp {
    relu: bool,
    /// False for a data leaf: its gradient would be thrown away.
    input_grad: bool,
    /// Where the kernel's and bias's gradients go instead of candle's store.
    sink_w: Option<Arc<Slot>>,
    sink_b: Option<Arc<Slot>>,
}

fn dense_fwd<T: Real>(x: &[T], w: &[T], b: Option<&[T]>, rows: usize, k: usize, n: usize, relu: bool) -> Vec<T> {
    let mut y = vec![T::zero(); rows * n];
    if let Some(b) = b {
        for r in y.chunks_exact_mut(n.max(1)) {
            r.copy_from_slice(b);
        }
    }
    T::matmul(&mut y, Mat::new(x, rows, k), Mat::new(w, k, n), b.is_some());
    if relu {
        // As candle's relu (max(v, 0)): NaN becomes 0.
        // A select, not a branch: half the signs are random (mispredicts).
        for v in &mut y {
            *v = if *v > T::zero() { *v } else { T::zero() };
        }
    }
    y
}

/// `dw = x^T gz` (added into `dw` when `accumulate`), `db` likewise, and the
/// input gradient when wanted; `gz` is the output gradient through the relu.
#[allow(clippy::too_many_arguments)]
fn dense_bwd<T: Real>(
    x: &[T],
    w: &[T],
    gz: &[T],
    rows: usize,
    k: usize,
    n: usize,
    input_grad: bool,
    dw: (&mut [T], bool),
    db: Option<(&mut [T], bool)>,
) -> Option<Vec<T>> {
    T::matmul(dw.0, Mat::new(x, rows, k).t(), Mat::new(gz, rows, n), dw.1);
    if let Some((db, accumulate)) = db {
        // This op's sum first, then onto what is there: candle's order.
        let mut sum = vec![T::zero(); n];
        for r in gz.chunks_exact(n.max(1)) {
            for (d, &v) in sum.iter_mut().zip(r) {
                *d += v;
            }
        }
        for (d, s) in db.iter_mut().zip(sum) {
            *d = if accumulate { *d + s } else { s };
        }
    }
    input_grad.then(|| {
        let mut dx = vec![T::zero(); rows * k];
        T::matmul(&mut dx, Mat::new(gz, rows, n), Mat::new(w, k, n).t(), false);
        dx
    })
}

/// The output gradient through the relu: it passes where the output is positive.
fn relu_masked<T: Real>(g: &[T], y: &[T]) -> Vec<T> {
    g.iter().zip(y).map(|(&g, &y)| if y > T::zero() { g } else { T::zero() }).collect()
}

impl DenseOp {
    fn cpu(&self, x: (&CpuStorage, &Layout), w: (&CpuStorage, &Layout), b: Option<(&CpuStorage, &Layout)>) -> Result<(CpuStorage, Shape)> {
        fn run<T: Real>(op: &DenseOp, x: (&CpuStorage, &Layout), w: (&CpuStorage, &Layout), b: Option<(&CpuStorage, &Layout)>) -> Result<(CpuStorage, Shape)> {
            let (rows, k) = x.1.shape().dims2()?;
            let (k2, n) = w.1.shape().dims2()?;
            if k != k2 {
                bail!("dense: input has {k} features, kernel expects {k2}");
            }
            let bias = match b {
                Some((s, l)) => Some(cpu_slice::<T>(s, l)?),
                None => None,
            };
            let y = dense_fwd(cpu_slice::<T>(x.0, x.1)?, cpu_slice::<T>(w.0, w.1)?, bias, rows, k, n, op.relu);
            Ok((T::to_cpu_storage_owned(y), Shape::from((rows, n))))
        }
        match x.0 {
            CpuStorage::F32(_) => run::<f32>(self, x, w, b),
            CpuStorage::F64(_) => run::<f64>(self, x, w, b),
            _ => bail!("dense: f32 or f64 only"),
        }
    }

    /// (dx, dw, db) for candle; dw and db are None where a sink slot took them.
    #[allow(clippy::type_complexity)]
    fn grads(&self, x: &Tensor, w: &Tensor, bias: bool, res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        fn run<T: Real>(
            op: &DenseOp,
            x: &Tensor,
            w: &Tensor,
            bias: bool,
            res: &Tensor,
            grad: &Tensor,
        ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
            let (k, n) = w.dims2()?;
            let rows = x.dim(0)?;
            let g = grad.contiguous()?;
            let (hx, hw, hy, hg) = (Host::of(x)?, Host::of(w)?, Host::of(res)?, Host::of(&g)?);
            let (xs, ws) = (hx.slice::<T>()?, hw.slice::<T>()?);
            let masked;
            let gz = if op.relu {
                masked = relu_masked(hg.slice::<T>()?, hy.slice::<T>()?);
                &masked[..]
            } else {
                hg.slice::<T>()?
            };
            let mut dx = None;
            let (mut dw, mut db) = (None, None);
            match (&op.sink_w, bias.then_some(&op.sink_b)) {
                // The weights' gradients straight into their buffers.
                (Some(sw), None) => sw.write::<T, _>(|dwv, acc| dx = dense_bwd(xs, ws, gz, rows, k, n, op.input_grad, (dwv, acc), None))?,
                (Some(sw), Some(Some(sb))) => sw.write::<T, _>(|dwv, acc| {
                    sb.write::<T, _>(|dbv, bacc| dx = dense_bwd(xs, ws, gz, rows, k, n, op.input_grad, (dwv, acc), Some((dbv, bacc))))
                })??,
                _ => {
                    let mut dwv = vec![T::zero(); k * n];
                    let mut dbv = vec![T::zero(); if bias { n } else { 0 }];
                    dx = dense_bwd(xs, ws, gz, rows, k, n, op.input_grad, (&mut dwv, false), bias.then_some((&mut dbv[..], false)));
                    dw = Some(tensor_from(dwv, (k, n), x)?);
                    db = bias.then(|| tensor_from(dbv, n, x)).transpose()?;
                }
            }
            let dx = dx.map(|v| tensor_from(v, x.shape(), x)).transpose()?;
            Ok((dx, dw, db))
        }
        match x.dtype() {
            DType::F32 => run::<f32>(self, x, w, bias, res, grad),
            DType::F64 => run::<f64>(self, x, w, bias, res, grad),
            dt => bail!("dense: f32 or f64 only, got {dt:?}"),
        }
    }
}

impl CustomOp2 for DenseOp {
    fn name(&self) -> &'static str {
        "nnrun-dense"
    }
    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        self.cpu((s1, l1), (s2, l2), None)
    }
    fn bwd(&self, x: &Tensor, w: &Tensor, res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, _) = self.grads(x, w, false, res, grad)?;
        Ok((dx, dw))
    }
}

impl CustomOp3 for DenseOp {
    fn name(&self) -> &'static str {
        "nnrun-dense-bias"
    }
    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout, s3: &CpuStorage, l3: &Layout) -> Result<(CpuStorage, Shape)> {
        self.cpu((s1, l1), (s2, l2), Some((s3, l3)))
    }
    fn bwd(&self, x: &Tensor, w: &Tensor, _b: &Tensor, res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        self.grads(x, w, true, res, grad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::*;
    use candle_core::{Device, Var};

    #[test]
    fn dense_matches_candle_ops_values_and_gradients() {
        for dt in [DType::F32, DType::F64] {
            let tol = if dt == DType::F32 { 1e-5 } else { 1e-12 };
            for &(batch, fin, fout) in &[(1, 1, 1), (1, 7, 3), (5, 13, 9), (33, 70, 17), (128, 96, 40)] {
                for relu in [false, true] {
                    for bias in [false, true] {
                        let x = var(&[batch, fin], 1, dt);
                        let w = var(&[fin, fout], 2, dt);
                        let mut vars = vec![x, w];
                        if bias {
                            vars.push(var(&[fout], 3, dt));
                        }
                        let what = format!("{dt:?} {batch}x{fin}->{fout} relu={relu} bias={bias}");
                        compare(
                            &vars,
                            |t| dense(&t[0], &t[1], t.get(2), relu, None).unwrap(),
                            |t| dense_plain(&t[0], &t[1], t.get(2), relu).unwrap(),
                            tol,
                            &what,
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn dense_applies_to_the_last_axis_of_any_rank() {
        let x = var(&[3, 4, 5], 1, DType::F32);
        let w = var(&[5, 6], 2, DType::F32);
        let b = var(&[6], 3, DType::F32);
        let vars = [x, w, b];
        compare(&vars, |t| dense(&t[0], &t[1], Some(&t[2]), true, None).unwrap(), |t| dense_plain(&t[0], &t[1], Some(&t[2]), true).unwrap(), 1e-5, "rank 3");
        // A non-contiguous input (transposed) gives the same values.
        let xt = random(&[3, 5, 4], 9, DType::F32).transpose(1, 2).unwrap();
        let (a, b) = (dense(&xt, &vars[1], None, false, None).unwrap(), dense_plain(&xt, &vars[1], None, false).unwrap());
        assert_close(&flat(&a), &flat(&b), 1e-5, "transposed input");
    }

    /// With a sink, the weights' gradients land there (summed over both uses
    /// of a shared layer), bit for bit what candle's store gets without one
    /// (at sizes where the product's depth fits one sgemm block), and
    /// candle's store gets none.
    #[test]
    fn sink_takes_the_weight_gradients_candle_would_get() {
        for bias in [false, true] {
            let x = random(&[5, 4], 1, DType::F32);
            let w = var(&[4, 4], 2, DType::F32);
            let b = var(&[4], 3, DType::F32);
            let loss = |sink: Option<&Sink>| {
                let bb = bias.then_some(b.as_tensor());
                let h = dense(&x, &w, bb, true, sink).unwrap();
                dense(&h, &w, bb, false, sink).unwrap().sqr().unwrap().sum_all().unwrap()
            };
            let plain = loss(None).backward().unwrap();
            let vars = [w.clone(), b.clone()];
            let sink = Sink::new(&vars);
            let grads = loss(Some(&sink)).backward().unwrap();
            for v in &vars {
                assert!(grads.get(v).is_none(), "candle's store keeps no weight gradient");
                match plain.get(v) {
                    Some(want) => assert_eq!(flat(&sink.take(v).unwrap()), flat(want), "bias={bias}"),
                    None => assert!(sink.take(v).is_none() && !bias),
                }
            }
        }
    }

    #[test]
    fn data_leaf_gets_no_gradient_but_weights_do() {
        let x = random(&[4, 3], 1, DType::F32);
        let w = var(&[3, 2], 2, DType::F32);
        let grads = dense(&x, &w, None, false, None).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(grads.get(&x).is_none());
        // d/dw sum(x @ w) = column sums of x, repeated per output.
        let want: Vec<f64> = (0..3)
            .flat_map(|i| {
                let s: f64 = flat(&x).chunks(3).map(|r| r[i]).sum();
                [s, s]
            })
            .collect();
        assert_close(&flat(grads.get(&w).unwrap()), &want, 1e-6, "dw");
    }

    #[test]
    fn shape_errors_are_errors_not_panics() {
        let x = random(&[4, 3], 1, DType::F32);
        let w = Var::from_tensor(&random(&[5, 2], 2, DType::F32)).unwrap();
        assert!(dense(&x, &w, None, false, None).is_err());
        let w = Var::from_tensor(&random(&[3, 2], 2, DType::F32)).unwrap();
        assert!(dense(&x, &w, Some(&random(&[3], 3, DType::F32)), false, None).is_err());
        // Mixed dtypes take the plain path, which rejects them.
        assert!(dense(&x.to_dtype(DType::F64).unwrap(), &w, None, false, None).is_err());
        // Empty batches and zero features give empty or zero outputs.
        let y = dense(&random(&[0, 3], 1, DType::F32), &w, None, true, None).unwrap();
        assert_eq!(y.dims(), &[0, 2]);
        let w0 = Var::from_tensor(&random(&[0, 2], 2, DType::F32)).unwrap();
        let b = Var::from_tensor(&random(&[2], 3, DType::F32)).unwrap();
        let y = dense(&random(&[4, 0], 1, DType::F32), &w0, Some(&b), false, None).unwrap();
        assert_eq!(flat(&y), flat(b.as_tensor()).repeat(4));
        let _ = Device::Cpu;
    }
}
