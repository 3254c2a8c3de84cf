//! The model file format, read and written here only, and the run
//! directory's other files, each written atomically (temp file, fsync,
//! rename), so a crash never leaves a truncated file where a good one was.
//!
//! A model file is a safetensors file: float32 tensors named
//! `<layer>.<weight>` that tile the data region, and string metadata
//! (`Metadata`). A model file is untrusted input: everything it claims is
//! checked against the embedded spec before use.

use crate::data::PrepState;
use crate::model::Net;
use crate::spec::yaml;
use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// Format version of the metadata nnrun writes into model.safetensors.
pub const FORMAT_VERSION: &str = "1";

/// Writes `bytes` to `path` so readers see the old file or the new one, never half.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // Make the rename itself durable.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        remove_stale_temps(dir, &name);
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Deletes temp files of earlier writers of `name` that were killed before
/// their rename: incomplete copies nobody will finish.
fn remove_stale_temps(dir: &Path, name: &str) {
    let prefix = format!(".{name}.tmp-");
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = file.strip_prefix(&prefix) else { continue };
        // A writer that is still running (Linux shows it in /proc) keeps its file.
        if pid != std::process::id().to_string() && Path::new("/proc").join(pid).exists() {
            continue;
        }
        let _ = std::fs::remove_file(entry.path());
    }
}

/// The metadata of a model file, as `__metadata__` in its header: every
/// value a string (the safetensors format), so numbers are decimal text and
/// structures JSON text. Keys unknown to this nnrun are ignored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    #[serde(rename = "nnrun.format_version")]
    pub format_version: String,
    /// The nnrun that wrote the file.
    #[serde(rename = "nnrun.version")]
    pub version: String,
    /// The resolved spec (overrides applied), as YAML.
    #[serde(rename = "nnrun.spec")]
    pub spec: String,
    #[serde(rename = "nnrun.preprocessing", with = "text::preprocessing")]
    pub preprocessing: PrepState,
    /// The last epoch's values and the test split's; NaN is saved as null.
    #[serde(rename = "nnrun.metrics", with = "text::metrics")]
    pub metrics: BTreeMap<String, f64>,
    #[serde(rename = "nnrun.seed", with = "text::seed")]
    pub seed: u64,
    /// `--limit`: `evaluate` needs it to split the same test rows off.
    #[serde(rename = "nnrun.limit", with = "text::limit", default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Relative data paths in the spec are relative to this folder.
    #[serde(rename = "nnrun.spec_dir")]
    pub spec_dir: String,
    /// SHA-256 of each data file, keyed by the path as the spec gives it
    /// (absent in files from before it was recorded).
    #[serde(rename = "nnrun.data_sha256", with = "text::digests", default)]
    pub data_sha256: BTreeMap<String, String>,
}

/// Serde adapters between typed metadata fields and their string values.
/// Each names its key when the text doesn't parse.
mod text {
    macro_rules! as_text {
        ($module:ident, $key:literal, $ty:ty, $to:expr, $from:expr) => {
            pub mod $module {
                #[allow(unused_imports)]
                use super::*;
                use serde::de::Error as _;
                use serde::{Deserialize, Deserializer, Serializer};
                pub fn serialize<S: Serializer>(v: &$ty, s: S) -> Result<S::Ok, S::Error> {
                    let to: fn(&$ty) -> Result<String, String> = $to;
                    s.serialize_str(&to(v).map_err(serde::ser::Error::custom)?)
                }
                pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
                    let from: fn(&str) -> Result<$ty, String> = $from;
                    from(&String::deserialize(d)?).map_err(|e| D::Error::custom(format!("{} is not valid: {e}", $key)))
                }
            }
        };
    }
    use std::collections::BTreeMap;
    fn json<T: serde::Serialize>(v: &T) -> Result<String, String> {
        serde_json::to_string(v).map_err(|e| e.to_string())
    }
    fn parse_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, String> {
        serde_json::from_str(s).map_err(|e| e.to_string())
    }
    as_text!(preprocessing, "nnrun.preprocessing", crate::data::PrepState, json, parse_json);
    as_text!(digests, "nnrun.data_sha256", BTreeMap<String, String>, json, parse_json);
    as_text!(seed, "nnrun.seed", u64, |v| Ok(v.to_string()), |s| s.parse().map_err(|e| format!("'{s}': {e}")));
    as_text!(limit, "nnrun.limit", Option<usize>, |v| Ok(v.map_or(String::new(), |n| n.to_string())), |s| s
        .parse()
        .map(Some)
        .map_err(|e| format!("'{s}': {e}")));
    // JSON has no NaN: serde_json writes it as null, read back as NaN.
    as_text!(metrics, "nnrun.metrics", BTreeMap<String, f64>, json, |s| Ok(parse_json::<BTreeMap<String, Option<f64>>>(s)?
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or(f64::NAN)))
        .collect()));
    pub(crate) use as_text;
}
pub(crate) use text::as_text;

