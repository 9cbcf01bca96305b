#!/usr/bin/env python3
"""Export a randomly initialised torch.nn.TransformerEncoder, an input and its outputs to one
safetensors file, in shrink's parameter layout, for the interop test (tests/test_torch_interop.cpp).

shrink's names are PyTorch's (nn/transformer.h) except that the packed attention input projection
is stored split: in_proj_weight rows [0, d) -> self_attn.q_proj.weight, [d, 2d) -> k_proj, [2d, 3d)
-> v_proj (in_proj_bias likewise). The file holds those tensors, "input.x" (B, T, d),
"input.attention_mask" (B, T; 1 a token, 0 padding: PyTorch's src_key_padding_mask is its
negation), "output.plain" and "output.masked" (the encoder's eval-mode outputs without and with
the mask), and the encoder's options as JSON in the metadata under "options".

  python3 scripts/export_torch_encoder.py OUT.safetensors [--norm-first] [--final-norm]
      [--d-model 32] [--heads 4] [--ffn 48] [--layers 2] [--activation gelu|relu] [--seed 0]
"""
import argparse
import json
import struct

import torch

DTYPES = {torch.float32: "F32", torch.int64: "I64"}


def save_safetensors(path, tensors, metadata):
    header, offset, blobs = {"__metadata__": metadata}, 0, []
    for name, t in tensors.items():
        data = t.detach().contiguous().cpu().numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def shrink_state(encoder, d):
    out = {}
    for name, t in encoder.state_dict().items():
        if name.endswith("self_attn.in_proj_weight") or name.endswith("self_attn.in_proj_bias"):
            prefix, kind = name.rsplit(".in_proj_", 1)
            for i, part in enumerate(("q_proj", "k_proj", "v_proj")):
                out[f"{prefix}.{part}.{kind}"] = t[i * d:(i + 1) * d].clone()
        else:
            out[name] = t
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out")
    p.add_argument("--d-model", type=int, default=32)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--ffn", type=int, default=48)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--activation", default="gelu", choices=["gelu", "relu"])
    p.add_argument("--norm-first", action="store_true")
    p.add_argument("--final-norm", action="store_true")
    p.add_argument("--batch", type=int, default=3)
    p.add_argument("--tokens", type=int, default=7)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    torch.manual_seed(a.seed)
    layer = torch.nn.TransformerEncoderLayer(a.d_model, a.heads, a.ffn, dropout=0.0, activation=a.activation,
                                             batch_first=True, norm_first=a.norm_first)
    norm = torch.nn.LayerNorm(a.d_model) if a.final_norm else None
    encoder = torch.nn.TransformerEncoder(layer, a.layers, norm=norm, enable_nested_tensor=False)
    with torch.no_grad():  # LayerNorms and biases away from their 1 / 0 initialisation, so the test sees them
        for name, t in encoder.named_parameters():
            if "norm" in name or name.endswith("bias"):
                t.uniform_(-0.5, 1.5) if name.endswith("weight") else t.uniform_(-0.5, 0.5)
    encoder.eval()
    x = torch.randn(a.batch, a.tokens, a.d_model)
    mask = torch.ones(a.batch, a.tokens, dtype=torch.int64)
    for b in range(a.batch):  # sequence b has b padding tokens at its end (the first has none)
        if b:
            mask[b, a.tokens - b:] = 0
    with torch.no_grad():
        plain = encoder(x)
        masked = encoder(x, src_key_padding_mask=mask == 0)
    tensors = shrink_state(encoder, a.d_model)
    tensors.update({"input.x": x, "input.attention_mask": mask, "output.plain": plain, "output.masked": masked})
    options = {"d_model": a.d_model, "heads": a.heads, "ffn": a.ffn, "layers": a.layers, "activation": a.activation,
               "norm_first": a.norm_first, "final_norm": a.final_norm, "eps": layer.norm1.eps}
    save_safetensors(a.out, tensors, {"options": json.dumps(options), "torch": torch.__version__})


if __name__ == "__main__":
    main()
