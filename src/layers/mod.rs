//! Layers: one file per family. Each layer keeps, side by side, how it reads
//! its Keras arguments, its shape rule, and the weights it creates (which give
//! its parameter count). Every layer type is registered once, in `REGISTRY`.
//!
//! Shapes never include the batch axis and are channels-last, as in Keras.

pub mod activation;
pub mod conv;
pub mod core;
pub mod init;
pub mod merge;
pub mod norm;
pub mod pooling;
pub mod rnn;

use crate::spec::args::Args;
pub use activation::Activation;
use candle_core::{Tensor, Var};
pub use init::Init;

/// A tensor shape without the batch axis.
pub type Shape = Vec<usize>;

/// The most values one tensor may hold: a weight, or one sample's output of
/// a layer. 2^38 float32 values are 1 TiB, more than a machine nnrun runs on
/// could hold, and small enough that shape arithmetic on sizes up to it never
/// overflows 64 bits. Validate reports a tensor past it as an error.
pub const MAX_ELEMENTS: usize = 1 << 38;
/// The most values all weights of a model may hold together (1 TiB of float32).
pub const MAX_TOTAL_PARAMS: usize = 1 << 38;
/// Bytes per value: nnrun trains in float32.
pub const BYTES_PER_VALUE: usize = 4;

/// The number of values of a shape, `None` past `usize`.
pub fn numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

/// The number of values of a shape, exact for any shape a spec can write
/// (`None` only past 2^128), for messages about sizes past every limit.
pub fn numel_wide(shape: &[usize]) -> Option<u128> {
    shape.iter().try_fold(1u128, |n, &d| n.checked_mul(d as u128))
}

/// `1234567` -> `1,234,567`
pub fn thousands(n: u128) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `1 TiB`, `285.2 TiB`: a byte count for messages about limits (1024-based).
pub fn fmt_bytes(bytes: u128) -> String {
    let mut size = bytes as f64;
    for unit in ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB"] {
        if size < 1024.0 {
            return if size.fract() == 0.0 { format!("{size} {unit}") } else { format!("{size:.1} {unit}") };
        }
        size /= 1024.0;
    }
    format!("{size:.1} YiB")
}

/// "would hold 78,400,000,000 values (292.1 GiB of float32)", or "more than
/// 2^128 values" when even that overflows.
pub fn fmt_values(n: Option<u128>) -> String {
    match n {
        Some(n) => format!("{} values ({} of float32)", thousands(n), fmt_bytes(n.saturating_mul(BYTES_PER_VALUE as u128))),
        None => "more than 2^128 values".into(),
    }
}

/// A shape computation that overflowed: far past `MAX_ELEMENTS` in any case.
pub fn overflow(what: impl std::fmt::Display) -> ShapeError {
    ShapeError::new(format!(
        "{what} would be larger than the {} values ({}) one tensor may hold",
        thousands(MAX_ELEMENTS as u128),
        fmt_bytes((MAX_ELEMENTS * BYTES_PER_VALUE) as u128)
    ))
}

/// A size argument (units, filters, kernel_size, ...): an integer `>= min` and
/// at most `MAX_ELEMENTS`, since every size ends up as an axis of some tensor.
pub fn size(a: &mut Args, name: &'static str, default: Option<usize>, min: usize) -> usize {
    a.usize_max(name, default, min, MAX_ELEMENTS)
}

/// Like `size`, as an int or a list of `n` (kernel_size, strides, ...).
pub fn sizes(a: &mut Args, name: &'static str, n: usize, default: Option<usize>, min: usize) -> Vec<usize> {
    a.ints_max(name, n, default, min, MAX_ELEMENTS)
}

/// `(batch, 26, 26, 32)`: how users see shapes in Keras, batch axis named.
pub fn fmt_shape(shape: &[usize]) -> String {
    let mut s = String::from("(batch");
    for d in shape {
        s.push_str(", ");
        s.push_str(&d.to_string());
    }
    s.push(')');
    s
}

/// Several shapes for a message: `(batch, 4) and (batch, 5)`.
pub fn fmt_shapes(shapes: &[Shape]) -> String {
    shapes.iter().map(|s| fmt_shape(s)).collect::<Vec<_>>().join(" and ")
}

