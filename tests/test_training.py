"""Training through the staged runtime (PixelPrune §4.3-4.5) on tiny random models.

Checked against references built without ``vlprune.apply``: the loss and every parameter's gradient of a
pruned step equal those of the unmodified model fed the kept patches by hand (training_fixtures), or fed
the resized image through the processor (Resize, TAR); keep-all is bit-identical to the unmodified model;
gradients reach only the kept patch rows; labels follow their tokens and bad labels are refused before
any compute; in-LLM methods are refused in a training forward; the +KD loss against values computed by
hand on a 3-token vocabulary.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from model_fixtures import FAMILIES, IMG, image_processor, tiny_model
from PIL import Image
from training_fixtures import batch_images, grads, hand_fed_inputs, padded_batch, pruned_columns

import vlprune
from vlprune import compat
from vlprune.models.configs import build_model
from vlprune.training import KDConfig, kd_forward, kd_loss

TOL = {"atol": 1e-5, "rtol": 1e-5}


def fresh(family: str):
    """A tiny model of its own (gradients and training mode stay out of the shared fixtures)."""
    return build_model(family, "tiny", seed=0).train()


def pruned_step(model, method, batch, labels, processor=None):
    with vlprune.apply(model, method, processor=processor) as run:
        out = model(**batch, labels=labels)
    out.loss.backward()
    return out.loss.detach(), grads(model), run


def assert_same_step(got, want):
    (loss, g), (ref_loss, ref_g) = got, want
    torch.testing.assert_close(loss, ref_loss, **TOL)
    assert g.keys() == ref_g.keys()
    for name in g:
        torch.testing.assert_close(g[name], ref_g[name], **TOL, msg=lambda m, n=name: f"{n}: {m}")


def reference_step(model, inputs):
    out = model(**inputs)
    out.loss.backward()
    return out.loss.detach(), grads(model)


# ---------------------------------------------------------------- pruned step == kept patches fed by hand
@pytest.mark.parametrize("padding,checkpointing", [("left", False), ("right", True)])
@pytest.mark.parametrize("family", FAMILIES)
def test_pruned_step_equals_hand_fed_reference(family, padding, checkpointing):
    model = fresh(family)
    b, labels = padded_batch(family, padding)
    pixels = b["pixel_values"].clone().requires_grad_(True)
    if checkpointing:
        model.gradient_checkpointing_enable()
    loss, g, run = pruned_step(model, "pixelprune", {**b, "pixel_values": pixels}, labels)
    model.gradient_checkpointing_disable()
    kept = [s.kept for s in run.last_prepared.selections]
    assert any(len(k) < s.n_grid for k, s in zip(kept, run.last_prepared.selections)), "the case must prune"
    assert_same_step((loss, g), reference_step(model, hand_fed_inputs(model, family, b, labels, kept, padding)))
    assert any(g[n].abs().sum() > 0 for n in g if n.startswith("model.visual."))  # the vision tower learns
    assert any(g[n].abs().sum() > 0 for n in g if ".language_model." in n)
    # gradients reach exactly the kept patch rows of pixel_values
    row_grad = pixels.grad.abs().sum(-1) > 0
    want = torch.zeros_like(row_grad)
    off = 0
    for (t, h, w), k in zip(b["image_grid_thw"].tolist(), kept):
        want[off + (torch.from_numpy(k)[:, None] * 4 + torch.arange(4)).reshape(-1)] = True
        off += t * h * w
    assert torch.equal(row_grad, want)


@pytest.mark.parametrize("method", ["random", "uniform", "conncomp",
                                    vlprune.create_method("pixelprune", order="serpentine", tau=0.05)],
                         ids=["random", "uniform", "conncomp", "pixelprune-lossy"])
def test_every_selecting_method_trains_like_the_reference(method):
    """Qwen2.5-VL: its windowed ViT blocks see windows rebuilt from the kept blocks."""
    family = "qwen2.5-vl"
    model = fresh(family)
    b, labels = padded_batch(family)
    loss, g, run = pruned_step(model, method, b, labels)
    kept = [s.kept for s in run.last_prepared.selections]
    assert_same_step((loss, g), reference_step(model, hand_fed_inputs(model, family, b, labels, kept)))


def _resized(images, sizes):
    it = iter(sizes)
    return [[im if (sz := next(it)) is None else
             np.asarray(Image.fromarray(im).resize((sz[1], sz[0]), Image.Resampling.BICUBIC)) for im in sample]
            for sample in images]


@pytest.mark.parametrize("method", ["resize", "tar"])
@pytest.mark.parametrize("family", ["qwen2-vl", "qwen3-vl"])
def test_resizing_methods_train_like_the_processor_fed_image(family, method):
    """Resize (pre-ViT) and TAR (input stage): the step equals the unmodified model given each image resized
    (bicubic) to the size the run reports, through the processor; the answer labels follow."""
    model = fresh(family)
    b, labels = padded_batch(family)
    loss, g, run = pruned_step(model, method, b, labels, image_processor(family))
    sizes = [s.resized for s in run.stats]
    assert any(s is not None for s in sizes)
    rb, rl = padded_batch(family, images=_resized(batch_images(family), sizes))
    assert_same_step((loss, g), reference_step(model, {**rb, "labels": rl}))


@pytest.mark.parametrize("family,spec", [("qwen2.5-vl", s) for s in ("full", "random", "uniform", "conncomp", "resize")]
                         + [("qwen3.5", "full"), ("qwen2-vl", "full")])
def test_keep_all_is_bit_identical(family, spec):
    model = fresh(family)
    b, labels = padded_batch(family)
    method = vlprune.create_method(spec) if spec == "full" else vlprune.create_method(spec, retain=1.0)
    loss, g, _ = pruned_step(model, method, b, labels)
    ref_loss, ref_g = reference_step(model, {**b, "labels": labels})
    assert torch.equal(loss, ref_loss)
    assert all(torch.equal(g[n], ref_g[n]) for n in g)


def test_optimizer_steps_reduce_the_loss():
    model = fresh("qwen2-vl")
    b, labels = padded_batch("qwen2-vl")
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(5):
        with vlprune.apply(model, "pixelprune"):
            loss = model(**b, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(float(loss))
    assert losses[-1] < losses[0] - 0.5, losses


# ---------------------------------------------------------------- labels
def test_placeholder_labels_follow_their_kept_tokens():
    """labels = input_ids (padding -100), as TRL's default collator builds them: every kept image token
    keeps its placeholder label, the loss equals the hand-fed reference with the same rebuilt labels."""
    family = "qwen3-vl"
    model = fresh(family)
    b, _ = padded_batch(family)
    labels = b["input_ids"].masked_fill(b["attention_mask"] == 0, -100)
    loss, g, run = pruned_step(model, "pixelprune", b, labels)
    kept = [s.kept for s in run.last_prepared.selections]
    ref = hand_fed_inputs(model, family, b, labels, kept)
    assert int((ref["labels"] == IMG).sum()) == sum(len(k) for k in kept)
    assert_same_step((loss, g), reference_step(model, ref))


@pytest.mark.parametrize("case,match", [
    ("image", r"labels\[0, \d+\] = 7 at an image placeholder position"),
    ("padding", r"labels\[0, 0\] = 5 at a padded position"),
    ("shape", r"labels have shape \(2, 3\)"),
    ("float", "labels must be an integer tensor"),
    ("shift", "shift_labels cannot follow pruned tokens"),
])
def test_bad_labels_refused_before_compute(case, match):
    model = tiny_model("qwen2-vl")
    b, labels = padded_batch("qwen2-vl", "left")
    extra = {}
    if case == "image":
        labels[0, int(torch.nonzero(b["input_ids"][0] == IMG)[0])] = 7
    elif case == "padding":
        assert b["attention_mask"][0, 0] == 0
        labels[0, 0] = 5
    elif case == "shape":
        labels = labels[:, :3]
    elif case == "float":
        labels = labels.float()
    else:
        extra["shift_labels"] = labels[:, 1:]
    calls = []
    h = model.model.visual.register_forward_pre_hook(lambda *a: calls.append(1))
    try:
        with torch.no_grad(), vlprune.apply(model, "pixelprune"), pytest.raises(ValueError, match=match):
            model(**b, labels=labels, **extra)
    finally:
        h.remove()
    assert not calls


def test_resized_image_labels_must_be_one_value():
    model = tiny_model("qwen2-vl")
    b, labels = padded_batch("qwen2-vl")
    cols = torch.nonzero(b["input_ids"][0] == IMG).view(-1)
    labels[0, cols[0]] = IMG  # one placeholder label, the rest -100: the resized image's new tokens cannot follow
    with torch.no_grad(), vlprune.apply(model, "resize"), pytest.raises(ValueError, match="mix -100 and the placeholder"):
        model(**b, labels=labels)


# ---------------------------------------------------------------- what a training forward refuses
def test_in_llm_method_refused_in_a_training_forward():
    model = fresh("qwen2-vl")
    b, _ = padded_batch("qwen2-vl")
    with vlprune.apply(model, "pixelprune+fastv"):
        with pytest.raises(ValueError, match="in-LLM method 'fastv' cannot be trained through"):
            model(**b)
        with torch.no_grad():
            assert model(**b).logits.shape[0] == 2  # inference in training mode: no gradients, runs
    model.eval()
    with vlprune.apply(model, "fastv"):
        assert model(**b).logits.shape[0] == 2


def test_after_block_with_checkpointing():
    """Where gradient checkpointing replays module hooks (5.19) the in-ViT keep set is refused up front;
    where it does not (5.24) the checkpointed step equals the plain one."""
    model = fresh("qwen3-vl")
    b, labels = padded_batch("qwen3-vl")
    method = vlprune.create_method("pixelprune", after_block=0)
    plain = pruned_step(model, method, b, labels)[:2]
    model.gradient_checkpointing_enable()
    if compat.checkpointing_replays_hooks():
        with vlprune.apply(model, method), pytest.raises(ValueError, match="after ViT block 0, and gradient checkp"):
            model(**b, labels=labels)
    else:
        assert_same_step(pruned_step(model, method, b, labels)[:2], plain)


# ---------------------------------------------------------------- +KD loss
def _softmax(xs, t=1.0):
    e = [math.exp(x / t) for x in xs]
    return [v / sum(e) for v in e]


def test_kd_loss_by_hand_on_a_tiny_vocabulary():
    """Teacher rows are longer than the student rows (more image tokens) and score their answers at other
    columns; the loss aligns the i-th answer token of each row."""
    s_logits = torch.tensor([[[0.1, 0.2, 0.3], [1.0, -1.0, 0.5], [0.0, 0.0, 2.0], [9.0, 9.0, 9.0]]])
    s_labels = torch.tensor([[-100, -100, 2, 0]])  # scored: column 1 -> 2, column 2 -> 0
    t_logits = torch.tensor([[[5.0, 5.0, 5.0], [7.0, 7.0, 7.0], [0.5, 0.0, 1.5], [2.0, 1.0, -1.0], [3.0, 3.0, 3.0]]])
    t_labels = torch.tensor([[-100, -100, -100, 2, 0]])  # scored: column 2 -> 2, column 3 -> 0
    alpha, temp = 0.3, 2.0
    ce = kd = 0.0
    for s, t, y in (([1.0, -1.0, 0.5], [0.5, 0.0, 1.5], 2), ([0.0, 0.0, 2.0], [2.0, 1.0, -1.0], 0)):
        ce += -math.log(_softmax(s)[y])
        ps, pt = _softmax(s, temp), _softmax(t, temp)
        kd += sum(a * (math.log(a) - math.log(b)) for a, b in zip(pt, ps)) * temp**2
    out = kd_loss(s_logits, s_labels, t_logits, t_labels, KDConfig(alpha=alpha, temperature=temp))
    assert out.n_tokens == 2
    assert out.ce.item() == pytest.approx(ce / 2, rel=1e-6)
    assert out.kd.item() == pytest.approx(kd / 2, rel=1e-6)
    assert out.loss.item() == pytest.approx(alpha * ce / 2 + (1 - alpha) * kd / 2, rel=1e-6)
    # a trainer's token count over the whole accumulated batch divides instead of the local count
    total = kd_loss(s_logits, s_labels, t_logits, t_labels, KDConfig(alpha=alpha, temperature=temp), num_items_in_batch=8)
    assert total.loss.item() == pytest.approx((alpha * ce + (1 - alpha) * kd) / 8, rel=1e-6)


def test_kd_loss_teacher_gets_no_gradient():
    s = torch.randn(1, 4, 5, requires_grad=True)
    t = torch.randn(1, 6, 5, requires_grad=True)
    lab_s, lab_t = torch.tensor([[-100, 1, 2, 3]]), torch.tensor([[-100, -100, -100, 1, 2, 3]])
    kd_loss(s, lab_s, t, lab_t).loss.backward()
    assert t.grad is None and s.grad.abs().sum() > 0


@pytest.mark.parametrize("case,match", [
    ("rows", "the teacher has 2 rows, the student 1"),
    ("count", "row 0: the teacher scores 2 answer tokens, the student 3"),
    ("values", "row 0: answer token 1 is 3 for the teacher, 4 for the student"),
    ("vocab", "vocabularies differ"),
])
def test_kd_loss_refuses_batches_of_other_samples(case, match):
    s, lab_s = torch.zeros(1, 4, 5), torch.tensor([[-100, 1, 3, -100]])
    t, lab_t = torch.zeros(1, 6, 5), torch.tensor([[-100, -100, -100, 1, 3, -100]])
    if case == "rows":
        t, lab_t = torch.zeros(2, 6, 5), lab_t.repeat(2, 1)
    elif case == "count":
        lab_s = torch.tensor([[-100, 1, 3, 3]])
    elif case == "values":
        lab_s = torch.tensor([[-100, 1, 4, -100]])
    else:
        t = torch.zeros(1, 6, 7)
    with pytest.raises(ValueError, match=match):
        kd_loss(s, lab_s, t, lab_t)


@pytest.mark.parametrize("option,value", [("alpha", 1.5), ("temperature", 0.0), ("alpha", True)])
def test_kd_config_options_validated(option, value):
    with pytest.raises(ValueError, match=f"option {option}"):
        KDConfig(**{option: value})


def test_kd_forward_equals_hand_fed_student_and_unmodified_teacher():
    family = "qwen3-vl"
    model = fresh(family)
    b, labels = padded_batch(family)
    cfg = KDConfig(alpha=0.25, temperature=1.5)
    out = kd_forward(model, {**b, "labels": labels}, "pixelprune", config=cfg)
    out.loss.loss.backward()
    g = grads(model)
    kept = [s.kept for s in out.run.last_prepared.selections]
    ref_in = hand_fed_inputs(model, family, b, labels, kept)
    ref_labels = ref_in.pop("labels")
    assert torch.equal(out.student_labels, ref_labels)
    with torch.no_grad():
        teacher = model.eval()(**b).logits
    model.train()
    ref = kd_loss(model(**ref_in).logits, ref_labels, teacher, labels, cfg)
    ref.loss.backward()
    assert 0 < out.loss.kd.item()
    torch.testing.assert_close(out.loss.loss, ref.loss, **TOL)
    ref_g = grads(model)
    for n in g:
        torch.testing.assert_close(g[n], ref_g[n], **TOL)


def test_kd_forward_keeping_everything_has_no_kd_term():
    model = fresh("qwen2-vl")
    b, labels = padded_batch("qwen2-vl")
    out = kd_forward(model, {**b, "labels": labels}, "full", config=KDConfig(alpha=0.5))
    assert out.loss.kd.item() == 0.0
    with torch.no_grad():
        ce = model(**b, labels=labels).loss
    torch.testing.assert_close(out.loss.ce, ce, **TOL)


def test_pruned_columns_helper_matches_a_hand_example():
    """The reference's own bookkeeping on a 1-row batch written out by hand."""
    batch = {"input_ids": torch.tensor([[0, 1, IMG, IMG, IMG, 2, IMG, IMG, 3]]),
             "attention_mask": torch.tensor([[0, 1, 1, 1, 1, 1, 1, 1, 1]])}
    assert pruned_columns(batch, [np.array([0, 2]), np.array([1])]) == [[1, 2, 4, 5, 7, 8]]


