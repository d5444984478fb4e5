"""`stabcli check`: tensors from files (issue 11, item 1).

The strongest checks compare the streaming engine with compare's engine, which judges every element against mpmath:
the same statuses element for element, whether the file is reduced to distinct pairs (16 bits) or streamed.
"""

import json

import mpmath
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from stabcli.cli import cli
from stabcli.commands import check as engine
from stabcli.commands.compare import run_compare
from stabcli.core import tensorfile
from stabcli.core.formats import FORMATS
from stabcli.losses import get_family


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A float16 batch (40, 50) with repeated values, breakdown logits planted, targets 0/1/0.25; and friends."""
    d = tmp_path_factory.mktemp("check")
    rng = np.random.default_rng(11)
    x = (rng.standard_normal((40, 50)) * 9).astype(np.float16)
    x[3, 7] = 9.0  # naive, target 0: p = 1 in float16 (from 8.3203125 in torch, DESIGN.md)
    x[0, :4] = [np.inf, -np.inf, np.nan, -20.0]
    y = rng.choice(np.array([0.0, 1.0, 0.25], dtype=np.float16), size=(40, 50))
    y[3, 7] = 0
    np.save(d / "x16.npy", x)
    np.save(d / "y16.npy", y)
    np.save(d / "x32.npy", x.astype(np.float32) * np.float32(1.01))
    np.save(d / "y32.npy", y.astype(np.float32))
    return d, x, y


def _compare_counts(x, y, fmt, family="bce"):
    """Per (backend, method): the status counts compare's engine gives, element by element against mpmath."""
    fam = get_family(family)
    inputs = fam.Inputs(x.astype(np.float64).ravel(), y.astype(np.float64).ravel(), np.ones(x.size), np.ones(x.size),
                        reduction="none")
    comparison = run_compare(inputs, [fmt])
    out = {}
    for r in comparison.rows:
        out[(r.backend, r.method)] = {k: r.status.count(k) for k in ("ok", "inaccurate", "clamped", "inf", "nan")}
    return out, comparison


@pytest.mark.parametrize("dtype, chunk", [("float16", engine.CHUNK), ("float16", 300), ("float32", 512)])
def test_statuses_match_compare_element_by_element(files, dtype, chunk):
    d, x, y = files
    name = "x16.npy" if dtype == "float16" else "x32.npy"
    lt, tt = tensorfile.load(str(d / name)), tensorfile.load(str(d / name.replace("x", "y")))
    check = engine.run_check(lt, tt, engine.default_formats(lt), chunk=chunk)
    assert [n.dtype for n in check.inputs] == [dtype]  # the file's own dtype
    fmt = FORMATS[dtype]
    want, comparison = _compare_counts(np.asarray(lt.array), np.asarray(tt.array), fmt)
    for row in check.rows:
        assert row.counts == want[(row.backend, row.method)], (row.backend, row.method)
        assert row.points == x.size
    # the means: the exact mean from mpmath over every element, and the method's per-element losses summed
    softplus = next(r for r in comparison.rows if r.backend == "torch" and r.method == "softplus")
    refs = np.array(softplus.reference)
    keep = ~np.isnan(np.asarray(lt.array, dtype=np.float64).ravel())
    row = next(r for r in check.rows if r.backend == "torch" and r.method == "softplus")
    assert row.mean_reference == pytest.approx(float(np.mean(refs[keep])), rel=1e-13)
    assert row.mean_loss == pytest.approx(float(np.mean(np.array(softplus.loss)[keep])), rel=1e-13)
    assert row.nan_inputs == 1


def test_float64_statuses_are_mpmaths(tmp_path):
    # float64 has no wider format to certify its float64 reference: near the tolerance's edge check asks mpmath, so
    # its counts equal compare's element by element (without that step, 1-2 elements per method came out otherwise)
    rng = np.random.default_rng(4)
    x = np.concatenate([rng.standard_normal(1500) * 30, np.linspace(-40, 40, 500)])
    y = rng.choice([0.0, 1.0, 0.3], x.size)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    check = engine.run_check(tensorfile.load(str(tmp_path / "x.npy")), tensorfile.load(str(tmp_path / "y.npy")),
                             [FORMATS["float64"]], grad=False)
    want, _ = _compare_counts(x, y, FORMATS["float64"])
    for row in check.rows:
        assert row.counts == want[(row.backend, row.method)], (row.backend, row.method)


def test_distinct_pairs_are_fewer_than_elements(files):
    d, x, y = files
    check = engine.run_check(tensorfile.load(str(d / "x16.npy")), tensorfile.load(str(d / "y16.npy")),
                             [FORMATS["float16"]], backends=("torch",), grad=False)
    pairs = {(float(a), float(b)) for a, b in zip(x.ravel(), y.ravel()) if not np.isnan(a)}
    assert check.inputs[0].distinct == len(pairs) + 1  # NaN compares unequal as a float, but is one bit pattern