/// A weight a layer creates, with Keras's name and layout
/// (`kernel` of Dense is (in, units), of Conv2D (kh, kw, in, filters)).
#[derive(Clone, Debug, PartialEq)]
pub struct Weight {
    pub name: String,
    pub shape: Vec<usize>,
    pub trainable: bool,
    /// How training draws the initial values (Keras initializer semantics).
    pub init: Init,
}

impl Weight {
    /// A trainable weight, zero-initialized unless `with_init` says otherwise.
    pub fn new(name: &str, shape: Vec<usize>) -> Self {
        Weight { name: name.to_string(), shape, trainable: true, init: Init::Named("zeros") }
    }
    /// Statistics such as BatchNormalization's moving mean.
    pub fn frozen(name: &str, shape: Vec<usize>) -> Self {
        Weight { trainable: false, ..Weight::new(name, shape) }
    }
    pub fn with_init(mut self, init: Init) -> Self {
        self.init = init;
        self
    }
    /// Initializer by Keras name, e.g. the layer's `kernel_initializer`.
    pub fn init(self, name: &'static str) -> Self {
        self.with_init(Init::Named(name))
    }
    /// The number of values; `usize::MAX` past it (the graph refuses
    /// any weight over `MAX_ELEMENTS`, so a built model never sees that).
    pub fn numel(&self) -> usize {
        numel(&self.shape).unwrap_or(usize::MAX)
    }
}

/// Why a layer can't take the shapes it was given. The graph adds the layer's
/// name, type and position. `{name}` in the hint is replaced by the layer name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShapeError {
    pub message: String,
    pub hint: Option<String>,
    /// The argument to point at, when one is to blame (`kernel_size`, ...).
    pub arg: Option<&'static str>,
}

impl ShapeError {
    pub fn new(message: impl Into<String>) -> Self {
        ShapeError { message: message.into(), hint: None, arg: None }
    }
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
    pub fn hint_opt(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }
    pub fn at(mut self, arg: &'static str) -> Self {
        self.arg = Some(arg);
        self
    }
}

/// How many inputs a layer takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arity {
    One,
    Exactly(usize),
    AtLeast(usize),
}

impl Arity {
    pub fn accepts(&self, n: usize) -> bool {
        match *self {
            Arity::One => n == 1,
            Arity::Exactly(k) => n == k,
            Arity::AtLeast(k) => n >= k,
        }
    }
    pub fn describe(&self) -> String {
        match *self {
            Arity::One => "exactly 1 input".into(),
            Arity::Exactly(k) => format!("exactly {k} inputs"),
            Arity::AtLeast(k) => format!("at least {k} inputs"),
        }
    }
}

/// A configured layer. Shape inference is pure arithmetic: no tensors, no device.
pub trait Layer: std::fmt::Debug + Send + Sync {
    fn arity(&self) -> Arity {
        Arity::One
    }

    /// The output shape for these input shapes (batch axis excluded).
    /// Called only with as many inputs as `arity` accepts.
    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape, ShapeError>;

    /// The weights created for these input shapes, in Keras order.
    /// Called only after `output_shape` succeeded.
    fn weights(&self, _inputs: &[Shape]) -> Vec<Weight> {
        Vec::new()
    }

    /// Likely mistakes that still build (validate reports them as warnings).
    /// `{name}` in a hint is replaced by the layer name.
    fn warnings(&self, _inputs: &[Shape], _output: &Shape) -> Vec<ShapeError> {
        Vec::new()
    }

    /// The activation applied last, for loss/output compatibility checks.
    fn activation(&self) -> Option<Activation> {
        None
    }

    /// Whether `forward` returns the values before `activation()` when
    /// `ctx.logits` is set, so the loss can fuse the two. A recurrent layer's
    /// activation sits inside its cell (h = o * tanh(c)): there is no logit
    /// to hand over, and its crossentropy is computed from probabilities.
    fn returns_logits(&self) -> bool {
        false
    }

    /// The computation, on tensors that carry the batch axis first, with this
    /// layer's weights in `weights()` order and Keras layout. Must agree with
    /// `output_shape` (a test runs every example spec to check it) and have
    /// correct gradients (each family has finite-difference tests).
    fn forward(&self, inputs: &[Tensor], weights: &[Var], ctx: &mut Ctx) -> candle_core::Result<Tensor>;

