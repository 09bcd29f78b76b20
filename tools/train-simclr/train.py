#!/usr/bin/python3
"""SimCLR-style contrastive training of a small CNN encoder on Fashion-MNIST.

Trains on the Fashion-MNIST *training* images only; labels are never used for
training. Labels are used only afterwards, for evaluation (linear probe and
kNN) and for choosing which 128-d output to export (chosen on a split of the
training set, never on the test set).

Exported ONNX contract (the TypeScript side depends on it):
  input  "pixels"    float32 [N, 784]  raw pixel value / 255, row-major 28x28
  output "embedding" float32 [N, DIM]  L2-normalised rows (DIM = 128)
Mean/std normalisation and the reshape to [N,1,28,28] happen inside the model.

Run with Debian's python (torch from python3-torch), e.g.
  /usr/bin/python3 tools/train-simclr/train.py --epochs 12 --batch-size 512 --seed 1234
"""
import argparse
import gzip
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

FMNIST_MEAN = 0.2860
FMNIST_STD = 0.3530
EMB_DIM = 128


# --------------------------------------------------------------------------- data
def _open_idx(data_dir, base):
    for name in (base, base + ".gz"):
        p = os.path.join(data_dir, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(f"{base}(.gz) not found in {data_dir}")


def load_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    magic = int.from_bytes(raw[0:4], "big")
    ndim = magic & 0xFF
    assert (magic >> 8) == 0x08, f"unexpected IDX dtype in {path}"
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    return data.reshape(dims)


def load_split(data_dir, split):
    prefix = "train" if split == "train" else "t10k"
    x = load_idx(_open_idx(data_dir, f"{prefix}-images-idx3-ubyte"))
    y = load_idx(_open_idx(data_dir, f"{prefix}-labels-idx1-ubyte"))
    return torch.from_numpy(x.copy()), torch.from_numpy(y.astype(np.int64))


# --------------------------------------------------------------------------- augmentations (plain torch, on batches)
def augment(x):
    """x: float [B,1,28,28] in [0,1] -> one random view per image, same shape/range."""
    b = x.shape[0]
    dev = x.device
    # random resized crop (area 0.35..1, aspect 3/4..4/3) + horizontal flip via affine_grid
    area = torch.empty(b, device=dev).uniform_(0.35, 1.0)
    logr = torch.empty(b, device=dev).uniform_(math.log(3 / 4), math.log(4 / 3))
    ratio = torch.exp(logr)
    sx = torch.sqrt(area * ratio).clamp(max=1.0)
    sy = torch.sqrt(area / ratio).clamp(max=1.0)
    tx = (torch.rand(b, device=dev) * 2 - 1) * (1 - sx)
    ty = (torch.rand(b, device=dev) * 2 - 1) * (1 - sy)
    flip = torch.where(torch.rand(b, device=dev) < 0.5, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3, device=dev)
    theta[:, 0, 0] = sx * flip
    theta[:, 0, 2] = tx
    theta[:, 1, 1] = sy
    theta[:, 1, 2] = ty
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    # brightness / contrast jitter (p=0.8)
    apply = (torch.rand(b, 1, 1, 1, device=dev) < 0.8).float()
    bright = torch.empty(b, 1, 1, 1, device=dev).uniform_(0.6, 1.4)
    contrast = torch.empty(b, 1, 1, 1, device=dev).uniform_(0.6, 1.4)
    mean = x.mean(dim=(2, 3), keepdim=True)
    xj = ((x * bright - mean * bright) * contrast + mean * bright).clamp(0, 1)
    x = apply * xj + (1 - apply) * x

    # gaussian noise (p=0.5, sigma up to 0.08)
    apply = (torch.rand(b, 1, 1, 1, device=dev) < 0.5).float()
    sigma = torch.empty(b, 1, 1, 1, device=dev).uniform_(0.0, 0.08)
    x = (x + apply * sigma * torch.randn_like(x)).clamp(0, 1)

    # random erasing (p=0.3, area 2..15%, aspect 0.3..3.3), filled with zeros
    apply = torch.rand(b, device=dev) < 0.3
    ea = torch.empty(b, device=dev).uniform_(0.02, 0.15) * 28 * 28
    er = torch.exp(torch.empty(b, device=dev).uniform_(math.log(0.3), math.log(3.3)))
    eh = torch.sqrt(ea * er).clamp(1, 27)
    ew = torch.sqrt(ea / er).clamp(1, 27)
    y0 = torch.rand(b, device=dev) * (28 - eh)
    x0 = torch.rand(b, device=dev) * (28 - ew)
    coords = torch.arange(28, device=dev, dtype=torch.float32)
    in_y = (coords[None, :] >= y0[:, None]) & (coords[None, :] < (y0 + eh)[:, None])
    in_x = (coords[None, :] >= x0[:, None]) & (coords[None, :] < (x0 + ew)[:, None])
    mask = in_y[:, :, None] & in_x[:, None, :] & apply[:, None, None]
    x = x.masked_fill(mask[:, None], 0.0)
    return x


# --------------------------------------------------------------------------- model
def conv_bn_relu(cin, cout):
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class Backbone(nn.Module):
    """5 conv layers with BatchNorm, 28->14->7->4 spatial, global average pool -> 256-d."""

    out_dim = 256

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            *conv_bn_relu(1, 24), nn.MaxPool2d(2),            # 28 -> 14
            *conv_bn_relu(24, 48), nn.MaxPool2d(2),           # 14 -> 7
            *conv_bn_relu(48, 96), nn.MaxPool2d(2, ceil_mode=True),  # 7 -> 4
            *conv_bn_relu(96, 192),
            *conv_bn_relu(192, 256),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )

    def forward(self, x):  # x: [B,1,28,28], already mean/std normalised
        return self.features(x)


