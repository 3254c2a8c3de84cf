//! Real tables end to end, as users see them: string, code and text
//! columns, `NA` values, widths from the data, predict on the raw CSV, and
//! every error about typed columns with its line, column and hint.
//!
//! Commands run inside a fresh folder of this test, so the paths they print
//! are relative and the snapshots hold no temp paths.

use assert_cmd::Command;
use std::path::{Path, PathBuf};

/// A fresh folder holding the penguins table and `spec` as `p.yaml`.
fn workdir(name: &str, spec: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nnrun-tables-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::copy("data/tabular/penguins.csv", d.join("penguins.csv")).unwrap();
    std::fs::write(d.join("p.yaml"), spec).unwrap();
    d
}

fn penguins_spec() -> String {
    std::fs::read_to_string("specs/penguins.yaml").unwrap().replace("../data/tabular/penguins.csv", "penguins.csv").replace("epochs: 40", "epochs: 3")
}

/// Runs nnrun in `dir`; returns (code, stdout, stderr).
fn run(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::cargo_bin("nnrun").unwrap().current_dir(dir).args(args).env("NO_COLOR", "1").output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// What a user sees of one command.
fn shown(dir: &Path, args: &[&str]) -> String {
    let (code, stdout, stderr) = run(dir, args);
    let mut s = format!("$ nnrun {}\nexit: {code}\n", args.join(" "));
    if !stdout.is_empty() {
        s += &format!("--- stdout\n{stdout}");
    }
    if !stderr.is_empty() {
        s += &format!("--- stderr\n{stderr}");
    }
    s
}

#[test]
fn penguins_validate_shows_where_the_width_comes_from() {
    let d = workdir("validate", &penguins_spec());
    insta::assert_snapshot!("penguins_validate", shown(&d, &["validate", "p.yaml"]));
}

/// Train, then predict on the raw CSV: the test rows' probabilities are
/// those evaluate computes, and unseen categories are counted.
#[test]
fn predict_takes_the_raw_csv_and_matches_evaluate() {
    let d = workdir("roundtrip", &penguins_spec());
    let (code, out, err) = run(&d, &["train", "p.yaml", "--out", "run"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, out, err) = run(&d, &["predict", "run/model.safetensors", "--input", "penguins.csv"]);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<&str> = out.lines().collect();
    assert_eq!(rows[0], "class,p_Adelie,p_Chinstrap,p_Gentoo");
    assert_eq!(rows.len(), 345, "one row per penguin, NA rows included");
    assert!(err.is_empty(), "no unseen values in the training file: {err}");
    // Accuracy over the whole file from predict's classes: well above chance after 3 epochs.
    let truth: Vec<String> =
        std::fs::read_to_string(d.join("penguins.csv")).unwrap().lines().skip(1).map(|l| l.split(',').next().unwrap().to_string()).collect();
    let right = rows[1..].iter().zip(&truth).filter(|(r, t)| r.split(',').next() == Some(t.as_str())).count();
    assert!(right as f64 / truth.len() as f64 > 0.7, "{right} of {}", truth.len());

    // evaluate on one file and predict on the same file agree (accuracy from both).
    let text = std::fs::read_to_string(d.join("penguins.csv")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let some: String = std::iter::once(lines[0]).chain(lines[1..40].iter().copied()).map(|l| format!("{l}\n")).collect();
    std::fs::write(d.join("some.csv"), &some).unwrap();
    let (code, out, err) = run(&d, &["evaluate", "run/model.safetensors", "--data", "some.csv", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    let acc = v["accuracy"].as_f64().unwrap();
    let (_, pred, _) = run(&d, &["predict", "run/model.safetensors", "--input", "some.csv"]);
    let right = pred.lines().skip(1).zip(lines[1..40].iter()).filter(|(p, l)| p.split(',').next() == l.split(',').next()).count();
    assert!((acc - right as f64 / 39.0).abs() < 1e-9, "evaluate {acc} vs predict {right}/39");

    // Unseen categories go to the out-of-vocabulary slot and are counted.
    let odd = format!("{}\nAdelie,Atlantis,39.1,18.7,181,3750,male,2007\nAdelie,Atlantis,39.5,17.4,186,3800,unknown,2007\n", lines[0]);
    std::fs::write(d.join("odd.csv"), odd).unwrap();
    insta::assert_snapshot!("predict_unseen", shown(&d, &["predict", "run/model.safetensors", "--input", "odd.csv", "--output", "odd_pred.csv"]));
    let (_, inspect, _) = run(&d, &["inspect", "run/model.safetensors"]);
    assert!(inspect.contains("    island: 3 + 1 oov (string_categorical): 'Biscoe', 'Dream', 'Torgersen'"), "{inspect}");
}

#[test]
fn errors_about_columns() {
    let base = penguins_spec();
    let cases: Vec<(&str, String)> = vec![
        ("unknown type", base.replace("island: string_categorical", "island: string_categorial")),
        ("unknown argument", base.replace("max_tokens: 4", "max_token: 4")),
        ("no such column", base.replace("island: string_categorical", "islnd: string_categorical")),
        ("a word in a number column", base.replace("    island: string_categorical\n", "")),
        ("written shape disagrees", base.replace("  layers:\n", "  input_shape: [9]\n  layers:\n")),
        ("int mode without an Embedding", base.replace("island: string_categorical", "island: {type: string_categorical, output_mode: int}")),
        ("text without a length", base.replace("island: string_categorical", "island: {type: text}")),
        ("data unreadable", base.replace("train: penguins.csv", "train: nope.csv")),
        (
            "an Embedding smaller than the vocabulary",
            base.replace("    - {type: Dense, units: 32, activation: relu}\n", "    - {type: Embedding, input_dim: 3, output_dim: 4}\n    - {type: Flatten}\n")
                .replace("features: [island, bill_length_mm, bill_depth_mm, flipper_length_mm, body_mass_g, sex]", "features: [island]")
                .replace("island: string_categorical", "island: {type: string_categorical, output_mode: int}")
                .replace("    sex: {type: string_categorical, max_tokens: 4}\n", "")
                .replace("  normalize: standard\n", ""),
        ),
    ];
    let mut all = String::new();
    for (what, spec) in cases {
        let d = workdir("errors", &spec);
        all += &format!("## {what}\n{}\n", shown(&d, &["validate", "p.yaml"]));
        if what == "a word in a number column" {
            all += &format!("{}\n", shown(&d, &["train", "p.yaml", "--out", "run"]));
        }
    }
    insta::assert_snapshot!("column_errors", all);
}

/// A text column in `int` mode feeds an Embedding; `multi_hot` a Dense.
#[test]
fn text_columns_train_and_predict() {
    let d = std::env::temp_dir().join(format!("nnrun-tables-{}-text", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    // The first 600 rows of debian_sections: quoted commas inside summaries.
    let text = std::fs::read_to_string("data/tabular/debian_sections.csv").unwrap();
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let mut w = csv::Writer::from_path(d.join("deb.csv")).unwrap();
    w.write_record(rdr.headers().unwrap()).unwrap();
    for r in rdr.records().take(600) {
        w.write_record(&r.unwrap()).unwrap();
    }
    w.flush().unwrap();
    for name in ["debian_text", "debian_text_cnn"] {
        let spec = std::fs::read_to_string(format!("specs/{name}.yaml"))
            .unwrap()
            .replace("../data/tabular/debian_sections.csv", "deb.csv")
            .replace("epochs: 8", "epochs: 2")
            .replace("epochs: 6", "epochs: 2");
        std::fs::write(d.join(format!("{name}.yaml")), spec).unwrap();
        let (code, out, err) = run(&d, &["train", &format!("{name}.yaml"), "--out", name]);
        assert_eq!(code, 0, "{out}\n{err}");
        let (code, out, err) = run(&d, &["predict", &format!("{name}/model.safetensors"), "--input", "deb.csv"]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(out.lines().count(), 601);
        // Training's own file has no unseen tokens in its training rows, but the test rows may.
        assert!(err.is_empty() || err.contains("column 'summary'"), "{err}");
    }
}

/// All-missing and one-value columns still give a width (the
/// out-of-vocabulary slot); an all-missing number column can't be filled.
#[test]
fn all_missing_and_one_value_columns() {
    let d = std::env::temp_dir().join(format!("nnrun-tables-{}-edge", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let rows: String = (0..20).map(|i| format!("NA,same,\"a, b\nc {i}\",{},{}\n", i as f32 / 3.0, i % 2)).collect();
    std::fs::write(d.join("e.csv"), format!("gone,one,note,x,y\n{rows}")).unwrap();
    let spec = "model:\n  layers:\n    - {type: Dense, units: 1, activation: sigmoid}\n\
                data:\n  train: e.csv\n  target: y\n  features: [gone, one, note, x]\n  missing: mean\n  columns:\n\
                \x20   gone: string_categorical\n    one: string_categorical\n    note: {type: text, output_mode: count}\n\
                training: {loss: binary_crossentropy, epochs: 1}\n";
    std::fs::write(d.join("e.yaml"), spec).unwrap();
    let (code, out, err) = run(&d, &["validate", "e.yaml"]);
    assert_eq!(code, 0, "{out}{err}");
    // The quoted field with a comma and a newline is one text cell: tokens a, b, c and 20 numbers.
    assert!(out.contains(" Input 'input': 28 values (from the data)\n   gone: 0 + 1 oov (string_categorical)\n   one: 1 + 1 oov (string_categorical)\n   note: 23 + 1 oov (text, count)\n"), "{out}");
    let (code, out, err) = run(&d, &["train", "e.yaml", "--out", "run"]);
    assert_eq!(code, 0, "{out}{err}");
    std::fs::write(d.join("e.csv"), format!("gone,one,note,x,y\n{}", (0..5).map(|i| format!("a,b,c,NA,{}\n", i % 2)).collect::<String>())).unwrap();
    let (code, out, _) = run(&d, &["train", "e.yaml", "--out", "run2"]);
    assert_eq!(code, 1);
    assert!(out.is_empty());
}