    /// This layer as a convolution, for fusing a pooling after it.
    fn as_conv(&self) -> Option<&conv::Conv> {
        None
    }

    /// This layer as a pooling, for fusing it after a convolution.
    fn as_pooling(&self) -> Option<&pooling::Pooling> {
        None
    }
}

/// What a forward pass needs besides tensors.
pub struct Ctx<'a> {
    /// Training mode: Dropout drops, BatchNormalization uses batch statistics.
    pub train: bool,
    /// nnrun's own seeded generator (candle's CPU generator can't be seeded).
    pub rng: &'a mut rand::rngs::StdRng,
    /// Return pre-activation logits: a layer whose `activation()` is `Some`
    /// leaves its activation out, so the loss can fuse softmax or sigmoid
    /// with the crossentropy. Set only for output layers.
    pub logits: bool,
    /// Training's weight-gradient buffers (`kernels::sink`): kernels write
    /// their weights' gradients there instead of into candle's store.
    pub grads: Option<&'a crate::kernels::sink::Sink>,
    /// In a data-parallel step, where this process's rows lie in the whole
    /// batch: Dropout draws the whole batch's mask and keeps its rows, so
    /// every sample gets the mask a single process would give it.
    pub part: Option<BatchPart>,
}

/// Rows `offset..offset + n` of a batch of `total` rows (`n` is the tensor's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchPart {
    pub offset: usize,
    pub total: usize,
}

impl Ctx<'_> {
    /// An inverted-dropout mask for `rows` rows of `per_row` values: 0, or
    /// 1/keep with probability `keep`, drawn row after row. In a data-parallel
    /// step the draws of the other processes' rows are made too, and skipped.
    pub fn dropout_mask(&mut self, rows: usize, per_row: usize, keep: f64) -> Vec<f32> {
        use rand::Rng;
        let (before, after) = match self.part {
            Some(p) => (p.offset, p.total.saturating_sub(p.offset + rows)),
            None => (0, 0),
        };
        for _ in 0..before * per_row {
            self.rng.random::<f64>();
        }
        let scale = (1.0 / keep) as f32;
        let mask = (0..rows * per_row).map(|_| if self.rng.random::<f64>() < keep { scale } else { 0.0 }).collect();
        for _ in 0..after * per_row {
            self.rng.random::<f64>();
        }
        mask
    }
}

/// A layer type as the spec names it.
pub struct LayerType {
    /// The Keras 3 class name, used as `type:` in the spec.
    pub name: &'static str,
    /// Section of the spec reference.
    pub family: &'static str,
    /// One line for the spec reference.
    pub summary: &'static str,
    /// Reads the arguments; errors go into `args.diags`.
    pub build: fn(&mut Args) -> Box<dyn Layer>,
}

/// Every layer type, once.
pub static REGISTRY: &[&LayerType] = &[
    &core::DENSE,
    &core::ACTIVATION,
    &core::DROPOUT,
    &core::FLATTEN,
    &core::RESHAPE,
    &core::PERMUTE,
    &core::REPEAT_VECTOR,
    &core::EMBEDDING,
    &conv::CONV1D,
    &conv::CONV2D,
    &conv::ZERO_PADDING2D,
    &conv::UP_SAMPLING2D,
    &pooling::MAX_POOLING1D,
    &pooling::MAX_POOLING2D,
    &pooling::AVERAGE_POOLING1D,
    &pooling::AVERAGE_POOLING2D,
    &pooling::GLOBAL_AVERAGE_POOLING1D,
    &pooling::GLOBAL_AVERAGE_POOLING2D,
    &pooling::GLOBAL_MAX_POOLING1D,
    &pooling::GLOBAL_MAX_POOLING2D,
    &norm::BATCH_NORMALIZATION,
    &norm::LAYER_NORMALIZATION,
    &rnn::SIMPLE_RNN,
    &rnn::LSTM,
    &rnn::GRU,
    &rnn::BIDIRECTIONAL,
    &merge::ADD,
    &merge::SUBTRACT,
    &merge::MULTIPLY,
    &merge::AVERAGE,
    &merge::MAXIMUM,
    &merge::MINIMUM,
    &merge::CONCATENATE,
];

pub fn lookup(name: &str) -> Option<&'static LayerType> {
    REGISTRY.iter().copied().find(|t| t.name == name)
}

