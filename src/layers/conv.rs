//! Convolution layers: Conv1D, Conv2D, ZeroPadding2D, UpSampling2D, and
//! what the pooling layers share with them: shape inference of a sliding
//! window and the candle-op padding, over `kernels::window`'s geometry.

use super::activation::{read_activation, read_initializer};
use super::core::channels_last;
use super::{Activation, Ctx, Layer, LayerType, MAX_ELEMENTS, Shape, ShapeError, Weight, expect_rank, fmt_shape, overflow, size, sizes};
use crate::kernels;
use crate::kernels::window::{Axis, Misfit, Padding};
use crate::spec::args::Args;
use crate::spec::yaml::Node;
use candle_core::{Tensor, Var};
type CResult<T> = candle_core::Result<T>;

// ---- shared with pooling ------------------------------------------------------------

/// Checks a channels-last input with `dims` spatial axes: (steps, channels) or
/// (height, width, channels).
pub fn expect_spatial(input: &Shape, dims: usize) -> Result<(), ShapeError> {
    match dims {
        1 => expect_rank(input, 2, "steps, channels"),
        _ => expect_rank(input, 3, "height, width, channels"),
    }
}

/// A Keras tuple as Keras prints it: `(3, 3)`, `(5,)`.
pub fn fmt_tuple<T: std::fmt::Display>(v: &[T]) -> String {
    let items: Vec<String> = v.iter().map(T::to_string).collect();
    if items.len() == 1 { format!("({},)", items[0]) } else { format!("({})", items.join(", ")) }
}

/// The spatial output sizes of a sliding window (Keras `compute_conv_output_shape`
/// and `compute_pooling_output_shape`, which agree once the window is dilated).
/// `what` names the window argument (`kernel_size`, `pool_size`) for the error
/// raised when, with padding "valid", the window does not fit in the input.
pub fn sliding_window(
    input: &Shape,
    what: &'static str,
    size: &[usize],
    dilation: &[usize],
    strides: &[usize],
    padding: Padding,
) -> Result<Vec<usize>, ShapeError> {
    // The message ends with the input shape: the graph appends "from '<layer>'".
    // `Axis::fit` computes in i128: sizes are usize (up to 2^64) and a dilated
    // span multiplies two of them, so nothing wraps; a product past i128 is
    // reported as an overflow.
    let mut out: Vec<i128> = Vec::with_capacity(size.len());
    let mut spans: Vec<i128> = Vec::with_capacity(size.len());
    for i in 0..size.len() {
        let (span, o) = match Axis::fit(input[i], size[i], strides[i].max(1), dilation[i], padding) {
            Ok(a) => (Some(a.span() as i128), a.out as i128),
            Err(Misfit::Empty { span, out }) => (Some(span), out),
            Err(Misfit::Zero | Misfit::Overflow) => (None, 0),
        };
        let Some(span) = span.filter(|&s| padding == Padding::Valid || s <= MAX_ELEMENTS as i128) else {
            // Padding would add span - 1 cells along the axis.
            return Err(super::overflow(format!("padding {:?} for the window of {what} {}{}", padding.name(), fmt_tuple(size), dilation_text(dilation)))
                .hint(format!("use a smaller {what}{}", if dilation.iter().any(|&d| d > 1) { " or dilation_rate" } else { "" }))
                .at(what));
        };
        spans.push(span);
        out.push(o);
    }
    if out.iter().all(|&o| o > 0) {
        // Each is at most the input size, so it fits a usize.
        return Ok(out.into_iter().map(|o| o as usize).collect());
    }
    let dilated =
        if dilation.iter().any(|&d| d > 1) { format!(" with dilation_rate {} (spanning {})", fmt_tuple(dilation), fmt_tuple(&spans)) } else { String::new() };
    Err(ShapeError::new(format!(
        "{what} {}{dilated} leaves an output size of {} with padding 'valid': it is larger than the input {}",
        fmt_tuple(size),
        fmt_tuple(&out),
        fmt_shape(input)
    ))
    .hint(format!("use padding: same, a smaller {what}, or remove a pooling layer before '{{name}}'"))
    .at(what))
}

/// Reads a layer's `padding`: one of `options`, valid by default.
pub fn read_window_padding(a: &mut Args, options: &[Padding]) -> Padding {
    let names: Vec<&'static str> = options.iter().map(|p| p.name()).collect();
    let name = a.choice("padding", Some(Padding::Valid.name()), &names);
    Padding::parse(name).unwrap_or(Padding::Valid)
}

// ---- tensor helpers shared with pooling ---------------------------------------------
// Windows run on (B, H, W, C); a 1D layer adds a unit W axis, so every sliding
// window goes through the same code (and the same candle ops).

fn dilation_text(dilation: &[usize]) -> String {
    if dilation.iter().any(|&d| d > 1) { format!(" with dilation_rate {}", fmt_tuple(dilation)) } else { String::new() }
}

/// A per-axis argument as (height, width); 1D layers get `fill` for the unit W axis.
pub fn pair(v: &[usize], fill: usize) -> [usize; 2] {
    [v[0], v.get(1).copied().unwrap_or(fill)]
}

/// (B, steps, C) -> (B, steps, 1, C) for 1D layers.
pub fn to_2d(x: &Tensor, dims: usize) -> CResult<Tensor> {
    if dims == 1 { x.unsqueeze(2) } else { Ok(x.clone()) }
}

/// Pads an axis with `fill` (max pooling pads with -inf).
pub fn pad_axis(x: &Tensor, axis: usize, before: usize, after: usize, fill: f64) -> CResult<Tensor> {
    if fill == 0.0 || before + after == 0 {
        return x.pad_with_zeros(axis, before, after);
    }
    let side = |n: usize| {
        let mut dims = x.dims().to_vec();
        dims[axis] = n;
        Tensor::full(fill, dims, x.device())?.to_dtype(x.dtype())
    };
    let mut parts = Vec::new();
    if before > 0 {
        parts.push(side(before)?);
    }
    parts.push(x.clone());
    if after > 0 {
        parts.push(side(after)?);
    }
    Tensor::cat(&parts, axis)
}

/// Elements start, start+step, ... (n of them) along an axis. index_select,
/// because its backward (index_add) is right.
pub fn strided(x: &Tensor, axis: usize, start: usize, step: usize, n: usize) -> CResult<Tensor> {
    if step == 1 {
        return x.narrow(axis, start, n);
    }
    let ids: Vec<u32> = (0..n).map(|i| (start + i * step) as u32).collect();
    x.contiguous()?.index_select(&Tensor::new(ids, x.device())?, axis)
}

/// Pads (Keras 'same'/'causal') or crops (trailing cells no window reads) an
/// axis to exactly (out-1)*stride + span cells. Windows then tile it with no
/// remainder, which candle's strided conv backward needs. The returned axis
/// is the window of `span` taps (dilation 1) fitted to the input.
pub fn fit_axis(x: &Tensor, axis: usize, span: usize, stride: usize, padding: Padding, fill: f64) -> CResult<(Tensor, Axis)> {
    let len = x.dim(axis)?;
    let a = Axis::new(len, span, stride, 1, padding)?;
    let (need, before) = (a.need(), a.before);
    let x =
        if len + before >= need { pad_axis(x, axis, before, 0, fill)?.narrow(axis, 0, need)? } else { pad_axis(x, axis, before, need - len - before, fill)? };
    Ok((x, a))
}

