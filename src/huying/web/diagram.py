"""A workflow spec laid out as a state diagram, for inline SVG (no JavaScript library).

States go in columns by the longest path from the initial state over the forward
transitions (file order decides which of two opposite transitions counts as forward);
within a column, open states come before final ones. Forward transitions run left to right
or arc around the columns they skip; backward ones (return, resume, reopen) arc back.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from huying.web import labels
from huying.workflow.definition import StateSpec, TransitionSpec, WorkflowSpec

W, H = 132.0, 58.0  # a state's box
COL, ROW = 224.0, 128.0  # pitch of columns and rows
LEFT, TOP = 40.0, 96.0

SPEC_ROLES = labels.ROLES  # the workflow files' roles too (lead_department, system)


@dataclass(frozen=True)
class Node:
    name: str
    label: str
    note: str  # the deadline it runs or pauses
    x: float
    y: float
    final: bool
    initial: bool
    current: bool

    @property
    def cx(self) -> float:
        return self.x + W / 2

    @property
    def cy(self) -> float:
        return self.y + H / 2


@dataclass(frozen=True)
class Edge:
    source: str
    dest: str
    path: str
    lines: tuple[str, ...]
    lx: float
    ly: float
    back: bool


@dataclass(frozen=True)
class Transition:
    """One row of the table under the diagram."""

    trigger: str
    label: str
    sources: str
    dest: str
    roles: str
    requires: str


@dataclass
class Diagram:
    spec: WorkflowSpec
    width: float
    height: float
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    rows: list[Transition] = field(default_factory=list)

    @property
    def box(self) -> tuple[float, float]:
        return W, H


def _reaches(edges: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, queue = {start}, deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            return True
        for nxt in edges.get(node, ()):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return False


def _pairs(spec: WorkflowSpec) -> dict[tuple[str, str], list[str]]:
    """(source, dest) → the labels of the transitions between them, in file order."""
    pairs: dict[tuple[str, str], list[str]] = {}
    for t in spec.transitions:
        if t.dest is None:
            continue
        for src in t.sources:
            if src != t.dest:
                names = pairs.setdefault((src, t.dest), [])
                name = t.label or labels.action(t.trigger)
                if name not in names:
                    names.append(name)
    return pairs


def _layers(spec: WorkflowSpec, forward: Iterable[tuple[str, str]]) -> dict[str, int]:
    succ: dict[str, list[str]] = {s: [] for s in spec.states}
    indegree = dict.fromkeys(spec.states, 0)
    for a, b in forward:
        succ[a].append(b)
        indegree[b] += 1
    layer = dict.fromkeys(spec.states, 0)
    queue = deque(s for s in spec.states if indegree[s] == 0)
    while queue:
        node = queue.popleft()
        for nxt in succ[node]:
            layer[nxt] = max(layer[nxt], layer[node] + 1)
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                queue.append(nxt)
    return layer


def _cubic(
    p0: tuple[float, float],
    p1: tuple[float, float],
    p2: tuple[float, float],
    p3: tuple[float, float],
    *,
    t: float = 0.5,
) -> tuple[str, float, float]:
    """An SVG cubic Bézier path, and the point at `t` along it (where its label goes)."""
    path = (
        f"M{p0[0]:.1f},{p0[1]:.1f} C{p1[0]:.1f},{p1[1]:.1f} "
        f"{p2[0]:.1f},{p2[1]:.1f} {p3[0]:.1f},{p3[1]:.1f}"
    )
    u = 1 - t
    weights = (u**3, 3 * u * u * t, 3 * u * t * t, t**3)
    points = (p0, p1, p2, p3)
    mx = sum(w * p[0] for w, p in zip(weights, points, strict=True))
    my = sum(w * p[1] for w, p in zip(weights, points, strict=True))
    return path, mx, my


def _roles(roles: Iterable[str]) -> str:
    return "、".join(SPEC_ROLES.get(r, r) for r in roles)


def layout(spec: WorkflowSpec, *, current: str | None = None) -> Diagram:
    """The spec as a diagram: states placed in columns, each state change an edge, and one
    table row per transition; `current` marks the state a request is in."""
    pairs = _pairs(spec)
    back = _back_pairs(spec, pairs)
    forward = [p for p in pairs if p not in back]
    layer = _layers(spec, forward)
    columns = _columns(spec, layer, forward)
    nodes = _nodes(spec, columns, current)
    rows_used = max(len(c) for c in columns.values())
    width = LEFT + (max(columns) + 1) * COL - (COL - W) + LEFT
    bottom = TOP + (rows_used - 1) * ROW + H
    diagram = Diagram(spec, width, bottom + 96, list(nodes.values()))
    diagram.edges = _edges(pairs, back, layer, nodes, bottom)
    diagram.rows = [_row(spec, t) for t in spec.transitions]
    return diagram


def _back_pairs(spec: WorkflowSpec, pairs: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """The pairs drawn as going back: in file order, a pair whose dest already reaches its
    source over the pairs kept as forward."""
    dag: dict[str, set[str]] = {s: set() for s in spec.states}
    back: set[tuple[str, str]] = set()
    for a, b in pairs:
        if _reaches(dag, b, a):
            back.add((a, b))
        else:
            dag[a].add(b)
    return back


def _columns(
    spec: WorkflowSpec, layer: dict[str, int], forward: Iterable[tuple[str, str]]
) -> dict[int, list[str]]:
    """Column number → its states, top to bottom: open states with a way forward first,
    then dead ends, then final states, each group in file order."""
    has_forward_out = {a for a, _ in forward}
    order = list(spec.states)
    columns: dict[int, list[str]] = {}
    for name in sorted(
        spec.states,
        key=lambda s: (spec.states[s].final, s not in has_forward_out, order.index(s)),
    ):
        columns.setdefault(layer[name], []).append(name)
    return columns


def _nodes(
    spec: WorkflowSpec, columns: dict[int, list[str]], current: str | None
) -> dict[str, Node]:
    """Each state's box at its column and row, with the note of the deadline it runs or
    pauses (or that it is final)."""
    nodes: dict[str, Node] = {}
    for col, names in columns.items():
        for row, name in enumerate(names):
            st = spec.states[name]
            nodes[name] = Node(
                name=name,
                label=labels.state(name, st.label),
                note=_note(st),
                x=LEFT + col * COL,
                y=TOP + row * ROW,
                final=st.final,
                initial=name == spec.initial,
                current=name == current,
            )
    return nodes


def _note(st: StateSpec) -> str:
    if st.deadline:
        return "计时：" + labels.DEADLINE_KINDS.get(st.deadline, st.deadline)
    if st.pauses:
        return "暂停：" + labels.DEADLINE_KINDS.get(st.pauses, st.pauses)
    return "终态" if st.final else ""


def _edges(
    pairs: dict[tuple[str, str], list[str]],
    back: set[tuple[str, str]],
    layer: dict[str, int],
    nodes: dict[str, Node],
    bottom: float,
) -> list[Edge]:
    """One edge per (source, dest) pair, in file order; arcs below the bottom row that end
    at the same state are spread apart."""
    arrivals: dict[str, int] = {}
    edges = []
    for (a, b), names in pairs.items():
        span = abs(layer[b] - layer[a])
        path, mx, my = _route(nodes[a], nodes[b], span, (a, b) in back, bottom, arrivals)
        edges.append(Edge(a, b, path, tuple(names), mx, my, (a, b) in back))
    return edges


def _route(
    s: Node, d: Node, span: int, back: bool, bottom: float, arrivals: dict[str, int]
) -> tuple[str, float, float]:
    """The path of one edge and where its label goes: forward to the next column runs
    straight across; within the top row it arcs above; back and up it leaves left and enters
    from below; anything else arcs below the bottom row (counted in `arrivals`)."""
    row_s, row_d = round((s.y - TOP) / ROW), round((d.y - TOP) / ROW)
    if not back and span == 1:
        dy = 0.0 if row_s == row_d else (10.0 if row_d > row_s else -10.0)
        return _cubic(
            (s.x + W, s.cy + dy),
            (s.x + W + 46, s.cy + dy),
            (d.x - 46, d.cy - dy),
            (d.x - 4, d.cy - dy),
        )
    if row_s == 0 and row_d == 0:  # arc above the top row
        lift = 36 + 20 * span
        # forward arcs leave right of centre and land left of it; backward ones the reverse
        out, into = (s.cx + 24, d.cx + 24) if back else (s.cx + 8, d.cx - 8)
        return _cubic((out, s.y), (out, s.y - lift), (into, d.y - lift), (into, d.y - 4))
    if back and row_d < row_s:  # back and up: leave left, enter from below
        return _cubic(
            (s.x, s.cy + 10),
            (s.x - 40, s.cy + 10),
            (d.cx + 30, d.y + H + 50),
            (d.cx + 30, d.y + H + 4),
            t=0.3,
        )
    # arc below the bottom row, entering the target from below
    k = arrivals.get(d.name, 0)
    arrivals[d.name] = k + 1
    drop = bottom + 22 + 14 * k
    ex = d.cx - 24 + 24 * k
    return _cubic((s.cx, s.y + H), (s.cx, drop + 20), (ex, drop + 20), (ex, d.y + H + 4))


def _row(spec: WorkflowSpec, t: TransitionSpec) -> Transition:
    """The table row of one transition; a transition from every open state (more than two)
    says so instead of listing them."""
    open_states = [s for s, st in spec.states.items() if not st.final]
    if set(t.sources) == set(open_states) and len(t.sources) > 2:
        sources = "任何未办结状态"
    else:
        sources = "、".join(labels.state(s, spec.states[s].label) for s in t.sources)
    dest = labels.state(t.dest, spec.states[t.dest].label) if t.dest else "（状态不变）"
    return Transition(
        trigger=t.trigger,
        label=t.label or labels.action(t.trigger),
        sources=sources,
        dest=dest,
        roles=_roles(t.roles),
        requires="、".join(labels.field(f) for f in t.requires),
    )