pub fn type_names() -> Vec<&'static str> {
    REGISTRY.iter().map(|t| t.name).collect()
}

/// Keras's automatic layer name: `Conv2D` -> `conv2d`, `SimpleRNN` -> `simple_rnn`,
/// `MaxPooling2D` -> `max_pooling2d` (keras.src.utils.naming.to_snake_case).
pub fn snake_case(class: &str) -> String {
    let c: Vec<char> = class.chars().collect();
    let mut out = String::new();
    for (i, &ch) in c.iter().enumerate() {
        if i > 0 && ch.is_ascii_uppercase() {
            let prev = c[i - 1];
            let next_lower = c.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            // "(.)([A-Z][a-z]+)" then "([a-z])([A-Z])"
            if next_lower || prev.is_ascii_lowercase() {
                out.push('_');
            }
        }
        out.push(ch.to_ascii_lowercase());
    }
    out
}

// ---- helpers shared by the families -------------------------------------------------

/// Checks the input rank (batch excluded) and explains a mismatch with a fix.
/// `axes` names the expected axes, e.g. `"height, width, channels"`.
pub fn expect_rank(input: &Shape, rank: usize, axes: &str) -> Result<(), ShapeError> {
    if input.len() == rank {
        return Ok(());
    }
    Err(ShapeError::new(format!("expects a {}-D input (batch, {axes}), received {}", rank + 1, fmt_shape(input))).hint_opt(rank_hint(input, rank)))
}

/// Checks a minimum input rank (batch excluded).
pub fn expect_min_rank(input: &Shape, rank: usize) -> Result<(), ShapeError> {
    if input.len() >= rank {
        return Ok(());
    }
    Err(ShapeError::new(format!("expects an input of at least {} dimensions including batch, received {}", rank + 1, fmt_shape(input))))
}

/// The usual fix for feeding a layer a tensor of the wrong rank.
pub fn rank_hint(input: &Shape, want: usize) -> Option<String> {
    let n = numel(input)?;
    let reshape = |dims: Vec<usize>| {
        let d: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
        format!("{{type: Reshape, target_shape: [{}]}}", d.join(", "))
    };
    match (input.len(), want) {
        (r, 1) if r > 1 => Some("insert a Flatten layer before '{name}'".into()),
        (1, 2) => Some(format!("add a time axis before '{{name}}', for example {} (or RepeatVector to repeat the vector)", reshape(vec![n, 1]))),
        (2, 3) => Some(format!("add a channel axis before '{{name}}': {}", reshape(vec![input[0], input[1], 1]))),
        (1, 3) => {
            let side = (n as f64).sqrt().round() as usize;
            if side.checked_mul(side) == Some(n) {
                Some(format!("insert {} before '{{name}}' to make it an image", reshape(vec![side, side, 1])))
            } else {
                Some("insert a Reshape layer to (height, width, channels) before '{name}'".into())
            }
        }
        (3, 2) => Some(format!("insert {} before '{{name}}' to turn rows into time steps", reshape(vec![input[0], input[1].checked_mul(input[2])?]))),
        (r, 2) if r > 3 => Some("insert a Reshape layer to (steps, features) before '{name}'".into()),
        _ => None,
    }
}

