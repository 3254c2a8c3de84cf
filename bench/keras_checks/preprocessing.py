"""Keras 3 reference values for the CSV preprocessing layers.

Writes tests/data/keras_preprocessing.json: for each case, the layer name, the
constructor kwargs, the adapt data, the inputs, and what real Keras gives back
(vocabulary, idf weights, bin boundaries, mean/variance, the outputs, and for
hashing the raw FarmHash Fingerprint64 of each hashed string). The Rust tests
compare nnrun's StringLookup / IntegerLookup / TextVectorization /
Discretization / Hashing / Normalization against it.

What it checks: vocabulary order after adapt (count, then tie-break), the
reserved indices (mask/padding, OOV) per output mode, max_tokens truncation,
the idf formula and the OOV idf, standardize/split/ngrams behaviour on a small
tricky corpus (case, ASCII and unicode punctuation, "C++", "x86_64", "e.g.",
tabs, runs of spaces, NBSP, empty strings), padding/truncation to
output_sequence_length, OOV hashing with num_oov_indices > 1, Discretization
boundaries from adapt and which bin an exact boundary falls in, Hashing of
strings of every FarmHash length branch and of ints/floats, Normalization with
a constant (zero-variance) column.

Run (checked with keras 3.15.1, tensorflow_cpu 2.21.0, numpy 2.4.6,
pyfarmhash for the cross-check of Fingerprint64):

    python3 -m venv ~/.cache/nnrun-peers/tfvenv
    ~/.cache/nnrun-peers/tfvenv/bin/pip install keras==3.15.1 \
        tensorflow_cpu==2.21.0 numpy==2.4.6 pyfarmhash
    KERAS_BACKEND=tensorflow TF_CPP_MIN_LOG_LEVEL=2 \
        ~/.cache/nnrun-peers/tfvenv/bin/python bench/keras_checks/preprocessing.py

(run from the repository root). Notes on what the values show:
bench/keras_checks/preprocessing-notes.md.

Conventions in the JSON: "outputs" has one row per input, as floats. For
TextVectorization int mode without output_sequence_length each input is
called alone (batch of one), so rows have their natural length ("call":
"per_row"); every other case is called once on the whole batch ("call":
"batch"). "adapt" / "vocabulary" / "idf_weights" / "bin_boundaries" are null
when they do not apply. Hashing cases (and StringLookup cases with
num_oov_indices > 1) carry "fingerprint64": the decimal Fingerprint64 of the
string that is hashed (for int inputs that is the decimal text Keras makes).
"""

import json
import os
import sys

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

try:
    import farmhash  # pyfarmhash
except ImportError:  # the CRT reconstruction below still works without it
    farmhash = None

assert keras.backend.backend() == "tensorflow"

OUT = os.path.join(
    os.path.dirname(os.path.abspath(__file__)),
    "..",
    "..",
    "tests",
    "data",
    "keras_preprocessing.json",
)

# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------

CORPUS = [
    "The cat sat on the mat.",
    "The dog ate my homework, e.g. the math!",
    "Don't stop: the cat's well-known naïve café.",
    "C++ and x86_64 are TOKENS; c++ too.",
    "  Multiple   spaces\tand\ttabs\there  ",
    "",
    "dog DOG Dog dOg",
    "Café CAFÉ café naïve NAÏVE «quoted» — dash",
    "a b c a b c",
    "state-of-the-art e.g. i.e. etc.",
    "mat hat bat cat",
]

TEXT_INPUTS = [
    "The cat sat on the mat.",
    "unseen words here, the CAT",
    "",
    "café CAFÉ naïve",
    "C++ x86_64 e.g.",
    "one two three four five six seven eight",
    "dog\u00a0cat dog",
    "   \t ",
    "a b c",
]

STRING_ADAPT = [
    "red", "green", "blue", "red", "", "green", "", "yellow",
    "blue", "[UNK]", "Red", "red", "purple", "", "green",
]
STRING_INPUTS = ["red", "green", "", "Red", "RED", "black", "[UNK]", "purple", "yellow", " red"]

