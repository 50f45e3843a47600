"""Trains the small models shipped in models/ and writes, for each one, the
ONNX file, its entry in models/registry.yaml (with sha256) and reference
outputs computed by the `onnxruntime` Python package (models/reference/*.json).

The Rust tests (crates/quiver-infer/tests/) read only the committed files and
need no Python; this script regenerates them. It installs its pinned
dependencies into a private virtualenv, so it needs python3 with venv, network
access to PyPI, and the quiver binary (built with cargo unless QUIVER_BIN names
one):

    python3 scripts/train_models.py

Given the same pinned versions, a rerun rewrites every file byte for byte: the
data come from `quiver gen` with a fixed seed, every trainer is seeded and
single-threaded, and the ONNX converters' two sources of noise are removed
(the random graph name is replaced by a fixed one, the opset imports are
sorted).

Training data: ticks from `quiver gen`, features from `quiver features`, so the
models see exactly the engine's feature definitions. The feature set is seed
000's `ml_momentum` template, mapped onto our feature specs:

    sma_5          sma(5)
    sma_20         sma(20)
    rsi_14         rsi(14)         Wilder's RSI (the seed's feature store's rsi)
    volatility_10  volatility(10)  pstdev of the last 10 one-tick returns
    momentum_5_1   returns(5)      p_t / p_{t-5} - 1  (the seed's code compares
                                   prices[-1] with prices[-5], a 4-tick return)
    momentum_20_1  returns(20)     p_t / p_{t-20} - 1 (the seed: prices[-20], 19 ticks)
    returns_std    volatility(20)  pstdev of the last 20 one-tick returns (the
                                   seed: np.std of the 19 returns of 20 prices)
    returns_skew   skew(20)        NOTE: skewness of the last 20 *prices*; the
                                   seed takes scipy.stats.skew of the *returns*.
                                   The store has no skew-of-returns feature yet.
    current_price  price           the tick's price

Label: the sign of the forward return over HORIZON ticks with a dead band,
-1 (SELL) when p_{t+H}/p_t - 1 < -DEAD_BAND, 1 (BUY) when > DEAD_BAND, else 0
(HOLD). The synthetic walk has no edge to learn, so these models are plumbing
fixtures of realistic shape and size, not trading models.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
REFERENCE = MODELS / "reference"
PINNED = [
    "numpy==2.3.5",
    "scikit-learn==1.8.0",
    "skl2onnx==1.20.0",
    "onnx==1.20.1",
    "onnxmltools==1.16.0",
    "lightgbm==4.6.0",
    "xgboost==3.2.0",
    "onnxruntime==1.31.1",
]
VENV_NAME = "quiver-models-venv"

FEATURES = [
    ("sma_5", "sma(5)"),
    ("sma_20", "sma(20)"),
    ("rsi_14", "rsi(14)"),
    ("volatility_10", "volatility(10)"),
    ("momentum_5_1", "returns(5)"),
    ("momentum_20_1", "returns(20)"),
    ("returns_std", "volatility(20)"),
    ("returns_skew", "skew(20)"),
    ("current_price", "price"),
]
CLASSES = [-1, 0, 1]
SEED = 20261122
INSTRUMENTS = 8
TICKS = 48_000
HORIZON = 10
DEAD_BAND = 0.0015
REFERENCE_ROWS = 64
HOLD_OUT = 0.15
# Regression model: predicts the forward return in basis points; the registry
# threshold (bps) turns it into a side.
REGRESSION_THRESHOLD_BPS = 2.0
OPSET = {"": 17, "ai.onnx.ml": 3}
# The highest opset onnxmltools 1.16 converts to.
ONNXMLTOOLS_OPSET = 15
VERSION = "1.0.0"


def in_venv() -> None:
    """Re-runs this script inside a virtualenv with the pinned packages."""
    venv = Path(tempfile.gettempdir()) / VENV_NAME
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *PINNED], check=True)
    env = dict(os.environ, QUIVER_MODELS_VENV="1")
    raise SystemExit(subprocess.run([str(python), __file__], env=env).returncode)


def quiver_bin() -> str:
    if os.environ.get("QUIVER_BIN"):
        return os.environ["QUIVER_BIN"]
    subprocess.run(
        ["cargo", "build", "--release", "-q", "-p", "quiver-cli"], cwd=ROOT, check=True
    )
    return str(ROOT / "target" / "release" / "quiver")


def load_rows(work: Path):
    """Feature rows and labels per instrument, from `quiver gen` + `quiver features`."""
    import numpy as np

    quiver = quiver_bin()
    ticks = work / "ticks.csv"
    subprocess.run(
        [quiver, "gen", "--instruments", str(INSTRUMENTS), "--ticks", str(TICKS),
         "--seed", str(SEED), "--out", str(ticks)],
        check=True, stdout=subprocess.DEVNULL,
    )
    tokens = []
    with open(ticks) as f:
        next(f)
        for line in f:
            token = int(line.split(",", 2)[1])
            if token not in tokens:
                tokens.append(token)
    specs = [spec for _, spec in FEATURES if spec != "price"]
    per_instrument = []
    for token in sorted(tokens):
        args = [quiver, "features", "--ticks", str(ticks), "--instrument", str(token)]
        for spec in specs:
            args += ["--spec", spec]
        out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
        lines = out.strip().split("\n")
        header = lines[0].split(",")
        assert header[3:] == specs, header
        prices, rows = [], []
        for line in lines[1:]:
            cells = line.split(",")
            price = float(cells[2])
            values = {spec: (float(c) if c else None) for spec, c in zip(specs, cells[3:])}
            values["price"] = price
            prices.append(price)
            rows.append(values)
        xs, ys = [], []
        for t, values in enumerate(rows):
            if t + HORIZON >= len(rows) or any(values[s] is None for _, s in FEATURES):
                continue
            forward = prices[t + HORIZON] / prices[t] - 1.0
            xs.append([values[s] for _, s in FEATURES])
            ys.append(forward)
        per_instrument.append((np.array(xs, dtype=np.float64), np.array(ys)))
    return per_instrument


def label(forward):
    import numpy as np

    return np.where(forward > DEAD_BAND, 1, np.where(forward < -DEAD_BAND, -1, 0))


def fix_onnx(onx, name: str) -> bytes:
    """Removes the converters' nondeterminism: fixed graph name, sorted opsets."""
    onx.graph.name = f"quiver_{name}"
    opsets = sorted((o.domain, o.version) for o in onx.opset_import)
    del onx.opset_import[:]
    for domain, version in opsets:
        entry = onx.opset_import.add()
        entry.domain = domain
        entry.version = version
    onx.producer_name = "quiver scripts/train_models.py"
    onx.producer_version = VERSION
    onx.doc_string = ""
    onx.model_version = 1
    return onx.SerializeToString(deterministic=True)


