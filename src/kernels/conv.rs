//! 2D convolution on channels-last (NHWC) tensors as im2col + one gemm, with
//! its own backward: candle's conv2d wants NCHW (a permute each way) and its
//! input gradient is a direct conv_transpose2d loop (~11 GFLOP/s), computed
//! even for the data tensor.
//!
//! Forward: col (B*OH*OW, KH*KW*C) @ kernel (KH*KW*C, F) + bias, then relu
//! if asked; the Keras kernel layout (kh, kw, in, out) already is that matrix.
//! Bias and relu are fused: candle's broadcast_add backward (a strided sum over
//! three axes) cost more than the convolution. Backward, with dZ = dY masked
//! by y > 0 (Keras: relu'(0) = 0): dK = col^T @ dZ, db = column sums of dZ,
//! dX = col2im(dZ @ K^T), skipped when X needs no gradient.
//! f32 runs on the gemm crate; f64 (finite-difference tests) on a plain loop.

use super::host::{Host, Real, slice};
use super::mat::Mat;
use super::pool;
use super::window::{Axis, Padding};
use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor, bail};
use std::any::{Any, TypeId};
use std::cell::RefCell;

/// Everything a conv kernel needs to know about its shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geom {
    pub b: usize,
    pub c: usize,
    pub f: usize,
    pub h: Axis,
    pub w: Axis,
}

impl Geom {
    fn rows(&self) -> usize {
        self.b * self.h.out * self.w.out
    }
    /// Columns of col: one per (kh, kw, c).
    fn taps(&self) -> usize {
        self.h.k * self.w.k * self.c
    }
    fn x_len(&self) -> usize {
        self.b * self.h.len * self.w.len * self.c
    }
    /// A 1x1 kernel with stride 1 and no padding: col is the input itself.
    fn pointwise(&self) -> bool {
        let id = |a: &Axis| a.k == 1 && a.stride == 1 && a.before == 0 && a.out == a.len;
        id(&self.h) && id(&self.w)
    }
}

/// Whether `conv2d` below can run on `x` (else use plain candle ops).
pub fn supports(x: &Tensor) -> bool {
    x.device().is_cpu() && matches!(x.dtype(), DType::F32 | DType::F64)
}

/// Conv2D of `x` (B, H, W, C) with a Keras kernel (KH, KW, C, F), plus
/// `bias` (F) if given, then relu if `relu`: (B, OH, OW, F). Padding is
/// Keras's valid, same or causal (per axis). `train`: a backward pass will
/// follow, so the im2col matrix is kept for the kernel gradient instead of
/// being built again. With `pool`, that pooling follows in the same op
/// (`ConvPoolOp`) and its output is returned.
#[allow(clippy::too_many_arguments)]
pub fn conv2d(
    x: &Tensor,
    kernel: &Tensor,
    bias: Option<&Tensor>,
    relu: bool,
    strides: [usize; 2],
    dilation: [usize; 2],
    padding: Padding,
    train: bool,
    pool: Option<Pool>,
) -> Result<Tensor> {
    let (b, h, w, c) = x.dims4()?;
    let (kh, kw, kc, f) = kernel.dims4()?;
    if kc != c {
        bail!("conv2d: kernel takes {kc} input channels, the input has {c}");
    }
    let bias = match bias {
        Some(t) => t.clone(),
        None => Tensor::zeros(f, x.dtype(), x.device())?,
    };
    if bias.dims() != [f] {
        bail!("conv2d: bias has shape {:?}, expected ({f},)", bias.dims());
    }
    if x.dtype() != kernel.dtype() || x.dtype() != bias.dtype() {
        bail!("conv2d: input is {:?}, kernel {:?}, bias {:?}", x.dtype(), kernel.dtype(), bias.dtype());
    }
    let g = Geom { b, c, f, h: Axis::new(h, kh, strides[0], dilation[0], padding)?, w: Axis::new(w, kw, strides[1], dilation[1], padding)? };
    // Recorded now: the data batch (no variable, no op) needs no gradient.
    let need_dk = kernel.track_op();
    let cols = (train && need_dk && !g.pointwise()).then(Cols::default);
    let op = Conv2dOp { g, relu, need_dx: x.track_op(), need_dk, need_db: bias.track_op(), cols };
    match pool {
        None => x.contiguous()?.apply_op3(&kernel.contiguous()?, &bias.contiguous()?, op),
        Some(p) => {
            let pg = pool::Geom::new([b, g.h.out, g.w.out, f], p.size, p.strides, p.padding, p.max)?;
            // A training forward keeps each output's first-maximum tap where
            // that is enough for the backward, else the conv output.
            let taps = (train && pg.by_taps()).then(Default::default);
            let kept = (train && taps.is_none()).then(Default::default);
            x.contiguous()?.apply_op3(&kernel.contiguous()?, &bias.contiguous()?, ConvPoolOp { conv: op, pool: pg, y: kept, taps })
        }
    }
}

/// A 2D pooling to fuse after a convolution.
#[derive(Clone, Copy, Debug)]
pub struct Pool {
    pub size: [usize; 2],
    pub strides: [usize; 2],
    pub padding: Padding,
    pub max: bool,
}

