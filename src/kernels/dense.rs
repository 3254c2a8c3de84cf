//! Dense as one CPU op: `y = x @ W (+ b) (+ relu)`, Keras kernel layout
//! (in, out), with a hand-written backward pass. candle's version costs a
//! matmul, a broadcast add and a relu, each allocating and each with its own
//! backward (zeros + add per gradient), and computes the input gradient even
//! for the data tensor, which alone is a third of an MLP's backward FLOPs.
//!
//! Also home of what the other kernels share: the `Real` element trait
//! (f32 for training, f64 for the finite-difference tests, through the same
//! code) and host access to tensor data.

use super::gemm::{matmul as sgemm, Mat};
use candle_core::{bail, CpuStorage, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Storage, StorageRef, Tensor, WithDType};

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
/// rank >= 1), `w` of shape (in, out). Plain candle ops off the CPU.
pub fn dense(x: &Tensor, w: &Tensor, b: Option<&Tensor>, relu: bool) -> Result<Tensor> {
    let mut all = vec![x, w];
    all.extend(b);
    let (k, n) = w.dims2()?;
    if !on_cpu_float(&all) || x.dims().last() != Some(&k) || b.is_some_and(|b| b.dims() != [n]) {
        // Also the path that reports shape errors, in candle's words.
        return dense_plain(x, w, b, relu);
    }
    let rows: usize = x.dims()[..x.rank() - 1].iter().product();
    // Decided here: a data leaf (no variable, no op) needs no gradient.
    let op = DenseOp { relu, input_grad: x.track_op() };
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

#[derive(Clone, Copy, Debug)]
struct DenseOp {
    relu: bool,
    /// False for a data leaf: its gradient would be thrown away.
    input_grad: bool,
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
        for v in &mut y {
            if !(*v > T::zero()) {
                *v = T::zero();
            }
        }
    }
    y
}

struct DenseGrads<T> {
    dx: Option<Vec<T>>,
    dw: Vec<T>,
    db: Option<Vec<T>>,
}

#[allow(clippy::too_many_arguments)]
fn dense_bwd<T: Real>(x: &[T], w: &[T], y: &[T], g: &[T], rows: usize, k: usize, n: usize, op: DenseOp, bias: bool) -> DenseGrads<T> {
    // Through the relu: the gradient passes where the output is positive.
    let masked: Vec<T>;
    let gz = if op.relu {
        masked = g.iter().zip(y).map(|(&g, &y)| if y > T::zero() { g } else { T::zero() }).collect();
        &masked[..]
    } else {
        g
    };
    let mut dw = vec![T::zero(); k * n];
    T::matmul(&mut dw, View::new(x, rows, k).t(), View::new(gz, rows, n), false);
    let db = bias.then(|| {
        let mut db = vec![T::zero(); n];
        for r in gz.chunks_exact(n.max(1)) {
            for (d, &v) in db.iter_mut().zip(r) {
                *d += v;
            }
        }
        db
    });
    let dx = op.input_grad.then(|| {
        let mut dx = vec![T::zero(); rows * k];
        T::matmul(&mut dx, View::new(gz, rows, n), View::new(w, k, n).t(), false);
        dx
    });
    DenseGrads { dx, dw, db }
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

    fn grads(&self, x: &Tensor, w: &Tensor, bias: bool, res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Tensor, Option<Tensor>)> {
        fn run<T: Real>(op: &DenseOp, x: &Tensor, w: &Tensor, bias: bool, res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Tensor, Option<Tensor>)> {
            let (k, n) = w.dims2()?;
            let rows = x.dim(0)?;
            let g = grad.contiguous()?;
            let (hx, hw, hy, hg) = (Host::of(x)?, Host::of(w)?, Host::of(res)?, Host::of(&g)?);
            let d = dense_bwd(hx.slice::<T>()?, hw.slice::<T>()?, hy.slice::<T>()?, hg.slice::<T>()?, rows, k, n, *op, bias);
            let dx = d.dx.map(|v| tensor_from(v, x.shape(), x)).transpose()?;
            let db = d.db.map(|v| tensor_from(v, n, x)).transpose()?;
            Ok((dx, tensor_from(d.dw, (k, n), x)?, db))
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
        Ok((dx, Some(dw)))
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
        let (dx, dw, db) = self.grads(x, w, true, res, grad)?;
        Ok((dx, Some(dw), db))
    }
}

/// Shared by the kernels' tests: random values and a comparison of a kernel
/// against its plain-op reference, values and gradients.
#[cfg(test)]
pub mod testing {
    use candle_core::{DType, Device, Tensor, Var};
    use rand::{rngs::StdRng, Rng, SeedableRng};

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
                        compare(&vars, |t| dense(&t[0], &t[1], t.get(2), relu).unwrap(), |t| dense_plain(&t[0], &t[1], t.get(2), relu).unwrap(), tol, &what);
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
        compare(&vars, |t| dense(&t[0], &t[1], Some(&t[2]), true).unwrap(), |t| dense_plain(&t[0], &t[1], Some(&t[2]), true).unwrap(), 1e-5, "rank 3");
        // A non-contiguous input (transposed) gives the same values.
        let xt = random(&[3, 5, 4], 9, DType::F32).transpose(1, 2).unwrap();
        let (a, b) = (dense(&xt, &vars[1], None, false).unwrap(), dense_plain(&xt, &vars[1], None, false).unwrap());
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

    #[test]
    fn data_leaf_gets_no_gradient_but_weights_do() {
        let x = random(&[4, 3], 1, DType::F32);
        let w = var(&[3, 2], 2, DType::F32);
        let grads = dense(&x, &w, None, false).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(grads.get(&x).is_none());
        // d/dw sum(x @ w) = column sums of x, repeated per output.
        let want: Vec<f64> = (0..3).flat_map(|i| {
            let s: f64 = flat(&x).chunks(3).map(|r| r[i]).sum();
            [s, s]
        }).collect();
        assert_close(&flat(grads.get(&w).unwrap()), &want, 1e-6, "dw");
    }

    #[test]
    fn shape_errors_are_errors_not_panics() {
        let x = random(&[4, 3], 1, DType::F32);
        let w = Var::from_tensor(&random(&[5, 2], 2, DType::F32)).unwrap();
        assert!(dense(&x, &w, None, false).is_err());
        let w = Var::from_tensor(&random(&[3, 2], 2, DType::F32)).unwrap();
        assert!(dense(&x, &w, Some(&random(&[3], 3, DType::F32)), false).is_err());
        // Mixed dtypes take the plain path, which rejects them.
        assert!(dense(&x.to_dtype(DType::F64).unwrap(), &w, None, false).is_err());
        // Empty batches and zero features give empty or zero outputs.
        let y = dense(&random(&[0, 3], 1, DType::F32), &w, None, true).unwrap();
        assert_eq!(y.dims(), &[0, 2]);
        let w0 = Var::from_tensor(&random(&[0, 2], 2, DType::F32)).unwrap();
        let b = Var::from_tensor(&random(&[2], 3, DType::F32)).unwrap();
        let y = dense(&random(&[4, 0], 1, DType::F32), &w0, Some(&b), false).unwrap();
        assert_eq!(flat(&y), flat(b.as_tensor()).repeat(4));
        let _ = Device::Cpu;
    }
}
