"""Demo helper: create the LiteLLM teams a policy names, or show users as LiteLLM holds them.

    python hack/demo_teams.py examples/policy.yaml     # create missing teams (idempotent)
    python hack/demo_teams.py --show-users NAMESPACE...   # LiteLLM's record of each LiteLLMUser

Teams are LiteLLM objects the platform team owns; the operator only manages memberships, so the
demo creates the example teams the way an administrator would. Uses LITELLM_URL,
LITELLM_MASTER_KEY and KUBECONFIG (``source .dev/env``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from litellm_operator.fields import ALL_PROXY_MODELS
from litellm_operator.litellm import LiteLLMClient, TeamExists


def policy_teams(path: Path) -> list[str]:
    teams: set[str] = set()
    for doc in yaml.safe_load_all(path.read_text()):
        spec = (doc or {}).get("spec") or {}
        teams.update((spec.get("defaults") or {}).get("teams") or [])
        for role in spec.get("roles") or []:
            teams.update(role.get("teams") or [])
    return sorted(teams)


async def create_teams(client: LiteLLMClient, teams: list[str]) -> None:
    for team in teams:
        try:
            await client.new_team(team, team_alias=team)
            print(f"  created team {team}")
        except TeamExists:
            print(f"  team {team} exists")


def user_ids(namespace: str) -> list[str]:
    out = subprocess.run(
        ["kubectl", "get", "llmusers", "-n", namespace, "-o", "json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [
        item["status"]["userId"]
        for item in json.loads(out)["items"]
        if (item.get("status") or {}).get("userId")
    ]


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
    parser.add_argument("policy", nargs="?", type=Path)
    parser.add_argument("--show-users", metavar="NAMESPACE", nargs="+")
    args = parser.parse_args()
    async with LiteLLMClient(os.environ["LITELLM_URL"], os.environ["LITELLM_MASTER_KEY"]) as client:
        if args.show_users:
            await show_users(client, args.show_users)
        elif args.policy:
            await create_teams(client, policy_teams(args.policy))
        else:
            parser.error("give a policy file or --show-users NAMESPACE")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