class ProjectionHead(nn.Module):
    def __init__(self, din=256, dhid=256, dout=EMB_DIM):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(din, dhid, bias=False), nn.BatchNorm1d(dhid), nn.ReLU(inplace=True),
                                 nn.Linear(dhid, dout))

    def forward(self, h):
        return self.net(h)


def normalize_pixels(x01):
    return (x01 - FMNIST_MEAN) / FMNIST_STD


class ExportModel(nn.Module):
    """pixels [N,784] in [0,1] -> L2-normalised embedding [N,DIM]."""

    def __init__(self, backbone, head=None, proj_weight=None, proj_bias=None):
        super().__init__()
        self.backbone = backbone
        self.head = head  # if set: use projection-head output
        if head is None:
            self.proj = nn.Linear(proj_weight.shape[1], proj_weight.shape[0])
            with torch.no_grad():
                self.proj.weight.copy_(proj_weight)
                self.proj.bias.copy_(proj_bias)

    def forward(self, pixels):
        x = pixels.reshape(-1, 1, 28, 28)
        x = (x - FMNIST_MEAN) / FMNIST_STD
        h = self.backbone(x)
        e = self.head(h) if self.head is not None else self.proj(h)
        n = torch.sqrt(torch.sum(e * e, dim=1, keepdim=True)).clamp_min(1e-12)
        return e / n


# --------------------------------------------------------------------------- loss
def nt_xent(z1, z2, temperature):
    z = F.normalize(torch.cat([z1, z2], dim=0), dim=1)
    n = z1.shape[0]
    sim = z @ z.t() / temperature
    sim.fill_diagonal_(float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, targets)


# --------------------------------------------------------------------------- evaluation
@torch.no_grad()
def embed(backbone, head, x_u8, bs=1000):
    backbone.eval()
    head.eval()
    hs, zs = [], []
    for i in range(0, x_u8.shape[0], bs):
        x = x_u8[i:i + bs].float().div_(255.0).unsqueeze(1)
        x = normalize_pixels(x).contiguous(memory_format=torch.channels_last)
        h = backbone(x)
        hs.append(h)
        zs.append(head(h))
    return torch.cat(hs), torch.cat(zs)


