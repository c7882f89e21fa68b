"""Who may be bound to a department: department staff must be, a dispatcher or a supervisor
may be (then they see and act on that subtree only), an admin, an integration or a monitor
never is, and saying otherwise is refused, not ignored: by the service and the command line."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml

from huying.auth.service import authenticate, create_key, create_user
from huying.cli import main
from huying.errors import InvalidInput
from huying.runtime import Runtime
from tests.conftest import ROOT, World


@pytest.mark.parametrize("role", ["dispatcher", "supervisor", "department"])
def test_a_key_of_a_scoped_role_is_bound_to_its_department(
    rt: Runtime, world: World, role: str
) -> None:
    with rt.transaction() as s:
        key, token = create_key(session=s, role=role, department="STREET", name=None, now=rt.now())
        assert key.department_code == "STREET"
        who = authenticate(session=s, token=token, now=rt.now())
    assert (who.role, who.department) == (role, "STREET")


@pytest.mark.parametrize("role", ["dispatcher", "supervisor"])
def test_a_dispatcher_or_supervisor_user_may_be_bound_or_not(
    rt: Runtime, world: World, role: str
) -> None:
    with rt.transaction() as s:
        bound = create_user(
            session=s,
            username=f"{role}_street",
            password="long-enough",
            role=role,
            department="STREET",
            now=rt.now(),
        )
        free = create_user(
            session=s,
            username=f"{role}_district",
            password="long-enough",
            role=role,
            department=None,
            now=rt.now(),
        )
        assert (bound.department_code, free.department_code) == ("STREET", None)


@pytest.mark.parametrize("role", ["admin", "integration", "monitor"])
def test_a_role_that_covers_everything_is_refused_a_department(
    rt: Runtime, world: World, role: str
) -> None:
    with pytest.raises(InvalidInput) as caught, rt.transaction() as s:
        create_key(session=s, role=role, department="STREET", name=None, now=rt.now())
    message = str(caught.value)
    assert f"the {role} role is bound to no department" in message
    assert "department, dispatcher, supervisor" in message


def test_an_admin_user_is_refused_a_department(rt: Runtime, world: World) -> None:
    refused = pytest.raises(InvalidInput, match="admin role is bound to no department")
    with refused, rt.transaction() as s:
        create_user(
            session=s,
            username="boss",
            password="long-enough",
            role="admin",
            department="STREET",
            now=rt.now(),
        )


def test_a_bound_role_names_a_department_that_exists(rt: Runtime, world: World) -> None:
    with pytest.raises(InvalidInput, match="unknown department 'NOPE'"), rt.transaction() as s:
        create_key(session=s, role="supervisor", department="NOPE", name=None, now=rt.now())
    with pytest.raises(InvalidInput, match="needs a department"), rt.transaction() as s:
        create_key(session=s, role="department", department=None, name=None, now=rt.now())


# --- the command line ------------------------------------------------------------------


@pytest.fixture
def config(tmp_path: Path) -> str:
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    cfg["database"]["url"] = f"sqlite:///{tmp_path / 'cli.db'}"
    cfg["workflows"]["path"] = str(ROOT / "src/huying/data/workflows")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    demo = ROOT / "src/huying/data/demo" / "directory.yaml"
    assert main(["--config", str(path), "load", str(demo)]) == 0
    return str(path)


def test_the_command_line_binds_a_supervisor_key_and_refuses_an_admin_one(
    config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    keys = ["--config", config, "keys", "create"]
    assert main([*keys, "--role", "supervisor", "--department", "HP-GXJ"]) == 0
    assert capsys.readouterr().out.startswith("hyk_")
    assert main([*keys, "--role", "admin", "--department", "HP-GXJ"]) == 1
    assert "the admin role is bound to no department" in capsys.readouterr().err


def test_the_command_line_binds_a_dispatcher_user(
    config: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret-pass\n"))
    capsys.readouterr()
    command = ["--config", config, "users", "create", "--username", "hp_street"]
    assert main([*command, "--role", "dispatcher", "--department", "HP-GXJ"]) == 0
    assert "dispatcher, HP-GXJ" in capsys.readouterr().out
