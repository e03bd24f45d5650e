from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.aggregate_function import AggregateFunction
from ..models.analysis_time_series_analysis_type import AnalysisTimeSeriesAnalysisType
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.filter_ import Filter


T = TypeVar("T", bound="AnalysisTimeSeriesAnalysis")


@_attrs_define
class AnalysisTimeSeriesAnalysis:
    """What a job computes; `type` says which analysis.

    Attributes:
        aggregate (AggregateFunction): An aggregate function.
        bucket (str): Bucket width, e.g. `1 day`, `1 hour`, `15 minutes`, `1 week`.
        table (str): The input table.
        time_column (str): The date or timestamp column.
        value_column (str): The column aggregated per bucket.
        type_ (AnalysisTimeSeriesAnalysisType):  Example: time_series.
        filters (list[Filter] | Unset): Filters applied first. Default: [].
        min_count (int | None | Unset): Buckets with fewer rows get a null value.
    """

    aggregate: AggregateFunction
    bucket: str
    table: str
    time_column: str
    value_column: str
    type_: AnalysisTimeSeriesAnalysisType
    filters: list[Filter] | Unset = UNSET
    min_count: int | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        aggregate = self.aggregate.value

        bucket = self.bucket

        table = self.table

        time_column = self.time_column

        value_column = self.value_column

        type_ = self.type_.value

        filters: list[dict[str, Any]] | Unset = UNSET
        if not isinstance(self.filters, Unset):
            filters = []
            for filters_item_data in self.filters:
                filters_item = filters_item_data.to_dict()
                filters.append(filters_item)

        min_count: int | None | Unset
        if isinstance(self.min_count, Unset):
            min_count = UNSET
        else:
            min_count = self.min_count

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "aggregate": aggregate,
                "bucket": bucket,
                "table": table,
                "time_column": time_column,
                "value_column": value_column,
                "type": type_,
            }
        )
        if filters is not UNSET:
            field_dict["filters"] = filters
        if min_count is not UNSET:
            field_dict["min_count"] = min_count

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.filter_ import Filter  # noqa: PLC0415

        d = dict(src_dict)
        aggregate = AggregateFunction(d.pop("aggregate"))

        bucket = d.pop("bucket")

        table = d.pop("table")

        time_column = d.pop("time_column")

        value_column = d.pop("value_column")

        type_ = AnalysisTimeSeriesAnalysisType(d.pop("type"))

        _filters = d.pop("filters", UNSET)
        filters: list[Filter] | Unset = UNSET
        if _filters is not UNSET:
            filters = []
            for filters_item_data in _filters:
                filters_item = Filter.from_dict(filters_item_data)

                filters.append(filters_item)

        def _parse_min_count(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        min_count = _parse_min_count(d.pop("min_count", UNSET))

        analysis_time_series_analysis = cls(
            aggregate=aggregate,
            bucket=bucket,
            table=table,
            time_column=time_column,
            value_column=value_column,
            type_=type_,
            filters=filters,
            min_count=min_count,
        )

        analysis_time_series_analysis.additional_properties = d
        return analysis_time_series_analysis

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
