"""Carried input columns as values JSON can hold, over Arrow arrays (ingest's hygiene pass).

img2dataset writes every carried column into each sample's `.json` with `json.dumps`, which
fails on bytes, decimals, dates and timestamps (a whole shard fails with it) and writes NaN and
infinities as tokens no JSON parser accepts. So ingest stores carried columns in `candidates/` as:

- binary (any width): a string, the bytes in standard base64 with padding (RFC 4648 section 4),
  under the column's own name;
- decimal: a string, the exact decimal in plain notation (`12.50`, never an exponent);
- date: a string, ISO 8601 (`2024-01-02`);
- timestamp: a string, ISO 8601 with microseconds, `Z`-suffixed in UTC for a time-zone-aware
  timestamp (`2024-01-02T03:04:05.000006Z`), without a suffix for a naive one;
- float and double: the same type, NaN and infinities as null;
- struct, list and map: the same shape with these rules applied inside (a map reaches the `.json`
  as a list of `[key, value]` pairs);
- strings, booleans and integers as they are.

The rules apply at any depth. Unsigned 64-bit integers become strings too (Spark reads them as
decimal(20,0), and JSON parsers that use doubles lose digits above 2**53); every other integer
stays a JSON number.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import math
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc


def _is_binary(t: pa.DataType) -> bool:
    return (
        pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_fixed_size_binary(t)
        or pa.types.is_binary_view(t)
    )


def _is_list(t: pa.DataType) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


def _as_string(t: pa.DataType) -> bool:
    """Types stored as strings."""
    return (
        _is_binary(t)
        or pa.types.is_decimal(t)
        or pa.types.is_date(t)
        or pa.types.is_timestamp(t)
        or pa.types.is_uint64(t)
    )


def json_safe_type(t: pa.DataType) -> pa.DataType:
    """The type a carried column of type `t` is stored as in candidates/."""
    if _as_string(t):
        return pa.string()
    if _is_list(t):
        return pa.list_(json_safe_field(t.value_field))
    if pa.types.is_map(t):
        return pa.map_(json_safe_type(t.key_type), json_safe_field(t.item_field))
    if pa.types.is_struct(t):
        return pa.struct([json_safe_field(f) for f in t])
    return t


def json_safe_field(field: pa.Field) -> pa.Field:
    return pa.field(field.name, json_safe_type(field.type), nullable=field.nullable)


def json_safe_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema([json_safe_field(f) for f in schema])


def _needs_work(t: pa.DataType) -> bool:
    """Whether values of type `t` change (a float may hold NaN, so floats always do)."""
    if _as_string(t) or pa.types.is_floating(t):
        return True
    if _is_list(t):
        return _needs_work(t.value_type)
    if pa.types.is_map(t):
        return _needs_work(t.key_type) or _needs_work(t.item_type)
    if pa.types.is_struct(t):
        return any(_needs_work(f.type) for f in t)
    return False


def _timestamp(value: dt.datetime) -> str:
    if value.tzinfo is None:
        return value.isoformat(timespec="microseconds")
    utc = value.astimezone(dt.UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="microseconds") + "Z"


def json_value(value: Any, t: pa.DataType) -> Any:
    """One Python value (as Arrow's to_pylist gives it) of type `t`, made JSON-safe."""
    if value is None:
        return None
    if _is_binary(t):
        return base64.b64encode(value).decode("ascii")
    if pa.types.is_decimal(t) or pa.types.is_uint64(t):
        return format(decimal.Decimal(value), "f")
    if pa.types.is_timestamp(t):
        return _timestamp(value)
    if pa.types.is_date(t):
        return value.isoformat()
    if pa.types.is_floating(t):
        return value if math.isfinite(value) else None
    if _is_list(t):
        return [json_value(v, t.value_type) for v in value]
    if pa.types.is_map(t):
        return [(json_value(k, t.key_type), json_value(v, t.item_type)) for k, v in value]
    if pa.types.is_struct(t):
        return {f.name: json_value(value.get(f.name), f.type) for f in t}
    return value


def to_json_safe(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A carried column as candidates/ stores it (type `json_safe_type(values.type)`)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    t = values.type
    if not _needs_work(t):
        return values
    if pa.types.is_floating(t):
        return pc.if_else(pc.is_finite(values), values, pa.scalar(None, t))
    out = [json_value(v, t) for v in values.to_pylist()]
    return pa.array(out, type=json_safe_type(t))
