"""A workflow as a Mermaid state diagram (rendered by the console, GitHub, or mermaid-cli)."""

from __future__ import annotations

from huying.workflow.definition import WorkflowSpec


def mermaid(spec: WorkflowSpec) -> str:
    lines = [
        "---",
        f"title: {spec.title} ({spec.name} v{spec.version})",
        "---",
        "stateDiagram-v2",
    ]
    for state in spec.states.values():
        extra = (
            f" ⏱ {state.deadline}"
            if state.deadline
            else (f" ⏸ {state.pauses}" if state.pauses else "")
        )
        lines.append(f"    {state.name}: {state.name} {state.label}{extra}".rstrip())
    lines.append(f"    [*] --> {spec.initial}")
    for t in spec.transitions:
        roles = ", ".join(t.roles)
        for src in t.sources:
            if t.dest is None:
                continue  # internal actions (urge, supervise …) are listed in a note below
            lines.append(f"    {src} --> {t.dest}: {t.trigger} ({roles})")
    for state in spec.states.values():
        if state.final:
            lines.append(f"    {state.name} --> [*]")
    internal = sorted({t.trigger for t in spec.transitions if t.dest is None})
    if internal:
        lines.append(
            f"    note right of {spec.initial}: also, without a change of state: {', '.join(internal)}"
        )
    return "\n".join(lines) + "\n"