INT_ADAPT = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, -1, -1, 0, 7, 7, 7, 2, 0, 12]
INT_INPUTS = [3, 1, 5, 7, 0, -1, 8, 100, -7, 12, 2]

DISC_BOUNDARIES = [0.0, 1.0, 2.5]
DISC_INPUTS = [
    -1e30, -3.0, -1e-7, -0.0, 0.0, 1e-7, 0.5, 0.99999994, 1.0, 1.0000001,
    2.4999998, 2.5, 2.5000002, 3.0, 1e30,
]
DISC_ADAPT = [
    0.3, -1.2, 4.5, 2.0, 2.0, 7.25, 0.0, 1.5, 3.3, -0.5,
    9.0, 2.0, 5.5, 6.1, 1.1, 0.9, 8.8, 4.4, 3.0, 2.5,
]
DISC_ADAPT_INPUTS = [-5.0, -1.2, 0.0, 1.1, 1.2, 2.0, 2.5, 3.0, 3.9, 4.45, 5.5, 6.1, 9.0, 100.0]
DISC_SMALL_ADAPT = [5.0, 1.0, 3.0]
DISC_BIG_ADAPT = [((i * 37) % 250) / 10.0 for i in range(250)]


def _mk(n):
    """A deterministic ASCII string of n bytes (no repeats of one letter)."""
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ,.-_"
    return "".join(alphabet[(i * 7 + n) % len(alphabet)] for i in range(n))


HASH_LENGTHS = [0, 1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 24, 31, 32, 33, 48,
                63, 64, 65, 100, 127, 128, 129, 200]
HASH_STRINGS = (
    [_mk(n) for n in HASH_LENGTHS]
    + ["a", "A", "hello", "café", "naïve", "\u00e9", "日本語", "x86_64", "C++",
       "0", "1", "-1", "the quick brown fox jumps over the lazy dog"]
)
HASH_INTS = [0, 1, -1, 7, 42, 1000, -1000, 123456789, 2**31 - 1, -(2**31),
             2**53 + 1, 2**62, 2**63 - 1, -(2**63)]
HASH_FLOATS = [0.0, 1.0, 2.7, -2.7, 0.5, -0.5, 1e6, 3.0]

NORM_ADAPT = [
    [1.0, 5.0, -2.0],
    [2.0, 5.0, 0.5],
    [3.5, 5.0, 4.25],
    [-1.25, 5.0, 1.0],
    [0.0, 5.0, -3.5],
    [10.0, 5.0, 0.0],
]
NORM_INPUTS = [
    [1.0, 5.0, -2.0],
    [0.0, 5.0, 0.0],
    [2.375, 4.0, 1.0],
    [-100.0, 5.0000005, 100.0],
    [1e6, 6.0, -1e6],
]
NORM_1D_ADAPT = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]
NORM_1D_INPUTS = [2.0, 5.0, 9.0, 0.0, -3.0]
NORM_CONST_ADAPT = [3.0, 3.0, 3.0, 3.0]
NORM_CONST_INPUTS = [3.0, 4.0, 2.0, 3.0000002]


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

M1 = 2**63 - 1
M2 = 2**63 - 2


def fingerprint64(strings):
    """Raw FarmHash Fingerprint64 as TF computes it, rebuilt from two
    to_hash_bucket_fast calls (fp mod M1, fp mod M2, M1 = M2 + 1, CRT),
    cross-checked against pyfarmhash when installed."""
    t = tf.constant([s.encode("utf-8") for s in strings], tf.string)
    r1 = tf.strings.to_hash_bucket_fast(t, M1).numpy()
    r2 = tf.strings.to_hash_bucket_fast(t, M2).numpy()
    out = []
    for s, a, b in zip(strings, r1, r2):
        a, b = int(a), int(b)
        fp = a + M1 * ((b - a) % M2)  # M1 = 1 (mod M2)
        assert fp < 2**64, s
        if farmhash is not None:
            assert farmhash.fingerprint64(s) == fp, (s, fp)
        out.append(fp)
    return out


