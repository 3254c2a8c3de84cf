//! Normalization layers: BatchNormalization, LayerNormalization.

use super::activation::read_initializer;
use super::{fmt_shape, resolve_axis, Layer, LayerType, Shape, ShapeError, Weight};
use crate::spec::args::Args;

/// `epsilon` must be > 0; `Args::float` only knows closed lower bounds.
fn positive_float(a: &mut Args, name: &'static str, default: f64) -> f64 {
    let Some(node) = a.raw(name, "a number > 0", Some(default.to_string())) else { return default };
    match node.as_f64() {
        Some(f) if f > 0.0 => f,
        _ => {
            a.error(name, node, format!("must be a number > 0, received {}", node.describe()), None);
            default
        }
    }
}

// ---- BatchNormalization -------------------------------------------------------------

pub static BATCH_NORMALIZATION: LayerType = LayerType {
    name: "BatchNormalization",
    family: "norm",
    summary: "Normalizes each channel of `axis` with batch statistics; keeps moving mean and variance for inference.",
    build: |a| Box::new(BatchNormalization::read(a)),
};

#[derive(Clone, Debug, PartialEq)]
pub struct BatchNormalization {
    pub axis: i64,
    pub momentum: f64,
    pub epsilon: f64,
    pub center: bool,
    pub scale: bool,
    pub beta_initializer: &'static str,
    pub gamma_initializer: &'static str,
    pub moving_mean_initializer: &'static str,
    pub moving_variance_initializer: &'static str,
}

impl BatchNormalization {
    fn read(a: &mut Args) -> Self {
        BatchNormalization {
            axis: a.int("axis", -1),
            momentum: a.float("momentum", Some(0.99), 0.0, 1.0, false),
            epsilon: positive_float(a, "epsilon", 0.001),
            center: a.bool("center", true),
            scale: a.bool("scale", true),
            beta_initializer: read_initializer(a, "beta_initializer", "zeros"),
            gamma_initializer: read_initializer(a, "gamma_initializer", "ones"),
            moving_mean_initializer: read_initializer(a, "moving_mean_initializer", "zeros"),
            moving_variance_initializer: read_initializer(a, "moving_variance_initializer", "ones"),
        }
    }
}

impl Layer for BatchNormalization {
    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape, ShapeError> {
        resolve_axis(self.axis, &inputs[0])?;
        Ok(inputs[0].clone())
    }

    /// Keras order: gamma, beta (trainable), then the frozen moving statistics.
    fn weights(&self, inputs: &[Shape]) -> Vec<Weight> {
        let Ok(ax) = resolve_axis(self.axis, &inputs[0]) else { return Vec::new() };
        let c = inputs[0][ax];
        let mut w = Vec::new();
        if self.scale {
            w.push(Weight::new("gamma", vec![c]));
        }
        if self.center {
            w.push(Weight::new("beta", vec![c]));
        }
        w.push(Weight::frozen("moving_mean", vec![c]));
        w.push(Weight::frozen("moving_variance", vec![c]));
        w
    }
}

// ---- LayerNormalization -------------------------------------------------------------

pub static LAYER_NORMALIZATION: LayerType = LayerType {
    name: "LayerNormalization",
    family: "norm",
    summary: "Normalizes each sample over the axes in `axis` (default the last), with per-feature gamma and beta.",
    build: |a| Box::new(LayerNormalization::read(a)),
};

#[derive(Clone, Debug, PartialEq)]
pub struct LayerNormalization {
    pub axis: Vec<i64>,
    pub epsilon: f64,
    pub center: bool,
    pub scale: bool,
    pub rms_scaling: bool,
    pub beta_initializer: &'static str,
    pub gamma_initializer: &'static str,
}

