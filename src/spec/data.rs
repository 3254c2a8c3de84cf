//! The `data` section: where the training data lives and how to prepare it.
//!
//! Only the structure is checked here (keys, types, combinations); columns
//! and shapes are checked against the files by `crate::data::load`.

use super::Named;
use super::args::Args;
use super::yaml::{Node, Value};
use crate::diag::{Diagnostic, Pos};
use serde::{Deserialize, Serialize};
use std::path::{Component, Path, PathBuf};

/// One data source: a CSV file or a pair of IDX files.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceSpec {
    Csv { path: Named },
    Idx { images: Named, labels: Named },
}

impl SourceSpec {
    pub fn is_csv(&self) -> bool {
        matches!(self, SourceSpec::Csv { .. })
    }

    /// IDX images whose labels are a CSV (one row per image): label text,
    /// such as the token sequences of a ctc output.
    pub fn csv_labels(&self) -> bool {
        matches!(self, SourceSpec::Idx { labels, .. } if labels.name.to_ascii_lowercase().ends_with(".csv"))
    }

    /// The file paths as written, with their positions.
    pub fn paths(&self) -> Vec<&Named> {
        match self {
            SourceSpec::Csv { path } => vec![path],
            SourceSpec::Idx { images, labels } => vec![images, labels],
        }
    }
}

/// A feature selector: one column, or an inclusive range by column order.
#[derive(Clone, Debug, PartialEq)]
pub enum Feature {
    Column(Named),
    Range { first: String, last: String, pos: Pos },
}