def rows(x):
    a = np.asarray(x)
    if a.ndim == 0:
        a = a.reshape(1, 1)
    elif a.ndim == 1:
        a = a.reshape(-1, 1)
    return [[float(v) for v in np.asarray(r).reshape(-1)] for r in a]


def floats(x):
    if x is None:
        return None
    return [float(v) for v in np.asarray(x).reshape(-1)]


def vocab_of(layer):
    v = layer.get_vocabulary()
    return [int(t) if isinstance(t, (int, np.integer)) else str(t) for t in v]


CASES = []


def add(name, layer_name, config, adapt, inputs, outputs, vocabulary=None,
        idf_weights=None, bin_boundaries=None, call="batch", **extra):
    case = {
        "name": name,
        "layer": layer_name,
        "config": config,
        "adapt": adapt,
        "inputs": inputs,
        "vocabulary": vocabulary,
        "idf_weights": idf_weights,
        "bin_boundaries": bin_boundaries,
        "call": call,
        "outputs": outputs,
    }
    case.update(extra)
    assert len(outputs) == len(inputs), name
    CASES.append(case)


# --------------------------------------------------------------------------
# TextVectorization
# --------------------------------------------------------------------------


def text_case(name, config, adapt=CORPUS, inputs=TEXT_INPUTS, column=False):
    layer = keras.layers.TextVectorization(**config)
    data = np.array(adapt, dtype=object)
    if column:
        data = data.reshape(-1, 1)
    layer.adapt(data)
    mode = config.get("output_mode", "int")
    if mode == "int" and config.get("output_sequence_length") is None:
        outs = []
        for s in inputs:
            x = tf.constant([[s]] if column else [s], tf.string)
            y = np.asarray(layer(x)).reshape(-1)
            outs.append([float(v) for v in y])
        call = "per_row"
    else:
        x = tf.constant([[s] for s in inputs] if column else inputs, tf.string)
        outs = rows(layer(x))
        call = "batch"
    idf = None
    if mode == "tf_idf":
        idf = floats(layer._lookup_layer.idf_weights_const)
    add(name, "TextVectorization", config, list(adapt), list(inputs), outs,
        vocabulary=vocab_of(layer), idf_weights=idf, call=call,
        input_shape="column" if column else "flat")


text_case("tv_int_seq6", {"output_mode": "int", "output_sequence_length": 6})
text_case("tv_int_ragged", {"output_mode": "int"})
text_case("tv_int_max_tokens8", {"output_mode": "int", "max_tokens": 8})
text_case("tv_int_max_tokens8_seq6",
          {"output_mode": "int", "max_tokens": 8, "output_sequence_length": 6})
text_case("tv_int_ngrams2", {"output_mode": "int", "ngrams": 2})
text_case("tv_int_ngrams2_max_tokens10",
          {"output_mode": "int", "ngrams": 2, "max_tokens": 10,
           "output_sequence_length": 12})
text_case("tv_multi_hot", {"output_mode": "multi_hot"})
text_case("tv_multi_hot_max_tokens6", {"output_mode": "multi_hot", "max_tokens": 6})
text_case("tv_multi_hot_pad_to_max_tokens",
          {"output_mode": "multi_hot", "max_tokens": 60, "pad_to_max_tokens": True})
text_case("tv_count", {"output_mode": "count"})
text_case("tv_count_max_tokens6", {"output_mode": "count", "max_tokens": 6})
text_case("tv_tf_idf", {"output_mode": "tf_idf"})
text_case("tv_tf_idf_max_tokens6", {"output_mode": "tf_idf", "max_tokens": 6})
text_case("tv_standardize_lower", {"output_mode": "int", "standardize": "lower"})
text_case("tv_standardize_strip_punctuation",
          {"output_mode": "int", "standardize": "strip_punctuation"})
text_case("tv_standardize_none", {"output_mode": "int", "standardize": None})
text_case("tv_split_character", {"output_mode": "int", "split": "character"})
text_case("tv_split_character_seq6",
          {"output_mode": "int", "split": "character", "output_sequence_length": 6})
