from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.column import Column


T = TypeVar("T", bound="Dataset")


@_attrs_define
class Dataset:
    """A dataset: named, typed data made of atomically added parts.

    Attributes:
        bytes_ (int): Stored (Parquet) bytes over all committed parts.
        created_at (datetime.datetime): When it was created.
        id (UUID): Its id.
        name (str): Its name.
        parts (int): Committed parts.
        rows (int): Rows over all committed parts.
        schema (list[Column]): Its columns.
        updated_at (datetime.datetime): When a part was last added.
    """

    bytes_: int
    created_at: datetime.datetime
    id: UUID
    name: str
    parts: int
    rows: int
    schema: list[Column]
    updated_at: datetime.datetime
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        bytes_ = self.bytes_

        created_at = self.created_at.isoformat()

        id = str(self.id)

        name = self.name

        parts = self.parts

        rows = self.rows

        schema = []
        for schema_item_data in self.schema:
            schema_item = schema_item_data.to_dict()
            schema.append(schema_item)

        updated_at = self.updated_at.isoformat()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "bytes": bytes_,
                "created_at": created_at,
                "id": id,
                "name": name,
                "parts": parts,
                "rows": rows,
                "schema": schema,
                "updated_at": updated_at,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.column import Column  # noqa: PLC0415

        d = dict(src_dict)
        bytes_ = d.pop("bytes")

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        id = UUID(d.pop("id"))

        name = d.pop("name")

        parts = d.pop("parts")

        rows = d.pop("rows")

        schema = []
        _schema = d.pop("schema")
        for schema_item_data in _schema:
            schema_item = Column.from_dict(schema_item_data)

            schema.append(schema_item)

        updated_at = datetime.datetime.fromisoformat(d.pop("updated_at"))

        dataset = cls(
            bytes_=bytes_,
            created_at=created_at,
            id=id,
            name=name,
            parts=parts,
            rows=rows,
            schema=schema,
            updated_at=updated_at,
        )

        dataset.additional_properties = d
        return dataset

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
