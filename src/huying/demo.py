"""`huying demo`: the demo directory (from data/demo/, shipped in the package) and demo accounts,
set up idempotently."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import TextIO

from sqlalchemy.orm import Session

from huying.auth.service import Principal, create_key, create_user, user_by_username
from huying.directory.loader import load_file
from huying.requests import service as requests
from huying.requests.schemas import SubmitIn
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
    ("luogang_sq", "department", "LG-C001", "萝岗社区网格员"),
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
    with rt.transaction() as s:
        many_hands_request(rt, s, out=out)
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


# Who the demo's own request acts as: set-up data, not a person.
DEMO_GRID = Principal("demo:setup", "integration", None, "演示数据")
LUOGANG = Principal("demo:luogang", "department", "LG-STREET", "萝岗街道办事员")
RSJ = Principal("demo:rsj", "department", "HP-RSJ", "区人社局办事员")


def many_hands_request(rt: Runtime, session: Session, *, out: TextIO) -> None:
    """One request that shows many hands (企业点单、部门服务): a display-chain enterprise's
    hiring request that 萝岗街道 takes first (the routing rule), with 区人社局 co-handling
    (an assist task it has signed for) and a task delegated to 萝岗社区. Made once: the
    Idempotency-Key finds it again."""
    body = SubmitIn(
        enterprise_uscc="91440101711615159C",
        category="RECRUITMENT",
        title="新产线投产急需招聘 300 名技术工人",
        description=(
            "乐金显示新 OLED 模组产线下月投产，需招聘设备维护、工艺技术员 300 名，"
            "希望街道协调专场招聘会，并申请技能培训补贴。"
        ),
        source="grid",
        contact={"name": "周慧敏", "phone": "020-8000-2101"},
    )
    req, created = requests.submit(
        rt=rt, session=session, principal=DEMO_GRID, body=body, idempotency_key="demo-many-hands"
    )
    if not created or req.lead_department_code != "LG-STREET":
        return
    session.flush()

    def act(who: Principal, action: str, **fields: object) -> None:
        requests.act(
            rt=rt,
            session=session,
            principal=who,
            request_id=req.id,
            action=action,
            body=fields,
            if_match=None,
        )

    act(LUOGANG, "sign", note="街道首接，人社局协办")
    act(
        LUOGANG,
        "delegate",
        departments=["LG-C001"],
        note="请社区摸排辖区内求职人员，周五前报街道",
        limit="2 working days",
    )
    assist = next(t for t in req.tasks if t.kind == "assist")
    act(RSJ, "task_sign", task_id=assist.id, note="安排专场招聘会档期")
    out.write(f"demo request with tasks: {req.number}\n")