/// Fits H and W of (B, H, W, C) for windows of `span` cells moving by `strides`.
pub fn fit_2d(x: &Tensor, span: [usize; 2], strides: [usize; 2], padding: Padding, fill: f64) -> CResult<(Tensor, [Axis; 2])> {
    let (x, h) = fit_axis(x, 1, span[0], strides[0], padding, fill)?;
    let (x, w) = fit_axis(&x, 2, span[1], strides[1], padding, fill)?;
    Ok((x, [h, w]))
}

/// Inserts d-1 zeros between the taps of a Keras kernel along `axis`, for a
/// dilation candle can't express (it takes one rate for both axes).
fn dilate(k: &Tensor, axis: usize, d: usize) -> CResult<Tensor> {
    let n = k.dim(axis)?;
    if d == 1 || n == 1 {
        return Ok(k.clone());
    }
    let mut dims = k.dims().to_vec();
    dims[axis] = n * d;
    k.unsqueeze(axis + 1)?.pad_with_zeros(axis + 1, 0, d - 1)?.reshape(dims)?.narrow(axis, 0, (n - 1) * d + 1)
}

// ---- Conv1D / Conv2D ------------------------------------------------------------------

pub static CONV1D: LayerType = LayerType {
    name: "Conv1D",
    family: "conv",
    summary: "1D convolution over (steps, channels); padding \"causal\" looks only at past steps.",
    build: |a| Box::new(Conv::read(a, 1)),
};

pub static CONV2D: LayerType =
    LayerType { name: "Conv2D", family: "conv", summary: "2D convolution over (height, width, channels).", build: |a| Box::new(Conv::read(a, 2)) };

#[derive(Clone, Debug, PartialEq)]
pub struct Conv {
    /// Spatial axes: 1 for Conv1D, 2 for Conv2D.
    pub dims: usize,
    pub filters: usize,
    pub kernel_size: Vec<usize>,
    pub strides: Vec<usize>,
    pub padding: Padding,
    pub dilation_rate: Vec<usize>,
    pub groups: usize,
    pub activation: Activation,
    pub use_bias: bool,
    pub kernel_initializer: &'static str,
    pub bias_initializer: &'static str,
}

impl Conv {
    fn read(a: &mut Args, dims: usize) -> Self {
        let paddings: &[Padding] = if dims == 1 { &Padding::ALL } else { &[Padding::Valid, Padding::Same] };
        let filters = size(a, "filters", None, 1);
        let kernel_size = sizes(a, "kernel_size", dims, None, 1);
        let strides = sizes(a, "strides", dims, Some(1), 1);
        let padding = read_window_padding(a, paddings);
        channels_last(a);
        let dilation_rate = sizes(a, "dilation_rate", dims, Some(1), 1);
        let groups = size(a, "groups", Some(1), 1);
        // Keras's BaseConv rejects these combinations when the layer is created.
        if strides.iter().any(|&s| s > 1)
            && dilation_rate.iter().any(|&d| d > 1)
            && let Some(node) = a.node("dilation_rate")
        {
            let what = format!(
                "{} cannot be combined with strides {}: Keras supports dilation_rate > 1 only with strides 1",
                fmt_tuple(&dilation_rate),
                fmt_tuple(&strides)
            );
            a.error("dilation_rate", node, what, Some("set strides: 1 or dilation_rate: 1".into()));
        }
        if !filters.is_multiple_of(groups)
            && let Some(node) = a.node("groups")
        {
            let what = format!("{groups} must divide filters ({filters}) evenly");
            a.error("groups", node, what, None);
        }
        Conv {
            dims,
            filters,
            kernel_size,
            strides,
            padding,
            dilation_rate,
            groups,
            activation: read_activation(a, "activation", Some(Activation::Linear)),
            use_bias: a.bool("use_bias", true),
            kernel_initializer: read_initializer(a, "kernel_initializer", "glorot_uniform"),
            bias_initializer: read_initializer(a, "bias_initializer", "zeros"),
        }
    }
}

impl Layer for Conv {
    fn returns_logits(&self) -> bool {
        true
    }

    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape, ShapeError> {
        let input = &inputs[0];
        expect_spatial(input, self.dims)?;
        let channels = input[self.dims];
        if !channels.is_multiple_of(self.groups) {
            return Err(ShapeError::new(format!(
                "the input channels ({channels}) must be divisible by groups ({}); received {}",
                self.groups,
                fmt_shape(input)
            ))
            .at("groups"));
        }
        let mut out = sliding_window(input, "kernel_size", &self.kernel_size, &self.dilation_rate, &self.strides, self.padding)?;
        out.push(self.filters);
        Ok(out)
    }

    fn weights(&self, inputs: &[Shape]) -> Vec<Weight> {
        let mut kernel = self.kernel_size.clone();
        kernel.extend([inputs[0][self.dims] / self.groups, self.filters]);
        let mut w = vec![Weight::new("kernel", kernel).init(self.kernel_initializer)];
        if self.use_bias {
            w.push(Weight::new("bias", vec![self.filters]).init(self.bias_initializer));
        }
        w
    }

    fn activation(&self) -> Option<Activation> {
        Some(self.activation)
    }

    fn forward(&self, inputs: &[Tensor], w: &[Var], ctx: &mut Ctx) -> CResult<Tensor> {
        self.forward_with(inputs, w, ctx, true)
    }

    fn as_conv(&self) -> Option<&Conv> {
        Some(self)
    }
}

impl Conv {
    /// This Conv2D then `pool` as one kernel op (`kernels::conv::conv2d` with a pool),
    /// where it applies: CPU, groups 1, relu or no activation, a 2D pooling.
    /// None: run the two layers one after the other.
    pub(crate) fn forward_pooled(&self, inputs: &[Tensor], w: &[Var], ctx: &mut Ctx, pool: &super::pooling::Pooling) -> Option<CResult<Tensor>> {
        let fits = self.dims == 2 && pool.dims == 2 && self.groups == 1 && matches!(self.activation, Activation::Relu | Activation::Linear);
        if !fits || !kernels::conv::supports(&inputs[0]) || inputs[0].rank() != 4 {
            return None;
        }
        let (s, d) = (pair(&self.strides, 1), pair(&self.dilation_rate, 1));
        let bias = if self.use_bias { Some(w[1].as_tensor()) } else { None };
        let p = kernels::conv::Pool { size: pair(&pool.pool_size, 1), strides: pair(&pool.strides, 1), padding: pool.padding, max: pool.max };
        let relu = self.activation == Activation::Relu;
        Some(kernels::conv::conv2d(&inputs[0], w[0].as_tensor(), bias, relu, s, d, self.padding, ctx.train, Some(p)))
    }

    /// `fast`: nnrun's NHWC kernel where it applies (CPU, f32/f64, groups 1);
    /// otherwise, and always with `fast` false, plain candle ops (the
    /// reference the kernel is tested against, and the path for other devices).
    pub(crate) fn forward_with(&self, inputs: &[Tensor], w: &[Var], ctx: &mut Ctx, fast: bool) -> CResult<Tensor> {
        let x = to_2d(&inputs[0], self.dims)?;
        let mut k = w[0].as_tensor().clone();
        if self.dims == 1 {
            k = k.unsqueeze(1)?; // (k, 1, in, filters)
        }
        let (s, d) = (pair(&self.strides, 1), pair(&self.dilation_rate, 1));
        if fast && self.groups == 1 && kernels::conv::supports(&x) {
            // Bias and relu run inside the kernel; other activations after it.
            let act = if ctx.logits { Activation::Linear } else { self.activation };
            let relu = act == Activation::Relu;
            let bias = if self.use_bias { Some(w[1].as_tensor()) } else { None };
            let mut y = kernels::conv::conv2d(&x, &k, bias, relu, s, d, self.padding, ctx.train, None)?;
            if self.dims == 1 {
                y = y.squeeze(2)?;
            }
            return if relu { Ok(y) } else { act.apply(&y)?.contiguous() };
        }
        let mut y = self.conv_plain(&x, k)?;
        if self.use_bias {
            y = y.broadcast_add(w[1].as_tensor())?;
        }
        if self.dims == 1 {
            y = y.squeeze(2)?;
        }
        let y = if ctx.logits { y } else { self.activation.apply(&y)? };
        y.contiguous()
    }

