"""GUIPruner (Xu et al., 2026, arXiv 2602.23235) on the staged runtime: Temporal-Adaptive Resolution
of the history screenshots (``tar``, input stage), Stratified Structure-aware Pruning of the current
screenshot inside the LLM (``ssp``, llm stage), and the paper's settings I / II / III (``guipruner``,
which stands for both). The algorithms are pure functions in :mod:`vlprune.algorithms.tar` and
:mod:`vlprune.algorithms.ssp`; decisions are in docs/guipruner.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from vlprune.algorithms.ssp import FILLS, ForegroundConfig, ssp_select, ui_foreground
from vlprune.algorithms.tar import ALLOCATIONS, tar_plan
from vlprune import options as opt
from vlprune.methods.base import ImageContext, InputMethod, LLMMethod, LLMRow, register_method

#: history token budget lambda of the paper's settings (each with mu 0.75, gamma 0.2, rho 0.3, K 2)
PRESETS = {"I": 0.4, "II": 0.2, "III": 0.1}


@register_method("tar")
@dataclass
class Tar(InputMethod):
    """Shrink older history screenshots more: GUIPruner's Temporal-Adaptive Resolution (TAR).

    The history screenshots (every image of a sample but the last) share ``lam`` of their tokens, split
    by a linear fading-memory schedule (newest frame weight 1, oldest ``gamma``); each is resized to its
    share (GUIPruner §3.2). ``allocation="uniform"`` (the paper's ablation) scales every frame by the same
    factor instead (each keeps ``lam`` of its tokens). The current screenshot is untouched."""

    lam: float = 0.4
    gamma: float = 0.2
    allocation: str = "linear"

    def __post_init__(self):
        super().__post_init__()
        self.lam = opt.fraction("lam", self.lam)
        self.gamma = opt.unit_interval("gamma", self.gamma)
        self.allocation = opt.choice("allocation", self.allocation, ALLOCATIONS)

    def sizes(self, images: list[ImageContext]) -> list[tuple[int, int] | None]:
        history = images[:-1]
        if not history:
            return [None] * len(images)
        ctx = history[0]
        plan = tar_plan([(c.raw_size[1], c.raw_size[0]) for c in history], self.lam, self.gamma, ctx.family,
                        *ctx.pixel_limits, allocation=self.allocation)
        return [(f.target[1], f.target[0]) for f in plan] + [None]


@register_method("ssp")
@dataclass
class Ssp(LLMMethod):
    """Prune the current screenshot inside the LLM by UI structure: GUIPruner's Stratified Structure-aware Pruning (SSP).

    Acts on each sample's last image from decoder layer K on (GUIPruner §3.3): importance = attention the
    screenshot's tokens receive at layer K - 1 from the text after it (mean over heads and those queries);
    keep the top ⌊mu·n_fg⌋ UI foreground tokens (edge pipeline), then the top ⌊mu·rho·n_bg⌋ background
    tokens, then fill M = round(mu·n) by uniform grid sampling. n counts the screenshot's tokens that
    enter the LLM. Ablations: ``rho=0`` keeps no background stratum; ``fill="random"`` fills the rest with
    a seeded random subset instead of the grid."""

    mu: float = 0.75
    rho: float = 0.3
    fill: str = "grid"
    seed: int = 0
    foreground: ForegroundConfig = field(default_factory=ForegroundConfig)

    def __post_init__(self):
        super().__post_init__()
        self.mu = opt.fraction("mu", self.mu)
        self.rho = opt.unit_interval("rho", self.rho)
        self.fill = opt.choice("fill", self.fill, FILLS)
        self.seed = opt.seed(self.seed)
        if not isinstance(self.foreground, ForegroundConfig):
            raise ValueError(f"option foreground must be a ForegroundConfig, got {type(self.foreground).__name__}")

    def acts_on(self, ctx: ImageContext) -> bool:
        return ctx.is_last

    def queries(self, row: LLMRow) -> list[int]:
        if not row.images:
            raise ValueError(f"method 'ssp': sample {row.sample} has no image; SSP prunes each sample's current "
                             f"screenshot (its last image)")
        after = list(range(row.images[-1][1], row.last + 1))
        if not after:
            raise ValueError(f"method 'ssp': sample {row.sample} has no text after its current screenshot to score "
                             f"it with (instruction / assistant prefix)")
        return after

    def select(self, ctx: ImageContext, scores, hidden):
        fg_map = ui_foreground(ctx.grid.image(), ctx.grid.shape, ctx.grid.family.block, self.foreground)
        fg = fg_map.reshape(-1)[ctx.kept]
        sel = ssp_select(scores.float().cpu().numpy(), fg, self.mu, self.rho, grid_shape=ctx.grid.shape,
                         positions=ctx.positions, fill=self.fill, seed=self.seed)
        strata = {"foreground": sel.fg_top, "background": sel.bg_top, "grid": sel.grid}
        return torch.from_numpy(np.asarray(sel.kept, dtype=np.int64)), strata


@register_method("guipruner")
@dataclass
class GUIPruner(LLMMethod):
    """GUIPruner = TAR on the history screenshots + SSP on the current one, at the paper's settings.

    ``preset`` "I" / "II" / "III" sets the history budget lam = 0.4 / 0.2 / 0.1 (default I), or ``lam`` sets it
    directly (giving both is refused); mu
    0.75, gamma 0.2, rho 0.3 and K 2 (the first valid K on hybrid models) are the paper's. ``allocation``
    (TAR), ``fill`` / ``seed`` and ``rho=0`` (SSP) select the paper's ablations."""

    preset: str | None = None  # None: "I", or the history budget ``lam`` when that is given
    lam: float | None = None
    mu: float = 0.75
    gamma: float = 0.2
    rho: float = 0.3
    allocation: str = "linear"
    fill: str = "grid"
    seed: int = 0

    def __post_init__(self):
        super().__post_init__()
        if self.preset is not None:
            self.preset = opt.choice("preset", self.preset, tuple(PRESETS))
            if self.lam is not None:  # a preset is a named lam: both at once would leave one of them unused
                raise opt.OptionError("lam", f"option lam={self.lam!r} conflicts with preset={self.preset!r}, which "
                                             f"sets lam={PRESETS[self.preset]}; give one of them")
        self.components()  # validates every option where it is given

    def components(self):
        lam = PRESETS[self.preset or "I"] if self.lam is None else self.lam
        return (Tar(lam=lam, gamma=self.gamma, allocation=self.allocation),
                Ssp(layer=self.layer, mu=self.mu, rho=self.rho, fill=self.fill, seed=self.seed))