thread_local! {
    /// The im2col matrices (9 MB for the second mnist_cnn conv) are rebuilt
    /// every step: reusing one buffer per thread saves an allocation and a
    /// memset each time. It keeps the largest size seen.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on a buffer of `n` elements with unspecified contents: for f32
/// this thread's scratch buffer, else a fresh one.
fn with_scratch<T: Real, R>(n: usize, f: impl FnOnce(&mut [T]) -> R) -> R {
    if TypeId::of::<T>() != TypeId::of::<f32>() {
        return f(&mut vec![T::zero(); n]);
    }
    SCRATCH.with(|s| {
        let Ok(mut guard) = s.try_borrow_mut() else {
            // Already lent out further up the stack: a fresh buffer.
            return f(&mut vec![T::zero(); n]);
        };
        let buf = (&mut *guard as &mut dyn Any).downcast_mut::<Vec<T>>().expect("T is f32");
        if buf.len() < n {
            buf.resize(n, T::zero());
        }
        f(&mut buf[..n])
    })
}

/// A buffer of `n` elements with unspecified (finite or not) contents, for
/// outputs that are written whole: for f32 a spare one (`spare`).
fn buffer<T: Real>(n: usize) -> Vec<T> {
    let mut v = Vec::new();
    match (&mut v as &mut dyn Any).downcast_mut::<Vec<f32>>() {
        Some(v) => *v = spare(n),
        None => v = vec![T::zero(); n],
    }
    v
}

fn check_len(what: &str, got: usize, want: usize) -> Result<()> {
    if got != want {
        bail!("{what}: expected {want} elements, received {got}");
    }
    Ok(())
}

/// Runs `f(sample, x of the sample, its rows of out)` for every sample, on
/// the kernels' pool when there is enough to copy. Samples touch disjoint
/// memory, so the result doesn't depend on the split.
fn per_sample<T: Real, X: Sync + ?Sized>(g: &Geom, x: &X, out: &mut [T], f: impl Fn(usize, &X, &mut [T]) + Sync) {
    let per = out.len() / g.b.max(1);
    if per == 0 {
        return;
    }
    // The copies and adds vectorize at the level's width (f is inline(always)).
    let level = super::cpu::level();
    let f = |i: usize, o: &mut [T]| {
        super::cpu::at_level(
            level,
            #[inline(always)]
            || f(i, x, o),
        )
    };
    if out.len() < 1 << 16 {
        out.chunks_mut(per).enumerate().for_each(|(i, o)| f(i, o));
    } else {
        super::par::pieces(out, per, f);
    }
}

/// Rows (b, oy, ox) x columns (ky, kx, c) of the input windows; padding is 0.
fn im2col<T: Real>(x: &[T], g: &Geom, col: &mut [T]) {
    let (c, kw) = (g.c, g.w.k);
    let zero = T::from_f64(0.0);
    let image = g.h.len * g.w.len * c;
    per_sample(
        g,
        x,
        &mut col[..g.rows() * g.taps()],
        #[inline(always)]
        |bi, x, col| {
            let img = &x[bi * image..(bi + 1) * image];
            let (taps, span, line_len) = (g.taps(), kw * c, g.w.len * c);
            for oy in 0..g.h.out {
                let rows_dense = g.h.dense_run(oy);
                for ox in 0..g.w.out {
                    let at = (oy * g.w.out + ox) * taps;
                    let Some(row) = col.get_mut(at..at + taps) else { return };
                    // A window inside the image: kh runs of kw * c values, a
                    // line apart (no per-tap arithmetic: it was most of the time).
                    if let (Some(iy), Some(ix)) = (rows_dense, g.w.dense_run(ox)) {
                        let mut src = iy * line_len + ix * c;
                        for dst in row.chunks_exact_mut(span.max(1)) {
                            copy_run(dst, &img[src..src + span]);
                            src += line_len;
                        }
                        continue;
                    }
                    for (ky, dst) in row.chunks_exact_mut(span.max(1)).enumerate() {
                        let Some(iy) = g.h.src(oy, ky) else {
                            dst.fill(zero);
                            continue;
                        };
                        let line = &img[iy * g.w.len * c..(iy + 1) * g.w.len * c];
                        if let Some(ix) = g.w.dense_run(ox) {
                            copy_run(dst, &line[ix * c..(ix + kw) * c]);
                            continue;
                        }
                        for (kx, cell) in dst.chunks_exact_mut(c).enumerate() {
                            match g.w.src(ox, kx) {
                                Some(ix) => copy_run(cell, &line[ix * c..(ix + 1) * c]),
                                None => cell.fill(zero),
                            }
                        }
                    }
                }
            }
        },
    );
}

/// `dst.copy_from_slice(src)`, with the short runs of few-channel inputs
/// (a 3x3 kernel over one channel copies 3 values a row) as inline moves:
/// a call to memcpy per run was 6-11% of ocr_crnn's training time.
#[inline(always)]
fn copy_run<T: Copy>(dst: &mut [T], src: &[T]) {
    macro_rules! fixed {
        ($($n:literal)*) => {
            match dst.len() {
                $($n => {
                    let (d, s): (&mut [T; $n], &[T; $n]) = (dst.try_into().expect("len"), src.try_into().expect("same length"));
                    *d = *s;
                })*
                _ => dst.copy_from_slice(src),
            }
        };
    }
    fixed!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16)
}

/// The adjoint of im2col: adds every column entry back onto its input cell.
fn col2im<T: Real>(col: &[T], g: &Geom, dx: &mut [T]) {
    let (c, kw) = (g.c, g.w.k);
    let per_rows = g.h.out * g.w.out * g.taps();
    per_sample(
        g,
        col,
        &mut dx[..g.x_len()],
        #[inline(always)]
        |bi, col, img| {
            let mut rows = col[bi * per_rows..(bi + 1) * per_rows].chunks_exact(g.taps());
            for oy in 0..g.h.out {
                for ox in 0..g.w.out {
                    let Some(row) = rows.next() else { return };
                    for (ky, src) in row.chunks_exact(kw * c).enumerate() {
                        let Some(iy) = g.h.src(oy, ky) else { continue };
                        let line = &mut img[iy * g.w.len * c..(iy + 1) * g.w.len * c];
                        if let Some(ix) = g.w.dense_run(ox) {
                            add(&mut line[ix * c..(ix + kw) * c], src);
                            continue;
                        }
                        for (kx, cell) in src.chunks_exact(c).enumerate() {
                            if let Some(ix) = g.w.src(ox, kx) {
                                add(&mut line[ix * c..(ix + 1) * c], cell);
                            }
                        }
                    }
                }
            }
        },
    );
}

#[inline]
fn add<T: Real>(dst: &mut [T], src: &[T]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d += *s;
    }
}

/// Runs `f` on the im2col matrix of `x` (`x` itself for a 1x1 kernel).
fn with_columns<T: Real, R>(x: &[T], g: &Geom, f: impl FnOnce(&[T]) -> R) -> R {
    if g.pointwise() {
        return f(x);
    }
    with_scratch(g.rows() * g.taps(), |col| {
        im2col(x, g, col);
        f(col)
    })
}