    /// Conv through candle's NCHW conv2d, without bias: (B, OH, OW, F).
    fn conv_plain(&self, x: &Tensor, mut k: Tensor) -> CResult<Tensor> {
        let (ks, s, d) = (pair(&self.kernel_size, 1), pair(&self.strides, 1), pair(&self.dilation_rate, 1));
        let span = [d[0] * (ks[0] - 1) + 1, d[1] * (ks[1] - 1) + 1];
        let (x, [h, wf]) = fit_2d(x, span, s, self.padding, 0.0)?;
        // candle takes one dilation and one stride for both axes; an axis with
        // a single tap or a single output doesn't care which.
        let dil = if ks[1] == 1 || d[0] == d[1] {
            d[0]
        } else if ks[0] == 1 {
            d[1]
        } else {
            1
        };
        if dil == 1 {
            k = dilate(&dilate(&k, 0, d[0])?, 1, d[1])?;
        }
        let stride = if s[0] == s[1] || wf.out == 1 {
            s[0]
        } else if h.out == 1 {
            s[1]
        } else {
            1
        };
        let xn = x.permute((0, 3, 1, 2))?.contiguous()?;
        let kn = k.permute((3, 2, 0, 1))?.contiguous()?;
        let mut y = xn.conv2d(&kn, 0, stride, dil, self.groups)?.permute((0, 2, 3, 1))?;
        if stride == 1 {
            // Different strides per axis: subsample a stride-1 result.
            y = strided(&strided(&y, 1, 0, s[0], h.out)?, 2, 0, s[1], wf.out)?;
        }
        Ok(y)
    }
}

// ---- ZeroPadding2D --------------------------------------------------------------------

pub static ZERO_PADDING2D: LayerType = LayerType {
    name: "ZeroPadding2D",
    family: "conv",
    summary: "Adds rows and columns of zeros around an image: padding is n, [h, w] or [[top, bottom], [left, right]].",
    build: |a| {
        let padding = read_padding(a);
        channels_last(a);
        Box::new(ZeroPadding2D { padding })
    },
};

#[derive(Clone, Debug, PartialEq)]
pub struct ZeroPadding2D {
    /// ((top, bottom), (left, right)).
    pub padding: [[usize; 2]; 2],
}

/// Keras accepts an int, or 2 entries (height, width) each an int or a pair.
fn read_padding(a: &mut Args) -> [[usize; 2]; 2] {
    let kind = "an integer >= 0, [height, width] or [[top, bottom], [left, right]]";
    let default = [[1, 1], [1, 1]];
    let Some(node) = a.raw("padding", kind, Some("[1, 1]".into())) else { return default };
    let mut too_large = false;
    let mut pair = |n: &Node| -> Option<[usize; 2]> {
        let mut int = |n: &Node| {
            let i = n.as_int().filter(|&i| i >= 0)? as usize;
            too_large |= i > MAX_ELEMENTS;
            Some(i)
        };
        match n.as_seq() {
            Some([x, y]) => Some([int(x)?, int(y)?]),
            Some(_) => None,
            None => int(n).map(|i| [i, i]),
        }
    };
    let parsed = match node.as_seq() {
        Some([h, w]) => pair(h).zip(pair(w)).map(|(h, w)| [h, w]),
        Some(_) => None,
        None => pair(node).map(|p| [p, p]),
    };
    match parsed {
        Some(_) if too_large => {
            a.too_large("padding", node, MAX_ELEMENTS);
            default
        }
        Some(p) => p,
        None => {
            a.error("padding", node, format!("must be {kind}, received {}", node.describe()), None);
            default
        }
    }
}

impl Layer for ZeroPadding2D {
    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape, ShapeError> {
        let input = &inputs[0];
        expect_spatial(input, 2)?;
        let [[t, b], [l, r]] = self.padding;
        let grow = |n: usize, x: usize, y: usize| n.checked_add(x)?.checked_add(y);
        match (grow(input[0], t, b), grow(input[1], l, r)) {
            (Some(h), Some(w)) => Ok(vec![h, w, input[2]]),
            _ => Err(overflow(format!("the padded output of {}", fmt_shape(input))).at("padding")),
        }
    }

    fn forward(&self, inputs: &[Tensor], _w: &[Var], _ctx: &mut Ctx) -> CResult<Tensor> {
        let [[t, b], [l, r]] = self.padding;
        inputs[0].pad_with_zeros(1, t, b)?.pad_with_zeros(2, l, r)
    }
}

// ---- UpSampling2D ---------------------------------------------------------------------

pub static UP_SAMPLING2D: LayerType = LayerType {
    name: "UpSampling2D",
    family: "conv",
    summary: "Repeats the rows and columns of an image `size` times: (h*sh, w*sw, channels).",
    build: |a| {
        let size = sizes(a, "size", 2, Some(2), 1);
        channels_last(a);
        let interpolation = a.choice("interpolation", Some("nearest"), &["nearest", "bilinear"]);
        Box::new(UpSampling2D { size, interpolation })
    },
};

#[derive(Clone, Debug, PartialEq)]
pub struct UpSampling2D {
    pub size: Vec<usize>,
    pub interpolation: &'static str,
}

impl Layer for UpSampling2D {
    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape, ShapeError> {
        let input = &inputs[0];
        expect_spatial(input, 2)?;
        match (input[0].checked_mul(self.size[0]), input[1].checked_mul(self.size[1])) {
            (Some(h), Some(w)) => Ok(vec![h, w, input[2]]),
            _ => Err(overflow(format!("the upsampled output of {}", fmt_shape(input))).at("size")),
        }
    }

    fn forward(&self, inputs: &[Tensor], _w: &[Var], _ctx: &mut Ctx) -> CResult<Tensor> {
        let x = &inputs[0];
        let (b, h, w, c) = x.dims4()?;
        let (sh, sw) = (self.size[0], self.size[1]);
        if self.interpolation == "nearest" {
            // Broadcast + reshape: candle's upsample_nearest2d backward is wrong.
            let x = x.unsqueeze(2)?.broadcast_as((b, h, sh, w, c))?.reshape((b, h * sh, w, c))?;
            return x.unsqueeze(3)?.broadcast_as((b, h * sh, w, sw, c))?.reshape((b, h * sh, w * sw, c));
        }
        // Bilinear as two interpolation matmuls over (B, C, H, W).
        let mh = bilinear_matrix(h, sh, x)?;
        let mw = bilinear_matrix(w, sw, x)?;
        let x = x.permute((0, 3, 2, 1))?.contiguous()?.broadcast_matmul(&mh)?; // (B, C, W, H')
        let x = x.transpose(2, 3)?.contiguous()?.broadcast_matmul(&mw)?; // (B, C, H', W')
        x.permute((0, 2, 3, 1))?.contiguous()
    }
}