def test_worst_elements_carry_their_index(files):
    d, x, y = files
    result = run("check", d / "x16.npy", d / "y16.npy", "--backend", "torch", "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["command"] == "check" and doc["elements"] == 2000 and doc["shape"] == [40, 50]
    assert doc["logits_file"]["dtype"] == "float16" and doc["dtypes"] == ["float16"]
    naive = next(r for r in doc["results"] if r["method"] == "naive")
    worst = naive["worst"]
    assert all(w["status"] in ("nan", "inf") for w in worst)
    at = {tuple(w["index"]): w for w in worst}
    for w in worst:  # every index points at the element it describes
        i, j = w["index"]
        assert float(x[i, j]) == w["logit"] or (np.isnan(x[i, j]) and w["logit"] == "nan")
        assert float(y[i, j]) == w["target"]
    assert naive["count_inf"] + naive["count_nan"] >= 1
    keys = {"backend", "dtype", "target", "method", "points", "count_ok", "count_inaccurate", "count_clamped",
            "count_inf", "count_nan", "count_overflow", "max_abs_error", "max_error_bits", "breakdown",
            "grad_count_nonfinite", "grad_count_vanished", "grad_count_inaccurate", "grad_max_error_bits",
            "grad_breakdown", "compute_dtype", "refused", "mean_loss", "mean_reference", "worst"}
    assert keys <= set(naive)
    assert naive["breakdown"]["nonfinite_pos"] is not None
    assert at or worst == []


def test_a_planted_breakdown_is_found_at_its_index(tmp_path):
    x = np.zeros((5, 10), dtype=np.float16)
    x[3, 7] = 9.0  # torch.sigmoid(9) rounds to 1 in float16 (from 8.3203125): log(1 - p) = -inf for target 0
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.zeros((5, 10), dtype=np.float16))
    doc = json.loads(run("check", tmp_path / "x.npy", tmp_path / "y.npy", "--backend", "torch", "--format",
                         "json").output)
    naive = next(r for r in doc["results"] if r["method"] == "naive")
    assert naive["count_inf"] == 1 and naive["count_ok"] == 49
    assert naive["worst"][0]["index"] == [3, 7] and naive["worst"][0]["loss"] == "inf"
    # exact: softplus(9) = mpmath.log1p(mpmath.exp(9)) = 9.000123402...
    assert naive["worst"][0]["reference"] == pytest.approx(float(mpmath.log1p(mpmath.exp(9))), rel=1e-15)
    assert naive["breakdown"]["nonfinite_pos"] == 9.0
    bce = next(r for r in doc["results"] if r["method"] == "torch_bce")
    assert bce["count_clamped"] == 1 and bce["worst"][0]["loss"] == 100.0  # the -100 clamp
    # for training: naive's loss is inf there; BCELoss's loss is a finite 100, but its backward divides by
    # max(p(1-p), 1e-12) = max(0, 0) in float16 (1e-12 rounds to 0): NaN (README, DESIGN.md)
    assert naive["training"] == {"class": "diverges", "count_nonfinite": 1, "count_stalled": 0, "break_pos": 9.0,
                                 "break_pos_kind": "loss inf", "break_neg": None, "break_neg_kind": None}
    assert bce["training"]["class"] == "diverges" and bce["training"]["break_pos_kind"] == "grad NaN"
    softplus = next(r for r in doc["results"] if r["method"] == "softplus")
    assert softplus["training"]["class"] == "ok"


def test_file_formats(tmp_path):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((8, 3)) * 4).astype(np.float32)
    y = (rng.random((8, 3)) < 0.5).astype(np.float32)
    np.savez(tmp_path / "b.npz", logits=x, targets=y)
    torch.save({"out": {"logits": torch.from_numpy(x).to(torch.bfloat16)}, "labels": torch.from_numpy(y)},
               tmp_path / "b.pt")
    from safetensors.numpy import save_file

    save_file({"logits": x.astype(np.float16), "targets": y}, str(tmp_path / "b.safetensors"))
    np.savetxt(tmp_path / "x.csv", x, delimiter=",")
    (tmp_path / "y.txt").write_text("\n".join(str(v) for v in y[:, :1].ravel()))
    cases = [
        (["b.npz", "b.npz", "--key", "logits", "--targets-key", "targets"], "float32", [8, 3]),
        (["b.pt", "b.pt", "--key", "out.logits", "--targets-key", "labels"], "bfloat16", [8, 3]),
        (["b.safetensors", "b.safetensors", "--key", "logits", "--targets-key", "targets"], "float16", [8, 3]),
        (["x.csv", "b.npz", "--targets-key", "targets"], "float32", [8, 3]),  # text: float32
    ]
    for args, dtype, shape in cases:
        result = run("check", *(tmp_path / a if a.endswith(("npz", "pt", "safetensors", "csv")) else a
                                for a in args), "--format", "json", "--no-grad")
        assert result.exit_code == 0, (args, result.output)
        doc = json.loads(result.output)
        assert doc["dtypes"] == [dtype] and doc["shape"] == shape, args
    # one value a line, 8 lines: shape (8,), broadcast against (8, 1) logits
    np.save(tmp_path / "col.npy", x[:, :1])
    doc = json.loads(run("check", tmp_path / "col.npy", tmp_path / "y.txt", "--format", "json").output)
    assert doc["shape"] == [8, 8] and doc["targets_file"]["shape"] == [8]


