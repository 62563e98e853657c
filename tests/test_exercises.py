"""The exercise checks: they pass the solution notebooks' answers, catch wrong answers with a targeted hint, fail a
submission that delegates to the core's reference with a hint that says so, grade against references of their own
(a bug in the core does not move them), report stubs and student exceptions as verdicts (never a traceback) and
never print the reference implementation."""

from __future__ import annotations

import inspect
import json
import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

from glsim_core import exercises as ex
from glsim_core.analysis.cost import PAPER_IMG_SIZES, PAPER_TABLES, ViTSpec, _method_flops, dfsm_flops, format_mflops
from glsim_core.analysis.localisation import MaxBoxAccV2, box_iou, boxes_from_mask, max_box_acc, normalize_map
from glsim_core.exercises.checks_localization import estimated_boxes_reference, maxboxacc_reference
from glsim_core.exercises.checks_pooling import (
    mean_shift_reference,
    power_mean_reference,
    reference_shares,
    simpool_params,
    simpool_reference,
)
from glsim_core.exercises.checks_selection import (
    enclosing_box_reference,
    flops_reference,
    gls_reference,
    rollout_reference,
    selected_inside_reference,
)
from glsim_core.exercises.generate import BEGIN_SOLUTION, solution_paths
from glsim_core.exercises.grading import ReferenceCalled, core_functions, references_blocked
from glsim_core.pooling import FAlpha, PoolingProcess, SimPool, pool
from glsim_core.pooling.methods import LSE, GeM
from glsim_core.selection import attention_rollout, global_local_similarity, select_boxes, top_o_indices


def stub(*_args, **_kwargs):
    raise NotImplementedError(ex.STUB_MESSAGE)


def _solution_namespaces() -> dict[str, dict]:
    """Each solution notebook's answers: its import lines and every cell with an answer, executed (by stem)."""
    out = {}
    for path in solution_paths():
        ns: dict = {}
        for cell in json.loads(path.read_text())["cells"]:
            text = "".join(cell["source"])
            if cell["cell_type"] != "code":
                continue
            if BEGIN_SOLUTION in text:
                exec(compile(text, path.name, "exec"), ns)  # noqa: S102 - the repository's own notebooks
            elif "from glsim_core.exercises import" in text:
                exec("\n".join(line for line in text.splitlines() if line.startswith(("import ", "from "))), ns)  # noqa: S102
        out[path.stem] = ns
    return out


NS = _solution_namespaces()
N01, N02, N03 = NS["01_pooling_framework_exercises"], NS["02_simpool_exercises"], NS["03_gls_exercises"]
N05, N08 = NS["05_dfsm_cost_exercises"], NS["08_localization_exercises"]
CONFIGS = dict(make_pnorm=N01["make_pnorm"], make_norm_weighted=N01["make_norm_weighted"],
               make_mean_shift=N01["make_mean_shift"])

#: Each check against the solution notebook's answer (an honest submission, written without the core).
HONEST = {
    "f_alpha": N01["weighted_power_mean"],
    "pooling_configs": CONFIGS,
    "simpool_forward": N02["simpool_forward"],
    "gamma_sharpness": N02["pooling_shares"],
    "gls": N03["gls_scores"],
    "enclosing_box": N03["enclosing_box"],
    "box_rule_ablation": N03["selected_inside"],
    "attention_rollout": N05["rollout"],
    "dfsm_flops": N05["count_flops"],
    "estimated_boxes": N08["estimated_boxes"],
    "maxboxacc": N08["maxboxacc"],
}


def _simpool_module(x, params, **kw):
    sp = SimPool(x.shape[-1], gamma=params["gamma"], **kw).to(x.dtype)
    with torch.no_grad():
        sp.norm.weight.copy_(params["ln_weight"])
        sp.norm.bias.copy_(params["ln_bias"])
        sp.wq.weight.copy_(params["wq"])
        sp.wk.weight.copy_(params["wk"])
    return sp


def _shares_by_autograd(v, a, gamma):
    v = v.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        u = FAlpha(gamma=gamma)(v, a.detach().unsqueeze(-1))
        (grad,) = torch.autograd.grad(u.sum(), v)
    return (v * grad / u).detach()


def _core_selected_inside(scores, grid, patch, top_o, rule):
    boxes, idx = select_boxes(scores, grid, patch, top_o, rule), top_o_indices(scores, top_o)
    r, c = idx // grid[1], idx % grid[1]
    inside = ((c * patch >= boxes[:, :1]) & ((c + 1) * patch <= boxes[:, 2:3])
              & (r * patch >= boxes[:, 1:2]) & ((r + 1) * patch <= boxes[:, 3:4]))
    return inside.double().mean(1)


