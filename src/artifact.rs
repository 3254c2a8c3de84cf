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
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
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
