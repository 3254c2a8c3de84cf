//! Optimizer updates in place: each pass reads the gradient and state
//! tensors and rewrites one tensor (a variable or a state slot) in one loop.
//! The candle-op version allocates a tensor per operation, about ten per
//! variable and step, each a full pass over memory (and for >= 64K elements
//! a trip through candle's barrier pool).
//!
//! Every pass evaluates its formula in exactly the order and precision of the
//! candle ops in `train::optim` (a scalar multiply is candle's affine
//! `x * c + 0`, an added scalar `x * 1 + c`), so both give the same bits.

use super::host::{Real, cpu_slice, dst_slice, on_cpu_float};
use candle_core::{CpuStorage, InplaceOp2, InplaceOp3, Layout, Result, Tensor, bail};

/// One in-place pass. `dst` is the tensor rewritten; `a`, `b` the sources
/// named in each variant. `decay` is decoupled weight decay, `1 - wd * lr`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pass {
    /// dst = dst' - a * lr (sgd; dst' = dst * decay when decaying)
    Sgd { lr: f64, decay: Option<f64> },
    /// dst = dst * momentum - a * lr (sgd momentum buffer)
    Momentum { lr: f64, momentum: f64 },
    /// dst = dst' + step, step = nesterov ? a * momentum - b * lr : a (a momentum, b gradient)
    SgdApply { lr: f64, momentum: f64, nesterov: bool, decay: Option<f64> },
    /// dst = dst * rho + a^2 * (1 - rho) (rmsprop velocity)
    Velocity { rho: f64 },
    /// dst = dst + a^2 (adagrad accumulator)
    Accumulate,
    /// dst = dst' - (a * lr) / sqrt(b + eps) (rmsprop, adagrad: a gradient, b velocity)
    ScaledStep { lr: f64, eps: f64, decay: Option<f64> },
    /// dst = dst * momentum + (a * lr) / sqrt(b + eps) (rmsprop momentum buffer)
    ScaledMomentum { lr: f64, eps: f64, momentum: f64 },
    /// dst = dst' - a (apply a momentum buffer)
    Subtract { decay: Option<f64> },
    /// dst = dst + (a - dst) * c (adam m)
    Ema { c: f64 },
    /// dst = dst + (a^2 - dst) * c (adam v)
    EmaSq { c: f64 },
    /// dst = max(dst, a) (amsgrad)
    Max,
    /// dst = dst' - (a * alpha) / (sqrt(b) + eps) (adam: a m, b v or v_hat)
    AdamStep { alpha: f64, eps: f64, decay: Option<f64> },
}

impl Pass {
    fn sources(&self) -> usize {
        match self {
            Pass::SgdApply { .. } | Pass::ScaledStep { .. } | Pass::ScaledMomentum { .. } | Pass::AdamStep { .. } => 2,
            _ => 1,
        }
    }

