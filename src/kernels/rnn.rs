//! Keras LSTM recurrence (tanh, sigmoid gates) as one CPU op over the whole
//! sequence, with a hand-written backward pass through time. From candle ops
//! each step is about 25 small ops forward and 50 backward, each allocating,
//! which is most of an LSTM's training time at Keras-sized batches.
//!
//! The op takes the input projections of every timestep (one matmul done by
//! the caller, bias included) and runs only what is sequential. It keeps the
//! forward trace (gates, cells) for its backward pass: tanh and sigmoid are
//! most of the cost, and recomputing them would double it.

use super::host::{Host, Real, cpu_slice, on_cpu_float, tensor_from};
use super::mat::Mat;
use candle_core::{CpuStorage, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor, bail};
use std::any::Any;
use std::sync::{Arc, Mutex};

/// `xp` (T, B, 4U), time-major input projections with the bias, gates i, f,
/// c, o; `rk` (U, 4U) the recurrent kernel; `mask` (B, U) recurrent dropout
/// applied to h where it enters the matmul. Returns (B, T, U) in processing
/// order with `sequences`, else the last h (B, U). None where the kernel
/// does not apply (other devices, dtypes); the caller then runs its ops.
pub fn lstm(xp: &Tensor, rk: &Tensor, mask: Option<&Tensor>, backwards: bool, sequences: bool) -> Result<Option<Tensor>> {
    let mut all = vec![xp, rk];
    all.extend(mask);
    if !on_cpu_float(&all) {
        return Ok(None);
    }
    let (t, b, g4) = xp.dims3()?;
    let (u, g4r) = rk.dims2()?;
    if g4 != 4 * u || g4r != g4 || t == 0 || mask.is_some_and(|m| m.dims() != [b, u]) {
        bail!("lstm kernel: projections {:?}, recurrent kernel {:?}, mask {:?} do not fit", xp.dims(), rk.dims(), mask.map(|m| m.dims().to_vec()));
    }
    let op = LstmOp { backwards, sequences, trace: Mutex::new(None) };
    let (xp, rk) = (xp.contiguous()?, rk.contiguous()?);
    Ok(Some(match mask {
        Some(m) => xp.apply_op3(&rk, &m.contiguous()?, op)?,
        None => xp.apply_op2(&rk, op)?,
    }))
}

struct LstmOp {
    backwards: bool,
    sequences: bool,
    /// The forward pass's `Trace<T>`, for backward. A graph node owns the
    /// op, so the trace lives as long as the graph that can use it.
    trace: Mutex<Option<Arc<dyn Any + Send + Sync>>>,
}

/// Everything the backward pass needs, per processing step `s`.
struct Trace<T> {
    /// Activated gates i, f, c~, o: (T, B, 4U).
    gates: Vec<T>,
    /// Cell states c_0 = 0, c_1..c_T: (T + 1, B, U).
    cs: Vec<T>,
    /// tanh(c_1)..tanh(c_T): (T, B, U).
    tcs: Vec<T>,
    /// Hidden states h_0 = 0, h_1..h_T: (T + 1, B, U).
    hs: Vec<T>,
    /// h as it entered step s's matmul (masked), at time index: (T, B, U).
    hm: Vec<T>,
}

struct Dims {
    t: usize,
    b: usize,
    u: usize,
}

impl LstmOp {
    /// Time index of processing step `s`.
    fn time(&self, s: usize, t: usize) -> usize {
        if self.backwards { t - 1 - s } else { s }
    }

