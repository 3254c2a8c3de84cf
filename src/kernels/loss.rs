//! Crossentropies from logits as one CPU op each, with the gradient written
//! out (`softmax * sum(t) - t`, `sigmoid - t`): candle's version is a chain
//! of about ten ops (max, sub, exp, sum, log, ...) forward and as many again
//! backward, each allocating. Numerics as `train::losses` on logits (no
//! clipping there: the fused forms are finite for any logits).

use super::host::{Host, Real, cpu_slice, on_cpu_float, tensor_from};
use candle_core::{CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor, bail};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FromLogits {
    /// Targets are class probabilities, one row per logits row.
    SoftmaxCrossentropy,
    /// Targets are class indices, one per logits row.
    SparseSoftmaxCrossentropy,
    /// Targets are 0/1 (or probabilities), element by element.
    SigmoidBinaryCrossentropy,
}

/// The mean loss over every row (rank-0), or None where the kernel does not
/// apply (other devices, dtypes, shapes) and the caller's ops should run.
/// `targets` must already be aligned: the logits' shape, or for the sparse
/// form one value per row.
pub fn mean_loss(kind: FromLogits, logits: &Tensor, targets: &Tensor) -> Result<Option<Tensor>> {
    let classes = logits.dims().last().copied().unwrap_or(0);
    let rows = logits.elem_count() / classes.max(1);
    let want = if kind == FromLogits::SparseSoftmaxCrossentropy { rows } else { logits.elem_count() };
    if !on_cpu_float(&[logits, targets]) || classes == 0 || rows == 0 || targets.elem_count() != want {
        return Ok(None);
    }
    let op = LossOp { kind, classes };
    Ok(Some(logits.contiguous()?.apply_op2(&targets.contiguous()?, op)?))
}

#[derive(Clone, Copy, Debug)]
struct LossOp {
    kind: FromLogits,
    classes: usize,
}

/// A sparse target as a class index, as candle's float-to-u32 conversion
/// reads it (truncation); out of range is an error, not a panic.
fn class_of<T: Real>(t: T, classes: usize) -> Result<usize> {
    let v = t.to_f64();
    if !(v >= 0.0 && (v as usize) < classes) {
        bail!("sparse_categorical_crossentropy: class index {v} is out of range for {classes} classes");
    }
    Ok(v as usize)
}

/// log-sum-exp of a row, shifted by its max (finite for any finite logits).
fn lse<T: Real>(row: &[T]) -> T {
    let m = row.iter().copied().fold(row[0], |a, b| if b > a { b } else { a });
    let s = row.iter().fold(T::zero(), |s, &x| s + (x - m).exp());
    m + s.ln()
}

/// Stable `log(1 + e^x) - x t`, as `relu(x) - x t + log(1 + e^-|x|)`.
fn bce<T: Real>(x: T, t: T) -> T {
    let relu = if x > T::zero() { x } else { T::zero() };
    relu - x * t + ((-x.abs()).exp() + T::one()).ln()
}

impl LossOp {
    fn value<T: Real>(&self, x: &[T], t: &[T]) -> Result<f64> {
        let c = self.classes;
        let rows = x.len() / c;
        // Rows summed in f64: the mean of a large batch keeps its precision.
        let mut total = 0.0f64;
        match self.kind {
            FromLogits::SoftmaxCrossentropy => {
                for (xr, tr) in x.chunks_exact(c).zip(t.chunks_exact(c)) {
                    let l = lse(xr);
                    total += xr.iter().zip(tr).fold(T::zero(), |s, (&x, &t)| s + t * (l - x)).to_f64();
                }
            }
            FromLogits::SparseSoftmaxCrossentropy => {
                for (xr, &t) in x.chunks_exact(c).zip(t) {
                    total += (lse(xr) - xr[class_of(t, c)?]).to_f64();
                }
            }
            FromLogits::SigmoidBinaryCrossentropy => {
                // Mean over the last axis, then over rows: one mean over all.
                for (&x, &t) in x.iter().zip(t) {
                    total += bce(x, t).to_f64();
                }
                return Ok(total / x.len() as f64);
            }
        }
        Ok(total / rows as f64)
    }

