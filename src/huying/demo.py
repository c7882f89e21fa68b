"""`huying demo`: the demo directory (from data/demo/, shipped in the package) and demo accounts,
set up idempotently."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import TextIO

from huying.auth.service import create_key, create_user, user_by_username
from huying.directory.loader import load_file
from huying.runtime import Runtime

# directory.yaml and enterprises.csv of the demo district
DEMO_DIR = Path(__file__).resolve().parent / "data" / "demo"

# username, role, department, display name
DEMO_USERS = (
    ("admin", "admin", None, "系统管理员"),
    ("dispatcher", "dispatcher", None, "12345派单员"),
    ("supervisor", "supervisor", None, "区督查室督办员"),
    ("gxj", "department", "HP-GXJ", "区工信局办事员"),
    ("zsj", "department", "HP-ZSJ", "区政数局办事员"),
    ("luogang", "department", "LG-STREET", "萝岗街道办事员"),
    ("gdj", "department", "HP-GDJ", "黄埔供电局办事员"),
)


def set_up_demo(rt: Runtime, demo_dir: Path, *, out: TextIO) -> None:
    secrets_file = rt.settings.base_dir / "var" / "demo-credentials.txt"
    with rt.transaction() as s:
        for name in ("directory.yaml", "enterprises.csv"):
            loaded = load_file(
                session=s,
                path=demo_dir / name,
                urgencies=rt.settings.urgencies,
                now=rt.now(),
                grid_code_pattern=rt.settings.directory.grid_code_pattern,
            )
            out.write(f"demo {name}: {loaded.summary()}\n")
        if user_by_username(session=s, username="admin") is None:
            password = "huying-" + secrets.token_hex(4)
            for username, role, dept, display in DEMO_USERS:
                create_user(
                    session=s,
                    username=username,
                    password=password,
                    role=role,
                    department=dept,
                    now=rt.now(),
                    display_name=display,
                )
            _, token = create_key(
                session=s,
                role="integration",
                department=None,
                name="demo grid system",
                now=rt.now(),
            )
            secrets_file.parent.mkdir(parents=True, exist_ok=True)
            secrets_file.write_text(
                f"password={password}\nintegration_key={token}\n", encoding="utf-8"
            )
            secrets_file.chmod(0o600)
    if secrets_file.exists():
        creds = dict(
            line.split("=", 1) for line in secrets_file.read_text(encoding="utf-8").split()
        )
        users = ", ".join(u for u, *_ in DEMO_USERS)
        out.write(
            f"\nDemo accounts: {users}\n"
            f"  password for each: {creds.get('password')}\n"
            f"  integration API key (grid system): {creds.get('integration_key')}\n"
            f"  (kept in {secrets_file})\n"
        )
