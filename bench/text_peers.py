#!/usr/bin/env python3
"""Keras (TensorFlow backend) side of bench/text.sh: the two text workloads of
specs/debian_text.yaml and specs/debian_text_cnn.yaml, one JSON line per run.

Runs in a venv with keras 3 + tensorflow (bench/README.md, "bench/text.sh"):

    KERAS_BACKEND=tensorflow python bench/text_peers.py --workload text_multi_hot --seed 1

Per run: read the CSV (csv module), a seeded 80/20 split (floor(0.8 n) train, as
nnrun's test_split), TextVectorization adapted on the training split only,
every row vectorized (timed, a first and a second call), then model.fit on the
vectors, then the test accuracy. Standard library + numpy + keras/tensorflow only.
"""
import argparse
import csv
import json
import os
import resource
import sys
import time

T_START = time.perf_counter()
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CSV = os.path.join(ROOT, "data", "tabular", "debian_sections.csv")

# The specs' values (specs/debian_text.yaml, specs/debian_text_cnn.yaml).
WORKLOADS = {
    "text_multi_hot": dict(spec="specs/debian_text.yaml", epochs=8, batch=32, lr=1e-3,
                           text=dict(max_tokens=10000, output_mode="multi_hot")),
    "text_cnn": dict(spec="specs/debian_text_cnn.yaml", epochs=6, batch=32, lr=1e-3,
                     text=dict(max_tokens=10000, output_mode="int", output_sequence_length=32)),
}
TEST_SPLIT = 0.2


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workload", required=True, choices=sorted(WORKLOADS))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rep", type=int, default=None)
    ap.add_argument("--threads", type=int, default=2, help="intra-op threads (inter-op: 1)")
    ap.add_argument("--csv", default=CSV)
    args = ap.parse_args()
    w = WORKLOADS[args.workload]

    t0 = time.perf_counter()
    import numpy as np
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras
    from keras import layers
    import_seconds = time.perf_counter() - t0
    keras.utils.set_random_seed(args.seed)

    # 1. Read the CSV.
    t0 = time.perf_counter()
    with open(args.csv, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    texts = [r["summary"] for r in rows]
    sections = [r["section"] for r in rows]
    read_csv_seconds = time.perf_counter() - t0

    n = len(rows)
    classes = sorted(set(sections))  # string targets: sorted names, as nnrun
    index = {c: i for i, c in enumerate(classes)}
    y_all = np.eye(len(classes), dtype="float32")[[index[s] for s in sections]]
    perm = np.random.default_rng(args.seed).permutation(n)
    n_train = int(n * (1 - TEST_SPLIT))  # floor, as nnrun / Keras validation_split
    tr, te = perm[:n_train], perm[n_train:]
    texts_np = np.array(texts, dtype=object)

    # 2. Adapt on the training split only.
    vec = layers.TextVectorization(**w["text"])
    t0 = time.perf_counter()
    vec.adapt(tf.constant(list(texts_np[tr])), batch_size=1024)
    adapt_seconds = time.perf_counter() - t0
    vocab_size = vec.vocabulary_size()

    # 3. Vectorize every row (train and test) in one call, to numpy. The first
    # call pays one-time costs (tracing, first touch of the output's pages:
    # 9,796 x ~7,800 float32 for multi_hot), so a second call is timed too.
    t0 = time.perf_counter()
    x_all = vec(tf.constant(texts)).numpy()
    vectorize_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    vec(tf.constant(texts)).numpy()
    vectorize_warm_seconds = time.perf_counter() - t0
    x_train, y_train, x_test, y_test = x_all[tr], y_all[tr], x_all[te], y_all[te]

    # 4. The model, as in the spec.
    if args.workload == "text_multi_hot":
        model = keras.Sequential([
            keras.Input(shape=(x_all.shape[1],)),
            layers.Dense(64, activation="relu"),
            layers.Dropout(0.5),
            layers.Dense(len(classes), activation="softmax"),
        ])
    else:
        model = keras.Sequential([
            keras.Input(shape=(w["text"]["output_sequence_length"],), dtype="int64"),
            layers.Embedding(w["text"]["max_tokens"], 64),
            layers.Conv1D(128, 3, activation="relu"),
            layers.GlobalMaxPooling1D(),
            layers.Dropout(0.5),
            layers.Dense(len(classes), activation="softmax"),
        ])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=w["lr"]),
                  loss="categorical_crossentropy", metrics=["accuracy"])

    class EpochTimes(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self._t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self._t)

    cb = EpochTimes()
    t0 = time.perf_counter()
    hist = model.fit(x_train, y_train, epochs=w["epochs"], batch_size=w["batch"], shuffle=True,
                     verbose=0, callbacks=[cb])
    fit_seconds = time.perf_counter() - t0

    t0 = time.perf_counter()
    test_loss, test_acc = model.evaluate(x_test, y_test, batch_size=256, verbose=0)
    test_seconds = time.perf_counter() - t0

    secs = cb.seconds
    epochs = w["epochs"]
    rec = {
        "kind": "run", "tool": "keras-tf", "workload": args.workload, "spec": w["spec"], "rep": args.rep,
        "seed": args.seed, "threads": args.threads, "epochs": epochs, "batch_size": w["batch"],
        "n_rows": n, "n_train": int(n_train), "n_test": int(n - n_train), "vocab_size": int(vocab_size),
        "input_width": int(x_all.shape[1]),
        "import_seconds": import_seconds,
        "read_csv_seconds": read_csv_seconds,
        "adapt_seconds": adapt_seconds,
        "vectorize_seconds": vectorize_seconds,
        "vectorize_warm_seconds": vectorize_warm_seconds,
        "preprocess_seconds": read_csv_seconds + adapt_seconds + vectorize_seconds,
        "fit_seconds": fit_seconds,
        "train_seconds": sum(secs),
        "epoch_seconds": secs,
        "first_epoch_seconds": secs[0],
        "train_samples_per_s": epochs * n_train / fit_seconds,
        "steady_samples_per_s": (epochs - 1) * n_train / sum(secs[1:]) if epochs > 1 else None,
        "final_train_loss": float(hist.history["loss"][-1]),
        "test_accuracy": float(test_acc),
        "test_loss": float(test_loss),
        "test_seconds": test_seconds,
        "peak_rss_mb": peak_rss_mb(),
        "process_wall_seconds": time.perf_counter() - T_START,
        "versions": {"keras": keras.__version__, "tensorflow": tf.__version__, "numpy": np.__version__,
                     "python": sys.version.split()[0]},
    }
    print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
