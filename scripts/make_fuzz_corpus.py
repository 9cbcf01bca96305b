#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (tests/fuzz/corpus/<target>/) and dictionaries
(tests/fuzz/<target>.dict): small valid files of every form each parser reads, and
near-valid ones that must be refused. Deterministic, standard library only; the output
is committed, so run it again after changing it:  python3 scripts/make_fuzz_corpus.py
"""
import gzip
import json
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUZZ = ROOT / "tests" / "fuzz"

# ---- safetensors ----

PACK = {"F32": "<f", "F64": "<d", "I64": "<q", "I32": "<i", "U8": "<B", "BOOL": "<B"}
WIDTH = {"F32": 4, "F64": 8, "I64": 8, "F16": 2, "BF16": 2, "I32": 4, "U8": 1, "BOOL": 1}


def encode(dtype, values):
    if dtype == "F16":
        return b"".join(struct.pack("<e", v) for v in values)
    if dtype == "BF16":  # the upper half of the float32
        return b"".join(struct.pack("<f", v)[2:] for v in values)
    return b"".join(struct.pack(PACK[dtype], v) for v in values)


def safetensors(tensors, metadata=None, header_override=None):
    """tensors: [(name, dtype, shape, values)] in file order."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, values in tensors:
        raw = encode(dtype, values)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = header_override if header_override is not None else json.dumps(header, separators=(",", ":"))
    text = text.encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def raw_header(text, data=b""):
    text = text.encode()
    return struct.pack("<Q", len(text)) + text + data


def numbers(n, scale=0.25):
    return [((i * 7) % 11 - 5) * scale for i in range(n)]


def safetensors_corpus():
    out = {}
    for dtype in ["F32", "F64", "I64", "F16", "BF16", "I32", "U8", "BOOL"]:
        if dtype in ("BOOL",):
            values = [0, 1, 1, 0, 1, 0]
        elif dtype in ("I64", "I32"):
            values = [-3, -1, 0, 2, 5, 1 << 20]
        elif dtype == "U8":
            values = [0, 1, 7, 128, 254, 255]
        else:
            values = numbers(6)
        out[f"dtype_{dtype.lower()}"] = safetensors([("t", dtype, [2, 3], values)])
    out["scalar_and_empty"] = safetensors([("s", "F32", [], [1.5]), ("e", "F32", [0, 4], [])])
    out["several_with_metadata"] = safetensors(
        [("a.weight", "F32", [3, 2], numbers(6)), ("a.bias", "F64", [3], numbers(3)),
         ("idx", "I64", [4], [0, 1, 2, 3])], metadata={"format": "pt", "note": "seed"})
    out["f16_specials"] = safetensors([("h", "F16", [4], [0.0, -0.0, 6.0e-8, 65504.0])])
    # Near-valid: each must be refused.
    out["bad_dtype"] = raw_header('{"t":{"dtype":"F8","shape":[2],"data_offsets":[0,2]}}', b"\0\0")
    out["claims_100gb"] = raw_header('{"t":{"dtype":"F32","shape":[25000000000],"data_offsets":[0,100000000000]}}', b"\0" * 8)
    out["shape_overflow"] = raw_header('{"t":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}}', b"\0" * 8)
    out["overlap"] = raw_header('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
                                '"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', b"\0" * 12)
    out["out_of_file"] = raw_header('{"t":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', b"\0" * 8)
    out["gap"] = raw_header('{"t":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', b"\0" * 8)
    out["bool_two"] = safetensors([("b", "U8", [2], [1, 2])]).replace(b'"U8"', b'"BOOL"')
    out["header_too_long"] = struct.pack("<Q", 1 << 40) + b"{}"
    out["deep_json"] = raw_header("[" * 100 + "]" * 100)
    out["metadata_not_string"] = raw_header('{"__metadata__":{"k":1}}')
    out["truncated"] = safetensors([("t", "F32", [4], numbers(4))])[:-3]
    return out


# ---- checkpoints (nn/checkpoint.h) ----