def test_broadcast_targets_column_equals_the_full_file(tmp_path):
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((30, 4)) * 10).astype(np.float32)
    col = (rng.random((30, 1)) < 0.5).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "col.npy", col)
    np.save(tmp_path / "full.npy", np.broadcast_to(col, x.shape).copy())
    a = json.loads(run("check", tmp_path / "x.npy", tmp_path / "col.npy", "--format", "json").output)
    b = json.loads(run("check", tmp_path / "x.npy", tmp_path / "full.npy", "--format", "json").output)
    assert a["results"] == b["results"]


def test_dtype_override_counts_rounding(files):
    d, x, y = files
    doc = json.loads(run("check", d / "x32.npy", d / "y32.npy", "--dtype", "float16", "--dtype", "bfloat16",
                         "--format", "json", "--no-grad").output)
    assert doc["dtypes"] == ["float16", "bfloat16"]
    changed = {n["dtype"]: n for n in doc["inputs"]}
    assert changed["float16"]["logits_changed"] > 0 and changed["float16"]["distinct_pairs"] is not None


def test_probs_seed_004(tmp_path):
    np.save(tmp_path / "p.npy", np.array([0.8, 0.2, 0.4], dtype=np.float32))
    np.save(tmp_path / "y.npy", np.array([1, 0, 0], dtype=np.float32))
    doc = json.loads(run("check", tmp_path / "p.npy", tmp_path / "y.npy", "--probs", "--format", "json").output)
    assert doc["probs"] is True
    rows = {(r["backend"], r["method"]): r for r in doc["results"]}
    # (-log 0.8 - log 0.8 - log 0.6)/3 at p as stored in float32 (see test_probs.py): 0.3190375...
    for key in (("numpy", "naive"), ("torch", "torch_bce")):
        assert rows[key]["mean_loss"] == pytest.approx(0.31903757, abs=1e-7)
        assert rows[key]["count_ok"] == 3 and rows[key]["grad_wrt"] == "p"
    assert rows[("torch", "softplus")]["grad_wrt"] == "x"


def test_autocast_refuses_bce_in_check(files):
    d, x, y = files
    doc = json.loads(run("check", d / "x32.npy", d / "y32.npy", "--autocast", "float16", "--format", "json",
                         "--no-grad").output)
    assert doc["dtypes"] == ["float16"] and doc["autocast"]["device"] == "cuda"
    rows = {r["method"]: r for r in doc["results"]}
    assert rows["torch_bce"]["refused"].startswith("torch.nn.functional.binary_cross_entropy and torch.nn.BCELoss")
    assert rows["torch_bce_with_logits"]["compute_dtype"] == "float32"
    assert rows["clamped"]["compute_dtype"] == "float16"


def test_softmax_goes_through_compare(tmp_path):
    rng = np.random.default_rng(7)
    np.save(tmp_path / "x.npy", (rng.standard_normal((20, 3)) * 8).astype(np.float32))
    np.save(tmp_path / "y.npy", rng.integers(0, 3, 20))
    doc = json.loads(run("check", tmp_path / "x.npy", tmp_path / "y.npy", "--loss", "softmax", "--format",
                         "json").output)
    assert doc["engine"] == "compare" and doc["loss"] == "softmax"
    assert all(r["points"] == 20 for r in doc["results"])
    np.save(tmp_path / "big.npy", np.zeros((10_001, 3), dtype=np.float32))
    np.save(tmp_path / "bigy.npy", np.zeros(10_001, dtype=np.int64))
    result = run("check", tmp_path / "big.npy", tmp_path / "bigy.npy", "--loss", "softmax")
    assert result.exit_code == 2 and "at most 10,000 rows" in result.output


