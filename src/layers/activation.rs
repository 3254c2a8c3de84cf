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
