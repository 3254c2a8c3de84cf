//! Core layers: Dense, Activation, Dropout, Flatten, Reshape, Permute,
//! RepeatVector, Embedding.

use super::activation::{read_activation, read_initializer};
use super::{Activation, Ctx, Init, Layer, LayerType, MAX_ELEMENTS, Shape, ShapeError, Weight, expect_rank, fmt_shape, numel, overflow, size};
use crate::spec::args::Args;
use candle_core::{DType, Tensor, Var};
type CResult<T> = candle_core::Result<T>;

// ---- Dense ------------------------------------------------------------------------

pub static DENSE: LayerType = LayerType {
    name: "Dense",
    family: "core",
    summary: "Fully connected layer applied to the last axis of an input of any rank.",
    build: |a| Box::new(Dense::read(a)),
};

#[derive(Clone, Debug, PartialEq)]
pub struct Dense {
    pub units: usize,
    pub activation: Activation,
    pub use_bias: bool,
    pub kernel_initializer: &'static str,
    pub bias_initializer: &'static str,
}

impl Default for Dense {
    fn default() -> Self {
        Dense { units: 1, activation: Activation::Linear, use_bias: true, kernel_initializer: "glorot_uniform", bias_initializer: "zeros" }
    }
}

impl Dense {
    fn read(a: &mut Args) -> Self {
        let d = Dense::default();
        Dense {
            units: size(a, "units", None, 1),
            activation: read_activation(a, "activation", Some(d.activation)),
            use_bias: a.bool("use_bias", d.use_bias),
            kernel_initializer: read_initializer(a, "kernel_initializer", d.kernel_initializer),
            bias_initializer: read_initializer(a, "bias_initializer", d.bias_initializer),
        }
    }
}

impl Layer for Dense {
    fn returns_logits(&self) -> bool {
        true
    }

    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape, ShapeError> {
        let mut out = inputs[0].clone();
        let Some(last) = out.last_mut() else {
            return Err(ShapeError::new(format!("expects an input with a feature axis, received {}", fmt_shape(&out))));
        };
        *last = self.units;
        Ok(out)
    }

    fn weights(&self, inputs: &[Shape]) -> Vec<Weight> {
        let fan_in = *inputs[0].last().unwrap_or(&0);
        let mut w = vec![Weight::new("kernel", vec![fan_in, self.units]).init(self.kernel_initializer)];
        if self.use_bias {
            w.push(Weight::new("bias", vec![self.units]).init(self.bias_initializer));
        }
        w
    }

    fn activation(&self) -> Option<Activation> {
        Some(self.activation)
    }

    /// Dense on (h, w, c) maps applies per pixel; most users meant to classify
    /// the whole image and forgot a Flatten.
    fn warnings(&self, inputs: &[Shape], output: &Shape) -> Vec<ShapeError> {
        if inputs[0].len() < 3 {
            return Vec::new();
        }
        vec![
            ShapeError::new(format!("applied to each position of {}, so it outputs {}", fmt_shape(&inputs[0]), fmt_shape(output)))
                .hint("insert a Flatten layer before '{name}' to classify the whole input"),
        ]
    }

    /// One fused op (matmul, bias, relu) on the CPU; see `kernels::dense`.
    fn forward(&self, inputs: &[Tensor], w: &[Var], ctx: &mut Ctx) -> CResult<Tensor> {
        let relu = self.activation == Activation::Relu && !ctx.logits;
        let bias = if self.use_bias { Some(w[1].as_tensor()) } else { None };
        let y = crate::kernels::dense::dense(&inputs[0], w[0].as_tensor(), bias, relu, ctx.grads)?;
        if ctx.logits || relu { Ok(y) } else { self.activation.apply(&y) }
    }
}

// ---- Activation -------------------------------------------------------------------

pub static ACTIVATION: LayerType = LayerType {
    name: "Activation",
    family: "core",
    summary: "Applies an activation function element-wise.",
    build: |a| Box::new(ActivationLayer { activation: read_activation(a, "activation", None) }),
};

#[derive(Clone, Debug, PartialEq)]
pub struct ActivationLayer {
    pub activation: Activation,
}

