//! Weight gradients written in place by the kernels' backward passes.
//!
//! candle's backward gives each gradient a fresh zeroed tensor and adds the
//! op's result into it: for a 784x512 Dense kernel that is an allocation, a
//! 1.6 MB memset and a three-stream add per step, on top of the kernel's own
//! freshly allocated result. With a sink, a kernel writes its weight gradient
//! straight into a buffer kept from step to step, tells candle it has none,
//! and the optimizer takes it from here. A weight that a kernel writes twice
//! in a step (a shared layer) gets the sum, as in candle (a deep product
//! may associate that sum differently: sgemm adds each depth block into
//! the buffer).
//!
//! Only `fit` makes a sink, for the trainable variables; everything else
//! (tests, other devices, candle-op layers) keeps candle's gradients.

use super::host::{Real, dst_slice};
use candle_core::{CpuStorage, InplaceOp1, Layout, Result, Tensor, TensorId, Var, bail};
use std::cell::Cell;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The gradient buffer of one variable.
pub struct Slot {
    like: Tensor,
    /// Made on the first write: the CPU kernels are the only writers.
    grad: Mutex<Option<Tensor>>,
    /// Written since the optimizer last took it: the next write adds.
    written: AtomicBool,
}

impl Slot {
    /// Runs `f` on the buffer's values with `accumulate` false for the first
    /// write of a step (overwrite every value) and true after it (add).
    pub fn write<T: Real, R>(&self, f: impl FnOnce(&mut [T], bool) -> R) -> Result<R> {
        let mut guard = self.grad.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            *guard = Some(self.like.zeros_like()?.detach());
        }
        let grad = guard.as_ref().expect("made above");
        let accumulate = self.written.load(Ordering::Acquire);
        let mut out = None;
        grad.inplace_op1(&Write::<T, _> { f: Cell::new(Some(|s: &mut [T]| out = Some(f(s, accumulate)))), _t: PhantomData })?;
        self.written.store(true, Ordering::Release);
        out.ok_or_else(|| candle_core::Error::Msg("grad sink: the buffer was not written".into()))
    }

    /// This step's gradient, if a kernel wrote one; the next write overwrites.
    /// The tensor shares the buffer: use it before the next backward pass.
    fn take(&self) -> Option<Tensor> {
        if !self.written.swap(false, Ordering::AcqRel) {
            return None;
        }
        self.grad.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Hands a closure the contiguous values of a CPU tensor, mutably.
struct Write<T, F> {
    f: Cell<Option<F>>,
    _t: PhantomData<fn(&mut [T])>,
}

impl<T: Real, F: FnOnce(&mut [T])> InplaceOp1 for Write<T, F> {
    fn name(&self) -> &'static str {
        "nnrun-grad-sink"
    }
    fn cpu_fwd(&self, s: &mut CpuStorage, l: &Layout) -> Result<()> {
        let Some((a, b)) = l.contiguous_offsets() else { bail!("grad sink: expected a contiguous buffer") };
        let Some(f) = self.f.take() else { bail!("grad sink: written twice in one call") };
        f(&mut dst_slice::<T>(s)?[a..b]);
        Ok(())
    }
}

/// The slots of a model's trainable variables.
#[derive(Default)]
pub struct Sink {
    slots: HashMap<TensorId, Arc<Slot>>,
}

impl Sink {
    pub fn new(vars: &[Var]) -> Sink {
        let slots =
            vars.iter().map(|v| (v.id(), Arc::new(Slot { like: v.as_tensor().clone(), grad: Mutex::new(None), written: AtomicBool::new(false) }))).collect();
        Sink { slots }
    }

    /// The slot of `w`, when `w` is a variable of this sink.
    pub fn slot(&self, w: &Tensor) -> Option<Arc<Slot>> {
        self.slots.get(&w.id()).cloned()
    }

    /// `w`'s gradient of this step written here, if any; clears the slot.
    pub fn take(&self, w: &Tensor) -> Option<Tensor> {
        self.slots.get(&w.id()).and_then(|s| s.take())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    #[test]
    fn first_write_overwrites_then_adds_until_taken() {
        let v = Var::from_tensor(&Tensor::new(&[1f32, 2.0, 3.0], &Device::Cpu).unwrap()).unwrap();
        let sink = Sink::new(std::slice::from_ref(&v));
        let slot = sink.slot(v.as_tensor()).expect("a slot per variable");
        assert!(sink.take(v.as_tensor()).is_none(), "nothing written yet");
        let put = |vals: [f32; 3]| {
            slot.write::<f32, ()>(|d, acc| {
                for (d, x) in d.iter_mut().zip(vals) {
                    *d = if acc { *d + x } else { x };
                }
            })
            .unwrap()
        };
        put([1.0, 1.0, 1.0]);
        put([0.5, 0.0, -1.0]);
        let g = sink.take(v.as_tensor()).unwrap();
        assert_eq!(g.to_vec1::<f32>().unwrap(), [1.5, 1.0, 0.0]);
        assert!(sink.take(v.as_tensor()).is_none(), "taken once per step");
        put([7.0, 8.0, 9.0]);
        assert_eq!(sink.take(v.as_tensor()).unwrap().to_vec1::<f32>().unwrap(), [7.0, 8.0, 9.0]);
        // Other tensors have no slot.
        assert!(sink.slot(&Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap()).is_none());
    }
}