@pytest.mark.parametrize("family", ["qwen2-vl", "qwen3-vl"])
def test_post_vit_selection_trains_like_the_reference(family):
    """DivPrune after the ViT: the reference runs the unmodified tower on every patch and keeps the kept
    tokens' features (DeepStack features too) in the hand-built rows."""
    model = fresh(family)
    b, labels = padded_batch(family)
    loss, g, run = pruned_step(model, "divprune", b, labels)
    kept = [np.asarray(s.kept_blocks) for s in run.stats]
    assert sum(len(k) for k in kept) < sum(s.tokens_before for s in run.stats)
    ref = hand_fed_inputs(model, family, b, labels, kept)
    full = [np.arange(s.tokens_before) for s in run.stats]
    enc = model.model.visual(b["pixel_values"], grid_thw=b["image_grid_thw"], return_dict=True)
    n = [len(f) for f in full]
    enc.pooler_output = tuple(x[torch.from_numpy(k)] for x, k in zip(torch.split(enc.pooler_output, n), kept))
    if getattr(enc, "deepstack_features", None):
        enc.deepstack_features = [tuple(x[torch.from_numpy(k)] for x, k in zip(torch.split(f, n), kept))
                                  for f in enc.deepstack_features]
    ref["mm_encoder_outputs"] = {"image": enc}
    assert_same_step((loss, g), reference_step(model, ref))


def test_processed_collator_pads_and_concatenates():
    from vlprune.training.data import ProcessedCollator

    a = {"input_ids": torch.tensor([[5, IMG, 6]]), "labels": torch.tensor([[-100, -100, 6]]),
         "pixel_values": torch.ones(4, 3), "image_grid_thw": torch.tensor([[1, 2, 2]])}
    b = {"input_ids": torch.tensor([7, 8]), "labels": torch.tensor([7, 8]), "pixel_values": torch.zeros(8, 3),
         "image_grid_thw": torch.tensor([[1, 2, 4]])}
    out = ProcessedCollator(0, "left")([a, b])
    assert out["input_ids"].tolist() == [[5, IMG, 6], [0, 7, 8]]
    assert out["attention_mask"].tolist() == [[1, 1, 1], [0, 1, 1]]
    assert out["labels"].tolist() == [[-100, -100, 6], [-100, 7, 8]]
    assert out["pixel_values"].shape == (12, 3) and out["image_grid_thw"].tolist() == [[1, 2, 2], [1, 2, 4]]
    with pytest.raises(ValueError, match="padding_side"):
        ProcessedCollator(0, "middle")
