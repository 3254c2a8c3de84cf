//! From raw tables to training arrays: windows, splits, missing values,
//! scaling, normalization (statistics from the training split only) and
//! target encoding by loss.

use super::{Array, DataError, InputPrep, ModelIo, OutputIo, OutputPrep, PrepState, Prepared, SourceKind, Split, WindowPrep};
use crate::spec::data::{DataSpec, Normalize};
use crate::spec::training::canonical_loss;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// Samples as read from one source, before any preparation.
#[derive(Clone, Debug)]
pub struct Table {
    pub file: String,
    pub kind: SourceKind,
    pub n: usize,
    /// Per model input: `n * widths[i]` values, NaN = missing: the numbers
    /// as read (IDX, windows), or the CSV columns once encoded.
    pub inputs: Vec<Vec<f32>>,
    pub widths: Vec<usize>,
    /// Per model input: CSV column names (empty for IDX).
    pub features: Vec<Vec<String>>,
    /// Per model input: its CSV columns as read, until `encode` turns them
    /// into `inputs` (empty once encoded, and for IDX and windows).
    pub cols: Vec<Vec<Column>>,
    /// Per model output.
    pub targets: Vec<Column>,
    /// `data.sample_weight`, per sample.
    pub weights: Option<Vec<f32>>,
    /// Per sample, for messages: the CSV file line or the IDX record index.
    pub rows: Vec<usize>,
    /// What chose the inputs' columns, for messages.
    pub selected: String,
    /// Some column is read with `missing: mean` (the model file then keeps
    /// the fill values, whether or not this data lacked any).
    pub mean_fill: bool,
}

#[derive(Clone, Debug)]
pub struct Column {
    pub name: String,
    pub file: String,
    /// Values per sample.
    pub width: usize,
    pub values: Values,
}

#[derive(Clone, Debug)]
pub enum Values {
    /// NaN = missing.
    Num(Vec<f32>),
    /// CSV cells as written ("" = missing); typed in `prepare`.
    Str(Vec<String>),
}

impl Table {
    pub fn subset(&self, idx: &[usize]) -> Table {
        let gather = |v: &[f32], w: usize| idx.iter().flat_map(|&i| v[i * w..(i + 1) * w].iter().copied()).collect::<Vec<f32>>();
        let column = |c: &Column| Column {
            values: match &c.values {
                Values::Num(v) => Values::Num(gather(v, c.width)),
                Values::Str(v) => Values::Str(idx.iter().map(|&i| v[i].clone()).collect()),
            },
            ..c.clone()
        };
        Table {
            file: self.file.clone(),
            kind: self.kind,
            n: idx.len(),
            inputs: self.inputs.iter().zip(&self.widths).map(|(v, &w)| gather(v, w)).collect(),
            widths: self.widths.clone(),
            features: self.features.clone(),
            cols: self.cols.iter().map(|cs| cs.iter().map(column).collect()).collect(),
            targets: self.targets.iter().map(column).collect(),
            weights: self.weights.as_ref().map(|w| gather(w, 1)),
            rows: idx.iter().map(|&i| self.rows[i]).collect(),
            selected: self.selected.clone(),
            mean_fill: self.mean_fill,
        }
    }

    /// Keeps the samples without a missing value (`missing: drop`): CSV
    /// rows are dropped as they are read; this is for IDX and windows.
    pub fn drop_missing(self) -> Table {
        let complete = |i: usize| {
            self.inputs.iter().zip(&self.widths).all(|(v, &w)| v[i * w..(i + 1) * w].iter().all(|x| !x.is_nan()))
                && self.targets.iter().all(|c| match &c.values {
                    Values::Num(v) => v[i * c.width..(i + 1) * c.width].iter().all(|x| !x.is_nan()),
                    Values::Str(v) => !v[i].is_empty(),
                })
        };
        let keep: Vec<usize> = (0..self.n).filter(|&i| complete(i)).collect();
        if keep.len() == self.n { self } else { self.subset(&keep) }
    }

    /// Encodes input `i`'s columns with their fitted preps into `inputs[i]`.
    /// Returns, per column, how many values were never seen in training.
    pub fn encode(&mut self, i: usize, preps: &[super::columns::ColumnPrep]) -> Result<Vec<usize>, DataError> {
        let cols = std::mem::take(&mut self.cols[i]);
        if cols.is_empty() {
            return Ok(Vec::new());
        }
        let coders: Vec<_> = preps.iter().map(|p| p.coder()).collect();
        let width: usize = coders.iter().map(|c| c.width()).sum();
        let mut data = vec![0.0f32; self.n * width];
        let mut unseen = vec![0usize; cols.len()];
        for r in 0..self.n {
            let mut at = r * width;
            for (k, (col, coder)) in cols.iter().zip(&coders).enumerate() {
                let cell = match &col.values {
                    Values::Num(v) => super::columns::Cell::Num(v[r]),
                    Values::Str(v) => super::columns::Cell::Text(&v[r]),
                };
                let w = coder.width();
                let new = coder.encode(cell, &mut data[at..at + w]).map_err(|msg| self.error_at(&self.file, r, &col.name, msg))?;
                unseen[k] += new as usize;
                at += w;
            }
        }
        self.inputs[i] = data;
        self.widths[i] = width;
        Ok(unseen)
    }

    /// An error about sample `i`: row and column for CSV, record for IDX.
    fn error_at(&self, file: &str, i: usize, column: &str, msg: String) -> DataError {
        match self.kind {
            // A labels CSV beside IDX images: record i sits on line i + 2.
            SourceKind::Idx if file.to_ascii_lowercase().ends_with(".csv") => {
                DataError::Cell { file: file.into(), row: self.rows[i] + 2, column: column.into(), msg }
            }
            SourceKind::Csv => DataError::Cell { file: file.into(), row: self.rows[i], column: column.into(), msg },
            SourceKind::Idx => DataError::file(file, format!("record {}: {msg}", self.rows[i])),
        }
    }
}

/// Turns a one-column series into windows: sample i = v[i..i+size], target v[i+size].
pub fn windows(t: Table, size: usize) -> Result<Table, DataError> {
    let v = &t.inputs[0];
    if v.len() <= size {
        return Err(DataError::file(&t.file, format!("{} values make no window of size {size} (a window needs size + 1 values)", v.len())));
    }
    let n = v.len() - size;
    Ok(Table {
        n,
        inputs: vec![(0..n).flat_map(|i| v[i..i + size].iter().copied()).collect()],
        widths: vec![size],
        targets: vec![Column { name: t.features[0][0].clone(), file: t.file.clone(), width: 1, values: Values::Num(v[size..].to_vec()) }],
        rows: t.rows[size..].to_vec(),
        weights: None,
        ..t
    })
}

/// Keras `validation_split` arithmetic: the first floor(n * (1 - frac)) stay.
fn held_out(n: usize, frac: f64) -> usize {
    n - (n as f64 * (1.0 - frac)).floor() as usize
}

/// The training, validation and test tables (the last two when given or
/// split off), with whether a validation table exists.
pub struct Splits {
    pub train: Table,
    /// The validation table (if `has_val`), then the test table.
    pub others: Vec<Table>,
    pub has_val: bool,
}

