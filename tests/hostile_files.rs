//! Model files and data as a hostile (or unlucky) user hands them over:
//! edited metadata, overlapping tensors, devices, FIFOs, NaN and infinity,
//! non-index Embedding inputs, one-class training data, missing files.
//! Each case is a snapshot of what the user sees, exit code included.

use assert_cmd::Command;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;
mod common;
use common::{temp, trained};

/// Runs nnrun (never more than a minute: a FIFO must not hang it) and
/// renders what a user sees, with `dir` shown as `[tmp]`.
fn run(args: &[&str], dir: &Path) -> (i32, String) {
    let out = Command::cargo_bin("nnrun").unwrap().args(args).env("NO_COLOR", "1").timeout(Duration::from_secs(60)).output().unwrap();
    let code = out.status.code().unwrap_or(-1);
    let tmp = dir.display().to_string();
    let mut shown = format!("$ nnrun {}\nexit: {code}\n", args.join(" ")).replace(&tmp, "[tmp]");
    let stderr = String::from_utf8_lossy(&out.stderr).replace(&tmp, "[tmp]");
    if !stderr.is_empty() {
        shown += &format!("--- stderr\n{stderr}");
    }
    (code, shown)
}

/// stdout of a successful run.
fn stdout_of(args: &[&str]) -> String {
    let out = Command::cargo_bin("nnrun").unwrap().args(args).env("NO_COLOR", "1").timeout(Duration::from_secs(120)).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One iris model shared by the tests that only read it.
fn iris() -> &'static Path {
    static M: OnceLock<PathBuf> = OnceLock::new();
    M.get_or_init(|| trained("specs/iris_named.yaml", "hostile-iris", &["--epochs", "2"]))
}

/// A copy of `model` in `dir` whose header JSON `edit` changed, as someone
/// with a text editor (or a bit flip) could: the data bytes stay as they are.
fn edited(model: &Path, dir: &Path, name: &str, edit: impl FnOnce(&mut Value)) -> PathBuf {
    let bytes = std::fs::read(model).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    edit(&mut header);
    let mut text = header.to_string().into_bytes();
    while !text.len().is_multiple_of(8) {
        text.push(b' ');
    }
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend(text);
    out.extend(&bytes[8 + n..]);
    let path = dir.join(name);
    std::fs::write(&path, out).unwrap();
    path
}

/// Edits the JSON held as text in metadata value `key`.
fn edit_meta(header: &mut Value, key: &str, edit: impl FnOnce(&mut Value)) {
    let text = header["__metadata__"][key].as_str().unwrap().to_string();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    edit(&mut v);
    header["__metadata__"][key] = Value::String(v.to_string());
}

fn edit_prep(header: &mut Value, edit: impl FnOnce(&mut Value)) {
    edit_meta(header, "nnrun.preprocessing", edit)
}

const IRIS: &str = "data/tabular/iris_named.csv";

type Edit = dyn FnOnce(&mut Value);

#[test]
fn edited_preprocessing_is_refused_before_use() {
    let dir = temp("hostile-prep");
    let cases: [(&str, Box<Edit>); 4] = [
        ("short_div", Box::new(|h| edit_prep(h, |p| drop(p["inputs"][0]["div"].as_array_mut().unwrap().pop())))),
        ("empty_inputs", Box::new(|h| edit_prep(h, |p| p["inputs"] = json!([])))),
        ("too_many_classes", Box::new(|h| edit_prep(h, |p| p["outputs"][0]["classes"].as_array_mut().unwrap().push(json!("zebra"))))),
        ("wrong_loss", Box::new(|h| edit_prep(h, |p| p["outputs"][0]["loss"] = json!("mean_squared_error")))),
    ];
    for (name, edit) in cases {
        let model = edited(iris(), &dir, &format!("{name}.safetensors"), edit);
        let m = model.to_str().unwrap();
        let (code, shown) = run(&["predict", m, "--input", IRIS], &dir);
        assert_eq!(code, 1, "{shown}");
        insta::assert_snapshot!(format!("prep_{name}"), shown);
        // Every command that opens the model refuses it the same way.
        for cmd in [vec!["inspect", m], vec!["evaluate", m]] {
            let (code, other) = run(&cmd, &dir);
            assert_eq!(code, 1, "{other}");
            assert_eq!(other.lines().skip(2).collect::<Vec<_>>(), shown.lines().skip(2).collect::<Vec<_>>(), "{other}");
        }
    }
}

