import pytest


@pytest.fixture(autouse=True)
def _plain_terminal(monkeypatch):
    """Tests must not depend on the terminal they run in (as rich's own tests do)."""
    for var in ("NO_COLOR", "FORCE_COLOR", "COLUMNS", "LINES", "TERM"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="session")
def exhaustive16():
    """Every finite float16 and bfloat16 logit, numpy and torch, targets 0 and 1, every method, with gradients:
    {(dtype, backend, target, method): SweepRow}. Shared by the sweep tests (about 2 s)."""
    from stabcli.core.formats import FORMATS
    from stabcli.commands.sweep import make_grid, run_sweep

    sweep = run_sweep([FORMATS["float16"], FORMATS["bfloat16"]], ["numpy", "torch"], [0.0, 1.0],
                      make_grid(exhaustive=True), grad=True)
    return {(r.dtype, r.backend, r.target, r.method): r for r in sweep.rows}


@pytest.fixture(scope="session")
def questions():
    """The quiz's questions of `stabcli demo`, one per step, in float32 (the default) and float16 (the other
    branches): {dtype: [Question, ...]}. Shared by the demo and handout tests."""
    from stabcli.present import demo

    out = {}
    for dtype in ("float32", "float16"):
        lesson = demo.Lesson(dtype)
        out[dtype] = [lesson.question(n) for n in range(1, demo.STEP_COUNT + 1)]
    return out