/// Resolves a possibly negative Keras axis against a full rank including batch.
/// Returns the index into the batch-less shape.
pub fn resolve_axis(axis: i64, shape: &Shape) -> Result<usize, ShapeError> {
    let full = shape.len() as i64 + 1;
    let a = if axis < 0 { axis + full } else { axis };
    if a <= 0 || a >= full {
        let why = if a == 0 { " (axis 0 is the batch axis)" } else { "" };
        return Err(ShapeError::new(format!("`axis` {axis} is out of range for input {}{why}", fmt_shape(shape))).at("axis"));
    }
    Ok((a - 1) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keras_snake_case_names() {
        for (class, name) in [
            ("Dense", "dense"),
            ("Conv2D", "conv2d"),
            ("SimpleRNN", "simple_rnn"),
            ("LSTM", "lstm"),
            ("GRU", "gru"),
            ("MaxPooling2D", "max_pooling2d"),
            ("GlobalAveragePooling1D", "global_average_pooling1d"),
            ("BatchNormalization", "batch_normalization"),
            ("ZeroPadding2D", "zero_padding2d"),
            ("UpSampling2D", "up_sampling2d"),
            ("RepeatVector", "repeat_vector"),
            ("Bidirectional", "bidirectional"),
        ] {
            assert_eq!(snake_case(class), name);
        }
    }

    #[test]
    fn registry_names_are_unique_and_snake_cased() {
        let names = type_names();
        for (i, n) in names.iter().enumerate() {
            assert!(!names[i + 1..].contains(n), "{n} registered twice");
        }
        assert_eq!(names.len(), 33);
    }

    #[test]
    fn shapes_print_like_keras() {
        assert_eq!(fmt_shape(&[26, 26, 32]), "(batch, 26, 26, 32)");
        assert_eq!(fmt_shape(&[]), "(batch)");
    }

    #[test]
    fn rank_hints() {
        assert_eq!(rank_hint(&vec![784], 3).unwrap(), "insert {type: Reshape, target_shape: [28, 28, 1]} before '{name}' to make it an image");
        assert_eq!(rank_hint(&vec![28, 28], 3).unwrap(), "add a channel axis before '{name}': {type: Reshape, target_shape: [28, 28, 1]}");
        assert_eq!(rank_hint(&vec![5, 5, 8], 1).unwrap(), "insert a Flatten layer before '{name}'");
    }

    #[test]
    fn axes_resolve_like_keras() {
        assert_eq!(resolve_axis(-1, &vec![4, 5]).unwrap(), 1);
        assert_eq!(resolve_axis(1, &vec![4, 5]).unwrap(), 0);
        assert!(resolve_axis(0, &vec![4, 5]).is_err());
        assert!(resolve_axis(3, &vec![4, 5]).is_err());
    }
}

/// Building layers from YAML snippets in the families' unit tests.
#[cfg(test)]
pub mod testutil {
    use super::*;
    use crate::diag::Diagnostic;
    use crate::spec::yaml::parse;
    use candle_core::Device;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    /// Builds layer `ty` from flow-YAML arguments, e.g. `"{units: 3}"`.
    pub fn build(ty: &str, yaml: &str) -> Result<Box<dyn Layer>, Vec<Diagnostic>> {
        let node = parse(yaml).expect("test YAML parses");
        let t = lookup(ty).unwrap_or_else(|| panic!("{ty} is registered"));
        let mut args = Args::new(&node, "layer", format!("layer 'x' ({ty})"), &[]);
        let layer = (t.build)(&mut args);
        args.finish();
        if args.has_errors() { Err(args.diags) } else { Ok(layer) }
    }

    /// Output shape and (total, trainable) parameter count.
    pub fn infer(ty: &str, yaml: &str, inputs: &[&[usize]]) -> Result<(Shape, usize, usize), ShapeError> {
        let layer = build(ty, yaml).unwrap_or_else(|d| panic!("{ty} {yaml} builds: {d:?}"));
        let inputs: Vec<Shape> = inputs.iter().map(|s| s.to_vec()).collect();
        assert!(layer.arity().accepts(inputs.len()), "arity");
        let out = layer.output_shape(&inputs)?;
        let w = layer.weights(&inputs);
        let total = w.iter().map(Weight::numel).sum();
        let trainable = w.iter().filter(|w| w.trainable).map(Weight::numel).sum();
        Ok((out, total, trainable))
    }

    /// Runs `ty` forward on random inputs (batch 2, float64) and checks the
    /// real output shape against the inferred one. Returns the output.
    pub fn forward(ty: &str, yaml: &str, inputs: &[&[usize]], train: bool) -> Tensor {
        let (layer, shapes, vars, xs) = setup(ty, yaml, inputs, 0);
        let out = run(&*layer, &xs, &vars, train);
        let mut want = vec![2];
        want.extend(layer.output_shape(&shapes).unwrap());
        assert_eq!(out.dims(), &want[..], "{ty} {yaml}: real output shape differs from the inferred one");
        out
    }

    /// Checks every gradient (inputs and trainable weights) against central
    /// finite differences, in float64, on a random linear functional of the output.
    pub fn grad_check(ty: &str, yaml: &str, inputs: &[&[usize]], train: bool) {
        let (layer, _, vars, xs) = setup(ty, yaml, inputs, 1);
        let out = run(&*layer, &xs, &vars, train);
        let mut rng = StdRng::seed_from_u64(99);
        let r: Vec<f64> = (0..out.elem_count()).map(|_| rng.random_range(-1.0..1.0)).collect();
        let r = Tensor::from_vec(r, out.dims(), &Device::Cpu).unwrap();
        let loss = |xs: &[Var], vars: &[Var]| -> f64 {
            let out = run(&*layer, xs, vars, train);
            (out * &r).unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap()
        };
        let total = (run(&*layer, &xs, &vars, train) * &r).unwrap().sum_all().unwrap();
        let grads = total.backward().unwrap();
        let weights = layer.weights(&inputs.iter().map(|s| s.to_vec()).collect::<Vec<_>>());
        let checked: Vec<(String, &Var)> = xs
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("input {i}"), v))
            .chain(vars.iter().zip(&weights).filter(|(_, w)| w.trainable).map(|(v, w)| (w.name.clone(), v)))
            .collect();
        for (name, var) in checked {
            let g = grads
                .get(var.as_tensor())
                .unwrap_or_else(|| panic!("{ty} {yaml}: no gradient reaches {name}"))
                .flatten_all()
                .unwrap()
                .to_vec1::<f64>()
                .unwrap();
            let base = var.as_tensor().flatten_all().unwrap().to_vec1::<f64>().unwrap();
            let n = base.len();
            for k in (0..n).step_by((n / 12).max(1)) {
                let eps = 1e-5;
                let probe = |delta: f64| {
                    let mut v = base.clone();
                    v[k] += delta;
                    var.set(&Tensor::from_vec(v, var.dims(), &Device::Cpu).unwrap()).unwrap();
                    let l = loss(&xs, &vars);
                    var.set(&Tensor::from_vec(base.clone(), var.dims(), &Device::Cpu).unwrap()).unwrap();
                    l
                };
                let numeric = (probe(eps) - probe(-eps)) / (2.0 * eps);
                let tol = 1e-6 + 1e-4 * numeric.abs().max(g[k].abs());
                assert!((numeric - g[k]).abs() <= tol, "{ty} {yaml}: d/d{name}[{k}] analytic {} vs numeric {numeric}", g[k]);
            }
        }
    }

    type Setup = (Box<dyn Layer>, Vec<Shape>, Vec<Var>, Vec<Var>);

    /// The layer, its input shapes, random weights and random inputs (batch 2).
    fn setup(ty: &str, yaml: &str, inputs: &[&[usize]], seed: u64) -> Setup {
        let layer = build(ty, yaml).unwrap_or_else(|d| panic!("{ty} {yaml} builds: {d:?}"));
        let shapes: Vec<Shape> = inputs.iter().map(|s| s.to_vec()).collect();
        layer.output_shape(&shapes).unwrap_or_else(|e| panic!("{ty} {yaml}: {}", e.message));
        let mut rng = StdRng::seed_from_u64(seed);
        let mut random = |dims: &[usize], lo: f64, hi: f64| {
            let n: usize = dims.iter().product();
            let v: Vec<f64> = (0..n).map(|_| rng.random_range(lo..hi)).collect();
            Var::from_vec(v, dims, &Device::Cpu).unwrap()
        };
        // Non-trivial values everywhere (biases too); statistics stay positive.
        let vars = layer.weights(&shapes).iter().map(|w| if w.trainable { random(&w.shape, -0.5, 0.5) } else { random(&w.shape, 0.5, 1.5) }).collect();
        let xs = shapes
            .iter()
            .map(|s| {
                let mut dims = vec![2];
                dims.extend(s);
                random(&dims, -1.0, 1.0)
            })
            .collect();
        (layer, shapes, vars, xs)
    }

    fn run(layer: &dyn Layer, xs: &[Var], vars: &[Var], train: bool) -> Tensor {
        let mut rng = StdRng::seed_from_u64(5);
        let mut ctx = Ctx { train, rng: &mut rng, logits: false, grads: None, part: None };
        let xs: Vec<Tensor> = xs.iter().map(|v| v.as_tensor().clone()).collect();
        layer.forward(&xs, vars, &mut ctx).unwrap()
    }

    /// The first argument error's message.
    pub fn arg_error(ty: &str, yaml: &str) -> String {
        match build(ty, yaml) {
            Ok(_) => panic!("{ty} {yaml} should be rejected"),
            Err(d) => d[0].message.clone(),
        }
    }
}
