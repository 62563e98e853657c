"""The exercise checks: they pass the core's own implementations, catch wrong answers with a targeted hint, report
stubs and student exceptions as verdicts (never a traceback) and never print the reference implementation."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

from glsim_core import exercises as ex
from glsim_core.exercises.checks_localization import estimated_boxes_reference, maxboxacc_reference
from glsim_core.exercises.checks_pooling import reference_shares
from glsim_core.exercises.checks_selection import selected_inside_reference
from glsim_core.metrics.localization import MaxBoxAccV2, box_iou, boxes_from_mask, max_box_acc, normalize_map
from glsim_core.pooling import Exp, FAlpha, PoolingProcess, SimPool
from glsim_core.selection import attention_rollout, dfsm_flops, global_local_similarity, select_boxes
from glsim_core.selection.flops import ViTSpec, _method_flops


def stub(*_args, **_kwargs):
    raise NotImplementedError(ex.STUB_MESSAGE)


CONFIGS = dict(
    make_gap=lambda: PoolingProcess(init=None, similarity=None, attention="uniform", f=-1.0),
    make_gem=lambda p: PoolingProcess(init=None, similarity=None, attention="uniform", f=FAlpha(gamma=p)),
    make_lse=lambda r: PoolingProcess(init=None, similarity=None, attention="uniform", f=Exp(r)),
)

#: Each check against the core's own implementation (what a correct student answer computes).
REFERENCES = {
    "f_alpha": lambda v, a, alpha: FAlpha(alpha)(v, a),
    "pooling_configs": CONFIGS,
    "simpool_forward": lambda sp, x: sp(x, return_attention=True),
    "gamma_sharpness": reference_shares,
    "gls": lambda tokens, prefix=1: global_local_similarity(tokens, "cosine", prefix),
    "enclosing_box": lambda s, g, p, o: select_boxes(s, g, p, o),
    "box_rule_ablation": selected_inside_reference,
    "attention_rollout": attention_rollout,
    "dfsm_flops": lambda m, d, depth, h, p, s: dfsm_flops(m, ViTSpec(d, depth, h, p), s)["flops"],
    "estimated_boxes": lambda m, tau: boxes_from_mask(normalize_map(m.numpy()) >= tau),
    "maxboxacc": lambda maps, gt, delta, taus: max_box_acc(maps, gt, tuple(maps.shape[-2:]), iou_thresholds=(delta,),
                                                           cam_thresholds=taus,
                                                           convention="continuous")["maxboxacc"][delta],
}

#: Reference code the verdicts must never print.
REFERENCE_SOURCES = [FAlpha.forward, SimPool.forward, select_boxes, attention_rollout, global_local_similarity,
                     _method_flops, reference_shares, selected_inside_reference, estimated_boxes_reference,
                     maxboxacc_reference, normalize_map, boxes_from_mask, box_iou, MaxBoxAccV2.best_ious]


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
    assert {e.name for e in ex.EXERCISES} == set(REFERENCES)
    for e in ex.EXERCISES:
        assert callable(ex.get_check(e.name)) and e.notebook in ex.NOTEBOOKS and e.minutes > 0
    with pytest.raises(ValueError, match="no exercise"):
        ex.get_check("nope")


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_the_core_implementation_passes_every_check(name, capsys):
    result = ex.get_check(name)(REFERENCES[name])
    assert result.passed and result.status == "passed", result.verdict
    assert len(result.cases) >= 4 and all(c.status == "passed" for c in result.cases)
    assert "all" in capsys.readouterr().out
    assert ex.summary()[name]["passed"] is True


@pytest.mark.parametrize("name", sorted(REFERENCES))
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
    return FAlpha(-alpha)(v, a) if math.isfinite(alpha) and alpha != 1 else FAlpha(alpha)(v, a)


def _simpool_batch_min(sp, x):
    ref = SimPool(sp.dim, gamma=sp.gamma, min_over="batch").to(x.dtype)
    ref.load_state_dict(sp.state_dict())
    return ref(x, return_attention=True)


def _rollout_reversed(maps, prefix=1):
    joint = None
    for a in maps:
        a = a.mean(1) + torch.eye(a.shape[-1], dtype=a.dtype)
        a = a / a.sum(-1, keepdim=True)
        joint = a if joint is None else joint @ a
    return joint[:, 0, prefix:]


def _flops_without_overlap(method, d, depth, h, p, s):
    if method != "psm":
        return REFERENCES["dfsm_flops"](method, d, depth, h, p, s)
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
    ("f_alpha", lambda v, a, alpha: FAlpha(alpha)(v, torch.full_like(a, 1 / a.shape[1])), "softmax weights",
     "unweighted mean"),
    ("pooling_configs", {**CONFIGS, "make_gem": lambda p: PoolingProcess(init=None, similarity=None,
                                                                          attention="uniform", f=FAlpha(p))},
     "GeM with p = 3", "α = p"),
    ("pooling_configs", {**CONFIGS, "make_gap": lambda: None}, "make_gap", "PoolingProcess"),
    ("simpool_forward", _simpool_batch_min, "minimum is per image", "whole batch"),
    ("gls", lambda t, p=1: torch.einsum("bd,bnd->bn", t[:, 0], t[:, p:]), "one image", "dot product"),
    ("gls", lambda t, p=1: global_local_similarity(t, "cosine", 1), "register tokens", "registers are not patches"),
    ("enclosing_box", lambda s, g, p, o: select_boxes(s, g, p, o, "reference"), "(3, 4) and (5, 6)",
     "release's box rule"),
    ("enclosing_box", lambda s, g, p, o: select_boxes(s, g, p, o).float(), "one selected token", "integers"),
    ("enclosing_box", lambda s, g, p, o: select_boxes(s, g, p, o)[:, [1, 0, 3, 2]], "(3, 4) and (5, 6)",
     "(y0, x0, y1, x1)"),
    ("attention_rollout", lambda m, p=1: attention_rollout(m, p, residual=False), "one layer", "residual"),
    ("attention_rollout", _rollout_reversed, "2 layers", "opposite order"),
    ("dfsm_flops", _flops_without_overlap, "PSM, ViT B-16", "overlapping patches"),
    ("dfsm_flops", lambda m, d, depth, h, p, s: REFERENCES["dfsm_flops"](m, d, depth, h, p, s) + 1, "GLS",
     "off by +1 FLOPs"),
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
        return FAlpha(alpha)(v, a)

    result = ex.check_f_alpha(in_place)
    assert result.status == "failed" and "modified in place" in result.cases[0].got
    result = ex.check_gls(lambda t, p=1: None)
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
    result = ex.check_pooling_configs({**CONFIGS, "make_lse": stub})
    out = capsys.readouterr().out
    assert result.status == "not_implemented" and result.message == ex.STUB_MESSAGE
    assert [c.status for c in result.cases] == ["passed"] * 4 + ["not_implemented"] * 2
    assert "4 of 6 hidden cases pass so far" in out and "`stub` raised NotImplementedError" in out


def test_a_stub_beside_a_wrong_answer_is_a_failure(capsys):
    result = ex.check_pooling_configs({**CONFIGS, "make_gap": lambda: None, "make_lse": stub})
    capsys.readouterr()
    assert result.status == "failed"
    assert [c.status for c in result.cases] == ["failed"] + ["passed"] * 3 + ["not_implemented"] * 2


def test_a_missing_part_of_a_namespace_fails_its_cases_only(capsys):
    result = ex.check_pooling_configs({"make_gap": CONFIGS["make_gap"]})
    capsys.readouterr()
    status = {c.name.split(":")[0]: c.status for c in result.cases}
    assert status["make_gap()"] == "passed"
    assert all(s == "failed" for k, s in status.items() if k != "make_gap()")
    assert "make_gem" in result.cases[1].expected and "nothing of that name" in result.cases[1].got


def test_checks_are_deterministic_and_quiet_on_request(capsys):
    a = ex.check_simpool_forward(_simpool_batch_min, quiet=True)
    b = ex.check_simpool_forward(_simpool_batch_min, quiet=True)
    assert capsys.readouterr().out == ""
    assert a.verdict == b.verdict and [c.got for c in a.cases] == [c.got for c in b.cases]


def test_results_registry_and_scoreboard(capsys):
    ex.reset()
    ex.check_gls(REFERENCES["gls"], quiet=True)
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
        w = reference_shares(v, a, gamma)
        tilted = a.unsqueeze(-1) * v.pow(gamma)  # independent closed form: a_j v_j^γ / Σ a v^γ
        assert torch.allclose(w, tilted / tilted.sum(1, keepdim=True), atol=1e-12)
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
    result = ex.check_gls(lambda t, p=1: F.cosine_similarity(t[:, :1], t[:, p:], dim=-1).float())
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