/// im2col matrices are built a run of samples at a time, each at most this
/// big: the gemm then reads them back from cache, and the scratch buffer
/// stays small however large the batch (an evaluation batch of 256 OCR
/// images would need 231 MB at once).
const CHUNK_BYTES: usize = 4 << 20;

/// The batch as runs of whole samples: (first sample, the run's geometry).
/// A run's im2col matrix and its output both stay under CHUNK_BYTES (the
/// first conv's output is 3.5x its im2col matrix), so the bias and relu
/// pass after each run's product finds the output in cache.
fn sample_runs(g: &Geom) -> impl Iterator<Item = (usize, Geom)> + '_ {
    let per_sample = (g.h.out * g.w.out * g.taps().max(g.f) * 4).max(1);
    let n = (CHUNK_BYTES / per_sample).clamp(1, g.b.max(1));
    (0..g.b).step_by(n).map(move |s| (s, Geom { b: n.min(g.b - s), ..*g }))
}

/// The im2col matrix of a training step's forward pass, kept for its
/// backward pass (f32 only; taken by the kernel gradient, which hands the
/// buffer back for the next step's forward pass).
type Cols = std::sync::Arc<std::sync::Mutex<Option<Vec<f32>>>>;

/// Buffers of kept im2col matrices and conv outputs, back from the backward
/// pass. A fresh one per step costs a zero-fill of its whole size (9 MB for
/// mnist_cnn's second conv's im2col) before the kernel writes every value.
static SPARE: std::sync::Mutex<Vec<Vec<f32>>> = std::sync::Mutex::new(Vec::new());

/// A buffer of `n` values: the smallest spare one that holds them, else new.
/// Its values are whatever it held before.
fn spare(n: usize) -> Vec<f32> {
    let mut spare = SPARE.lock().unwrap_or_else(|e| e.into_inner());
    let best = spare.iter().enumerate().filter(|(_, v)| v.capacity() >= n).min_by_key(|(_, v)| v.capacity()).map(|(i, _)| i);
    let mut v = best.map(|i| spare.swap_remove(i)).unwrap_or_default();
    v.resize(n, 0.0);
    v
}

/// Keeps a few buffers (two per conv layer of a small net, 64 MB in all at
/// most); frees the rest.
fn give_back(v: Vec<f32>) {
    const MAX_FLOATS: usize = 16 << 20;
    let mut spare = SPARE.lock().unwrap_or_else(|e| e.into_inner());
    let held: usize = spare.iter().map(Vec::capacity).sum();
    if spare.len() < 6 && held + v.capacity() <= MAX_FLOATS {
        spare.push(v);
    }
}

/// Adds the bias to every row of `y` and applies the relu.
#[inline(always)]
fn epilogue<T: Real>(y: &mut [T], bias: &[T], relu: bool, f: usize) {
    let zero = T::from_f64(0.0);
    for row in y.chunks_exact_mut(f) {
        if relu {
            row.iter_mut().zip(bias).for_each(|(v, &b)| {
                let z = *v + b;
                *v = if z > zero { z } else { zero };
            });
        } else {
            row.iter_mut().zip(bias).for_each(|(v, &b)| *v += b);
        }
    }
}

/// `keep`: leave the whole batch's im2col matrix there (built a run at a time,
/// each just before its product).
fn forward<T: Real>(x: &[T], k: &[T], bias: &[T], relu: bool, g: &Geom, keep: Option<&mut Vec<T>>) -> Vec<T> {
    // Every value is written by a gemm that doesn't read it.
    let mut y = buffer::<T>(g.rows() * g.f);
    let (image, out) = (g.h.len * g.w.len * g.c, g.h.out * g.w.out * g.f);
    // Bias and relu in one pass; selects, not branches (signs are random),
    // at the level's vector width.
    let level = super::cpu::level();
    let epilogue = |y: &mut [T]| {
        super::cpu::at_level(
            level,
            #[inline(always)]
            || epilogue(y, bias, relu, g.f),
        )
    };
    if let Some(col) = keep {
        col.resize(g.rows() * g.taps(), T::from_f64(0.0));
        // A run's columns, then its product, while they are in cache.
        for (s, r) in sample_runs(g) {
            let (at, len) = (s * g.h.out * g.w.out * g.taps(), r.rows() * r.taps());
            im2col(&x[s * image..(s + r.b) * image], &r, &mut col[at..at + len]);
            let cols = Mat::new(&col[at..at + len], r.rows(), r.taps());
            let y = &mut y[s * out..(s + r.b) * out];
            T::matmul(y, cols, Mat::new(k, r.taps(), r.f), false);
            epilogue(y);
        }
    } else {
        for (s, r) in sample_runs(g) {
            let (x, y) = (&x[s * image..(s + r.b) * image], &mut y[s * out..(s + r.b) * out]);
            with_columns(x, &r, |col| T::matmul(y, Mat::new(col, r.rows(), r.taps()), Mat::new(k, r.taps(), r.f), false));
            epilogue(y);
        }
    }
    y
}

/// dK (KH*KW*C, F) = col^T @ dY, summed over the runs of samples; `kept`:
/// the forward pass's im2col matrix.
fn grad_kernel<T: Real>(x: &[T], dy: &[T], g: &Geom, kept: Option<&[T]>) -> Vec<T> {
    let mut dk = vec![T::from_f64(0.0); g.taps() * g.f];
    if let Some(col) = kept {
        T::matmul(&mut dk, Mat::new(col, g.rows(), g.taps()).t(), Mat::new(dy, g.rows(), g.f), false);
        return dk;
    }
    let (image, out) = (g.h.len * g.w.len * g.c, g.h.out * g.w.out * g.f);
    for (s, r) in sample_runs(g) {
        let (x, dy) = (&x[s * image..(s + r.b) * image], &dy[s * out..(s + r.b) * out]);
        with_columns(x, &r, |col| T::matmul(&mut dk, Mat::new(col, r.rows(), r.taps()).t(), Mat::new(dy, r.rows(), r.f), s > 0));
    }
    dk
}