/// The (n, n*factor) matrix that resizes an axis bilinearly as Keras 3's
/// `ops.image.resize` (TF's half-pixel centers, edges clamped).
fn bilinear_matrix(n: usize, factor: usize, like: &Tensor) -> CResult<Tensor> {
    let m = n * factor;
    let mut a = vec![0f64; n * m];
    for o in 0..m {
        let src = ((o as f64 + 0.5) / factor as f64 - 0.5).max(0.0);
        let lo = (src.floor() as usize).min(n - 1);
        let hi = (lo + 1).min(n - 1);
        let t = src - lo as f64;
        a[lo * m + o] += 1.0 - t;
        a[hi * m + o] += t;
    }
    Tensor::from_vec(a, (n, m), like.device())?.to_dtype(like.dtype())
}

#[cfg(test)]
pub(super) mod tests {
    use crate::layers::testutil::{arg_error, build, forward, grad_check, infer};
    use crate::layers::{Ctx, Layer};
    use candle_core::{Device, Tensor, Var};
    use rand::SeedableRng;

    /// Runs layer `ty` on `x` (float64, given dims) with the given weights;
    /// returns the output dims and values.
    pub(crate) fn apply(ty: &str, yaml: &str, x: &[f64], dims: &[usize], weights: &[(&[f64], &[usize])]) -> (Vec<usize>, Vec<f64>) {
        let layer = build(ty, yaml).unwrap();
        let x = Tensor::from_vec(x.to_vec(), dims, &Device::Cpu).unwrap();
        let w: Vec<Var> = weights.iter().map(|(v, d)| Var::from_vec(v.to_vec(), *d, &Device::Cpu).unwrap()).collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let y = layer.forward(&[x], &w, &mut Ctx { train: true, rng: &mut rng, logits: false, grads: None, part: None }).unwrap();
        (y.dims().to_vec(), y.flatten_all().unwrap().to_vec1::<f64>().unwrap())
    }

    /// 0, 1, 2, ... as f64.
    pub(crate) fn iota(n: usize) -> Vec<f64> {
        (0..n).map(|i| i as f64).collect()
    }

    #[test]
    fn conv_forward_shapes_and_gradients() {
        for (ty, yaml, input) in [
            ("Conv2D", "{filters: 4, kernel_size: 3, activation: tanh}", &[7usize, 5, 3][..]),
            ("Conv2D", "{filters: 4, kernel_size: 3, padding: same}", &[7, 5, 3]),
            ("Conv2D", "{filters: 3, kernel_size: 3, padding: same, activation: relu}", &[6, 5, 2]),
            ("Conv2D", "{filters: 3, kernel_size: 1, activation: relu, use_bias: false}", &[4, 3, 2]),
            ("Conv2D", "{filters: 2, kernel_size: 3, strides: 2}", &[7, 5, 3]),
            ("Conv2D", "{filters: 2, kernel_size: 2, strides: 2, use_bias: false}", &[5, 4, 1]),
            ("Conv2D", "{filters: 2, kernel_size: 3, strides: 2, padding: same}", &[7, 6, 2]),
            ("Conv2D", "{filters: 2, kernel_size: 3, strides: [2, 1]}", &[7, 5, 3]),
            ("Conv2D", "{filters: 2, kernel_size: [2, 3], strides: [1, 3], padding: same}", &[6, 7, 2]),
            ("Conv2D", "{filters: 2, kernel_size: 3, dilation_rate: 2}", &[7, 6, 2]),
            ("Conv2D", "{filters: 2, kernel_size: 3, dilation_rate: [2, 1], padding: same}", &[6, 5, 2]),
            ("Conv2D", "{filters: 2, kernel_size: [2, 3], dilation_rate: [1, 2]}", &[5, 7, 2]),
            ("Conv2D", "{filters: 4, kernel_size: [3, 2], groups: 2, activation: relu}", &[6, 5, 4]),
            ("Conv2D", "{filters: 4, kernel_size: 2, strides: 2, groups: 2, padding: same}", &[5, 3, 2]),
            ("Conv1D", "{filters: 3, kernel_size: 3}", &[9, 2]),
            ("Conv1D", "{filters: 3, kernel_size: 3, padding: same}", &[9, 2]),
            ("Conv1D", "{filters: 3, kernel_size: 3, padding: causal}", &[9, 2]),
            ("Conv1D", "{filters: 3, kernel_size: 3, padding: causal, strides: 2}", &[9, 2]),
            ("Conv1D", "{filters: 3, kernel_size: 2, strides: 3}", &[10, 2]),
            ("Conv1D", "{filters: 3, kernel_size: 3, padding: causal, dilation_rate: 2}", &[9, 2]),
            ("Conv1D", "{filters: 2, kernel_size: 3, padding: same, dilation_rate: 3}", &[8, 2]),
            ("Conv1D", "{filters: 2, kernel_size: 3, groups: 2}", &[8, 4]),
            ("ZeroPadding2D", "{padding: [[0, 2], [1, 0]]}", &[3, 4, 2]),
            ("UpSampling2D", "{size: [2, 3]}", &[3, 2, 2]),
            ("UpSampling2D", "{size: [3, 2], interpolation: bilinear}", &[3, 4, 2]),
        ] {
            forward(ty, yaml, &[input], true);
            grad_check(ty, yaml, &[input], true);
        }
    }

    /// The Conv layer itself (not boxed), to call `forward_with`.
    fn conv_layer(ty: &str, yaml: &str) -> super::Conv {
        let node = crate::spec::yaml::parse(yaml).unwrap();
        let mut args = crate::spec::args::Args::new(&node, "layer", format!("layer 'x' ({ty})"), &[]);
        let conv = super::Conv::read(&mut args, if ty == "Conv1D" { 1 } else { 2 });
        args.finish();
        assert!(!args.has_errors(), "{ty} {yaml}");
        conv
    }

    /// Random f32 values in [-1, 1).
    fn uniform(dims: &[usize], rng: &mut rand::rngs::StdRng) -> Vec<f32> {
        use rand::Rng;
        (0..dims.iter().product()).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    }

