"""Keras 3 reference numbers for `fit(class_weight=..., sample_weight=...)`.

The unit test `weighted_training_matches_keras` in src/train/weights.rs runs
the same cases through nnrun's fit loop and compares with the constants this
prints (to 1e-5).

Run (checked with keras 3.15.1, tensorflow 2.21.0):

    KERAS_BACKEND=tensorflow ~/.cache/nnrun-peers/tfvenv/bin/python bench/keras_checks/class_weight.py

or, without that venv:

    python3 -m venv /tmp/kvenv && /tmp/kvenv/bin/pip install keras==3.15.1 'jax[cpu]'
    KERAS_BACKEND=jax /tmp/kvenv/bin/python bench/keras_checks/class_weight.py

(jax clips the softmax's probabilities instead of fusing it into the loss;
nothing here comes near saturation, so the numbers agree.)

Model: Dense(3, softmax) on 4 features (Dense(1, sigmoid) for the binary
case), fixed initial weights, plain SGD (learning rate 0.1), no shuffling,
three epochs over the same six rows. Keras reduces a weighted loss with
`sum_over_batch_size`: sum_i(w_i * loss_i) / batch_len (not / sum(w)); the
logged `loss` is the mean of the batches' losses weighted by their sizes;
validation loss and `metrics` are unweighted.

Keras 3 refuses `class_weight` and `sample_weight` together ("You cannot
`class_weight` and `sample_weight` at the same time"; tf.keras 2 multiplied
them). nnrun multiplies them, so the combined case passes their product as
`sample_weight`, which is what tf.keras 2 computed.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras
import numpy as np

X = np.array(
    [
        [0.5, -1.0, 2.0, 0.1],
        [1.5, 0.25, -0.5, -0.3],
        [-1.0, 2.0, 0.75, 0.4],
        [0.0, -0.5, 1.25, -1.2],
        [0.8, 0.3, -1.1, 0.6],
        [-0.4, 1.1, 0.2, 0.9],
    ],
    np.float32,
)
Y = np.array([0, 1, 1, 2, 1, 0], np.int32)
Y_BINARY = np.array([1, 0, 0, 1, 0, 0], np.float32)
KERNEL = np.array([[0.2, -0.4, 0.6], [-0.3, 0.5, 0.2], [0.4, 0.1, -0.5], [0.1, -0.7, 0.3]], np.float32)
BIAS = np.array([0.05, -0.1, 0.2], np.float32)
KERNEL_BINARY = np.array([[0.3], [-0.2], [0.5], [0.1]], np.float32)
BIAS_BINARY = np.array([-0.1], np.float32)
CLASS_WEIGHT = {0: 1.0, 1: 3.0, 2: 0.5}
SAMPLE_WEIGHT = np.array([0.5, 2.0, 1.0, 0.0, 1.5, 1.0], np.float32)
EPOCHS = 3


def run(loss, y, batch_size, binary=False, **fit_args):
    units, kernel, bias = (1, KERNEL_BINARY, BIAS_BINARY) if binary else (3, KERNEL, BIAS)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(units, activation="sigmoid" if binary else "softmax")])
    model.layers[0].set_weights([kernel, bias])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss=loss, metrics=["accuracy"])
    h = model.fit(X, y, batch_size=batch_size, epochs=EPOCHS, shuffle=False, verbose=0, validation_data=(X, y), **fit_args)
    k, b = model.layers[0].get_weights()
    return h.history["loss"], h.history["val_loss"], h.history["accuracy"], np.concatenate([k.ravel(), b])


def rust(name, values):
    values = np.asarray(values, np.float64).ravel()
    print(f"const {name}: [f64; {len(values)}] = [{', '.join(repr(float(v)) for v in values)}];")


print(f"// keras {keras.__version__}, backend {keras.backend.backend()}")
counts = np.bincount(Y)
balanced = {c: len(Y) / (len(counts) * n) for c, n in enumerate(counts)}
print(f"// balanced class weights (sklearn's formula) for labels {Y.tolist()}: {balanced}")
try:
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    m.compile(loss="sparse_categorical_crossentropy")
    m.fit(X, Y, class_weight=CLASS_WEIGHT, sample_weight=SAMPLE_WEIGHT, verbose=0)
    print("// keras accepted class_weight with sample_weight")
except ValueError as e:
    print(f"// keras refuses both at once: {e}")

cases = {
    # Sparse labels, class_weight, one batch per epoch.
    "CLASS": run("sparse_categorical_crossentropy", Y, 6, class_weight=CLASS_WEIGHT),
    # One-hot labels (argmax), sample_weight, batches of 4 then 2.
    "SAMPLE": run("categorical_crossentropy", np.eye(3, dtype=np.float32)[Y], 4, sample_weight=SAMPLE_WEIGHT),
    # Both: their product, batches of 4 then 2.
    "BOTH": run("sparse_categorical_crossentropy", Y, 4, sample_weight=SAMPLE_WEIGHT * np.array([CLASS_WEIGHT[c] for c in Y], np.float32)),
    # `balanced`, as sklearn computes it.
    "BALANCED": run("sparse_categorical_crossentropy", Y, 6, class_weight=balanced),
    # One sigmoid unit: the class is the 0/1 label.
    "BINARY": run("binary_crossentropy", Y_BINARY, 6, binary=True, class_weight={0: 0.25, 1: 2.0}),
}
for name, (loss, val_loss, accuracy, weights) in cases.items():
    rust(f"{name}_LOSS", loss)
    rust(f"{name}_VAL_LOSS", val_loss)
    rust(f"{name}_ACCURACY", accuracy)
    rust(f"{name}_WEIGHTS", weights)
