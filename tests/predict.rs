//! `nnrun predict` through the binary, on tiny models trained by the binary:
//! the columns per kind of output, agreement with the labels and the saved
//! test accuracy, and clear errors for bad models and bad input.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
mod common;
use common::{nnrun, temp, trained as train};

/// Predictions as (header, rows); asserts success.
fn predict(model: &Path, input: &str, extra: &[&str]) -> (Vec<String>, Vec<Vec<String>>) {
    let mut args = vec!["predict", model.to_str().unwrap(), "--input", input];
    args.extend_from_slice(extra);
    let (code, stdout, stderr) = nnrun(&args);
    assert_eq!(code, 0, "stderr:\n{stderr}");
    let split = |l: &str| l.split(',').map(str::to_string).collect::<Vec<_>>();
    let mut lines = stdout.lines();
    (split(lines.next().unwrap()), lines.map(split).collect())
}

/// Predict's (exit code, stderr).
fn predict_err(model: &Path, input: &str) -> (i32, String) {
    let (code, _, stderr) = nnrun(&["predict", model.to_str().unwrap(), "--input", input]);
    (code, stderr)
}

fn floats(cells: &[String]) -> Vec<f64> {
    cells.iter().map(|c| c.parse().unwrap_or_else(|_| panic!("not a number: {c}"))).collect()
}

/// One iris model shared by the tests that only read it.
fn iris() -> &'static Path {
    static M: OnceLock<PathBuf> = OnceLock::new();
    M.get_or_init(|| train("specs/iris_named.yaml", "iris", &["--epochs", "20"]))
}

const IRIS: &str = "data/tabular/iris_named.csv";

#[test]
fn iris_class_names_probabilities_and_accuracy() {
    let (header, rows) = predict(iris(), IRIS, &[]);
    assert_eq!(header, ["class", "p_setosa", "p_versicolor", "p_virginica"]);
    assert_eq!(rows.len(), 150);
    let truth: Vec<String> = std::fs::read_to_string(IRIS).unwrap().lines().skip(1).map(|l| l.rsplit(',').next().unwrap().to_string()).collect();
    let mut right = 0;
    for (row, want) in rows.iter().zip(&truth) {
        let p = floats(&row[1..]);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-4, "{row:?}");
        let best = (0..3).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
        assert_eq!(row[0], header[best + 1]["p_".len()..], "the class is the most probable one: {row:?}");
        right += (row[0] == *want) as usize;
    }
    let acc = right as f64 / 150.0;
    assert!(acc > 0.7, "accuracy {acc}");
}

#[test]
fn output_file_batches_and_column_order_do_not_change_predictions() {
    let dir = temp("out");
    let out = dir.join("pred.csv");
    let (code, stdout, stderr) = nnrun(&["predict", iris().to_str().unwrap(), "--input", IRIS, "--batch-size", "7", "--output", out.to_str().unwrap()]);
    assert_eq!((code, stdout.as_str()), (0, ""), "{stderr}");
    let (code, all, _) = nnrun(&["predict", iris().to_str().unwrap(), "--input", IRIS]);
    assert_eq!(code, 0);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), all, "same rows in batches of 7 and 256");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "no temp file left behind");
    // Columns found by name: reordered, with an extra one, the target gone.
    let shuffled = dir.join("shuffled.csv");
    let text: String = std::fs::read_to_string(IRIS)
        .unwrap()
        .lines()
        .take(6)
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            format!("{},note,{},{},{}\n", c[3], c[1], c[0], c[2])
        })
        .collect();
    std::fs::write(&shuffled, text).unwrap();
    let (_, rows) = predict(iris(), shuffled.to_str().unwrap(), &[]);
    let first: Vec<Vec<String>> = all.lines().skip(1).take(5).map(|l| l.split(',').map(str::to_string).collect()).collect();
    assert_eq!(rows, first);
}