    /// Largest |a - b| relative to the largest |b| (at least 1).
    fn rel_diff(a: &Tensor, b: &Tensor) -> f32 {
        let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(a.len(), b.len());
        let scale = b.iter().fold(1f32, |m, v| m.max(v.abs()));
        a.iter().zip(&b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
    }

    /// nnrun's NHWC conv kernel against the plain candle-op path it replaces:
    /// output and gradients (input, kernel, bias) in f32, batch 3.
    #[test]
    fn conv_kernel_matches_plain_ops() {
        for (ty, yaml, input) in [
            ("Conv2D", "{filters: 5, kernel_size: 3, activation: relu}", &[9usize, 7, 3][..]),
            ("Conv2D", "{filters: 4, kernel_size: 3, padding: same}", &[8, 6, 2]),
            ("Conv2D", "{filters: 3, kernel_size: 3, strides: 2}", &[9, 8, 2]),
            ("Conv2D", "{filters: 3, kernel_size: 3, strides: 2, padding: same}", &[7, 10, 3]),
            ("Conv2D", "{filters: 3, kernel_size: [2, 3], strides: [1, 3], padding: same}", &[6, 7, 2]),
            ("Conv2D", "{filters: 3, kernel_size: 2, strides: [2, 1], use_bias: false}", &[7, 5, 4]),
            ("Conv2D", "{filters: 3, kernel_size: 3, dilation_rate: 2}", &[9, 8, 2]),
            ("Conv2D", "{filters: 3, kernel_size: [3, 2], dilation_rate: [2, 1], padding: same}", &[8, 5, 2]),
            ("Conv2D", "{filters: 6, kernel_size: 1}", &[5, 4, 3]),
            ("Conv2D", "{filters: 16, kernel_size: 3, activation: tanh}", &[13, 11, 8]),
            ("Conv1D", "{filters: 3, kernel_size: 3, padding: causal, dilation_rate: 2}", &[11, 2]),
            ("Conv1D", "{filters: 4, kernel_size: 2, strides: 3, padding: same}", &[10, 3]),
        ] {
            let conv = conv_layer(ty, yaml);
            let shapes = [input.to_vec()];
            let mut rng = rand::rngs::StdRng::seed_from_u64(7);
            let mut dims = vec![3];
            dims.extend(input);
            let x = Var::from_vec(uniform(&dims, &mut rng), &dims[..], &Device::Cpu).unwrap();
            let w: Vec<Var> = conv.weights(&shapes).iter().map(|w| Var::from_vec(uniform(&w.shape, &mut rng), &w.shape[..], &Device::Cpu).unwrap()).collect();
            let mut out_dims = vec![3];
            out_dims.extend(conv.output_shape(&shapes).unwrap());
            let r = Tensor::from_vec(uniform(&out_dims, &mut rng), &out_dims[..], &Device::Cpu).unwrap();
            let run = |fast: bool| {
                let mut rng = rand::rngs::StdRng::seed_from_u64(0);
                let mut ctx = Ctx { train: true, rng: &mut rng, logits: false, grads: None, part: None };
                let y = conv.forward_with(&[x.as_tensor().clone()], &w, &mut ctx, fast).unwrap();
                let g = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
                let mut grads = vec![g.get(x.as_tensor()).unwrap().clone()];
                grads.extend(w.iter().map(|v| g.get(v.as_tensor()).unwrap().clone()));
                (y, grads)
            };
            let ((y_new, g_new), (y_old, g_old)) = (run(true), run(false));
            assert_eq!(y_new.dims(), &out_dims[..], "{ty} {yaml}");
            assert!(rel_diff(&y_new, &y_old) < 1e-5, "{ty} {yaml}: forward differs by {}", rel_diff(&y_new, &y_old));
            for (i, (a, b)) in g_new.iter().zip(&g_old).enumerate() {
                assert_eq!(a.dims(), b.dims(), "{ty} {yaml}: gradient {i}");
                assert!(rel_diff(a, b) < 1e-4, "{ty} {yaml}: gradient {i} differs by {}", rel_diff(a, b));
            }
        }
    }

    #[test]
    fn conv_kernel_skips_the_data_input_gradient() {
        let conv = conv_layer("Conv2D", "{filters: 4, kernel_size: 3}");
        let x = Tensor::randn(0f32, 1.0, (2, 6, 6, 3), &Device::Cpu).unwrap();
        let w = vec![Var::randn(0f32, 0.5, (3, 3, 3, 4), &Device::Cpu).unwrap(), Var::randn(0f32, 0.5, 4, &Device::Cpu).unwrap()];
        let mut kernel_grads = Vec::new();
        for fast in [true, false] {
            let mut rng = rand::rngs::StdRng::seed_from_u64(0);
            let y =
                conv.forward_with(std::slice::from_ref(&x), &w, &mut Ctx { train: true, rng: &mut rng, logits: false, grads: None, part: None }, fast).unwrap();
            let g = y.sqr().unwrap().sum_all().unwrap().backward().unwrap();
            assert!(g.get(&x).is_none());
            kernel_grads.push(g.get(w[0].as_tensor()).unwrap().clone());
        }
        assert!(rel_diff(&kernel_grads[0], &kernel_grads[1]) < 1e-4);
    }

    #[test]
    fn conv2d_values() {
        // x[i][j] = 4i + j, kernel [[1, 2], [3, 4]]: y[i][j] = 40i + 10j + 34.
        let x = iota(16);
        let k: (&[f64], &[usize]) = (&[1.0, 2.0, 3.0, 4.0], &[2, 2, 1, 1]);
        let b: (&[f64], &[usize]) = (&[0.5], &[1]);
        let conv = |yaml: &str| apply("Conv2D", yaml, &x, &[1, 4, 4, 1], &[k, b]);
        let valid = conv("{filters: 1, kernel_size: 2}");
        assert_eq!(valid, (vec![1, 3, 3, 1], vec![34.5, 44.5, 54.5, 74.5, 84.5, 94.5, 114.5, 124.5, 134.5]));
        assert_eq!(conv("{filters: 1, kernel_size: 2, strides: 2}").1, vec![34.5, 54.5, 114.5, 134.5]);
        assert_eq!(conv("{filters: 1, kernel_size: 2, strides: [2, 1]}"), (vec![1, 2, 3, 1], vec![34.5, 44.5, 54.5, 114.5, 124.5, 134.5]));
        // 'same' with an even kernel pads only after (Keras): the last column sees zeros.
        let same = conv("{filters: 1, kernel_size: 2, padding: same}").1;
        assert_eq!((same[0], same[3], same[15]), (34.5, 3.0 + 21.0 + 0.5, 15.5));
        // Dilation [2, 1]: y = x[i][j] + 2x[i][j+1] + 3x[i+2][j] + 4x[i+2][j+1] = 40i + 10j + 62.
        let dil = apply("Conv2D", "{filters: 1, kernel_size: 2, dilation_rate: [2, 1], use_bias: false}", &x, &[1, 4, 4, 1], &[k]);
        assert_eq!(dil, (vec![1, 2, 3, 1], vec![62.0, 72.0, 82.0, 102.0, 112.0, 122.0]));
        // Groups: a 1x1 kernel of (1, 1, 1, 2) scales each channel by its own weight.
        let g = apply(
            "Conv2D",
            "{filters: 2, kernel_size: 1, groups: 2, use_bias: false}",
            &[1.0, 2.0, 3.0, 4.0],
            &[1, 1, 2, 2],
            &[(&[10.0, 100.0], &[1, 1, 1, 2])],
        );
        assert_eq!(g.1, vec![10.0, 200.0, 30.0, 400.0]);
        // Activation is applied last.
        let relu = apply("Conv2D", "{filters: 1, kernel_size: 2, activation: relu}", &x, &[1, 4, 4, 1], &[k, (&[-60.0], &[1])]).1;
        assert_eq!(&relu[..4], &[0.0, 0.0, 0.0, 14.0]);
    }

    #[test]
    fn conv1d_values() {
        let k: (&[f64], &[usize]) = (&[1.0, 10.0], &[2, 1, 1]);
        let conv = |yaml: &str, x: &[f64]| apply("Conv1D", yaml, x, &[1, x.len(), 1], &[k]).1;
        // Causal: y[t] = x[t-1] + 10 x[t], zero before the start.
        assert_eq!(conv("{filters: 1, kernel_size: 2, padding: causal, use_bias: false}", &[1.0, 2.0, 3.0, 4.0]), vec![10.0, 21.0, 32.0, 43.0]);
        // Dilation 2: y[t] = x[t] + 10 x[t+2].
        assert_eq!(conv("{filters: 1, kernel_size: 2, dilation_rate: 2, use_bias: false}", &[1.0, 2.0, 3.0, 4.0, 5.0]), vec![31.0, 42.0, 53.0]);
        // Stride 2 floors: the trailing step is never read.
        assert_eq!(conv("{filters: 1, kernel_size: 2, strides: 2, use_bias: false}", &[1.0, 2.0, 3.0, 4.0, 5.0]), vec![21.0, 43.0]);
    }

    #[test]
    fn padding_and_upsampling_values() {
        let x = [1.0, 2.0, 3.0, 4.0];
        let (dims, y) = apply("ZeroPadding2D", "{padding: [[1, 0], [0, 1]]}", &x, &[1, 2, 2, 1], &[]);
        assert_eq!((dims, y), (vec![1, 3, 3, 1], vec![0.0, 0.0, 0.0, 1.0, 2.0, 0.0, 3.0, 4.0, 0.0]));
        let (dims, y) = apply("UpSampling2D", "{size: [2, 1]}", &x, &[1, 2, 2, 1], &[]);
        assert_eq!((dims, y), (vec![1, 4, 2, 1], vec![1.0, 2.0, 1.0, 2.0, 3.0, 4.0, 3.0, 4.0]));
        let (_, y) = apply("UpSampling2D", "{size: [1, 3]}", &[1.0, 2.0, 5.0, 6.0], &[1, 1, 2, 2], &[]);
        assert_eq!(y, vec![1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 5.0, 6.0, 5.0, 6.0, 5.0, 6.0]);
        // Bilinear, half-pixel centers, clamped edges (tf.image.resize): [0, 1] -> [0, .25, .75, 1].
        let (dims, y) = apply("UpSampling2D", "{size: 2, interpolation: bilinear}", &[0.0, 1.0], &[1, 1, 2, 1], &[]);
        assert_eq!((dims, y), (vec![1, 2, 4, 1], vec![0.0, 0.25, 0.75, 1.0, 0.0, 0.25, 0.75, 1.0]));
        let (_, y) = apply("UpSampling2D", "{size: [1, 3], interpolation: bilinear}", &[0.0, 3.0], &[1, 1, 2, 1], &[]);
        let want = [0.0, 0.0, 1.0, 2.0, 3.0, 3.0];
        assert!(y.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-12), "{y:?}");
    }

