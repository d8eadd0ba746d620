"""Executes the tutorial notebooks (notebooks/*.ipynb) top to bottom, as a reader would.

Usage: run_notebooks.py OUT_DIR [NOTEBOOK ...]

Each notebook runs in a fresh Python kernel (this interpreter's ipykernel) from the
notebooks/ folder, writing its training runs under OUT_DIR/runs (AAM_NOTEBOOK_RUNS) and its
executed copy, outputs included, to OUT_DIR; the committed notebooks are left as they are. A
cell that raises (the notebooks assert what they show) fails the run. AAM_CLI must name
the aam executable; libaam.so is the installed aam wheel's (or AAM_LIBRARY's, when set).
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
    if not os.environ.get("AAM_CLI"):
        sys.exit("AAM_CLI is not set: it must name the aam executable the notebooks use")
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
