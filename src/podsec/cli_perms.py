"""``podsec perms``: who can read, write and enter each directory under a path shared by pods.

``register(cli)`` adds the command; the library (:mod:`podsec.perms`) is imported inside it.

Exit codes: 0 every party can do its job (read everything it sees; write where its mount is writable,
including what the others create); 1 a denial remains (after ``--fix --apply``: one that needs a manual
step — a manifest edit, a directory above ``--path``); 2 bad input; 130 interrupted (``--apply`` resumes
when run again).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from podsec.errors import InputError

PROGRESS_MIN_PATHS = 5000
"""Trees at least this big get a progress bar on a terminal."""


def register(cli: click.Group) -> None:
    cli.add_command(perms)


@click.command()
@click.option("-f", "--filename", "files", multiple=True, metavar="FILE|DIR|-",
              help="Manifests of the pods that share the path (any workload kind).")
@click.option("--path", "path", required=True, metavar="DIR", help="The shared directory on this host.")
@click.option("--identity", "identities", multiple=True, metavar="NAME=UID:GID[,GROUP...]",
              help="An extra user of the files (an SMB/NFS user, an admin) who must read and write.")
@click.option("--volume-dir", multiple=True, metavar="CLAIM=DIR|SERVER:/EXPORT=DIR",
              help="The host directory of a persistentVolumeClaim, or of an NFS export.")
@click.option("--root-squash", is_flag=True,
              help="The containers reach the files over NFS with root_squash (uid/gid 0 become 65534, "
                   "no capabilities).")
@click.option("--fix", is_flag=True, help="Propose least-privilege fixes (and show their predicted result).")
@click.option("--apply", "do_apply", is_flag=True, help="With --fix: change the files under --path (resumable).")
@click.option("-o", "--output", type=click.Choice(("table", "json")), default="table", show_default=True)
@click.option("--max-rows", type=click.IntRange(min=5), default=40, show_default=True,
              help="Summarise the matrix to about this many rows.")
@click.option("--no-images", is_flag=True, help="Do not read images from the local store.")
@click.pass_context
def perms(ctx: click.Context, files: tuple[str, ...], path: str, identities: tuple[str, ...],
          volume_dir: tuple[str, ...], root_squash: bool, fix: bool, do_apply: bool, output: str, max_rows: int,
          no_images: bool) -> None:
    """Who can write here? An access matrix of the pods sharing a path, every denial explained, fixes ranked.

    Decisions follow the kernel: owner/group/other bits, supplementary groups, POSIX ACLs and their mask,
    CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH/CAP_FOWNER, read-only mounts and NFS root squashing.
    Exit status: 0 every party can do its job, 1 a denial remains, 2 bad input, 130 interrupted.
    """
    from podsec.perms import fixes as fixes_mod
    from podsec.perms import report
    from podsec.perms.identity import gather_parties
    from podsec.perms.matrix import evaluate
    from podsec.perms.scan import scan
    from podsec.volumes.claims import parse_volume_dirs

    if do_apply and not fix:
        raise click.UsageError("--apply needs --fix")
    if do_apply:
        from podsec.errors import require_root

        require_root("perms --apply", "it changes owners, modes and ACLs of files it does not own")
    if not files and not identities:
        raise click.UsageError("give the manifests with -f (and/or --identity)")
    root = os.path.realpath(path)
    if not os.path.isdir(root):
        raise InputError(f"--path {path}: not an existing directory")
    from podsec.image.lookup import image_lookup

    found = gather_parties(files, root, parse_volume_dirs(volume_dir), identities, root_squash=root_squash,
                           images=None if no_images else image_lookup(ctx.obj["root"]))
    for n in found.warnings:
        click.echo(f"podsec: warning: {n}", err=True)
    if not found.parties:
        raise InputError(f"no container in {', '.join(files)} mounts {root} (hostPath, --volume-dir claims, nfs), "
                         "and no --identity was given")
    for n in found.notes:
        click.echo(f"podsec: note: {n}", err=True)
    parties = found.parties

    color = output == "table" and sys.stdout.isatty()
    spinner = _Spinner("scanning") if sys.stderr.isatty() else None
    try:
        tree = scan(root, progress=spinner)
    finally:
        if spinner is not None:
            spinner.close()
    result = evaluate(tree, parties)
    plan = fixes_mod.plan(tree, parties, result) if fix else None
    applied: dict[str, Any] | None = None
    final = result
    if not do_apply:
        from podsec.perms.apply import pending

        journal = pending(Path(ctx.obj["root"]) / "perms", root)
        if journal is not None:
            click.echo(f"podsec: warning: an apply on {root} was interrupted on {journal.started}; "
                       "run with --fix --apply to finish it", err=True)
    if do_apply and plan is not None:
        applied, final = _apply(ctx, tree, parties, plan)
    if output == "json":
        import json

        click.echo(json.dumps(report.to_json(result, plan, max_rows, applied, final if applied else None), indent=2))
    else:
        report.render(result, plan, sys.stdout, color=color, max_rows=max_rows, applied=applied)
        if applied is not None:
            click.echo("")
            click.echo("AFTER --apply (re-scanned)")
            report.render(final, None, sys.stdout, color=color, max_rows=max_rows, parties=False)
    sys.stdout.flush()
    sys.exit(1 if final.denied else 0)


class _Spinner:
    """A one-line count on stderr for long scans (the walk calls it only after 0.2 s: small trees print
    nothing), erased when the scan ends."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.shown = False

    def __call__(self, count: int) -> None:
        sys.stderr.write(f"\r{self.what}: {count:,} paths")
        sys.stderr.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def _apply(ctx: click.Context, tree: Any, parties: list[Any], plan: Any) -> tuple[dict[str, Any], Any]:
    """Run the tree fix (resuming an interrupted one), then judge the real tree again."""
    from podsec.perms import apply as apply_mod
    from podsec.perms.matrix import evaluate
    from podsec.perms.scan import scan

    journal_dir = Path(ctx.obj["root"]) / "perms"
    resume = apply_mod.pending(journal_dir, tree.root)
    fix = resume.fix if resume is not None else plan.tree
    if resume is not None:
        click.echo(f"podsec: resuming the apply interrupted on {resume.started} ({len(resume.done):,} directories "
                   "were finished); using its plan", err=True)
    if fix.empty and resume is None:
        return {"visited": 0, "seconds": 0.0, "resumedFrom": None, "skippedDirectories": 0, "warnings": [],
                "manual": plan.manual_left}, evaluate(tree, parties)
    total = tree.paths
    bar = _progress_bar(total) if sys.stderr.isatty() and total >= PROGRESS_MIN_PATHS else None
    try:
        if bar is not None:
            progress, task = bar
            progress.start()

            def tick(n: int) -> None:
                progress.update(task, completed=min(n, total))
                progress.refresh()

            try:
                done = apply_mod.apply_fix(tree.root, fix, journal_dir, read_acls=tree.has_acls, progress=tick,
                                           resume=resume)
                progress.update(task, completed=total)
                progress.refresh()
            finally:
                progress.stop()
        else:
            done = apply_mod.apply_fix(tree.root, fix, journal_dir, read_acls=tree.has_acls, resume=resume)
    except KeyboardInterrupt:
        click.echo("podsec: interrupted; run the same command again to finish (it resumes with the same plan)",
                   err=True)
        sys.exit(130)
    applied = done.to_json()
    applied["manual"] = plan.manual_left
    # The proof is the real tree, judged again with the manifests as they are (a manifest fix is manual).
    return applied, evaluate(scan(tree.root), parties)


def _progress_bar(total: int) -> tuple[Any, Any]:
    """A rich progress bar refreshed by the walk's callback only: no refresh thread (a threaded
    process would keep the walk from forking its workers)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(TextColumn("applying"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                        console=Console(file=sys.stderr), auto_refresh=False, transient=True)
    task = progress.add_task("apply", total=total)
    return progress, task