/// Splits off the test and validation rows as `data` asks (seeded).
pub fn split(spec: &DataSpec, all: Table, validation: Option<Table>, test: Option<Table>, seed: u64) -> Result<Splits, DataError> {
    let file = all.file.clone();
    let empty = |what: &str, key: &str, frac: f64, n: usize| {
        DataError::file(&file, format!("{key} {frac} of {n} samples leaves {what} empty; change `{key}` or give more data"))
    };
    if all.n == 0 {
        return Err(DataError::file(&file, "no samples to train on (is the file empty, or did `missing: drop` drop every row?)"));
    }
    // Stratified splits hold out each class's share of the rows.
    let strata = if spec.stratify { Some(strata(&all)) } else { None };
    // Test split: a seeded random subset, or the last rows (time series).
    let mut order: Vec<usize> = (0..all.n).collect();
    let test = match test {
        Some(t) => Some(t),
        None if spec.test_split > 0.0 => {
            let held = held_out(all.n, spec.test_split);
            if held == 0 || held == all.n {
                return Err(empty(if held == 0 { "the test set" } else { "the training set" }, "test_split", spec.test_split, all.n));
            }
            let shuffle = spec.shuffle_split && spec.window.is_none();
            if let Some(strata) = &strata {
                let (kept, out) = stratified(&order, strata, held, shuffle.then_some(seed));
                order = kept;
                Some(all.subset(&out))
            } else if shuffle {
                order.shuffle(&mut StdRng::seed_from_u64(seed));
                let t = all.subset(&order[..held]);
                order.drain(..held);
                Some(t)
            } else {
                Some(all.subset(&order.split_off(all.n - held)))
            }
        }
        None => None,
    };
    // Validation split: Keras semantics, the last fraction of what is left.
    let validation = match validation {
        Some(v) => Some(v),
        None if spec.validation_split > 0.0 => {
            let held = held_out(order.len(), spec.validation_split);
            if held == 0 || held == order.len() {
                let what = if held == 0 { "the validation set" } else { "the training set" };
                return Err(empty(what, "validation_split", spec.validation_split, order.len()));
            }
            if let Some(strata) = &strata {
                let (kept, out) = stratified(&order, strata, held, None);
                order = kept;
                Some(all.subset(&out))
            } else {
                Some(all.subset(&order.split_off(order.len() - held)))
            }
        }
        None => None,
    };
    let train = if order.len() == all.n && order.iter().enumerate().all(|(i, &j)| i == j) { all } else { all.subset(&order) };
    let has_val = validation.is_some();
    Ok(Splits { train, others: validation.into_iter().chain(test).collect(), has_val })
}

/// The class of each row: the first target's cell.
fn strata(t: &Table) -> Vec<String> {
    match t.targets.first().map(|c| &c.values) {
        Some(Values::Str(v)) => v.clone(),
        Some(Values::Num(v)) => v.iter().map(|x| x.to_string()).collect(),
        None => vec![String::new(); t.n],
    }
}

/// Holds out `held` of `order` with each class's share (largest remainders
/// first), shuffled within each class by `seed`, else each class's last rows.
/// Returns (kept, held out), both in `order`'s order.
fn stratified(order: &[usize], strata: &[String], held: usize, seed: Option<u64>) -> (Vec<usize>, Vec<usize>) {
    let mut groups: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
    for &i in order {
        groups.entry(strata[i].as_str()).or_default().push(i);
    }
    let n = order.len() as f64;
    let mut shares: Vec<(usize, f64, &str)> = groups.iter().map(|(k, g)| (g.len(), g.len() as f64 * held as f64 / n, *k)).collect();
    let mut take: std::collections::BTreeMap<&str, usize> = shares.iter().map(|&(_, q, k)| (k, q.floor() as usize)).collect();
    let mut left = held - take.values().sum::<usize>();
    shares.sort_by(|a, b| (b.1 - b.1.floor()).total_cmp(&(a.1 - a.1.floor())).then(a.2.cmp(b.2)));
    for &(len, _, k) in shares.iter().cycle().take(shares.len() * 2) {
        if left == 0 {
            break;
        }
        let t = take.get_mut(k).expect("every class has a count");
        if *t < len {
            *t += 1;
            left -= 1;
        }
    }
    let mut out = std::collections::BTreeSet::new();
    for (k, mut g) in groups {
        let t = take[k];
        if let Some(seed) = seed {
            g.shuffle(&mut StdRng::seed_from_u64(seed));
            out.extend(g[..t].iter().copied());
        } else {
            out.extend(g[g.len() - t..].iter().copied());
        }
    }
    order.iter().copied().partition(|i| !out.contains(i))
}

/// The column types of input `i`'s columns: as `columns` lists them, or numbers.
pub fn column_specs(spec: &DataSpec, names: &[String]) -> Vec<crate::spec::columns::ColumnSpec> {
    use crate::spec::columns::{ColumnKind, ColumnSpec};
    names
        .iter()
        .map(|n| {
            spec.column(n).cloned().unwrap_or_else(|| ColumnSpec {
                name: crate::spec::Named { name: n.clone(), pos: Default::default() },
                type_name: "number",
                kind: ColumnKind::Number,
                missing: None,
                pos: Default::default(),
            })
        })
        .collect()
}

/// Fits the encoders of every CSV column on the training split.
pub fn fit_columns(spec: &DataSpec, train: &Table) -> Vec<Vec<super::columns::ColumnPrep>> {
    train
        .cols
        .iter()
        .map(|cols| {
            let names: Vec<String> = cols.iter().map(|c| c.name.clone()).collect();
            column_specs(spec, &names).iter().zip(cols).map(|(cs, c)| super::columns::fit(cs, cs.missing.unwrap_or(spec.missing), &c.values)).collect()
        })
        .collect()
}

/// Per slot of an encoded input: (scale, whether `data.normalize` applies,
/// a fixed (shift, div) instead, standardized as Keras Normalization).
#[derive(Clone, Copy)]
enum Slot {
    /// An unlisted number: `data.scale` and `data.normalize`.
    Number,
    /// Fixed: x * scale - shift (float, float_rescaled, encoded values).
    Fixed { scale: f32, shift: f32 },
    /// Keras Normalization: (x - mean) / max(std, 1e-7).
    Normalized,
}

fn slots(spec: &DataSpec, preps: &[super::columns::ColumnPrep], width: usize) -> Vec<Slot> {
    use super::columns::{Encoder, NumberKind};
    use crate::spec::columns::ColumnKind;
    if preps.is_empty() {
        return vec![Slot::Number; width];
    }
    let mut out = Vec::with_capacity(width);
    for p in preps {
        match &p.encoder {
            Encoder::Number { kind: NumberKind::Number } => out.push(Slot::Number),
            Encoder::Number { kind: NumberKind::FloatNormalized } => out.push(Slot::Normalized),
            Encoder::Number { kind: NumberKind::FloatRescaled } => {
                let (scale, offset) = match spec.column(&p.column).map(|c| &c.kind) {
                    Some(ColumnKind::FloatRescaled { scale, offset }) => (*scale as f32, *offset as f32),
                    _ => (1.0, 0.0),
                };
                out.push(Slot::Fixed { scale, shift: -offset });
            }
            _ => out.extend(std::iter::repeat_n(Slot::Fixed { scale: 1.0, shift: 0.0 }, p.width())),
        }
    }
    out
}

