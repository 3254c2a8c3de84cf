//! Recurrent layers: SimpleRNN, LSTM and GRU (one struct; `Kind` sets the
//! gate count), and the Bidirectional wrapper.

use super::activation::{read_activation, read_initializer};
use super::{expect_rank, Activation, Layer, LayerType, Shape, ShapeError, Weight};
use crate::diag::{did_you_mean, Diagnostic};
use crate::spec::args::Args;
use crate::spec::yaml::Node;

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
            units: a.usize("units", None, 1),
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
        let (f, u, g) = (*inputs[0].last().unwrap_or(&0), self.units, self.kind.gates());
        let mut w = vec![Weight::new("kernel", vec![f, g * u]), Weight::new("recurrent_kernel", vec![u, g * u])];
        if self.use_bias {
            // reset_after keeps the input and recurrent biases apart (cuDNN layout).
            let shape = if self.reset_after { vec![2, g * u] } else { vec![g * u] };
            w.push(Weight::new("bias", shape));
        }
        w
    }

    fn activation(&self) -> Option<Activation> {
        Some(self.activation)
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
        if self.merge_mode == "concat" {
            *out.last_mut().unwrap() *= 2;
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
}

#[cfg(test)]
mod tests {
    use super::BIDIRECTIONAL;
    use crate::layers::testutil::{arg_error, build, infer};
    use crate::layers::Activation;
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
        assert_eq!(
            arg_error("SimpleRNN", "{units: 4, dropout: 1.5}"),
            "layer 'x' (SimpleRNN): `dropout` must be a number in [0, 1), received 1.5"
        );
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
}
