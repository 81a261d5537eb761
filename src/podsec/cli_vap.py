"""``podsec policy vap``: print the Pod Security Standards as a ValidatingAdmissionPolicy and its binding."""

from __future__ import annotations

import click


def register(cli: click.Group) -> None:
    @cli.group()
    def policy() -> None:
        """Export the Pod Security Standards for a cluster to enforce natively."""

    @policy.command()
    @click.option("--level", type=click.Choice(("baseline", "restricted")), required=True,
                  help="Pod Security Standards level.")
    @click.option("--version", "pss_version", default="latest", show_default=True, metavar="v1.N|latest",
                  help="Pod Security Standards version (latest = v1.37).")
    @click.option("--action", "actions", multiple=True, type=click.Choice(("Deny", "Warn", "Audit")),
                  help="validationActions of the binding (repeatable; default Deny).")
    @click.option("--namespace-selector", metavar="SELECTOR",
                  help="Bind to namespaces matching this label selector (kubectl -l syntax; \"\" for all) "
                       "[default: pod-security.kubernetes.io/enforce=LEVEL].")
    @click.option("--exempt-namespace", "exempt", multiple=True, metavar="NAME",
                  help="Never check pods in this namespace (repeatable).")
    @click.option("--exempt-user", "exempt_users", multiple=True, metavar="USERNAME",
                  help="Never check requests by this user, as PSA's exemptions.usernames (repeatable).")
    @click.option("--exempt-runtime-class", "exempt_runtime_classes", multiple=True, metavar="NAME",
                  help="Never check pods with this runtimeClassName, as PSA's exemptions.runtimeClasses (repeatable).")
    @click.option("--name", help="Name of the policy and binding [default: podsec-pss-LEVEL-VERSION].")
    def vap(level: str, pss_version: str, actions: tuple[str, ...], namespace_selector: str | None,
            exempt: tuple[str, ...], exempt_users: tuple[str, ...], exempt_runtime_classes: tuple[str, ...],
            name: str | None) -> None:
        """Print a ValidatingAdmissionPolicy (CEL, one validation per PSA check) and its binding as YAML.

        Apply with ``kubectl apply -f -``; needs Kubernetes 1.30 or newer.
        """
        from podsec.policy.pss import parse_version
        from podsec.vap import policy_documents, render_yaml
        from podsec.vap.selector import parse

        try:
            parse_version(pss_version)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--version") from None
        selector = None if namespace_selector is None else parse(namespace_selector)
        docs = policy_documents(level, pss_version, actions or ("Deny",), selector, exempt, name,
                                exempt_users, exempt_runtime_classes)
        click.echo(render_yaml(docs), nl=False)
