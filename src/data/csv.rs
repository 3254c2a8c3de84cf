//! CSV sources: a header row, then one sample per line. Columns are picked
//! by name (or "first:last" ranges) from the `data` section.

use super::columns::{self, CellType, Read};
use super::prep::{Column, Table, Values};
use super::{DataError, DataFile, ModelIo, SourceKind};
use crate::diag::did_you_mean;
use crate::io::{LineLimit, ReadError};
use crate::spec::Named;
use crate::spec::data::{DataSpec, Feature, Missing};
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

/// Column indices per model input, and one per output.
struct Selection {
    inputs: Vec<Vec<usize>>,
    targets: Vec<usize>,
    /// `data.sample_weight`'s column.
    weight: Option<usize>,
    /// What chose the inputs' columns, for messages.
    what: &'static str,
}

/// A CSV file being read: a regular file, lines at most `io::MAX_LINE_BYTES` long.
pub type CsvReader = csv::Reader<LineLimit<BufReader<File>>>;

/// Opens a CSV file (fields trimmed, the first row the header). FIFOs and
/// devices are refused, and a line can't grow without end.
pub fn open(path: &Path, file: &str) -> Result<CsvReader, DataError> {
    let (f, _) = crate::io::open_regular(path).map_err(|e| match e {
        ReadError::Io { source, .. } => DataError::Unreadable { file: file.to_string(), msg: format!("cannot read: {source}") },
        e => DataError::Read(e),
    })?;
    Ok(csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(LineLimit::new(BufReader::new(f), crate::io::MAX_LINE_BYTES)))
}

/// A numeric cell: `Ok(Some(x))` for a finite number, `Ok(None)` for a
/// missing value (empty, text or NaN: `missing` decides), `Err` for an
/// infinite one (`inf`, or past float32's range), which no policy accepts.
pub fn parse_cell(s: &str) -> Result<Option<f32>, String> {
    match s.parse::<f32>() {
        Ok(x) if x.is_finite() => Ok(Some(x)),
        Ok(x) if x.is_infinite() => Err(not_finite(s, "a missing value is left empty")),
        _ => Ok(None),
    }
}

/// The message for a number that is NaN or infinite as float32.
pub(crate) fn not_finite(s: &str, hint: &str) -> String {
    format!("'{s}' is not a finite number (float32 holds magnitudes up to 3.4e38; {hint})")
}