/// Serializes named tensors (as float32) with string metadata in the header:
/// `metadata` must serialize to a JSON object of strings. Written by hand
/// rather than with `safetensors::serialize`, whose metadata is a HashMap:
/// its random order would make two identical runs differ.
pub fn safetensors_bytes(tensors: &[(String, Tensor)], metadata: &impl Serialize) -> candle_core::Result<Vec<u8>> {
    let msg = |e: serde_json::Error| candle_core::Error::Msg(e.to_string());
    // Through a BTreeMap: sorted keys, and a check that every value is a string.
    let metadata: BTreeMap<String, String> = serde_json::from_value(serde_json::to_value(metadata).map_err(msg)?).map_err(msg)?;
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), serde_json::to_value(&metadata).map_err(msg)?);
    let mut data = Vec::new();
    for (name, t) in tensors {
        let v = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        let start = data.len();
        data.extend(v.iter().flat_map(|x| x.to_le_bytes()));
        header.insert(name.clone(), serde_json::json!({"dtype": "F32", "shape": t.dims(), "data_offsets": [start, data.len()]}));
    }
    let mut json = serde_json::Value::Object(header).to_string().into_bytes();
    // The format lets the header be padded with spaces; align the data to 8 bytes.
    while !json.len().is_multiple_of(8) {
        json.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + json.len() + data.len());
    out.extend((json.len() as u64).to_le_bytes());
    out.extend(json);
    out.extend(data);
    Ok(out)
}

/// What a run records in its model files besides the weights and metrics.
pub struct ModelMeta<'a> {
    pub root: &'a yaml::Node,
    pub prep: &'a PrepState,
    pub seed: u64,
    pub limit: Option<usize>,
    pub spec_dir: &'a Path,
    pub data_sha256: BTreeMap<String, String>,
}

impl ModelMeta<'_> {
    /// The metadata of a model file with the last epoch's (and the test) metrics.
    pub fn metadata(&self, history: &[crate::train::log::EpochLog], test: Option<&[(String, f64)]>) -> Metadata {
        let last = history.last().map(|h| h.values.as_slice()).unwrap_or_default();
        Metadata {
            format_version: FORMAT_VERSION.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            spec: crate::spec::overrides::to_yaml(self.root),
            preprocessing: self.prep.clone(),
            metrics: last.iter().chain(test.unwrap_or(&[])).cloned().collect(),
            seed: self.seed,
            limit: self.limit,
            spec_dir: self.spec_dir.display().to_string(),
            data_sha256: self.data_sha256.clone(),
        }
    }
}

/// model.safetensors's bytes: the weights, the resolved spec, preprocessing
/// and the last epoch's (and the test) metrics.
pub fn model_bytes(net: &Net, m: &ModelMeta, history: &[crate::train::log::EpochLog], test: Option<&[(String, f64)]>) -> std::io::Result<Vec<u8>> {
    safetensors_bytes(&net.named_tensors(), &m.metadata(history, test)).map_err(std::io::Error::other)
}

