//! Checks on a built graph that Keras would not make: things that build but
//! are very likely mistakes (warnings), and the loss against each output.

use super::Model;
use crate::diag::Diagnostic;
use crate::layers::Activation;
use crate::spec::training::{Losses, canonical_loss};
use crate::spec::{Named, Spec};
use std::collections::{HashMap, HashSet};

pub fn run(model: &Model, spec: &Spec, diags: &mut Vec<Diagnostic>) {
    single_unit_softmax(model, diags);
    layer_warnings(model, diags);
    if let Some(losses) = spec.training.as_ref().and_then(|t| t.loss.as_ref()) {
        for (out, loss) in pair_losses(model, losses, diags) {
            loss_fits_output(model, out, loss, diags);
        }
    }
}

/// Softmax over one unit is always 1.0: nothing can be learned.
fn single_unit_softmax(model: &Model, diags: &mut Vec<Diagnostic>) {
    for l in &model.layers {
        let (Some(layer), Some(shape)) = (&l.layer, &l.output_shape) else { continue };
        if layer.activation() == Some(Activation::Softmax) && shape.last() == Some(&1) {
            diags.push(
                Diagnostic::warning(
                    format!("{} applies softmax over a single unit, which always outputs 1.0", l.display()),
                    l.spec.type_pos,
                    l.spec.path.clone(),
                )
                .with_hint("for two classes use `units: 1` with `activation: sigmoid`, or 2 units with softmax"),
            );
        }
    }
}

/// Warnings a layer raises about its own inputs (`Layer::warnings`).
fn layer_warnings(model: &Model, diags: &mut Vec<Diagnostic>) {
    for l in &model.layers {
        let (Some(layer), Some(out)) = (&l.layer, &l.output_shape) else { continue };
        let Some(inputs) = l.inputs.iter().map(|&s| model.src_shape(s).cloned()).collect::<Option<Vec<_>>>() else { continue };
        for w in layer.warnings(&inputs, out) {
            let hint = w.hint.map(|h| h.replace("{name}", &l.name));
            diags.push(Diagnostic::warning(format!("{}: {}", l.display(), w.message), l.spec.type_pos, l.spec.path.clone()).with_hint_opt(hint));
        }
    }
}

/// CTC scores every time step: the output must be (time, classes), with a
/// class for the blank besides the tokens.
fn ctc_fits_output(l: &super::LayerNode, loss: &Named, diags: &mut Vec<Diagnostic>) {
    let Some(shape) = &l.output_shape else { return };
    let shown = format!("(batch, {})", shape.iter().map(usize::to_string).collect::<Vec<_>>().join(", "));
    let err = |msg: String, hint: &str| Diagnostic::error(msg, loss.pos, "training.loss").with_hint(hint);
    let d = match shape.len() {
        2 if shape[1] < 2 => Some(err(
            format!("ctc needs at least 2 classes per time step (tokens plus the blank), but '{}' outputs {shown}", l.name),
            "give the output layer one unit per token plus one for the blank",
        )),
        2 => match l.layer.as_ref().and_then(|x| x.activation()) {
            Some(a) if !matches!(a, Activation::Softmax | Activation::Linear) => Some(
                Diagnostic::warning(
                    format!("ctc expects a softmax over the classes (or logits), but '{}' applies {}", l.name, a.name()),
                    loss.pos,
                    "training.loss",
                )
                .with_hint(format!("use `activation: softmax` on '{}'", l.name)),
            ),
            _ => None,
        },
        0 | 1 => Some(err(
            format!(
                "ctc needs a per-timestep output of shape (time, classes), but '{}' outputs {shown}: one vector per sample, as a classifier or regressor does",
                l.name
            ),
            "keep the time axis to the end (e.g. `return_sequences: true` on the last LSTM) and finish with a Dense of one unit per token plus one for the blank",
        )),
        _ => Some(err(
            format!("ctc needs a per-timestep output of shape (time, classes), but '{}' outputs {shown}", l.name),
            "make the time axis the first one and fold the rest into it, e.g. Permute then Reshape to (time, features) before the last Dense",
        )),
    };
    diags.extend(d);
}