    /// d(mean loss)/d(logits), times the upstream scalar `up`.
    fn grad<T: Real>(&self, x: &[T], t: &[T], up: T) -> Result<Vec<T>> {
        let c = self.classes;
        let rows = x.len() / c;
        let mut d = vec![T::zero(); x.len()];
        match self.kind {
            FromLogits::SoftmaxCrossentropy | FromLogits::SparseSoftmaxCrossentropy => {
                let k = up / T::from_f64(rows as f64);
                for (r, (xr, dr)) in x.chunks_exact(c).zip(d.chunks_exact_mut(c)).enumerate() {
                    let l = lse(xr);
                    // softmax * sum(t) - t; sum(t) is 1 for a class index.
                    let sum_t = match self.kind {
                        FromLogits::SoftmaxCrossentropy => t[r * c..(r + 1) * c].iter().fold(T::zero(), |s, &v| s + v),
                        _ => T::one(),
                    };
                    for (dv, &xv) in dr.iter_mut().zip(xr) {
                        *dv = (xv - l).exp() * sum_t;
                    }
                    match self.kind {
                        FromLogits::SoftmaxCrossentropy => {
                            for (dv, &tv) in dr.iter_mut().zip(&t[r * c..(r + 1) * c]) {
                                *dv -= tv;
                            }
                        }
                        _ => dr[class_of(t[r], c)?] -= T::one(),
                    }
                    for dv in dr.iter_mut() {
                        *dv *= k;
                    }
                }
            }
            FromLogits::SigmoidBinaryCrossentropy => {
                let k = up / T::from_f64(x.len() as f64);
                for ((dv, &xv), &tv) in d.iter_mut().zip(x).zip(t) {
                    *dv = (xv.sigmoid() - tv) * k;
                }
            }
        }
        Ok(d)
    }
}

impl CustomOp2 for LossOp {
    fn name(&self) -> &'static str {
        "nnrun-crossentropy-from-logits"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        fn run<T: Real>(op: &LossOp, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
            let x = cpu_slice::<T>(s1, l1)?;
            let t = cpu_slice::<T>(s2, l2)?;
            let v = op.value(x, t)?;
            Ok((T::to_cpu_storage_owned(vec![T::from_f64(v)]), Shape::from(())))
        }
        match s1 {
            CpuStorage::F32(_) => run::<f32>(self, s1, l1, s2, l2),
            CpuStorage::F64(_) => run::<f64>(self, s1, l1, s2, l2),
            _ => bail!("crossentropy kernel: f32 or f64 only"),
        }
    }

    fn bwd(&self, x: &Tensor, t: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        fn run<T: Real>(op: &LossOp, x: &Tensor, t: &Tensor, grad: &Tensor) -> Result<Tensor> {
            let up = grad.to_scalar::<T>()?;
            let (hx, ht) = (Host::of(x)?, Host::of(t)?);
            let d = op.grad(hx.slice::<T>()?, ht.slice::<T>()?, up)?;
            tensor_from(d, x.shape(), x)
        }
        let d = match x.dtype() {
            DType::F32 => run::<f32>(self, x, t, grad)?,
            DType::F64 => run::<f64>(self, x, t, grad)?,
            dt => bail!("crossentropy kernel: f32 or f64 only, got {dt:?}"),
        };
        // Targets are data: no gradient.
        Ok((Some(d), None))
    }
}

