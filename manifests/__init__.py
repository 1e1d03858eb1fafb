"""hardspoof manifests: the Parquet contract between `reconstruct` and `detector`."""
from .errors import UsageError
from .io import base_dir, compact, dedupe, part_files, read, to_table, validate, write, write_part
from .schema import COLUMN_NAMES, SCHEMA, SCHEMA_VERSION, empty_row

__all__ = [
    "COLUMN_NAMES", "SCHEMA", "SCHEMA_VERSION", "UsageError", "base_dir", "compact", "dedupe",
    "empty_row", "part_files", "read", "to_table", "validate", "write", "write_part",
]
__version__ = "0.1.0"
