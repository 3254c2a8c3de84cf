//! Convolution layers: Conv1D, Conv2D, ZeroPadding2D, UpSampling2D. The
//! sliding-window arithmetic here is shared with the pooling layers.

use super::activation::{read_activation, read_initializer};
use super::core::channels_last;
use super::{expect_rank, fmt_shape, Activation, Layer, LayerType, Shape, ShapeError, Weight};
use crate::spec::args::Args;
use crate::spec::yaml::Node;

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
    padding: &str,
) -> Result<Vec<usize>, ShapeError> {
    // The message ends with the input shape: the graph appends "from '<layer>'".
    let out: Vec<i64> = (0..size.len())
        .map(|i| {
            let (n, s) = (input[i] as i64, strides[i] as i64);
            let span = (dilation[i] * (size[i] - 1) + 1) as i64;
            // "same" and "causal" pad so that only the stride shrinks the axis.
            let kept = if padding == "valid" { n - span } else { n - 1 };
            kept.div_euclid(s) + 1
        })
        .collect();
    if out.iter().all(|&o| o > 0) {
        return Ok(out.into_iter().map(|o| o as usize).collect());
    }
    let dilated = if dilation.iter().any(|&d| d > 1) {
        let span: Vec<usize> = (0..size.len()).map(|i| dilation[i] * (size[i] - 1) + 1).collect();
        format!(" with dilation_rate {} (spanning {})", fmt_tuple(dilation), fmt_tuple(&span))
    } else {
        String::new()
    };
    Err(ShapeError::new(format!(
        "{what} {}{dilated} leaves an output size of {} with padding 'valid': it is larger than the input {}",
        fmt_tuple(size),
        fmt_tuple(&out),
        fmt_shape(input)
    ))
    .hint(format!("use padding: same, a smaller {what}, or remove a pooling layer before '{{name}}'"))
    .at(what))
}

// ---- Conv1D / Conv2D ------------------------------------------------------------------

pub static CONV1D: LayerType = LayerType {
    name: "Conv1D",
    family: "conv",
    summary: "1D convolution over (steps, channels); padding \"causal\" looks only at past steps.",
    build: |a| Box::new(Conv::read(a, 1)),
};

pub static CONV2D: LayerType = LayerType {
    name: "Conv2D",
    family: "conv",
    summary: "2D convolution over (height, width, channels).",
    build: |a| Box::new(Conv::read(a, 2)),
};

#[derive(Clone, Debug, PartialEq)]
pub struct Conv {
    /// Spatial axes: 1 for Conv1D, 2 for Conv2D.
    pub dims: usize,
    pub filters: usize,
    pub kernel_size: Vec<usize>,
    pub strides: Vec<usize>,
    pub padding: &'static str,
    pub dilation_rate: Vec<usize>,
    pub groups: usize,
    pub activation: Activation,
    pub use_bias: bool,
    pub kernel_initializer: &'static str,
    pub bias_initializer: &'static str,
}