    fn forward<T: Real>(&self, xp: &[T], rk: &[T], mask: Option<&[T]>, d: &Dims) -> Trace<T> {
        let (t, b, u) = (d.t, d.b, d.u);
        let (bu, bg) = (b * u, b * 4 * u);
        let mut tr = Trace {
            gates: vec![T::zero(); t * bg],
            cs: vec![T::zero(); (t + 1) * bu],
            tcs: vec![T::zero(); t * bu],
            hs: vec![T::zero(); (t + 1) * bu],
            hm: vec![T::zero(); t * bu],
        };
        let mut z = vec![T::zero(); bg];
        for s in 0..t {
            let ts = self.time(s, t);
            z.copy_from_slice(&xp[ts * bg..(ts + 1) * bg]);
            let hm = &mut tr.hm[ts * bu..(ts + 1) * bu];
            hm.copy_from_slice(&tr.hs[s * bu..(s + 1) * bu]);
            if let Some(m) = mask {
                hm.iter_mut().zip(m).for_each(|(h, &m)| *h *= m);
            }
            // h_0 = 0 adds nothing.
            if s > 0 {
                T::matmul(&mut z, Mat::new(hm, b, u), Mat::new(rk, u, 4 * u), true);
            }
            let gates = &mut tr.gates[s * bg..(s + 1) * bg];
            let (c_prev, rest) = tr.cs.split_at_mut((s + 1) * bu);
            let (c_prev, c) = (&c_prev[s * bu..], &mut rest[..bu]);
            let h = &mut tr.hs[(s + 1) * bu..(s + 2) * bu];
            let tc = &mut tr.tcs[s * bu..(s + 1) * bu];
            // The activations a slice at a time (vectorized for f32).
            gates.copy_from_slice(&z);
            for gr in gates.chunks_exact_mut(4 * u) {
                T::sigmoid_slice(&mut gr[..2 * u]);
                T::tanh_slice(&mut gr[2 * u..3 * u]);
                T::sigmoid_slice(&mut gr[3 * u..]);
            }
            for r in 0..b {
                let gr = &gates[r * 4 * u..(r + 1) * 4 * u];
                for j in 0..u {
                    let (i, f, g) = (gr[j], gr[u + j], gr[2 * u + j]);
                    let k = r * u + j;
                    c[k] = f * c_prev[k] + i * g;
                }
            }
            tc.copy_from_slice(c);
            T::tanh_slice(tc);
            for r in 0..b {
                let o = &gates[r * 4 * u + 3 * u..(r + 1) * 4 * u];
                for j in 0..u {
                    h[r * u + j] = o[j] * tc[r * u + j];
                }
            }
        }
        tr
    }

    /// The output from a trace: h of every step (B, T, U) or the last (B, U).
    fn output<T: Real>(&self, tr: &Trace<T>, d: &Dims) -> Vec<T> {
        let (t, b, u) = (d.t, d.b, d.u);
        let bu = b * u;
        if !self.sequences {
            return tr.hs[t * bu..].to_vec();
        }
        let mut y = vec![T::zero(); b * t * u];
        for s in 0..t {
            for r in 0..b {
                y[(r * t + s) * u..(r * t + s + 1) * u].copy_from_slice(&tr.hs[(s + 1) * bu + r * u..(s + 1) * bu + (r + 1) * u]);
            }
        }
        y
    }