def linear_probe(ftr, ytr, fte, yte, steps=300, wd=1e-4):
    """Multinomial logistic regression on frozen features, full-batch LBFGS."""
    mu, sd = ftr.mean(0, keepdim=True), ftr.std(0, keepdim=True) + 1e-6
    a, b = (ftr - mu) / sd, (fte - mu) / sd
    ncls = int(ytr.max()) + 1
    w = torch.zeros(a.shape[1], ncls, requires_grad=True)
    bias = torch.zeros(ncls, requires_grad=True)
    opt = torch.optim.LBFGS([w, bias], lr=1, max_iter=steps, history_size=20, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-9, tolerance_change=1e-12)

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(a @ w + bias, ytr) + wd * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        tr_acc = ((a @ w + bias).argmax(1) == ytr).float().mean().item()
        te_acc = ((b @ w + bias).argmax(1) == yte).float().mean().item()
    return tr_acc, te_acc


@torch.no_grad()
def knn_accuracy(ftr, ytr, fte, yte, k=20, bs=1000):
    """k-NN with cosine similarity, plain majority vote (ties -> lowest class id)."""
    a = F.normalize(ftr, dim=1)
    b = F.normalize(fte, dim=1)
    ncls = int(ytr.max()) + 1
    correct = 0
    for i in range(0, b.shape[0], bs):
        sim = b[i:i + bs] @ a.t()
        idx = sim.topk(k, dim=1).indices
        votes = F.one_hot(ytr[idx], ncls).sum(1)
        correct += (votes.argmax(1) == yte[i:i + bs]).sum().item()
    return correct / b.shape[0]


def pca_projection(h, dim, whiten=False):
    """Returns (W [dim, D], b [dim]) such that W h + b = top-`dim` PCA coordinates of h
    (divided by the per-component std if whiten=True)."""
    mu = h.mean(0).double()
    c = h.double() - mu
    cov = c.t() @ c / (c.shape[0] - 1)
    evals, evecs = torch.linalg.eigh(cov)
    order = torch.argsort(evals, descending=True)[:dim]
    comps = evecs[:, order].t()  # [dim, D]
    if whiten:
        comps = comps / evals[order].clamp_min(1e-12).sqrt()[:, None]
    explained = (evals[order].sum() / evals.sum()).item()
    return comps.float(), (-(comps @ mu)).float(), explained


def l2n(x):
    return F.normalize(x, dim=1)