/// dX = col2im(dY @ K^T).
fn grad_input<T: Real>(dy: &[T], k: &[T], g: &Geom) -> Vec<T> {
    let dcol_of = |dcol: &mut [T], dy: &[T], r: &Geom| T::matmul(dcol, Mat::new(dy, r.rows(), r.f), Mat::new(k, r.taps(), r.f).t(), false);
    let mut dx = vec![T::from_f64(0.0); g.x_len()];
    if g.pointwise() {
        dcol_of(&mut dx, dy, g);
        return dx;
    }
    let (image, out) = (g.h.len * g.w.len * g.c, g.h.out * g.w.out * g.f);
    for (s, r) in sample_runs(g) {
        let (dy, dx) = (&dy[s * out..(s + r.b) * out], &mut dx[s * image..(s + r.b) * image]);
        with_scratch(r.rows() * r.taps(), |dcol| {
            dcol_of(dcol, dy, &r);
            col2im(dcol, &r, dx);
        });
    }
    dx
}

/// Runs `f` on the two arguments as slices of one float type.
fn dispatch2(
    what: &str,
    s1: &CpuStorage,
    l1: &Layout,
    s2: &CpuStorage,
    l2: &Layout,
    f32_fn: impl FnOnce(&[f32], &[f32]) -> Result<Vec<f32>>,
    f64_fn: impl FnOnce(&[f64], &[f64]) -> Result<Vec<f64>>,
) -> Result<CpuStorage> {
    match (s1.dtype(), s2.dtype()) {
        (DType::F32, DType::F32) => Ok(CpuStorage::F32(f32_fn(slice(s1, l1, what)?, slice(s2, l2, what)?)?)),
        (DType::F64, DType::F64) => Ok(CpuStorage::F64(f64_fn(slice(s1, l1, what)?, slice(s2, l2, what)?)?)),
        (a, b) => bail!("{what}: unsupported dtypes {a:?} and {b:?}"),
    }
}

/// The forward op: (x, kernel, bias) -> y.
#[derive(Clone, Debug)]
struct Conv2dOp {
    g: Geom,
    relu: bool,
    need_dx: bool,
    need_dk: bool,
    need_db: bool,
    cols: Option<Cols>,
}

impl CustomOp3 for Conv2dOp {
    fn name(&self) -> &'static str {
        "nnrun-conv2d"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout, s3: &CpuStorage, l3: &Layout) -> Result<(CpuStorage, Shape)> {
        let (g, relu) = (self.g, self.relu);
        check_len("conv2d input", l1.shape().elem_count(), g.x_len())?;
        check_len("conv2d kernel", l2.shape().elem_count(), g.taps() * g.f)?;
        check_len("conv2d bias", l3.shape().elem_count(), g.f)?;
        let s = match (s1.dtype(), s2.dtype(), s3.dtype()) {
            (DType::F32, DType::F32, DType::F32) => {
                let (x, k, b) = (slice(s1, l1, "conv2d")?, slice(s2, l2, "conv2d")?, slice(s3, l3, "conv2d")?);
                let mut kept = self.cols.as_ref().map(|_| spare(g.rows() * g.taps()));
                let y = forward::<f32>(x, k, b, relu, &g, kept.as_mut());
                if let (Some(cols), Some(col)) = (&self.cols, kept) {
                    *cols.lock().unwrap_or_else(|e| e.into_inner()) = Some(col);
                }
                CpuStorage::F32(y)
            }
            (DType::F64, DType::F64, DType::F64) => {
                let (x, k, b) = (slice(s1, l1, "conv2d")?, slice(s2, l2, "conv2d")?, slice(s3, l3, "conv2d")?);
                CpuStorage::F64(forward::<f64>(x, k, b, relu, &g, None))
            }
            (a, b, c) => bail!("conv2d: unsupported dtypes {a:?}, {b:?}, {c:?}"),
        };
        Ok((s, Shape::from_dims(&[g.b, g.h.out, g.w.out, g.f])))
    }

    fn bwd(&self, x: &Tensor, k: &Tensor, _b: &Tensor, y: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dy = dy.contiguous()?;
        let dz = if self.relu { y.apply_op2_no_bwd(&dy, &ReluMask)? } else { dy };
        self.grads(x, k, &dz)
    }
}

impl Conv2dOp {
    /// The gradients from `dz`, the output gradient already through the relu.
    #[allow(clippy::type_complexity)]
    fn grads(&self, x: &Tensor, k: &Tensor, dz: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dx = if self.need_dx { Some(dz.apply_op2_no_bwd(k, &GradInput(self.g))?) } else { None };
        let dk = if self.need_dk { Some(x.apply_op2_no_bwd(dz, &GradKernel(self.g, self.cols.clone()))?) } else { None };
        let db = if self.need_db { Some(dz.apply_op1_no_bwd(&GradBias(self.g))?) } else { None };
        Ok((dx, dk, db))
    }
}

/// (x, kernel, bias) -> pooled conv output: Conv2D then 2D pooling as one
/// op, so the convolution's output never becomes a graph node and candle's
/// backward doesn't zero a gradient buffer the size of it and add the
/// pooling's gradient into it. The steps and numbers are the two ops'.
#[derive(Clone, Debug)]
struct ConvPoolOp {
    conv: Conv2dOp,
    pool: pool::Geom,
    /// The convolution's output, kept by a training forward for backward.
    y: Option<std::sync::Arc<std::sync::Mutex<Option<CpuStorage>>>>,
    /// Instead of it, for a max pooling that `by_taps()`: each pooled
    /// output's first-maximum tap, the relu folded in (a byte per output; the
    /// backward then never reads the conv output, 5.5 MB a step for
    /// mnist_cnn's first conv, again).
    taps: Option<std::sync::Arc<std::sync::Mutex<Option<Vec<u8>>>>>,
}

