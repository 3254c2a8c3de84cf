//! `nnrun predict`: run a trained model on new CSV or IDX data with the
//! model's own preprocessing, and write one CSV row of predictions per sample.
//!
//! CSV input is streamed a batch at a time; an IDX file is read whole (as
//! training reads it). `--output` is written to a temp file beside it and
//! renamed over it only once every row is written.

use super::CliError;
use crate::artifact::{self, Restored};
use crate::data::{self, DataError, PrepState, SourceKind};
use crate::layers::Ctx;
use crate::spec::data::Missing;
use candle_core::Tensor;
use rand::SeedableRng;
use std::fmt::Display;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The trained model file (runs/<name>/model.safetensors)
    #[arg(value_name = "MODEL")]
    pub model: PathBuf,
    /// New samples: a CSV with the model's feature columns (others are
    /// ignored), or an IDX images file (raw or gzip) for a model trained on IDX
    #[arg(long, value_name = "FILE")]
    pub input: PathBuf,
    /// Write the predictions to FILE (replaced once complete) instead of stdout
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Samples per forward pass
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub batch_size: usize,
    /// ctc outputs: decode with a prefix beam search of this width
    /// (default 1: greedy best path)
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub beam_width: usize,
    /// Where to compute: cpu, or cuda (a build with `--features cuda`)
    #[arg(long, value_enum, default_value_t = super::DeviceArg::Cpu)]
    pub device: super::DeviceArg,
}

/// Why predicting stopped: an error, or stdout's reader went away.
enum Fail {
    Error(CliError),
    /// A closed pipe (`| head`): nobody wants more rows, which is no error.
    Closed,
}

impl From<CliError> for Fail {
    fn from(e: CliError) -> Self {
        Fail::Error(e)
    }
}

fn invalid(msg: impl Display) -> Fail {
    Fail::Error(CliError::invalid(msg.to_string()))
}

pub fn run(args: &Args) -> Result<(), CliError> {
    match predict(args) {
        Ok(()) | Err(Fail::Closed) => Ok(()),
        Err(Fail::Error(e)) => Err(e),
    }
}

fn predict(args: &Args) -> Result<(), Fail> {
    let device = args.device.open()?;
    let r = artifact::restore(&args.model, &device).map_err(CliError::from)?;
    // The forward pass (and the drop of its graph) recurses along the model's depth.
    let stack = super::model_stack(&r.net.graph, &format!("the model in {}", r.file.file))?;
    super::check_inference_memory(&r.net, args.batch_size, "predicting")?;
    super::on_stack(stack, || predict_with(args, &r))
}

fn predict_with(args: &Args, r: &Restored) -> Result<(), Fail> {
    let prep = &r.prep;
    let shapes: Vec<Vec<usize>> = r.net.graph.inputs.iter().map(|i| i.shape.clone()).collect();
    let file = args.input.display().to_string();
    // Regular files only: a FIFO would block, a device never end.
    if let Err(e) = crate::io::open_regular(&args.input) {
        return Err(CliError::from(e).into());
    }
    let mut reader = match (prep.source, &prep.window) {
        (SourceKind::Csv, Some(w)) => Reader::window(&args.input, file, w, prep)?,
        (SourceKind::Csv, None) => Reader::csv(&args.input, file, prep)?,
        (SourceKind::Idx, _) => Reader::idx(&args.input, file, r)?,
    };
    let blocks = blocks(r, args.beam_width)?;
    let mut out = Out::open(args.output.as_deref())?;
    // A window's forecast belongs to no input row: say which line it follows.
    let windowed = matches!(reader, Reader::Window { .. });
    let line_col = windowed.then(|| "line".to_string());
    out.row(line_col.into_iter().chain(blocks.iter().flat_map(|b| b.header.iter().cloned())))?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let model_err = |e: candle_core::Error| invalid(format!("{}: running the model: {e}", r.file.file));
    let mut done = 0;
    loop {
        let (n, raw) = reader.batch(args.batch_size)?;
        if n == 0 {
            break;
        }
        let mut xs = Vec::with_capacity(raw.len());
        for (i, mut v) in raw.into_iter().enumerate() {
            prep.apply_input(i, &mut v);
            // An Embedding's input: indices it has, or an error at the row and column.
            if let Some(ix) = r.io.indices[i].as_ref()
                && let Some((k, value)) = ix.first_bad(&v)
            {
                let w = v.len() / n;
                let msg = ix.message(&r.io.inputs[i].0, value, prep.transforms_input(i));
                return Err(invalid(reader.at(done + k / w, k / w, i, k % w, msg)));
            }
            let dims: Vec<usize> = std::iter::once(n).chain(shapes[i].iter().copied()).collect();
            xs.push(Tensor::from_vec(v, dims, &r.net.device).map_err(model_err)?);
        }
        let ys = r.net.forward(&xs, &mut Ctx { train: false, rng: &mut rng, logits: false, grads: None, part: None }, &[]).map_err(model_err)?;
        let mut ys: Vec<Vec<f32>> = ys.iter().map(|y| y.flatten_all().and_then(|y| y.to_vec1::<f32>())).collect::<Result<_, _>>().map_err(model_err)?;
        for s in 0..n {
            let mut row = Vec::new();
            if let Reader::Window { lines, .. } = &reader {
                row.push(lines[s].to_string());
            }
            for b in &blocks {
                b.cells(prep, &mut ys[b.o][s * b.units..(s + 1) * b.units], &mut row);
            }
            out.row(row)?;
        }
        done += n;
    }
    if let Reader::Csv { cols, unseen, file, .. } = &reader {
        let counts: Vec<(String, usize)> =
            cols.iter().zip(unseen).flat_map(|(cs, u)| cs.iter().zip(u).filter(|(_, n)| **n > 0).map(|((_, c), n)| (c.prep().column.clone(), *n))).collect();
        super::report_unseen(file, &counts);
    }
    out.finish()
}