pub fn prepare(spec: &DataSpec, io: &ModelIo, all: Table, validation: Option<Table>, test: Option<Table>, seed: u64) -> Result<Prepared, DataError> {
    if let Some(w) = &spec.window {
        let (name, shape) = &io.inputs[0];
        if *shape != [w.size, 1] && *shape != [w.size] {
            return Err(DataError::file(
                &all.file,
                format!("input '{name}' has shape {shape:?}, but `window.size` is {}: use input_shape [{0}, 1] (or [{0}])", w.size),
            ));
        }
    }
    let Splits { mut train, mut others, has_val } = split(spec, all, validation, test, seed)?;

    // Typed columns: vocabularies, bins and idf weights from the training split.
    let column_preps = fit_columns(spec, &train);
    for (i, preps) in column_preps.iter().enumerate() {
        for t in std::iter::once(&mut train).chain(others.iter_mut()) {
            t.encode(i, preps)?;
        }
    }
    for (i, (name, shape)) in io.inputs.iter().enumerate() {
        let want: usize = shape.iter().product();
        if train.widths[i] != want {
            let preps = column_preps.get(i).map_or(&[][..], Vec::as_slice);
            let detail = if preps.iter().all(|p| p.width() == 1) {
                format!("{} select {} column(s); select {want} columns or change the input shape", train.selected, train.widths[i])
            } else {
                let parts: Vec<String> = preps.iter().map(|p| p.origin()).collect();
                format!(
                    "its columns ({}) give {} values: {}; change the input shape to [{}] or leave it out",
                    train.selected,
                    train.widths[i],
                    parts.join(", "),
                    train.widths[i]
                )
            };
            return Err(DataError::file(&train.file, format!("input '{name}' has shape {shape:?} ({want} values per sample) but {detail}")));
        }
    }

    // Missing values (`missing: mean`): training means per feature.
    let fills = fill_missing(&mut train, &mut others)?;

    // Inputs: scale, then normalize with training statistics.
    let scale = spec.scale.unwrap_or(1.0) as f32;
    let mut input_preps = Vec::new();
    let mut arrays: Vec<Vec<Array>> = vec![Vec::new(); 1 + others.len()];
    for (i, (name, shape)) in io.inputs.iter().enumerate() {
        let w = train.widths[i];
        let preps = column_preps.get(i).cloned().unwrap_or_default();
        let kinds = slots(spec, &preps, w);
        let scales: Vec<f32> = kinds
            .iter()
            .map(|k| match k {
                Slot::Number => scale,
                Slot::Fixed { scale, .. } => *scale,
                Slot::Normalized => 1.0,
            })
            .collect();
        // Row by row: a wide input (a 10,000-token multi_hot) stays one pass.
        if scales.iter().any(|&s| s != 1.0) {
            for t in std::iter::once(&mut train).chain(others.iter_mut()) {
                t.inputs[i].chunks_exact_mut(w.max(1)).for_each(|row| row.iter_mut().zip(&scales).for_each(|(x, s)| *x *= s));
            }
        }
        let numbers = kinds.iter().any(|k| matches!(k, Slot::Number));
        let (mut shift, mut div) = if spec.window.is_some() {
            let (s, d) = stats(&train.inputs[i], 1, spec.normalize);
            (vec![s[0]; w], vec![d[0]; w])
        } else if numbers {
            stats(&train.inputs[i], w, spec.normalize)
        } else {
            (vec![0.0; w], vec![1.0; w])
        };
        let moments = kinds.iter().any(|k| matches!(k, Slot::Normalized)).then(|| moments(&train.inputs[i], w));
        for (j, k) in kinds.iter().enumerate() {
            match k {
                Slot::Number => {}
                Slot::Fixed { shift: s, .. } => (shift[j], div[j]) = (*s, 1.0),
                // Keras guards a zero variance with epsilon, not with 1.
                Slot::Normalized => {
                    let (mean, std) = moments.as_ref().expect("computed for normalized slots");
                    (shift[j], div[j]) = (mean[j] as f32, (std[j] as f32).max(1e-7));
                }
            }
        }
        let transformed = scales.iter().any(|&s| s != 1.0) || shift.iter().any(|&s| s != 0.0) || div.iter().any(|&d| d != 1.0);
        let identity = shift.iter().all(|&s| s == 0.0) && div.iter().all(|&d| d == 1.0);
        for (k, t) in std::iter::once(&mut train).chain(others.iter_mut()).enumerate() {
            let mut data = std::mem::take(&mut t.inputs[i]);
            if !identity {
                for row in data.chunks_exact_mut(w.max(1)) {
                    row.iter_mut().zip(shift.iter().zip(&div)).for_each(|(x, (s, d))| *x = (*x - s) / d);
                }
            }
            check_indices(t, io, i, &data, transformed, &preps)?;
            arrays[k].push(Array { shape: shape.clone(), data });
        }
        let uniform = scales.iter().all(|&s| s == scale);
        input_preps.push(InputPrep {
            name: name.clone(),
            shape: shape.clone(),
            features: train.features[i].clone(),
            fill: fills.get(i).cloned().flatten(),
            shift,
            div,
            scales: if uniform { Vec::new() } else { scales },
            columns: if preps.iter().all(|p| p.type_name() == "number" && p.missing == spec.missing) { Vec::new() } else { preps },
        });
    }
    let weights = train.weights.clone();

    // Targets, encoded by loss.
    let mut target_arrays: Vec<Vec<Array>> = vec![Vec::new(); 1 + others.len()];
    let mut output_preps = Vec::new();
    for (o, out) in io.outputs.iter().enumerate() {
        // Accept aliases (`mse`) from callers that didn't canonicalize.
        let out = &OutputIo { loss: canonical_loss(&out.loss).to_string(), ..out.clone() };
        let tables: Vec<&Table> = std::iter::once(&train).chain(others.iter()).collect();
        if out.loss == "ctc" {
            let vocab = ctc_vocabulary(&train, o, out)?;
            let longest = tables.iter().map(|t| ctc_longest(t, o)).max().unwrap_or(0);
            for (k, t) in tables.iter().enumerate() {
                target_arrays[k].push(ctc_encode(t, o, &vocab, longest)?);
            }
            let target = train.targets[o].name.clone();
            output_preps.push(OutputPrep { name: out.name.clone(), target, loss: out.loss.clone(), classes: Some(vocab), scale: 1.0, shift: 0.0, div: 1.0 });
            continue;
        }
        let (mut values, classes) = typed_targets(&tables, o, out)?;
        let (mut t_scale, mut t_shift, mut t_div) = (1.0f32, 0.0f32, 1.0f32);
        if spec.window.is_some() {
            // The target is the next value of the same series: same transform.
            (t_scale, t_shift, t_div) = (scale, input_preps[0].shift[0], input_preps[0].div[0]);
            for v in values.iter_mut().flatten() {
                *v = (*v * t_scale - t_shift) / t_div;
            }
        }
        for (k, (t, v)) in tables.iter().zip(values).enumerate() {
            target_arrays[k].push(encode(t, o, out, v, classes.as_deref())?);
        }
        output_preps.push(OutputPrep {
            name: out.name.clone(),
            target: train.targets[o].name.clone(),
            loss: out.loss.clone(),
            classes,
            scale: t_scale,
            shift: t_shift,
            div: t_div,
        });
    }

    let mut splits = arrays.into_iter().zip(target_arrays).zip(std::iter::once(train.n).chain(others.iter().map(|t| t.n)));
    let mut next = || splits.next().map(|((inputs, targets), n)| Split { n, inputs, targets, weights: None });
    let mut train_split = next().expect("train split");
    train_split.weights = weights;
    let validation = if has_val { next() } else { None };
    let test = next();
    Ok(Prepared {
        train: train_split,
        validation,
        test,
        prep: PrepState {
            source: train.kind,
            scale,
            normalize: spec.normalize,
            missing: spec.missing,
            missing_values: spec.missing_values.clone(),
            inputs: input_preps,
            outputs: output_preps,
            window: spec.window.as_ref().map(|w| WindowPrep { column: w.column.name.clone(), size: w.size }),
        },
    })
}

