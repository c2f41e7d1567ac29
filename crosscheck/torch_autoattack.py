"""Independent AutoAttack check: a TensorFlow.js layers model rebuilt in PyTorch, attacked with torchattacks.

Rebuilds the model with crosscheck/torch_attack.py's converter (optionally checked against tfjs logits with --verify),
then runs AutoAttack's standard suite with torchattacks' implementation at the reference budgets, set explicitly
(torchattacks' own AutoAttack class defaults to 10 iterations, ten times weaker than the reference):

  apgd-ce   APGD on the cross-entropy, 100 iterations, 1 restart
  apgd-t    APGD-T, targeted DLR over the 9 runner-up classes, 100 iterations each
  fab-t     FAB-T, targeted FAB over the 9 runner-up classes, 100 iterations each
  square    Square Attack, 5000 queries, p_init 0.8, margin loss

in sequence, each on the points every earlier attack failed to break, as AutoAttack does. An attack's figure is the
robust accuracy after it (cumulative), so the last one is the per-example worst case over the suite. Every
adversarial image is checked to lie in [0,1] and within ε + 1e-6 of its clean image before it counts.

Usage:
  crosscheck/.venv/bin/python crosscheck/torch_autoattack.py --model DIR [--eps 0.1] [--norm Linf|L2] [--images 1000]
      [--threads 1] [--batch 500] [--seed 0] [--steps 100] [--targets 9] [--queries 5000]
      [--attacks apgd-ce,apgd-t,fab-t,square] [--verify LOGITS.json [--tolerance 1e-4]] [--data-dir DIR] [--json]

Set up the interpreter once (Debian's python3-torch provides torch 1.13; torchattacks would pull a newer torch, so
its other dependencies are installed without it):
  /usr/bin/python3 -m venv --system-site-packages crosscheck/.venv
  crosscheck/.venv/bin/pip install --no-deps -r crosscheck/requirements.txt

Progress goes to stderr; with --json the last stdout line is
{"clean","apgd-ce","apgd-t","fab-t","square","worstCase","images","seconds","secondsPer1000","cpuSeconds", ...}.

Exit codes: 0 done; 1 unreadable or unsupported model or data; 2 bad arguments; 3 skipped: torch or torchattacks
not importable (with --json a {"skipped": reason} line); 4 --verify mismatch; 5 an adversarial image out of bounds.
"""

import argparse
import json
import os
import sys
import time

SUITE = ("apgd-ce", "apgd-t", "fab-t", "square")
SLACK = 1e-6


def skip(reason, as_json):
    print(f"torch_autoattack: skipped: {reason}", file=sys.stderr)
    if as_json:
        print(json.dumps({"skipped": reason}), flush=True)
    return 3


def parse_args(argv):
    p = argparse.ArgumentParser(description="AutoAttack (torchattacks) on a tfjs layers model rebuilt in PyTorch")
    p.add_argument("--model", required=True, help="folder with model.json (or the model.json path)")
    p.add_argument("--eps", type=float, default=0.1, help="radius in pixel units (default 0.1)")
    p.add_argument("--norm", choices=("Linf", "L2"), default="Linf", help="threat model (default Linf)")
    p.add_argument("--images", type=int, default=1000, help="first N test images (default 1000)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--batch", type=int, default=500, help="images per batch (default 500)")
    p.add_argument("--seed", type=int, default=0, help="seed of every attack (default 0)")
    p.add_argument("--steps", type=int, default=100, help="APGD, APGD-T and FAB-T iterations (default 100)")
    p.add_argument("--targets", type=int, default=9, help="target classes of APGD-T and FAB-T (default 9)")
    p.add_argument("--queries", type=int, default=5000, help="Square queries (default 5000)")
    p.add_argument("--attacks", default=",".join(SUITE), help="comma-separated subset of the suite, in suite order")
    p.add_argument("--verify", metavar="LOGITS_JSON", help="tfjs logits (crosscheck/tfjs-logits.ts) to compare with")
    p.add_argument("--tolerance", type=float, default=1e-4, help="largest |Δ logit| --verify accepts (default 1e-4)")
    p.add_argument("--data-dir", default=None, help="Fashion-MNIST IDX folder (default Debian's)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last stdout line")
    a = p.parse_args(argv)
    a.attack_names = [n for n in a.attacks.split(",") if n]
    unknown = [n for n in a.attack_names if n not in SUITE]
    if unknown or not a.attack_names:
        p.error(f"--attacks must name some of {', '.join(SUITE)}, got {a.attacks!r}")
    a.attack_names = [n for n in SUITE if n in a.attack_names]
    if not 0 < a.eps <= (1 if a.norm == "Linf" else 28):
        p.error(f"--eps must be in (0, 1] for Linf (a positive radius for L2), got {a.eps}")
    for name in ("images", "threads", "batch", "steps", "targets", "queries"):
        if getattr(a, name) < 1:
            p.error(f"--{name} must be at least 1, got {getattr(a, name)}")
    return a


