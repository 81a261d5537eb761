"""``podsec audit`` and ``podsec webhook``: podsec on a live cluster. ``register(cli)`` adds them.

Thin: parse the options, call :mod:`podsec.cluster`, render with :mod:`podsec.report`. Exit codes as
``podsec check``: 0 clean, 1 a Pod Security denial or a finding at ``--fail-on``, 2 bad input or a cluster
that cannot be read (one line, no traceback).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import click

from podsec.features import click_option as _feature_gates_option

FORMATS_AUDIT = ("table", "json", "yaml", "sarif", "junit", "policyreport")
SEVERITY_CHOICES = ("critical", "high", "medium", "low", "info")


def register(cli: click.Group) -> None:
    """Add ``audit`` and ``webhook`` to podsec's main group."""
    cli.add_command(audit)
    cli.add_command(webhook)


def _version_param(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from podsec.policy.pss import parse_version

    if value is None:
        return None
    try:
        return parse_version(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


class _Progress:
    """One progress line on stderr: rewritten in place on a terminal, every few seconds when redirected."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.every = 0.2 if self.tty else 5.0
        self.last = time.monotonic()
        self.shown = False

    def __call__(self, text: str) -> None:
        now = time.monotonic()
        if now - self.last < self.every:
            return
        self.last = now
        self.shown = True
        if self.tty:
            sys.stderr.write(f"\r\033[Kpodsec: audit: {text}")
        else:
            sys.stderr.write(f"podsec: audit: {text}\n")
        sys.stderr.flush()

    def done(self) -> None:
        if self.shown and self.tty:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


@click.command(epilog="Exit status: 0 clean; 1 a Pod Security denial or a finding at --fail-on; 2 bad input "
                      "or the cluster could not be read.")
@click.option("--kubeconfig", metavar="PATH", help="Path to the kubeconfig file (default: $KUBECONFIG, "
              "~/.kube/config, else the in-cluster service account).")
@click.option("--context", metavar="NAME", help="The kubeconfig context to use.")
@click.option("-A", "--all-namespaces", is_flag=True, help="Audit every namespace.")
@click.option("-n", "--namespace", metavar="NS", help="Audit this namespace (default: the context's).")
@click.option("-o", "--output", type=click.Choice(FORMATS_AUDIT), default="table", show_default=True)
@click.option("--level", type=click.Choice(("privileged", "baseline", "restricted")),
              help="Judge every workload at this level (default: its namespace's enforce label; none: privileged, "
                   "as Pod Security Admission).")
@click.option("--version", "pss_version", metavar="v1.N|latest", callback=_version_param,
              help="Pod Security Standards version (default: the namespace's enforce-version label, else latest).")
@click.option("--fail-on", type=click.Choice(SEVERITY_CHOICES), default="high", show_default=True,
              help="Exit 1 when a finding is at least this severe (a Pod Security denial always fails).")
@click.option("--min-severity", type=click.Choice(SEVERITY_CHOICES), default="low", show_default=True,
              help="Hide table rows below this severity.")
@click.option("--no-images", is_flag=True, help="Do not read images from the local store.")
@click.option("--inspect-images", is_flag=True,
              help="Read each image's config from its registry with skopeo (no layers pulled), so a USER of root "
                   "is known.")
@click.option("--image-tls-verify/--no-image-tls-verify", default=True, show_default=True,
              help="--inspect-images: require HTTPS and verify registry certificates.")
@click.option("--chunk-size", type=click.IntRange(1, 10_000), default=500, show_default=True,
              help="Return large lists in chunks of this many objects (limit/continue), as kubectl.")
@_feature_gates_option()
@click.pass_context
def audit(ctx: click.Context, kubeconfig: str | None, context: str | None, all_namespaces: bool,
          namespace: str | None, output: str, level: str | None, pss_version: str | None, fail_on: str,
          min_severity: str, no_images: bool, inspect_images: bool, image_tls_verify: bool, chunk_size: int,
          feature_gates: Any) -> None:
    """Judge every workload on a live cluster as podsec check judges files.

    Each workload is reported once, under its top controller (Pod → ReplicaSet → Deployment, Pod → Job →
    CronJob), at its namespace's Pod Security enforce level, with the warn and audit levels beside it.
    """
    from podsec.cluster import kube
    from podsec.cluster.audit import AuditOptions
    from podsec.cluster.audit import audit as run_audit
    from podsec.cluster.images import RegistryImages
    from podsec.gcpause import no_cyclic_gc
    from podsec.image.lookup import image_lookup
    from podsec.report import audit_report, check_report

    if all_namespaces and namespace:
        raise click.UsageError("-A/--all-namespaces and -n/--namespace cannot be used together")
    api = kube.connect(kubeconfig, context)
    if not all_namespaces and not namespace:
        namespace = kube.default_namespace(kubeconfig, context)
    local = None if no_images else image_lookup(ctx.obj["root"])
    images = RegistryImages(local, inspect=inspect_images, tls_verify=image_tls_verify)
    progress = _Progress()
    opts = AuditOptions(namespace=None if all_namespaces else namespace, level=level, version=pss_version,
                        images=images if (local is not None or inspect_images) else None,
                        feature_gates=feature_gates.enabled_names, page_size=chunk_size, progress=progress)
    with no_cyclic_gc():
        try:
            done = run_audit(api, opts)
        finally:
            progress.done()
        for note in done.notes + images.notes:
            click.echo(f"podsec: warning: {note}", err=True)
        results = done.results
        if not results:
            where = "the cluster" if all_namespaces else f'namespace "{namespace}"'
            click.echo(f"podsec: note: no workload in {where}", err=True)
        out = sys.stdout
        if output == "policyreport":
            audit_report.write_policyreport(results, out, fail_on)
        elif output == "table":
            audit_report.write_table(results, out, min_severity)
        else:
            check_report.render(results, output, out, fail_on, min_severity)
        sys.exit(1 if any(check_report.failed_result(r, fail_on) for r in results) else 0)


@click.group()
def webhook() -> None:
    """A validating admission webhook that decides pods as Pod Security Admission does, plus podsec's checks."""


def _deny_param(ctx: click.Context, param: click.Parameter, value: str | None) -> frozenset[str]:
    from podsec.cluster.decide import WARNABLE

    ids = frozenset(v.strip() for v in (value or "").split(",") if v.strip())
    unknown = sorted(ids - set(WARNABLE))
    if unknown:
        raise click.BadParameter(f"unknown ID {', '.join(unknown)}; choose from {', '.join(WARNABLE)}",
                                 ctx=ctx, param=param)
    return ids


@webhook.command("serve")
@click.option("--cert", required=True, metavar="FILE", help="Serving certificate (PEM); re-read when it changes.")
@click.option("--key", required=True, metavar="FILE", help="Its private key (PEM); re-read when it changes.")
@click.option("--port", type=click.IntRange(0, 65535), default=8443, show_default=True)
@click.option("--address", default="0.0.0.0", show_default=True, help="Address to listen on.")
@click.option("--kubeconfig", metavar="PATH", help="Kubeconfig for the namespace watch (default: in-cluster).")
@click.option("--context", metavar="NAME", help="The kubeconfig context to use.")
@click.option("--config", "config_file", metavar="FILE",
              help="A PodSecurityConfiguration (or AdmissionConfiguration) file: defaults and exemptions.")
@click.option("--deny", callback=_deny_param, metavar="IDS",
              help="podsec checks that deny a pod instead of warning, e.g. PS001,PS009.")
@click.option("--no-images", is_flag=True, help="Do not read images from the local store.")
@click.option("--ready-file", metavar="FILE", hidden=True, help="Write the bound port here once listening.")
@click.option("-v", "--verbose", is_flag=True, help="Log every decision, not only denials and errors.")
@_feature_gates_option()
@click.pass_context
def webhook_serve(ctx: click.Context, cert: str, key: str, port: int, address: str, kubeconfig: str | None,
                  context: str | None, config_file: str | None, deny: frozenset[str], no_images: bool,
                  ready_file: str | None, verbose: bool, feature_gates: Any) -> None:
    """Serve POST /validate (AdmissionReview v1), GET /healthz and /readyz over HTTPS."""
    import logging
    import ssl

    from podsec.cluster import kube
    from podsec.cluster.decide import Decider
    from podsec.cluster.webhook import serve
    from podsec.errors import InputError
    from podsec.image.lookup import image_lookup

    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="podsec webhook: %(levelname)s %(message)s")
    for name in ("urllib3", "kubernetes"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    config = _read_config(config_file)
    api = kube.connect(kubeconfig, context)
    images = None if no_images else image_lookup(ctx.obj["root"])

    def decider(cache: Any) -> Decider:
        return Decider(cache, config, images=images, deny=deny, feature_gates=feature_gates.enabled_names)

    try:
        serve(api, decider, cert, key, address, port, ready_file)
    except (OSError, ssl.SSLError) as exc:
        raise InputError(f"cannot serve: {exc.strerror if isinstance(exc, OSError) and exc.strerror else exc}",
                         file=cert) from None
    # Stopped cleanly. Connection and watch threads are still blocked in TLS/socket reads; letting the
    # interpreter finalise under them can abort the process, so leave without finalising.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _read_config(path: str | None) -> Any:
    import yaml

    from podsec.cluster.decide import Config, parse_config
    from podsec.errors import InputError

    if path is None:
        return Config()
    try:
        with open(path) as fh:
            doc = yaml.safe_load(fh)
    except OSError as exc:
        raise InputError(exc.strerror or str(exc), file=path) from None
    except yaml.YAMLError as exc:
        raise InputError(f"not YAML: {exc}", file=path) from None
    return parse_config(doc, path)


@webhook.command("manifests")
@click.option("--namespace", "namespace", default="podsec", show_default=True, help="Namespace to install into.")
@click.option("--image", required=True, help="The podsec image the webhook runs.")
@click.option("--cert", required=True, type=click.Path(exists=True, dir_okay=False), help="Serving certificate.")
@click.option("--key", required=True, type=click.Path(exists=True, dir_okay=False), help="Its private key.")
@click.option("--ca", "ca_file", type=click.Path(exists=True, dir_okay=False),
              help="CA that signed the certificate (default: the last certificate in --cert).")
@click.option("--webhook-name", default="pod-security.kubernetes.io", show_default=True,
              help="The webhook's name; the API server prefixes its audit annotation keys with it.")
@click.option("--deny", callback=_deny_param, metavar="IDS", help="Passed to webhook serve.")
def webhook_manifests(namespace: str, image: str, cert: str, key: str, ca_file: str | None, webhook_name: str,
                      deny: frozenset[str]) -> None:
    """Print the Namespace, RBAC, TLS Secret, Deployment, Service, PodDisruptionBudget and
    ValidatingWebhookConfiguration that install the webhook (kubectl apply -f -)."""
    from pathlib import Path

    import yaml

    from podsec.cluster.manifests import ca_bundle, manifests

    cert_pem = Path(cert).read_bytes()
    ca_pem = Path(ca_file).read_bytes() if ca_file else None
    docs = manifests(namespace, image, cert_pem, Path(key).read_bytes(), ca_bundle(cert_pem, ca_pem, ca_file or cert),
                     webhook_name=webhook_name, extra_args=("--deny", ",".join(sorted(deny))) if deny else ())
    click.echo(yaml.safe_dump_all(docs, sort_keys=False, explicit_start=True), nl=False)