/// Softmax (over the last axis, rows of `classes`) or sigmoid of logits on
/// the host, for metrics: what `Activation::apply` gives, without ops.
pub fn probabilities(logits: &[f32], classes: usize, softmax: bool) -> Vec<f32> {
    if !softmax {
        return logits.iter().map(|&x| x.sigmoid()).collect();
    }
    let mut p = logits.to_vec();
    for row in p.chunks_exact_mut(classes.max(1)) {
        let l = lse(row);
        for v in row.iter_mut() {
            *v = (*v - l).exp();
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{assert_close, compare, flat, random, var};
    use crate::layers::Activation;
    use crate::train::losses::Loss;

    /// One-hot rows (or soft labels when `soft`) for `rows` x `classes`.
    fn targets(rows: usize, classes: usize, seed: u64, soft: bool, dt: DType) -> Tensor {
        let r = flat(&random(&[rows, classes], seed, DType::F64));
        let mut v = vec![0.0; rows * classes];
        for i in 0..rows {
            let row = &r[i * classes..(i + 1) * classes];
            if soft {
                let s: f64 = row.iter().map(|x| x.abs()).sum();
                for j in 0..classes {
                    v[i * classes + j] = row[j].abs() / s;
                }
            } else {
                v[i * classes + ((row[0].abs() * 1000.0) as usize % classes)] = 1.0;
            }
        }
        Tensor::from_vec(v, (rows, classes), &candle_core::Device::Cpu).unwrap().to_dtype(dt).unwrap()
    }

    /// The kernels against `train::losses`'s candle-op forms on logits.
    #[test]
    fn crossentropies_match_the_candle_op_losses() {
        for dt in [DType::F32, DType::F64] {
            let tol = if dt == DType::F32 { 1e-5 } else { 1e-12 };
            for &(rows, classes) in &[(1, 1), (1, 3), (7, 10), (128, 10), (33, 2)] {
                let x = var(&[rows, classes], 1, dt);
                // Scaled: large logits exercise the max shift.
                let xs = [Var::from_tensor(&(x.as_tensor() * 8.0).unwrap()).unwrap()];
                for soft in [false, true] {
                    let t = targets(rows, classes, 5, soft, dt);
                    let what = format!("{dt:?} categorical {rows}x{classes} soft={soft}");
                    compare(
                        &xs,
                        |v| mean_loss(FromLogits::SoftmaxCrossentropy, &v[0], &t).unwrap().unwrap(),
                        |v| Loss::CategoricalCrossentropy.compute_ops(&v[0], &t, true).unwrap(),
                        tol,
                        &what,
                    );
                }
                let t = targets(rows, classes, 6, false, dt);
                let idx = t.argmax(1).unwrap().to_dtype(dt).unwrap();
                let what = format!("{dt:?} sparse {rows}x{classes}");
                compare(
                    &xs,
                    |v| mean_loss(FromLogits::SparseSoftmaxCrossentropy, &v[0], &idx).unwrap().unwrap(),
                    |v| Loss::SparseCategoricalCrossentropy.compute_ops(&v[0], &idx, true).unwrap(),
                    tol,
                    &what,
                );
                let tb = random(&[rows, classes], 7, dt).ge(0.0).unwrap().to_dtype(dt).unwrap();
                let what = format!("{dt:?} binary {rows}x{classes}");
                compare(
                    &xs,
                    |v| mean_loss(FromLogits::SigmoidBinaryCrossentropy, &v[0], &tb).unwrap().unwrap(),
                    |v| Loss::BinaryCrossentropy.compute_ops(&v[0], &tb, true).unwrap(),
                    tol,
                    &what,
                );
            }
        }
    }

    #[test]
    fn saturated_logits_stay_finite_and_bad_indices_are_errors() {
        let x = Tensor::new(&[[100f32, -100.0]], &candle_core::Device::Cpu).unwrap();
        let wrong = Tensor::new(&[[0f32, 1.0]], &candle_core::Device::Cpu).unwrap();
        let b = mean_loss(FromLogits::SigmoidBinaryCrossentropy, &x, &wrong).unwrap().unwrap().to_scalar::<f32>().unwrap();
        assert!((b - 100.0).abs() < 1e-4, "{b}");
        let c = mean_loss(FromLogits::SoftmaxCrossentropy, &x, &wrong).unwrap().unwrap().to_scalar::<f32>().unwrap();
        assert!((c - 200.0).abs() < 1e-3, "{c}");
        for bad in [2f32, -1.0, f32::NAN] {
            let idx = Tensor::new(&[bad], &candle_core::Device::Cpu).unwrap();
            assert!(mean_loss(FromLogits::SparseSoftmaxCrossentropy, &x, &idx).is_err(), "{bad}");
        }
        // Shapes the kernel does not take are left to the caller.
        assert!(mean_loss(FromLogits::SoftmaxCrossentropy, &x, &Tensor::new(&[1f32], &candle_core::Device::Cpu).unwrap()).unwrap().is_none());
    }

    #[test]
    fn host_probabilities_match_the_activations() {
        let x = random(&[9, 4], 3, DType::F32);
        let xs = flat(&x).iter().map(|&v| v as f32 * 10.0).collect::<Vec<_>>();
        let x10 = Tensor::from_vec(xs.clone(), (9, 4), &candle_core::Device::Cpu).unwrap();
        for (softmax, act) in [(true, Activation::Softmax), (false, Activation::Sigmoid)] {
            let want = flat(&act.apply(&x10).unwrap());
            let got: Vec<f64> = probabilities(&xs, 4, softmax).iter().map(|&v| v as f64).collect();
            assert_close(&got, &want, 1e-6, &format!("{act:?}"));
        }
    }

    use candle_core::Var;
}
