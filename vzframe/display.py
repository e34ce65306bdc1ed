"""The live view of a run: a rich progress bar with the step's key figures, or one plain
line per step when the output is not a terminal (logs, CI)."""

from __future__ import annotations

from typing import Any


class RunDisplay:
    """A live rich progress bar with the step's key figures; plain lines when not a terminal."""

    def __init__(self, steps: int, *, start: int = 0, enabled: bool) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.enabled = enabled
        self.console = Console(stderr=True)
        if not self.console.is_terminal:
            self.console.width = 200
        self.progress = Progress(
            TextColumn("[bold]step"),
            MofNCompleteColumn(),
            BarColumn(),
            TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            disable=not enabled,
        )
        self.task = self.progress.add_task("train", total=steps, completed=start, stats="starting...")

    def __enter__(self) -> RunDisplay:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def update(self, m: dict[str, Any]) -> None:
        if not self.enabled:
            return
        stats = (
            f"phase [cyan]{m['phase']}[/] acc {m.get('acc', 0):.2f} (ema {m.get('acc_ema', 0):.2f}) "
            f"n/a {m.get('na', 0):.2f} (ema {m.get('na_ema', 0):.2f}) caught {m.get('spy_caught', 0):.2f} "
            f"loss {m['loss']:.4f} kl {m['kl']:.4f} {m['tokens_per_s']:.0f} tok/s"
        )
        self.progress.update(self.task, advance=1, stats=stats)
        if not self.console.is_terminal:
            self.console.print(f"step {m['step'] + 1}: {stats}", markup=True, highlight=False)