/// Prepared values of input `i` of `t` that feed an Embedding must be
/// indices it has: found here, at the row and column, rather than inside the
/// first forward pass.
fn check_indices(t: &Table, io: &ModelIo, i: usize, data: &[f32], transformed: bool, preps: &[super::columns::ColumnPrep]) -> Result<(), DataError> {
    let Some(ix) = io.indices.get(i).and_then(Option::as_ref) else { return Ok(()) };
    let Some((k, v)) = ix.first_bad(data) else { return Ok(()) };
    let w = t.widths[i].max(1);
    let column = slot_column(&t.features[i], preps, k % w);
    Err(t.error_at(&t.file, k / w, column, ix.message(&io.inputs[i].0, v, transformed)))
}

/// The column that slot `j` of an encoded input comes from.
pub fn slot_column<'a>(features: &'a [String], preps: &'a [super::columns::ColumnPrep], j: usize) -> &'a str {
    if !preps.is_empty() {
        let mut at = 0;
        for p in preps {
            at += p.width();
            if j < at {
                return &p.column;
            }
        }
    }
    features.get(j).or(features.first()).map_or("", String::as_str)
}

/// Fills NaN features (and numeric targets) with the training mean; returns
/// the fill values per input. Only `missing: mean` leaves NaN behind (per
/// column, or for the whole table).
fn fill_missing(train: &mut Table, others: &mut [Table]) -> Result<Vec<Option<Vec<f32>>>, DataError> {
    let any_nan = |t: &Table| t.inputs.iter().any(|v| v.iter().any(|x| x.is_nan()));
    if !any_nan(train) && !others.iter().any(any_nan) && !train.mean_fill {
        return Ok(Vec::new());
    }
    let means = |v: &[f32], w: usize| -> Vec<Option<f32>> {
        let mut sum = vec![(0.0f64, 0usize); w];
        for (j, x) in v.iter().enumerate() {
            if !x.is_nan() {
                sum[j % w].0 += *x as f64;
                sum[j % w].1 += 1;
            }
        }
        sum.iter().map(|&(s, c)| (c > 0).then(|| (s / c as f64) as f32)).collect()
    };
    let fill = |v: &mut [f32], m: &[f32]| {
        let w = m.len();
        v.iter_mut().enumerate().filter(|(_, x)| x.is_nan()).for_each(|(j, x)| *x = m[j % w]);
    };
    let mut out = Vec::new();
    for i in 0..train.inputs.len() {
        let m = means(&train.inputs[i], train.widths[i]);
        if let Some(j) = m.iter().position(Option::is_none) {
            let col = train.features[i].get(j).cloned().unwrap_or_else(|| format!("#{j}"));
            return Err(DataError::file(
                &train.file,
                format!("column '{col}' has no value in the training split, so `missing: mean` has no mean to fill with"),
            ));
        }
        let m: Vec<f32> = m.into_iter().flatten().collect();
        for t in std::iter::once(&mut *train).chain(others.iter_mut()) {
            fill(&mut t.inputs[i], &m);
        }
        out.push(Some(m));
    }
    for o in 0..train.targets.len() {
        let Values::Num(v) = &train.targets[o].values else { continue };
        let m: Vec<f32> = means(v, train.targets[o].width).into_iter().map(|m| m.unwrap_or(0.0)).collect();
        for t in std::iter::once(&mut *train).chain(others.iter_mut()) {
            if let Values::Num(v) = &mut t.targets[o].values {
                fill(v, &m);
            }
        }
    }
    Ok(out)
}

/// Per feature, the mean and population standard deviation (f64), in two
/// row-major passes.
fn moments(v: &[f32], w: usize) -> (Vec<f64>, Vec<f64>) {
    let n = (v.len() / w.max(1)).max(1) as f64;
    let mut mean = vec![0.0f64; w];
    for row in v.chunks_exact(w.max(1)) {
        mean.iter_mut().zip(row).for_each(|(m, &x)| *m += x as f64);
    }
    mean.iter_mut().for_each(|m| *m /= n);
    let mut var = vec![0.0f64; w];
    for row in v.chunks_exact(w.max(1)) {
        var.iter_mut().zip(row).zip(&mean).for_each(|((a, &x), m)| *a += (x as f64 - m).powi(2));
    }
    (mean, var.into_iter().map(|v| (v / n).sqrt()).collect())
}

/// Per-feature (shift, div) over the training values: mean/std or min/range;
/// a constant feature divides by 1.
fn stats(v: &[f32], w: usize, kind: Normalize) -> (Vec<f32>, Vec<f32>) {
    let nonzero = |d: f64| if d > 0.0 { d as f32 } else { 1.0 };
    match kind {
        Normalize::None => (vec![0.0; w], vec![1.0; w]),
        Normalize::Standard => {
            let (mean, std) = moments(v, w);
            (mean.iter().map(|&m| m as f32).collect(), std.into_iter().map(nonzero).collect())
        }
        Normalize::Minmax => {
            let (mut lo, mut hi) = (vec![f64::INFINITY; w], vec![f64::NEG_INFINITY; w]);
            for row in v.chunks_exact(w.max(1)) {
                for ((l, h), &x) in lo.iter_mut().zip(hi.iter_mut()).zip(row) {
                    *l = l.min(x as f64);
                    *h = h.max(x as f64);
                }
            }
            (lo.iter().map(|&l| l as f32).collect(), lo.iter().zip(&hi).map(|(l, h)| nonzero(h - l)).collect())
        }
    }
}

fn parse_num(s: &str) -> Option<f32> {
    s.trim().parse::<f32>().ok().filter(|x| x.is_finite())
}

/// Text that is no number at all (`inf` and `NaN` are numbers, if unusable ones).
fn is_text(s: &str) -> bool {
    s.trim().parse::<f32>().is_err()
}

/// Per table the target values, and the class names when they were strings.
type Typed = (Vec<Vec<f32>>, Option<Vec<String>>);

/// Target values of output `o` in every table, strings mapped to class
/// indices (classes: sorted distinct strings of the training split).
fn typed_targets(tables: &[&Table], o: usize, out: &OutputIo) -> Result<Typed, DataError> {
    let col = &tables[0].targets[o];
    let text = match &col.values {
        Values::Str(train) => train.iter().position(|s| !s.is_empty() && is_text(s)),
        Values::Num(_) => None,
    };
    let Some(first_text) = text else {
        return Ok((tables.iter().map(|t| numeric_targets(t, o, &col.name)).collect::<Result<_, _>>()?, None));
    };
    let Values::Str(train) = &col.values else { unreachable!() };
    if !matches!(out.loss.as_str(), "categorical_crossentropy" | "sparse_categorical_crossentropy" | "binary_crossentropy") {
        return Err(tables[0].error_at(
            &col.file,
            first_text,
            &col.name,
            format!(
                "'{}' is text, but output '{}' is trained with {}, a regression loss; use a numeric column or a classification loss",
                train[first_text], out.name, out.loss
            ),
        ));
    }
    let mut classes: Vec<String> = train.iter().filter(|s| !s.is_empty()).cloned().collect();
    classes.sort();
    classes.dedup();
    let vals = tables.iter().map(|t| class_indices(t, o, &classes)).collect::<Result<_, _>>()?;
    Ok((vals, Some(classes)))
}

