from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.analysis_correlation_analysis_type import AnalysisCorrelationAnalysisType
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.filter_ import Filter


T = TypeVar("T", bound="AnalysisCorrelationAnalysis")


@_attrs_define
class AnalysisCorrelationAnalysis:
    """What a job computes; `type` says which analysis.

    Attributes:
        columns (list[str]): Two or more numeric columns.
        table (str): The input table.
        type_ (AnalysisCorrelationAnalysisType):  Example: correlation.
        filters (list[Filter] | Unset): Filters applied first. Default: [].
    """

    columns: list[str]
    table: str
    type_: AnalysisCorrelationAnalysisType
    filters: list[Filter] | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        columns = self.columns

        table = self.table

        type_ = self.type_.value

        filters: list[dict[str, Any]] | Unset = UNSET
        if not isinstance(self.filters, Unset):
            filters = []
            for filters_item_data in self.filters:
                filters_item = filters_item_data.to_dict()
                filters.append(filters_item)

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "columns": columns,
                "table": table,
                "type": type_,
            }
        )
        if filters is not UNSET:
            field_dict["filters"] = filters

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.filter_ import Filter  # noqa: PLC0415

        d = dict(src_dict)
        columns = cast(list[str], d.pop("columns"))

        table = d.pop("table")

        type_ = AnalysisCorrelationAnalysisType(d.pop("type"))

        _filters = d.pop("filters", UNSET)
        filters: list[Filter] | Unset = UNSET
        if _filters is not UNSET:
            filters = []
            for filters_item_data in _filters:
                filters_item = Filter.from_dict(filters_item_data)

                filters.append(filters_item)

        analysis_correlation_analysis = cls(
            columns=columns,
            table=table,
            type_=type_,
            filters=filters,
        )

        analysis_correlation_analysis.additional_properties = d
        return analysis_correlation_analysis

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