impl Layer for ActivationLayer {
    fn returns_logits(&self) -> bool {
        true
    }

    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape, ShapeError> {
        Ok(inputs[0].clone())
    }
    fn activation(&self) -> Option<Activation> {
        Some(self.activation)
    }
    fn forward(&self, inputs: &[Tensor], _w: &[Var], ctx: &mut Ctx) -> CResult<Tensor> {
        if ctx.logits { Ok(inputs[0].clone()) } else { self.activation.apply(&inputs[0]) }
    }
}

// ---- Dropout ----------------------------------------------------------------------

pub static DROPOUT: LayerType = LayerType {
    name: "Dropout",
    family: "core",
    summary: "Zeroes a fraction `rate` of inputs during training and scales the rest by 1/(1-rate).",
    build: |a| Box::new(Dropout { rate: a.float("rate", None, 0.0, 1.0, true), seed: a.opt_usize("seed", 0) }),
};

#[derive(Clone, Debug, PartialEq)]
pub struct Dropout {
    pub rate: f64,
    pub seed: Option<usize>,
}

impl Layer for Dropout {
    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape, ShapeError> {
        Ok(inputs[0].clone())
    }

    /// Inverted dropout, as Keras: kept units are scaled by 1/(1-rate), and
    /// nothing happens outside training.
    fn forward(&self, inputs: &[Tensor], _w: &[Var], ctx: &mut Ctx) -> CResult<Tensor> {
        let x = &inputs[0];
        if !ctx.train || self.rate == 0.0 {
            return Ok(x.clone());
        }
        let keep = 1.0 - self.rate;
        let rows = x.dims().first().copied().unwrap_or(1);
        let mask = ctx.dropout_mask(rows, x.elem_count() / rows.max(1), keep);
        let mask = Tensor::from_vec(mask, x.dims(), x.device())?.to_dtype(x.dtype())?;
        x * mask
    }
}

// ---- Flatten ----------------------------------------------------------------------

pub static FLATTEN: LayerType = LayerType {
    name: "Flatten",
    family: "core",
    summary: "Flattens every axis but the batch axis into one.",
    build: |a| {
        channels_last(a);
        Box::new(Flatten)
    },
};

#[derive(Clone, Debug, PartialEq)]
pub struct Flatten;

impl Layer for Flatten {
    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape, ShapeError> {
        let n = numel(&inputs[0]).ok_or_else(|| overflow(format!("flattening {}", fmt_shape(&inputs[0]))))?;
        Ok(vec![n])
    }
    fn forward(&self, inputs: &[Tensor], _w: &[Var], _ctx: &mut Ctx) -> CResult<Tensor> {
        inputs[0].flatten_from(1)
    }
}

/// Reshapes a batched tensor to `(batch, shape...)`.
fn reshape_batched(x: &Tensor, shape: &[usize]) -> CResult<Tensor> {
    let mut dims = vec![x.dim(0)?];
    dims.extend_from_slice(shape);
    x.reshape(dims)
}

/// Keras's `data_format`: nnrun is channels-last only, like Keras's default.
pub fn channels_last(a: &mut Args) {
    a.choice("data_format", Some("channels_last"), &["channels_last"]);
}

// ---- Reshape ----------------------------------------------------------------------

pub static RESHAPE: LayerType = LayerType {
    name: "Reshape",
    family: "core",
    summary: "Reshapes to `target_shape` (batch axis excluded); one entry may be -1 to infer it.",
    build: |a| Box::new(Reshape::read(a)),
};

#[derive(Clone, Debug, PartialEq)]
pub struct Reshape {
    pub target_shape: Vec<i64>,
}

impl Reshape {
    fn read(a: &mut Args) -> Self {
        let target_shape = a.int_list("target_shape", 1, true);
        if target_shape.iter().filter(|&&d| d == -1).count() > 1
            && let Some(node) = a.node("target_shape")
        {
            a.error("target_shape", node, "may contain -1 only once", None);
        }
        if target_shape.iter().any(|&d| d > MAX_ELEMENTS as i64)
            && let Some(node) = a.node("target_shape")
        {
            a.too_large("target_shape", node, MAX_ELEMENTS);
        }
        Reshape { target_shape }
    }
}

