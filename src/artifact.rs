//! The run directory's files, each written atomically (temp file, fsync,
//! rename), so a crash never leaves a truncated file where a good one was.

use candle_core::{DType, Tensor};
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

/// Serializes named tensors (as float32) with string metadata in the header.
/// Written by hand rather than with `safetensors::serialize`, whose metadata
/// is a HashMap: its random order would make two identical runs differ.
pub fn safetensors_bytes(tensors: &[(String, Tensor)], metadata: BTreeMap<String, String>) -> candle_core::Result<Vec<u8>> {
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), serde_json::to_value(&metadata).map_err(|e| candle_core::Error::Msg(e.to_string()))?);
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

/// history.csv: one row per epoch, columns in the order of the first log.
pub fn history_csv(history: &[crate::train::fit::EpochLog]) -> String {
    let Some(first) = history.first() else { return "epoch\n".into() };
    let keys: Vec<&str> = first.values.iter().map(|(k, _)| k.as_str()).collect();
    let mut out = format!("epoch,{}\n", keys.join(","));
    for log in history {
        let row: Vec<String> = keys.iter().map(|k| log.get(k).map_or(String::new(), |v| v.to_string())).collect();
        out.push_str(&format!("{},{}\n", log.epoch, row.join(",")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn safetensors_round_trip_with_metadata() {
        let t = Tensor::new(&[[1f32, 2.], [3., 4.]], &Device::Cpu).unwrap();
        let meta = BTreeMap::from([("nnrun.format_version".to_string(), FORMAT_VERSION.to_string())]);
        let bytes = safetensors_bytes(&[("dense.kernel".into(), t)], meta).unwrap();
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        assert_eq!(header.metadata().as_ref().unwrap()["nnrun.format_version"], "1");
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let view = st.tensor("dense.kernel").unwrap();
        assert_eq!(view.shape(), &[2, 2]);
        assert_eq!(&view.data()[4..8], &2f32.to_le_bytes());
    }

    fn write_tmp(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("nnrun-artifact-{}-{name}", std::process::id()));
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn valid_bytes(version: &str) -> Vec<u8> {
        let t = Tensor::new(&[1f32, 2., 3.], &Device::Cpu).unwrap();
        let meta = BTreeMap::from([("nnrun.format_version".to_string(), version.to_string())]);
        safetensors_bytes(&[("d.bias".into(), t)], meta).unwrap()
    }

    #[test]
    fn broken_model_files_are_errors_not_panics() {
        let good = valid_bytes(FORMAT_VERSION);
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
        let newer = read("newer", &valid_bytes("99")).unwrap();
        assert!(newer.contains("newer nnrun (model format 99)"), "{newer}");
        let missing = ModelFile::read(std::path::Path::new("/no/such/model.safetensors")).err().unwrap().to_string();
        assert!(missing.starts_with("cannot read /no/such/model.safetensors"), "{missing}");
    }

    #[test]
    fn atomic_write_replaces_whole_files() {
        let dir = std::env::temp_dir().join(format!("nnrun-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("f.txt");
        write_atomic(&p, b"old").unwrap();
        write_atomic(&p, b"new contents").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new contents");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "no temp file left behind");
        std::fs::remove_dir_all(&dir).unwrap();
    }
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

/// Headers larger than this are refused before any allocation of that size.
const MAX_HEADER: u64 = 64 << 20;

/// A model file's contents: weights and nnrun's metadata.
pub struct ModelFile {
    pub file: String,
    pub metadata: BTreeMap<String, String>,
    /// name -> (shape, float32 values)
    pub tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
}

impl ModelFile {
    /// Reads and checks a model.safetensors: header size and JSON, dtypes,
    /// offsets inside the file, and the format version.
    pub fn read(path: &Path) -> Result<ModelFile, ArtifactError> {
        let file = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| ArtifactError::Io { file: file.clone(), source })?;
        let bad = |why: String| ArtifactError::Malformed { file: file.clone(), why };
        if bytes.len() < 8 {
            return Err(bad(format!("{} bytes is too short for a safetensors header", bytes.len())));
        }
        let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
        if n > MAX_HEADER || 8 + n > bytes.len() as u64 {
            return Err(bad(format!("the header claims {n} bytes but the file has {}", bytes.len())));
        }
        let header: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&bytes[8..8 + n as usize]).map_err(|e| bad(format!("the header is not JSON: {e}")))?;
        let data = &bytes[8 + n as usize..];
        let mut metadata: BTreeMap<String, String> = BTreeMap::new();
        let mut tensors = BTreeMap::new();
        for (name, v) in header {
            if name == "__metadata__" {
                metadata = serde_json::from_value(v).map_err(|e| bad(format!("metadata: {e}")))?;
                continue;
            }
            let dtype = v["dtype"].as_str().unwrap_or_default();
            if dtype != "F32" {
                return Err(bad(format!("tensor '{name}' has dtype {dtype:?}; nnrun writes F32")));
            }
            let shape: Vec<usize> = serde_json::from_value(v["shape"].clone()).map_err(|e| bad(format!("tensor '{name}' shape: {e}")))?;
            let offs: [usize; 2] = serde_json::from_value(v["data_offsets"].clone()).map_err(|e| bad(format!("tensor '{name}' offsets: {e}")))?;
            let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            if offs[0] > offs[1] || offs[1] > data.len() || count.and_then(|c| c.checked_mul(4)) != Some(offs[1] - offs[0]) {
                return Err(bad(format!("tensor '{name}' ({shape:?}) does not fit the file (offsets {offs:?}, {} data bytes)", data.len())));
            }
            let values = data[offs[0]..offs[1]].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect();
            tensors.insert(name, (shape, values));
        }
        let version = metadata.get("nnrun.format_version").ok_or_else(|| bad("no nnrun.format_version in its metadata: not written by nnrun".into()))?;
        let newer = version.parse::<u64>().map_or(true, |v| v > FORMAT_VERSION.parse::<u64>().expect("numeric"));
        if newer {
            return Err(ArtifactError::TooNew { file, found: version.clone() });
        }
        Ok(ModelFile { file, metadata, tensors })
    }

    pub fn meta(&self, key: &str) -> Result<&str, ArtifactError> {
        self.metadata.get(key).map(String::as_str).ok_or_else(|| ArtifactError::Malformed { file: self.file.clone(), why: format!("no {key} in its metadata") })
    }
}

/// A trained model restored from its file alone: the embedded spec, rebuilt
/// and checked, with the saved weights and preprocessing.
pub struct Restored {
    pub file: ModelFile,
    pub source: crate::spec::Source,
    pub spec: crate::spec::Spec,
    pub net: crate::model::Net,
    pub prep: crate::data::PrepState,
}

/// Restores onto `device` (the file's values go there once).
pub fn restore(path: &Path, device: &candle_core::Device) -> Result<Restored, ArtifactError> {
    let file = ModelFile::read(path)?;
    let name = file.file.clone();
    let source = crate::spec::Source { path: format!("{name} (embedded spec)"), text: file.meta("nnrun.spec")?.to_string() };
    let mut diags = Vec::new();
    let built = crate::graph::from_source(&source, &mut diags);
    let errors: Vec<String> = diags.iter().filter(|d| d.is_error()).map(|d| format!("  {}", d.message)).collect();
    let Some((spec, graph)) = built.filter(|_| errors.is_empty()) else {
        return Err(ArtifactError::Spec { file: name, errors: errors.join("\n") });
    };
    let prep: crate::data::PrepState = serde_json::from_str(file.meta("nnrun.preprocessing")?)
        .map_err(|e| ArtifactError::Malformed { file: name.clone(), why: format!("preprocessing metadata: {e}") })?;
    let bad = |why: String| ArtifactError::Malformed { file: name.clone(), why };
    let mut vars = Vec::with_capacity(graph.layers.len());
    for node in &graph.layers {
        let mut layer_vars = Vec::new();
        for w in &node.weights {
            let key = format!("{}.{}", node.name, w.name);
            let (shape, values) = file.tensors.get(&key).ok_or_else(|| bad(format!("the spec needs weight '{key}', which the file lacks")))?;
            if shape != &w.shape {
                return Err(bad(format!("weight '{key}' has shape {shape:?}, the spec needs {:?}", w.shape)));
            }
            let t = Tensor::from_vec(values.clone(), shape.as_slice(), device).map_err(|e| bad(e.to_string()))?;
            layer_vars.push(candle_core::Var::from_tensor(&t).map_err(|e| bad(e.to_string()))?);
        }
        vars.push(layer_vars);
    }
    let net = crate::model::Net { graph, vars, device: device.clone(), dtype: DType::F32 };
    Ok(Restored { file, source, spec, net, prep })
}
