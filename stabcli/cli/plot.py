"""`stabcli plot`: check the folder, write the figures, list them."""

from __future__ import annotations

import click

from stabcli import names
from stabcli.cli import options



def _writable_folder(path: str):
    """Check that ``path`` is, or can be made, a writable folder; nothing is created here (the figures' writer
    makes it), so a refused command leaves nothing behind."""
    import os
    from pathlib import Path

    from stabcli.core.inputs import shown

    folder = Path(options.refuse_empty(path, "--out", "a folder to write the figures into, such as figures"))
    with options.checking_path(path, "--out"):
        if folder.exists() and not folder.is_dir():
            raise options.UserError(f"--out {shown(path)} is a file; give a folder to write the figures into")
        existing = folder
        while not existing.exists():
            existing = existing.parent
        for part in (folder, *folder.parents):  # each name within the file system's limit
            if len(part.name.encode(errors="surrogateescape")) > os.pathconf(existing, "PC_NAME_MAX"):
                raise OSError(36, os.strerror(36))
    if not existing.is_dir():
        raise options.UserError(f"--out {shown(path)} cannot be created: {shown(str(existing))} is a file; give a "
                                "folder you can write")
    if not options.writable(existing):
        raise options.UserError(f"--out {shown(path)} cannot be written ({shown(str(existing))} is not writable); "
                                "give a folder you can write")
    return folder


def _plot_formats(text: str) -> tuple[str, ...]:
    from stabcli.core.inputs import shown

    parts = [p.strip().lower() for p in text.split(",")]
    bad = [p for p in parts if p not in names.FIGURE_FORMATS]
    if bad:
        if "" in bad:
            problem = "has an empty item"
        elif len(parts) == 1:
            problem = "is not allowed"
        else:
            problem = f"has {shown(bad[0])}, which is not png or svg"
        raise options.UserError(f"--format {shown(text)} {problem}; use png, svg or png,svg")
    return tuple(dict.fromkeys(parts))


@click.command(short_help="Write figures of loss and error against the logit.")
@options.loss_option
@options.dtype_option
@options.backend_option
@click.option("--target", "targets", multiple=True,
              help="Target y in [0, 1] to plot (a column of panels each); repeatable; softmax: a class index or a "
                   "probability vector. [default: 0 and 1]")
@click.option("--out", default="figures", show_default=True, help="Folder to write the figures into.")
@click.option("--format", "formats", default="png,svg", show_default=True, help="png, svg or png,svg.")
@click.option("--slide", type=click.Choice(names.SLIDE_KINDS, case_sensitive=False), default=None,
              help="Instead, write 16:9 slides (text >= 18 pt) of one kind: loss, error or grad (one per dtype, "
                   "backend and target), or overview (one per dtype).")
@options.core_errors
def plot(loss, dtypes, backends, targets, out, formats, slide):
    """Write figures of every method's loss, error and gradient against the logit, and where each breaks.

    Per dtype and backend, a figure; then an overview of every method in every dtype. Non-finite losses are
    markers at the panel's top edge, the naive breakdown logits are dashed lines, and where the -100 clamp decides
    the answer (status clamped) is shaded. --slide writes one 16:9 panel per case instead, for a projector (binary
    cross-entropy). Output is deterministic (same bytes every run). With --loss softmax the figures are against
    the gap g of the logits [g, 0, 0] (softmax_<dtype>_<backend>).

    \b
    Example:
        stabcli plot --out figures
        stabcli plot --dtype float16 --backend numpy --format png
        stabcli plot --slide loss --dtype float32 --backend torch --target 0
        stabcli plot --slide overview --dtype float16
        stabcli plot --loss softmax --dtype float16 --out figures
    """
    from stabcli.core.formats import parse_dtypes

    chosen = _plot_formats(formats)
    family = options.family_of(loss)
    if slide and not family.slides:
        from stabcli.losses import family_names, get_family

        drawn = ", ".join(f"--loss {n}" for n in family_names() if get_family(n).slides)
        raise options.UserError(f"--slide draws the slides of {drawn} only; drop it with --loss {family.name}")
    parsed = family.parse_sweep(targets, "1", "1")
    ys, extra = (options.parse_targets(targets), None) if parsed is None else (parsed[0], parsed[3])
    folder = _writable_folder(out)
    from stabcli.commands import curves
    from stabcli.present import plots

    try:
        if slide:
            written = plots.write_slides(folder, chosen, slide.lower(), curves.slide_figures(
                slide.lower(), parse_dtypes(dtypes), options.backends(backends), ys, family.name))
        else:
            written = plots.write_figures(folder, chosen, curves.plot_figures(
                parse_dtypes(dtypes), options.backends(backends), ys, family.name, extra))
    except OSError as exc:  # os.access can say yes where writing fails (root on /proc, read-only mounts, a full disk)
        from stabcli.core.inputs import shown

        raise options.UserError(f"--out {shown(out)} cannot be written ({exc.strerror or exc}); give a folder you "
                                "can write") from None
    for path in written:
        click.echo(str(path))
