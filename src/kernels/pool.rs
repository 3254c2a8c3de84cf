//! Max and average pooling on channels-last (NHWC) tensors in one pass each
//! way. The plain-op version builds one strided view per window offset and
//! folds them with `maximum` (candle's max_pool2d has wrong gradients).
//!
//! Keras semantics: 'same' padding is never picked by max and not counted by
//! the average. Max backward sends each window's gradient to its first
//! maximum (TensorFlow's choice): the first cell equal to the output.

use super::cpu;
use super::host::{Real, slice};
use super::window::{Axis, Padding};
use candle_core::{CpuStorage, CustomOp1, CustomOp3, DType, Layout, Result, Shape, Tensor, bail};

/// Whether `pool2d` can run on `x` (else use plain candle ops).
pub fn supports(x: &Tensor) -> bool {
    x.device().is_cpu() && matches!(x.dtype(), DType::F32 | DType::F64)
}

/// Pools `x` (B, H, W, C) over `size` windows moving by `strides`, padding
/// valid or same: (B, OH, OW, C).
pub fn pool2d(x: &Tensor, size: [usize; 2], strides: [usize; 2], padding: Padding, max: bool) -> Result<Tensor> {
    let (b, h, w, c) = x.dims4()?;
    x.contiguous()?.apply_op1(Pool2dOp(Geom::new([b, h, w, c], size, strides, padding, max)?))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geom {
    b: usize,
    c: usize,
    h: Axis,
    w: Axis,
    max: bool,
}

impl Geom {
    /// Pooling of an input of dims (B, H, W, C).
    pub(crate) fn new(dims: [usize; 4], size: [usize; 2], strides: [usize; 2], padding: Padding, max: bool) -> Result<Geom> {
        let [b, h, w, c] = dims;
        Ok(Geom { b, c, h: Axis::new(h, size[0], strides[0], 1, padding)?, w: Axis::new(w, size[1], strides[1], 1, padding)?, max })
    }

    pub(crate) fn out_dims(&self) -> [usize; 4] {
        [self.b, self.h.out, self.w.out, self.c]
    }

    /// Every input cell in at most one window, windows at stride steps from
    /// the origin (no padding before, no dilation).
    fn disjoint(&self) -> bool {
        [self.h, self.w].iter().all(|a| a.k <= a.stride && a.dil == 1 && a.before == 0)
    }

    fn x_len(&self) -> usize {
        self.b * self.h.len * self.w.len * self.c
    }
    fn y_len(&self) -> usize {
        self.b * self.h.out * self.w.out * self.c
    }

    /// Calls `f(output offset, input offsets of the window's real cells)`
    /// for every output cell of one sample; offsets are of channel 0, within
    /// the sample.
    #[inline(always)]
    fn each_window(&self, mut f: impl FnMut(usize, &[usize])) {
        let c = self.c;
        let mut cells = Vec::with_capacity(self.h.k * self.w.k);
        let mut out = 0;
        for oy in 0..self.h.out {
            for ox in 0..self.w.out {
                cells.clear();
                for ky in 0..self.h.k {
                    let Some(iy) = self.h.src(oy, ky) else { continue };
                    for kx in 0..self.w.k {
                        if let Some(ix) = self.w.src(ox, kx) {
                            cells.push((iy * self.w.len + ix) * c);
                        }
                    }
                }
                f(out, &cells);
                out += c;
            }
        }
    }

    /// Runs `f(sample, its slice of out)` for every sample, on the kernels'
    /// pool when there is enough work: samples never share a window, so the
    /// result is the same however they are split.
    fn per_sample<T: Send>(&self, out: &mut [T], f: impl Fn(usize, &mut [T]) + Sync + Send) {
        let per = out.len() / self.b.max(1);
        if per == 0 {
            return;
        }
        if out.len() < 1 << 15 {
            out.chunks_mut(per).enumerate().for_each(|(i, o)| f(i, o));
        } else {
            super::par::pieces(out, per, f);
        }
    }
}

/// A window's tap that takes no gradient: the relu's output was not positive.
const NO_TAP: u8 = u8::MAX;

impl Geom {
    /// Max pooling whose backward can work from each output's first-maximum
    /// tap alone: windows disjoint and fewer taps than `NO_TAP`.
    pub(crate) fn by_taps(&self) -> bool {
        self.max && self.disjoint() && self.h.k * self.w.k < NO_TAP as usize
    }
}

/// Max-pooling backward where windows never overlap (stride >= size, no
/// padding, no dilation: 2x2 pools, Keras's default): every input cell
/// belongs to at most one window, so dx is written once, in input order,
/// with no zero-fill first and no scatter (`backward` zero-fills dx, then
/// adds into it: on mnist_cnn's first conv, 5.5 MB cleared and then
/// read-modify-written every step; the memset alone was 4% of the step).
/// Same values as `backward`: the first window cell equal to the maximum
/// takes the gradient.
fn backward_disjoint_max<T: Real>(x: &[T], dy: &[T], g: &Geom, relu: bool) -> Vec<T> {
    // The taps as the forward finds them (the same first maxima as a scan
    // for cells equal to the output; tested), then one write of dx.
    let (_, taps) = forward_taps(x, g, relu);
    backward_from_taps(&taps, dy, g)
}

/// Max pooling forward that also returns each output's first-maximum tap
/// (NO_TAP where `relu` and the maximum isn't positive), for
/// [`backward_from_taps`]: the backward then never reads the input again.
/// Only for `g.by_taps()`. Same outputs as `forward`, and the same taps as
/// `backward_disjoint_max` finds: a strict `>` fold in tap order keeps the
/// first of equal maxima.
pub(crate) fn forward_taps<T: Real>(x: &[T], g: &Geom, relu: bool) -> (Vec<T>, Vec<u8>) {
    debug_assert!(g.by_taps());
    let c = g.c;
    let (x_per, y_per) = (g.h.len * g.w.len * c, g.h.out * g.w.out * c);
    let (kh, kw, sh, sw) = (g.h.k, g.w.k, g.h.stride, g.w.stride);
    let mut y = vec![T::from_f64(0.0); g.y_len()];
    let mut taps = vec![0u8; g.y_len()];
    let level = cpu::level();
    // One piece per sample of (y, taps) together.
    let mut pieces: Vec<(&mut [T], &mut [u8])> = y.chunks_mut(y_per.max(1)).zip(taps.chunks_mut(y_per.max(1))).collect();
    let work = |bi: usize, piece: &mut [(&mut [T], &mut [u8])]| {
        let Some((y, taps)) = piece.first_mut() else { return };
        cpu::at_level(
            level,
            #[inline(always)]
            || {
                let zero = T::from_f64(0.0);
                let x = &x[bi * x_per..(bi + 1) * x_per];
                for oy in 0..g.h.out {
                    for ox in 0..g.w.out {
                        let o = (oy * g.w.out + ox) * c;
                        let (best, first) = (&mut y[o..o + c], &mut taps[o..o + c]);
                        // Tap 0 is always in the input (no padding before).
                        let cell = (oy * sh * g.w.len + ox * sw) * c;
                        best.copy_from_slice(&x[cell..cell + c]);
                        for tap in 1..kh * kw {
                            let (iy, ix) = (oy * sh + tap / kw, ox * sw + tap % kw);
                            if iy >= g.h.len || ix >= g.w.len {
                                continue;
                            }
                            let cell = (iy * g.w.len + ix) * c;
                            for ((b, f), &v) in best.iter_mut().zip(first.iter_mut()).zip(&x[cell..cell + c]) {
                                let more = v > *b;
                                *b = if more { v } else { *b };
                                *f = if more { tap as u8 } else { *f };
                            }
                        }
                        if relu {
                            for (f, &m) in first.iter_mut().zip(best.iter()) {
                                *f = if m > zero { *f } else { NO_TAP };
                            }
                        }
                    }
                }
            },
        )
    };
    if g.y_len() < 1 << 15 {
        pieces.chunks_mut(1).enumerate().for_each(|(i, p)| work(i, p));
    } else {
        super::par::pieces(&mut pieces, 1, work);
    }
    drop(pieces);
    (y, taps)
}

/// dx of a disjoint max pooling from each output's first-maximum tap and
/// the output gradient: every input cell written once, in order.
pub(crate) fn backward_from_taps<T: Real>(taps: &[u8], dy: &[T], g: &Geom) -> Vec<T> {
    let c = g.c;
    let (x_per, y_per) = (g.h.len * g.w.len * c, g.h.out * g.w.out * c);
    let (kh, kw, sh, sw) = (g.h.k, g.w.k, g.h.stride, g.w.stride);
    let n = g.x_len();
    let mut dx: Vec<T> = Vec::with_capacity(n);
    let level = cpu::level();
    // The selects over channels vectorize at the level's width.
    let fill = |bi: usize, out: &mut [std::mem::MaybeUninit<T>]| {
        cpu::at_level(
            level,
            #[inline(always)]
            || {
                let zero = T::from_f64(0.0);
                let (taps, dy) = (&taps[bi * y_per..(bi + 1) * y_per], &dy[bi * y_per..(bi + 1) * y_per]);
                // Every input cell in order: its window's gradient where it is the
                // first maximum, else 0 (also outside every window).
                for iy in 0..g.h.len {
                    let (oy, ty) = (iy / sh, iy % sh);
                    let row = &mut out[iy * g.w.len * c..(iy + 1) * g.w.len * c];
                    for (ix, dst) in row.chunks_exact_mut(c).enumerate() {
                        let (ox, tx) = (ix / sw, ix % sw);
                        if oy < g.h.out && ox < g.w.out && ty < kh && tx < kw {
                            let o = (oy * g.w.out + ox) * c;
                            let tap = (ty * kw + tx) as u8;
                            for ((d, &f), &gv) in dst.iter_mut().zip(&taps[o..o + c]).zip(&dy[o..o + c]) {
                                d.write(if f == tap { gv } else { zero });
                            }
                        } else {
                            dst.iter_mut().for_each(|d| {
                                d.write(zero);
                            });
                        }
                    }
                }
            },
        )
    };
    let out = &mut dx.spare_capacity_mut()[..n];
    let per = x_per.max(1);
    if n < 1 << 15 {
        out.chunks_mut(per).enumerate().for_each(|(i, o)| fill(i, o));
    } else {
        super::par::pieces(out, per, fill);
    }
    // SAFETY: the fill above wrote every one of the n elements: each sample's
    // piece of x_per elements is every (iy, ix, channel) of that sample, and
    // the pieces cover 0..n (n = b * x_per).
    unsafe { dx.set_len(n) };
    dx
}

pub(crate) fn forward<T: Real>(x: &[T], g: &Geom) -> Vec<T> {
    let c = g.c;
    let x_per = g.h.len * g.w.len * c;
    let mut y = vec![T::from_f64(0.0); g.y_len()];
    let level = cpu::level();
    g.per_sample(&mut y, |bi, y| {
        let x = &x[bi * x_per..(bi + 1) * x_per];
        // The folds over channels vectorize at the level's width.
        cpu::at_level(
            level,
            #[inline(always)]
            || {
                g.each_window(|o, cells| {
                    let dst = &mut y[o..o + c];
                    // A window always holds a real cell with Keras padding; an empty one stays 0.
                    let Some((&first, rest)) = cells.split_first() else { return };
                    dst.copy_from_slice(&x[first..first + c]);
                    for &cell in rest {
                        for (d, &v) in dst.iter_mut().zip(&x[cell..cell + c]) {
                            // A select, not a branch: it vectorizes over channels.
                            *d = if g.max { if v > *d { v } else { *d } } else { *d + v };
                        }
                    }
                    if !g.max {
                        let inv = T::from_f64(1.0 / cells.len() as f64);
                        dst.iter_mut().for_each(|d| *d *= inv);
                    }
                })
            },
        )
    });
    y
}

/// dx from the input, the pooled output and its gradient. `relu`: the input
/// is a relu's output and dx is taken on through it (0 where the input is
/// not positive), which saves the conv+pool backward a pass over its largest
/// tensor.
fn backward<T: Real>(x: &[T], y: &[T], dy: &[T], g: &Geom, relu: bool) -> Vec<T> {
    if g.by_taps() {
        return backward_disjoint_max(x, dy, g, relu);
    }
    backward_any(x, y, dy, g, relu)
}

/// `backward` for any windows: zero-fill, then add each window's gradient.
fn backward_any<T: Real>(x: &[T], y: &[T], dy: &[T], g: &Geom, relu: bool) -> Vec<T> {
    let c = g.c;
    let (x_per, y_per) = (g.h.len * g.w.len * c, g.h.out * g.w.out * c);
    let mut dx = vec![T::from_f64(0.0); g.x_len()];
    g.per_sample(&mut dx, |bi, dx| {
        let x = &x[bi * x_per..(bi + 1) * x_per];
        let (y, dy) = (&y[bi * y_per..(bi + 1) * y_per], &dy[bi * y_per..(bi + 1) * y_per]);
        // Max: the first window cell equal to the output takes the gradient. Found
        // by scanning the cells backwards with selects over channels (u32 lanes,
        // like f32 ones), so it vectorizes and never mispredicts.
        let mut first = vec![0u32; c];
        let zero = T::from_f64(0.0);
        g.each_window(|o, cells| {
            let (grad, best) = (&dy[o..o + c], &y[o..o + c]);
            if g.max {
                first.fill(0);
                for (i, &cell) in cells.iter().enumerate().rev() {
                    for ((f, &v), &m) in first.iter_mut().zip(&x[cell..cell + c]).zip(best) {
                        *f = if v == m { i as u32 } else { *f };
                    }
                }
                // The maximum is the relu's output at the cell it came from.
                for (ch, ((&f, &gv), &m)) in first.iter().zip(grad).zip(best).enumerate() {
                    dx[cells[f as usize] + ch] += if relu && m.partial_cmp(&zero) != Some(std::cmp::Ordering::Greater) { zero } else { gv };
                }
            } else {
                let inv = T::from_f64(1.0 / cells.len().max(1) as f64);
                for &cell in cells {
                    for ((d, &gv), &v) in dx[cell..cell + c].iter_mut().zip(grad).zip(&x[cell..cell + c]) {
                        *d += if relu && v.partial_cmp(&zero) != Some(std::cmp::Ordering::Greater) { zero } else { gv * inv };
                    }
                }
            }
        });
    });
    dx
}

struct Pool2dOp(Geom);

impl CustomOp1 for Pool2dOp {
    fn name(&self) -> &'static str {
        "nnrun-pool2d"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        if l.shape().elem_count() != g.x_len() {
            bail!("pool2d: expected {} input elements, received {}", g.x_len(), l.shape().elem_count());
        }
        let out = match s {
            CpuStorage::F32(_) => CpuStorage::F32(forward(slice::<f32>(s, l, "pool2d")?, &g)),
            CpuStorage::F64(_) => CpuStorage::F64(forward(slice::<f64>(s, l, "pool2d")?, &g)),
            _ => bail!("pool2d: unsupported dtype"),
        };
        Ok((out, Shape::from_dims(&[g.b, g.h.out, g.w.out, g.c])))
    }

    fn bwd(&self, x: &Tensor, y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(x.apply_op3_no_bwd(y, &dy.contiguous()?, &Pool2dGrad { g: self.0, relu: false })?))
    }
}

