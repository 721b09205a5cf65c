"""Grafting (Panigrahi et al., 2023) on cases small enough to work by hand."""

import math

import pytest
import torch

from skillgap.errors import ConfigError
from skillgap.localize import (GraftConfig, Mask, find_mask, graft, graftable, movement_mask, random_mask, rounded,
                               score_gradient, soft_mask, task_vector)


def test_score_gradient_is_the_chain_rule_worked_by_hand():
    # At S = b, σ = 1/2 and σ' = 1/4. In the base patch (γ_base = 1) the sign flips: raising S removes the coordinate.
    base, scores = torch.tensor([1.0, 0.0]), torch.tensor([10.0, 10.0])
    g = score_gradient(torch.tensor([2.0, -4.0]), torch.tensor([0.5, 1.0]), base, scores, bias=10.0)
    assert g.tolist() == [-0.25, -1.0]  # -1 * 1/4 * 2 * 0.5, +1 * 1/4 * -4 * 1
    # and it is what autograd gives through θ = θ_pre + γ(S) τ, for L = <c, θ>
    s = torch.tensor([9.0, 11.5], requires_grad=True)
    theta = torch.tensor([0.3, -0.2]) + soft_mask(base, s, 10.0) * torch.tensor([0.5, 1.0])
    (torch.tensor([2.0, -4.0]) * theta).sum().backward()
    assert torch.allclose(s.grad, score_gradient(torch.tensor([2.0, -4.0]), torch.tensor([0.5, 1.0]), base,
                                                 s.detach(), 10.0))


def test_rounding_flips_where_sigma_passes_one_half():
    base = torch.tensor([1.0, 1.0, 0.0, 0.0])
    scores = torch.tensor([0.5, 10.5, 0.5, 10.5])  # σ(S - 10): ~0, > 1/2, ~0, > 1/2
    assert rounded(base, scores, 10.0).tolist() == [True, False, False, True]
    # at σ = 1/2 exactly, γ = 1/2 everywhere and rounds half to even (0), as torch.round does in the paper's code
    assert rounded(base, torch.full((4,), 10.0), 10.0).tolist() == [False] * 4


def test_movement_mask_takes_the_largest_moves_over_all_tensors():
    tau = {"a": torch.tensor([[0.1, -3.0], [0.2, 0.0]]), "b": torch.tensor([2.0, -0.05])}
    m = movement_mask(tau, 0.34)  # int(0.34 * 6) = 2 coordinates: -3 in a, 2 in b
    assert m.coords["a"].tolist() == [1] and m.coords["b"].tolist() == [0]
    assert m.count == 2 and m.total == 6 and math.isclose(m.sparsity, 2 / 6)
    assert m.dense("a").tolist() == [[False, True], [False, False]]
    assert m.touched() == {"a": 1, "b": 1}


def test_random_mask_is_seeded_distinct_and_in_range():
    tau = {"a": torch.zeros(3, 5), "b": torch.zeros(7)}
    m = random_mask(tau, 9, seed=3)
    assert m.count == 9
    flat = m.coords["a"].tolist() + [15 + i for i in m.coords["b"].tolist()]
    assert len(set(flat)) == 9 and all(0 <= i < 22 for i in flat)
    assert all(0 <= i < 15 for i in m.coords["a"].tolist()) and all(0 <= i < 7 for i in m.coords["b"].tolist())
    assert random_mask(tau, 9, seed=3).coords["a"].tolist() == m.coords["a"].tolist()


def test_overlap_is_asymmetric_and_masks_round_trip(tmp_path):
    shapes = {"a": (4,), "b": (2,)}
    m1 = Mask({"a": torch.tensor([1]), "b": torch.tensor([0])}, shapes, 6, {"kind": "graft"})
    m2 = Mask({"a": torch.tensor([1, 2, 3]), "b": torch.tensor([], dtype=torch.int64)}, shapes, 6)
    assert m1.overlap(m2) == pytest.approx(1 / 3)  # |m1 ∩ m2| / |m2|
    assert m2.overlap(m1) == pytest.approx(1 / 2)
    assert m1.digest() != m2.digest() and Mask(dict(m1.coords), shapes, 6).digest() == m1.digest()
    back = Mask.load(m1.save(tmp_path / "m.safetensors"))
    assert back.coords["a"].tolist() == [1] and back.shapes == shapes and back.total == 6
    assert back.meta == {"kind": "graft"}


class Tiny(torch.nn.Module):
    """A 'model' whose one graftable tensor is named like a decoder block's."""

    def __init__(self) -> None:
        super().__init__()
        self.model = torch.nn.Module()
        self.model.layers = torch.nn.ModuleList([torch.nn.Module()])
        self.model.layers[0].w = torch.nn.Parameter(torch.zeros(4))
        self.head = torch.nn.Parameter(torch.ones(2))  # not graftable


def _setup() -> tuple[Tiny, dict, dict]:
    model = Tiny()
    params = graftable(model)
    assert list(params) == ["model.layers.0.w"]
    pre = {n: p.detach().clone() for n, p in params.items()}
    tau = task_vector(pre, {"model.layers.0.w": torch.tensor([5.0, 0.1, 0.1, 1.0])})
    return model, pre, tau