impl Layer for Reshape {
    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape, ShapeError> {
        let n = numel(&inputs[0]).ok_or_else(|| overflow(format!("the input {}", fmt_shape(&inputs[0]))))?;
        // Past usize the product can't equal n: `None` reads as a mismatch.
        let known = self.target_shape.iter().filter(|&&d| d > 0).try_fold(1usize, |p, &d| p.checked_mul(usize::try_from(d).ok()?));
        let target = || {
            let d: Vec<String> = self.target_shape.iter().map(|d| d.to_string()).collect();
            format!("[{}]", d.join(", "))
        };
        let mismatch = || {
            ShapeError::new(format!("cannot reshape {} ({n} values per sample) to target_shape {}", fmt_shape(&inputs[0]), target()))
                .hint(format!("the entries of target_shape must multiply to {n}; write -1 for one entry to have it inferred"))
                .at("target_shape")
        };
        let Some(known) = known.filter(|&k| k > 0) else { return Err(mismatch()) };
        if self.target_shape.contains(&-1) {
            if !n.is_multiple_of(known) {
                return Err(mismatch());
            }
            let fill = n / known;
            return Ok(self.target_shape.iter().map(|&d| if d == -1 { fill } else { d as usize }).collect());
        }
        if known != n {
            return Err(mismatch());
        }
        Ok(self.target_shape.iter().map(|&d| d as usize).collect())
    }

    fn forward(&self, inputs: &[Tensor], _w: &[Var], _ctx: &mut Ctx) -> CResult<Tensor> {
        let shape = self.output_shape(&[inputs[0].dims()[1..].to_vec()]).map_err(|e| candle_core::Error::Msg(e.message))?;
        reshape_batched(&inputs[0], &shape)
    }
}

// ---- Permute ----------------------------------------------------------------------

pub static PERMUTE: LayerType = LayerType {
    name: "Permute",
    family: "core",
    summary: "Permutes the non-batch axes; `dims` is 1-indexed, e.g. [2, 1] swaps the first two.",
    build: |a| Box::new(Permute { dims: a.int_list("dims", 1, false).into_iter().map(|d| d as usize).collect() }),
};

#[derive(Clone, Debug, PartialEq)]
pub struct Permute {
    pub dims: Vec<usize>,
}

impl Layer for Permute {
    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape, ShapeError> {
        let input = &inputs[0];
        let mut sorted = self.dims.clone();
        sorted.sort_unstable();
        let expected: Vec<usize> = (1..=input.len()).collect();
        if sorted != expected {
            let dims: Vec<String> = self.dims.iter().map(|d| d.to_string()).collect();
            return Err(ShapeError::new(format!(
                "`dims` must be a permutation of 1..={} for input {}, received [{}]",
                input.len(),
                fmt_shape(input),
                dims.join(", ")
            ))
            .hint("dims are 1-indexed and exclude the batch axis, as in Keras")
            .at("dims"));
        }
        Ok(self.dims.iter().map(|&d| input[d - 1]).collect())
    }

    fn forward(&self, inputs: &[Tensor], _w: &[Var], _ctx: &mut Ctx) -> CResult<Tensor> {
        let mut order = vec![0];
        order.extend(self.dims.iter().copied());
        inputs[0].permute(order)?.contiguous()
    }
}

// ---- RepeatVector -----------------------------------------------------------------

pub static REPEAT_VECTOR: LayerType = LayerType {
    name: "RepeatVector",
    family: "core",
    summary: "Repeats a (batch, features) input `n` times: (batch, n, features).",
    build: |a| Box::new(RepeatVector { n: size(a, "n", None, 1) }),
};

#[derive(Clone, Debug, PartialEq)]
pub struct RepeatVector {
    pub n: usize,
}

impl Layer for RepeatVector {
    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape, ShapeError> {
        expect_rank(&inputs[0], 1, "features")?;
        Ok(vec![self.n, inputs[0][0]])
    }

