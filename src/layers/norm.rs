//! Normalization layers: BatchNormalization, LayerNormalization.

use super::activation::read_initializer;
use super::{Ctx, Layer, LayerType, Shape, ShapeError, Weight, fmt_shape, resolve_axis};
use crate::spec::args::Args;
use candle_core::{Tensor, Var};
type CResult<T> = candle_core::Result<T>;

/// A shape error found at run time, as a candle error.
fn shape_err(e: ShapeError) -> candle_core::Error {
    candle_core::Error::Msg(e.message)
}

/// Mean and biased variance over `dims`, kept as unit axes (candle's `var` is unbiased).
fn moments(x: &Tensor, dims: &[usize]) -> CResult<(Tensor, Tensor)> {
    let mean = x.mean_keepdim(dims)?;
    let var = x.broadcast_sub(&mean)?.sqr()?.mean_keepdim(dims)?;
    Ok((mean, var))
}

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
    /// The layer's `trainable` flag. Frozen (false), it runs in inference
    /// mode even in training, as in Keras 3 (`training and self.trainable`):
    /// fine-tuning relies on a frozen BatchNormalization keeping its statistics.
    pub trainable: bool,
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
            trainable: a.trainable,
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
            w.push(Weight::new("gamma", vec![c]).init(self.gamma_initializer));
        }
        if self.center {
            w.push(Weight::new("beta", vec![c]).init(self.beta_initializer));
        }
        w.push(Weight::frozen("moving_mean", vec![c]).init(self.moving_mean_initializer));
        w.push(Weight::frozen("moving_variance", vec![c]).init(self.moving_variance_initializer));
        w
    }

    /// Keras: training normalizes with the batch mean and biased variance and
    /// moves the statistics toward them; inference, and training a frozen
    /// layer, use the moving statistics and leave them alone.
    fn forward(&self, inputs: &[Tensor], w: &[Var], ctx: &mut Ctx) -> CResult<Tensor> {
        let x = &inputs[0];
        let ax = resolve_axis(self.axis, &x.dims()[1..].to_vec()).map_err(shape_err)? + 1;
        let c = x.dim(ax)?;
        // Per-channel vectors as (1, .., c, .., 1) to broadcast along `axis`.
        let mut bshape = vec![1; x.rank()];
        bshape[ax] = c;
        let per_channel = |v: &Tensor| v.reshape(bshape.as_slice());
        let (gamma, beta) = (self.scale.then(|| &w[0]), self.center.then(|| &w[self.scale as usize]));
        let (moving_mean, moving_var) = (&w[w.len() - 2], &w[w.len() - 1]);
        let (mean, var) = if ctx.train && self.trainable {
            let reduce: Vec<usize> = (0..x.rank()).filter(|&d| d != ax).collect();
            let (mean, var) = moments(x, &reduce)?;
            // Detached: the moving statistics are not part of the gradient.
            let m = self.momentum;
            for (stat, batch) in [(moving_mean, &mean), (moving_var, &var)] {
                let batch = batch.detach().flatten_all()?.to_dtype(stat.dtype())?;
                stat.set(&(stat.as_tensor().affine(m, 0.0)? + batch.affine(1.0 - m, 0.0)?)?)?;
            }
            (mean, var)
        } else {
            (per_channel(moving_mean.as_tensor())?, per_channel(moving_var.as_tensor())?)
        };
        let mut y = x.broadcast_sub(&mean)?.broadcast_div(&(var + self.epsilon)?.sqrt()?)?;
        if let Some(g) = gamma {
            y = y.broadcast_mul(&per_channel(g.as_tensor())?)?;
        }
        if let Some(b) = beta {
            y = y.broadcast_add(&per_channel(b.as_tensor())?)?;
        }
        Ok(y)
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
                return Err(ShapeError::new(format!("`axis` [{}] names the same axis twice for input {}", list.join(", "), fmt_shape(input))).at("axis"));
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
            w.push(Weight::new("gamma", shape.clone()).init(self.gamma_initializer));
        }
        if self.center && !self.rms_scaling {
            w.push(Weight::new("beta", shape).init(self.beta_initializer));
        }
        w
    }

    /// Keras's call: statistics over `axis`; gamma and beta (laid out in
    /// `axis` order) are *reshaped*, not transposed, onto the sorted axes.
    fn forward(&self, inputs: &[Tensor], w: &[Var], _ctx: &mut Ctx) -> CResult<Tensor> {
        let x = &inputs[0];
        let shape = x.dims()[1..].to_vec();
        self.axis_sizes(&shape).map_err(shape_err)?;
        let dims = self.axis.iter().map(|&a| resolve_axis(a, &shape).map(|i| i + 1));
        let dims: Vec<usize> = dims.collect::<Result<_, _>>().map_err(shape_err)?;
        let mut bshape = vec![1; x.rank()];
        for &d in &dims {
            bshape[d] = x.dim(d)?;
        }
        let bcast = |v: &Var| v.as_tensor().reshape(bshape.as_slice());
        let (mean, var) = moments(x, &dims)?;
        // Keras's rms_scaling divides the *uncentered* input by the *variance*
        // (not mean(x^2); keras#21234, kept for compatibility).
        let mut y = if self.rms_scaling { x.clone() } else { x.broadcast_sub(&mean)? };
        y = y.broadcast_div(&(var + self.epsilon)?.sqrt()?)?;
        if self.scale || self.rms_scaling {
            y = y.broadcast_mul(&bcast(&w[0])?)?;
        }
        if self.center && !self.rms_scaling {
            y = y.broadcast_add(&bcast(w.last().unwrap())?)?;
        }
        Ok(y)
    }
}