text_case("tv_split_none_column", {"output_mode": "int", "split": None}, column=True)
text_case("tv_split_none_multi_hot_column",
          {"output_mode": "multi_hot", "split": None}, column=True)

# --------------------------------------------------------------------------
# StringLookup
# --------------------------------------------------------------------------


def string_case(name, config, adapt=STRING_ADAPT, inputs=STRING_INPUTS):
    layer = keras.layers.StringLookup(**config)
    layer.adapt(np.array(adapt, dtype=object))
    y = layer(tf.constant(inputs, tf.string))
    extra = {}
    if config.get("num_oov_indices", 1) > 1:
        extra["fingerprint64"] = [str(f) for f in fingerprint64(inputs)]
    add(name, "StringLookup", config, list(adapt), list(inputs), rows(y),
        vocabulary=vocab_of(layer), **extra)


string_case("sl_int", {"output_mode": "int"})
string_case("sl_one_hot", {"output_mode": "one_hot"})
string_case("sl_int_oov2", {"output_mode": "int", "num_oov_indices": 2})
string_case("sl_one_hot_oov2", {"output_mode": "one_hot", "num_oov_indices": 2})
string_case("sl_int_max_tokens3", {"output_mode": "int", "max_tokens": 3})
string_case("sl_one_hot_max_tokens3", {"output_mode": "one_hot", "max_tokens": 3})
string_case("sl_int_mask_empty", {"output_mode": "int", "mask_token": ""})
string_case("sl_one_hot_mask_empty", {"output_mode": "one_hot", "mask_token": ""})
string_case("sl_int_mask_empty_oov2",
            {"output_mode": "int", "mask_token": "", "num_oov_indices": 2})

# --------------------------------------------------------------------------
# IntegerLookup
# --------------------------------------------------------------------------


def int_case(name, config, adapt=INT_ADAPT, inputs=INT_INPUTS):
    layer = keras.layers.IntegerLookup(**config)
    layer.adapt(np.array(adapt, dtype=np.int64))
    y = layer(tf.constant(inputs, tf.int64))
    add(name, "IntegerLookup", config, list(adapt), list(inputs), rows(y),
        vocabulary=vocab_of(layer))


int_case("il_int", {"output_mode": "int"})
int_case("il_one_hot", {"output_mode": "one_hot"})
int_case("il_int_oov1", {"output_mode": "int", "num_oov_indices": 1})
int_case("il_one_hot_oov1", {"output_mode": "one_hot", "num_oov_indices": 1})
int_case("il_int_max_tokens4", {"output_mode": "int", "max_tokens": 4})
int_case("il_int_mask0", {"output_mode": "int", "mask_token": 0})
int_case("il_one_hot_mask0", {"output_mode": "one_hot", "mask_token": 0})
int_case("il_int_oov2_floormod", {"output_mode": "int", "num_oov_indices": 2})

# --------------------------------------------------------------------------
# Discretization
# --------------------------------------------------------------------------


def disc_case(name, config, adapt, inputs):
    layer = keras.layers.Discretization(**config)
    if adapt is not None:
        layer.adapt(np.array(adapt, dtype=np.float32))
    y = layer(tf.constant(inputs, tf.float32))
    add(name, "Discretization", config, adapt, list(inputs), rows(y),
        bin_boundaries=floats(layer.bin_boundaries))


disc_case("disc_fixed_int", {"bin_boundaries": DISC_BOUNDARIES}, None, DISC_INPUTS)
disc_case("disc_fixed_one_hot",
          {"bin_boundaries": DISC_BOUNDARIES, "output_mode": "one_hot"}, None, DISC_INPUTS)
disc_case("disc_adapt_num_bins4", {"num_bins": 4}, DISC_ADAPT, DISC_ADAPT_INPUTS)
disc_case("disc_adapt_num_bins4_one_hot",
          {"num_bins": 4, "output_mode": "one_hot"}, DISC_ADAPT, DISC_ADAPT_INPUTS)