def test_find_mask_adds_the_coordinate_the_loss_needs():
    # The base patch (sparsity 1/4) is coordinate 0, which moved most; the loss needs coordinate 3 only.
    # Its gradient at the soft mask is 2 (w3 - 1) ≈ -2, so ∂L/∂S3 ≈ -2 σ'(S3 - 10): lr 1e7 lifts S3 far past b.
    model, pre, tau = _setup()
    w = model.model.layers[0].w
    loss = lambda m, b: (m.model.layers[0].w[3] - 1) ** 2  # noqa: E731
    mask, hist = find_mask(model, pre, tau, [{}], lambda: -float(loss(model, {})),
                             GraftConfig(sparsity=0.25, steps=2), loss_fn=loss)
    assert mask.coords["model.layers.0.w"].tolist() == [0, 3]
    assert hist[0]["flipped_in"] == 1 and hist[0]["flipped_out"] == 0 and hist[0]["score"] == 0.0
    graft(graftable(model), pre, tau, mask)
    assert w.tolist() == [5.0, 0.0, 0.0, 1.0]  # θ_pre + γ τ: fine-tuned values on the mask, pre-trained elsewhere
    assert w.requires_grad and model.head.requires_grad  # the model's flags as they were


def test_find_mask_removes_a_base_coordinate_that_hurts():
    # The loss w0^2 wants coordinate 0 back at its pre-trained value: the step flips it out of the base patch.
    model, pre, tau = _setup()
    loss = lambda m, b: m.model.layers[0].w[0] ** 2  # noqa: E731
    mask, hist = find_mask(model, pre, tau, [{}], lambda: -float(loss(model, {})),
                             GraftConfig(sparsity=0.25, steps=1), loss_fn=loss)
    assert mask.count == 0 and hist[0]["flipped_out"] == 1


def test_a_tiny_lr_keeps_the_base_patch_and_the_best_step_is_kept():
    model, pre, tau = _setup()
    scores = iter([0.1, 0.7, 0.3])
    mask, hist = find_mask(model, pre, tau, [{}, {}], lambda: next(scores), GraftConfig(sparsity=0.25, steps=3, lr=1.0),
                           loss_fn=lambda m, b: (m.model.layers[0].w[3] - 1) ** 2)
    assert mask.coords["model.layers.0.w"].tolist() == [0]  # lr 1: S moves by ~1e-4, nothing flips
    assert mask.meta["step"] == 2 and mask.meta["score"] == 0.7
    assert [h["count"] for h in hist] == [1, 1, 1]


def test_bad_settings_and_mismatched_models_fail_clearly():
    with pytest.raises(ConfigError, match="sparsity"):
        GraftConfig(sparsity=0).check()
    with pytest.raises(ConfigError, match="lacks 1 tensors"):
        task_vector({"x": torch.zeros(1)}, {})
    with pytest.raises(ConfigError, match="nothing to graft"):
        graftable(torch.nn.Linear(2, 2))


def test_expected_calibration_error_worked_by_hand():
    from skillgap.localize import calibration

    # confidences 0.95 (right), 0.92 (wrong) share the bin (0.9, 1.0]: accuracy 1/2 vs confidence 0.935;
    # 0.6 (right) is alone in (0.5, 0.6] (bins are closed on the right): accuracy 1 vs 0.6.
    # ECE = 2/3 · 0.435 + 1/3 · 0.4 = 0.42333
    probs = [[0.95, 0.05], [0.08, 0.92], [0.6, 0.4]]
    got = calibration(probs, [0, 0, 0])
    assert got["accuracy"] == pytest.approx(2 / 3) and got["ece"] == pytest.approx(2 / 3 * 0.435 + 0.4 / 3)
    assert got["confidence"] == pytest.approx((0.95 + 0.92 + 0.6) / 3) and got["n"] == 3
    assert got["nll"] == pytest.approx(-(math.log(0.95) + math.log(0.08) + math.log(0.6)) / 3)
    assert calibration([[1.0, 0.0]], [0])["ece"] == 0.0  # certain and right: perfectly calibrated


def test_label_word_probabilities_are_the_softmax_of_each_words_log_likelihood(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from skillgap.items import Item
    from skillgap.localize import choice_probs
    from skillgap.scoring import encode_completions

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    it = Item(id="x", prompt="Review: fine.\nIn one word (terrible / great), the movie was:", answer="great",
              skills=("sst2",), metadata={"choices": ["terrible", "great", "so-so"]})
    (probs,) = choice_probs(model, tok, [it], conversational=True)
    by_hand = []
    for word in it.metadata["choices"]:
        ((full, n),) = encode_completions(tok, [Item(id="x", prompt=it.prompt, answer=word, completion=word,
                                                     skills=())], True)
        logp = torch.log_softmax(model(input_ids=torch.tensor([full])).logits[0].float(), -1)
        by_hand.append(sum(logp[i - 1, full[i]].item() for i in range(n, len(full))))
    assert probs == pytest.approx(torch.softmax(torch.tensor(by_hand), 0).tolist(), abs=1e-5)
    assert sum(probs) == pytest.approx(1.0)
