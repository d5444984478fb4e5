"""Sweeps split among worker processes give exactly the rows of a sweep in one process; slices of the walk."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os

import numpy as np
import pytest

from stabcli.commands import sweep as sweep_module
from stabcli.core.formats import FORMATS
from stabcli.commands.sweep import Grid, logit_chunks, make_grid, run_sweep, span, total_points

F16, F32 = FORMATS["float16"], FORMATS["float32"]

# tests/test_peers.py imports jax into this process first; jax then warns at every fork that a child calling into
# jax could deadlock. These workers never call into jax (a sweep with peer rows runs in one process).
pytestmark = pytest.mark.filterwarnings("ignore:os.fork\\(\\) was called:RuntimeWarning")


def _rows(result) -> list[str]:
    """Every field of every row (breakdowns, gradient values at them), without the search's bookkeeping, as text
    (a NaN gradient is then equal to a NaN gradient)."""
    out = []
    for r in result.rows:
        d = dataclasses.asdict(r)
        d.pop("_closest")
        if d["grad"] is not None:
            d["grad"].pop("_closest")
        out.append(repr(d))
    return out


@pytest.fixture
def split_small(monkeypatch):
    """Split even small sweeps into many small pieces, so that every piece boundary is exercised."""
    monkeypatch.setattr(sweep_module, "PARALLEL_MIN_POINTS", 0)
    monkeypatch.setattr(sweep_module, "PIECE", 997)


@pytest.mark.parametrize("grid", [
    make_grid(exhaustive=True),
    # far more grid points than float16 values: many round to one value, also across piece boundaries
    make_grid(min=-20, max=20, points=100_001, spacing="linear"),
    make_grid(min=-70000, max=70000, points=20_001),  # the ends overflow float16 and are dropped
], ids=["exhaustive", "dense-linear", "log-beyond-range"])
def test_workers_give_the_same_rows(split_small, grid):
    kwargs = dict(formats=[F16], backends=["numpy"], targets=[0.0, 0.3], grid=grid, weight=2.0, grad=True)
    one = run_sweep(**kwargs, workers=1)
    two = run_sweep(**kwargs, workers=2)
    assert _rows(one) == _rows(two)
    assert one.summary == two.summary


def test_pieces_of_the_walk_join_up():
    # Pieces [a, b) of span() give, concatenated, exactly the logits of the whole walk, for grids and ordinals.
    for grid, fmt in [(make_grid(min=-20, max=20, points=30_001, spacing="linear"), F16),
                      (make_grid(exhaustive=True), F16),
                      (Grid(exhaustive=True, ordinals=(-5000, 7000)), F32)]:
        whole = np.concatenate(list(logit_chunks(grid, fmt, 4096)))
        lo, hi = span(grid, fmt)
        cuts = [lo, lo + 1, lo + 777, (lo + hi) // 2, (lo + hi) // 2 + 1, hi - 3, hi]
        parts = np.concatenate([np.concatenate(list(logit_chunks(grid, fmt, 100, a, b)) or [np.array([], fmt.np_dtype)])
                                for a, b in zip(cuts, cuts[1:])])
        assert whole.dtype == parts.dtype and np.array_equal(whole.view(fmt.uint_dtype), parts.view(fmt.uint_dtype))


def test_float32_slice_counts_every_value_once():
    # ordinals -5000..7000: 12,001 values and -0 besides +0; every one finite and counted once per method.
    grid = Grid(exhaustive=True, ordinals=(-5000, 7000))
    assert total_points(grid, F32) == 12_002
    result = run_sweep([F32], ["numpy"], [1.0], grid, grad=False, workers=1)
    assert all(r.points == 12_002 == sum(r.counts.values()) for r in result.rows)
    assert result.grid.as_dict() == {"kind": "exhaustive", "ordinals": [-5000, 7000]}


_NOTED: dict = {}  # "file": where _noted_piece notes each piece a worker starts
_REAL_PIECE = sweep_module._worker_piece


def _noted_piece(plan, start, stop):
    """sweep._worker_piece that first appends one byte to _NOTED["file"] (atomically: O_APPEND)."""
    fd = os.open(_NOTED["file"], os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        os.write(fd, b".")
    finally:
        os.close(fd)
    return _REAL_PIECE(plan, start, stop)


def test_an_interrupted_parallel_sweep_stops_its_workers_at_once(monkeypatch, tmp_path):
    # Ctrl-C arrives as KeyboardInterrupt in the parent (the workers ignore SIGINT): the queued pieces must be
    # cancelled and the workers stopped, not waited for (a float32 exhaustive sweep queues 256 pieces of ~4 s).
    # Each worker notes every piece it starts in a file (the workers are forks, so they run the patched function);
    # a pool that waited would start every piece before the interrupt got out of run_sweep.
    import multiprocessing
    import time

    started = tmp_path / "started"
    monkeypatch.setitem(_NOTED, "file", started)
    monkeypatch.setattr(sweep_module, "PARALLEL_MIN_POINTS", 0)
    monkeypatch.setattr(sweep_module, "PIECE", 2**16)
    monkeypatch.setattr(sweep_module, "_worker_piece", _noted_piece)
    submitted = []
    real_submit = concurrent.futures.ProcessPoolExecutor.submit
    monkeypatch.setattr(concurrent.futures.ProcessPoolExecutor, "submit",
                        lambda pool, *a, **k: submitted.append(1) or real_submit(pool, *a, **k))

    def interrupt(n):
        raise KeyboardInterrupt

    grid = make_grid(min=-1000, max=1000, points=50_000_000, spacing="linear")  # 763 pieces, ~10 s on 2 cores
    with pytest.raises(KeyboardInterrupt):
        run_sweep([F32], ["numpy"], [0.0], grid, grad=False, workers=2, progress=interrupt)
    assert len(submitted) == -(-50_000_000 // 2**16) == 763  # every piece of the walk was queued (_sweep_parallel)
    deadline = time.monotonic() + 120  # generous: the workers are terminated, this only waits for them to be reaped
    while [p for p in multiprocessing.active_children() if p.is_alive()]:
        assert time.monotonic() < deadline, "the workers are still running"
        time.sleep(0.05)
    ran = started.stat().st_size
    # the first piece finished (its progress raised); the others were cancelled or cut short: at most the pieces
    # the two workers had taken when they were stopped, and never the whole queue
    assert 1 <= ran < len(submitted) // 10
