"""The CMOG meeting pack: measures shared with the Grafana boards, the pack's queries, labels and rendering.

measures.py -> queries.py -> pack.py (build_pack) -> render.py + labels.py -> one HTML file.
"""

from report.labels import MARKING
from report.pack import DEFAULT_DAYS, DEFAULT_MAX_CHILDREN, build_pack
from report.queries import SET_UP_HINT, PackError

__all__ = ["DEFAULT_DAYS", "DEFAULT_MAX_CHILDREN", "MARKING", "SET_UP_HINT", "PackError", "build_pack"]
