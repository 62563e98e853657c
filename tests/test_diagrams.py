"""The diagrams stay true to the code: every box names something that exists and is used."""

import inspect
import sys

import matplotlib
import pytest

matplotlib.use("Agg")

import glsim_core.selection as selection  # noqa: E402
from glsim_core.models import create_model  # noqa: E402
from glsim_core.pooling import POOLING_METHODS, PoolingProcess, table1  # noqa: E402
from glsim_core.viz.diagrams import (  # noqa: E402
    POOLING_STEPS,
    draw_glsim,
    draw_pooling_process,
    glsim_stages,
    pooling_steps,
)


@pytest.fixture(scope="module")
def glsim():
    return create_model("glsim_vit_nano_patch8_64", num_classes=12)


def test_every_glsim_box_exists_in_the_model(glsim):
    children = dict(glsim.named_children())
    params = dict(glsim.named_parameters())
    model_module = sys.modules[type(glsim).__module__]
    for st in glsim_stages(glsim):
        if st.kind == "module":
            assert st.key in children, st
            assert st.label.startswith(st.key), st
        elif st.kind == "function":
            # a public selection function, and the very object the model's module calls
            assert getattr(model_module, st.key) is getattr(selection, st.key), st
            assert st.key in inspect.getsource(type(glsim)), st
        else:
            assert st.kind == "data", st
        if st.extra:
            assert st.extra in params, st


def test_every_trained_child_of_the_model_is_drawn_in_forward_order(glsim):
    drawn = [st.key for st in glsim_stages(glsim) if st.kind == "module"]
    trained = [name for name, m in glsim.named_children() if any(True for _ in m.parameters())]
    assert set(trained) <= set(drawn)
    # the order of the data flow: the encoder (twice) before the aggregator, the norm and the head
    assert drawn == ["encoder", "encoder", "aggregator", "norm", "head"]


def test_glsim_labels_follow_the_models_switches():
    model = create_model("glsim_vit_nano_patch8_64", num_classes=5, top_o=4, selector="rollout",
                         box_rule="reference")
    labels = "\n".join(st.label for st in glsim_stages(model))
    assert "top-4 box (reference)" in labels
    assert "selector: rollout" in labels
    assert "Linear → 5" in labels and "(B, 5)" in labels
    fig = draw_glsim(model)
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert {st.label for st in glsim_stages(model)} <= texts
    assert all(t.get_fontsize() >= 9 for t in fig.axes[0].texts)


def test_pooling_steps_cover_the_process_and_table1():
    columns = set(table1(dim=16).columns)
    arguments = set(inspect.signature(PoolingProcess).parameters) - {"attend_to_queries"}
    covered = {a for step in POOLING_STEPS for a in step.arguments}
    assert arguments <= covered, arguments - covered  # every argument of PoolingProcess has its step
    assert covered <= set(inspect.signature(PoolingProcess).parameters)
    for step, groups in pooling_steps(16):
        assert step.column in columns
        listed = sorted(m for ms in groups.values() for m in ms)
        assert listed == sorted(POOLING_METHODS)  # every method of Table 1 appears once under every step
    simpool = dict(pooling_steps(16))[POOLING_STEPS[0]]
    assert "simpool" in simpool["π_A(X)"]  # SimPool's query is GAP (Eq. 12)


def test_pooling_diagram_draws_every_step_and_method():
    fig = draw_pooling_process(16)
    text = "\n".join(t.get_text() for t in fig.axes[0].texts)
    for step in POOLING_STEPS:
        assert step.name in text
    for method in POOLING_METHODS:
        assert method in text
    assert all(t.get_fontsize() >= 9 for t in fig.axes[0].texts)


def test_pooling_diagram_prints_no_raw_tex_and_keeps_every_column_inside_the_figure():
    from glsim_core.notebook import setup_figures

    setup_figures()  # the notebooks' fonts
    fig = draw_pooling_process(16)
    renderer = fig.canvas.get_renderer()
    texts = fig.axes[0].texts
    assert not [t.get_text() for t in texts if "^{" in t.get_text() or "\\" in t.get_text()]  # e^{rx} as text
    assert any("exp(rx)" in t.get_text() for t in texts)
    width = fig.bbox.width
    boxes = [t.get_window_extent(renderer) for t in texts]
    assert all(0 <= b.x0 and b.x1 <= width for b in boxes), [(t.get_text()[:30], b.x0, b.x1) for t, b in
                                                           zip(texts, boxes) if b.x0 < 0 or b.x1 > width]
    columns = sorted((b for t, b in zip(texts, boxes) if "(Table 1):" in t.get_text()), key=lambda b: b.x0)
    assert len(columns) == len(POOLING_STEPS)
    for left, right in zip(columns, columns[1:]):
        assert left.x1 < right.x0, (left.x1, right.x0)  # no column runs into the next one
