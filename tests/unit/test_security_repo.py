"""The repository passes its own committed secret patterns; defaults that matter for security.

The ``pygrep`` hooks of ``.pre-commit-config.yaml`` are applied here to every file git tracks
(or would track), so CI enforces them even where pre-commit is not installed.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / ".pre-commit-config.yaml"
SECRET_HOOKS = (
    "no-private-key-block",
    "no-aws-access-key-id",
    "no-aws-secret-access-key",
    "no-github-or-slack-token",
)


def _hooks() -> dict[str, dict[str, Any]]:
    doc = yaml.safe_load(CONFIG.read_text())
    return {h["id"]: h for repo in doc["repos"] for h in repo["hooks"]}


def _pattern(hook_id: str) -> re.Pattern[str]:
    hook = _hooks()[hook_id]
    assert hook["language"] == "pygrep"
    return re.compile(hook["entry"])


def _repo_files() -> list[Path]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO, capture_output=True, check=True, timeout=60,
        ).stdout  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [REPO / name for name in out.decode().split("\0") if name and (REPO / name).is_file()]


def _text(path: Path) -> str | None:
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return None  # binary
    return data.decode("utf-8", errors="replace")


# Samples are assembled at run time so this file does not match the patterns itself.
_DASHES = "-" * 5
SAMPLES = {
    "no-private-key-block": [
        f"{_DASHES}BEGIN RSA PRIVATE KEY{_DASHES}",
        f"{_DASHES}BEGIN OPENSSH PRIVATE KEY{_DASHES}",
        f"{_DASHES}BEGIN ENCRYPTED PRIVATE KEY{_DASHES}",
        f"{_DASHES}BEGIN PRIVATE KEY{_DASHES}",
        f"{_DASHES}BEGIN PGP PRIVATE KEY BLOCK{_DASHES}",
    ],
    "no-aws-access-key-id": ["key = " + "AKIA" + "IOSFODNN7EXAMPLE", "ASIA" + "Y34FZKBOKMUTVV7A"],
    "no-aws-secret-access-key": [
        "aws_secret_access_key = " + "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "EXAMPLEKEY"
    ],
    "no-github-or-slack-token": ["token: " + "ghp_" + "a" * 36, "xoxb-" + "1234567890-abcdef"],
}
HARMLESS = [
    "STOCKPIPE_SNOWFLAKE_PASSWORD=",
    "public key: MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA",
    "AWS_ACCESS_KEY_ID=testing",
    "the string BEGIN PRIVATE KEY without the dashes",
]


def test_pre_commit_config_has_secret_detection_and_ruff() -> None:
    hooks = _hooks()
    for hook_id in ("detect-private-key", "detect-aws-credentials", *SECRET_HOOKS, "no-env-file", "ruff"):
        assert hook_id in hooks, hook_id
    assert "pre-commit-hooks" in hooks["detect-private-key"]["additional_dependencies"][0]
    for repo in yaml.safe_load(CONFIG.read_text())["repos"]:
        assert repo["repo"] == "local"  # offline: nothing is cloned from a git host


def test_ruff_runs_the_security_rules() -> None:
    lint = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["ruff"]["lint"]
    assert {"S", "DTZ"} <= set(lint["select"])
    assert not {"S105", "S106", "S107", "S608"} & set(lint.get("ignore", []))  # secrets, SQL


@pytest.mark.parametrize("hook_id", SECRET_HOOKS)
def test_secret_pattern_catches_real_looking_secrets(hook_id: str) -> None:
    pattern = _pattern(hook_id)
    for sample in SAMPLES[hook_id]:
        assert pattern.search(sample), sample
    for text in HARMLESS:
        assert not pattern.search(text), text


def test_no_tracked_file_matches_a_secret_pattern() -> None:
    patterns = {hook_id: _pattern(hook_id) for hook_id in SECRET_HOOKS}
    hits = []
    for path in _repo_files():
        text = _text(path)
        if text is None:
            continue
        for hook_id, pattern in patterns.items():
            m = pattern.search(text)
            if m:
                line = text.count("\n", 0, m.start()) + 1
                hits.append(f"{path.relative_to(REPO)}:{line} ({hook_id})")
    assert hits == []


def test_only_example_env_files_are_committed() -> None:
    env_file = re.compile(_hooks()["no-env-file"]["files"])
    example = re.compile(_hooks()["no-env-file"]["exclude"])
    names = [str(p.relative_to(REPO)) for p in _repo_files()]
    offending = [n for n in names if env_file.search(n) and not example.search(n)]
    assert offending == []
    assert ".env.example" in names
    assert env_file.search(".env")
    assert env_file.search("deploy/.env.prod")
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=REPO, timeout=60, check=False)
    assert ignored.returncode == 0, ".env must be git-ignored"


def test_example_env_files_hold_no_values_for_secrets() -> None:
    secret = re.compile(r"^\s*#?\s*(\w*(PASSWORD|PASSPHRASE|SECRET|API_KEY|TOKEN)\w*)=(.*)$", re.MULTILINE)
    for path in REPO.glob(".env*.example"):
        for name, _kind, value in secret.findall(path.read_text()):
            assert value.strip() in ("", '""', "''") or value.strip().startswith("${"), f"{path.name}: {name}"