/// Raw samples, a batch at a time: per model input, `n * width` values.
enum Reader {
    Csv {
        rdr: data::csv::CsvReader,
        file: String,
        headers: Vec<String>,
        /// Per input, per column: its header index and encoder (built once).
        cols: Vec<Vec<(usize, data::columns::Coder)>>,
        markers: Vec<String>,
        /// Per input, per column: values never seen in training.
        unseen: Vec<Vec<usize>>,
        /// The file line of each sample of the last batch.
        lines: Vec<usize>,
    },
    Idx {
        stream: data::idx::Stream<Box<dyn std::io::Read>>,
    },
    /// Sliding windows over one column; `lines` holds each window's last line.
    Window {
        rdr: data::csv::CsvReader,
        file: String,
        column: String,
        col: usize,
        missing: Missing,
        size: usize,
        recent: std::collections::VecDeque<f32>,
        lines: Vec<usize>,
    },
}

fn csv_fail(file: &str, e: csv::Error) -> Fail {
    data_fail(data::csv::csv_error(file, e))
}

fn data_fail(e: DataError) -> Fail {
    Fail::Error(CliError::from(e))
}

fn list(items: &[String]) -> String {
    if items.len() <= 12 { items.join(", ") } else { format!("{}, ... ({} in all)", items[..10].join(", "), items.len()) }
}

impl Reader {
    fn csv(path: &Path, file: String, prep: &PrepState) -> Result<Reader, Fail> {
        let mut rdr = data::csv::open(path, &file).map_err(data_fail)?;
        let headers: Vec<String> = rdr.headers().map_err(|e| csv_fail(&file, e))?.iter().map(String::from).collect();
        let (mut cols, mut missing) = (Vec::new(), Vec::new());
        for p in &prep.inputs {
            let mut c = Vec::new();
            for enc in p.encoders(prep) {
                match headers.iter().position(|h| *h == enc.column) {
                    Some(i) => c.push((i, enc.coder())),
                    None if !missing.contains(&enc.column) => missing.push(enc.column.clone()),
                    None => {}
                }
            }
            cols.push(c);
        }
        if !missing.is_empty() {
            let quoted: Vec<String> = missing.iter().map(|m| format!("'{m}'")).collect();
            let header_hint = if headers.iter().all(|h| h.parse::<f64>().is_ok()) { " (line 1 should be a header row with column names)" } else { "" };
            return Err(invalid(format!(
                "{file}: missing column{} {} that the model takes as features{header_hint}; the file's columns are: {}",
                if missing.len() == 1 { "" } else { "s" },
                list(&quoted),
                list(&headers)
            )));
        }
        let unseen = cols.iter().map(|c| vec![0; c.len()]).collect();
        Ok(Reader::Csv { rdr, file, headers, cols, markers: prep.missing_values.clone(), unseen, lines: Vec::new() })
    }

