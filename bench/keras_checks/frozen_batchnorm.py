"""Keras 3 reference numbers for a frozen BatchNormalization during training.

The unit test `frozen_batch_norm_trains_like_keras` in src/layers/norm.rs runs
the same case in nnrun and compares with the constants this prints.

Run (any Keras 3 with the jax backend; checked with keras 3.15.1, jax 0.10.2):

    python3 -m venv /tmp/kvenv && /tmp/kvenv/bin/pip install keras jax jaxlib
    KERAS_BACKEND=jax /tmp/kvenv/bin/python bench/keras_checks/frozen_batchnorm.py

Model: Dense(4) -> BatchNormalization(trainable=False) -> Dense(2), MSE, plain
SGD (learning rate 0.1), three steps on one fixed batch, fixed initial weights.
Keras 3 runs a non-trainable BatchNormalization in inference mode even while
training (`training and self.trainable`): it normalizes with the moving
statistics, never updates them, and its gamma and beta stay as they are.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras
import numpy as np

X = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.5], [-1.0, 2.0, 0.75], [0.0, -0.5, 1.25]], np.float32)
Y = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, -0.5], [-1.0, 2.0]], np.float32)
D1_KERNEL = np.array([[0.2, -0.4, 0.6, 0.1], [-0.3, 0.5, 0.2, -0.7], [0.4, 0.1, -0.5, 0.3]], np.float32)
D1_BIAS = np.array([0.05, -0.1, 0.2, 0.0], np.float32)
GAMMA = np.array([1.5, 0.8, 1.2, 0.6], np.float32)
BETA = np.array([0.1, -0.2, 0.0, 0.3], np.float32)
MOVING_MEAN = np.array([0.3, -0.2, 0.1, 0.4], np.float32)
MOVING_VAR = np.array([0.5, 1.5, 2.0, 0.8], np.float32)
D2_KERNEL = np.array([[0.3, -0.2], [0.1, 0.4], [-0.6, 0.5], [0.2, 0.2]], np.float32)
D2_BIAS = np.array([0.0, 0.1], np.float32)
STEPS = 3

model = keras.Sequential(
    [
        keras.Input((3,)),
        keras.layers.Dense(4, name="d1"),
        keras.layers.BatchNormalization(name="bn", trainable=False),
        keras.layers.Dense(2, name="d2"),
    ]
)
model.get_layer("d1").set_weights([D1_KERNEL, D1_BIAS])
model.get_layer("bn").set_weights([GAMMA, BETA, MOVING_MEAN, MOVING_VAR])
model.get_layer("d2").set_weights([D2_KERNEL, D2_BIAS])
model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="mean_squared_error")

losses = [float(model.train_on_batch(X, Y)) for _ in range(STEPS)]
gamma, beta, mean, var = model.get_layer("bn").get_weights()
out = model.predict(X, verbose=0)


def rust(name, values):
    values = np.asarray(values, np.float64).ravel()
    print(f"const {name}: [f64; {len(values)}] = [{', '.join(repr(float(v)) for v in values)}];")


print(f"// keras {keras.__version__}, backend {keras.backend.backend()}")
rust("KERAS_LOSSES", losses)
rust("KERAS_MOVING_MEAN", mean)
rust("KERAS_MOVING_VAR", var)
rust("KERAS_GAMMA", gamma)
rust("KERAS_BETA", beta)
rust("KERAS_OUTPUT", out)
