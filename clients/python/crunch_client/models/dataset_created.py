from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.dataset import Dataset
    from ..models.part import Part


T = TypeVar("T", bound="DatasetCreated")


@_attrs_define
class DatasetCreated:
    """A created dataset and its first part.

    Attributes:
        dataset (Dataset): A dataset: named, typed data made of atomically added parts.
        part (Part): One atomically added batch of a dataset's rows.
    """

    dataset: Dataset
    part: Part
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        dataset = self.dataset.to_dict()

        part = self.part.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "dataset": dataset,
                "part": part,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.dataset import Dataset  # noqa: PLC0415
        from ..models.part import Part  # noqa: PLC0415

        d = dict(src_dict)
        dataset = Dataset.from_dict(d.pop("dataset"))

        part = Part.from_dict(d.pop("part"))

        dataset_created = cls(
            dataset=dataset,
            part=part,
        )

        dataset_created.additional_properties = d
        return dataset_created

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
