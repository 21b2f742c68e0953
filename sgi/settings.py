# Kept only so that sgi/bench.py (issue 8 rewrites it) still imports until that merge: the settings'
# one home is settings.py at the project root. Delete this file when bench.py imports `settings`.
from settings import ClickHouseSettings

__all__ = ["ClickHouseSettings"]