    fn forward(&self, inputs: &[Tensor], _w: &[Var], _ctx: &mut Ctx) -> CResult<Tensor> {
        let x = &inputs[0];
        let (b, f) = x.dims2()?;
        x.unsqueeze(1)?.broadcast_as((b, self.n, f))?.contiguous()
    }
}

// ---- Embedding --------------------------------------------------------------------

pub static EMBEDDING: LayerType = LayerType {
    name: "Embedding",
    family: "core",
    summary: "Maps integer indices in [0, input_dim) to dense vectors of size output_dim.",
    build: |a| Box::new(Embedding::read(a)),
};

#[derive(Clone, Debug, PartialEq)]
pub struct Embedding {
    pub input_dim: usize,
    pub output_dim: usize,
    pub embeddings_initializer: &'static str,
    pub mask_zero: bool,
}

impl Embedding {
    fn read(a: &mut Args) -> Self {
        Embedding {
            input_dim: size(a, "input_dim", None, 1),
            output_dim: size(a, "output_dim", None, 1),
            embeddings_initializer: read_initializer(a, "embeddings_initializer", "uniform"),
            mask_zero: a.bool("mask_zero", false),
        }
    }
}

impl Layer for Embedding {
    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape, ShapeError> {
        let mut out = inputs[0].clone();
        out.push(self.output_dim);
        Ok(out)
    }

    fn weights(&self, _inputs: &[Shape]) -> Vec<Weight> {
        vec![Weight::new("embeddings", vec![self.input_dim, self.output_dim]).with_init(Init::Named(self.embeddings_initializer))]
    }

    /// Inputs hold integer indices as floats; an index outside
    /// [0, input_dim) is an error rather than a silent clamp.
    fn forward(&self, inputs: &[Tensor], w: &[Var], _ctx: &mut Ctx) -> CResult<Tensor> {
        let x = &inputs[0];
        let flat = x.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?;
        if let Some(bad) = flat.iter().find(|&&v| v < 0.0 || v >= self.input_dim as f64 || v.fract() != 0.0) {
            candle_core::bail!("Embedding input {bad} is not an integer index in [0, {})", self.input_dim);
        }
        // u32 indices unless the table is larger (input_dim may be up to 2^38).
        let idx = if self.input_dim <= u32::MAX as usize {
            Tensor::from_vec(flat.iter().map(|&v| v as u32).collect::<Vec<_>>(), flat.len(), x.device())?
        } else {
            Tensor::from_vec(flat.iter().map(|&v| v as i64).collect::<Vec<_>>(), flat.len(), x.device())?
        };
        let mut dims = x.dims().to_vec();
        dims.push(self.output_dim);
        w[0].as_tensor().index_select(&idx, 0)?.reshape(dims)
    }
}

#[cfg(test)]
mod tests {
    use crate::layers::testutil::{arg_error, infer};

    #[test]
    fn dense_shapes_and_params() {
        assert_eq!(infer("Dense", "{units: 512}", &[&[784]]).unwrap(), (vec![512], 401_920, 401_920));
        assert_eq!(infer("Dense", "{units: 10, use_bias: false}", &[&[512]]).unwrap(), (vec![10], 5_120, 5_120));
        // Applies to the last axis of any rank, like Keras.
        assert_eq!(infer("Dense", "{units: 8}", &[&[5, 7, 3]]).unwrap(), (vec![5, 7, 8], 32, 32));
    }

    #[test]
    fn huge_sizes_are_refused() {
        for (ty, yaml) in [
            ("Dense", "{units: 9223372036854775807}"),
            ("Dense", "{units: 274877906945}"),
            ("RepeatVector", "{n: 9223372036854775807}"),
            ("Embedding", "{input_dim: 9223372036854775807, output_dim: 2}"),
            ("Reshape", "{target_shape: [9223372036854775807, -1]}"),
        ] {
            assert!(arg_error(ty, yaml).contains("must be at most 274,877,906,944 (2^38)"), "{ty} {yaml}");
        }
        // A product past usize is a mismatch, not a wrap.
        let huge = crate::layers::MAX_ELEMENTS;
        let e = infer("Reshape", &format!("{{target_shape: [{huge}, {huge}, {huge}]}}"), &[&[8]]).unwrap_err();
        assert!(e.message.starts_with("cannot reshape (batch, 8) (8 values per sample) to target_shape"), "{}", e.message);
        let e = infer("Flatten", "{}", &[&[usize::MAX, 2]]).unwrap_err();
        assert!(e.message.starts_with("flattening (batch, 18446744073709551615, 2) would be larger than the 274,877,906,944 values"), "{}", e.message);
    }

