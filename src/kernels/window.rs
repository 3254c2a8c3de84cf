//! Sliding-window geometry with Keras's padding rules, written once: shape
//! inference (`layers::conv::sliding_window`), the candle-op reference paths
//! (`layers::conv::fit_axis`, pooling's counts) and the conv and pooling
//! kernels all fit their axes here. A leaf: it imports no other kernel module.

use std::fmt;

/// Keras's `padding` of a convolution or pooling window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// No padding: only windows that fit inside the input.
    Valid,
    /// Pad so that only the stride shrinks the axis, the extra cell (if the
    /// padding is odd) after the input.
    Same,
    /// Pad `span - 1` cells in front (Conv1D): outputs see only the past.
    Causal,
}

impl Padding {
    /// Every padding, in the order the spec reference lists them.
    pub const ALL: [Padding; 3] = [Padding::Valid, Padding::Same, Padding::Causal];

    /// The spec's name for it.
    pub const fn name(self) -> &'static str {
        match self {
            Padding::Valid => "valid",
            Padding::Same => "same",
            Padding::Causal => "causal",
        }
    }

    /// The padding a spec names, if any.
    pub fn parse(s: &str) -> Option<Padding> {
        Padding::ALL.into_iter().find(|p| p.name() == s)
    }
}

impl fmt::Display for Padding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a window does not fit an axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Misfit {
    /// A window size, stride or dilation of 0.
    Zero,
    /// The dilated span (past i128), or the padded axis (past usize), is
    /// too large to compute with.
    Overflow,
    /// No window fits: with padding valid the span is longer than the axis
    /// (or the axis is empty). `out` is the output size the formula gives
    /// (`<= 0`), `span` the dilated window's.
    Empty { span: i128, out: i128 },
}

/// One spatial axis of a sliding window, fitted: the input length, the
/// window (taps `k`, `stride` between outputs, `dil` between taps), and what
/// padding makes of them: `out` outputs, `before` padding cells in front.
/// Made only by `fit` (or `new`), so every size below fits a usize.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Axis {
    /// Input length.
    pub len: usize,
    pub k: usize,
    pub stride: usize,
    pub dil: usize,
    /// Padding cells in front of the input.
    pub before: usize,
    pub out: usize,
    /// `dil * (k - 1) + 1`.
    span: usize,
}

impl Axis {
    /// Fits a window to an axis of `len` cells. The arithmetic is checked and
    /// takes any usize sizes (shape inference runs it on sizes from the spec):
    /// the span in i128, which holds the product of two usizes.
    pub fn fit(len: usize, k: usize, stride: usize, dil: usize, padding: Padding) -> Result<Axis, Misfit> {
        if k == 0 || stride == 0 || dil == 0 {
            return Err(Misfit::Zero);
        }
        let span = (dil as i128).checked_mul(k as i128 - 1).and_then(|s| s.checked_add(1)).ok_or(Misfit::Overflow)?;
        let (n, s) = (len as i128, stride as i128);
        // "same" and "causal" pad so that only the stride shrinks the axis.
        let kept = if padding == Padding::Valid { n - span } else { n - 1 };
        let out = kept.div_euclid(s) + 1;
        if out <= 0 {
            return Err(Misfit::Empty { span, out });
        }
        // The cells the windows cover, padding included: (out - 1) * stride < len.
        let need = ((out - 1) * s).checked_add(span).ok_or(Misfit::Overflow)?;
        let before = match padding {
            Padding::Valid => 0,
            Padding::Same => (need - n).max(0) / 2,
            Padding::Causal => span - 1,
        };
        // out <= len, before < span: all fit a usize once the span does.
        match (usize::try_from(span), usize::try_from(before)) {
            (Ok(span), Ok(before)) => Ok(Axis { len, k, stride, dil, before, out: out as usize, span }),
            _ => Err(Misfit::Overflow),
        }
    }

    /// `fit` for the kernels, with their error messages.
    pub fn new(len: usize, k: usize, stride: usize, dil: usize, padding: Padding) -> candle_core::Result<Axis> {
        Axis::fit(len, k, stride, dil, padding).map_err(|e| {
            let msg = match e {
                Misfit::Zero | Misfit::Empty { .. } if len == 0 || k == 0 || stride == 0 || dil == 0 => {
                    format!("sliding window: size {k}, stride {stride}, dilation {dil} over length {len}")
                }
                Misfit::Empty { span, .. } => format!("sliding window of span {span} is larger than the input length {len}"),
                _ => format!("sliding window: size {k}, dilation {dil} over length {len} is too large"),
            };
            candle_core::Error::Msg(msg)
        })
    }

