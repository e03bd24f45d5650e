from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.analysis_group_by_analysis_type import AnalysisGroupByAnalysisType
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.aggregate import Aggregate
    from ..models.filter_ import Filter


T = TypeVar("T", bound="AnalysisGroupByAnalysis")


@_attrs_define
class AnalysisGroupByAnalysis:
    """What a job computes; `type` says which analysis.

    Attributes:
        aggregates (list[Aggregate]): The aggregates.
        keys (list[str]): The grouping columns.
        table (str): The input table.
        type_ (AnalysisGroupByAnalysisType):  Example: group_by.
        filters (list[Filter] | Unset): Filters applied first. Default: [].
        min_group_size (int | None | Unset): Groups with fewer rows keep their keys but get null aggregates.
    """

    aggregates: list[Aggregate]
    keys: list[str]
    table: str
    type_: AnalysisGroupByAnalysisType
    filters: list[Filter] | Unset = UNSET
    min_group_size: int | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        aggregates = []
        for aggregates_item_data in self.aggregates:
            aggregates_item = aggregates_item_data.to_dict()
            aggregates.append(aggregates_item)

        keys = self.keys

        table = self.table

        type_ = self.type_.value

        filters: list[dict[str, Any]] | Unset = UNSET
        if not isinstance(self.filters, Unset):
            filters = []
            for filters_item_data in self.filters:
                filters_item = filters_item_data.to_dict()
                filters.append(filters_item)

        min_group_size: int | None | Unset
        if isinstance(self.min_group_size, Unset):
            min_group_size = UNSET
        else:
            min_group_size = self.min_group_size

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "aggregates": aggregates,
                "keys": keys,
                "table": table,
                "type": type_,
            }
        )
        if filters is not UNSET:
            field_dict["filters"] = filters
        if min_group_size is not UNSET:
            field_dict["min_group_size"] = min_group_size

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.aggregate import Aggregate  # noqa: PLC0415
        from ..models.filter_ import Filter  # noqa: PLC0415

        d = dict(src_dict)
        aggregates = []
        _aggregates = d.pop("aggregates")
        for aggregates_item_data in _aggregates:
            aggregates_item = Aggregate.from_dict(aggregates_item_data)

            aggregates.append(aggregates_item)

        keys = cast(list[str], d.pop("keys"))

        table = d.pop("table")

        type_ = AnalysisGroupByAnalysisType(d.pop("type"))

        _filters = d.pop("filters", UNSET)
        filters: list[Filter] | Unset = UNSET
        if _filters is not UNSET:
            filters = []
            for filters_item_data in _filters:
                filters_item = Filter.from_dict(filters_item_data)

                filters.append(filters_item)

        def _parse_min_group_size(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        min_group_size = _parse_min_group_size(d.pop("min_group_size", UNSET))

        analysis_group_by_analysis = cls(
            aggregates=aggregates,
            keys=keys,
            table=table,
            type_=type_,
            filters=filters,
            min_group_size=min_group_size,
        )

        analysis_group_by_analysis.additional_properties = d
        return analysis_group_by_analysis

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
