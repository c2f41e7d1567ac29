"""Independent robustness check: a TensorFlow.js layers model rebuilt in PyTorch, attacked on Fashion-MNIST.

Loads `model.json` + its weight files (as tempered's tensor/models/io.ts saves them), rebuilds the model in PyTorch
(Sequential or a single-chain functional model of InputLayer, Conv2D, MaxPooling2D, Flatten, Dense, plus Dropout,
Activation and Softmax), and evaluates it on the first N test images, clean and under an attack suite at ε:

  fgsm        one signed-gradient step of size ε on the cross-entropy
  pgd20-ce    PGD L∞, 20 steps of ε/4 on the cross-entropy (tempered's reference protocol)
  pgd100-ce   PGD L∞, 100 steps of 2.5ε/100 (Madry et al.) on the cross-entropy
  pgd100-cw   PGD L∞, 100 steps of 2.5ε/100 on the Carlini-Wagner margin (max other logit − true logit)

Each PGD starts at a uniform random point of the ε-box; with --restarts R an example is robust only if it survives
every restart. An example counts as fooled as soon as any iterate (each one lies in the ε-box and in [0,1]) is
misclassified; --final-only counts the last iterate only, as tempered's evaluation does. Robust accuracy is the
share of examples classified correctly clean AND under the attack; "worst case" is correct under every attack.
A model whose last layer ends in a softmax is attacked on the scores before it, as tempered does.

Usage:
  /usr/bin/python3 crosscheck/torch_attack.py --model DIR [--eps 0.1] [--images 1000] [--restarts 1] [--threads 1]
      [--batch 250] [--seed 0] [--attacks fgsm,pgd20-ce,pgd100-ce,pgd100-cw] [--final-only]
      [--verify LOGITS.json [--tolerance 1e-4]] [--self-check] [--data-dir DIR] [--json]

--verify reads {"logits": [[...], ...], "labels"?: [...]} (crosscheck/tfjs-logits.ts writes it) and fails when the
PyTorch logits of those images differ from them by more than --tolerance. --self-check asserts that every adversarial
image lies in [0,1] and within ε + 1e-6 of its clean image. Progress goes to stderr; with --json the last stdout line
is {"model","images","eps","clean","attacks":{name: accuracy},"worstCase","seconds","logitsMaxAbsDiff"?, ...}.

Exit codes: 0 done; 1 unreadable or unsupported model or data; 2 bad arguments; 3 torch not importable;
4 --verify mismatch; 5 --self-check violation.
"""

import argparse
import gzip
import json
import math
import os
import struct
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as err:  # pragma: no cover - depends on the machine
    print(f"torch not importable from {sys.executable}: {err}", file=sys.stderr)
    sys.exit(3)

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
SELF_CHECK_SLACK = 1e-6


class InputError(Exception):
    """A model or data file that cannot be used; the message starts with the file."""


class SelfCheckError(Exception):
    """An adversarial image outside [0,1] or outside the ε-box."""


# ───────────────────────────── model ─────────────────────────────

ACTIVATIONS = ("linear", "relu", "softmax")


def _pair(v, what, where):
    if isinstance(v, int):
        return (v, v)
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(i, int) for i in v):
        return (v[0], v[1])
    raise InputError(f"{where}: {what} must be an int or a pair of ints, found {v!r}")


def same_pads(size, kernel, stride, dilation=1):
    """TF 'same' padding of one spatial axis: (before, after), the odd pixel going after (bottom/right)."""
    eff = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + eff - size, 0)
    return total // 2, total - total // 2


