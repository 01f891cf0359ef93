"""PieAPP v0.1 — Prashnani, Cai, Mostofi, Sen, "PieAPP: perceptual image-error assessment through pairwise
preference", CVPR 2018 (arXiv:1806.02067). SPECS §13.

Reference code: prashnani/PerceptualImageError (``model/PieAPPv0pt1_PT.py``, ``test_PieAPP_PT.py``). A Siamese
per-patch network (eleven 3×3 convolutions, five max-pools) maps 64×64 patches of the distorted image A and of the
reference to multi-scale features (x3, x5, x7, x9, x11 flattened in NCHW order, 120,832 values) and coarse features
(x11, 2,048 values). Per patch: error s = a·(0.01·fc2(relu(fc1(F_ref − F_A)))) + b with (a, b) =
``ref_score_subtract``, weight w = fc2_w(relu(fc1_w(x11_ref − x11_A))) + 1e−6; the image's score is
Σ w·s / Σ w over its patches. **Lower = better** (≈0 for identical images, typically 0…5).

Input as the original: BGR in [0, 255] (RGB input is flipped here; ``data_range`` maps to 255), no normalisation.

Patch grids (``convention``):

* ``'original'`` (default): ``test_PieAPP_PT.py``'s positions. It lists row starts arange(0, H−64, stride) + [H−64]
  and column starts arange(0, **H**−64, stride) + [W−64] (its bug: rows for columns), cuts blocks of 10 starts, and
  samples each block's sub-image on its own stride grid from the block's first start; the last block's sub-image
  extends to ``W`` (its bug again, for rows too), clipped at the image. So the trailing ``H−64``/``W−64`` start only
  bounds the blocks, and the grid depends on the image's size as in the original. Where the original indexes past
  its start list (a multiple of 10 starts: an IndexError there) the block is taken as the last one.
* ``'piq'``: piq 0.8 — RGB order (no flip) and starts arange(0, H−64+1, stride) (``unfold``), grey input repeated.
* ``'pyiqa'``: pyiqa — BGR, the same ``unfold`` grid as piq.

``stride``: 27 ('sparse', the original's default) or 6 ('dense'), or any positive int. Patches go through the
network ``chunk_size`` at a time and only the two sums are kept, so memory does not grow with the image (a 4K pair
at stride 6 has 300,000 patch pairs); with a gradient requested every chunk's graph is kept for the backward.

Weights: ``PieAPPv0.1.pth`` — the official file, piq's mirror (the same tensors) or pyiqa's
``PieAPPv0.1-0937b014.pth`` — found by :mod:`turboiqa.nets.weights` (``TURBOIQA_WEIGHTS``, the torch hub cache,
pyiqa's cache, an explicit ``weights=`` path); never downloaded unless allowed.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..allocator import reuse_freed_memory
from ..nets import cached
from ..nets.runtime import conv_relu, layout, needs_grad, prepare_module
from ..nets.weights import load_state
from ..validate import as_batch, check_pair, check_reduction, reduce
from .module import check_leading_arguments

PATCH = 64
STRIDES = {"sparse": 27, "dense": 6}
BLOCK = 10  # the original's num_patches_per_dim: starts per sub-image block
WEIGHT_EPS = 1e-6
DEFAULT_CHUNK = 128


@dataclass(frozen=True)
class PieAPPConvention:
    bgr: bool  # flip RGB input to the original's OpenCV channel order
    grid: str  # 'original' | 'unfold'


PIEAPP_CONVENTIONS = {
    "original": PieAPPConvention(bgr=True, grid="original"),
    "piq": PieAPPConvention(bgr=False, grid="unfold"),
    "pyiqa": PieAPPConvention(bgr=True, grid="unfold"),
}


class PieAPPNet(nn.Module):
    """The per-patch network with the original's layer names (its checkpoints load as they are)."""

    def __init__(self, weights=None, download: bool | None = None, pretrained: bool = True):
        super().__init__()
        channels = [(3, 64), (64, 64), (64, 64), (64, 128), (128, 128), (128, 128), (128, 256), (256, 256),
                    (256, 256), (256, 512), (512, 512)]
        for i, (cin, cout) in enumerate(channels, start=1):
            setattr(self, f"conv{i}", nn.Conv2d(cin, cout, 3, padding=1))
        self.fc1_score = nn.Linear(120832, 512)
        self.fc2_score = nn.Linear(512, 1)
        self.fc1_weight = nn.Linear(2048, 512)
        self.fc2_weight = nn.Linear(512, 1)
        self.ref_score_subtract = nn.Linear(1, 1)
        if pretrained:
            self.load_state_dict(checkpoint_state(load_state("pieapp", weights, download)))
        self.requires_grad_(False)

    def stem(self, images: torch.Tensor) -> torch.Tensor:
        """relu(conv2(relu(conv1(·)))), the full-resolution layers before the first max-pool."""
        return conv_relu(self.conv2, conv_relu(self.conv1, images))

    def trunk(self, patches: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """x3, x5, x7, x9, x11 of BGR [0, 255] 64×64 patches (channels_last on the CPU)."""
        return self.tail(F.max_pool2d(self.stem(patches), 2))

    def tail(self, pooled: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """x3, x5, x7, x9, x11 from the first max-pool's output (P×64×32×32)."""
        x3 = conv_relu(self.conv3, pooled)
        x5 = conv_relu(self.conv5, F.max_pool2d(conv_relu(self.conv4, x3), 2))
        x7 = conv_relu(self.conv7, F.max_pool2d(conv_relu(self.conv6, x5), 2))
        x9 = conv_relu(self.conv9, F.max_pool2d(conv_relu(self.conv8, x7), 2))
        x11 = conv_relu(self.conv11, F.max_pool2d(conv_relu(self.conv10, x9), 2))
        return x3, x5, x7, x9, x11

    def features(self, patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(multi-scale features, coarse features) of BGR [0, 255] 64×64 patches: x3…x11 flattened in NCHW order."""
        maps = self.trunk(patches)
        return torch.cat([m.flatten(1) for m in maps], dim=1), maps[-1].flatten(1)

    def heads(self, feature_diff: torch.Tensor, coarse_diff: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-patch error s and weight w from F_ref − F_A and x11_ref − x11_A → two (P,) tensors."""
        error = self.ref_score_subtract(0.01 * self.fc2_score(F.relu(self.fc1_score(feature_diff))))
        weight = self.fc2_weight(F.relu(self.fc1_weight(coarse_diff))) + WEIGHT_EPS
        return error.reshape(-1), weight.reshape(-1)

    def errors_and_weights(self, dist: torch.Tensor, ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-patch error s and weight w of patch pairs (P×3×64×64 each) → two (P,) tensors. Differentiable."""
        f, c = self.features(torch.cat([dist, ref]))
        p = dist.shape[0]
        return self.heads(f[p:] - f[:p], c[p:] - c[:p])

    def errors_and_weights_inference(self, dist: torch.Tensor, ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`errors_and_weights` without autograd and with less memory traffic: each layer's F_ref − F_A is
        written straight into one NCHW-ordered buffer (no flatten copies of the channels_last maps, no
        120,832-wide concatenation, no second difference pass). The same products, bit-identical scores; 7 % less
        CPU time per chunk (bench/README.md, PieAPP)."""
        return self.heads_of_maps(self.trunk(torch.cat([dist, ref])))

    def errors_and_weights_pooled(self, pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """No-grad error and weight from the first max-pool's output of P distorted then P reference patches
        (2P×64×32×32): the per-chunk network call of the shared-stem path (:func:`shared_stem_chunks`)."""
        return self.heads_of_maps(self.tail(pooled))

    def heads_of_maps(self, maps: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        """Heads of trunk maps of P distorted then P reference patches, F_ref − F_A written into one buffer."""
        p = maps[0].shape[0] // 2
        diff = maps[0].new_empty(p, self.fc1_score.in_features)
        offset = 0
        for m in maps:
            size = m[0].numel()
            torch.sub(m[p:], m[:p], out=diff[:, offset:offset + size].view(p, *m.shape[1:]))
            offset += size
        coarse = diff[:, -self.fc1_weight.in_features:]  # x11 is the last block, in the same NCHW order
        return self.heads(diff, coarse)


def checkpoint_state(state: dict) -> dict:
    """The original checkpoint stores ``ref_score_subtract.weight`` with shape (1,) (piq's mirror too; piq reshapes
    it when loading): reshaped to Linear(1, 1)'s (1, 1)."""
    state = dict(state.get("state_dict", state))
    w = state.get("ref_score_subtract.weight")
    if w is not None and w.shape != (1, 1):
        state["ref_score_subtract.weight"] = w.reshape(1, 1)
    return state


def original_starts(extent: int, loc_extent: int, last_bound: int, stride: int) -> list[int]:
    """Patch starts along one axis as ``test_PieAPP_PT.py`` visits them (module docstring).

    ``extent``: the axis' length; ``loc_extent``: the length the script builds its start list from (rows, for both
    axes); ``last_bound``: the length its last block extends to (columns, for both axes)."""
    loc = list(range(0, loc_extent - PATCH, stride)) + [extent - PATCH]
    starts = []
    for block in range(len(loc) // BLOCK + 1):
        first = BLOCK * block
        if first >= len(loc):
            break
        if BLOCK * (block + 1) >= len(loc):  # the last block (the original indexes past its list when equal)
            size = last_bound - loc[first]
        else:
            size = loc[BLOCK * (block + 1)] - loc[first] + PATCH - stride
        span = range(extent)[loc[first]:loc[first] + size]  # NumPy's slicing of the image axis
        if len(span) >= PATCH:
            starts += [span.start + s for s in range(0, len(span) - PATCH + 1, stride)]
    return starts


def patch_starts(height: int, width: int, stride: int, grid: str) -> tuple[list[int], list[int]]:
    """(row starts, column starts); every (row, column) pair is a patch."""
    if grid == "unfold":
        return list(range(0, height - PATCH + 1, stride)), list(range(0, width - PATCH + 1, stride))
    return (original_starts(height, height, width, stride), original_starts(width, height, width, stride))


def patches_at(image: torch.Tensor, positions: list[tuple[int, int]]) -> torch.Tensor:
    """P×C×64×64 patches of a C×H×W image, gathered straight into channels_last (the layout the CPU convolutions
    read, so no reorder follows)."""
    hwc = image.permute(1, 2, 0)
    return torch.stack([hwc[r:r + PATCH, c:c + PATCH] for r, c in positions]).permute(0, 3, 1, 2)


RING = 2  # conv1 + conv2 (3×3, zero padding 1): the patch-border rows/columns where a patch's own padding matters
STRIP = 2 * RING  # input rows (columns) a border strip needs for its RING exact output rows (columns)
STEM_BUDGET = 256 * 2**20  # bytes of a tile's conv2 maps (distorted + reference: the tile and its border strips)


def start_groups(starts: list[int], fits) -> list[list[int]]:
    """Consecutive runs of ``starts`` (each with at least one start) for which ``fits(run, span)`` holds, where
    ``span`` = max − min + 64 is the extent of the run's patches."""
    groups = []
    for s in starts:
        if groups:
            run = groups[-1] + [s]
            if fits(run, max(run) - min(run) + PATCH):
                groups[-1] = run
                continue
        groups.append([s])
    return groups


def tile_pixels(n_rows: int, n_cols: int, height: int, width: int) -> int:
    """Pixels of one image's stem maps for a tile: the tile itself and its 4-pixel border strips (two per start)."""
    return height * width + 2 * STRIP * (n_rows * width + n_cols * height)


def shared_stem_chunks(model: PieAPPNet, a: torch.Tensor, r: torch.Tensor, rows: list[int], cols: list[int],
                       chunk_size: int, budget: int | None = None):
    """Per-chunk (error, weight) of every (row, column) patch pair, the stem shared between overlapping patches.

    Patches at stride < 64 overlap (each pixel is in ≈ (64/stride)² of them), and conv1 + conv2 — 36 % of the
    trunk's multiply-adds, at full resolution before the first pool — would be recomputed that many times per pixel.
    Here the image is cut into tiles of whole patches (a run of row starts × a run of column starts, whose stem maps
    fit ``budget`` bytes), and each patch's first pooled map (32×32) is assembled from stem maps shared by a tile:

    * pool cells 1…30 of each axis see patch pixels 2…61, whose stem values depend only on pixels inside the patch:
      read from the tile's stem map, max-pooled on the patch's row/column parity;
    * the border cells of row 0 / 31 (columns 1…30) see patch rows 0–1 / 62–63, where the patch's zero padding above
      / below replaces image pixels: the stem of the 4-row strip at the patch's top / bottom, across the whole tile
      (its padding above and below is the patch's own), gives them for every patch starting at that row;
    * the same for columns 0 / 31 with 4-column strips down the tile;
    * the four corner cells, padded on two sides: the stem of each patch's 4×4 corner blocks.

    The same products as the per-patch network (tests: equal to float32 rounding). Stem work per patch pair falls
    from 2·64² pixels to ≈ 2·64²/overlap plus the strips; memory is the tile's maps (``budget``), not per patch."""
    budget = STEM_BUDGET if budget is None else budget
    elem = a.element_size() * 2 * model.conv2.out_channels  # bytes per pixel of a conv2 map (both images)
    pixels = max(budget // elem, tile_pixels(1, 1, PATCH, PATCH))
    for cgroup in start_groups(cols, lambda run, w: tile_pixels(1, len(run), PATCH, w) <= pixels // 2):
        c0, c1 = min(cgroup), max(cgroup) + PATCH
        for rgroup in start_groups(rows, lambda run, h: tile_pixels(len(run), len(cgroup), h, c1 - c0) <= pixels):
            r0, r1 = min(rgroup), max(rgroup) + PATCH
            maps = TileMaps(model, a, r, rgroup, cgroup, r0, r1, c0, c1)
            positions = [(rr, cc) for rr in rgroup for cc in cgroup]
            for begin in range(0, len(positions), chunk_size):
                yield model.errors_and_weights_pooled(maps.pooled_patches(positions[begin:begin + chunk_size]))


def pool_nhwc(stem: torch.Tensor, row_parity: int, col_parity: int) -> torch.Tensor:
    """2×2 max-pool of a stem map from the given row/column offset, as an N×H′×W′×C view."""
    return F.max_pool2d(stem[:, :, row_parity:, col_parity:], 2).permute(0, 2, 3, 1)


class TileMaps:
    """The shared stem maps of one tile (:func:`shared_stem_chunks`) and the assembly of its patches' pooled maps."""

    def __init__(self, model, a, r, rgroup, cgroup, r0, r1, c0, c1):
        self.model, self.a, self.r, self.r0, self.c0 = model, a, r, r0, c0
        images = torch.stack([a[:, r0:r1, c0:c1], r[:, r0:r1, c0:c1]])  # 2×3×h×w
        row_parities = sorted({(s - r0) % 2 for s in rgroup})
        col_parities = sorted({(s - c0) % 2 for s in cgroup})
        stem = model.stem(layout(images))
        self.inner = {(pr, pc): pool_nhwc(stem, pr, pc) for pr in row_parities for pc in col_parities}
        del stem
        # 4-row strips at each distinct row start's top and bottom, across the tile: batch (image, side, start)
        self.row_index = {s: i for i, s in enumerate(sorted(set(rgroup)))}
        tops = [s - r0 for s in self.row_index]
        strips = torch.stack([images[:, :, t + o:t + o + STRIP] for o in (0, PATCH - STRIP) for t in tops], 1)
        n = len(tops)
        stem = model.stem(layout(strips.flatten(0, 1))).view(2, 2, n, -1, STRIP, c1 - c0)
        # rows 0–1 of top strips, rows 2–3 of bottom strips, pooled at each column parity
        top_bottom = torch.stack([stem[:, 0, :, :, :RING], stem[:, 1, :, :, STRIP - RING:]], 1).flatten(0, 2)
        self.row_edges = {pc: pool_nhwc(top_bottom, 0, pc).reshape(2, 2, n, -1, top_bottom.shape[1])
                          for pc in col_parities}
        del stem, top_bottom, strips
        # 4-column strips at each distinct column start's left and right, down the tile
        self.col_index = {s: i for i, s in enumerate(sorted(set(cgroup)))}
        lefts = [s - c0 for s in self.col_index]
        strips = torch.stack([images[..., t + o:t + o + STRIP] for o in (0, PATCH - STRIP) for t in lefts], 1)
        m = len(lefts)
        stem = model.stem(layout(strips.flatten(0, 1))).view(2, 2, m, -1, r1 - r0, STRIP)
        left_right = torch.stack([stem[:, 0, ..., :RING], stem[:, 1, ..., STRIP - RING:]], 1).flatten(0, 2)
        self.col_edges = {pr: pool_nhwc(left_right, pr, 0).reshape(2, 2, m, -1, left_right.shape[1])
                          for pr in row_parities}

    def pooled_patches(self, chunk: list[tuple[int, int]]) -> torch.Tensor:
        """2P×64×32×32 first-pool maps (P distorted, then P reference patches) of ``chunk``, channels_last."""
        half = PATCH // 2
        views, tops, bottoms, lefts, rights = [], [], [], [], []
        for image in range(2):
            for rr, cc in chunk:
                lr, lc = rr - self.r0, cc - self.c0
                k, m = lr // 2, lc // 2
                views.append(self.inner[lr % 2, lc % 2][image, k:k + half, m:m + half])
                i, j = self.row_index[rr], self.col_index[cc]
                tops.append(self.row_edges[lc % 2][image, 0, i, m:m + half])
                bottoms.append(self.row_edges[lc % 2][image, 1, i, m:m + half])
                lefts.append(self.col_edges[lr % 2][image, 0, j, k:k + half])
                rights.append(self.col_edges[lr % 2][image, 1, j, k:k + half])
        out = torch.stack(views)  # 2P×32×32×64: NHWC memory
        out[:, 0] = torch.stack(tops)
        out[:, -1] = torch.stack(bottoms)
        out[:, :, 0] = torch.stack(lefts)
        out[:, :, -1] = torch.stack(rights)
        # corners: the stem of each patch's four 4×4 corner blocks, its 2×2 corner pixels max-pooled
        last = PATCH - STRIP
        blocks = []
        for image in (self.a, self.r):
            for rr, cc in chunk:
                for dr in (0, last):
                    for dc in (0, last):
                        blocks.append(image[:, rr + dr:rr + dr + STRIP, cc + dc:cc + dc + STRIP])
        # pooled 2×2: cell (i, j) of block (i, j) is its corner (RING = 2 pixels = one pool cell)
        cells = pool_nhwc(self.model.stem(layout(torch.stack(blocks))), 0, 0).reshape(2 * len(chunk), 2, 2, 2, 2, -1)
        for i, row in enumerate((0, -1)):
            for j, col in enumerate((0, -1)):
                out[:, row, col] = cells[:, i, j, i, j]
        return out.permute(0, 3, 1, 2)


def resolve_stride(stride) -> int:
    if isinstance(stride, str):
        if stride not in STRIDES:
            raise ValueError(f"stride must be a positive int or one of {sorted(STRIDES)}, got {stride!r}")
        return STRIDES[stride]
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise ValueError(f"stride must be a positive int or one of {sorted(STRIDES)}, got {stride!r}")
    return stride


def pieapp_score(model: PieAPPNet, x, y, data_range: float = 1.0, reduction: str = "mean", stride=27,
                 convention: str = "original", chunk_size: int = DEFAULT_CHUNK, shared_stem: bool = True
                 ) -> torch.Tensor:
    """PieAPP of a pair with an already built :class:`PieAPPNet`. Without a gradient, ``shared_stem`` (default)
    runs conv1–conv2 once per tile instead of once per patch (:func:`shared_stem_chunks`, the same values);
    ``shared_stem=False`` scores every patch on its own (the previous path, kept for benchmarks and tests)."""
    check_reduction(reduction)
    if convention not in PIEAPP_CONVENTIONS:
        raise ValueError(f"convention must be one of {sorted(PIEAPP_CONVENTIONS)}, got {convention!r}")
    conv = PIEAPP_CONVENTIONS[convention]
    step = resolve_stride(stride)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
    x, y = check_pair(x, y, data_range)
    if x.shape[1] == 1:  # grey: the three channels the network takes (piq does the same)
        x, y = x.expand(-1, 3, -1, -1), y.expand(-1, 3, -1, -1)
    if x.shape[1] != 3:
        raise ValueError(f"x must have 3 (RGB) or 1 channel, got {x.shape[1]}")
    height, width = x.shape[-2:]
    if height < PATCH or width < PATCH:
        raise ValueError(f"x is {height}×{width}: PieAPP needs at least {PATCH}×{PATCH} pixels (one patch)")
    dtype = prepare_module(model, x.device)
    rows, cols = patch_starts(height, width, step, conv.grid)
    positions = [(r, c) for r in rows for c in cols]
    if not positions:  # the original grid can be empty for very unequal sides (its column list uses the rows)
        raise ValueError(f"the {convention!r} patch grid of a {height}×{width} image at stride {step} is empty")
    grad = needs_grad(x, y)
    scores = []
    with torch.enable_grad() if grad else torch.no_grad(), reuse_freed_memory(x.device.type == "cpu"):
        for n in range(x.shape[0]):
            a = x[n].to(dtype) * (255.0 / data_range)
            r = y[n].to(dtype) * (255.0 / data_range)
            if conv.bgr:
                a, r = a.flip(0), r.flip(0)
            weighted = total = 0
            if grad or not shared_stem:
                score_chunk = model.errors_and_weights if grad else model.errors_and_weights_inference
                chunks = (score_chunk(patches_at(a, chunk), patches_at(r, chunk))
                          for chunk in (positions[b:b + chunk_size] for b in range(0, len(positions), chunk_size)))
            else:
                chunks = shared_stem_chunks(model, a, r, rows, cols, chunk_size)
            for error, weight in chunks:
                # summed in float64 across chunks (the original accumulates its blocks' sums in float64 too)
                weighted = weighted + (error * weight).sum().double()
                total = total + weight.sum().double()
            scores.append((weighted / total).to(dtype))
    return reduce(torch.stack(scores), reduction)


def pieapp_model(device, dtype, weights=None, download=None) -> PieAPPNet:
    def build():
        model = PieAPPNet(weights, download).to(device=device, dtype=dtype)
        prepare_module(model, torch.device(device))
        return model

    return cached(("pieapp", str(weights), str(device), dtype), build)


def pieapp(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 1.0,
    reduction: str = "mean",
    *,
    stride=27,
    convention: str = "original",
    chunk_size: int = DEFAULT_CHUNK,
    weights=None,
    download: bool | None = None,
) -> torch.Tensor:
    """PieAPP error of each pair: (N,) for reduction='none', else a scalar (**lower = better**).

    ``x`` distorted, ``y`` reference: N×3×H×W RGB (or N×1×H×W grey, repeated), uint8 or float in [0, data_range],
    at least 64×64. ``stride``: 27 / 'sparse' (default), 6 / 'dense', or any positive int. ``convention``:
    'original' (default), 'piq', 'pyiqa' (module docstring). ``chunk_size``: patch pairs per network call.
    ``weights``: an explicit ``PieAPPv0.1.pth``. Differentiable w.r.t. both images.
    """
    xb = as_batch(x, "x")
    dtype = torch.float64 if xb.dtype == torch.float64 else torch.float32
    model = pieapp_model(xb.device, dtype, weights, download)
    return pieapp_score(model, x, y, data_range, reduction, stride, convention, chunk_size)


class PieAPP(nn.Module):
    """Module form of :func:`pieapp`; holds the network (``.to(device)`` / ``.double()`` move it).
    ``forward(x, y)``: ``x`` distorted, ``y`` reference."""

    def __init__(self, data_range: float = 1.0, reduction: str = "mean", *, stride=27, convention: str = "original",
                 chunk_size: int = DEFAULT_CHUNK, weights=None, download: bool | None = None):
        super().__init__()
        check_leading_arguments("PieAPP", data_range, reduction)
        resolve_stride(stride)
        if convention not in PIEAPP_CONVENTIONS:
            raise ValueError(f"convention must be one of {sorted(PIEAPP_CONVENTIONS)}, got {convention!r}")
        self.model = PieAPPNet(weights, download)
        self.kwargs = {"data_range": data_range, "reduction": reduction, "stride": stride, "convention": convention,
                       "chunk_size": chunk_size}

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return pieapp_score(self.model, x, y, **self.kwargs)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