/// A finished run's files: model.safetensors, spec.yaml, history.csv and history.svg.
pub fn write_run(dir: &Path, net: &Net, m: &ModelMeta, history: &[crate::train::log::EpochLog], test: Option<&[(String, f64)]>) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let bytes = model_bytes(net, m, history, test)?;
    write_atomic(&dir.join("model.safetensors"), &bytes)?;
    write_atomic(&dir.join("spec.yaml"), crate::spec::overrides::to_yaml(m.root).as_bytes())?;
    let csv = history_csv(history);
    write_atomic(&dir.join("history.csv"), csv.as_bytes())?;
    // The chart users look at instead of the CSV.
    let label = dir.file_name().map_or("run".into(), |n| n.to_string_lossy().into_owned());
    // No epochs (--max-steps 0): nothing to draw.
    if !history.is_empty() {
        let svg = crate::plot::history_svg(&[(label, csv)]).map_err(std::io::Error::other)?;
        write_atomic(&dir.join("history.svg"), svg.as_bytes())?;
    }
    Ok(())
}

/// history.csv: one row per epoch, columns in the order of the first log.
pub fn history_csv(history: &[crate::train::log::EpochLog]) -> String {
    let Some(first) = history.first() else { return "epoch\n".into() };
    let keys: Vec<&str> = first.values.iter().map(|(k, _)| k.as_str()).collect();
    let mut out = format!("epoch,{}\n", keys.join(","));
    for log in history {
        let row: Vec<String> = keys.iter().map(|k| log.get(k).map_or(String::new(), |v| v.to_string())).collect();
        out.push_str(&format!("{},{}\n", log.epoch, row.join(",")));
    }
    out
}

/// Why a model file can't be used. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("cannot read {file}: {source}")]
    Io { file: String, source: std::io::Error },
    #[error("{file} is not a valid model file: {why}")]
    Malformed { file: String, why: String },
    #[error("{file} was written by a newer nnrun (model format {found}); this nnrun reads format {FORMAT_VERSION} and older: upgrade nnrun")]
    TooNew { file: String, found: String },
    #[error("{file}: the embedded spec no longer validates:\n{errors}")]
    Spec { file: String, errors: String },
}

impl ArtifactError {
    /// The file could not be opened or read at all (exit code 2), as opposed
    /// to a file that was read and is not acceptable (exit code 1).
    pub fn is_io(&self) -> bool {
        matches!(self, ArtifactError::Io { .. })
    }
}

/// Headers larger than this are refused before any allocation of that size.
const MAX_HEADER: u64 = 64 << 20;

/// A tensor as the header describes it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TensorInfo {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: [usize; 2],
}

/// The header's JSON, with its keys in file order: JSON objects may repeat
/// a key, and a second tensor (or metadata value) of the same name must not
/// silently replace the first.
struct Header {
    metadata: Option<Vec<(String, String)>>,
    tensors: Vec<(String, TensorInfo)>,
}

impl<'de> Deserialize<'de> for Header {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Entries(Vec<(String, String)>);
        impl<'de> Deserialize<'de> for Entries {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = Entries;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str("an object of strings")
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
                        let mut out = Vec::new();
                        while let Some((k, v)) = map.next_entry::<String, String>()? {
                            out.push((k, v));
                        }
                        Ok(Entries(out))
                    }
                }
                d.deserialize_map(V)
            }
        }
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Header;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a safetensors header (a JSON object)")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Header, A::Error> {
                use serde::de::Error;
                let mut h = Header { metadata: None, tensors: Vec::new() };
                while let Some(key) = map.next_key::<String>()? {
                    if key == "__metadata__" {
                        let entries = map.next_value::<Entries>().map_err(|e| A::Error::custom(format!("__metadata__: {e}")))?;
                        if h.metadata.replace(entries.0).is_some() {
                            return Err(A::Error::custom("__metadata__ appears twice"));
                        }
                    } else {
                        let info = map.next_value::<TensorInfo>().map_err(|e| A::Error::custom(format!("tensor '{key}': {e}")))?;
                        h.tensors.push((key, info));
                    }
                }
                Ok(h)
            }
        }
        d.deserialize_map(V)
    }
}