    /// `run`, compiled a second time for AVX2 where the CPU has it: the
    /// default x86-64 target vectorizes 4 wide (SSE), and square roots and
    /// divisions bound these passes. Same operations, so the same bits.
    fn run_fast<T: Real>(&self, dst: &mut [T], a: &[T], b: &[T]) {
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx2")]
            fn avx2<T: Real>(p: &Pass, dst: &mut [T], a: &[T], b: &[T]) {
                p.run(dst, a, b)
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2 (checked just above).
                unsafe { avx2(self, dst, a, b) };
                return;
            }
        }
        self.run(dst, a, b)
    }

    #[inline(always)]
    fn run<T: Real>(&self, dst: &mut [T], a: &[T], b: &[T]) {
        let c = T::from_f64;
        let zero = T::zero();
        // candle's affine: x * mul + add, the scalar in the tensor's dtype.
        let aff = |x: T, mul: T| x * mul + zero;
        let decayed = |w: T, decay: Option<f64>| match decay {
            Some(d) => aff(w, c(d)),
            None => w,
        };
        match *self {
            Pass::Sgd { lr, decay } => {
                let lr = c(lr);
                for (w, &g) in dst.iter_mut().zip(a) {
                    *w = decayed(*w, decay) - aff(g, lr);
                }
            }
            Pass::Momentum { lr, momentum } => {
                let (lr, mo) = (c(lr), c(momentum));
                for (m, &g) in dst.iter_mut().zip(a) {
                    *m = aff(*m, mo) - aff(g, lr);
                }
            }
            Pass::SgdApply { lr, momentum, nesterov, decay } => {
                let (lr, mo) = (c(lr), c(momentum));
                for ((w, &m), &g) in dst.iter_mut().zip(a).zip(b) {
                    let step = if nesterov { aff(m, mo) - aff(g, lr) } else { m };
                    *w = decayed(*w, decay) + step;
                }
            }
            Pass::Velocity { rho } => {
                let (rho, rest) = (c(rho), c(1.0 - rho));
                for (v, &g) in dst.iter_mut().zip(a) {
                    *v = aff(*v, rho) + aff(g * g, rest);
                }
            }
            Pass::Accumulate => {
                for (v, &g) in dst.iter_mut().zip(a) {
                    *v += g * g;
                }
            }
            Pass::ScaledStep { lr, eps, decay } => {
                let (lr, eps, one) = (c(lr), c(eps), T::one());
                for ((w, &g), &v) in dst.iter_mut().zip(a).zip(b) {
                    *w = decayed(*w, decay) - aff(g, lr) / (v * one + eps).sqrt();
                }
            }
            Pass::ScaledMomentum { lr, eps, momentum } => {
                let (lr, eps, mo, one) = (c(lr), c(eps), c(momentum), T::one());
                for ((m, &g), &v) in dst.iter_mut().zip(a).zip(b) {
                    *m = aff(*m, mo) + aff(g, lr) / (v * one + eps).sqrt();
                }
            }
            Pass::Subtract { decay } => {
                for (w, &m) in dst.iter_mut().zip(a) {
                    *w = decayed(*w, decay) - m;
                }
            }
            Pass::Ema { c: k } => {
                let k = c(k);
                for (m, &g) in dst.iter_mut().zip(a) {
                    *m += aff(g - *m, k);
                }
            }
            Pass::EmaSq { c: k } => {
                let k = c(k);
                for (v, &g) in dst.iter_mut().zip(a) {
                    *v += aff(g * g - *v, k);
                }
            }
            Pass::Max => {
                for (x, &y) in dst.iter_mut().zip(a) {
                    // candle's maximum: v1 < v2 ? v2 : v1
                    if *x < y {
                        *x = y;
                    }
                }
            }
            Pass::AdamStep { alpha, eps, decay } => {
                let (alpha, eps, one) = (c(alpha), c(eps), T::one());
                for ((w, &m), &v) in dst.iter_mut().zip(a).zip(b) {
                    *w = decayed(*w, decay) - aff(m, alpha) / (v.sqrt() * one + eps);
                }
            }
        }
    }

    fn cpu(&self, dst: &mut CpuStorage, dl: &Layout, a: (&CpuStorage, &Layout), b: Option<(&CpuStorage, &Layout)>) -> Result<()> {
        fn typed<T: Real>(p: &Pass, dst: &mut CpuStorage, dl: &Layout, a: (&CpuStorage, &Layout), b: Option<(&CpuStorage, &Layout)>) -> Result<()> {
            let a = cpu_slice::<T>(a.0, a.1)?;
            let b = match b {
                Some((s, l)) => cpu_slice::<T>(s, l)?,
                None => a,
            };
            let Some((lo, hi)) = dl.contiguous_offsets() else { bail!("optimizer: the variable is not contiguous") };
            if a.len() != hi - lo || b.len() != hi - lo {
                bail!("optimizer: gradient or state size differs from the variable's");
            }
            let dst = &mut dst_slice::<T>(dst)?[lo..hi];
            // Elementwise: any split gives the same bits. Split only where
            // the copy traffic outweighs waking the pool (a 784x512 kernel).
            const PIECE: usize = 1 << 16;
            if dst.len() >= 2 * PIECE {
                super::par::pieces(dst, PIECE, |i, d| {
                    let at = i * PIECE;
                    p.run_fast(d, &a[at..at + d.len()], &b[at..at + d.len()])
                });
            } else {
                p.run_fast(dst, a, b);
            }
            Ok(())
        }
        match dst {
            CpuStorage::F32(_) => typed::<f32>(self, dst, dl, a, b),
            CpuStorage::F64(_) => typed::<f64>(self, dst, dl, a, b),
            _ => bail!("optimizer: f32 or f64 only"),
        }
    }
}

impl InplaceOp2 for Pass {
    fn name(&self) -> &'static str {
        "nnrun-optimizer-pass"
    }
    fn cpu_fwd(&self, dst: &mut CpuStorage, dl: &Layout, a: &CpuStorage, al: &Layout) -> Result<()> {
        self.cpu(dst, dl, (a, al), None)
    }
}

impl InplaceOp3 for Pass {
    fn name(&self) -> &'static str {
        "nnrun-optimizer-pass"
    }
    fn cpu_fwd(&self, dst: &mut CpuStorage, dl: &Layout, a: &CpuStorage, al: &Layout, b: &CpuStorage, bl: &Layout) -> Result<()> {
        self.cpu(dst, dl, (a, al), Some((b, bl)))
    }
}

/// Whether `apply` can run on these tensors: CPU, one float dtype, one
/// shape, contiguous. Otherwise the caller keeps its candle ops.
pub fn supported(ts: &[&Tensor]) -> bool {
    on_cpu_float(ts) && ts.iter().all(|t| t.is_contiguous() && t.dims() == ts[0].dims())
}