def test_plot_draws_the_histogram(files, tmp_path):
    d, x, y = files
    lt = tensorfile.load(str(d / "x16.npy"))
    check = engine.run_check(lt, tensorfile.load(str(d / "y16.npy")), [FORMATS["float16"]], backends=("torch",),
                             grad=False)
    edges, counts, specials = engine.logit_histogram(lt, FORMATS["float16"])
    assert int(counts.sum()) == int(np.isfinite(x).sum())
    assert specials == {"inf": 1, "-inf": 1, "nan": 1}
    from stabcli.present import plots

    fig = plots.check_figure(check, (edges, counts, specials))
    ax = fig.axes[0]
    lines = {round(line.get_xdata()[0], 6) for line in ax.get_lines()}
    naive = next(r for r in check.rows if r.method == "naive")
    assert round(naive.breakdown["nonfinite_pos"], 6) in lines
    plots.close(fig)
    result = run("check", d / "x16.npy", d / "y16.npy", "--plot", tmp_path / "h.png", "--no-grad")
    assert result.exit_code == 0 and (tmp_path / "h.png").stat().st_size > 1000


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    np.save(d / "ok.npy", np.zeros(4, dtype=np.float32))
    np.save(d / "nan.npy", np.array([0, np.nan, 1, 0], dtype=np.float32))
    np.save(d / "big.npy", np.array([0, 1.5, 1, 0], dtype=np.float32))
    np.save(d / "three.npy", np.zeros(3, dtype=np.float32))
    np.save(d / "obj.npy", np.array([object()], dtype=object), allow_pickle=True)
    np.save(d / "empty.npy", np.zeros(0, dtype=np.float32))
    raw = (d / "ok.npy").read_bytes()
    (d / "trunc.npy").write_bytes(raw[: len(raw) - 8])
    np.savez(d / "two.npz", a=np.zeros(4), b=np.zeros(4))
    torch.save([1, 2], d / "list.pt")
    torch.save(torch.zeros(4), d / "t.pt")
    (d / "trunc.pt").write_bytes((d / "t.pt").read_bytes()[:100])
    (d / "bad.csv").write_text("1,2\nabc,3\n")
    (d / "ragged.csv").write_text("1,2\n3\n4,5\n")
    (d / "x.foo").write_text("1")
    (d / "text.npy").write_text("hello world\n")  # not a .npy file: np.load takes it for a pickle
    (d / "zero.npy").write_bytes(b"")
    (d / "trunc.safetensors").write_bytes(b"\x10\x00\x00")
    return d


@pytest.mark.parametrize("args, message", [
    (["missing.npy", "ok.npy"], "LOGITS 'MISSING' does not exist"),
    (["x.foo", "ok.npy"], "has the extension '.foo'; allowed: .npy, .npz, .pt/.pth, .safetensors, .csv or .txt"),
    # numbers typed where a file goes were "TARGETS '1' has the extension '(none)'" and "'0.5' has the extension
    # '.5'" (final-user)
    (["ok.npy", "=1"], "TARGETS '1' is not a file; check reads its inputs from files"),
    (["ok.npy", "=0.5"], "TARGETS '0.5' is not a file; check reads its inputs from files"),
    (["=1e10,2", "ok.npy"], "LOGITS '1e10,2' is not a file; check reads its inputs from files (.npy, .npz, "
                            ".pt/.pth, .safetensors, .csv or .txt); for numbers typed in, use stabcli compare"),
    (["trunc.npy", "ok.npy"], "is truncated"),
    (["obj.npy", "ok.npy"], "holds Python objects"),
    (["text.npy", "ok.npy"], "is not a .npy file (it does not start with numpy's magic bytes \\x93NUMPY)"),
    (["zero.npy", "ok.npy"], "is not a .npy file"),
    (["empty.npy", "ok.npy"], "holds no elements"),
    (["two.npz", "ok.npy"], "holds 2 arrays (a, b); choose one with --key"),
    (["two.npz", "ok.npy", "--key", "c"], "--key 'c' is not in LOGITS"),
    (["list.pt", "ok.npy"], "holds no tensor (list)"),
    (["trunc.pt", "ok.npy"], "is not a readable torch file"),
    (["trunc.safetensors", "ok.npy"], "is not a readable .safetensors file"),
    (["bad.csv", "ok.npy"], "line 2: 'abc' is not a number"),
    (["ragged.csv", "ok.npy"], "every line needs the same number"),
    (["ok.npy", "three.npy"], "do not broadcast"),
    (["ok.npy", "nan.npy"], "TARGETS 'nan.npy' holds nan at index [1]; targets are probabilities in [0, 1]"),
    (["ok.npy", "big.npy"], "holds 1.5 at index [1]"),
    (["big.npy", "ok.npy", "--probs"], "LOGITS 'big.npy' holds 1.5 at index [1]; with --probs"),
    (["ok.npy", "ok.npy", "--key", "a"], "--key 'a' is for .npz, .pt/.pth and .safetensors files"),
    (["ok.npy", "ok.npy", "--weight", "-1"], "--weight '-1' is not allowed"),
    (["ok.npy", "ok.npy", "--plot", "x.txt"], "must end in .png or .svg"),
    (["DIR", "ok.npy"], "is a folder"),
])
def test_bad_input_is_one_error_line(bad_files, args, message):
    d = bad_files
    full = [a[1:] if a.startswith("=") else str(d) if a == "DIR" else
            str(d / a) if "." in a and not a.startswith("-") and a != "x.txt" else a for a in args]
    result = run("check", *full)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert message.replace("MISSING", str(d / "missing.npy")) in lines[0], lines[0]


