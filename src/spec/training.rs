//! The `training` section, as far as validation needs it: the loss (or one
//! loss per output), so validate can warn when a loss doesn't fit its output.

use super::Named;
use super::yaml::{Node, Value};
use crate::diag::{Diagnostic, suggestion};

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
    /// The whole section: the training engine reads the rest of it.
    pub node: Node,
}

pub fn parse(node: &Node, diags: &mut Vec<Diagnostic>) -> Option<TrainingSpec> {
    if node.as_map().is_none() {
        diags.push(Diagnostic::error(format!("`training` must be a mapping, received {}", node.describe()), node.pos, "training"));
        return None;
    }
    let loss = node.get("loss").and_then(|l| parse_losses(l, diags));
    Some(TrainingSpec { loss, node: node.clone() })
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

    #[test]
    fn unknown_loss_suggests() {
        let mut d = Vec::new();
        parse(&yaml("loss: categorical_crossentropi").unwrap(), &mut d);
        assert_eq!(d[0].message, "unknown loss \"categorical_crossentropi\"");
        assert_eq!(d[0].hint.as_deref(), Some("did you mean 'categorical_crossentropy'?"));
    }
}
