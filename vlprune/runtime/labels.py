"""``labels`` of a pruned batch: each label follows its token into the pruned sequence (PixelPrune §4.3-4.4,
training with pruned inputs).

The model shifts labels itself (the logit at column ``p`` predicts ``labels[p + 1]``), so labels are
carried, not shifted: text tokens keep theirs in order, kept image tokens keep theirs, and dropped image
tokens take theirs with them. Image placeholder positions may hold the ignore index (-100) or the
placeholder id itself (``labels = input_ids.clone()``, as TRL's default collator builds them; the model
then counts them at every image token it sees, as transformers does unpruned). Any other value there, and
any label on padding, is refused: such a label would be dropped with its token or land on another one.
"""

from __future__ import annotations

import torch

IGNORE = -100


def _valid(ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    return attention_mask.bool() if attention_mask is not None else torch.ones_like(ids, dtype=torch.bool)


def check_labels(labels, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, image_token_id: int) -> None:
    """ValueError unless ``labels`` (B, L) can follow the tokens of ``input_ids`` (B, L) into a pruned batch."""
    if not torch.is_tensor(labels) or labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f"labels must be an integer tensor (B, L) of token ids and -100, got "
                         f"{type(labels).__name__}{'' if not torch.is_tensor(labels) else ' of ' + str(labels.dtype)}")
    if tuple(labels.shape) != tuple(input_ids.shape):
        raise ValueError(f"labels have shape {tuple(labels.shape)}, input_ids {tuple(input_ids.shape)}: pruning "
                         f"needs one label per input token")
    lab = labels.detach().cpu()
    ids = input_ids.detach().cpu()
    valid = _valid(ids, attention_mask.detach().cpu() if attention_mask is not None else None)
    bad_pad = ~valid & (lab != IGNORE)
    if bool(bad_pad.any()):
        r, c = (int(x) for x in torch.nonzero(bad_pad)[0])
        raise ValueError(f"labels[{r}, {c}] = {int(lab[r, c])} at a padded position (attention_mask == 0): labels "
                         f"on padding must be -100 (the pruned batch is re-padded to another length)")
    is_img = ids == image_token_id
    bad_img = is_img & (lab != IGNORE) & (lab != image_token_id)
    if bool(bad_img.any()):
        r, c = (int(x) for x in torch.nonzero(bad_img)[0])
        raise ValueError(f"labels[{r}, {c}] = {int(lab[r, c])} at an image placeholder position (input_ids == "
                         f"{image_token_id}): a label there is dropped with a pruned image token; image positions "
                         f"take -100 (or the placeholder id {image_token_id}, as labels = input_ids.clone() gives)")


def _runs(is_img: torch.Tensor) -> list[tuple[int, int]]:
    """(start, end) of the runs of True in a 1-D bool tensor."""
    cols = torch.nonzero(is_img).view(-1).tolist()
    runs: list[tuple[int, int]] = []
    for c in cols:
        if runs and runs[-1][1] == c:
            runs[-1] = (runs[-1][0], c + 1)
        else:
            runs.append((c, c + 1))
    return runs


def pruned_labels(labels: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                  prepared, image_token_id: int) -> torch.Tensor:
    """``labels`` (B, L) of the caller's batch carried into the pruned batch (B, L') of ``prepared.plan``.

    Text tokens keep their labels in order (the input stage and pre-ViT resizes change only image runs);
    image ``i``'s kept tokens (``prepared.contexts[i].kept``) keep their own labels, or -- when its image
    was resized and its tokens are new -- the image's single label value (-100 or the placeholder id; a
    run mixing both is refused). Padding gets -100. Call :func:`check_labels` first.
    """
    plan = prepared.plan
    out = torch.full(plan.input_ids.shape, IGNORE, dtype=labels.dtype, device=labels.device)
    ids, new_ids = input_ids.detach().cpu(), plan.input_ids.detach().cpu()
    valid = _valid(ids, attention_mask.detach().cpu() if attention_mask is not None else None)
    new_valid = _valid(new_ids, plan.attention_mask.detach().cpu() if plan.attention_mask is not None else None)
    lab = labels.detach().cpu()
    contexts = iter(prepared.contexts)
    for r in range(ids.shape[0]):
        text = torch.nonzero(valid[r] & (ids[r] != image_token_id)).view(-1)
        new_text = torch.nonzero(new_valid[r] & (new_ids[r] != image_token_id)).view(-1)
        if text.numel() != new_text.numel():
            raise RuntimeError(f"row {r}: {text.numel()} text tokens before pruning, {new_text.numel()} after")
        out[r, new_text.to(out.device)] = labels[r, text.to(labels.device)]
        for (a, z), (na, nz) in zip(_runs(valid[r] & (ids[r] == image_token_id)),
                                     _runs(new_valid[r] & (new_ids[r] == image_token_id)), strict=True):
            ctx = next(contexts)
            kept = torch.as_tensor(ctx.kept, dtype=torch.long)
            if kept.numel() != nz - na:
                raise RuntimeError(f"row {r}: image {ctx.image} keeps {kept.numel()} tokens, the plan {nz - na}")
            if ctx.grid.n_blocks == z - a:  # same tokens: each keeps its own label
                out[r, na:nz] = labels[r, (a + kept).to(labels.device)]
                continue
            values = lab[r, a:z].unique()
            if values.numel() != 1:
                raise ValueError(f"labels of image {ctx.image} (row {r}) mix -100 and the placeholder id; the image "
                                 f"was resized to {ctx.grid.n_blocks} tokens, so its labels must be one value")
            out[r, na:nz] = int(values[0])
    return out


def mask_image_labels(labels: torch.Tensor, input_ids: torch.Tensor, image_token_id: int) -> torch.Tensor:
    """A copy of ``labels`` (B, L) with -100 at every image placeholder position of ``input_ids`` (B, L):
    the loss then counts the same tokens, pruned or not."""
    return labels.masked_fill(input_ids.to(labels.device) == image_token_id, IGNORE)