/// (x, y, dy) -> dx; `relu`: through the relu that produced x as well.
pub(crate) struct Pool2dGrad {
    pub(crate) g: Geom,
    pub(crate) relu: bool,
}

impl Pool2dGrad {
    /// dx from host slices of x, y and dy.
    pub(crate) fn run<T: Real>(&self, x: &[T], y: &[T], dy: &[T]) -> Result<Vec<T>> {
        let g = self.g;
        let sizes = (x.len(), y.len(), dy.len());
        if sizes != (g.x_len(), g.y_len(), g.y_len()) {
            bail!("pool2d backward: unexpected sizes {sizes:?}");
        }
        Ok(backward(x, y, dy, &g, self.relu))
    }
}

impl CustomOp3 for Pool2dGrad {
    fn name(&self) -> &'static str {
        "nnrun-pool2d-grad"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout, s3: &CpuStorage, l3: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.g;
        let what = "pool2d backward";
        let out = match (s1, s2, s3) {
            (CpuStorage::F32(_), CpuStorage::F32(_), CpuStorage::F32(_)) => {
                CpuStorage::F32(self.run(slice(s1, l1, what)?, slice(s2, l2, what)?, slice(s3, l3, what)?)?)
            }
            (CpuStorage::F64(_), CpuStorage::F64(_), CpuStorage::F64(_)) => {
                CpuStorage::F64(self.run(slice(s1, l1, what)?, slice(s2, l2, what)?, slice(s3, l3, what)?)?)
            }
            _ => bail!("{what}: unsupported dtypes"),
        };
        Ok((out, Shape::from_dims(&[g.b, g.h.len, g.w.len, g.c])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn max_gradient_goes_to_the_first_maximum() {
        // One 2x2 window of ties, one with a clear maximum.
        let x = Var::from_vec(vec![0f32, 0., 1., 5., 0., 0., 2., 3.], (1, 2, 4, 1), &Device::Cpu).unwrap();
        let y = pool2d(x.as_tensor(), [2, 2], [2, 2], Padding::Valid, true).unwrap();
        assert_eq!(y.flatten_all().unwrap().to_vec1::<f32>().unwrap(), vec![0.0, 5.0]);
        let g = y.sum_all().unwrap().backward().unwrap();
        let gx = g.get(x.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(gx, vec![1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn overlapping_windows_accumulate_and_average_excludes_padding() {
        // 1x3 input, pool 2 stride 1 'same': windows [0,1], [1,2], [2,pad].
        let x = Var::from_vec(vec![1f64, 4., 2.], (1, 1, 3, 1), &Device::Cpu).unwrap();
        let y = pool2d(x.as_tensor(), [1, 2], [1, 1], Padding::Same, true).unwrap();
        assert_eq!(y.flatten_all().unwrap().to_vec1::<f64>().unwrap(), vec![4.0, 4.0, 2.0]);
        let g = y.sum_all().unwrap().backward().unwrap();
        assert_eq!(g.get(x.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap(), vec![0.0, 2.0, 1.0]);
        let y = pool2d(x.as_tensor(), [1, 2], [1, 1], Padding::Same, false).unwrap();
        assert_eq!(y.flatten_all().unwrap().to_vec1::<f64>().unwrap(), vec![2.5, 3.0, 2.0]);
        let g = y.sum_all().unwrap().backward().unwrap();
        assert_eq!(g.get(x.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap(), vec![0.5, 1.0, 1.5]);
    }

    /// The write-once path gives the general path's bits: ties (first
    /// maximum), relu, 'same' windows past the edge, strides past the size
    /// (cells in no window), and batches past the parallel threshold.
    #[test]
    fn disjoint_max_backward_matches_the_general_one() {
        type Case = ([usize; 4], [usize; 2], [usize; 2], Padding);
        let cases: [Case; 6] = [
            ([2, 6, 6, 3], [2, 2], [2, 2], Padding::Valid),
            ([2, 7, 5, 2], [2, 2], [2, 2], Padding::Same),
            ([1, 11, 11, 4], [2, 2], [2, 2], Padding::Valid),
            ([2, 8, 9, 1], [2, 3], [3, 3], Padding::Valid),
            ([3, 5, 5, 2], [1, 1], [2, 2], Padding::Same),
            ([64, 26, 26, 32], [2, 2], [2, 2], Padding::Valid),
        ];
        for (i, (dims, size, strides, padding)) in cases.into_iter().enumerate() {
            let g = Geom::new(dims, size, strides, padding, true).unwrap();
            assert!(g.disjoint(), "case {i}");
            // Few distinct values: many ties; about half not positive (relu).
            // Signed zeros and a few NaNs (a diverged step) as well.
            let value = |k: usize| match k % 101 {
                0 => f32::NAN,
                1 | 2 => -0.0,
                _ => ((k * 7919 % 13) as f32 - 6.0) / 4.0,
            };
            let x: Vec<f32> = (0..g.x_len()).map(value).collect();
            let y = cpu::with_level(cpu::Level::Portable, || forward(&x, &g));
            let dy: Vec<f32> = (0..g.y_len()).map(|k| (k % 17) as f32 * 0.25 - 2.0).collect();
            // Every path the CPU runs: the same bits as the portable forward
            // and as the general (scatter) backward.
            for level in cpu::runnable() {
                let y_level = cpu::with_level(level, || forward(&x, &g));
                assert!(y_level.iter().zip(&y).all(|(p, q)| p.to_bits() == q.to_bits()), "case {i} forward at {level:?}");
                for relu in [false, true] {
                    let (a, b) = (cpu::with_level(level, || backward(&x, &y, &dy, &g, relu)), backward_any(&x, &y, &dy, &g, relu));
                    assert!(a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()), "case {i} relu={relu} at {level:?}");
                    // The forward that keeps the taps: same output, same dx.
                    let (y_taps, taps) = cpu::with_level(level, || forward_taps(&x, &g, relu));
                    assert!(y_taps.iter().zip(&y).all(|(p, q)| p.to_bits() == q.to_bits()), "case {i} forward_taps at {level:?}");
                    let a = cpu::with_level(level, || backward_from_taps(&taps, &dy, &g));
                    assert!(a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()), "case {i} relu={relu} from taps at {level:?}");
                }
            }
        }
        // Overlapping windows take the general path, and so do windows of
        // more taps than a u8 numbers.
        assert!(!Geom::new([1, 6, 6, 1], [3, 3], [2, 2], Padding::Valid, true).unwrap().by_taps());
        assert!(!Geom::new([1, 32, 32, 1], [16, 16], [16, 16], Padding::Valid, true).unwrap().by_taps());
        assert!(Geom::new([1, 30, 30, 1], [15, 15], [15, 15], Padding::Valid, true).unwrap().by_taps());
    }

    #[test]
    fn bad_shapes_are_errors() {
        let x = Tensor::zeros((1, 1, 1, 2), DType::F32, &Device::Cpu).unwrap();
        assert!(pool2d(&x, [2, 2], [2, 2], Padding::Valid, true).is_err());
        assert!(pool2d(&x, [2, 2], [2, 2], Padding::Same, true).is_ok());
        assert!(pool2d(&x, [2, 2], [0, 2], Padding::Same, false).is_err());
        assert!(pool2d(&x.flatten_all().unwrap(), [2, 2], [2, 2], Padding::Same, false).is_err());
    }
}

#[cfg(test)]
mod timing {
    use super::*;
    use candle_core::{Device, Var};

    /// `cargo test --release --lib pool_timing -- --ignored --nocapture`:
    /// forward + backward of mnist_cnn's first pooling at batch 64.
    #[test]
    #[ignore]
    fn pool_timing() {
        let n = 64 * 26 * 26 * 32;
        let v: Vec<f32> = (0..n).map(|i| ((i * 7919) % 1000) as f32).collect();
        let x = Var::from_vec(v, (64, 26, 26, 32), &Device::Cpu).unwrap();
        let mut times = Vec::new();
        for _ in 0..30 {
            let t = std::time::Instant::now();
            let y = pool2d(x.as_tensor(), [2, 2], [2, 2], Padding::Valid, true).unwrap();
            let g = y.sum_all().unwrap().backward().unwrap();
            std::hint::black_box(g.get(x.as_tensor()).unwrap());
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        println!("pool fwd+bwd (64, 26, 26, 32): min {:.2} ms, median {:.2} ms", times[0], times[15]);
        // The backward kernel alone.
        let g = Geom { b: 64, c: 32, h: Axis::new(26, 2, 2, 1, Padding::Valid).unwrap(), w: Axis::new(26, 2, 2, 1, Padding::Valid).unwrap(), max: true };
        let xs: Vec<f32> = x.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        let y = forward(&xs, &g);
        let mut times = Vec::new();
        for _ in 0..30 {
            let t = std::time::Instant::now();
            std::hint::black_box(backward(&xs, &y, &y, &g, false));
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        println!("pool bwd kernel: min {:.2} ms, median {:.2} ms", times[0], times[15]);
        let mut times = Vec::new();
        for _ in 0..30 {
            let t = std::time::Instant::now();
            std::hint::black_box(forward(&xs, &g));
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        println!("pool fwd kernel: min {:.2} ms, median {:.2} ms", times[0], times[15]);
    }
}
