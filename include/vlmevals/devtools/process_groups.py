"""The process groups of the local stack's components. Each component starts in a session of its own, so its group
holds everything it forks (LocalExecutor workers, serve-logs on port 8793, task processes). A component killed
alone (the OOM killer's way) leaves those behind in its old group; the stack remembers every group it started
and ends them all on stop (`vlmevalkit.runner.kill_groups`), instead of only the group of the pid it started last."""

from __future__ import annotations

from pathlib import Path

from vlmevals.vlmevalkit.runner import group_alive


class GroupLog:
    """The groups one component was started in, one id per line, pruned of ended groups as it is read."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def live(self) -> set[int]:
        if not self.path.exists():
            return set()
        ids = {int(g) for g in self.path.read_text().split() if g.isdigit()}
        return {g for g in ids if group_alive(g)}

    def add(self, pgid: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("".join(f"{g}\n" for g in sorted(self.live() | {pgid})))

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
