//! Keras losses with Keras numerics: probabilities are clipped to
//! `[1e-7, 1 - 1e-7]`; with `logits` the final softmax / sigmoid is fused into
//! the loss so that saturated outputs keep finite values and gradients.
//!
//! Reduction is Keras's `sum_over_batch_size`: a loss per row (the last axis),
//! then the mean over every other axis (batch, and time steps for rank > 2).

use crate::layers::activation::Activation;
use candle_core::{D, DType, Result, Tensor, bail};

/// Keras `backend.epsilon()`.
pub const EPSILON: f64 = 1e-7;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Loss {
    BinaryCrossentropy,
    CategoricalCrossentropy,
    SparseCategoricalCrossentropy,
    MeanSquaredError,
    MeanAbsoluteError,
    Huber {
        delta: f64,
    },
    /// Connectionist Temporal Classification over (time, classes) outputs;
    /// targets are token indices padded with -1 (`data::prep`). `classes`
    /// and `blank` come from the output (`config::read`); `beam` is the
    /// decoding width of the metrics (1: greedy) and changes no loss.
    Ctc {
        classes: usize,
        blank: usize,
        zero_infinity: bool,
        beam: usize,
    },
}

impl Loss {
    /// Spec names as in `spec::training::LOSSES` (`mse`, `mae` are aliases).
    pub fn from_name(name: &str) -> Option<Loss> {
        Some(match crate::spec::training::canonical_loss(name) {
            "binary_crossentropy" => Loss::BinaryCrossentropy,
            "categorical_crossentropy" => Loss::CategoricalCrossentropy,
            "sparse_categorical_crossentropy" => Loss::SparseCategoricalCrossentropy,
            "mean_squared_error" => Loss::MeanSquaredError,
            "mean_absolute_error" => Loss::MeanAbsoluteError,
            "huber" => Loss::Huber { delta: 1.0 },
            // The blank is resolved against the output by `config::read`.
            "ctc" => Loss::Ctc { classes: 0, blank: usize::MAX, zero_infinity: false, beam: 1 },
            _ => return None,
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Loss::BinaryCrossentropy => "binary_crossentropy",
            Loss::CategoricalCrossentropy => "categorical_crossentropy",
            Loss::SparseCategoricalCrossentropy => "sparse_categorical_crossentropy",
            Loss::MeanSquaredError => "mean_squared_error",
            Loss::MeanAbsoluteError => "mean_absolute_error",
            Loss::Huber { .. } => "huber",
            Loss::Ctc { .. } => "ctc",
        }
    }

    /// The output activation this loss can absorb (then call `compute` with
    /// the pre-activation values and `logits: true`).
    pub fn fusable(&self) -> Option<Activation> {
        match self {
            Loss::BinaryCrossentropy => Some(Activation::Sigmoid),
            Loss::CategoricalCrossentropy | Loss::SparseCategoricalCrossentropy | Loss::Ctc { .. } => Some(Activation::Softmax),
            _ => None,
        }
    }

    /// Mean over the batch (a rank-0 tensor). `y_pred` is probabilities, or
    /// pre-activation logits when `logits` is true. Sparse `y_true` holds class
    /// indices (any float dtype) with one value per row: shape (B,), (B, 1),
    /// (B, T) or (B, T, 1).
    pub fn compute(&self, y_pred: &Tensor, y_true: &Tensor, logits: bool) -> Result<Tensor> {
        if let Loss::Ctc { .. } = self {
            return self.per_row(y_pred, y_true, logits)?.mean_all();
        }
        if logits && let Some(l) = self.fused_logits_kernel(y_pred, y_true)? {
            return Ok(l);
        }
        self.compute_ops(y_pred, y_true, logits)
    }

    /// `compute` from candle ops only: where the kernels don't apply, and
    /// the reference they are tested against.
    pub fn compute_ops(&self, y_pred: &Tensor, y_true: &Tensor, logits: bool) -> Result<Tensor> {
        self.per_row(y_pred, y_true, logits)?.mean_all()
    }

    /// The fused crossentropies as one CPU op each (`kernels::loss`); None
    /// where they don't apply (the ops then report any shape error).
    fn fused_logits_kernel(&self, y_pred: &Tensor, y_true: &Tensor) -> Result<Option<Tensor>> {
        use crate::kernels::loss::{FromLogits, mean_loss};
        let kind = match self {
            Loss::BinaryCrossentropy => FromLogits::SigmoidBinaryCrossentropy,
            Loss::CategoricalCrossentropy => FromLogits::SoftmaxCrossentropy,
            // One class index per row, in row order whatever its shape.
            Loss::SparseCategoricalCrossentropy => return mean_loss(FromLogits::SparseSoftmaxCrossentropy, y_pred, y_true),
            _ => return Ok(None),
        };
        if y_true.elem_count() != y_pred.elem_count() {
            return Ok(None);
        }
        mean_loss(kind, y_pred, &align(y_pred, y_true, self.name())?)
    }

    /// The loss of each row: `y_pred`'s shape without its last axis (CTC:
    /// one loss per sequence, shape (batch,)).
    pub fn per_row(&self, y_pred: &Tensor, y_true: &Tensor, logits: bool) -> Result<Tensor> {
        if let Loss::Ctc { blank, zero_infinity, .. } = *self {
            return ctc_losses(y_pred, y_true, logits, blank, zero_infinity);
        }
        if logits && self.fusable().is_none() {
            bail!("loss {} has no logits form", self.name());
        }
        if *self == Loss::SparseCategoricalCrossentropy {
            return sparse_ce(y_pred, y_true, logits);
        }
        let t = align(y_pred, y_true, self.name())?;
        match *self {
            Loss::BinaryCrossentropy if logits => {
                // relu(x) - x t + log(1 + e^-|x|): e^-|x| <= 1, so nothing overflows.
                let soft = (y_pred.abs()?.neg()?.exp()? + 1.0)?.log()?;
                ((y_pred.relu()? - (y_pred * &t)?)? + soft)?.mean(D::Minus1)
            }
            Loss::BinaryCrossentropy => {
                let p = y_pred.clamp(EPSILON, 1.0 - EPSILON)?;
                let pos = (&t * p.log()?)?;
                let neg = (t.affine(-1.0, 1.0)? * p.affine(-1.0, 1.0)?.log()?)?;
                (pos + neg)?.neg()?.mean(D::Minus1)
            }
            Loss::CategoricalCrossentropy => (t * class_log_probs(y_pred, logits)?)?.sum(D::Minus1)?.neg(),
            Loss::MeanSquaredError => (y_pred - &t)?.sqr()?.mean(D::Minus1),
            Loss::MeanAbsoluteError => (y_pred - &t)?.abs()?.mean(D::Minus1),
            Loss::Huber { delta } => {
                let err = (y_pred - &t)?;
                let abs = err.abs()?;
                let quad = (err.sqr()? * 0.5)?;
                let lin = abs.affine(delta, -0.5 * delta * delta)?;
                abs.le(delta)?.where_cond(&quad, &lin)?.mean(D::Minus1)
            }
            Loss::SparseCategoricalCrossentropy | Loss::Ctc { .. } => unreachable!("handled above"),
        }
    }
}

/// log of the class probabilities: log_softmax for logits; else Keras's
/// normalise-then-clip of the given probabilities.
fn class_log_probs(y_pred: &Tensor, logits: bool) -> Result<Tensor> {
    if logits {
        return candle_nn::ops::log_softmax(y_pred, D::Minus1);
    }
    let p = y_pred.broadcast_div(&y_pred.sum_keepdim(D::Minus1)?)?;
    p.clamp(EPSILON, 1.0 - EPSILON)?.log()
}

/// Per-sequence CTC losses. Without `logits` the outputs are softmax
/// probabilities, and their log (clipped like Keras's crossentropies) is
/// what the loss log-softmaxes again (a no-op on log-probabilities).
fn ctc_losses(y_pred: &Tensor, y_true: &Tensor, logits: bool, blank: usize, zero_infinity: bool) -> Result<Tensor> {
    let b = match y_pred.dims() {
        &[b, _, _] => b,
        d => bail!("ctc needs outputs of shape (batch, time, classes), received {d:?}"),
    };
    if y_true.dims().first() != Some(&b) {
        bail!("ctc: targets {:?} for outputs {:?}", y_true.dims(), y_pred.dims());
    }
    let tokens = y_true.flatten_from(1)?.to_dtype(DType::F32)?.to_vec2::<f32>()?;
    let targets: Vec<Vec<usize>> = tokens.iter().map(|row| super::ctc::classes_of(row, blank)).collect();
    let x = if logits { y_pred.clone() } else { y_pred.clamp(EPSILON, 1.0 - EPSILON)?.log()? };
    super::ctc::loss(&x, &targets, blank, zero_infinity)
}

fn sparse_ce(y_pred: &Tensor, y_true: &Tensor, logits: bool) -> Result<Tensor> {
    let mut dims = y_pred.dims().to_vec();
    let Some(last) = dims.last_mut() else { bail!("sparse_categorical_crossentropy needs predictions of rank >= 1") };
    *last = 1;
    let rows: usize = dims.iter().product();
    if y_true.elem_count() != rows {
        bail!("sparse_categorical_crossentropy: targets {:?} need one class index per row of predictions {:?}", y_true.dims(), y_pred.dims());
    }
    let idx = y_true.reshape(dims)?.to_dtype(DType::U32)?;
    class_log_probs(y_pred, logits)?.gather(&idx, D::Minus1)?.squeeze(D::Minus1)?.neg()
}

/// Targets reshaped to the predictions' shape, as Keras squeezes or expands
/// (B,) against (B, 1).
fn align(y_pred: &Tensor, y_true: &Tensor, loss: &str) -> Result<Tensor> {
    if y_true.dims() == y_pred.dims() {
        return Ok(y_true.clone());
    }
    if y_true.elem_count() != y_pred.elem_count() {
        bail!("{loss}: targets of shape {:?} do not match predictions of shape {:?}", y_true.dims(), y_pred.dims());
    }
    y_true.reshape(y_pred.shape())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    const CPU: &Device = &Device::Cpu;

    fn t2(rows: &[&[f64]]) -> Tensor {
        let v: Vec<f64> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        Tensor::from_vec(v, (rows.len(), rows[0].len()), CPU).unwrap()
    }

    fn val(loss: Loss, p: &Tensor, t: &Tensor, logits: bool) -> f64 {
        loss.compute(p, t, logits).unwrap().to_scalar::<f64>().unwrap()
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * (1.0 + b.abs())
    }

    #[test]
    fn names_and_aliases() {
        assert_eq!(Loss::from_name("mse"), Some(Loss::MeanSquaredError));
        assert_eq!(Loss::from_name("mae"), Some(Loss::MeanAbsoluteError));
        assert_eq!(Loss::from_name("huber"), Some(Loss::Huber { delta: 1.0 }));
        assert_eq!(Loss::from_name("hinge"), None);
        for n in crate::spec::training::LOSSES {
            let l = Loss::from_name(n).unwrap();
            assert_eq!(Loss::from_name(l.name()), Some(l));
        }
        assert_eq!(Loss::SparseCategoricalCrossentropy.fusable(), Some(Activation::Softmax));
        assert_eq!(Loss::BinaryCrossentropy.fusable(), Some(Activation::Sigmoid));
        assert_eq!(Loss::MeanSquaredError.fusable(), None);
    }

    #[test]
    fn values_match_keras_formulas() {
        let ln = f64::ln;
        // Categorical: rows are normalised first (the second sums to 2).
        let p = t2(&[&[0.7, 0.2, 0.1], &[0.2, 1.6, 0.2]]);
        let t = t2(&[&[1.0, 0.0, 0.0], &[0.0, 1.0, 0.0]]);
        let want = -(ln(0.7) + ln(0.8)) / 2.0;
        assert!(close(val(Loss::CategoricalCrossentropy, &p, &t, false), want, 1e-12));
        // Clipping: a zero probability costs -ln(1e-7), not inf.
        let p0 = t2(&[&[0.0, 1.0]]);
        let t0 = t2(&[&[1.0, 0.0]]);
        assert!(close(val(Loss::CategoricalCrossentropy, &p0, &t0, false), -ln(1e-7), 1e-9));

        // Sparse: indices as floats, shape (B,) or (B, 1).
        let idx = Tensor::new(&[0.0f64, 1.0], CPU).unwrap();
        assert!(close(val(Loss::SparseCategoricalCrossentropy, &p, &idx, false), want, 1e-12));
        let idx = idx.reshape((2, 1)).unwrap();
        assert!(close(val(Loss::SparseCategoricalCrossentropy, &p, &idx, false), want, 1e-12));

        // Binary: mean over the last axis, then over the batch; targets (B,) against (B, 1) too.
        let p = t2(&[&[0.9, 0.2], &[0.4, 1.0]]);
        let t = t2(&[&[1.0, 0.0], &[1.0, 1.0]]);
        let r0 = -(ln(0.9) + ln(0.8)) / 2.0;
        let r1 = -(ln(0.4) + ln(1.0 - 1e-7)) / 2.0;
        assert!(close(val(Loss::BinaryCrossentropy, &p, &t, false), (r0 + r1) / 2.0, 1e-12));
        let p1 = t2(&[&[0.9], &[0.4]]);
        let t1 = Tensor::new(&[1.0f64, 0.0], CPU).unwrap();
        assert!(close(val(Loss::BinaryCrossentropy, &p1, &t1, false), -(ln(0.9) + ln(0.6)) / 2.0, 1e-12));

        // Regression losses.
        let p = t2(&[&[1.0, 2.0], &[0.0, -3.0]]);
        let t = t2(&[&[0.5, 4.0], &[0.0, 0.0]]);
        assert!(close(val(Loss::MeanSquaredError, &p, &t, false), ((0.25 + 4.0) / 2.0 + 9.0 / 2.0) / 2.0, 1e-12));
        assert!(close(val(Loss::MeanAbsoluteError, &p, &t, false), ((0.5 + 2.0) / 2.0 + 3.0 / 2.0) / 2.0, 1e-12));
        // Huber (delta 1): 0.5 e^2 inside, |e| - 0.5 outside.
        let h = ((0.125 + 1.5) / 2.0 + 2.5 / 2.0) / 2.0;
        assert!(close(val(Loss::Huber { delta: 1.0 }, &p, &t, false), h, 1e-12));
        let h2 = ((0.125 + 2.0) / 2.0 + (2.0 * 3.0 - 2.0) / 2.0) / 2.0;
        assert!(close(val(Loss::Huber { delta: 2.0 }, &p, &t, false), h2, 1e-12));
    }

    #[test]
    fn ctc_from_logits_or_probabilities_is_the_mean_sequence_nll() {
        let dev = &candle_core::Device::Cpu;
        let x = Tensor::new(&[[[0.5f64, -1.0, 0.2], [1.5, 0.3, -0.7]], [[0.1, 0.9, -0.3], [-0.4, 0.2, 0.8]]], dev).unwrap();
        // Sample 0: token 0 ("a"); sample 1: tokens 1 0, padded to width 2.
        let t = Tensor::new(&[[0.0f32, -1.0], [1.0, 0.0]], dev).unwrap();
        let ctc = Loss::from_name("ctc").unwrap();
        let Loss::Ctc { .. } = ctc else { panic!() };
        let ctc = Loss::Ctc { classes: 3, blank: 2, zero_infinity: false, beam: 1 };
        let rows: Vec<Vec<f32>> = x.to_dtype(DType::F32).unwrap().to_vec3::<f32>().unwrap().concat();
        let want =
            (crate::train::ctc::nll(&rows[..2].concat(), 2, 3, &[0], 2, None) + crate::train::ctc::nll(&rows[2..].concat(), 2, 3, &[1, 0], 2, None)) / 2.0;
        assert!(close(val(ctc, &x, &t, true), want, 1e-5));
        let p = candle_nn::ops::softmax(&x, D::Minus1).unwrap();
        assert!(close(val(ctc, &p, &t, false), want, 1e-5));
        assert_eq!(ctc.name(), "ctc");
        assert_eq!(ctc.fusable(), Some(Activation::Softmax));
        assert!(ctc.compute(&x.flatten_from(1).unwrap(), &t, true).unwrap_err().to_string().contains("ctc needs outputs of shape (batch, time, classes)"));
    }

    #[test]
    fn per_timestep_outputs_average_over_all_rows() {
        // (B=1, T=2, C=2): two rows, mean of their losses.
        let p = Tensor::new(&[[[0.75f64, 0.25], [0.5, 0.5]]], CPU).unwrap();
        let t = Tensor::new(&[[[1.0f64, 0.0], [0.0, 1.0]]], CPU).unwrap();
        let want = -(0.75f64.ln() + 0.5f64.ln()) / 2.0;
        assert!(close(val(Loss::CategoricalCrossentropy, &p, &t, false), want, 1e-12));
        let idx = Tensor::new(&[[0.0f64, 1.0]], CPU).unwrap();
        assert!(close(val(Loss::SparseCategoricalCrossentropy, &p, &idx, false), want, 1e-12));
        assert_eq!(Loss::MeanSquaredError.per_row(&p, &t, false).unwrap().dims(), &[1, 2]);
    }

    #[test]
    fn logits_path_matches_probabilities_and_stays_finite() {
        let x = t2(&[&[1.5, -0.3, 0.2], &[-2.0, 0.7, 3.1]]);
        let t = t2(&[&[0.0, 1.0, 0.0], &[0.0, 0.0, 1.0]]);
        let sm = Activation::Softmax.apply(&x).unwrap();
        let a = val(Loss::CategoricalCrossentropy, &x, &t, true);
        assert!(close(a, val(Loss::CategoricalCrossentropy, &sm, &t, false), 1e-6));
        let idx = Tensor::new(&[1.0f64, 2.0], CPU).unwrap();
        assert!(close(val(Loss::SparseCategoricalCrossentropy, &x, &idx, true), a, 1e-6));
        let tb = t2(&[&[0.0, 1.0, 1.0], &[1.0, 0.0, 1.0]]);
        let sg = Activation::Sigmoid.apply(&x).unwrap();
        let b = val(Loss::BinaryCrossentropy, &x, &tb, true);
        assert!(close(b, val(Loss::BinaryCrossentropy, &sg, &tb, false), 1e-6));

        // Saturated logits: the naive log(sigmoid) / log(softmax) forms give inf.
        let big = t2(&[&[100.0, -100.0]]);
        let wrong = t2(&[&[0.0, 1.0]]);
        let b = val(Loss::BinaryCrossentropy, &big, &wrong, true);
        assert!(close(b, 100.0, 1e-9), "{b}");
        let c = val(Loss::CategoricalCrossentropy, &big, &wrong, true);
        assert!(close(c, 200.0, 1e-9), "{c}");
        let naive = candle_nn::loss::binary_cross_entropy_with_logit(&big, &wrong).unwrap().to_scalar::<f64>().unwrap();
        assert!(!naive.is_finite(), "candle's form got fixed? {naive}");
        // f32 as well, with finite gradients.
        let v = Var::from_tensor(&big.to_dtype(DType::F32).unwrap()).unwrap();
        for loss in [Loss::BinaryCrossentropy, Loss::CategoricalCrossentropy] {
            let l = loss.compute(v.as_tensor(), &wrong.to_dtype(DType::F32).unwrap(), true).unwrap();
            assert!(l.to_scalar::<f32>().unwrap().is_finite());
            let g = l.backward().unwrap().get(v.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert!(g.iter().all(|x| x.is_finite()), "{g:?}");
        }
        assert!(Loss::MeanSquaredError.compute(&x, &t, true).is_err());
    }

    /// Analytic gradient of the loss w.r.t. y_pred against central differences.
    fn check_grad(loss: Loss, p: &Tensor, t: &Tensor, logits: bool) {
        let v = Var::from_tensor(p).unwrap();
        let l = loss.compute(v.as_tensor(), t, logits).unwrap();
        let g = l.backward().unwrap().get(v.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let base = p.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let h = 1e-6;
        for i in 0..base.len() {
            let at = |d: f64| {
                let mut x = base.clone();
                x[i] += d;
                let x = Tensor::from_vec(x, p.shape(), CPU).unwrap();
                val(loss, &x, t, logits)
            };
            let fd = (at(h) - at(-h)) / (2.0 * h);
            assert!((fd - g[i]).abs() < 1e-6 * (1.0 + fd.abs()), "{} logits={logits} [{i}]: fd {fd} vs {}", loss.name(), g[i]);
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let p = t2(&[&[0.6, 0.3, 0.1], &[0.2, 0.5, 0.3]]);
        let onehot = t2(&[&[1.0, 0.0, 0.0], &[0.0, 0.0, 1.0]]);
        let idx = Tensor::new(&[0.0f64, 2.0], CPU).unwrap();
        let multi = t2(&[&[1.0, 0.0, 1.0], &[0.0, 1.0, 1.0]]);
        let x = t2(&[&[1.2, -0.4, 0.3], &[-1.7, 0.9, 2.2]]);
        for logits in [false, true] {
            let y = if logits { &x } else { &p };
            check_grad(Loss::CategoricalCrossentropy, y, &onehot, logits);
            check_grad(Loss::SparseCategoricalCrossentropy, y, &idx, logits);
            check_grad(Loss::BinaryCrossentropy, y, &multi, logits);
        }
        for loss in [Loss::MeanSquaredError, Loss::MeanAbsoluteError, Loss::Huber { delta: 1.0 }] {
            check_grad(loss, &x, &p, false);
        }
    }
}
