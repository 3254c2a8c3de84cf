//! Dense as one CPU op: `y = x @ W (+ b) (+ relu)`, Keras kernel layout
//! (in, out), with a hand-written backward pass. candle's version costs a
//! matmul, a broadcast add and a relu, each allocating and each with its own
//! backward (zeros + add per gradient), and computes the input gradient even
//! for the data tensor, which alone is a third of an MLP's backward FLOPs.
//!
//! Also home of what the other kernels share: the `Real` element trait
//! (f32 for training, f64 for the finite-difference tests, through the same
//! code) and host access to tensor data.

use super::gemm::{Mat, matmul as sgemm};
use super::sink::{Sink, Slot};
use candle_core::{CpuStorage, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Storage, StorageRef, Tensor, WithDType, bail};
use std::sync::Arc;

/// An element type the kernels run on.
pub trait Real: WithDType + std::ops::Neg<Output = Self> {
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn tanh(self) -> Self;
    fn sqrt(self) -> Self;
    fn abs(self) -> Self;
    /// `dst (a.rows x b.cols) = (accumulate ? dst : 0) + a @ b`.
    fn matmul(dst: &mut [Self], a: View<Self>, b: View<Self>, accumulate: bool);

    /// 1 / (1 + e^-x), as candle's op chain computes it (neg, exp, +1, recip).
    #[inline]
    fn sigmoid(self) -> Self {
        Self::one() / ((-self).exp() + Self::one())
    }
}

impl Real for f32 {
    #[inline]
    fn exp(self) -> Self {
        f32::exp(self)
    }
    #[inline]
    fn ln(self) -> Self {
        f32::ln(self)
    }
    /// glibc's tanhf goes through a slow expm1f (most of an LSTM's time);
    /// f64 `exp` is fast and leaves room for the f32 result: within 1 ulp of
    /// tanh (tested).
    #[inline]
    fn tanh(self) -> Self {
        let x = self as f64;
        if x.abs() < 0.004 {
            // Taylor: exp(2x) - 1 would cancel; the next term is < 1e-16 relative.
            let x2 = x * x;
            return (x * (1.0 - x2 * (1.0 / 3.0 - x2 * (2.0 / 15.0)))) as f32;
        }
        // tanh(20) is 1 in f32 (and f64 exp does not overflow); NaN stays NaN.
        let e = (2.0 * x.clamp(-20.0, 20.0)).exp();
        ((e - 1.0) / (e + 1.0)) as f32
    }
    #[inline]
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
    #[inline]
    fn abs(self) -> Self {
        f32::abs(self)
    }
    fn matmul(dst: &mut [f32], a: View<f32>, b: View<f32>, accumulate: bool) {
        fn m(v: View<'_, f32>) -> Mat<'_> {
            Mat { data: v.data, rows: v.rows, cols: v.cols, rs: v.rs, cs: v.cs }
        }
        sgemm(dst, m(a), m(b), accumulate);
    }
}

impl Real for f64 {
    #[inline]
    fn exp(self) -> Self {
        f64::exp(self)
    }
    #[inline]
    fn ln(self) -> Self {
        f64::ln(self)
    }
    #[inline]
    fn tanh(self) -> Self {
        f64::tanh(self)
    }
    #[inline]
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    #[inline]
    fn abs(self) -> Self {
        f64::abs(self)
    }
    /// Plain loops: f64 serves the finite-difference tests (tiny shapes);
    /// training runs f32 through gemm.
    fn matmul(dst: &mut [f64], a: View<f64>, b: View<f64>, accumulate: bool) {
        assert_eq!(a.cols, b.rows, "inner dimensions differ");
        assert_eq!(dst.len(), a.rows * b.cols, "destination size");
        for i in 0..a.rows {
            for j in 0..b.cols {
                let mut s = if accumulate { dst[i * b.cols + j] } else { 0.0 };
                for p in 0..a.cols {
                    s += a.at(i, p) * b.at(p, j);
                }
                dst[i * b.cols + j] = s;
            }
        }
    }
}

/// A read-only matrix view: `data[r * rs + c * cs]`, `rows x cols`.
#[derive(Clone, Copy, Debug)]
pub struct View<'a, T> {
    pub data: &'a [T],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a, T: Copy> View<'a, T> {
    /// Contiguous row-major.
    pub fn new(data: &'a [T], rows: usize, cols: usize) -> Self {
        View { data, rows, cols, rs: cols, cs: 1 }
    }
    /// The transpose, as a view.
    pub fn t(self) -> Self {
        View { data: self.data, rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs }
    }
    #[inline]
    fn at(&self, r: usize, c: usize) -> T {
        self.data[r * self.rs + c * self.cs]
    }
}

/// A CPU tensor's contiguous values, borrowed for as long as the guard lives.
pub struct Host<'a> {
    storage: StorageRef<'a>,
    layout: &'a Layout,
}