def sklearn_onnx(model, name: str, n_features: int) -> bytes:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.preprocessing import StandardScaler

    # zipmap=False: plain probability tensors (tract has no ZipMap). 'div':
    # StandardScaler as Sub/Div, not the ai.onnx.ml Scaler tract lacks.
    options = {StandardScaler: {"div": "div"}}
    steps = getattr(model, "steps", [(None, model)])
    final = steps[-1][1]
    if hasattr(final, "predict_proba"):
        options[type(final)] = {"zipmap": False}
    onx = convert_sklearn(
        model,
        initial_types=[("input", FloatTensorType([None, n_features]))],
        options=options,
        target_opset=OPSET,
    )
    return fix_onnx(onx, name)


def lightgbm_onnx(model, name: str, n_features: int) -> bytes:
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    onx = convert_lightgbm(
        model,
        initial_types=[("input", FloatTensorType([None, n_features]))],
        zipmap=False,
        target_opset=ONNXMLTOOLS_OPSET,
    )
    return fix_onnx(onx, name)


def xgboost_onnx(model, name: str, n_features: int) -> bytes:
    from onnxmltools import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    onx = convert_xgboost(
        model,
        initial_types=[("input", FloatTensorType([None, n_features]))],
        target_opset=ONNXMLTOOLS_OPSET,
    )
    # convert_xgboost has no zipmap switch; it writes plain tensors already.
    return fix_onnx(onx, name)


def f32_list(values):
    import numpy as np

    return [float(np.float32(v)) for v in values]


def reference(name: str, data: bytes, inputs, kind: str, framework: str) -> dict:
    """Outputs of the onnxruntime Python package on `inputs` (float32)."""
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    x = inputs.astype(np.float32)
    outputs = session.run(None, {session.get_inputs()[0].name: x})
    doc = {
        "model": name,
        "onnxruntime": ort.__version__,
        "inputs": [f32_list(row) for row in x],
    }
    if kind == "classifier":
        labels, probabilities = outputs[0], outputs[1]
        assert probabilities.shape == (len(x), len(CLASSES)), probabilities.shape
        # The model's own label output, for the Rust test to compare its
        # argmax-derived class against (it never reads the label output).
        # XGBoost was trained on class indices, so its label output is one.
        doc["labels"] = [
            CLASSES[int(v)] if framework == "xgboost" else int(v) for v in labels.reshape(-1)
        ]
        doc["probabilities"] = [f32_list(row) for row in probabilities]
    else:
        values = outputs[0].reshape(-1)
        doc["outputs"] = f32_list(values)
    return doc