/// Matches each output layer with its loss.
pub fn pair_losses<'a>(model: &Model, losses: &'a Losses, diags: &mut Vec<Diagnostic>) -> Vec<(usize, &'a Named)> {
    match losses {
        Losses::All(l) => model.outputs.iter().map(|&o| (o, l)).collect(),
        Losses::List(v) => {
            if v.len() != model.outputs.len() {
                let pos = v.first().map(|n| n.pos).unwrap_or_default();
                diags.push(
                    Diagnostic::error(
                        format!("`training.loss` lists {} losses but the model has {} outputs", v.len(), model.outputs.len()),
                        pos,
                        "training.loss",
                    )
                    .with_hint("give one loss per output, in the order of `model.outputs`"),
                );
                return Vec::new();
            }
            model.outputs.iter().copied().zip(v.iter()).collect()
        }
        Losses::ByOutput(v) => {
            // Maps both ways, so thousands of outputs stay linear.
            let by_name: HashMap<&str, usize> = model.outputs.iter().map(|&o| (model.layers[o].name.as_str(), o)).collect();
            let named: HashSet<&str> = v.iter().map(|(n, _)| n.name.as_str()).collect();
            let mut out = Vec::new();
            for (name, loss) in v {
                match by_name.get(name.name.as_str()) {
                    Some(&o) => out.push((o, loss)),
                    None => {
                        let outs = super::fmt_names(model.outputs.iter().map(|&o| model.layers[o].name.as_str()));
                        diags.push(
                            Diagnostic::error(
                                format!("`training.loss` names '{}', which is not a model output", name.name),
                                name.pos,
                                format!("training.loss.{}", name.name),
                            )
                            .with_hint(format!("outputs: {outs}")),
                        );
                    }
                }
            }
            for &o in &model.outputs {
                if !named.contains(model.layers[o].name.as_str()) {
                    let pos = v.first().map(|(n, _)| n.pos).unwrap_or_default();
                    diags.push(Diagnostic::error(format!("`training.loss` gives no loss for output '{}'", model.layers[o].name), pos, "training.loss"));
                }
            }
            out
        }
    }
}

/// The usual advice: binary crossentropy for two classes, categorical for
/// many, MSE for regression.
fn loss_fits_output(model: &Model, out: usize, loss: &Named, diags: &mut Vec<Diagnostic>) {
    let l = &model.layers[out];
    if canonical_loss(&loss.name) == "ctc" {
        return ctc_fits_output(l, loss, diags);
    }
    let (Some(layer), Some(shape)) = (&l.layer, &l.output_shape) else { return };
    let Some(act) = layer.activation() else { return };
    let units = *shape.last().unwrap_or(&1);
    let what = format!("'{}' ({}-unit {})", l.name, units, act.name());
    let name = canonical_loss(&loss.name);
    let warn = |msg: String, hint: &str| Diagnostic::warning(msg, loss.pos, "training.loss").with_hint(hint);
    let d = match (name, act) {
        ("binary_crossentropy", Activation::Softmax) => Some(warn(
            format!("binary_crossentropy on {what}: it expects one independent sigmoid probability per unit"),
            "for one label among many classes use categorical_crossentropy (one-hot targets) or sparse_categorical_crossentropy (class indices)",
        )),
        ("categorical_crossentropy" | "sparse_categorical_crossentropy", Activation::Sigmoid) => Some(warn(
            format!("{name} after a sigmoid on {what}: it expects a softmax distribution over the classes"),
            "use `activation: softmax` on the output, or binary_crossentropy for independent yes/no labels",
        )),
        ("categorical_crossentropy" | "sparse_categorical_crossentropy", _) if units == 1 => {
            Some(warn(format!("{name} on {what}: with one unit there is only one class"), "for two classes use binary_crossentropy with one sigmoid unit"))
        }
        ("mean_squared_error" | "mean_absolute_error" | "huber", Activation::Softmax) => {
            Some(warn(format!("{name} on a softmax classifier {what}"), "for classification use categorical_crossentropy; for regression use a linear output"))
        }
        ("binary_crossentropy", a) | ("categorical_crossentropy" | "sparse_categorical_crossentropy", a)
            if !matches!(a, Activation::Sigmoid | Activation::Softmax) =>
        {
            let fix = if name == "binary_crossentropy" { "sigmoid" } else { "softmax" };
            Some(warn(format!("{name} expects probabilities, but {what} does not output them"), &format!("add `activation: {fix}` to '{}'", l.name)))
        }
        _ => None,
    };
    diags.extend(d);
}