def test_no_warning_reaches_stderr_and_output_is_deterministic(files):
    import subprocess
    import sys

    d, x, y = files
    args = [sys.executable, "-W", "always", "-m", "stabcli", "check", str(d / "x16.npy"), str(d / "y16.npy"),
            "--format", "json"]
    first = subprocess.run(args, capture_output=True, text=True)
    assert first.returncode == 0 and first.stderr == "", first.stderr
    json.loads(first.stdout, parse_constant=lambda t: (_ for _ in ()).throw(ValueError(t)))  # strict JSON
    second = run("check", d / "x16.npy", d / "y16.npy", "--format", "json")
    assert second.output == first.stdout


def test_help_has_an_example():
    out = run("check", "--help").output
    assert "Example:" in out and "stabcli check logits.npy targets.npy" in out
    # check's --dtype defaults to the logits file's own dtype (engine.default_formats), not to all
    flat = " ".join(out.split())
    assert "[default: the logits file's own dtype (float32 for text and integers)]" in flat
    assert "[default: all]" not in flat.split("--dtype")[1].split("--backend")[0]


def test_overflow_is_inf_but_exact_limits_are_ok(tmp_path):
    # pos_weight 10, x = -7000: the exact loss 70000 is beyond float16's 65504 (issue 11, item 4); x = -inf: the
    # exact loss is inf itself (a limit), so an inf there is right
    np.save(tmp_path / "x.npy", np.array([-7000.0, -np.inf, 1.0], dtype=np.float16))
    np.save(tmp_path / "y.npy", np.ones(3, dtype=np.float16))
    doc = json.loads(run("check", tmp_path / "x.npy", tmp_path / "y.npy", "--pos-weight", "10", "--backend",
                         "torch", "--format", "json").output)
    softplus = next(r for r in doc["results"] if r["method"] == "softplus")
    assert softplus["count_inf"] == 1 and softplus["count_ok"] == 2
    assert softplus["worst"][0]["index"] == [0] and softplus["worst"][0]["reference"] == 70000.0
    # --probs: p = 1 with target 0 is an exact inf (-log(1 - 1)), not an overflow
    np.save(tmp_path / "p.npy", np.array([1.0, 0.5], dtype=np.float16))
    np.save(tmp_path / "t.npy", np.zeros(2, dtype=np.float16))
    doc = json.loads(run("check", tmp_path / "p.npy", tmp_path / "t.npy", "--probs", "--backend", "torch",
                         "--format", "json").output)
    naive = next(r for r in doc["results"] if r["method"] == "naive")
    assert naive["count_ok"] == 2 and naive["mean_reference"] == "inf"


def test_severity_training_ranks_as_sweep_does(tmp_path):
    x = np.zeros((5, 10), dtype=np.float16)
    x[3, 7] = 9.0
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.zeros((5, 10), dtype=np.float16))
    out = run("check", tmp_path / "x.npy", tmp_path / "y.npy", "--backend", "torch", "--severity", "training").output
    lines = [line.split() for line in out.splitlines()]
    ranked = [words[0] for words in lines if len(words) > 2 and words[1] in ("diverges", "stalls", "inaccurate", "ok")]
    assert ranked[:3] == ["naive", "clamped", "torch_bce"]  # inf/NaN first (the loss, or BCELoss's backward)
    assert ranked[-1] in ("softplus", "logsumexp", "torch_bce_with_logits")
    assert "9 loss inf" in " ".join(out.split())
    assert run("check", tmp_path / "x.npy", tmp_path / "y.npy", "--severity", "training", "--no-grad").exit_code == 2


def test_csv_has_a_line_per_row_and_the_worst_element(files):
    import csv
    import io

    d, x, y = files
    result = run("check", d / "x16.npy", d / "y16.npy", "--backend", "torch", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["method"] for r in rows] == ["naive", "clamped", "logsumexp", "softplus", "torch_bce",
                                           "torch_bce_with_logits"]
    doc = json.loads(run("check", d / "x16.npy", d / "y16.npy", "--backend", "torch", "--format", "json").output)
    for line, row in zip(rows, doc["results"]):
        assert int(line["count_nan"]) == row["count_nan"] and line["compute_dtype"] == "float16"
        if row["worst"]:
            assert line["worst_index"] == ";".join(str(i) for i in row["worst"][0]["index"])