def main() -> None:
    import lightgbm
    import numpy as np
    import onnxruntime
    import sklearn
    import xgboost
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    with tempfile.TemporaryDirectory() as tmp:
        data = load_rows(Path(tmp))
    # The last HOLD_OUT of every instrument's series is held out: reference
    # rows come from there.
    cut = [int(len(x) * (1.0 - HOLD_OUT)) for x, _ in data]
    x_train = np.concatenate([x[:c] for (x, _), c in zip(data, cut)])
    f_train = np.concatenate([f[:c] for (_, f), c in zip(data, cut)])
    x_test = np.concatenate([x[c:] for (x, _), c in zip(data, cut)])
    y_train = label(f_train)
    n = len(FEATURES)
    counts = {c: int((y_train == c).sum()) for c in CLASSES}
    print(f"training rows: {len(x_train)} {counts}; held-out rows: {len(x_test)}")
    # Spread the reference rows over the held-out series.
    pick = np.linspace(0, len(x_test) - 1, REFERENCE_ROWS).round().astype(int)
    ref_inputs = x_test[pick]
    x32 = x_train.astype(np.float32)

    specs = []

    def scaled(model):
        return make_pipeline(StandardScaler(), model)

    classifiers = [
        ("ml_momentum_logreg", "sklearn",
         scaled(LogisticRegression(max_iter=500, C=1.0)), sklearn_onnx),
        ("ml_momentum_mlp", "sklearn",
         scaled(MLPClassifier(hidden_layer_sizes=(16, 8), max_iter=300,
                              early_stopping=True, random_state=SEED % 2**31)), sklearn_onnx),
        ("ml_momentum_rf", "sklearn",
         RandomForestClassifier(n_estimators=16, max_depth=6, min_samples_leaf=20,
                                random_state=SEED % 2**31, n_jobs=1), sklearn_onnx),
        ("ml_momentum_gb", "sklearn",
         GradientBoostingClassifier(n_estimators=20, max_depth=3,
                                    random_state=SEED % 2**31), sklearn_onnx),
        ("ml_momentum_lgbm", "lightgbm",
         lightgbm.LGBMClassifier(n_estimators=20, num_leaves=15, learning_rate=0.1,
                                 random_state=SEED % 2**31, n_jobs=1, deterministic=True,
                                 force_row_wise=True, verbose=-1), lightgbm_onnx),
        ("ml_momentum_xgb", "xgboost",
         xgboost.XGBClassifier(n_estimators=20, max_depth=4, learning_rate=0.1,
                               random_state=SEED % 2**31, n_jobs=1,
                               tree_method="exact"), xgboost_onnx),
    ]
    for name, framework, model, convert in classifiers:
        if framework == "xgboost":
            # XGBoost wants labels 0..k-1; index i stands for CLASSES[i].
            model.fit(x32, y_train + 1)
        else:
            model.fit(x32, y_train)
            assert list(model.classes_) == CLASSES, model.classes_
        specs.append((name, framework, "classifier", convert(model, name, n)))

    regressor = scaled(Ridge(alpha=1.0))
    regressor.fit(x32, f_train * 10_000.0)
    specs.append(("ml_momentum_ridge_bps", "sklearn", "regressor",
                  sklearn_onnx(regressor, "ml_momentum_ridge_bps", n)))

    if MODELS.exists():
        for old in MODELS.glob("*.onnx"):
            old.unlink()
        shutil.rmtree(REFERENCE, ignore_errors=True)
    REFERENCE.mkdir(parents=True, exist_ok=True)

    registry = [
        "# Generated by scripts/train_models.py; rerun it rather than editing by hand",
        "# (a changed file no longer matches its sha256 and is refused).",
        f"# Trained with scikit-learn {sklearn.__version__}, lightgbm {lightgbm.__version__},",
        f"# xgboost {xgboost.__version__}; reference outputs by onnxruntime {onnxruntime.__version__}.",
        "# Features (in input order) map to quiver feature specs as documented in the script.",
        "models:",
    ]
    for name, framework, kind, data_bytes in specs:
        path = MODELS / f"{name}.onnx"
        path.write_bytes(data_bytes)
        sha = hashlib.sha256(data_bytes).hexdigest()
        ref = reference(name, data_bytes, ref_inputs, kind, framework)
        (REFERENCE / f"{name}.json").write_text(json.dumps(ref, indent=1) + "\n")
        registry += [
            f"  - name: {name}",
            f"    path: {name}.onnx",
            f"    sha256: \"{sha}\"",
            f'    version: "{VERSION}"',
            f"    framework: {framework}",
            f"    input: {{features: {n}, dtype: f32}}",
            "    features: [" + ", ".join(f for f, _ in FEATURES) + "]",
        ]
        if kind == "classifier":
            registry.append("    output: {kind: classifier, classes: [-1, 0, 1]}")
        else:
            registry.append(
                f"    output: {{kind: regressor, threshold: {REGRESSION_THRESHOLD_BPS}}}"
            )
        registry.append("    active: true")
        print(f"{path.relative_to(ROOT)}: {len(data_bytes)} bytes, sha256 {sha[:16]}")
    (MODELS / "registry.yaml").write_text("\n".join(registry) + "\n")


if __name__ == "__main__":
    if os.environ.get("QUIVER_MODELS_VENV") != "1":
        in_venv()
    main()
