//! The model graph lowered to candle: one variable per Keras weight, and a
//! forward pass over the layers in topological order.

use crate::graph::{Model, Src};
use crate::layers::{Activation, Ctx, init};
use candle_core::{DType, Device, Result, Tensor, Var};
use rand::rngs::StdRng;

pub struct Net {
    pub graph: Model,
    /// Per layer (spec order), its weights in `Layer::weights` order.
    pub vars: Vec<Vec<Var>>,
    pub device: Device,
    pub dtype: DType,
}

impl Net {
    /// Creates every weight with its Keras initializer, drawn from `rng` in
    /// spec order so the same seed gives the same model.
    pub fn new(graph: Model, device: &Device, dtype: DType, rng: &mut StdRng) -> Result<Net> {
        let mut vars = Vec::with_capacity(graph.layers.len());
        for node in &graph.layers {
            let mut layer_vars = Vec::with_capacity(node.weights.len());
            for w in &node.weights {
                let values = init::sample(&w.init, &w.shape, rng);
                let t = Tensor::from_vec(values, w.shape.as_slice(), device)?.to_dtype(dtype)?;
                layer_vars.push(Var::from_tensor(&t)?);
            }
            vars.push(layer_vars);
        }
        Ok(Net { graph, vars, device: device.clone(), dtype })
    }

    /// Runs the model. `inputs` follow the model inputs' order, batch first;
    /// the result follows the outputs' order. With `logits[i]`, output `i`
    /// is returned before its softmax/sigmoid so the loss can fuse them.
    pub fn forward(&self, inputs: &[Tensor], ctx: &mut Ctx, logits: &[bool]) -> Result<Vec<Tensor>> {
        static FUSE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        // NNRUN_NO_FUSION=1: each layer its own op (fusion changes no number).
        let fuse = *FUSE.get_or_init(|| std::env::var_os("NNRUN_NO_FUSION").is_none_or(|v| v != "1"));
        self.forward_with(inputs, ctx, logits, fuse)
    }

    /// `forward`, with `fuse` choosing whether layer pairs run as one op.
    pub fn forward_with(&self, inputs: &[Tensor], ctx: &mut Ctx, logits: &[bool], fuse: bool) -> Result<Vec<Tensor>> {
        let g = &self.graph;
        let mut values: Vec<Option<Tensor>> = vec![None; g.layers.len()];
        let pairs = if fuse { self.conv_pool_pairs() } else { Vec::new() };
        let layer_of = |i: usize| g.layers[i].layer.as_ref().expect("a valid graph has every layer built");
        let gather = |i: usize, values: &[Option<Tensor>]| -> Vec<Tensor> {
            g.layers[i]
                .inputs
                .iter()
                .map(|&s| match s {
                    Src::Input(k) => inputs[k].clone(),
                    Src::Layer(j) => values[j].clone().expect("topological order"),
                })
                .collect()
        };
        for &i in &g.order {
            let layer = layer_of(i);
            // A convolution whose only reader is a pooling runs with it, at the pooling.
            if pairs.iter().any(|&(c, _)| c == i) {
                continue;
            }
            if let Some(&(c, _)) = pairs.iter().find(|&&(_, p)| p == i) {
                let (conv, pool) = (layer_of(c).as_conv().expect("paired"), layer.as_pooling().expect("paired"));
                let xs = gather(c, &values);
                let fused = conv.forward_pooled(&xs, &self.vars[c], ctx, pool).transpose()?;
                values[i] = Some(match fused {
                    Some(y) => y,
                    None => {
                        let y = layer_of(c).forward(&xs, &self.vars[c], ctx)?;
                        layer.forward(&[y], &self.vars[i], ctx)?
                    }
                });
                continue;
            }
            let xs = gather(i, &values);
            ctx.logits = g.outputs.iter().position(|&o| o == i).is_some_and(|k| logits.get(k) == Some(&true));
            values[i] = Some(layer.forward(&xs, &self.vars[i], ctx)?);
            ctx.logits = false;
        }
        Ok(g.outputs.iter().map(|&o| values[o].clone().expect("outputs are computed")).collect())
    }