#[test]
fn bad_input_and_bad_models_are_clear_errors() {
    let dir = temp("errs");
    let write = |name: &str, text: &str| {
        std::fs::write(dir.join(name), text).unwrap();
        dir.join(name).display().to_string()
    };
    let f = write("nocol.csv", "sepal_length_cm,sepal_width_cm,petal_length_cm,species\n5.1,3.5,1.4,setosa\n");
    let (code, err) = predict_err(iris(), &f);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&format!("{f}: missing column 'petal_width_cm'")), "{err}");
    let head = "sepal_length_cm,sepal_width_cm,petal_length_cm,petal_width_cm\n";
    let f = write("text.csv", &format!("{head}5.1,3.5,1.4,0.2\n5.0,abc,1.4,0.2\n"));
    let (code, err) = predict_err(iris(), &f);
    assert_eq!(code, 1);
    assert!(err.contains(&format!("{f}: row 3, column 'sepal_width_cm': 'abc' is not a number")), "{err}");
    let f = write("empty.csv", &format!("{head}5.1,3.5,1.4,\n"));
    assert!(predict_err(iris(), &f).1.contains("row 2, column 'petal_width_cm': the value is empty"));
    // Not a model, no model, no input.
    let (code, err) = predict_err(Path::new(IRIS), IRIS);
    assert_eq!(code, 1);
    assert!(err.contains(&format!("{IRIS} is not a valid model file")), "{err}");
    let (code, err) = predict_err(&dir.join("none.safetensors"), IRIS);
    assert_eq!(code, 2);
    assert!(err.contains("cannot read") && err.contains("none.safetensors"), "{err}");
    let (code, err) = predict_err(iris(), "no/such.csv");
    assert_eq!(code, 2);
    assert!(err.contains("cannot read no/such.csv"), "{err}");
}

#[test]
fn missing_mean_models_fill_empty_cells() {
    let model = train("specs/iris_named.yaml", "iris-mean", &["--epochs", "2", "--set", "data.missing=mean"]);
    let dir = temp("mean");
    let f = dir.join("gaps.csv");
    std::fs::write(&f, "sepal_length_cm,sepal_width_cm,petal_length_cm,petal_width_cm\n5.1,,1.4,0.2\n,,,\n").unwrap();
    let (_, rows) = predict(&model, f.to_str().unwrap(), &[]);
    assert_eq!(rows.len(), 2);
}

#[test]
fn breast_cancer_binary() {
    let model = train("specs/breast_cancer.yaml", "bc", &["--epochs", "3"]);
    let (header, rows) = predict(&model, "data/tabular/breast_cancer.csv", &[]);
    assert_eq!(header, ["class", "p_1"]);
    assert_eq!(rows.len(), 569);
    for r in &rows {
        let p: f64 = r[1].parse().unwrap();
        assert!((0.0..=1.0).contains(&p));
        assert_eq!(r[0], if p >= 0.5 { "1" } else { "0" }, "{r:?}");
    }
}

#[test]
fn regression_in_target_units() {
    let dir = temp("reg");
    let data = std::env::current_dir().unwrap().join("data/tabular/diabetes.csv");
    let spec = format!(
        "name: diabetes\nmodel:\n  input_shape: [10]\n  layers:\n    - {{type: Dense, units: 1}}\n\
         data:\n  train: {}\n  target: target\n  normalize: standard\n\
         training:\n  loss: mse\n  optimizer: {{type: adam, learning_rate: 0.5}}\n  epochs: 20\n  batch_size: 32\n",
        data.display()
    );
    std::fs::write(dir.join("d.yaml"), spec).unwrap();
    let model = train(dir.join("d.yaml").to_str().unwrap(), "reg-run", &[]);
    let (header, rows) = predict(&model, data.to_str().unwrap(), &[]);
    assert_eq!(header, ["prediction"]);
    assert_eq!(rows.len(), 442);
    let mean = rows.iter().map(|r| r[0].parse::<f64>().unwrap()).sum::<f64>() / 442.0;
    assert!(mean > 50.0, "predictions are in the target's units (mean 152): {mean}");
}