    /// A scalar whose gradient w.r.t. `y` is a contiguous random tensor: a
    /// dot product by matmul (sum_all's broadcast gradient makes candle's
    /// elementwise ops take a slow strided path that the training loss never
    /// hits, which would swamp the timings).
    /// `r` is (y.elem_count(), 1), made outside the timed code.
    pub(crate) fn dot_loss(y: &Tensor, r: &Tensor) -> Tensor {
        y.reshape((1, y.elem_count())).unwrap().matmul(r).unwrap().squeeze(0).unwrap().squeeze(0).unwrap()
    }

    /// Median of the timings.
    pub(crate) fn median(mut v: Vec<f64>) -> f64 {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }

    /// Old (plain candle ops) vs new (NHWC kernel), interleaved so both see
    /// the same machine load; medians of 9 runs.
    /// `cargo test --release --lib conv2d_timing -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn conv2d_timing() {
        // The first conv sees the data batch (no input gradient), the second a hidden layer.
        for (yaml, dims, data) in [
            ("{filters: 32, kernel_size: 3, activation: relu}", [64, 28, 28, 1], true),
            ("{filters: 64, kernel_size: 3, activation: relu}", [64, 13, 13, 32], false),
        ] {
            let conv = conv_layer("Conv2D", yaml);
            let x = Var::randn(0f32, 1.0, &dims[..], &Device::Cpu).unwrap();
            let x = if data { x.as_tensor().detach() } else { x.as_tensor().clone() };
            let w = vec![
                Var::randn(0f32, 0.1, (3, 3, dims[3], conv.filters), &Device::Cpu).unwrap(),
                Var::zeros(conv.filters, candle_core::DType::F32, &Device::Cpu).unwrap(),
            ];
            let mut rng = rand::rngs::StdRng::seed_from_u64(0);
            let out: usize = conv.output_shape(&[dims[1..].to_vec()]).unwrap().iter().product();
            let r = Tensor::randn(0f32, 1.0, (dims[0] * out, 1), &Device::Cpu).unwrap();
            let mut times = [[Vec::new(), Vec::new()], [Vec::new(), Vec::new()]]; // [old, new][fwd, fwd+bwd]
            for i in 0..10 {
                for (j, fast) in [false, true].into_iter().enumerate() {
                    let t = std::time::Instant::now();
                    let y = conv
                        .forward_with(std::slice::from_ref(&x), &w, &mut Ctx { train: true, rng: &mut rng, logits: false, grads: None, part: None }, fast)
                        .unwrap();
                    let fwd = t.elapsed().as_secs_f64();
                    dot_loss(&y, &r).backward().unwrap();
                    if i > 0 {
                        times[j][0].push(fwd);
                        times[j][1].push(t.elapsed().as_secs_f64());
                    }
                }
            }
            let [[of, ob], [nf, nb]] = times.map(|t| t.map(median));
            println!(
                "Conv2D{yaml} on {dims:?}{}: forward old {:.2} ms new {:.2} ms ({:.1}x); forward+backward old {:.2} ms new {:.2} ms ({:.1}x)",
                if data { " (data input)" } else { "" },
                of * 1e3,
                nf * 1e3,
                of / nf,
                ob * 1e3,
                nb * 1e3,
                ob / nb
            );
        }
    }

    /// One forward+backward step of specs/mnist_cnn.yaml's model (batch 64,
    /// crossentropy; no optimizer), old vs new conv and pooling, interleaved;
    /// medians of 9. `cargo test --release --lib mnist_cnn_step_timing -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn mnist_cnn_step_timing() {
        let dev = Device::Cpu;
        let conv1 = conv_layer("Conv2D", "{filters: 32, kernel_size: 3, activation: relu}");
        let conv2 = conv_layer("Conv2D", "{filters: 64, kernel_size: 3, activation: relu}");
        let pool = |x: &Tensor, fast: bool| {
            if fast {
                crate::kernels::pool::pool2d(x, [2, 2], [2, 2], crate::kernels::window::Padding::Valid, true).unwrap()
            } else {
                // The plain-op pooling of layers::pooling, as a layer would run it.
                let p = build("MaxPooling2D", "{}").unwrap();
                let mut rng = rand::rngs::StdRng::seed_from_u64(0);
                p.forward(std::slice::from_ref(x), &[], &mut Ctx { train: true, rng: &mut rng, logits: false, grads: None, part: None }).unwrap()
            }
        };
        let w1 = vec![Var::randn(0f32, 0.3, (3, 3, 1, 32), &dev).unwrap(), Var::zeros(32, candle_core::DType::F32, &dev).unwrap()];
        let w2 = vec![Var::randn(0f32, 0.06, (3, 3, 32, 64), &dev).unwrap(), Var::zeros(64, candle_core::DType::F32, &dev).unwrap()];
        let wd = Var::randn(0f32, 0.03, (1600, 10), &dev).unwrap();
        let bd = Var::zeros(10, candle_core::DType::F32, &dev).unwrap();
        let x = Tensor::rand(0f32, 1.0, (64, 28, 28, 1), &dev).unwrap();
        let labels = Tensor::from_vec((0..64u32).map(|i| i % 10).collect::<Vec<_>>(), 64, &dev).unwrap();
        let mut times = [[Vec::new(), Vec::new()], [Vec::new(), Vec::new()]];
        for i in 0..10 {
            for (j, fast) in [false, true].into_iter().enumerate() {
                let mut rng = rand::rngs::StdRng::seed_from_u64(0);
                let t = std::time::Instant::now();
                let mut ctx = Ctx { train: true, rng: &mut rng, logits: false, grads: None, part: None };
                let h = conv1.forward_with(std::slice::from_ref(&x), &w1, &mut ctx, fast).unwrap();
                let h = pool(&h, fast);
                let h = conv2.forward_with(&[h], &w2, &mut ctx, fast).unwrap();
                let h = pool(&h, fast).flatten_from(1).unwrap();
                let logits = h.matmul(wd.as_tensor()).unwrap().broadcast_add(bd.as_tensor()).unwrap();
                let loss = candle_nn::loss::cross_entropy(&logits, &labels).unwrap();
                let fwd = t.elapsed().as_secs_f64() * 1e3;
                loss.backward().unwrap();
                if i > 0 {
                    times[j][0].push(fwd);
                    times[j][1].push(t.elapsed().as_secs_f64() * 1e3);
                }
            }
        }
        let [[of, ob], [nf, nb]] = times.map(|t| t.map(median));
        println!(
            "mnist_cnn step (batch 64): forward old {of:.1} ms new {nf:.1} ms ({:.1}x); forward+backward old {ob:.1} ms new {nb:.1} ms ({:.1}x)",
            of / nf,
            ob / nb
        );
    }

    #[test]
    fn conv2d_shapes_and_params() {
        assert_eq!(infer("Conv2D", "{filters: 32, kernel_size: 3}", &[&[28, 28, 1]]).unwrap(), (vec![26, 26, 32], 320, 320));
        assert_eq!(infer("Conv2D", "{filters: 64, kernel_size: 3}", &[&[13, 13, 32]]).unwrap(), (vec![11, 11, 64], 18_496, 18_496));
        assert_eq!(infer("Conv2D", "{filters: 8, kernel_size: [3, 1], use_bias: false}", &[&[10, 10, 4]]).unwrap(), (vec![8, 10, 8], 96, 96));
        // Kernel shape is (kh, kw, in/groups, filters).
        let l = build("Conv2D", "{filters: 8, kernel_size: [3, 2], groups: 2}").unwrap();
        let w = l.weights(&[vec![10, 10, 4]]);
        assert_eq!((w[0].name.as_str(), w[0].shape.clone()), ("kernel", vec![3, 2, 2, 8]));
        assert_eq!((w[1].name.as_str(), w[1].shape.clone()), ("bias", vec![8]));
        assert_eq!(l.activation(), Some(crate::layers::Activation::Linear));
        let l = build("Conv2D", "{filters: 8, kernel_size: 3, activation: relu}").unwrap();
        assert_eq!(l.activation(), Some(crate::layers::Activation::Relu));
    }

    #[test]
    fn conv_padding_strides_dilation() {
        let shape = |ty: &str, yaml: &str, input: &[usize]| infer(ty, yaml, &[input]).unwrap().0;
        assert_eq!(shape("Conv2D", "{filters: 16, kernel_size: 3, padding: same}", &[28, 28, 1]), vec![28, 28, 16]);
        assert_eq!(shape("Conv2D", "{filters: 16, kernel_size: 3, strides: 2}", &[28, 28, 1]), vec![13, 13, 16]);
        assert_eq!(shape("Conv2D", "{filters: 16, kernel_size: 3, strides: 2, padding: same}", &[28, 27, 1]), vec![14, 14, 16]);
        assert_eq!(shape("Conv2D", "{filters: 16, kernel_size: 3, strides: [1, 2]}", &[9, 9, 1]), vec![7, 4, 16]);
        // Dilation 2 makes a 3-wide kernel span 5.
        assert_eq!(shape("Conv2D", "{filters: 4, kernel_size: 3, dilation_rate: 2}", &[10, 10, 3]), vec![6, 6, 4]);
        assert_eq!(shape("Conv2D", "{filters: 4, kernel_size: 3, dilation_rate: 2, padding: same}", &[10, 10, 3]), vec![10, 10, 4]);
    }

    #[test]
    fn conv1d_shapes_causal_and_params() {
        assert_eq!(infer("Conv1D", "{filters: 16, kernel_size: 5}", &[&[100, 3]]).unwrap(), (vec![96, 16], 256, 256));
        assert_eq!(infer("Conv1D", "{filters: 16, kernel_size: 5, padding: causal}", &[&[100, 3]]).unwrap().0, vec![100, 16]);
        assert_eq!(infer("Conv1D", "{filters: 16, kernel_size: 5, padding: causal, strides: 3}", &[&[100, 3]]).unwrap().0, vec![34, 16]);
        assert_eq!(infer("Conv1D", "{filters: 16, kernel_size: 3, padding: causal, dilation_rate: 4}", &[&[10, 3]]).unwrap().0, vec![10, 16]);
        assert_eq!(infer("Conv1D", "{filters: 8, kernel_size: [3], strides: 2}", &[&[10, 4]]).unwrap(), (vec![4, 8], 104, 104));
        assert_eq!(infer("Conv1D", "{filters: 8, kernel_size: 3, groups: 4}", &[&[10, 4]]).unwrap(), (vec![8, 8], 32, 32));
    }

    #[test]
    fn conv_rank_and_size_errors() {
        let e = infer("Conv2D", "{filters: 32, kernel_size: 3}", &[&[784]]).unwrap_err();
        assert_eq!(e.message, "expects a 4-D input (batch, height, width, channels), received (batch, 784)");
        assert_eq!(e.hint.as_deref(), Some("insert {type: Reshape, target_shape: [28, 28, 1]} before '{name}' to make it an image"));
        let e = infer("Conv1D", "{filters: 8, kernel_size: 3}", &[&[10]]).unwrap_err();
        assert_eq!(e.message, "expects a 3-D input (batch, steps, channels), received (batch, 10)");

        let e = infer("Conv2D", "{filters: 8, kernel_size: 5}", &[&[3, 3, 8]]).unwrap_err();
        assert_eq!(e.message, "kernel_size (5, 5) leaves an output size of (-1, -1) with padding 'valid': it is larger than the input (batch, 3, 3, 8)");
        assert_eq!(e.hint.as_deref(), Some("use padding: same, a smaller kernel_size, or remove a pooling layer before '{name}'"));
        assert_eq!(e.arg, Some("kernel_size"));
        // A kernel exactly the input's size leaves 1; dilation can make it too wide.
        assert_eq!(infer("Conv2D", "{filters: 8, kernel_size: 3}", &[&[3, 3, 8]]).unwrap().0, vec![1, 1, 8]);
        let e = infer("Conv1D", "{filters: 8, kernel_size: 3, dilation_rate: 3}", &[&[6, 2]]).unwrap_err();
        assert_eq!(
            e.message,
            "kernel_size (3,) with dilation_rate (3,) (spanning (7,)) leaves an output size of (0,) with padding 'valid': it is larger than the input (batch, 6, 2)"
        );
        assert!(infer("Conv2D", "{filters: 8, kernel_size: 5, padding: same}", &[&[3, 3, 8]]).is_ok());

        let e = infer("Conv2D", "{filters: 8, kernel_size: 3, groups: 2}", &[&[8, 8, 3]]).unwrap_err();
        assert_eq!(e.message, "the input channels (3) must be divisible by groups (2); received (batch, 8, 8, 3)");
        assert_eq!(e.arg, Some("groups"));
    }

    #[test]
    fn conv_argument_errors() {
        assert_eq!(arg_error("Conv2D", "{kernel_size: 3}"), "layer 'x' (Conv2D): missing required argument `filters` (a positive integer)");
        assert_eq!(arg_error("Conv2D", "{filters: 8}"), "layer 'x' (Conv2D): missing required argument `kernel_size` (a positive integer or a list of 2)");
        assert_eq!(arg_error("Conv2D", "{filters: 0, kernel_size: 3}"), "layer 'x' (Conv2D): `filters` must be a positive integer, received 0");
        assert_eq!(
            arg_error("Conv2D", "{filters: 8, kernel_size: 0}"),
            "layer 'x' (Conv2D): `kernel_size` must be a positive integer or a list of 2, received 0"
        );
        assert_eq!(
            arg_error("Conv2D", "{filters: 8, kernel_size: [3, 3, 3]}"),
            "layer 'x' (Conv2D): `kernel_size` must be a positive integer or a list of 2, received [3, 3, 3]"
        );
        assert_eq!(
            arg_error("Conv2D", "{filters: 8, kernel_size: 3, strides: 0}"),
            "layer 'x' (Conv2D): `strides` must be a positive integer or a list of 2, received 0"
        );
        assert_eq!(
            arg_error("Conv2D", "{filters: 8, kernel_size: 3, padding: full}"),
            "layer 'x' (Conv2D): `padding` must be one of valid, same, received \"full\""
        );
        // Causal padding is Conv1D's only.
        assert_eq!(
            arg_error("Conv2D", "{filters: 8, kernel_size: 3, padding: causal}"),
            "layer 'x' (Conv2D): `padding` must be one of valid, same, received \"causal\""
        );
        assert_eq!(
            arg_error("Conv1D", "{filters: 8, kernel_size: 3, padding: full}"),
            "layer 'x' (Conv1D): `padding` must be one of valid, same, causal, received \"full\""
        );
        let d = build("Conv1D", "{filters: 8, kernel_size: 3, padding: casual}").unwrap_err();
        assert_eq!(d[0].hint.as_deref(), Some("did you mean 'causal'?"));
        assert!(arg_error("Conv2D", "{filters: 8, kernel_size: 3, data_format: channels_first}").contains("channels_last"));
        assert_eq!(
            arg_error("Conv2D", "{filters: 8, kernel_size: 3, activation: rleu}"),
            "layer 'x' (Conv2D): `activation` names an unknown activation \"rleu\""
        );
    }

    #[test]
    fn conv_cross_argument_errors() {
        let d = build("Conv2D", "{filters: 8, kernel_size: 3, strides: 2, dilation_rate: 2}").unwrap_err();
        assert_eq!(
            d[0].message,
            "layer 'x' (Conv2D): `dilation_rate` (2, 2) cannot be combined with strides (2, 2): Keras supports dilation_rate > 1 only with strides 1"
        );
        assert_eq!(d[0].hint.as_deref(), Some("set strides: 1 or dilation_rate: 1"));
        assert_eq!(d[0].path, "layer.dilation_rate");
        assert!(build("Conv1D", "{filters: 8, kernel_size: 3, strides: 2, dilation_rate: 1}").is_ok());
        assert_eq!(arg_error("Conv1D", "{filters: 6, kernel_size: 3, groups: 4}"), "layer 'x' (Conv1D): `groups` 4 must divide filters (6) evenly");
        assert!(arg_error("Conv1D", "{filters: 6, kernel_size: 3, groups: 0}").contains("`groups` must be a positive integer"));
    }

    #[test]
    fn zero_padding2d() {
        let shape = |yaml: &str| infer("ZeroPadding2D", yaml, &[&[28, 28, 3]]).unwrap();
        assert_eq!(shape("{}"), (vec![30, 30, 3], 0, 0));
        assert_eq!(shape("{padding: 2}").0, vec![32, 32, 3]);
        assert_eq!(shape("{padding: [1, 3]}").0, vec![30, 34, 3]);
        assert_eq!(shape("{padding: [[0, 2], [1, 0]]}").0, vec![30, 29, 3]);
        assert_eq!(shape("{padding: [[0, 2], 1]}").0, vec![30, 30, 3]);
        assert_eq!(shape("{padding: 0}").0, vec![28, 28, 3]);
        let msg = "layer 'x' (ZeroPadding2D): `padding` must be an integer >= 0, [height, width] or [[top, bottom], [left, right]], received";
        for bad in ["{padding: -1}", "{padding: [1, 2, 3]}", "{padding: [[1, 2, 3], 1]}", "{padding: same}"] {
            assert!(arg_error("ZeroPadding2D", bad).starts_with(msg), "{bad}");
        }
        let e = infer("ZeroPadding2D", "{}", &[&[28, 28]]).unwrap_err();
        assert_eq!(e.message, "expects a 4-D input (batch, height, width, channels), received (batch, 28, 28)");
    }

    #[test]
    fn huge_sizes_are_refused_or_computed_exactly() {
        let big = "9223372036854775807";
        for (ty, yaml) in [
            ("ZeroPadding2D", format!("{{padding: {big}}}")),
            ("ZeroPadding2D", format!("{{padding: [[0, {big}], 1]}}")),
            ("UpSampling2D", format!("{{size: {big}}}")),
            ("Conv1D", format!("{{filters: 1, kernel_size: 3, dilation_rate: {big}}}")),
            ("Conv2D", format!("{{filters: {big}, kernel_size: 3}}")),
            ("Conv2D", format!("{{filters: 1, kernel_size: [1, {big}]}}")),
        ] {
            let e = arg_error(ty, &yaml);
            assert!(e.contains("must be at most 274,877,906,944 (2^38), received"), "{ty} {yaml}: {e}");
        }
        // Up to the argument limit, no shape wraps (it gave (6, 6, 1) and 18 before).
        let max = crate::layers::MAX_ELEMENTS;
        assert_eq!(infer("ZeroPadding2D", &format!("{{padding: {max}}}"), &[&[8, 8, 1]]).unwrap().0, vec![2 * max + 8, 2 * max + 8, 1]);
        assert_eq!(infer("UpSampling2D", &format!("{{size: {max}}}"), &[&[max, 3, 1]]).unwrap_err().arg, Some("size"));
        let e = infer("Conv1D", &format!("{{filters: 1, kernel_size: 3, dilation_rate: {max}}}"), &[&[16, 1]]).unwrap_err();
        assert_eq!(
            e.message,
            "kernel_size (3,) with dilation_rate (274877906944,) (spanning (549755813889,)) leaves an output size of (-549755813872,) with padding 'valid': it is larger than the input (batch, 16, 1)"
        );
        // 'same' pads span - 1 cells: past the tensor limit, that is an error too.
        let e = infer("Conv1D", &format!("{{filters: 1, kernel_size: 3, dilation_rate: {max}, padding: same}}"), &[&[16, 1]]).unwrap_err();
        assert!(
            e.message.starts_with("padding \"same\" for the window of kernel_size (3,) with dilation_rate (274877906944,) would be larger than"),
            "{}",
            e.message
        );
        assert_eq!(infer("Conv1D", "{filters: 1, kernel_size: 3, dilation_rate: 1000, padding: causal}", &[&[16, 1]]).unwrap().0, vec![16, 1]);
        // sliding_window itself takes any usize without wrapping.
        let e = super::sliding_window(&vec![16, 1], "kernel_size", &[3], &[usize::MAX], &[1], crate::kernels::window::Padding::Valid).unwrap_err();
        assert!(e.message.contains("(spanning (36893488147419103231,))"), "{}", e.message);
    }

    #[test]
    fn up_sampling2d() {
        assert_eq!(infer("UpSampling2D", "{}", &[&[7, 7, 8]]).unwrap(), (vec![14, 14, 8], 0, 0));
        assert_eq!(infer("UpSampling2D", "{size: [3, 1], interpolation: bilinear}", &[&[7, 7, 8]]).unwrap().0, vec![21, 7, 8]);
        assert_eq!(arg_error("UpSampling2D", "{size: 0}"), "layer 'x' (UpSampling2D): `size` must be a positive integer or a list of 2, received 0");
        assert!(arg_error("UpSampling2D", "{interpolation: cubic}").contains("must be one of nearest, bilinear"));
        assert!(infer("UpSampling2D", "{}", &[&[7, 8]]).unwrap_err().message.starts_with("expects a 4-D input"));
    }
}