    fn window(path: &Path, file: String, w: &data::WindowPrep, prep: &PrepState) -> Result<Reader, Fail> {
        let mut rdr = data::csv::open(path, &file).map_err(data_fail)?;
        let headers: Vec<String> = rdr.headers().map_err(|e| csv_fail(&file, e))?.iter().map(String::from).collect();
        let Some(col) = headers.iter().position(|h| *h == w.column) else {
            return Err(invalid(format!("{file}: no column '{}', the series the model was trained on; the file's columns are: {}", w.column, list(&headers))));
        };
        Ok(Reader::Window { rdr, file, column: w.column.clone(), col, missing: prep.missing, size: w.size, recent: Default::default(), lines: Vec::new() })
    }

    fn idx(path: &Path, file: String, r: &Restored) -> Result<Reader, Fail> {
        let [input] = &r.net.graph.inputs[..] else {
            return Err(invalid(format!("{}: IDX input for a model with several inputs is not supported", r.file.file)));
        };
        let x = data::idx::open(path, &file).map_err(data_fail)?;
        let (width, want) = (x.width, input.shape.iter().product::<usize>());
        if width != want {
            return Err(invalid(format!(
                "{file}: samples have shape {:?} ({width} values) but the model's input '{}' has shape {:?} ({want} values); give images like those it was trained on",
                &x.dims[1..],
                input.name,
                input.shape
            )));
        }
        Ok(Reader::Idx { stream: x })
    }

    fn batch(&mut self, max: usize) -> Result<(usize, Vec<Vec<f32>>), Fail> {
        match self {
            Reader::Csv { rdr, file, headers, cols, markers, unseen, lines } => {
                let widths: Vec<usize> = cols.iter().map(|c| c.iter().map(|(_, c)| c.width()).sum()).collect();
                let mut out: Vec<Vec<f32>> = widths.iter().map(|&w| Vec::with_capacity(w * max.min(1024))).collect();
                let mut rec = csv::StringRecord::new();
                let mut n = 0;
                lines.clear();
                while n < max && rdr.read_record(&mut rec).map_err(|e| csv_fail(file, e))? {
                    let row = rec.position().map_or(0, |p| p.line() as usize);
                    let at = |c: usize, msg: String| {
                        invalid(DataError::Cell { file: file.clone(), row, column: headers[c].clone(), msg: msg.replace("{column}", &headers[c]) })
                    };
                    for (i, (cs, o)) in cols.iter().zip(&mut out).enumerate() {
                        for (k, (c, coder)) in cs.iter().enumerate() {
                            let (s, p) = (&rec[*c], coder.prep());
                            let read = data::columns::read_cell(s, p.cell_type(), markers).map_err(|m| at(*c, m))?;
                            // As in training: the mean (NaN, filled by apply_input) or the out-of-vocabulary slot.
                            if matches!(read, data::columns::Read::Missing) && p.missing != Missing::Mean {
                                let what = if s.is_empty() { "the value is empty".to_string() } else { format!("'{s}' is a missing value") };
                                return Err(at(*c, format!("{what} (the model fills missing values only when trained with `missing: mean`)")));
                            }
                            let start = o.len();
                            o.resize(start + coder.width(), 0.0);
                            let new = coder.encode(read.cell(p.cell_type()), &mut o[start..]).map_err(|m| at(*c, m))?;
                            unseen[i][k] += new as usize;
                        }
                    }
                    lines.push(row);
                    n += 1;
                }
                Ok((n, out))
            }
            Reader::Window { rdr, file, column, col, missing, size, recent, lines } => {
                let (mut out, mut n) = (Vec::new(), 0);
                lines.clear();
                let mut rec = csv::StringRecord::new();
                while n < max && rdr.read_record(&mut rec).map_err(|e| csv_fail(file, e))? {
                    let line = rec.position().map_or(0, |p| p.line() as usize);
                    let s = &rec[*col];
                    let cell =
                        data::csv::parse_cell(s).map_err(|msg| invalid(DataError::Cell { file: file.clone(), row: line, column: column.clone(), msg }))?;
                    let x = match cell {
                        Some(x) => x,
                        // As in training: filled with the mean later, or the row left out.
                        None if *missing == Missing::Mean => f32::NAN,
                        None if *missing == Missing::Drop => continue,
                        None => {
                            let what = if s.is_empty() { "the value is empty".to_string() } else { format!("'{s}' is not a number") };
                            let msg = format!("{what} (the model fills missing values only when trained with `missing: mean`)");
                            return Err(invalid(DataError::Cell { file: file.clone(), row: line, column: column.clone(), msg }));
                        }
                    };
                    if recent.len() == *size {
                        recent.pop_front();
                    }
                    recent.push_back(x);
                    if recent.len() == *size {
                        out.extend(recent.iter().copied());
                        lines.push(line);
                        n += 1;
                    }
                }
                if n == 0 && recent.len() < *size {
                    return Err(invalid(format!(
                        "{file}: {} values of column '{column}' make no window; the model forecasts from {size} consecutive values",
                        recent.len()
                    )));
                }
                Ok((n, vec![out]))
            }
            Reader::Idx { stream } => {
                let (n, v) = stream.next(max).map_err(data_fail)?;
                if n == 0 {
                    stream.finish().map_err(data_fail)?;
                }
                Ok((n, vec![v]))
            }
        }
    }