#[test]
fn overlapping_tensors_and_odd_metadata_are_refused() {
    let dir = temp("hostile-tensors");
    let overlap = edited(iris(), &dir, "overlap.safetensors", |h| {
        let kernel = h["dense_1.kernel"]["data_offsets"].clone();
        // The bias claims the first bytes of the kernel (same length as before).
        let start = kernel[0].as_u64().unwrap();
        h["dense_1.bias"]["data_offsets"] = json!([start, start + 12]);
    });
    let (code, shown) = run(&["inspect", overlap.to_str().unwrap()], &dir);
    assert_eq!(code, 1, "{shown}");
    insta::assert_snapshot!("overlapping_offsets", shown);
    let number = edited(iris(), &dir, "number-meta.safetensors", |h| h["__metadata__"]["nnrun.seed"] = json!(7));
    let (code, shown) = run(&["inspect", number.to_str().unwrap()], &dir);
    assert_eq!(code, 1, "{shown}");
    // The column depends on the metrics' digits before the key.
    let at = shown.find(" at line 1 column ").expect("serde_json's position");
    let shown = format!("{} at line 1 column [N]\n", &shown[..at]);
    insta::assert_snapshot!("metadata_not_a_string", shown);
}

#[test]
fn devices_and_fifos_are_refused_at_once() {
    let dir = temp("hostile-dev");
    let (code, shown) = run(&["inspect", "/dev/zero"], &dir);
    assert_eq!(code, 2, "{shown}");
    insta::assert_snapshot!("dev_zero_as_model", shown);
    let m = iris().to_str().unwrap();
    let (code, shown) = run(&["predict", m, "--input", "/dev/zero"], &dir);
    assert_eq!(code, 2, "{shown}");
    insta::assert_snapshot!("dev_zero_as_input", shown.replace(m, "[model]"));
    let fifo = dir.join("rows.csv");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let (code, shown) = run(&["predict", m, "--input", fifo.to_str().unwrap()], &dir);
    assert_eq!(code, 2, "{shown}");
    insta::assert_snapshot!("fifo_as_input", shown.replace(m, "[model]"));
    let (code, shown) = run(&["evaluate", m, "--data", fifo.to_str().unwrap()], &dir);
    assert_eq!(code, 2, "{shown}");
    assert!(shown.contains("rows.csv: it is a FIFO (named pipe), not a regular file"), "{shown}");
}

/// An IDX file of float32 values.
fn idx_f32(dims: &[u32], values: &[f32]) -> Vec<u8> {
    let mut v = vec![0, 0, 0x0D, dims.len() as u8];
    dims.iter().for_each(|d| v.extend(d.to_be_bytes()));
    values.iter().for_each(|x| v.extend(x.to_be_bytes()));
    v
}