#[test]
fn windowed_model_forecasts_after_each_window() {
    let model = train("specs/sunspots_lstm.yaml", "sun", &["--epochs", "2"]);
    let (header, rows) = predict(&model, "data/timeseries/sunspots.csv", &[]);
    assert_eq!(header, ["line", "prediction"]);
    // 309 yearly values give 298 windows of 12; the first ends on line 13.
    let series: Vec<f64> =
        std::fs::read_to_string("data/timeseries/sunspots.csv").unwrap().lines().skip(1).map(|l| l.split(',').nth(1).unwrap().parse().unwrap()).collect();
    assert_eq!(rows.len(), series.len() - 12 + 1);
    assert_eq!(rows[0][0], "13");
    assert_eq!(rows.last().unwrap()[0], (series.len() + 1).to_string());

    // Forecasts of the held-out windows reproduce evaluate's test MSE (scaled by 1/200).
    let (code, out, err) = nnrun(&["evaluate", model.to_str().unwrap(), "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let n = report["samples"].as_u64().unwrap() as usize;
    let with_target = &rows[..rows.len() - 1];
    let mse = with_target[with_target.len() - n..]
        .iter()
        .map(|r| {
            let line: usize = r[0].parse().unwrap();
            let (p, actual) = (r[1].parse::<f64>().unwrap(), series[line - 1]); // value on line + 1
            ((p - actual) * 0.005).powi(2)
        })
        .sum::<f64>()
        / n as f64;
    let want = report["mse"].as_f64().unwrap();
    assert!((mse - want).abs() < 1e-4 * want.max(1e-3), "predict gives {mse}, evaluate {want}");

    // Too short a series, or a missing column, is an error.
    let dir = temp("sun-short");
    let short = dir.join("short.csv");
    std::fs::write(&short, "year,sunactivity\n1700,5\n1701,11\n").unwrap();
    let (code, err) = predict_err(&model, short.to_str().unwrap());
    assert_eq!(code, 1);
    assert!(err.contains("2 values of column 'sunactivity' make no window; the model forecasts from 12 consecutive values"), "{err}");
    let other = dir.join("other.csv");
    std::fs::write(&other, "year,spots\n1700,5\n").unwrap();
    let (code, err) = predict_err(&model, other.to_str().unwrap());
    assert_eq!(code, 1);
    assert!(err.contains("no column 'sunactivity'"), "{err}");
}

#[test]
fn dag_has_a_block_per_output() {
    let model = train("specs/digits_dag.yaml", "dag", &["--epochs", "1", "--limit", "300"]);
    let (header, rows) = predict(&model, "data/tabular/digits_dag.csv", &[]);
    let mut want = vec!["digit".to_string()];
    want.extend((0..10).map(|k| format!("digit_p_{k}")));
    want.extend(["odd".to_string(), "odd_p_1".to_string()]);
    assert_eq!(header, want);
    assert_eq!(rows.len(), 1797);
    for r in &rows {
        assert!(r[0].parse::<u8>().unwrap() < 10 && (r[11] == "0" || r[11] == "1"), "{r:?}");
        assert!((floats(&r[1..11]).iter().sum::<f64>() - 1.0).abs() < 1e-4);
    }
}

#[test]
fn mnist_idx_agrees_with_the_saved_test_accuracy() {
    let model = train("specs/mnist_mlp.yaml", "mlp", &["--limit", "512", "--epochs", "2"]);
    let images = "data/mnist/t10k-images-idx3-ubyte.gz";
    let (header, rows) = predict(&model, images, &[]);
    assert_eq!(header.len(), 11);
    assert_eq!(rows.len(), 2000);
    let labels = nnrun::data::idx::read(Path::new("data/mnist/t10k-labels-idx1-ubyte.gz"), "labels").unwrap().data;
    let right = rows.iter().zip(&labels).filter(|(r, l)| r[0].parse::<f32>().unwrap() == **l).count();
    let file = nnrun::artifact::ModelFile::read(&model).unwrap();
    let saved = file.meta.metrics["test_accuracy"];
    assert!((right as f64 / 2000.0 - saved).abs() < 0.003, "predict {right}/2000, train's test_accuracy {saved}");
    // Images of another size, and a CSV where IDX is expected.
    let (code, err) = predict_err(&model, "data/digits/images-idx3-ubyte");
    assert_eq!(code, 1);
    assert!(err.contains("(64 values)") && err.contains("(784 values)"), "{err}");
    let (code, err) = predict_err(&model, IRIS);
    assert_eq!(code, 1);
    assert!(err.contains("not an IDX file"), "{err}");
}
