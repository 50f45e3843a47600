"""Writes the two hostile models of models/testdata/: valid ONNX graphs whose
inference does not end in any useful time, for the inference-deadline tests.

    loop_forever.onnx   a Loop of 10^12 iterations of an Add, whatever the
                        input: the warm-up at load never ends on its own.
    loop_on_input.onnx  a Loop whose trip count is max(input) * 10^10: a row of
                        zeros (the warm-up, `models verify`) runs 0 iterations
                        and answers 0; a row of real features (prices near
                        100) runs ~10^12 and never ends on its own.

Both read f32[N, 9] (the ml_momentum width) and write one f32 per row
(`value`, a regressor), so any strategy of the shipped feature set can use
them. The loop's carried value starts from the input (sum * 0), so no
optimiser can fold the loop away at session build; the output adds the
loop's result to every row, so no optimiser can drop it either.

It also writes models/testdata/registry.yaml with their sha256. Needs only
the `onnx` package (pinned below); a rerun with it rewrites every file byte
for byte:

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install onnx==1.20.1
    /tmp/venv/bin/python scripts/gen_deadline_models.py
"""
import hashlib
from pathlib import Path

import onnx
from onnx import TensorProto, helper

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "models" / "testdata"
OPSET = 13
FEATURES = 9
TRIPS = 10**12
PINNED_ONNX = "1.20.1"


def scalar(name, dtype, value):
    return helper.make_tensor(name, dtype, [], [value])


def loop_body():
    """acc + 1 while cond stays true: the cheapest iteration there is."""
    return helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Add", ["acc_in", "one"], ["acc_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("iter", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, []),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, []),
        ],
        initializer=[scalar("one", TensorProto.FLOAT, 1.0)],
    )


def model(name, trips_from_input):
    nodes = [
        # The carried value starts at sum(features) * 0: not a constant.
        helper.make_node("ReduceSum", ["features"], ["total"], keepdims=0),
        helper.make_node("Mul", ["total", "zero"], ["acc0"]),
    ]
    initializers = [
        scalar("zero", TensorProto.FLOAT, 0.0),
        scalar("keep_going", TensorProto.BOOL, True),
        helper.make_tensor("row_axis", TensorProto.INT64, [1], [1]),
    ]
    if trips_from_input:
        nodes += [
            helper.make_node("ReduceMax", ["features"], ["peak"], keepdims=0),
            helper.make_node("Mul", ["peak", "scale"], ["scaled"]),
            helper.make_node("Cast", ["scaled"], ["trips"], to=TensorProto.INT64),
        ]
        initializers.append(scalar("scale", TensorProto.FLOAT, float(TRIPS // 100)))
    else:
        initializers.append(scalar("trips", TensorProto.INT64, TRIPS))
    nodes += [
        helper.make_node(
            "Loop", ["trips", "keep_going", "acc0"], ["acc"], body=loop_body()
        ),
        # One value per row: the row's sum * 0, plus the loop's result.
        helper.make_node("ReduceSum", ["features", "row_axis"], ["row_sum"], keepdims=1),
        helper.make_node("Mul", ["row_sum", "zero"], ["row_zero"]),
        helper.make_node("Add", ["row_zero", "acc"], ["value"]),
    ]
    graph = helper.make_graph(
        nodes,
        f"quiver_{name}",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", FEATURES])],
        [helper.make_tensor_value_info("value", TensorProto.FLOAT, ["N", 1])],
        initializer=initializers,
    )
    onx = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="quiver scripts/gen_deadline_models.py",
        producer_version="1",
    )
    onx.ir_version = 7
    onnx.checker.check_model(onx, full_check=True)
    return onx.SerializeToString(deterministic=True)


def main():
    if onnx.__version__ != PINNED_ONNX:
        print(f"note: onnx {onnx.__version__}, the files were written with {PINNED_ONNX}")
    OUT.mkdir(parents=True, exist_ok=True)
    entries = []
    for name, from_input, what in [
        ("loop_forever", False, f"a Loop of {TRIPS:.0e} Adds whatever the input"),
        ("loop_on_input", True, "a Loop of max(input) * 1e10 Adds: 0 on zeros"),
    ]:
        data = model(name, from_input)
        path = OUT / f"{name}.onnx"
        path.write_bytes(data)
        sha = hashlib.sha256(data).hexdigest()
        print(f"{path.relative_to(ROOT)}: {len(data)} bytes, sha256 {sha[:16]}")
        entries += [
            f"  # {what}",
            f"  - name: {name}",
            f"    path: {name}.onnx",
            f"    sha256: \"{sha}\"",
            '    version: "1"',
            "    framework: onnx",
            f"    input: {{features: {FEATURES}, dtype: f32}}",
            "    output: {kind: regressor, threshold: 2.0}",
        ]
    registry = [
        "# Generated by scripts/gen_deadline_models.py: valid models whose",
        "# inference never ends on its own, for the inference-deadline tests.",
        "# Not shipped models: `quiver models verify --registry` on this file fails",
        "# loop_forever (its warm-up exceeds the deadline) and passes loop_on_input",
        "# (a row of zeros runs no iteration; real features hang it).",
        "models:",
        *entries,
    ]
    (OUT / "registry.yaml").write_text("\n".join(registry) + "\n")


if __name__ == "__main__":
    main()