#[test]
fn nan_in_idx_files_is_refused_everywhere() {
    let dir = temp("hostile-idx");
    let images: Vec<f32> = (0..24).map(|i| (i % 7) as f32 / 7.0).collect();
    std::fs::write(dir.join("images.idx"), idx_f32(&[6, 2, 2], &images)).unwrap();
    std::fs::write(dir.join("labels.idx"), [&[0u8, 0, 8, 1, 0, 0, 0, 6][..], &[0, 1, 0, 1, 0, 1]].concat()).unwrap();
    let mut bad = images.clone();
    bad[13] = f32::NAN;
    std::fs::write(dir.join("nan.idx"), idx_f32(&[6, 2, 2], &bad)).unwrap();
    let spec = |images: &str| {
        format!(
            "name: tiny_idx\nmodel: {{input_shape: [2, 2], layers: [{{type: Flatten}}, {{type: Dense, units: 2, activation: softmax}}]}}\n\
             data: {{train: {{images: {images}, labels: labels.idx}}}}\ntraining: {{loss: sparse_categorical_crossentropy, epochs: 1}}\n"
        )
    };
    std::fs::write(dir.join("good.yaml"), spec("images.idx")).unwrap();
    std::fs::write(dir.join("nan.yaml"), spec("nan.idx")).unwrap();
    let out = dir.join("run");
    let (code, shown) = run(&["train", dir.join("nan.yaml").to_str().unwrap(), "--out", out.to_str().unwrap()], &dir);
    assert_eq!(code, 1, "{shown}");
    insta::assert_snapshot!("nan_in_idx_train", shown);
    let (code, shown) = run(&["train", dir.join("good.yaml").to_str().unwrap(), "--out", out.to_str().unwrap()], &dir);
    assert_eq!(code, 0, "{shown}");
    let model = out.join("model.safetensors");
    let (m, nan) = (model.to_str().unwrap(), dir.join("nan.idx"));
    let (code, shown) = run(&["predict", m, "--input", nan.to_str().unwrap()], &dir);
    assert_eq!(code, 1, "{shown}");
    insta::assert_snapshot!("nan_in_idx_predict", shown);
    let labels = dir.join("labels.idx");
    let (code, shown) = run(&["evaluate", m, "--data", nan.to_str().unwrap(), "--labels", labels.to_str().unwrap()], &dir);
    assert_eq!(code, 1, "{shown}");
    assert!(shown.contains("nan.idx: record 3: value 1 of the record is NaN"), "{shown}");
}

#[test]
fn infinite_csv_values_name_the_row_and_column() {
    let dir = temp("hostile-inf");
    let rows: String = std::fs::read_to_string(IRIS).unwrap().lines().take(31).map(|l| format!("{l}\n")).collect();
    std::fs::write(dir.join("inf.csv"), rows.replacen("3.5", "inf", 1)).unwrap();
    let inf = dir.join("inf.csv");
    let (code, shown) = run(&["predict", iris().to_str().unwrap(), "--input", inf.to_str().unwrap()], &dir);
    assert_eq!(code, 1, "{shown}");
    insta::assert_snapshot!("inf_in_csv_predict", shown.replace(iris().to_str().unwrap(), "[model]"));
    let spec = std::fs::read_to_string("specs/iris_named.yaml")
        .unwrap()
        .replace("../data/tabular/iris_named.csv", "inf.csv")
        .replace("test_split: 0.2", "missing: drop");
    std::fs::write(dir.join("inf.yaml"), spec).unwrap();
    let (code, shown) = run(&["train", dir.join("inf.yaml").to_str().unwrap(), "--out", dir.join("run").to_str().unwrap()], &dir);
    assert_eq!(code, 1, "{shown}");
    insta::assert_snapshot!("inf_in_csv_train", shown);
}

#[test]
fn embedding_inputs_that_are_no_index_name_the_cell() {
    let dir = temp("hostile-emb");
    let rows: String = (0..12).map(|i| format!("{},{},{},{}\n", i % 5, (i + 1) % 5, (i + 2) % 5, i % 2)).collect();
    std::fs::write(dir.join("tokens.csv"), format!("t0,t1,t2,label\n{rows}")).unwrap();
    std::fs::write(dir.join("bad.csv"), format!("t0,t1,t2,label\n{rows}1,2.5,3,0\n")).unwrap();
    let spec = |file: &str| {
        format!(
            "name: tokens\nmodel: {{input_shape: [3], layers: [{{type: Embedding, input_dim: 5, output_dim: 2}}, {{type: Flatten}}, {{type: Dense, units: 1, activation: sigmoid}}]}}\n\
             data: {{train: {file}, target: label}}\ntraining: {{loss: binary_crossentropy, epochs: 1}}\n"
        )
    };
    std::fs::write(dir.join("bad.yaml"), spec("bad.csv")).unwrap();
    std::fs::write(dir.join("good.yaml"), spec("tokens.csv")).unwrap();
    let out = dir.join("run");
    let (code, shown) = run(&["train", dir.join("bad.yaml").to_str().unwrap(), "--out", out.to_str().unwrap()], &dir);
    assert_eq!(code, 1, "{shown}");
    insta::assert_snapshot!("embedding_non_integer_train", shown);
    let (code, shown) = run(&["train", dir.join("good.yaml").to_str().unwrap(), "--out", out.to_str().unwrap()], &dir);
    assert_eq!(code, 0, "{shown}");
    std::fs::write(dir.join("new.csv"), "t0,t1,t2\n1,2,3\n4,5,0\n").unwrap();
    let m = out.join("model.safetensors");
    let (code, shown) = run(&["predict", m.to_str().unwrap(), "--input", dir.join("new.csv").to_str().unwrap()], &dir);
    assert_eq!(code, 1, "{shown}");
    insta::assert_snapshot!("embedding_out_of_range_predict", shown);
}