fn missing_target(t: &Table, o: usize, i: usize) -> DataError {
    t.error_at(&t.targets[o].file, i, &t.targets[o].name, "the target is empty (set `missing: drop` to skip rows without a target)".into())
}

/// A numeric target column; `train_col` names the training column in messages.
fn numeric_targets(t: &Table, o: usize, train_col: &str) -> Result<Vec<f32>, DataError> {
    match &t.targets[o].values {
        Values::Num(v) => Ok(v.clone()),
        Values::Str(v) => v
            .iter()
            .enumerate()
            .map(|(i, s)| {
                if s.is_empty() {
                    return Err(missing_target(t, o, i));
                }
                parse_num(s).ok_or_else(|| {
                    let msg = if is_text(s) {
                        format!("'{s}' is not a number, but the training values of this column are numbers")
                    } else {
                        super::csv::not_finite(s, "leave a missing target empty and set `missing: drop`")
                    };
                    t.error_at(&t.targets[o].file, i, train_col, msg)
                })
            })
            .collect(),
    }
}

/// Class indices of a string target column; `classes` sorted.
fn class_indices(t: &Table, o: usize, classes: &[String]) -> Result<Vec<f32>, DataError> {
    let col = &t.targets[o];
    let Values::Str(v) = &col.values else {
        return Err(DataError::file(&col.file, format!("column '{}' holds numbers, but the model was trained on class names ({})", col.name, list(classes))));
    };
    v.iter()
        .enumerate()
        .map(|(i, s)| {
            if s.is_empty() {
                return Err(missing_target(t, o, i));
            }
            let c = classes
                .binary_search(s)
                .map_err(|_| t.error_at(&col.file, i, &col.name, format!("class '{s}' does not occur in the training data (classes: {})", list(classes))))?;
            Ok(c as f32)
        })
        .collect()
}

/// Prepares a table as the training data was, with the saved statistics and
/// classes rather than ones computed from this table (evaluation data).
pub fn apply(io: &ModelIo, mut t: Table, state: &PrepState) -> Result<(Split, Vec<(String, usize)>), DataError> {
    let mut inputs = Vec::new();
    let mut unseen = Vec::new();
    for (i, (name, shape)) in io.inputs.iter().enumerate() {
        let preps = state.inputs[i].encoders(state);
        let counts = t.encode(i, &preps)?;
        unseen.extend(preps.iter().zip(counts).filter(|(_, n)| *n > 0).map(|(p, n)| (p.column.clone(), n)));
        let saved = state.inputs[i].shift.len();
        if t.widths[i] != saved {
            return Err(DataError::file(&t.file, format!("input '{name}' has {} values per sample here but {saved} in training", t.widths[i])));
        }
        let mut data = std::mem::take(&mut t.inputs[i]);
        state.apply_input(i, &mut data);
        check_indices(&t, io, i, &data, state.transforms_input(i), &preps)?;
        inputs.push(Array { shape: shape.clone(), data });
    }
    let mut targets = Vec::new();
    for (o, out) in io.outputs.iter().enumerate() {
        let out = &OutputIo { loss: canonical_loss(&out.loss).to_string(), ..out.clone() };
        let p = &state.outputs[o];
        if out.loss == "ctc" {
            targets.push(ctc_encode(&t, o, p.classes.as_deref().unwrap_or_default(), ctc_longest(&t, o))?);
            continue;
        }
        let mut values = match &p.classes {
            Some(c) => class_indices(&t, o, c)?,
            None => numeric_targets(&t, o, &t.targets[o].name)?,
        };
        if let Some(i) = values.iter().position(|v| v.is_nan()) {
            return Err(missing_target(&t, o, i / t.targets[o].width.max(1)));
        }
        if state.window.is_some() {
            values.iter_mut().for_each(|v| *v = (*v * p.scale - p.shift) / p.div);
        }
        targets.push(encode(&t, o, out, values, p.classes.as_deref())?);
    }
    Ok((Split { n: t.n, inputs, targets, weights: None }, unseen))
}

/// The label sequences of a ctc target column: whitespace-separated tokens.
fn ctc_cells(t: &Table, o: usize) -> Result<&[String], DataError> {
    match &t.targets[o].values {
        Values::Str(v) => Ok(v),
        Values::Num(_) => Err(DataError::file(
            &t.targets[o].file,
            "ctc needs label sequences as text: give the labels as a CSV column of space-separated tokens (`3 1 4`)".to_string(),
        )),
    }
}

fn ctc_longest(t: &Table, o: usize) -> usize {
    ctc_cells(t, o).map_or(0, |v| v.iter().map(|s| s.split_whitespace().count()).max().unwrap_or(0))
}

/// The distinct tokens of the training split, in numeric order when they
/// are all numbers (`2` before `10`), else in text order. Token i is
/// class i of the output, counting around the blank.
fn ctc_vocabulary(train: &Table, o: usize, out: &OutputIo) -> Result<Vec<String>, DataError> {
    let col = &train.targets[o];
    let mut vocab: Vec<String> = ctc_cells(train, o)?.iter().flat_map(|s| s.split_whitespace().map(String::from)).collect();
    vocab.sort();
    vocab.dedup();
    let nums: Option<Vec<f64>> = vocab.iter().map(|v| v.parse::<f64>().ok().filter(|x| x.is_finite())).collect();
    if let Some(nums) = nums {
        let mut pairs: Vec<(f64, String)> = nums.into_iter().zip(vocab).collect();
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        vocab = pairs.into_iter().map(|p| p.1).collect();
    }
    let classes = out.shape.last().copied().unwrap_or(0);
    if vocab.len() + 1 > classes {
        return Err(DataError::file(
            &col.file,
            format!(
                "column '{}' holds {} distinct tokens ({}) but output '{}' has {classes} classes, one of them the ctc blank; give it {} units",
                col.name,
                vocab.len(),
                list(&vocab),
                out.name,
                vocab.len() + 1
            ),
        ));
    }
    Ok(vocab)
}

/// Token indices per sample, padded with -1 to `width`.
fn ctc_encode(t: &Table, o: usize, vocab: &[String], width: usize) -> Result<Array, DataError> {
    let col = &t.targets[o];
    let mut data = vec![-1.0f32; t.n * width];
    for (i, s) in ctc_cells(t, o)?.iter().enumerate() {
        if s.is_empty() {
            return Err(missing_target(t, o, i));
        }
        for (j, tok) in s.split_whitespace().enumerate() {
            let Some(k) = vocab.iter().position(|v| v == tok) else {
                return Err(t.error_at(&col.file, i, &col.name, format!("token '{tok}' does not occur in the training data (tokens: {})", list(vocab))));
            };
            data[i * width + j] = k as f32;
        }
    }
    Ok(Array { shape: vec![width], data })
}

