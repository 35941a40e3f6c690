"""Demo helper: show LiteLLMUsers and LiteLLMTeams as LiteLLM holds them.

    python hack/demo_teams.py --show-users NAMESPACE...   # LiteLLM's record of each LiteLLMUser
    python hack/demo_teams.py --show-teams NAMESPACE...   # LiteLLM's record of each LiteLLMTeam

The demo's team (examples/teams/power-users.yaml) is a LiteLLMTeam like any other resource:
the operator creates it in LiteLLM. Uses LITELLM_URL, LITELLM_MASTER_KEY and KUBECONFIG
(``source .dev/env``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys

from litellm_operator.fields import ALL_PROXY_MODELS
from litellm_operator.litellm import LiteLLMClient
from litellm_operator.policies.resolve import RESERVED_USER_IDS


def status_ids(kind: str, field: str, namespace: str) -> list[str]:
    """``status.<field>`` of every ``kind`` object in the namespace that has one."""
    out = subprocess.run(
        ["kubectl", "get", kind, "-n", namespace, "-o", "json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [
        item["status"][field]
        for item in json.loads(out)["items"]
        if (item.get("status") or {}).get(field)
    ]


def user_ids(namespace: str) -> list[str]:
    return status_ids("llmusers", "userId", namespace)


async def show_teams(client: LiteLLMClient, namespaces: list[str]) -> None:
    row = "{:<24} {:<14} {:>8} {:>6} {:>8} {:<36} {}"
    print(row.format("TEAM ID", "ALIAS", "BUDGET", "PERIOD", "TPM", "MODELS", "MEMBERS"))
    for team_id in [
        t for namespace in namespaces for t in status_ids("llmteams", "teamId", namespace)
    ]:
        record = await client.get_team(team_id)
        if record is None:
            print(f"{team_id:<24} (not in LiteLLM)")
            continue
        members = sorted(m for m in record.member_ids if m not in RESERVED_USER_IDS)
        print(
            row.format(
                record.team_id,
                record.team_alias or "-",
                "none" if record.max_budget is None else f"{record.max_budget:g}",
                record.budget_duration or "-",
                record.tpm_limit or "-",
                ",".join(record.models) or "(all)",
                ",".join(members) or "-",
            )
        )


async def show_users(client: LiteLLMClient, namespaces: list[str]) -> None:
    row = "{:<22} {:>8} {:>6} {:<14} {:>8} {:>5} {:<38} {}"
    print(row.format("USER ID", "BUDGET", "PERIOD", "ROLE", "TPM", "RPM", "MODELS", "TEAMS"))
    for user_id in [u for namespace in namespaces for u in user_ids(namespace)]:
        record = await client.get_user(user_id)
        if record is None:
            print(f"{user_id:<22} (not in LiteLLM)")
            continue
        budget = "none" if record.max_budget is None else f"{record.max_budget:g}"
        print(
            row.format(
                record.user_id,
                budget,
                record.budget_duration or "-",
                record.user_role or "-",
                record.tpm_limit or "-",
                record.rpm_limit or "-",
                ",".join(m for m in record.models if m != ALL_PROXY_MODELS) or "(all)",
                ",".join(record.teams) or "-",
            )
        )


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show-users", metavar="NAMESPACE", nargs="+")
    parser.add_argument("--show-teams", metavar="NAMESPACE", nargs="+")
    args = parser.parse_args()
    if not args.show_users and not args.show_teams:
        parser.error("give --show-users NAMESPACE... or --show-teams NAMESPACE...")
    async with LiteLLMClient(os.environ["LITELLM_URL"], os.environ["LITELLM_MASTER_KEY"]) as client:
        if args.show_teams:
            await show_teams(client, args.show_teams)
        if args.show_users:
            await show_users(client, args.show_users)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