    /// Gradients of the projections (T, B, 4U) and of the recurrent kernel (U, 4U).
    fn backward<T: Real>(&self, tr: &Trace<T>, rk: &[T], mask: Option<&[T]>, gy: &[T], d: &Dims) -> (Vec<T>, Vec<T>) {
        let (t, b, u) = (d.t, d.b, d.u);
        let (bu, bg) = (b * u, b * 4 * u);
        let one = T::one();
        let mut dxp = vec![T::zero(); t * bg];
        let mut dh_next = vec![T::zero(); bu];
        let mut dc_next = vec![T::zero(); bu];
        for s in (0..t).rev() {
            let ts = self.time(s, t);
            // Upstream gradient of h_{s+1}, plus what flowed back from step s+1.
            let mut dh = dh_next.clone();
            if self.sequences {
                for r in 0..b {
                    for j in 0..u {
                        dh[r * u + j] += gy[(r * t + s) * u + j];
                    }
                }
            } else if s + 1 == t {
                dh.iter_mut().zip(gy).for_each(|(a, &g)| *a += g);
            }
            let gates = &tr.gates[s * bg..(s + 1) * bg];
            let (c_prev, tcs) = (&tr.cs[s * bu..(s + 1) * bu], &tr.tcs[s * bu..(s + 1) * bu]);
            let dz = &mut dxp[ts * bg..(ts + 1) * bg];
            for r in 0..b {
                let gr = &gates[r * 4 * u..(r + 1) * 4 * u];
                let dzr = &mut dz[r * 4 * u..(r + 1) * 4 * u];
                for j in 0..u {
                    let k = r * u + j;
                    let (i, f, g, o) = (gr[j], gr[u + j], gr[2 * u + j], gr[3 * u + j]);
                    let tc = tcs[k];
                    let dc = dc_next[k] + dh[k] * o * (one - tc * tc);
                    dc_next[k] = dc * f;
                    dzr[j] = dc * g * i * (one - i);
                    dzr[u + j] = dc * c_prev[k] * f * (one - f);
                    dzr[2 * u + j] = dc * i * (one - g * g);
                    dzr[3 * u + j] = dh[k] * tc * o * (one - o);
                }
            }
            // Into h_s through the recurrent matmul (h_0 is a constant).
            if s > 0 {
                T::matmul(&mut dh_next, Mat::new(dz, b, 4 * u), Mat::new(rk, u, 4 * u).t(), false);
                if let Some(m) = mask {
                    dh_next.iter_mut().zip(m).for_each(|(a, &m)| *a *= m);
                }
            }
        }
        // Every step's h^T @ dz in one matmul; rows are (time, batch) in both.
        let mut drk = vec![T::zero(); u * 4 * u];
        T::matmul(&mut drk, Mat::new(&tr.hm, t * b, u).t(), Mat::new(&dxp, t * b, 4 * u), false);
        (dxp, drk)
    }

    fn dims(xp: &Layout) -> Result<Dims> {
        let (t, b, g4) = xp.shape().dims3()?;
        Ok(Dims { t, b, u: g4 / 4 })
    }

    fn out_shape(&self, d: &Dims) -> Shape {
        if self.sequences { Shape::from((d.b, d.t, d.u)) } else { Shape::from((d.b, d.u)) }
    }

    fn cpu(&self, xp: (&CpuStorage, &Layout), rk: (&CpuStorage, &Layout), mask: Option<(&CpuStorage, &Layout)>) -> Result<(CpuStorage, Shape)> {
        fn run<T: Real>(
            op: &LstmOp,
            xp: (&CpuStorage, &Layout),
            rk: (&CpuStorage, &Layout),
            mask: Option<(&CpuStorage, &Layout)>,
        ) -> Result<(CpuStorage, Shape)> {
            let d = LstmOp::dims(xp.1)?;
            let mask = match mask {
                Some((s, l)) => Some(cpu_slice::<T>(s, l)?),
                None => None,
            };
            let tr = op.forward(cpu_slice::<T>(xp.0, xp.1)?, cpu_slice::<T>(rk.0, rk.1)?, mask, &d);
            let y = op.output(&tr, &d);
            if let Ok(mut slot) = op.trace.lock() {
                *slot = Some(Arc::new(tr));
            }
            Ok((T::to_cpu_storage_owned(y), op.out_shape(&d)))
        }
        match xp.0 {
            CpuStorage::F32(_) => run::<f32>(self, xp, rk, mask),
            CpuStorage::F64(_) => run::<f64>(self, xp, rk, mask),
            _ => bail!("lstm kernel: f32 or f64 only"),
        }
    }

