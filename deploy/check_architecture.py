#!/usr/bin/env python3
"""The architecture's two rules, checked on every `deploy/dev test`.

1. Dependencies (docs/architecture.md, "Crates and the dependency rule"):
   domain -> platform/store -> platform/kit -> services. A service depends on
   `domain` and `platform/*` only, never on another service; the platform
   never depends on a service. Dev-dependencies are exempt: an end-to-end
   test may start the real neighbouring services in process.
2. The event log is read and written through the store only: no SQL on
   `events` or `event_streams` in any crate's `src/` outside platform/store.
   (Tests are exempt: they tamper with the log on purpose.)

Exit status 1, naming each violation, when a rule is broken.
"""

import json
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent

# What each workspace crate may depend on (normal and build dependencies).
ALLOWED = {
    "paystream-domain": set(),
    "paystream-store": {"paystream-domain"},
    "paystream-kit": {"paystream-domain", "paystream-store"},
    "paystream-command-api": {"paystream-domain", "paystream-store", "paystream-kit"},
    "paystream-projector": {"paystream-domain", "paystream-store", "paystream-kit"},
    "paystream-query-api": {"paystream-domain", "paystream-store", "paystream-kit"},
    "paystream-webhook-dispatcher": {"paystream-domain", "paystream-store", "paystream-kit"},
    # Tools, not services: the web front end and the load generator.
    "paystream-web": {"paystream-domain"},
    "paystream-bench": {"paystream-domain", "paystream-store", "paystream-kit"},
}

SQL_ON_LOG = re.compile(r"\b(from|join|into|update)\s+(events|event_streams)\b", re.IGNORECASE)


def dependency_violations():
    metadata = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--no-deps", "--offline"],
            cwd=ROOT, check=True, capture_output=True, text=True,
        ).stdout
    )
    members = {package["name"] for package in metadata["packages"]}
    for package in metadata["packages"]:
        name = package["name"]
        if name not in ALLOWED:
            yield f"{name}: a workspace crate the dependency rule does not know (add it to {__file__})"
            continue
        for dependency in package["dependencies"]:
            if dependency["name"] in members and dependency["kind"] != "dev" \
                    and dependency["name"] not in ALLOWED[name]:
                yield f"{name} depends on {dependency['name']}"


def sql_violations():
    store = ROOT / "platform" / "store"
    for path in sorted(ROOT.glob("**/src/**/*.rs")):
        if store in path.parents or "target" in path.parts:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if line.lstrip().startswith("//"):
                continue
            if SQL_ON_LOG.search(line):
                yield f"{path.relative_to(ROOT)}:{number}: SQL on the event log outside platform/store: {line.strip()}"


def main():
    violations = list(dependency_violations()) + list(sql_violations())
    for violation in violations:
        print(f"architecture: {violation}", file=sys.stderr)
    if violations:
        return 1
    print("architecture: dependency rule and event-log rule hold")
    return 0


if __name__ == "__main__":
    sys.exit(main())
