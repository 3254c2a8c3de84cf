//! Keras activation names, and the initializer names layers accept.

use crate::spec::args::Args;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Linear,
    Relu,
    Sigmoid,
    Tanh,
    Softmax,
    Elu,
    Selu,
    Gelu,
    Silu,
    Softplus,
    Softsign,
    LeakyRelu,
    Relu6,
    HardSigmoid,
    Exponential,
}

/// Spec names, with `swish` as Keras's alias of `silu`.
const NAMES: &[(&str, Activation)] = &[
    ("linear", Activation::Linear),
    ("relu", Activation::Relu),
    ("sigmoid", Activation::Sigmoid),
    ("tanh", Activation::Tanh),
    ("softmax", Activation::Softmax),
    ("elu", Activation::Elu),
    ("selu", Activation::Selu),
    ("gelu", Activation::Gelu),
    ("silu", Activation::Silu),
    ("swish", Activation::Silu),
    ("softplus", Activation::Softplus),
    ("softsign", Activation::Softsign),
    ("leaky_relu", Activation::LeakyRelu),
    ("relu6", Activation::Relu6),
    ("hard_sigmoid", Activation::HardSigmoid),
    ("exponential", Activation::Exponential),
];

impl Activation {
    pub fn from_name(name: &str) -> Option<Self> {
        NAMES.iter().find(|(n, _)| *n == name).map(|(_, a)| *a)
    }

    pub fn name(&self) -> &'static str {
        NAMES.iter().find(|(_, a)| a == self).map(|(n, _)| *n).unwrap_or("linear")
    }

    pub fn names() -> Vec<&'static str> {
        NAMES.iter().map(|(n, _)| *n).collect()
    }
}

/// Reads an activation argument. An explicit null means linear, as in Keras.
/// `default: None` makes it required (the Activation layer).
pub fn read_activation(args: &mut Args, name: &'static str, default: Option<Activation>) -> Activation {
    let kind = "activation name";
    let doc_default = default.map(|d| format!("\"{}\"", d.name()));
    let default = default.unwrap_or(Activation::Linear);
    if args.explicit_null(name).is_some() {
        return Activation::Linear; // Keras: `activation=None` is linear
    }
    let Some(node) = args.raw(name, kind, doc_default) else { return default };
    let Some(s) = node.as_str() else {
        args.error(name, node, format!("must be an activation name, received {}", node.describe()), None);
        return default;
    };
    Activation::from_name(s).unwrap_or_else(|| {
        let hint = crate::diag::suggestion(s, &Activation::names());
        args.error(name, node, format!("names an unknown activation \"{s}\""), hint);
        default
    })
}

/// Keras initializer names. Only the name is read here; the values are drawn
/// by the training engine.
pub const INITIALIZERS: &[&str] = &[
    "glorot_uniform",
    "glorot_normal",
    "he_uniform",
    "he_normal",
    "lecun_uniform",
    "lecun_normal",
    "orthogonal",
    "random_normal",
    "random_uniform",
    "truncated_normal",
    "uniform",
    "zeros",
    "ones",
];

pub fn read_initializer(args: &mut Args, name: &'static str, default: &'static str) -> &'static str {
    args.choice(name, Some(default), INITIALIZERS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::yaml::parse;

    #[test]
    fn names_round_trip_and_swish_is_silu() {
        for n in Activation::names() {
            let a = Activation::from_name(n).unwrap();
            if n != "swish" {
                assert_eq!(a.name(), n);
            }
        }
        assert_eq!(Activation::from_name("swish"), Some(Activation::Silu));
        assert_eq!(Activation::names().len(), 16);
    }

    #[test]
    fn unknown_activation_suggests() {
        let n = parse("activation: sigmiod").unwrap();
        let mut a = Args::new(&n, "l", "layer 'd' (Dense)", &[]);
        assert_eq!(read_activation(&mut a, "activation", Some(Activation::Linear)), Activation::Linear);
        assert_eq!(a.diags[0].message, "layer 'd' (Dense): `activation` names an unknown activation \"sigmiod\"");
        assert_eq!(a.diags[0].hint.as_deref(), Some("did you mean 'sigmoid'?"));
    }
}

