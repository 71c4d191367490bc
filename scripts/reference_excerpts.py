"""Write ``tests/data/reference_excerpts.json``: the source lines the published rows cite.

``leaderboards/reference_results.yaml`` transcribes published numbers and points at the line of
the paper's text each row comes from. The test of those transcriptions reads these excerpts (so
it runs in any clone) and, where the source texts are present (``../shared/seeds`` in CI),
checks that the excerpts are the texts' lines, byte for byte.

    python scripts/reference_excerpts.py [SEEDS_DIR]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.leaderboards.excerpts import EXCERPTS, excerpts_from  # noqa: E402


def main(seeds: Path) -> None:
    data = excerpts_from(seeds)
    EXCERPTS.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{EXCERPTS}: {sum(len(v['lines']) for v in data.values())} lines of {len(data)} texts")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "seeds")