    /// (convolution, pooling) layer pairs to run as one op: a Conv2D read
    /// only by a 2D pooling, and not a model output.
    fn conv_pool_pairs(&self) -> Vec<(usize, usize)> {
        let g = &self.graph;
        let readers = |c: usize| g.layers.iter().filter(|n| n.inputs.contains(&Src::Layer(c))).count();
        let mut pairs = Vec::new();
        for (p, node) in g.layers.iter().enumerate() {
            let (Some(pool), [Src::Layer(c)]) = (node.layer.as_ref().and_then(|l| l.as_pooling()), &node.inputs[..]) else { continue };
            let conv = g.layers[*c].layer.as_ref().and_then(|l| l.as_conv());
            if conv.is_some_and(|conv| conv.dims == 2) && pool.dims == 2 && readers(*c) == 1 && !g.outputs.contains(c) {
                pairs.push((*c, p));
            }
        }
        pairs
    }

    /// Whether each output layer can return its values before its activation
    /// (`Layer::returns_logits`), so a loss may fuse the two.
    pub fn outputs_return_logits(&self) -> Vec<bool> {
        self.graph.outputs.iter().map(|&o| self.graph.layers[o].layer.as_ref().is_some_and(|l| l.returns_logits())).collect()
    }

    /// The final activation of each output layer.
    pub fn output_activations(&self) -> Vec<Option<Activation>> {
        self.graph.outputs.iter().map(|&o| self.graph.layers[o].layer.as_ref().and_then(|l| l.activation())).collect()
    }

    /// Variables the optimizer updates: trainable weights of trainable layers.
    pub fn trainable_vars(&self) -> Vec<Var> {
        self.graph
            .layers
            .iter()
            .zip(&self.vars)
            .flat_map(|(node, vars)| node.weights.iter().zip(vars).filter(|(w, _)| w.trainable).map(|(_, v)| v.clone()))
            .collect()
    }