# --------------------------------------------------------------------------- main
def set_seed(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--out", default="models/fmnist-simclr.onnx", help="ONNX path; manifest goes next to it (.json)")
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--temperature", type=float, default=0.5)
    ap.add_argument("--subset", type=int, default=0, help="train on the first N training images only (sanity runs)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ckpt", default="/tmp/simclr/ckpt.pt", help="where to save the trained weights")
    ap.add_argument("--from-ckpt", action="store_true", help="skip training, load --ckpt, evaluate and export")
    ap.add_argument("--ref-out", default="/tmp/simclr/ref.json",
                    help="writes 3 test inputs + torch outputs here, for verify_onnx.cjs")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    set_seed(args.seed)
    print(f"torch {torch.__version__}, numpy {np.__version__}, threads {torch.get_num_threads()}, args {vars(args)}",
          flush=True)

    xtr, ytr = load_split(args.data_dir, "train")
    xte, yte = load_split(args.data_dir, "test")
    print(f"train {tuple(xtr.shape)}, test {tuple(xte.shape)}", flush=True)
    xtrain = xtr[:args.subset] if args.subset > 0 else xtr  # labels are NOT used for training

    backbone = Backbone().to(memory_format=torch.channels_last)
    head = ProjectionHead()
    nparams_b = sum(p.numel() for p in backbone.parameters())
    nparams_h = sum(p.numel() for p in head.parameters())
    print(f"backbone params {nparams_b}, projection head params {nparams_h}", flush=True)

    t_start = time.time()
    train_time = 0.0
    if args.from_ckpt:
        st = torch.load(args.ckpt)
        backbone.load_state_dict(st["backbone"])
        head.load_state_dict(st["head"])
        train_time = st.get("train_time", float("nan"))
        print(f"loaded {args.ckpt} (training wall time recorded there: {train_time:.1f}s)", flush=True)
    else:
        params = list(backbone.parameters()) + list(head.parameters())
        opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-4)
        n = xtrain.shape[0]
        steps_per_epoch = n // args.batch_size  # drop last partial batch
        total_steps = steps_per_epoch * args.epochs
        warmup = min(200, max(1, total_steps // 10))

        def lr_at(step):
            if step < warmup:
                return args.lr * (step + 1) / warmup
            p = (step - warmup) / max(1, total_steps - warmup)
            return args.lr * 0.5 * (1 + math.cos(math.pi * p))

        step = 0
        for epoch in range(1, args.epochs + 1):
            backbone.train()
            head.train()
            t0 = time.time()
            perm = torch.randperm(n)
            tot, cnt = 0.0, 0
            for it in range(steps_per_epoch):
                idx = perm[it * args.batch_size:(it + 1) * args.batch_size]
                x = xtrain[idx].float().div_(255.0).unsqueeze(1)
                v1 = normalize_pixels(augment(x)).contiguous(memory_format=torch.channels_last)
                v2 = normalize_pixels(augment(x)).contiguous(memory_format=torch.channels_last)
                for g in opt.param_groups:
                    g["lr"] = lr_at(step)
                z = head(backbone(torch.cat([v1, v2])))
                loss = nt_xent(z[:len(idx)], z[len(idx):], args.temperature)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                tot += loss.item()
                cnt += 1
                if (it + 1) % 20 == 0:
                    print(f"  epoch {epoch} step {it + 1}/{steps_per_epoch} loss {tot / cnt:.4f} "
                          f"({time.time() - t0:.0f}s)", flush=True)
            dt = time.time() - t0
            print(f"epoch {epoch}/{args.epochs} loss {tot / cnt:.4f} lr {lr_at(step - 1):.2e} "
                  f"time {dt:.1f}s (elapsed {time.time() - t_start:.1f}s)", flush=True)
        train_time = time.time() - t_start
        print(f"TOTAL training wall time {train_time:.1f}s ({train_time / 60:.1f} min)", flush=True)
        os.makedirs(os.path.dirname(os.path.abspath(args.ckpt)), exist_ok=True)
        torch.save({"backbone": backbone.state_dict(), "head": head.state_dict(), "train_time": train_time,
                    "args": vars(args)}, args.ckpt)

    # ------------------------------------------------------------------ evaluation
    t_eval = time.time()
    htr, ztr = embed(backbone, head, xtr)
    hte, zte = embed(backbone, head, xte)
    # PCA fitted on the training images' backbone features (unsupervised)
    W, b, explained = pca_projection(htr, EMB_DIM)
    Wwh, bwh, _ = pca_projection(htr, EMB_DIM, whiten=True)
    print(f"PCA {htr.shape[1]}->{EMB_DIM} keeps {explained * 100:.1f}% of backbone feature variance", flush=True)
    projections = {"backbone-pca128": (W, b), "backbone-pca128-whitened": (Wwh, bwh)}
    cands = {name: (l2n(htr @ w.t() + bi), l2n(hte @ w.t() + bi)) for name, (w, bi) in projections.items()}
    cands["projection-head"] = (l2n(ztr), l2n(zte))
    # choose the exported output on a train/val split of the TRAINING set (test set not used for the choice)
    nval = 10000
    scores = {}
    for name, (ftr, _) in cands.items():
        _, val_acc = linear_probe(ftr[:-nval], ytr[:-nval], ftr[-nval:], ytr[-nval:])
        scores[name] = val_acc
        print(f"[selection] {name}: linear probe on train[:50k] -> train[50k:] acc {val_acc:.4f}", flush=True)
    chosen = max(scores, key=scores.get)
    print(f"[selection] chosen output: {chosen}", flush=True)
    results = {}
    for name, (ftr, fte) in cands.items():
        tr_acc, te_acc = linear_probe(ftr, ytr, fte, yte)
        knn = knn_accuracy(ftr, ytr, fte, yte, k=20)
        results[name] = {"linear_probe_train": tr_acc, "linear_probe_test": te_acc, "knn20_test": knn}
        print(f"[test] {name}: linear probe train acc {tr_acc:.4f} TEST acc {te_acc:.4f} | "
              f"kNN(k=20, cosine) TEST acc {knn:.4f}", flush=True)
    # reference: raw 256-d backbone features (not exported; dim > 128)
    tr_acc, te_acc = linear_probe(htr, ytr, hte, yte)
    print(f"[test] (reference, not exported) raw backbone 256-d: linear probe TEST acc {te_acc:.4f} | "
          f"kNN TEST acc {knn_accuracy(htr, ytr, hte, yte):.4f}", flush=True)
    print(f"evaluation time {time.time() - t_eval:.1f}s", flush=True)

    # ------------------------------------------------------------------ export
    backbone_c = Backbone()
    backbone_c.load_state_dict(backbone.state_dict())
    head_c = ProjectionHead()
    head_c.load_state_dict(head.state_dict())
    if chosen == "projection-head":
        model = ExportModel(backbone_c, head=head_c)
    else:
        model = ExportModel(backbone_c, proj_weight=projections[chosen][0], proj_bias=projections[chosen][1])
    model.eval()

    out = args.out
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    dummy = torch.rand(2, 784)
    torch.onnx.export(model, (dummy,), out, input_names=["pixels"], output_names=["embedding"],
                      dynamic_axes={"pixels": {0: "N"}, "embedding": {0: "N"}}, opset_version=13,
                      do_constant_folding=True)
    import onnx
    m = onnx.load(out)
    onnx.checker.check_model(m)
    size = os.path.getsize(out)
    print(f"exported {out} ({size / 1e6:.2f} MB), onnx checker OK", flush=True)
    assert size <= 5 * 1024 * 1024, "model too large"

    # check the exported wrapper equals the evaluated embeddings (same test images)
    with torch.no_grad():
        pix = xte[:1000].reshape(-1, 784).float() / 255.0
        e = model(pix)
        ref = cands[chosen][1][:1000]
        print(f"export wrapper vs evaluated embedding max abs diff {(e - ref).abs().max().item():.2e}; "
              f"row norms {e.norm(dim=1).min().item():.6f}..{e.norm(dim=1).max().item():.6f}", flush=True)
        pix3 = xte[:3].reshape(-1, 784).float() / 255.0
        e3 = model(pix3)
    os.makedirs(os.path.dirname(os.path.abspath(args.ref_out)), exist_ok=True)
    with open(args.ref_out, "w") as f:
        json.dump({"pixels": pix3.tolist(), "embedding": e3.tolist(), "labels": yte[:3].tolist()}, f)
    print(f"wrote torch reference batch of 3 to {args.ref_out}", flush=True)

    manifest = {
        "name": "fmnist-simclr",
        "version": "1",
        "input_kind": "features",
        "input_name": "pixels",
        "input_dim": 784,
        "output_name": "embedding",
        "dim": EMB_DIM,
        "normalized": True,
        "value_range": [0, 1],
        "preprocess": "pixels/255",
        "trained_on": "fashion-mnist train (60000, labels unused)" if not args.subset
        else f"fashion-mnist train (first {args.subset}, labels unused)",
        "seed": args.seed,
        "epochs": args.epochs,
    }
    mpath = os.path.splitext(out)[0] + ".json"
    with open(mpath, "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    print(f"wrote manifest {mpath}", flush=True)
    print("SUMMARY " + json.dumps({"chosen": chosen, "train_wall_time_s": round(train_time, 1),
                                   "epochs": args.epochs, "batch_size": args.batch_size, "seed": args.seed,
                                   "temperature": args.temperature, "results": results}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