impl LayerNormalization {
    fn read(a: &mut Args) -> Self {
        LayerNormalization {
            axis: a.int_or_list("axis", -1),
            epsilon: positive_float(a, "epsilon", 0.001),
            center: a.bool("center", true),
            scale: a.bool("scale", true),
            rms_scaling: a.bool("rms_scaling", false),
            beta_initializer: read_initializer(a, "beta_initializer", "zeros"),
            gamma_initializer: read_initializer(a, "gamma_initializer", "ones"),
        }
    }

    /// The sizes of the normalized axes, in the order `axis` lists them (Keras's weight shape).
    fn axis_sizes(&self, input: &Shape) -> Result<Vec<usize>, ShapeError> {
        let mut seen = Vec::new();
        for &a in &self.axis {
            let i = resolve_axis(a, input)?;
            if seen.contains(&i) {
                let list: Vec<String> = self.axis.iter().map(|a| a.to_string()).collect();
                return Err(ShapeError::new(format!(
                    "`axis` [{}] names the same axis twice for input {}",
                    list.join(", "),
                    fmt_shape(input)
                ))
                .at("axis"));
            }
            seen.push(i);
        }
        Ok(seen.iter().map(|&i| input[i]).collect())
    }
}

impl Layer for LayerNormalization {
    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape, ShapeError> {
        self.axis_sizes(&inputs[0])?;
        Ok(inputs[0].clone())
    }

