"""``podsec fix``: rewrite manifests toward Pod Security Standards restricted. ``register(cli)`` adds it.

Output: the fixed manifests on stdout (default), a unified diff (``--diff``) or the files changed in
place (``--write``); one summary line per changed pod or container and per thing left for a human on
stderr. Exit codes (as ``ruff check --fix`` and ``kubectl diff``): 0 nothing left to do (every workload
of the output passes restricted); 1 something still needs a human, or ``--diff`` found changes to make;
2 bad input; 130 after Ctrl-C during ``--trace``.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from podsec.duration import duration_param


def register(cli: click.Group) -> None:
    """Add ``fix`` to podsec's main group."""
    cli.add_command(fix)


@click.command(epilog="Exit status: 0 nothing left to do (the output passes restricted); 1 something needs a "
                      "human, or --diff found changes; 2 bad input.")
@click.argument("paths", nargs=-1, metavar="[FILE|DIR|-]...")
@click.option("-f", "--filename", "files", multiple=True, metavar="FILE|DIR|-",
              help="Manifests to fix (repeatable; the same as giving them as arguments).")
@click.option("--diff", "show_diff", is_flag=True, help="Print a unified diff instead of the fixed manifests; "
              "exit 1 when there is something to change.")
@click.option("--write", is_flag=True, help="Change the files in place (atomically, keeping their mode); "
              "files with nothing to fix are not touched.")
@click.option("--trace", "do_trace", is_flag=True,
              help="Run each fixed pod (podsec trace) and add readOnlyRootFilesystem with an emptyDir for every "
                   "directory it writes.")
@click.option("--duration", default="30s", show_default=True, callback=duration_param, metavar="DURATION",
              help="--trace: how long to let each pod work (30s, 2m, plain seconds).")
@click.option("--runtime", type=click.Choice(("runc", "crun")), default="runc", show_default=True,
              help="--trace: the OCI runtime.")
@click.option("--volume-dir", multiple=True, metavar="CLAIM=DIR",
              help="--trace: back a persistentVolumeClaim with a directory.")
@click.option("--uid", type=click.IntRange(1, 2147483647), default=65532, show_default=True,
              help="runAsUser for containers whose image runs as root or whose USER podsec cannot read.")
@click.option("--no-images", is_flag=True, help="Do not read images from the local store.")
@click.option("-q", "--quiet", is_flag=True, help="Print only what needs a human, no change summary.")
@click.pass_context
def fix(ctx: click.Context, paths: tuple[str, ...], files: tuple[str, ...], show_diff: bool, write: bool,
        do_trace: bool, duration: float, runtime: str, volume_dir: tuple[str, ...], uid: int, no_images: bool,
        quiet: bool) -> None:
    """Rewrite manifests toward Pod Security Standards restricted, keeping comments and formatting.

    Sets runAsNonRoot (with a concrete runAsUser where the image's user is root or not numeric),
    allowPrivilegeEscalation: false, capabilities drop ALL (keeping NET_BIND_SERVICE for ports below
    1024) and seccomp RuntimeDefault. What only a human can decide (host namespaces, hostPath volumes,
    privileged, ...) is left as it is and reported. readOnlyRootFilesystem needs --trace: without
    knowing where the app writes it would break the app.
    """
    from podsec.fix import fix_text
    from podsec.fix.files import account_lookup, read_inputs, unified_diff, write_atomic
    from podsec.gcpause import no_cyclic_gc
    from podsec.image.lookup import image_lookup

    inputs_given = paths + files
    if not inputs_given:
        raise click.UsageError("give at least one FILE, DIRECTORY or - for stdin (or -f FILE)")
    if show_diff and write:
        raise click.UsageError("--diff and --write cannot be used together")
    if write and "-" in inputs_given:
        raise click.UsageError("--write cannot write to stdin; leave it out to print the fixed manifests")
    images = None if no_images else image_lookup(ctx.obj["root"])
    accounts = None if no_images else account_lookup(str(ctx.obj["root"]))
    inputs = read_inputs(inputs_given)
    with no_cyclic_gc():
        results = [fix_text(i.display, i.text, images, uid=uid, accounts=accounts) for i in inputs]
    interrupted = False
    if do_trace:
        interrupted = _trace(ctx, inputs, results, images, duration, runtime, volume_dir)

    report = sys.stderr
    for r in results:
        _summary(r, quiet, report)
    if not quiet:
        _notes(results, do_trace, report)

    changed = [(i, r) for i, r in zip(inputs, results) if r.changed]
    if show_diff:
        for i, r in changed:
            sys.stdout.write(unified_diff(i.display, r.original, r.fixed))
    elif write:
        for i, r in changed:
            write_atomic(i.path, r.fixed)
    else:
        for n, r in enumerate(results):
            if n and len(results) > 1:
                sys.stdout.write("---\n")
            sys.stdout.write(r.fixed if r.fixed.endswith("\n") or not r.fixed else r.fixed + "\n")
    sys.stdout.flush()

    humans = sum(len(p.humans) for r in results for p in r.plans) + sum(len(r.trace_humans) for r in results)
    leftovers = sum(len(r.leftovers) for r in results)
    workloads = sum(len(r.plans) for r in results)
    fixed = sum(1 for r in results for p in r.plans if p.changes)
    verb = "would fix" if show_diff else "fixed"
    where = f"{len(changed)} file{'s' if len(changed) != 1 else ''} changed" if write else \
        f"{len(inputs)} file{'s' if len(inputs) != 1 else ''}"
    tail = []
    if humans:
        tail.append(f"{humans} left for a human")
    if leftovers:
        tail.append(f"{leftovers} still failing")
    if tail or not quiet:
        click.echo(f"podsec fix: {verb} {fixed} of {workloads} workload{'s' if workloads != 1 else ''} "
                   f"({where}){'; ' + ', '.join(tail) if tail else ''}", err=True)
    if interrupted:
        sys.exit(130)
    sys.exit(1 if humans or leftovers or (show_diff and changed) else 0)