impl<'a> Host<'a> {
    /// Fails (no panic) for other devices and non-contiguous layouts:
    /// callers make their tensors contiguous first.
    pub fn of(t: &'a Tensor) -> Result<Self> {
        let (storage, layout) = t.storage_and_layout();
        if !matches!(&*storage, Storage::Cpu(_)) {
            bail!("nnrun kernel: expected a CPU tensor");
        }
        if layout.contiguous_offsets().is_none() {
            bail!("nnrun kernel: expected a contiguous tensor");
        }
        Ok(Host { storage, layout })
    }

    pub fn slice<T: Real>(&self) -> Result<&[T]> {
        match &*self.storage {
            Storage::Cpu(s) => cpu_slice(s, self.layout),
            _ => bail!("nnrun kernel: expected a CPU tensor"),
        }
    }
}

/// The contiguous values a layout selects from a CPU storage.
pub fn cpu_slice<'a, T: Real>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [T]> {
    let v = T::cpu_storage_as_slice(s)?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => bail!("nnrun kernel: expected a contiguous tensor"),
    }
}

/// A fresh tensor on `like`'s device (no graph).
pub fn tensor_from<T: Real>(v: Vec<T>, shape: impl Into<Shape>, like: &Tensor) -> Result<Tensor> {
    Tensor::from_vec(v, shape, like.device())
}

/// Whether the kernels (CPU, f32/f64) can run on these tensors; other
/// devices and dtypes take the plain candle ops.
pub fn on_cpu_float(ts: &[&Tensor]) -> bool {
    let Some(first) = ts.first() else { return false };
    let dt = first.dtype();
    matches!(dt, DType::F32 | DType::F64) && ts.iter().all(|t| t.device().is_cpu() && t.dtype() == dt)
}

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
    T::matmul(&mut y, View::new(x, rows, k), View::new(w, k, n), b.is_some());
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
    T::matmul(dw.0, View::new(x, rows, k).t(), View::new(gz, rows, n), dw.1);
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
        T::matmul(&mut dx, View::new(gz, rows, n), View::new(w, k, n).t(), false);
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

/// Shared by the kernels' tests: random values and a comparison of a kernel
/// against its plain-op reference, values and gradients.
#[cfg(test)]
pub mod testing {
    use candle_core::{DType, Device, Tensor, Var};
    use rand::{Rng, SeedableRng, rngs::StdRng};

    pub fn random(dims: &[usize], seed: u64, dtype: DType) -> Tensor {
        let mut rng = StdRng::seed_from_u64(seed);
        let n: usize = dims.iter().product();
        let v: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
        Tensor::from_vec(v, dims, &Device::Cpu).unwrap().to_dtype(dtype).unwrap()
    }

    pub fn var(dims: &[usize], seed: u64, dtype: DType) -> Var {
        Var::from_tensor(&random(dims, seed, dtype)).unwrap()
    }

    pub fn flat(t: &Tensor) -> Vec<f64> {
        t.flatten_all().unwrap().to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap()
    }

    /// Element-wise `|a - b| <= tol * max(1, |b|)`, with the worst index in the message.
    pub fn assert_close(a: &[f64], b: &[f64], tol: f64, what: &str) {
        assert_eq!(a.len(), b.len(), "{what}: lengths");
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= tol * y.abs().max(1.0), "{what}[{i}]: {x} vs {y}");
        }
    }

    /// Runs `f` (kernel) and `g` (reference) on the same variables, compares
    /// the outputs and the gradients of `sum(out * r)` for every variable.
    pub fn compare(vars: &[Var], f: impl Fn(&[Tensor]) -> Tensor, g: impl Fn(&[Tensor]) -> Tensor, tol: f64, what: &str) {
        let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
        let (a, b) = (f(&ts), g(&ts));
        assert_eq!(a.dims(), b.dims(), "{what}: output shape");
        assert_close(&flat(&a), &flat(&b), tol, &format!("{what}: output"));
        let r = random(a.dims(), 77, a.dtype());
        let ga = (a * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let gb = (b * &r).unwrap().sum_all().unwrap().backward().unwrap();
        for (i, v) in vars.iter().enumerate() {
            match (ga.get(v.as_tensor()), gb.get(v.as_tensor())) {
                (Some(x), Some(y)) => assert_close(&flat(x), &flat(y), tol, &format!("{what}: gradient of argument {i}")),
                (x, y) => panic!("{what}: argument {i} has gradient {} (kernel) vs {} (reference)", x.is_some(), y.is_some()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
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

    /// The f32 tanh against f64's, over the whole useful range: 1 ulp.
    #[test]
    fn fast_f32_tanh_is_within_one_ulp() {
        let mut x = -25.0f32;
        while x < 25.0 {
            for v in [x, x * 1e-3, x * 1e-6, x * 1e-30] {
                let want = (v as f64).tanh() as f32;
                let got = Real::tanh(v);
                let ulps = (got.to_bits() as i64 - want.to_bits() as i64).abs();
                assert!(ulps <= 1, "tanh({v}): {got} vs {want} ({ulps} ulps)");
            }
            x += 0.000_37;
        }
        assert!(Real::tanh(f32::NAN).is_nan());
        assert_eq!((Real::tanh(f32::INFINITY), Real::tanh(f32::NEG_INFINITY)), (1.0, -1.0));
        assert_eq!(Real::tanh(0.0f32), 0.0);
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