    /// Every weight as `<layer>.<weight>`, in spec order.
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        self.graph
            .layers
            .iter()
            .zip(&self.vars)
            .flat_map(|(node, vars)| node.weights.iter().zip(vars).map(move |(w, v)| (format!("{}.{}", node.name, w.name), v.as_tensor().clone())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Source;
    use rand::SeedableRng;

    /// A Conv2D read only by a pooling runs as one op with it; the numbers
    /// (outputs and every gradient) are those of the two ops, bit for bit.
    #[test]
    fn fused_conv_pooling_changes_no_number() {
        let text = "model:\n  input_shape: [9, 10, 2]\n  layers:\n\
                    \x20   - {type: Conv2D, filters: 4, kernel_size: 3, padding: same, activation: relu}\n\
                    \x20   - {type: MaxPooling2D, pool_size: 2}\n\
                    \x20   - {type: Conv2D, filters: 3, kernel_size: 2}\n\
                    \x20   - {type: AveragePooling2D, pool_size: 2, strides: 1, padding: same}\n\
                    \x20   - {type: Flatten}\n    - {type: Dense, units: 2}\n";
        let mut diags = Vec::new();
        let (_, graph) = crate::graph::from_source(&Source { path: "t.yaml".into(), text: text.into() }, &mut diags).unwrap();
        let net = Net::new(graph, &Device::Cpu, DType::F32, &mut StdRng::seed_from_u64(3)).unwrap();
        assert_eq!(net.conv_pool_pairs(), [(0, 1), (2, 3)]);
        let x = Tensor::from_vec((0..3 * 180).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect::<Vec<_>>(), (3, 9, 10, 2), &Device::Cpu).unwrap();
        let run = |fuse: bool| {
            let mut rng = StdRng::seed_from_u64(1);
            let y = net
                .forward_with(std::slice::from_ref(&x), &mut Ctx { train: true, rng: &mut rng, logits: false, grads: None, part: None }, &[], fuse)
                .unwrap()
                .remove(0);
            let grads = y.sqr().unwrap().sum_all().unwrap().backward().unwrap();
            let mut out = vec![y.flatten_all().unwrap().to_vec1::<f32>().unwrap()];
            for v in net.vars.iter().flatten() {
                out.push(grads.get(v.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap());
            }
            out
        };
        let fused = run(true);
        assert_eq!(fused, run(false));
        // The second run's conv outputs and im2col matrices reuse the first's buffers.
        assert_eq!(run(true), fused);
    }

    /// Every example spec runs forward, and each layer's real output shape
    /// equals the shape validate inferred. Together with the test that the
    /// examples use every layer type, this lowers every registered layer.
    #[test]
    fn every_example_spec_runs_forward_with_the_inferred_shapes() {
        let mut specs: Vec<_> = std::fs::read_dir("specs").unwrap().map(|e| e.unwrap().path()).collect();
        specs.sort();
        for path in specs.iter().filter(|p| p.extension().is_some_and(|e| e == "yaml")) {
            let source = Source::read(path).unwrap();
            let mut diags = Vec::new();
            // Inputs without a written shape take it from the data's columns.
            let root = crate::spec::yaml::parse(&source.text).unwrap();
            let dir = std::path::Path::new("specs");
            let (_, graph) = crate::data::build(&root, &source, dir, None, &mut diags).unwrap();
            assert!(diags.iter().all(|d| !d.is_error()), "{}: {diags:?}", path.display());
            let mut rng = StdRng::seed_from_u64(0);
            let net = Net::new(graph, &Device::Cpu, DType::F32, &mut rng).unwrap();
            let inputs: Vec<Tensor> = net
                .graph
                .inputs
                .iter()
                .map(|i| {
                    let mut dims = vec![2];
                    dims.extend(&i.shape);
                    // Small non-negative integers are valid for Embedding and fine for the rest.
                    Tensor::ones(dims, DType::F32, &Device::Cpu).unwrap()
                })
                .collect();
            // Run layer by layer to compare every intermediate shape.
            let g = &net.graph;
            let mut values: Vec<Option<Tensor>> = vec![None; g.layers.len()];
            let mut ctx = Ctx { train: true, rng: &mut rng, logits: false, grads: None, part: None };
            for &i in &g.order {
                let node = &g.layers[i];
                let xs: Vec<Tensor> = node
                    .inputs
                    .iter()
                    .map(|&s| match s {
                        Src::Input(k) => inputs[k].clone(),
                        Src::Layer(j) => values[j].clone().unwrap(),
                    })
                    .collect();
                let y = node
                    .layer
                    .as_ref()
                    .unwrap()
                    .forward(&xs, &net.vars[i], &mut ctx)
                    .unwrap_or_else(|e| panic!("{}: {} ({}): {e}", path.display(), node.name, node.type_name));
                let mut want = vec![2];
                want.extend(node.output_shape.as_ref().unwrap());
                assert_eq!(y.dims(), &want[..], "{}: layer {} ({})", path.display(), node.name, node.type_name);
                values[i] = Some(y);
            }
            let outs = net.forward(&inputs, &mut ctx, &[]).unwrap();
            assert_eq!(outs.len(), net.graph.outputs.len());
        }
    }

    #[test]
    fn same_seed_same_weights() {
        let source = Source::read(std::path::Path::new("specs/mnist_cnn.yaml")).unwrap();
        let make = || {
            let mut diags = Vec::new();
            let (_, graph) = crate::graph::from_source(&source, &mut diags).unwrap();
            let mut rng = StdRng::seed_from_u64(42);
            Net::new(graph, &Device::Cpu, DType::F32, &mut rng).unwrap()
        };
        let (a, b) = (make(), make());
        for ((na, ta), (nb, tb)) in a.named_tensors().iter().zip(b.named_tensors().iter()) {
            assert_eq!(na, nb);
            assert_eq!(ta.flatten_all().unwrap().to_vec1::<f32>().unwrap(), tb.flatten_all().unwrap().to_vec1::<f32>().unwrap());
        }
        assert_eq!(a.named_tensors()[0].0, "conv2d.kernel");
    }
}