def _summary(r: Any, quiet: bool, out: Any) -> None:
    """One line per changed pod/container, per thing left for a human, per leftover."""
    lines: list[str] = []
    for p in r.plans:
        where = p.workload.obj.source.display  # Helm's "# Source:" file for `helm template … | podsec fix -`
        if not quiet:
            lines += [f"{where}:{c.line}: {p.label}: {c.where}: {', '.join(c.what)}" for c in p.changes]
        lines += [f"{where}:{h.line}: {p.label}: needs a human: {h.field}: {h.message}"
                  for h in sorted(p.humans, key=lambda h: h.line)]
    lines += r.trace_notes + r.trace_humans
    lines += [f"{r.display}:{lo.line}: {lo.label}: not fixed: {lo.message}" for lo in r.leftovers]
    for text in lines:
        out.write(text + "\n")


def _notes(results: list, traced: bool, out: Any) -> None:
    unknown: list[str] = []
    writable = 0
    for r in results:
        for p in r.plans:
            unknown += [i for i in p.unknown_images if i not in unknown]
            writable += len(p.containers_writable_root)
            for n in p.notes:
                out.write(f"podsec fix: note: {r.display}: {p.label}: {n}\n")
    if unknown:
        out.write(f"podsec fix: note: images not in podsec's store ({', '.join(unknown)}): their USER is unknown, "
                  f"so runAsUser is the --uid default; `podsec image pull IMAGE` and fix again to keep each "
                  "image's own non-root user\n")
    if writable and not traced:
        out.write(f"podsec fix: note: readOnlyRootFilesystem was not set ({writable} container"
                  f"{'s' if writable != 1 else ''}): it breaks apps that write outside their volumes; "
                  "`podsec fix --trace` runs the pods and sets it with an emptyDir for each directory they write\n")


def _trace(ctx: click.Context, inputs: list, results: list, images: Any, duration: float, runtime: str,
           volume_dir: tuple[str, ...]) -> bool:
    """Run the manifests as written, then the fixed ones until each container runs read-only as the new user
    as well as it did, or a blocker is named (:mod:`podsec.fix.solve`); keep what was proven."""
    from podsec.fix.apply import set_traced
    from podsec.fix.solve import solve
    from podsec.trace.runner import TraceOptions
    from podsec.volumes.claims import volume_dir_strings

    opts = TraceOptions(duration=duration, root=str(ctx.obj["root"]), state=str(ctx.obj["state"]), runtime=runtime,
                        volume_dirs=volume_dir_strings(volume_dir))
    files = [(str(n), r.display, r.original, r.fixed) for n, r in enumerate(results)]
    interrupted = False
    for r, solved in zip(results, solve(files, opts)):
        interrupted = interrupted or solved.interrupted
        r.trace_notes += solved.notes
        r.trace_humans += solved.humans
        set_traced(r, solved.text, solved.readonly, images)
    return interrupted