impl CustomOp3 for ConvPoolOp {
    fn name(&self) -> &'static str {
        "nnrun-conv2d-pool"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout, s3: &CpuStorage, l3: &Layout) -> Result<(CpuStorage, Shape)> {
        let (y, _) = self.conv.cpu_fwd(s1, l1, s2, l2, s3, l3)?;
        if let Some(keep) = &self.taps {
            let (pooled, taps) = match y {
                CpuStorage::F32(v) => {
                    let (p, t) = pool::forward_taps(&v, &self.pool, self.conv.relu);
                    give_back(v);
                    (CpuStorage::F32(p), t)
                }
                CpuStorage::F64(v) => {
                    let (p, t) = pool::forward_taps(&v, &self.pool, self.conv.relu);
                    (CpuStorage::F64(p), t)
                }
                _ => bail!("conv2d: unsupported dtype"),
            };
            *keep.lock().unwrap_or_else(|e| e.into_inner()) = Some(taps);
            return Ok((pooled, Shape::from_dims(&self.pool.out_dims())));
        }
        let pooled = match &y {
            CpuStorage::F32(v) => CpuStorage::F32(pool::forward(v, &self.pool)),
            CpuStorage::F64(v) => CpuStorage::F64(pool::forward(v, &self.pool)),
            _ => bail!("conv2d: unsupported dtype"),
        };
        match (&self.y, y) {
            (Some(keep), y) => *keep.lock().unwrap_or_else(|e| e.into_inner()) = Some(y),
            (None, CpuStorage::F32(v)) => give_back(v),
            _ => {}
        }
        Ok((pooled, Shape::from_dims(&self.pool.out_dims())))
    }

    fn bwd(&self, x: &Tensor, k: &Tensor, b: &Tensor, res: &Tensor, grad_res: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g = self.conv.g;
        let dims = (g.b, g.h.out, g.w.out, g.f);
        let taps = self.taps.as_ref().and_then(|t| t.lock().unwrap_or_else(|e| e.into_inner()).take());
        if let Some(taps) = taps.filter(|t| t.len() == self.pool.out_dims().iter().product::<usize>()) {
            let grad_res = grad_res.contiguous()?;
            let gr = Host::of(&grad_res)?;
            let dz = match grad_res.dtype() {
                DType::F32 => Tensor::from_vec(pool::backward_from_taps(&taps, gr.slice::<f32>()?, &self.pool), dims, x.device())?,
                DType::F64 => Tensor::from_vec(pool::backward_from_taps(&taps, gr.slice::<f64>()?, &self.pool), dims, x.device())?,
                d => bail!("conv2d backward: unsupported dtype {d:?}"),
            };
            return self.conv.grads(x, k, &dz);
        }
        let kept = self.y.as_ref().and_then(|y| y.lock().unwrap_or_else(|e| e.into_inner()).take());
        let pool_grad = pool::Pool2dGrad { g: self.pool, relu: self.conv.relu };
        if let Some(CpuStorage::F32(y)) = kept {
            // On the host: the conv output's buffer goes back for the next step.
            let grad_res = grad_res.contiguous()?;
            let (r, gr) = (Host::of(res)?, Host::of(&grad_res)?);
            let dz = pool_grad.run(&y, r.slice::<f32>()?, gr.slice::<f32>()?)?;
            give_back(y);
            return self.conv.grads(x, k, &Tensor::from_vec(dz, dims, x.device())?);
        }
        let y = match kept {
            Some(CpuStorage::F32(v)) => Tensor::from_vec(v, dims, x.device())?,
            Some(CpuStorage::F64(v)) => Tensor::from_vec(v, dims, x.device())?,
            // Not a training forward (or already used): compute it again.
            _ => x.apply_op3_no_bwd(k, b, &Conv2dOp { cols: None, ..self.conv.clone() })?,
        };
        // Through the pooling and the relu in one pass.
        let dz = y.apply_op3_no_bwd(res, &grad_res.contiguous()?, &pool_grad)?;
        self.conv.grads(x, k, &dz)
    }
}

/// (y, dy) -> dy where y > 0, else 0.
struct ReluMask;

impl CustomOp2 for ReluMask {
    fn name(&self) -> &'static str {
        "nnrun-relu-mask"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        check_len("relu gradient", l2.shape().elem_count(), l1.shape().elem_count())?;
        fn mask<T: Real>(y: &[T], dy: &[T]) -> Result<Vec<T>> {
            let zero = T::from_f64(0.0);
            Ok(y.iter().zip(dy).map(|(&y, &d)| if y > zero { d } else { zero }).collect())
        }
        let s = dispatch2("relu gradient", s1, l1, s2, l2, mask::<f32>, mask::<f64>)?;
        Ok((s, l1.shape().clone()))
    }
}

/// dz (rows, F) -> db (F): column sums.
struct GradBias(Geom);

impl CustomOp1 for GradBias {
    fn name(&self) -> &'static str {
        "nnrun-conv2d-grad-bias"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        check_len("conv2d output gradient", l.shape().elem_count(), g.rows() * g.f)?;
        #[inline(always)]
        fn sums<T: Real>(dz: &[T], f: usize) -> Vec<T> {
            let mut db = vec![T::from_f64(0.0); f];
            for row in dz.chunks_exact(f) {
                add(&mut db, row);
            }
            db
        }
        let out = match s.dtype() {
            DType::F32 => {
                let dz = slice::<f32>(s, l, "conv2d")?;
                CpuStorage::F32(super::cpu::at_level(
                    super::cpu::level(),
                    #[inline(always)]
                    || sums(dz, g.f),
                ))
            }
            DType::F64 => {
                let dz = slice::<f64>(s, l, "conv2d")?;
                CpuStorage::F64(super::cpu::at_level(
                    super::cpu::level(),
                    #[inline(always)]
                    || sums(dz, g.f),
                ))
            }
            d => bail!("conv2d backward: unsupported dtype {d:?}"),
        };
        Ok((out, Shape::from_dims(&[g.f])))
    }
}

/// (dy, kernel) -> dx.
struct GradInput(Geom);

impl CustomOp2 for GradInput {
    fn name(&self) -> &'static str {
        "nnrun-conv2d-grad-input"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        check_len("conv2d output gradient", l1.shape().elem_count(), g.rows() * g.f)?;
        check_len("conv2d kernel", l2.shape().elem_count(), g.taps() * g.f)?;
        let s = dispatch2("conv2d backward", s1, l1, s2, l2, |dy, k| Ok(grad_input(dy, k, &g)), |dy, k| Ok(grad_input(dy, k, &g)))?;
        Ok((s, Shape::from_dims(&[g.b, g.h.len, g.w.len, g.c])))
    }
}

