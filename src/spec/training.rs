//! The `training` section, as far as validation needs it: the loss (or one
//! loss per output), so validate can warn when a loss doesn't fit its output,
//! and `class_weight`, whose entries carry their positions for the checks
//! against the model (`train::config`) and the data (`train::weights`).

use super::Named;
use super::yaml::{Node, Value};
use crate::diag::{Diagnostic, Pos, suggestion};

/// Keras loss names nnrun knows, with their aliases.
pub const LOSSES: &[&str] = &[
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
    "mean_squared_error",
    "mse",
    "mean_absolute_error",
    "mae",
    "huber",
    "ctc",
];

/// The canonical name of a loss (`mse` -> `mean_squared_error`).
pub fn canonical_loss(name: &str) -> &str {
    match name {
        "mse" => "mean_squared_error",
        "mae" => "mean_absolute_error",
        other => other,
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Losses {
    /// One loss for every output.
    All(Named),
    /// One loss per output, in output order.
    List(Vec<Named>),
    /// Output layer name -> loss.
    ByOutput(Vec<(Named, Named)>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct TrainingSpec {
    pub loss: Option<Losses>,
    /// `class_weight`, when given (not null) and well-formed.
    pub class_weight: Option<ClassWeight>,
    /// The whole section: the training engine reads the rest of it.
    pub node: Node,
}

/// `training.class_weight`: Keras `fit(class_weight=...)`.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassWeight {
    pub kind: ClassWeightKind,
    /// The `class_weight` key, where errors about the whole setting point.
    pub pos: Pos,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ClassWeightKind {
    /// sklearn's `compute_class_weight("balanced")` over the training split:
    /// n_samples / (n_classes * count of the class).
    Balanced,
    /// Class -> weight, in spec order; classes not listed weigh 1.
    Map(Vec<ClassWeightEntry>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct ClassWeightEntry {
    pub class: ClassKey,
    /// Finite and >= 0.
    pub weight: f64,
    /// The entry's key.
    pub pos: Pos,
}

/// A class as `class_weight` names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClassKey {
    /// A class index (Keras's only form).
    Index(usize),
    /// A class name of a text target column (or, for numeric labels, a label
    /// written as a string).
    Name(String),
}

impl std::fmt::Display for ClassKey {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            ClassKey::Index(i) => write!(f, "{i}"),
            ClassKey::Name(s) => write!(f, "'{}'", super::yaml::shown(s)),
        }
    }
}

pub fn parse(node: &Node, diags: &mut Vec<Diagnostic>) -> Option<TrainingSpec> {
    if node.as_map().is_none() {
        diags.push(Diagnostic::error(format!("`training` must be a mapping, received {}", node.describe()), node.pos, "training"));
        return None;
    }
    let loss = node.get("loss").and_then(|l| parse_losses(l, diags));
    let class_weight = node.entry("class_weight").and_then(|(k, v)| parse_class_weight(k, v, diags));
    Some(TrainingSpec { loss, class_weight, node: node.clone() })
}

/// `balanced`, or a mapping from class name or index to a weight. `null`
/// is Keras's `None`: no class weights.
fn parse_class_weight(key: &Node, node: &Node, diags: &mut Vec<Diagnostic>) -> Option<ClassWeight> {
    const PATH: &str = "training.class_weight";
    let kind = match &node.value {
        Value::Null => return None,
        Value::Str(s) if s == "balanced" => ClassWeightKind::Balanced,
        Value::Map(entries) if entries.is_empty() => {
            diags.push(
                Diagnostic::error("`class_weight` is an empty mapping", node.pos, PATH)
                    .with_hint("map classes to weights, such as `{Adelie: 1.0, Chinstrap: 2.0}` or `{0: 1.0, 1: 3.0}`, or remove it"),
            );
            return None;
        }
        Value::Map(entries) => {
            let mut out: Vec<ClassWeightEntry> = Vec::with_capacity(entries.len());
            let mut ok = true;
            let mut indices = std::collections::HashSet::new();
            for (k, v) in entries {
                let path = format!("{PATH}.{}", k.as_str().map_or_else(|| k.describe(), super::yaml::shown));
                let class = match (&k.value, k.as_int()) {
                    (Value::Str(s), _) => Some(ClassKey::Name(s.clone())),
                    (_, Some(i)) if i >= 0 => Some(ClassKey::Index(i as usize)),
                    (_, Some(i)) => {
                        diags.push(
                            Diagnostic::error(format!("`class_weight` has the class index {i}; class indices start at 0"), k.pos, path.clone())
                                .with_hint("key the weights by class name, or by class index from 0"),
                        );
                        None
                    }
                    _ => {
                        diags.push(
                            Diagnostic::error(
                                format!("a `class_weight` key must be a class name or a class index, received {}", k.describe()),
                                k.pos,
                                path.clone(),
                            )
                            .with_hint("for example `{Adelie: 1.0, Chinstrap: 2.0}` or `{0: 1.0, 1: 3.0}`"),
                        );
                        None
                    }
                };
                // YAML finds repeated string keys; `0` and `0.0` are one index too.
                if let Some(ClassKey::Index(i)) = class
                    && !indices.insert(i)
                {
                    diags.push(Diagnostic::error(format!("`class_weight` gives class {i} twice"), k.pos, path.clone()).with_hint("keep one"));
                    ok = false;
                }
                let weight = v.as_f64().filter(|w| w.is_finite() && *w >= 0.0);
                if weight.is_none() {
                    let shown = k.as_str().map_or_else(|| k.describe(), |s| format!("'{}'", super::yaml::shown(s)));
                    diags.push(
                        Diagnostic::error(format!("the `class_weight` of class {shown} must be a finite number >= 0, received {}", v.describe()), v.pos, path)
                            .with_hint("a class's weight multiplies the loss of its samples: 1 leaves them as they are, 2 counts them twice, 0 ignores them"),
                    );
                }
                match (class, weight) {
                    (Some(class), Some(weight)) => out.push(ClassWeightEntry { class, weight, pos: k.pos }),
                    _ => ok = false,
                }
            }
            if !ok {
                return None;
            }
            ClassWeightKind::Map(out)
        }
        _ => {
            let hint = match node.as_str() {
                Some(s) => suggestion(s, &["balanced"]).filter(|h| h.starts_with("did you mean")),
                None => None,
            };
            diags.push(
                Diagnostic::error(format!("`class_weight` must be `balanced` or a mapping from class to weight, received {}", node.describe()), node.pos, PATH)
                    .with_hint(hint.unwrap_or_else(|| "for example `class_weight: balanced` or `class_weight: {Adelie: 1.0, Chinstrap: 2.0}`".into())),
            );
            return None;
        }
    };
    Some(ClassWeight { kind, pos: key.pos })
}

fn parse_losses(node: &Node, diags: &mut Vec<Diagnostic>) -> Option<Losses> {
    let mut one = |n: &Node, path: String| -> Option<Named> {
        let Some(s) = n.as_str() else {
            diags.push(Diagnostic::error(format!("a loss must be a loss name, received {}", n.describe()), n.pos, path));
            return None;
        };
        if !LOSSES.contains(&s) {
            diags.push(Diagnostic::error(format!("unknown loss \"{s}\""), n.pos, path).with_hint_opt(suggestion(s, LOSSES)));
            return None;
        }
        Some(Named { name: s.to_string(), pos: n.pos })
    };
    match &node.value {
        Value::Str(_) => one(node, "training.loss".into()).map(Losses::All),
        Value::Seq(items) => {
            let v: Option<Vec<Named>> = items.iter().enumerate().map(|(i, n)| one(n, format!("training.loss[{i}]"))).collect();
            v.map(Losses::List)
        }
        Value::Map(entries) => {
            let mut out = Vec::new();
            for (k, v) in entries {
                let key = k.as_str().unwrap_or_default().to_string();
                if let Some(l) = one(v, format!("training.loss.{key}")) {
                    out.push((Named { name: key, pos: k.pos }, l));
                }
            }
            (out.len() == entries.len()).then_some(Losses::ByOutput(out))
        }
        _ => {
            diags.push(Diagnostic::error(
                format!("`loss` must be a loss name, a list, or a mapping from output to loss, received {}", node.describe()),
                node.pos,
                "training.loss",
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::yaml::parse as yaml;

    #[test]
    fn reads_each_loss_form() {
        let mut d = Vec::new();
        let t = parse(&yaml("loss: mse").unwrap(), &mut d).unwrap();
        assert!(matches!(t.loss, Some(Losses::All(ref n)) if n.name == "mse"));
        let t = parse(&yaml("loss: [mse, binary_crossentropy]").unwrap(), &mut d).unwrap();
        assert!(matches!(t.loss, Some(Losses::List(ref v)) if v.len() == 2));
        let t = parse(&yaml("loss: {digit: categorical_crossentropy}").unwrap(), &mut d).unwrap();
        assert!(matches!(t.loss, Some(Losses::ByOutput(ref v)) if v[0].0.name == "digit"));
        assert!(d.is_empty());
    }

    fn class_weight_errors(src: &str) -> Vec<(usize, usize, String, Option<String>)> {
        let mut d = Vec::new();
        let t = parse(&yaml(src).unwrap(), &mut d).unwrap();
        assert!(t.class_weight.is_none() || d.is_empty());
        d.into_iter().map(|d| (d.pos.line, d.pos.col, d.message, d.hint)).collect()
    }

    #[test]
    fn reads_class_weight_forms_with_positions() {
        let mut d = Vec::new();
        let t = parse(
            &yaml(
                "loss: mse
class_weight: balanced",
            )
            .unwrap(),
            &mut d,
        )
        .unwrap();
        assert_eq!(t.class_weight, Some(ClassWeight { kind: ClassWeightKind::Balanced, pos: Pos::new(2, 1, 12) }));
        let t = parse(&yaml("class_weight: {Adelie: 1.0, 1: 2, '2': 0}").unwrap(), &mut d).unwrap();
        let ClassWeightKind::Map(entries) = t.class_weight.unwrap().kind else { panic!("a mapping") };
        let got: Vec<(ClassKey, f64, usize)> = entries.into_iter().map(|e| (e.class, e.weight, e.pos.col)).collect();
        assert_eq!(got, [(ClassKey::Name("Adelie".into()), 1.0, 16), (ClassKey::Index(1), 2.0, 29), (ClassKey::Name("2".into()), 0.0, 35)]);
        // null is Keras's None.
        assert_eq!(parse(&yaml("class_weight: null").unwrap(), &mut d).unwrap().class_weight, None);
        assert!(d.is_empty(), "{d:?}");
    }

    #[test]
    fn class_weight_errors_point_at_the_value() {
        let e = class_weight_errors("class_weight: {a: -1, b: .inf, c: x, d: 1}");
        assert_eq!(e.len(), 3, "{e:?}");
        assert_eq!((e[0].0, e[0].1), (1, 19));
        assert_eq!(e[0].2, "the `class_weight` of class 'a' must be a finite number >= 0, received -1");
        assert!(e[0].3.as_deref().unwrap().starts_with("a class's weight multiplies the loss of its samples"));
        assert_eq!(e[1].2, "the `class_weight` of class 'b' must be a finite number >= 0, received inf");
        assert_eq!(e[2].2, "the `class_weight` of class 'c' must be a finite number >= 0, received \"x\"");
        let e = class_weight_errors("class_weight:\n  0: 1\n  -1: 2\n  0.0: 3\n  [x]: 4\n");
        assert_eq!(e.iter().map(|e| (e.0, e.1)).collect::<Vec<_>>(), [(3, 3), (4, 3), (5, 3)], "{e:?}");
        assert_eq!(e[0].2, "`class_weight` has the class index -1; class indices start at 0");
        assert_eq!(e[1].2, "`class_weight` gives class 0 twice");
        assert_eq!(e[2].2, "a `class_weight` key must be a class name or a class index, received [\"x\"]");
        let e = class_weight_errors("class_weight: balancd");
        assert_eq!((e[0].0, e[0].1), (1, 15));
        assert_eq!(e[0].2, "`class_weight` must be `balanced` or a mapping from class to weight, received \"balancd\"");
        assert_eq!(e[0].3.as_deref(), Some("did you mean 'balanced'?"));
        let e = class_weight_errors("class_weight: [1, 2]");
        assert!(e[0].3.as_deref().unwrap().starts_with("for example `class_weight: balanced`"), "{e:?}");
        let e = class_weight_errors("class_weight: {}");
        assert_eq!(e[0].2, "`class_weight` is an empty mapping");
    }

    #[test]
    fn unknown_loss_suggests() {
        let mut d = Vec::new();
        parse(&yaml("loss: categorical_crossentropi").unwrap(), &mut d);
        assert_eq!(d[0].message, "unknown loss \"categorical_crossentropi\"");
        assert_eq!(d[0].hint.as_deref(), Some("did you mean 'categorical_crossentropy'?"));
    }
}