/// A safetensors file as nnrun writes them (model files and checkpoints),
/// checked: header size and JSON, no repeated name, F32 tensors whose
/// offsets tile the data region exactly, finite values, and a format
/// version this nnrun reads.
pub(crate) struct Container {
    pub file: String,
    /// `__metadata__`, as JSON strings.
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// name -> (shape, float32 values)
    pub tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
}

impl Container {
    /// Reads at most `limit` bytes; `what` names the kind of file in messages.
    pub fn read(path: &Path, limit: u64, what: &'static str) -> Result<Container, ArtifactError> {
        use crate::io::ReadError;
        let file = path.display().to_string();
        let bad = |why: String| ArtifactError::Malformed { file: file.clone(), why };
        let bytes = crate::io::read_bounded(path, limit, what).map_err(|e| match e {
            ReadError::Io { source, .. } => ArtifactError::Io { file: file.clone(), source },
            ReadError::NotRegular { kind, .. } => ArtifactError::Io {
                file: file.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("it is {kind}, not a regular file (copy it to a file first)")),
            },
            ReadError::TooLarge { size, limit, .. } => bad(format!("it holds {size} bytes, more than the {limit} bytes a {what} may have")),
            e => bad(e.to_string()),
        })?;
        if bytes.len() < 8 {
            return Err(bad(format!("{} bytes is too short for a safetensors header", bytes.len())));
        }
        let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
        if n > MAX_HEADER || 8 + n > bytes.len() as u64 {
            return Err(bad(format!("the header claims {n} bytes but the file has {}", bytes.len())));
        }
        let header: Header =
            serde_json::from_slice(&bytes[8..8 + n as usize]).map_err(|e| bad(format!("the header is not JSON as safetensors has it: {e}")))?;
        let data = &bytes[8 + n as usize..];
        let Some(entries) = header.metadata else {
            return Err(bad("no metadata: not written by nnrun".into()));
        };
        let mut metadata = serde_json::Map::new();
        for (k, v) in entries {
            if metadata.insert(k.clone(), v.into()).is_some() {
                return Err(bad(format!("metadata key '{k}' appears twice")));
            }
        }
        let version = metadata
            .get("nnrun.format_version")
            .and_then(|v| v.as_str())
            .ok_or_else(|| bad("no nnrun.format_version in its metadata: not written by nnrun".into()))?;
        let newer = version.parse::<u64>().map_or(true, |v| v > FORMAT_VERSION.parse::<u64>().expect("numeric"));
        if newer {
            return Err(ArtifactError::TooNew { file, found: version.to_string() });
        }
        let mut spans = Vec::with_capacity(header.tensors.len());
        for (name, t) in &header.tensors {
            if t.dtype != "F32" {
                return Err(bad(format!("tensor '{name}' has dtype {:?}; nnrun writes F32", t.dtype)));
            }
            let [start, end] = t.data_offsets;
            let count = t.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            if start > end || end > data.len() || count.and_then(|c| c.checked_mul(4)) != Some(end - start) {
                return Err(bad(format!("tensor '{name}' ({:?}) does not fit the file (offsets {:?}, {} data bytes)", t.shape, t.data_offsets, data.len())));
            }
            spans.push((start, end, name.as_str()));
        }
        // The tensors tile the data region: no overlap, no gap, nothing after.
        spans.sort();
        let mut at = (0usize, "the start of the data".to_string());
        for &(start, end, name) in &spans {
            if start != at.0 {
                let how = if start < at.0 { "overlaps" } else { "leaves a gap after" };
                return Err(bad(format!("tensor '{name}' (bytes {start}..{end} of the data) {how} {}", at.1)));
            }
            at = (end, format!("tensor '{name}' (which ends at byte {end})"));
        }
        if at.0 != data.len() {
            return Err(bad(format!("{} data bytes after the last tensor belong to no tensor", data.len() - at.0)));
        }
        let mut tensors = BTreeMap::new();
        for (name, t) in header.tensors {
            let [start, end] = t.data_offsets;
            let values: Vec<f32> = data[start..end].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect();
            if let Some(k) = values.iter().position(|v| !v.is_finite()) {
                return Err(bad(format!("tensor '{name}' holds {} (value {k}); weights must be finite numbers", values[k])));
            }
            if tensors.insert(name.clone(), (t.shape, values)).is_some() {
                return Err(bad(format!("tensor '{name}' appears twice in the header")));
            }
        }
        Ok(Container { file, metadata, tensors })
    }

    /// The metadata as `T`; a missing or malformed value is an error naming its key.
    pub fn metadata<T: serde::de::DeserializeOwned>(&self) -> Result<T, ArtifactError> {
        serde_json::from_value(serde_json::Value::Object(self.metadata.clone()))
            .map_err(|e| ArtifactError::Malformed { file: self.file.clone(), why: format!("its metadata: {e}") })
    }
}

