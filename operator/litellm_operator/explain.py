"""`litellm-operator explain`: show what a policy does to users and teams, before it merges.

Owns reading manifests from files, turning every kind of bad input into one clear line (file,
document, field path; never a traceback), running the pure engine (policy.resolve) on each
user, and formatting the result as a table, JSON or YAML, or as a diff against an old policy.

Input rules:
- --policy files hold ProvisioningPolicy documents only; --user files hold LiteLLMUser
  documents only (`kind: List` documents are expanded). Any other kind is an error, except
  that a directory given to --user may contain ProvisioningPolicy documents, which are skipped
  (so `--user examples/` works when the policy lives next to the users).
- Directories are scanned for *.yaml and *.yml (not recursively), in sorted order.
- A user without metadata.namespace is in namespace `default`, as with kubectl.
- Documents are numbered from 1 within their file.
- With any problem: nothing on stdout, one line per problem on stderr, exit status 2.
- With --team (LiteLLMTeam documents): the teams are shown instead of the users, each with its
  effective settings under its policy and the users (of --user) that would join it: those whose
  effective teams name its id.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from litellm_operator.fields import BY_WIRE, Bound
from litellm_operator.keys.plan import DesiredKey, KeyRefusal, describe, keys_of, team_keys_of
from litellm_operator.models import (
    API_VERSION,
    POLICY_KIND,
    TEAM_KIND,
    USER_KIND,
    LiteLLMTeam,
    LiteLLMUser,
    ProvisioningPolicy,
)
from litellm_operator.policies.resolve import PolicyViolation, Resolution, resolve
from litellm_operator.policies.teams import (
    MemberBudget,
    TeamResolution,
    member_budget_for,
    resolve_team,
)

EXIT_OK = 0
EXIT_BAD_INPUT = 2
YAML_SUFFIXES = (".yaml", ".yml")
OUTPUTS = ("table", "json", "yaml")
M = TypeVar("M", bound=BaseModel)


# --- problems ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Location:
    """A document in an input file."""

    file: str
    index: int | None = None
    name: str | None = None

    def __str__(self) -> str:
        text = self.file
        if self.index is not None:
            text += f": document {self.index}"
        if self.name:
            text += f" ({self.name})"
        return text


@dataclass(frozen=True)
class InputProblem:
    """One line of the error report."""

    location: Location
    path: str
    message: str

    def __str__(self) -> str:
        path = f"{self.path}: " if self.path else ""
        return f"{self.location}: {path}{self.message}"


class InputError(Exception):
    """The input is bad; every problem found is in `problems`."""

    def __init__(self, problems: list[InputProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(map(str, problems)))


# --- reading documents -------------------------------------------------------------------------


@dataclass(frozen=True)
class Document:
    location: Location
    body: dict[str, Any]
    from_directory: bool

    @property
    def kind(self) -> Any:
        return self.body.get("kind")


@dataclass
class _Collected:
    documents: list[Document] = field(default_factory=list)
    problems: list[InputProblem] = field(default_factory=list)


def expand_paths(paths: Iterable[str]) -> Iterator[tuple[Path, bool]]:
    """Each file, and each *.yaml/*.yml of each directory (sorted); bool: came from a dir."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for child in sorted(path.iterdir()):
                if child.is_file() and child.suffix in YAML_SUFFIXES:
                    yield child, True
        else:
            yield path, False


def read_documents(paths: Iterable[str]) -> _Collected:
    collected = _Collected()
    for path, from_directory in expand_paths(paths):
        _read_file(path, from_directory, collected)
    return collected


def _read_file(path: Path, from_directory: bool, into: _Collected) -> None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        into.problems.append(InputProblem(Location(str(path)), "", f"cannot read: {reason}"))
        return
    index = 0
    try:
        for index, body in enumerate(yaml.safe_load_all(text), start=1):
            _add_document(Location(str(path), index), body, from_directory, into)
    except yaml.YAMLError as exc:
        where = Location(str(path), index + 1)
        into.problems.append(InputProblem(where, "", f"invalid YAML: {_yaml_reason(exc)}"))


def _yaml_reason(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{problem} (line {mark.line + 1})" if mark is not None else str(problem)


def _add_document(location: Location, body: Any, from_directory: bool, into: _Collected) -> None:
    if body is None:
        return
    if not isinstance(body, dict):
        message = f"expected a mapping (a Kubernetes object), got {type(body).__name__}"
        into.problems.append(InputProblem(location, "", message))
        return
    location = Location(location.file, location.index, _name_of(body))
    if body.get("kind") == "List" and isinstance(body.get("items"), list):
        for item in body["items"]:
            _add_document(location, item, from_directory, into)
        return
    into.documents.append(Document(location, body, from_directory))


def _name_of(body: dict[str, Any]) -> str | None:
    metadata = body.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return name if isinstance(name, str) else None


Policies = dict[str, tuple[Location, ProvisioningPolicy]]


# --- validating objects ------------------------------------------------------------------------


def error_path(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as a field path: spec.roles[0].maxBudget."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def validation_problems(location: Location, exc: ValidationError) -> list[InputProblem]:
    problems = []
    for error in exc.errors(include_url=False):
        message = error["msg"]
        if error["type"] not in ("missing", "extra_forbidden"):
            message += f" (got {error['input']!r})"
        problems.append(InputProblem(location, error_path(error["loc"]), message))
    return problems


def _check_kind(document: Document, expected: str) -> InputProblem | None:
    if document.kind == expected and document.body.get("apiVersion") == API_VERSION:
        return None
    if document.kind == expected:
        return InputProblem(
            document.location,
            "apiVersion",
            f"expected {API_VERSION!r}, got {document.body.get('apiVersion')!r}",
        )
    return InputProblem(document.location, "kind", f"expected {expected}, got {document.kind!r}")


def load_policies(paths: Iterable[str]) -> tuple[Policies, list[InputProblem]]:
    """Policies by name, and every problem found reading them."""
    collected = read_documents(paths)
    problems = collected.problems
    policies: dict[str, tuple[Location, ProvisioningPolicy]] = {}
    for document in collected.documents:
        policy = _validate(document, POLICY_KIND, ProvisioningPolicy, problems)
        if policy is None:
            continue
        name = policy.metadata.name
        if name in policies:
            message = f"duplicate policy {name!r} (first in {policies[name][0]})"
            problems.append(InputProblem(document.location, "metadata.name", message))
        else:
            policies[name] = (document.location, policy)
    return policies, problems


def load_users(paths: list[str]) -> tuple[list[tuple[Location, LiteLLMUser]], list[InputProblem]]:
    """Users in input order, and every problem found reading them (no users is a problem)."""
    collected = read_documents(paths)
    problems = collected.problems
    users = []
    for document in collected.documents:
        if document.from_directory and document.kind == POLICY_KIND:
            continue
        user = _validate(document, USER_KIND, LiteLLMUser, problems, with_namespace=True)
        if user is not None:
            users.append((document.location, user))
    if not users and not problems:
        where = ", ".join(paths)
        problems.append(InputProblem(Location(where), "", "no LiteLLMUser documents found"))
    return users, problems


def _validate(
    document: Document,
    kind: str,
    model: type[M],
    problems: list[InputProblem],
    *,
    with_namespace: bool = False,
) -> M | None:
    wrong_kind = _check_kind(document, kind)
    if wrong_kind is not None:
        problems.append(wrong_kind)
        return None
    body = document.body
    if with_namespace and isinstance(body.get("metadata"), dict):
        body = {**body, "metadata": {"namespace": "default", **body["metadata"]}}
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        problems.extend(validation_problems(document.location, exc))
        return None


def load_teams(paths: list[str]) -> tuple[list[tuple[Location, LiteLLMTeam]], list[InputProblem]]:
    """LiteLLMTeams in input order (policies in a directory skipped), and every problem."""
    collected = read_documents(paths)
    problems = collected.problems
    teams = []
    for document in collected.documents:
        if document.from_directory and document.kind in (POLICY_KIND, USER_KIND):
            continue
        team = _validate(document, TEAM_KIND, LiteLLMTeam, problems, with_namespace=True)
        if team is not None:
            teams.append((document.location, team))
    if not teams and not problems:
        problems.append(InputProblem(Location(", ".join(paths)), "", "no LiteLLMTeam documents"))
    return teams, problems


# --- resolving ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Explained:
    """One user and what the policy makes of it."""

    location: Location
    user: LiteLLMUser
    resolution: Resolution
    keys: tuple[DesiredKey, ...] = ()


def explain_user(
    location: Location, user: LiteLLMUser, policies: Policies
) -> Explained | list[InputProblem]:
    """The user's resolution, or the problems that prevent it."""
    ref = user.spec.policy_ref
    if ref not in policies:
        known = ", ".join(sorted(policies)) or "none"
        return [
            InputProblem(location, "spec.policyRef", f"policy {ref!r} not found (have: {known})")
        ]
    policy = policies[ref][1]
    try:
        resolution = resolve(policy, user)
    except PolicyViolation as violation:
        return [
            InputProblem(location, p.path, f"{p.message} [{p.reason}]") for p in violation.problems
        ]
    keys = keys_of(user, policy, resolution.effective)
    if isinstance(keys, KeyRefusal):
        return [InputProblem(location, "spec.keys", f"{keys.message} [{keys.reason}]")]
    return Explained(location, user, resolution, keys)


def explain_all(users: list[tuple[Location, LiteLLMUser]], policies: Policies) -> list[Explained]:
    """Every user's resolution; raises InputError with every problem of every user."""
    results: list[Explained] = []
    problems: list[InputProblem] = []
    for location, user in users:
        outcome = explain_user(location, user, policies)
        if isinstance(outcome, Explained):
            results.append(outcome)
        else:
            problems.extend(outcome)
    if problems:
        raise InputError(problems)
    return results


@dataclass(frozen=True)
class ExplainedTeam:
    """One team, what its policy makes of it, and the users that would join it."""

    team: LiteLLMTeam
    resolution: TeamResolution
    members: tuple[tuple[str, MemberBudget | None], ...]
    """The users that would join it, each with its budget there (none: no budget)."""
    keys: tuple[DesiredKey, ...] = ()


def explain_teams(
    teams: list[tuple[Location, LiteLLMTeam]], policies: Policies, users: list[Explained]
) -> list[ExplainedTeam]:
    """Every team's resolution (the other teams of its namespace count for maxPerNamespace);
    raises InputError with every problem of every team."""
    everyone = [policy for _, policy in policies.values()]
    results: list[ExplainedTeam] = []
    problems: list[InputProblem] = []
    for location, team in teams:
        ref = team.spec.policy_ref
        if ref not in policies:
            message = f"policy {ref!r} not found (have: {', '.join(sorted(policies)) or 'none'})"
            problems.append(InputProblem(location, "spec.policyRef", message))
            continue
        siblings = [t for _, t in teams if t.metadata.namespace == team.metadata.namespace]
        try:
            resolution = resolve_team(policies[ref][1], team, policies=everyone, siblings=siblings)
        except PolicyViolation as violation:
            problems.extend(
                InputProblem(location, p.path, f"{p.message} [{p.reason}]")
                for p in violation.problems
            )
            continue
        keys = team_keys_of(team, policies[ref][1], resolution.effective)
        if isinstance(keys, KeyRefusal):
            problems.append(InputProblem(location, "spec.keys", f"{keys.message} [{keys.reason}]"))
            continue
        members = tuple(
            (u.resolution.user_id, budget_in(u, resolution))
            for u in users
            if resolution.team_id in u.resolution.effective.teams
        )
        results.append(ExplainedTeam(team, resolution, members, keys))
    if problems:
        raise InputError(problems)
    return results


def budget_in(user: Explained, team: TeamResolution) -> MemberBudget | None:
    """The user's budget in the team: its own maxBudgetInTeam, else the team's memberBudget."""
    effective = user.resolution.effective
    source = user.resolution.sources.get("maxBudgetInTeam", "builtin")
    return member_budget_for(effective.max_budget_in_team, source, team.effective.member_budget)


def member_record(user_id: str, budget: MemberBudget | None) -> dict[str, Any]:
    if budget is None:
        return {"userId": user_id}
    return {
        "userId": user_id,
        "maxBudgetInTeam": budget.max_budget_in_team,
        "source": budget.source,
    }


def team_record(result: ExplainedTeam) -> dict[str, Any]:
    resolution = result.resolution
    return {
        "name": result.team.metadata.name,
        "namespace": result.team.metadata.namespace,
        "teamId": resolution.team_id,
        "policy": resolution.policy_name,
        "effective": resolution.effective.model_dump(by_alias=True, mode="json"),
        "sources": dict(resolution.sources),
        "members": [member_record(user_id, budget) for user_id, budget in result.members],
        "keys": [describe(key) for key in result.keys],
    }


def format_teams(results: list[ExplainedTeam], output: str) -> str:
    records = [team_record(result) for result in results]
    if output == "json":
        return json.dumps(records, indent=2) + "\n"
    if output == "yaml":
        return yaml.safe_dump(records, sort_keys=False)
    blocks = []
    for record in records:
        lines = [
            f"{record['namespace']}/{record['name']}: teamId {record['teamId']}, "
            f"policy {record['policy']}"
        ]
        shown = {key: show_value(key, value) for key, value in record["effective"].items()}
        width = max(map(len, shown))
        for key, text in shown.items():
            lines.append(f"  {key:<{width}}  {text}  {record['sources'][key]}".rstrip())
        lines.extend(f"  key {key['name']}: {key_summary(key)}" for key in record["keys"])
        members = [member_text(member) for member in record["members"]]
        lines.append(f"  members: {', '.join(members) or 'none of the given users'}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n" if blocks else "no teams\n"


def member_text(member: dict[str, Any]) -> str:
    """``alice (maxBudgetInTeam 20 from team)``, or the id alone without a budget."""
    if "maxBudgetInTeam" not in member:
        return str(member["userId"])
    budget = f"maxBudgetInTeam {member['maxBudgetInTeam']:g} from {member['source']}"
    return f"{member['userId']} ({budget})"


# --- formatting --------------------------------------------------------------------------------


def to_record(result: Explained) -> dict[str, Any]:
    """The JSON object of one user: exactly the documented keys."""
    resolution = result.resolution
    return {
        "name": result.user.metadata.name,
        "namespace": result.user.metadata.namespace,
        "userId": resolution.user_id,
        "policy": resolution.policy_name,
        "matchedRole": resolution.matched_role,
        "ignoredGroups": list(resolution.ignored_groups),
        "effective": resolution.effective.model_dump(by_alias=True, mode="json"),
        "sources": dict(resolution.sources),
        "keys": [describe(key) for key in result.keys],
    }


def show_value(name: str, value: Any) -> str:
    """A setting as a person reads it."""
    managed = BY_WIRE.get(name)
    if value is None:
        return "no limit" if managed is not None and managed.bound is Bound.CEILING else "none"
    if isinstance(value, list):
        if not value:
            return "all models" if name == "models" else "none"
        return ", ".join(map(str, value))
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "none"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def format_table(results: list[Explained]) -> str:
    blocks = []
    for result in results:
        record = to_record(result)
        role = record["matchedRole"] or "(no role matched)"
        lines = [
            f"{record['namespace']}/{record['name']}: userId {record['userId']}, "
            f"policy {record['policy']}, role {role}"
        ]
        shown = {key: show_value(key, value) for key, value in record["effective"].items()}
        key_width = max(map(len, shown))
        value_width = max(map(len, shown.values()))
        for key, text in shown.items():
            source = record["sources"][key]
            lines.append(f"  {key:<{key_width}}  {text:<{value_width}}  {source}".rstrip())
        lines.extend(f"  key {key['name']}: {key_summary(key)}" for key in record["keys"])
        lines.extend(f"  note: {note}" for note in result.resolution.notes)
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n" if blocks else "no users\n"


def key_summary(key: dict[str, Any]) -> str:
    """One key's Secret and effective limits, on one line."""
    parts = [f"Secret {key['secretName']}", f"models {show_value('models', key['models'])}"]
    for name in ("maxBudget", "budgetDuration", "tpmLimit", "rpmLimit", "maxParallelRequests"):
        if key[name] is not None:
            parts.append(f"{name} {show_value(name, key[name])}")
    if key["rotateEvery"]:
        parts.append(f"rotateEvery {key['rotateEvery']}")
    parts.append(f"gracePeriod {key['gracePeriod']}")
    return ", ".join(parts)


def format_results(results: list[Explained], output: str) -> str:
    records = [to_record(result) for result in results]
    if output == "json":
        return json.dumps(records, indent=2) + "\n"
    if output == "yaml":
        return yaml.safe_dump(records, sort_keys=False)
    return format_table(results)


# --- compare -----------------------------------------------------------------------------------


def diff_records(old: dict[str, Any], new: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Field → {old, new} for userId, matchedRole and every effective setting that changed."""
    changes = {
        key: {"old": old[key], "new": new[key]}
        for key in ("userId", "matchedRole")
        if old[key] != new[key]
    }
    for key, value in new["effective"].items():
        if old["effective"][key] != value:
            changes[key] = {"old": old["effective"][key], "new": value}
    return changes


def compare(
    users: list[tuple[Location, LiteLLMUser]], old_policies: Policies, new_results: list[Explained]
) -> dict[str, Any]:
    """Per changed user, what changes; users the old policy could not resolve are reported too."""
    changed = []
    unchanged = 0
    for (location, user), result in zip(users, new_results, strict=True):
        new = to_record(result)
        before = explain_user(location, user, old_policies)
        entry = {key: new[key] for key in ("name", "namespace", "userId", "policy")}
        if isinstance(before, Explained):
            changes = diff_records(to_record(before), new)
            if not changes:
                unchanged += 1
                continue
            changed.append({**entry, "changes": changes, "oldError": None})
        else:
            old_error = "; ".join(f"{p.path}: {p.message}" for p in before)
            changed.append({**entry, "changes": {}, "oldError": old_error})
    return {"changed": changed, "unchanged": unchanged}


def list_delta(old: Any, new: Any) -> str:
    """` (+added, -removed)` for two non-empty lists; '' otherwise ([] means all models)."""
    if not (isinstance(old, list) and isinstance(new, list) and old and new):
        return ""
    changes = [f"+{v}" for v in new if v not in old] + [f"-{v}" for v in old if v not in new]
    return f" ({', '.join(changes)})" if changes else ""


def format_compare(report: dict[str, Any], output: str) -> str:
    if output == "json":
        return json.dumps(report, indent=2) + "\n"
    if output == "yaml":
        return yaml.safe_dump(report, sort_keys=False)
    lines = []
    for entry in report["changed"]:
        lines.append(f"{entry['namespace']}/{entry['name']} ({entry['userId']}):")
        if entry["oldError"]:
            lines.append(f"  was not resolvable: {entry['oldError']}; now resolves")
        for key, change in entry["changes"].items():
            old, new = show_value(key, change["old"]), show_value(key, change["new"])
            lines.append(f"  {key}: {old} -> {new}{list_delta(change['old'], change['new'])}")
    count = report["unchanged"]
    lines.append(f"{count} user{'' if count == 1 else 's'} unchanged")
    if not report["changed"]:
        lines.insert(0, "no user's effective settings change")
    return "\n".join(lines) + "\n"


# --- the command -------------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "explain",
        help="show the effective LiteLLM settings of users under a policy",
        description="Resolve LiteLLMUser manifests against ProvisioningPolicy manifests.",
    )
    parser.add_argument("--policy", required=True, action="append", metavar="FILE")
    parser.add_argument("--user", required=True, action="append", metavar="FILE_OR_DIR")
    parser.add_argument("-o", "--output", choices=OUTPUTS, default="table")
    parser.add_argument("--compare", metavar="OLD_POLICY_FILE", action="append")
    parser.add_argument(
        "--team",
        action="append",
        metavar="FILE_OR_DIR",
        help="show these LiteLLMTeams (their settings and which of the users would join)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        text = explain_text(
            args.policy, args.user, args.output, args.compare, getattr(args, "team", None)
        )
    except InputError as exc:
        for problem in exc.problems:
            print(problem, file=err)
        return EXIT_BAD_INPUT
    out.write(text)
    return EXIT_OK


def explain_text(
    policy_paths: list[str],
    user_paths: list[str],
    output: str,
    compare_paths: list[str] | None,
    team_paths: list[str] | None = None,
) -> str:
    """The command's output; raises InputError with every problem of every input.

    Users that validate are resolved even when other documents do not, so one run reports every
    problem; they are not resolved when a policy file is broken (that would only add noise).
    """
    policies, policy_problems = load_policies(policy_paths)
    old_policies, old_problems = load_policies(compare_paths) if compare_paths else ({}, [])
    users, user_problems = load_users(user_paths)
    problems = policy_problems + old_problems + user_problems
    if policy_problems or old_problems:
        raise InputError(problems)
    try:
        results = explain_all(users, policies)
    except InputError as exc:
        problems += exc.problems
    if problems:
        raise InputError(problems)
    if team_paths:
        teams, team_problems = load_teams(team_paths)
        if team_problems:
            raise InputError(team_problems)
        return format_teams(explain_teams(teams, policies, results), output)
    if not compare_paths:
        return format_results(results, output)
    return format_compare(compare(users, old_policies, results), output)