/// (x, dy) -> dkernel, from the kept im2col matrix when there is one.
struct GradKernel(Geom, Option<Cols>);

impl CustomOp2 for GradKernel {
    fn name(&self) -> &'static str {
        "nnrun-conv2d-grad-kernel"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        check_len("conv2d input", l1.shape().elem_count(), g.x_len())?;
        check_len("conv2d output gradient", l2.shape().elem_count(), g.rows() * g.f)?;
        let kept = self.1.as_ref().and_then(|c| c.lock().unwrap_or_else(|e| e.into_inner()).take()).filter(|c| c.len() == g.rows() * g.taps());
        let s = dispatch2("conv2d backward", s1, l1, s2, l2, |x, dy| Ok(grad_kernel(x, dy, &g, kept.as_deref())), |x, dy| Ok(grad_kernel(x, dy, &g, None)))?;
        if let Some(cols) = kept {
            give_back(cols);
        }
        Ok((s, Shape::from_dims(&[g.h.k, g.w.k, g.c, g.f])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};
    use rand::{Rng, SeedableRng, rngs::StdRng};

    fn random(dims: &[usize], seed: u64) -> Vec<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..dims.iter().product()).map(|_| rng.random_range(-1.0..1.0)).collect()
    }

    /// The convolution straight from its definition, in f64.
    fn naive(x: &[f64], k: &[f64], g: &Geom) -> Vec<f64> {
        let (c, f) = (g.c, g.f);
        let mut y = vec![0.0; g.rows() * f];
        for bi in 0..g.b {
            for oy in 0..g.h.out {
                for ox in 0..g.w.out {
                    for fo in 0..f {
                        let mut s = 0.0;
                        for ky in 0..g.h.k {
                            for kx in 0..g.w.k {
                                let iy = (oy * g.h.stride + ky * g.h.dil) as isize - g.h.before as isize;
                                let ix = (ox * g.w.stride + kx * g.w.dil) as isize - g.w.before as isize;
                                if iy < 0 || ix < 0 || iy >= g.h.len as isize || ix >= g.w.len as isize {
                                    continue;
                                }
                                for ci in 0..c {
                                    let xv = x[((bi * g.h.len + iy as usize) * g.w.len + ix as usize) * c + ci];
                                    s += xv * k[((ky * g.w.k + kx) * c + ci) * f + fo];
                                }
                            }
                        }
                        y[((bi * g.h.out + oy) * g.w.out + ox) * f + fo] = s;
                    }
                }
            }
        }
        y
    }

    /// x dims, kernel, strides, dilation, padding, filters.
    type Case = (&'static [usize; 4], [usize; 2], [usize; 2], [usize; 2], Padding, usize);

    const CASES: &[Case] = &[
        (&[2, 7, 5, 3], [3, 3], [1, 1], [1, 1], Padding::Valid, 4),
        (&[2, 7, 5, 3], [3, 3], [1, 1], [1, 1], Padding::Same, 2),
        (&[3, 7, 6, 2], [3, 3], [2, 2], [1, 1], Padding::Same, 3),
        (&[1, 8, 9, 2], [2, 3], [2, 3], [1, 1], Padding::Valid, 2),
        (&[2, 6, 7, 2], [2, 3], [1, 3], [1, 1], Padding::Same, 2),
        (&[2, 7, 6, 2], [3, 3], [1, 1], [2, 2], Padding::Valid, 2),
        (&[2, 6, 5, 2], [3, 2], [1, 1], [2, 1], Padding::Same, 3),
        (&[2, 9, 1, 2], [3, 1], [2, 1], [1, 1], Padding::Causal, 3),
        (&[2, 4, 5, 3], [1, 1], [1, 1], [1, 1], Padding::Valid, 2),
        (&[2, 5, 4, 3], [1, 1], [2, 1], [1, 1], Padding::Same, 2),
        (&[5, 30, 29, 8], [3, 3], [1, 1], [1, 1], Padding::Same, 4),
        // 1.2 MB of im2col per sample: built in runs of 3 and 2 samples.
        (&[5, 64, 64, 8], [3, 3], [1, 1], [1, 1], Padding::Same, 2),
    ];

    fn geom(x: &[usize; 4], k: [usize; 2], s: [usize; 2], d: [usize; 2], p: Padding, f: usize) -> Geom {
        let h = Axis::new(x[1], k[0], s[0], d[0], p).unwrap();
        let w = Axis::new(x[2], k[1], s[1], d[1], p).unwrap();
        Geom { b: x[0], c: x[3], f, h, w }
    }

    #[test]
    fn batches_split_into_runs_of_whole_samples() {
        let g = geom(&[5, 64, 64, 8], [3, 3], [1, 1], [1, 1], Padding::Same, 2);
        let runs: Vec<(usize, usize)> = sample_runs(&g).map(|(s, r)| (s, r.b)).collect();
        assert_eq!(runs, [(0, 3), (3, 2)]);
        let small = geom(&[2, 7, 5, 3], [3, 3], [1, 1], [1, 1], Padding::Valid, 4);
        assert_eq!(sample_runs(&small).map(|(s, r)| (s, r.b)).collect::<Vec<_>>(), [(0, 2)]);
    }

    #[test]
    fn kept_columns_give_the_same_results() {
        for &(xd, k, s, d, p, f) in &CASES[CASES.len() - 2..] {
            let g = geom(xd, k, s, d, p, f);
            let x: Vec<f32> = random(xd, 1).iter().map(|&v| v as f32).collect();
            let kern: Vec<f32> = random(&[k[0], k[1], xd[3], f], 2).iter().map(|&v| v as f32).collect();
            let dy: Vec<f32> = random(&[g.rows(), f], 3).iter().map(|&v| v as f32).collect();
            let mut col = Vec::new();
            let y = forward(&x, &kern, &vec![0.5; f], true, &g, Some(&mut col));
            assert_eq!(y, forward(&x, &kern, &vec![0.5; f], true, &g, None));
            assert_eq!(col.len(), g.rows() * g.taps());
            let (kept, rebuilt) = (grad_kernel(&x, &dy, &g, Some(&col)), grad_kernel(&x, &dy, &g, None));
            assert!(kept.iter().zip(&rebuilt).all(|(a, b)| (a - b).abs() <= 1e-3 * (1.0 + b.abs())), "{xd:?}");
        }
        // Through the op: a training forward keeps them, the backward takes them.
        let dev = Device::Cpu;
        let kv = Var::from_vec(random(&[3, 3, 2, 4], 1).iter().map(|&v| v as f32).collect::<Vec<_>>(), (3, 3, 2, 4), &dev).unwrap();
        let x = Tensor::from_vec(random(&[2, 6, 5, 2], 2).iter().map(|&v| v as f32).collect::<Vec<_>>(), (2, 6, 5, 2), &dev).unwrap();
        let grad = |train: bool| {
            let y = conv2d(&x, kv.as_tensor(), None, true, [1, 1], [1, 1], Padding::Same, train, None).unwrap();
            let g = y.sqr().unwrap().sum_all().unwrap().backward().unwrap();
            g.get(kv.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap()
        };
        assert_eq!(grad(true), grad(false));
    }

    #[test]
    fn forward_matches_the_definition() {
        // im2col is compiled per level: every path the CPU runs.
        for level in super::super::cpu::runnable() {
            super::super::cpu::with_level(level, forward_matches_the_definition_at);
        }
    }

    fn forward_matches_the_definition_at() {
        for (i, &(xd, k, s, d, p, f)) in CASES.iter().enumerate() {
            let g = geom(xd, k, s, d, p, f);
            let x = random(xd, i as u64);
            let kern = random(&[k[0], k[1], xd[3], f], 100 + i as u64);
            let want = naive(&x, &kern, &g);
            let got = forward(&x, &kern, &vec![0.0; f], false, &g, None);
            assert!(want.iter().zip(&got).all(|(a, b)| (a - b).abs() < 1e-12), "case {i}");
            // f32 through the gemm crate.
            let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            let k32: Vec<f32> = kern.iter().map(|&v| v as f32).collect();
            let got = forward(&x32, &k32, &vec![0.0; f], false, &g, None);
            assert!(want.iter().zip(&got).all(|(a, b)| (a - *b as f64).abs() < 1e-4), "case {i} f32");
        }
    }

    /// <dY, conv(X, K)> is linear in X and in K, so with a random dY the
    /// gradients must satisfy <dX, X> = <dK, K> = <dY, Y>.
    #[test]
    fn backward_is_the_adjoint_of_forward() {
        // col2im is compiled per level: every path the CPU runs.
        for level in super::super::cpu::runnable() {
            super::super::cpu::with_level(level, backward_is_the_adjoint_at);
        }
    }

    fn backward_is_the_adjoint_at() {
        for (i, &(xd, k, s, d, p, f)) in CASES.iter().enumerate() {
            let g = geom(xd, k, s, d, p, f);
            let x = random(xd, i as u64);
            let kern = random(&[k[0], k[1], xd[3], f], 100 + i as u64);
            let dy = random(&[g.rows(), f], 200 + i as u64);
            let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(a, b)| a * b).sum::<f64>();
            let want = dot(&dy, &forward(&x, &kern, &vec![0.0; f], false, &g, None));
            let via_x = dot(&grad_input(&dy, &kern, &g), &x);
            let via_k = dot(&grad_kernel(&x, &dy, &g, None), &kern);
            assert!((want - via_x).abs() < 1e-9 && (want - via_k).abs() < 1e-9, "case {i}: {want} {via_x} {via_k}");
        }
    }

    #[test]
    fn data_input_gets_no_gradient_but_a_variable_does() {
        let dev = Device::Cpu;
        let k = Var::from_vec(random(&[3, 3, 2, 4], 1), (3, 3, 2, 4), &dev).unwrap();
        let xv = random(&[2, 6, 5, 2], 2);
        let data = Tensor::from_vec(xv.clone(), (2, 6, 5, 2), &dev).unwrap();
        let y = conv2d(&data, k.as_tensor(), None, true, [1, 1], [1, 1], Padding::Same, false, None).unwrap();
        let grads = y.sum_all().unwrap().backward().unwrap();
        assert!(grads.get(&data).is_none());
        assert_eq!(grads.get(k.as_tensor()).unwrap().dims(), &[3, 3, 2, 4]);

        let var = Var::from_vec(xv, (2, 6, 5, 2), &dev).unwrap();
        let y = conv2d(var.as_tensor(), k.as_tensor(), None, false, [1, 1], [1, 1], Padding::Same, false, None).unwrap();
        let grads = y.sum_all().unwrap().backward().unwrap();
        assert_eq!(grads.get(var.as_tensor()).unwrap().dims(), &[2, 6, 5, 2]);
    }

    #[test]
    fn relu_passes_no_gradient_at_zero() {
        // Zero input and bias: every pre-activation is exactly 0 (Keras: relu'(0) = 0;
        // candle's relu backward would pass 1).
        let dev = Device::Cpu;
        let x = Tensor::zeros((1, 4, 4, 1), DType::F32, &dev).unwrap();
        let k = Var::ones((3, 3, 1, 2), DType::F32, &dev).unwrap();
        let b = Var::zeros(2, DType::F32, &dev).unwrap();
        let y = conv2d(&x, k.as_tensor(), Some(b.as_tensor()), true, [1, 1], [1, 1], Padding::Same, false, None).unwrap();
        let g = y.sum_all().unwrap().backward().unwrap();
        assert_eq!(g.get(b.as_tensor()).unwrap().to_vec1::<f32>().unwrap(), vec![0.0, 0.0]);
        // With a positive bias every cell passes its gradient: 16 cells.
        b.set(&Tensor::new(&[1f32, -1.0], &dev).unwrap()).unwrap();
        let y = conv2d(&x, k.as_tensor(), Some(b.as_tensor()), true, [1, 1], [1, 1], Padding::Same, false, None).unwrap();
        let g = y.sum_all().unwrap().backward().unwrap();
        assert_eq!(g.get(b.as_tensor()).unwrap().to_vec1::<f32>().unwrap(), vec![16.0, 0.0]);
    }

    #[test]
    fn bad_shapes_are_errors() {
        let dev = Device::Cpu;
        let x = Tensor::zeros((1, 2, 2, 3), DType::F32, &dev).unwrap();
        let k = Tensor::zeros((3, 3, 3, 1), DType::F32, &dev).unwrap();
        assert!(conv2d(&x, &k, None, false, [1, 1], [1, 1], Padding::Valid, false, None).is_err());
        assert!(conv2d(&x, &k, None, false, [1, 1], [1, 1], Padding::Same, false, None).is_ok());
        assert!(conv2d(&x, &k, None, false, [0, 1], [1, 1], Padding::Same, false, None).is_err());
        let k2 = Tensor::zeros((1, 1, 2, 1), DType::F32, &dev).unwrap();
        assert!(conv2d(&x, &k2, None, false, [1, 1], [1, 1], Padding::Valid, false, None).is_err());
        assert!(conv2d(&x, &k.to_dtype(DType::F64).unwrap(), None, false, [1, 1], [1, 1], Padding::Same, false, None).is_err());
        // Unknown paddings are refused where the spec names them.
        assert!(Padding::parse("full").is_none());
    }

    /// Conv+relu+pool as one op, on each path its backward takes (the kept
    /// first-maximum taps, the kept conv output for overlapping windows, the
    /// conv computed again when the forward wasn't a training one), gives the
    /// two separate ops' numbers, bit for bit.
    #[test]
    fn fused_pooling_matches_the_separate_ops() {
        let dev = Device::Cpu;
        let x = Var::from_vec(random(&[2, 9, 8, 3], 7).iter().map(|&v| v as f32).collect::<Vec<_>>(), (2, 9, 8, 3), &dev).unwrap();
        let k = Var::from_vec(random(&[3, 3, 3, 4], 8).iter().map(|&v| v as f32).collect::<Vec<_>>(), (3, 3, 3, 4), &dev).unwrap();
        let b = Var::from_vec(vec![0.1f32, -0.2, 0.0, 0.3], 4, &dev).unwrap();
        let pools = [
            Pool { size: [2, 2], strides: [2, 2], padding: Padding::Valid, max: true },
            Pool { size: [2, 2], strides: [2, 2], padding: Padding::Same, max: true },
            Pool { size: [3, 3], strides: [2, 2], padding: Padding::Valid, max: true },
            Pool { size: [2, 2], strides: [2, 2], padding: Padding::Valid, max: false },
        ];
        let bits = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        for p in pools {
            let grads = |y: Tensor| {
                // Weighted, so every output's gradient differs.
                let w = Tensor::from_vec((0..y.elem_count()).map(|i| (i % 5) as f32 - 2.0).collect::<Vec<_>>(), y.shape(), &dev).unwrap();
                let g = (&y * w).unwrap().sum_all().unwrap().backward().unwrap();
                [bits(&y), bits(g.get(x.as_tensor()).unwrap()), bits(g.get(k.as_tensor()).unwrap()), bits(g.get(b.as_tensor()).unwrap())]
            };
            let conv = conv2d(x.as_tensor(), k.as_tensor(), Some(b.as_tensor()), true, [1, 1], [1, 1], Padding::Valid, false, None).unwrap();
            let want = grads(pool::pool2d(&conv, p.size, p.strides, p.padding, p.max).unwrap());
            for train in [true, false] {
                let y = conv2d(x.as_tensor(), k.as_tensor(), Some(b.as_tensor()), true, [1, 1], [1, 1], Padding::Valid, train, Some(p)).unwrap();
                assert!(grads(y) == want, "{p:?} train={train}");
            }
        }
    }

    /// `cargo test --release --lib im2col_timing -- --ignored --nocapture`:
    /// mnist_cnn's two im2col matrices at batch 64.
    #[test]
    #[ignore]
    fn im2col_timing() {
        for (xd, f) in [(&[64, 28, 28, 1], 32), (&[64, 13, 13, 32], 64)] {
            let g = geom(xd, [3, 3], [1, 1], [1, 1], Padding::Valid, f);
            let x: Vec<f32> = (0..g.x_len()).map(|i| i as f32).collect();
            let mut col = vec![0f32; g.rows() * g.taps()];
            let mut times: Vec<f64> = (0..50)
                .map(|_| {
                    let t = std::time::Instant::now();
                    im2col(&x, &g, &mut col);
                    std::hint::black_box(&col);
                    t.elapsed().as_secs_f64() * 1e3
                })
                .collect();
            times.sort_by(f64::total_cmp);
            println!("im2col {xd:?}: min {:.3} ms, median {:.3} ms", times[0], times[25]);
        }
    }

    /// Outputs and im2col matrices are written whole: spare buffers full of
    /// NaN (what a diverged step leaves) change no number.
    #[test]
    fn reused_buffers_hold_nothing_over() {
        let x = Tensor::from_vec((0..2 * 12 * 12 * 3).map(|i| (i % 17) as f32 / 8.0 - 1.0).collect::<Vec<_>>(), (2, 12, 12, 3), &Device::Cpu).unwrap();
        let k = Var::from_tensor(
            &Tensor::from_vec((0..3 * 3 * 3 * 4).map(|i| (i % 7) as f32 / 7.0 - 0.5).collect::<Vec<_>>(), (3, 3, 3, 4), &Device::Cpu).unwrap(),
        )
        .unwrap();
        let run = || {
            let pool = Pool { size: [2, 2], strides: [2, 2], padding: Padding::Valid, max: true };
            let y = conv2d(&x, k.as_tensor(), None, true, [1, 1], [1, 1], Padding::Valid, true, Some(pool)).unwrap();
            let g = y.sqr().unwrap().sum_all().unwrap().backward().unwrap();
            (y.flatten_all().unwrap().to_vec1::<f32>().unwrap(), g.get(k.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap())
        };
        let want = run();
        for _ in 0..3 {
            give_back(vec![f32::NAN; 2 * 10 * 10 * 27]);
        }
        assert_eq!(run(), want);
    }
}