/// Rewrites `dst` in place with `pass`, reading `srcs` (as many as the pass names).
pub fn apply(pass: Pass, dst: &Tensor, srcs: &[&Tensor]) -> Result<()> {
    match (pass.sources(), srcs) {
        (1, [a]) => dst.inplace_op2(a, &pass),
        (2, [a, b]) => dst.inplace_op3(a, b, &pass),
        (n, _) => bail!("optimizer pass {pass:?} reads {n} tensors, given {}", srcs.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::random;
    use candle_core::DType;

    /// Each pass against its formula written with candle ops, bit for bit.
    #[test]
    fn passes_equal_the_candle_op_formulas_bit_for_bit() {
        for dt in [DType::F32, DType::F64] {
            // 300k: split across the kernels' pool.
            for n in [1usize, 7, 1000, 300_000] {
                let d = random(&[n], 1, dt);
                let a = random(&[n], 2, dt);
                // Velocities are non-negative.
                let b = random(&[n], 3, dt).abs().unwrap();
                let dec = Some(1.0 - 0.004 * 0.01);
                let decayed = |d: &Tensor, decay: Option<f64>| match decay {
                    Some(x) => (d * x).unwrap(),
                    None => d.clone(),
                };
                type Expected<'a> = Box<dyn Fn() -> candle_core::Result<Tensor> + 'a>;
                let cases: Vec<(Pass, Expected)> = vec![
                    (Pass::Sgd { lr: 0.01, decay: None }, Box::new(|| &d - (&a * 0.01)?)),
                    (Pass::Sgd { lr: 0.01, decay: dec }, Box::new(|| decayed(&d, dec) - (&a * 0.01)?)),
                    (Pass::Momentum { lr: 0.1, momentum: 0.9 }, Box::new(|| (&d * 0.9)? - (&a * 0.1)?)),
                    (Pass::SgdApply { lr: 0.1, momentum: 0.9, nesterov: true, decay: dec }, Box::new(|| decayed(&d, dec) + ((&a * 0.9)? - (&b * 0.1)?)?)),
                    (Pass::SgdApply { lr: 0.1, momentum: 0.9, nesterov: false, decay: None }, Box::new(|| &d + &a)),
                    (Pass::Velocity { rho: 0.9 }, Box::new(|| (&d * 0.9)? + (a.sqr()? * (1.0 - 0.9))?)),
                    (Pass::Accumulate, Box::new(|| &d + a.sqr()?)),
                    (Pass::ScaledStep { lr: 0.001, eps: 1e-7, decay: None }, Box::new(|| &d - ((&a * 0.001)? / (&b + 1e-7)?.sqrt()?)?)),
                    (Pass::ScaledStep { lr: 0.001, eps: 1e-7, decay: dec }, Box::new(|| decayed(&d, dec) - ((&a * 0.001)? / (&b + 1e-7)?.sqrt()?)?)),
                    (Pass::ScaledMomentum { lr: 0.001, eps: 1e-7, momentum: 0.5 }, Box::new(|| (&d * 0.5)? + ((&a * 0.001)? / (&b + 1e-7)?.sqrt()?)?)),
                    (Pass::Subtract { decay: dec }, Box::new(|| decayed(&d, dec) - &a)),
                    (Pass::Ema { c: 1.0 - 0.9 }, Box::new(|| &d + ((&a - &d)? * (1.0 - 0.9))?)),
                    (Pass::EmaSq { c: 1.0 - 0.999 }, Box::new(|| &d + ((a.sqr()? - &d)? * (1.0 - 0.999))?)),
                    (Pass::Max, Box::new(|| d.maximum(&a))),
                    (Pass::AdamStep { alpha: 0.0123, eps: 1e-7, decay: dec }, Box::new(|| decayed(&d, dec) - ((&a * 0.0123)? / (b.sqrt()? + 1e-7)?)?)),
                ];
                for (pass, reference) in cases {
                    let want = reference().unwrap().flatten_all().unwrap().to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap();
                    let out = d.copy().unwrap();
                    let srcs: Vec<&Tensor> = if pass.sources() == 2 { vec![&a, &b] } else { vec![&a] };
                    apply(pass, &out, &srcs).unwrap();
                    let got = out.flatten_all().unwrap().to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap();
                    assert_eq!(got, want, "{dt:?} n={n} {pass:?}");
                }
            }
        }
    }

    #[test]
    fn mismatches_are_errors() {
        let d = random(&[4], 1, DType::F32);
        assert!(apply(Pass::Max, &d, &[&random(&[5], 2, DType::F32)]).is_err());
        assert!(apply(Pass::Max, &d, &[&random(&[4], 2, DType::F64)]).is_err());
        assert!(apply(Pass::AdamStep { alpha: 0.1, eps: 1e-7, decay: None }, &d, &[&d.copy().unwrap()]).is_err());
        assert!(!supported(&[&d, &random(&[2, 2], 3, DType::F32)]));
        assert!(supported(&[&d, &random(&[4], 3, DType::F32)]));
    }
}