def _out_size(size, kernel, stride, dilation, padding):
    if padding == "same":
        return -(-size // stride)
    eff = (kernel - 1) * dilation + 1
    return (size - eff) // stride + 1


class Conv2D(nn.Module):
    """tfjs Conv2D on NCHW input: kernel [kh,kw,ci,co] → [co,ci,kh,kw]; TF 'same' padding done explicitly."""

    def __init__(self, kernel, bias, strides, dilation, padding, activation):
        super().__init__()
        self.weight = nn.Parameter(kernel.permute(3, 2, 0, 1).contiguous(), requires_grad=False)
        self.bias = None if bias is None else nn.Parameter(bias.clone(), requires_grad=False)
        self.strides, self.dilation, self.padding, self.activation = strides, dilation, padding, activation

    def forward(self, x):
        if self.padding == "same":
            kh, kw = self.weight.shape[2], self.weight.shape[3]
            top, bottom = same_pads(x.shape[2], kh, self.strides[0], self.dilation[0])
            left, right = same_pads(x.shape[3], kw, self.strides[1], self.dilation[1])
            if top or bottom or left or right:
                x = F.pad(x, (left, right, top, bottom))
        return activate(F.conv2d(x, self.weight, self.bias, self.strides, 0, self.dilation), self.activation)


class MaxPool2D(nn.Module):
    """tfjs MaxPooling2D on NCHW input; 'same' pads with −∞ (bottom/right first), as TF does."""

    def __init__(self, pool, strides, padding):
        super().__init__()
        self.pool, self.strides, self.padding = pool, strides, padding

    def forward(self, x):
        if self.padding == "same":
            top, bottom = same_pads(x.shape[2], self.pool[0], self.strides[0])
            left, right = same_pads(x.shape[3], self.pool[1], self.strides[1])
            if top or bottom or left or right:
                x = F.pad(x, (left, right, top, bottom), value=float("-inf"))
        return F.max_pool2d(x, self.pool, self.strides)


class Flatten(nn.Module):
    """tfjs Flatten flattens NHWC (h, w, c order): permute NCHW back to NHWC first."""

    def forward(self, x):
        if x.dim() == 4:
            x = x.permute(0, 2, 3, 1)
        return x.reshape(x.shape[0], -1)


class Dense(nn.Module):
    """tfjs Dense on [batch, features]: kernel [in,out] → [out,in]."""

    def __init__(self, kernel, bias, activation):
        super().__init__()
        self.weight = nn.Parameter(kernel.t().contiguous(), requires_grad=False)
        self.bias = None if bias is None else nn.Parameter(bias.clone(), requires_grad=False)
        self.activation = activation

    def forward(self, x):
        return activate(F.linear(x, self.weight, self.bias), self.activation)


class Activation(nn.Module):
    def __init__(self, activation):
        super().__init__()
        self.activation = activation

    def forward(self, x):
        return activate(x, self.activation)


def activate(x, activation):
    if activation == "relu":
        return F.relu(x)
    if activation == "softmax":
        # tfjs takes the softmax over the last axis, the channels: dim 1 of NCHW, dim -1 of [batch, features].
        return F.softmax(x, dim=1 if x.dim() == 4 else -1)
    return x


class TfjsModel(nn.Module):
    """The rebuilt model: NHWC images in, logits out (NCHW inside)."""

    def __init__(self, layers, input_shape, description, head):
        super().__init__()
        self.body = nn.Sequential(*layers)
        self.input_shape = input_shape
        self.description = description
        self.head = head

    def forward(self, x):
        return self.body(x.permute(0, 3, 1, 2))


def _layer_chain(topology, where):
    """The layers of a Sequential model, or of a functional model that is a single chain, in order."""
    if isinstance(topology, dict) and "model_config" in topology:
        topology = topology["model_config"]
    if not isinstance(topology, dict):
        raise InputError(f"{where}: modelTopology is not an object")
    cls, cfg = topology.get("class_name"), topology.get("config")
    if cls == "Sequential":
        layers = cfg.get("layers") if isinstance(cfg, dict) else cfg
        if not isinstance(layers, list):
            raise InputError(f"{where}: Sequential model without a layer list")
        return layers
    if cls in ("Model", "Functional"):
        layers = cfg.get("layers") if isinstance(cfg, dict) else None
        ins, outs = (cfg.get(k, []) if isinstance(cfg, dict) else [] for k in ("input_layers", "output_layers"))
        if not isinstance(layers, list) or len(ins) != 1 or len(outs) != 1:
            raise InputError(f"{where}: only single-input, single-output functional models are supported")
        by_name = {layer["config"]["name"]: layer for layer in layers}
        chain, name = [], cfg["output_layers"][0][0]
        while True:
            layer = by_name.get(name)
            if layer is None:
                raise InputError(f"{where}: layer '{name}' is referenced but not defined")
            chain.append(layer)
            nodes = layer.get("inbound_nodes") or []
            if not nodes:
                break
            if len(nodes) != 1 or len(nodes[0]) != 1:
                raise InputError(
                    f"{where}: layer '{name}' ({layer['class_name']}) has {sum(len(n) for n in nodes)} inputs; "
                    "only a single chain of layers is supported (no branches, merges or shared layers)"
                )
            name = nodes[0][0][0]
        chain.reverse()
        if len(chain) != len(layers):
            off = len(layers) - len(chain)
            raise InputError(f"{where}: {off} layers lie off the input→output chain; not supported")
        return chain
    raise InputError(f"{where}: model class {cls!r} is not supported (expected Sequential or a single-chain Model)")


def _read_weights(doc, model_dir, where):
    """All manifest weights by name, as float32 tensors of their manifest shapes."""
    manifest = doc.get("weightsManifest")
    if not isinstance(manifest, list):
        raise InputError(f"{where}: no weightsManifest")
    weights, used_files = {}, []
    for group in manifest:
        data = bytearray()
        for listed in group.get("paths", []):
            rel = listed
            while rel.startswith("./"):
                rel = rel[2:]
            if rel == "" or os.path.isabs(rel) or ".." in rel.replace("\\", "/").split("/"):
                raise InputError(f"{where}: weightsManifest names {listed!r}; expected a file beside it")
            path = os.path.join(model_dir, rel)
            try:
                with open(path, "rb") as f:
                    data += f.read()
            except FileNotFoundError:
                raise InputError(f"{path}: missing (listed in the weightsManifest of {where})") from None
            used_files.append(path)
        offset = 0
        for spec in group.get("weights", []):
            name, shape, dtype = spec["name"], spec["shape"], spec.get("dtype")
            if spec.get("quantization") is not None:
                q = spec["quantization"].get("dtype")
                raise InputError(f"{where}: weight {name} is quantized ({q}); not supported")
            if dtype != "float32":
                raise InputError(f"{where}: weight {name} has dtype {dtype}; only float32 is supported")
            count = math.prod(shape)
            end = offset + 4 * count
            if end > len(data):
                raise InputError(
                    f"{' + '.join(used_files)}: {len(data)} bytes of weights, but {where} needs {end} by weight {name}"
                )
            t = torch.frombuffer(bytearray(data[offset:end]), dtype=torch.float32) if count else torch.zeros(0)
            weights[name] = t.reshape(shape).clone()
            offset = end
        if offset != len(data):
            raise InputError(
                f"{' + '.join(used_files)}: {len(data)} bytes of weights but {where} describes {offset} bytes"
            )
    return weights


def load_tfjs_model(model_path):
    """Rebuilds a tfjs layers model (a folder with model.json, or the model.json path) as a TfjsModel in eval mode."""
    where = os.path.join(model_path, "model.json") if os.path.isdir(model_path) else model_path
    try:
        return _load_tfjs_model(where)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as err:
        raise InputError(f"{where}: malformed model ({type(err).__name__}: {err})") from err


def _load_tfjs_model(where):
    model_dir = os.path.dirname(where)
    try:
        with open(where, "r", encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        raise InputError(f"{where}: missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{where}: not valid JSON ({err})") from None
    if not isinstance(doc, dict) or doc.get("modelTopology") is None:
        raise InputError(f"{where}: has no modelTopology; expected a TensorFlow.js layers model.json")
    layers = _layer_chain(doc["modelTopology"], where)
    weights = _read_weights(doc, model_dir, where)
    used = set()

    def weight(layer_name, kind, shape_hint):
        name = f"{layer_name}/{kind}"
        if name not in weights:
            matches = [n for n in weights if n.endswith(f"/{name}")]
            if len(matches) != 1:
                raise InputError(f"{where}: no weight {name} in the manifest ({shape_hint}); have {sorted(weights)}")
            name = matches[0]
        used.add(name)
        return weights[name]

    shape = None  # [c, h, w] of 4-D activations, or [features] after Flatten
    modules, description = [], []
    # The last layer that computes something: a softmax there is the model's head.
    passive = ("InputLayer", "Dropout")
    last_real = max((i for i, layer in enumerate(layers) if layer["class_name"] not in passive), default=-1)
    head = "logits"
    for i, layer in enumerate(layers):
        cls, cfg = layer.get("class_name"), layer.get("config", {})
        lname = cfg.get("name", f"#{i}")
        here = f"{where}: layer {lname} ({cls})"
        if shape is None:
            bis = cfg.get("batch_input_shape") or cfg.get("batchInputShape")
            if bis is None:
                raise InputError(f"{here}: the first layer has no batch_input_shape")
            if len(bis) != 4 or any(not isinstance(d, int) for d in bis[1:]):
                raise InputError(f"{here}: input shape {bis} is not [batch, height, width, channels]")
            input_shape = tuple(bis[1:])
            shape = [bis[3], bis[1], bis[2]]
        if cfg.get("data_format", "channels_last") != "channels_last":
            raise InputError(f"{here}: data_format {cfg.get('data_format')} is not supported (channels_last only)")
        activation = cfg.get("activation", "linear")
        if isinstance(activation, dict):
            activation = activation.get("class_name", activation).lower()
        if activation not in ACTIVATIONS:
            raise InputError(f"{here}: activation {activation!r} is not supported ({', '.join(ACTIVATIONS)} are)")
        if activation == "softmax" and i == last_real:
            activation, head = "linear", "softmax removed: the attacks see the scores before it"
        if cls == "InputLayer":
            continue
        if cls == "Dropout":  # identity at inference
            continue
        if cls == "Conv2D":
            if len(shape) != 3:
                raise InputError(f"{here}: needs 4-D input, got features {shape}")
            kernel = weight(lname, "kernel", "Conv2D kernel")
            kh, kw, ci, co = kernel.shape
            if ci != shape[0] or co != cfg["filters"]:
                raise InputError(
                    f"{here}: kernel {list(kernel.shape)}, input channels {shape[0]}, filters={cfg['filters']}"
                )
            ks = _pair(cfg["kernel_size"], "kernel_size", here)
            if ks != (kh, kw):
                raise InputError(f"{here}: kernel_size {ks} but the kernel weight is {kh}×{kw}")
            strides = _pair(cfg.get("strides", 1), "strides", here)
            dilation = _pair(cfg.get("dilation_rate", 1), "dilation_rate", here)
            padding = cfg.get("padding", "valid")
            if padding not in ("valid", "same"):
                raise InputError(f"{here}: padding {padding!r} is not supported (valid or same)")
            if padding == "same" and dilation != (1, 1) and strides != (1, 1):
                raise InputError(f"{here}: 'same' padding with both strides {strides} and dilation {dilation}")
            bias = weight(lname, "bias", "Conv2D bias") if cfg.get("use_bias", True) else None
            if bias is not None and list(bias.shape) != [co]:
                raise InputError(f"{here}: bias {list(bias.shape)} for {co} filters")
            h = _out_size(shape[1], kh, strides[0], dilation[0], padding)
            w = _out_size(shape[2], kw, strides[1], dilation[1], padding)
            if h < 1 or w < 1:
                raise InputError(f"{here}: input {shape[1]}×{shape[2]} is smaller than the kernel {kh}×{kw}")
            modules.append(Conv2D(kernel, bias, strides, dilation, padding, activation))
            shape = [co, h, w]
            nobias = "" if bias is not None else " nobias"
            description.append(f"conv {kh}×{kw}×{co}/{strides[0]} {padding} {activation}{nobias}")
        elif cls == "MaxPooling2D":
            if len(shape) != 3:
                raise InputError(f"{here}: needs 4-D input, got features {shape}")
            pool = _pair(cfg.get("pool_size", 2), "pool_size", here)
            strides = _pair(cfg.get("strides") or pool, "strides", here)
            padding = cfg.get("padding", "valid")
            if padding not in ("valid", "same"):
                raise InputError(f"{here}: padding {padding!r} is not supported (valid or same)")
            h = _out_size(shape[1], pool[0], strides[0], 1, padding)
            w = _out_size(shape[2], pool[1], strides[1], 1, padding)
            if h < 1 or w < 1:
                raise InputError(f"{here}: input {shape[1]}×{shape[2]} is smaller than the pool {pool[0]}×{pool[1]}")
            modules.append(MaxPool2D(pool, strides, padding))
            shape = [shape[0], h, w]
            description.append(f"maxpool {pool[0]}×{pool[1]}/{strides[0]} {padding}")
        elif cls == "Flatten":
            modules.append(Flatten())
            shape = [math.prod(shape)]
            description.append("flatten")
        elif cls == "Dense":
            if len(shape) != 1:
                raise InputError(f"{here}: Dense on 4-D input {shape} (no Flatten before it) is not supported")
            kernel = weight(lname, "kernel", "Dense kernel")
            if kernel.dim() != 2 or kernel.shape[0] != shape[0] or kernel.shape[1] != cfg["units"]:
                raise InputError(f"{here}: kernel {list(kernel.shape)} for {shape[0]} inputs and units={cfg['units']}")
            bias = weight(lname, "bias", "Dense bias") if cfg.get("use_bias", True) else None
            if bias is not None and list(bias.shape) != [cfg["units"]]:
                raise InputError(f"{here}: bias {list(bias.shape)} for {cfg['units']} units")
            modules.append(Dense(kernel, bias, activation))
            shape = [cfg["units"]]
            description.append(f"dense {cfg['units']} {activation}{'' if bias is not None else ' nobias'}")
        elif cls in ("Activation", "Softmax", "ReLU"):
            act = {"Softmax": "softmax", "ReLU": "relu"}.get(cls, activation)
            if cls == "Softmax" and cfg.get("axis", -1) not in (-1, len(shape)):  # len(shape): the last, past batch
                raise InputError(f"{here}: softmax over axis {cfg.get('axis')} is not supported (last axis only)")
            if cls == "ReLU" and any(cfg.get(k) not in (None, 0) for k in ("max_value", "negative_slope", "threshold")):
                raise InputError(f"{here}: only a plain ReLU is supported")
            if act == "softmax" and i == last_real:
                head = "softmax removed: the attacks see the scores before it"
                continue
            if act == "linear":
                continue
            modules.append(Activation(act))
            description.append(act)
        else:
            raise InputError(
                f"{where}: layer {lname} has class {cls}, which this converter does not support "
                "(supported: InputLayer, Conv2D, MaxPooling2D, Flatten, Dense, Dropout, Activation, ReLU, Softmax)"
            )
    if shape is None or len(shape) != 1:
        raise InputError(f"{where}: the model's output is {shape}, not [batch, classes] logits")
    unused = sorted(set(weights) - used)
    if unused:
        print(f"torch_attack: {where}: weights not used by any layer: {', '.join(unused)}", file=sys.stderr)
    model = TfjsModel(modules, input_shape, " → ".join(description), head).eval()
    model.num_classes = shape[0]
    return model


# ───────────────────────────── data ─────────────────────────────


def _read_maybe_gzip(path):
    with open(path, "rb") as f:
        data = f.read()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def _find(data_dir, kind, n):
    for sep in ("-", "."):
        for ext in (".gz", ""):
            path = os.path.join(data_dir, f"t10k-{kind}{sep}idx{n}-ubyte{ext}")
            if os.path.exists(path):
                return path
    raise InputError(f"{data_dir}: no IDX test {kind} file (expected t10k-{kind}-idx{n}-ubyte[.gz])")


def load_test_images(data_dir, count):
    """The first `count` test images (NHWC float32 in [0,1], pixel/255) and their labels (int64)."""
    img_path, lbl_path = _find(data_dir, "images", 3), _find(data_dir, "labels", 1)
    img, lbl = _read_maybe_gzip(img_path), _read_maybe_gzip(lbl_path)
    if len(img) < 16 or struct.unpack(">I", img[:4])[0] != 0x803:
        raise InputError(f"{img_path}: bad magic number: expected 0x00000803 (IDX images, unsigned bytes, 3 dims)")
    if len(lbl) < 8 or struct.unpack(">I", lbl[:4])[0] != 0x801:
        raise InputError(f"{lbl_path}: bad magic number: expected 0x00000801 (IDX labels, unsigned bytes, 1 dimension)")
    n, h, w = struct.unpack(">III", img[4:16])
    (m,) = struct.unpack(">I", lbl[4:8])
    if n != m:
        raise InputError(f"{lbl_path}: count mismatch: {n} images in {img_path} but {m} labels")
    if len(img) != 16 + n * h * w or len(lbl) != 8 + m:
        raise InputError(f"{img_path} + {lbl_path}: file sizes do not match their headers ({n}×{h}×{w})")
    if count > n:
        raise InputError(f"{img_path}: asked for {count} images but only {n} exist")
    pixels = torch.frombuffer(bytearray(img[16 : 16 + count * h * w]), dtype=torch.uint8)
    x = pixels.to(torch.float32).div_(255).reshape(count, h, w, 1)
    y = torch.frombuffer(bytearray(lbl[8 : 8 + count]), dtype=torch.uint8).to(torch.int64)
    return x, y, f"{img_path} + {lbl_path}"


# ───────────────────────────── attacks ─────────────────────────────


def cw_margin(z, y):
    """Carlini-Wagner margin per example: the largest other logit minus the true logit (> 0 means fooled)."""
    true = z.gather(1, y[:, None]).squeeze(1)
    other = z.masked_fill(F.one_hot(y, z.shape[1]).bool(), float("-inf")).amax(1)
    return other - true


def loss_and_logits(model, adv, y, loss):
    adv = adv.detach().requires_grad_(True)
    z = model(adv)
    total = F.cross_entropy(z, y, reduction="sum") if loss == "ce" else cw_margin(z, y).sum()
    (grad,) = torch.autograd.grad(total, adv)
    return z.detach(), grad


def fgsm(model, x, y, eps, lo, hi, **_):
    """One signed step of size ε on the cross-entropy from the clean image. Returns (adv, fooled)."""
    _, g = loss_and_logits(model, x, y, "ce")
    adv = torch.min(torch.max(x + eps * g.sign(), lo), hi)
    with torch.no_grad():
        return adv, model(adv).argmax(1) != y


def pgd(model, x, y, eps, lo, hi, steps, step, loss, restarts, gen, any_iterate):
    """PGD L∞ from uniform random starts in the ε-box. Returns (adv, fooled): per example the first fooling image
    found, else the last iterate of the last restart; fooled when some restart fooled the model (at any iterate, or
    only at its last with `any_iterate` False). With `any_iterate`, a fooled example leaves the batch at once."""
    fooled = torch.zeros(x.shape[0], dtype=torch.bool)
    out = x.clone()
    for _ in range(restarts):
        idx = (~fooled).nonzero().squeeze(1)
        if idx.numel() == 0:
            break
        noise = torch.rand((idx.numel(), *x.shape[1:]), generator=gen, dtype=x.dtype).mul_(2 * eps).sub_(eps)
        adv = torch.min(torch.max(x[idx] + noise, lo[idx]), hi[idx])
        for s in range(steps + 1):
            last = s == steps
            if last:
                with torch.no_grad():
                    z = model(adv)
            else:
                z, g = loss_and_logits(model, adv, y[idx], loss)
            if any_iterate or last:
                new = z.argmax(1) != y[idx]
                if bool(new.any()):
                    fooled[idx[new]] = True
                    out[idx[new]] = adv[new]
                    keep = ~new
                    idx, adv = idx[keep], adv[keep]
                    if idx.numel() == 0:
                        break
                    if not last:
                        g = g[keep]
            if not last:
                adv = torch.min(torch.max(adv + step * g.sign(), lo[idx]), hi[idx])
        out[idx] = adv
    return out, fooled


def attack_suite(eps):
    """name → (function, keyword arguments, description)."""
    madry = 2.5 / 100
    return {
        "fgsm": (fgsm, {}, "FGSM, one step of ε"),
        "pgd20-ce": (pgd, dict(steps=20, step=eps / 4, loss="ce"), "PGD-20 cross-entropy, step ε/4"),
        "pgd100-ce": (pgd, dict(steps=100, step=eps * madry, loss="ce"), "PGD-100 cross-entropy, step 2.5ε/100"),
        "pgd100-cw": (pgd, dict(steps=100, step=eps * madry, loss="cw"), "PGD-100 CW margin, step 2.5ε/100"),
    }


def self_check(name, adv, x, eps):
    dist = (adv - x).abs().amax().item() if adv.numel() else 0.0
    lo, hi = adv.min().item(), adv.max().item()
    if dist > eps + SELF_CHECK_SLACK:
        raise SelfCheckError(f"{name}: ‖adv − x‖∞ = {dist:.8f} exceeds ε = {eps} (+{SELF_CHECK_SLACK})")
    if lo < 0 or hi > 1:
        raise SelfCheckError(f"{name}: adversarial pixels span [{lo}, {hi}], outside [0, 1]")
    return dist


# ───────────────────────────── main ─────────────────────────────


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="torch_attack.py",
        description="Rebuild a tfjs layers model in PyTorch and attack it on Fashion-MNIST test images.",
    )
    p.add_argument("--model", required=True, help="folder with model.json (or the model.json path)")
    p.add_argument("--eps", type=float, default=0.1, help="L∞ budget in pixel units (default 0.1)")
    p.add_argument("--images", type=int, default=1000, help="first N test images (default 1000)")
    p.add_argument("--restarts", type=int, default=1, help="random starts per PGD attack (default 1)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--batch", type=int, default=250, help="images per batch (default 250)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random starts (default 0)")
    p.add_argument("--attacks", default="fgsm,pgd20-ce,pgd100-ce,pgd100-cw", help="comma-separated subset of the suite")
    p.add_argument("--final-only", action="store_true", help="count only PGD's last iterate, as tempered does")
    p.add_argument("--verify", metavar="LOGITS_JSON", help="tfjs logits of the first images to compare with")
    p.add_argument("--tolerance", type=float, default=1e-4, help="largest |Δ logit| --verify accepts (default 1e-4)")
    p.add_argument("--self-check", action="store_true", help="assert adv ∈ [0,1] and ‖adv − x‖∞ ≤ ε + 1e-6")
    p.add_argument("--data-dir", default=FASHION_MNIST_DIR, help=f"IDX folder (default {FASHION_MNIST_DIR})")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last stdout line")
    a = p.parse_args(argv)
    suite = attack_suite(1.0)
    a.attack_names = [n.strip() for n in a.attacks.split(",") if n.strip()]
    bad = [n for n in a.attack_names if n not in suite]
    if bad:
        p.error(f"unknown attack(s) {', '.join(bad)}; the suite has {', '.join(suite)}")
    if not (0 < a.eps <= 1):
        p.error(f"--eps must be in (0, 1], got {a.eps}")
    for name in ("images", "restarts", "threads", "batch"):
        if getattr(a, name) < 1:
            p.error(f"--{name} must be at least 1, got {getattr(a, name)}")
    return a


def verify(model, x, y, path, tolerance, log):
    try:
        with open(path, "r", encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: cannot read the tfjs logits ({err})") from None
    try:
        ref = torch.tensor(doc["logits"] if isinstance(doc, dict) else doc, dtype=torch.float32)
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(f"{path}: expected {{\"logits\": [[...], ...]}} ({type(err).__name__}: {err})") from None
    k = min(ref.shape[0], x.shape[0])
    if ref.dim() != 2 or k == 0 or ref.shape[1] != model.num_classes:
        raise InputError(f"{path}: logits of shape {list(ref.shape)}; expected [n, {model.num_classes}]")
    if isinstance(doc, dict) and doc.get("labels") is not None:
        labels = torch.tensor(doc["labels"][:k], dtype=torch.int64)
        if not torch.equal(labels, y[:k]):
            raise InputError(f"{path}: its labels differ from the first {k} test labels: not the same images")
    with torch.no_grad():
        z = torch.cat([model(x[i : i + 250]) for i in range(0, k, 250)])
    diff = (z - ref[:k]).abs().amax().item()
    agree = (z.argmax(1) == ref[:k].argmax(1)).float().mean().item()
    largest = ref[:k].abs().max().item()
    log(
        f"verify: max |Δ logit| vs tfjs = {diff:.3g} over {k} images (largest |logit| {largest:.3g}, "
        f"argmax agrees on {100 * agree:.1f}%; tolerance {tolerance:g})"
    )
    return diff, k


def run(a):
    t0 = time.perf_counter()
    torch.set_num_threads(a.threads)
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    model = load_tfjs_model(a.model)
    x, y, source = load_test_images(a.data_dir, a.images)
    if tuple(x.shape[1:]) != tuple(model.input_shape):
        want, have = list(model.input_shape), list(x.shape[1:])
        raise InputError(f"{a.model}: the model takes {want} images but {source} holds {have}")
    log(f"model {a.model}: {model.description} ({model.head}); {a.images} images, ε={a.eps}, "
        f"{a.restarts} restart(s), torch {torch.__version__} on {torch.get_num_threads()} thread(s)")
    result = {}
    if a.verify:
        diff, k = verify(model, x, y, a.verify, a.tolerance, log)
        result["logitsMaxAbsDiff"] = diff
        result["verifiedImages"] = k
        if not diff <= a.tolerance:
            raise VerifyError(f"{a.model}: PyTorch logits differ from {a.verify} by {diff:.3g} > {a.tolerance:g}")

    suite = attack_suite(a.eps)
    gen = torch.Generator().manual_seed(a.seed)
    clean_ok = torch.zeros(0, dtype=torch.bool)
    robust = {name: torch.zeros(0, dtype=torch.bool) for name in a.attack_names}
    max_dist = 0.0
    for start in range(0, a.images, a.batch):
        xb, yb = x[start : start + a.batch], y[start : start + a.batch]
        lo, hi = (xb - a.eps).clamp(min=0), (xb + a.eps).clamp(max=1)
        with torch.no_grad():
            ok = model(xb).argmax(1) == yb
        clean_ok = torch.cat([clean_ok, ok])
        # Misclassified clean images count as not robust: only the others are attacked.
        xo, yo, lo, hi = xb[ok], yb[ok], lo[ok], hi[ok]
        for name in a.attack_names:
            fn, kw, _ = suite[name]
            survived = torch.zeros_like(ok)
            if xo.shape[0] > 0:
                opts = dict(restarts=a.restarts, gen=gen, any_iterate=not a.final_only, **kw)
                adv, fooled = fn(model, xo, yo, a.eps, lo, hi, **opts)
                if a.self_check:
                    max_dist = max(max_dist, self_check(name, adv, xo, a.eps))
                survived[ok] = ~fooled
            robust[name] = torch.cat([robust[name], survived])
        done = min(start + a.batch, a.images)
        so_far = ", ".join(f"{n} {robust[n].float().mean().item():.3f}" for n in a.attack_names)
        log(f"  {done}/{a.images} images: clean {clean_ok.float().mean().item():.3f}, {so_far} "
            f"({time.perf_counter() - t0:.0f} s)")
    worst = clean_ok.clone()
    for name in a.attack_names:
        worst &= robust[name]
    acc = lambda t: round(t.float().mean().item(), 6)  # noqa: E731
    result = {
        "model": a.model,
        "images": a.images,
        "eps": a.eps,
        "clean": acc(clean_ok),
        "attacks": {name: acc(robust[name]) for name in a.attack_names},
        "worstCase": acc(worst),
        "seconds": round(time.perf_counter() - t0, 1),
        **result,
        "restarts": a.restarts,
        "finalIterateOnly": a.final_only,
        "threads": torch.get_num_threads(),
        "head": model.head,
        "torch": torch.__version__,
    }
    if a.self_check:
        result["selfCheck"] = {"maxLinfDistance": max_dist}
    return result, suite


class VerifyError(Exception):
    """The PyTorch logits differ from the tfjs ones."""


def main(argv=None):
    a = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        result, suite = run(a)
    except InputError as err:
        print(f"torch_attack: {err}", file=sys.stderr)
        return 1
    except VerifyError as err:
        print(f"torch_attack: {err}", file=sys.stderr)
        return 4
    except SelfCheckError as err:
        print(f"torch_attack: self-check failed: {err}", file=sys.stderr)
        return 5
    if a.json:
        print(json.dumps(result, ensure_ascii=False), flush=True)
        return 0
    print(f"{result['model']}: {result['images']} test images, ε={result['eps']}, {result['restarts']} restart(s), "
          f"{result['seconds']} s")
    if "logitsMaxAbsDiff" in result:
        print(f"  tfjs logits reproduced to {result['logitsMaxAbsDiff']:.2g} on {result['verifiedImages']} images")
    print(f"  {'clean':<11} {100 * result['clean']:5.1f}%")
    for name, value in result["attacks"].items():
        print(f"  {name:<11} {100 * value:5.1f}%   {suite[name][2]}")
    print(f"  {'worst case':<11} {100 * result['worstCase']:5.1f}%   correct under every attack above")
    return 0


if __name__ == "__main__":
    sys.exit(main())
