//! Training data: reads the sources of a `data` section (CSV or IDX), then
//! splits, fills, scales, normalizes and encodes them into plain arrays in
//! the layout the model expects.

pub mod csv;
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
    pub outputs: Vec<OutputIo>,
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
            *x = (*x * self.scale - p.shift[j]) / p.div[j];
        }
    }

    /// Maps predictions of output `o` back to the units of the data.
    pub fn restore_target(&self, o: usize, data: &mut [f32]) {
        let p = &self.outputs[o];
        for y in data {
            *y = (*y * p.div + p.shift) / p.scale;
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{file}: {msg} (named at line {line} of the spec; paths are relative to the spec file's folder)")]
    Open { file: String, line: usize, msg: String },
    #[error("{file}: row {row}, column '{column}': {msg}")]
    Cell { file: String, row: usize, column: String, msg: String },
    #[error("{file}: {msg}")]
    File { file: String, msg: String },
}

impl DataError {
    pub(crate) fn file(file: &str, msg: impl Into<String>) -> Self {
        DataError::File { file: file.to_string(), msg: msg.into() }
    }
}

/// A source file resolved against the spec folder, checked to exist.
pub(crate) struct DataFile {
    pub path: PathBuf,
    /// For messages: the resolved path with `..` folded.
    pub name: String,
}

fn open(spec_dir: &Path, p: &Named) -> Result<DataFile, DataError> {
    let path = resolve(spec_dir, &p.name);
    let name = path.display().to_string();
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() => Ok(DataFile { path, name }),
        Ok(_) => Err(DataError::Open { file: name, line: p.pos.line, msg: "is not a file".into() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(DataError::Open { file: name, line: p.pos.line, msg: "no such file".into() }),
        Err(e) => Err(DataError::Open { file: name, line: p.pos.line, msg: e.to_string() }),
    }
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
        let Ok(mut f) = std::fs::File::open(resolve(spec_dir, &n.name)) else { continue };
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
pub fn load_with(data: &DataSpec, src: &SourceSpec, spec_dir: &Path, io: &ModelIo, state: &PrepState) -> Result<Split, DataError> {
    prep::apply(io, read_table(data, src, spec_dir, io)?, state)
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

    fn repo() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn missing_file_names_the_spec_line_and_path() {
        let e = err(load_in(Path::new("specs"), "train: ../nope.csv\ntarget: y\n", &io(&[("input", &[1])], &[("o", &[1], "mean_squared_error")])));
        assert_eq!(e, "nope.csv: no such file (named at line 1 of the spec; paths are relative to the spec file's folder)");
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