def build_attacks(torch, torchattacks, model, a, num_classes):
    """The standard suite with every budget explicit. torchattacks counts targets as n_classes − 1."""
    if a.targets > num_classes - 1:
        raise ValueError(f"--targets {a.targets} exceeds the {num_classes - 1} classes other than the label")
    common = dict(norm=a.norm, eps=a.eps, seed=a.seed)
    attacks = {
        "apgd-ce": torchattacks.APGD(model, loss="ce", steps=a.steps, n_restarts=1, **common),
        "apgd-t": torchattacks.APGDT(model, steps=a.steps, n_restarts=1, n_classes=num_classes, **common),
        "fab-t": torchattacks.FAB(
            model, steps=a.steps, n_restarts=1, multi_targeted=True, n_classes=num_classes, **common
        ),
        "square": torchattacks.Square(model, n_queries=a.queries, n_restarts=1, p_init=0.8, loss="margin", **common),
    }
    # n_target_classes = n_classes − 1 in torchattacks; narrow it to --targets (the 2nd..(targets+1)th logits).
    attacks["apgd-t"].n_target_classes = a.targets
    attacks["fab-t"].n_target_classes = a.targets
    return {name: attacks[name] for name in a.attack_names}


def distance(torch, adv, x, norm):
    diff = (adv - x).reshape(x.shape[0], -1)
    return diff.abs().amax(1) if norm == "Linf" else diff.pow(2).sum(1).sqrt()