def mlp_tensors(widths, bias=True, stride=2, dtype="F32"):
    tensors = []
    for layer in range(len(widths) - 1):
        path = str(1 + stride * layer)
        tensors.append((f"{path}.weight", dtype, [widths[layer + 1], widths[layer]],
                        numbers(widths[layer] * widths[layer + 1], 0.05)))
        if bias:
            tensors.append((f"{path}.bias", dtype, [widths[layer + 1]], numbers(widths[layer + 1], 0.01)))
    return tensors


def checkpoint(spec, tensors, extra=None):
    metadata = {"format": "shrink/2", "model": json.dumps(spec, separators=(",", ":"))}
    metadata.update(extra or {})
    return safetensors(tensors, metadata)


def checkpoint_corpus():
    out = {}
    out["mlp_4_3_2"] = checkpoint({"model": "mlp", "spec": "4-3-2"}, mlp_tensors([4, 3, 2]),
                                  {"epoch": "1"})
    out["mlp_gelu_dropout"] = checkpoint({"model": "mlp", "spec": "5-4-3-2:gelu", "dropout": 0.1},
                                         mlp_tensors([5, 4, 3, 2], stride=3))
    out["mlp_no_bias_tanh"] = checkpoint({"model": "mlp", "spec": "3-2:tanh", "bias": False},
                                         mlp_tensors([3, 2], bias=False))
    out["mlp_pruned"] = checkpoint({"model": "mlp", "spec": "6-5-4-2"}, mlp_tensors([6, 3, 2, 2]))
    out["lenet_pruned"] = checkpoint({"model": "lenet-300-100"}, mlp_tensors([784, 2, 2, 10]))
    # A SparseLinear at layer 0 (CSR: row_ptr, col_idx, values), a dense layer after it.
    sparse = {"model": "mlp", "spec": "4-3-2",
              "sparse": {"1": {"in_features": 4, "out_features": 3, "nnz": 5, "bias": True}}}
    out["mlp_sparse"] = checkpoint(sparse, [
        ("1.values", "F32", [5], numbers(5)), ("1.bias", "F32", [3], numbers(3)),
        ("1.row_ptr", "I64", [4], [0, 2, 3, 5]), ("1.col_idx", "I64", [5], [0, 1, 2, 0, 3]),
    ] + mlp_tensors([4, 3, 2])[2:])
    # Input-feature pruning: the Flatten selects features 1 and 3 of 4 (nn/input_selection.h);
    # near-valid: the same with the index unsorted.
    inputs = {"model": "mlp", "spec": "4-3-2", "inputs": {"0": {"features": 4}}}
    out["mlp_inputs"] = checkpoint(inputs, [("0.input_index", "I64", [2], [1, 3])] + mlp_tensors([2, 3, 2]))
    out["inputs_unsorted"] = checkpoint(inputs, [("0.input_index", "I64", [2], [3, 1])] + mlp_tensors([2, 3, 2]))
    v1 = {"format": "shrink/1",
          "architecture": json.dumps({"family": "mlp", "widths": [4, 3, 2], "activation": "relu", "bias": True})}
    out["v1_mlp"] = safetensors(mlp_tensors([4, 3, 2]), v1)
    # Near-valid: a spec naming a million-unit layer over a small file (must not be built),
    # tensors wider than the spec, a missing layer, an unknown model, a bad format.
    out["claims_million_units"] = checkpoint({"model": "mlp", "spec": "4-1000000-2"}, mlp_tensors([4, 3, 2]))
    out["wider_than_spec"] = checkpoint({"model": "mlp", "spec": "4-2-2"}, mlp_tensors([4, 3, 2]))
    out["missing_layer"] = checkpoint({"model": "mlp", "spec": "4-3-2-2"}, mlp_tensors([4, 3, 2]))
    out["unknown_model"] = checkpoint({"model": "resnet9000"}, mlp_tensors([4, 3, 2]))
    out["sparse_huge_nnz"] = checkpoint(
        {"model": "mlp", "spec": "4-3-2", "sparse": {"1": {"in_features": 16777216, "out_features": 256,
                                                           "nnz": 4294967296, "bias": True}}},
        mlp_tensors([4, 3, 2]))
    out["bad_format"] = safetensors(mlp_tensors([4, 3, 2]), {"format": "shrink/9", "model": "{}"})
    return out