impl Conv {
    fn read(a: &mut Args, dims: usize) -> Self {
        let paddings: &[&'static str] = if dims == 1 { &["valid", "same", "causal"] } else { &["valid", "same"] };
        let filters = a.usize("filters", None, 1);
        let kernel_size = a.ints("kernel_size", dims, None, 1);
        let strides = a.ints("strides", dims, Some(1), 1);
        let padding = a.choice("padding", Some("valid"), paddings);
        channels_last(a);
        let dilation_rate = a.ints("dilation_rate", dims, Some(1), 1);
        let groups = a.usize("groups", Some(1), 1);
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
        if !filters.is_multiple_of(groups) && let Some(node) = a.node("groups") {
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
        let mut w = vec![Weight::new("kernel", kernel)];
        if self.use_bias {
            w.push(Weight::new("bias", vec![self.filters]));
        }
        w
    }

    fn activation(&self) -> Option<Activation> {
        Some(self.activation)
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
    let pair = |n: &Node| -> Option<[usize; 2]> {
        let int = |n: &Node| n.as_int().filter(|&i| i >= 0).map(|i| i as usize);
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
    parsed.unwrap_or_else(|| {
        a.error("padding", node, format!("must be {kind}, received {}", node.describe()), None);
        default
    })
}

impl Layer for ZeroPadding2D {
    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape, ShapeError> {
        let input = &inputs[0];
        expect_spatial(input, 2)?;
        let [[t, b], [l, r]] = self.padding;
        Ok(vec![input[0] + t + b, input[1] + l + r, input[2]])
    }
}

// ---- UpSampling2D ---------------------------------------------------------------------

pub static UP_SAMPLING2D: LayerType = LayerType {
    name: "UpSampling2D",
    family: "conv",
    summary: "Repeats the rows and columns of an image `size` times: (h*sh, w*sw, channels).",
    build: |a| {
        let size = a.ints("size", 2, Some(2), 1);
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
        Ok(vec![input[0] * self.size[0], input[1] * self.size[1], input[2]])
    }
}

#[cfg(test)]
mod tests {
    use crate::layers::testutil::{arg_error, build, infer};

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
        assert_eq!(e.message, "kernel_size (3,) with dilation_rate (3,) (spanning (7,)) leaves an output size of (0,) with padding 'valid': it is larger than the input (batch, 6, 2)");
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
        assert_eq!(arg_error("Conv2D", "{filters: 8, kernel_size: 0}"), "layer 'x' (Conv2D): `kernel_size` must be a positive integer or a list of 2, received 0");
        assert_eq!(arg_error("Conv2D", "{filters: 8, kernel_size: [3, 3, 3]}"), "layer 'x' (Conv2D): `kernel_size` must be a positive integer or a list of 2, received [3, 3, 3]");
        assert_eq!(arg_error("Conv2D", "{filters: 8, kernel_size: 3, strides: 0}"), "layer 'x' (Conv2D): `strides` must be a positive integer or a list of 2, received 0");
        assert_eq!(arg_error("Conv2D", "{filters: 8, kernel_size: 3, padding: full}"), "layer 'x' (Conv2D): `padding` must be one of valid, same, received \"full\"");
        // Causal padding is Conv1D's only.
        assert_eq!(arg_error("Conv2D", "{filters: 8, kernel_size: 3, padding: causal}"), "layer 'x' (Conv2D): `padding` must be one of valid, same, received \"causal\"");
        assert_eq!(arg_error("Conv1D", "{filters: 8, kernel_size: 3, padding: full}"), "layer 'x' (Conv1D): `padding` must be one of valid, same, causal, received \"full\"");
        let d = build("Conv1D", "{filters: 8, kernel_size: 3, padding: casual}").unwrap_err();
        assert_eq!(d[0].hint.as_deref(), Some("did you mean 'causal'?"));
        assert!(arg_error("Conv2D", "{filters: 8, kernel_size: 3, data_format: channels_first}").contains("channels_last"));
        assert_eq!(arg_error("Conv2D", "{filters: 8, kernel_size: 3, activation: rleu}"), "layer 'x' (Conv2D): `activation` names an unknown activation \"rleu\"");
    }

    #[test]
    fn conv_cross_argument_errors() {
        let d = build("Conv2D", "{filters: 8, kernel_size: 3, strides: 2, dilation_rate: 2}").unwrap_err();
        assert_eq!(d[0].message, "layer 'x' (Conv2D): `dilation_rate` (2, 2) cannot be combined with strides (2, 2): Keras supports dilation_rate > 1 only with strides 1");
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
    fn up_sampling2d() {
        assert_eq!(infer("UpSampling2D", "{}", &[&[7, 7, 8]]).unwrap(), (vec![14, 14, 8], 0, 0));
        assert_eq!(infer("UpSampling2D", "{size: [3, 1], interpolation: bilinear}", &[&[7, 7, 8]]).unwrap().0, vec![21, 7, 8]);
        assert_eq!(arg_error("UpSampling2D", "{size: 0}"), "layer 'x' (UpSampling2D): `size` must be a positive integer or a list of 2, received 0");
        assert!(arg_error("UpSampling2D", "{interpolation: cubic}").contains("must be one of nearest, bilinear"));
        assert!(infer("UpSampling2D", "{}", &[&[7, 8]]).unwrap_err().message.starts_with("expects a 4-D input"));
    }
}