def test_histogram_lines_name_backend_and_side(files):
    # two dashed "naive" lines (x ≥ 8.32 and x ≤ -17.34 in torch) told neither the backend nor which side
    d, x, y = files
    lt = tensorfile.load(str(d / "x16.npy"))
    check = engine.run_check(lt, tensorfile.load(str(d / "y16.npy")), [FORMATS["float16"]], grad=False)
    from stabcli.present import plots

    fig = plots.check_figure(check, engine.logit_histogram(lt, FORMATS["float16"]))
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()][1:]  # after "elements"
    plots.close(fig)
    naive = next(r for r in check.rows if r.method == "naive" and r.backend == "torch")
    assert any(label.startswith("naive (torch)") and f"x ≥ {plots.short(naive.breakdown['nonfinite_pos'])}" in label
               for label in labels), labels
    assert all("(torch)" in label and ("x ≥" in label or "x ≤" in label) for label in labels), labels


def test_summary_keeps_stalls_apart_from_inf_nan(tmp_path):
    # float16, numpy: x = 8 (above 7.625, where op-by-op sigmoid rounds to 1: DESIGN.md) with target 0 makes the
    # clamped form's gradient 0 where the truth is sigmoid(8) = 0.99966 (a stall), and x = -12, target 1 gives
    # NaN (exp(12) overflows float16 past 11.09375). The summary said "gives inf/NaN ...: grad 0 from x ≥ 8", a stall
    # read as an inf/NaN; x = inf said "from x ≥ inf"; one changed logit was "1 logits changed"
    np.save(tmp_path / "x.npy", np.array([8, -12, 0], dtype=np.float16))
    np.save(tmp_path / "y.npy", np.array([0, 1, 1], dtype=np.float16))
    doc = json.loads(run("check", tmp_path / "x.npy", tmp_path / "y.npy", "--backend", "numpy", "--format",
                         "json").output)
    line = doc["summary"][0]
    assert ("clamped gives inf/NaN (loss or gradient) on 1 element: grad NaN from x ≤ -12; its gradient stalls "
            "from x ≥ 8 (0 where the truth is 0.9997)") in line, line
    np.save(tmp_path / "xi.npy", np.array([np.inf, 3], dtype=np.float32))
    np.save(tmp_path / "yi.npy", np.array([1, 1], dtype=np.float32))
    out = " ".join(run("check", tmp_path / "xi.npy", tmp_path / "yi.npy", "--dtype", "float16", "--backend",
                       "numpy").output.split())
    assert "≥ inf" not in out and "loss NaN at x = inf" in out  # logsumexp: inf - inf
    np.save(tmp_path / "x1.npy", np.array([1e10, 3], dtype=np.float32))
    out = " ".join(run("check", tmp_path / "x1.npy", tmp_path / "yi.npy", "--dtype", "float16").output.split())
    assert "1 logit changed by rounding to float16, 1 of them to ±inf" in out


def test_softmax_gradient_is_labelled_d_dx(tmp_path):
    # check --loss softmax differentiates with respect to the row's logits x (as compare does), not the gap g
    # that sweeps vary; compare's tables said "g = ..." and a --probs title for softmax rows
    np.save(tmp_path / "x.npy", np.array([[1.0, 2.0, 3.0], [0.5, 0.0, -1.0]], dtype=np.float32))
    np.save(tmp_path / "y.npy", np.array([0, 2], dtype=np.int64))
    out = run("check", tmp_path / "x.npy", tmp_path / "y.npy", "--loss", "softmax").output
    assert "gradient d/dx" in out and "d/dg" not in out
    doc = json.loads(run("check", tmp_path / "x.npy", tmp_path / "y.npy", "--loss", "softmax", "--format",
                         "json").output)
    assert {r["grad_wrt"] for r in doc["results"]} == {"x"}
    out = run("compare", "[[1,2],[3,4]]", "0,1", "--loss", "softmax", "--reduction", "none", "--dtype", "float32",
              "--backend", "numpy").output
    assert "x = 1, 2, 3, 4" in out and "d loss / d p" not in out and "gradient d loss / d x" in out