#[cfg(test)]
mod tests {
    use crate::layers::testutil::{arg_error, build, forward, grad_check, infer};
    use crate::layers::{Ctx, Layer};
    use candle_core::{Device, Tensor, Var};
    use rand::SeedableRng;

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
        assert_eq!(arg_error("BatchNormalization", "{momentum: 1.5}"), "layer 'x' (BatchNormalization): `momentum` must be a number in [0, 1], received 1.5");
        assert_eq!(arg_error("BatchNormalization", "{epsilon: 0}"), "layer 'x' (BatchNormalization): `epsilon` must be a number > 0, received 0");
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

    fn var(v: &[f64]) -> Var {
        Var::from_vec(v.to_vec(), v.len(), &Device::Cpu).unwrap()
    }

    fn run(l: &dyn Layer, x: &[f64], dims: &[usize], w: &[Var], train: bool) -> Vec<f64> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let x = Tensor::from_vec(x.to_vec(), dims, &Device::Cpu).unwrap();
        let y = l.forward(&[x], w, &mut Ctx { train, rng: &mut rng, logits: false, grads: None, part: None }).unwrap();
        y.flatten_all().unwrap().to_vec1().unwrap()
    }

    fn close(a: &[f64], b: &[f64]) {
        assert!(a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-9), "{a:?} vs {b:?}");
    }

    #[test]
    fn norm_forward_shapes_and_gradients() {
        for (ty, yaml, input) in [
            ("BatchNormalization", "{}", &[3usize, 4][..]),
            ("BatchNormalization", "{axis: 1}", &[3, 4]),
            ("BatchNormalization", "{axis: -2, center: false}", &[2, 3, 2]),
            ("BatchNormalization", "{scale: false}", &[5]),
            ("BatchNormalization", "{center: false, scale: false}", &[2, 2, 3]),
            ("LayerNormalization", "{}", &[5]),
            ("LayerNormalization", "{}", &[3, 4]),
            ("LayerNormalization", "{axis: 1}", &[3, 4]),
            ("LayerNormalization", "{axis: [1, 2]}", &[3, 4]),
            ("LayerNormalization", "{axis: [-1, -3]}", &[2, 3, 4]),
            ("LayerNormalization", "{center: false}", &[5]),
            ("LayerNormalization", "{center: false, scale: false}", &[5]),
            ("LayerNormalization", "{rms_scaling: true}", &[5]),
            ("LayerNormalization", "{rms_scaling: true, axis: [-2, -1]}", &[2, 3]),
        ] {
            for train in [true, false] {
                forward(ty, yaml, &[input], train);
                grad_check(ty, yaml, &[input], train);
            }
        }
    }

    #[test]
    fn batch_norm_inference_uses_moving_statistics() {
        let l = build("BatchNormalization", "{}").unwrap();
        // gamma, beta, moving mean, moving variance (+ epsilon 0.001 gives 4 and 0.25).
        let w = [var(&[2.0, 1.0]), var(&[0.5, 0.0]), var(&[1.0, -1.0]), var(&[3.999, 0.249])];
        close(&run(&*l, &[3.0, 1.0, -1.0, 0.0], &[2, 2], &w, false), &[2.5, 4.0, -1.5, 2.0]);
    }

    #[test]
    fn batch_norm_training_moves_statistics_by_momentum() {
        let l = build("BatchNormalization", "{momentum: 0.5}").unwrap();
        let w = [var(&[1.0, 1.0]), var(&[0.0, 0.0]), var(&[0.0, 0.0]), var(&[1.0, 1.0])];
        // Batch mean (2, 4), biased variance (1, 4).
        let x = [1.0, 2.0, 3.0, 6.0];
        let y = run(&*l, &x, &[2, 2], &w, true);
        let s = 1.0 / 1.001f64.sqrt();
        let t = 2.0 / 4.001f64.sqrt();
        close(&y, &[-s, -t, s, t]);
        let read = |v: &Var| v.as_tensor().to_vec1::<f64>().unwrap();
        close(&read(&w[2]), &[1.0, 2.0]);
        close(&read(&w[3]), &[1.0, 2.5]);
        run(&*l, &x, &[2, 2], &w, true);
        close(&read(&w[2]), &[1.5, 3.0]);
        close(&read(&w[3]), &[1.0, 3.25]);
        // Inference leaves them alone.
        run(&*l, &x, &[2, 2], &w, false);
        close(&read(&w[2]), &[1.5, 3.0]);
    }

    #[test]
    fn frozen_batch_norm_uses_moving_statistics_in_training() {
        let node = crate::spec::yaml::parse("{momentum: 0.5}").unwrap();
        let mut a = crate::spec::args::Args::new(&node, "l", "layer 'x' (BatchNormalization)", &[]);
        a.trainable = false;
        let l = (super::BATCH_NORMALIZATION.build)(&mut a);
        let w = [var(&[2.0, 1.0]), var(&[0.5, 0.0]), var(&[1.0, -1.0]), var(&[3.999, 0.249])];
        // As in inference (batch_norm_inference_uses_moving_statistics), though training.
        close(&run(&*l, &[3.0, 1.0, -1.0, 0.0], &[2, 2], &w, true), &[2.5, 4.0, -1.5, 2.0]);
        let read = |v: &Var| v.as_tensor().to_vec1::<f64>().unwrap();
        assert_eq!((read(&w[2]), read(&w[3])), (vec![1.0, -1.0], vec![3.999, 0.249]), "moving statistics unchanged");
    }

    /// Dense -> frozen BatchNormalization -> Dense, three SGD steps through
    /// nnrun's model, loss and optimizer, against Keras 3.15.1 (jax) numbers
    /// from bench/keras_checks/frozen_batchnorm.py (same weights and batch).
    #[test]
    fn frozen_batch_norm_trains_like_keras() {
        const KERAS_LOSSES: [f64; 3] = [1.3837244510650635, 0.9506271481513977, 0.8250083923339844];
        const KERAS_MOVING_MEAN: [f64; 4] = [0.30000001192092896, -0.20000000298023224, 0.10000000149011612, 0.4000000059604645];
        const KERAS_MOVING_VAR: [f64; 4] = [0.5, 1.5, 2.0, 0.800000011920929];
        const KERAS_GAMMA: [f64; 4] = [1.5, 0.800000011920929, 1.2000000476837158, 0.6000000238418579];
        const KERAS_BETA: [f64; 4] = [0.10000000149011612, -0.20000000298023224, 0.0, 0.30000001192092896];
        const KERAS_OUTPUT: [f64; 8] = [
            0.4363766014575958,
            0.3307764530181885,
            -0.6650580763816833,
            0.631528913974762,
            0.10199524462223053,
            -0.03643512725830078,
            0.27426931262016296,
            0.2500932812690735,
        ];
        let x = [0.5, -1.0, 2.0, 1.5, 0.25, -0.5, -1.0, 2.0, 0.75, 0.0, -0.5, 1.25];
        let y = [1.0, 0.0, 0.0, 1.0, 0.5, -0.5, -1.0, 2.0];
        let weights: [&[&[f64]]; 3] = [
            &[&[0.2, -0.4, 0.6, 0.1, -0.3, 0.5, 0.2, -0.7, 0.4, 0.1, -0.5, 0.3], &[0.05, -0.1, 0.2, 0.0]],
            &[&[1.5, 0.8, 1.2, 0.6], &[0.1, -0.2, 0.0, 0.3], &[0.3, -0.2, 0.1, 0.4], &[0.5, 1.5, 2.0, 0.8]],
            &[&[0.3, -0.2, 0.1, 0.4, -0.6, 0.5, 0.2, 0.2], &[0.0, 0.1]],
        ];
        let spec = "model:\n  input_shape: [3]\n  layers:\n    - {type: Dense, units: 4}\n    - {type: BatchNormalization, trainable: false}\n    - {type: Dense, units: 2}\n";
        let mut diags = Vec::new();
        let (_, graph) = crate::graph::from_source(&crate::spec::Source { path: "t.yaml".into(), text: spec.into() }, &mut diags).unwrap();
        assert!(diags.is_empty(), "{diags:?}");
        let dev = Device::Cpu;
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let net = crate::model::Net::new(graph, &dev, candle_core::DType::F64, &mut rng).unwrap();
        for (vars, values) in net.vars.iter().zip(weights) {
            for (v, w) in vars.iter().zip(values) {
                v.set(&Tensor::from_vec(w.to_vec(), v.dims(), &dev).unwrap()).unwrap();
            }
        }
        let opt_node = crate::spec::yaml::parse("{type: sgd, learning_rate: 0.1}").unwrap();
        let opt_spec = crate::train::optim::parse(&opt_node, "training.optimizer", &mut diags).unwrap();
        let mut opt = crate::train::optim::Optimizer::new(&opt_spec, net.trainable_vars()).unwrap();
        let loss = crate::train::losses::Loss::from_name("mean_squared_error").unwrap();
        let (xt, yt) = (Tensor::from_vec(x.to_vec(), (4, 3), &dev).unwrap(), Tensor::from_vec(y.to_vec(), (4, 2), &dev).unwrap());
        let near = |got: &[f64], want: &[f64], what: &str| {
            assert!(got.len() == want.len() && got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-5), "{what}: nnrun {got:?}, Keras {want:?}");
        };
        let mut losses = Vec::new();
        for _ in 0..KERAS_LOSSES.len() {
            let mut ctx = Ctx { train: true, rng: &mut rng, logits: false, grads: None, part: None };
            let out = net.forward(std::slice::from_ref(&xt), &mut ctx, &[false]).unwrap();
            let l = loss.compute(&out[0], &yt, false).unwrap();
            losses.push(l.to_scalar::<f64>().unwrap());
            opt.step(&l.backward().unwrap()).unwrap();
        }
        near(&losses, &KERAS_LOSSES, "loss per step");
        let bn: Vec<Vec<f64>> = net.vars[1].iter().map(|v| v.as_tensor().to_vec1::<f64>().unwrap()).collect();
        near(&bn[0], &KERAS_GAMMA, "gamma");
        near(&bn[1], &KERAS_BETA, "beta");
        near(&bn[2], &KERAS_MOVING_MEAN, "moving mean");
        near(&bn[3], &KERAS_MOVING_VAR, "moving variance");
        let mut ctx = Ctx { train: false, rng: &mut rng, logits: false, grads: None, part: None };
        let out = net.forward(&[xt], &mut ctx, &[false]).unwrap();
        near(&out[0].flatten_all().unwrap().to_vec1::<f64>().unwrap(), &KERAS_OUTPUT, "output after training");
    }

    #[test]
    fn layer_norm_rows_are_standardized() {
        let l = build("LayerNormalization", "{}").unwrap();
        let w = [var(&[1.0; 6]), var(&[0.0; 6])];
        let x = [3.0, -1.0, 7.0, 2.0, 0.5, 10.0, 100.0, 90.0, 80.0, 120.0, 95.0, 85.0];
        let y = run(&*l, &x, &[2, 6], &w, false);
        for row in y.chunks(6) {
            let mean = row.iter().sum::<f64>() / 6.0;
            let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 6.0;
            assert!(mean.abs() < 1e-9 && (var - 1.0).abs() < 1e-3, "mean {mean} var {var}");
        }
    }

    #[test]
    fn layer_norm_rms_scaling_is_keras_variance_scaling() {
        // Keras divides x (uncentered) by sqrt(var(x) + eps): var([1, 2, 3, 4]) = 1.25.
        let l = build("LayerNormalization", "{rms_scaling: true}").unwrap();
        let w = [var(&[1.0, 2.0, 1.0, 1.0])];
        let d = 1.251f64.sqrt();
        close(&run(&*l, &[1.0, 2.0, 3.0, 4.0], &[1, 4], &w, false), &[1.0 / d, 4.0 / d, 3.0 / d, 4.0 / d]);
    }
}
