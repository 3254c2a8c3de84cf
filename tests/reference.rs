//! docs/spec-reference.md lists every layer with the arguments its reader
//! actually reads. Regenerate with `NNRUN_UPDATE_DOCS=1 cargo test --test reference`.

#[test]
fn spec_reference_is_up_to_date() {
    let path = "docs/spec-reference.md";
    let doc = std::fs::read_to_string(path).unwrap();
    let fresh = nnrun::reference::refresh(&doc).expect("docs/spec-reference.md has the generated-section markers");
    if std::env::var_os("NNRUN_UPDATE_DOCS").is_some() {
        std::fs::write(path, &fresh).unwrap();
        return;
    }
    assert!(doc == fresh, "{path} is stale: run `NNRUN_UPDATE_DOCS=1 cargo test --test reference`");
}

#[test]
fn reference_lists_every_layer() {
    let doc = std::fs::read_to_string("docs/spec-reference.md").unwrap();
    for name in nnrun::layers::type_names() {
        assert!(doc.contains(&format!("#### {name}\n")), "{name} is not in the reference");
    }
}
