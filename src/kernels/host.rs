//! What every kernel shares: `Real`, the element type the kernels run on
//! (f32 for training, f64 for the finite-difference tests, through the same
//! code), and host access to tensor data. Imports only `mat`, `gemm` (the
//! f32 product) and `vmath` (f32 sigmoid and tanh), so every kernel can
//! import it.

use super::gemm;
use super::mat::{Mat, reference_matmul};
use candle_core::{CpuStorage, DType, Layout, Result, Shape, Storage, StorageRef, Tensor, WithDType, bail};

/// An element type the kernels run on.
pub trait Real: WithDType + std::ops::Neg<Output = Self> {
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn tanh(self) -> Self;
    fn sqrt(self) -> Self;
    fn abs(self) -> Self;
    /// `dst (a.rows x b.cols) = (accumulate ? dst : 0) + a @ b`.
    fn matmul(dst: &mut [Self], a: Mat<Self>, b: Mat<Self>, accumulate: bool);

    /// 1 / (1 + e^-x), as candle's op chain computes it (neg, exp, +1, recip).
    #[inline]
    fn sigmoid(self) -> Self {
        Self::one() / ((-self).exp() + Self::one())
    }

    /// `sigmoid` of every element (f32: vectorized, `vmath`).
    fn sigmoid_slice(xs: &mut [Self]) {
        xs.iter_mut().for_each(|x| *x = x.sigmoid());
    }

    /// `tanh` of every element (f32: vectorized, `vmath`).
    fn tanh_slice(xs: &mut [Self]) {
        xs.iter_mut().for_each(|x| *x = x.tanh());
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
    /// nnrun's sgemm or the gemm crate.
    fn matmul(dst: &mut [f32], a: Mat, b: Mat, accumulate: bool) {
        gemm::matmul(dst, a, b, accumulate);
    }
    fn sigmoid_slice(xs: &mut [f32]) {
        super::vmath::sigmoid_inplace(xs);
    }
    fn tanh_slice(xs: &mut [f32]) {
        super::vmath::tanh_inplace(xs);
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
    /// Plain loops: f64 serves the finite-difference tests (tiny shapes).
    fn matmul(dst: &mut [f64], a: Mat<f64>, b: Mat<f64>, accumulate: bool) {
        reference_matmul(dst, a, b, accumulate);
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

/// The contiguous elements of a CPU tensor argument of op `what`.
pub(crate) fn slice<'a, T: Real>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [T]> {
    match l.contiguous_offsets() {
        Some((start, end)) => Ok(&s.as_slice::<T>()?[start..end]),
        None => bail!("{what}: expects a contiguous tensor"),
    }
}

/// The mutable values of a CPU storage of type `T`.
pub(crate) fn dst_slice<T: Real>(s: &mut CpuStorage) -> Result<&mut [T]> {
    // Through Any: WithDType offers no mutable slice accessor.
    let any: &mut dyn std::any::Any = match s {
        CpuStorage::F32(v) => v,
        CpuStorage::F64(v) => v,
        _ => bail!("optimizer: f32 or f64 only"),
    };
    match any.downcast_mut::<Vec<T>>() {
        Some(v) => Ok(v.as_mut_slice()),
        None => bail!("optimizer: dtypes of variable and gradient differ"),
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
