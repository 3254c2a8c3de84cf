//! Pooling layers: Max/AveragePooling1D/2D and their Global variants.

use super::conv::{expect_spatial, sliding_window};
use super::core::channels_last;
use super::{Layer, LayerType, Shape, ShapeError};
use crate::spec::args::Args;

// ---- MaxPooling / AveragePooling ------------------------------------------------------

pub static MAX_POOLING1D: LayerType = LayerType {
    name: "MaxPooling1D",
    family: "pooling",
    summary: "Maximum over windows of `pool_size` steps of a (steps, channels) input.",
    build: |a| Box::new(Pooling::read(a, 1, true)),
};

pub static MAX_POOLING2D: LayerType = LayerType {
    name: "MaxPooling2D",
    family: "pooling",
    summary: "Maximum over `pool_size` windows of a (height, width, channels) input.",
    build: |a| Box::new(Pooling::read(a, 2, true)),
};

pub static AVERAGE_POOLING1D: LayerType = LayerType {
    name: "AveragePooling1D",
    family: "pooling",
    summary: "Average over windows of `pool_size` steps of a (steps, channels) input.",
    build: |a| Box::new(Pooling::read(a, 1, false)),
};

pub static AVERAGE_POOLING2D: LayerType = LayerType {
    name: "AveragePooling2D",
    family: "pooling",
    summary: "Average over `pool_size` windows of a (height, width, channels) input.",
    build: |a| Box::new(Pooling::read(a, 2, false)),
};

#[derive(Clone, Debug, PartialEq)]
pub struct Pooling {
    /// Spatial axes: 1 or 2.
    pub dims: usize,
    /// Max rather than average; shapes are the same either way.
    pub max: bool,
    pub pool_size: Vec<usize>,
    /// Keras's `strides=None` means `pool_size`, resolved here.
    pub strides: Vec<usize>,
    pub padding: &'static str,
}

impl Pooling {
    fn read(a: &mut Args, dims: usize, max: bool) -> Self {
        let pool_size = a.ints("pool_size", dims, Some(2), 1);
        let strides = a.opt_ints("strides", dims, 1).unwrap_or_else(|| pool_size.clone());
        let padding = a.choice("padding", Some("valid"), &["valid", "same"]);
        channels_last(a);
        Pooling { dims, max, pool_size, strides, padding }
    }
}

impl Layer for Pooling {
    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape, ShapeError> {
        let input = &inputs[0];
        expect_spatial(input, self.dims)?;
        let ones = vec![1; self.dims];
        let mut out = sliding_window(input, "pool_size", &self.pool_size, &ones, &self.strides, self.padding)?;
        out.push(input[self.dims]);
        Ok(out)
    }
}

// ---- Global pooling -------------------------------------------------------------------

pub static GLOBAL_AVERAGE_POOLING1D: LayerType = LayerType {
    name: "GlobalAveragePooling1D",
    family: "pooling",
    summary: "Average over all steps: (steps, channels) -> (channels).",
    build: |a| Box::new(GlobalPooling::read(a, 1, false)),
};

pub static GLOBAL_AVERAGE_POOLING2D: LayerType = LayerType {
    name: "GlobalAveragePooling2D",
    family: "pooling",
    summary: "Average over height and width: (height, width, channels) -> (channels).",
    build: |a| Box::new(GlobalPooling::read(a, 2, false)),
};

pub static GLOBAL_MAX_POOLING1D: LayerType = LayerType {
    name: "GlobalMaxPooling1D",
    family: "pooling",
    summary: "Maximum over all steps: (steps, channels) -> (channels).",
    build: |a| Box::new(GlobalPooling::read(a, 1, true)),
};

pub static GLOBAL_MAX_POOLING2D: LayerType = LayerType {
    name: "GlobalMaxPooling2D",
    family: "pooling",
    summary: "Maximum over height and width: (height, width, channels) -> (channels).",
    build: |a| Box::new(GlobalPooling::read(a, 2, true)),
};

#[derive(Clone, Debug, PartialEq)]
pub struct GlobalPooling {
    pub dims: usize,
    pub max: bool,
    /// Keep the pooled axes with size 1.
    pub keepdims: bool,
}

impl GlobalPooling {
    fn read(a: &mut Args, dims: usize, max: bool) -> Self {
        channels_last(a);
        GlobalPooling { dims, max, keepdims: a.bool("keepdims", false) }
    }
}