# ---- IDX (datasets/idx.h); the first byte is the fuzz target's mode: 1 gzips the rest ----

def idx(type_code, dims, data):
    return bytes([0, 0, type_code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + data


def idx_corpus():
    out = {}
    valid = {
        "u8_1d": idx(0x08, [5], bytes([0, 1, 2, 3, 9])),
        "u8_3d": idx(0x08, [2, 3, 3], bytes(range(18))),
        "u8_4d": idx(0x08, [1, 2, 2, 2], bytes(range(8))),
        "u8_empty": idx(0x08, [0, 28, 28], b""),
    }
    for name, body in valid.items():
        out[f"raw_{name}"] = b"\0" + body
        out[f"gz_target_{name}"] = b"\1" + body
        out[f"gz_file_{name}"] = b"\0" + gzip.compress(body, 6, mtime=0)
    # IDX element types besides unsigned byte (refused by name): i8, i16, i32, f32, f64.
    for code, width in [(0x09, 1), (0x0B, 2), (0x0C, 4), (0x0D, 4), (0x0E, 8)]:
        out[f"raw_type_{code:02x}"] = b"\0" + idx(code, [3], b"\0" * (3 * width))
    out["raw_truncated"] = b"\0" + idx(0x08, [10], bytes(4))
    out["raw_trailing"] = b"\0" + idx(0x08, [2], bytes(5))
    out["raw_zero_dims"] = b"\0" + bytes([0, 0, 8, 0])
    out["raw_five_dims"] = b"\0" + idx(0x08, [1, 1, 1, 1, 1], b"\0")
    out["gz_claims_46341_squared"] = b"\0" + gzip.compress(idx(0x08, [1, 46341, 46341], b"\0" * 4096), 9, mtime=0)
    out["gz_cut_short"] = b"\0" + gzip.compress(valid["u8_3d"], 6, mtime=0)[:-6]
    return out


# ---- CIFAR-10 binary batches (datasets/cifar10.h): 3073-byte records, the file as it is ----

def cifar_record(label, seed):
    return bytes([label]) + bytes((seed * 31 + p * 7 + (p // 1024) * 50) % 256 for p in range(3072))


def cifar10_corpus():
    one, two = cifar_record(3, 1), cifar_record(0, 2) + cifar_record(9, 3)
    return {
        "one_record": one,
        "two_records": two,
        "all_black": bytes([5]) + bytes(3072),  # a constant image: no spread to divide by
        "empty": b"",                            # no records: refused by the data set, not the reader
        "one_byte_over": one + b"\0",
        "cut_short": two[:3073 + 1536],
        "label_10": cifar_record(10, 4),
        "label_255_second": one + cifar_record(255, 5),
        "label_only": bytes([1]),
    }


# ---- model specs (nn/models.h) and schedules (nn/schedule.h): text ----

MODEL_SPECS = [
    "lenet-300-100", "ffn-10000", "mlp:784-300-100-10", "mlp:4-3-2:gelu", "mlp:8-8:relu6",
    "mlp:3-2:sigmoid", "mlp:2-2:tanh", "mlp:1-9223372036854775807-10", "mlp:784-16777217-10",
    "mlp:4--2", "mlp:4-3-2:swish", "resnet20",
    '{"model":"mlp","spec":"4-3-2:gelu","dropout":0.25,"bias":false}',
    '{"model":"lenet-300-100","bias":true}',
    '{"model":"mlp","spec":"4-3-2","sparse":{"1":{"in_features":4,"out_features":3,"nnz":5,"bias":true}}}',
    '{"model":"mlp","spec":"4-3-2","sparse":{"1":{"in_features":16777216,"out_features":256,"nnz":4294967296}}}',
    '{"model":"ffn-10000","dropout":1.5}', '{"model":"mlp"}', '{"model":"nope"}', "[[[[[[]]]]]]",
    '{"model":"mlp","spec":"4-3-2","inputs":{"0":{"features":4}}}',
    '{"model":"lenet-300-100","inputs":{"0":{"features":16777216}}}',
]

SCHEDULES = [
    "constant", "step:30", "step:30:0.5", "multistep:30,60:0.1", "multistep:1,2,3", "cosine",
    "cosine:50", "cosine:50:0.001", "warmup:5", "warmup:5+cosine", "warmup:3+step:2:0.5",
    "warmup:2+multistep:4,8:0.2", "step:0", "step:3:nan", "step:3:inf", "multistep:5,3",
    "cosine:-1", "warmup:9223372036854775807+cosine", "cosine:10:1e308", "linear",
]

DICTS = {
    "safetensors": ['"dtype"', '"shape"', '"data_offsets"', '"__metadata__"', '"F32"', '"F64"',
                    '"I64"', '"F16"', '"BF16"', '"I32"', '"U8"', '"BOOL"', '"F8_E4M3"', ":[", "],",
                    "18446744073709551615", "4294967296", "9223372036854775807"],
    "checkpoint": ['"__metadata__"', '"format"', '"shrink/2"', '"shrink/1"', '"model"',
                   '"architecture"', '\\"model\\":', '\\"spec\\":', '\\"mlp\\"', '\\"lenet-300-100\\"',
                   '\\"ffn-10000\\"', '\\"sparse\\":', '\\"nnz\\":', '\\"in_features\\":',
                   '\\"out_features\\":', '\\"bias\\":', '\\"dropout\\":', '\\"family\\":',
                   '\\"widths\\":', '\\"activation\\":', ":gelu", ":tanh", '"dtype"', '"shape"',
                   '"data_offsets"', '"F32"', '"I64"', ".weight", ".bias", ".values", ".row_ptr",
                   ".col_idx", "1000000", '\\"inputs\\":', '\\"features\\":', "0.input_index"],
    "model_spec": ['"model"', '"spec"', '"bias"', '"dropout"', '"sparse"', '"nnz"', '"in_features"',
                   '"out_features"', "mlp:", "lenet-300-100", "ffn-10000", ":relu", ":relu6", ":gelu",
                   ":tanh", ":sigmoid", "-10", "16777216", "4294967296", "true", "false", '"inputs"',
                   '"features"'],
    "schedule": ["constant", "step:", "multistep:", "cosine", "warmup:", "+", ":", ",", "0.1", "nan",
                 "inf", "-1", "1e-320", "9223372036854775807"],
}


def write_corpus(target, files):
    """Rewrites the generated seeds; reproducers of fixed crashes (regression-*) stay."""
    folder = FUZZ / "corpus" / target
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        if not old.name.startswith("regression-"):
            old.unlink()
    for name, data in sorted(files.items()):
        (folder / name).write_bytes(data if isinstance(data, bytes) else data.encode())
    return sum(len(d) for d in files.values())


def write_dict(target, tokens):
    lines = [f"# libFuzzer dictionary for fuzz_{target}; written by scripts/make_fuzz_corpus.py"]
    for i, token in enumerate(tokens):
        escaped = token.replace("\\", "\\\\").replace('"', '\\"')
        lines.append(f'kw{i}="{escaped}"')
    (FUZZ / f"{target}.dict").write_text("\n".join(lines) + "\n")


def main():
    corpora = {
        "safetensors": safetensors_corpus(),
        "checkpoint": checkpoint_corpus(),
        "idx": idx_corpus(),
        "cifar10": cifar10_corpus(),
        "model_spec": {f"spec_{i:02d}": s for i, s in enumerate(MODEL_SPECS)},
        "schedule": {f"schedule_{i:02d}": s for i, s in enumerate(SCHEDULES)},
    }
    total = 0
    for target, files in corpora.items():
        size = write_corpus(target, files)
        total += size
        print(f"{target}: {len(files)} files, {size} bytes")
    for target, tokens in DICTS.items():
        write_dict(target, tokens)
    print(f"total {total} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