def test_summary_of_a_method_whose_gradient_alone_is_off(tmp_path):
    # float32, torch, x = 9, y = 1: BCEWithLogitsLoss's loss -logsigmoid(9) is within tolerance, but its gradient
    # sigmoid(9) - 1 is formed by subtracting from 1 (float32 spacing 2^-24 near 1) where the truth is
    # -1/(1 + e^9) = -1.2339457598623172e-4 (mpmath: -1/(1 + mpmath.exp(9))): about 2^-24/1.234e-4 = 4.8e-4
    # relative, beyond float32's tolerance. The sentence read "torch_bce_with_logits is only its gradient is off
    # tolerance (1 element)" (final-user)
    with mpmath.workdps(30):
        truth = float(-1 / (1 + mpmath.exp(9)))
    assert abs(truth + 1.2339457598623172e-4) < 1e-19
    np.save(tmp_path / "x.npy", np.array([9.0], dtype=np.float32))
    np.save(tmp_path / "y.npy", np.array([1.0], dtype=np.float32))
    doc = json.loads(run("check", tmp_path / "x.npy", tmp_path / "y.npy", "--backend", "torch", "--format",
                         "json").output)
    row = next(r for r in doc["results"] if r["method"] == "torch_bce_with_logits")
    assert row["count_ok"] == 1 and row["grad_count_inaccurate"] == 1
    line = doc["summary"][0]
    assert ("torch_bce_with_logits's loss is within tolerance, its gradient off tolerance on 1 element;"
            in line), line
    assert " is only " not in line


@pytest.mark.parametrize("targets, message", [
    # (64, 1000) 0/1 targets for (64, 1000) logits: probability rows (torch's rule: the logits' shape) that do not
    # sum to 1. The message printed all 64,000 numbers of the file as text and named no file (final-user)
    ("rows01", "probability target [0, 1, 1, 0, 1, 1, 0, 1, ... (1,000 entries)] (in TARGETS 'rows01.npy', row [0]) "
               "sums to 5, not 1"),
    ("idx", "class index 7000 (in TARGETS 'idx.npy', row [3]) is out of range for 1000 classes"),
    ("long", "TARGETS 'long.npy' of shape (1000,) do not fit logits of 64 rows of 1000 classes"),
])
def test_softmax_file_errors_name_the_file_and_row(tmp_path, monkeypatch, targets, message):
    monkeypatch.chdir(tmp_path)
    rows01 = np.zeros((64, 1000), dtype=np.float32)
    rows01[:, [1, 2, 4, 5, 7]] = 1  # each row sums to 5
    np.save("x.npy", np.zeros((64, 1000), dtype=np.float32))
    np.save("rows01.npy", rows01)
    np.save("idx.npy", np.array([0, 1, 2, 7000] + [0] * 60))
    np.save("long.npy", np.zeros(1000, dtype=np.float32))
    result = run("check", "x.npy", f"{targets}.npy", "--loss", "softmax")
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and len(lines[0]) < 250, lines
    assert message in lines[0], lines[0]


def test_softmax_check_counts_exp_overflow(tmp_path):
    # float16: exp(12) = 162754.79 (mpmath.exp(12)) is beyond float16's largest value 65504, so naive's exp(x)
    # overflows on the rows holding 12 or 100, not on [0.1, 0.2, 0.3]; log_of_softmax shifts by the max first and
    # never overflows (its inf is log(0) of an underflowed p). The column read 0 for every method (final-user: the
    # compare engine's overflow count was not carried over)
    np.save(tmp_path / "x.npy", np.array([[12, 0, -12], [100, 0, -100], [0.1, 0.2, 0.3]], dtype=np.float16))
    np.save(tmp_path / "y.npy", np.array([2, 2, 0]))
    doc = json.loads(run("check", tmp_path / "x.npy", tmp_path / "y.npy", "--loss", "softmax", "--backend", "numpy",
                         "--format", "json").output)
    rows = {r["method"]: r for r in doc["results"]}
    assert rows["naive"]["count_overflow"] == 2 and rows["naive"]["count_inf"] == 2
    assert rows["log_of_softmax"]["count_overflow"] == 0 and rows["logsumexp"]["count_overflow"] == 0


def test_softmax_check_honours_no_grad_and_refuses_training(tmp_path):
    # --loss softmax goes through compare's engine: --no-grad showed the gradient table anyway, and --severity
    # training silently printed the accuracy view (final-user)
    np.save(tmp_path / "x.npy", np.array([[12, 0, -12], [0.1, 0.2, 0.3]], dtype=np.float16))
    np.save(tmp_path / "y.npy", np.array([2, 0]))
    table = run("check", tmp_path / "x.npy", tmp_path / "y.npy", "--loss", "softmax", "--no-grad")
    assert table.exit_code == 0 and "gradient d/dx" not in table.output and "mean loss" in table.output
    doc = json.loads(run("check", tmp_path / "x.npy", tmp_path / "y.npy", "--loss", "softmax", "--no-grad",
                         "--format", "json").output)
    assert all(r["grad_count_nonfinite"] is None for r in doc["results"])
    with_grad = run("check", tmp_path / "x.npy", tmp_path / "y.npy", "--loss", "softmax")
    assert "gradient d/dx" in with_grad.output
    refused = run("check", tmp_path / "x.npy", tmp_path / "y.npy", "--loss", "softmax", "--severity", "training")
    assert refused.exit_code == 2 and refused.output.startswith("Error: --severity training")
    assert len(refused.output.splitlines()) == 1 and "leave --severity out" in refused.output