pub(crate) fn list(items: &[String]) -> String {
    if items.len() <= 12 { items.join(", ") } else { format!("{}, ... ({} in all)", items[..10].join(", "), items.len()) }
}

/// Encodes one table's target values for output `o` by its loss, checking
/// every value against the output.
fn encode(t: &Table, o: usize, out: &OutputIo, values: Vec<f32>, classes: Option<&[String]>) -> Result<Array, DataError> {
    let col = &t.targets[o];
    let units: usize = out.shape.iter().product();
    let bad = |i: usize, msg: String| t.error_at(&col.file, i, &col.name, msg);
    let shape_err = |msg: String| DataError::file(&col.file, msg);
    match out.loss.as_str() {
        "categorical_crossentropy" | "sparse_categorical_crossentropy" | "binary_crossentropy" => {
            let binary = out.loss == "binary_crossentropy";
            if !binary && (out.shape.len() != 1 || col.width != 1) {
                return Err(shape_err(format!(
                    "output '{}' has shape {:?} and the target {} values per sample; {} needs one class label per sample and an output of shape [classes] (sequence targets are not supported yet)",
                    out.name, out.shape, col.width, out.loss
                )));
            }
            if binary && col.width != units {
                return Err(shape_err(format!(
                    "output '{}' has {units} units but the target '{}' has {} value(s) per sample; binary_crossentropy needs one 0/1 value per unit",
                    out.name, col.name, col.width
                )));
            }
            let limit = if binary { 2 } else { units };
            if let Some(c) = classes
                && c.len() > limit
            {
                let hint = if binary {
                    "binary_crossentropy takes two classes; use categorical_crossentropy with a softmax output for more".to_string()
                } else {
                    format!("give output '{}' {} units", out.name, c.len())
                };
                return Err(shape_err(format!(
                    "column '{}' has {} classes ({}) but output '{}' has {units} units; {hint}",
                    col.name,
                    c.len(),
                    list(c),
                    out.name
                )));
            }
            for (i, &v) in values.iter().enumerate() {
                let ok = v.fract() == 0.0 && v >= 0.0 && (v as usize) < limit;
                if !ok {
                    let s = i / col.width;
                    return Err(bad(
                        s,
                        if binary {
                            format!("label {v} is not 0 or 1, as binary_crossentropy needs")
                        } else {
                            format!("label {v} is not a class index in 0..{units} (output '{}' has {units} units)", out.name)
                        },
                    ));
                }
            }
            Ok(match out.loss.as_str() {
                "categorical_crossentropy" => {
                    let mut data = vec![0.0; values.len() * units];
                    values.iter().enumerate().for_each(|(i, &v)| data[i * units + v as usize] = 1.0);
                    Array { shape: vec![units], data }
                }
                "binary_crossentropy" => Array { shape: out.shape.clone(), data: values },
                _ => Array { shape: vec![1], data: values },
            })
        }
        "mean_squared_error" | "mean_absolute_error" | "huber" => {
            if col.width != units {
                return Err(shape_err(format!(
                    "output '{}' has shape {:?} ({units} values) but the target '{}' has {} value(s) per sample",
                    out.name, out.shape, col.name, col.width
                )));
            }
            Ok(Array { shape: out.shape.clone(), data: values })
        }
        other => Err(shape_err(format!("output '{}': loss '{other}' has no target encoding", out.name))),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use std::path::Path;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    /// y = row index (0..n), x = 10 * index.
    fn numbered(dir: &Path, n: usize) {
        let rows: String = (0..n).map(|i| format!("{},{i}\n", i * 10)).collect();
        write(dir, "n.csv", &format!("x,y\n{rows}"));
    }

    fn ys(a: &super::Array) -> Vec<f32> {
        a.data.clone()
    }

    const REG: &[(&str, &[usize], &str)] = &[("out", &[1], "mse")];

    #[test]
    fn splits_sizes_determinism_and_order() {
        let d = temp_dir("split");
        numbered(&d, 100);
        let io1 = io(&[("input", &[1])], REG);
        let src = "train: n.csv\ntarget: y\ntest_split: 0.2\nvalidation_split: 0.25\n";
        let a = load_in(&d, src, &io1).unwrap();
        let (tr, va, te) = (&a.train, a.validation.as_ref().unwrap(), a.test.as_ref().unwrap());
        assert_eq!((tr.n, va.n, te.n), (60, 20, 20));
        // Disjoint and complete.
        let mut all: Vec<f32> = [tr, va, te].iter().flat_map(|s| ys(&s.targets[0])).collect();
        all.sort_by(f32::total_cmp);
        assert_eq!(all, (0..100).map(|i| i as f32).collect::<Vec<_>>());
        // Test is a random subset; same seed, same split; another seed differs.
        assert_ne!(ys(&te.targets[0]), (80..100).map(|i| i as f32).collect::<Vec<_>>());
        let b = load_in(&d, src, &io1).unwrap();
        assert_eq!(b.test.unwrap().targets, te.targets);
        let c = super::super::load(&spec(src), &d, &io1, 8, None).unwrap();
        assert_ne!(c.test.unwrap().targets, te.targets);
        // validation_split is the last fraction of what train keeps.
        let ordered = load_in(&d, "train: n.csv\ntarget: y\nvalidation_split: 0.1\n", &io1).unwrap();
        assert_eq!(ys(&ordered.validation.unwrap().targets[0]), (90..100).map(|i| i as f32).collect::<Vec<_>>());
        assert_eq!(ordered.train.n, 90);
        assert!(ordered.test.is_none());
        // shuffle_split: false holds out the last rows.
        let last = load_in(&d, "train: n.csv\ntarget: y\ntest_split: 0.1\nshuffle_split: false\n", &io1).unwrap();
        assert_eq!(ys(&last.test.unwrap().targets[0]), (90..100).map(|i| i as f32).collect::<Vec<_>>());
        // Keras arithmetic: 569 * 0.8 = 455.2 -> 455 train, 114 test.
        numbered(&d, 569);
        let k = load_in(&d, "train: n.csv\ntarget: y\ntest_split: 0.2\n", &io1).unwrap();
        assert_eq!((k.train.n, k.test.unwrap().n), (455, 114));
        numbered(&d, 1);
        let e = err(load_in(&d, "train: n.csv\ntarget: y\ntest_split: 0.1\n", &io1));
        assert!(e.ends_with("test_split 0.1 of 1 samples leaves the training set empty; change `test_split` or give more data"), "{e}");
    }

    #[test]
    fn limit_keeps_the_first_samples() {
        let d = temp_dir("limit");
        numbered(&d, 50);
        let p = super::super::load(&spec("train: n.csv\ntarget: y\nvalidation_split: 0.2\n"), &d, &io(&[("input", &[1])], REG), 1, Some(10)).unwrap();
        assert_eq!((p.train.n, p.validation.as_ref().unwrap().n), (8, 2));
        assert_eq!(ys(&p.validation.unwrap().targets[0]), vec![8.0, 9.0]);
    }

    #[test]
    fn normalization_uses_the_training_split_only() {
        let d = temp_dir("norm");
        // Train x: 0, 2 (mean 1, std 1); validation x: 100. c is constant.
        write(&d, "t.csv", "x,c,y\n0,5,0\n2,5,0\n100,5,0\n");
        let io2 = io(&[("input", &[2])], REG);
        let p = load_in(&d, "train: t.csv\ntarget: y\nfeatures: [x, c]\nvalidation_split: 0.3\nnormalize: standard\n", &io2).unwrap();
        assert_eq!(p.train.inputs[0].data, vec![-1.0, 0.0, 1.0, 0.0]);
        assert_eq!(p.validation.unwrap().inputs[0].data, vec![99.0, 0.0]);
        assert_eq!((p.prep.inputs[0].shift.clone(), p.prep.inputs[0].div.clone()), (vec![1.0, 5.0], vec![1.0, 1.0]));
        let p = load_in(&d, "train: t.csv\ntarget: y\nfeatures: [x, c]\nvalidation_split: 0.3\nnormalize: minmax\nscale: 0.5\n", &io2).unwrap();
        assert_eq!(p.train.inputs[0].data, vec![0.0, 0.0, 1.0, 0.0]);
        assert_eq!(p.validation.unwrap().inputs[0].data, vec![50.0, 0.0]);
        // apply_input reproduces the training transform on raw values.
        let mut raw = vec![2.0, 5.0];
        p.prep.apply_input(0, &mut raw);
        assert_eq!(raw, vec![1.0, 0.0]);
    }

    #[test]
    fn target_encodings_by_loss() {
        let d = temp_dir("enc");
        write(&d, "c.csv", "x,y,s\n1,2,b\n2,0,a\n3,1,b\n");
        let one = |loss: &str, units: usize, col: &str| {
            load_in(&d, &format!("train: c.csv\ntarget: {col}\nfeatures: [x]\n"), &io(&[("input", &[1])], &[("out", &[units], loss)]))
        };
        let p = one("categorical_crossentropy", 4, "y").unwrap();
        assert_eq!(p.train.targets[0].shape, vec![4]);
        assert_eq!(p.train.targets[0].data, vec![0., 0., 1., 0., 1., 0., 0., 0., 0., 1., 0., 0.]);
        let p = one("sparse_categorical_crossentropy", 3, "y").unwrap();
        assert_eq!((p.train.targets[0].shape.clone(), p.train.targets[0].data.clone()), (vec![1], vec![2., 0., 1.]));
        let p = one("binary_crossentropy", 1, "s").unwrap();
        assert_eq!(p.train.targets[0].data, vec![1., 0., 1.]);
        assert_eq!(p.prep.outputs[0].classes.as_deref().unwrap(), ["a", "b"]);
        let p = one("mean_squared_error", 1, "y").unwrap();
        assert_eq!(p.train.targets[0].data, vec![2., 0., 1.]);
        // Range checks.
        assert_eq!(
            err(one("sparse_categorical_crossentropy", 2, "y")),
            format!("{}: row 2, column 'y': label 2 is not a class index in 0..2 (output 'out' has 2 units)", d.join("c.csv").display())
        );
        assert!(err(one("binary_crossentropy", 1, "y")).ends_with("row 2, column 'y': label 2 is not 0 or 1, as binary_crossentropy needs"));
        assert!(err(one("categorical_crossentropy", 1, "s")).contains("column 's' has 2 classes (a, b) but output 'out' has 1 units"));
        assert!(err(one("mean_squared_error", 1, "s")).contains("row 2, column 's': 'b' is text, but output 'out' is trained with mean_squared_error"));
        assert!(err(one("binary_crossentropy", 3, "s")).contains("output 'out' has 3 units but the target 's' has 1 value(s) per sample"));
        write(&d, "f.csv", "x,y\n1,0.5\n");
        assert!(
            err(load_in(&d, "train: f.csv\ntarget: y\n", &io(&[("input", &[1])], &[("out", &[2], "sparse_categorical_crossentropy")])))
                .contains("label 0.5 is not a class index")
        );
    }

    #[test]
    fn apply_uses_the_saved_statistics_and_classes() {
        let d = temp_dir("apply");
        write(&d, "t.csv", "x,s\n0,a\n2,b\n4,c\n");
        write(&d, "e.csv", "x,s\n10,c\n");
        let io1 = io(&[("input", &[1])], &[("out", &[3], "sparse_categorical_crossentropy")]);
        let spec = spec("train: t.csv\ntarget: s\nnormalize: minmax\n");
        let p = super::super::load(&spec, &d, &io1, 1, None).unwrap();
        // The training file itself comes out as training prepared it.
        assert_eq!(super::super::load_with(&spec, &spec.train, &d, &io1, &p.prep).unwrap().0, p.train);
        let src = crate::spec::data::SourceSpec::Csv { path: crate::spec::Named { name: "e.csv".into(), pos: Default::default() } };
        let e = super::super::load_with(&spec, &src, &d, &io1, &p.prep).unwrap().0;
        // x' = (10 - 0) / 4 with the training range; 'c' stays class 2.
        assert_eq!((e.n, e.inputs[0].data.clone(), e.targets[0].data.clone()), (1, vec![2.5], vec![2.0]));
    }

    #[test]
    fn ctc_targets_are_padded_token_indices() {
        let d = temp_dir("ctc");
        // Numeric tokens sort as numbers: 2 < 9 < 10.
        write(&d, "t.csv", "x,seq\n1,10 2\n2,9\n3,2 2 10\n");
        let io1 = io(&[("input", &[1])], &[("out", &[5, 4], "ctc")]);
        let p = load_in(&d, "train: t.csv\ntarget: seq\n", &io1).unwrap();
        assert_eq!(p.prep.outputs[0].classes.as_deref().unwrap(), ["2", "9", "10"]);
        assert_eq!(p.train.targets[0].shape, vec![3]);
        assert_eq!(p.train.targets[0].data, vec![2., 0., -1., 1., -1., -1., 0., 0., 2.]);
        // Text tokens sort as text; 4 classes hold at most 3 tokens and the blank.
        write(&d, "w.csv", "x,seq\n1,a b\n2,c d\n");
        let e = err(load_in(&d, "train: w.csv\ntarget: seq\n", &io(&[("input", &[1])], &[("out", &[5, 4], "ctc")])));
        assert!(
            e.ends_with("column 'seq' holds 4 distinct tokens (a, b, c, d) but output 'out' has 4 classes, one of them the ctc blank; give it 5 units"),
            "{e}"
        );
        // Evaluation data keeps the training vocabulary.
        let spec = spec("train: t.csv\ntarget: seq\n");
        write(&d, "e.csv", "x,seq\n1,9 9 9 9\n");
        let src = crate::spec::data::SourceSpec::Csv { path: crate::spec::Named { name: "e.csv".into(), pos: Default::default() } };
        let e = super::super::load_with(&spec, &src, &d, &io1, &p.prep).unwrap().0;
        assert_eq!(e.targets[0].data, vec![1., 1., 1., 1.]);
    }

    #[test]
    fn unseen_validation_class_is_an_error() {
        let d = temp_dir("unseen");
        write(&d, "t.csv", "x,s\n1,a\n2,b\n");
        write(&d, "v.csv", "x,s\n1,a\n2,c\n");
        let e = err(load_in(&d, "train: t.csv\nvalidation: v.csv\ntarget: s\n", &io(&[("input", &[1])], &[("out", &[3], "categorical_crossentropy")])));
        assert_eq!(e, format!("{}: row 3, column 's': class 'c' does not occur in the training data (classes: a, b)", d.join("v.csv").display()));
    }

    #[test]
    fn sunspot_windows() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let src = "train: data/timeseries/sunspots.csv\nwindow: {column: sunactivity, size: 12}\nscale: 0.005\n";
        let p = load_in(repo, src, &io(&[("input", &[12, 1])], REG)).unwrap();
        assert_eq!(p.train.n, 297);
        assert_eq!(p.train.inputs[0].shape, vec![12, 1]);
        // Inputs and target scaled alike; window 0 = years 1700..1711, target 1712.
        let raw: Vec<f32> = std::fs::read_to_string(repo.join("data/timeseries/sunspots.csv"))
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
            .collect();
        assert_eq!(p.train.inputs[0].sample(0), raw[..12].iter().map(|v| v * 0.005).collect::<Vec<_>>().as_slice());
        assert_eq!(p.train.targets[0].data[0], raw[12] * 0.005);
        let mut back = vec![p.train.targets[0].data[296]];
        p.prep.restore_target(0, &mut back);
        assert!((back[0] - raw[308]).abs() < 1e-4);
        // test_split takes the last windows; a rank-1 input gets [size].
        let p = load_in(repo, &format!("{src}test_split: 0.2\n"), &io(&[("input", &[12])], REG)).unwrap();
        assert_eq!((p.train.n, p.test.as_ref().unwrap().n), (237, 60));
        assert_eq!(p.test.unwrap().targets[0].data[59], raw[308] * 0.005);
        assert_eq!(p.train.inputs[0].shape, vec![12]);
        let e = err(load_in(repo, src, &io(&[("input", &[48, 1])], REG)));
        assert!(e.ends_with("input 'input' has shape [48, 1], but `window.size` is 12: use input_shape [12, 1] (or [12])"), "{e}");
    }

    #[test]
    fn windows_with_missing_values() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let io1 = io(&[("input", &[4, 1])], REG);
        let e = err(load_in(repo, "train: data/timeseries/co2.csv\nwindow: {column: co2, size: 4}\n", &io1));
        assert!(e.ends_with("co2.csv: row 8, column 'co2': the value is empty (set `missing: drop` or `missing: mean` to skip or fill such values)"), "{e}");
        let p = load_in(repo, "train: data/timeseries/co2.csv\nwindow: {column: co2, size: 4}\nmissing: mean\n", &io1).unwrap();
        assert_eq!(p.train.n, 2284 - 4);
        assert!(p.train.inputs[0].data.iter().chain(&p.train.targets[0].data).all(|x| x.is_finite()));
        let p = load_in(repo, "train: data/timeseries/co2.csv\nwindow: {column: co2, size: 4}\nmissing: drop\n", &io1).unwrap();
        assert_eq!(p.train.n, 2284 - 59 - 4);
    }
}