#[test]
fn one_class_training_data_is_refused_unless_allowed() {
    let dir = temp("hostile-one");
    let setosa: String = std::fs::read_to_string(IRIS).unwrap().lines().take(51).map(|l| format!("{l}\n")).collect();
    std::fs::write(dir.join("setosa.csv"), setosa).unwrap();
    let spec = std::fs::read_to_string("specs/iris_named.yaml").unwrap().replace("../data/tabular/iris_named.csv", "setosa.csv");
    let spec_path = dir.join("setosa.yaml");
    std::fs::write(&spec_path, spec).unwrap();
    let (s, out) = (spec_path.to_str().unwrap(), dir.join("run"));
    let (code, shown) = run(&["train", s, "--out", out.to_str().unwrap(), "--epochs", "1"], &dir);
    assert_eq!(code, 1, "{shown}");
    insta::assert_snapshot!("one_class_refused", shown);
    assert!(!out.exists(), "nothing written");
    let (code, shown) = run(&["train", s, "--out", out.to_str().unwrap(), "--epochs", "1", "--allow-missing-classes"], &dir);
    assert_eq!(code, 0, "{shown}");
    insta::assert_snapshot!("one_class_allowed", shown);
    let header = stdout_of(&["predict", out.join("model.safetensors").to_str().unwrap(), "--input", IRIS]).lines().next().unwrap().to_string();
    assert_eq!(header, "class,p_setosa,p_unseen_1,p_unseen_2");
}

#[test]
fn a_missing_data_file_is_an_io_error() {
    let dir = temp("hostile-missing");
    let spec = std::fs::read_to_string("specs/iris_named.yaml").unwrap().replace("../data/tabular/iris_named.csv", "gone.csv");
    std::fs::write(dir.join("gone.yaml"), spec).unwrap();
    let (code, shown) = run(&["train", dir.join("gone.yaml").to_str().unwrap(), "--out", dir.join("run").to_str().unwrap()], &dir);
    assert_eq!(code, 2, "{shown}");
    insta::assert_snapshot!("missing_data_file", shown);
}

#[test]
fn a_damaged_checkpoint_is_invalid_and_a_missing_one_an_io_error() {
    let dir = temp("hostile-checkpoint");
    let good = std::fs::read(iris().with_file_name("checkpoint.safetensors")).unwrap();
    let folder = |name: &str, bytes: Option<&[u8]>| {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).unwrap();
        if let Some(b) = bytes {
            std::fs::write(d.join("checkpoint.safetensors"), b).unwrap();
        }
        d.display().to_string()
    };
    let runs = [
        (folder("twelve", Some(b"xxxxxxxxxxxx")), 1),
        (folder("cut", Some(&good[..good.len() - 16])), 1),
        (folder("empty", None), 2),
        (folder("dir", None), 2),
    ];
    std::fs::create_dir(dir.join("dir/checkpoint.safetensors")).unwrap();
    let mut all = String::new();
    for (run_dir, want) in &runs {
        let (code, shown) = run(&["train", "specs/iris_named.yaml", "--epochs", "3", "--resume", run_dir], &dir);
        assert_eq!(code, *want, "{shown}");
        assert!(shown.contains(&format!("{run_dir}/checkpoint.safetensors").replace(&dir.display().to_string(), "[tmp]")), "names the path: {shown}");
        all += &shown;
        all += "\n";
    }
    insta::assert_snapshot!("damaged_checkpoints", all);
    // Nothing was written into the folders it refused.
    assert!(!dir.join("cut/model.safetensors").exists());
}
