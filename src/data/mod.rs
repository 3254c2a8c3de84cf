//! Training data: reads the sources of a `data` section (CSV or IDX), then
//! splits, fills, scales, normalizes and encodes them into plain arrays in
//! the layout the model expects.

pub mod columns;
pub mod csv;
pub mod farmhash;
pub mod idx;
pub mod prep;

use crate::spec::Named;
use crate::spec::data::{DataSpec, Missing, Normalize, SourceSpec, resolve};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What the model takes and gives, from the graph (shapes without batch axis).
#[derive(Clone, Debug, PartialEq)]
pub struct ModelIo {
    pub inputs: Vec<(String, Vec<usize>)>,
    /// Per input: the Embedding that reads it, whose values must be indices.
    pub indices: Vec<Option<IndexInput>>,
    pub outputs: Vec<OutputIo>,
}

/// A model input read by an Embedding: every value must be an integer in
/// [0, input_dim), or the forward pass fails.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexInput {
    /// The Embedding layer (the one with the smallest `input_dim`, if several).
    pub layer: String,
    pub input_dim: usize,
}

impl IndexInput {
    /// Position and value of the first entry of `data` that is not an index.
    pub fn first_bad(&self, data: &[f32]) -> Option<(usize, f32)> {
        data.iter().position(|&v| !(v >= 0.0 && v.fract() == 0.0 && (v as f64) < self.input_dim as f64)).map(|k| (k, data[k]))
    }

