//! Recurrent layers: SimpleRNN, LSTM and GRU (one struct; `Kind` sets the
//! gate count), and the Bidirectional wrapper.

use super::activation::{read_activation, read_initializer};
use super::{Activation, Ctx, Init, Layer, LayerType, Shape, ShapeError, Weight, expect_rank};
use crate::diag::{Diagnostic, did_you_mean};
use crate::spec::args::Args;
use crate::spec::yaml::Node;
use candle_core::{D, Tensor, Var};
type CResult<T> = candle_core::Result<T>;

pub static SIMPLE_RNN: LayerType = LayerType {
    name: "SimpleRNN",
    family: "rnn",
    summary: "Fully connected RNN over a (timesteps, features) input; outputs the last step, or every step with return_sequences.",
    build: |a| Box::new(Recurrent::read(a, Kind::Simple)),
};

pub static LSTM: LayerType = LayerType {
    name: "LSTM",
    family: "rnn",
    summary: "Long short-term memory over a (timesteps, features) input; gates i, f, c, o share one kernel.",
    build: |a| Box::new(Recurrent::read(a, Kind::Lstm)),
};

pub static GRU: LayerType = LayerType {
    name: "GRU",
    family: "rnn",
    summary: "Gated recurrent unit over a (timesteps, features) input; reset_after: true is the Keras 3 / cuDNN variant.",
    build: |a| Box::new(Recurrent::read(a, Kind::Gru)),
};

pub static BIDIRECTIONAL: LayerType = LayerType {
    name: "Bidirectional",
    family: "rnn",
    summary: "Runs a SimpleRNN, LSTM or GRU forwards and backwards over time and merges the two outputs.",
    build: |a| Box::new(Bidirectional::read(a)),
};

