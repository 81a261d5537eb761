"""``podsec fix``: rewrite manifests toward Pod Security Standards restricted. ``register(cli)`` adds it.

Output: the fixed manifests on stdout (default), a unified diff (``--diff``) or the files changed in
place (``--write``); one summary line per changed pod or container and per thing left for a human on
stderr. Exit codes (as ``ruff check --fix`` and ``kubectl diff``): 0 nothing left to do (every workload
of the output passes restricted); 1 something still needs a human, or ``--diff`` found changes to make;
2 bad input; 130 after Ctrl-C during ``--trace``.
"""

from __future__ import annotations

import sys

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
    allowPrivilegeEscalation: false, capabilities drop ALL (containerd lets pods bind ports below 1024
    without NET_BIND_SERVICE) and seccomp RuntimeDefault. What only a human can decide (host namespaces,
    hostPath volumes, privileged, ...) is left as it is and reported. readOnlyRootFilesystem needs --trace: without
    knowing where the app writes it would break the app.
    """
    from podsec.fix.files import TraceSettings, account_lookup, fix_files, unified_diff, write_atomic
    from podsec.fix.report import final_line, note_lines, summary_lines
    from podsec.image.lookup import image_lookup

    inputs_given = paths + files
    if not inputs_given:
        raise click.UsageError("give at least one FILE, DIRECTORY or - for stdin (or -f FILE)")
    if show_diff and write:
        raise click.UsageError("--diff and --write cannot be used together")
    if write and "-" in inputs_given:
        raise click.UsageError("--write cannot write to stdin; leave it out to print the fixed manifests")
    if do_trace:
        from podsec.errors import require_root

        require_root("fix --trace", "it runs the fixed workloads with runc/crun, mounts and cgroups")
    trace = TraceSettings(duration, str(ctx.obj["root"]), str(ctx.obj["state"]), runtime, volume_dir) \
        if do_trace else None
    run = fix_files(inputs_given, None if no_images else image_lookup(ctx.obj["root"]),
                    None if no_images else account_lookup(str(ctx.obj["root"])), uid=uid, trace=trace)

    for r in run.results:
        for line in summary_lines(r, quiet):
            sys.stderr.write(line + "\n")
    if not quiet:
        for line in note_lines(run.results, do_trace):
            sys.stderr.write(line + "\n")
    changed = [(i, r) for i, r in zip(run.inputs, run.results) if r.changed]
    if show_diff:
        for i, r in changed:
            sys.stdout.write(unified_diff(i.display, r.original, r.fixed))
    elif write:
        for i, r in changed:
            write_atomic(i.path, r.fixed)
    else:
        for n, r in enumerate(run.results):
            if n and len(run.results) > 1:
                sys.stdout.write("---\n")
            sys.stdout.write(r.fixed if r.fixed.endswith("\n") or not r.fixed else r.fixed + "\n")
    sys.stdout.flush()
    line, needs_human = final_line(run, show_diff=show_diff, write=write, changed=len(changed))
    if needs_human or not quiet:
        click.echo(line, err=True)
    if run.interrupted:
        sys.exit(130)
    sys.exit(1 if needs_human or (show_diff and changed) else 0)
