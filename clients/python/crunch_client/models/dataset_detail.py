from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.dataset import Dataset
    from ..models.part import Part


T = TypeVar("T", bound="DatasetDetail")


@_attrs_define
class DatasetDetail:
    """A dataset with its parts.

    Attributes:
        dataset (Dataset): A dataset: named, typed data made of atomically added parts.
        parts (list[Part]): Its committed parts, oldest first.
    """

    dataset: Dataset
    parts: list[Part]
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        dataset = self.dataset.to_dict()

        parts = []
        for parts_item_data in self.parts:
            parts_item = parts_item_data.to_dict()
            parts.append(parts_item)

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "dataset": dataset,
                "parts": parts,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.dataset import Dataset  # noqa: PLC0415
        from ..models.part import Part  # noqa: PLC0415

        d = dict(src_dict)
        dataset = Dataset.from_dict(d.pop("dataset"))

        parts = []
        _parts = d.pop("parts")
        for parts_item_data in _parts:
            parts_item = Part.from_dict(parts_item_data)

            parts.append(parts_item)

        dataset_detail = cls(
            dataset=dataset,
            parts=parts,
        )

        dataset_detail.additional_properties = d
        return dataset_detail

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