#[cfg(test)]
mod typed_tests {
    use super::super::testutil::*;

    /// 30 rows of class a, 10 of b: a stratified 25% split holds 7.5 a's
    /// and 2.5 b's, so 7 and 2 and the last row to the tie's first class, a.
    #[test]
    fn stratified_splits_keep_class_shares() {
        let d = temp_dir("strat");
        let rows: String = (0..40).map(|i| format!("{i},{}\n", if i % 4 == 3 { "b" } else { "a" })).collect();
        std::fs::write(d.join("s.csv"), format!("x,y\n{rows}")).unwrap();
        let model = io(&[("input", &[1])], &[("out", &[2], "sparse_categorical_crossentropy")]);
        for key in ["test_split", "validation_split"] {
            let p = load_in(&d, &format!("train: s.csv\ntarget: y\nstratify: true\n{key}: 0.25\n"), &model).unwrap();
            let held = if key == "test_split" { p.test.unwrap() } else { p.validation.unwrap() };
            let b = held.targets[0].data.iter().filter(|&&v| v == 1.0).count();
            assert_eq!((held.n, b), (10, 2), "{key}");
            let train_b = p.train.targets[0].data.iter().filter(|&&v| v == 1.0).count();
            assert_eq!((p.train.n, train_b), (30, 8), "{key}");
        }
        // Without stratify, a seeded shuffle may give any mix; with it the same seed gives the same rows.
        let a = load_in(&d, "train: s.csv\ntarget: y\nstratify: true\ntest_split: 0.25\n", &model).unwrap();
        let b = load_in(&d, "train: s.csv\ntarget: y\nstratify: true\ntest_split: 0.25\n", &model).unwrap();
        assert_eq!(a.test.unwrap().inputs[0].data, b.test.unwrap().inputs[0].data);
    }