def run(a, torch, torchattacks, ta):
    t0 = time.perf_counter()
    c0 = time.process_time()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    tfjs_model = ta.load_tfjs_model(a.model)
    x, y, source = ta.load_test_images(a.data_dir or ta.FASHION_MNIST_DIR, a.images)
    if tuple(x.shape[1:]) != tuple(tfjs_model.input_shape):
        want, have = list(tfjs_model.input_shape), list(x.shape[1:])
        raise ta.InputError(f"{a.model}: the model takes {want} images but {source} holds {have}")
    result = {}
    if a.verify:
        diff, k = ta.verify(tfjs_model, x, y, a.verify, a.tolerance, log)
        result.update(logitsMaxAbsDiff=diff, verifiedImages=k)
        if not diff <= a.tolerance:
            raise ta.VerifyError(f"{a.model}: PyTorch logits differ from {a.verify} by {diff:.3g} > {a.tolerance:g}")

    class Nchw(torch.nn.Module):
        """torchattacks reads images as NCHW (Square's windows, FAB's shapes); the rebuilt model takes NHWC."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, images):
            return self.inner(images.permute(0, 2, 3, 1))

    model = Nchw(tfjs_model).eval()
    num_classes = tfjs_model.num_classes
    attacks = build_attacks(torch, torchattacks, model, a, num_classes)
    log(
        f"model {a.model}: {tfjs_model.description} ({tfjs_model.head}); {a.images} images, {a.norm} ε={a.eps}, "
        f"steps {a.steps}, targets {a.targets}, queries {a.queries}; torchattacks {torchattacks.__version__}, "
        f"torch {torch.__version__} on {torch.get_num_threads()} thread(s)"
    )
    xs = x.permute(0, 3, 1, 2).contiguous()
    clean = torch.zeros(0, dtype=torch.bool)
    after = {name: torch.zeros(0, dtype=torch.bool) for name in attacks}
    seconds = {name: 0.0 for name in attacks}
    max_dist = 0.0
    for start in range(0, a.images, a.batch):
        xb, yb = xs[start : start + a.batch], y[start : start + a.batch]
        with torch.no_grad():
            robust = model(xb).argmax(1) == yb
        clean = torch.cat([clean, robust])
        for name, attack in attacks.items():
            idx = robust.nonzero().flatten()
            if idx.numel() > 0:
                t1 = time.perf_counter()
                adv = attack(xb[idx], yb[idx]).detach()
                seconds[name] += time.perf_counter() - t1
                dist = distance(torch, adv, xb[idx], a.norm)
                lo, hi = adv.min().item(), adv.max().item()
                if dist.max().item() > a.eps + SLACK or lo < 0 or hi > 1:
                    raise BoundsError(
                        f"{name}: adversarial images at distance {dist.max().item():.6g} (ε {a.eps}), "
                        f"range [{lo}, {hi}]"
                    )
                max_dist = max(max_dist, dist.max().item())
                with torch.no_grad():
                    still = model(adv).argmax(1) == yb[idx]
                robust = robust.clone()
                robust[idx] = still
            after[name] = torch.cat([after[name], robust])
        done = min(start + a.batch, a.images)
        so_far = ", ".join(f"{n} {after[n].float().mean().item():.3f}" for n in attacks)
        took = time.perf_counter() - t0
        log(f"  {done}/{a.images}: clean {clean.float().mean().item():.3f}, {so_far} ({took:.0f} s)")
    acc = lambda t: round(t.float().mean().item(), 6)  # noqa: E731
    last = list(attacks)[-1]
    total = time.perf_counter() - t0
    return {
        "clean": acc(clean),
        **{name: acc(after[name]) for name in attacks},
        "worstCase": acc(after[last]),
        "images": a.images,
        "seconds": round(total, 1),
        "secondsPer1000": round(total * 1000 / a.images, 1),
        # CPU time of this process: on a shared machine a steadier measure than the wall clock.
        "cpuSeconds": round(time.process_time() - c0, 1),
        "attackSeconds": {name: round(s, 1) for name, s in seconds.items()},
        "eps": a.eps,
        "norm": a.norm,
        "steps": a.steps,
        "targets": a.targets,
        "queries": a.queries,
        "maxDistance": max_dist,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "torchattacks": torchattacks.__version__,
        "model": a.model,
        **result,
    }


class BoundsError(Exception):
    """An adversarial image outside [0,1] or outside the ε-ball."""


def main(argv=None):
    a = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        import torch
    except ImportError as err:
        return skip(f"torch not importable from {sys.executable} ({err})", a.json)
    try:
        import torchattacks
    except ImportError as err:
        return skip(
            f"torchattacks not importable from {sys.executable} ({err}); see crosscheck/requirements.txt", a.json
        )
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import torch_attack as ta

    # torch_attack keeps VerifyError beside its run(); reuse it so both scripts fail the same way.
    try:
        result = run(a, torch, torchattacks, ta)
    except ta.InputError as err:
        print(f"torch_autoattack: {err}", file=sys.stderr)
        return 1
    except ValueError as err:
        print(f"torch_autoattack: {err}", file=sys.stderr)
        return 2
    except ta.VerifyError as err:
        print(f"torch_autoattack: {err}", file=sys.stderr)
        return 4
    except BoundsError as err:
        print(f"torch_autoattack: {err}", file=sys.stderr)
        return 5
    if a.json:
        print(json.dumps(result, ensure_ascii=False), flush=True)
    else:
        print(f"{a.model}: {a.images} test images, {a.norm} ε={a.eps}, {result['seconds']} s")
        for key in ("clean", *a.attack_names):
            print(f"  {'after ' + key if key != 'clean' else key:<15} {100 * result[key]:5.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