    /// Where sample `s` of the last batch (sample `index` of the file) was
    /// read, with `msg` about position `k` of input `i`.
    fn at(&self, index: usize, s: usize, i: usize, k: usize, msg: String) -> DataError {
        match self {
            Reader::Csv { file, headers, cols, lines, .. } => {
                let preps: Vec<data::columns::ColumnPrep> = cols[i].iter().map(|(_, c)| c.prep().clone()).collect();
                let names: Vec<String> = cols[i].iter().map(|&(c, _)| headers[c].clone()).collect();
                let column = data::prep::slot_column(&names, &preps, k).to_string();
                DataError::Cell { file: file.clone(), row: lines[s], column, msg }
            }
            Reader::Window { file, column, lines, .. } => DataError::Cell { file: file.clone(), row: lines[s], column: column.clone(), msg },
            Reader::Idx { stream } => DataError::File { file: stream.file().to_string(), msg: format!("record {index}: {msg}") },
        }
    }
}

/// How one output's values become columns.
enum Kind {
    /// Softmax classes: the predicted name, then one probability per class.
    Classes(Vec<String>),
    /// Sigmoid units: per unit the predicted class (names of 0 and 1), then p(1).
    Binary([String; 2]),
    /// Regression: the values in the target's units.
    Values,
    /// ctc: the decoded tokens, space-separated, as the labels were written.
    Sequence { tokens: Vec<String>, classes: usize, blank: usize, beam: usize, probs: bool },
}

struct Block {
    o: usize,
    units: usize,
    kind: Kind,
    header: Vec<String>,
}

/// One block of columns per output; names are prefixed by the output's
/// name only when there are several outputs.
fn blocks(r: &Restored, beam: usize) -> Result<Vec<Block>, Fail> {
    let single = r.prep.outputs.len() == 1;
    let g = &r.net.graph;
    // The blank of a ctc output is in the training section.
    let ctc = r.prep.outputs.iter().any(|p| p.loss == "ctc");
    let losses = if ctc {
        let cfg = crate::train::config::read(&r.spec, g, &mut Vec::new());
        cfg.ok_or_else(|| invalid(format!("{}: the embedded training section is invalid", r.file.file)))?.losses
    } else {
        Vec::new()
    };
    let activations = r.net.output_activations();
    Ok(r.prep
        .outputs
        .iter()
        .enumerate()
        .map(|(o, p)| {
            let units = g.layers[g.outputs[o]].output_shape.as_ref().map_or(1, |s| s.iter().product());
            // Names for every unit, also those no training sample had.
            let names = r.prep.class_names(o, units.max(2));
            let name = |k: usize| names[k].clone();
            let (kind, label) = match (p.loss.as_str(), losses.get(o)) {
                ("ctc", Some(&crate::train::losses::Loss::Ctc { classes, blank, .. })) => {
                    let tokens = p.classes.clone().unwrap_or_default();
                    let probs = activations[o] == Some(crate::layers::Activation::Softmax);
                    (Kind::Sequence { tokens, classes, blank, beam, probs }, "sequence")
                }
                ("categorical_crossentropy" | "sparse_categorical_crossentropy", _) => (Kind::Classes((0..units).map(name).collect()), "class"),
                ("binary_crossentropy", _) => (Kind::Binary([name(0), name(1)]), "class"),
                _ => (Kind::Values, "prediction"),
            };
            let (base, pre) = if single { (label.to_string(), String::new()) } else { (p.name.clone(), format!("{}_", p.name)) };
            let numbered = |b: &str| -> Vec<String> { if units == 1 { vec![b.to_string()] } else { (0..units).map(|k| format!("{b}_{k}")).collect() } };
            let header = match &kind {
                Kind::Classes(names) => std::iter::once(base).chain(names.iter().map(|n| format!("{pre}p_{n}"))).collect(),
                Kind::Binary(names) if units == 1 => vec![base, format!("{pre}p_{}", names[1])],
                Kind::Binary(_) => numbered(&base).into_iter().chain(numbered(&format!("{pre}p"))).collect(),
                Kind::Values => numbered(&base),
                Kind::Sequence { .. } => vec![base],
            };
            Block { o, units, kind, header }
        })
        .collect())
}