/// A model file's contents: weights and nnrun's metadata.
pub struct ModelFile {
    pub file: String,
    pub meta: Metadata,
    /// name -> (shape, float32 values); `restore` moves them into the net.
    pub tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
}

impl ModelFile {
    /// Reads and checks a model.safetensors (see `Container`) and its metadata.
    pub fn read(path: &Path) -> Result<ModelFile, ArtifactError> {
        let c = Container::read(path, crate::io::MAX_MODEL_BYTES, "model file")?;
        let meta = c.metadata()?;
        Ok(ModelFile { file: c.file, meta, tensors: c.tensors })
    }
}

/// A trained model restored from its file alone: the embedded spec, rebuilt
/// and checked, with the saved weights and preprocessing.
pub struct Restored {
    /// The file (its tensors are in `net` now).
    pub file: ModelFile,
    pub source: crate::spec::Source,
    pub spec: crate::spec::Spec,
    pub net: crate::model::Net,
    pub prep: crate::data::PrepState,
    /// What the model takes and gives, as the data must feed it.
    pub io: crate::data::ModelIo,
}

/// Restores onto `device` (the file's values go there once). Everything the
/// file claims is checked against the embedded spec first: its training
/// section, the preprocessing (per input and output; see
/// `PrepState::check`), and the weights: each one the spec needs, of its
/// shape, and no other.
pub fn restore(path: &Path, device: &candle_core::Device) -> Result<Restored, ArtifactError> {
    let mut file = ModelFile::read(path)?;
    let name = file.file.clone();
    let bad = |why: String| ArtifactError::Malformed { file: name.clone(), why };
    let source = crate::spec::Source { path: format!("{name} (embedded spec)"), text: file.meta.spec.clone() };
    let mut diags = Vec::new();
    // Shapes the spec leaves to the data are those training saved.
    let saved = &file.meta.preprocessing;
    let built = match crate::spec::yaml::parse(&source.text) {
        Ok(root) => crate::graph::from_root_with(&root, &source, &mut diags, |spec, d| {
            for inp in &mut spec.model.inputs {
                if let Some(p) = saved.inputs.iter().find(|p| p.name == inp.name) {
                    if !inp.written {
                        inp.shape = p.shape.clone();
                    }
                    inp.origin = p.columns.iter().map(|c| c.origin()).collect();
                }
                if !inp.known() {
                    d.push(crate::diag::Diagnostic::error(
                        format!("input '{}' has no shape, and the preprocessing gives none", inp.name),
                        inp.pos,
                        inp.path.clone(),
                    ));
                }
            }
        }),
        Err(d) => {
            diags.push(d);
            None
        }
    };
    let cfg = built.as_ref().and_then(|(spec, graph)| crate::train::config::read(spec, graph, &mut diags));
    let errors: Vec<String> = diags.iter().filter(|d| d.is_error()).map(|d| format!("  {}", d.message)).collect();
    let (Some((spec, graph)), Some(cfg)) = (built, cfg) else {
        return Err(ArtifactError::Spec { file: name, errors: errors.join("\n") });
    };
    if !errors.is_empty() {
        return Err(ArtifactError::Spec { file: name, errors: errors.join("\n") });
    }
    let io = cfg.io(&graph);
    file.meta.preprocessing.check(&io).map_err(&bad)?;
    let mut vars = Vec::with_capacity(graph.layers.len());
    for node in &graph.layers {
        let mut layer_vars = Vec::new();
        for w in &node.weights {
            let key = format!("{}.{}", node.name, w.name);
            let (shape, values) = file.tensors.remove(&key).ok_or_else(|| bad(format!("the spec needs weight '{key}', which the file lacks")))?;
            if shape != w.shape {
                return Err(bad(format!("weight '{key}' has shape {shape:?}, the spec needs {:?}", w.shape)));
            }
            let t = Tensor::from_vec(values, shape.as_slice(), device).map_err(|e| bad(e.to_string()))?;
            layer_vars.push(candle_core::Var::from_tensor(&t).map_err(|e| bad(e.to_string()))?);
        }
        vars.push(layer_vars);
    }
    if !file.tensors.is_empty() {
        let extra: Vec<String> = file.tensors.keys().map(|k| format!("'{k}'")).collect();
        return Err(bad(format!("it holds tensor(s) {} that no layer of the embedded spec has", crate::data::prep::list(&extra))));
    }
    let net = crate::model::Net { graph, vars, device: device.clone(), dtype: DType::F32 };
    let prep = file.meta.preprocessing.clone();
    Ok(Restored { file, source, spec, net, prep, io })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn write_tmp(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("nnrun-artifact-{}-{name}", std::process::id()));
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn prep() -> PrepState {
        serde_json::from_str(
            r#"{"source":"csv","scale":1.0,"normalize":"none","missing":"error","window":null,
                "inputs":[{"name":"input","shape":[1],"features":["x"],"fill":null,"shift":[0.0],"div":[1.0]}],
                "outputs":[{"name":"dense","target":"y","loss":"mean_squared_error","classes":null,"scale":1.0,"shift":0.0,"div":1.0}]}"#,
        )
        .unwrap()
    }

    fn metadata() -> Metadata {
        Metadata {
            format_version: FORMAT_VERSION.into(),
            version: "0.1.0".into(),
            spec: "model: {input_shape: [1], layers: [{type: Dense, units: 1}]}\ntraining: {loss: mse}\n".into(),
            preprocessing: prep(),
            metrics: BTreeMap::from([("loss".to_string(), 0.5), ("val_loss".to_string(), f64::NAN)]),
            seed: 7,
            limit: Some(10),
            spec_dir: "specs".into(),
            data_sha256: BTreeMap::from([("a.csv".to_string(), "ab".repeat(32))]),
        }
    }

    fn dense_tensors() -> Vec<(String, Tensor)> {
        vec![("dense.kernel".into(), Tensor::new(&[[0.5f32]], &Device::Cpu).unwrap()), ("dense.bias".into(), Tensor::new(&[0.25f32], &Device::Cpu).unwrap())]
    }

    /// A file from a hand-written header JSON and data bytes.
    fn raw(header: &str, data: &[u8]) -> Vec<u8> {
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend(header.as_bytes());
        out.extend(data);
        out
    }

    #[test]
    fn metadata_round_trips_and_others_can_read_the_file() {
        let bytes = safetensors_bytes(&dense_tensors(), &metadata()).unwrap();
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        let keys = header.metadata().as_ref().unwrap();
        assert_eq!(keys["nnrun.format_version"], "1");
        assert_eq!(keys["nnrun.seed"], "7");
        assert_eq!(keys["nnrun.limit"], "10");
        assert_eq!(keys["nnrun.metrics"], r#"{"loss":0.5,"val_loss":null}"#);
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(st.tensor("dense.kernel").unwrap().shape(), &[1, 1]);
        let back = ModelFile::read(&write_tmp("round", &bytes)).unwrap();
        assert!(back.meta.metrics["val_loss"].is_nan());
        let mut want = metadata();
        want.metrics.insert("val_loss".into(), 0.0);
        let mut got = back.meta.clone();
        got.metrics.insert("val_loss".into(), 0.0);
        assert_eq!(got, want);
        assert_eq!(back.tensors["dense.bias"], (vec![1], vec![0.25]));
        // No --limit: no key; no digests (older files): an empty map.
        let m = Metadata { limit: None, ..metadata() };
        let mut keys: BTreeMap<String, String> = serde_json::from_value(serde_json::to_value(&m).unwrap()).unwrap();
        assert!(!keys.contains_key("nnrun.limit"));
        keys.remove("nnrun.data_sha256");
        let old = ModelFile::read(&write_tmp("old", &safetensors_bytes(&dense_tensors(), &keys).unwrap())).unwrap();
        assert_eq!((old.meta.limit, old.meta.data_sha256.len()), (None, 0));
        // The restored model works from the file alone.
        let r = restore(&write_tmp("restore", &bytes), &Device::Cpu).unwrap();
        assert_eq!(r.net.named_tensors().len(), 2);
        assert!(r.file.tensors.is_empty(), "moved into the net");
    }

    #[test]
    fn broken_model_files_are_errors_not_panics() {
        let good = safetensors_bytes(&dense_tensors(), &metadata()).unwrap();
        let read = |name: &str, bytes: &[u8]| ModelFile::read(&write_tmp(name, bytes)).err().map(|e| e.to_string());
        assert_eq!(read("good", &good), None);
        let truncated = read("trunc", &good[..good.len() - 5]).unwrap();
        assert!(truncated.contains("does not fit the file"), "{truncated}");
        let mut huge = good.clone();
        huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(read("huge", &huge).unwrap().contains("the header claims"));
        assert!(read("tiny", b"abc").unwrap().contains("too short"));
        let mut garbage = good.clone();
        garbage[9] = b'#';
        assert!(read("json", &garbage).unwrap().contains("not JSON"));
        let v99 = BTreeMap::from([("nnrun.format_version".to_string(), "99".to_string())]);
        let newer = read("newer", &safetensors_bytes(&dense_tensors(), &v99).unwrap()).unwrap();
        assert!(newer.contains("newer nnrun (model format 99)"), "{newer}");
        let v1 = BTreeMap::from([("nnrun.format_version".to_string(), "1".to_string())]);
        let e = read("nospec", &safetensors_bytes(&dense_tensors(), &v1).unwrap()).unwrap();
        assert!(e.ends_with("is not a valid model file: its metadata: missing field `nnrun.version`"), "{e}");
        let mut bad_seed: BTreeMap<String, String> = serde_json::from_value(serde_json::to_value(metadata()).unwrap()).unwrap();
        bad_seed.insert("nnrun.seed".into(), "-1".into());
        let e = read("seed", &safetensors_bytes(&dense_tensors(), &bad_seed).unwrap()).unwrap();
        assert!(e.contains("its metadata: nnrun.seed is not valid: '-1': invalid digit"), "{e}");
        let missing = ModelFile::read(std::path::Path::new("/no/such/model.safetensors")).err().unwrap();
        assert!(missing.to_string().starts_with("cannot read /no/such/model.safetensors"), "{missing}");
        assert!(missing.is_io());
        let dev = ModelFile::read(std::path::Path::new("/dev/zero")).err().unwrap();
        assert_eq!(dev.to_string(), "cannot read /dev/zero: it is a character device, not a regular file (copy it to a file first)");
        assert!(dev.is_io());
    }

    #[test]
    fn tensors_tile_the_data_and_are_finite() {
        let meta = r#""__metadata__":{"nnrun.format_version":"1"}"#;
        let read = |name: &str, tensors: &str, data: &[u8]| {
            Container::read(&write_tmp(name, &raw(&format!("{{{meta},{tensors}}}"), data)), 1 << 20, "model file").err().map(|e| e.to_string())
        };
        let t = |name: &str, a: usize, b: usize| format!(r#""{name}":{{"dtype":"F32","shape":[{}],"data_offsets":[{a},{b}]}}"#, (b - a) / 4);
        let data = [0u8; 16];
        assert_eq!(read("tiled", &format!("{},{}", t("a", 0, 8), t("b", 8, 16)), &data), None);
        let e = read("overlap", &format!("{},{}", t("a", 0, 8), t("b", 4, 12)), &data[..12]).unwrap();
        assert!(e.ends_with("tensor 'b' (bytes 4..12 of the data) overlaps tensor 'a' (which ends at byte 8)"), "{e}");
        let e = read("same", &format!("{},{}", t("a", 0, 8), t("b", 0, 8)), &data[..8]).unwrap();
        assert!(e.ends_with("tensor 'b' (bytes 0..8 of the data) overlaps tensor 'a' (which ends at byte 8)"), "{e}");
        let e = read("gap", &format!("{},{}", t("a", 0, 4), t("b", 8, 16)), &data).unwrap();
        assert!(e.ends_with("tensor 'b' (bytes 8..16 of the data) leaves a gap after tensor 'a' (which ends at byte 4)"), "{e}");
        let e = read("tail", &t("a", 0, 8), &data).unwrap();
        assert!(e.ends_with("8 data bytes after the last tensor belong to no tensor"), "{e}");
        let e = read("twice", &format!("{},{}", t("a", 0, 8), t("a", 8, 16)), &data).unwrap();
        assert!(e.ends_with("tensor 'a' appears twice in the header"), "{e}");
        let e = read("dtype", r#""a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}"#, &data[..4]).unwrap();
        assert!(e.ends_with(r#"tensor 'a' has dtype "F16"; nnrun writes F32"#), "{e}");
        let e = read("field", r#""a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}"#, &data[..4]).unwrap();
        assert!(e.contains("tensor 'a': unknown field `x`"), "{e}");
        let nan = f32::NAN.to_le_bytes();
        let e = read("nan", &t("a", 0, 8), &[0, 0, 0, 0, nan[0], nan[1], nan[2], nan[3]]).unwrap();
        assert!(e.ends_with("tensor 'a' holds NaN (value 1); weights must be finite numbers"), "{e}");
        let two = r#"{"__metadata__":{"nnrun.format_version":"1","nnrun.format_version":"1"}}"#;
        let e = Container::read(&write_tmp("dupkey", &raw(two, &[])), 1 << 20, "model file").err().unwrap().to_string();
        assert!(e.ends_with("metadata key 'nnrun.format_version' appears twice"), "{e}");
        let e = Container::read(&write_tmp("limit", &raw(two, &[])), 10, "model file").err().unwrap().to_string();
        assert!(e.ends_with("it holds 80 bytes, more than the 10 bytes a model file may have"), "{e}");
    }

    #[test]
    fn restore_checks_weights_and_preprocessing_against_the_spec() {
        let file = |name: &str, tensors: &[(String, Tensor)], m: &Metadata| write_tmp(name, &safetensors_bytes(tensors, m).unwrap());
        let err = |p: std::path::PathBuf| restore(&p, &Device::Cpu).err().unwrap().to_string();
        let mut extra = dense_tensors();
        extra.push(("other.kernel".into(), Tensor::new(&[1f32], &Device::Cpu).unwrap()));
        let e = err(file("extra", &extra, &metadata()));
        assert!(e.ends_with("it holds tensor(s) 'other.kernel' that no layer of the embedded spec has"), "{e}");
        let e = err(file("lacks", &dense_tensors()[..1], &metadata()));
        assert!(e.ends_with("the spec needs weight 'dense.bias', which the file lacks"), "{e}");
        let mut m = metadata();
        m.preprocessing.inputs[0].div = vec![];
        let e = err(file("div", &dense_tensors(), &m));
        assert!(e.ends_with("the preprocessing of input 'input': `div` holds 0 values, but the input has 1 per sample"), "{e}");
        let mut m = metadata();
        m.preprocessing.outputs[0].loss = "huber".into();
        let e = err(file("loss", &dense_tensors(), &m));
        assert!(e.ends_with("the preprocessing of output 'dense' records loss 'huber', but the embedded spec trains it with 'mean_squared_error'"), "{e}");
        let m = Metadata { spec: "model: {input_shape: [1], layers: [{type: Dense, units: 1}]}\n".into(), ..metadata() };
        let e = err(file("notraining", &dense_tensors(), &m));
        assert!(e.contains("the embedded spec no longer validates:\n  the spec has no `training` section"), "{e}");
    }
}