#[derive(Clone, Debug, PartialEq)]
pub struct WindowSpec {
    pub column: Named,
    pub size: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Normalize {
    None,
    Standard,
    Minmax,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Missing {
    Error,
    Drop,
    Mean,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DataSpec {
    pub train: SourceSpec,
    pub validation: Option<SourceSpec>,
    pub test: Option<SourceSpec>,
    /// 0 when not given.
    pub validation_split: f64,
    pub test_split: f64,
    pub shuffle_split: bool,
    /// One column per model output.
    pub target: Option<Vec<Named>>,
    pub features: Option<Vec<Feature>>,
    /// Model input name -> its features.
    pub inputs: Option<Vec<(Named, Vec<Feature>)>>,
    pub scale: Option<f64>,
    pub normalize: Normalize,
    pub missing: Missing,
    pub window: Option<WindowSpec>,
    /// Per-column types (`columns`); a column not listed is a number.
    pub columns: Vec<super::columns::ColumnSpec>,
    /// Cells that count as missing (`missing_values`).
    pub missing_values: Vec<String>,
    /// A column of per-row weights for the training loss.
    pub sample_weight: Option<Named>,
    /// Splits keep the class proportions of the (first) target.
    pub stratify: bool,
    pub pos: Pos,
}

/// Cells that count as missing unless `missing_values` says otherwise.
pub const MISSING_VALUES: &[&str] = &["", "NA", "NaN", "N/A", "null", "None"];

impl DataSpec {
    /// The type of column `name`: as `columns` lists it, or a number.
    pub fn column(&self, name: &str) -> Option<&super::columns::ColumnSpec> {
        self.columns.iter().find(|c| c.name.name == name)
    }
}

const SOURCE_KIND: &str = "a CSV path, {path: ...} or {images: ..., labels: ...}";

pub fn parse(node: &Node, diags: &mut Vec<Diagnostic>) -> Option<DataSpec> {
    if node.as_map().is_none() {
        diags.push(
            Diagnostic::error(format!("`data` must be a mapping with `train`, received {}", node.describe()), node.pos, "data")
                .with_hint("for example `data: {train: ../data/tabular/iris.csv, target: target}`"),
        );
        return None;
    }
    let mut a = Args::new(node, "data", "data", &[]);
    let train = match required(&mut a, "train", SOURCE_KIND, "`train: ../data/tabular/iris.csv`") {
        Some(n) => source(n, "data.train", &mut a.diags),
        None => None,
    };
    let validation = a.raw("validation", SOURCE_KIND, Some("None".into())).and_then(|n| source(n, "data.validation", &mut a.diags));
    let test = a.raw("test", SOURCE_KIND, Some("None".into())).and_then(|n| source(n, "data.test", &mut a.diags));
    let validation_split = a.float("validation_split", Some(0.0), 0.0, 1.0, true);
    let test_split = a.float("test_split", Some(0.0), 0.0, 1.0, true);
    let shuffle_split = a.bool("shuffle_split", true);
    let target = a.raw("target", "a column name or a list, one per model output", Some("None".into())).and_then(|n| {
        let names = match &n.value {
            Value::Str(s) => Some(vec![Named { name: s.clone(), pos: n.pos }]),
            Value::Seq(items) if !items.is_empty() => items.iter().map(|i| i.as_str().map(|s| Named { name: s.to_string(), pos: i.pos })).collect(),
            _ => None,
        };
        if names.is_none() {
            a.error("target", n, format!("must be a column name or a list of names, received {}", n.describe()), None);
        }
        names
    });
    let features = a
        .raw("features", "column names or \"first:last\" ranges", Some("all non-target columns".into()))
        .and_then(|n| parse_features(n, "data.features", &mut a.diags));
    let inputs = a.raw("inputs", "mapping from model input to its features", Some("None".into())).and_then(|n| {
        let Some(entries) = n.as_map().filter(|e| !e.is_empty()) else {
            a.error(
                "inputs",
                n,
                format!("must map model input names to features, received {}", n.describe()),
                Some("for example `inputs: {image: \"p0:p63\", meta: [ink_top, ink_bottom]}`".into()),
            );
            return None;
        };
        let mut out = Vec::new();
        for (k, v) in entries {
            let name = k.as_str().unwrap_or_default().to_string();
            out.push((Named { name: name.clone(), pos: k.pos }, parse_features(v, &format!("data.inputs.{name}"), &mut a.diags)?));
        }
        Some(out)
    });
    let scale = a.raw("scale", "a positive number or \"a/b\"", Some("1".into())).and_then(|n| {
        let v = match &n.value {
            Value::Str(s) => s.split_once('/').and_then(|(p, q)| Some(p.trim().parse::<f64>().ok()? / q.trim().parse::<f64>().ok()?)),
            _ => n.as_f64(),
        };
        let v = v.filter(|v| v.is_finite() && *v > 0.0);
        if v.is_none() {
            a.error("scale", n, format!("must be a positive number or a fraction like \"1/255\", received {}", n.describe()), None);
        }
        v
    });
    let normalize = match a.choice("normalize", Some("none"), &["none", "standard", "minmax"]) {
        "standard" => Normalize::Standard,
        "minmax" => Normalize::Minmax,
        _ => Normalize::None,
    };
    let missing = match a.choice("missing", Some("error"), &["error", "drop", "mean"]) {
        "drop" => Missing::Drop,
        "mean" => Missing::Mean,
        _ => Missing::Error,
    };
    let window = a.raw("window", "{column: name, size: n}", Some("None".into())).and_then(|n| window(n, &mut a.diags));
    let columns = a.raw("columns", "mapping from column name to type", Some("None".into())).map_or(Vec::new(), |n| super::columns::parse(n, &mut a.diags));
    let default_missing = format!("{MISSING_VALUES:?}");
    let missing_values = match a.raw("missing_values", "a list of strings", Some(default_missing)) {
        None => MISSING_VALUES.iter().map(|s| s.to_string()).collect(),
        Some(n) => {
            let v: Option<Vec<String>> =
                n.as_seq().and_then(|s| s.iter().map(|x| x.as_str().map(String::from).or_else(|| (x.value == Value::Null).then(String::new))).collect());
            match v {
                Some(v) if v.len() <= super::columns::MAX_MISSING_VALUES => v,
                Some(v) => {
                    a.error("missing_values", n, format!("lists {} values, more than the {} it may hold", v.len(), super::columns::MAX_MISSING_VALUES), None);
                    MISSING_VALUES.iter().map(|s| s.to_string()).collect()
                }
                None => {
                    let hint = Some("for example `missing_values: [\"\", NA, \"?\"]`".into());
                    a.error("missing_values", n, format!("must be a list of strings, received {}", n.describe()), hint);
                    MISSING_VALUES.iter().map(|s| s.to_string()).collect()
                }
            }
        }
    };
    let sample_weight = a.raw("sample_weight", "a column name", Some("None".into())).and_then(|n| match n.as_str() {
        Some(s) if !s.is_empty() => Some(Named { name: s.to_string(), pos: n.pos }),
        _ => {
            a.error("sample_weight", n, format!("must be a column name, received {}", n.describe()), None);
            None
        }
    });
    let stratify = a.bool("stratify", false);
    a.finish();
    diags.append(&mut a.diags);

    // Combinations.
    let key_pos = |k: &str| node.entry(k).map(|(k, _)| k.pos).unwrap_or(node.pos);
    let mut conflict = |a_key: &str, b_key: &str, hint: &str| {
        if node.get(a_key).is_some() && node.get(b_key).is_some() {
            diags.push(
                Diagnostic::error(format!("data: `{a_key}` and `{b_key}` cannot both be given"), key_pos(b_key), format!("data.{b_key}")).with_hint(hint),
            );
        }
    };
    conflict("features", "inputs", "use `features` for a single-input model, `inputs: {name: features}` for several inputs");
    conflict("validation", "validation_split", "keep one: a separate validation file, or a fraction of `train`");
    conflict("test", "test_split", "keep one: a separate test file, or a fraction of `train`");
    for key in ["target", "features", "inputs", "columns", "sample_weight", "stratify"] {
        conflict("window", key, "a window reads one column; its inputs and target are consecutive values of `window.column`");
    }
    if validation_split + test_split >= 1.0 {
        diags.push(
            Diagnostic::error("data: `validation_split` and `test_split` together leave no training data", key_pos("test_split"), "data.test_split")
                .with_hint("keep their sum below 1, e.g. 0.1 and 0.2"),
        );
    }
    let train = train?;
    for (key, s) in [("validation", &validation), ("test", &test)] {
        if let Some(s) = s
            && s.is_csv() != train.is_csv()
        {
            let kind = |c: bool| if c { "a CSV file" } else { "IDX files" };
            diags.push(
                Diagnostic::error(
                    format!("data: `{key}` is {} but `train` is {}", kind(s.is_csv()), kind(train.is_csv())),
                    key_pos(key),
                    format!("data.{key}"),
                )
                .with_hint("give every source in the same form"),
            );
        }
    }
    if !train.is_csv() {
        for key in ["target", "features", "inputs", "window", "columns", "sample_weight", "stratify"] {
            // A labels CSV may name its column.
            if key == "target" && train.csv_labels() {
                continue;
            }
            if node.get(key).is_some() {
                diags.push(Diagnostic::error(format!("data: `{key}` applies to CSV data only"), key_pos(key), format!("data.{key}")).with_hint(
                    "with IDX files the images are the input and the labels file the target (`target` only names the column of a labels CSV); remove this key",
                ));
            }
        }
    } else if target.is_none() && window.is_none() && node.get("target").is_none() {
        diags.push(
            Diagnostic::error("data: CSV data needs `target`, the label column", key_pos("train"), "data.target")
                .with_hint("add `target: <column>` (a list with one column per model output), or `window: {column, size}` for a time series"),
        );
    }
    Some(DataSpec {
        train,
        validation,
        test,
        validation_split,
        test_split,
        shuffle_split,
        target,
        features,
        inputs,
        scale,
        normalize,
        missing,
        window,
        columns,
        missing_values,
        sample_weight,
        stratify,
        pos: node.pos,
    })
}

impl DataSpec {
    /// Reports data files that don't exist, at the line that names them.
    pub fn check_files(&self, spec_dir: &Path, diags: &mut Vec<Diagnostic>) {
        let sources = [Some(&self.train), self.validation.as_ref(), self.test.as_ref()];
        for path in sources.into_iter().flatten().flat_map(SourceSpec::paths) {
            let resolved = resolve(spec_dir, &path.name);
            if !resolved.exists() {
                diags.push(
                    Diagnostic::error(format!("data file {} does not exist", resolved.display()), path.pos, "data")
                        .with_hint("paths are relative to the folder of the spec file"),
                );
            } else if !resolved.is_file() {
                diags.push(
                    Diagnostic::error(format!("data file {} is not a regular file", resolved.display()), path.pos, "data")
                        .with_hint("nnrun reads data from regular files only (not directories, FIFOs or devices); copy the data to a file"),
                );
            }
        }
    }
}

/// `spec_dir/path` with `.` and `..` folded, so messages show `data/x.csv`
/// rather than `specs/../data/x.csv`.
pub fn resolve(spec_dir: &Path, path: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for c in spec_dir.join(path).components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.components().next_back(), Some(Component::Normal(_))) => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    if out.as_os_str().is_empty() { PathBuf::from(".") } else { out }
}

/// Records the key and reports it when absent.
fn required<'a>(a: &mut Args<'a>, name: &'static str, kind: &str, example: &str) -> Option<&'a Node> {
    let n = a.raw(name, kind, Some("required".into()));
    if n.is_none() {
        let msg = format!("{}: missing required key `{name}` ({kind})", a.owner());
        a.diags.push(Diagnostic::error(msg, a.pos(), a.path().to_string()).with_hint(format!("add {example}")));
    }
    n
}

fn source(node: &Node, path: &str, diags: &mut Vec<Diagnostic>) -> Option<SourceSpec> {
    let named = |n: &Node| n.as_str().filter(|s| !s.is_empty()).map(|s| Named { name: s.to_string(), pos: n.pos });
    if let Some(p) = named(node) {
        return Some(SourceSpec::Csv { path: p });
    }
    if node.as_map().is_none() {
        diags.push(Diagnostic::error(format!("{path} must be {SOURCE_KIND}, received {}", node.describe()), node.pos, path));
        return None;
    }
    let mut a = Args::new(node, path, path, &[]);
    let file = |a: &mut Args, key: &'static str| {
        let n = a.raw(key, "a file path", Some("None".into()))?;
        let p = named(n);
        if p.is_none() {
            a.error(key, n, format!("must be a file path, received {}", n.describe()), None);
        }
        p
    };
    let csv = file(&mut a, "path");
    let images = file(&mut a, "images");
    let labels = file(&mut a, "labels");
    a.finish();
    let ok = !a.has_errors();
    diags.append(&mut a.diags);
    match (csv, images, labels) {
        (Some(p), None, None) => Some(SourceSpec::Csv { path: p }),
        (None, Some(images), Some(labels)) => Some(SourceSpec::Idx { images, labels }),
        _ if !ok => None,
        _ => {
            diags.push(
                Diagnostic::error(format!("{path} must give either `path` (CSV) or both `images` and `labels` (IDX)"), node.pos, path)
                    .with_hint("for example `{images: ../data/mnist/train-images-idx3-ubyte.gz, labels: ../data/mnist/train-labels-idx1-ubyte.gz}`"),
            );
            None
        }
    }
}

/// A feature list: a name, a "first:last" range, or a list of those.
fn parse_features(node: &Node, path: &str, diags: &mut Vec<Diagnostic>) -> Option<Vec<Feature>> {
    let one = |n: &Node| {
        let s = n.as_str()?;
        match s.split_once(':') {
            Some((a, b)) if !a.trim().is_empty() && !b.trim().is_empty() => Some(Feature::Range { first: a.trim().into(), last: b.trim().into(), pos: n.pos }),
            Some(_) => None,
            None if !s.is_empty() => Some(Feature::Column(Named { name: s.into(), pos: n.pos })),
            None => None,
        }
    };
    let out = match &node.value {
        Value::Str(_) => one(node).map(|f| vec![f]),
        Value::Seq(items) if !items.is_empty() => items.iter().map(one).collect(),
        _ => None,
    };
    if out.is_none() {
        diags.push(
            Diagnostic::error(format!("{path} must be column names or \"first:last\" ranges, received {}", node.describe()), node.pos, path)
                .with_hint("for example `[age, bmi]`, `\"p0:p63\"` or `[\"p0:p63\", ink_top]`"),
        );
    }
    out
}

fn window(node: &Node, diags: &mut Vec<Diagnostic>) -> Option<WindowSpec> {
    if node.as_map().is_none() {
        diags.push(
            Diagnostic::error(format!("data.window must be a mapping {{column, size}}, received {}", node.describe()), node.pos, "data.window")
                .with_hint("for example `window: {column: sunactivity, size: 12}`"),
        );
        return None;
    }
    let mut a = Args::new(node, "data.window", "data.window", &[]);
    let column = required(&mut a, "column", "a column name", "`column: <name>`").and_then(|n| match n.as_str() {
        Some(s) => Some(Named { name: s.to_string(), pos: n.pos }),
        None => {
            a.error("column", n, format!("must be a column name, received {}", n.describe()), None);
            None
        }
    });
    let size = required(&mut a, "size", "a positive integer", "`size: 12`").and_then(|n| match n.as_int() {
        Some(i) if i > 0 => Some(i as usize),
        _ => {
            a.error("size", n, format!("must be a positive integer, received {}", n.describe()), None);
            None
        }
    });
    a.finish();
    diags.append(&mut a.diags);
    Some(WindowSpec { column: column?, size: size? })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::yaml::parse as yaml;

    fn parse_str(src: &str) -> (Option<DataSpec>, Vec<Diagnostic>) {
        let mut d = Vec::new();
        let s = parse(&yaml(src).unwrap(), &mut d);
        (s, d)
    }

    #[test]
    fn reads_every_key() {
        let (s, d) = parse_str(
            "train: a.csv\nvalidation: {path: v.csv}\ntest_split: 0.2\nshuffle_split: false\ntarget: [y, z]\n\
             inputs: {img: \"p0:p63\", meta: [a, \"b:c\"]}\nscale: 1/255\nnormalize: standard\nmissing: mean\n",
        );
        assert!(d.is_empty(), "{d:?}");
        let s = s.unwrap();
        assert!(matches!(&s.train, SourceSpec::Csv { path } if path.name == "a.csv"));
        assert!(matches!(&s.validation, Some(SourceSpec::Csv { path }) if path.name == "v.csv"));
        assert_eq!((s.test_split, s.shuffle_split), (0.2, false));
        assert_eq!(s.target.unwrap().len(), 2);
        let inputs = s.inputs.unwrap();
        assert_eq!(inputs[0].0.name, "img");
        assert!(matches!(&inputs[1].1[1], Feature::Range { first, last, .. } if first == "b" && last == "c"));
        assert!((s.scale.unwrap() - 1.0 / 255.0).abs() < 1e-12);
        assert_eq!((s.normalize, s.missing), (Normalize::Standard, Missing::Mean));
    }

    #[test]
    fn idx_and_window_forms() {
        let (s, d) = parse_str("train: {images: i.gz, labels: l.gz}\ntest: {images: ti, labels: tl}\n");
        assert!(d.is_empty(), "{d:?}");
        assert!(!s.unwrap().train.is_csv());
        let (s, d) = parse_str("train: s.csv\nwindow: {column: v, size: 12}\nscale: 0.005\n");
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(s.unwrap().window.unwrap().size, 12);
    }

    #[test]
    fn errors_point_at_the_key() {
        let (_, d) = parse_str("train: a.csv\ntarget: y\ntest_splt: 0.2\n");
        assert_eq!(d[0].message, "data: unknown argument `test_splt`");
        assert_eq!(d[0].hint.as_deref(), Some("did you mean `test_split`?"));
        assert_eq!(d[0].pos.line, 3);
        let (_, d) = parse_str("train: a.csv\ntarget: y\nfeatures: [a]\ninputs: {x: [a]}\n");
        assert_eq!(d[0].message, "data: `features` and `inputs` cannot both be given");
        assert_eq!(d[0].pos.line, 4);
        let (_, d) = parse_str("train: a.csv\ntarget: y\nwindow: {column: v, size: 3}\n");
        assert_eq!(d[0].message, "data: `window` and `target` cannot both be given");
        let (_, d) = parse_str("train: a.csv\n");
        assert_eq!(d[0].message, "data: CSV data needs `target`, the label column");
        let (_, d) = parse_str("target: y\n");
        assert_eq!(d[0].message, "data: missing required key `train` (a CSV path, {path: ...} or {images: ..., labels: ...})");
        let (_, d) = parse_str("train: {images: i}\n");
        assert!(d[0].message.contains("either `path` (CSV) or both `images` and `labels`"), "{d:?}");
        let (_, d) = parse_str("train: a.csv\ntarget: y\nscale: -1\nnormalize: std\nvalidation_split: 1.5\nwindow: {column: v, size: 0}\n");
        let msgs: Vec<_> = d.iter().map(|d| d.message.as_str()).collect();
        assert!(msgs.contains(&"data: `scale` must be a positive number or a fraction like \"1/255\", received -1"), "{msgs:?}");
        assert!(msgs.contains(&"data: `validation_split` must be a number in [0, 1), received 1.5"), "{msgs:?}");
        assert!(msgs.contains(&"data.window: `size` must be a positive integer, received 0"), "{msgs:?}");
        assert!(d.iter().any(|d| d.hint.as_deref() == Some("did you mean 'standard'?")));
        let (_, d) = parse_str("train: {images: i, labels: l}\ntarget: y\ntest: t.csv\n");
        let msgs: Vec<_> = d.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(msgs, ["data: `test` is a CSV file but `train` is IDX files", "data: `target` applies to CSV data only"]);
    }

    #[test]
    fn missing_files_name_the_line_and_resolved_path() {
        let (s, _) = parse_str("train: ../nope/x.csv\ntarget: y\n");
        let mut d = Vec::new();
        s.unwrap().check_files(Path::new("specs"), &mut d);
        assert_eq!(d[0].message, "data file nope/x.csv does not exist");
        assert_eq!(d[0].pos.line, 1);
        assert_eq!(resolve(Path::new("specs"), "../data/a.csv"), PathBuf::from("data/a.csv"));
        assert_eq!(resolve(Path::new("../x"), "../../a.csv"), PathBuf::from("../../a.csv"));
    }

    #[test]
    fn example_specs_data_sections_parse_and_their_files_exist() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs");
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let Ok(text) = std::fs::read_to_string(&path) else { continue };
            let Some(node) = yaml(&text).ok().and_then(|root| root.get("data").cloned()) else { continue };
            let mut d = Vec::new();
            if let Some(s) = parse(&node, &mut d) {
                s.check_files(&dir, &mut d);
            }
            assert!(d.is_empty(), "{}: {d:?}", path.display());
        }
    }
}