pub(crate) fn read(f: &DataFile, spec: &DataSpec, io: &ModelIo) -> Result<Table, DataError> {
    let file = f.name.as_str();
    let mut rdr = open(&f.path, file)?;
    let headers: Vec<String> = rdr.headers().map_err(|e| csv_error(file, e))?.iter().map(String::from).collect();
    if headers.iter().all(|h| h.is_empty() || h.parse::<f64>().is_ok()) {
        return Err(DataError::file(file, "line 1 should be a header row with column names, but it looks like data; add a header row (e.g. `x1,x2,target`)"));
    }
    if let Some((i, h)) = headers.iter().enumerate().find(|(i, h)| headers[..*i].contains(h)) {
        return Err(DataError::file(
            file,
            format!("column '{h}' appears twice in the header (columns {} and {}); rename one", headers.iter().position(|x| x == h).unwrap() + 1, i + 1),
        ));
    }
    let sel = select(file, &headers, spec, io)?;
    let markers = &spec.missing_values;
    let window = spec.window.is_some();

    // Per input, per selected column: how its cells are read, and its rule for missing values.
    let rules: Vec<Vec<(CellType, Missing)>> = sel
        .inputs
        .iter()
        .map(|cols| {
            cols.iter()
                .map(|&c| {
                    let col = spec.column(&headers[c]);
                    (col.map_or(CellType::Number, |k| CellType::of(&k.kind)), col.and_then(|k| k.missing).unwrap_or(spec.missing))
                })
                .collect()
        })
        .collect();
    let mut cols: Vec<Vec<Values>> =
        rules.iter().map(|r| r.iter().map(|(t, _)| if *t == CellType::Number { Values::Num(Vec::new()) } else { Values::Str(Vec::new()) }).collect()).collect();
    let mut targets: Vec<Vec<String>> = vec![Vec::new(); sel.targets.len()];
    let mut weights: Option<Vec<f32>> = sel.weight.map(|_| Vec::new());
    let mut rows = Vec::new();
    let mut rec = csv::StringRecord::new();
    let cell_err = |line: usize, c: usize, msg: String| DataError::Cell {
        file: file.into(),
        row: line,
        column: headers[c].clone(),
        msg: msg.replace("{column}", &headers[c]),
    };
    while rdr.read_record(&mut rec).map_err(|e| csv_error(file, e))? {
        let line = rec.position().map_or(0, |p| p.line() as usize);
        let mut drop = false;
        let mut row_vals: Vec<(usize, usize, Read)> = Vec::new();
        for (i, (sel_cols, rule)) in sel.inputs.iter().zip(&rules).enumerate() {
            for (j, (&c, &(ty, missing))) in sel_cols.iter().zip(rule).enumerate() {
                let s = &rec[c];
                match columns::read_cell(s, ty, markers).map_err(|m| cell_err(line, c, m))? {
                    Read::Missing => match missing {
                        Missing::Drop => drop = true,
                        Missing::Mean => row_vals.push((i, j, Read::Missing)),
                        Missing::Error => {
                            let what = if s.is_empty() { "the value is empty".to_string() } else { format!("'{s}' is a missing value") };
                            let ty_name = spec.column(&headers[c]).map_or("number", |k| k.type_name);
                            let hint = columns::missing_hint(ty_name);
                            return Err(cell_err(line, c, format!("{what} ({hint})")));
                        }
                    },
                    Read::Num(x) => row_vals.push((i, j, Read::Num(x))),
                    Read::Text(t) => {
                        if let Some(crate::spec::columns::ColumnKind::Text(ts)) = spec.column(&headers[c]).map(|k| &k.kind)
                            && columns::token_bound(&t, ts.split, &ts.ngrams) > crate::spec::columns::MAX_CELL_TOKENS
                        {
                            let max = crate::spec::columns::MAX_CELL_TOKENS;
                            return Err(cell_err(line, c, format!("the text gives more than {max} tokens (n-grams included), more than one cell may give")));
                        }
                        row_vals.push((i, j, Read::Text(t)))
                    }
                }
            }
        }
        let mut target_cells = Vec::with_capacity(sel.targets.len());
        for &c in &sel.targets {
            let s = &rec[c];
            let s = if markers.iter().any(|m| m == s) { "" } else { s };
            if s.is_empty() && spec.missing == Missing::Drop {
                drop = true;
            }
            target_cells.push(s.to_string());
        }
        let mut weight = None;
        if let Some(c) = sel.weight {
            let s = &rec[c];
            match s.parse::<f32>() {
                Ok(w) if w.is_finite() && w >= 0.0 => weight = Some(w),
                _ if markers.iter().any(|m| m == s) && spec.missing == Missing::Drop => drop = true,
                _ => return Err(cell_err(line, c, format!("'{s}' is not a sample weight (`data.sample_weight` takes numbers >= 0 in every row)"))),
            }
        }
        if drop {
            continue;
        }
        for (i, j, read) in row_vals {
            match (&mut cols[i][j], read) {
                (Values::Num(v), Read::Num(x)) => v.push(x),
                (Values::Num(v), Read::Missing) => v.push(f32::NAN),
                (Values::Str(v), Read::Text(t)) => v.push(t),
                (Values::Str(v), Read::Missing) => v.push(String::new()),
                _ => unreachable!("a cell is read as its column's type"),
            }
        }
        for (t, cell) in targets.iter_mut().zip(target_cells) {
            t.push(cell);
        }
        if let (Some(w), Some(x)) = (&mut weights, weight) {
            w.push(x);
        }
        rows.push(line);
    }
    let n = rows.len();
    let mut table = Table {
        file: file.into(),
        kind: SourceKind::Csv,
        n,
        inputs: vec![Vec::new(); sel.inputs.len()],
        widths: vec![0; sel.inputs.len()],
        features: sel.inputs.iter().map(|c| c.iter().map(|&c| headers[c].clone()).collect()).collect(),
        cols: cols
            .into_iter()
            .zip(&sel.inputs)
            .map(|(vals, sel_cols)| {
                vals.into_iter().zip(sel_cols).map(|(values, &c)| Column { name: headers[c].clone(), file: file.into(), width: 1, values }).collect()
            })
            .collect(),
        targets: sel
            .targets
            .iter()
            .zip(targets)
            .map(|(&c, v)| Column { name: headers[c].clone(), file: file.into(), width: 1, values: Values::Str(v) })
            .collect(),
        weights,
        rows,
        selected: sel.what.to_string(),
        mean_fill: spec.missing == Missing::Mean || rules.iter().flatten().any(|(_, m)| *m == Missing::Mean),
    };
    // A window's series is a plain number column: no fitting, no encoding.
    if window {
        let Values::Num(v) = std::mem::replace(&mut table.cols[0][0].values, Values::Num(Vec::new())) else { unreachable!("a window column is numeric") };
        table.inputs[0] = v;
        table.widths[0] = 1;
        table.cols[0].clear();
    }
    Ok(table)
}