#: Submissions that delegate to the core (or to a grader's reference): (exercise, submission, the name in the hint).
CHEATS = [
    ("f_alpha", lambda v, a, alpha: FAlpha(alpha)(v, a), "FAlpha"),
    ("f_alpha", lambda v, a, alpha: power_mean_reference(v, a, alpha), "power_mean_reference"),
    ("pooling_configs", dict(make_pnorm=lambda p: GeM(p=p, learnable=False).process,
                             make_norm_weighted=lambda: pool("how", dim=8).process,
                             make_mean_shift=lambda s, t: LSE(r=1.0, learnable=False).process), "pooling.methods"),
    ("simpool_forward", lambda x, params: _simpool_module(x, params)(x, return_attention=True), "SimPool"),
    ("gamma_sharpness", _shares_by_autograd, "FAlpha"),
    ("gls", lambda outs, w, b, p=1, eps=1e-6: torch.stack([global_local_similarity(_ln(o, w, b, eps), "cosine", p)
                                                         for o in outs]), "global_local_similarity"),
    ("enclosing_box", lambda s, g, p, o: select_boxes(s, g, p, o), "select_boxes"),
    ("box_rule_ablation", _core_selected_inside, "select_boxes"),
    ("box_rule_ablation", selected_inside_reference, "selected_inside_reference"),
    ("attention_rollout", lambda maps, prefix=1: attention_rollout(maps, prefix), "attention_rollout"),
    ("dfsm_flops", lambda m, d, depth, h, p, s: dfsm_flops(m, ViTSpec(d, depth, h, p), s)["flops"], "dfsm_flops"),
    ("estimated_boxes", lambda m, tau: boxes_from_mask(normalize_map(m.numpy()) >= tau), "normalize_map"),
    ("maxboxacc", lambda maps, gt, delta, taus: max_box_acc(maps, gt, tuple(maps.shape[-2:]), iou_thresholds=(delta,),
                                                            cam_thresholds=taus)["maxboxacc"][delta], "max_box_acc"),
]

#: Reference code the verdicts must never print.
REFERENCE_SOURCES = [FAlpha.forward, SimPool.forward, select_boxes, attention_rollout, global_local_similarity,
                     _method_flops, reference_shares, selected_inside_reference, estimated_boxes_reference,
                     maxboxacc_reference, normalize_map, boxes_from_mask, box_iou, MaxBoxAccV2.best_ious,
                     power_mean_reference, simpool_reference, gls_reference, enclosing_box_reference,
                     rollout_reference, flops_reference]


def _reference_lines() -> set[str]:
    lines = set()
    for obj in REFERENCE_SOURCES:
        for line in inspect.getsource(obj).splitlines():
            line = line.strip()
            if len(line) > 25 and not line.startswith(("#", '"""', "def ", "raise", "if ", "return dict")):
                lines.add(line)
    return lines


def test_catalog_lists_at_least_eight_exercises_each_with_a_check():
    assert len(ex.EXERCISES) >= 8
    assert {e.name for e in ex.EXERCISES} == set(HONEST)
    for e in ex.EXERCISES:
        assert callable(ex.get_check(e.name)) and e.notebook in ex.NOTEBOOKS and e.minutes > 0
    with pytest.raises(ValueError, match="no exercise"):
        ex.get_check("nope")


@pytest.mark.parametrize("name", sorted(HONEST))
def test_the_solution_passes_every_check(name, capsys):
    result = ex.get_check(name)(HONEST[name])
    assert result.passed and result.status == "passed", result.verdict
    assert len(result.cases) >= 4 and all(c.status == "passed" for c in result.cases)
    assert "all" in capsys.readouterr().out
    assert ex.summary()[name]["passed"] is True


@pytest.mark.parametrize("name", sorted(HONEST))
def test_a_stub_gets_a_not_implemented_verdict_without_traceback(name, capsys):
    student = {k: stub for k in CONFIGS} if name == "pooling_configs" else stub
    result = ex.get_check(name)(student)
    out = capsys.readouterr().out
    assert result.status == "not_implemented" and not result.passed
    assert result.message == ex.STUB_MESSAGE
    assert all(c.status == "not_implemented" for c in result.cases)
    assert "not implemented yet" in out and "Traceback" not in out
    assert ex.summary()[name]["status"] == "not_implemented"


def _wrong_f_alpha(v, a, alpha):  # the exponent with the wrong sign of alpha
    flip = math.isfinite(alpha) and alpha != 1
    return HONEST["f_alpha"](v, a, -alpha if flip else alpha)


def _simpool_batch_min(x, params):  # the release's minimum over the whole batch
    d = x.shape[-1]
    xn = F.layer_norm(x, (d,), params["ln_weight"], params["ln_bias"], params["ln_eps"])
    a = torch.softmax(torch.einsum("bd,bnd->bn", x.mean(1) @ params["wq"].T, xn @ params["wk"].T) / math.sqrt(d), -1)
    g = params["gamma"]
    if g is None:
        return torch.einsum("bn,bnd->bd", a, xn), a
    v = xn - xn.amin() + params["eps"]
    return torch.einsum("bn,bnd->bd", a, v.pow(g)).pow(1 / g), a


def _rollout_reversed(maps, prefix=1):
    joint = None
    for a in maps:
        a = a.mean(1) + torch.eye(a.shape[-1], dtype=a.dtype)
        a = a / a.sum(-1, keepdim=True)
        joint = a if joint is None else joint @ a
    return joint[:, 0, prefix:]