    /// Cells from the first tap to the last: `dil * (k - 1) + 1`.
    pub fn span(&self) -> usize {
        self.span
    }

    /// The length of the padded (or cropped) axis the windows tile exactly:
    /// `(out - 1) * stride + span`, less than `len + span`.
    pub fn need(&self) -> usize {
        (self.out - 1) * self.stride + self.span
    }

    /// The input cell that output `o` reads with tap `t`; None in the padding.
    #[inline]
    pub fn src(&self, o: usize, t: usize) -> Option<usize> {
        let i = (o * self.stride + t * self.dil).checked_sub(self.before)?;
        (i < self.len).then_some(i)
    }

    /// Taps `0..k` of output `o` all read real cells, one after another:
    /// the first one's.
    #[inline]
    pub fn dense_run(&self, o: usize) -> Option<usize> {
        let first = (o * self.stride).checked_sub(self.before)?;
        (self.dil == 1 && first + self.k <= self.len).then_some(first)
    }

    /// How many taps of output `o` read real cells (not padding).
    pub fn real_taps(&self, o: usize) -> usize {
        (0..self.k).filter(|&t| self.src(o, t).is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_names_round_trip() {
        for p in Padding::ALL {
            assert_eq!(Padding::parse(p.name()), Some(p));
            assert_eq!(p.to_string(), p.name());
        }
        assert_eq!(Padding::parse("full"), None);
        assert_eq!(Padding::parse("Same"), None);
    }

    #[test]
    fn keras_output_sizes_and_padding() {
        let fit = |len, k, s, d, p| Axis::fit(len, k, s, d, p).map(|a| (a.out, a.before, a.need()));
        // valid floors; same pads the odd cell after; causal pads span - 1 in front.
        assert_eq!(fit(5, 2, 2, 1, Padding::Valid), Ok((2, 0, 4)));
        assert_eq!(fit(3, 2, 2, 1, Padding::Same), Ok((2, 0, 4)));
        assert_eq!(fit(5, 3, 2, 1, Padding::Same), Ok((3, 1, 7)));
        assert_eq!(fit(9, 3, 2, 1, Padding::Causal), Ok((5, 2, 11)));
        assert_eq!(fit(7, 3, 1, 2, Padding::Valid), Ok((3, 0, 7)));
        // A stride past the span: 'same' needs fewer cells than the input.
        assert_eq!(fit(5, 1, 3, 1, Padding::Same), Ok((2, 0, 4)));
        assert_eq!(fit(1, 2, 1, 1, Padding::Valid), Err(Misfit::Empty { span: 2, out: 0 }));
        assert_eq!(
            fit(16, 3, 1, usize::MAX, Padding::Valid).unwrap_err(),
            Misfit::Empty { span: 2 * usize::MAX as i128 + 1, out: 16 - 2 * usize::MAX as i128 }
        );
        assert_eq!(fit(16, usize::MAX, 1, usize::MAX, Padding::Valid), Err(Misfit::Overflow));
        assert_eq!(Axis::fit(16, 3, 1, usize::MAX, Padding::Same), Err(Misfit::Overflow));
        assert_eq!(fit(0, 1, 1, 1, Padding::Same), Err(Misfit::Empty { span: 1, out: 0 }));
        assert_eq!(fit(4, 0, 1, 1, Padding::Same), Err(Misfit::Zero));
        assert!(Axis::new(0, 1, 1, 1, Padding::Same).is_err());
        assert!(Axis::new(4, 2, 0, 1, Padding::Valid).is_err());
    }

    #[test]
    fn taps_read_the_real_cells() {
        // 'same', 3 taps stride 2 over 5 cells: one padding cell each side.
        let a = Axis::fit(5, 3, 2, 1, Padding::Same).unwrap();
        let taps: Vec<Vec<Option<usize>>> = (0..a.out).map(|o| (0..a.k).map(|t| a.src(o, t)).collect()).collect();
        assert_eq!(taps, [vec![None, Some(0), Some(1)], vec![Some(1), Some(2), Some(3)], vec![Some(3), Some(4), None]]);
        assert_eq!((0..a.out).map(|o| a.real_taps(o)).collect::<Vec<_>>(), [2, 3, 2]);
        assert_eq!((0..a.out).map(|o| a.dense_run(o)).collect::<Vec<_>>(), [None, Some(1), None]);
    }
}