    fn grads(&self, xp: &Tensor, rk: &Tensor, mask: Option<&Tensor>, grad: &Tensor) -> Result<(Tensor, Tensor)> {
        fn run<T: Real>(op: &LstmOp, xp: &Tensor, rk: &Tensor, mask: Option<&Tensor>, grad: &Tensor) -> Result<(Tensor, Tensor)> {
            let d = LstmOp::dims(xp.layout())?;
            let g = grad.contiguous()?;
            let (hx, hr, hg) = (Host::of(xp)?, Host::of(rk)?, Host::of(&g)?);
            let hm = mask.map(Host::of).transpose()?;
            let m = match &hm {
                Some(h) => Some(h.slice::<T>()?),
                None => None,
            };
            let rks = hr.slice::<T>()?;
            // Kept by cpu_fwd; recomputed only if it is missing or of another type.
            let kept = op.trace.lock().ok().and_then(|t| t.clone());
            let recomputed;
            let tr = match kept.as_deref().and_then(|a| a.downcast_ref::<Trace<T>>()) {
                Some(tr) if tr.gates.len() == d.t * d.b * 4 * d.u => tr,
                _ => {
                    recomputed = op.forward(hx.slice::<T>()?, rks, m, &d);
                    &recomputed
                }
            };
            let (dxp, drk) = op.backward(tr, rks, m, hg.slice::<T>()?, &d);
            Ok((tensor_from(dxp, xp.shape(), xp)?, tensor_from(drk, rk.shape(), xp)?))
        }
        match xp.dtype() {
            DType::F32 => run::<f32>(self, xp, rk, mask, grad),
            DType::F64 => run::<f64>(self, xp, rk, mask, grad),
            dt => bail!("lstm kernel: f32 or f64 only, got {dt:?}"),
        }
    }
}

impl CustomOp2 for LstmOp {
    fn name(&self) -> &'static str {
        "nnrun-lstm"
    }
    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        self.cpu((s1, l1), (s2, l2), None)
    }
    fn bwd(&self, xp: &Tensor, rk: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (dxp, drk) = self.grads(xp, rk, None, grad)?;
        Ok((Some(dxp), Some(drk)))
    }
}

impl CustomOp3 for LstmOp {
    fn name(&self) -> &'static str {
        "nnrun-lstm-masked"
    }
    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout, s3: &CpuStorage, l3: &Layout) -> Result<(CpuStorage, Shape)> {
        self.cpu((s1, l1), (s2, l2), Some((s3, l3)))
    }
    fn bwd(&self, xp: &Tensor, rk: &Tensor, mask: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dxp, drk) = self.grads(xp, rk, Some(mask), grad)?;
        // The dropout mask is a constant.
        Ok((Some(dxp), Some(drk), None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{assert_close, flat, random};

    /// Backward without a kept trace (recomputed) equals backward with it.
    #[test]
    fn recomputed_trace_gives_the_same_gradients() {
        let (xp, rk, mask) = (random(&[4, 3, 8], 1, DType::F32), random(&[2, 8], 2, DType::F32), random(&[3, 2], 3, DType::F32));
        for sequences in [false, true] {
            let kept = LstmOp { backwards: true, sequences, trace: Mutex::new(None) };
            let y = xp.apply_op3_no_bwd(&rk, &mask, &kept).unwrap();
            let g = random(y.dims(), 4, DType::F32);
            let fresh = LstmOp { backwards: true, sequences, trace: Mutex::new(None) };
            let (a, b) = (kept.grads(&xp, &rk, Some(&mask), &g).unwrap(), fresh.grads(&xp, &rk, Some(&mask), &g).unwrap());
            assert!(kept.trace.lock().unwrap().is_some() && fresh.trace.lock().unwrap().is_none());
            assert_close(&flat(&a.0), &flat(&b.0), 0.0, "dxp");
            assert_close(&flat(&a.1), &flat(&b.1), 0.0, "drk");
        }
        // Shapes that do not fit are errors, not panics.
        assert!(lstm(&xp, &random(&[3, 8], 2, DType::F32), None, false, false).is_err());
        assert!(lstm(&xp, &rk, Some(&random(&[2, 2], 3, DType::F32)), false, false).is_err());
    }
}