def _rollout_without_residual(maps, prefix=1):
    joint = None
    for a in maps:
        a = a.mean(1)
        joint = a if joint is None else a @ joint
    return joint[:, 0, prefix:]


def _rollout_per_head_without_final_mean(method, d, depth, h, p, s):
    if method != "rollout_per_head":
        return HONEST["dfsm_flops"](method, d, depth, h, p, s)
    return HONEST["dfsm_flops"](method, d, depth, h, p, s) - h * ((s // p) ** 2 + 1) ** 2


def _flops_without_overlap(method, d, depth, h, p, s):
    if method != "psm":
        return HONEST["dfsm_flops"](method, d, depth, h, p, s)
    n = int((s - p) / p + 1) ** 2 + 1  # stride P: no overlapping patches
    return h * (depth - 2) * n * n * (2 * n - 1)


def _student_boxes(m, tau, normalize=True, connectivity=8, inclusive=False):
    """A student's estimated_boxes, written independently of the check (with the mistakes as options)."""
    s = m.double()
    if normalize:
        s = (s - s.min()) / (s.max() - s.min()) if s.max() > s.min() else torch.zeros_like(s)
    structure = np.ones((3, 3)) if connectivity == 8 else None
    labels, n = ndimage.label((s >= tau).numpy(), structure=structure)
    if n == 0:
        return torch.zeros(1, 4)
    boxes = torch.tensor([[sl[1].start, sl[0].start, sl[1].stop, sl[0].stop] for sl in ndimage.find_objects(labels)],
                         dtype=torch.float64)
    return boxes - torch.tensor([0.0, 0.0, 1.0, 1.0]) if inclusive else boxes


def _student_maxboxacc(maps, gt_boxes, delta, thresholds, per_image=False, plus_one=0.0, normalize=True,
                       boxes_fn=None):
    """A student's maxboxacc (loops, torch), with the mistakes as options: the best τ per image, IoU with +1
    (inclusive) areas, no normalisation."""
    boxes_fn = boxes_fn or (lambda m, t: _student_boxes(m, t, normalize=normalize))
    hits = torch.zeros(len(maps), len(thresholds))
    for i, (m, gt) in enumerate(zip(maps, gt_boxes.double())):
        for j, tau in enumerate(thresholds):
            b = torch.as_tensor(boxes_fn(m, tau), dtype=torch.float64)
            w = (torch.minimum(b[:, 2], gt[2]) - torch.maximum(b[:, 0], gt[0]) + plus_one).clamp(min=0)
            h = (torch.minimum(b[:, 3], gt[3]) - torch.maximum(b[:, 1], gt[1]) + plus_one).clamp(min=0)
            area_b = (b[:, 2] - b[:, 0] + plus_one) * (b[:, 3] - b[:, 1] + plus_one)
            area_gt = (gt[2] - gt[0] + plus_one) * (gt[3] - gt[1] + plus_one)
            hits[i, j] = float(((w * h) / (area_b + area_gt - w * h)).max() >= delta)
    if per_image:
        return float(hits.max(1).values.mean() * 100)
    return float(hits.mean(0).max() * 100)


WRONG = [
    ("f_alpha", _wrong_f_alpha, "α = −3", "sign of α flipped"),
    ("f_alpha", lambda v, a, alpha: HONEST["f_alpha"](v, torch.full_like(a, 1 / a.shape[1]), alpha),
     "softmax weights", "unweighted mean"),
    ("pooling_configs", {**CONFIGS, "make_pnorm": lambda p: PoolingProcess(init=None, similarity=None,
                                                                            attention="ones", f=float(p))},
     "the 2-norm", "α = p"),
    ("pooling_configs", {**CONFIGS, "make_pnorm": lambda p: PoolingProcess(init=None, similarity=None,
                                                                            attention="uniform", f=1.0 - 2 * p)},
     "p = 1 is sum pooling", "GeM"),
    ("pooling_configs", {**CONFIGS, "make_norm_weighted": lambda: None}, "weights ‖x_j‖²", "PoolingProcess"),
    ("pooling_configs", {**CONFIGS, "make_norm_weighted": lambda: PoolingProcess(init=None, similarity="dot",
                                                                                  attention="identity", f=-1.0)},
     "negative values", "normalised to sum to one"),
    ("pooling_configs", {**CONFIGS, "make_mean_shift": lambda s, t: PoolingProcess(
        init="gap", similarity="neg_sqdist", scale=1 / s ** 2, attention="softmax_locations", f=-1.0, iterations=t)},
     "one step", "2σ²"),
    ("pooling_configs", {**CONFIGS, "make_mean_shift": lambda s, t: N01["make_mean_shift"](s, 1)},
     "five steps", "repeats the step"),
    ("pooling_configs", {**CONFIGS, "make_mean_shift": lambda s, t: PoolingProcess(
        init="gap", similarity="neg_sqdist", scale=1 / (2 * s ** 2), attention="softmax_locations", f=-1.0,
        iterations=t + 1)}, "ten steps", "One step too many"),
    ("simpool_forward", _simpool_batch_min, "minimum is per image", "whole batch"),
    ("gls", lambda outs, w, b, p=1, eps=1e-6: torch.stack([_dot_product_gls(_ln(o, w, b, eps), "cosine", p)
                                                         for o in outs]), "one layer", "dot product"),
    ("gls", lambda outs, w, b, p=1, eps=1e-6: HONEST["gls"](outs, w, b, 1, eps), "register tokens",
     "registers are not patches"),
    ("gls", lambda outs, w, b, p=1, eps=1e-6: torch.stack([F.cosine_similarity(o[:, :1], o[:, p:], dim=-1)
                                                         for o in outs]), "offsets", "final LayerNorm"),
    ("gls", lambda outs, w, b, p=1, eps=1e-6: HONEST["gls"](outs, torch.ones_like(w), torch.zeros_like(b), p, eps),
     "3 layers", "weight and bias"),
    ("enclosing_box", N03["release_box"], "(3, 4) and (5, 6)", "release's box rule"),
    ("enclosing_box", lambda s, g, p, o: HONEST["enclosing_box"](s, g, p, o).float(), "one selected token",
     "integers"),
    ("enclosing_box", lambda s, g, p, o: HONEST["enclosing_box"](s, g, p, o)[:, [1, 0, 3, 2]], "(3, 4) and (5, 6)",
     "(y0, x0, y1, x1)"),
    ("attention_rollout", _rollout_without_residual, "one layer", "residual"),
    ("attention_rollout", _rollout_reversed, "2 layers", "opposite order"),
    ("dfsm_flops", _flops_without_overlap, "PSM, ViT B-16", "overlapping patches"),
    ("dfsm_flops", lambda m, d, depth, h, p, s: HONEST["dfsm_flops"](m, d, depth, h, p, s) + 1, "GLS",
     "off by +1 FLOPs"),
    ("dfsm_flops", lambda m, d, depth, h, p, s: HONEST["dfsm_flops"]("rollout" if m == "rollout_per_head" else m,
                                                                     d, depth, h, p, s),
     "Rollout per head", "head mean before the products"),
    ("dfsm_flops", _rollout_per_head_without_final_mean, "Rollout per head", "averaged into one map"),
    ("gamma_sharpness", lambda v, a, g: a.unsqueeze(-1).expand_as(v), "γ = 2", "attention a"),
    ("estimated_boxes", lambda m, t: _student_boxes(m, t, normalize=False), "negative scores", "normalisation"),
    ("estimated_boxes", lambda m, t: _student_boxes(m, t, connectivity=4), "diagonal chain", "8-connectivity"),
    ("estimated_boxes", lambda m, t: _student_boxes(m, t, inclusive=True), "one Gaussian blob", "half-open"),
    ("estimated_boxes", lambda m, t: _student_boxes(m, t)[:1], "two separate blobs", "every connected component"),
    ("estimated_boxes", lambda m, t: _student_boxes(m, t)[:, 2:], "one Gaussian blob", "four numbers per row"),
    ("maxboxacc", lambda *a: _student_maxboxacc(*a, per_image=True), "one τ for the whole set",
     "best τ chosen per image"),
    ("maxboxacc", lambda *a: _student_maxboxacc(*a, plus_one=1.0), "objects of a few pixels", "+1 (inclusive"),
    ("maxboxacc", lambda *a: _student_maxboxacc(*a, normalize=False), "negative scores", "normalised to [0, 1]"),
    ("maxboxacc", lambda *a: _student_maxboxacc(*a) / 100, "8 images", "a fraction instead of a percentage"),
]


@pytest.mark.parametrize("name, student, case, hint", WRONG, ids=[f"{w[0]}-{w[3]}" for w in WRONG])
def test_wrong_answers_fail_the_right_case_with_a_hint_and_no_solution(name, student, case, hint, capsys):
    result = ex.get_check(name)(student)
    out = capsys.readouterr().out
    assert result.status == "failed" and not result.passed
    failed = [c for c in result.cases if c.status == "failed"]
    assert any(case in c.name for c in failed), [c.name for c in failed]
    first = next(c for c in failed if case in c.name)
    assert hint in first.got + first.hint + first.expected, (first.got, first.hint)
    assert first.expected and first.got
    assert "expected:" in out and "hint:" in out and "Traceback" not in out
    leaked = [line for line in _reference_lines() if line in out]
    assert not leaked, leaked


def test_exceptions_in_student_code_name_the_exception_the_case_and_the_line(capsys):
    def buggy(v, a, alpha):
        z = v @ a  # wrong shapes: (B, p, n) @ (B, p, k)
        return z

    result = ex.check_f_alpha(buggy)
    out = capsys.readouterr().out
    assert result.status == "failed"
    assert all(c.status == "error" for c in result.cases)
    assert "RuntimeError" in result.cases[0].error and "(in `buggy`)" in result.cases[0].error
    assert "z = v @ a" in result.cases[0].error  # the student's own line, not torch's internals
    assert "case 1: α = −1" in out and "your code raised RuntimeError" in out and "Traceback" not in out
    assert "shape" in result.cases[0].hint


def test_in_place_changes_of_the_inputs_and_forgotten_returns_are_reported(capsys):
    def in_place(v, a, alpha):
        v.mul_(2.0)
        return HONEST["f_alpha"](v, a, alpha)

    result = ex.check_f_alpha(in_place)
    assert result.status == "failed" and "modified in place" in result.cases[0].got
    result = ex.check_gls(lambda *a: None)
    assert result.cases[0].got == "None" and "return" in result.cases[0].hint
    result = ex.check_dfsm_flops(lambda *a: None)
    assert "return" in result.cases[0].hint
    capsys.readouterr()


def test_passing_a_result_instead_of_the_function_gets_a_friendly_verdict(capsys):
    result = ex.check_gls(torch.zeros(1, 4))
    out = capsys.readouterr().out
    assert result.status == "failed" and "without calling it" in result.cases[0].hint
    assert "Traceback" not in out


def test_a_partly_written_namespace_reports_what_passes_and_what_is_missing(capsys):
    result = ex.check_pooling_configs({**CONFIGS, "make_mean_shift": stub})
    out = capsys.readouterr().out
    assert result.status == "not_implemented" and result.message == ex.STUB_MESSAGE
    assert [c.status for c in result.cases] == ["passed"] * 5 + ["not_implemented"] * 3
    assert "5 of 8 hidden cases pass so far" in out and "`stub` raised NotImplementedError" in out


def test_a_stub_beside_a_wrong_answer_is_a_failure(capsys):
    result = ex.check_pooling_configs({**CONFIGS, "make_pnorm": lambda p: None, "make_mean_shift": stub})
    capsys.readouterr()
    assert result.status == "failed"
    assert [c.status for c in result.cases] == ["failed"] * 3 + ["passed"] * 2 + ["not_implemented"] * 3


def test_a_missing_part_of_a_namespace_fails_its_cases_only(capsys):
    result = ex.check_pooling_configs({"make_norm_weighted": CONFIGS["make_norm_weighted"]})
    capsys.readouterr()
    status = {c.name: c.status for c in result.cases}
    assert [s for k, s in status.items() if k.startswith("make_norm_weighted()")] == ["passed", "passed"]
    assert all(s == "failed" for k, s in status.items() if not k.startswith("make_norm_weighted()"))
    assert "make_pnorm" in result.cases[0].expected and "nothing of that name" in result.cases[0].got


def test_the_pooling_configs_references_agree_with_the_framework():
    """The check's closed forms and mean-shift loop against the framework's own configurations (in the test only:
    the check never calls the framework to grade)."""
    g = torch.Generator().manual_seed(7)
    x = torch.randn(2, 30, 5, generator=g, dtype=torch.float64)
    for sigma, steps in ((2.0, 1), (1.0, 5), (0.5, 10)):
        process = PoolingProcess(init="gap", similarity="neg_sqdist", scale=1 / (2 * sigma ** 2), f=-1.0,
                                 iterations=steps)
        assert torch.allclose(mean_shift_reference(x, sigma, steps), process(x).u[:, 0], rtol=1e-10)
    assert torch.allclose(N01["make_pnorm"](3.0)(x.abs() + 0.1).u[:, 0],
                          (x.abs() + 0.1).pow(3).sum(1).pow(1 / 3), rtol=1e-10)


def test_checks_are_deterministic_and_quiet_on_request(capsys):
    a = ex.check_simpool_forward(_simpool_batch_min, quiet=True)
    b = ex.check_simpool_forward(_simpool_batch_min, quiet=True)
    assert capsys.readouterr().out == ""
    assert a.verdict == b.verdict and [c.got for c in a.cases] == [c.got for c in b.cases]


def test_results_registry_and_scoreboard(capsys):
    ex.reset()
    ex.check_gls(HONEST["gls"], quiet=True)
    ex.check_enclosing_box(stub, quiet=True)
    board = ex.scoreboard(["gls", "enclosing_box", "box_rule_ablation"])
    out = capsys.readouterr().out
    assert set(board) == {"gls", "enclosing_box"}
    assert board["gls"]["status"] == "passed" and board["enclosing_box"]["status"] == "not_implemented"
    assert "box_rule_ablation    not checked yet" in out
    assert repr(ex.results()["gls"]).startswith("<CheckResult gls: passed")
    ex.reset()
    assert ex.summary() == {}


def test_shares_reference_sums_to_one_and_matches_the_closed_form():
    g = torch.Generator().manual_seed(0)
    v = torch.rand(2, 7, 3, generator=g, dtype=torch.float64) + 0.1
    a = torch.rand(2, 7, generator=g, dtype=torch.float64).softmax(-1)
    for gamma in (0.5, 1.0, 3.0):
        w = reference_shares(v, a, gamma)  # the closed form a_j v_j^γ / Σ a v^γ
        assert torch.allclose(w, _shares_by_autograd(v, a, gamma), atol=1e-12)  # the definition, through the core
        assert torch.allclose(w.sum(1), torch.ones(2, 3, dtype=torch.float64))


def test_selected_inside_reference_on_blocks():
    def block(h, w):
        s = torch.zeros(1, 196)
        for i in range(h):
            for j in range(w):
                s[0, (4 + i) * 14 + 5 + j] = 1.0
        return s

    for h in range(1, 5):
        for w in range(1, 5):
            kept = float(selected_inside_reference(block(h, w), (14, 14), 16, h * w, "reference"))
            assert kept == pytest.approx(max(h - 1, 1) * max(w - 1, 1) / (h * w))
            assert float(selected_inside_reference(block(h, w), (14, 14), 16, h * w, "paper")) == 1.0


def test_check_tensors_are_compared_in_float64_whatever_the_student_dtype(capsys):
    result = ex.check_gls(lambda outs, w, b, p=1, eps=1e-6: torch.stack(
        [F.cosine_similarity(t[:, :1], t[:, p:], dim=-1) for t in (_ln(o, w, b, eps) for o in outs)]).float())
    capsys.readouterr()
    assert result.passed


def test_the_localization_references_agree_with_the_core_metric_and_a_flood_fill():
    g = torch.Generator().manual_seed(3)
    maps = torch.rand(5, 12, 20, generator=g).double()  # float32-representable: the core upsamples in float32
    maps[2] = 0.5  # a constant map
    gt = torch.tensor([[0, 0, 6, 6], [3, 2, 15, 12], [0, 0, 20, 12], [10, 4, 11, 5], [4.5, 1.5, 9.5, 7.5]])
    taus = [0.0, 0.2, 0.45, 0.7, 0.9]
    for delta in (0.1, 0.3, 0.5):
        direct = max_box_acc(maps, gt, (12, 20), iou_thresholds=(delta,), cam_thresholds=taus,
                             convention="continuous")["maxboxacc"][delta]
        assert maxboxacc_reference(maps, gt, delta, taus) == pytest.approx(direct, abs=1e-12)
        assert _student_maxboxacc(maps, gt, delta, taus) == pytest.approx(direct, abs=1e-9)

    def flood_fill_boxes(m, tau):  # an independent 8-connected labelling: breadth-first search on the mask
        s = normalize_map(m.numpy())
        mask, seen, boxes = s >= tau, np.zeros(s.shape, bool), []
        for start in zip(*np.nonzero(mask)):
            if seen[start]:
                continue
            seen[start], todo, ys, xs = True, [start], [], []
            while todo:
                y, x = todo.pop()
                ys.append(y)
                xs.append(x)
                for dy in (-1, 0, 1):
                    for dx in (-1, 0, 1):
                        q = (y + dy, x + dx)
                        if 0 <= q[0] < s.shape[0] and 0 <= q[1] < s.shape[1] and mask[q] and not seen[q]:
                            seen[q] = True
                            todo.append(q)
            boxes.append([min(xs), min(ys), max(xs) + 1, max(ys) + 1])
        return sorted(boxes) or [[0, 0, 0, 0]]

    for m in maps:
        for tau in taus:
            assert sorted(estimated_boxes_reference(m, tau).tolist()) == flood_fill_boxes(m, tau)


def test_localization_checks_report_an_empty_mask_and_an_unfinished_helper(capsys):
    def empty_when_nothing(m, t):
        b = _student_boxes(m, t)
        return b[:0] if not b[:, 2:].any() else b

    result = ex.check_estimated_boxes(empty_when_nothing)
    case = next(c for c in result.cases if "empty mask" in c.name)
    assert result.status == "failed" and case.status == "failed" and "(0, 0, 0, 0)" in case.hint
    assert sum(c.status == "failed" for c in result.cases) == 1

    def unfinished(m, t):  # maxboxacc written, estimated_boxes still the stub
        raise NotImplementedError(ex.STUB_MESSAGE)

    result = ex.check_maxboxacc(lambda *a: _student_maxboxacc(*a, boxes_fn=unfinished))
    assert result.status == "not_implemented" and result.message == ex.STUB_MESSAGE
    assert "Traceback" not in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------ delegation
@pytest.mark.parametrize("name, cheat, ref", CHEATS, ids=[f"{c[0]}-{c[2]}" for c in CHEATS])
def test_a_submission_that_calls_the_reference_fails_with_a_hint_that_says_so(name, cheat, ref, capsys):
    result = ex.get_check(name)(cheat)
    out = capsys.readouterr().out
    assert result.status == "failed" and not result.passed
    assert all(c.status == "failed" for c in result.cases), [(c.name, c.status) for c in result.cases]
    for c in result.cases:
        assert "calls the reference implementation" in c.hint and "write it yourself" in c.hint, c.hint
        assert ref in c.hint, c.hint
    assert "Traceback" not in out and "write it yourself" in out
    assert ex.get_check(name)(HONEST[name], quiet=True).passed  # the references are back, the honest one passes


def test_a_delegation_is_caught_even_when_the_student_swallows_the_error(capsys):
    def sneaky(v, a, alpha):
        try:
            return FAlpha(alpha)(v, a)
        except Exception:  # noqa: BLE001
            return HONEST["f_alpha"](v, a, alpha)

    result = ex.check_f_alpha(sneaky)
    capsys.readouterr()
    assert result.status == "failed" and "FAlpha" in result.cases[0].hint


def test_blocked_references_are_restored_after_the_check_and_after_an_exception():
    codes = {name: fn.__code__ for name, fn in core_functions("glsim_core.selection.gls").items()}
    with pytest.raises(RuntimeError, match="boom"):
        with references_blocked(core_functions("glsim_core.selection.gls")) as called:
            with pytest.raises(ReferenceCalled):
                select_boxes(torch.rand(1, 4), (2, 2), 8, 1)
            assert called == ["glsim_core.selection.gls.select_boxes"]
            raise RuntimeError("boom")
    assert {name: fn.__code__ for name, fn in core_functions("glsim_core.selection.gls").items()} == codes
    assert select_boxes(torch.tensor([[0.0, 1.0, 0.0, 0.0]]), (2, 2), 8, 1).tolist() == [[8, 0, 16, 8]]
    ex.check_gls(lambda t, p=1: global_local_similarity(t, "cosine", p), quiet=True)
    tokens = torch.randn(1, 5, 3)
    assert global_local_similarity(tokens).shape == (1, 4)  # usable again after a check that blocked it


def test_student_notebooks_do_not_import_the_references_they_re_implement(root):
    forbidden = {"01_pooling_framework_exercises": ["FAlpha", "weighted_pool", "pool"],
                 "02_simpool_exercises": ["SimPool", "FAlpha"],
                 "03_gls_exercises": ["select_boxes", "top_o_indices", "global_local_similarity"],
                 "05_dfsm_cost_exercises": ["attention_rollout", "dfsm_flops"],
                 "08_localization_exercises": ["boxes_from_mask", "normalize_map", "box_iou", "max_box_acc",
                                               "MaxBoxAccV2"]}
    for stem, names in forbidden.items():
        nb = json.loads((root / "notebooks" / "exercises" / f"{stem}.ipynb").read_text())
        code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
        used = [n for n in names if re.search(rf"(import [^\n]*\b{n}\b|\b{n}\(|\b{n}\.)", code)]
        assert not used, (stem, used)


# ------------------------------------------------------------------------------------------------ independence
def test_the_graders_references_agree_with_the_core():
    g = torch.Generator().manual_seed(5)
    v = torch.rand(2, 6, 4, generator=g, dtype=torch.float64) + 0.1
    a = torch.rand(2, 6, 2, generator=g, dtype=torch.float64)
    a = a / a.sum(1, keepdim=True)
    for alpha in (-math.inf, -3.0, -1.0, 0.5, 1.0, 3.0, math.inf):
        assert torch.allclose(power_mean_reference(v, a, alpha), FAlpha(alpha)(v, a), rtol=1e-10)
    x = torch.randn(3, 10, 8, generator=g, dtype=torch.float64)
    for gamma in (None, 1.25, 2.0):
        params = simpool_params(8, gamma, 1)
        for mine, core in zip(simpool_reference(x, params), _simpool_module(x, params)(x, return_attention=True)):
            assert torch.allclose(mine, core, rtol=1e-9, atol=1e-12)
    tokens = torch.randn(2, 3 + 12, 6, generator=g, dtype=torch.float64)
    assert torch.allclose(gls_reference(tokens, num_prefix_tokens=3), global_local_similarity(tokens, "cosine", 3),
                          atol=1e-12)
    outs, w, b = [tokens, tokens * 3 + 1], torch.rand(6, generator=g, dtype=torch.float64), torch.randn(6, generator=g)
    per_layer = torch.stack([global_local_similarity(_ln(o, w, b.double(), 1e-6), "cosine", 3) for o in outs])
    assert torch.allclose(gls_reference(outs, w, b.double(), 3), per_layer, atol=1e-12)
    scores = torch.rand(4, 24, generator=g, dtype=torch.float64)
    scores[0] = 0.5  # ties
    for rule in ("paper", "reference"):
        assert torch.equal(enclosing_box_reference(scores, (4, 6), 8, 5, rule),
                           select_boxes(scores, (4, 6), 8, 5, rule))
        assert torch.allclose(selected_inside_reference(scores, (4, 6), 8, 5, rule),
                              _core_selected_inside(scores, (4, 6), 8, 5, rule))
    maps = [(torch.randn(2, 3, 11, 11, generator=g, dtype=torch.float64) * 2).softmax(-1) for _ in range(4)]
    assert torch.allclose(rollout_reference(maps, 2), attention_rollout(maps, 2), atol=1e-12)
    for model in ("vit_base_patch16_224", "vit_base_patch14_224"):
        spec = ViTSpec(768, 12, 12, 16 if "16" in model else 14)
        for size in PAPER_IMG_SIZES:
            for method in ("psm", "rollout", "maws", "gls"):
                assert flops_reference(method, spec, size) == dfsm_flops(method, spec, size)["flops"]
    for size in PAPER_IMG_SIZES:  # and the paper's printed Table 1, independently of the core's count
        for method in ("psm", "rollout", "maws", "gls"):
            printed = PAPER_TABLES["vit_base_patch16_224"][size][method][0]
            assert format_mflops(round(flops_reference(method, ViTSpec(768, 12, 12, 16), size) / 1e6, 4)) == printed


def _ln(tokens, weight, bias, eps):
    return F.layer_norm(tokens, (tokens.shape[-1],), weight, bias, eps)


def _dot_product_gls(tokens, metric="cosine", num_prefix_tokens=1, **_kw):
    return torch.einsum("bd,bnd->bn", tokens[:, 0], tokens[:, num_prefix_tokens:])


def _unweighted_forward(self, v, a):
    return (v.pow(self.gamma).mean(1, keepdim=True)).pow(1 / self.gamma).expand(-1, a.shape[-1], -1)


def _release_boxes_as_paper(scores, grid_size, patch_size, top_o, box_rule="paper"):
    rows, cols = grid_size
    idx = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :top_o]
    r, c = idx // cols, idx % cols
    r1, c1 = torch.maximum(r.amax(1), r.amin(1) + 1), torch.maximum(c.amax(1), c.amin(1) + 1)
    return (torch.stack([c.amin(1), r.amin(1), c1, r1], 1) * patch_size).long()


def _four_connected_boxes(mask, multi_contour=True):
    labels, n = ndimage.label(np.asarray(mask, bool))
    if n == 0:
        return np.zeros((1, 4))
    return np.array([[s[1].start, s[0].start, s[1].stop, s[0].stop] for s in ndimage.find_objects(labels)], float)


def _rollout_reversed_core(attentions, num_prefix_tokens=1, residual=True):  # the layers multiplied the wrong way
    joint = None
    for a in attentions:
        a = a.mean(1) + torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
        a = a / a.sum(-1, keepdim=True)
        joint = a if joint is None else joint @ a
    return joint[:, 0, num_prefix_tokens:]


def _method_flops_without_overlap(method, s, img_size):  # TransFG's overlapping patches forgotten
    n = int((img_size - s.patch_size) / s.patch_size + 1) ** 2 + 1
    h, depth, d = s.num_heads, s.depth, s.embed_dim
    matmul = n * n * (2 * n - 1)
    flops = {"psm": h * (depth - 2) * matmul, "rollout": depth * (h * n * n + n * n + n + 1) + (depth - 1) * matmul,
             "maws": (depth - 1) * (5 * n * h + 2 * h + n), "gls": (d + 2 * (d + 1) + 1) * (n - 1)}
    return flops.get(method, 0), n


def _inclusive_box_iou(a, b, inclusive=False):  # the +1 pixel areas of inclusive boxes, whatever is asked
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    w = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]) + 1, 0, None)
    h = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]) + 1, 0, None)
    area_a = (a[:, 2] - a[:, 0] + 1) * (a[:, 3] - a[:, 1] + 1)
    area_b = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    return w * h / (area_a[:, None] + area_b[None, :] - w * h)