// ---- SimpleRNN, LSTM, GRU -------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Simple,
    Lstm,
    Gru,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Simple, Kind::Lstm, Kind::Gru];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Simple => "SimpleRNN",
            Kind::Lstm => "LSTM",
            Kind::Gru => "GRU",
        }
    }

    /// Blocks of `units` columns in the kernels: LSTM i, f, c, o; GRU z, r, h.
    pub fn gates(self) -> usize {
        match self {
            Kind::Simple => 1,
            Kind::Lstm => 4,
            Kind::Gru => 3,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Recurrent {
    pub kind: Kind,
    pub units: usize,
    pub activation: Activation,
    /// LSTM and GRU only.
    pub recurrent_activation: Option<Activation>,
    pub use_bias: bool,
    pub kernel_initializer: &'static str,
    pub recurrent_initializer: &'static str,
    pub bias_initializer: &'static str,
    /// LSTM only (initial forget-gate bias of 1).
    pub unit_forget_bias: bool,
    pub dropout: f64,
    pub recurrent_dropout: f64,
    pub seed: Option<usize>,
    pub return_sequences: bool,
    pub go_backwards: bool,
    /// GRU only: separate input and recurrent biases, reset gate applied after the matmul.
    pub reset_after: bool,
}

impl Recurrent {
    /// Keras defaults for `kind`.
    pub fn new(kind: Kind, units: usize) -> Self {
        Recurrent {
            kind,
            units,
            activation: Activation::Tanh,
            recurrent_activation: (kind != Kind::Simple).then_some(Activation::Sigmoid),
            use_bias: true,
            kernel_initializer: "glorot_uniform",
            recurrent_initializer: "orthogonal",
            bias_initializer: "zeros",
            unit_forget_bias: kind == Kind::Lstm,
            dropout: 0.0,
            recurrent_dropout: 0.0,
            seed: None,
            return_sequences: false,
            go_backwards: false,
            reset_after: kind == Kind::Gru,
        }
    }

    /// Reads the arguments in Keras's signature order (the spec reference lists them so).
    fn read(a: &mut Args, kind: Kind) -> Self {
        let d = Recurrent::new(kind, 1);
        let rate = |a: &mut Args, name| a.float(name, Some(0.0), 0.0, 1.0, true);
        Recurrent {
            kind,
            units: super::size(a, "units", None, 1),
            activation: read_activation(a, "activation", Some(d.activation)),
            recurrent_activation: d.recurrent_activation.map(|r| read_activation(a, "recurrent_activation", Some(r))),
            use_bias: a.bool("use_bias", d.use_bias),
            kernel_initializer: read_initializer(a, "kernel_initializer", d.kernel_initializer),
            recurrent_initializer: read_initializer(a, "recurrent_initializer", d.recurrent_initializer),
            bias_initializer: read_initializer(a, "bias_initializer", d.bias_initializer),
            unit_forget_bias: kind == Kind::Lstm && a.bool("unit_forget_bias", true),
            dropout: rate(a, "dropout"),
            recurrent_dropout: rate(a, "recurrent_dropout"),
            seed: a.opt_usize("seed", 0),
            return_sequences: a.bool("return_sequences", false),
            go_backwards: a.bool("go_backwards", false),
            reset_after: kind == Kind::Gru && a.bool("reset_after", true),
        }
    }
}

impl Layer for Recurrent {
    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape, ShapeError> {
        expect_rank(&inputs[0], 2, "timesteps, features")?;
        Ok(if self.return_sequences { vec![inputs[0][0], self.units] } else { vec![self.units] })
    }

    fn weights(&self, inputs: &[Shape]) -> Vec<Weight> {
        // units <= MAX_ELEMENTS (`size`), so g * u can't overflow.
        let (f, u, g) = (*inputs[0].last().unwrap_or(&0), self.units, self.kind.gates());
        let mut w = vec![
            Weight::new("kernel", vec![f, g * u]).init(self.kernel_initializer),
            Weight::new("recurrent_kernel", vec![u, g * u]).init(self.recurrent_initializer),
        ];
        if self.use_bias {
            // reset_after keeps the input and recurrent biases apart (cuDNN layout).
            let shape = if self.reset_after { vec![2, g * u] } else { vec![g * u] };
            let bias = Weight::new("bias", shape);
            w.push(if self.unit_forget_bias { bias.with_init(Init::ForgetBias { units: u }) } else { bias.init(self.bias_initializer) });
        }
        w
    }

    fn activation(&self) -> Option<Activation> {
        Some(self.activation)
    }

    fn forward(&self, inputs: &[Tensor], w: &[Var], ctx: &mut Ctx) -> CResult<Tensor> {
        self.run(&inputs[0], w, ctx)
    }
}

/// An inverted-dropout mask of `dims` (values 0 or 1/(1-rate)), or None
/// outside training. Drawn once per call, so one mask serves every timestep.
fn dropout_mask(rate: f64, dims: (usize, usize), like: &Tensor, ctx: &mut Ctx) -> CResult<Option<Tensor>> {
    if !ctx.train || rate == 0.0 {
        return Ok(None);
    }
    let keep = 1.0 - rate;
    let m = ctx.dropout_mask(dims.0, dims.1, keep);
    Ok(Some(Tensor::from_vec(m, dims, like.device())?.to_dtype(like.dtype())?))
}

/// Splits `x` along axis 0 into its rows by halving: candle's narrow backward
/// pads each slice's gradient to the full input, so T direct slices would cost
/// O(T^2) in the backward pass; halving costs O(T log T).
fn unstack(x: &Tensor, out: &mut Vec<Tensor>) -> CResult<()> {
    let n = x.dim(0)?;
    if n == 1 {
        out.push(x.squeeze(0)?);
        return Ok(());
    }
    let mid = n / 2;
    unstack(&x.narrow(0, 0, mid)?, out)?;
    unstack(&x.narrow(0, mid, n - mid)?, out)
}

impl Recurrent {
    /// Runs over x (B, T, F): (B, U), or (B, T, U) in processing order
    /// (reversed under go_backwards, as Keras returns it).
    fn run(&self, x: &Tensor, w: &[Var], ctx: &mut Ctx) -> CResult<Tensor> {
        self.run_with(x, w, ctx, true)
    }

    /// `run`, with the fused LSTM kernel where it applies (`kernels`), or
    /// from candle ops only (the reference the kernel is tested against).
    fn run_with(&self, x: &Tensor, w: &[Var], ctx: &mut Ctx, kernels: bool) -> CResult<Tensor> {
        let (b, t, f) = x.dims3()?;
        let (u, g) = (self.units, self.kind.gates());
        let x = match dropout_mask(self.dropout, (b, f), x, ctx)? {
            Some(m) => x.broadcast_mul(&m.unsqueeze(1)?)?,
            None => x.clone(),
        };
        let rec_mask = dropout_mask(self.recurrent_dropout, (b, u), &x, ctx)?;
        let (kernel, rk) = (w[0].as_tensor(), w[1].as_tensor());
        let (in_bias, rec_bias) = match (self.use_bias, self.reset_after) {
            (false, _) => (None, None),
            (true, false) => (Some(w[2].as_tensor().clone()), None),
            (true, true) => (Some(w[2].as_tensor().get(0)?), Some(w[2].as_tensor().get(1)?)),
        };
        // All timesteps' input projections in one matmul, time-major so each
        // step's slice is contiguous.
        let xt = x.transpose(0, 1)?.contiguous()?.reshape((t * b, f))?;
        let xp = if kernels {
            crate::kernels::dense::dense(&xt, kernel, in_bias.as_ref(), false, ctx.grads)?
        } else {
            crate::kernels::dense::dense_plain(&xt, kernel, in_bias.as_ref(), false)?
        };
        // The whole recurrence as one op for Keras's default LSTM activations.
        let default_acts = self.activation == Activation::Tanh && self.recurrent_activation == Some(Activation::Sigmoid);
        if kernels && self.kind == Kind::Lstm && default_acts && t > 0 {
            let xp3 = xp.reshape((t, b, g * u))?;
            if let Some(y) = crate::kernels::rnn::lstm(&xp3, rk, rec_mask.as_ref(), self.go_backwards, self.return_sequences)? {
                return Ok(y);
            }
        }
        let mut steps = Vec::with_capacity(t);
        unstack(&xp.reshape((t, b, g * u))?, &mut steps)?;
        if self.go_backwards {
            steps.reverse();
        }
        // reset_after=false: the candidate's recurrent kernel multiplies r * h.
        let (rk_zr, rk_h) = if self.kind == Kind::Gru && !self.reset_after {
            (rk.narrow(1, 0, 2 * u)?.contiguous()?, Some(rk.narrow(1, 2 * u, u)?.contiguous()?))
        } else {
            (rk.clone(), None)
        };
        let act = |v: &Tensor| self.activation.apply(v);
        let ract = |v: &Tensor| self.recurrent_activation.unwrap_or(Activation::Sigmoid).apply(v);
        let gate = |v: &Tensor, k: usize| v.narrow(1, k * u, u);
        let mut h = Tensor::zeros((b, u), x.dtype(), x.device())?;
        let mut c = h.clone();
        let mut hs = Vec::with_capacity(if self.return_sequences { t } else { 0 });
        for xt in &steps {
            // Recurrent dropout masks h only where it enters the matmuls.
            let hm = match &rec_mask {
                Some(m) => (&h * m)?,
                None => h.clone(),
            };
            let mut rec = hm.matmul(&rk_zr)?;
            if let Some(rb) = &rec_bias {
                rec = rec.broadcast_add(rb)?;
            }
            h = match self.kind {
                Kind::Simple => act(&(xt + rec)?)?,
                Kind::Lstm => {
                    let z = (xt + rec)?;
                    let (i, fg, o) = (ract(&gate(&z, 0)?)?, ract(&gate(&z, 1)?)?, ract(&gate(&z, 3)?)?);
                    c = ((fg * &c)? + (i * act(&gate(&z, 2)?)?)?)?;
                    (o * act(&c)?)?
                }
                Kind::Gru => {
                    let zg = ract(&(gate(xt, 0)? + gate(&rec, 0)?)?)?;
                    let r = ract(&(gate(xt, 1)? + gate(&rec, 1)?)?)?;
                    let rh = match &rk_h {
                        Some(k) => (r * &hm)?.matmul(k)?,
                        None => (r * gate(&rec, 2)?)?,
                    };
                    let hh = act(&(gate(xt, 2)? + rh)?)?;
                    ((&zg * &h)? + (zg.affine(-1.0, 1.0)? * hh)?)?
                }
            };
            if self.return_sequences {
                hs.push(h.clone());
            }
        }
        // stack, not cat: cat of (B, U) steps would give (B, T*U).
        if self.return_sequences { Tensor::stack(&hs, 1) } else { Ok(h) }
    }
}

// ---- Bidirectional --------------------------------------------------------------------

const MERGE_MODES: &[&str] = &["sum", "mul", "concat", "ave"];

/// `merge_mode: null` (Keras: return both outputs as a list) is not supported.
#[derive(Clone, Debug, PartialEq)]
pub struct Bidirectional {
    /// The forward layer; the backward one is a copy running the other way.
    pub layer: Recurrent,
    pub merge_mode: &'static str,
}

impl Bidirectional {
    fn read(a: &mut Args) -> Self {
        // Absent in docs mode (and when missing, where `raw` reports it).
        let layer = a.raw("layer", "recurrent layer mapping", None).and_then(|n| read_inner(a, n));
        Bidirectional {
            layer: layer.unwrap_or_else(|| Recurrent::new(Kind::Lstm, 1)),
            merge_mode: {
                if let Some(n) = a.explicit_null("merge_mode") {
                    let hint = Some("use concat, sum, mul or ave to get one tensor".to_string());
                    a.error("merge_mode", n, "null (two separate outputs) is not supported", hint);
                }
                a.choice("merge_mode", Some("concat"), MERGE_MODES)
            },
        }
    }
}

/// Reads the wrapped layer with its own `Args`, so its errors point into the
/// nested mapping and its unknown keys are found.
fn read_inner(a: &mut Args, node: &Node) -> Option<Recurrent> {
    let path = a.arg_path("layer");
    let example = "for example {type: LSTM, units: 16}";
    if node.as_map().is_none() {
        a.error("layer", node, format!("must be a layer mapping, received {}", node.describe()), Some(example.into()));
        return None;
    }
    let Some(ty) = node.get("type") else {
        a.error("layer", node, "has no `type`", Some(format!("wrap a SimpleRNN, LSTM or GRU, {example}")));
        return None;
    };
    let Some(kind) = Kind::ALL.into_iter().find(|k| Some(k.name()) == ty.as_str()) else {
        let names = Kind::ALL.map(Kind::name);
        let hint = match ty.as_str().and_then(|s| did_you_mean(s, names)) {
            Some(m) => format!("did you mean '{m}'?"),
            None => format!("Bidirectional wraps a recurrent layer: SimpleRNN, LSTM or GRU, {example}"),
        };
        let msg = format!("{}: `layer` must be a SimpleRNN, LSTM or GRU, received type {}", a.owner(), ty.describe());
        a.diags.push(Diagnostic::error(msg, ty.pos, format!("{path}.type")).with_hint(hint));
        return None;
    };
    let mut inner = Args::new(node, path, format!("{} inner layer ({})", a.owner(), kind.name()), &["type", "name"]);
    let layer = Recurrent::read(&mut inner, kind);
    inner.finish();
    a.diags.extend(inner.diags);
    Some(layer)
}

impl Layer for Bidirectional {
    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape, ShapeError> {
        let mut out = self.layer.output_shape(inputs)?;
        if self.merge_mode == "concat"
            && let Some(last) = out.last_mut()
        {
            *last = last.checked_mul(2).ok_or_else(|| super::overflow("the concatenated output"))?;
        }
        Ok(out)
    }

    fn weights(&self, inputs: &[Shape]) -> Vec<Weight> {
        let inner = self.layer.weights(inputs);
        ["forward_layer", "backward_layer"]
            .iter()
            .flat_map(|dir| inner.iter().map(move |w| Weight { name: format!("{dir}.{}", w.name), ..w.clone() }))
            .collect()
    }

    /// Concat and ave keep each value in the inner activation's range
    /// (sigmoid stays a probability); sum and mul do not.
    fn activation(&self) -> Option<Activation> {
        matches!(self.merge_mode, "concat" | "ave").then_some(self.layer.activation)
    }

    /// As Keras: the backward layer is the inner layer with go_backwards
    /// flipped, and its sequence is reversed back so positions align.
    fn forward(&self, inputs: &[Tensor], w: &[Var], ctx: &mut Ctx) -> CResult<Tensor> {
        let x = &inputs[0];
        let n = w.len() / 2;
        let y = self.layer.run(x, &w[..n], ctx)?;
        let back = Recurrent { go_backwards: !self.layer.go_backwards, ..self.layer.clone() };
        let mut yb = back.run(x, &w[n..], ctx)?;
        if self.layer.return_sequences {
            let t = yb.dim(1)?;
            let idx = Tensor::from_vec((0..t as u32).rev().collect::<Vec<_>>(), t, x.device())?;
            yb = yb.index_select(&idx, 1)?;
        }
        match self.merge_mode {
            "concat" => Tensor::cat(&[y, yb], D::Minus1),
            "sum" => y + yb,
            "mul" => y * yb,
            _ => (y + yb)? * 0.5, // ave
        }
    }
}

#[cfg(test)]
mod tests {
    use super::BIDIRECTIONAL;
    use crate::layers::Activation;
    use crate::layers::testutil::{arg_error, build, infer};
    use crate::spec::args::Args;

    #[test]
    fn recurrent_shapes_and_params() {
        assert_eq!(infer("LSTM", "{units: 32}", &[&[12, 1]]).unwrap(), (vec![32], 4_352, 4_352));
        assert_eq!(infer("LSTM", "{units: 32, return_sequences: true}", &[&[12, 1]]).unwrap().0, vec![12, 32]);
        assert_eq!(infer("GRU", "{units: 10}", &[&[5, 8]]).unwrap(), (vec![10], 600, 600));
        assert_eq!(infer("GRU", "{units: 10, reset_after: false}", &[&[5, 8]]).unwrap().1, 3 * 10 * (8 + 10 + 1));
        assert_eq!(infer("SimpleRNN", "{units: 16}", &[&[10, 4]]).unwrap(), (vec![16], 336, 336));
        assert_eq!(infer("SimpleRNN", "{units: 16, return_sequences: true}", &[&[10, 4]]).unwrap().0, vec![10, 16]);
    }

    #[test]
    fn recurrent_weights_have_keras_names_and_layouts() {
        let w = |ty, yaml| {
            let l = build(ty, yaml).unwrap();
            l.weights(&[vec![5, 8]]).into_iter().map(|w| (w.name, w.shape)).collect::<Vec<_>>()
        };
        let lstm = [("kernel".to_string(), vec![8, 16]), ("recurrent_kernel".into(), vec![4, 16]), ("bias".into(), vec![16])];
        assert_eq!(w("LSTM", "{units: 4}"), lstm);
        assert_eq!(w("GRU", "{units: 4}")[2].1, vec![2, 12]);
        assert_eq!(w("GRU", "{units: 4, reset_after: false}")[2].1, vec![12]);
        // use_bias: false drops the bias weight.
        assert_eq!(w("SimpleRNN", "{units: 4, use_bias: false}").len(), 2);
        assert_eq!(infer("LSTM", "{units: 32, use_bias: false}", &[&[12, 1]]).unwrap().1, 4_352 - 128);
        assert_eq!(infer("GRU", "{units: 10, use_bias: false}", &[&[5, 8]]).unwrap().1, 540);
    }

    #[test]
    fn recurrent_activation_is_the_output_activation() {
        assert_eq!(build("LSTM", "{units: 2}").unwrap().activation(), Some(Activation::Tanh));
        let l = build("GRU", "{units: 2, activation: relu, recurrent_activation: hard_sigmoid}").unwrap();
        assert_eq!(l.activation(), Some(Activation::Relu));
    }

    #[test]
    fn rank_mismatch_explains_the_time_axis() {
        let e = infer("LSTM", "{units: 8}", &[&[16]]).unwrap_err();
        assert_eq!(e.message, "expects a 3-D input (batch, timesteps, features), received (batch, 16)");
        assert_eq!(
            e.hint.as_deref(),
            Some("add a time axis before '{name}', for example {type: Reshape, target_shape: [16, 1]} (or RepeatVector to repeat the vector)")
        );
        assert!(infer("GRU", "{units: 8}", &[&[4, 4, 3]]).unwrap_err().hint.unwrap().contains("target_shape: [4, 12]"));
    }

    #[test]
    fn recurrent_argument_errors() {
        assert_eq!(arg_error("LSTM", "{units: 0}"), "layer 'x' (LSTM): `units` must be a positive integer, received 0");
        assert!(arg_error("GRU", "{}").contains("missing required argument `units`"));
        assert_eq!(arg_error("SimpleRNN", "{units: 4, dropout: 1.5}"), "layer 'x' (SimpleRNN): `dropout` must be a number in [0, 1), received 1.5");
        assert!(arg_error("GRU", "{units: 4, recurrent_dropout: 1}").contains("`recurrent_dropout` must be a number in [0, 1)"));
        assert_eq!(
            arg_error("LSTM", "{units: 4, recurrent_activation: sigmod}"),
            "layer 'x' (LSTM): `recurrent_activation` names an unknown activation \"sigmod\""
        );
        // Per-kind arguments belong to their kind only.
        assert!(arg_error("SimpleRNN", "{units: 4, recurrent_activation: sigmoid}").contains("unknown argument `recurrent_activation`"));
        assert!(arg_error("GRU", "{units: 4, unit_forget_bias: true}").contains("unknown argument `unit_forget_bias`"));
        assert!(arg_error("LSTM", "{units: 4, reset_after: true}").contains("unknown argument `reset_after`"));
        assert!(arg_error("LSTM", "{units: 4, return_state: true}").contains("not supported"));
        assert!(arg_error("LSTM", "{units: 4, seed: -1}").contains("`seed` must be an integer >= 0"));
    }

    #[test]
    fn bidirectional_merge_modes() {
        let lstm = "layer: {type: LSTM, units: 16, return_sequences: true}";
        let params = 2 * 4 * 16 * (32 + 16 + 1);
        assert_eq!(infer("Bidirectional", &format!("{{{lstm}}}"), &[&[100, 32]]).unwrap(), (vec![100, 32], params, params));
        assert_eq!(infer("Bidirectional", &format!("{{{lstm}, merge_mode: sum}}"), &[&[100, 32]]).unwrap().0, vec![100, 16]);
        assert_eq!(infer("Bidirectional", "{layer: {type: GRU, units: 10}, merge_mode: ave}", &[&[5, 8]]).unwrap(), (vec![10], 1_200, 1_200));
        assert!(arg_error("Bidirectional", &format!("{{{lstm}, merge_mode: cat}}")).contains("`merge_mode` must be one of sum, mul, concat, ave"));
        let b = build("Bidirectional", "{layer: {type: SimpleRNN, units: 3, activation: sigmoid}, merge_mode: mul}").unwrap();
        let names: Vec<String> = b.weights(&[vec![5, 2]]).into_iter().map(|w| w.name).collect();
        assert_eq!(names[0], "forward_layer.kernel");
        assert_eq!(names[5], "backward_layer.bias");
        assert_eq!(b.activation(), None, "mul of two sigmoids is not the sigmoid's output");
        // The inner layer's rank check and hint apply.
        assert!(infer("Bidirectional", "{layer: {type: LSTM, units: 2}}", &[&[16]]).unwrap_err().hint.is_some());
    }

    #[test]
    fn bidirectional_rejects_non_recurrent_and_missing_layers() {
        let d = build("Bidirectional", "layer:\n  type: Dense\n  units: 3\n").unwrap_err();
        assert_eq!(d[0].message, "layer 'x' (Bidirectional): `layer` must be a SimpleRNN, LSTM or GRU, received type \"Dense\"");
        assert_eq!((d[0].pos.line, d[0].pos.col), (2, 9));
        assert_eq!(d[0].path, "layer.layer.type");
        assert!(d[0].hint.as_deref().unwrap().starts_with("Bidirectional wraps a recurrent layer"));
        assert_eq!(build("Bidirectional", "{layer: {type: lstm, units: 3}}").unwrap_err()[0].hint.as_deref(), Some("did you mean 'LSTM'?"));
        assert!(arg_error("Bidirectional", "{merge_mode: sum}").contains("missing required argument `layer`"));
        assert!(arg_error("Bidirectional", "{layer: LSTM}").contains("`layer` must be a layer mapping, received \"LSTM\""));
        assert!(arg_error("Bidirectional", "{layer: {units: 3}}").contains("`layer` has no `type`"));
    }

    #[test]
    fn bidirectional_inner_errors_point_into_the_nested_mapping() {
        let d = build("Bidirectional", "merge_mode: sum\nlayer:\n  type: LSTM\n  units: -1\n  dropuot: 0.1\n").unwrap_err();
        assert_eq!(d[0].message, "layer 'x' (Bidirectional) inner layer (LSTM): `units` must be a positive integer, received -1");
        assert_eq!((d[0].pos.line, d[0].pos.col), (4, 10));
        assert_eq!(d[0].path, "layer.layer.units");
        assert_eq!(d[1].path, "layer.layer.dropuot");
        assert_eq!(d[1].hint.as_deref(), Some("did you mean `dropout`?"));
    }

    #[test]
    fn docs_mode_records_arguments_without_errors() {
        let mut a = Args::for_docs();
        (BIDIRECTIONAL.build)(&mut a);
        assert!(a.diags.is_empty());
        let names: Vec<&str> = a.docs.iter().map(|d| d.name).collect();
        assert_eq!(names, ["layer", "merge_mode"]);
        let mut a = Args::for_docs();
        (super::LSTM.build)(&mut a);
        assert!(a.diags.is_empty());
        assert!(a.docs.iter().any(|d| d.name == "unit_forget_bias"));
        assert!(!a.docs.iter().any(|d| d.name == "reset_after"));
    }

    // ---- forward passes -----------------------------------------------------------------

    use crate::layers::testutil::{forward, grad_check};
    use crate::layers::{Ctx, Init};
    use candle_core::{Device, Tensor, Var};
    use rand::{SeedableRng, rngs::StdRng};

    /// Runs `ty` with the given weight values (shapes from `weights()`) on x
    /// of (batch, T, F), batch taken from x's length; returns the flat output.
    fn run_with(ty: &str, yaml: &str, x: &[f64], tf: (usize, usize), ws: &[&[f64]], train: bool) -> Vec<f64> {
        let layer = build(ty, yaml).unwrap();
        let shapes = layer.weights(&[vec![tf.0, tf.1]]);
        assert_eq!(shapes.len(), ws.len());
        let vars: Vec<Var> = shapes.iter().zip(ws).map(|(s, v)| Var::from_vec(v.to_vec(), s.shape.clone(), &Device::Cpu).unwrap()).collect();
        let x = Tensor::from_vec(x.to_vec(), (x.len() / (tf.0 * tf.1), tf.0, tf.1), &Device::Cpu).unwrap();
        let mut rng = StdRng::seed_from_u64(0);
        let y = layer.forward(&[x], &vars, &mut Ctx { train, rng: &mut rng, logits: false, grads: None, part: None }).unwrap();
        y.flatten_all().unwrap().to_vec1::<f64>().unwrap()
    }

    fn sig(v: f64) -> f64 {
        1.0 / (1.0 + (-v).exp())
    }

    fn close(a: &[f64], b: &[f64]) {
        assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
        assert!(a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12), "{a:?} vs {b:?}");
    }

    #[test]
    fn forward_shapes() {
        for ty in ["SimpleRNN", "LSTM", "GRU"] {
            for yaml in [
                "{units: 3}",
                "{units: 3, return_sequences: true}",
                "{units: 3, go_backwards: true, return_sequences: true}",
                "{units: 3, use_bias: false, dropout: 0.3, recurrent_dropout: 0.3}",
            ] {
                forward(ty, yaml, &[&[4, 2]], true);
                forward(ty, yaml, &[&[4, 2]], false);
            }
        }
        forward("GRU", "{units: 3, reset_after: false, return_sequences: true}", &[&[4, 2]], false);
        for mode in ["concat", "sum", "mul", "ave"] {
            for seq in [false, true] {
                let yaml = format!("{{layer: {{type: GRU, units: 3, return_sequences: {seq}}}, merge_mode: {mode}}}");
                forward("Bidirectional", &yaml, &[&[4, 2]], false);
            }
        }
        // One timestep works too.
        forward("LSTM", "{units: 2, return_sequences: true}", &[&[1, 3]], false);
    }

    #[test]
    fn gradients_match_finite_differences() {
        for (ty, yaml) in [
            ("SimpleRNN", "{units: 3}"),
            ("SimpleRNN", "{units: 3, return_sequences: true, go_backwards: true, use_bias: false}"),
            ("LSTM", "{units: 3}"),
            ("LSTM", "{units: 3, return_sequences: true, go_backwards: true}"),
            ("GRU", "{units: 3, return_sequences: true}"),
            ("GRU", "{units: 3, reset_after: false, return_sequences: true}"),
            ("GRU", "{units: 3, use_bias: false}"),
            ("Bidirectional", "{layer: {type: LSTM, units: 3, return_sequences: true}}"),
            ("Bidirectional", "{layer: {type: GRU, units: 3}, merge_mode: mul}"),
            ("Bidirectional", "{layer: {type: SimpleRNN, units: 3, return_sequences: true}, merge_mode: ave}"),
        ] {
            grad_check(ty, yaml, &[&[3, 2]], true);
        }
    }

    /// The fused LSTM (and Dense projection) against the candle-op cell:
    /// outputs and every gradient, f32, with dropout masks, both directions,
    /// batch 1 and odd sizes.
    #[test]
    fn lstm_kernel_matches_the_op_cell() {
        use crate::kernels::testing::{compare, var};
        use candle_core::DType;
        for (yaml, (batch, t, f)) in [
            ("{units: 3}", (1, 1, 1)),
            ("{units: 5}", (4, 7, 3)),
            ("{units: 4, return_sequences: true}", (3, 5, 2)),
            ("{units: 4, return_sequences: true, go_backwards: true}", (2, 6, 3)),
            ("{units: 3, go_backwards: true, use_bias: false}", (5, 4, 2)),
            ("{units: 6, dropout: 0.3, recurrent_dropout: 0.4, return_sequences: true}", (8, 5, 3)),
            ("{units: 32}", (32, 12, 1)),
        ] {
            let layer = build("LSTM", yaml).unwrap();
            let rec = super::Recurrent::read(&mut crate::spec::args::Args::new(&crate::spec::yaml::parse(yaml).unwrap(), "l", "l", &[]), super::Kind::Lstm);
            let mut vars = vec![var(&[batch, t, f], 1, DType::F32)];
            for (k, w) in layer.weights(&[vec![t, f]]).iter().enumerate() {
                vars.push(var(&w.shape, 10 + k as u64, DType::F32));
            }
            let go = |fused: bool| {
                let rec = rec.clone();
                move |ts: &[Tensor]| {
                    // The same seed: both paths draw the same dropout masks.
                    let mut rng = StdRng::seed_from_u64(3);
                    let mut ctx = Ctx { train: true, rng: &mut rng, logits: false, grads: None, part: None };
                    rec.run_with(&ts[0], &ts_vars(ts), &mut ctx, fused).unwrap()
                }
            };
            compare(&vars, go(true), go(false), 1e-5, &format!("LSTM {yaml} on ({batch}, {t}, {f})"));
        }
    }

    /// The weights as Vars: the tensors are variables already, so these are
    /// the same Vars (same ids), and gradients reach them.
    fn ts_vars(ts: &[Tensor]) -> Vec<Var> {
        ts[1..].iter().map(|t| Var::from_tensor(t).unwrap()).collect()
    }

    #[test]
    fn lstm_with_zero_weights_follows_its_biases() {
        let bias = [0.5, -0.5, 1.0, 2.0, 0.3, -0.2, 0.1, 0.7]; // i, f, c, o for 2 units
        let y = run_with("LSTM", "{units: 2, return_sequences: true}", &[1.0, -3.0], (2, 1), &[&[0.0; 8], &[0.0; 16], &bias], false);
        let mut want = vec![0.0; 4];
        for k in 0..2 {
            let (i, f, cc, o) = (sig(bias[k]), sig(bias[2 + k]), bias[4 + k].tanh(), sig(bias[6 + k]));
            let c1 = i * cc;
            let c2 = f * c1 + i * cc;
            want[k] = o * c1.tanh();
            want[2 + k] = o * c2.tanh();
        }
        close(&y, &want);
    }

    #[test]
    fn gru_two_steps_by_hand() {
        let (k, r, xs) = ([0.5, -0.3, 0.8], [0.2, 0.4, -0.6], [1.0, -2.0]);
        let (bi, br) = ([0.1, -0.1, 0.05], [0.2, 0.3, -0.2]);
        let bias: Vec<f64> = bi.iter().chain(&br).copied().collect();
        let y = run_with("GRU", "{units: 1, return_sequences: true}", &xs, (2, 1), &[&k, &r, &bias], false);
        let (mut h, mut want) = (0.0, vec![]);
        for x in xs {
            let z = sig(k[0] * x + bi[0] + r[0] * h + br[0]);
            let rg = sig(k[1] * x + bi[1] + r[1] * h + br[1]);
            let hh = (k[2] * x + bi[2] + rg * (r[2] * h + br[2])).tanh();
            h = z * h + (1.0 - z) * hh;
            want.push(h);
        }
        close(&y, &want);
        // reset_after: false: one bias, reset gate applied before the matmul.
        let y = run_with("GRU", "{units: 1, reset_after: false, return_sequences: true}", &xs, (2, 1), &[&k, &r, &bi], false);
        let (mut h, mut want) = (0.0, vec![]);
        for x in xs {
            let z = sig(k[0] * x + bi[0] + r[0] * h);
            let rg = sig(k[1] * x + bi[1] + r[1] * h);
            let hh = (k[2] * x + bi[2] + r[2] * (rg * h)).tanh();
            h = z * h + (1.0 - z) * hh;
            want.push(h);
        }
        close(&y, &want);
    }

    #[test]
    fn simple_rnn_by_hand_and_backwards() {
        let ws: [&[f64]; 3] = [&[0.5], &[-0.4], &[0.1]];
        let h1 = (0.5 * 1.0 + 0.1f64).tanh();
        let h2 = (0.5 * -2.0 - 0.4 * h1 + 0.1).tanh();
        close(&run_with("SimpleRNN", "{units: 1, return_sequences: true}", &[1.0, -2.0], (2, 1), &ws, false), &[h1, h2]);
        close(&run_with("SimpleRNN", "{units: 1}", &[1.0, -2.0], (2, 1), &ws, false), &[h2]);
        // go_backwards returns the sequence in processing order, as Keras does.
        let g1 = (0.5 * -2.0 + 0.1f64).tanh();
        let g2 = (0.5 * 1.0 - 0.4 * g1 + 0.1).tanh();
        let y = run_with("SimpleRNN", "{units: 1, go_backwards: true, return_sequences: true}", &[1.0, -2.0], (2, 1), &ws, false);
        close(&y, &[g1, g2]);
    }

    #[test]
    fn bidirectional_aligns_the_backward_sequence() {
        let ws: [&[f64]; 6] = [&[0.5], &[-0.4], &[0.1], &[0.3], &[0.2], &[-0.1]];
        let h1 = (0.5 * 1.0 + 0.1f64).tanh();
        let h2 = (0.5 * -2.0 - 0.4 * h1 + 0.1).tanh();
        let k1 = (0.3 * -2.0 - 0.1f64).tanh(); // the backward layer sees x2 first
        let k2 = (0.3 * 1.0 + 0.2 * k1 - 0.1).tanh();
        let run = |yaml: &str| run_with("Bidirectional", yaml, &[1.0, -2.0], (2, 1), &ws, false);
        close(&run("{layer: {type: SimpleRNN, units: 1, return_sequences: true}}"), &[h1, k2, h2, k1]);
        close(&run("{layer: {type: SimpleRNN, units: 1}, merge_mode: sum}"), &[h2 + k2]);
        close(&run("{layer: {type: SimpleRNN, units: 1}, merge_mode: mul}"), &[h2 * k2]);
        close(&run("{layer: {type: SimpleRNN, units: 1}, merge_mode: ave}"), &[(h2 + k2) / 2.0]);
    }

    #[test]
    fn dropout_masks_are_drawn_once_per_sequence_and_only_in_training() {
        let ones = vec![1.0; 64 * 4];
        // Input dropout, linear cell with kernel 1 and no recurrence: each
        // sequence is dropped whole (0) or kept whole (scaled to 2).
        let yaml = "{units: 1, activation: linear, dropout: 0.5, return_sequences: true}";
        let ws: [&[f64]; 3] = [&[1.0], &[0.0], &[0.0]];
        let y = run_with("SimpleRNN", yaml, &ones, (4, 1), &ws, true);
        let rows: Vec<&[f64]> = y.chunks(4).collect();
        assert!(rows.iter().all(|r| *r == [0.0; 4] || *r == [2.0; 4]), "{rows:?}");
        assert!(rows.contains(&&[0.0; 4][..]) && rows.contains(&&[2.0; 4][..]));
        assert!(run_with("SimpleRNN", yaml, &ones, (4, 1), &ws, false).iter().all(|v| *v == 1.0));
        // Recurrent dropout: h_t = 1 + m * h_{t-1} with one m in {0, 2} per sequence.
        let yaml = "{units: 1, activation: linear, recurrent_dropout: 0.5, return_sequences: true}";
        let ws: [&[f64]; 3] = [&[1.0], &[1.0], &[0.0]];
        let y = run_with("SimpleRNN", yaml, &ones[..64 * 3], (3, 1), &ws, true);
        let rows: Vec<&[f64]> = y.chunks(3).collect();
        assert!(rows.iter().all(|r| *r == [1.0, 1.0, 1.0] || *r == [1.0, 3.0, 7.0]), "{rows:?}");
        assert!(rows.contains(&&[1.0, 1.0, 1.0][..]) && rows.contains(&&[1.0, 3.0, 7.0][..]));
        close(&run_with("SimpleRNN", yaml, &ones[..3], (3, 1), &ws, false), &[1.0, 2.0, 3.0]);
        // Gated cells: training differs from evaluation, evaluation is deterministic.
        for ty in ["LSTM", "GRU"] {
            let yaml = "{units: 3, dropout: 0.5, recurrent_dropout: 0.5, return_sequences: true}";
            let flat = |t: Tensor| t.flatten_all().unwrap().to_vec1::<f64>().unwrap();
            let eval = flat(forward(ty, yaml, &[&[4, 2]], false));
            assert_eq!(eval, flat(forward(ty, yaml, &[&[4, 2]], false)));
            assert_ne!(eval, flat(forward(ty, yaml, &[&[4, 2]], true)));
        }
    }

    #[test]
    fn initializers_follow_keras() {
        let inits = |ty, yaml| build(ty, yaml).unwrap().weights(&[vec![5, 2]]).into_iter().map(|w| w.init).collect::<Vec<_>>();
        let glorot = Init::Named("glorot_uniform");
        let orth = Init::Named("orthogonal");
        assert_eq!(inits("LSTM", "{units: 3}"), [glorot.clone(), orth.clone(), Init::ForgetBias { units: 3 }]);
        assert_eq!(inits("LSTM", "{units: 3, unit_forget_bias: false, bias_initializer: ones}")[2], Init::Named("ones"));
        assert_eq!(inits("GRU", "{units: 3, kernel_initializer: he_normal}"), [Init::Named("he_normal"), orth.clone(), Init::Named("zeros")]);
        assert_eq!(inits("SimpleRNN", "{units: 3, recurrent_initializer: glorot_uniform}")[1], glorot);
        let bi = inits("Bidirectional", "{layer: {type: LSTM, units: 3}}");
        assert_eq!(bi[..3], bi[3..]);
        assert_eq!(bi[5], Init::ForgetBias { units: 3 });
        // ForgetBias: ones in the forget block [U, 2U) of the i, f, c, o bias.
        let b = crate::layers::init::sample(&Init::ForgetBias { units: 3 }, &[12], &mut StdRng::seed_from_u64(0));
        assert_eq!(b, [0., 0., 0., 1., 1., 1., 0., 0., 0., 0., 0., 0.]);
    }
}