    #[test]
    fn sample_weights_are_read_and_never_features() {
        let d = temp_dir("weights");
        std::fs::write(d.join("w.csv"), "x,w,y\n1,0.5,0\n2,2,1\n3,1,0\n").unwrap();
        let model = io(&[("input", &[1])], &[("out", &[1], "binary_crossentropy")]);
        let p = load_in(&d, "train: w.csv\ntarget: y\nsample_weight: w\n", &model).unwrap();
        assert_eq!(p.train.weights.as_deref(), Some(&[0.5, 2.0, 1.0][..]));
        assert_eq!(p.train.inputs[0].data, [1.0, 2.0, 3.0]);
        std::fs::write(d.join("w.csv"), "x,w,y\n1,0.5,0\n2,-1,1\n").unwrap();
        let f = d.join("w.csv").display().to_string();
        assert_eq!(
            err(load_in(&d, "train: w.csv\ntarget: y\nsample_weight: w\n", &model)),
            format!("{f}: row 3, column 'w': '-1' is not a sample weight (`data.sample_weight` takes numbers >= 0 in every row)")
        );
        assert!(
            err(load_in(&d, "train: w.csv\ntarget: y\nsample_weight: w\nfeatures: [x, w]\n", &io(&[("input", &[2])], &[("out", &[1], "binary_crossentropy")])))
                .ends_with("column 'w' is both a feature of input 'input' and the sample weight; remove it from the features")
        );
        assert!(
            err(load_in(&d, "train: w.csv\ntarget: y\nsample_weight: wt\n", &model))
                .contains("no column 'wt' (from `data.sample_weight` at line 3 of the spec); did you mean 'w'?")
        );
    }

    /// A string column's vocabulary comes from the training split only: a
    /// category only the test rows hold is out-of-vocabulary there.
    #[test]
    fn vocabularies_come_from_the_training_split() {
        let d = temp_dir("vocab");
        std::fs::write(d.join("v.csv"), "c,y\nred,0\nred,1\nblue,0\nred,1\ngreen,0\n").unwrap();
        std::fs::write(d.join("t.csv"), "c,y\npink,0\nblue,1\n").unwrap();
        let model = io(&[("input", &[4])], &[("out", &[1], "binary_crossentropy")]);
        let p = load_in(&d, "train: v.csv\ntest: t.csv\ntarget: y\ncolumns: {c: string_categorical}\n", &model).unwrap();
        // [UNK], red (3), then blue and green tie at 1: the larger string first.
        let c = &p.prep.inputs[0].columns[0];
        assert_eq!(c.origin(), "c: 3 + 1 oov (string_categorical)");
        assert_eq!(p.train.inputs[0].data[..4], [0.0, 1.0, 0.0, 0.0]);
        assert_eq!(p.train.inputs[0].data[8..12], [0.0, 0.0, 0.0, 1.0], "blue after green");
        assert_eq!(p.test.unwrap().inputs[0].data, [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]);
    }
}
