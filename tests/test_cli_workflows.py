"""`huying workflows check` and `huying workflows draw`, called through `huying.cli.main`."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from huying.cli import main

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config.yaml"
REAL_DOC: dict[str, Any] = yaml.safe_load(
    (ROOT / "src/huying/data/workflows" / "service_request.yaml").read_text(encoding="utf-8")
)
STATES = list(REAL_DOC["states"])


@pytest.fixture(autouse=True)
def _project_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run against the project's own config.yaml, whatever the environment says."""
    monkeypatch.delenv("HUYING_CONFIG", raising=False)
    monkeypatch.delenv("HUYING_DATABASE_URL", raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["--config", str(CONFIG), *argv])
    out, err = capsys.readouterr()
    return code, out, err


def doc(**top: Any) -> dict[str, Any]:
    d = copy.deepcopy(REAL_DOC)
    d.update(top)
    return d


def write(folder: Path, name: str, data: Any) -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def transition(d: dict[str, Any], trigger: str) -> dict[str, Any]:
    return next(t for t in d["transitions"] if t["trigger"] == trigger)


# --- check ------------------------------------------------------------------------------


def test_check_passes_on_the_real_folder(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "workflows", "check")
    assert code == 0, err
    assert "ok: service_request v1" in out
    assert f"({len(STATES)} states" in out
    assert "invalid" not in out + err


def test_check_passes_on_the_real_folder_named_by_path(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "workflows", "check", "--path", str(ROOT / "src/huying/data/workflows")
    )
    assert code == 0
    assert "ok: service_request v1" in out


def test_check_accepts_a_relative_path(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "flows").mkdir()
    write(tmp_path / "flows", "sr.yaml", doc())
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "workflows", "check", "--path", "flows")
    assert code == 0
    assert str(tmp_path / "flows" / "sr.yaml") in out


@pytest.fixture
def broken_folder(tmp_path: Path) -> Path:
    """One good file and several broken ones, each broken in its own way."""
    folder = tmp_path / "workflows"
    folder.mkdir()
    write(folder, "good.yaml", doc(name="good"))

    d = doc(name="bad_guard")
    transition(d, "sign")["guards"] = ["os.system"]
    write(folder, "bad_guard.yaml", d)

    d = doc(name="bad_action")
    transition(d, "reply")["actions"] = ["send_sms"]
    write(folder, "bad_action.yaml", d)

    d = doc(name="bad_dest")
    transition(d, "resume")["dest"] = "limbo"
    write(folder, "bad_dest.yaml", d)

    d = doc(name="bad_role")
    transition(d, "urge")["roles"] = ["supervisor", "mayor"]
    write(folder, "bad_role.yaml", d)

    d = doc(name="bad_deadline")
    d["states"]["replied"]["deadline"] = "lunch"
    write(folder, "bad_deadline.yaml", d)

    d = doc(name="unreachable")
    d["states"]["archived"] = {"final": True}
    write(folder, "unreachable.yaml", d)

    d = doc(name="no_way_out")
    d["states"]["parked"] = {}
    d["transitions"].append(
        {"trigger": "park", "source": "in_progress", "dest": "parked", "roles": ["admin"]}
    )
    write(folder, "no_way_out.yaml", d)

    d = doc(name="bad_keys", version=0, colour="red")
    write(folder, "bad_keys.yaml", d)

    (folder / "not_yaml.yml").write_text("name: x\nstates: [\n", encoding="utf-8")
    write(folder, "z_duplicate.yaml", doc(name="good"))
    return folder


EXPECTED_PROBLEMS = {
    "bad_guard.yaml": ["'sign'", "guard 'os.system' is not registered"],
    "bad_action.yaml": ["'reply'", "action 'send_sms' is not registered"],
    "bad_dest.yaml": ["'resume'", "unknown destination state 'limbo'"],
    "bad_role.yaml": ["'urge'", "unknown role 'mayor'"],
    "bad_deadline.yaml": ["'replied'", "unknown deadline kind 'lunch'"],
    "unreachable.yaml": ["'archived'", "unreachable"],
    "no_way_out.yaml": ["'parked'", "no way out"],
    "bad_keys.yaml": ["version", "colour"],
    "not_yaml.yml": ["YAML"],
    "z_duplicate.yaml": ["good version 1 is also defined in", "good.yaml"],
}


def _blocks(err: str) -> dict[str, str]:
    """stderr split into one block per `invalid: FILE` heading, keyed by the file's name."""
    blocks: dict[str, str] = {}
    current = None
    for line in err.splitlines():
        if line.startswith("invalid: "):
            current = Path(line.removeprefix("invalid: ")).name
            blocks[current] = ""
        elif current is not None:
            blocks[current] += line + "\n"
    return blocks