impl Activation {
    /// Applies the activation with ops whose gradients candle gets right
    /// (not the fused `softmax_last_dim`, which has no backward).
    pub fn apply(&self, x: &candle_core::Tensor) -> candle_core::Result<candle_core::Tensor> {
        use candle_core::D;
        match self {
            Activation::Linear => Ok(x.clone()),
            Activation::Relu => x.relu(),
            Activation::Sigmoid => sigmoid(x),
            Activation::Tanh => x.tanh(),
            Activation::Softmax => candle_nn::ops::softmax(x, D::Minus1),
            Activation::Elu => elu(x, 1.0),
            // Keras's SELU constants.
            Activation::Selu => elu(x, 1.673_263_242_354_377_3)? * 1.050_700_987_355_480_5,
            // Keras 3 gelu defaults to approximate=False: the erf form.
            Activation::Gelu => x.gelu_erf(),
            Activation::Silu => x.silu(),
            // log(1 + e^x) without overflow: relu(x) + log(1 + e^-|x|).
            Activation::Softplus => x.relu()? + (x.abs()?.neg()?.exp()? + 1.0)?.log()?,
            Activation::Softsign => x / (x.abs()? + 1.0)?,
            // Keras 3 default negative_slope is 0.2.
            Activation::LeakyRelu => x.maximum(&(x * 0.2)?),
            Activation::Relu6 => x.relu()?.minimum(6.0),
            // Keras 3: relu6(x + 3) / 6.
            Activation::HardSigmoid => (x + 3.0)?.relu()?.minimum(6.0)? / 6.0,
            Activation::Exponential => x.exp(),
        }
    }
}

/// 1 / (1 + e^-x) as candle-nn's one op, whose gradient is y (1 - y). The
/// chain neg, exp, +1, recip costs four ops and its backward multiplies
/// 0 by exp(-x) = inf, a NaN, wherever the sigmoid saturates (x < -88 in f32).
pub fn sigmoid(x: &candle_core::Tensor) -> candle_core::Result<candle_core::Tensor> {
    candle_nn::ops::sigmoid(x)
}

/// x for x > 0, alpha * (e^x - 1) otherwise, from ops so the gradient flows.
fn elu(x: &candle_core::Tensor, alpha: f64) -> candle_core::Result<candle_core::Tensor> {
    let neg = ((x.minimum(0.0)?.exp()? - 1.0)? * alpha)?;
    x.relu()? + neg
}

#[cfg(test)]
mod apply_tests {
    use super::*;
    use candle_core::{Device, Tensor};

    #[test]
    fn values_match_keras() {
        let x = Tensor::new(&[-2.0f64, -0.5, 0.0, 0.5, 3.0, 8.0], &Device::Cpu).unwrap();
        let get = |a: Activation| a.apply(&x).unwrap().to_vec1::<f64>().unwrap();
        let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6);
        assert!(close(&get(Activation::Relu6), &[0.0, 0.0, 0.0, 0.5, 3.0, 6.0]));
        assert!(close(&get(Activation::LeakyRelu), &[-0.4, -0.1, 0.0, 0.5, 3.0, 8.0]));
        assert!(close(&get(Activation::HardSigmoid), &[1.0 / 6.0, 2.5 / 6.0, 0.5, 3.5 / 6.0, 1.0, 1.0]));
        let sp = get(Activation::Softplus);
        assert!((sp[5] - (1f64 + 8f64.exp()).ln()).abs() < 1e-9);
        let sig = get(Activation::Sigmoid);
        assert!((sig[0] - 1.0 / (1.0 + 2f64.exp())).abs() < 1e-12);
        let elu = get(Activation::Elu);
        assert!((elu[0] - ((-2f64).exp() - 1.0)).abs() < 1e-12 && elu[4] == 3.0);
        let sm = get(Activation::Softmax);
        assert!((sm.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }

    /// Saturated sigmoids have gradient 0 (y (1 - y)), not NaN, and f32
    /// values agree with the formula.
    #[test]
    fn sigmoid_saturates_with_finite_gradients() {
        let v = candle_core::Var::new(&[-1000.0f32, -90.0, -3.0, 0.0, 2.5, 90.0, 1000.0], &Device::Cpu).unwrap();
        let y = Activation::Sigmoid.apply(v.as_tensor()).unwrap();
        let g = y.sum_all().unwrap().backward().unwrap().get(v.as_tensor()).unwrap().to_vec1::<f32>().unwrap();
        let ys = y.to_vec1::<f32>().unwrap();
        for ((&x, &y), &g) in v.as_tensor().to_vec1::<f32>().unwrap().iter().zip(&ys).zip(&g) {
            let want = 1.0 / (1.0 + (-(x as f64)).exp());
            assert!((y as f64 - want).abs() < 1e-7, "sigmoid({x}) = {y}");
            assert!(g.is_finite() && (g as f64 - want * (1.0 - want)).abs() < 1e-7, "d sigmoid({x}) = {g}");
        }
    }
}