/// One text column of a labels CSV that pairs with IDX images row by row:
/// `target` names it, or the file has a single column.
pub(crate) fn read_labels(f: &DataFile, target: Option<&Named>) -> Result<(String, Vec<String>), DataError> {
    let file = f.name.as_str();
    let mut rdr = open(&f.path, file)?;
    let headers: Vec<String> = rdr.headers().map_err(|e| csv_error(file, e))?.iter().map(String::from).collect();
    let c = match (target, headers.len()) {
        (Some(t), _) => headers.iter().position(|h| *h == t.name).ok_or_else(|| {
            DataError::file(file, format!("no column '{}' (from `target` at line {} of the spec); the columns are: {}", t.name, t.pos.line, headers.join(", ")))
        })?,
        (None, 1) => 0,
        (None, _) => {
            return Err(DataError::file(
                file,
                format!("has {} columns ({}); name the label column with `target: <column>` in the data section", headers.len(), headers.join(", ")),
            ));
        }
    };
    let mut out = Vec::new();
    let mut rec = csv::StringRecord::new();
    while rdr.read_record(&mut rec).map_err(|e| csv_error(file, e))? {
        out.push(rec[c].to_string());
    }
    Ok((headers[c].clone(), out))
}

pub(crate) fn csv_error(file: &str, e: csv::Error) -> DataError {
    let line = |p: Option<&csv::Position>| p.map_or(String::new(), |p| format!("line {}: ", p.line()));
    let msg = match e.kind() {
        csv::ErrorKind::UnequalLengths { pos, expected_len, len } => {
            format!("{}{len} fields, but the header has {expected_len}; every row needs one value per column", line(pos.as_ref()))
        }
        csv::ErrorKind::Utf8 { pos, .. } => format!("{}not valid UTF-8 text", line(pos.as_ref())),
        // An endless line (io::LineLimit) is the contents' fault, not the disk's.
        csv::ErrorKind::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => e.to_string(),
        csv::ErrorKind::Io(e) => return DataError::Unreadable { file: file.to_string(), msg: format!("cannot read: {e}") },
        _ => e.to_string(),
    };
    DataError::file(file, msg)
}