impl Block {
    /// Appends this output's cells for one sample's values `y`.
    fn cells(&self, prep: &PrepState, y: &mut [f32], row: &mut Vec<String>) {
        match &self.kind {
            Kind::Classes(names) => {
                let best = y.iter().enumerate().fold(0, |b, (k, v)| if *v > y[b] { k } else { b });
                row.push(names[best].clone());
                row.extend(y.iter().map(|&v| num(v)));
            }
            Kind::Binary(names) => {
                row.extend(y.iter().map(|&p| names[(p >= 0.5) as usize].clone()));
                row.extend(y.iter().map(|&v| num(v)));
            }
            Kind::Sequence { tokens, classes, blank, beam, probs } => {
                let decoded = crate::train::ctc::decode(y, *classes, *blank, *beam, *probs);
                row.push(decoded.iter().map(|&k| tokens.get(k).map_or("?", String::as_str)).collect::<Vec<_>>().join(" "));
            }
            Kind::Values => {
                prep.restore_target(self.o, y);
                row.extend(y.iter().map(|&v| num(v)));
            }
        }
    }
}

/// Shortest round-trip text; exponent form for tiny values, which plain
/// notation would spell with dozens of zeros.
fn num(v: f32) -> String {
    if v != 0.0 && v.abs() < 1e-4 { format!("{v:e}") } else { v.to_string() }
}

/// Where rows go: stdout, or a temp file renamed over the destination by
/// `finish`, so an error never leaves a half-written file there.
struct Out {
    w: Option<csv::Writer<Box<dyn Write>>>,
    /// (temp file, destination) for --output.
    file: Option<(PathBuf, PathBuf)>,
}

impl Out {
    fn open(dest: Option<&Path>) -> Result<Out, Fail> {
        let Some(dest) = dest else {
            return Ok(Out { w: Some(csv::Writer::from_writer(Box::new(std::io::stdout()))), file: None });
        };
        let dir = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let f = std::fs::File::create(&tmp).map_err(|e| CliError::write(dest, e))?;
        Ok(Out { w: Some(csv::Writer::from_writer(Box::new(f))), file: Some((tmp, dest.to_path_buf())) })
    }

    fn fail(&self, e: std::io::Error) -> Fail {
        match &self.file {
            Some((_, dest)) => CliError::write(dest, e).into(),
            // A closed pipe (`| head`) only means nobody wants more rows.
            None if e.kind() == std::io::ErrorKind::BrokenPipe => Fail::Closed,
            None => CliError::io(format!("cannot write to stdout: {e}")).into(),
        }
    }

    fn row<I: IntoIterator<Item = String>>(&mut self, cells: I) -> Result<(), Fail> {
        let r = self.w.as_mut().expect("open until finish").write_record(cells);
        r.map_err(|e| match e.into_kind() {
            csv::ErrorKind::Io(e) => self.fail(e),
            other => self.fail(std::io::Error::other(format!("{other:?}"))),
        })
    }

    fn finish(mut self) -> Result<(), Fail> {
        let mut w = self.w.take().expect("open until finish");
        w.flush().map_err(|e| self.fail(e))?;
        drop(w);
        if let Some((tmp, dest)) = &self.file {
            let done = std::fs::File::open(tmp).and_then(|f| f.sync_all()).and_then(|_| std::fs::rename(tmp, dest));
            done.map_err(|e| self.fail(e))?;
            self.file = None;
        }
        Ok(())
    }
}

impl Drop for Out {
    fn drop(&mut self) {
        if let Some((tmp, _)) = &self.file {
            let _ = std::fs::remove_file(tmp);
        }
    }
}