def test_check_fails_naming_each_broken_file_and_its_problem(
    capsys: pytest.CaptureFixture[str], broken_folder: Path
) -> None:
    code, out, err = run(capsys, "workflows", "check", "--path", str(broken_folder))
    assert code != 0
    blocks = _blocks(err)
    assert set(blocks) == set(EXPECTED_PROBLEMS)
    for name, needles in EXPECTED_PROBLEMS.items():
        for needle in needles:
            assert needle in blocks[name], f"{name}: {needle!r} not in {blocks[name]!r}"
    assert "ok: good v1" in out  # the valid file is still reported as valid
    assert "bad_guard" not in out


def test_each_problem_is_on_its_own_line(
    capsys: pytest.CaptureFixture[str], broken_folder: Path
) -> None:
    _, _, err = run(capsys, "workflows", "check", "--path", str(broken_folder))
    block = _blocks(err)["bad_keys.yaml"]
    lines = [line for line in block.splitlines() if line.strip()]
    assert len(lines) >= 2
    assert all(line.startswith("  - ") for line in lines)


def test_check_fails_on_a_single_broken_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    d = doc()
    transition(d, "sign")["source"] = "nowhere"
    write(tmp_path, "service_request.yaml", d)
    code, _, err = run(capsys, "workflows", "check", "--path", str(tmp_path))
    assert code == 1
    assert "unknown source state 'nowhere'" in err


def test_check_fails_on_a_folder_without_workflows(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(capsys, "workflows", "check", "--path", str(tmp_path))
    assert code == 1
    assert "no workflow files" in err


def test_check_names_a_deadline_written_as_a_list_instead_of_crashing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    d = doc()
    d["states"]["in_progress"]["deadline"] = ["reply"]
    write(tmp_path, "service_request.yaml", d)
    code, _, err = run(capsys, "workflows", "check", "--path", str(tmp_path))
    assert code == 1
    assert "in_progress" in err


# --- draw --------------------------------------------------------------------------------


def test_draw_prints_a_mermaid_state_diagram_with_every_state(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "workflows", "draw")
    assert code == 0, err
    assert "stateDiagram-v2" in out.splitlines()
    for state in STATES:
        assert f"    {state}: {state}" in out
    assert "    [*] --> submitted" in out


def test_draw_names_the_workflow_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "workflows", "draw", "--name", "service_request", "--version", "1")
    assert code == 0
    assert "(service_request v1)" in out


def test_draw_writes_to_a_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "diagram.mmd"
    code, out, _ = run(capsys, "workflows", "draw", "--output", str(target))
    assert code == 0
    assert str(target) in out
    text = target.read_text(encoding="utf-8")
    assert "stateDiagram-v2" in text
    for state in STATES:
        assert f"{state}: {state}" in text


def test_draw_of_an_unknown_workflow_fails(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "workflows", "draw", "--name", "nothing_such")
    assert code == 1
    assert "nothing_such" in err
    assert out == ""


def test_draw_of_an_unknown_version_fails(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "workflows", "draw", "--version", "99")
    assert code == 1
    assert "version 99" in err


def _config_for(tmp_path: Path, folder: Path) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {"database": {"url": "sqlite:///never.db"}, "workflows": {"path": str(folder)}}
        ),
        encoding="utf-8",
    )
    return config


def test_draw_picks_the_latest_version_unless_told(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = tmp_path / "flows"
    folder.mkdir()
    write(folder, "v1.yaml", doc())
    v2 = doc(version=2)
    v2["states"]["reviewing"] = {"label": "复核中"}
    v2["transitions"].append(
        {"trigger": "review", "source": "in_progress", "dest": "reviewing", "roles": ["admin"]}
    )
    v2["transitions"].append(
        {"trigger": "approve", "source": "reviewing", "dest": "replied", "roles": ["admin"]}
    )
    write(folder, "v2.yaml", v2)
    config = _config_for(tmp_path, folder)

    assert main(["--config", str(config), "workflows", "draw"]) == 0
    latest = capsys.readouterr().out
    assert "(service_request v2)" in latest
    assert "    reviewing: reviewing 复核中" in latest

    assert main(["--config", str(config), "workflows", "draw", "--version", "1"]) == 0
    first = capsys.readouterr().out
    assert "(service_request v1)" in first
    assert "reviewing" not in first
    assert not (tmp_path / "never.db").exists()


def test_draw_refuses_while_a_workflow_is_invalid(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = tmp_path / "flows"
    folder.mkdir()
    d = doc()
    transition(d, "sign")["guards"] = ["os.system"]
    write(folder, "sr.yaml", d)
    code = main(["--config", str(_config_for(tmp_path, folder)), "workflows", "draw"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "workflows check" in err
    assert "stateDiagram" not in out