impl Layer for GlobalPooling {
    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape, ShapeError> {
        let input = &inputs[0];
        expect_spatial(input, self.dims)?;
        let mut out = if self.keepdims { vec![1; self.dims] } else { Vec::new() };
        out.push(input[self.dims]);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use crate::layers::testutil::{arg_error, build, infer};

    #[test]
    fn pooling2d_shapes() {
        assert_eq!(infer("MaxPooling2D", "{pool_size: 2}", &[&[26, 26, 32]]).unwrap(), (vec![13, 13, 32], 0, 0));
        assert_eq!(infer("MaxPooling2D", "{}", &[&[11, 11, 64]]).unwrap().0, vec![5, 5, 64]);
        assert_eq!(infer("AveragePooling2D", "{pool_size: 2, padding: same}", &[&[11, 11, 64]]).unwrap().0, vec![6, 6, 64]);
        assert_eq!(infer("MaxPooling2D", "{pool_size: 3, strides: 1}", &[&[10, 10, 3]]).unwrap().0, vec![8, 8, 3]);
        assert_eq!(infer("MaxPooling2D", "{pool_size: [3, 2], strides: [2, 1]}", &[&[10, 10, 3]]).unwrap().0, vec![4, 9, 3]);
        assert_eq!(infer("AveragePooling2D", "{pool_size: 3, strides: 2, padding: same}", &[&[7, 8, 3]]).unwrap().0, vec![4, 4, 3]);
        assert_eq!(infer("MaxPooling2D", "{pool_size: 1}", &[&[2, 2, 6]]).unwrap().0, vec![2, 2, 6]);
        // strides: null is Keras's None, i.e. pool_size.
        assert_eq!(infer("MaxPooling2D", "{pool_size: 3, strides: null}", &[&[9, 9, 1]]).unwrap().0, vec![3, 3, 1]);
    }

    #[test]
    fn pooling1d_shapes() {
        assert_eq!(infer("MaxPooling1D", "{}", &[&[100, 16]]).unwrap(), (vec![50, 16], 0, 0));
        assert_eq!(infer("AveragePooling1D", "{pool_size: 2}", &[&[47, 16]]).unwrap().0, vec![23, 16]);
        assert_eq!(infer("AveragePooling1D", "{pool_size: 2, padding: same}", &[&[47, 16]]).unwrap().0, vec![24, 16]);
        assert_eq!(infer("MaxPooling1D", "{pool_size: [4], strides: 1}", &[&[10, 2]]).unwrap().0, vec![7, 2]);
    }

    #[test]
    fn pooling_errors() {
        let e = infer("MaxPooling2D", "{pool_size: 2}", &[&[1, 1, 3]]).unwrap_err();
        assert_eq!(e.message, "pool_size (2, 2) leaves an output size of (0, 0) with padding 'valid': it is larger than the input (batch, 1, 1, 3)");
        assert_eq!(e.hint.as_deref(), Some("use padding: same, a smaller pool_size, or remove a pooling layer before '{name}'"));
        assert_eq!(e.arg, Some("pool_size"));
        assert_eq!(infer("MaxPooling2D", "{pool_size: 2, padding: same}", &[&[1, 1, 3]]).unwrap().0, vec![1, 1, 3]);
        let e = infer("AveragePooling1D", "{pool_size: 5}", &[&[3, 4]]).unwrap_err();
        assert!(e.message.ends_with("it is larger than the input (batch, 3, 4)"), "{}", e.message);

        let e = infer("MaxPooling2D", "{}", &[&[28, 28]]).unwrap_err();
        assert_eq!(e.message, "expects a 4-D input (batch, height, width, channels), received (batch, 28, 28)");
        assert_eq!(e.hint.as_deref(), Some("add a channel axis before '{name}': {type: Reshape, target_shape: [28, 28, 1]}"));
        let e = infer("MaxPooling1D", "{}", &[&[28, 28, 1]]).unwrap_err();
        assert_eq!(e.message, "expects a 3-D input (batch, steps, channels), received (batch, 28, 28, 1)");

        assert_eq!(arg_error("MaxPooling2D", "{pool_size: 0}"), "layer 'x' (MaxPooling2D): `pool_size` must be a positive integer or a list of 2, received 0");
        assert_eq!(arg_error("MaxPooling1D", "{strides: 0}"), "layer 'x' (MaxPooling1D): `strides` must be a positive integer or a list of 1, received 0");
        assert_eq!(arg_error("AveragePooling2D", "{padding: causal}"), "layer 'x' (AveragePooling2D): `padding` must be one of valid, same, received \"causal\"");
        let d = build("MaxPooling2D", "{padding: sme}").unwrap_err();
        assert_eq!(d[0].hint.as_deref(), Some("did you mean 'same'?"));
        assert!(arg_error("MaxPooling2D", "{data_format: channels_first}").contains("channels_last"));
    }

    #[test]
    fn global_pooling() {
        assert_eq!(infer("GlobalAveragePooling2D", "{}", &[&[5, 5, 64]]).unwrap(), (vec![64], 0, 0));
        assert_eq!(infer("GlobalMaxPooling2D", "{keepdims: true}", &[&[5, 5, 64]]).unwrap().0, vec![1, 1, 64]);
        assert_eq!(infer("GlobalMaxPooling1D", "{}", &[&[10, 6]]).unwrap().0, vec![6]);
        assert_eq!(infer("GlobalAveragePooling1D", "{keepdims: true}", &[&[10, 6]]).unwrap().0, vec![1, 6]);
        let e = infer("GlobalAveragePooling2D", "{}", &[&[64]]).unwrap_err();
        assert_eq!(e.message, "expects a 4-D input (batch, height, width, channels), received (batch, 64)");
        let e = infer("GlobalMaxPooling1D", "{}", &[&[5, 5, 3]]).unwrap_err();
        assert_eq!(e.hint.as_deref(), Some("insert {type: Reshape, target_shape: [5, 15]} before '{name}' to turn rows into time steps"));
        assert_eq!(arg_error("GlobalMaxPooling1D", "{keepdims: yes}"), "layer 'x' (GlobalMaxPooling1D): `keepdims` must be true or false, received \"yes\"");
    }
}