fn select(file: &str, headers: &[String], spec: &DataSpec, io: &ModelIo) -> Result<Selection, DataError> {
    let find = |n: &Named, key: &str| -> Result<usize, DataError> {
        headers.iter().position(|h| *h == n.name).ok_or_else(|| {
            let sep = did_you_mean(&n.name, headers.iter().map(String::as_str)).map_or(". ".into(), |m| format!("; did you mean '{m}'? "));
            let cols = if headers.len() <= 12 { headers.join(", ") } else { format!("{}, ... ({} in all)", headers[..10].join(", "), headers.len()) };
            DataError::file(file, format!("no column '{}' (from `{key}` at line {} of the spec){sep}The columns are: {cols}", n.name, n.pos.line))
        })
    };
    let names = |v: &[(String, Vec<usize>)]| v.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ");

    if let Some(w) = &spec.window {
        if io.inputs.len() != 1 || io.outputs.len() != 1 {
            return Err(DataError::file(
                file,
                format!("`window` feeds one input and one output, but the model has {} inputs and {} outputs", io.inputs.len(), io.outputs.len()),
            ));
        }
        return Ok(Selection { inputs: vec![vec![find(&w.column, "data.window.column")?]], targets: Vec::new(), weight: None, what: "`window.column`" });
    }

    let target_names = spec.target.as_deref().unwrap_or_default();
    if target_names.len() != io.outputs.len() {
        let outs: Vec<&str> = io.outputs.iter().map(|o| o.name.as_str()).collect();
        return Err(DataError::file(
            file,
            format!(
                "`target` names {} column(s) but the model has {} output(s) ({}); give one column per output, in output order",
                target_names.len(),
                outs.len(),
                outs.join(", ")
            ),
        ));
    }
    let targets = target_names.iter().map(|n| find(n, "data.target")).collect::<Result<Vec<_>, _>>()?;
    let weight = spec.sample_weight.as_ref().map(|n| find(n, "data.sample_weight")).transpose()?;
    for c in &spec.columns {
        if !headers.contains(&c.name.name) {
            let n = Named { name: c.name.name.clone(), pos: c.name.pos };
            find(&n, "data.columns")?;
        }
    }

    let resolve = |feats: &[Feature], key: &str| -> Result<Vec<usize>, DataError> {
        let mut cols = Vec::new();
        for f in feats {
            match f {
                Feature::Column(n) => cols.push(find(n, key)?),
                Feature::Range { first, last, pos } => {
                    let a = find(&Named { name: first.clone(), pos: *pos }, key)?;
                    let b = find(&Named { name: last.clone(), pos: *pos }, key)?;
                    if a > b {
                        return Err(DataError::file(
                            file,
                            format!("range '{first}:{last}' (`{key}`, line {} of the spec) runs backwards: '{first}' comes after '{last}'", pos.line),
                        ));
                    }
                    cols.extend(a..=b);
                }
            }
        }
        Ok(cols)
    };
    let (inputs, what): (Vec<Vec<usize>>, &'static str) = if let Some(map) = &spec.inputs {
        for (k, _) in map {
            if !io.inputs.iter().any(|(n, _)| *n == k.name) {
                let dym = did_you_mean(&k.name, io.inputs.iter().map(|(n, _)| n.as_str())).map_or(String::new(), |m| format!("did you mean '{m}'? "));
                return Err(DataError::file(
                    file,
                    format!(
                        "`data.inputs` names '{}' (line {} of the spec), which is not a model input; {dym}the inputs are: {}",
                        k.name,
                        k.pos.line,
                        names(&io.inputs)
                    ),
                ));
            }
        }
        let mut v = Vec::new();
        for (name, _) in &io.inputs {
            let Some((_, feats)) = map.iter().find(|(k, _)| k.name == *name) else {
                return Err(DataError::file(file, format!("model input '{name}' has no features in `data.inputs`; add `{name}: [columns]`")));
            };
            v.push(resolve(feats, &format!("data.inputs.{name}"))?);
        }
        (v, "its features in `data.inputs`")
    } else if io.inputs.len() > 1 {
        return Err(DataError::file(
            file,
            format!(
                "the model has {} inputs ({}); give each its columns with `inputs: {{{}: [...], ...}}` instead of `features`",
                io.inputs.len(),
                names(&io.inputs),
                io.inputs[0].0
            ),
        ));
    } else if let Some(f) = &spec.features {
        (vec![resolve(f, "data.features")?], "`features`")
    } else {
        (vec![(0..headers.len()).filter(|c| !targets.contains(c) && Some(*c) != weight).collect()], "all non-target columns")
    };

    for ((name, _), cols) in io.inputs.iter().zip(&inputs) {
        if let Some(c) = cols.iter().find(|c| targets.contains(c)) {
            return Err(DataError::file(
                file,
                format!("column '{}' is both a feature of input '{name}' and a target; remove it from the features", headers[*c]),
            ));
        }
        if let Some(c) = cols.iter().find(|&&c| Some(c) == weight) {
            return Err(DataError::file(
                file,
                format!("column '{}' is both a feature of input '{name}' and the sample weight; remove it from the features", headers[*c]),
            ));
        }
    }
    Ok(Selection { inputs, targets, weight, what })
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use std::path::Path;

    fn write(dir: &Path, name: &str, text: &str) -> String {
        std::fs::write(dir.join(name), text).unwrap();
        dir.join(name).display().to_string()
    }

    const REG: &[(&str, &[usize], &str)] = &[("out", &[1], "mean_squared_error")];

    #[test]
    fn numeric_features_default_to_non_target_columns() {
        let d = temp_dir("num");
        write(&d, "a.csv", "a,b,y\n1,2,3\n4,5,6\n");
        let p = load_in(&d, "train: a.csv\ntarget: y\n", &io(&[("input", &[2])], REG)).unwrap();
        assert_eq!(p.train.inputs[0].data, vec![1., 2., 4., 5.]);
        assert_eq!(p.train.targets[0].data, vec![3., 6.]);
        assert_eq!(p.prep.inputs[0].features, ["a", "b"]);
        // {path: ...} form, a feature subset and a reshape to [1, 1].
        let p = load_in(&d, "train: {path: a.csv}\ntarget: y\nfeatures: b\n", &io(&[("input", &[1, 1])], REG)).unwrap();
        assert_eq!((p.train.inputs[0].shape.clone(), p.train.inputs[0].data.clone()), (vec![1, 1], vec![2., 5.]));
    }

    #[test]
    fn ranges_and_multi_input() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let io2 = io(&[("image", &[8, 8, 1]), ("meta", &[4])], &[("digit", &[10], "sparse_categorical_crossentropy"), ("odd", &[1], "binary_crossentropy")]);
        let src = "train: data/tabular/digits_dag.csv\ntarget: [target, odd]\ninputs: {meta: \"ink_top:ink_right\", image: \"p0:p63\"}\nscale: 1/16\n";
        let p = load_in(repo, src, &io2).unwrap();
        assert_eq!(p.train.n, 1797);
        assert_eq!(p.train.inputs[0].shape, vec![8, 8, 1]);
        assert_eq!(p.prep.inputs[1].features, ["ink_top", "ink_bottom", "ink_left", "ink_right"]);
        let (digit, odd) = (&p.train.targets[0].data, &p.train.targets[1].data);
        assert!(digit.iter().zip(odd).all(|(d, o)| (*d as u32 % 2) as f32 == *o));
        // A list mixing a range and names.
        let io1 = io(&[("input", &[66])], &[("digit", &[10], "categorical_crossentropy")]);
        let p = load_in(repo, "train: data/tabular/digits_dag.csv\ntarget: target\nfeatures: [\"p0:p63\", ink_top, ink_left]\n", &io1).unwrap();
        assert_eq!(p.prep.inputs[0].features[64..], ["ink_top", "ink_left"]);
    }

    #[test]
    fn string_targets_become_sorted_classes() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let p =
            load_in(repo, "train: data/tabular/wine_named.csv\ntarget: class\n", &io(&[("input", &[13])], &[("o", &[3], "sparse_categorical_crossentropy")]))
                .unwrap();
        assert_eq!(p.prep.outputs[0].classes.as_deref().unwrap(), ["class_0", "class_1", "class_2"]);
        assert_eq!(p.train.targets[0].data[0], 0.0);
        assert_eq!(p.train.targets[0].data[177], 2.0);
    }

    #[test]
    fn missing_value_policies() {
        let d = temp_dir("missing");
        // `NA`, `N/A`, `null`, `None`, `NaN` and empty cells are missing; other text in a number column is an error.
        let f = write(&d, "m.csv", "age,w,y\n1,10,0\nNA,20,1\n3,,2\n5,40,\n");
        let io1 = io(&[("input", &[2])], REG);
        assert_eq!(
            err(load_in(&d, "train: m.csv\ntarget: y\n", &io1)),
            format!("{f}: row 3, column 'age': 'NA' is a missing value (set `missing: drop` or `missing: mean` to skip or fill such values)")
        );
        let p = load_in(&d, "train: m.csv\ntarget: y\nmissing: drop\n", &io1).unwrap();
        assert_eq!((p.train.n, p.train.inputs[0].data.clone()), (1, vec![1., 10.]));
        // mean: the training mean fills features; an empty target stays an error.
        assert_eq!(
            err(load_in(&d, "train: m.csv\ntarget: y\nmissing: mean\n", &io1)),
            format!("{f}: row 5, column 'y': the target is empty (set `missing: drop` to skip rows without a target)")
        );
        write(&d, "m.csv", "age,w,y\n1,10,0\nN/A,20,1\n3,null,2\n5,40,3\n");
        let p = load_in(&d, "train: m.csv\ntarget: y\nmissing: mean\n", &io1).unwrap();
        assert_eq!(p.train.inputs[0].data, vec![1., 10., 3., 20., 3., 70. / 3., 5., 40.]);
        assert_eq!(p.prep.inputs[0].fill.as_deref(), Some(&[3.0, 70. / 3.][..]));
        // A word in a number column suggests declaring it, whatever `missing` says.
        write(&d, "m.csv", "age,w,y\n1,10,0\nabc,20,1\n");
        for m in ["error", "drop", "mean"] {
            assert_eq!(
                err(load_in(&d, &format!("train: m.csv\ntarget: y\nmissing: {m}\n"), &io1)),
                format!(
                    "{f}: row 3, column 'age': 'abc' is not a number; if this column holds categories, declare it in `data.columns` (e.g. `age: string_categorical`), or list 'abc' in `missing_values` if it marks a missing value"
                )
            );
        }
        // `missing_values` replaces the list.
        let p = load_in(&d, "train: m.csv\ntarget: y\nmissing: drop\nmissing_values: [abc]\n", &io1).unwrap();
        assert_eq!(p.train.n, 1);
    }

    /// NaN is a missing value (`missing` decides); an infinite one is never accepted.
    #[test]
    fn infinite_values_are_errors_and_nan_is_missing() {
        let d = temp_dir("inf");
        let f = write(&d, "i.csv", "a,b,y\n1,NaN,0\n2,inf,1\n");
        let io1 = io(&[("input", &[2])], REG);
        let hint = "(float32 holds magnitudes up to 3.4e38; a missing value is left empty)";
        for missing in ["error", "drop", "mean"] {
            let e = err(load_in(&d, &format!("train: i.csv\ntarget: y\nmissing: {missing}\n"), &io1));
            let want = if missing == "error" {
                format!("{f}: row 2, column 'b': 'NaN' is a missing value (set `missing: drop` or `missing: mean` to skip or fill such values)")
            } else {
                format!("{f}: row 3, column 'b': 'inf' is not a finite number {hint}")
            };
            assert_eq!(e, want);
        }
        write(&d, "i.csv", "a,b,y\n1,NaN,0\n2,3,1\n4,1e39,1\n");
        assert_eq!(err(load_in(&d, "train: i.csv\ntarget: y\nmissing: drop\n", &io1)), format!("{f}: row 4, column 'b': '1e39' is not a finite number {hint}"));
        write(&d, "i.csv", "a,b,y\n1,NaN,0\n2,3,1\n");
        assert_eq!(load_in(&d, "train: i.csv\ntarget: y\nmissing: drop\n", &io1).unwrap().train.n, 1);
        // Targets: an infinite number is no class name and no value.
        write(&d, "t.csv", "a,b,y\n1,2,0\n2,3,-inf\n");
        assert_eq!(
            err(load_in(&d, "train: t.csv\ntarget: y\n", &io1)),
            format!(
                "{}: row 3, column 'y': '-inf' is not a finite number (float32 holds magnitudes up to 3.4e38; leave a missing target empty and set `missing: drop`)",
                d.join("t.csv").display()
            )
        );
    }

    #[test]
    fn endless_lines_and_special_files_are_refused() {
        let d = temp_dir("long");
        let f = write(&d, "l.csv", &format!("a,y\n{},1\n", "9".repeat((crate::io::MAX_LINE_BYTES + 1) as usize)));
        let e = err(load_in(&d, "train: l.csv\ntarget: y\n", &io(&[("input", &[1])], REG)));
        assert_eq!(e, format!("{f}: line 2 is longer than 16777216 bytes (is this a text file?)"));
        let fifo = d.join("f.csv");
        if std::process::Command::new("mkfifo").arg(&fifo).status().is_ok_and(|s| s.success()) {
            let e = super::super::load(&spec("train: f.csv\ntarget: y\n"), &d, &io(&[("input", &[1])], REG), 1, None).unwrap_err();
            assert!(e.to_string().contains("f.csv (named at line 1 of the spec): it is a FIFO (named pipe), not a regular file"), "{e}");
            assert!(e.is_io());
        }
    }

    #[test]
    fn error_messages() {
        let d = temp_dir("errs");
        let f = write(&d, "e.csv", "age,weight,y\n1,2,3\n4,5\n");
        let io1 = io(&[("input", &[2])], REG);
        let e = |src: &str, io: &super::ModelIo| err(load_in(&d, src, io));
        assert_eq!(e("train: e.csv\ntarget: y\n", &io1), format!("{f}: line 3: 2 fields, but the header has 3; every row needs one value per column"));
        write(&d, "e.csv", "age,weight,y\n1,2,3\n");
        assert_eq!(
            e("train: e.csv\ntarget: wieght\n", &io1),
            format!("{f}: no column 'wieght' (from `data.target` at line 2 of the spec); did you mean 'weight'? The columns are: age, weight, y")
        );
        assert!(
            e("train: e.csv\ntarget: y\nfeatures: [age, zzz]\n", &io1)
                .contains("no column 'zzz' (from `data.features` at line 3 of the spec). The columns are")
        );
        assert!(
            e("train: e.csv\ntarget: y\nfeatures: \"weight:age\"\n", &io1).contains("range 'weight:age' (`data.features`, line 3 of the spec) runs backwards")
        );
        assert!(
            e("train: e.csv\ntarget: y\nfeatures: [age, y]\n", &io1)
                .ends_with("column 'y' is both a feature of input 'input' and a target; remove it from the features")
        );
        assert!(e("train: e.csv\ntarget: y\n", &io(&[("input", &[3])], REG)).ends_with(
            "input 'input' has shape [3] (3 values per sample) but all non-target columns select 2 column(s); select 3 columns or change the input shape"
        ));
        let two = io(&[("a", &[1]), ("b", &[1])], REG);
        assert!(e("train: e.csv\ntarget: y\n", &two).contains("the model has 2 inputs (a, b); give each its columns with `inputs: {a: [...], ...}`"));
        assert!(
            e("train: e.csv\ntarget: y\ninputs: {a: age, c: weight}\n", &two)
                .contains("`data.inputs` names 'c' (line 3 of the spec), which is not a model input; the inputs are: a, b")
        );
        assert!(e("train: e.csv\ntarget: y\ninputs: {a: age}\n", &two).contains("model input 'b' has no features in `data.inputs`"));
        assert!(e("train: e.csv\ntarget: [y, age]\n", &io1).contains("`target` names 2 column(s) but the model has 1 output(s) (out)"));
        write(&d, "e.csv", "1,2,3\n4,5,6\n");
        assert!(
            e("train: e.csv\ntarget: y\n", &io1)
                .ends_with("line 1 should be a header row with column names, but it looks like data; add a header row (e.g. `x1,x2,target`)")
        );
        write(&d, "e.csv", "a,a,y\n1,2,3\n");
        assert!(e("train: e.csv\ntarget: y\n", &io1).ends_with("column 'a' appears twice in the header (columns 1 and 2); rename one"));
    }
}