    #[test]
    fn dense_argument_errors() {
        assert_eq!(arg_error("Dense", "{units: 0}"), "layer 'x' (Dense): `units` must be a positive integer, received 0");
        assert_eq!(arg_error("Dense", "{units: ten}"), "layer 'x' (Dense): `units` must be a positive integer, received \"ten\"");
        assert_eq!(arg_error("Dense", "{}"), "layer 'x' (Dense): missing required argument `units` (a positive integer)");
        assert_eq!(arg_error("Dense", "{units: 3, activation: rel}"), "layer 'x' (Dense): `activation` names an unknown activation \"rel\"");
        assert_eq!(
            arg_error("Dense", "{units: 3, kernel_initializer: foo}").split(',').next().unwrap(),
            "layer 'x' (Dense): `kernel_initializer` must be one of glorot_uniform"
        );
    }

    #[test]
    fn activation_dropout_flatten() {
        assert_eq!(infer("Activation", "{activation: relu}", &[&[4, 4]]).unwrap(), (vec![4, 4], 0, 0));
        assert!(arg_error("Activation", "{}").contains("missing required argument `activation`"));
        assert_eq!(infer("Dropout", "{rate: 0.5}", &[&[10]]).unwrap(), (vec![10], 0, 0));
        assert_eq!(arg_error("Dropout", "{rate: 1.0}"), "layer 'x' (Dropout): `rate` must be a number in [0, 1), received 1.0");
        assert_eq!(arg_error("Dropout", "{rate: -0.1}"), "layer 'x' (Dropout): `rate` must be a number in [0, 1), received -0.1");
        assert_eq!(infer("Flatten", "{}", &[&[5, 5, 64]]).unwrap(), (vec![1600], 0, 0));
        assert!(arg_error("Flatten", "{data_format: channels_first}").contains("channels_last"));
    }

    #[test]
    fn reshape_infers_and_rejects() {
        assert_eq!(infer("Reshape", "{target_shape: [28, 28, 1]}", &[&[784]]).unwrap().0, vec![28, 28, 1]);
        assert_eq!(infer("Reshape", "{target_shape: [-1, 4]}", &[&[8, 2]]).unwrap().0, vec![4, 4]);
        let e = infer("Reshape", "{target_shape: [28, 29]}", &[&[784]]).unwrap_err();
        assert_eq!(e.message, "cannot reshape (batch, 784) (784 values per sample) to target_shape [28, 29]");
        assert_eq!(e.arg, Some("target_shape"));
        assert!(infer("Reshape", "{target_shape: [-1, 5]}", &[&[8]]).is_err());
        assert_eq!(arg_error("Reshape", "{target_shape: [-1, -1]}"), "layer 'x' (Reshape): `target_shape` may contain -1 only once");
        assert!(arg_error("Reshape", "{target_shape: [0, 4]}").contains("must be a non-empty list of positive integers"));
    }

    #[test]
    fn permute_and_repeat() {
        assert_eq!(infer("Permute", "{dims: [2, 1]}", &[&[10, 64]]).unwrap().0, vec![64, 10]);
        assert_eq!(infer("Permute", "{dims: [2, 1, 3]}", &[&[28, 112, 1]]).unwrap().0, vec![112, 28, 1]);
        assert!(arg_error("Permute", "{dims: [0, 1]}").contains("`dims` must be a non-empty list of positive integers"));
        assert!(infer("Permute", "{dims: [1, 3]}", &[&[10, 64]]).unwrap_err().message.contains("permutation of 1..=2"));
        assert_eq!(infer("RepeatVector", "{n: 3}", &[&[32]]).unwrap().0, vec![3, 32]);
        let e = infer("RepeatVector", "{n: 3}", &[&[4, 32]]).unwrap_err();
        assert_eq!(e.message, "expects a 2-D input (batch, features), received (batch, 4, 32)");
    }

