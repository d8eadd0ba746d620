"""Executes the tutorial notebooks (notebooks/*.ipynb) top to bottom, as a reader would.

Usage: run_notebooks.py OUT_DIR [NOTEBOOK ...]

Each notebook runs in a fresh Python kernel (this interpreter's ipykernel) from the
notebooks/ folder, writing its training runs under OUT_DIR/runs (AAM_NOTEBOOK_RUNS) and its
executed copy, outputs included, to OUT_DIR; the committed notebooks are left as they are. A
cell that raises (the notebooks assert what they show) fails the run. AAM_LIBRARY and
AAM_CLI must name libaam.so and the aam executable.
"""

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

CELL_TIMEOUT_S = 900


def main():
    out = Path(sys.argv[1]).resolve()
    root = Path(__file__).resolve().parent.parent
    notebooks = [Path(p) for p in sys.argv[2:]] or sorted((root / "notebooks").glob("*.ipynb"))
    out.mkdir(parents=True, exist_ok=True)
    os.environ["AAM_NOTEBOOK_RUNS"] = str(out / "runs")
    for var in ("AAM_LIBRARY", "AAM_CLI"):
        if not os.environ.get(var):
            sys.exit(f"{var} is not set: it must name the file the notebooks use")
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        started = time.monotonic()
        client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent)}})
        try:
            client.execute()
        finally:
            nbformat.write(nb, out / path.name)
        print(f"notebook {path.name}: {len(nb.cells)} cells ok in {time.monotonic() - started:.0f} s")
    print(f"{len(notebooks)} passed, 0 failed")


if __name__ == "__main__":
    main()