BUGS = [  # (exercise, the core function, a bug put into it, a student answer with the same bug)
    ("gls", global_local_similarity, _dot_product_gls,
     lambda outs, w, b, p=1, eps=1e-6: torch.stack([_dot_product_gls(_ln(o, w, b, eps), "cosine", p) for o in outs])),
    ("f_alpha", FAlpha.forward, _unweighted_forward,
     lambda v, a, alpha: HONEST["f_alpha"](v, torch.full_like(a, 1 / a.shape[1]), alpha)),
    ("enclosing_box", select_boxes, _release_boxes_as_paper, N03["release_box"]),
    ("estimated_boxes", boxes_from_mask, _four_connected_boxes, lambda m, t: _student_boxes(m, t, connectivity=4)),
    ("box_rule_ablation", select_boxes, _release_boxes_as_paper,
     lambda s, g, p, o, rule: HONEST["box_rule_ablation"](s, g, p, o, "reference")),
    ("attention_rollout", attention_rollout, _rollout_reversed_core, _rollout_reversed),
    ("dfsm_flops", _method_flops, _method_flops_without_overlap, _flops_without_overlap),
    ("maxboxacc", box_iou, _inclusive_box_iou, lambda *a: _student_maxboxacc(*a, plus_one=1.0)),
]


@pytest.mark.parametrize("name, core, bug, wrong", BUGS, ids=[b[0] for b in BUGS])
def test_a_bug_in_the_core_does_not_move_the_grader(name, core, bug, wrong, monkeypatch, capsys):
    monkeypatch.setattr(core, "__code__", bug.__code__)  # the core now has the bug, wherever it is called from
    assert not ex.get_check(name)(wrong, quiet=True).passed  # the same wrong answer is still rejected
    assert ex.get_check(name)(HONEST[name], quiet=True).passed  # the right one still accepted