    /// What is wrong with `value` of input `input`; `transformed` when the
    /// data's scale or normalization changed it on the way.
    pub fn message(&self, input: &str, value: f32, transformed: bool) -> String {
        let mut msg = format!(
            "{value} is not an index for Embedding '{}' (which reads input '{input}'): it takes integers from 0 to {}",
            self.layer,
            self.input_dim.saturating_sub(1)
        );
        if transformed {
            msg.push_str(" (this is the value after the data's `scale` and `normalize`; leave both out for an Embedding's input)");
        }
        msg
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct OutputIo {
    pub name: String,
    pub shape: Vec<usize>,
    /// Canonical loss name (`crate::spec::training::canonical_loss`).
    pub loss: String,
}

/// Samples of one input or target: `n * shape.product()` values, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    /// Per sample, without the batch axis.
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Array {
    pub fn width(&self) -> usize {
        self.shape.iter().product()
    }

    /// Values of sample `i`.
    pub fn sample(&self, i: usize) -> &[f32] {
        let w = self.width();
        &self.data[i * w..(i + 1) * w]
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    pub n: usize,
    /// In `ModelIo::inputs` order.
    pub inputs: Vec<Array>,
    /// In `ModelIo::outputs` order.
    pub targets: Vec<Array>,
    /// Per sample, `data.sample_weight`'s column (`None`: every sample weighs 1).
    pub weights: Option<Vec<f32>>,
}

#[derive(Clone, Debug)]
pub struct Prepared {
    pub train: Split,
    pub validation: Option<Split>,
    pub test: Option<Split>,
    pub prep: PrepState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Csv,
    Idx,
}

/// Everything needed to prepare new samples the way the training data was
/// prepared (and to map predictions back), saved beside a trained model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrepState {
    pub source: SourceKind,
    /// Multiplies every feature (and, for windows, the target); 1 when not given.
    pub scale: f32,
    pub normalize: Normalize,
    pub missing: Missing,
    /// Cells that count as missing (`data.missing_values`).
    #[serde(default = "default_missing_values")]
    pub missing_values: Vec<String>,
    pub inputs: Vec<InputPrep>,
    pub outputs: Vec<OutputPrep>,
    pub window: Option<WindowPrep>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputPrep {
    pub name: String,
    pub shape: Vec<usize>,
    /// CSV column names; empty for IDX images.
    pub features: Vec<String>,
    /// Per feature (`missing: mean`): the training mean of the raw values.
    pub fill: Option<Vec<f32>>,
    /// Per feature: x' = (x * scale - shift) / div. Mean/std or min/range.
    pub shift: Vec<f32>,
    pub div: Vec<f32>,
    /// Per value: the factor before `shift`; empty: `PrepState::scale` for all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scales: Vec<f32>,
    /// Per CSV column, how its cells become values (vocabularies, bins);
    /// empty: every feature a number read with `PrepState::missing`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<columns::ColumnPrep>,
}

fn default_missing_values() -> Vec<String> {
    crate::spec::data::MISSING_VALUES.iter().map(|s| s.to_string()).collect()
}

impl InputPrep {
    /// The encoders of the input's columns: as saved, or one number per
    /// feature (no `columns`: an all-number input). Empty for IDX and windows.
    pub fn encoders(&self, state: &PrepState) -> Vec<columns::ColumnPrep> {
        if !self.columns.is_empty() || state.source == SourceKind::Idx || state.window.is_some() {
            return self.columns.clone();
        }
        let number = columns::Encoder::Number { kind: columns::NumberKind::Number };
        self.features.iter().map(|f| columns::ColumnPrep { column: f.clone(), missing: state.missing, encoder: number.clone() }).collect()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutputPrep {
    pub name: String,
    /// The target column, or the labels file for IDX.
    pub target: String,
    pub loss: String,
    /// Class names when the target column holds strings; index i = class i.
    pub classes: Option<Vec<String>>,
    /// y' = (y * scale - shift) / div; identity except for windows.
    pub scale: f32,
    pub shift: f32,
    pub div: f32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowPrep {
    pub column: String,
    pub size: usize,
}

impl PrepState {
    /// Whether preparing input `i` changes its values (scale or normalization).
    pub fn transforms_input(&self, i: usize) -> bool {
        self.inputs.get(i).is_some_and(|p| {
            let scaled = if p.scales.is_empty() { self.scale != 1.0 } else { p.scales.iter().any(|&s| s != 1.0) };
            scaled || p.shift.iter().any(|&s| s != 0.0) || p.div.iter().any(|&d| d != 1.0)
        })
    }

    /// Column names for the `units` units of output `o`: the class names, then,
    /// for units no training sample had, `unseen_<unit>`; numeric labels are
    /// their own names.
    pub fn class_names(&self, o: usize, units: usize) -> Vec<String> {
        let Some(classes) = self.outputs.get(o).and_then(|p| p.classes.as_ref()) else {
            return (0..units).map(|k| k.to_string()).collect();
        };
        let mut names: Vec<String> = classes.iter().take(units).cloned().collect();
        for k in names.len()..units {
            let mut name = format!("unseen_{k}");
            // A class of the data may already have that name.
            while names.contains(&name) || classes.contains(&name) {
                name.insert(0, '_');
            }
            names.push(name);
        }
        names
    }

    /// Prepares raw values of input `i` (any number of samples, row-major) in place.
    pub fn apply_input(&self, i: usize, data: &mut [f32]) {
        let p = &self.inputs[i];
        let w = p.shift.len().max(1);
        for (k, x) in data.iter_mut().enumerate() {
            let j = k % w;
            if x.is_nan()
                && let Some(fill) = &p.fill
            {
                *x = fill[j];
            }
            let scale = p.scales.get(j).copied().unwrap_or(self.scale);
            *x = (*x * scale - p.shift[j]) / p.div[j];
        }
    }

    /// Maps predictions of output `o` back to the units of the data.
    pub fn restore_target(&self, o: usize, data: &mut [f32]) {
        let p = &self.outputs[o];
        for y in data {
            *y = (*y * p.div + p.shift) / p.scale;
        }
    }

    /// Checks a saved state (from a model file: untrusted) against the model
    /// it is to prepare data for: one entry per input and output, in order,
    /// with the names, shapes, lengths and losses the model implies, and no
    /// value that would break preparing or mapping back (NaN, a zero divisor).
    /// `apply_input`, `restore_target` and `prep::apply` rely on it.
    pub fn check(&self, io: &ModelIo) -> Result<(), String> {
        let names = |v: &mut dyn Iterator<Item = &str>| v.map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ");
        if self.inputs.len() != io.inputs.len() {
            return Err(format!(
                "its preprocessing describes {} input(s) ({}) but the model has {} ({})",
                self.inputs.len(),
                names(&mut self.inputs.iter().map(|p| p.name.as_str())),
                io.inputs.len(),
                names(&mut io.inputs.iter().map(|(n, _)| n.as_str()))
            ));
        }
        if self.outputs.len() != io.outputs.len() {
            return Err(format!(
                "its preprocessing describes {} output(s) ({}) but the model has {} ({})",
                self.outputs.len(),
                names(&mut self.outputs.iter().map(|p| p.name.as_str())),
                io.outputs.len(),
                names(&mut io.outputs.iter().map(|o| o.name.as_str()))
            ));
        }
        if !(self.scale.is_finite() && self.scale > 0.0) {
            return Err(format!("its preprocessing has scale {}; it must be a positive number", self.scale));
        }
        let finite = |what: &str, v: &[f32]| match v.iter().position(|x| !x.is_finite()) {
            Some(k) => Err(format!("{what}[{k}] is {}, not a finite number", v[k])),
            None => Ok(()),
        };
        if self.source == SourceKind::Idx && (io.inputs.len() != 1 || io.outputs.len() != 1) {
            return Err("its preprocessing is for IDX data, which feeds one input and one output".into());
        }
        if let Some(w) = &self.window {
            let fits = |(name, shape): &(String, Vec<usize>)| (*shape == [w.size, 1] || *shape == [w.size]) && self.inputs[0].name == *name;
            let ok = self.source == SourceKind::Csv && io.inputs.len() == 1 && io.outputs.len() == 1 && fits(&io.inputs[0]);
            if !ok || self.inputs[0].features != [w.column.clone()] {
                let model: Vec<String> = io.inputs.iter().map(|(n, s)| format!("'{n}' {s:?}")).collect();
                return Err(format!(
                    "its preprocessing reads windows of {} values of column '{}', which the model's inputs ({}) can't take",
                    w.size,
                    w.column,
                    model.join(", ")
                ));
            }
        }
        for (p, (name, shape)) in self.inputs.iter().zip(&io.inputs) {
            let at = format!("preprocessing of input '{}'", p.name);
            if p.name != *name || p.shape != *shape {
                return Err(format!(
                    "its preprocessing is for input '{}' of shape {:?}, but the model's input is '{name}' of shape {shape:?}",
                    p.name, p.shape
                ));
            }
            let width: usize = shape.iter().product();
            let scales = (!p.scales.is_empty()).then_some(("scales", p.scales.len()));
            for (what, len) in [("shift", p.shift.len()), ("div", p.div.len())].into_iter().chain(p.fill.as_ref().map(|f| ("fill", f.len()))).chain(scales) {
                if len != width {
                    return Err(format!("the {at}: `{what}` holds {len} values, but the input has {width} per sample"));
                }
            }
            if !p.columns.is_empty() {
                if self.source != SourceKind::Csv || self.window.is_some() {
                    return Err(format!("the {at}: column encoders are for CSV tables, not windows or IDX images"));
                }
                for c in &p.columns {
                    c.check().map_err(|e| format!("the {at}: {e}"))?;
                }
                let names: Vec<&str> = p.columns.iter().map(|c| c.column.as_str()).collect();
                let encoded = p.columns.iter().try_fold(0usize, |a, c| a.checked_add(c.width()));
                if names != p.features.iter().map(String::as_str).collect::<Vec<_>>() || encoded != Some(width) {
                    return Err(format!(
                        "the {at}: its {} column encoder(s) give {} values per sample for feature columns {:?}, but the input takes {width} from {:?}",
                        p.columns.len(),
                        encoded.map_or("too many".to_string(), |w| w.to_string()),
                        names,
                        p.features
                    ));
                }
            } else {
                let features = match (self.source, &self.window) {
                    (SourceKind::Idx, _) => 0,
                    (SourceKind::Csv, Some(_)) => 1,
                    (SourceKind::Csv, None) => width,
                };
                if p.features.len() != features {
                    return Err(format!("the {at}: {} feature column(s), but the input takes {features}", p.features.len()));
                }
            }
            if let Some(k) = p.scales.iter().position(|x| !x.is_finite()) {
                return Err(format!("the {at}: scales[{k}] is {}, not a finite number", p.scales[k]));
            }
            finite(&format!("the {at}: shift"), &p.shift)?;
            finite(&format!("the {at}: div"), &p.div)?;
            if let Some(fill) = &p.fill {
                finite(&format!("the {at}: fill"), fill)?;
            }
            if let Some(k) = p.div.iter().position(|&d| d == 0.0) {
                return Err(format!("the {at}: div[{k}] is 0, a division by zero"));
            }
            // Training keeps fill values for every input once any column fills with the mean.
            let mean = self.missing == Missing::Mean || self.inputs.iter().flat_map(|p| &p.columns).any(|c| c.missing == Missing::Mean);
            if mean != p.fill.is_some() {
                return Err(format!("the {at}: fill values must be given exactly when `missing` is mean"));
            }
        }
        for (p, out) in self.outputs.iter().zip(&io.outputs) {
            let at = format!("preprocessing of output '{}'", p.name);
            let loss = crate::spec::training::canonical_loss(&out.loss);
            if p.name != out.name {
                return Err(format!("its preprocessing is for output '{}', but the model's output is '{}'", p.name, out.name));
            }
            if p.loss != loss {
                return Err(format!("the {at} records loss '{}', but the embedded spec trains it with '{loss}'", p.loss));
            }
            finite(&format!("the {at}: scale, shift and div"), &[p.scale, p.shift, p.div])?;
            if p.scale == 0.0 || p.div == 0.0 {
                return Err(format!("the {at}: a scale or div of 0, a division by zero"));
            }
            let units: usize = out.shape.iter().product();
            let classes = p.classes.as_deref();
            let most = match loss {
                "categorical_crossentropy" | "sparse_categorical_crossentropy" => units,
                "binary_crossentropy" => 2,
                "ctc" => out.shape.last().map_or(0, |c| c.saturating_sub(1)),
                _ if classes.is_some() => return Err(format!("the {at} lists classes, but loss '{loss}' is a regression")),
                _ => continue,
            };
            let Some(c) = classes else { continue };
            if c.len() > most {
                let what = if loss == "ctc" { "tokens (and the ctc blank)" } else { "classes" };
                return Err(format!("the {at} lists {} {what}, more than the output's {} units take", c.len(), out.shape.last().copied().unwrap_or(0)));
            }
            // Class names are sorted (lookups search them); ctc tokens are in
            // numeric order when they are numbers.
            let ordered = if loss == "ctc" { c.iter().enumerate().all(|(i, a)| !c[..i].contains(a)) } else { c.windows(2).all(|w| w[0] < w[1]) };
            if c.is_empty() || !ordered || c.iter().any(String::is_empty) {
                return Err(format!("the {at}: the class list is empty, has an empty or repeated name, or is out of order"));
            }
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A data file of the spec that cannot be opened: worded as every other
    /// read error, with the spec line that named it.
    #[error("cannot read {file} (named at line {line} of the spec): {msg}")]
    Open { file: String, line: usize, msg: String },
    /// Opening or reading failed (or the file is not a regular file).
    #[error(transparent)]
    Read(#[from] crate::io::ReadError),
    /// Reading failed part way.
    #[error("{file}: {msg}")]
    Unreadable { file: String, msg: String },
    #[error("{file}: row {row}, column '{column}': {msg}")]
    Cell { file: String, row: usize, column: String, msg: String },
    #[error("{file}: {msg}")]
    File { file: String, msg: String },
}

impl DataError {
    pub(crate) fn file(file: &str, msg: impl Into<String>) -> Self {
        DataError::File { file: file.to_string(), msg: msg.into() }
    }

    /// The file could not be opened or read (exit code 2), as opposed to a
    /// file whose contents are not acceptable (exit code 1).
    pub fn is_io(&self) -> bool {
        match self {
            DataError::Open { .. } | DataError::Unreadable { .. } => true,
            DataError::Read(e) => e.is_io(),
            DataError::Cell { .. } | DataError::File { .. } => false,
        }
    }
}

/// A classification output whose training split lacks some of its classes.
#[derive(Clone, Debug, PartialEq)]
pub struct MissingClasses {
    pub output: String,
    /// Classes the output has (units; 2 for a one-unit binary output).
    pub expected: usize,
    /// The classes the training split holds (names, or label values).
    pub present: Vec<String>,
    /// The labels that never occur, when the labels are numbers; empty when
    /// the classes are names (the missing names are unknown).
    pub missing: Vec<String>,
}

impl std::fmt::Display for MissingClasses {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let n = self.present.len();
        write!(
            f,
            "output '{}' has {} classes, but the training split holds {} of them ({})",
            self.output,
            self.expected,
            if n == 1 { "only 1".to_string() } else { n.to_string() },
            prep::list(&self.present)
        )?;
        match self.missing.len() {
            0 => Ok(()),
            1 => write!(f, "; label {} never occurs", self.missing[0]),
            _ => write!(f, "; labels {} never occur", prep::list(&self.missing)),
        }
    }
}

impl Prepared {
    /// Classification outputs (crossentropy on one class per sample) whose
    /// training split holds fewer classes than the output has: the model
    /// can't learn the others, and `predict` can only number them.
    pub fn missing_classes(&self, io: &ModelIo) -> Vec<MissingClasses> {
        let mut out = Vec::new();
        for (o, (io_out, p)) in io.outputs.iter().zip(&self.prep.outputs).enumerate() {
            let units: usize = io_out.shape.iter().product();
            let expected = match p.loss.as_str() {
                "categorical_crossentropy" | "sparse_categorical_crossentropy" if io_out.shape.len() == 1 => units,
                "binary_crossentropy" if units == 1 => 2,
                _ => continue,
            };
            let Some(t) = self.train.targets.get(o) else { continue };
            if let Some(classes) = &p.classes {
                if classes.len() < expected {
                    out.push(MissingClasses { output: p.name.clone(), expected, present: classes.clone(), missing: Vec::new() });
                }
                continue;
            }
            let labels: std::collections::BTreeSet<usize> = if p.loss == "categorical_crossentropy" {
                (0..self.train.n).filter_map(|i| t.sample(i).iter().position(|&v| v == 1.0)).collect()
            } else {
                t.data.iter().map(|&v| v as usize).collect()
            };
            if labels.len() < expected {
                let present = labels.iter().map(|l| l.to_string()).collect();
                let missing = (0..expected).filter(|l| !labels.contains(l)).map(|l| l.to_string()).collect();
                out.push(MissingClasses { output: p.name.clone(), expected, present, missing });
            }
        }
        out
    }
}

/// A source file resolved against the spec folder, checked to exist.
pub(crate) struct DataFile {
    pub path: PathBuf,
    /// For messages: the resolved path with `..` folded.
    pub name: String,
}

fn open(spec_dir: &Path, p: &Named) -> Result<DataFile, DataError> {
    use crate::io::ReadError;
    let path = resolve(spec_dir, &p.name);
    let name = path.display().to_string();
    let msg = match crate::io::open_regular(&path) {
        Ok(_) => return Ok(DataFile { path, name }),
        Err(ReadError::Io { source, .. }) => source.to_string(),
        Err(ReadError::NotRegular { kind, .. }) => format!("it is {kind}, not a regular file (copy it to a file first)"),
        Err(e) => e.to_string(),
    };
    Err(DataError::Open { file: name, line: p.pos.line, msg })
}

/// Reads one source into a raw table (features unscaled, NaN = missing).
fn read_source(spec: &DataSpec, src: &SourceSpec, spec_dir: &Path, io: &ModelIo) -> Result<prep::Table, DataError> {
    match src {
        SourceSpec::Csv { path } => csv::read(&open(spec_dir, path)?, spec, io),
        SourceSpec::Idx { images, labels } => {
            let target = spec.target.as_ref().and_then(|t| t.first());
            idx::read_pair(&open(spec_dir, images)?, &open(spec_dir, labels)?, src.csv_labels(), target, io)
        }
    }
}

/// Reads one source as training reads it: missing rows dropped, windows cut.
fn read_table(data: &DataSpec, src: &SourceSpec, spec_dir: &Path, io: &ModelIo) -> Result<prep::Table, DataError> {
    let t = read_source(data, src, spec_dir, io)?;
    let t = if data.missing == Missing::Drop { t.drop_missing() } else { t };
    match &data.window {
        Some(w) => prep::windows(t, w.size),
        None => Ok(t),
    }
}

/// SHA-256 (hex, as `sha256sum` prints it) of every data file the spec
/// names, keyed by the path as the spec gives it: the model file records
/// exactly what it was trained on. Unreadable files are left out; loading
/// reports them.
pub fn file_digests(data: &DataSpec, spec_dir: &Path) -> std::collections::BTreeMap<String, String> {
    use sha2::{Digest, Sha256};
    let sources = std::iter::once(&data.train).chain(&data.validation).chain(&data.test);
    let names = sources.flat_map(|s| match s {
        SourceSpec::Csv { path } => vec![path],
        SourceSpec::Idx { images, labels } => vec![images, labels],
    });
    let mut out = std::collections::BTreeMap::new();
    for n in names {
        // Regular files only: a FIFO would block here.
        let Ok((mut f, _)) = crate::io::open_regular(&resolve(spec_dir, &n.name)) else { continue };
        let mut h = Sha256::new();
        if std::io::copy(&mut f, &mut h).is_ok() {
            out.insert(n.name.clone(), h.finalize().iter().map(|b| format!("{b:02x}")).collect());
        }
    }
    out
}

/// Loads and prepares the data of `spec` for a model with inputs and outputs `io`.
/// `limit` keeps the first N training samples (before any split).
pub fn load(data: &DataSpec, spec_dir: &Path, io: &ModelIo, seed: u64, limit: Option<usize>) -> Result<Prepared, DataError> {
    let read = |src: &SourceSpec| read_table(data, src, spec_dir, io);
    let mut train = read(&data.train)?;
    if let Some(n) = limit {
        train = train.subset(&(0..n.min(train.n)).collect::<Vec<_>>());
    }
    let validation = data.validation.as_ref().map(&read).transpose()?;
    let test = data.test.as_ref().map(&read).transpose()?;
    prep::prepare(data, io, train, validation, test, seed)
}

/// Loads one labelled source (read as `data` describes) and prepares it with
/// a trained model's saved statistics and classes.
/// Also returns, per column, how many values training never saw.
pub fn load_with(data: &DataSpec, src: &SourceSpec, spec_dir: &Path, io: &ModelIo, state: &PrepState) -> Result<(Split, Vec<(String, usize)>), DataError> {
    prep::apply(io, read_table(data, src, spec_dir, io)?, state)
}

/// Builds the model of a spec tree as `validate` and `train` do: the
/// shapes the spec leaves to the data resolved from the training file
/// (`resolve_inputs`, with training's `limit`), then the graph, then the
/// index columns checked against the Embeddings that read them.
pub fn build(
    root: &crate::spec::yaml::Node,
    source: &crate::spec::Source,
    spec_dir: &Path,
    limit: Option<usize>,
    diags: &mut Vec<crate::diag::Diagnostic>,
) -> Option<(crate::spec::Spec, crate::graph::Model)> {
    let mut index_inputs = Vec::new();
    let built = crate::graph::from_root_with(root, source, diags, |spec, d| index_inputs = resolve_inputs(spec, spec_dir, limit, d));
    if let Some((_, model)) = &built {
        check_index_inputs(model, &index_inputs, diags);
    }
    built
}

/// An input the data's columns feed with indices, to check once the graph
/// is built (`check_index_inputs`).
pub struct IndexColumns {
    pub input: usize,
    pub columns: Vec<String>,
    /// Per column, how many distinct indices it gives (reserved ones included).
    pub counts: Vec<usize>,
    pub pos: crate::diag::Pos,
}

/// Fills in the shapes the spec leaves to the data, and checks written
/// shapes against the widths of typed columns: reads the training file's
/// header and fits its columns (validate and train both call this). Does
/// nothing for a spec whose inputs are all written numbers.
pub fn resolve_inputs(spec: &mut crate::spec::Spec, spec_dir: &Path, limit: Option<usize>, diags: &mut Vec<crate::diag::Diagnostic>) -> Vec<IndexColumns> {
    use crate::diag::Diagnostic;
    let Some(data) = &spec.data else { return Vec::new() };
    let inputs = &mut spec.model.inputs;
    let needed = inputs.iter().any(|i| !i.written) || !data.columns.is_empty();
    if !needed || !data.train.is_csv() || data.window.is_some() {
        return Vec::new();
    }
    let SourceSpec::Csv { path } = &data.train else { return Vec::new() };
    // A broken data section (an unknown column type, say) would be read
    // wrongly: its own errors say enough.
    if diags.iter().any(|d| d.is_error() && d.path.starts_with("data")) {
        return Vec::new();
    }
    let unresolved = |why: &str, diags: &mut Vec<Diagnostic>, inputs: &[crate::spec::InputSpec]| {
        let names: Vec<String> = inputs.iter().filter(|i| !i.written).map(|i| format!("'{}'", i.name)).collect();
        if !names.is_empty() {
            diags.push(
                Diagnostic::error(format!("the width of input {} comes from the training data, which {why}", names.join(", ")), path.pos, "data.train")
                    .with_hint("fix the data (the rest of the spec was checked), or write the input's shape"),
            );
        }
    };
    let file = resolve(spec_dir, &path.name);
    if !file.is_file() {
        // check_files says why.
        unresolved("cannot be read", diags, inputs);
        return Vec::new();
    }
    // Each `columns` entry must name a column of the file, at its line.
    match csv::open(&file, &file.display().to_string())
        .and_then(|mut r| r.headers().map(|h| h.iter().map(String::from).collect::<Vec<_>>()).map_err(|e| csv::csv_error(&file.display().to_string(), e)))
    {
        Ok(headers) => {
            let mut bad = false;
            for c in &data.columns {
                if !headers.contains(&c.name.name) {
                    bad = true;
                    let hint = match crate::diag::did_you_mean(&c.name.name, headers.iter().map(String::as_str)) {
                        Some(m) => format!("did you mean '{m}'? The columns are: {}", prep::list(&headers)),
                        None => format!("the columns are: {}", prep::list(&headers)),
                    };
                    diags.push(
                        Diagnostic::error(
                            format!("`data.columns` names column '{}', which {} does not have", c.name.name, file.display()),
                            c.name.pos,
                            format!("data.columns.{}", c.name.name),
                        )
                        .with_hint(hint),
                    );
                }
            }
            if bad {
                return Vec::new();
            }
        }
        Err(e) => {
            unresolved(&format!("cannot be read: {e}"), diags, inputs);
            return Vec::new();
        }
    }
    let seed = spec.training.as_ref().and_then(|t| t.node.get("seed")).and_then(|n| n.as_int()).map_or(0, |s| s.max(0) as u64);
    let names: Vec<String> = inputs.iter().map(|i| i.name.clone()).collect();
    let outputs = data.target.as_ref().map_or(0, Vec::len);
    let widths = match input_widths(data, spec_dir, &names, outputs, seed, limit) {
        Ok(w) => w,
        Err(e) => {
            let msg = e.to_string();
            if inputs.iter().all(|i| i.written) {
                diags.push(Diagnostic::error(format!("the data's columns could not be fitted to check the input widths: {msg}"), path.pos, "data.train"));
            } else {
                unresolved(&format!("cannot be used: {msg}"), diags, inputs);
            }
            return Vec::new();
        }
    };
    // A typed column no input reads is a mistake somewhere (often the target).
    for c in &data.columns {
        if !widths.iter().any(|w| w.columns.contains(&c.name.name)) {
            let target = data.target.iter().flatten().any(|t| t.name == c.name.name);
            let hint = if target {
                "a target's classes come from its values (sorted), whatever its type: remove this entry".to_string()
            } else {
                "add the column to `features` (or `inputs`), or remove this entry".to_string()
            };
            diags.push(
                Diagnostic::warning(
                    format!("column '{}' is typed in `data.columns`, but no input reads it", c.name.name),
                    c.name.pos,
                    format!("data.columns.{}", c.name.name),
                )
                .with_hint(hint),
            );
        }
    }
    let mut pending = Vec::new();
    for (k, (inp, w)) in inputs.iter_mut().zip(widths).enumerate() {
        let width: usize = w.shape.iter().product();
        if width == 0 {
            diags.push(
                Diagnostic::error(format!("input '{}' gets no values from its columns ({})", inp.name, w.origin.join(", ")), inp.pos, inp.path.clone())
                    .with_hint("a column with no vocabulary and `num_oov_indices: 0` encodes to nothing: keep an out-of-vocabulary index"),
            );
            continue;
        }
        if !inp.written {
            inp.shape = w.shape.clone();
        } else if inp.shape.iter().product::<usize>() != width {
            diags.push(
                Diagnostic::error(
                    format!(
                        "input '{}' has shape {:?} ({} values per sample), but its columns give {width}: {}",
                        inp.name,
                        inp.shape,
                        inp.shape.iter().product::<usize>(),
                        w.origin.join(", ")
                    ),
                    inp.pos,
                    inp.path.clone(),
                )
                .with_hint(format!("leave the shape out (the data's columns give it), or write [{width}]")),
            );
        }
        inp.origin = w.origin;
        if let Some(c) = w.index_columns.first().and_then(|c| data.column(c)) {
            pending.push(IndexColumns { input: k, pos: c.pos, columns: w.index_columns, counts: w.index_counts });
        }
    }
    pending
}

/// Checks index columns (`output_mode: int`) against the Embeddings that
/// read their input: a warning when none does, an error when one's
/// `input_dim` is smaller than the indices the vocabulary gives.
pub fn check_index_inputs(model: &crate::graph::Model, pending: &[IndexColumns], diags: &mut Vec<crate::diag::Diagnostic>) {
    use crate::diag::Diagnostic;
    for p in pending {
        let quoted = p.columns.iter().map(|c| format!("'{c}'")).collect::<Vec<_>>().join(", ");
        let embeddings: Vec<&crate::graph::LayerNode> =
            model.layers.iter().filter(|l| l.type_name == "Embedding" && l.inputs.contains(&crate::graph::Src::Input(p.input))).collect();
        if embeddings.is_empty() {
            let (s, s2) = if p.columns.len() == 1 { ("", "s") } else { ("s", "") };
            diags.push(
                Diagnostic::warning(
                    format!(
                        "column{s} {quoted} give{s2} indices (`output_mode: int`), but no Embedding reads input '{}': the indices are used as plain numbers",
                        model.inputs[p.input].name
                    ),
                    p.pos,
                    "data.columns",
                )
                .with_hint("feed the input to an Embedding, or use `output_mode: one_hot` (categories) or `multi_hot` (text)"),
            );
            continue;
        }
        let Some((k, &need)) = p.counts.iter().enumerate().max_by_key(|(_, c)| **c) else { continue };
        for e in embeddings {
            let Some(&dim) = e.weights.first().and_then(|w| w.shape.first()) else { continue };
            if dim < need {
                diags.push(
                    Diagnostic::error(
                        format!(
                            "{} takes indices 0 to {} (`input_dim: {dim}`), but column '{}' gives indices up to {} (its vocabulary and reserved indices)",
                            e.display(),
                            dim - 1,
                            p.columns[k],
                            need - 1
                        ),
                        e.spec.type_pos,
                        e.spec.path.clone(),
                    )
                    .with_hint(format!("set `input_dim: {need}` (or more), or cap the column's vocabulary with `max_tokens: {dim}`")),
                );
            }
        }
    }
}

/// One model input's width as the data's columns give it.
#[derive(Clone, Debug, PartialEq)]
pub struct InputWidth {
    pub name: String,
    pub shape: Vec<usize>,
    /// Per column, where its values come from (`island: 3 + 1 oov (string_categorical)`).
    pub origin: Vec<String>,
    /// The columns that give indices, for the int-mode checks, and how
    /// many distinct indices each gives.
    pub index_columns: Vec<String>,
    pub index_counts: Vec<usize>,
    /// Every column of the input.
    pub columns: Vec<String>,
}

/// The widths of the model's inputs from the training data's columns:
/// reads the training source, splits it as training will (`seed`,
/// `limit`) and fits every column on the training split. `outputs` is the
/// number of model outputs (the targets are only counted here).
pub fn input_widths(
    data: &DataSpec,
    spec_dir: &Path,
    inputs: &[String],
    outputs: usize,
    seed: u64,
    limit: Option<usize>,
) -> Result<Vec<InputWidth>, DataError> {
    let io = ModelIo {
        inputs: inputs.iter().map(|n| (n.clone(), Vec::new())).collect(),
        indices: vec![None; inputs.len()],
        outputs: (0..outputs).map(|o| OutputIo { name: format!("output {o}"), shape: Vec::new(), loss: String::new() }).collect(),
    };
    let mut train = read_table(data, &data.train, spec_dir, &io)?;
    if let Some(n) = limit {
        train = train.subset(&(0..n.min(train.n)).collect::<Vec<_>>());
    }
    let validation = data.validation.as_ref().map(|s| read_table(data, s, spec_dir, &io)).transpose()?;
    let test = data.test.as_ref().map(|s| read_table(data, s, spec_dir, &io)).transpose()?;
    let splits = prep::split(data, train, validation, test, seed)?;
    let preps = prep::fit_columns(data, &splits.train);
    Ok(inputs
        .iter()
        .zip(preps)
        .map(|(name, cols)| {
            let width: usize = cols.iter().map(|c| c.width()).sum();
            InputWidth {
                name: name.clone(),
                shape: vec![width],
                origin: cols.iter().map(|c| c.origin()).collect(),
                index_columns: cols.iter().filter(|c| c.is_index()).map(|c| c.column.clone()).collect(),
                index_counts: cols.iter().filter_map(|c| c.index_count()).collect(),
                columns: cols.iter().map(|c| c.column.clone()).collect(),
            }
        })
        .collect())
}

#[cfg(test)]
pub(crate) mod testutil {
    use super::*;
    use crate::spec::yaml::parse as yaml;

    /// A fresh temp folder for one test.
    pub fn temp_dir(tag: &str) -> PathBuf {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let d = std::env::temp_dir().join(format!("nnrun-data-{}-{tag}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    pub fn spec(src: &str) -> DataSpec {
        let mut d = Vec::new();
        let s = crate::spec::data::parse(&yaml(src).unwrap(), &mut d);
        assert!(d.is_empty(), "{d:?}");
        s.unwrap()
    }

    pub fn io(inputs: &[(&str, &[usize])], outputs: &[(&str, &[usize], &str)]) -> ModelIo {
        ModelIo {
            inputs: inputs.iter().map(|(n, s)| (n.to_string(), s.to_vec())).collect(),
            indices: vec![None; inputs.len()],
            outputs: outputs.iter().map(|(n, s, l)| OutputIo { name: n.to_string(), shape: s.to_vec(), loss: l.to_string() }).collect(),
        }
    }

    /// Loads `src` (a `data` section) relative to `dir`.
    pub fn load_in(dir: &Path, src: &str, io: &ModelIo) -> Result<Prepared, DataError> {
        load(&spec(src), dir, io, 7, None)
    }

    pub fn err(r: Result<Prepared, DataError>) -> String {
        r.expect_err("expected an error").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;
    use crate::spec::data::SourceSpec;

    fn repo() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn missing_file_names_the_spec_line_and_path() {
        let e = err(load_in(Path::new("specs"), "train: ../nope.csv\ntarget: y\n", &io(&[("input", &[1])], &[("o", &[1], "mean_squared_error")])));
        assert_eq!(e, "cannot read nope.csv (named at line 1 of the spec): No such file or directory (os error 2)");
    }

    #[test]
    fn mnist_idx_train_reshaped() {
        let t = std::time::Instant::now();
        let src = "train: {images: data/mnist/train-images-idx3-ubyte.gz, labels: data/mnist/train-labels-idx1-ubyte.gz}\n\
                   test: {images: data/mnist/t10k-images-idx3-ubyte.gz, labels: data/mnist/t10k-labels-idx1-ubyte.gz}\n\
                   validation_split: 0.1\nscale: 1/255\n";
        let p = load_in(repo(), src, &io(&[("input", &[28, 28, 1])], &[("out", &[10], "sparse_categorical_crossentropy")])).unwrap();
        assert_eq!((p.train.n, p.validation.as_ref().unwrap().n, p.test.as_ref().unwrap().n), (7200, 800, 2000));
        assert_eq!(p.train.inputs[0].shape, vec![28, 28, 1]);
        assert_eq!(p.train.inputs[0].data.len(), 7200 * 784);
        assert_eq!(p.train.targets[0].shape, vec![1]);
        let max = p.train.inputs[0].data.iter().cloned().fold(0.0f32, f32::max);
        assert!((max - 1.0).abs() < 1e-6);
        assert_eq!(p.prep.source, SourceKind::Idx);
        assert!(t.elapsed().as_secs_f32() < 5.0, "{:?}", t.elapsed());
        // The same files as flat vectors, one-hot.
        let p = load_in(repo(), src, &io(&[("input", &[784])], &[("out", &[10], "categorical_crossentropy")])).unwrap();
        assert_eq!(p.train.targets[0].shape, vec![10]);
        assert_eq!(p.train.targets[0].sample(0).iter().sum::<f32>(), 1.0);
    }

    /// A saved state is checked against the model before it prepares anything.
    #[test]
    fn saved_preprocessing_must_fit_the_model() {
        let src = "train: data/tabular/iris_named.csv\ntarget: species\nnormalize: standard\n";
        let model = io(&[("input", &[4])], &[("out", &[3], "categorical_crossentropy")]);
        let good = load_in(repo(), src, &model).unwrap().prep;
        assert_eq!(good.check(&model), Ok(()));
        let check = |edit: &dyn Fn(&mut PrepState)| {
            let mut p = good.clone();
            edit(&mut p);
            p.check(&model).unwrap_err()
        };
        assert_eq!(check(&|p| p.inputs[0].div.truncate(3)), "the preprocessing of input 'input': `div` holds 3 values, but the input has 4 per sample");
        assert_eq!(check(&|p| p.inputs.clear()), "its preprocessing describes 0 input(s) () but the model has 1 ('input')");
        assert_eq!(check(&|p| p.outputs.clear()), "its preprocessing describes 0 output(s) () but the model has 1 ('out')");
        assert_eq!(check(&|p| p.inputs[0].shift[2] = f32::NAN), "the preprocessing of input 'input': shift[2] is NaN, not a finite number");
        assert_eq!(check(&|p| p.inputs[0].div[1] = 0.0), "the preprocessing of input 'input': div[1] is 0, a division by zero");
        assert_eq!(check(&|p| p.inputs[0].features.pop().map_or((), drop)), "the preprocessing of input 'input': 3 feature column(s), but the input takes 4");
        assert_eq!(check(&|p| p.inputs[0].name = "x".into()), "its preprocessing is for input 'x' of shape [4], but the model's input is 'input' of shape [4]");
        assert_eq!(
            check(&|p| p.inputs[0].fill = Some(vec![0.0; 4])),
            "the preprocessing of input 'input': fill values must be given exactly when `missing` is mean"
        );
        assert_eq!(check(&|p| p.scale = 0.0), "its preprocessing has scale 0; it must be a positive number");
        assert_eq!(
            check(&|p| p.outputs[0].loss = "mean_squared_error".into()),
            "the preprocessing of output 'out' records loss 'mean_squared_error', but the embedded spec trains it with 'categorical_crossentropy'"
        );
        assert_eq!(
            check(&|p| p.outputs[0].classes.as_mut().unwrap().push("zebra".into())),
            "the preprocessing of output 'out' lists 4 classes, more than the output's 3 units take"
        );
        assert_eq!(
            check(&|p| p.outputs[0].classes.as_mut().unwrap().swap(0, 1)),
            "the preprocessing of output 'out': the class list is empty, has an empty or repeated name, or is out of order"
        );
        assert_eq!(check(&|p| p.outputs[0].div = 0.0), "the preprocessing of output 'out': a scale or div of 0, a division by zero");
        assert!(check(&|p| p.window = Some(WindowPrep { column: "x".into(), size: 4 })).contains("reads windows of 4 values of column 'x'"));
        assert_eq!(check(&|p| p.source = SourceKind::Idx), "the preprocessing of input 'input': 4 feature column(s), but the input takes 0");
        // Numeric regressions have no classes; ctc leaves one class for the blank.
        let reg = io(&[("input", &[4])], &[("out", &[3], "mse")]);
        let mut p = good.clone();
        p.outputs[0].loss = "mean_squared_error".into();
        assert_eq!(p.check(&reg).unwrap_err(), "the preprocessing of output 'out' lists classes, but loss 'mean_squared_error' is a regression");
        let ctc = io(&[("input", &[4])], &[("out", &[5, 3], "ctc")]);
        p.outputs[0].loss = "ctc".into();
        assert_eq!(p.check(&ctc).unwrap_err(), "the preprocessing of output 'out' lists 3 tokens (and the ctc blank), more than the output's 3 units take");
        p.outputs[0].classes.as_mut().unwrap().pop();
        assert_eq!(p.check(&ctc), Ok(()));
    }

    #[test]
    fn classes_the_training_split_lacks() {
        let d = testutil::temp_dir("classes");
        std::fs::write(d.join("s.csv"), "x,s,n\n1,a,0\n2,a,2\n3,b,0\n").unwrap();
        let named = io(&[("input", &[1])], &[("out", &[3], "sparse_categorical_crossentropy")]);
        let p = load_in(&d, "train: s.csv\ntarget: s\nfeatures: x\n", &named).unwrap();
        let m = p.missing_classes(&named);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].to_string(), "output 'out' has 3 classes, but the training split holds 2 of them (a, b)");
        assert_eq!(p.prep.class_names(0, 3), ["a", "b", "unseen_2"]);
        for loss in ["sparse_categorical_crossentropy", "categorical_crossentropy"] {
            let numbered = io(&[("input", &[1])], &[("out", &[3], loss)]);
            let p = load_in(&d, "train: s.csv\ntarget: n\nfeatures: x\n", &numbered).unwrap();
            assert_eq!(
                p.missing_classes(&numbered)[0].to_string(),
                "output 'out' has 3 classes, but the training split holds 2 of them (0, 2); label 1 never occurs"
            );
            assert_eq!(p.prep.class_names(0, 3), ["0", "1", "2"]);
        }
        std::fs::write(d.join("one.csv"), "x,s\n1,a\n2,a\n").unwrap();
        let binary = io(&[("input", &[1])], &[("out", &[1], "binary_crossentropy")]);
        let p = load_in(&d, "train: one.csv\ntarget: s\n", &binary).unwrap();
        assert_eq!(p.missing_classes(&binary)[0].to_string(), "output 'out' has 2 classes, but the training split holds only 1 of them (a)");
        // A class of the data named like a placeholder keeps its name.
        let mut prep = p.prep.clone();
        prep.outputs[0].classes = Some(vec!["unseen_1".into()]);
        assert_eq!(prep.class_names(0, 2), ["unseen_1", "_unseen_1"]);
        // Every class present, or a regression: nothing to say.
        let p = load_in(&d, "train: s.csv\ntarget: s\nfeatures: x\n", &io(&[("input", &[1])], &[("out", &[2], "categorical_crossentropy")])).unwrap();
        assert!(p.missing_classes(&io(&[("input", &[1])], &[("out", &[2], "categorical_crossentropy")])).is_empty());
        let reg = io(&[("input", &[1])], &[("out", &[1], "mse")]);
        assert!(load_in(&d, "train: s.csv\ntarget: n\nfeatures: x\n", &reg).unwrap().missing_classes(&reg).is_empty());
    }

    #[test]
    fn embedding_inputs_must_be_indices() {
        let d = testutil::temp_dir("emb");
        std::fs::write(d.join("t.csv"), "w1,w2,y\n1,2,0\n3,2.5,1\n").unwrap();
        let mut model = io(&[("tokens", &[2])], &[("out", &[1], "binary_crossentropy")]);
        model.indices[0] = Some(IndexInput { layer: "embedding".into(), input_dim: 4 });
        let e = err(load_in(&d, "train: t.csv\ntarget: y\n", &model));
        let f = d.join("t.csv").display().to_string();
        assert_eq!(
            e,
            format!("{f}: row 3, column 'w2': 2.5 is not an index for Embedding 'embedding' (which reads input 'tokens'): it takes integers from 0 to 3")
        );
        std::fs::write(d.join("t.csv"), "w1,w2,y\n1,2,0\n3,4,1\n").unwrap();
        assert!(err(load_in(&d, "train: t.csv\ntarget: y\n", &model)).contains("row 3, column 'w2': 4 is not an index"));
        std::fs::write(d.join("t.csv"), "w1,w2,y\n1,2,0\n3,0,1\n").unwrap();
        let e = err(load_in(&d, "train: t.csv\ntarget: y\nscale: 0.5\n", &model));
        assert!(e.ends_with("row 2, column 'w1': 0.5 is not an index for Embedding 'embedding' (which reads input 'tokens'): it takes integers from 0 to 3 (this is the value after the data's `scale` and `normalize`; leave both out for an Embedding's input)"), "{e}");
        let p = load_in(&d, "train: t.csv\ntarget: y\n", &model).unwrap();
        assert_eq!(p.train.inputs[0].data, [1., 2., 3., 0.]);
        // Data prepared with saved statistics is checked too.
        std::fs::write(d.join("e.csv"), "w1,w2,y\n-1,2,0\n").unwrap();
        let spec = spec("train: t.csv\ntarget: y\n");
        let src = SourceSpec::Csv { path: Named { name: "e.csv".into(), pos: Default::default() } };
        let e = load_with(&spec, &src, &d, &model, &p.prep).unwrap_err().to_string();
        assert!(
            e.ends_with("e.csv: row 2, column 'w1': -1 is not an index for Embedding 'embedding' (which reads input 'tokens'): it takes integers from 0 to 3"),
            "{e}"
        );
    }

    #[test]
    fn io_errors_are_told_apart_from_bad_contents() {
        let model = io(&[("input", &[1])], &[("o", &[1], "mean_squared_error")]);
        let missing = load_in(Path::new("specs"), "train: ../nope.csv\ntarget: y\n", &model).unwrap_err();
        assert!(missing.is_io());
        let d = testutil::temp_dir("isio");
        std::fs::write(d.join("bad.csv"), "x,y\n1\n").unwrap();
        assert!(!load_in(&d, "train: bad.csv\ntarget: y\n", &model).unwrap_err().is_io());
        let dev = load_in(Path::new("/dev"), "train: zero\ntarget: y\n", &model).unwrap_err();
        assert_eq!(
            dev.to_string(),
            "cannot read /dev/zero (named at line 1 of the spec): it is a character device, not a regular file (copy it to a file first)"
        );
        assert!(dev.is_io());
        // A line without end stops at the limit, as bad contents.
        let e = csv::open(Path::new("/dev/zero"), "/dev/zero").err().unwrap();
        assert_eq!(e.to_string(), "cannot read /dev/zero: it is a character device, not a regular file (copy it to a file first)");
    }

    #[test]
    fn prep_state_round_trips_through_json() {
        let src = "train: data/tabular/iris_named.csv\ntarget: species\nnormalize: standard\ntest_split: 0.2\n";
        let p = load_in(repo(), src, &io(&[("input", &[4])], &[("out", &[3], "categorical_crossentropy")])).unwrap();
        let json = serde_json::to_string(&p.prep).unwrap();
        let back: PrepState = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p.prep);
        assert_eq!(p.prep.outputs[0].classes.as_deref().unwrap(), ["setosa", "versicolor", "virginica"]);
        assert_eq!((p.train.n, p.test.unwrap().n), (120, 30));
    }
}