    #[test]
    fn forward_shapes_and_gradients() {
        use crate::layers::testutil::{forward, grad_check};
        for (ty, yaml, input) in [
            ("Dense", "{units: 3, activation: tanh}", &[4usize][..]),
            ("Dense", "{units: 3, activation: softmax}", &[5, 4]),
            ("Dense", "{units: 2, use_bias: false}", &[3, 2, 4]),
            // The fused relu path of the kernel.
            ("Dense", "{units: 5, activation: relu}", &[7]),
            ("Dense", "{units: 4, activation: relu, use_bias: false}", &[2, 3]),
            ("Activation", "{activation: selu}", &[6]),
            ("Activation", "{activation: gelu}", &[6]),
            ("Activation", "{activation: softplus}", &[6]),
            ("Activation", "{activation: softsign}", &[6]),
            ("Activation", "{activation: elu}", &[6]),
            ("Activation", "{activation: silu}", &[6]),
            ("Activation", "{activation: sigmoid}", &[6]),
            ("Activation", "{activation: exponential}", &[6]),
            ("Flatten", "{}", &[2, 3, 2]),
            ("Reshape", "{target_shape: [3, -1]}", &[6]),
            ("Permute", "{dims: [2, 1, 3]}", &[2, 3, 2]),
            ("RepeatVector", "{n: 3}", &[4]),
        ] {
            forward(ty, yaml, &[input], true);
            grad_check(ty, yaml, &[input], true);
        }
    }

    #[test]
    fn dropout_drops_only_in_training_and_keeps_the_mean() {
        use crate::layers::testutil::forward;
        let eval = forward("Dropout", "{rate: 0.5}", &[&[4000]], false);
        let train = forward("Dropout", "{rate: 0.5}", &[&[4000]], true);
        let (e, t) = (eval.flatten_all().unwrap().to_vec1::<f64>().unwrap(), train.flatten_all().unwrap().to_vec1::<f64>().unwrap());
        let zeros = t.iter().filter(|v| **v == 0.0).count() as f64 / t.len() as f64;
        assert!((zeros - 0.5).abs() < 0.05, "dropped {zeros}");
        assert!(e.iter().zip(&t).all(|(a, b)| *b == 0.0 || (b - 2.0 * a).abs() < 1e-12));
    }

    #[test]
    fn embedding_looks_up_rows() {
        use crate::layers::{Ctx, testutil::build};
        use candle_core::{Tensor, Var};
        use rand::SeedableRng;
        let layer = build("Embedding", "{input_dim: 4, output_dim: 2}").unwrap();
        let table = Var::from_vec(vec![0f64, 1., 10., 11., 20., 21., 30., 31.], (4, 2), &candle_core::Device::Cpu).unwrap();
        let x = Tensor::new(&[[3f64, 0.], [1., 1.]], &candle_core::Device::Cpu).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let y = layer.forward(&[x], std::slice::from_ref(&table), &mut Ctx { train: true, rng: &mut rng, logits: false, grads: None, part: None }).unwrap();
        assert_eq!(y.dims(), &[2, 2, 2]);
        assert_eq!(y.flatten_all().unwrap().to_vec1::<f64>().unwrap(), vec![30., 31., 0., 1., 10., 11., 10., 11.]);
        let grads = y.sum_all().unwrap().backward().unwrap();
        assert_eq!(grads.get(table.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap(), vec![1., 1., 2., 2., 0., 0., 1., 1.]);
        let bad = Tensor::new(&[[4f64, 0.]], &candle_core::Device::Cpu).unwrap();
        assert!(layer.forward(&[bad], &[table], &mut Ctx { train: true, rng: &mut rng, logits: false, grads: None, part: None }).is_err());
    }

    #[test]
    fn embedding_shapes_and_params() {
        assert_eq!(infer("Embedding", "{input_dim: 1000, output_dim: 64}", &[&[10]]).unwrap(), (vec![10, 64], 64_000, 64_000));
        assert!(arg_error("Embedding", "{input_dim: 10}").contains("missing required argument `output_dim`"));
    }
}