disc_case("disc_adapt_num_bins3", {"num_bins": 3}, DISC_ADAPT, DISC_ADAPT_INPUTS)
disc_case("disc_adapt_num_bins4_three_samples", {"num_bins": 4},
          DISC_SMALL_ADAPT, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
disc_case("disc_adapt_num_bins4_250_samples", {"num_bins": 4},
          DISC_BIG_ADAPT, [0.0, 6.0, 6.2, 12.4, 12.5, 18.7, 18.8, 24.9])

# --------------------------------------------------------------------------
# Hashing
# --------------------------------------------------------------------------


def hash_case(name, config, inputs, kind):
    layer = keras.layers.Hashing(**config)
    if kind == "string":
        x = tf.constant([s.encode("utf-8") for s in inputs], tf.string)
        hashed = list(inputs)
    elif kind == "int":
        x = tf.constant(inputs, tf.int64)
        hashed = [s.decode() for s in tf.strings.as_string(x).numpy()]
    else:
        x = tf.constant(inputs, tf.float32)
        hashed = [s.decode() for s in
                  tf.strings.as_string(tf.cast(x, tf.int64)).numpy()]
    y = layer(x)
    add(name, "Hashing", config, None, list(inputs), rows(y),
        fingerprint64=[str(f) for f in fingerprint64(hashed)],
        hashed_string=hashed, input_dtype=kind)


hash_case("hash_str_7", {"num_bins": 7}, HASH_STRINGS, "string")
hash_case("hash_str_1000", {"num_bins": 1000}, HASH_STRINGS, "string")
hash_case("hash_str_7_one_hot", {"num_bins": 7, "output_mode": "one_hot"},
          HASH_STRINGS[:12], "string")
hash_case("hash_str_7_mask_empty", {"num_bins": 7, "mask_value": ""},
          HASH_STRINGS[:12], "string")
hash_case("hash_int64_7", {"num_bins": 7}, HASH_INTS, "int")
hash_case("hash_int64_1000", {"num_bins": 1000}, HASH_INTS, "int")
hash_case("hash_float32_1000", {"num_bins": 1000}, HASH_FLOATS, "float")

# --------------------------------------------------------------------------
# Normalization
# --------------------------------------------------------------------------


def norm_case(name, config, adapt, inputs):
    layer = keras.layers.Normalization(**config)
    layer.adapt(np.array(adapt, dtype=np.float64))
    y = layer(tf.constant(inputs, tf.float32))
    add(name, "Normalization", config, adapt, inputs, rows(y),
        mean=floats(layer.adapt_mean.numpy()),
        variance=floats(layer.adapt_variance.numpy()),
        epsilon=float(keras.config.epsilon()),
        adapt_dtype="float64")


norm_case("norm_3cols_one_constant", {"axis": -1}, NORM_ADAPT, NORM_INPUTS)
norm_case("norm_1d", {"axis": None}, NORM_1D_ADAPT, NORM_1D_INPUTS)
norm_case("norm_constant_column", {"axis": None}, NORM_CONST_ADAPT, NORM_CONST_INPUTS)


# --------------------------------------------------------------------------


def main():
    doc = {
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "numpy": np.__version__,
        "generator": "bench/keras_checks/preprocessing.py",
        "cases": CASES,
    }
    def dumps(x):
        return json.dumps(x, ensure_ascii=False, allow_nan=False)

    # One key per line, values compact: small diffs, still plain JSON.
    lines = ["{"]
    for k in ("keras", "tensorflow", "numpy", "generator"):
        lines.append(f" {dumps(k)}: {dumps(doc[k])},")
    lines.append(' "cases": [')
    for i, case in enumerate(CASES):
        body = ",\n".join(f"   {dumps(k)}: {dumps(v)}" for k, v in case.items())
        lines.append("  {\n" + body + "\n  }" + ("," if i + 1 < len(CASES) else ""))
    lines.append(" ]")
    lines.append("}")
    text = "\n".join(lines) + "\n"
    assert json.loads(text) == json.loads(dumps(doc))
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {os.path.normpath(OUT)}: {len(CASES)} cases", file=sys.stderr)


if __name__ == "__main__":
    main()