    /// As Keras builds them: rms_scaling forces gamma and drops beta.
    fn weights(&self, inputs: &[Shape]) -> Vec<Weight> {
        let Ok(shape) = self.axis_sizes(&inputs[0]) else { return Vec::new() };
        let mut w = Vec::new();
        if self.scale || self.rms_scaling {
            w.push(Weight::new("gamma", shape.clone()));
        }
        if self.center && !self.rms_scaling {
            w.push(Weight::new("beta", shape));
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use crate::layers::testutil::{arg_error, build, infer};

    #[test]
    fn batch_norm_params_split_trainable_and_frozen() {
        // Keras: Conv2D output (26, 26, 32) -> 128 params, 64 non-trainable.
        assert_eq!(infer("BatchNormalization", "{}", &[&[26, 26, 32]]).unwrap(), (vec![26, 26, 32], 128, 64));
        assert_eq!(infer("BatchNormalization", "{}", &[&[64]]).unwrap(), (vec![64], 256, 128));
        assert_eq!(infer("BatchNormalization", "{center: false}", &[&[10]]).unwrap(), (vec![10], 30, 10));
        assert_eq!(infer("BatchNormalization", "{scale: false}", &[&[10]]).unwrap(), (vec![10], 30, 10));
        assert_eq!(infer("BatchNormalization", "{center: false, scale: false}", &[&[10]]).unwrap(), (vec![10], 20, 0));
    }

    #[test]
    fn batch_norm_weights_in_keras_order() {
        let l = build("BatchNormalization", "{}").unwrap();
        let w = l.weights(&[vec![4, 8]]);
        let names: Vec<(&str, bool)> = w.iter().map(|w| (w.name.as_str(), w.trainable)).collect();
        assert_eq!(names, [("gamma", true), ("beta", true), ("moving_mean", false), ("moving_variance", false)]);
        assert!(w.iter().all(|w| w.shape == vec![8]));
    }

    #[test]
    fn batch_norm_axis() {
        assert_eq!(infer("BatchNormalization", "{axis: 1}", &[&[5, 7]]).unwrap(), (vec![5, 7], 20, 10));
        assert_eq!(infer("BatchNormalization", "{axis: -2}", &[&[5, 7]]).unwrap(), (vec![5, 7], 20, 10));
        let e = infer("BatchNormalization", "{axis: 0}", &[&[5, 7]]).unwrap_err();
        assert_eq!(e.message, "`axis` 0 is out of range for input (batch, 5, 7) (axis 0 is the batch axis)");
        assert_eq!(e.arg, Some("axis"));
        let e = infer("BatchNormalization", "{axis: 3}", &[&[5, 7]]).unwrap_err();
        assert_eq!(e.message, "`axis` 3 is out of range for input (batch, 5, 7)");
        assert!(infer("BatchNormalization", "{axis: -4}", &[&[5, 7]]).is_err());
    }

    #[test]
    fn batch_norm_argument_errors() {
        assert_eq!(
            arg_error("BatchNormalization", "{momentum: 1.5}"),
            "layer 'x' (BatchNormalization): `momentum` must be a number in [0, 1], received 1.5"
        );
        assert_eq!(
            arg_error("BatchNormalization", "{epsilon: 0}"),
            "layer 'x' (BatchNormalization): `epsilon` must be a number > 0, received 0"
        );
        assert!(arg_error("BatchNormalization", "{epsilon: -0.1}").contains("must be a number > 0"));
        assert!(arg_error("BatchNormalization", "{axis: [1, 2]}").contains("`axis` must be an integer"));
        assert!(arg_error("BatchNormalization", "{gamma_initializer: one}").contains("`gamma_initializer` must be one of"));
        assert!(build("BatchNormalization", "{momentum: 0.9, epsilon: 0.00001, moving_variance_initializer: zeros}").is_ok());
        assert!(arg_error("BatchNormalization", "{synchronized: true}").contains("not supported by nnrun yet"));
    }

    #[test]
    fn layer_norm_shapes_and_params() {
        // Dense(64) -> LayerNormalization: 128 params.
        assert_eq!(infer("LayerNormalization", "{}", &[&[64]]).unwrap(), (vec![64], 128, 128));
        assert_eq!(infer("LayerNormalization", "{}", &[&[10, 16]]).unwrap(), (vec![10, 16], 32, 32));
        assert_eq!(infer("LayerNormalization", "{center: false}", &[&[64]]).unwrap(), (vec![64], 64, 64));
        assert_eq!(infer("LayerNormalization", "{center: false, scale: false}", &[&[64]]).unwrap(), (vec![64], 0, 0));
        // rms_scaling keeps gamma even without scale, and never has beta.
        assert_eq!(infer("LayerNormalization", "{rms_scaling: true, scale: false}", &[&[64]]).unwrap(), (vec![64], 64, 64));
    }

    #[test]
    fn layer_norm_axis_lists() {
        // Keras docstring: axis [1, 2, 3] on (20, 30, 40) gives gamma and beta of shape (20, 30, 40).
        let l = build("LayerNormalization", "{axis: [1, 2, 3]}").unwrap();
        let w = l.weights(&[vec![20, 30, 40]]);
        assert_eq!((w[0].name.as_str(), w[0].shape.clone()), ("gamma", vec![20, 30, 40]));
        assert_eq!((w[1].name.as_str(), w[1].shape.clone()), ("beta", vec![20, 30, 40]));
        assert_eq!(infer("LayerNormalization", "{axis: [-2, -1]}", &[&[4, 5, 6]]).unwrap(), (vec![4, 5, 6], 60, 60));
        assert_eq!(infer("LayerNormalization", "{axis: 1}", &[&[4, 5]]).unwrap().1, 8);
        let e = infer("LayerNormalization", "{axis: [2, -1]}", &[&[4, 5]]).unwrap_err();
        assert_eq!(e.message, "`axis` [2, -1] names the same axis twice for input (batch, 4, 5)");
        let e = infer("LayerNormalization", "{axis: [0]}", &[&[4, 5]]).unwrap_err();
        assert!(e.message.contains("(axis 0 is the batch axis)"));
        assert_eq!(e.arg, Some("axis"));
        assert!(infer("LayerNormalization", "{axis: -3}", &[&[4]]).is_err());
        assert!(arg_error("LayerNormalization", "{axis: [a]}").contains("must be an integer or a list of integers"));
        assert!(arg_error("LayerNormalization", "{epsilon: 0.0}").contains("must be a number > 0"));
    }
}