def test_probs_breakdowns_are_found_on_each_side_of_one_half(tmp_path):
    # --probs: p = 0.5 is logit 0, so a breakdown is the p closest to 0.5 on each side. Every p of a file is >= 0,
    # and the sides of 0 made "off tolerance, first at p ≥ 0.001" (every p but 0) out of failures at small p
    # (final-user). float32, numpy, naive, y = 0: -log(1 - p) with 1 - p rounded to float32 (spacing 2^-24 below 1)
    # is off float32's tolerance for p = 1e-3 and 2e-3 (relative error up to 2^-25/p = 1.5e-5 and more), and within
    # it at p = 0.3, 0.7 and 1 - 2e-3 (losses of order 1 and more). The JSON's sides: _pos is p >= 0.5, _neg p < 0.5
    ps = np.array([1e-3, 2e-3, 0.3, 0.7, 1 - 2e-3], dtype=np.float32)
    np.save(tmp_path / "p.npy", ps)
    np.save(tmp_path / "y.npy", np.zeros(5, dtype=np.float32))
    doc = json.loads(run("check", tmp_path / "p.npy", tmp_path / "y.npy", "--probs", "--backend", "numpy",
                         "--format", "json").output)
    naive = next(r for r in doc["results"] if r["method"] == "naive")
    assert naive["count_ok"] == 3 and naive["count_inaccurate"] == 2
    assert sorted(w["index"] for w in naive["worst"] if w["status"] != "ok") == [[0], [1]]
    assert naive["breakdown"]["inaccurate_neg"] == float(ps[1])  # of the two, the p closer to 0.5
    assert naive["breakdown"]["inaccurate_pos"] is None
    line = doc["summary"][0]
    assert "naive is off tolerance on 2 elements, first at p ≤ 0.002;" in line and "p ≥" not in line, line
    # p = 0, y = 0: naive's (1 - y)·log(1 - p) + y·log p is 1·0 + 0·(-inf) = NaN where the truth is 0; p = 0 is the
    # end of the range, so the sentence says "at p = 0" (it said "from p ≤ 0"), and training breaks on the side
    # below 0.5
    np.save(tmp_path / "p0.npy", np.array([0.0, 0.3, 0.3, 0.3, 0.3], dtype=np.float32))
    doc = json.loads(run("check", tmp_path / "p0.npy", tmp_path / "y.npy", "--probs", "--backend", "numpy",
                         "--format", "json").output)
    naive = next(r for r in doc["results"] if r["method"] == "naive")
    assert naive["training"]["break_neg"] == 0.0 and naive["training"]["break_pos"] is None
    assert "naive gives inf/NaN (loss or gradient) on 1 element: loss NaN at p = 0;" in doc["summary"][0]


def test_text_files_as_numpy_and_spreadsheets_write_them(tmp_path):
    # np.savetxt's default delimiter is a space, and Excel's "CSV UTF-8" starts with a byte-order mark: both were
    # "'1.5 -2.0' is not a number" / "'\ufeff1.0' is not a number" (final-user). The values must come back exactly:
    # savetxt writes %.18e, which round-trips every float64
    x = np.array([[1.5, -2.0, 0.1], [3.0, 4.0, -7.25]])
    np.savetxt(tmp_path / "x.txt", x)
    (tmp_path / "bom.csv").write_bytes("\ufeff0.5\n1\n".encode("utf-8"))
    np.save(tmp_path / "y.npy", np.float32(1))
    doc = json.loads(run("check", tmp_path / "x.txt", tmp_path / "y.npy", "--format", "json", "--no-grad").output)
    assert doc["logits_file"]["shape"] == [2, 3] and doc["elements"] == 6
    assert tensorfile.load(str(tmp_path / "x.txt"), None, "LOGITS").array.tolist() == x.tolist()
    assert tensorfile.load(str(tmp_path / "bom.csv"), None, "LOGITS").array.tolist() == [0.5, 1.0]
    # a header is still refused (silently skipping a line could skip a real one), with a word on what to do
    (tmp_path / "h.csv").write_text("logit\n1.0\n")
    result = run("check", tmp_path / "h.csv", tmp_path / "y.npy")
    assert result.exit_code == 2 and "line 1: 'logit' is not a number" in result.output
    assert "a header line is not read: remove it" in result.output and len(result.output.splitlines()) == 1
